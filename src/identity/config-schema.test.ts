import { describe, expect, it } from "vitest";
import { isGatewayError } from "../core/errors.js";
import { parseConfig } from "../runtime/config.js";

function configError(doc: unknown): string {
  try {
    parseConfig(doc);
  } catch (e) {
    if (isGatewayError(e)) return e.message;
    throw e;
  }
  throw new Error("expected a configuration error");
}

const issuer = { issuer: "https://idp.example.com", audience: "airlock" };

describe("identity configuration", () => {
  it("applies safe defaults to a trusted issuer", () => {
    const c = parseConfig({ oidc: [issuer] });
    expect(c.oidc[0]).toMatchObject({
      groupsClaim: "groups",
      algorithms: ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"],
      clockSkew: 30_000,
      principal: { kind: "workload", name: "sub", prefix: "" },
      groups: [],
    });
    expect(c.roles).toEqual({ admin: [], approver: [], auditor: [] });
    expect(c.login).toEqual({ tokenTtl: 3_600_000, exchangeTtl: 900_000 });
  });

  it("never accepts none or HMAC algorithms", () => {
    for (const alg of ["none", "HS256", "HS384", "HS512"]) {
      expect(configError({ oidc: [{ ...issuer, algorithms: [alg] }] })).toContain("oidc[0].algorithms[0]");
    }
  });

  it("bounds the clock skew (a large one would keep expired credentials valid)", () => {
    expect(configError({ oidc: [{ ...issuer, clockSkew: "1h" }] })).toContain("oidc[0].clockSkew");
    expect(configError({ login: { publicUrl: "https://a.example.com" }, saml: { entryPoint: "https://idp/sso", idpIssuer: "idp", idpCert: "PEM", clockSkew: 86_400_000 } })).toContain("saml.clockSkew");
    expect(parseConfig({ oidc: [{ ...issuer, clockSkew: "5m" }] }).oidc[0]?.clockSkew).toBe(300_000);
  });

  it("refuses plain http issuers except on loopback", () => {
    expect(configError({ oidc: [{ ...issuer, issuer: "http://idp.example.com" }] })).toContain("https");
    expect(parseConfig({ oidc: [{ ...issuer, issuer: "http://127.0.0.1:9000" }] }).oidc[0]?.issuer).toBe("http://127.0.0.1:9000");
  });

  it("rejects unknown keys and names them", () => {
    expect(configError({ oidc: [{ ...issuer, alg: "RS256" }] })).toContain("alg");
    expect(configError({ roles: { superuser: ["x"] } })).toContain("superuser");
    expect(configError({ login: { ttl: "1h" } })).toContain("ttl");
  });

  it("checks aliases, client secrets and the SAML ACS URL", () => {
    expect(configError({ oidc: [issuer, { ...issuer, issuer: "https://idp.example.com:8443", alias: "idp.example.com" }] })).toContain("alias");
    expect(configError({ oidc: [{ ...issuer, clientSecret: "x" }] })).toContain("needs clientId");
    expect(configError({ saml: { entryPoint: "https://idp/sso", idpIssuer: "idp", idpCert: "PEM" } })).toContain("saml.callbackUrl");
    const ok = parseConfig({ login: { publicUrl: "https://airlock.example.com" }, saml: { entryPoint: "https://idp/sso", idpIssuer: "idp", idpCert: "PEM" } });
    expect(ok.saml).toMatchObject({ issuer: "airlock", groupsAttribute: "groups" });
  });
});
