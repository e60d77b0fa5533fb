/**
 * SAML 2.0 login: the gateway as service provider, a fixture IdP signing assertions with a test
 * key. Good responses give a person an Airlock token; unsigned, tampered, foreign-signed,
 * replayed, unsolicited, wrong-audience and wrong-issuer responses are refused and audited.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { freePort } from "./harness/ports.js";
import { authnRequestId, samlIdpKeys, samlResponse, type ResponseOptions, type SamlIdpKeys } from "./harness/saml.js";

let t: TestGateway;
let keys: SamlIdpKeys;
let otherKeys: SamlIdpKeys;
let acsUrl: string;
const IDP = "https://idp.test/saml";
const SP = "airlock-sp";

beforeAll(async () => {
  keys = await samlIdpKeys();
  otherKeys = await samlIdpKeys();
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  acsUrl = `${apiUrl}/v1/auth/saml/acs`;
  t = await startTestGateway({
    listen: { api: `127.0.0.1:${apiPort}` },
    login: { publicUrl: apiUrl },
    roles: { auditor: ["security"] },
    saml: { entryPoint: "https://idp.test/sso", idpIssuer: IDP, idpCert: keys.cert, issuer: SP, groupsAttribute: "groups", emailAttribute: "email" },
  });
});

afterAll(async () => {
  await t.stop();
});

/** The browser side of the latest login: its binding cookie and the RelayState the IdP echoes. */
interface BrowserLogin {
  readonly cookie: string;
  readonly relayState: string;
}
let current: BrowserLogin = { cookie: "", relayState: "" };

/** Start a login at the gateway (as a browser would); returns the AuthnRequest ID the IdP must answer. */
async function startLogin(): Promise<string> {
  const res = await fetch(`${t.apiUrl}/v1/auth/saml/login`, { redirect: "manual" });
  expect(res.status).toBe(302);
  const location = res.headers.get("location") ?? "";
  expect(location.startsWith("https://idp.test/sso?")).toBe(true);
  const setCookie = res.headers.get("set-cookie") ?? "";
  expect(setCookie).toMatch(/^airlock_saml=[^;]+; HttpOnly; Path=\/v1\/auth\/saml;/);
  current = { cookie: setCookie.split(";")[0] ?? "", relayState: new URL(location).searchParams.get("RelayState") ?? "" };
  expect(current.relayState.length).toBeGreaterThan(20);
  return authnRequestId(location);
}

/** POST a response to the ACS the way the IdP's auto-submitting form does, from the browser `as`. */
async function post(samlResponseB64: string, as: BrowserLogin | null = current): Promise<{ status: number; html: string }> {
  const res = await fetch(acsUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(as === null ? {} : { cookie: as.cookie }) },
    body: new URLSearchParams({ SAMLResponse: samlResponseB64, ...(as === null ? {} : { RelayState: as.relayState }) }).toString(),
  });
  return { status: res.status, html: await res.text() };
}

function tokenOf(html: string): string {
  const m = /<textarea id="token"[^>]*>([^<]+)<\/textarea>/.exec(html);
  if (m?.[1] === undefined) throw new Error(`no token on the page: ${html}`);
  return m[1];
}

function base(inResponseTo: string, extra: Partial<ResponseOptions> = {}): ResponseOptions {
  return { keys, idpIssuer: IDP, audience: SP, acsUrl, inResponseTo, nameId: "erin@example.com", attributes: { email: ["erin@example.com"], groups: ["security", "engineers"] }, ...extra };
}

