/**
 * CEL `when:` with MCP clients (issue 21), end to end with the MCP SDK's own Client over
 * Streamable HTTP on a real gateway:
 * - the MCP gateway (`/mcp/CONNECTION`) in front of an upstream MCP server built with the SDK
 *   (test/harness/mcp-upstream.mjs): `when:` over tool, arguments, principal, groups and time
 *   decides a tools/call; the tool list hides only what every call would be refused;
 * - Airlock's own MCP server (`/mcp`): its `kubernetes` tool against the Kubernetes API fake
 *   (test/harness/fake-kube.ts) judged by Kubernetes policies with `when:`, and `check_policy`
 *   answering as the real call is judged.
 * Refusals are checked at the upstream too (the call never reached it) and in the audit trail.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { kubeConnection } from "./harness/kubectl.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startHttpUpstream, type HttpUpstream } from "./harness/mcp-upstream.mjs";
import { until } from "./harness/until.js";

const UPSTREAM_TOKEN = "when-upstream-bearer-24680";

let t: TestGateway;
let upstream: HttpUpstream;
let kube: FakeKube;
let dir: string;
const tokens: Record<string, string> = {};
const clients: Client[] = [];

interface Result {
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
  content: { type: string; text?: string }[];
}

async function connect(path: string, token: string): Promise<Client> {
  const c = new Client({ name: "cel-when-test", version: "1.0.0" });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${t.apiUrl}${path}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  clients.push(c);
  return c;
}

async function call(c: Client, name: string, args: Record<string, unknown>): Promise<Result> {
  return (await c.callTool({ name, arguments: args })) as Result;
}

const textOf = (r: Result): string => r.content.map((x) => x.text ?? "").join("\n");

type AuditRecord = { type: string; decision?: string; rule?: string; connection?: string; statement?: string; principal?: { id: string } };

async function auditRecords(): Promise<AuditRecord[]> {
  await t.gw.audit.flush();
  const r = await t.api("/v1/audit?limit=1000");
  return (r.body as { records: AuditRecord[] }).records;
}

beforeAll(async () => {
  process.env["CEL_WHEN_MCP_TOKEN"] = UPSTREAM_TOKEN;
  upstream = await startHttpUpstream({ token: UPSTREAM_TOKEN, description: () => "Read a file" });
  kube = new FakeKube();
  await kube.start();
  dir = mkdtempSync(join(tmpdir(), "airlock-mcp-when-"));
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "ops", groups: ["agents", "ops"] },
    ],
    connections: [
      { name: "files", type: "mcp", url: upstream.url, auth: { bearer: "env:CEL_WHEN_MCP_TOKEN" }, groups: ["agents"], pinning: "first-use" },
      kubeConnection(kube),
    ],
    policies: [
      {
        name: "etc-for-ops",
        connections: ["files"],
        match: { tools: ["read_file"] },
        when: 'arguments.path.startsWith("/etc/") && !("ops" in groups)',
        action: "deny",
        message: "only ops reads /etc",
      },
      {
        name: "no-salary-search",
        connections: ["files"],
        match: { tools: ["search"] },
        when: '"query" in arguments && arguments.query.contains("salary") && principal.name != "ops"',
        action: "deny",
      },
      {
        // Holds at any time after 2000 for everyone but ops: every call of it is refused.
        name: "shell-never-for-agents",
        connections: ["files"],
        match: { tools: ["run_shell"] },
        when: 'now > timestamp("2000-01-01T00:00:00Z") && hour >= 0 && weekday >= 0 && !("ops" in groups)',
        action: "deny",
        message: "no shell for agents",
      },
      {
        // Never holds (a time in the past).
        name: "before-2000",
        connections: ["files"],
        match: { tools: ["*"] },
        when: 'now < timestamp("2000-01-01T00:00:00Z")',
        action: "deny",
      },
      {
        name: "prod-pods-for-ops",
        connections: ["k8s"],
        match: { verbs: ["delete"], resources: ["pods"] },
        when: 'ns.startsWith("prod") && !("ops" in groups)',
        action: "deny",
        message: "only ops deletes pods in prod",
      },
    ],
  });
  for (const sa of ["agent", "ops"]) tokens[sa] = await t.mint(sa, "1h");
  kube.put("pods", "prod-eu", { metadata: { name: "api-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("pods", "prod-eu", { metadata: { name: "api-2" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await t.stop();
  await upstream.close();
  await kube.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("CEL when: through the MCP gateway (SDK client, SDK upstream)", () => {
  it("arguments and groups: an agent is refused /etc, reads elsewhere; ops reads /etc", async () => {
    const agent = await connect("/mcp/files", tokens["agent"]!);
    const refused = await call(agent, "read_file", { path: "/etc/shadow" });
    expect(refused.isError).toBe(true);
    expect(refused.structuredContent).toMatchObject({ status: "denied", rule: "etc-for-ops", message: "only ops reads /etc", connection: "files" });
    expect(textOf(refused)).not.toContain("contents of");
    const ok = await call(agent, "read_file", { path: "/home/a.txt" });
    expect(ok.isError).not.toBe(true);
    expect(textOf(ok)).toContain("contents of /home/a.txt");
    const ops = await connect("/mcp/files", tokens["ops"]!);
    expect(textOf(await call(ops, "read_file", { path: "/etc/hostname" }))).toContain("contents of /etc/hostname");
    const record = await until("the refusal's audit record", async () => (await auditRecords()).find((a) => a.type === "mcp.tool_call" && a.rule === "etc-for-ops"));
    expect(record).toMatchObject({ decision: "deny", connection: "files", statement: 'read_file {"path":"/etc/shadow"}', principal: { id: "sa:agent" } });
  });

  it("the principal's name: a salary search is refused to the agent, served to ops", async () => {
    const agent = await connect("/mcp/files", tokens["agent"]!);
    expect((await call(agent, "search", { query: "salary 2026" })).structuredContent).toMatchObject({ status: "denied", rule: "no-salary-search" });
    expect(textOf(await call(agent, "search", { query: "holidays" }))).toContain("results for holidays");
    const ops = await connect("/mcp/files", tokens["ops"]!);
    expect(textOf(await call(ops, "search", { query: "salary 2026" }))).toContain("results for salary 2026");
  });

  it("the tool list hides a tool only when every call is refused: not read_file, whose refusal depends on its arguments", async () => {
    const agent = await connect("/mcp/files", tokens["agent"]!);
    const names = (await agent.listTools()).tools.map((x) => x.name).sort();
    expect(names).toContain("read_file");
    expect(names).toContain("search");
    // run_shell is refused to agents whatever its arguments (time and groups decide): hidden.
    expect(names).not.toContain("run_shell");
    expect((await call(agent, "run_shell", { command: "id" })).structuredContent).toMatchObject({ status: "denied", rule: "shell-never-for-agents", message: "no shell for agents" });
    const ops = await connect("/mcp/files", tokens["ops"]!);
    const opsNames = (await ops.listTools()).tools.map((x) => x.name);
    expect(opsNames).toContain("run_shell");
    expect(textOf(await call(ops, "run_shell", { command: "id" }))).toContain("ran id");
    expect((await auditRecords()).some((a) => a.rule === "before-2000")).toBe(false);
  });
});

describe("CEL when: on Airlock's own MCP tools (kubernetes, check_policy)", () => {
  it("the kubernetes tool: a delete in prod-* is refused to the agent, done for ops; check_policy answers the same", async () => {
    const agent = await connect("/mcp", tokens["agent"]!);
    const check = await call(agent, "check_policy", { connection: "k8s", verb: "delete", resource: "pods", namespace: "prod-eu", name: "api-1" });
    expect(check.structuredContent).toMatchObject({ decision: "deny", rule: "prod-pods-for-ops", message: "only ops deletes pods in prod" });
    const refused = await call(agent, "kubernetes", { connection: "k8s", action: "delete", resource: "pods", namespace: "prod-eu", name: "api-1" });
    expect(refused.structuredContent).toMatchObject({ status: "denied", rule: "prod-pods-for-ops" });
    expect(kube.get("pods", "prod-eu", "api-1")).toBeDefined();
    const ops = await connect("/mcp", tokens["ops"]!);
    expect((await call(ops, "check_policy", { connection: "k8s", verb: "delete", resource: "pods", namespace: "prod-eu", name: "api-2" })).structuredContent).toMatchObject({ decision: "allow" });
    const done = await call(ops, "kubernetes", { connection: "k8s", action: "delete", resource: "pods", namespace: "prod-eu", name: "api-2" });
    expect(done.structuredContent).toMatchObject({ status: "completed" });
    expect(kube.get("pods", "prod-eu", "api-2")).toBeUndefined();
  });

  it("check_policy on an MCP connection judges TOOL {arguments} with the same when:", async () => {
    const agent = await connect("/mcp", tokens["agent"]!);
    expect((await call(agent, "check_policy", { connection: "files", statement: 'read_file {"path": "/etc/passwd"}' })).structuredContent).toMatchObject({ decision: "deny", rule: "etc-for-ops" });
    expect((await call(agent, "check_policy", { connection: "files", statement: 'read_file {"path": "/srv/x"}' })).structuredContent).toMatchObject({ decision: "allow" });
  });
});
