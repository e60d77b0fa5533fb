import { SignJWT, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { createLogger } from "../observability/logger.js";
import { parseConfig } from "../runtime/config.js";
import { TrustedIssuers, cleanGroup, cleanText, globMatch, personName } from "./issuers.js";

const logger = createLogger({ level: "silent" });

describe("globMatch", () => {
  it("matches * and ? anchored, and treats other characters literally", () => {
    expect(globMatch("org/*", "org/repo")).toBe(true);
    expect(globMatch("org/*", "org2/repo")).toBe(false);
    expect(globMatch("a?c", "abc")).toBe(true);
    expect(globMatch("a.c", "abc")).toBe(false);
    expect(globMatch("ref:refs/heads/main", "ref:refs/heads/main-evil")).toBe(false);
  });
});

describe("identity text hygiene", () => {
  it("refuses control, invisible and separator characters, keeps spaces and non-ASCII letters", () => {
    for (const bad of ["a\u0000b", "a\tb", "agent\u200B", "x\u202Ey", "a\u2028b", "\uFEFFroot", ""]) expect(cleanText(bad, 100), JSON.stringify(bad)).toBeUndefined();
    for (const ok of ["ci runner", "José", "Domain Admins", "платформа"]) expect(cleanText(ok, 100)).toBe(ok);
    expect(cleanText("x".repeat(101), 100)).toBeUndefined();
    expect(cleanGroup(7)).toBeUndefined();
    expect(cleanGroup("g\u200Dx")).toBeUndefined();
  });

  it("lower-cases email-shaped person names only (opaque subjects stay case-sensitive)", () => {
    expect(personName("Frank@Corp.Test")).toBe("frank@corp.test");
    expect(personName("AbC-123")).toBe("AbC-123");
    expect(personName("a@b@c")).toBe("a@b@c");
  });
});

describe("TrustedIssuers (no network)", () => {
  const issuers = new TrustedIssuers({
    issuers: parseConfig({ oidc: [{ issuer: "https://idp.example.com", audience: "airlock" }] }).oidc,
    logger,
  });

  it("refuses tokens of an untrusted issuer before fetching anything", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await new SignJWT({ sub: "x" }).setProtectedHeader({ alg: "RS256" }).setIssuer("https://evil.example.com").setExpirationTime("5m").sign(privateKey);
    await expect(issuers.verify(token)).rejects.toMatchObject({ code: "GW_AUTH_INVALID", message: "invalid token: untrusted issuer" });
  });

  it("refuses by shape and header before any key lookup", async () => {
    const h = (o: object): string => Buffer.from(JSON.stringify(o)).toString("base64url");
    const p = h({ iss: "https://idp.example.com", sub: "x", exp: 9_999_999_999 });
    await expect(issuers.verify(`${h({ alg: "none" })}.${p}.`)).rejects.toMatchObject({ message: expect.stringContaining("not accepted") as unknown });
    await expect(issuers.verify(`${h({ alg: "HS256" })}.${p}.AAAA`)).rejects.toMatchObject({ message: expect.stringContaining("not accepted") as unknown });
    await expect(issuers.verify(`${h({ alg: "RS256", crit: ["x"] })}.${p}.AAAA`)).rejects.toMatchObject({ message: expect.stringContaining("critical") as unknown });
    await expect(issuers.verify(`${h({ alg: "RS256", typ: "JWE" })}.${p}.AAAA`)).rejects.toMatchObject({ message: expect.stringContaining("type") as unknown });
    await expect(issuers.verify(`${h({ alg: "RS256", kid: "a b" })}.${p}.AAAA`)).rejects.toMatchObject({ message: expect.stringContaining("key id") as unknown });
    await expect(issuers.verify("a.b.c.d.e")).rejects.toMatchObject({ message: expect.stringContaining("JWE") as unknown });
    await expect(issuers.verify("x".repeat(17_000))).rejects.toMatchObject({ message: expect.stringContaining("too large") as unknown });
    await expect(issuers.verify("")).rejects.toMatchObject({ code: "GW_AUTH_MISSING" });
  });
});

