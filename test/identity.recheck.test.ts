/**
 * Removing a person's group at the identity provider ends their live sessions: a person signs
 * in through the browser (authorization code + PKCE, real oidc-provider, headless Chromium),
 * opens a psql session on a connection that needs group `dba`; the gateway re-checks their
 * groups with the refresh token every second (oidc[].recheckInterval). Removing `dba` at the
 * IdP ends the session within 5 s and refuses new connections; a person whose account is gone
 * at the IdP (refresh refused: invalid_grant) is ended and their token revoked. The refresh
 * token never leaves the gateway: not in logs, audit records, API answers or the login page.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { Browser } from "playwright-core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { completeDevLogin, chromiumAvailable, launchBrowser, loopbackPage } from "./harness/browser.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";
import { freePort } from "./harness/ports.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { until } from "./harness/until.js";

let pgServer: PgServer;
let idp: TestOidcProvider;
let t: TestGateway;
let browser: Browser;
const WEB_SECRET = "web-secret-recheck-0123456789abcdef0123456789";
/** Refresh tokens the IdP issued (captured from its events): canaries that must never leave the gateway. */
const refreshTokens: string[] = [];
const pages: string[] = [];

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error("chromium is missing: run scripts/ensure-system-deps.sh as root");
  pgServer = await startPostgres({ users: [{ name: "app", password: "app-pw-recheck", auth: "scram-sha-256" }], databases: ["orders"] });
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  idp = await startOidcProvider([
    { clientId: "airlock-web", clientSecret: WEB_SECRET, grantTypes: ["authorization_code", "refresh_token"], redirectUris: [`${apiUrl}/v1/auth/oidc/callback`] },
  ]);
  idp.groupsOf.set("erin", ["engineers", "dba"]);
  idp.groupsOf.set("fred", ["dba"]);
  process.env["AIRLOCK_TEST_RECHECK_SECRET"] = WEB_SECRET;
  t = await startTestGateway({
    listen: { api: `127.0.0.1:${apiPort}`, postgres: "127.0.0.1:0" },
    login: { publicUrl: apiUrl },
    oidc: [
      {
        issuer: idp.issuer,
        alias: "corp",
        audience: "airlock-web",
        clientId: "airlock-web",
        clientSecret: "env:AIRLOCK_TEST_RECHECK_SECRET",
        principal: { kind: "person", name: "email" },
        scopes: ["openid", "email", "groups"],
        recheckInterval: "1s",
        recheckGrace: "30s",
      },
    ],
    connections: [
      { type: "postgres", name: "orders", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-recheck", sslmode: "disable", groups: ["dba"] },
      { type: "postgres", name: "wiki", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-recheck", sslmode: "disable", groups: ["engineers"] },
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

function captureRefreshTokens(): void {
  idp.onEvent("refresh_token.saved", (token) => {
    if (token.jti !== undefined) refreshTokens.push(token.jti);
  });
}

async function loginInBrowser(login: string): Promise<string> {
  const { context, page } = await loopbackPage(browser);
  try {
    await page.goto(`${t.apiUrl}/v1/auth/oidc/login`);
    await completeDevLogin(page, login);
    await page.waitForSelector("#token", { timeout: 15_000 });
    pages.push(await page.content());
    return await page.inputValue("#token");
  } finally {
    await context.close();
  }
}

interface Psql {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  out(): string;
  err(): string;
}

async function openPsql(connection: string, token: string): Promise<Psql> {
  const child = spawn("psql", ["-X", "-At", `host=127.0.0.1 port=${t.pgPort} dbname=${connection} user=person sslmode=disable`], {
    env: { ...process.env, PGPASSWORD: token },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.stdin.write("select 'alive';\n");
  const deadline = Date.now() + 10_000;
  while (!stdout.includes("alive") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(stdout, stderr).toContain("alive");
  return { child, exited, out: () => stdout, err: () => stderr };
}

function liveOn(connection: string, principalId: string): number {
  return t.gw.registry.list().filter((s) => s.connection === connection && s.principal.id === principalId).length;
}

/** Milliseconds until no session of `principalId` on `connection` is live, or throws after `limitMs`. */
async function waitEnded(connection: string, principalId: string, limitMs: number): Promise<number> {
  const started = Date.now();
  while (liveOn(connection, principalId) > 0) {
    if (Date.now() - started > limitMs) throw new Error(`the session on ${connection} was still live after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

async function connectPg(connection: string, token: string): Promise<unknown> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: connection, user: "person", password: token });
  c.on("error", () => undefined);
  try {
    await c.connect();
    await c.query("select 1");
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe("people's groups are re-checked at the IdP", () => {
  it("removing a person's group ends their session on a connection needing it within 5 s; other sessions go on", async () => {
    captureRefreshTokens();
    const token = await loginInBrowser("erin");
    const orders = await openPsql("orders", token);
    const wiki = await openPsql("wiki", token);
    // A re-check with unchanged groups changes nothing.
    await new Promise((r) => setTimeout(r, 1500));
    expect(liveOn("orders", "user:erin@example.com")).toBe(1);

    idp.groupsOf.set("erin", ["engineers"]);
    const took = await waitEnded("orders", "user:erin@example.com", 5000);
    expect(took).toBeLessThan(5000);
    // psql learns it at its next statement: the connection was closed with airlock's reason.
    orders.child.stdin.write("select 'still here';\n");
    orders.child.stdin.end();
    expect(await Promise.race([orders.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000))])).not.toBe("timeout");
    expect(orders.out()).not.toContain("still here");
    expect(orders.err()).toContain("airlock:");
    expect(orders.err()).toContain("groups changed at the identity provider; this session on connection \"orders\" is not admitted");

    // The session on a connection her groups still admit goes on.
    expect(liveOn("wiki", "user:erin@example.com")).toBe(1);
    wiki.child.stdin.write("select 'wiki ok';\n");
    const deadline = Date.now() + 5000;
    while (!wiki.out().includes("wiki ok") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(wiki.out()).toContain("wiki ok");
    wiki.child.stdin.end();
    await wiki.exited;

    // A new connection needing dba is refused; her token now carries the IdP's current groups.
    expect(await connectPg("orders", token)).toMatchObject({ code: "42501" });
    const who = await t.api("/v1/auth/whoami", { token });
    expect(who.body).toMatchObject({ principal: { id: "user:erin@example.com", groups: ["engineers"] } });
    idp.groupsOf.set("erin", ["engineers", "dba"]);
  });

  it("a person whose account is gone at the IdP (refresh refused) is ended and their token revoked", async () => {
    const token = await loginInBrowser("fred");
    const s = await openPsql("orders", token);
    idp.deleted.add("fred");
    const took = await waitEnded("orders", "user:fred@example.com", 5000);
    expect(took).toBeLessThan(5000);
    s.child.stdin.write("select 'still here';\n");
    s.child.stdin.end();
    await s.exited;
    expect(s.out()).not.toContain("still here");
    expect(s.err()).toContain("airlock:");
    expect(await connectPg("orders", token)).toMatchObject({ code: "28P01" });
    expect((await t.api("/v1/auth/whoami", { token })).status).toBe(401);
    // The token is refused as soon as its revocation is known; the audit record is appended
    // once the revocation's store write has finished, which can come a moment later.
    await until("the revocation's audit record", async () => {
      await t.gw.audit.flush();
      const records = await t.gw.store.readAudit(0, 10_000);
      return records.some((r) => r.type === "token.revoke" && r.details?.["principalId"] === "user:fred@example.com" && r.details["reason"] === "idp-refused") ? true : undefined;
    }, 5_000);
  });

  it("never lets a refresh token out of the gateway", async () => {
    expect(refreshTokens.length).toBeGreaterThanOrEqual(2);
    await t.gw.audit.flush();
    const everything = [t.logs(), JSON.stringify(await t.gw.store.readAudit(0, 10_000)), ...pages, (await t.api("/v1/sessions")).text].join("\n");
    for (const rt of refreshTokens) expect(everything).not.toContain(rt);
  });
});
