/**
 * Issue 19: the gateway restarts under connected agents. The gateway is a real `airlock gateway`
 * process (the compiled CLI, one config file and dataDir), the agent a real `airlock agent`
 * process; the target is a harness PostgreSQL with an agent-side SCRAM login. The gateway is
 * stopped with SIGTERM (drain) and with SIGKILL (no goodbye to the agent: the tunnel just dies),
 * then started again on the same ports and dataDir: the agent must notice, reconnect with its
 * jittered backoff within seconds, and psql must work again. The measured reconnect times are
 * printed (timing is not asserted beyond "within seconds": the bound is generous for a loaded
 * machine).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { freePort } from "./harness/ports.js";

const repo = join(import.meta.dirname, "..");
const CANARY = `canary-${randomBytes(12).toString("hex")}`;
let buildDir = "";
let cli = "";
let server: PgServer;
let dataDir = "";
let apiPort = 0;
let pgPort = 0;
let gateway: ChildProcess | undefined;
let gatewayOutput = "";
let agent: ChildProcess | undefined;
let agentLog = "";
let botToken = "";

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function adminToken(): string {
  return readFileSync(join(dataDir, "admin.token"), "utf8").trim();
}

async function api(path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${adminToken()}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function mint(serviceAccount: string): Promise<string> {
  const r = await api("/v1/tokens", { serviceAccount, ttl: "1h" });
  if (r.status !== 201) throw new Error(`mint: ${r.status} ${JSON.stringify(r.body)}`);
  return String(r.body["token"]);
}

async function startGatewayProcess(): Promise<void> {
  gatewayOutput = "";
  const proc = spawn(process.execPath, [cli, "gateway", "--config", join(dataDir, "airlock.json.yaml")], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d: Buffer) => (gatewayOutput += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (gatewayOutput += d.toString()));
  gateway = proc;
  const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`gateway exited (${String(code)}): ${gatewayOutput.slice(-2000)}`))));
  exited.catch(() => undefined);
  await Promise.race([exited, until("gateway ready", async () => ((await fetch(`http://127.0.0.1:${apiPort}/readyz`)).status === 200 ? true : undefined), 90_000)]);
}

function stopGatewayProcess(signal: NodeJS.Signals): Promise<void> {
  const p = gateway;
  gateway = undefined;
  if (p === undefined || p.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once("exit", () => resolve());
    p.kill(signal);
  });
}

async function agentNames(): Promise<string[]> {
  const r = await api("/v1/agents");
  return (r.body["agents"] as { name: string }[]).map((a) => a.name);
}

async function countThroughAgent(): Promise<number> {
  const c = new pg.Client({ host: "127.0.0.1", port: pgPort, database: "orders", user: "bot", password: botToken, connectionTimeoutMillis: 15_000 });
  await c.connect();
  try {
    const r = await c.query<{ n: number }>("select count(*)::int as n from items");
    return r.rows[0]?.n ?? -1;
  } finally {
    await c.end();
  }
}

describe("gateway restarts under a connected agent", () => {
  beforeAll(async () => {
    mkdirSync(join(repo, ".airlock"), { recursive: true });
    buildDir = mkdtempSync(join(repo, ".airlock", "agent-restart-"));
    const tsconfig = join(buildDir, "tsconfig.json");
    writeFileSync(tsconfig, JSON.stringify({ extends: join(repo, "tsconfig.build.json"), compilerOptions: { outDir: join(buildDir, "out"), rootDir: repo, incremental: false }, include: [], files: [join(repo, "src/cli/main.ts"), join(repo, "src/runtime/run.ts")] }));
    const built = promisify(execFile)(join(repo, "node_modules/.bin/tsc"), ["-p", tsconfig], { cwd: repo });
    // Worker scripts the gateway loads by URL, beside the compiled code (as the build's copy-assets step does).
    for (const e of readdirSync(join(repo, "src"), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith(".mjs") || e.name.includes(".test.")) continue;
      const to = join(buildDir, "out", "src", relative(join(repo, "src"), join(e.parentPath, e.name)));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(join(e.parentPath, e.name), to);
    }
    cli = join(buildDir, "out", "src", "cli", "main.js");

    server = await startPostgres({ users: [{ name: "app", password: CANARY, auth: "scram-sha-256" }], databases: ["orders"] });
    await server.psql("create table items (id int primary key); insert into items select generate_series(1, 7); alter table items owner to app;", { database: "orders" });

    dataDir = mkdtempSync(join(tmpdir(), "airlock-agent-restart-"));
    apiPort = await freePort();
    pgPort = await freePort();
    const config = {
      dataDir,
      listen: { api: `127.0.0.1:${apiPort}`, postgres: `127.0.0.1:${pgPort}` },
      log: { level: "info" },
      instance: { drainTimeout: "2s" },
      serviceAccounts: [
        { name: "edge", groups: ["edge-east"] },
        { name: "bot", groups: ["agents"] },
      ],
      agents: { groups: [{ name: "dc-east", allow: ["edge-east"] }], heartbeat: "1s" },
      connections: [
        { name: "orders", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "env:AGENT_PG_PASSWORD", credentialsOn: "agent", via: "dc-east", groups: ["agents"], sslmode: "disable" },
      ],
    };
    writeFileSync(join(dataDir, "airlock.json.yaml"), JSON.stringify(config));
    await built;
    await startGatewayProcess();
    const edgeToken = await mint("edge");
    botToken = await mint("bot");
    agent = spawn(
      process.execPath,
      [cli, "agent", "--gateway", `ws://127.0.0.1:${apiPort}`, "--token", edgeToken, "--group", "dc-east", "--name", "r1", "--secret", "env:AGENT_PG_PASSWORD"],
      { env: { PATH: process.env["PATH"] ?? "", AGENT_PG_PASSWORD: CANARY }, stdio: ["ignore", "ignore", "pipe"] },
    );
    agent.stderr?.setEncoding("utf8").on("data", (d: string) => (agentLog += d));
    await until("the agent connected", async () => ((await agentNames()).includes("r1") ? true : undefined));
  }, 300_000);

  afterAll(async () => {
    agent?.kill("SIGKILL");
    await stopGatewayProcess("SIGKILL");
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(buildDir, { recursive: true, force: true });
  });

  it("psql works through the agent before any restart", async () => {
    expect(await countThroughAgent()).toBe(7);
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`after ${signal}, the agent reconnects to the restarted gateway within seconds and psql works again`, async () => {
      const before = (agentLog.match(/reconnecting/g) ?? []).length;
      await stopGatewayProcess(signal);
      const down = Date.now();
      // The agent notices the lost tunnel (socket close; at worst three missed 1 s heartbeats).
      await until("the agent noticed", () => Promise.resolve((agentLog.match(/reconnecting/g) ?? []).length > before ? true : undefined), 20_000);
      await startGatewayProcess();
      const ready = Date.now();
      await until("the agent reconnected", async () => ((await agentNames()).includes("r1") ? true : undefined), 20_000);
      const back = Date.now();
      console.log(`[agent-restart] ${signal}: gateway down→ready ${ready - down} ms; ready→agent reconnected ${back - ready} ms`);
      // Within seconds: the agent's backoff is capped at 10 s (full jitter), so at most one cap after the gateway is up.
      expect(back - ready).toBeLessThan(15_000);
      expect(await countThroughAgent()).toBe(7);
    }, 120_000);
  }
});
