/**
 * Guardrails that cover what PostgreSQL really does (issue 12), end to end: a real PostgreSQL
 * 15, the gateway with the demo's deny policies (src/runtime/demo-policies.ts), and real
 * clients (psql, pg_dump, node-postgres). Each refusal is checked on the target too: the data
 * the statement would have destroyed is still there.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_POLICIES } from "../src/runtime/demo-policies.js";
import { runClient, startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
let token: string;

/** The demo's guard policies without its session limits (pg_dump with them all on:
 * test/pg-dump-demo.test.ts). */
const DEMO_GUARDS = DEMO_POLICIES.filter((p) => p.statementTimeout === undefined && p.readOnly === undefined);

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop", "restored"] });
  await server.psql(
    `create table orders (id int primary key, total int not null, note text);
     insert into orders select g, g * 10, 'n' || g from generate_series(1, 20) g;
     create table staging (id int primary key, total int);
     insert into staging select g, 0 from generate_series(1, 20) g;
     create view big_orders as select id, total from orders where total > 100;
     alter table orders owner to app; alter table staging owner to app; alter view big_orders owner to app;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, user: "app", password: "app-password", sslmode: "disable" as const, groups: ["agents"] };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { ...conn, name: "shop", database: "shop" },
      { ...conn, name: "restored", database: "restored" },
    ],
    policies: [...DEMO_GUARDS],
  });
  token = await t.mint("agent", "1h");
}, 120_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function refusal(c: pg.Client, sql: string): Promise<{ code?: string; message: string }> {
  try {
    await c.query(sql);
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error(`not refused: ${sql}`);
}

/** Each statement is refused with 42501 by `rule`. */
async function expectRefusedBy(c: pg.Client, rule: string, statements: readonly string[]): Promise<void> {
  for (const sql of statements) {
    const e = await refusal(c, sql);
    expect(e.code, sql).toBe("42501");
    expect(e.message, sql).toContain(`rule: ${rule}`);
  }
}

const target = (sql: string): Promise<string> => server.psql(sql, { database: "shop" }).then((s) => s.trim());

describe("an upsert's update arm reaches what its source returns", () => {
  it("refuses INSERT … SELECT … ON CONFLICT DO UPDATE over a whole table, and the rows are intact", async () => {
    const before = await target("select sum(total) from orders");
    await withClient(async (c) => {
      await expectRefusedBy(c, "no-bulk-writes", [
        "insert into orders select id, 0 from staging on conflict (id) do update set total = excluded.total",
        "insert into orders (id, total) select id, 0 from orders on conflict (id) do update set total = 0",
        "with s as (select * from staging) insert into orders (id, total) select * from s on conflict (id) do update set total = 0",
        "merge into orders o using staging s on o.id = s.id when matched then update set total = 0",
      ]);
      // A bounded upsert is an ordinary write.
      await c.query("insert into orders (id, total) values (1, 11) on conflict (id) do update set total = excluded.total");
      await c.query("insert into orders (id, total) select id, 22 from staging where staging.id = 2 on conflict (id) do update set total = excluded.total");
    });
    expect(await target("select sum(total) from orders")).toBe(String(Number(before) + 1 + 2)); // rows 1 and 2 only
  });
});

describe("destructive ALTER sub-commands are drops", () => {
  it("refuses DROP COLUMN, ALTER COLUMN TYPE … USING and DROP CONSTRAINT under operations: [drop]", async () => {
    await withClient(async (c) => {
      await expectRefusedBy(c, "no-destructive-ddl", [
        "alter table orders drop column note",
        "alter table orders add column x int, drop column note",
        "alter table orders alter column total type int using 0",
        "alter table orders alter column note type varchar(1) using left(note, 1)",
        "alter table orders drop constraint orders_pkey",
      ]);
      await c.query("alter table staging add column extra int");
    });
    expect(await target("select count(*) from orders where note like 'n%' and total > 0")).toBe("20");
    expect(await target("select count(*) from pg_constraint where conname = 'orders_pkey'")).toBe("1");
  });
});

describe("dangerous functions by what they are", () => {
  it("refuses aliases and equivalents of the functions the demo policy names", async () => {
    expect(await target("select count(*) from pg_proc where proname = 'pg_read_file_old'")).toBe("1");
    await withClient(async (c) => {
      await expectRefusedBy(c, "no-server-files", [
        "select pg_read_file_old('postgresql.conf', 0, 100)",
        'select "pg_catalog"."pg_read_file_old"(\'postgresql.conf\', 0, 100)',
        "select * from pg_ls_waldir()",
        "select * from pg_catalog.pg_ls_logdir()",
        "select pg_stat_file('postgresql.conf')",
      ]);
    });
    // psql too, with the error in its own words.
    const r = await t.psql("shop", token, ["-c", "select pg_read_file_old('postgresql.conf', 0, 100)"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("rule: no-server-files");
  });
});

describe("pg_dump and psql -f of a dump", () => {
  it("dump through the gateway with the deny policies on, and restore it through the gateway", async () => {
    const env = { ...process.env, PGPASSWORD: token };
    const dump = await runClient("pg_dump", ["-h", "127.0.0.1", "-p", String(t.pgPort), "-U", "agent", "-d", "shop", "--no-owner"], { env, timeoutMs: 60_000 });
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    expect(dump.stdout).toContain("CREATE TABLE public.orders");
    expect(dump.stdout).toContain("CREATE VIEW public.big_orders");
    expect(dump.stdout).toContain("COPY public.orders (id, total, note) FROM stdin;");
    expect(dump.stdout).toContain("\n1\t11\tn1\n");
    const restore = await t.psql("restored", token, ["-q", "-f", "-"], { input: dump.stdout });
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect((await server.psql("select count(*), sum(total) from orders", { database: "restored" })).trim()).toBe(
      await target("select count(*), sum(total) from orders"),
    );
  }, 90_000);
});
