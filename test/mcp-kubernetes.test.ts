/**
 * The MCP `kubernetes` tool against the Kubernetes API fake (test/harness/fake-kube.ts) through
 * the gateway's own HTTP listener (TLS, as kubectl meets it): get/list/logs masked by the
 * Kubernetes kind, apply (create, then merge patch), delete, a denied delete as a `denied`
 * envelope naming the rule, and the cluster token never in a result. The SDK's client over
 * Streamable HTTP.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { kubeConnection } from "./harness/kubectl.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let kube: FakeKube;
let t: TestGateway;
let c: Client;
let boss: string;

type S = Record<string, unknown>;
async function call(args: S): Promise<{ isError?: boolean; s: S; raw: string }> {
  const r = await c.callTool({ name: "kubernetes", arguments: args });
  return { ...(r.isError === true ? { isError: true } : {}), s: (r.structuredContent ?? {}) as S, raw: JSON.stringify(r) };
}

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "boss", groups: ["approvers"] },
    ],
    connections: [kubeConnection(kube)],
    policies: [
      { name: "no-ns-delete", connections: ["k8s"], match: { verbs: ["delete"], resources: ["namespaces"] }, action: "deny" },
      { name: "hide-secret-data", connections: ["k8s"], match: { resources: ["secrets"] }, action: "mask" },
      { name: "pii", connections: ["k8s"], action: "mask", detectors: ["email"] },
      { name: "no-rm", connections: ["k8s"], match: { commands: ["rm"] }, action: "deny", message: "no rm in pods" },
      // Wait mode (the default): the request waits open in its session, with nothing on the wire to say so.
      { name: "cm-delete-waits", connections: ["k8s"], match: { verbs: ["delete"], resources: ["configmaps"], namespaces: ["prod"] }, action: "require_approval", approvers: ["approvers"] },
      { name: "exec-in-prod-waits", connections: ["k8s"], match: { verbs: ["exec"], namespaces: ["prod"] }, action: "require_approval", approvers: ["approvers"] },
    ],
  });
  kube.put("pods", "default", { metadata: { name: "web-1", labels: { app: "web" } }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("secrets", "default", { metadata: { name: "db" }, type: "Opaque", data: { password: Buffer.from("hunter2-cluster-pw").toString("base64") } });
  kube.log("default", "web-1", "user ana.garcia@example.es logged in");
  kube.put("pods", "prod", { metadata: { name: "api-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("events", "default", {
    metadata: { name: "web-1.a" },
    involvedObject: { kind: "Pod", name: "web-1", namespace: "default" },
    type: "Normal",
    reason: "Started",
    message: "Started container c for ana.garcia@example.es",
    lastTimestamp: "2026-12-07T10:00:00Z",
  });
  kube.put("events", "default", { metadata: { name: "other.b" }, involvedObject: { kind: "Pod", name: "other", namespace: "default" }, type: "Warning", reason: "BackOff", message: "not this pod" });
  const token = await t.mint("agent", "1h");
  boss = await t.mint("boss", "1h");
  c = new Client({ name: "mcp-k8s-test", version: "1" });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${t.apiUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
}, 120_000);

afterAll(async () => {
  await c.close().catch(() => undefined);
  await t.stop();
  await kube.close();
});

describe("kubernetes tool", () => {
  it("is listed for a Kubernetes connection", async () => {
    const names = (await c.listTools()).tools.map((x) => x.name);
    expect(names).toContain("kubernetes");
    expect(names).not.toContain("http_request");
  });

  it("list and get pods; the cluster token is the gateway's, never in a result", async () => {
    const l = await call({ connection: "k8s", action: "list", resource: "pods", labelSelector: "app=web" });
    expect(l.s).toMatchObject({ status: "completed", action: "list", httpStatus: 200, path: "/api/v1/namespaces/default/pods" });
    const items = (l.s["object"] as { items: { metadata: { name: string } }[] }).items;
    expect(items.map((i) => i.metadata.name)).toEqual(["web-1"]);
    const g = await call({ connection: "k8s", action: "get", resource: "pods", name: "web-1" });
    expect(g.s).toMatchObject({ status: "completed", object: { kind: "Pod", metadata: { name: "web-1" } } });
    const seen = kube.requests.filter((q) => q.url.includes("/pods"));
    expect(seen.length).toBeGreaterThan(0);
    for (const q of seen) expect(q.authorization).toBe(`Bearer ${kube.token}`);
    expect(l.raw + g.raw).not.toContain(kube.token);
  });

  it("a Secret's data and a log line come back masked", async () => {
    const s = await call({ connection: "k8s", action: "get", resource: "secrets", name: "db" });
    expect(s.s["status"]).toBe("completed");
    const data = (s.s["object"] as { data: { password: string } }).data.password;
    expect(Buffer.from(data, "base64").toString("utf8")).not.toContain("hunter2");
    expect(s.raw).not.toContain(Buffer.from("hunter2-cluster-pw").toString("base64"));
    const logs = await call({ connection: "k8s", action: "logs", name: "web-1" });
    expect(logs.s).toMatchObject({ status: "completed", action: "logs" });
    expect(String(logs.s["text"])).toContain("[EMAIL]");
    expect(logs.raw).not.toContain("ana.garcia@example.es");
  });

  it("apply creates, applies again as a patch, and delete removes", async () => {
    const manifest = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "default" }, data: { a: "1" } };
    const created = await call({ connection: "k8s", action: "apply", manifest });
    expect(created.s).toMatchObject({ status: "completed", httpStatus: 201 });
    expect(kube.get("configmaps", "default", "settings")?.["data"]).toEqual({ a: "1" });
    const patched = await call({ connection: "k8s", action: "apply", manifest: { ...manifest, data: { a: "2" } } });
    expect(patched.s).toMatchObject({ status: "completed", httpStatus: 200 });
    expect(kube.get("configmaps", "default", "settings")?.["data"]).toEqual({ a: "2" });
    const del = await call({ connection: "k8s", action: "delete", resource: "configmaps", name: "settings" });
    expect(del.s).toMatchObject({ status: "completed" });
    expect(kube.get("configmaps", "default", "settings")).toBeUndefined();
  });

  it("a denied delete is a denied envelope naming the rule; the namespace stays", async () => {
    kube.put("namespaces", "", { metadata: { name: "prod" } });
    const r = await call({ connection: "k8s", action: "delete", resource: "namespaces", name: "prod" });
    expect(r.isError).toBe(true);
    expect(r.s).toMatchObject({ status: "denied", code: "GW_POLICY_DENIED", rule: "no-ns-delete" });
    expect(kube.get("namespaces", "", "prod")).toBeDefined();
  });

  it("a missing object is failed with the cluster's reason; bad names are refused before sending", async () => {
    const r = await call({ connection: "k8s", action: "get", resource: "pods", name: "nope" });
    expect(r.s).toMatchObject({ status: "failed", code: "NotFound" });
    const bad = await call({ connection: "k8s", action: "get", resource: "pods", name: "../../secrets/db" });
    expect(bad.s).toMatchObject({ status: "failed", code: "GW_BAD_REQUEST" });
  });

  it("describe returns the object with its own events (field selector involvedObject.name), masked", async () => {
    const d = await call({ connection: "k8s", action: "describe", resource: "pods", name: "web-1" });
    expect(d.s).toMatchObject({ status: "completed", action: "describe", object: { kind: "Pod", metadata: { name: "web-1" } } });
    expect(d.s["events"]).toEqual([{ type: "Normal", reason: "Started", message: "Started container c for [EMAIL]", lastTimestamp: "2026-12-07T10:00:00Z" }]);
    expect(d.raw).not.toContain("ana.garcia@example.es");
    expect(kube.requests.some((q) => q.url.startsWith("/api/v1/namespaces/default/events?") && q.url.includes("fieldSelector=involvedObject.name%3Dweb-1"))).toBe(true);
  });

  it("exec runs the argv in the pod as kubectl exec through the gateway would: output masked, exit code kept", async () => {
    const ok = await call({ connection: "k8s", action: "exec", name: "web-1", command: ["sh", "-c", "echo hi from $POD; echo mail ana.garcia@example.es; echo oops >&2"] });
    expect(ok.s).toMatchObject({ status: "completed", action: "exec", pod: "web-1", exitCode: 0, truncated: false });
    expect(String(ok.s["stdout"])).toBe("hi from web-1\nmail [EMAIL]\n");
    expect(ok.s["stderr"]).toBe("oops\n");
    const failed = await call({ connection: "k8s", action: "exec", name: "web-1", command: ["sh", "-c", "exit 3"] });
    expect(failed.s).toMatchObject({ status: "completed", exitCode: 3 });
  });

  it("an exec whose command the shell rules refuse is denied before it starts, naming the rule", async () => {
    const r = await call({ connection: "k8s", action: "exec", name: "web-1", command: ["sh", "-c", "touch /tmp/airlock-mcp-x && rm /tmp/airlock-mcp-x"] });
    expect(r.isError).toBe(true);
    expect(r.s).toMatchObject({ status: "denied", code: "GW_POLICY_DENIED", rule: "no-rm" });
    const bad = await call({ connection: "k8s", action: "exec", name: "web-1" });
    expect(bad.s).toMatchObject({ status: "failed", code: "GW_BAD_REQUEST" });
  });

  it("a held exec (wait mode) is pending_approval at once; approved, wait_approval returns the command's output", async () => {
    const started = Date.now();
    const held = await call({ connection: "k8s", action: "exec", namespace: "prod", name: "api-1", command: ["echo", "from prod"] });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(held.s).toMatchObject({ status: "pending_approval", rule: "exec-in-prod-waits", approvers: ["approvers"] });
    const id = String(held.s["approvalId"]);
    expect((await t.api(`/v1/approvals/${id}/approve`, { token: boss, body: {} })).status).toBe(200);
    const done = await c.callTool({ name: "wait_approval", arguments: { id, timeoutSeconds: 30 } });
    expect(done.structuredContent).toMatchObject({ status: "completed", action: "exec", exitCode: 0, stdout: "from prod\n" });
  });

  it("a held delete (wait mode) is pending_approval at once; approved, wait_approval returns the deletion", async () => {
    kube.put("configmaps", "prod", { metadata: { name: "flags" }, data: { a: "1" } });
    const held = await call({ connection: "k8s", action: "delete", resource: "configmaps", namespace: "prod", name: "flags" });
    expect(held.s).toMatchObject({ status: "pending_approval", rule: "cm-delete-waits" });
    expect(kube.get("configmaps", "prod", "flags")).toBeDefined();
    const id = String(held.s["approvalId"]);
    expect((await t.api(`/v1/approvals/${id}/approve`, { token: boss, body: {} })).status).toBe(200);
    const done = await c.callTool({ name: "wait_approval", arguments: { id, timeoutSeconds: 30 } });
    expect(done.structuredContent).toMatchObject({ status: "completed", action: "delete", httpStatus: 200 });
    expect(kube.get("configmaps", "prod", "flags")).toBeUndefined();
  });
});

describe("check_policy on a Kubernetes connection", () => {
  const check = async (args: S): Promise<S> => ((await c.callTool({ name: "check_policy", arguments: { connection: "k8s", ...args } })).structuredContent ?? {}) as S;

  it("judges verb, resource, namespace and name, and an exec's argv by the shell rules; nothing reaches the cluster", async () => {
    const before = kube.requests.length;
    expect(await check({ verb: "delete", resource: "namespaces", name: "prod" })).toMatchObject({ status: "completed", decision: "deny", rule: "no-ns-delete" });
    expect(await check({ verb: "delete", resource: "configmaps", namespace: "prod", name: "x" })).toMatchObject({ decision: "require_approval", rule: "cm-delete-waits", approvers: ["approvers"] });
    expect(await check({ verb: "delete", resource: "configmaps", namespace: "dev", name: "x" })).toMatchObject({ decision: "allow" });
    expect(await check({ verb: "get", resource: "secrets", name: "db" })).toMatchObject({ decision: "allow", masked: true });
    expect(await check({ verb: "exec", name: "web-1", command: ["sh", "-c", "ls; rm -rf /"] })).toMatchObject({ decision: "deny", rule: "no-rm" });
    expect(await check({ verb: "exec", name: "web-1", command: ["ls", "/"] })).toMatchObject({ decision: "allow" });
    expect(await check({ method: "DELETE", path: "/api/v1/namespaces/prod" })).toMatchObject({ decision: "deny", rule: "no-ns-delete" });
    expect(await check({ verb: "get", resource: "pods" })).toMatchObject({ status: "failed", code: "GW_BAD_REQUEST" });
    expect(kube.requests.length).toBe(before);
  });
});
