/**
 * Independent red-team suite for the identity layer (issue 4), run after the author's own
 * attack suite (identity.attacks.test.ts). Real OpenID provider, real gateway, real
 * PostgreSQL; every credential goes through the wire: node-postgres (28P01) and the API (401).
 *
 * Covered here: odd-typed and out-of-range time claims, `iss` spelling variants, unverified
 * email claims (impersonation), lookalike/format characters in names, groups-claim injection
 * into control-plane roles, principals that could not be revoked (whitespace, case variants),
 * token-exchange abuse (another principal, lifetime extension, absurd expiry), role escalation
 * with an external JWT, and open redirects on the login route.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
let idp: TestOidcProvider;
let t: TestGateway;

const EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const now = (): number => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  pgServer = await startPostgres({ users: [{ name: "app", password: "app-pw-redteam", auth: "scram-sha-256" }], databases: ["orders"] });
  idp = await startOidcProvider([{ clientId: "web", grantTypes: ["authorization_code"], redirectUris: ["http://127.0.0.1/cb"] }]);
  t = await startTestGateway({
    oidc: [
      // Workloads: aud `airlock`, named by sub.
      { issuer: idp.issuer, alias: "idp", audience: "airlock", principal: { kind: "workload", name: "sub", prefix: "" } },
      // People: aud `airlock-people`, named by their email.
      { issuer: idp.issuer, alias: "idp", audience: "airlock-people", principal: { kind: "person", name: "email", prefix: "" }, clientId: "web" },
    ],
    roles: { admin: ["platform-admins"], auditor: ["security"] },
    connections: [
      { type: "postgres", name: "orders", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-redteam", sslmode: "disable", groups: ["agents"] },
    ],
  });
});

afterAll(async () => {
  await t.stop();
  await idp.close();
  await pgServer.stop();
});

function workload(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: idp.issuer, aud: "airlock", sub: "agent-rt", groups: ["agents"], iat: now(), exp: now() + 300, ...extra };
}
function person(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: idp.issuer, aud: "airlock-people", sub: "u-123", email: "dana@corp.test", email_verified: true, groups: ["agents"], iat: now(), exp: now() + 300, ...extra };
}

async function pgCode(token: string): Promise<string | undefined> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "x", password: token });
  c.on("error", () => undefined);
  try {
    await c.connect();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function authFailureCount(): Promise<number> {
  await t.gw.audit.flush();
  return (await t.gw.store.readAudit(0, 100_000)).filter((r) => r.type === "auth.failure").length;
}

/** Refused as the psql password (28P01) and as an API bearer (401), each audited once. */
async function expectRefused(name: string, token: string): Promise<void> {
  const before = await authFailureCount();
  expect(await pgCode(token), `${name}: postgres`).toBe("28P01");
  const res = await fetch(`${t.apiUrl}/v1/auth/whoami`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, `${name}: api`).toBe(401);
  expect(await authFailureCount(), `${name}: audited`).toBe(before + 2);
}

async function whoami(token: string): Promise<{ status: number; body: { principal?: { id: string; name: string; groups: string[] }; roles?: string[] } }> {
  const res = await fetch(`${t.apiUrl}/v1/auth/whoami`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { principal?: { id: string; name: string; groups: string[] }; roles?: string[] } };
}

