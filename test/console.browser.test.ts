/**
 * The web console in real headless Chromium (playwright-core), against a real gateway with a
 * real PostgreSQL 15 and a real OpenSSH target, driven by real clients (psql, ssh):
 *
 * - sign-in: the demo's one-time link (admin), an Airlock token pasted in the form;
 * - the full approval loop: psql waits on a held DELETE, an approver approves in the browser
 *   (the inbox updates live over SSE), psql prints the result;
 * - replay: a SQL session as a timeline with the masked rows the client saw, an SSH session in
 *   the xterm.js player;
 * - roles enforced on the server: an approver cannot read audit or identities nor edit anything,
 *   a user sees only their own sessions;
 * - CSRF: a state-changing request with the cookie but without the token is refused;
 * - audit search, verify and export; token create and revoke; policy "try it";
 * - screenshots of every page at desktop and narrow widths (AIRLOCK_SCREENSHOTS=DIR keeps them).
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleBuildDir } from "../src/api/console-static.js";
import { chromiumAvailable, launchBrowser, loopbackPage } from "./harness/browser.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { askpass, clientOptions, runSshClient, startSshd, type SshdServer } from "./harness/sshd.js";
import { until } from "./harness/until.js";

let pgServer: PgServer;
let sshd: SshdServer;
let t: TestGateway;
let browser: Browser;
const tokens: Record<string, string> = {};
const shotsDir = process.env["AIRLOCK_SCREENSHOTS"] ?? mkdtempSync(join(tmpdir(), "airlock-shots-"));
const PG_PASSWORD = "console-pg-canary-5b1e";

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error("chromium is missing: run scripts/ensure-system-deps.sh as root");
  if (consoleBuildDir() === undefined) throw new Error("the web console is not built: run `npm run build:web` (npm test does)");
  mkdirSync(shotsDir, { recursive: true });
  pgServer = await startPostgres({ users: [{ name: "app", password: PG_PASSWORD, auth: "scram-sha-256" }], databases: ["orders"] });
  await pgServer.psql(
    `create table customers (id int primary key, name text, email text);
     insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com');
     create table items (id int primary key, name text);
     insert into items select g, 'item ' || g from generate_series(1, 10) g;
     alter table customers owner to app; alter table items owner to app;`,
    { database: "orders" },
  );
  sshd = await startSshd();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0", ssh: "127.0.0.1:0" },
    roles: { auditor: ["security"] },
    serviceAccounts: [
      { name: "agent", groups: ["agents"], description: "the AI agent" },
      { name: "other-agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
      { name: "auditor1", groups: ["security"] },
    ],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: PG_PASSWORD, groups: ["agents"], sslmode: "disable" },
      { name: "web1", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, groups: ["agents"] },
    ],
    policies: [
      { name: "no-drop", match: { operations: ["drop", "truncate"] }, action: "deny", message: "DROP and TRUNCATE are not allowed here" },
      { name: "writes-need-approval", match: { operations: ["update", "delete"] }, action: "require_approval", approvers: ["dba"] },
      { name: "hide-pii", action: "mask", columns: ["*.email"], strategy: "redact" },
    ],
  });
  for (const sa of ["agent", "other-agent", "dba1", "auditor1"]) tokens[sa] = await t.mint(sa, "1h");
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser.close();
  await t.stop();
  await sshd.stop();
  await pgServer.stop();
});

/** A fresh browser signed in by pasting `token` into the login form. */
async function signIn(token: string, viewport = { width: 1280, height: 860 }): Promise<{ context: BrowserContext; page: Page }> {
  const { context, page } = await loopbackPage(browser);
  await page.setViewportSize(viewport);
  await page.goto(`${t.apiUrl}/`);
  await page.fill("#token", token);
  await page.click("#sign-in");
  await page.waitForSelector("#me", { timeout: 15_000 });
  return { context, page };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true });
}