describe("SAML login", () => {
  it("accepts a signed assertion answering our request, and the token carries email and groups", async () => {
    const id = await startLogin();
    const r = await post(samlResponse(base(id)));
    expect(r.status).toBe(200);
    const token = tokenOf(r.html);
    const who = await t.api("/v1/auth/whoami", { token });
    expect(who.body).toMatchObject({ principal: { id: "user:erin@example.com", kind: "person", groups: ["security", "engineers"] }, roles: ["auditor", "user"] });
    await t.gw.audit.flush();
    const rec = (await t.gw.store.readAudit(0, 1000)).find((a) => a.type === "token.create" && a.details?.["via"] === "saml");
    expect(rec?.principal?.id).toBe("user:erin@example.com");
  });

  it("accepts a signed response around a signed assertion (control for the wrapped-unsigned case)", async () => {
    const id = await startLogin();
    const r = await post(samlResponse(base(id, { signResponse: true })));
    expect(r.status, r.html).toBe(200);
    // SAML has no back channel to re-check groups: the token is short-lived (saml.tokenTtl, default 15m).
    const who = await t.api("/v1/auth/whoami", { token: tokenOf(r.html) });
    const expiresAt = Date.parse((who.body as { principal: { expiresAt: string } }).principal.expiresAt);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(15 * 60_000 + 2000);
    expect(expiresAt - Date.now()).toBeGreaterThan(14 * 60_000);
  });

  it("refuses a replayed response", async () => {
    const id = await startLogin();
    const body = samlResponse(base(id));
    expect((await post(body)).status).toBe(200);
    expect((await post(body)).status).toBe(401);
  });

  it("refuses unsigned, tampered, foreign-signed, unsolicited, wrong-audience, wrong-issuer and expired responses, auditing each", async () => {
    await t.gw.audit.flush();
    const before = (await t.gw.store.readAudit(0, 10_000)).filter((a) => a.type === "auth.failure" && a.protocol === "api").length;
    const cases: [string, (id: string) => string][] = [
      ["unsigned", (id) => samlResponse(base(id, { sign: false }))],
      // The Response's signature is valid (see the next test), but only the assertion's vouches for who signs in.
      ["signed response wrapping an unsigned assertion", (id) => samlResponse(base(id, { sign: false, signResponse: true }))],
      ["tampered groups", (id) => samlResponse(base(id, { mutate: (x) => x.replace("<saml:AttributeValue>engineers</saml:AttributeValue>", "<saml:AttributeValue>admins</saml:AttributeValue>") }))],
      ["tampered subject", (id) => samlResponse(base(id, { mutate: (x) => x.replace(/erin@example\.com/g, "root@example.com") }))],
      ["signed by another key", (id) => samlResponse(base(id, { keys: otherKeys }))],
      [
        "unsolicited (no InResponseTo)",
        () => {
          const { inResponseTo: _drop, ...rest } = base("x");
          return samlResponse(rest);
        },
      ],
      ["answering a request we never made", () => samlResponse(base("_never-issued"))],
      ["wrong audience", (id) => samlResponse(base(id, { audience: "someone-else" }))],
      ["wrong issuer", (id) => samlResponse(base(id, { idpIssuer: "https://evil.test/saml" }))],
      ["expired", (id) => samlResponse(base(id, { notOnOrAfterMs: -10 * 60_000 }))],
      [
        "signature wrapping (a second, unsigned assertion first)",
        (id) =>
          samlResponse(
            base(id, {
              mutate: (x) => {
                const evil = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil" Version="2.0" IssueInstant="${new Date().toISOString()}"><saml:Issuer>${IDP}</saml:Issuer><saml:Subject><saml:NameID>root@example.com</saml:NameID></saml:Subject></saml:Assertion>`;
                return x.replace("<saml:Assertion ", `${evil}<saml:Assertion `);
              },
            }),
          ),
      ],
    ];
    for (const [name, make] of cases) {
      const id = await startLogin();
      const r = await post(make(id));
      expect(r.status, name).toBe(401);
      expect(r.html, name).not.toContain('id="token"');
    }
    const garbage = await post("not-base64-xml");
    expect(garbage.status).toBe(401);
    await t.gw.audit.flush();
    const after = (await t.gw.store.readAudit(0, 10_000)).filter((a) => a.type === "auth.failure" && a.protocol === "api").length;
    expect(after - before).toBe(cases.length + 1);
  });
});

