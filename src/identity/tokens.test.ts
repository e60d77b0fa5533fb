import { generateKeyPairSync, createPrivateKey, createPublicKey, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, base64url } from "jose";
import type { JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import type { ErrorCode } from "../core/errors.js";
import { createLogger } from "../observability/logger.js";
import type { ServiceAccountConfig } from "../runtime/config.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import { MAX_TOKEN_LENGTH, SIGNING_KEY_FILE, TokenService } from "./tokens.js";
import type { TokenServiceOptions } from "./tokens.js";

const logger = createLogger({ level: "silent" });
const accounts: ServiceAccountConfig[] = [
  { name: "ci-bot", groups: ["agents"], sshPublicKeys: [] },
  { name: "other", groups: ["ops"], sshPublicKeys: [] },
];

let root: string;
let store: Store;
let keyDir: string;
const services: TokenService[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-tokens-"));
  keyDir = join(root, "keys");
  store = await openStore({ dataDir: join(root, "data") });
});

afterAll(async () => {
  for (const s of services) await s.close();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

async function open(overrides: Partial<TokenServiceOptions> = {}): Promise<TokenService> {
  const s = await TokenService.open({
    keyDir,
    store,
    serviceAccounts: accounts,
    defaultTtlMs: 15 * 60_000,
    maxTtlMs: 3_600_000,
    logger,
    ...overrides,
  });
  services.push(s);
  return s;
}

async function failure(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

async function expectCode(p: Promise<unknown>, code: ErrorCode, token?: string): Promise<GatewayError> {
  const e = await failure(p);
  expect(e.code).toBe(code);
  if (token !== undefined) expect(e.message).not.toContain(token);
  return e;
}

/** Sign arbitrary claims with the service's own key file (to forge edge cases the mint API refuses). */
async function signWithServiceKey(
  svc: TokenService,
  claims: JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  const key = createPrivateKey(await readFile(join(keyDir, SIGNING_KEY_FILE), "utf8"));
  return new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: svc.keyId, ...header }).sign(key);
}

function baseClaims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iss: "airlock", aud: "airlock", sub: "sa:ci-bot", jti: randomUUID(), iat: now, exp: now + 600, ...overrides };
}

