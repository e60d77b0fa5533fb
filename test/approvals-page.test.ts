/**
 * The approval page (src/api/approval-page.ts) end to end: a real PostgreSQL 15 behind the real
 * gateway, node-postgres holding statements, a local webhook receiver catching the notification
 * link, a real OpenID provider, and headless Chromium signing an approver in and clicking
 * Approve / Deny. Plus the page's refusals over plain HTTP: no login → the login, cross-site
 * and CSRF-less forms, people who may not see or decide a request.
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_SESSION_COOKIE } from "../src/api/approval-page.js";
import { chromiumAvailable, completeDevLogin, launchBrowser, loopbackPage } from "./harness/browser.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";
import { freePort } from "./harness/ports.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { authnRequestId, samlIdpKeys, samlResponse } from "./harness/saml.js";
import { until } from "./harness/until.js";

let pgServer: PgServer;
let idp: TestOidcProvider;
let t: TestGateway;
let browser: Browser;
let hooks: Server;
const notices: { url?: string; apiUrl?: string; type?: string; request?: { id: string; statement?: string } }[] = [];
const tokens: Record<string, string> = {};
const WEB_SECRET = "web-secret-approval-page-0123456789abcdef";

function client(token: string): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "agent", password: token });
  c.on("error", () => undefined);
  return c;
}

/** The notification link of the request whose statement contains `text` (from the webhook receiver). */
function linkFor(text: string): Promise<{ id: string; url: string; apiUrl: string }> {
  return until(`a notification for "${text}"`, () => {
    const n = notices.find((x) => x.type === "approval.requested" && x.request?.statement?.includes(text) === true);
    return n?.url === undefined || n.apiUrl === undefined || n.request === undefined ? undefined : { id: n.request.id, url: n.url, apiUrl: n.apiUrl };
  });
}

/** Hold a statement as `who` (simple protocol); resolves with the statement's outcome. */
function hold(who: string, sql: string): { done: Promise<{ rows?: unknown[]; error?: { code?: string; message: string } }>; end: () => Promise<void> } {
  const c = client(tokens[who] ?? "");
  const done = c.connect().then(
    () =>
      c.query(sql).then(
        (r) => ({ rows: r.rows }),
        (e: unknown) => ({ error: e as { code?: string; message: string } }),
      ),
    (e: unknown) => ({ error: e as { code?: string; message: string } }),
  );
  return { done, end: () => c.end().catch(() => undefined) };
}

function cookieOf(token: string): string {
  return `${WEB_SESSION_COOKIE}=${token}`;
}

async function page(path: string, init: { cookie?: string; method?: string; body?: Record<string, string>; origin?: string | null } = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (init.cookie !== undefined) headers["cookie"] = init.cookie;
  if (init.body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  const origin = init.origin === undefined ? t.apiUrl : init.origin;
  if (init.method === "POST" && origin !== null) headers["origin"] = origin;
  return fetch(`${t.apiUrl}${path}`, {
    method: init.method ?? "GET",
    headers,
    redirect: "manual",
    ...(init.body === undefined ? {} : { body: new URLSearchParams(init.body).toString() }),
  });
}

function csrfIn(html: string): string {
  const m = /name="csrf" value="([^"]+)"/u.exec(html);
  if (m?.[1] === undefined) throw new Error("no form on the page");
  return m[1];
}

