/**
 * Envelope encryption of console secrets and key rotation (issue 20): a connection's password
 * stored through the console is sealed with a data key wrapped by `secrets.storeKey`; after the
 * gateway is given a new key (the old one as `secrets.previousStoreKeys`) `airlock secrets
 * rotate-key` re-wraps every data key, audited as `secrets.rotate`; then a gateway with only the
 * new key logs psql in through the connection, one with only the old key cannot open it, and a
 * tampered wrapped key is refused (rotate-key names the connection and exits 1).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/cli.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { until } from "./harness/until.js";
import { startFakeVault, type FakeVault } from "./harness/vault.js";

const PG_PASSWORD = "rotate-canary-5e1a";
let pg: PgServer;
let vault: FakeVault | undefined;
let t: TestGateway | undefined;
const dataDir = mkdtempSync(join(tmpdir(), "airlock-rotate-"));
const keyA = join(dataDir, "kek-a");
const keyB = join(dataDir, "kek-b");

/** A key file's path, or a `vault-transit:` reference as it is. */
const ref = (k: string): string => (k.startsWith("vault-transit:") ? k : `file:${k}`);

function config(storeKey: string, previous: string[] = []): Parameters<typeof startTestGateway>[0] {
  return {
    secrets: {
      storeKey: ref(storeKey),
      previousStoreKeys: previous.map(ref),
      ...(vault === undefined ? {} : { vault: { address: vault.address, auth: { token: vault.rootToken } } }),
    },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [],
    policies: [],
  };
}

async function restart(storeKey: string, previous: string[] = []): Promise<TestGateway> {
  await t?.stop();
  t = await startTestGateway(config(storeKey, previous), { dataDir });
  return t;
}

async function select(g: TestGateway): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return g.psql("orders-live", await g.mint("agent", "1h"), ["-At", "-c", "select name from items where id = 1"]);
}

async function rotate(g: TestGateway): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (d: Buffer) => (stdout += d.toString()));
  err.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(["secrets", "rotate-key"], { stdout: out, stderr: err, env: { AIRLOCK_API: g.apiUrl, AIRLOCK_TOKEN: g.gw.adminToken }, cwd: dataDir });
  return { code, stdout, stderr };
}

async function storedBody(g: TestGateway): Promise<{ sealed: { password: string } }> {
  const docs = (await g.gw.store.consoleDocuments?.list("connection")) ?? [];
  const d = docs.find((x) => x.name === "orders-live");
  if (d === undefined) throw new Error("no stored connection");
  return JSON.parse(d.body) as { sealed: { password: string } };
}

