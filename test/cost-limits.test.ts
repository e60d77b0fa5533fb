/**
 * Cost limits before execution (issue 21): `match: { cost: … }` / `match: { estimatedRows: … }`
 * are judged on the target's own EXPLAIN (FORMAT JSON) estimate, asked on a gateway-owned
 * session under the caller's search_path, before the statement runs: a runaway join is refused
 * or held; an estimate that cannot be had refuses (fail closed). A real PostgreSQL 15, the real
 * gateway, psql and node-postgres.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

let server: PgServer;
let t: TestGateway;
const tokens: Record<string, string> = {};

function client(token: string): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
  c.on("error", () => undefined);
  c.on("notice", () => undefined);
  return c;
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error("expected a refusal");
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table a (id int primary key, v text); insert into a select g, 'a' || g from generate_series(1, 1000) g;
     create table b (id int primary key, v text); insert into b select g, 'b' || g from generate_series(1, 1000) g;
     create table big (id int primary key, v text); insert into big select g, 'x' from generate_series(1, 100000) g;
     create schema small; create table small.a (id int primary key, v text); create table small.b (id int primary key, v text);
     insert into small.a values (1, 's'); insert into small.b values (1, 's');
     analyze a; analyze b; analyze big; analyze small.a; analyze small.b;
     alter table a owner to app; alter table b owner to app; alter table big owner to app;
     alter schema small owner to app; alter table small.a owner to app; alter table small.b owner to app;`,
    { database: "shop" },
  );
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
    ],
    connections: [
      { name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [
      { name: "no-runaway-joins", match: { estimatedRows: { gt: 1e5 } }, action: "deny", message: "this query would return too many rows; add a WHERE or a LIMIT" },
      { name: "costly-big", match: { relations: ["big"], cost: { gt: 1000 } }, action: "require_approval", approvers: ["dba"] },
    ],
  });
  for (const sa of ["agent", "dba1"]) tokens[sa] = await t.mint(sa, "1h");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("cost limits before execution", () => {
  it("psql: a runaway cross join is refused by its estimate before it runs; a cheap query runs", async () => {
    const r = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "select count(*) from a, b"]);
    // estimatedRows is what the statement returns: an aggregate over the join returns one row (a cost rule judges its work).
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("1000000");
    const join = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "select * from a, b"]);
    expect(join.code).not.toBe(0);
    expect(join.stderr).toContain("airlock: this query would return too many rows; add a WHERE or a LIMIT (estimated cost");
    expect(join.stderr).toContain("rows 1.00e+6");
    const cheap = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "select v from a where id = 7"]);
    expect(cheap.code).toBe(0);
    expect(cheap.stdout.trim()).toBe("a7");
  });

  it("the estimate is asked under the caller's search_path: the same text on small tables runs", async () => {
    const r = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "set search_path = small", "-c", "select * from a, b"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("SET\n1|s|1|s");
  });

  it("a write is judged on the rows it would touch", async () => {
    const r = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "update a set v = v || '' from b where true"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("rule: no-runaway-joins");
    expect((await server.psql("select count(*) from a where v like 'a%'", { database: "shop" })).trim()).toBe("1000");
  });

  it("node-postgres: a costly statement on big is held for approval; approved, it runs; an index lookup is not held", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const cheap = await c.query("select v from big where id = 5");
    expect(cheap.rows).toEqual([{ v: "x" }]);
    const q = c.query("select count(*)::int as n from big");
    const req = await until("a pending request", async () => {
      const r = await t.api("/v1/approvals?status=pending");
      return (r.body as { requests: { id: string; statement?: string; message?: string }[] }).requests.find((x) => x.statement?.includes("from big") === true);
    });
    expect(req.message).toContain("(estimated cost");
    expect((await t.api(`/v1/approvals/${req.id}/approve`, { token: tokens["dba1"] ?? "", body: {} })).status).toBe(200);
    expect((await q).rows).toEqual([{ n: 100000 }]);
    await c.end();
  });

  it("fail closed: a statement whose estimate cannot be had is refused under a cost rule", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const e = await refusal(c.query("select * from missing_table"));
    expect(e.code).toBe("42501");
    expect(e.message).toContain("rule no-runaway-joins judges the planner's estimate of the statement, which could not be had (EXPLAIN failed with SQLSTATE 42P01)");
    // Parameters without values (a Parse): PostgreSQL 15 cannot plan it, so it is refused rather than guessed.
    const p = await refusal(c.query("select * from a where id = $1", [1]));
    expect(p.code).toBe("42501");
    expect(p.message).toContain("its parameters have no values yet");
    // Statements the planner does not estimate (SET) are not judged by cost rules.
    await c.query("set search_path = small, public");
    expect((await c.query("select v from a where id = 1")).rows).toEqual([{ v: "s" }]);
    await c.end();
  });
});