async function status(id: string): Promise<string> {
  const r = await t.api(`/v1/approvals/${id}`);
  return (r.body as { request: { status: string } }).request.status;
}

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error("chromium is missing: run scripts/ensure-system-deps.sh as root");
  pgServer = await startPostgres({ users: [{ name: "app", password: "app-pw-page", auth: "scram-sha-256" }], databases: ["orders"] });
  await pgServer.psql(
    `create table items (id int primary key, name text not null);
     insert into items select g, 'item ' || g from generate_series(1, 20) g;
     alter table items owner to app;`,
    { database: "orders" },
  );
  hooks = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        notices.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as (typeof notices)[number]);
      } catch {
        // not JSON: ignored
      }
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => hooks.listen(0, "127.0.0.1", resolve));
  const hookPort = (hooks.address() as AddressInfo).port;

  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  idp = await startOidcProvider([
    { clientId: "airlock-web", clientSecret: WEB_SECRET, grantTypes: ["authorization_code"], redirectUris: [`${apiUrl}/v1/auth/oidc/callback`] },
  ]);
  idp.groupsOf.set("alice", ["dba"]);
  process.env["AIRLOCK_TEST_PAGE_WEB_SECRET"] = WEB_SECRET;
  t = await startTestGateway({
    listen: { api: `127.0.0.1:${apiPort}`, postgres: "127.0.0.1:0" },
    login: { publicUrl: apiUrl },
    roles: { approver: ["dba"], auditor: ["security"] },
    oidc: [
      {
        issuer: idp.issuer,
        alias: "corp",
        audience: "airlock-web",
        clientId: "airlock-web",
        clientSecret: "env:AIRLOCK_TEST_PAGE_WEB_SECRET",
        principal: { kind: "person", name: "email" },
        scopes: ["openid", "email", "groups"],
      },
    ],
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "dba-agent", groups: ["agents", "dba"] },
      { name: "outsider", groups: ["agents"] },
    ],
    connections: [
      { type: "postgres", name: "orders", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-page", sslmode: "disable", groups: ["agents"] },
    ],
    policies: [{ name: "writes-need-approval", match: { operations: ["update", "delete"] }, action: "require_approval", approvers: ["dba"] }],
    approvals: { publicUrl: apiUrl, webhooks: [{ url: `http://127.0.0.1:${hookPort}/hook`, retryDelay: "50ms" }] },
  });
  for (const sa of ["agent", "dba-agent", "outsider"]) tokens[sa] = await t.mint(sa, "1h");
  const person = async (email: string, groups: string[]): Promise<string> =>
    (await t.gw.tokens.mintFor({ kind: "person", id: `user:${email}`, name: email, groups }, { ttlMs: 3_600_000, createdBy: "test" })).token;
  tokens["bob"] = await person("bob@example.com", ["dba"]);
  tokens["carol"] = await person("carol@example.com", ["engineers"]);
  tokens["sec"] = await person("sec@example.com", ["security"]);
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser.close();
  await t.stop();
  await idp.close();
  await new Promise<void>((resolve) => hooks.close(() => resolve()));
  await pgServer.stop();
});

