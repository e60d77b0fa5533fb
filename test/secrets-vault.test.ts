/**
 * Secrets from Vault (issue 20): a PostgreSQL connection whose password is a `vault:` reference,
 * read with an AppRole login from a Vault API fake (test/harness/vault.ts), used by a real
 * PostgreSQL through the gateway with the real psql. A rotated secret is used by the next
 * target login while a live session continues; a revoked login token is replaced by a fresh
 * login; a missing secret is a clear error in psql; neither the Vault token, the AppRole
 * secret nor the password reaches the client or the gateway's logs.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { until } from "./harness/until.js";
import { startFakeVault, type FakeVault } from "./harness/vault.js";

const FIRST = "vault-first-pw-7c1e9a";
const ROTATED = "vault-rotated-pw-4d2b8f";

let server: PgServer;
let vault: FakeVault;
let t: TestGateway;
let token: string;

function client(connection = "orders"): pg.Client {
  return new pg.Client({ host: "127.0.0.1", port: t.pgPort, user: "agent", password: token, database: connection });
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: FIRST, auth: "scram-sha-256" }] });
  vault = await startFakeVault({ namespace: "team-a" });
  vault.set("secret", "orders/db", { username: "app", password: FIRST });
  process.env["TEST_VAULT_SECRET_ID"] = vault.secretId;
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    secrets: {
      refreshInterval: "1s",
      vault: { address: vault.address, namespace: "team-a", auth: { approle: { roleId: vault.roleId, secretId: "env:TEST_VAULT_SECRET_ID" } } },
    },
    connections: [
      { name: "orders", type: "postgres", host: server.host, port: server.port, database: "postgres", user: "app", password: "vault:secret/orders/db#password", groups: ["agents"], pool: false },
      { name: "missing", type: "postgres", host: server.host, port: server.port, database: "postgres", user: "app", password: "vault:secret/nothing/here#password", groups: ["agents"], pool: false },
    ],
  });
  token = await t.mint("agent");
}, 120_000);

afterAll(async () => {
  await t.stop();
  await vault.close();
  await server.stop();
  delete process.env["TEST_VAULT_SECRET_ID"];
});

describe("vault: secret references", () => {
  it("logs in to the target with the password read from Vault (AppRole, namespace)", async () => {
    const r = await t.psql("orders", token, ["-At", "-c", "select current_user"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("app");
    expect(vault.logins).toBe(1);
    expect(vault.requests).toContain("GET /v1/secret/data/orders/db");
  }, 60_000);

  it("a rotated secret is used by the next target login; a live session continues", async () => {
    const live = client();
    await live.connect();
    await server.psql(`ALTER ROLE app PASSWORD '${ROTATED}'`);
    vault.set("secret", "orders/db", { username: "app", password: ROTATED });
    // The live session keeps its target connection.
    expect((await live.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    // Within the refresh interval the gateway reads the secret again and logs in with it.
    await until(
      "a new session to log in with the rotated password",
      async () => {
        const r = await t.psql("orders", token, ["-At", "-c", "select 42"]);
        return r.code === 0 && r.stdout.trim() === "42" ? true : undefined;
      },
      20_000,
    );
    expect((await live.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
    await live.end();
  }, 60_000);

  it("logs in again when Vault stops accepting its token", async () => {
    const before = vault.logins;
    vault.revokeLogins();
    await new Promise((r) => setTimeout(r, 1_100)); // past the refresh interval: the next use reads again
    const r = await t.psql("orders", token, ["-At", "-c", "select 7"]);
    expect(r.stdout.trim()).toBe("7");
    expect(vault.logins).toBe(before + 1);
  }, 60_000);

  it("a secret Vault does not have is a clear error in psql, naming the reference and nothing secret", async () => {
    const r = await t.psql("missing", token, ["-At", "-c", "select 1"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/airlock: /);
    expect(t.logs()).toContain("vault:secret/nothing/here#password");
  }, 60_000);

  it("no Vault token, AppRole secret or password reaches the client or the logs", async () => {
    const r = await t.psql("missing", token, ["-At", "-c", "select 1"]);
    const logs = t.logs();
    for (const secret of [vault.secretId, FIRST, ROTATED]) {
      expect(r.stderr).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
    expect(logs).not.toMatch(/hvs\.[0-9a-f]{32}/);
  }, 60_000);
});
