/**
 * What the web console creates lives in the store (issue 17): connections and policies written
 * through the console API are kept in the store's console_documents table, used by psql at once,
 * seen where access requests look connections up, picked up from the
 * store when another gateway writes them, kept across a restart, and an older gateway's
 * console-connections.json is moved into the store at start. Also: "test connection" (real
 * login to a real PostgreSQL, secret-free errors) and `airlock config show` (secrets as references).
 */
import { mkdirSync, mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/cli.js";
import { SecretBox } from "../src/secrets/secret-box.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { until } from "./harness/until.js";

const PG_PASSWORD = "store-move-canary-83c1";
const CONFIG_SECRET = "yaml-literal-canary-20ff";
let pg: PgServer;
let t: TestGateway;
let agentToken = "";
const dataDir = mkdtempSync(join(tmpdir(), "airlock-console-store-"));

function rawConfig(): Parameters<typeof startTestGateway>[0] {
  return {
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
    ],
    approvals: { grants: { approvers: ["dba"] } },
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: pg.port, database: "orders", user: "app", password: CONFIG_SECRET, groups: ["nobody"], sslmode: "disable" },
    ],
    policies: [{ name: "no-drop", match: { operations: ["drop"] }, action: "deny" }],
  };
}

beforeAll(async () => {
  pg = await startPostgres({ users: [{ name: "app", password: PG_PASSWORD, auth: "scram-sha-256" }], databases: ["orders"] });
  await pg.psql("create table items (id int primary key, name text); insert into items values (1, 'one'), (2, 'two'); alter table items owner to app;", { database: "orders" });
  // An older gateway's file, with a sealed password, in the data directory: moved into the store at start.
  mkdirSync(join(dataDir, "keys"), { recursive: true });
  const box = SecretBox.open(join(dataDir, "keys", "secrets.key"));
  const legacy = {
    version: 1,
    connections: [
      {
        raw: { name: "legacy", type: "postgres", host: "127.0.0.1", port: pg.port, database: "orders", user: "app", groups: ["agents"], sslmode: "disable" },
        sealed: { password: await box.seal(PG_PASSWORD, "connection:legacy:password") },
        disabled: false,
        updatedAt: new Date().toISOString(),
        updatedBy: "admin",
      },
    ],
  };
  writeFileSync(join(dataDir, "console-connections.json"), JSON.stringify(legacy), { mode: 0o600 });
  t = await startTestGateway(rawConfig(), { dataDir });
  agentToken = await t.mint("agent", "1h");
}, 120_000);

