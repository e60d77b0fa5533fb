/**
 * Cost limits before execution (issue 21): `match: { cost: … }` / `match: { estimatedRows: … }`
 * are judged on the target's own EXPLAIN (FORMAT JSON) estimate, asked on a gateway-owned
 * session under the caller's search_path, before the statement runs: a runaway join is refused
 * or held; an estimate that cannot be had refuses (fail closed). A real PostgreSQL 15, the real
 * gateway, psql and node-postgres.
 */
import pg from "pg";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";
import { runClient } from "./harness/postgres.js";
import { rawSession } from "./harness/raw-pg.js";

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
    // A `$1` in a simple Query has no values at all: PostgreSQL cannot plan it, so it is refused rather than guessed.
    const p = await refusal(c.query("select * from a where id = $1"));
    expect(p.code).toBe("42501");
    expect(p.message).toContain("its parameters have no values");
    // Statements the planner does not estimate (SET) are not judged by cost rules.
    await c.query("set search_path = small, public");
    expect((await c.query("select v from a where id = 1")).rows).toEqual([{ v: "s" }]);
    await c.end();
  });
});

/** The messages of a raw session's answer: type letter and, for an error, its message field. */
function messages(buf: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i + 5 <= buf.length; ) {
    const type = String.fromCharCode(buf[i] ?? 0);
    const len = buf.readInt32BE(i + 1);
    const body = buf.subarray(i + 5, i + 1 + len);
    if (type === "E") {
      const m = body.toString("utf8").split("\0").find((f) => f.startsWith("M"));
      out.push(`E:${m?.slice(1) ?? ""}`);
    } else out.push(type);
    i += 1 + len;
  }
  return out;
}