beforeAll(async () => {
  pg = await startPostgres({ users: [{ name: "app", password: PG_PASSWORD, auth: "scram-sha-256" }], databases: ["orders"] });
  await pg.psql("create table items (id int primary key, name text); insert into items values (1, 'one'); alter table items owner to app;", { database: "orders" });
  writeFileSync(keyA, randomBytes(32).toString("base64"), { mode: 0o600 });
  writeFileSync(keyB, randomBytes(32).toString("hex"), { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await pg.stop();
  await vault?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("stored secrets: envelope encryption and key rotation", () => {
  it("rotates the key-encryption key: re-wrapped, audited, the new key alone opens, the old alone does not", { timeout: 120_000 }, async () => {
    let g = await restart(keyA);
    const r = await g.api("/v1/console/connections", {
      body: {
        connection: { name: "orders-live", type: "postgres", host: "127.0.0.1", port: pg.port, database: "orders", user: "app", groups: ["agents"], sslmode: "disable" },
        secrets: { password: PG_PASSWORD },
      },
    });
    expect(r.status, r.text).toBe(201);
    expect((await select(g)).stdout.trim()).toBe("one");
    const before = (await storedBody(g)).sealed.password;
    expect(before.startsWith("v2.")).toBe(true);
    expect(before).not.toContain(PG_PASSWORD);

    // The new key, with the old one still opening: psql logs in before the rotation too.
    g = await restart(keyB, [keyA]);
    expect((await select(g)).stdout.trim()).toBe("one");
    const rotated = await rotate(g);
    expect(rotated.stderr).toBe("");
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/of 1 connections are wrapped by key \S+ \(1 re-wrapped, 0 already were\)/u);
    const after = (await storedBody(g)).sealed.password;
    expect(after.split(".")[1]).not.toBe(before.split(".")[1]);
    expect(after.split(".").slice(3)).toEqual(before.split(".").slice(3));
    expect((await rotate(g)).stdout).toContain("(0 re-wrapped, 1 already were)");
    await g.gw.audit.flush();
    const audit = await g.gw.store.readAudit(0, 100_000);
    const rotations = audit.filter((a) => a.type === "secrets.rotate");
    expect(rotations.map((a) => a.details?.["rewrapped"])).toEqual([1, 0]);
    expect(JSON.stringify(audit)).not.toContain(PG_PASSWORD);
    // Only an admin rotates.
    expect((await g.api("/v1/secrets/rotate-key", { body: {}, token: await g.mint("agent", "1h") })).status).toBe(403);

    g = await restart(keyB);
    const q = await select(g);
    expect(q.stderr).toBe("");
    expect(q.stdout.trim()).toBe("one");

    g = await restart(keyA);
    const old = await select(g);
    expect(old.code).not.toBe(0);
    expect(old.stdout).not.toContain("one");
    expect(old.stderr).not.toContain(PG_PASSWORD);
  });

  it("refuses a tampered wrapped key: the connection does not open, rotate-key names it and exits 1", { timeout: 60_000 }, async () => {
    let g = await restart(keyB);
    const docs = g.gw.store.consoleDocuments;
    const body = await storedBody(g);
    const parts = body.sealed.password.split(".");
    const wrapped = Buffer.from(parts[2] ?? "", "base64url");
    wrapped[20] = (wrapped[20] ?? 0) ^ 0x40;
    parts[2] = wrapped.toString("base64url");
    await docs?.put({ kind: "connection", name: "orders-live", body: JSON.stringify({ ...body, sealed: { password: parts.join(".") } }), updatedAt: new Date(), updatedBy: "attacker" });
    g = await restart(keyB);
    const q = await select(g);
    expect(q.code).not.toBe(0);
    expect(q.stdout).not.toContain("one");
    const r = await rotate(g);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("left as they are: orders-live");
  });

  it("wraps data keys with Vault transit (vault-transit:KEYNAME): the key stays in Vault, rotation onto it and off a local key", { timeout: 120_000 }, async () => {
    vault = await startFakeVault();
    vault.transitKey("transit", "airlock-store");
    const transitRef = "vault-transit:airlock-store";
    let g = await restart(keyB);
    // Stored again under the local key (the last test altered it).
    const r = await g.api("/v1/console/connections", {
      body: {
        connection: { name: "orders-live", type: "postgres", host: "127.0.0.1", port: pg.port, database: "orders", user: "app", groups: ["agents"], sslmode: "disable" },
        secrets: { password: PG_PASSWORD },
      },
    });
    expect(r.status, r.text).toBe(201);
    g = await restart(transitRef, [keyB]);
    expect((await select(g)).stdout.trim()).toBe("one");
    const rotated = await rotate(g);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain("(1 re-wrapped, 0 already were)");
    const sealed = (await storedBody(g)).sealed.password.split(".");
    expect(sealed[1]).toBe(`vt-${Buffer.from("transit/airlock-store").toString("base64url")}`);
    expect(Buffer.from(sealed[2] ?? "", "base64url").toString()).toMatch(/^vault:v1:/u);
    const calls = vault.transitCalls;

    g = await restart(transitRef);
    const q = await select(g);
    expect(q.stderr).toBe("");
    expect(q.stdout.trim()).toBe("one");
    expect(vault.transitCalls).toBeGreaterThan(calls);
    // After a rotation of the transit key inside Vault, data keys wrapped by its older version still open.
    vault.rotateTransitKey("transit", "airlock-store");
    g = await restart(transitRef);
    expect((await select(g)).stdout.trim()).toBe("one");

    // Vault unavailable when the gateway starts: the connection is not usable, and is once Vault answers again (no restart).
    vault.transitDown = true;
    g = await restart(transitRef);
    expect((await select(g)).code).not.toBe(0);
    vault.transitDown = false;
    const back = g;
    await until("the connection opens once Vault is back", async () => ((await select(back)).stdout.trim() === "one" ? true : undefined));

    g = await restart(keyB);
    expect((await select(g)).code).not.toBe(0);

    // A Vault ciphertext altered in the store: Vault refuses to decrypt it, the connection does not open.
    const body = await storedBody(g);
    const parts = body.sealed.password.split(".");
    const vaultText = Buffer.from(parts[2] ?? "", "base64url").toString();
    const flipped = vaultText.slice(0, 12) + (vaultText[12] === "A" ? "B" : "A") + vaultText.slice(13);
    parts[2] = Buffer.from(flipped).toString("base64url");
    await g.gw.store.consoleDocuments?.put({ kind: "connection", name: "orders-live", body: JSON.stringify({ ...body, sealed: { password: parts.join(".") } }), updatedAt: new Date(), updatedBy: "attacker" });
    g = await restart(transitRef);
    expect((await select(g)).code).not.toBe(0);
    const r2 = await rotate(g);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toContain("left as they are: orders-live");
  });
});
