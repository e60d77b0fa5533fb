/**
 * The web console's newer pages in real headless Chromium (playwright-core) against a real
 * gateway, real PostgreSQL 15, real OpenSSH, a real HTTP API and a real `airlock agent` process:
 *
 * - live view: a psql session that is still running shows its statements, decisions and masked
 *   rows as they happen; an SSH shell shows its terminal output as it is typed; the view turns
 *   into the replay when the session ends; another user cannot watch it;
 * - HTTP exchanges replay as a list with their (masked, capped) bodies; a kubectl exec replays
 *   in the terminal player (the real kubectl against the harness's fake API server);
 * - the connection form is generated from the YAML's schema per type, problems shown against
 *   the field;
 * - console policies reordered in the browser change which rule psql is refused by;
 * - the Agents page lists a connected agent (group, version, address, streams, last seen), for
 *   admins and auditors only;
 * - the Budgets page shows the counters psql sessions spend (a user sees only their own);
 * - screenshots of these pages at 1280 and 390 pixels wide (AIRLOCK_SCREENSHOTS=DIR keeps them;
 *   never compared pixel by pixel).
 */
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from "node:child_process";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleBuildDir } from "../src/api/console-static.js";
import { renderKubeconfig } from "../src/cli/kubeconfig.js";
import { FakeKube } from "./harness/fake-kube.js";
import { kubectl, writeKubeconfig } from "./harness/kubectl.js";
import { chromiumAvailable, launchBrowser, loopbackPage } from "./harness/browser.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { askpass, clientOptions, startSshd, type SshdServer } from "./harness/sshd.js";
import { until } from "./harness/until.js";

const repo = join(import.meta.dirname, "..");
let pgServer: PgServer;
let sshd: SshdServer;
let upstream: Upstream;
let t: TestGateway;
let browser: Browser;
const tokens: Record<string, string> = {};
const shotsDir = process.env["AIRLOCK_SCREENSHOTS"] ?? mkdtempSync(join(tmpdir(), "airlock-shots-"));
const PG_PASSWORD = "console-live-pg-canary-7c2d";
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error("chromium is missing: run scripts/ensure-system-deps.sh as root");
  if (consoleBuildDir() === undefined) throw new Error("the web console is not built: run `npm run build:web` (npm test does)");
  mkdirSync(shotsDir, { recursive: true });
  pgServer = await startPostgres({ users: [{ name: "app", password: PG_PASSWORD, auth: "scram-sha-256" }], databases: ["orders"] });
  await pgServer.psql(
    `create table customers (id int primary key, name text, email text);
     insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com');
     alter table customers owner to app;`,
    { database: "orders" },
  );
  sshd = await startSshd();
  upstream = await startUpstream();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0", ssh: "127.0.0.1:0", http: "127.0.0.1:0" },
    roles: { auditor: ["security"] },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "other-agent", groups: ["agents"] },
      { name: "auditor1", groups: ["security"] },
      { name: "edge", groups: ["edge"] },
    ],
    agents: { groups: [{ name: "dc-east", allow: ["edge"] }] },
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: PG_PASSWORD, groups: ["agents"], sslmode: "disable" },
      { name: "web1", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, groups: ["agents"] },
      { name: "api", type: "http", baseUrl: upstream.url, groups: ["agents"] },
    ],
    policies: [
      { name: "no-drop", match: { operations: ["drop", "truncate"] }, action: "deny", message: "DROP and TRUNCATE are not allowed here" },
      { name: "hide-pii", action: "mask", columns: ["*.email"], strategy: "redact" },
      { name: "api-pii", connections: ["api"], action: "mask", detectors: ["email", "credit_card"], strategy: "redact" },
    ],
    budgets: [{ name: "orders-reads", connections: ["orders"], groups: ["agents"], window: "1h", rows: 100_000, statements: 100_000 }],
  });
  for (const sa of ["agent", "other-agent", "auditor1", "edge"]) tokens[sa] = await t.mint(sa, "1h");
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  for (const c of children) c.kill("SIGTERM");
  await browser.close();
  await t.stop();
  await upstream.stop();
  await sshd.stop();
  await pgServer.stop();
});

async function asAdmin(viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page }> {
  const { context, page } = await loopbackPage(browser);
  await page.setViewportSize(viewport);
  await page.goto(t.gw.consoleLoginLink() ?? "");
  await page.waitForSelector("#me");
  return { context, page };
}

