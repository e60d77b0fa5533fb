/**
 * Revocation across gateways: two gateways share one PostgreSQL store. A workload's live psql
 * session runs through gateway B; an admin blocks the principal on gateway A; B learns it from
 * the store (revocation poll) and ends the session within 5 s, and refuses the workload after.
 */
import { spawn } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
let idp: TestOidcProvider;
let a: TestGateway;
let b: TestGateway;
const SECRET = "agent-x-secret-0123456789abcdef0123456789";

beforeAll(async () => {
  pgServer = await startPostgres({
    users: [
      { name: "app", password: "app-pw-xgw", auth: "scram-sha-256" },
      { name: "airlock", password: "store-pw-xgw", auth: "scram-sha-256" },
    ],
    databases: ["orders", "airlock_store"],
  });
  await pgServer.psql("alter database airlock_store owner to airlock;");
  idp = await startOidcProvider([{ clientId: "agent-x", clientSecret: SECRET, grantTypes: ["client_credentials"] }]);
  idp.clientGroups.set("agent-x", ["agents"]);
  const config = {
    store: { url: pgServer.url({ user: "airlock", password: "store-pw-xgw", database: "airlock_store" }) },
    oidc: [{ issuer: idp.issuer, alias: "idp", audience: "airlock", principal: { kind: "workload" as const, name: "client_id" } }],
    connections: [
      { type: "postgres" as const, name: "orders", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-xgw", sslmode: "disable" as const, groups: ["agents"] },
    ],
  };
  // One after the other: the first runs the store's migrations.
  a = await startTestGateway(config);
  b = await startTestGateway(config);
});

afterAll(async () => {
  await b.stop();
  await a.stop();
  await idp.close();
  await pgServer.stop();
});

describe("revocation across gateways sharing a store", () => {
  it("blocking a principal on gateway A ends its live session on gateway B within 5 s", async () => {
    const jwt = await idp.clientCredentials("agent-x", SECRET);
    const child = spawn("psql", ["-X", "-At", `host=127.0.0.1 port=${b.pgPort} dbname=orders user=agent sslmode=disable`], {
      env: { ...process.env, PGPASSWORD: jwt },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.stdin.write("select 'alive';\n");
    const deadline = Date.now() + 10_000;
    while (!stdout.includes("alive") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stdout, stderr).toContain("alive");
    const live = (): number => b.gw.registry.list().filter((s) => s.principal.id === "wl:idp:agent-x").length;
    expect(live()).toBe(1);

    const started = Date.now();
    const res = await a.api(`/v1/principals/${encodeURIComponent("wl:idp:agent-x")}/revoke`, { body: { reason: "cross-gateway test" } });
    expect(res.status).toBe(200);
    while (live() > 0 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 50));
    expect(live()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    child.stdin.write("select 'still here';\n");
    child.stdin.end();
    await exited;
    expect(stdout).not.toContain("still here");
    expect(stderr).toContain("airlock:");

    const c = new pg.Client({ host: "127.0.0.1", port: b.pgPort, database: "orders", user: "x", password: await idp.clientCredentials("agent-x", SECRET) });
    c.on("error", () => undefined);
    await expect(c.connect()).rejects.toMatchObject({ code: "28P01" });
    await c.end().catch(() => undefined);
  });
});