describe("cost rules on parameterised statements (extended protocol): judged at each Bind with its values", () => {
  const JOIN = "select a.id, b.id from a, b where a.id > $1";

  it("node-postgres: the same text is allowed or refused by the estimate with each execution's values", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    // Under the limit: one row of a by its key.
    expect((await c.query("select v from a where id = $1", [7])).rows).toEqual([{ v: "a7" }]);
    // a.id > 999 leaves ~1 row of a: ~1000 rows, allowed; a.id > 0: ~1e6 rows, refused with the policy's message.
    expect((await c.query(JOIN, [999])).rows.length).toBe(1000);
    const e = await refusal(c.query(JOIN, [0]));
    expect(e.code).toBe("42501");
    expect(e.message).toContain("airlock: this query would return too many rows; add a WHERE or a LIMIT (estimated cost");
    expect(e.message).toContain("rows 1.00e+6");
    // The estimate of one value is never borrowed for another (cached by values): cheap again.
    expect((await c.query(JOIN, [999])).rows.length).toBe(1000);
    // A named prepared statement: each execution is judged with its own values.
    expect((await c.query({ name: "j", text: JOIN, values: [998] })).rows.length).toBe(2000);
    expect((await refusal(c.query({ name: "j", text: JOIN, values: [1] }))).message).toContain("too many rows");
    expect((await c.query({ name: "j", text: JOIN, values: [999] })).rows.length).toBe(1000);
    // The session stays usable after a refusal.
    expect((await c.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await c.end();
    // Audited per execution: the refusal names the rule.
    await until("the refusal's audit record", async () => {
      const r = await t.api("/v1/audit?limit=1000");
      const rows = (r.body as { records: { type: string; decision?: string; rule?: string; statement?: string; details?: Record<string, unknown> }[] }).records;
      return rows.find((x) => x.type === "db.query" && x.decision === "deny" && x.rule === "no-runaway-joins" && x.statement === JOIN && x.details?.["stage"] === "execute");
    });
  });

  it("binary-format parameters are estimated as the target reads them; malformed ones are refused clearly", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const int4 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    };
    // node-postgres sends a Buffer as a binary-format parameter.
    expect((await c.query("select v from a where id = $1", [int4(7)])).rows).toEqual([{ v: "a7" }]);
    expect((await c.query(JOIN, [int4(999)])).rows.length).toBe(1000);
    expect((await refusal(c.query(JOIN, [int4(0)]))).message).toContain("too many rows");
    // Three bytes are no int4: the planner cannot read the value, so the rule refuses (fail closed).
    const bad = await refusal(c.query(JOIN, [Buffer.from([0, 0, 1])]));
    expect(bad.code).toBe("42501");
    expect(bad.message).toContain("rule no-runaway-joins judges the planner's estimate of the statement, which could not be had (EXPLAIN with its values failed with SQLSTATE 08P01: the target could not read its parameters");
    // Five bytes are no int4 either (22P03 where the value is read).
    const extra = await refusal(c.query(JOIN, [Buffer.from([0, 0, 0, 1, 2])]));
    expect(extra.message).toContain("EXPLAIN with its values failed with SQLSTATE 22P03: the target could not read its parameters");
    expect((await c.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await c.end();
  });

  it("held for approval with its values: the approver sees them; approved, that execution runs; a cheap one is not held", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const text = "select count(*)::int as n from big where id > $1";
    // An index range over the last few rows: cheap, not held.
    expect((await c.query(text, [99_990])).rows).toEqual([{ n: 10 }]);
    const q = c.query(text, [0]);
    const req = await until("a pending request", async () => {
      const r = await t.api("/v1/approvals?status=pending");
      return (r.body as { requests: { id: string; statement?: string; message?: string; params?: (string | null)[] }[] }).requests.find((x) => x.statement === text);
    });
    expect(req.message).toContain("(estimated cost");
    expect(req.params).toEqual(["0"]);
    expect((await t.api(`/v1/approvals/${req.id}/approve`, { token: tokens["dba1"] ?? "", body: {} })).status).toBe(200);
    expect((await q).rows).toEqual([{ n: 100_000 }]);
    await c.end();
  });

  it("pipelined Binds before one Sync keep their order; a refused Bind errors in its place and the session goes on after Sync", async () => {
    const batch = (first: number, second: number): Buffer[] => [
      serialize.parse({ text: JOIN, types: [] }),
      serialize.bind({ values: [String(first)] }),
      serialize.execute({}),
      serialize.parse({ text: "select v from a where id = $1", types: [] }),
      serialize.bind({ values: [String(second)] }),
      serialize.execute({}),
      serialize.sync(),
    ];
    const out = await rawSession({
      port: t.pgPort,
      database: "shop",
      password: tokens["agent"] ?? "",
      // Refused first (the rest of the batch is skipped until Sync), then allowed first with the refusal second, then a plain query.
      bytes: Buffer.concat([...batch(0, 7), ...batch(999, 8), ...batch(999, 9).slice(3), serialize.query("select 'alive'")]),
      readyCount: 4,
    });
    const m = messages(out);
    const d = (xs: string[]): string => xs.map((x) => (x.startsWith("E:") ? "E" : x)).join("");
    const rows1000 = "D".repeat(1000);
    // 1: Parse ok, Bind refused (E), skipped to Sync.  2: the join runs (1000 rows), then the lookup.  3: the lookup alone.  4: the query.
    expect(d(m)).toBe(`1EZ12${rows1000}C12DCZ12DCZTDCZ`);
    expect(m.find((x) => x.startsWith("E:"))).toContain("too many rows");
    expect(out.toString("utf8")).toContain("a8");
    expect(out.toString("utf8")).toContain("alive");
  });

  it("psycopg 3 (server-side binding) and pgbench -M extended are judged per execution", async () => {
    const env = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(t.pgPort), PGDATABASE: "shop", PGUSER: "agent", PGPASSWORD: tokens["agent"] ?? "" };
    const script = `
import psycopg, json
with psycopg.connect("") as conn:
    cur = conn.cursor()
    cur.execute("select v from a where id = %s", [7])
    print(json.dumps({"cheap": cur.fetchall()}))
    try:
        cur.execute("select a.id, b.id from a, b where a.id > %s", [0])
        print(json.dumps({"join": "ran"}))
    except psycopg.Error as e:
        print(json.dumps({"join": e.sqlstate, "message": str(e)}))
`;
    const py = await runClient("/usr/bin/python3", ["-c", script], { env, timeoutMs: 60_000 });
    const lines = py.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({ cheap: [["a7"]] });
    expect(lines[1]?.["join"]).toBe("42501");
    expect(String(lines[1]?.["message"])).toContain("too many rows");
    const dir = await import("node:fs").then((fs) => fs.mkdtempSync("/tmp/airlock-pgbench-"));
    const fs = await import("node:fs");
    fs.writeFileSync(`${dir}/cheap.sql`, "\\set id random(1, 1000)\nselect v from a where id = :id;\n");
    fs.writeFileSync(`${dir}/join.sql`, "\\set low random(0, 10)\nselect count(*) from (select a.id, b.id from a, b where a.id > :low) j;\nselect a.id from a, b where a.id > :low;\n");
    const ok = await runClient("pgbench", ["-n", "-M", "extended", "-t", "25", "-f", `${dir}/cheap.sql`], { env, timeoutMs: 60_000 });
    expect(ok.stderr).not.toContain("ERROR");
    expect(ok.stdout).toContain("number of transactions actually processed: 25/25");
    const refused = await runClient("pgbench", ["-n", "-M", "extended", "-t", "1", "-f", `${dir}/join.sql`], { env, timeoutMs: 60_000 });
    expect(refused.stderr).toContain("too many rows");
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
