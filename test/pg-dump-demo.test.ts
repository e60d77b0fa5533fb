/**
 * pg_dump, pg_restore and `psql -f` of a dump through the gateway with the whole demo policy
 * set on (src/runtime/demo-policies.ts), session limits included: pg_dump and pg_restore send
 * `SET statement_timeout = 0`, which the gateway allows because it times a policy's
 * statementTimeout itself (src/protocols/postgres/statement-timer.ts) and cancels a statement
 * that runs past it, whatever statement_timeout the session set.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_POLICIES } from "../src/runtime/demo-policies.js";
import { runClient, startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
let token: string;
let dir: string;

/**
 * The demo's policies, session limits included (statementTimeout 30s), but without the demo's
 * `maxRows: 1000`: pg_dump's own catalog queries return more rows than that even for an empty
 * database (pg_description: ~5,000 rows, pg_depend: ~1,900), and a cut catalog result makes
 * pg_dump write objects in the wrong order and lose comments. Open: maxRows applying to reads
 * of the system catalogs (reported; not this test's subject).
 */
const DEMO_FOR_DUMP = DEMO_POLICIES.map((p) => {
  if (p.maxRows === undefined) return p;
  const { maxRows: _cut, ...rest } = p;
  return rest;
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "airlock-dump-"));
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop", "restored", "restored_fc"] });
  await server.psql(
    `create table orders (id int primary key, total int not null, note text);
     insert into orders select g, g * 10, 'n' || g from generate_series(1, 50) g;
     create table items (order_id int references orders (id), sku text, qty int);
     insert into items select g, 'sku-' || g, g % 7 from generate_series(1, 50) g;
     create view big_orders as select id, total from orders where total > 100;
     create function order_total(int) returns int language sql as 'select total from orders where id = $1';
     alter table orders owner to app; alter table items owner to app; alter view big_orders owner to app; alter function order_total(int) owner to app;`,
    { database: "shop" },
  );
  for (const db of ["restored", "restored_fc"]) await server.psql("alter schema public owner to app", { database: db });
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, user: "app", password: "app-password", sslmode: "disable" as const, groups: ["agents"] };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { ...conn, name: "shop", database: "shop" },
      { ...conn, name: "restored", database: "restored" },
      { ...conn, name: "restored_fc", database: "restored_fc" },
      { ...conn, name: "shop_short", database: "shop" },
    ],
    policies: [...DEMO_FOR_DUMP, { name: "short-statements", connections: ["shop_short"], action: "allow", statementTimeout: "1s" }],
  });
  token = await t.mint("agent", "1h");
}, 240_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ ...process.env, PGPASSWORD: token, PGOPTIONS: "" });
const gwArgs = (db: string): string[] => ["-h", "127.0.0.1", "-p", String(t.pgPort), "-U", "agent", "-d", db];
const onTarget = (sql: string, database: string): Promise<string> => server.psql(sql, { database }).then((s) => s.trim());
const CHECK = "select (select count(*) || ':' || sum(total) from orders) || '/' || (select count(*) || ':' || sum(qty) from items) || '/' || (select count(*) from big_orders) || '/' || order_total(7)";

