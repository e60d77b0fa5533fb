/**
 * `airlock login` against a real OpenID provider: the device authorization grant (the person
 * approves in headless Chromium), and the loopback redirect with PKCE; the ID token is
 * exchanged at the gateway and the resulting Airlock token is stored 0600 where the other
 * commands find it.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/cli.js";
import { completeDevLogin, launchBrowser, loopbackPage } from "./harness/browser.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";

let idp: TestOidcProvider;
let noDevice: TestOidcProvider;
let t: TestGateway;
let browser: Browser;
let home: string;

beforeAll(async () => {
  idp = await startOidcProvider([
    {
      clientId: "airlock-cli",
      grantTypes: ["urn:ietf:params:oauth:grant-type:device_code", "authorization_code", "refresh_token"],
      redirectUris: ["http://127.0.0.1/callback"],
      native: true,
    },
  ]);
  idp.groupsOf.set("carol", ["security"]);
  // A provider without a device authorization endpoint: `airlock login` must fall back to the browser.
  noDevice = await startOidcProvider(
    [{ clientId: "airlock-cli", grantTypes: ["authorization_code"], redirectUris: ["http://127.0.0.1/callback"], native: true }],
    { deviceFlow: false },
  );
  t = await startTestGateway({
    roles: { auditor: ["security"] },
    oidc: [
      // Groups of people signed in through `airlock login` are re-checked every second (test speed).
      { issuer: idp.issuer, alias: "corp", audience: "airlock-cli", principal: { kind: "person", name: "email" }, recheckInterval: "1s" },
      { issuer: noDevice.issuer, alias: "corp2", audience: "airlock-cli", principal: { kind: "person", name: "email" } },
    ],
  });
  browser = await launchBrowser();
  home = await mkdtemp(join(tmpdir(), "airlock-cli-home-"));
});

afterAll(async () => {
  await browser.close();
  await t.stop();
  await idp.close();
  await noDevice.close();
  await rm(home, { recursive: true, force: true });
});

interface Running {
  readonly done: Promise<number>;
  readonly stdout: () => string;
  readonly stderr: () => string;
  waitFor(re: RegExp): Promise<RegExpExecArray>;
}

function cli(args: string[], env: NodeJS.ProcessEnv): Running {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (d: Buffer) => (stdout += d.toString()));
  err.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = runCli(args, { stdout: out, stderr: err, env, cwd: home });
  return {
    done,
    stdout: () => stdout,
    stderr: () => stderr,
    async waitFor(re) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const m = re.exec(stderr);
        if (m !== null) return m;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(re)}; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

describe("airlock login", () => {
  it("uses the device flow when the provider offers it, and stores the token 0600 for later commands", async () => {
    const xdg = join(home, "xdg-device");
    const env = { PATH: process.env["PATH"], HOME: home, XDG_CONFIG_HOME: xdg };
    const run = cli(["login", "--issuer", idp.issuer, "--client-id", "airlock-cli", "--api", t.apiUrl], env);
    const m = await run.waitFor(/open (\S+)\nand enter the code (\S+)/);
    const { context, page } = await loopbackPage(browser);
    try {
      await page.goto(m[1] ?? "");
      // Confirm the user code, then sign in and consent.
      await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"][form="op.deviceConfirmForm"]:not([name="abort"])')]);
      await completeDevLogin(page, "carol");
    } finally {
      await context.close();
    }
    expect(await run.done).toBe(0);
    expect(run.stdout()).toBe("");
    expect(run.stderr()).toContain("Signed in as user:carol@example.com (groups: security)");
    const file = join(xdg, "airlock", "token");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = (await readFile(file, "utf8")).trim();
    const who = await t.api("/v1/auth/whoami", { token });
    expect(who.body).toMatchObject({ principal: { id: "user:carol@example.com", kind: "person" }, roles: ["auditor", "user"] });

    // Another command finds the saved token (carol is an auditor: she may list sessions).
    const list = cli(["sessions", "list", "--api", t.apiUrl, "--json"], env);
    expect(await list.done).toBe(0);
    expect(() => JSON.parse(list.stdout()) as unknown).not.toThrow();
    const mint = cli(["token", "create", "--service-account", "x", "--api", t.apiUrl], env);
    expect(await mint.done).toBe(1);
    expect(mint.stderr()).toContain("needs role admin");
  });

  it("uses a loopback redirect with --browser, and --print writes only the token", async () => {
    const env = { PATH: process.env["PATH"], HOME: home, XDG_CONFIG_HOME: join(home, "xdg-browser") };
    const run = cli(["login", "--issuer", idp.issuer, "--client-id", "airlock-cli", "--api", t.apiUrl, "--browser", "--print"], env);
    const m = await run.waitFor(/open this URL in a browser on this machine:\n(\S+)\n/);
    const authUrl = new URL(m[1] ?? "");
    expect(authUrl.searchParams.get("redirect_uri")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(authUrl.searchParams.get("code_challenge_method")).toBe("S256");
    const { context, page } = await loopbackPage(browser);
    try {
      await page.goto(authUrl.href);
      await completeDevLogin(page, "dave");
      await page.waitForURL(/127\.0\.0\.1:\d+\/callback/, { timeout: 15_000 });
    } finally {
      await context.close();
    }
    expect(await run.done).toBe(0);
    const token = run.stdout().trim();
    expect(token.split(".")).toHaveLength(3);
    const who = await t.api("/v1/auth/whoami", { token });
    expect(who.body).toMatchObject({ principal: { id: "user:dave@example.com", groups: ["engineers"] }, roles: ["user"] });
  });

  it("falls back to the loopback redirect when the provider has no device endpoint; --device then fails clearly", async () => {
    const meta = (await (await fetch(`${noDevice.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(meta["device_authorization_endpoint"]).toBeUndefined();
    const env = { PATH: process.env["PATH"], HOME: home, XDG_CONFIG_HOME: join(home, "xdg-fallback") };
    // No --browser: the CLI chooses the loopback redirect itself.
    const run = cli(["login", "--issuer", noDevice.issuer, "--client-id", "airlock-cli", "--api", t.apiUrl, "--print"], env);
    const m = await run.waitFor(/open this URL in a browser on this machine:\n(\S+)\n/);
    expect(run.stderr()).not.toContain("enter the code");
    const authUrl = new URL(m[1] ?? "");
    expect(authUrl.origin).toBe(noDevice.issuer);
    expect(authUrl.searchParams.get("redirect_uri")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const { context, page } = await loopbackPage(browser);
    try {
      await page.goto(authUrl.href);
      await completeDevLogin(page, "erin");
      await page.waitForURL(/127\.0\.0\.1:\d+\/callback/, { timeout: 15_000 });
    } finally {
      await context.close();
    }
    expect(await run.done).toBe(0);
    const who = await t.api("/v1/auth/whoami", { token: run.stdout().trim() });
    expect(who.body).toMatchObject({ principal: { id: "user:erin@example.com", kind: "person" } });

    const forced = cli(["login", "--issuer", noDevice.issuer, "--client-id", "airlock-cli", "--api", t.apiUrl, "--device"], env);
    expect(await forced.done).toBe(1);
    expect(forced.stderr()).toContain("does not support the device flow");
  });

  it("hands the refresh token to the gateway, which re-checks the person's groups: a removed group is gone within 5 s, a deleted account is revoked", async () => {
    const refreshTokens: string[] = [];
    idp.onEvent("refresh_token.saved", (m) => {
      if (m.jti !== undefined) refreshTokens.push(m.jti);
    });
    idp.groupsOf.set("gina", ["security", "engineers"]);
    const env = { PATH: process.env["PATH"], HOME: home, XDG_CONFIG_HOME: join(home, "xdg-recheck") };
    const run = cli(["login", "--issuer", idp.issuer, "--client-id", "airlock-cli", "--api", t.apiUrl, "--browser", "--print"], env);
    const m = await run.waitFor(/open this URL in a browser on this machine:\n(\S+)\n/);
    const { context, page } = await loopbackPage(browser);
    try {
      await page.goto(m[1] ?? "");
      await completeDevLogin(page, "gina");
      await page.waitForURL(/127\.0\.0\.1:\d+\/callback/, { timeout: 15_000 });
    } finally {
      await context.close();
    }
    expect(await run.done).toBe(0);
    const token = run.stdout().trim();
    expect((await t.api("/v1/auth/whoami", { token })).body).toMatchObject({ roles: ["auditor", "user"] });
    expect(refreshTokens.length).toBeGreaterThan(0);

    idp.groupsOf.set("gina", ["engineers"]);
    const started = Date.now();
    let who = await t.api("/v1/auth/whoami", { token });
    while ((who.body as { roles: string[] }).roles.includes("auditor") && Date.now() - started < 5000) {
      await new Promise((r) => setTimeout(r, 100));
      who = await t.api("/v1/auth/whoami", { token });
    }
    expect(who.body).toMatchObject({ principal: { id: "user:gina@example.com", groups: ["engineers"] }, roles: ["user"] });

    idp.deleted.add("gina");
    let status = 200;
    while (status === 200 && Date.now() - started < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await t.api("/v1/auth/whoami", { token })).status;
    }
    expect(status).toBe(401);
    // The refresh token went to the gateway only: not on the CLI's output, not in the gateway's logs.
    for (const rt of refreshTokens) {
      expect(run.stdout() + run.stderr()).not.toContain(rt);
      expect(t.logs()).not.toContain(rt);
    }
  });

  it("fails with one clear line for an issuer it cannot reach", async () => {
    const run = cli(["login", "--issuer", "http://127.0.0.1:9/", "--client-id", "x", "--api", t.apiUrl], { HOME: home, XDG_CONFIG_HOME: join(home, "none") });
    expect(await run.done).toBe(1);
    expect(run.stderr()).toMatch(/^airlock: cannot discover the issuer/);
    expect(run.stderr().trim().split("\n")).toHaveLength(1);
  });
});
