/**
 * The JWT attack suite. Every forged or wrong token is presented twice — as the PostgreSQL
 * password through node-postgres (must fail with 28P01) and as an API bearer token (must fail
 * with 401) — and each refusal must leave an `auth.failure` audit record that does not contain
 * the token. A real OpenID provider supplies the trusted issuer and its real signing key, so
 * "validly signed but wrong" tokens are really validly signed.
 */
import { KeyObject, createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
let idp: TestOidcProvider;
let otherIdp: TestOidcProvider;
let t: TestGateway;
/** A server posing as an untrusted issuer: counts every request it gets. */
let decoy: Server;
let decoyUrl: string;
let decoyHits = 0;
let attackerJwksUrl: string;

function b64url(v: string | Buffer): string {
  return Buffer.from(v).toString("base64url");
}
function unsigned(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ""): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${signature}`;
}
const now = (): number => Math.floor(Date.now() / 1000);
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: idp.issuer, aud: "airlock", sub: "attacker", client_id: "attacker", groups: ["agents", "dba"], iat: now(), exp: now() + 300, ...extra };
}

const attackerKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });

beforeAll(async () => {
  pgServer = await startPostgres({ users: [{ name: "app", password: "app-pw-attacks", auth: "scram-sha-256" }], databases: ["orders"] });
  idp = await startOidcProvider([{ clientId: "agent", clientSecret: "agent-secret-0123456789abcdef0123456789ab", grantTypes: ["client_credentials"] }]);
  idp.clientGroups.set("agent", ["agents"]);
  otherIdp = await startOidcProvider([{ clientId: "agent", clientSecret: "agent-secret-0123456789abcdef0123456789ab", grantTypes: ["client_credentials"] }]);
  otherIdp.clientGroups.set("agent", ["agents"]);

  const attackerJwk = { ...(await exportJWK(attackerKeys.publicKey)), kid: "attacker", alg: "RS256", use: "sig" };
  decoy = createServer((req, res) => {
    decoyHits++;
    res.setHeader("content-type", "application/json");
    if (req.url === "/jwks") {
      res.end(JSON.stringify({ keys: [attackerJwk] }));
      return;
    }
    res.end(JSON.stringify({ issuer: decoyUrl, jwks_uri: `${decoyUrl}/jwks` }));
  });
  await new Promise<void>((r) => decoy.listen(0, "127.0.0.1", r));
  decoyUrl = `http://127.0.0.1:${(decoy.address() as AddressInfo).port}`;
  attackerJwksUrl = `${decoyUrl}/jwks`;

  t = await startTestGateway({
    oidc: [{ issuer: idp.issuer, alias: "idp", audience: "airlock", principal: { kind: "workload", name: "client_id", prefix: "" } }],
    connections: [
      { type: "postgres", name: "orders", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-attacks", sslmode: "disable", groups: ["agents"] },
    ],
  });
});

afterAll(async () => {
  await t.stop();
  await idp.close();
  await otherIdp.close();
  await new Promise<void>((r) => decoy.close(() => r()));
  await pgServer.stop();
});