async function signIn(token: string, viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page }> {
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

function pageFetch(page: Page, path: string): Promise<{ status: number; text: string }> {
  return page.evaluate(async (p) => {
    const ctl = new AbortController();
    const r = await fetch(p, { credentials: "same-origin", signal: ctl.signal });
    const text = r.status === 200 ? "" : await r.text();
    ctl.abort(); // a stream the caller may read would never end
    return { status: r.status, text };
  }, path);
}

/** A psql that keeps its session open; statements are written to its stdin one by one. */
function openPsql(token: string): ChildProcessWithoutNullStreams & { out: () => string } {
  const child = spawn("psql", ["-X", "-At", `host=127.0.0.1 port=${t.pgPort} dbname=orders user=agent sslmode=disable`], {
    env: { ...process.env, PGPASSWORD: token },
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  return Object.assign(child, { out: () => out });
}

async function liveSessionOf(principal: string, protocol: string): Promise<string> {
  return until(`a live ${protocol} session of ${principal}`, () => t.gw.registry.list().find((s) => s.principal.name === principal && s.clientProtocol === protocol)?.id);
}

describe("the web console, live and new pages", () => {
  it("watches a running psql session: statements, decisions and masked rows appear as they happen; the end turns it into the replay; others cannot watch", { timeout: 120_000 }, async () => {
    const psql = openPsql(tokens["agent"] ?? "");
    psql.stdin.write("select 'first-' || 1;\n");
    await until("psql's first answer", () => psql.out().includes("first-1") || undefined);
    const id = await liveSessionOf("agent", "postgres");
    const { context, page } = await asAdmin();
    try {
      await page.goto(`${t.apiUrl}/#/sessions`);
      const row = page.locator(`#sessions tr[data-id="${id}"]`);
      await row.locator("a.watch").click();
      await page.waitForSelector("#session-live.on");
      // The statement run before the page opened (the backlog) …
      await page.waitForSelector("#live-view >> text=select 'first-' || 1");
      // … and those run while it is open, with their decisions and the masked rows the client saw.
      psql.stdin.write("select id, email from customers order by id;\n");
      await page.waitForSelector("#live-view >> text=select id, email from customers order by id");
      await page.waitForSelector("#live-view td >> text=[EMAIL]");
      expect(await page.textContent("#live-view")).not.toContain("ada@example.com");
      psql.stdin.write("drop table customers;\n");
      await page.waitForSelector("#live-view code >> text=no-drop");
      const steps = await page.locator("#live-view .step").count();
      expect(steps).toBe(3);
      await shot(page, "live-sql-desktop");
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "live-sql-narrow");
      await page.setViewportSize({ width: 1280, height: 900 });
      // Another principal's session is not theirs to watch (not found, as if there were none).
      const other = await signIn(tokens["other-agent"] ?? "");
      try {
        const r = await pageFetch(other.page, `/v1/console/sessions/${id}/live`);
        expect(r.status).toBe(404);
      } finally {
        await other.context.close();
      }
      // The session's own principal may.
      const own = await signIn(tokens["agent"] ?? "");
      try {
        expect((await pageFetch(own.page, `/v1/console/sessions/${id}/live`)).status).toBe(200);
      } finally {
        await own.context.close();
      }
      psql.stdin.end();
      await page.waitForSelector("#session-live", { state: "detached" });
      await page.waitForSelector("#timeline");
      expect(await page.locator("#timeline .step").count()).toBe(3);
    } finally {
      await context.close();
    }
  });

  it("watches an SSH shell: the terminal shows output as it is typed", { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "airlock-live-ssh-"));
    const ssh = spawn("ssh", [...clientOptions("password"), "-tt", "-p", String(t.gw.addresses.ssh?.port ?? 0), "web1@127.0.0.1"], {
      env: { ...process.env, DISPLAY: ":0", SSH_ASKPASS_REQUIRE: "force", SSH_ASKPASS: askpass(dir, tokens["agent"] ?? "") },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    children.push(ssh);
    let out = "";
    ssh.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    const id = await liveSessionOf("agent", "ssh");
    const { context, page } = await asAdmin();
    try {
      await page.goto(`${t.apiUrl}/#/sessions/${id}`);
      await page.waitForSelector("#session-live.on");
      ssh.stdin.write("echo live-$((6*7))-one\n");
      await until("the shell's answer", () => out.includes("live-42-one") || undefined);
      await page.waitForSelector("#live-terminal .xterm");
      await until("the live terminal to show the output", async () => ((await page.textContent("#live-terminal")) ?? "").includes("live-42-one") || undefined);
      ssh.stdin.write("echo second-$((2*3))\n");
      await until("the live terminal to show more", async () => ((await page.textContent("#live-terminal")) ?? "").includes("second-6") || undefined);
      await shot(page, "live-ssh-desktop");
      ssh.stdin.write("exit\n");
      // Ended: the replay's player takes over.
      await page.waitForSelector("#terminal .xterm", { timeout: 20_000 });
    } finally {
      await context.close();
    }
  });

  it("replays HTTP exchanges as a list with their masked, capped bodies", { timeout: 60_000 }, async () => {
    // One client connection = one session: both requests on one kept-alive socket.
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const request = (method: string, path: string, body?: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(
          { host: "127.0.0.1", port: t.gw.addresses.http?.port ?? 0, path: `/api${path}`, method, agent, headers: { authorization: `Bearer ${tokens["agent"] ?? ""}`, "content-type": "text/plain" } },
          (res) => {
            let text = "";
            res.setEncoding("utf8").on("data", (d: string) => (text += d));
            res.on("end", () => resolve(text));
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    expect(await request("GET", "/users")).not.toContain("ana.garcia@example.es");
    await request("POST", "/echo?x=1", "hello");
    agent.destroy();
    const id = await until("the HTTP session, ended, in the store", async () => (await t.gw.store.listSessions({ limit: 50, offset: 0 })).find((s) => s.connection === "api" && s.endedAt !== undefined)?.id);
    const { context, page } = await asAdmin();
    try {
      await page.goto(`${t.apiUrl}/#/sessions/${id}`);
      await page.waitForSelector("#exchanges .exchange");
      await until("both exchanges", async () => ((await page.locator("#exchanges .exchange").count()) >= 2) || undefined).catch(async (e: unknown) => {
        console.log("page:", await page.textContent("main"));
        throw e;
      });
      const first = page.locator("#exchanges .exchange").filter({ hasText: "GET /users" });
      expect(await first.locator(".status").textContent()).toContain("200");
      expect(await first.textContent()).toContain("masked");
      await first.locator("summary").click();
      const body = (await first.locator("pre.body").textContent()) ?? "";
      expect(body).toContain("[EMAIL]");
      expect(body).not.toContain("ana.garcia@example.es");
      expect(await page.locator("#exchanges .exchange").filter({ hasText: "POST /echo?x=1" }).count()).toBe(1);
      await shot(page, "replay-http-desktop");
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "replay-http-narrow");
    } finally {
      await context.close();
    }
  });

  it("replays a kubectl exec in the terminal player", { timeout: 90_000 }, async () => {
    const kube = new FakeKube();
    await kube.start();
    // Its own gateway: kubectl sends a token over TLS only, so this HTTP listener has a certificate.
    const dir = mkdtempSync(join(tmpdir(), "airlock-live-k8s-"));
    writeFileSync(join(dir, "ca.pem"), kube.caPem);
    writeFileSync(join(dir, "token"), kube.token);
    const k = await startTestGateway({
      listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
      tls: { selfSigned: true },
      serviceAccounts: [{ name: "agent", groups: ["agents"] }],
      connections: [{ name: "k8s", type: "kubernetes", server: kube.url, ca: `file:${join(dir, "ca.pem")}`, token: `file:${join(dir, "token")}`, groups: ["agents"] }],
    });
    try {
      const gwCa = readFileSync(join(k.dataDir, "tls", "cert.pem"), "utf8");
      const cfg = writeKubeconfig("", "", "", renderKubeconfig({ connection: "k8s", gatewayUrl: `https://127.0.0.1:${k.gw.addresses.http?.port ?? 0}`, token: await k.mint("agent"), caPem: gwCa, namespace: "default" }));
      kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
      const r = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "echo exec-$((6*7)) from $POD"]);
      expect(r.stdout).toContain("exec-42");
      const id = await until("the exec session's terminal recording", async () => {
        for (const s of await k.gw.store.listSessions({ limit: 50, offset: 0 })) {
          if (s.endedAt === undefined) continue;
          const d = (await k.api(`/v1/console/sessions/${s.id}`)).body as { hasCast?: boolean };
          if (d.hasCast === true) return s.id;
        }
        return undefined;
      });
      const { context, page } = await loopbackPage(browser);
      try {
        await page.setViewportSize({ width: 1280, height: 900 });
        await page.goto(k.gw.consoleLoginLink() ?? "");
        await page.goto(`${k.apiUrl}/#/sessions/${id}`);
        await page.waitForSelector("#terminal .xterm");
        await page.click("#to-end");
        await until("the player to show the exec's output", async () => ((await page.textContent("#terminal")) ?? "").includes("exec-42") || undefined);
        await shot(page, "replay-kubectl-exec-desktop");
      } finally {
        await context.close();
      }
    } finally {
      await k.stop();
      await kube.close();
    }
  });

  it("generates the connection form from the YAML's schema per type and shows problems against the field", { timeout: 60_000 }, async () => {
    const { context, page } = await asAdmin({ width: 1280, height: 1000 });
    try {
      await page.goto(`${t.apiUrl}/#/connections`);
      await page.waitForSelector("#conn-database");
      // Every type the YAML knows, each with its own fields.
      const types = await page.locator("#conn-type option").allTextContents();
      expect(types.sort()).toEqual(["http", "kubernetes", "mcp", "mysql", "postgres", "redis", "ssh"]);
      await page.selectOption("#conn-type", "ssh");
      await page.waitForSelector("#conn-hostKey");
      expect(await page.locator("#conn-database").count()).toBe(0);
      await page.fill("#conn-name", "web2");
      await page.fill("#conn-host", "127.0.0.1");
      await page.fill("#conn-user", "deploy");
      await page.fill("#conn-hostKey", "not-a-key");
      await page.fill("#conn-password", "pw-value");
      await page.click("#conn-save");
      await page.waitForSelector("#register [data-field=hostKey] .field-error");
      expect(await page.textContent("#register [data-field=hostKey] .field-error")).toContain("known_hosts");
      await shot(page, "connections-form-desktop");
      await page.selectOption("#conn-type", "http");
      await page.waitForSelector("#conn-baseUrl");
      await page.fill("#conn-name", "api2");
      await page.fill("#conn-baseUrl", upstream.url);
      await page.fill("#conn-auth", '{"bearer": "env:API2_TOKEN"}');
      await page.fill("#conn-groups", "agents");
      await page.click("#conn-save");
      await page.waitForSelector('#connections tr[data-name="api2"]');
      // Disable (kept, refused) and enable again.
      await page.locator('#connections tr[data-name="api2"] .conn-toggle').click();
      await page.waitForSelector('#connections tr[data-name="api2"] >> text=console · disabled');
      const base = `http://127.0.0.1:${t.gw.addresses.http?.port ?? 0}/api2/users`;
      expect((await fetch(base, { headers: { authorization: `Bearer ${tokens["agent"] ?? ""}` } })).status).toBe(404);
      await page.locator('#connections tr[data-name="api2"] .conn-toggle').click();
      await page.waitForSelector('#connections tr[data-name="api2"] >> text=Disable');
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "connections-form-narrow");
    } finally {
      await context.close();
    }
  });

  it("reorders console policies in the browser: psql is then refused by the other rule", { timeout: 60_000 }, async () => {
    const doc = (name: string): string => `name: ${name}\nconnections: [orders]\nmatch: { relations: [customers] }\naction: deny\nmessage: refused by ${name}\n`;
    const { context, page } = await asAdmin();
    try {
      await page.goto(`${t.apiUrl}/#/policies`);
      for (const name of ["first-rule", "second-rule"]) {
        await page.fill("#policy-document", doc(name));
        await page.click("#policy-save");
        await page.waitForSelector(`details.policy[data-name="${name}"]`);
      }
      const refusedBy = async (): Promise<string> => (await t.psql("orders", tokens["agent"] ?? "", ["-At", "-c", "select id from customers"])).stderr;
      expect(await refusedBy()).toContain("first-rule");
      const second = page.locator('details.policy[data-name="second-rule"]');
      await second.locator("summary").click();
      await second.locator(".policy-up").click();
      await until("the new order", async () => {
        const rows = page.locator('details.policy[data-source="console"]');
        const names: string[] = [];
        for (let i = 0; i < (await rows.count()); i++) names.push((await rows.nth(i).getAttribute("data-name")) ?? "");
        return names.join() === "second-rule,first-rule" || undefined;
      });
      const now = await refusedBy();
      expect(now).toContain("second-rule");
      expect(now).not.toContain("first-rule");
      await t.gw.audit.flush();
      const audit = await t.gw.store.readAudit(0, 100_000);
      expect(audit.some((a) => a.type === "policy.change" && a.details?.["action"] === "reorder" && a.details["order"] === "second-rule,first-rule")).toBe(true);
      await shot(page, "policies-order-desktop");
    } finally {
      await context.close();
    }
  });

  it("lists connected agents (group, version, address, streams, last seen) for admins and auditors only", { timeout: 90_000 }, async () => {
    const agent = spawn(
      process.execPath,
      [join(repo, "bin/airlock.js"), "agent", "--gateway", `ws://127.0.0.1:${t.gw.addresses.api?.port ?? 0}`, "--token", tokens["edge"] ?? "", "--group", "dc-east", "--name", "edge-1"],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    children.push(agent);
    let log = "";
    agent.stderr.setEncoding("utf8").on("data", (d: string) => (log += d));
    await until("the agent to connect", () => t.gw.agents.list().some((a) => a.name === "edge-1") || undefined).catch((e: unknown) => {
      throw new Error(`${String(e)}\nagent log:\n${log}`);
    });
    const { context, page } = await asAdmin();
    try {
      await page.goto(`${t.apiUrl}/#/agents`);
      const row = page.locator('#agents tr[data-group="dc-east"]');
      await row.waitFor();
      const text = (await row.textContent()) ?? "";
      const a = t.gw.agents.list().find((x) => x.name === "edge-1");
      expect(text).toContain("edge-1");
      expect(text).toContain(a?.version ?? "?");
      expect(text).toContain(a?.address ?? "?");
      expect(await row.locator(".streams").textContent()).toBe("0");
      expect(await row.locator(".last-seen").textContent()).toMatch(/ago$/u);
      expect(await page.textContent("#agents-count")).toContain("1 agent connected in 1 group");
      await shot(page, "agents-desktop");
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "agents-narrow");
    } finally {
      await context.close();
    }
    const aud = await signIn(tokens["auditor1"] ?? "");
    try {
      await aud.page.goto(`${t.apiUrl}/#/agents`);
      await aud.page.waitForSelector('#agents tr[data-group="dc-east"]');
    } finally {
      await aud.context.close();
    }
    const user = await signIn(tokens["agent"] ?? "");
    try {
      expect(await user.page.locator("#nav-agents").count()).toBe(0);
      expect((await pageFetch(user.page, "/v1/agents")).status).toBe(403);
    } finally {
      await user.context.close();
    }
    agent.kill("SIGTERM");
  });

  it("shows budget counters as psql spends them; a user sees only their own, an auditor everyone's", { timeout: 90_000 }, async () => {
    // (Not the customers table: the reorder test leaves console rules that refuse it.)
    const before = await t.psql("orders", tokens["other-agent"] ?? "", ["-At", "-c", "select n from generate_series(1, 2) n"]);
    expect(before.stderr).toBe("");
    const user = await signIn(tokens["agent"] ?? "");
    try {
      await user.page.click("#nav-budgets");
      await user.page.waitForSelector("#budgets");
      const q = await t.psql("orders", tokens["agent"] ?? "", ["-At", "-c", "select n from generate_series(1, 2) n"]);
      expect(q.stdout.trim()).toBe("1\n2");
      // The page refreshes by itself: the agent's own counter appears, with the rows it read.
      const row = user.page.locator('#budgets tr[data-budget="orders-reads"]');
      await until("the agent's counter on the page", async () => ((await row.count()) === 1 && ((await row.locator("td.rows").textContent()) ?? "").includes("/ 100,000") ? true : undefined), 20_000);
      expect(await row.getAttribute("data-subject")).toBe("sa:agent");
      expect(Number(((await row.locator("td.rows").textContent()) ?? "").split(" / ")[0]?.replace(/,/g, ""))).toBeGreaterThanOrEqual(2);
      expect(await user.page.locator('#budgets tr[data-subject="sa:other-agent"]').count()).toBe(0);
      await shot(user.page, "budgets-desktop");
    } finally {
      await user.context.close();
    }
    const aud = await signIn(tokens["auditor1"] ?? "");
    try {
      await aud.page.goto(`${t.apiUrl}/#/budgets`);
      await aud.page.waitForSelector('#budgets tr[data-subject="sa:other-agent"]');
      expect(await aud.page.locator('#budgets tr[data-subject="sa:agent"]').count()).toBe(1);
    } finally {
      await aud.context.close();
    }
  });
});