afterAll(async () => {
  await t.stop();
  await pg.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function select(connection: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return t.psql(connection, agentToken, ["-At", "-c", "select name from items where id = 1"]);
}

async function storeBodies(kind: "connection" | "policy"): Promise<string> {
  const docs = await t.gw.store.consoleDocuments?.list(kind);
  return JSON.stringify(docs ?? []);
}

describe("console connections and policies in the store", () => {
  it("moves an older gateway's console-connections.json into the store at start", async () => {
    expect(existsSync(join(dataDir, "console-connections.json"))).toBe(false);
    expect(existsSync(join(dataDir, "console-connections.json.migrated"))).toBe(true);
    expect(await storeBodies("connection")).toContain('"legacy"');
    const q = await select("legacy");
    expect(q.stderr).toBe("");
    expect(q.stdout.trim()).toBe("one");
  });

  it("registers a connection through the API into the store: sealed secret, used by psql at once, audited", async () => {
    const r = await t.api("/v1/console/connections", {
      body: {
        connection: { name: "orders-live", type: "postgres", host: "127.0.0.1", port: pg.port, database: "orders", user: "app", groups: ["agents"], sslmode: "disable" },
        secrets: { password: PG_PASSWORD },
      },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.text).not.toContain(PG_PASSWORD);
    const bodies = await storeBodies("connection");
    expect(bodies).toContain("orders-live");
    expect(bodies).not.toContain(PG_PASSWORD);
    expect((await select("orders-live")).stdout.trim()).toBe("one");
    await t.gw.audit.flush();
    const audit = await t.gw.store.readAudit(0, 100_000);
    expect(audit.some((a) => a.type === "connection.change" && a.connection === "orders-live")).toBe(true);
    expect(JSON.stringify(audit)).not.toContain(PG_PASSWORD);
    // The YAML's connection stays read-only.
    const takeover = await t.api("/v1/console/connections", { body: { connection: { name: "orders", type: "postgres", host: "127.0.0.1", database: "x", user: "x" } } });
    expect(takeover.status).toBe(409);
  });

  it("is seen where connections are looked up: access requests name it", async () => {
    const req = await t.api("/v1/access/requests", { token: agentToken, body: { connection: "orders-live", duration: "15m", reason: "debugging" } });
    expect(req.status, req.text).toBe(201);
    const unknown = await t.api("/v1/access/requests", { token: agentToken, body: { connection: "no-such", duration: "15m", reason: "x" } });
    expect(unknown.status).toBe(404);
  });

  it("picks up what another gateway writes to the shared store, without a restart", async () => {
    const docs = t.gw.store.consoleDocuments;
    if (docs === undefined) throw new Error("no console documents in this store");
    const [row] = (await docs.list("connection")).filter((d) => d.name === "orders-live");
    if (row === undefined) throw new Error("orders-live missing");
    // Another gateway disables it: this one refuses the next session within its refresh period.
    const entry = JSON.parse(row.body) as Record<string, unknown>;
    await docs.put({ ...row, body: JSON.stringify({ ...entry, disabled: true }), updatedAt: new Date(), updatedBy: "other-gateway" });
    await until("the disable is seen", async () => ((await select("orders-live")).code !== 0 ? true : undefined), 10_000);
    const refused = await select("orders-live");
    expect(refused.stderr).toContain("orders-live");
    await docs.put({ ...row, updatedAt: new Date(), updatedBy: "other-gateway" });
    await until("the enable is seen", async () => ((await select("orders-live")).stdout.trim() === "one" ? true : undefined), 10_000);
  });

  it("edits policies with the YAML's validation; console policies apply to the next statement and are audited", async () => {
    const bad = await t.api("/v1/console/policies", { body: { document: "name: broken\naction: explode\n" } });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("action");
    const notYaml = await t.api("/v1/console/policies", { body: { document: "name: [unclosed" } });
    expect(notYaml.status).toBe(400);
    const clash = await t.api("/v1/console/policies", { body: { document: "name: no-drop\naction: deny\n" } });
    expect(clash.status).toBe(409);
    const ok = await t.api("/v1/console/policies", {
      body: { document: "name: items-read-blocked\nconnections: [orders-live]\nmatch: { relations: [items] }\naction: deny\nmessage: items are off limits today\n" },
    });
    expect(ok.status, ok.text).toBe(201);
    expect(await storeBodies("policy")).toContain("items-read-blocked");
    const denied = await select("orders-live");
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain("items-read-blocked");
    expect((await select("legacy")).stdout.trim()).toBe("one"); // other connections unaffected
    const list = (await t.api("/v1/console/policies")).body as { policies: { name: string; source?: string }[] };
    expect(list.policies.map((p) => [p.name, p.source])).toEqual([
      ["no-drop", "config"],
      ["items-read-blocked", "console"],
    ]);
    expect((await t.api("/v1/console/policies/no-drop/delete", { body: {} })).status).toBe(409);
    expect((await t.api("/v1/console/policies/items-read-blocked/delete", { body: {} })).status).toBe(200);
    expect((await select("orders-live")).stdout.trim()).toBe("one");
    await t.gw.audit.flush();
    const audit = await t.gw.store.readAudit(0, 100_000);
    expect(audit.filter((a) => a.type === "policy.change").map((a) => a.details?.["action"])).toEqual(["save", "delete"]);
  });

  it("test connection: logs in with the held credential; a refusal or an unreachable target is reported without secrets", async () => {
    const good = await t.api("/v1/console/connections/orders-live/test", { body: {} });
    expect(good.status).toBe(200);
    expect(good.body).toMatchObject({ ok: true, checked: "login" });
    // The YAML's connection holds a wrong literal password: the target's refusal, not the secret.
    const wrong = await t.api("/v1/console/connections/orders/test", { body: {} });
    expect(wrong.body).toMatchObject({ ok: false });
    expect(wrong.text).not.toContain(CONFIG_SECRET);
    expect((wrong.body as { code: string }).code).toMatch(/^GW_UPSTREAM/u);
    const r = await t.api("/v1/console/connections", {
      body: { connection: { name: "nowhere", type: "postgres", host: "127.0.0.1", port: 1, database: "x", user: "x", groups: ["agents"], sslmode: "disable" }, secrets: { password: "nowhere-secret-1" } },
    });
    expect(r.status).toBe(201);
    const down = await t.api("/v1/console/connections/nowhere/test", { body: {} });
    expect(down.body).toMatchObject({ ok: false });
    expect(down.text).not.toContain("nowhere-secret-1");
    expect((await t.api("/v1/console/connections/no-such/test", { body: {} })).status).toBe(404);
    expect((await t.api("/v1/console/connections/orders-live/test", { token: agentToken, body: {} })).status).toBe(403);
  });

  it("airlock config show prints the effective configuration with secrets as references", async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    let stdout = "";
    let stderr = "";
    out.on("data", (d: Buffer) => (stdout += d.toString()));
    err.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await runCli(["config", "show"], { stdout: out, stderr: err, env: { AIRLOCK_API: t.apiUrl, AIRLOCK_TOKEN: t.gw.adminToken }, cwd: dataDir });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain("name: orders-live");
    expect(stdout).toContain("name: legacy");
    expect(stdout).toContain("stored:<encrypted>");
    expect(stdout).toContain("literal:<redacted>");
    expect(stdout).toContain("From the console: connections [legacy, nowhere, orders-live]");
    for (const s of [PG_PASSWORD, CONFIG_SECRET, "nowhere-secret-1"]) expect(stdout).not.toContain(s);
    expect(readFileSync(join(dataDir, "keys", "secrets.key")).toString()).not.toBe("");
    const json = await t.api("/v1/console/config?format=json");
    expect(json.status).toBe(200);
    expect(json.text).not.toContain(CONFIG_SECRET);
    expect((await t.api("/v1/console/config", { token: agentToken })).status).toBe(403);
  });

  it("reorders console policies: the first matching one decides, psql names it, and the change is audited", async () => {
    const doc = (name: string): string => `name: ${name}\nconnections: [legacy]\nmatch: { relations: [items] }\naction: deny\nmessage: refused by ${name}\n`;
    for (const name of ["m-first", "a-second"]) expect((await t.api("/v1/console/policies", { body: { document: doc(name) } })).status).toBe(201);
    const names = async (): Promise<string[]> => ((await t.api("/v1/console/policies")).body as { policies: { name: string; source?: string }[] }).policies.filter((p) => p.source === "console").map((p) => p.name);
    // A new policy goes last (not by name).
    expect(await names()).toEqual(["m-first", "a-second"]);
    expect((await select("legacy")).stderr).toContain("m-first");
    const moved = await t.api("/v1/console/policies/order", { body: { names: ["a-second", "m-first"] } });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toEqual({ order: ["a-second", "m-first"] });
    expect(await names()).toEqual(["a-second", "m-first"]);
    const now = await select("legacy");
    expect(now.stderr).toContain("a-second");
    expect(now.stderr).not.toContain("m-first");
    // Changing a policy keeps its place.
    expect((await t.api("/v1/console/policies", { body: { document: doc("m-first").replace("deny\n", "deny\ngroups: [agents]\n") } })).status).toBe(201);
    expect(await names()).toEqual(["a-second", "m-first"]);
    // The order names every console policy once, and no YAML policy.
    expect((await t.api("/v1/console/policies/order", { body: { names: ["a-second"] } })).status).toBe(400);
    expect((await t.api("/v1/console/policies/order", { body: { names: ["a-second", "a-second", "m-first"] } })).status).toBe(400);
    expect((await t.api("/v1/console/policies/order", { body: { names: ["no-drop", "a-second", "m-first"] } })).status).toBe(409);
    expect((await t.api("/v1/console/policies/order", { body: { names: ["a-second", "m-first", "nope"] } })).status).toBe(404);
    expect((await t.api("/v1/console/policies/order", { body: { names: ["m-first", "a-second"] }, token: agentToken })).status).toBe(403);
    await t.gw.audit.flush();
    const audit = await t.gw.store.readAudit(0, 100_000);
    expect(audit.filter((a) => a.type === "policy.change" && a.details?.["action"] === "reorder").map((a) => a.details?.["order"])).toEqual(["a-second,m-first"]);
    for (const name of ["m-first", "a-second"]) expect((await t.api(`/v1/console/policies/${name}/delete`, { body: {} })).status).toBe(200);
    expect((await select("legacy")).stdout.trim()).toBe("one");
  });

  it("keeps console connections and policies across a restart", { timeout: 60_000 }, async () => {
    await t.api("/v1/console/policies", { body: { document: "name: zz-no-two\nconnections: [legacy]\nmatch: { statementRegex: 'id = 2' }\naction: deny\n" } });
    await t.gw.close();
    t = await startTestGateway(rawConfig(), { dataDir });
    agentToken = await t.mint("agent", "1h");
    expect((await select("orders-live")).stdout.trim()).toBe("one");
    const two = await t.psql("legacy", agentToken, ["-At", "-c", "select name from items where id = 2"]);
    expect(two.stderr).toContain("zz-no-two");
  });
});
