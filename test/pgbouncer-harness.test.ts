import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startPgBouncer, type PgBouncerServer } from "./harness/pgbouncer.js";

// Quotes, a space and a backslash exercise the userlist and connect-string quoting.
const UPSTREAM_PASSWORD = `up's "pw" \\ x`;
const CLIENT_PASSWORD = `cl'i "ent" pw`;

describe("test harness: PgBouncer in front of a throwaway PostgreSQL", () => {
  let server: PgServer;
  let session: PgBouncerServer;
  let transaction: PgBouncerServer;

  beforeAll(async () => {
    server = await startPostgres({
      users: [{ name: "app", password: UPSTREAM_PASSWORD, auth: "scram-sha-256" }],
      databases: ["appdb"],
    });
    const common = {
      upstream: { host: server.host, port: server.port },
      databases: { pooled: { dbname: "appdb", user: "app", password: UPSTREAM_PASSWORD } },
      authUsers: [{ name: "agent", password: CLIENT_PASSWORD }],
    };
    [session, transaction] = await Promise.all([
      startPgBouncer({ ...common, poolMode: "session" }),
      startPgBouncer({ ...common, poolMode: "transaction", authType: "md5" }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([session.stop(), transaction.stop()]);
    await server.stop();
  });

  const client = (b: PgBouncerServer, password = CLIENT_PASSWORD): pg.Client =>
    new pg.Client({ host: b.host, port: b.port, user: "agent", password, database: "pooled" });

  it("reaches the upstream database as the forced upstream user", async () => {
    expect(session.port).not.toBe(server.port);
    expect(session.version).toMatch(/^PgBouncer \d+\.\d+/);
    const c = client(session);
    await c.connect();
    const r = await c.query<{ db: string; u: string; one: number }>("select current_database() as db, current_user as u, 1 as one");
    expect(r.rows[0]).toEqual({ db: "appdb", u: "app", one: 1 });
    // Session mode keeps one server connection per client: session state survives.
    await c.query("set application_name = 'harness-check'");
    const s = await c.query<{ a: string }>("select current_setting('application_name') as a");
    expect(s.rows[0]?.a).toBe("harness-check");
    await c.end();
  });

  it("refuses a wrong client password", async () => {
    const c = client(session, "wrong");
    await expect(c.connect()).rejects.toThrow(/password authentication failed|SASL authentication failed/);
  });

  it("runs in transaction mode with md5 client auth", async () => {
    const c = client(transaction);
    await c.connect();
    const r = await c.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where usename = 'app'");
    expect(r.rows[0]?.n).toBeGreaterThanOrEqual(1);
    await c.end();
  });

  it("stop() ends PgBouncer: the port no longer accepts logins", async () => {
    const extra = await startPgBouncer({
      upstream: { host: server.host, port: server.port },
      databases: { pooled: { dbname: "appdb", user: "app", password: UPSTREAM_PASSWORD } },
      authUsers: [{ name: "agent", password: CLIENT_PASSWORD }],
    });
    const c = client(extra);
    await c.connect();
    await c.end();
    await extra.stop();
    expect(() => process.kill(extra.pid, 0)).toThrow();
    await expect(client(extra).connect()).rejects.toThrow(/ECONNREFUSED/);
  });
});
