/**
 * The MCP SQL tools on a `mysql` connection against the harness MariaDB through the gateway's own
 * MySQL listener (mysql2 with the caller's token): rows masked as the engine sends them, the
 * continuation cursor, parameters, describe_schema with masked columns marked, a denied
 * statement as a `denied` envelope naming the rule, and the target's password never in a result.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startMariaDb, type MariaDbServer } from "./harness/mariadb.js";

let db: MariaDbServer;
let t: TestGateway;
let c: Client;
let boss: string;

type S = Record<string, unknown>;
async function call(name: string, args: S): Promise<{ isError?: boolean; s: S; raw: string }> {
  const r = await c.callTool({ name, arguments: args });
  return { ...(r.isError === true ? { isError: true } : {}), s: (r.structuredContent ?? {}) as S, raw: JSON.stringify(r) };
}

beforeAll(async () => {
  db = await startMariaDb();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "boss", groups: ["approvers"] },
    ],
    connections: [{ name: "shop", type: "mysql", host: "127.0.0.1", port: db.port, database: "shop", user: "airlock_native", password: db.password, sslmode: "disable", groups: ["agents"] }],
    policies: [
      { name: "no-drop", connections: ["shop"], match: { operations: ["drop", "truncate"] }, action: "deny", message: "DROP and TRUNCATE are not allowed here" },
      { name: "pii", connections: ["shop"], action: "mask", columns: ["customers.card_number"], detectors: ["email"] },
      // Wait mode (the default): the statement waits in its session; MySQL has no notice to say so.
      { name: "deletes-wait", connections: ["shop"], match: { operations: ["delete"] }, action: "require_approval", approvers: ["approvers"] },
    ],
  });
  const token = await t.mint("agent", "1h");
  boss = await t.mint("boss", "1h");
  c = new Client({ name: "mcp-mysql-test", version: "1" });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${t.apiUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
}, 180_000);

afterAll(async () => {
  await c.close().catch(() => undefined);
  await t.stop();
  await db.stop();
});

describe("query tool on a MySQL connection", () => {
  it("is listed, and list_connections names the SQL tools", async () => {
    const names = (await c.listTools()).tools.map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(["query", "explain", "describe_schema"]));
    const l = await call("list_connections", {});
    expect(l.s).toMatchObject({ connections: [{ name: "shop", type: "mysql", tools: ["query", "explain", "describe_schema"] }] });
  });

  it("returns rows masked by the engine, with column names and types", async () => {
    const r = await call("query", { connection: "shop", sql: "SELECT id, name, email, card_number FROM customers WHERE id = ?", params: [1] });
    expect(r.isError).toBeUndefined();
    expect(r.s).toMatchObject({ status: "completed", connection: "shop", command: "SELECT", rowCount: 1, hasMore: false });
    expect((r.s["columns"] as { name: string }[]).map((x) => x.name)).toEqual(["id", "name", "email", "card_number"]);
    expect((r.s["columns"] as { type: string }[])[1]?.type).toBe("var_string");
    const row = (r.s["rows"] as string[][])[0] ?? [];
    expect(row.slice(0, 3)).toEqual(["1", "Ada", "[EMAIL]"]);
    expect(row[3]).not.toContain("4111");
    expect(r.raw).not.toContain("ada@example.com");
    expect(r.raw).not.toContain(db.password);
  });

  it("pages a large result with the continuation cursor", async () => {
    const first = await call("query", { connection: "shop", sql: "SELECT n FROM numbers ORDER BY n", maxRows: 200 });
    expect(first.s).toMatchObject({ status: "completed", hasMore: true });
    expect((first.s["rows"] as string[][]).length).toBe(200);
    const cursor = String(first.s["cursor"]);
    const second = await call("query", { cursor });
    expect((second.s["rows"] as string[][])[0]).toEqual(["201"]);
    const third = await call("query", { cursor });
    expect((third.s["rows"] as string[][]).length).toBe(100);
    expect(third.s).toMatchObject({ hasMore: false });
    expect(third.s["cursor"]).toBeUndefined();
  });

  it("a denied statement is a denied envelope naming the rule; the table stays", async () => {
    const r = await call("query", { connection: "shop", sql: "DROP TABLE orders" });
    expect(r.isError).toBe(true);
    expect(r.s).toMatchObject({ status: "denied", code: "GW_POLICY_DENIED", rule: "no-drop" });
    const n = await call("query", { connection: "shop", sql: "SELECT count(*) FROM orders" });
    expect(n.s["rows"]).toEqual([["3"]]);
  });

  it("a target error is failed with MySQL code", async () => {
    const r = await call("query", { connection: "shop", sql: "SELECT nope FROM customers" });
    expect(r.s).toMatchObject({ status: "failed" });
    expect(String(r.s["code"])).toMatch(/^MYSQL_1054/);
  });

  it("a write reports the affected rows", async () => {
    const u = await call("query", { connection: "shop", sql: "INSERT INTO orders (customer_id, total) VALUES (1, 2)" });
    expect(u.s).toMatchObject({ status: "completed", command: "INSERT", rowCount: 1 });
  });

  it("describe_schema marks the masked column; explain returns a plan", async () => {
    const d = await call("describe_schema", { connection: "shop", schema: "shop" });
    expect(d.s["status"]).toBe("completed");
    const customers = (d.s["tables"] as { table: string; columns: { name: string; masked?: boolean }[] }[]).find((x) => x.table === "customers");
    expect(customers?.columns.find((x) => x.name === "card_number")).toMatchObject({ masked: true });
    expect(customers?.columns.find((x) => x.name === "name")?.masked).toBeUndefined();
    const e = await call("explain", { connection: "shop", sql: "SELECT * FROM customers WHERE id = 1" });
    expect(e.s["status"]).toBe("completed");
  });

  it("a held DELETE (wait mode) is pending_approval at once; approved, wait_approval returns the statement's own result", async () => {
    await call("query", { connection: "shop", sql: "INSERT INTO orders (customer_id, total) VALUES (2, 77)" });
    const started = Date.now();
    const held = await call("query", { connection: "shop", sql: "DELETE FROM orders WHERE total = 77" });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(held.isError).toBe(true);
    expect(held.s).toMatchObject({ status: "pending_approval", connection: "shop", rule: "deletes-wait", approvers: ["approvers"], wait: { tool: "wait_approval" } });
    const id = String(held.s["approvalId"]);
    // Still waiting: nothing deleted, and wait_approval says so within its bound.
    const early = await call("wait_approval", { id, timeoutSeconds: 1 });
    expect(early.s).toMatchObject({ status: "pending_approval", approvalId: id });
    expect((await call("query", { connection: "shop", sql: "SELECT count(*) FROM orders WHERE total = 77" })).s["rows"]).toEqual([["1"]]);
    expect((await t.api(`/v1/approvals/${id}/approve`, { token: boss, body: {} })).status).toBe(200);
    const done = await call("wait_approval", { id, timeoutSeconds: 30 });
    expect(done.s).toMatchObject({ status: "completed", connection: "shop", command: "DELETE", rowCount: 1 });
    expect((await call("query", { connection: "shop", sql: "SELECT count(*) FROM orders WHERE total = 77" })).s["rows"]).toEqual([["0"]]);
  });
});