async function pgRefusal(token: string): Promise<string | undefined> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "agent", password: token });
  c.on("error", () => undefined);
  try {
    await c.connect();
    await c.end();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function authFailures(): Promise<{ protocol?: string; message?: string; text: string }[]> {
  await t.gw.audit.flush();
  const records = await t.gw.store.readAudit(0, 10_000);
  return records.filter((r) => r.type === "auth.failure").map((r) => ({ ...(r.protocol === undefined ? {} : { protocol: r.protocol }), ...(r.message === undefined ? {} : { message: r.message }), text: JSON.stringify(r) }));
}

/** Present on both paths; expect refusal + one new audit record per path, without the token. */
async function expectRefused(token: string): Promise<string[]> {
  const before = (await authFailures()).length;
  expect(await pgRefusal(token), "postgres").toBe("28P01");
  const res = await fetch(`${t.apiUrl}/v1/auth/whoami`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, "api").toBe(401);
  const body = await res.text();
  expect(body).not.toContain(token.slice(-20));
  const after = await authFailures();
  const fresh = after.slice(before);
  expect(fresh.map((f) => f.protocol).sort()).toEqual(["api", "postgres"]);
  for (const f of fresh) expect(f.text).not.toContain(token.slice(-20));
  return fresh.map((f) => f.message ?? "");
}

describe("sanity: the genuine token works on both paths", () => {
  it("accepts a real client-credentials token", async () => {
    const jwt = await idp.clientCredentials("agent", "agent-secret-0123456789abcdef0123456789ab");
    expect(await pgRefusal(jwt)).toBeUndefined();
    const res = await fetch(`${t.apiUrl}/v1/auth/whoami`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(res.status).toBe(200);
    // And the same claims signed by the harness with the real key work too (the forgeries below differ in one thing each).
    expect(await pgRefusal(await idp.sign(claims()))).toBeUndefined();
  });
});

describe("JWT attacks: each refused with 28P01 and 401, and audited", () => {
  it("alg: none (and None, nOnE)", async () => {
    for (const alg of ["none", "None", "nOnE"]) {
      const msgs = await expectRefused(unsigned({ alg, typ: "JWT", kid: idp.kid }, claims()));
      expect(msgs.join()).toContain("not accepted");
    }
  });

  it("HS256 signed with the issuer's public key (algorithm confusion)", async () => {
    const spki = createPublicKey(KeyObject.from(idp.privateKey)).export({ type: "spki", format: "pem" }).toString();
    const jwk = await exportJWK(idp.privateKey);
    const publicJwk = JSON.stringify({ kty: jwk.kty, n: jwk.n, e: jwk.e });
    for (const secret of [spki, publicJwk]) {
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: idp.kid }).sign(new TextEncoder().encode(secret));
      await expectRefused(token);
    }
  });

  it("expired, not yet valid, issued in the future", async () => {
    const expired = await expectRefused(await idp.sign(claims({ iat: now() - 7200, exp: now() - 3600 })));
    expect(expired.join()).toContain("expired");
    await expectRefused(await idp.sign(claims({ nbf: now() + 3600 })));
    await expectRefused(await idp.sign(claims({ iat: now() + 3600 })));
    // Missing exp: a token that never expires is not accepted.
    const noExp = claims();
    delete noExp["exp"];
    await expectRefused(await idp.sign(noExp));
  });

  it("wrong issuer, wrong audience", async () => {
    await expectRefused(await idp.sign(claims({ iss: `${idp.issuer}/` })));
    await expectRefused(await idp.sign(claims({ iss: "https://evil.example.com" })));
    await expectRefused(await idp.sign(claims({ aud: "someone-else" })));
    await expectRefused(await idp.sign(claims({ aud: ["someone-else", "also-not-airlock"] })));
  });

  it("unknown kid, and a kid with path traversal, signed by an attacker key", async () => {
    const attacker = await generateKeyPair("RS256");
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", kid: "unknown-kid" }).sign(attacker.privateKey));
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", kid: "../../../../etc/passwd" }).sign(attacker.privateKey));
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", kid: "x\u0000y" }).sign(attacker.privateKey));
    // The issuer's real kid, the attacker's key.
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", kid: idp.kid }).sign(attacker.privateKey));
  });

  it("tampered payload (groups widened after signing), tampered header, stripped signature", async () => {
    const genuine = await idp.sign(claims({ groups: ["agents"] }));
    const [h, , s] = genuine.split(".");
    await expectRefused(`${h}.${b64url(JSON.stringify(claims({ groups: ["agents", "admin"] })))}.${s}`);
    await expectRefused(`${b64url(JSON.stringify({ alg: "PS256", kid: idp.kid }))}.${genuine.split(".")[1]}.${s}`);
    await expectRefused(`${h}.${genuine.split(".")[1]}.`);
  });

  it("a valid signature from an untrusted issuer (another real provider)", async () => {
    const foreign = await otherIdp.clientCredentials("agent", "agent-secret-0123456789abcdef0123456789ab");
    const msgs = await expectRefused(foreign);
    expect(msgs.join()).toContain("untrusted issuer");
  });

  it("never contacts an untrusted issuer, nor a jku/x5u/jwk the token names", async () => {
    decoyHits = 0;
    const attackerKey = attackerKeys.privateKey;
    await expectRefused(await new SignJWT(claims({ iss: decoyUrl })).setProtectedHeader({ alg: "RS256", kid: "attacker" }).sign(attackerKey));
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", kid: "attacker", jku: attackerJwksUrl }).sign(attackerKey));
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", kid: "attacker", x5u: attackerJwksUrl }).sign(attackerKey));
    const embedded = await exportJWK(attackerKeys.publicKey);
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", jwk: embedded }).sign(attackerKey));
    expect(decoyHits).toBe(0);
  });

  it("crit header, unexpected typ, nested JWE, huge token, garbage", async () => {
    await expectRefused(idp.signRaw({ crit: ["exp"], exp: 1 }, claims()));
    await expectRefused(idp.signRaw({ crit: ["b64"], b64: false }, claims()));
    await expectRefused(await idp.sign(claims(), { typ: "dpop+jwt" }));
    await expectRefused(await idp.sign(claims(), { typ: "secevent+jwt" }));
    const jweLike = [b64url(JSON.stringify({ alg: "RSA-OAEP", enc: "A256GCM", kid: idp.kid })), "AAAA", "AAAA", "AAAA", "AAAA"].join(".");
    const msgs = await expectRefused(jweLike);
    expect(msgs.join()).toContain("JWE");
    // Just over the 16 KiB external-token cap: refused by the authenticator on PostgreSQL; the
    // API's HTTP server refuses such a header itself (431, Node's 16 KiB header limit).
    const before = (await authFailures()).length;
    const big = await idp.sign(claims({ padding: "x".repeat(13_000) }));
    expect(big.length).toBeGreaterThan(16 * 1024);
    expect(await pgRefusal(big)).toBe("28P01");
    const bigApi = await fetch(`${t.apiUrl}/v1/auth/whoami`, { headers: { authorization: `Bearer ${big}` } });
    expect([401, 431]).toContain(bigApi.status);
    // Far larger: PostgreSQL refuses the message itself before authentication (54000), still audited.
    expect(await pgRefusal(await idp.sign(claims({ padding: "x".repeat(40_000) })))).toBe("54000");
    expect((await authFailures()).length).toBe(before + 2);
    await expectRefused("a.b.c");
    await expectRefused("eyJhbGciOiJSUzI1NiJ9.e30");
    await expectRefused(`${b64url("{")}.${b64url("{}")}.AAAA`);
  });

  it("an Airlock token forged with an attacker's Ed25519 key", async () => {
    const { privateKey } = await generateKeyPair("EdDSA");
    const forged = await new SignJWT({ airlock_kind: "person", name: "root", groups: ["admin"] })
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: createHash("sha256").update("x").digest("base64url") })
      .setIssuer("airlock")
      .setAudience("airlock")
      .setSubject("user:root@example.com")
      .setJti("00000000-0000-4000-8000-000000000000")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    await expectRefused(forged);
  });

  it("claims of the wrong type: sub/client_id not a string, groups an object", async () => {
    await expectRefused(await idp.sign(claims({ client_id: ["a", "b"] })));
    await expectRefused(await idp.sign(claims({ client_id: "a\u0000b" })));
    // Groups that are not a string list are ignored, not honoured: the token then lacks `agents`.
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "agent", password: await idp.sign(claims({ groups: { agents: true } })) });
    c.on("error", () => undefined);
    await expect(c.connect()).rejects.toMatchObject({ code: "42501" });
    await c.end().catch(() => undefined);
  });
});
