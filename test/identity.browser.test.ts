/**
 * People's login in a real browser: headless Chromium → the gateway's /v1/auth/oidc/login →
 * a real OpenID provider's login and consent pages → the gateway's callback page showing an
 * Airlock token for the person, with groups from the IdP; the token then works on psql and the
 * API, and removing a person's group at the IdP takes effect at their next login.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { completeDevLogin, chromiumAvailable, launchBrowser, loopbackPage } from "./harness/browser.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";
import { freePort } from "./harness/ports.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
let idp: TestOidcProvider;
let t: TestGateway;
let browser: Browser;
const WEB_SECRET = "web-secret-0123456789abcdef0123456789abcdef";

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error("chromium is missing: run scripts/ensure-system-deps.sh as root");
  pgServer = await startPostgres({ users: [{ name: "app", password: "app-pw-browser", auth: "scram-sha-256" }], databases: ["orders"] });
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  idp = await startOidcProvider([
    { clientId: "airlock-web", clientSecret: WEB_SECRET, grantTypes: ["authorization_code"], redirectUris: [`${apiUrl}/v1/auth/oidc/callback`] },
  ]);
  idp.groupsOf.set("alice", ["engineers", "dba"]);
  process.env["AIRLOCK_TEST_WEB_SECRET"] = WEB_SECRET;
  t = await startTestGateway({
    listen: { api: `127.0.0.1:${apiPort}`, postgres: "127.0.0.1:0" },
    login: { publicUrl: apiUrl },
    roles: { approver: ["dba"] },
    oidc: [
      {
        issuer: idp.issuer,
        alias: "corp",
        audience: "airlock-web",
        clientId: "airlock-web",
        clientSecret: "env:AIRLOCK_TEST_WEB_SECRET",
        principal: { kind: "person", name: "email" },
        scopes: ["openid", "email", "groups"],
      },
    ],
    connections: [
      { type: "postgres", name: "orders", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-browser", sslmode: "disable", groups: ["dba"] },
    ],
  });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser.close();
  await t.stop();
  await idp.close();
  await pgServer.stop();
});

async function loginInBrowser(login: string): Promise<{ token: string; groups: string; html: string }> {
  const { context, page } = await loopbackPage(browser);
  try {
    await page.goto(`${t.apiUrl}/v1/auth/oidc/login`);
    await completeDevLogin(page, login);
    await page.waitForSelector("#token", { timeout: 15_000 });
    const token = await page.inputValue("#token");
    const groups = (await page.textContent("#groups")) ?? "";
    return { token, groups, html: await page.content() };
  } finally {
    await context.close();
  }
}

describe("OIDC login (authorization code + PKCE) in Chromium", () => {
  it("signs a person in and shows an Airlock token carrying their email and groups", async () => {
    const r = await loginInBrowser("alice");
    expect(r.token.split(".")).toHaveLength(3);
    expect(r.groups).toBe("engineers, dba");

    const who = await t.api("/v1/auth/whoami", { token: r.token });
    expect(who.body).toMatchObject({ principal: { id: "user:alice@example.com", kind: "person", name: "alice@example.com", groups: ["engineers", "dba"] }, roles: ["approver", "user"] });
    const q = await t.psql("orders", r.token, ["-At", "-c", "select current_user"]);
    expect(q.stdout.trim()).toBe("app");

    await t.gw.audit.flush();
    const records = await t.gw.store.readAudit(0, 1000);
    const login = records.find((a) => a.type === "token.create" && a.details?.["via"] === "oidc");
    expect(login?.principal?.id).toBe("user:alice@example.com");
    expect(JSON.stringify(records)).not.toContain(r.token);
  });

  it("removing a person's group at the IdP takes effect at their next login", async () => {
    idp.groupsOf.set("alice", ["engineers"]);
    const r = await loginInBrowser("alice");
    expect(r.groups).toBe("engineers");
    const q = await t.psql("orders", r.token, ["-At", "-c", "select 1"]);
    expect(q.code).not.toBe(0);
    expect(q.stderr).toContain("airlock:");
    idp.groupsOf.set("alice", ["engineers", "dba"]);
  });

  it("refuses a callback without the login's cookie, a replayed state, and a forged state", async () => {
    const forged = await fetch(`${t.apiUrl}/v1/auth/oidc/callback?state=forged&code=abc`);
    expect(forged.status).toBe(401);
    expect(forged.headers.get("content-security-policy")).toContain("default-src 'none'");
    // Start a login, but present its callback from a client that does not hold the cookie.
    const start = await fetch(`${t.apiUrl}/v1/auth/oidc/login`, { redirect: "manual" });
    expect(start.status).toBe(302);
    const location = new URL(start.headers.get("location") ?? "");
    expect(location.searchParams.get("code_challenge_method")).toBe("S256");
    expect(location.searchParams.get("nonce")).not.toBeNull();
    const state = location.searchParams.get("state") ?? "";
    const noCookie = await fetch(`${t.apiUrl}/v1/auth/oidc/callback?state=${encodeURIComponent(state)}&code=abc`);
    expect(noCookie.status).toBe(401);
    // The state was consumed by that attempt: with the right cookie it is still refused now.
    const cookie = (start.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const replay = await fetch(`${t.apiUrl}/v1/auth/oidc/callback?state=${encodeURIComponent(state)}&code=abc`, { headers: { cookie } });
    expect(replay.status).toBe(401);
    await t.gw.audit.flush();
    const failures = (await t.gw.store.readAudit(0, 1000)).filter((a) => a.type === "auth.failure" && a.protocol === "api");
    expect(failures.length).toBeGreaterThanOrEqual(3);
  });

  it("escapes what the IdP says about a person on the result page", async () => {
    idp.groupsOf.set("mallory", ["<script>alert(1)</script>", "dba"]);
    const r = await loginInBrowser("mallory");
    expect(r.html).not.toContain("<script>alert(1)</script>");
    expect(r.groups).toContain("<script>alert(1)</script>");
  });
});
