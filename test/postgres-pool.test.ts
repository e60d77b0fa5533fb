/**
 * Session pooling of target connections through the real gateway and a real PostgreSQL: a
 * client session that ends cleanly hands its target session to the next one, and nothing of
 * the first session's state (settings, prepared statements, temp tables, LISTEN, advisory locks,
 * role) is visible to the second.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
let token: string;

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql("create role reader; grant reader to app; create table t (id int); alter table t owner to app;", { database: "shop" });
  const base = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [{ name: "bot", groups: ["agents"] }],
    connections: [
      { ...base, name: "pooled", pool: { maxIdle: 2, idleTimeout: "30s" } },
      { ...base, name: "unpooled", pool: false },
    ],
  });
  token = await t.mint("bot");
});

afterAll(async () => {
  await t.stop();
  await server.stop();
});

async function withClient<T>(database: string, fn: (c: pg.Client) => Promise<T>, end = true): Promise<T> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database, user: "bot", password: token });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    if (end) await c.end();
  }
}

async function backendPid(c: pg.Client): Promise<number> {
  const r = await c.query<{ pid: number }>("select pg_backend_pid() as pid");
  return r.rows[0]?.pid ?? -1;
}

/** Waits until the pool has had time to reset (DISCARD ALL) the released connection. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
}

describe("session pooling", () => {
  it("reuses the target session of a cleanly ended client session, with none of its state", async () => {
    const first = await withClient("pooled", async (c) => {
      await c.query("set application_name = 'leaky'");
      await c.query("set statement_timeout = '1234ms'");
      await c.query("create temp table scratch (x int)");
      await c.query({ name: "stmt1", text: "select 1 as one" });
      await c.query("listen chan");
      await c.query("select pg_advisory_lock(42)");
      await c.query("set role reader");
      return backendPid(c);
    });
    await settle();
    await withClient("pooled", async (c) => {
      expect(await backendPid(c)).toBe(first);
      const s = await c.query<{ app: string; st: string; role: string }>(
        "select current_setting('application_name') as app, current_setting('statement_timeout') as st, current_user as role",
      );
      expect(s.rows[0]).toEqual({ app: "", st: "0", role: "app" });
      await expect(c.query("select * from scratch")).rejects.toMatchObject({ code: "42P01" });
      const prepared = await c.query<{ n: string }>("select count(*) as n from pg_prepared_statements");
      expect(prepared.rows[0]?.n).toBe("0");
      const channels = await c.query<{ n: string }>("select count(*) as n from pg_listening_channels()");
      expect(channels.rows[0]?.n).toBe("0");
      const locks = await c.query<{ n: string }>("select count(*) as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()");
      expect(locks.rows[0]?.n).toBe("0");
    });
  });

  it("does not reuse a target session left inside a transaction", async () => {
    const pid = await withClient("pooled", async (c) => {
      await c.query("begin");
      await c.query("insert into t values (1)");
      return backendPid(c);
    });
    await settle();
    await withClient("pooled", async (c) => {
      expect(await backendPid(c)).not.toBe(pid);
      // The open transaction was rolled back when its connection closed.
      const r = await c.query<{ n: string }>("select count(*) as n from t");
      expect(r.rows[0]?.n).toBe("0");
    });
  });

  it("opens a fresh target session per client session when pooling is off", async () => {
    const a = await withClient("unpooled", backendPid);
    await settle();
    const b = await withClient("unpooled", backendPid);
    expect(b).not.toBe(a);
  });

  it("keeps at most maxIdle idle connections and serves concurrent sessions with separate backends", async () => {
    const clients = await Promise.all([0, 1, 2, 3].map(() => withClient("pooled", (c) => Promise.resolve(c), false)));
    const pids = await Promise.all(clients.map(backendPid));
    expect(new Set(pids).size).toBe(4);
    await Promise.all(clients.map((c) => c.end()));
    await settle();
    const idle = await server.psql("select count(*) from pg_stat_activity where usename = 'app' and datname = 'shop'", { database: "shop" });
    expect(Number(idle.trim())).toBe(2);
  });

  it("drops an idle connection the target closed and opens a new one", async () => {
    const pid = await withClient("pooled", backendPid);
    await settle();
    await server.psql(`select pg_terminate_backend(pid) from pg_stat_activity where usename = 'app' and datname = 'shop'`, { database: "shop" });
    await settle();
    await withClient("pooled", async (c) => {
      expect(await backendPid(c)).not.toBe(pid);
      expect((await c.query("select 1 as x")).rows).toEqual([{ x: 1 }]);
    });
  });
});
