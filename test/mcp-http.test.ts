/**
 * The MCP `http_request` tool against a real local HTTP API (test/harness/http-upstream.ts)
 * through the gateway's own HTTP listener: responses masked by the engine, a denied request as
 * a `denied` envelope naming the rule, an async-mode hold as `pending_approval` that re-sends
 * once approved, the agent's own token never forwarded and the target's credential never in a
 * result. The SDK's client over Streamable HTTP.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";

const CANARY = "target-bearer-CANARY-mcp-5e4d";
let up: Upstream;
let t: TestGateway;
let c: Client;
let token: string;
let boss: string;

beforeAll(async () => {
  up = await startUpstream();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "boss", groups: ["approvers"] },
    ],
    connections: [{ name: "api", type: "http", baseUrl: up.url, auth: { bearer: CANARY }, groups: ["agents"] }],
    policies: [
      { name: "no-admin", connections: ["api"], match: { paths: ["/admin", "/admin/*"] }, action: "deny", message: "the admin API is off limits" },
      { name: "big-payments", connections: ["api"], match: { methods: ["POST"], paths: ["/payments"], body: ["$.amount > 1000"] }, action: "require_approval", approvers: ["approvers"], mode: "async" },
      { name: "pii", connections: ["api"], action: "mask", detectors: ["email"] },
      // Wait mode (the default): the request waits open in its session, with nothing on the wire to say so.
      { name: "deletes-wait", connections: ["api"], match: { methods: ["DELETE"] }, action: "require_approval", approvers: ["approvers"] },
    ],
  });
  token = await t.mint("agent", "1h");
  boss = await t.mint("boss", "1h");
  c = new Client({ name: "mcp-http-test", version: "1" });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${t.apiUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
}, 120_000);

afterAll(async () => {
  await c.close().catch(() => undefined);
  await t.stop();
  await up.stop();
});

describe("http_request tool", () => {
  it("is listed for an HTTP connection, and list_connections names it", async () => {
    const names = (await c.listTools()).tools.map((x) => x.name);
    expect(names).toContain("http_request");
    expect(names).not.toContain("query");
    const l = await c.callTool({ name: "list_connections", arguments: {} });
    expect(l.structuredContent).toMatchObject({ connections: [{ name: "api", type: "http", tools: ["http_request"] }] });
  });

  it("returns status, headers and the JSON body, masked by the engine", async () => {
    const r = await c.callTool({ name: "http_request", arguments: { connection: "api", path: "/users" } });
    expect(r.isError).toBeUndefined();
    const s = r.structuredContent as { status: string; httpStatus: number; headers: Record<string, string>; json: { name: string; email: string }[] };
    expect(s).toMatchObject({ status: "completed", connection: "api", httpStatus: 200, truncated: false });
    expect(s.headers["content-type"]).toMatch(/application\/json/);
    expect(s.json[0]).toMatchObject({ name: "Ana", email: "[EMAIL]" });
    expect(JSON.stringify(r)).not.toContain("ana.garcia@example.es");
  });

  it("sends method, query, headers and a JSON body; never the agent's Authorization; the target's credential never comes back", async () => {
    const r = await c.callTool({
      name: "http_request",
      arguments: { connection: "api", method: "PUT", path: "/echo", query: { a: "1", b: ["x", "y"] }, headers: { "X-Trace": "t1", Authorization: "Bearer agent-supplied-secret" }, json: { hello: "world" } },
    });
    const s = r.structuredContent as { status: string; json: { method: string; path: string; headers: Record<string, string>; body: string } };
    expect(s.status).toBe("completed");
    expect(s.json.method).toBe("PUT");
    expect(s.json.path).toBe("/echo?a=1&b=x&b=y");
    expect(s.json.headers["x-trace"]).toBe("t1");
    expect(JSON.parse(s.json.body)).toEqual({ hello: "world" });
    const seen = up.seen.filter((x) => x.url.startsWith("/echo")).at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(JSON.stringify(up.seen)).not.toContain("agent-supplied-secret");
    expect(JSON.stringify(up.seen)).not.toContain(token);
    expect(JSON.stringify(r)).not.toContain(CANARY);
    expect(t.logs()).not.toContain(CANARY);
  });

  it("a denied request is a denied envelope naming the rule; nothing reached the target", async () => {
    const before = up.seen.length;
    const r = await c.callTool({ name: "http_request", arguments: { connection: "api", path: "/admin/users" } });
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: "denied", code: "GW_POLICY_DENIED", rule: "no-admin", message: "the admin API is off limits" });
    expect(up.seen.length).toBe(before);
  });

  it("a held POST is pending_approval; approved, wait_approval re-sends it and returns the answer", async () => {
    const held = await c.callTool({ name: "http_request", arguments: { connection: "api", method: "POST", path: "/payments", json: { amount: 5000 } } });
    expect(held.isError).toBe(true);
    expect(held.structuredContent).toMatchObject({ status: "pending_approval", rule: "big-payments", approvers: ["approvers"], wait: { tool: "wait_approval" } });
    expect(up.seen.some((x) => x.url === "/payments")).toBe(false);
    const id = String((held.structuredContent as Record<string, unknown> | undefined)?.["approvalId"]);
    const approved = await t.api(`/v1/approvals/${id}/approve`, { token: boss, body: {} });
    expect(approved.status).toBe(200);
    const done = await c.callTool({ name: "wait_approval", arguments: { id, timeoutSeconds: 30 } });
    expect(done.structuredContent).toMatchObject({ status: "completed", httpStatus: 201, json: { id: "pay_1" } });
    expect(up.seen.filter((x) => x.url === "/payments").length).toBe(1);
  });

  it("bad arguments are failed envelopes, not crashes", async () => {
    const r = await c.callTool({ name: "http_request", arguments: { connection: "api", path: "http://evil.example/x" } });
    expect(r.structuredContent).toMatchObject({ status: "failed", code: "GW_BAD_REQUEST" });
    const h = await c.callTool({ name: "http_request", arguments: { connection: "api", path: "/echo", headers: { "bad name": "x" } } });
    expect(h.structuredContent).toMatchObject({ status: "failed", code: "GW_BAD_REQUEST" });
  });

  it("a held DELETE in wait mode is pending_approval at once; approved, wait_approval returns the request's own answer", async () => {
    const started = Date.now();
    const held = await c.callTool({ name: "http_request", arguments: { connection: "api", method: "DELETE", path: "/echo", query: { id: "7" } } });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(held.isError).toBe(true);
    expect(held.structuredContent).toMatchObject({ status: "pending_approval", rule: "deletes-wait", approvers: ["approvers"], wait: { tool: "wait_approval" } });
    expect(up.seen.some((x) => x.method === "DELETE")).toBe(false);
    const id = String((held.structuredContent as Record<string, unknown> | undefined)?.["approvalId"]);
    expect((await t.api(`/v1/approvals/${id}/approve`, { token: boss, body: {} })).status).toBe(200);
    const done = await c.callTool({ name: "wait_approval", arguments: { id, timeoutSeconds: 30 } });
    expect(done.structuredContent).toMatchObject({ status: "completed", httpStatus: 200, json: { method: "DELETE", path: "/echo?id=7" } });
    expect(up.seen.filter((x) => x.method === "DELETE").length).toBe(1);
  });
});

describe("check_policy on an HTTP connection", () => {
  const check = async (args: Record<string, unknown>): Promise<Record<string, unknown>> =>
    ((await c.callTool({ name: "check_policy", arguments: { connection: "api", ...args } })).structuredContent ?? {}) as Record<string, unknown>;

  it("judges method, path and body with the same rules, and nothing reaches the target", async () => {
    const before = up.seen.length;
    expect(await check({ path: "/admin/users" })).toMatchObject({ status: "completed", decision: "deny", rule: "no-admin", message: "the admin API is off limits" });
    expect(await check({ method: "POST", path: "/payments", json: { amount: 5000 } })).toMatchObject({ decision: "require_approval", rule: "big-payments", approvers: ["approvers"], mode: "async" });
    expect(await check({ method: "POST", path: "/payments", json: { amount: 10 } })).toMatchObject({ decision: "allow" });
    expect(await check({ method: "DELETE", path: "/echo" })).toMatchObject({ decision: "require_approval", rule: "deletes-wait", mode: "wait" });
    expect(await check({ path: "/users" })).toMatchObject({ decision: "allow", masked: true });
    // The engine's own path rules: a path climbing above the connection is refused before any policy.
    expect(await check({ path: "/a/../../etc" })).toMatchObject({ decision: "deny", code: "GW_PROTOCOL" });
    expect(await check({})).toMatchObject({ status: "failed", code: "GW_BAD_REQUEST" });
    expect(up.seen.length).toBe(before);
  });
});