describe("TokenService", () => {
  it("creates the signing key 0600 once and reuses it", async () => {
    const a = await open();
    const st = await stat(join(keyDir, SIGNING_KEY_FILE));
    expect(st.mode & 0o777).toBe(0o600);
    const b = await open();
    expect(b.keyId).toBe(a.keyId);
    expect(a.keyId).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("mints and verifies: claims, header, store row, principal with config groups", async () => {
    const svc = await open();
    const minted = await svc.mint("ci-bot", { ttlMs: 10 * 60_000, createdBy: "admin" });
    const [h, p] = minted.token.split(".");
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(h!))) as Record<string, unknown>;
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p!))) as Record<string, unknown>;
    expect(header).toMatchObject({ alg: "EdDSA", typ: "at+jwt", kid: svc.keyId });
    expect(payload).toMatchObject({ iss: "airlock", aud: "airlock", sub: "sa:ci-bot", jti: minted.id });
    expect(payload["groups"]).toBeUndefined();
    expect(Number(payload["exp"]) - Number(payload["iat"])).toBe(600);
    expect(minted.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const row = await store.getToken(minted.id);
    expect(row).toMatchObject({ principalId: "sa:ci-bot", principalKind: "service_account", principalName: "ci-bot", createdBy: "admin" });
    expect(row?.expiresAt.getTime()).toBe(minted.expiresAt.getTime());
    expect(JSON.stringify(row)).not.toContain(minted.token);

    const principal = await svc.verify(minted.token);
    expect(principal).toEqual({
      kind: "service_account",
      id: "sa:ci-bot",
      name: "ci-bot",
      groups: ["agents"],
      tokenId: minted.id,
      expiresAt: minted.expiresAt,
    });
  });

  it("refuses unknown service accounts and TTLs above the maximum", async () => {
    const svc = await open();
    await expectCode(svc.mint("nobody", { createdBy: "admin" }), "GW_NOT_FOUND");
    const e = await expectCode(svc.mint("ci-bot", { ttlMs: 2 * 3_600_000, createdBy: "admin" }), "GW_BAD_REQUEST");
    expect(e.message).toContain("1h");
    await expectCode(svc.mint("ci-bot", { ttlMs: 0, createdBy: "admin" }), "GW_BAD_REQUEST");
  });

  it("rejects expired tokens (after the 5 s tolerance) with the expiry time", async () => {
    let now = new Date();
    const svc = await open({ clock: () => now });
    const minted = await svc.mint("ci-bot", { ttlMs: 60_000, createdBy: "admin" });
    now = new Date(minted.expiresAt.getTime() + 3_000);
    expect((await svc.verify(minted.token)).id).toBe("sa:ci-bot");
    now = new Date(minted.expiresAt.getTime() + 6_000);
    const e = await expectCode(svc.verify(minted.token), "GW_AUTH_EXPIRED", minted.token);
    expect(e.message).toBe(`token expired at ${minted.expiresAt.toISOString()}`);
  });

  it("rejects tokens that are not valid yet (nbf or iat in the future)", async () => {
    const svc = await open();
    const now = Math.floor(Date.now() / 1000);
    await expectCode(svc.verify(await signWithServiceKey(svc, baseClaims({ nbf: now + 120 }))), "GW_AUTH_INVALID");
    await expectCode(svc.verify(await signWithServiceKey(svc, baseClaims({ iat: now + 120, exp: now + 900 }))), "GW_AUTH_INVALID");
    // Sanity: the forging helper itself produces acceptable tokens.
    expect((await svc.verify(await signWithServiceKey(svc, baseClaims()))).name).toBe("ci-bot");
  });

  it("rejects a tampered payload", async () => {
    const svc = await open();
    const { token } = await svc.mint("ci-bot", { createdBy: "admin" });
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p!))) as Record<string, unknown>;
    const forged = base64url.encode(JSON.stringify({ ...payload, sub: "sa:other" }));
    await expectCode(svc.verify(`${h}.${forged}.${s}`), "GW_AUTH_INVALID", token);
    // Flipping one signature character also fails.
    const sig = s!;
    const flipped = sig.slice(0, 10) + (sig[10] === "A" ? "B" : "A") + sig.slice(11);
    await expectCode(svc.verify(`${h}.${p}.${flipped}`), "GW_AUTH_INVALID");
  });

  it("rejects a signature by another Ed25519 key, even with our kid", async () => {
    const svc = await open();
    const { privateKey } = generateKeyPairSync("ed25519");
    const token = await new SignJWT(baseClaims()).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: svc.keyId }).sign(privateKey);
    await expectCode(svc.verify(token), "GW_AUTH_INVALID");
  });

  it("rejects alg none and HS256 signed with the public key", async () => {
    const svc = await open();
    const enc = (o: unknown): string => base64url.encode(JSON.stringify(o));
    const none = `${enc({ alg: "none", typ: "at+jwt", kid: svc.keyId })}.${enc(baseClaims())}.`;
    await expectCode(svc.verify(none), "GW_AUTH_INVALID");

    const pem = await readFile(join(keyDir, SIGNING_KEY_FILE), "utf8");
    const publicPem = createPublicKey(createPrivateKey(pem)).export({ type: "spki", format: "pem" }).toString();
    const hs = await new SignJWT(baseClaims())
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: svc.keyId })
      .sign(new TextEncoder().encode(publicPem));
    await expectCode(svc.verify(hs), "GW_AUTH_INVALID");
  });

  it("rejects wrong issuer, audience and type", async () => {
    const svc = await open();
    await expectCode(svc.verify(await signWithServiceKey(svc, baseClaims({ iss: "evil" }))), "GW_AUTH_INVALID");
    await expectCode(svc.verify(await signWithServiceKey(svc, baseClaims({ aud: "other" }))), "GW_AUTH_INVALID");
    await expectCode(svc.verify(await signWithServiceKey(svc, baseClaims(), { typ: "JWT" })), "GW_AUTH_INVALID");
    await expectCode(svc.verify(await signWithServiceKey(svc, baseClaims({ sub: "user:alice" }))), "GW_AUTH_INVALID");
  });

  it("revokes locally at once and fires the listener once", async () => {
    const svc = await open();
    const { token, id } = await svc.mint("ci-bot", { createdBy: "admin" });
    const fired: string[] = [];
    const off = svc.onRevoke((t) => fired.push(t));
    expect(await svc.revoke(id, "admin")).toBe(true);
    expect(fired).toEqual([id]);
    await expectCode(svc.verify(token), "GW_AUTH_REVOKED", token);
    expect(await svc.revoke(id, "admin")).toBe(true);
    expect(fired).toEqual([id]);
    expect(await svc.revoke(randomUUID(), "admin")).toBe(false);
    off();
    expect((await store.getToken(id))?.revokedBy).toBe("admin");
  });

  it("picks up a revocation made by a second service sharing the store, and fires onRevoke", async () => {
    const a = await open({ revocationPollMs: 50 });
    const b = await open({ revocationPollMs: 50 });
    const { token, id } = await a.mint("ci-bot", { createdBy: "admin" });
    expect((await b.verify(token)).tokenId).toBe(id);
    const seen = new Promise<string>((resolve) => {
      b.onRevoke(resolve);
    });
    expect(await a.revoke(id, "admin")).toBe(true);
    expect(await seen).toBe(id);
    await expectCode(b.verify(token), "GW_AUTH_REVOKED");
  });

  it("knows revocations that happened before it started", async () => {
    const a = await open();
    const { token, id } = await a.mint("ci-bot", { createdBy: "admin" });
    await a.revoke(id, "admin");
    const later = await open();
    await expectCode(later.verify(token), "GW_AUTH_REVOKED");
  });

  it("takes groups and existence from the current config, not the token", async () => {
    const svc = await open();
    const { token } = await svc.mint("ci-bot", { createdBy: "admin" });
    svc.updateServiceAccounts([{ name: "ci-bot", groups: ["changed"], sshPublicKeys: [] }]);
    expect((await svc.verify(token)).groups).toEqual(["changed"]);
    svc.updateServiceAccounts([{ name: "other", groups: [], sshPublicKeys: [] }]);
    await expectCode(svc.verify(token), "GW_AUTH_REVOKED", token);
  });

  it("refuses huge and empty tokens before parsing", async () => {
    const svc = await open();
    const { token } = await svc.mint("ci-bot", { createdBy: "admin" });
    const huge = token + ".".repeat(MAX_TOKEN_LENGTH);
    const e = await expectCode(svc.verify(huge), "GW_AUTH_INVALID");
    expect(e.message).toBe("invalid token");
    await expectCode(svc.verify(""), "GW_AUTH_INVALID");
    await expectCode(svc.verify("not.a.jwt"), "GW_AUTH_INVALID");
  });
});