describe("the approval page over HTTP", () => {
  it("sends a browser without a login to the OIDC login, which comes back to the page", async () => {
    const h = hold("agent", "update items set name = 'redirect' where id = 2");
    const { id, url, apiUrl } = await linkFor("name = 'redirect'");
    expect(url).toBe(`${t.apiUrl}/approvals/${id}`);
    expect(apiUrl).toBe(`${t.apiUrl}/v1/approvals/${id}`);
    const r = await page(`/approvals/${id}`);
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe(`/v1/auth/oidc/login?return=${encodeURIComponent(`/approvals/${id}`)}`);
    // A cookie that does not verify is cleared and the browser goes to the login too.
    const bad = await page(`/approvals/${id}`, { cookie: cookieOf("forged.token.value") });
    expect(bad.status).toBe(302);
    expect(bad.headers.get("set-cookie")).toContain(`${WEB_SESSION_COOKIE}=;`);
    // The login remembers where to come back to, but only an approval page (no open redirect).
    const login = await fetch(`${t.apiUrl}/v1/auth/oidc/login?return=${encodeURIComponent(`/approvals/${id}`)}`, { redirect: "manual" });
    expect(login.status).toBe(302);
    expect(new URL(login.headers.get("location") ?? "").origin).toBe(new URL(idp.issuer).origin);
    // The JSON view still needs a bearer token.
    expect((await fetch(apiUrl)).status).toBe(401);
    await t.api(`/v1/approvals/${id}/deny`, { body: { reason: "test over" } });
    expect((await h.done).error?.code).toBe("42501");
    await h.end();
  });

  it("shows the request with strict headers and escapes what the requester wrote", async () => {
    const h = hold("agent", "update items set name = '<script>alert(1)</script>\u202e' where id = 3");
    const { id } = await linkFor("alert(1)");
    const r = await page(`/approvals/${id}`, { cookie: cookieOf(tokens["bob"] ?? "") });
    expect(r.status).toBe(200);
    const csp = r.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).not.toMatch(/script-src|unsafe-inline/u);
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.headers.get("x-frame-options")).toBe("DENY");
    // Same-origin only: a form POST then carries the page's Origin (under no-referrer it is "null").
    expect(r.headers.get("referrer-policy")).toBe("same-origin");
    const html = await r.text();
    // The page's only style is allowed by its hash (no 'unsafe-inline'); it must match exactly.
    const style = /<style>([\s\S]*?)<\/style>/u.exec(html)?.[1] ?? "";
    expect(csp).toContain(`style-src 'sha256-${createHash("sha256").update(style).digest("base64")}'`);
    expect(html).not.toContain("<script>");
    expect(html).toContain("&#60;script&#62;alert(1)&#60;&#47;script&#62;\\u202e");
    expect(html).toContain("writes-need-approval");
    expect(html).toContain("agent");
    expect(html).toContain('id="approve"');
    await t.api(`/v1/approvals/${id}/deny`, { body: {} });
    await h.done;
    await h.end();
  });

  it("refuses forms without this origin or without the login's CSRF token; nothing is decided", async () => {
    const h = hold("agent", "update items set name = 'csrf' where id = 4");
    const { id } = await linkFor("name = 'csrf'");
    const bob = cookieOf(tokens["bob"] ?? "");
    const csrf = csrfIn(await (await page(`/approvals/${id}`, { cookie: bob })).text());
    const path = `/approvals/${id}`;
    const cases: { what: string; init: Parameters<typeof page>[1]; status: number }[] = [
      { what: "another site's origin", init: { method: "POST", cookie: bob, origin: "https://evil.example", body: { csrf, vote: "approve" } }, status: 403 },
      { what: "no Origin header", init: { method: "POST", cookie: bob, origin: null, body: { csrf, vote: "approve" } }, status: 403 },
      { what: "no CSRF token", init: { method: "POST", cookie: bob, body: { vote: "approve" } }, status: 400 },
      { what: "a wrong CSRF token", init: { method: "POST", cookie: bob, body: { csrf: `${csrf.slice(0, -2)}xx`, vote: "approve" } }, status: 403 },
      // Another login's token: CSRF tokens are bound to the login cookie.
      { what: "another login's CSRF token", init: { method: "POST", cookie: cookieOf(tokens["dba-agent"] ?? ""), body: { csrf, vote: "approve" } }, status: 403 },
      { what: "no login", init: { method: "POST", body: { csrf, vote: "approve" } }, status: 401 },
    ];
    for (const c of cases) {
      const r = await page(path, c.init);
      expect(r.status, c.what).toBe(c.status);
      expect(r.headers.get("content-type"), c.what).toContain("text/html");
    }
    expect(await status(id)).toBe("pending");
    await t.gw.audit.flush();
    const decided = (await t.gw.store.readAudit(0, 10_000)).filter((a) => a.type === "approval.decided" && a.details?.["approvalId"] === id);
    expect(decided).toEqual([]);
    // The same form, sent properly, decides.
    const ok = await page(path, { method: "POST", cookie: bob, body: { csrf, vote: "approve", reason: "" } });
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe(path);
    expect((await h.done).rows).toEqual([]);
    expect(await status(id)).toBe("approved");
    await h.end();
  });

  it("applies the same rules as the API: visibility, approver groups, no self-approval, one vote each", async () => {
    const h = hold("dba-agent", "delete from items where id = 20");
    const other = hold("agent", "delete from items where id = 19");
    const own = await linkFor("id = 20");
    const theirs = await linkFor("id = 19");
    // Not a requester, approver, admin or auditor: "not found", the id is not confirmed.
    const carol = await page(`/approvals/${theirs.id}`, { cookie: cookieOf(tokens["carol"] ?? "") });
    expect(carol.status).toBe(404);
    expect(await carol.text()).not.toContain("delete from items");
    // An auditor sees it, without a form.
    const sec = await (await page(`/approvals/${theirs.id}`, { cookie: cookieOf(tokens["sec"] ?? "") })).text();
    expect(sec).toContain("delete from items where id &#61; 19");
    expect(sec).not.toContain("<form");
    // The requester sees its own request without a form; a form token from another page does not let it decide.
    const dba = cookieOf(tokens["dba-agent"] ?? "");
    const ownPage = await (await page(`/approvals/${own.id}`, { cookie: dba })).text();
    expect(ownPage).toContain("your own request");
    expect(ownPage).not.toContain("<form");
    const csrf = csrfIn(await (await page(`/approvals/${theirs.id}`, { cookie: dba })).text());
    const self = await page(`/approvals/${own.id}`, { method: "POST", cookie: dba, body: { csrf, vote: "approve" } });
    expect(self.status).toBe(403);
    expect(await self.text()).toContain("nobody approves or denies their own request");
    expect(await status(own.id)).toBe("pending");
    // An approver decides someone else's request once; a second vote is a conflict.
    const first = await page(`/approvals/${theirs.id}`, { method: "POST", cookie: dba, body: { csrf, vote: "approve" } });
    expect(first.status).toBe(303);
    expect((await other.done).rows).toEqual([]);
    const again = await page(`/approvals/${theirs.id}`, { method: "POST", cookie: dba, body: { csrf, vote: "deny" } });
    expect(again.status).toBe(409);
    const after = await (await page(`/approvals/${theirs.id}`, { cookie: dba })).text();
    expect(after).toContain('id="status">approved<');
    expect(after).not.toContain("<form");
    await t.api(`/v1/approvals/${own.id}/deny`, { body: {} });
    await h.done;
    await h.end();
    await other.end();
  });
});