/** Red-team cases (independent review of issue 4): what a login with each response yields. */
describe("SAML red team", () => {
  /** The principal a response logs in as, or undefined when it is refused (401, no token). */
  async function loginAs(make: (id: string) => string): Promise<{ id: string; groups: string[]; roles: string[] } | undefined> {
    const r = await post(make(await startLogin()));
    if (r.status === 401) {
      expect(r.html).not.toContain('id="token"');
      return undefined;
    }
    expect(r.status).toBe(200);
    const who = await t.api("/v1/auth/whoami", { token: tokenOf(r.html) });
    const body = who.body as { principal: { id: string; groups: string[] }; roles: string[] };
    return { id: body.principal.id, groups: body.principal.groups, roles: body.roles };
  }
  const evil = "erin@example.com.evil.test";

  it("comment injection in the email attribute and in the NameID cannot truncate the signed identity", async () => {
    // The IdP signed `erin@example.com.evil.test` (its own user); comments are outside the
    // canonical form, so inserting one keeps the signature valid. A parser taking the first
    // text node would log in as erin@example.com.
    const inAttribute = await loginAs((id) =>
      samlResponse(base(id, { nameId: evil, attributes: { email: [evil], groups: ["engineers"] }, mutate: (x) => x.split(evil).join("erin@example.com<!---->.evil.test") })),
    );
    expect(inAttribute === undefined || inAttribute.id === `user:${evil}`).toBe(true);
    const inNameId = await loginAs((id) =>
      samlResponse(base(id, { nameId: evil, attributes: { groups: ["engineers"] }, mutate: (x) => x.split(evil).join("erin@example.com<!---->.evil.test") })),
    );
    expect(inNameId === undefined || inNameId.id === `user:${evil}`).toBe(true);
  });

  it("two validly signed assertions (for two people) in one response are refused", async () => {
    const other = Buffer.from(samlResponse(base("_x", { nameId: "root@example.com", attributes: { email: ["root@example.com"], groups: ["security"] } })), "base64").toString("utf8");
    const rootAssertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(other)?.[0] ?? "";
    expect(rootAssertion.length).toBeGreaterThan(0);
    for (const where of ["before", "after"] as const) {
      const got = await loginAs((id) =>
        samlResponse(base(id, { mutate: (x) => (where === "before" ? x.replace("<saml:Assertion ", `${rootAssertion}<saml:Assertion `) : x.replace("</samlp:Response>", `${rootAssertion}</samlp:Response>`)) })),
      );
      expect(got, where).toBeUndefined();
    }
  });

  it("unsigned attributes outside the signed assertion are not honoured", async () => {
    const got = await loginAs((id) =>
      samlResponse(
        base(id, {
          attributes: { email: ["erin@example.com"], groups: ["engineers"] },
          mutate: (x) => x.replace("</samlp:Response>", `<saml:AttributeStatement><saml:Attribute Name="groups"><saml:AttributeValue>admins</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></samlp:Response>`),
        }),
      ),
    );
    expect(got === undefined || !got.groups.includes("admins")).toBe(true);
  });

  it("a DOCTYPE with an entity (XXE, billion laughs) is refused", async () => {
    const got = await loginAs((id) =>
      samlResponse(base(id, { mutate: (x) => `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd"><!ENTITY a "aaaaaaaaaa">]>${x.replace("engineers", "&e;&a;")}` })),
    );
    expect(got).toBeUndefined();
  });

  it("an email spelled with capitals is the same person; invisible characters in groups are dropped", async () => {
    const got = await loginAs((id) =>
      samlResponse(base(id, { nameId: "Erin@Example.COM", attributes: { email: ["Erin@Example.COM"], groups: ["securit\u200By", "engineers"] } })),
    );
    expect(got).toEqual({ id: "user:erin@example.com", groups: ["engineers"], roles: ["user"] });
  });

  it("an email with an invisible character is refused (no lookalike people)", async () => {
    expect(await loginAs((id) => samlResponse(base(id, { attributes: { email: ["erin\u200B@example.com"] } })))).toBeUndefined();
  });

  it("login CSRF: a response for the attacker's own login, posted from the victim's browser, is refused", async () => {
    // The attacker starts a login, gets a genuine response for themselves from the IdP ...
    const attackerId = await startLogin();
    const attacker = current;
    const attackerResponse = samlResponse(base(attackerId, { nameId: "mallory@example.com", attributes: { email: ["mallory@example.com"] } }));
    // ... and has the victim's browser post it: the victim has their own (or no) login cookie.
    await startLogin();
    const victim = current;
    // Even with the victim's complete binding (say the attacker learnt the victim's RelayState),
    // the response answers the attacker's request, not the victim's.
    expect((await post(attackerResponse, victim)).status).toBe(401);
    expect((await post(attackerResponse, { cookie: victim.cookie, relayState: attacker.relayState })).status).toBe(401);
    expect((await post(attackerResponse, { cookie: "", relayState: attacker.relayState })).status).toBe(401);
    expect((await post(attackerResponse, null)).status).toBe(401);
    // The binding is single use, and a relay state without its cookie burnt it: start again.
    expect((await post(attackerResponse, attacker)).status).toBe(401);
    const id = await startLogin();
    expect((await post(samlResponse(base(id)))).status).toBe(200);
  });
});
