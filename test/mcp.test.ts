/**
 * Airlock as an MCP server, end to end: the MCP SDK's own Client over Streamable HTTP against
 * the real gateway, whose tools reach a real PostgreSQL 15 through the gateway's own PostgreSQL
 * listener. Every envelope: completed (masked rows, a continuation cursor), denied, held and
 * approved through wait_approval, failed; check_policy; correlation with a W3C traceparent.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";

let server: PgServer;
let idp: TestOidcProvider;
const CLIENT_SECRET = "mcp-agent-secret-0123456789abcdef01234567";
let t: TestGateway;
const tokens: Record<string, string> = {};
const clients: Client[] = [];

async function connect(token: string, headers: Record<string, string> = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${t.apiUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } });
  const c = new Client({ name: "mcp-test", version: "1.0.0" });
  await c.connect(transport);
  clients.push(c);
  return c;
}

interface Result {
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
  content: { type: string; text?: string }[];
}

async function call(c: Client, name: string, args: Record<string, unknown>, meta?: Record<string, unknown>): Promise<Result> {
  return (await c.callTool({ name, arguments: args, ...(meta === undefined ? {} : { _meta: meta }) })) as Result;
}

beforeAll(async () => {
  // A real OpenID provider (node oidc-provider): workloads get client-credentials JWTs there.
  idp = await startOidcProvider([{ clientId: "mcp-workload", clientSecret: CLIENT_SECRET, grantTypes: ["client_credentials"] }]);
  idp.clientGroups.set("mcp-workload", ["agents"]);
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table customers (id int primary key, name text not null, email text not null);
     insert into customers select g, 'customer ' || g, 'person' || g || '@example.com' from generate_series(1, 7) g;
     create table orders (id int primary key, customer_id int, total numeric);
     insert into orders select g, g, g * 10 from generate_series(1, 5) g;
     alter table customers owner to app; alter table orders owner to app;`,
    { database: "shop" },
  );
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "outsider", groups: ["nobody"] },
      { name: "dba1", groups: ["dba"] },
    ],
    oidc: [{ issuer: idp.issuer, alias: "idp", audience: "airlock", principal: { kind: "workload", name: "client_id", prefix: "" } }],
    connections: [
      { name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
      { name: "other", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", groups: ["dba"], sslmode: "disable" },
    ],
    policies: [
      { name: "no-drop", match: { operations: ["drop", "truncate"] }, action: "deny", message: "DROP and TRUNCATE are not allowed here" },
      { name: "deletes-need-approval", match: { operations: ["delete"] }, action: "require_approval", approvers: ["dba"] },
      { name: "hide-email", action: "mask", columns: ["customers.email"], strategy: "redact" },
    ],
  });
  for (const sa of ["agent", "outsider", "dba1"]) tokens[sa] = await t.mint(sa, "1h");
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await t.stop();
  await server.stop();
  await idp.close();
});

describe("authorization (MCP authorization spec, RFC 9728)", () => {
  it("answers 401 with WWW-Authenticate naming the protected resource metadata, which names the issuers", async () => {
    const r = await fetch(`${t.apiUrl}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } }),
    });
    expect(r.status).toBe(401);
    const www = r.headers.get("www-authenticate") ?? "";
    expect(www).toMatch(/^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/);
    const url = /resource_metadata="([^"]+)"/.exec(www)?.[1] ?? "";
    const meta = (await (await fetch(url)).json()) as { resource: string; authorization_servers: string[] };
    expect(meta.resource).toBe(`${t.apiUrl}/mcp`);
    expect(meta.authorization_servers).toEqual([idp.issuer]);
  });

  it("accepts a workload's access token from the trusted OpenID provider (OAuth client credentials) as the bearer", async () => {
    const jwt = await idp.clientCredentials("mcp-workload", CLIENT_SECRET);
    const c = await connect(jwt);
    const r = await call(c, "query", { connection: "shop", sql: "select email from customers where id = 1" });
    expect(r.structuredContent).toMatchObject({ status: "completed", rows: [["[EMAIL]"]] });
    const sessions = (await t.api("/v1/sessions?limit=5")).body as { sessions: { protocol: string; principal: { kind: string; name: string } }[] };
    expect(sessions.sessions.find((s) => s.protocol === "mcp")?.principal).toMatchObject({ kind: "workload", name: "mcp-workload" });
  });

  it("refuses a bad token with 401 and the admin credential with 403", async () => {
    await expect(connect("not-a-token")).rejects.toThrow();
    await expect(connect(t.gw.adminToken)).rejects.toThrow();
  });

  it("does not let another principal use an MCP session id", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const sid = (c as unknown as { _transport: StreamableHTTPClientTransport })._transport.sessionId ?? "";
    expect(sid).not.toBe("");
    const r = await fetch(`${t.apiUrl}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${tokens["dba1"] ?? ""}`, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    expect(r.status).toBe(404);
  });
});

describe("tools", () => {
  it("lists the tools of the caller's connections, and list_connections only theirs", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const names = (await c.listTools()).tools.map((x) => x.name).sort();
    expect(names).toEqual(["approval_status", "check_policy", "describe_schema", "explain", "list_connections", "query", "request_approval", "wait_approval"]);
    const r = await call(c, "list_connections", {});
    expect(r.structuredContent).toEqual({ status: "completed", connections: [{ name: "shop", type: "postgres", tools: ["query", "explain", "describe_schema"] }] });
    const outsider = await connect(tokens["outsider"] ?? "");
    expect((await outsider.listTools()).tools.map((x) => x.name)).not.toContain("query");
  });

  it("query: rows with column names, masked by the gateway", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const r = await call(c, "query", { connection: "shop", sql: "select id, name, email from customers where id = $1", params: [3] });
    expect(r.isError).toBeUndefined();
    expect(r.structuredContent).toMatchObject({
      status: "completed",
      connection: "shop",
      command: "SELECT",
      columns: [
        { name: "id", type: "int4" },
        { name: "name", type: "text" },
        { name: "email", type: "text" },
      ],
      rows: [["3", "customer 3", "[EMAIL]"]],
      hasMore: false,
    });
    expect(JSON.stringify(r)).not.toContain("person3@example.com");
  });

  it("query: a continuation cursor pages through the rest", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const first = await call(c, "query", { connection: "shop", sql: "select id from customers order by id", maxRows: 3 });
    expect(first.structuredContent).toMatchObject({ status: "completed", rows: [["1"], ["2"], ["3"]], hasMore: true });
    const cursor = first.structuredContent?.["cursor"];
    expect(typeof cursor).toBe("string");
    const second = await call(c, "query", { cursor });
    expect(second.structuredContent).toMatchObject({ rows: [["4"], ["5"], ["6"]], hasMore: true, cursor });
    const third = await call(c, "query", { cursor });
    expect(third.structuredContent).toMatchObject({ rows: [["7"]], hasMore: false });
    expect(third.structuredContent?.["cursor"]).toBeUndefined();
    // A cursor is its owner's: another principal is told it does not exist.
    const other = await connect(tokens["dba1"] ?? "");
    const stolen = await call(other, "query", { cursor });
    expect(stolen.structuredContent).toMatchObject({ status: "failed", code: "GW_NOT_FOUND" });
  });

  it("query: a denied statement is a tool result with isError, the rule and what to change", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const r = await call(c, "query", { connection: "shop", sql: "drop table orders" });
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: "denied", code: "GW_POLICY_DENIED", rule: "no-drop", message: "DROP and TRUNCATE are not allowed here" });
    expect(String(r.structuredContent?.["fix"])).toContain("check_policy");
    expect((await server.psql("select count(*) from orders", { database: "shop" })).trim()).toBe("5");
  });

  it("query: a connection the caller's groups do not give is denied", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const r = await call(c, "query", { connection: "other", sql: "select 1" });
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: "denied" });
  });

  it("query: a target error is failed, with the target's SQLSTATE", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const r = await call(c, "query", { connection: "shop", sql: "select * from no_such_table" });
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: "failed", code: "42P01" });
  });

  it("a held DELETE: pending_approval, approved through the API by an approver, wait_approval returns its result", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const held = await call(c, "query", { connection: "shop", sql: "delete from orders where id = 5" });
    expect(held.isError).toBe(true);
    expect(held.structuredContent).toMatchObject({ status: "pending_approval", rule: "deletes-need-approval", approvers: ["dba"], wait: { tool: "wait_approval" } });
    const id = String(held.structuredContent?.["approvalId"]);
    expect(id).toMatch(/^apr_/);
    const status = await call(c, "approval_status", { id });
    expect(status.structuredContent).toMatchObject({ status: "completed", state: "pending", connection: "shop" });
    // Not decided yet: a short wait says so.
    const early = await call(c, "wait_approval", { id, timeoutSeconds: 1 });
    expect(early.structuredContent).toMatchObject({ status: "pending_approval", approvalId: id });
    const waiting = call(c, "wait_approval", { id, timeoutSeconds: 60 });
    const approved = await t.api(`/v1/approvals/${id}/approve`, { token: tokens["dba1"] ?? "", body: {} });
    expect(approved.status).toBe(200);
    const done = await waiting;
    expect(done.isError).toBeUndefined();
    expect(done.structuredContent).toMatchObject({ status: "completed", command: "DELETE", rowCount: 1 });
    expect((await server.psql("select count(*) from orders", { database: "shop" })).trim()).toBe("4");
    // Asked again: the same outcome (the statement ran once).
    expect((await call(c, "wait_approval", { id })).structuredContent).toMatchObject({ status: "completed", command: "DELETE" });
  });

  it("a held DELETE denied by the approver comes back denied", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const held = await call(c, "query", { connection: "shop", sql: "delete from orders where id = 4" });
    const id = String(held.structuredContent?.["approvalId"]);
    const waiting = call(c, "wait_approval", { id, timeoutSeconds: 60 });
    expect((await t.api(`/v1/approvals/${id}/deny`, { token: tokens["dba1"] ?? "", body: { reason: "not today" } })).status).toBe(200);
    const r = await waiting;
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: "denied", code: "GW_POLICY_DENIED" });
    expect((await server.psql("select count(*) from orders where id = 4", { database: "shop" })).trim()).toBe("1");
  });

  it("check_policy: the same judgement as a live statement, without running it", async () => {
    const c = await connect(tokens["agent"] ?? "");
    expect((await call(c, "check_policy", { connection: "shop", statement: "drop table orders" })).structuredContent).toMatchObject({
      status: "completed",
      decision: "deny",
      rule: "no-drop",
      message: "DROP and TRUNCATE are not allowed here",
    });
    expect((await call(c, "check_policy", { connection: "shop", statement: "delete from orders where id = 1" })).structuredContent).toMatchObject({
      decision: "require_approval",
      rule: "deletes-need-approval",
      approvers: ["dba"],
    });
    expect((await call(c, "check_policy", { connection: "shop", statement: "select email from customers" })).structuredContent).toMatchObject({ decision: "allow", masked: true });
    expect((await call(c, "check_policy", { connection: "other", statement: "select 1" })).structuredContent).toMatchObject({ decision: "deny", code: "GW_ACCESS_DENIED" });
    // Nothing ran and nothing was requested.
    expect((await server.psql("select count(*) from orders where id = 1", { database: "shop" })).trim()).toBe("1");
    const pendingReqs = (await t.api("/v1/approvals?status=pending")).body as { requests: { statement?: string }[] };
    expect(pendingReqs.requests.some((r) => r.statement === "delete from orders where id = 1")).toBe(false);
  });

  it("describe_schema marks the columns masked for the caller; explain shows a plan", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const r = await call(c, "describe_schema", { connection: "shop" });
    const tables = r.structuredContent?.["tables"] as { table: string; columns: { name: string; masked?: boolean; maskedBy?: string }[] }[];
    const customers = tables.find((x) => x.table === "customers");
    expect(customers?.columns.find((x) => x.name === "email")).toMatchObject({ masked: true, maskedBy: "hide-email" });
    expect(customers?.columns.find((x) => x.name === "name")?.masked).toBeUndefined();
    const plan = await call(c, "explain", { connection: "shop", sql: "select * from orders where id = 1" });
    expect(plan.structuredContent).toMatchObject({ status: "completed" });
    expect(String(plan.structuredContent?.["plan"])).toMatch(/Scan/);
  });

  it("records the MCP session, request and trace context on the gateway session (sessions list --trace)", async () => {
    const c = await connect(tokens["agent"] ?? "");
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    await call(c, "query", { connection: "shop", sql: "select 42" }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const found = await until("the traced session", async () => {
      const r = await t.api(`/v1/sessions?trace=${traceId}`);
      const list = (r.body as { sessions: { protocol: string; attributes: Record<string, string> }[] }).sessions;
      return list.length > 0 ? list : undefined;
    });
    expect(found).toHaveLength(1);
    expect(found[0]?.protocol).toBe("mcp");
    expect(found[0]?.attributes).toMatchObject({ via: "mcp", "mcp.tool": "query", trace_id: traceId });
    expect(found[0]?.attributes["mcp.session"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});