describe("an approver decides in Chromium, from the notification's link", () => {
  it("signs in through the IdP, comes back to the page, approves: the held client gets its rows", async () => {
    const h = hold("agent", "update items set name = 'approved in the browser' where id = 1 returning id, name");
    const { id, url } = await linkFor("approved in the browser");
    const { context, page: tab } = await loopbackPage(browser);
    try {
      await tab.goto(url);
      // No Airlock login yet: the IdP's login page, then back to the approval page.
      await completeDevLogin(tab, "alice");
      await tab.waitForSelector("#approve", { timeout: 15_000 });
      expect(new URL(tab.url()).pathname).toBe(`/approvals/${id}`);
      expect(await tab.textContent("#statement")).toBe("update items set name = 'approved in the browser' where id = 1 returning id, name");
      expect(await tab.textContent("#requester")).toContain("sa:agent");
      expect(await tab.textContent("#status")).toBe("pending");
      expect(await tab.textContent("footer")).toContain("alice@example.com");
      await tab.screenshot({ path: "/tmp/airlock-approval-page.png", fullPage: true });
      await tab.click("#approve");
      await tab.waitForSelector("#status.approved", { timeout: 15_000 });
      expect(await tab.textContent("#votes")).toContain("alice@example.com");

      const outcome = await h.done;
      expect(outcome.error).toBeUndefined();
      expect(outcome.rows).toEqual([{ id: 1, name: "approved in the browser" }]);

      // The vote was audited as alice's, like a vote through the API.
      await t.gw.audit.flush();
      const votes = (await t.gw.store.readAudit(0, 10_000)).filter((a) => a.type === "approval.decided" && a.details?.["approvalId"] === id);
      expect(votes.map((a) => [a.principal?.id, a.details?.["vote"]])).toEqual([["user:alice@example.com", "approve"]]);

      // Deny with a reason, in the same browser (already signed in): the client gets 42501 and the reason.
      const d = hold("agent", "delete from items where id = 5");
      const denied = await linkFor("delete from items where id = 5");
      await tab.goto(denied.url);
      await tab.waitForSelector("#deny", { timeout: 15_000 });
      await tab.fill("#reason", "not during the freeze <b>sorry</b>");
      await tab.click("#deny");
      await tab.waitForSelector("#status.denied", { timeout: 15_000 });
      await tab.screenshot({ path: "/tmp/airlock-approval-page-denied.png", fullPage: true });
      expect(await tab.textContent("#decided")).toContain("not during the freeze <b>sorry</b>");
      const refused = await d.done;
      expect(refused.error?.code).toBe("42501");
      expect(refused.error?.message).toContain(`approval ${denied.id} was denied: not during the freeze <b>sorry</b>`);
      await d.end();
    } finally {
      await context.close();
      await h.end();
    }
  });
});

