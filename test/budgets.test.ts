/**
 * Budgets per principal and connection against a real PostgreSQL through the gateway, with
 * node-postgres and psql: a result cut mid-stream when the rows budget is spent (the client gets
 * the rows so far, then SQLSTATE 54000 naming the budget), a NOTICE as a budget nears its end,
 * the next statement refused once spent, a statements budget, counters in the API and metrics,
 * and separate counters per principal.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
const open: pg.Client[] = [];

async function client(token: string, database: string): Promise<{ c: pg.Client; notices: string[] }> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database, user: "agent", password: token });
  c.on("error", () => undefined);
  const notices: string[] = [];
  c.on("notice", (n) => notices.push(n.message ?? ""));
  await c.connect();
  open.push(c);
  return { c, notices };
}

async function failure(c: pg.Client, sql: string): Promise<pg.DatabaseError> {
  try {
    await c.query(sql);
  } catch (e) {
    if (e instanceof pg.DatabaseError) return e;
    throw e;
  }
  throw new Error(`expected ${sql} to fail`);
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table items (id int primary key, label text);
     insert into items select g, 'item ' || g from generate_series(1, 500) g;
     alter table items owner to app;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "agent2", groups: ["agents"] },
    ],
    connections: [
      { ...conn, name: "shop", groups: ["agents"] },
      { ...conn, name: "shop-stmts", groups: ["agents"] },
    ],
    budgets: [
      { name: "agent-rows", connections: ["shop"], groups: ["agents"], window: "1h", rows: 100, warnAt: 0.8 },
      { name: "agent-statements", connections: ["shop-stmts"], groups: ["agents"], window: "1h", statements: 3 },
    ],
  });
}, 300_000);

afterAll(async () => {
  for (const c of open) await c.end().catch(() => undefined);
  await t.stop();
  await server.stop();
});

describe("rows budget", () => {
  let token: string;
  beforeAll(async () => {
    token = await t.mint("agent");
  });

  it("passes results within the budget and warns once at 80%", async () => {
    const { c, notices } = await client(token, "shop");
    const r = await c.query("select id from items order by id limit 50");
    expect(r.rows).toHaveLength(50);
    expect(notices).toEqual([]);
    const r2 = await c.query("select id from items order by id limit 35");
    expect(r2.rows).toHaveLength(35);
    expect(notices.some((n) => n.includes("budget agent-rows") && n.includes("of 100 rows used"))).toBe(true);
  });

  it("cuts a result mid-stream: the rows so far, then 54000 naming the budget", async () => {
    const { c, notices } = await client(token, "shop");
    // 85 used: 15 fit. node-postgres drops the rows of a failed query; the notice says how many were sent, and psql below shows them.
    const e = await failure(c, "select id from items order by id");
    expect(e.code).toBe("54000");
    expect(e.message).toMatch(/^airlock: .*budget agent-rows is spent: 100 rows per 1h/);
    expect(notices.some((n) => n.includes("cut after 15 rows"))).toBe(true);
    // Spent: the next statement is refused before it runs.
    const e2 = await failure(c, "select 1");
    expect(e2.code).toBe("54000");
    expect(e2.message).toContain("budget agent-rows is spent");
  });

  it("psql shows the rows it received before the budget error", async () => {
    const other = await t.mint("agent2");
    const r = await t.psql("shop", other, ["-At", "-c", "select id from items where id <= 99 order by id", "-c", "select id from items order by id"]);
    expect(r.code).not.toBe(0);
    // 99 of the first statement; the second is cut after 1 row (psql prints nothing of a failed query's rows in -c mode, but the error names the budget).
    expect(r.stdout.split("\n").filter((l) => /^\d+$/.test(l))).toHaveLength(99);
    expect(r.stderr).toContain("budget agent-rows is spent");
  });

  it("airlock budgets prints the counters", async () => {
    const { runCli } = await import("../src/cli/cli.js");
    const { Writable } = await import("node:stream");
    let out = "";
    const stdout = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) });
    const code = await runCli(["budgets"], { stdout, stderr: stdout, env: { AIRLOCK_API: t.apiUrl, AIRLOCK_TOKEN: t.gw.adminToken }, cwd: t.dataDir });
    expect(code).toBe(0);
    expect(out).toMatch(/agent-rows {2}sa:agent {2}shop {2}rows 100\/100/);
  });

  it("the API and metrics show the counters, per principal", async () => {
    const res = await t.api("/v1/budgets");
    expect(res.status).toBe(200);
    const list = (res.body as { budgets: { budget: string; subject: string; used: { rows: number }; limits: { rows: number } }[] }).budgets;
    const rows = list.filter((b) => b.budget === "agent-rows");
    expect(rows.map((b) => b.subject).sort()).toEqual(["sa:agent", "sa:agent2"]);
    expect(rows.find((b) => b.subject === "sa:agent")?.used.rows).toBe(100);
    expect(rows.find((b) => b.subject === "sa:agent")?.limits.rows).toBe(100);
    const metrics = await fetch(`${t.apiUrl}/metrics`, { headers: { authorization: `Bearer ${t.gw.adminToken}` } }).then((r) => r.text());
    expect(metrics).toMatch(/airlock_budget_consumed_total\{budget="agent-rows",kind="rows"\} 200/);
    expect(metrics).toMatch(/airlock_budget_exhausted_total\{budget="agent-rows",kind="rows"\} [1-9]/);
  });
});

describe("statements budget", () => {
  it("refuses the statement after the limit with 54000, and the session stays usable for nothing else", async () => {
    const token = await t.mint("agent");
    const { c } = await client(token, "shop-stmts");
    for (let i = 0; i < 3; i++) expect((await c.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    const e = await failure(c, "select 1");
    expect(e.code).toBe("54000");
    expect(e.message).toContain("budget agent-statements is spent: 3 statements per 1h");
    // The budget is per principal, not per session: a new session of the same principal is refused too.
    const { c: c2 } = await client(token, "shop-stmts");
    expect((await failure(c2, "select 1")).code).toBe("54000");
  });
});