describe("tokens for people and workloads, and principal blocks", () => {
  it("replaces a person's token groups when a re-check at the IdP found them changed (that token only), and forgets it on request", async () => {
    const s = await open();
    const a = await s.mintFor({ kind: "person", id: "user:gus@example.com", name: "gus@example.com", groups: ["dba", "engineers"] }, { ttlMs: 600_000, createdBy: "oidc" });
    const b = await s.mintFor({ kind: "person", id: "user:gus@example.com", name: "gus@example.com", groups: ["dba", "engineers"] }, { ttlMs: 600_000, createdBy: "oidc" });
    s.setGroups(a.id, ["engineers"], a.expiresAt);
    expect((await s.verify(a.token)).groups).toEqual(["engineers"]);
    expect((await s.verify(b.token)).groups).toEqual(["dba", "engineers"]);
    s.setGroups(a.id, undefined, a.expiresAt);
    expect((await s.verify(a.token)).groups).toEqual(["dba", "engineers"]);
    expect(s.serviceAccount("ci-bot")).toMatchObject({ name: "ci-bot" });
    expect(s.serviceAccount("nobody")).toBeUndefined();
  });
  it("mints for a person with the IdP's groups, never past notAfter", async () => {
    const s = await open();
    const notAfter = new Date(Date.now() + 30_000);
    const m = await s.mintFor({ kind: "person", id: "user:ann@example.com", name: "ann@example.com", groups: ["dba"] }, { ttlMs: 3_600_000, notAfter, createdBy: "oidc" });
    expect(m.expiresAt.getTime()).toBeLessThanOrEqual(notAfter.getTime());
    const p = await s.verify(m.token);
    expect(p).toMatchObject({ kind: "person", id: "user:ann@example.com", groups: ["dba"], tokenId: m.id });
    await expect(s.mintFor({ kind: "person", id: "sa:ci-bot", name: "x", groups: [] }, { ttlMs: 60_000, createdBy: "t" })).rejects.toMatchObject({ code: "GW_INTERNAL" });
    await expect(
      s.mintFor({ kind: "workload", id: "wl:x:y", name: "y", groups: [] }, { ttlMs: 60_000, notAfter: new Date(Date.now() - 1000), createdBy: "t" }),
    ).rejects.toMatchObject({ code: "GW_AUTH_EXPIRED" });
  });

  it("blocks a principal: its tokens are refused here and on a gateway sharing the store, even after a restart", async () => {
    const a = await open({ revocationPollMs: 50 });
    const b = await open({ revocationPollMs: 50 });
    const person = await a.mintFor({ kind: "person", id: "user:bob@example.com", name: "bob@example.com", groups: [] }, { ttlMs: 600_000, createdBy: "t" });
    const sa = await a.mint("other", { createdBy: "t" });
    const fired: string[] = [];
    b.onRevoke((id) => fired.push(id));
    const block = await a.blockPrincipal({ id: "user:bob@example.com", kind: "person", name: "bob@example.com" }, { by: "admin" });
    expect(block.alreadyBlocked).toBe(false);
    expect((await failure(a.verify(person.token))).code).toBe("GW_AUTH_REVOKED");
    for (let i = 0; i < 100 && !b.isBlocked("user:bob@example.com"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(fired).toContain(block.id);
    expect((await failure(b.verify(person.token))).code).toBe("GW_AUTH_REVOKED");
    await a.blockPrincipal({ id: "sa:other", kind: "service_account", name: "other" }, { by: "admin" });
    expect((await failure(a.verify(sa.token))).code).toBe("GW_AUTH_REVOKED");
    const restarted = await open();
    expect(restarted.isBlocked("user:bob@example.com")).toBe(true);
    expect(restarted.isBlocked("sa:other")).toBe(true);
    expect(restarted.isBlocked("user:someone-else@example.com")).toBe(false);
  });

  it("lifts a time-boxed block when it expires", async () => {
    const s = await open();
    await s.blockPrincipal({ id: "wl:x:brief", kind: "workload", name: "brief" }, { by: "admin", until: new Date(Date.now() + 1500) });
    expect(s.isBlocked("wl:x:brief")).toBe(true);
    await new Promise((r) => setTimeout(r, 1600));
    const fresh = await open();
    expect(fresh.isBlocked("wl:x:brief")).toBe(false);
  });
});
