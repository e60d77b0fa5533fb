/**
 * Dynamic per-connection credentials from Vault's database secrets engine (issue 20): a
 * PostgreSQL connection with `dynamicCredentials: vault-db:database/orders-ro`. The Vault fake
 * (test/harness/vault.ts) really creates the user on the harness PostgreSQL (CREATE ROLE … LOGIN
 * PASSWORD … VALID UNTIL …) and drops it on revoke. psql through the gateway logs in as that
 * user; the lease is renewed while the session lives and revoked when it ends (the role is gone
 * from pg_roles); the generated password never reaches the client, the logs, the recordings,
 * the store or the API.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { SUPERUSER, SUPERUSER_PASSWORD, startPostgres, type PgServer } from "./harness/postgres.js";
import { until } from "./harness/until.js";
import { startFakeVault, type FakeVault } from "./harness/vault.js";

let server: PgServer;
let vault: FakeVault;
let t: TestGateway;
let token: string;

const roleExists = async (name: string): Promise<boolean> => (await server.psql(`select count(*) from pg_roles where rolname = '${name}'`)).trim() === "1";

beforeAll(async () => {
  server = await startPostgres({});
  await server.psql("CREATE TABLE orders (id int primary key, total int); INSERT INTO orders VALUES (1, 10), (2, 20)");
  vault = await startFakeVault();
  vault.databaseRole("database", "orders-ro", {
    connection: { host: server.host, port: server.port, user: SUPERUSER, password: SUPERUSER_PASSWORD, database: "postgres" },
    creationStatements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}"`],
    defaultTtl: 2,
  });
  process.env["TEST_VAULT_DB_SECRET_ID"] = vault.secretId;
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    secrets: { vault: { address: vault.address, auth: { approle: { roleId: vault.roleId, secretId: "env:TEST_VAULT_DB_SECRET_ID" } } } },
    connections: [
      { name: "orders", type: "postgres", host: server.host, port: server.port, database: "postgres", user: "dynamic", dynamicCredentials: "vault-db:database/orders-ro", groups: ["agents"], pool: false },
      { name: "no-role", type: "postgres", host: server.host, port: server.port, database: "postgres", user: "dynamic", dynamicCredentials: "vault-db:database/nothing", groups: ["agents"], pool: false },
    ],
  });
  token = await t.mint("agent");
}, 120_000);

afterAll(async () => {
  await t.stop();
  await vault.close();
  await server.stop();
  delete process.env["TEST_VAULT_DB_SECRET_ID"];
});

describe("vault database secrets engine: dynamic credentials", () => {
  it("psql logs in as a user Vault created for this session, and the user is dropped when it ends", async () => {
    const r = await t.psql("orders", token, ["-At", "-c", "select current_user, (select sum(total) from orders)"]);
    expect(r.stderr).toBe("");
    const [user, sum] = r.stdout.trim().split("|");
    expect(user).toMatch(/^v-approle-orders-ro-[0-9a-f]{20}-\d+$/);
    expect(sum).toBe("30");
    expect(vault.leases.map((l) => l.username)).toContain(user);
    expect(vault.requests).toContain("GET /v1/database/creds/orders-ro");
    // The session ended: the gateway revokes the lease and Vault drops the user.
    await until("the lease to be revoked", () => (vault.leases.find((l) => l.username === user)?.revoked === true ? true : undefined), 10_000);
    expect(vault.requests).toContain("PUT /v1/sys/leases/revoke");
    expect(await roleExists(user ?? "")).toBe(false);
  }, 60_000);

  it("two sessions get two users; a live session's lease is renewed, then revoked when it ends", async () => {
    const a = new pg.Client({ host: "127.0.0.1", port: t.pgPort, user: "agent", password: token, database: "orders" });
    const b = new pg.Client({ host: "127.0.0.1", port: t.pgPort, user: "agent", password: token, database: "orders" });
    await a.connect();
    await b.connect();
    const ua = (await a.query<{ u: string }>("select current_user as u")).rows[0]?.u ?? "";
    const ub = (await b.query<{ u: string }>("select current_user as u")).rows[0]?.u ?? "";
    expect(ua).not.toBe(ub);
    expect(await roleExists(ua)).toBe(true);
    // The lease is 2 s: renewed at half of it while the session lives.
    await until("the live lease to be renewed twice", () => ((vault.leases.find((l) => l.username === ua)?.renewals ?? 0) >= 2 ? true : undefined), 15_000);
    expect((await a.query("select count(*)::int as n from orders")).rows).toEqual([{ n: 2 }]);
    await a.end();
    await until("a's user to be dropped", async () => ((await roleExists(ua)) ? undefined : true), 10_000);
    // b is untouched by a's end.
    expect(await roleExists(ub)).toBe(true);
    expect((await b.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await b.end();
    await until("b's user to be dropped", async () => ((await roleExists(ub)) ? undefined : true), 10_000);
    const renewalsAfterEnd = vault.leases.find((l) => l.username === ua)?.renewals ?? 0;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(vault.leases.find((l) => l.username === ua)?.renewals).toBe(renewalsAfterEnd); // no renewal after release
  }, 60_000);

  it("a role Vault does not have is a clear error in psql, naming the reference", async () => {
    const r = await t.psql("no-role", token, ["-At", "-c", "select 1"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/airlock: /);
    expect(t.logs()).toContain("vault-db:database/nothing");
  }, 60_000);

  it("no generated password reaches the client, the logs, the recordings, the store or the API", async () => {
    const r = await t.psql("orders", token, ["-At", "-c", "select current_user"]);
    expect(r.code).toBe(0);
    expect(vault.leases.length).toBeGreaterThanOrEqual(4);
    const sessions = await t.api("/v1/sessions?limit=100");
    expect(sessions.status).toBe(200);
    expect(sessions.text).toContain("orders");
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir)) {
        const p = join(dir, e);
        if ((await stat(p)).isDirectory()) await walk(p);
        else files.push(p);
      }
    };
    await walk(t.dataDir);
    const contents = await Promise.all(files.map((f) => readFile(f)));
    for (const l of vault.leases) {
      expect(r.stdout + r.stderr).not.toContain(l.password);
      expect(t.logs()).not.toContain(l.password);
      expect(sessions.text).not.toContain(l.password);
      for (const [i, c] of contents.entries()) expect(c.includes(l.password), files[i]).toBe(false);
    }
  }, 60_000);

  it("a gateway shutdown revokes the lease of a session still open", async () => {
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, user: "agent", password: token, database: "orders" });
    c.on("error", () => undefined); // the gateway ends the session
    await c.connect();
    const user = (await c.query<{ u: string }>("select current_user as u")).rows[0]?.u ?? "";
    expect(await roleExists(user)).toBe(true);
    await t.stop();
    expect(vault.leases.find((l) => l.username === user)?.revoked).toBe(true);
    expect(await roleExists(user)).toBe(false);
    await c.end().catch(() => undefined);
  }, 60_000);
});