describe("with SAML as the browser login", () => {
  it("sends the browser to SAML, comes back with a login cookie, and decides an access request", async () => {
    const keys = await samlIdpKeys();
    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const acsUrl = `${apiUrl}/v1/auth/saml/acs`;
    const g = await startTestGateway({
      listen: { api: `127.0.0.1:${apiPort}` },
      login: { publicUrl: apiUrl },
      saml: { entryPoint: "https://idp.test/sso", idpIssuer: "https://idp.test/saml", idpCert: keys.cert, issuer: "airlock-sp", groupsAttribute: "groups", emailAttribute: "email" },
      serviceAccounts: [{ name: "agent", groups: ["agents"] }],
      connections: [{ name: "restricted", type: "postgres", host: "127.0.0.1", port: 1, database: "x", user: "x", groups: ["dba"], sslmode: "disable" }],
      approvals: { publicUrl: apiUrl, grants: { approvers: ["dba"] } },
    });
    try {
      const agent = await g.mint("agent", "1h");
      const asked = await g.api("/v1/access/requests", { token: agent, body: { connection: "restricted", duration: "30m", reason: "rotate <the> keys" } });
      expect(asked.status).toBe(201);
      const id = (asked.body as { request: { id: string } }).request.id;
      const path = `/approvals/${id}`;

      const first = await fetch(`${apiUrl}${path}`, { redirect: "manual" });
      expect(first.status).toBe(302);
      expect(first.headers.get("location")).toBe(`/v1/auth/saml/login?return=${encodeURIComponent(path)}`);
      const login = await fetch(`${apiUrl}${first.headers.get("location") ?? ""}`, { redirect: "manual" });
      expect(login.status).toBe(302);
      const location = login.headers.get("location") ?? "";
      const samlCookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const relayState = new URL(location).searchParams.get("RelayState") ?? "";
      const response = samlResponse({
        keys,
        idpIssuer: "https://idp.test/saml",
        audience: "airlock-sp",
        acsUrl,
        inResponseTo: authnRequestId(location),
        nameId: "dana@example.com",
        attributes: { email: ["dana@example.com"], groups: ["dba"] },
      });
      const acs = await fetch(acsUrl, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie: samlCookie },
        body: new URLSearchParams({ SAMLResponse: response, RelayState: relayState }).toString(),
      });
      expect(acs.status).toBe(303);
      expect(acs.headers.get("location")).toBe(path);
      const setCookie = acs.headers.get("set-cookie") ?? "";
      expect(setCookie).toMatch(new RegExp(`^${WEB_SESSION_COOKIE}=[^;]+; HttpOnly; SameSite=Lax; Path=/approvals; Max-Age=\\d+$`, "u"));
      const cookie = setCookie.split(";")[0] ?? "";

      const shown = await fetch(`${apiUrl}${path}`, { headers: { cookie }, redirect: "manual" });
      expect(shown.status).toBe(200);
      const html = await shown.text();
      expect(html).toContain("Access request");
      expect(html).toContain("rotate &#60;the&#62; keys");
      expect(html).toContain("dana@example.com");
      const csrf = csrfIn(html);
      const decided = await fetch(`${apiUrl}${path}`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie, origin: apiUrl, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf, vote: "approve", reason: "ok for today" }).toString(),
      });
      expect(decided.status).toBe(303);
      const after = await g.api(`/v1/approvals/${id}`);
      expect(after.body).toMatchObject({ request: { status: "approved", votes: [{ approver: { id: "user:dana@example.com" }, vote: "approve", reason: "ok for today" }] } });
    } finally {
      await g.stop();
    }
  });
});