describe("pg_dump, pg_restore and psql -f with the demo policies (statementTimeout included)", () => {
  it("the client may set statement_timeout under the demo's statementTimeout (SET and start-up options)", async () => {
    const r = await t.psql("shop", token, ["-At", "-c", "set statement_timeout = 1234", "-c", "show statement_timeout"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(["SET", "1234ms"]);
    const viaOptions = await t.psql("shop", token, ["-At", "-c", "show statement_timeout"], { env: { PGOPTIONS: "-c statement_timeout=4321" } });
    expect(viaOptions.stderr).toBe("");
    expect(viaOptions.stdout.trim()).toBe("4321ms");
  });

  it("plain dump, restored with psql -f through the gateway", async () => {
    const dump = await runClient("pg_dump", [...gwArgs("shop"), "--no-owner"], { env: env(), timeoutMs: 90_000 });
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    expect(dump.stdout).toContain("SET statement_timeout = 0;");
    expect(dump.stdout).toContain("CREATE TABLE public.orders");
    expect(dump.stdout).toContain("COPY public.orders (id, total, note) FROM stdin;");
    const file = join(dir, "shop.sql");
    writeFileSync(file, dump.stdout);
    const restore = await t.psql("restored", token, ["-q", "-f", file]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(await onTarget(CHECK, "restored")).toBe(await onTarget(CHECK, "shop"));
  }, 120_000);

  it("custom-format dump, restored with pg_restore through the gateway", async () => {
    const file = join(dir, "shop.dump");
    const dump = await runClient("pg_dump", [...gwArgs("shop"), "-Fc", "--no-owner", "-f", file], { env: env(), timeoutMs: 90_000 });
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(0);
    const restore = await runClient("pg_restore", [...gwArgs("restored_fc"), "--no-owner", "--exit-on-error", file], { env: env(), timeoutMs: 90_000 });
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(await onTarget(CHECK, "restored_fc")).toBe(await onTarget(CHECK, "shop"));
  }, 120_000);
});

describe("the gateway times a policy's statementTimeout itself", () => {
  async function client(options?: string): Promise<pg.Client> {
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop_short", user: "agent", password: token, ...(options === undefined ? {} : { options }) });
    c.on("error", () => undefined);
    await c.connect();
    return c;
  }
  async function failure(c: pg.Client, sql: string, values?: unknown[]): Promise<{ code?: string; message: string }> {
    try {
      await c.query(sql, values);
    } catch (e) {
      return e as { code?: string; message: string };
    }
    throw new Error(`not refused: ${sql}`);
  }
  const TIMEOUT = /^airlock: statement timeout \(1s\) exceeded \(rule: short-statements\); the statement was cancelled$/;

  it("cancels a statement past the limit after the client SET statement_timeout = 0 (simple and extended protocol)", async () => {
    const c = await client();
    try {
      await c.query("set statement_timeout = 0");
      expect((await c.query<{ statement_timeout: string }>("show statement_timeout")).rows[0]?.statement_timeout).toBe("0");
      const simple = await failure(c, "select pg_sleep(20)");
      expect(simple.code).toBe("57014");
      expect(simple.message).toMatch(TIMEOUT);
      // The session goes on, and the cancel did not reach the next statement.
      expect((await c.query<{ n: number }>("select 1 as n")).rows[0]?.n).toBe(1);
      const extended = await failure(c, "select pg_sleep($1::float8)", [20]);
      expect(extended.code).toBe("57014");
      expect(extended.message).toMatch(TIMEOUT);
      expect((await c.query<{ n: number }>("select $1::int as n", [2])).rows[0]?.n).toBe(2);
      // Inside a transaction block: the block is aborted, as by the target's own timeout.
      await c.query("begin");
      const inTx = await failure(c, "select pg_sleep(20)");
      expect(inTx.message).toMatch(TIMEOUT);
      expect((await failure(c, "select 1")).code).toBe("25P02");
      await c.query("rollback");
      // A statement within the limit is not touched.
      const many = await c.query("select pg_sleep(0.1); select 7 as n");
      expect((many as unknown as pg.QueryResult[])[1]?.rows[0]).toEqual({ n: 7 });
    } finally {
      await c.end().catch(() => undefined);
    }
    expect(t.logs()).toContain("statement timeout: cancelling the statement on the target");
  }, 60_000);

  it("a statement_timeout given at start-up (options) is the client's, and the limit still applies", async () => {
    const c = await client("-c statement_timeout=60000");
    try {
      expect((await c.query<{ statement_timeout: string }>("show statement_timeout")).rows[0]?.statement_timeout).toBe("1min");
      const e = await failure(c, "select pg_sleep(20)");
      expect(e.message).toMatch(TIMEOUT);
      expect((await c.query<{ n: number }>("select 3 as n")).rows[0]?.n).toBe(3);
    } finally {
      await c.end().catch(() => undefined);
    }
  }, 60_000);

  it("records the timeout with its rule", async () => {
    const c = await client();
    try {
      await c.query("set statement_timeout = 0");
      await failure(c, "select pg_sleep(20) as marker_for_recording");
    } finally {
      await c.end().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 500));
    const audit = readFileSync(`${t.dataDir}/audit/audit.log`, "utf8");
    expect(audit).toContain('"refusedBy":"short-statements"');
    const sessions = (await t.api("/v1/sessions?limit=200")).body as { sessions: { id: string }[] };
    const texts = await Promise.all(sessions.sessions.map(async (s) => (await t.api(`/v1/sessions/${s.id}`)).text));
    const recorded = texts.find((x) => x.includes("marker_for_recording"));
    expect(recorded).toContain("statement timeout (1s) exceeded (rule: short-statements)");
  }, 60_000);
});