async function exchange(subject: string, extra: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${t.apiUrl}/v1/token/exchange`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: EXCHANGE_GRANT, subject_token: subject, subject_token_type: JWT_TYPE, ...extra }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function revoke(principalId: string): Promise<number> {
  return (await t.api(`/v1/principals/${encodeURIComponent(principalId)}/revoke`, { body: {} })).status;
}

describe("sanity", () => {
  it("a well-formed workload and person token are accepted", async () => {
    expect(await pgCode(await idp.sign(workload()))).toBeUndefined();
    const who = await whoami(await idp.sign(person()));
    expect(who.body.principal).toMatchObject({ id: "user:dana@corp.test" });
  });
});

describe("claims of odd type or range: refused on both paths, audited", () => {
  const cases: [string, () => Record<string, unknown>][] = [
    ["exp as a string", () => workload({ exp: String(now() + 300) })],
    ["exp beyond any representable date", () => workload({ exp: 1e13 })],
    ["exp = Infinity-like huge number", () => workload({ exp: 1e300 })],
    ["exp negative", () => workload({ exp: -1 })],
    ["nbf far in the future", () => workload({ nbf: 1e13 })],
    ["nbf as a string", () => workload({ nbf: "0" })],
    ["iat as a string", () => workload({ iat: "0" })],
    ["iat far in the future", () => workload({ iat: now() + 86_400 })],
    ["sub missing", () => workload({ sub: undefined })],
    ["sub a number", () => workload({ sub: 12345 })],
    ["aud empty array", () => workload({ aud: [] })],
    ["aud a number", () => workload({ aud: 1 })],
    ["iss with upper-case scheme and host", () => workload({ iss: idp.issuer.toUpperCase() })],
    ["iss with a trailing #", () => workload({ iss: `${idp.issuer}#` })],
    ["iss with a trailing ?", () => workload({ iss: `${idp.issuer}?` })],
    ["iss with a trailing space", () => workload({ iss: `${idp.issuer} ` })],
    ["iss with /. appended", () => workload({ iss: `${idp.issuer}/.` })],
    ["iss as an array", () => workload({ iss: [idp.issuer] })],
    ["person: email_verified false (someone else's address)", () => person({ email: "ceo@corp.test", email_verified: false })],
    ["person: email_verified \"false\" as a string", () => person({ email: "ceo@corp.test", email_verified: "false" })],
    ["name with a right-to-left override (lookalike)", () => workload({ sub: "agent\u202Etr-" })],
    ["name with a zero-width space (lookalike)", () => workload({ sub: "agent-rt\u200B" })],
    ["name with a line separator", () => workload({ sub: "agent\u2028rt" })],
  ];
  for (const [name, make] of cases) {
    it(name, async () => {
      // An undefined claim means "absent".
      const c = Object.fromEntries(Object.entries(make()).filter(([, v]) => v !== undefined));
      await expectRefused(name, await idp.sign(c));
    });
  }

  it("a kid longer than 256 characters, even signed by the real key", async () => {
    await expectRefused("long kid", await idp.sign(workload(), { kid: "k".repeat(300) }));
  });
});

describe("groups-claim injection into control-plane roles", () => {
  const notAdmin: [string, unknown][] = [
    ["Cyrillic lookalike", ["plаtform-admins"]],
    ["trailing space", ["platform-admins "]],
    ["different case", ["Platform-Admins"]],
    ["with a NUL", ["platform-admins\u0000"]],
    ["with a zero-width joiner", ["platform\u200D-admins"]],
    ["a list with a non-string member (whole list ignored)", ["platform-admins", 7]],
    ["an object keyed by the group", { "platform-admins": true }],
    ["a nested list", [["platform-admins"]]],
  ];
  for (const [name, groups] of notAdmin) {
    it(`${name}: not admin`, async () => {
      const who = await whoami(await idp.sign(workload({ sub: "groups-probe", groups })));
      expect(who.status).toBe(200);
      expect(who.body.roles).toEqual(["user"]);
      const admin = await t.api("/v1/tokens", { token: await idp.sign(workload({ sub: "groups-probe", groups })), body: { serviceAccount: "x" } });
      expect(admin.status).toBe(403);
    });
  }

  it("the exact group grants admin (the mapping works, so the refusals above mean something)", async () => {
    const who = await whoami(await idp.sign(workload({ sub: "real-admin", groups: ["platform-admins"] })));
    expect(who.body.roles).toContain("admin");
  });

  it("a workload without an admin group cannot use admin routes", async () => {
    const token = await idp.sign(workload({ sub: "plain" }));
    expect((await t.api(`/v1/principals/${encodeURIComponent("wl:idp:victim")}/revoke`, { token, body: {} })).status).toBe(403);
    expect((await t.api("/v1/tokens", { token, body: { serviceAccount: "x" } })).status).toBe(403);
    expect((await t.api("/v1/sessions", { token })).status).toBe(403);
    expect((await t.api("/v1/audit", { token })).status).toBe(403);
  });
});

