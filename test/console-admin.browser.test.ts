/**
 * The web console's run-time editing in real headless Chromium (playwright-core), against a real
 * gateway, a real PostgreSQL 15 and psql (issue 17's leftovers; one browser and one gateway):
 *
 * - "Test connection": the gateway logs in to the target with the held credential; a refused
 *   login shows the target's refusal, never the secret;
 * - policies: a policy saved in the browser (validated like the YAML) applies to psql's next
 *   statement; deleting it lifts it; YAML policies are read-only;
 * - sessions: a psql session appears in the list live (SSE, no reload), Kill ends it, and the
 *   list shows it ended.
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleBuildDir } from "../src/api/console-static.js";
import { chromiumAvailable, launchBrowser, loopbackPage } from "./harness/browser.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
let t: TestGateway;
let browser: Browser;
let agentToken = "";
const shotsDir = process.env["AIRLOCK_SCREENSHOTS"] ?? mkdtempSync(join(tmpdir(), "airlock-shots-"));
const PG_PASSWORD = "console-admin-canary-91d2";
const WRONG_PASSWORD = "console-wrong-canary-77aa";

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error("chromium is missing: run scripts/ensure-system-deps.sh as root");
  if (consoleBuildDir() === undefined) throw new Error("the web console is not built: run `npm run build:web` (npm test does)");
  mkdirSync(shotsDir, { recursive: true });
  pgServer = await startPostgres({ users: [{ name: "app", password: PG_PASSWORD, auth: "scram-sha-256" }], databases: ["orders"] });
  await pgServer.psql("create table items (id int primary key, name text); insert into items values (1, 'one'); alter table items owner to app;", { database: "orders" });
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: PG_PASSWORD, groups: ["agents"], sslmode: "disable" },
      { name: "orders-wrong", type: "postgres", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: WRONG_PASSWORD, groups: ["agents"], sslmode: "disable" },
    ],
    policies: [{ name: "no-drop", match: { operations: ["drop"] }, action: "deny" }],
  });
  agentToken = await t.mint("agent", "1h");
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser.close();
  await t.stop();
  await pgServer.stop();
});

async function adminPage(path: string): Promise<{ page: Page; close: () => Promise<void> }> {
  const { context, page } = await loopbackPage(browser);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.goto(t.gw.consoleLoginLink() ?? "");
  await page.waitForSelector("#me");
  await page.goto(`${t.apiUrl}/#/${path}`);
  return { page, close: () => context.close() };
}

describe("the web console edits the running gateway", () => {
  it("test connection: ok with the held credential; a refused login is shown without the secret", { timeout: 60_000 }, async () => {
    const { page, close } = await adminPage("connections");
    try {
      await page.click('#connections tr[data-name="orders"] button.conn-test');
      await page.waitForSelector('#connections tr[data-name="orders"] .conn-test-result');
      expect(await page.textContent('#connections tr[data-name="orders"] .conn-test-result')).toMatch(/^ok: logged in to the target/u);
      await page.click('#connections tr[data-name="orders-wrong"] button.conn-test');
      await page.waitForSelector('#connections tr[data-name="orders-wrong"] .conn-test-result.failed');
      const failed = (await page.textContent('#connections tr[data-name="orders-wrong"] .conn-test-result')) ?? "";
      expect(failed).toMatch(/^failed: /u);
      expect(failed).not.toContain(WRONG_PASSWORD);
      expect(await page.content()).not.toContain(WRONG_PASSWORD);
      await page.screenshot({ path: join(shotsDir, "connections-test-desktop.png"), fullPage: true });
    } finally {
      await close();
    }
  });

  it("a policy saved in the browser applies to psql's next statement; a bad one is refused naming the key; deleting lifts it", { timeout: 60_000 }, async () => {
    const { page, close } = await adminPage("policies");
    try {
      await page.waitForSelector("#policy-editor");
      expect(await page.locator('details.policy[data-name="no-drop"][data-source="config"] button.policy-edit').count()).toBe(0);
      await page.fill("#policy-document", "name: bad-one\naction: deny\nmatch: { operations: [delete] }\nstrategy: redact\n");
      await page.click("#policy-save");
      await page.waitForSelector("#policy-error");
      expect(await page.textContent("#policy-error")).toContain("policy");
      await page.fill("#policy-document", "name: items-off\nconnections: [orders]\nmatch: { relations: [items] }\naction: deny\nmessage: items are closed today\n");
      await page.click("#policy-save");
      await page.waitForSelector('details.policy[data-name="items-off"][data-source="console"]');
      await page.screenshot({ path: join(shotsDir, "policies-edit-desktop.png"), fullPage: true });
      const denied = await t.psql("orders", agentToken, ["-At", "-c", "select name from items"]);
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toContain("items-off");
      expect(denied.stderr).toContain("items are closed today");
      await page.click('details.policy[data-name="items-off"] summary');
      await page.click('details.policy[data-name="items-off"] button.policy-delete');
      await page.waitForSelector('details.policy[data-name="items-off"]', { state: "detached" });
      const allowed = await t.psql("orders", agentToken, ["-At", "-c", "select name from items"]);
      expect(allowed.stderr).toBe("");
      expect(allowed.stdout.trim()).toBe("one");
    } finally {
      await close();
    }
  });

  it("sessions: a running psql appears live (SSE), Kill ends it, and the list shows it ended", { timeout: 90_000 }, async () => {
    const { page, close } = await adminPage("sessions");
    try {
      await page.waitForSelector("#sessions-live.on");
      const running = t.psql("orders", agentToken, ["-At", "-c", "select pg_sleep(60)"]);
      // No reload: the row arrives over the stream.
      const row = page.locator("#sessions tbody tr", { hasText: "live" }).first();
      await row.waitFor({ timeout: 15_000 });
      expect(await row.textContent()).toContain("orders");
      await page.screenshot({ path: join(shotsDir, "sessions-live-desktop.png"), fullPage: true });
      const id = (await row.getAttribute("data-id")) ?? "";
      await row.locator("button", { hasText: "Kill" }).click();
      const ended = await running;
      expect(ended.code).not.toBe(0);
      await page.waitForSelector(`#sessions tr[data-id="${id}"] >> text=terminated`, { timeout: 15_000 });
      expect(await page.locator(`#sessions tr[data-id="${id}"] button`, { hasText: "Kill" }).count()).toBe(0);
    } finally {
      await close();
    }
  });
});