describe("TrustedIssuers against a live JWKS (loopback)", () => {
  it("discovers the keys, follows a key rotation via an unknown kid, and drops a removed key", async () => {
    const { createServer } = await import("node:http");
    const { exportJWK } = await import("jose");
    const a = await generateKeyPair("ES256");
    const b = await generateKeyPair("ES256");
    const jwkA = { ...(await exportJWK(a.publicKey)), kid: "a", alg: "ES256", use: "sig" };
    const jwkB = { ...(await exportJWK(b.publicKey)), kid: "b", alg: "ES256", use: "sig" };
    let keys: object[] = [jwkA];
    let fetches = 0;
    const server = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/jwks") {
        fetches++;
        res.end(JSON.stringify({ keys }));
      } else {
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    const issuer = `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`;
    try {
      const ti = new TrustedIssuers({
        issuers: parseConfig({ oidc: [{ issuer, audience: "airlock", alias: "live" }] }).oidc,
        logger,
        jwksCooldownMs: 0,
      });
      const sign = (key: typeof a.privateKey, kid: string): Promise<string> =>
        new SignJWT({ groups: ["g"] }).setProtectedHeader({ alg: "ES256", kid }).setIssuer(issuer).setAudience("airlock").setSubject("job-1").setExpirationTime("5m").sign(key);
      await expect(ti.verify(await sign(a.privateKey, "a"))).resolves.toMatchObject({ principal: { id: "wl:live:job-1", groups: ["g"] } });
      await ti.verify(await sign(a.privateKey, "a"));
      expect(fetches).toBe(1); // cached
      keys = [jwkB];
      await expect(ti.verify(await sign(b.privateKey, "b"))).resolves.toMatchObject({ principal: { id: "wl:live:job-1" } });
      expect(fetches).toBe(2);
      await expect(ti.verify(await sign(a.privateKey, "a"))).rejects.toMatchObject({ code: "GW_AUTH_INVALID" });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe("claims mapped to a configured service account", () => {
  it("parses principal.serviceAccount and refuses mixing it with a person/workload rule", () => {
    const parsed = parseConfig({ oidc: [{ issuer: "https://idp.example.com", audience: "airlock", principal: { serviceAccount: { claim: "client_id" } } }] }).oidc[0];
    expect(parsed?.principal).toEqual({ serviceAccount: { claim: "client_id", prefix: "" } });
    expect(() => parseConfig({ oidc: [{ issuer: "https://idp.example.com", audience: "airlock", principal: { kind: "person", serviceAccount: { claim: "sub" } } }] })).toThrow();
  });

  it("maps sub to sa:<name> with the account's configured groups, refuses unknown accounts, and falls through two rules of one issuer in order", async () => {
    const { createServer } = await import("node:http");
    const { exportJWK } = await import("jose");
    const k = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(k.publicKey)), kid: "k", alg: "ES256", use: "sig" };
    const server = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(req.url === "/jwks" ? { keys: [jwk] } : { issuer, jwks_uri: `${issuer}/jwks` }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    const issuer = `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`;
    const accounts = new Map([["ci-bot", { name: "ci-bot", groups: ["agents"] }]]);
    const sign = (sub: string, extra: Record<string, unknown> = {}): Promise<string> =>
      new SignJWT({ groups: ["platform"], ...extra }).setProtectedHeader({ alg: "ES256", kid: "k" }).setIssuer(issuer).setAudience("airlock").setSubject(sub).setExpirationTime("5m").sign(k.privateKey);
    try {
      const only = new TrustedIssuers({
        issuers: parseConfig({ oidc: [{ issuer, audience: "airlock", alias: "ci", principal: { serviceAccount: { claim: "sub" } } }] }).oidc,
        logger,
        serviceAccount: (n) => accounts.get(n),
      });
      const v = await only.verify(await sign("ci-bot"));
      // The account's groups, not the token's `platform`: an issuer cannot widen a service account.
      expect(v.principal).toMatchObject({ kind: "service_account", id: "sa:ci-bot", name: "ci-bot", groups: ["agents"] });
      expect(v.principal.expiresAt).toBeInstanceOf(Date);
      await expect(only.verify(await sign("ghost"))).rejects.toMatchObject({ code: "GW_AUTH_INVALID", message: "invalid token: claim sub names no configured service account" });
      // Removing the account from the configuration takes effect at the next verification.
      accounts.delete("ci-bot");
      await expect(only.verify(await sign("ci-bot"))).rejects.toMatchObject({ code: "GW_AUTH_INVALID" });
      accounts.set("ci-bot", { name: "ci-bot", groups: ["agents"] });

      // Two rules for one issuer, tried in order: service accounts for tokens of the deploy
      // pipeline, every other job of the same issuer a workload.
      const two = new TrustedIssuers({
        issuers: parseConfig({
          oidc: [
            { issuer, audience: "airlock", alias: "ci", claims: { pipeline: "deploy" }, principal: { serviceAccount: { claim: "sub" } } },
            { issuer, audience: "airlock", alias: "ci", principal: { kind: "workload", name: "sub" } },
          ],
        }).oidc,
        logger,
        serviceAccount: (n) => accounts.get(n),
      });
      expect((await two.verify(await sign("ci-bot", { pipeline: "deploy" }))).principal).toMatchObject({ id: "sa:ci-bot", groups: ["agents"] });
      expect((await two.verify(await sign("ci-bot", { pipeline: "test" }))).principal).toMatchObject({ kind: "workload", id: "wl:ci:ci-bot", groups: ["platform"] });
      expect((await two.verify(await sign("job-7", { pipeline: "deploy" }))).principal).toMatchObject({ kind: "workload", id: "wl:ci:job-7" });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