/** fetch from inside the page (same origin, the console's cookie). */
function pageFetch(page: Page, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; text: string }> {
  return page.evaluate(
    async ([p, i]) => {
      const r = await fetch(p, { ...i, credentials: "same-origin" });
      return { status: r.status, text: await r.text() };
    },
    [path, init] as const,
  );
}

describe("the web console", () => {
  it("serves one page with a strict CSP, no inline script, and an OpenAPI document naming every route", async () => {
    const res = await fetch(`${t.apiUrl}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/u);
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/u);
    const doc = (await (await fetch(`${t.apiUrl}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { "x-airlock-access": string }>> };
    expect(doc.openapi).toBe("3.1.0");
    const routes = t.gw.api?.routes ?? [];
    for (const r of routes.filter((x) => x.method !== "HEAD")) {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/gu, "{$1}").replace(/\*$/u, "{path}");
      expect(doc.paths[path]?.[r.method.toLowerCase()]?.["x-airlock-access"], `${r.method} ${r.url}`).toBe(r.access);
    }
    expect(JSON.stringify(doc.paths["/v1/console/policies/try"])).toContain('"statement"');
    // No secret of the configuration in the bundle or the API's answers.
    const js = html.match(/src="([^"]+\.js)"/u)?.[1] ?? "";
    const bundle = await (await fetch(`${t.apiUrl}${js}`)).text();
    expect(bundle.length).toBeGreaterThan(1000);
    expect(bundle).not.toContain(PG_PASSWORD);
  });

  it("signs in with the demo's one-time login link, once", async () => {
    const link = t.gw.consoleLoginLink() ?? "";
    const { context, page } = await loopbackPage(browser);
    try {
      await page.goto(link);
      await page.waitForSelector("#me");
      expect(await page.textContent("#me")).toBe("admin");
      for (const nav of ["approvals", "sessions", "connections", "policies", "audit", "identities", "agents"]) expect(await page.locator(`#nav-${nav}`).count()).toBe(1);
      const cookies = await context.cookies();
      const c = cookies.find((x) => x.name === "airlock_console");
      expect(c).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
      // The link is single use.
      const again = await fetch(link, { redirect: "manual" });
      expect(again.status).toBe(401);
      // The connections page shows secrets as references only.
      await page.goto(`${t.apiUrl}/#/connections`);
      await page.waitForSelector('#connections tr[data-name="orders"]');
      const text = (await page.textContent("#connections")) ?? "";
      expect(text).toContain("literal:<redacted>");
      expect(text).not.toContain(PG_PASSWORD);
      expect((await pageFetch(page, "/v1/console/connections")).text).not.toContain(PG_PASSWORD);
      // Sign out ends the session on the server.
      await page.click("#logout");
      await page.waitForSelector("#token");
      expect((await pageFetch(page, "/v1/console/sessions")).status).toBe(401);
    } finally {
      await context.close();
    }
  });

  it("refuses a bad token at sign-in and a state-changing request without the CSRF token or from another site", async () => {
    const { context, page } = await loopbackPage(browser);
    try {
      await page.goto(`${t.apiUrl}/`);
      await page.fill("#token", "not-a-token");
      await page.click("#sign-in");
      await page.waitForSelector("[role=alert]");
      expect(await page.locator("#me").count()).toBe(0);
    } finally {
      await context.close();
    }
    const { context: c2, page: p2 } = await signIn(tokens["dba1"] ?? "");
    try {
      const noCsrf = await pageFetch(p2, "/v1/console/logout", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(noCsrf.status).toBe(403);
      expect(noCsrf.text).toContain("CSRF");
      // The cookie, replayed from another origin with the right CSRF token, is still refused.
      const cookie = (await c2.cookies()).find((c) => c.name === "airlock_console")?.value ?? "";
      const csrf = (JSON.parse((await pageFetch(p2, "/v1/console/session")).text) as { csrf: string }).csrf;
      const cross = await fetch(`${t.apiUrl}/v1/console/logout`, {
        method: "POST",
        headers: { cookie: `airlock_console=${cookie}`, "x-airlock-csrf": csrf, origin: "http://evil.example", "content-type": "application/json" },
        body: "{}",
      });
      expect(cross.status).toBe(403);
      // Still signed in.
      expect((await pageFetch(p2, "/v1/console/approvals")).status).toBe(200);
    } finally {
      await c2.close();
    }
  });

  it("runs the full approval loop: psql waits, an approver approves in the browser, psql prints the result", async () => {
    const { context, page } = await signIn(tokens["dba1"] ?? "");
    try {
      await page.goto(`${t.apiUrl}/#/approvals`);
      await page.waitForSelector(".live.on");
      const psql = t.psql("orders", tokens["agent"] ?? "", ["-c", "delete from items where id = 3 returning id, name"]);
      // The inbox updates live: the held statement appears without a reload.
      const card = page.locator("article.card", { hasText: "delete from items where id = 3" });
      await card.waitFor({ timeout: 15_000 });
      const text = (await card.textContent()) ?? "";
      expect(text).toContain("agent");
      expect(text).toContain("orders");
      expect(text).toContain("writes-need-approval");
      expect(text).toContain("delete on items");
      await shot(page, "approvals-desktop");
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "approvals-narrow");
      await page.setViewportSize({ width: 1280, height: 860 });
      await card.locator("input.reason").fill("ticket OPS-42");
      await card.locator("button.approve").click();
      const r = await psql;
      expect(r.stderr).toContain("waiting for approval");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("item 3");
      expect(r.stdout).toContain("DELETE 1");
      // The decision is audited with the approver and the reason.
      await t.gw.audit.flush();
      const decided = (await t.gw.store.readAudit(0, 10_000)).find((a) => a.type === "approval.decided" && a.principal?.id === "sa:dba1");
      expect(decided?.details?.["reason"] ?? decided?.message ?? "").toContain("OPS-42");
      await until("the card to leave the inbox", async () => ((await card.count()) === 0 ? true : undefined));
    } finally {
      await context.close();
    }
  });

  it("a denial with a reason in one click reaches psql as a SQLSTATE 42501 error", async () => {
    const { context, page } = await signIn(tokens["dba1"] ?? "");
    try {
      await page.goto(`${t.apiUrl}/#/approvals`);
      await page.waitForSelector(".live.on");
      const psql = t.psql("orders", tokens["agent"] ?? "", ["-c", "update items set name = 'x' where id = 4"]);
      const card = page.locator("article.card", { hasText: "update items set name" });
      await card.waitFor({ timeout: 15_000 });
      await card.locator("input.reason").fill("not during the freeze");
      await card.locator("button.deny").click();
      const r = await psql;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("airlock:");
      expect(r.stderr).toContain("not during the freeze");
    } finally {
      await context.close();
    }
  });

  it("replays a SQL session as a timeline with the masked rows the client saw", async () => {
    const q = await t.psql("orders", tokens["agent"] ?? "", ["-c", "select id, name, email from customers order by id"]);
    expect(q.stdout).toContain("[EMAIL]");
    const denied = await t.psql("orders", tokens["agent"] ?? "", ["-c", "drop table customers"]);
    expect(denied.code).not.toBe(0);
    const { context, page } = await signIn(tokens["auditor1"] ?? "");
    try {
      await page.goto(`${t.apiUrl}/#/sessions`);
      await page.waitForSelector("#sessions tbody tr");
      await shot(page, "sessions-desktop");
      const sessions = (JSON.parse((await pageFetch(page, "/v1/console/sessions")).text) as { sessions: { id: string; protocol: string }[] }).sessions;
      let found: string | undefined;
      for (const s of sessions.filter((x) => x.protocol === "postgres")) {
        const d = await pageFetch(page, `/v1/console/sessions/${s.id}`);
        if (d.text.includes("from customers order by id")) found = s.id;
      }
      expect(found).toBeDefined();
      await page.goto(`${t.apiUrl}/#/sessions/${found ?? ""}`);
      await page.waitForSelector("#timeline li");
      const timeline = (await page.textContent("#timeline")) ?? "";
      expect(timeline).toContain("select id, name, email from customers order by id");
      expect(timeline).toContain("[EMAIL]");
      expect(timeline).not.toContain("ada@example.com");
      expect(timeline).toContain("2 rows");
      await shot(page, "replay-sql-desktop");
    } finally {
      await context.close();
    }
  });

  it("replays a recorded SSH session in the terminal player, with seek and speed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "airlock-console-ssh-"));
    const r = await runSshClient("ssh", [...clientOptions("password"), "-tt", "-p", String(t.gw.addresses.ssh?.port ?? 0), "web1@127.0.0.1", "echo replay-$((6*7)); sleep 0.3; echo second-line"], {
      askpassPath: askpass(dir, tokens["agent"] ?? ""),
    });
    expect(r.stdout).toContain("replay-42");
    const { context, page } = await signIn(tokens["auditor1"] ?? "");
    try {
      const id = await until("the SSH session with a cast", async () => {
        const list = JSON.parse((await pageFetch(page, "/v1/console/sessions")).text) as { sessions: { id: string; protocol: string }[] };
        for (const s of list.sessions.filter((x) => x.protocol === "ssh")) {
          const d = JSON.parse((await pageFetch(page, `/v1/console/sessions/${s.id}`)).text) as { hasCast: boolean };
          if (d.hasCast) return s.id;
        }
        return undefined;
      });
      await page.goto(`${t.apiUrl}/#/sessions/${id}`);
      await page.waitForSelector("#terminal .xterm");
      await page.selectOption("#speed", "8");
      await page.click("#play");
      await until("the player to reach the end", async () => ((await page.textContent("#terminal")) ?? "").includes("second-line") || undefined).catch(async (e: unknown) => {
        await shot(page, "debug-ssh");
        console.log("terminal:", await page.textContent("#terminal"), "position:", await page.textContent("#position"));
        throw e;
      });
      expect(await page.textContent("#terminal")).toContain("replay-42");
      await shot(page, "replay-ssh-desktop");
      // Seek back to the start: the terminal is empty again.
      await page.locator("#seek").fill("0");
      await until("the terminal to reset", async () => (((await page.textContent("#terminal")) ?? "").includes("second-line") ? undefined : true));
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "replay-ssh-narrow");
    } finally {
      await context.close();
    }
  });

  it("role checks: an approver sees no audit, identities or policies and cannot change them; a user sees only their own sessions", async () => {
    const { context, page } = await signIn(tokens["dba1"] ?? "");
    try {
      for (const nav of ["audit", "identities", "policies"]) expect(await page.locator(`#nav-${nav}`).count(), nav).toBe(0);
      const csrf = (JSON.parse((await pageFetch(page, "/v1/console/session")).text) as { csrf: string }).csrf;
      const post = (path: string, body: unknown) =>
        pageFetch(page, path, { method: "POST", headers: { "content-type": "application/json", "x-airlock-csrf": csrf }, body: JSON.stringify(body) });
      expect((await pageFetch(page, "/v1/console/audit")).status).toBe(403);
      expect((await pageFetch(page, "/v1/console/identities")).status).toBe(403);
      expect((await post("/v1/console/policies/try", { connection: "orders", principal: "sa:agent", statement: "select 1" })).status).toBe(403);
      expect((await post("/v1/tokens", { serviceAccount: "agent" })).status).toBe(403);
      await page.goto(`${t.apiUrl}/#/audit`);
      await page.waitForSelector("[role=alert]");
      await shot(page, "approver-forbidden");
    } finally {
      await context.close();
    }
    // other-agent has sessions of its own; agent must not see them.
    await t.psql("orders", tokens["other-agent"] ?? "", ["-c", "select 'other-agent-was-here'"]);
    const mine = await signIn(tokens["agent"] ?? "", { width: 390, height: 844 });
    try {
      await mine.page.goto(`${t.apiUrl}/#/sessions`);
      await mine.page.waitForSelector("#sessions tbody tr");
      const list = JSON.parse((await pageFetch(mine.page, "/v1/console/sessions")).text) as { sessions: { id: string; principal: { id: string } }[] };
      expect(list.sessions.length).toBeGreaterThan(0);
      expect(new Set(list.sessions.map((s) => s.principal.id))).toEqual(new Set(["sa:agent"]));
      const others = (await t.gw.store.listSessions({ limit: 100 })).filter((s) => s.principalId === "sa:other-agent");
      expect(others.length).toBeGreaterThan(0);
      expect((await pageFetch(mine.page, `/v1/console/sessions/${others[0]?.id ?? ""}`)).status).toBe(404);
      expect((await pageFetch(mine.page, `/v1/console/sessions/${others[0]?.id ?? ""}/cast`)).status).toBe(404);
      expect(await mine.page.locator("text=Kill").count()).toBe(0);
      await shot(mine.page, "sessions-user-narrow");
    } finally {
      await mine.context.close();
    }
  });

  it("policies: the try-it box gives the live judge's decision, rule and masking without running anything", async () => {
    const { context, page } = await signIn(tokens["auditor1"] ?? "");
    try {
      await page.goto(`${t.apiUrl}/#/policies`);
      await page.waitForSelector('details.policy[data-name="no-drop"]');
      await page.selectOption("#try-connection", "orders");
      await page.selectOption("#try-principal", "sa:agent");
      await page.fill("#try-statement", "drop table items");
      await page.click("#try-run");
      await page.waitForSelector("#try-result");
      expect(await page.textContent("#try-rule")).toBe("no-drop");
      expect(await page.textContent("#try-result")).toContain("deny");
      await page.fill("#try-statement", "select email from customers");
      await page.click("#try-run");
      await page.waitForSelector("#try-masking");
      expect(await page.textContent("#try-result")).toContain("hide-pii");
      await page.fill("#try-statement", "delete from items where id = 9");
      await page.click("#try-run");
      await until("a hold", async () => ((await page.textContent("#try-result")) ?? "").includes("held for approval") || undefined);
      await shot(page, "policies-desktop");
      // Nothing ran: item 9 is still there, and no approval request was made.
      expect((await pgServer.psql("select count(*) from items where id = 9", { database: "orders" })).trim()).toBe("1");
      expect((await t.api("/v1/approvals?status=pending")).text).not.toContain("id = 9");
    } finally {
      await context.close();
    }
  });

  it("audit: search by decision and rule, verify the chain from the page, export JSONL and CSV", async () => {
    const { context, page } = await signIn(tokens["auditor1"] ?? "");
    try {
      await page.goto(`${t.apiUrl}/#/audit`);
      await page.waitForSelector("#audit-count");
      await page.selectOption("#audit-decision", "deny");
      await page.fill("#audit-rule", "no-drop");
      await page.click("#audit-search");
      // The filtered answer replaces the unfiltered one: every row is a no-drop denial.
      const rows = await until("filtered results", async () => {
        const r = await page.locator("#audit tbody tr").allTextContents();
        return r.length > 0 && r.every((row) => row.includes("no-drop") && row.includes("deny")) ? r : undefined;
      });
      expect(rows.join("\n")).toContain("drop table customers");
      await page.click("#verify");
      await page.waitForSelector("#verify-result");
      expect(await page.textContent("#verify-result")).toContain("Intact");
      await shot(page, "audit-desktop");
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "audit-narrow");
      const csv = await pageFetch(page, (await page.getAttribute("#export-csv", "href")) ?? "");
      expect(csv.status).toBe(200);
      const lines = csv.text.trim().split("\r\n");
      expect(lines[0]).toBe("seq,time,type,principal,connection,protocol,decision,code,rule,message,statement,sessionId,hash");
      expect(lines.length).toBeGreaterThan(1);
      for (const l of lines.slice(1)) expect(l).toContain("no-drop");
      const jsonl = await pageFetch(page, (await page.getAttribute("#export-jsonl", "href")) ?? "");
      const records = jsonl.text.trim().split("\n").map((l) => JSON.parse(l) as { rule?: string; decision?: string; hash: string });
      expect(records.every((r) => r.rule === "no-drop" && r.decision === "deny" && r.hash.length === 64)).toBe(true);
    } finally {
      await context.close();
    }
  });

  it("identities: an admin creates a token (shown once) and revokes it; an auditor only reads", { timeout: 90_000 }, async () => {
    const { context, page } = await loopbackPage(browser);
    try {
      await page.setViewportSize({ width: 1280, height: 860 });
      await page.goto(t.gw.consoleLoginLink() ?? "");
      await page.goto(`${t.apiUrl}/#/identities`);
      await page.waitForSelector("#service-accounts tbody tr");
      await page.selectOption("#token-sa", "agent");
      await page.fill("#token-ttl", "20m");
      await page.click("#token-create");
      await page.waitForSelector("#minted-token");
      const token = await page.inputValue("#minted-token");
      const q = await t.psql("orders", token, ["-At", "-c", "select 1"]);
      expect(q.stdout.trim()).toBe("1");
      const id = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { jti: string };
      const row = page.locator(`#tokens tr[data-id="${id.jti}"]`);
      await row.waitFor();
      await shot(page, "identities-desktop");
      await row.locator("button", { hasText: "Revoke" }).click();
      await until("the token to show as revoked", async () => ((await row.textContent()) ?? "").includes("revoked") || undefined);
      const after = await t.psql("orders", token, ["-At", "-c", "select 1"]);
      expect(after.code).not.toBe(0);
      // The token is never in any API answer again.
      expect((await pageFetch(page, "/v1/console/identities")).text).not.toContain(token);
    } finally {
      await context.close();
    }
    const aud = await signIn(tokens["auditor1"] ?? "");
    try {
      await aud.page.goto(`${t.apiUrl}/#/identities`);
      await aud.page.waitForSelector("#tokens");
      expect(await aud.page.locator("#token-create").count()).toBe(0);
    } finally {
      await aud.context.close();
    }
  });

  it("a connection registered in the browser is used by psql at once, its secret stored encrypted and never shown; disabling refuses the next session; an approver cannot register", { timeout: 120_000 }, async () => {
    const SECRET = PG_PASSWORD;
    const { context, page } = await loopbackPage(browser);
    try {
      await page.setViewportSize({ width: 1280, height: 1000 });
      await page.goto(t.gw.consoleLoginLink() ?? "");
      await page.goto(`${t.apiUrl}/#/connections`);
      await page.waitForSelector("#register");
      // The form is the YAML's schema for the type; a bad port is shown against the field.
      await page.waitForSelector("#conn-database");
      await page.fill("#conn-name", "orders-live");
      await page.fill("#conn-host", "127.0.0.1");
      await page.fill("#conn-port", "70000");
      await page.fill("#conn-database", "orders");
      await page.fill("#conn-user", "app");
      await page.click("#conn-save");
      await page.waitForSelector("#register [data-field=port] .field-error");
      expect(await page.textContent("#register [data-field=port] .field-error")).toContain("65535");
      expect(await page.locator("#register .field-error").count()).toBe(1);
      await page.fill("#conn-port", String(pgServer.port));
      await page.selectOption("#conn-sslmode", "disable");
      await page.fill("#conn-groups", "agents");
      await page.fill("#conn-password", SECRET);
      await page.click("#conn-save");
      await page.waitForSelector('#connections tr[data-name="orders-live"]');
      const row = (await page.textContent('#connections tr[data-name="orders-live"]')) ?? "";
      expect(row).toContain("stored:<encrypted>");
      expect(row).not.toContain(SECRET);
      await shot(page, "connections-register-desktop");
      // Usable by psql at once, without a restart.
      const q = await t.psql("orders-live", tokens["agent"] ?? "", ["-At", "-c", "select name from items where id = 1"]);
      expect(q.stderr).toBe("");
      expect(q.stdout.trim()).toBe("item 1");
      // Stored encrypted at rest (in the store); never in an API answer or the audit log.
      const stored = JSON.stringify(await t.gw.store.consoleDocuments?.list("connection"));
      expect(stored).toContain("orders-live");
      expect(stored).not.toContain(SECRET);
      expect(stored).toMatch(/\\"password\\":\\"v2\./u);
      expect((await pageFetch(page, "/v1/console/connections")).text).not.toContain(SECRET);
      await t.gw.audit.flush();
      const audit = await t.gw.store.readAudit(0, 100_000);
      expect(audit.some((a) => a.type === "connection.change" && a.connection === "orders-live" && a.details?.["action"] === "register")).toBe(true);
      expect(JSON.stringify(audit)).not.toContain(SECRET);
      expect(t.logs()).not.toContain(SECRET);
      // A configured connection is read-only.
      const csrf = (JSON.parse((await pageFetch(page, "/v1/console/session")).text) as { csrf: string }).csrf;
      const takeover = await pageFetch(page, "/v1/console/connections", {
        method: "POST",
        headers: { "content-type": "application/json", "x-airlock-csrf": csrf },
        body: JSON.stringify({ connection: { name: "orders", type: "postgres", host: "127.0.0.1", database: "x", user: "x" } }),
      });
      expect(takeover.status).toBe(409);
      // Disable: the next session is refused at once.
      await page.locator('#connections tr[data-name="orders-live"] button', { hasText: "Disable" }).click();
      await page.waitForSelector('#connections tr[data-name="orders-live"] >> text=console · disabled');
      const refused = await t.psql("orders-live", tokens["agent"] ?? "", ["-At", "-c", "select 1"]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("orders-live");
    } finally {
      await context.close();
    }
    const approver = await signIn(tokens["dba1"] ?? "");
    try {
      await approver.page.goto(`${t.apiUrl}/#/connections`);
      await approver.page.waitForSelector("#connections");
      expect(await approver.page.locator("#register").count()).toBe(0);
      const csrf = (JSON.parse((await pageFetch(approver.page, "/v1/console/session")).text) as { csrf: string }).csrf;
      const r = await pageFetch(approver.page, "/v1/console/connections", {
        method: "POST",
        headers: { "content-type": "application/json", "x-airlock-csrf": csrf },
        body: JSON.stringify({ connection: { name: "sneaky", type: "postgres", host: "127.0.0.1", database: "x", user: "x" } }),
      });
      expect(r.status).toBe(403);
    } finally {
      await approver.context.close();
    }
  });

  it("every page renders at desktop and narrow widths (screenshots)", { timeout: 120_000 }, async () => {
    for (const [name, viewport] of [
      ["desktop", { width: 1280, height: 860 }],
      ["narrow", { width: 390, height: 844 }],
    ] as const) {
      const { context, page } = await loopbackPage(browser);
      try {
        await page.setViewportSize(viewport);
        await page.goto(`${t.apiUrl}/`);
        await page.waitForSelector("#token");
        await shot(page, `login-${name}`);
        await page.goto(t.gw.consoleLoginLink() ?? "");
        for (const p of ["approvals", "sessions", "connections", "policies", "audit", "identities", "agents"]) {
          await page.goto(`${t.apiUrl}/#/${p}`);
          await page.waitForSelector(`#nav-${p}.active`);
          await page.waitForSelector("main.content section");
          await page.waitForTimeout(300); // let the page's first answers render before the picture (not an assertion)
          expect(await page.locator("[role=alert]").count(), p).toBe(0);
          await shot(page, `${p}-page-${name}`);
        }
      } finally {
        await context.close();
      }
    }
  });
});
