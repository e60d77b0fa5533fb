import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPostgres, type PgServer } from "./postgres.js";

describe("test harness: throwaway PostgreSQL", () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres({
      users: [
        { name: "scram_user", password: "s3cret-scram", auth: "scram-sha-256" },
        { name: "md5_user", password: "s3cret-md5", auth: "md5" },
        { name: "clear_user", password: "s3cret-clear", auth: "password" },
      ],
      databases: ["app"],
      ssl: true,
    });
  });
  afterAll(async () => server.stop());

  it("authenticates each user with its own method", async () => {
    for (const [user, password] of [
      ["scram_user", "s3cret-scram"],
      ["md5_user", "s3cret-md5"],
      ["clear_user", "s3cret-clear"],
    ] as const) {
      const c = new pg.Client({ connectionString: server.url({ user, password, database: "app" }) });
      await c.connect();
      const r = await c.query<{ u: string }>("select current_user as u");
      expect(r.rows[0]?.u).toBe(user);
      await c.end();
    }
    const stored = await server.psql("select rolname || ':' || left(rolpassword, 5) from pg_authid where rolname = 'md5_user'");
    expect(stored.trim().startsWith("md5_user:md5")).toBe(true);
  });

  it("refuses a wrong password", async () => {
    const c = new pg.Client({ connectionString: server.url({ user: "scram_user", password: "wrong", database: "app" }) });
    await expect(c.connect()).rejects.toThrow(/password authentication failed/);
  });

  it("serves TLS with the returned CA", async () => {
    const c = new pg.Client({
      host: server.host,
      port: server.port,
      user: "scram_user",
      password: "s3cret-scram",
      database: "app",
      ssl: { ca: server.caCert ?? "", servername: "localhost" },
    });
    await c.connect();
    const r = await c.query<{ ssl: boolean }>("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
    expect(r.rows[0]?.ssl).toBe(true);
    await c.end();
  });
});