describe("revocation gaps", () => {
  it("a principal whose name has a space can be revoked, and is then refused", async () => {
    const jwt = await idp.sign(workload({ sub: "ci runner" }));
    expect((await whoami(jwt)).body.principal?.id).toBe("wl:idp:ci runner");
    expect(await revoke("wl:idp:ci runner")).toBe(200);
    await expectRefused("revoked (space)", await idp.sign(workload({ sub: "ci runner" })));
  });

  it("blocking a person's email also blocks its case variants (another IdP, or the same one echoing what was typed)", async () => {
    const before = await exchange(await idp.sign(person({ email: "Frank@Corp.test" })));
    expect(before.status).toBe(200);
    expect(await revoke("user:frank@corp.test")).toBe(200);
    await expectRefused("case variant of a blocked person", await idp.sign(person({ email: "FRANK@corp.test" })));
    // The token issued before the block, under the other spelling, is refused too.
    await expectRefused("earlier token of the blocked person", before.body["access_token"] as string);
    expect((await exchange(await idp.sign(person({ email: "frank@CORP.TEST" })))).body).toMatchObject({ error_code: "GW_AUTH_REVOKED" });
    // The admin may type any spelling too.
    const res = await t.api(`/v1/principals/${encodeURIComponent("user:FRANK@Corp.Test")}/revoke`, { body: {} });
    expect(res.body).toMatchObject({ principalId: "user:frank@corp.test" });
  });

  it("a token exchanged before a block is refused after it, and re-exchange is refused", async () => {
    const jwt = await idp.sign(workload({ sub: "pre-block" }));
    const ex = await exchange(jwt);
    expect(ex.status).toBe(200);
    const airlockToken = ex.body["access_token"] as string;
    expect(await pgCode(airlockToken)).toBeUndefined();
    expect(await revoke("wl:idp:pre-block")).toBe(200);
    await expectRefused("exchanged before the block", airlockToken);
    await expectRefused("the original JWT", jwt);
    expect((await exchange(jwt)).body).toMatchObject({ error: "invalid_grant", error_code: "GW_AUTH_REVOKED" });
  });
});

describe("token exchange abuse", () => {
  it("cannot ask for another principal, audience or a longer life", async () => {
    const jwt = await idp.sign(workload({ sub: "exch-1" }));
    const res = await exchange(jwt, {
      ttl: "99999h",
      audience: "admin",
      resource: "urn:airlock:admin",
      scope: "admin",
      requested_subject: "sa:ci-bot",
      actor_token: await idp.sign(workload({ sub: "platform", groups: ["platform-admins"] })),
      actor_token_type: JWT_TYPE,
    });
    expect(res.status).toBe(200);
    expect(res.body["principal"]).toMatchObject({ id: "wl:idp:exch-1", groups: ["agents"] });
    // The subject JWT expires in 300 s: the Airlock token never outlives it.
    expect(res.body["expires_in"]).toBeLessThanOrEqual(300);
    const who = await whoami(res.body["access_token"] as string);
    expect(who.body.roles).toEqual(["user"]);
  });

  it("an Airlock token is not an exchangeable subject (no lifetime extension by re-exchange)", async () => {
    const first = await exchange(await idp.sign(workload({ sub: "exch-2" })));
    const again = await exchange(first.body["access_token"] as string);
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: "invalid_grant", error_code: "GW_AUTH_INVALID" });
  });

  it("a subject token with an absurd expiry is refused cleanly (400, not 500)", async () => {
    const res = await exchange(await idp.sign(workload({ sub: "exch-3", exp: 1e13 })));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: "invalid_grant" });
  });
});

describe("login routes", () => {
  it("never redirects to an issuer that is not configured", async () => {
    for (const issuer of ["https://evil.test", "//evil.test", `${idp.issuer}.evil.test`, `${idp.issuer}/../evil`, "idp-other"]) {
      const res = await fetch(`${t.apiUrl}/v1/auth/oidc/login?issuer=${encodeURIComponent(issuer)}`, { redirect: "manual" });
      expect(res.status, issuer).toBe(404);
      expect(res.headers.get("location"), issuer).toBeNull();
    }
    const ok = await fetch(`${t.apiUrl}/v1/auth/oidc/login`, { redirect: "manual" });
    expect(ok.status).toBe(302);
    expect(new URL(ok.headers.get("location") ?? "").origin).toBe(new URL(idp.issuer).origin);
    const cookie = ok.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
  });

  it("a callback carrying markup in its query renders it inert", async () => {
    const res = await fetch(`${t.apiUrl}/v1/auth/oidc/callback?state=%3Cscript%3Ealert(1)%3C/script%3E&error=%3Cimg%20src=x%3E`);
    expect(res.status).toBe(401);
    const html = await res.text();
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<img");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
  });
});
