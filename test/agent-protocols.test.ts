/**
 * Issue 19: MySQL/MariaDB and Redis through a real `airlock agent` process (the compiled CLI)
 * connected to an in-process gateway, against a real mariadbd and redis-server, with the real
 * mariadb and redis-cli clients. Redis logs in agent-side (`credentialsOn: agent`: the agent
 * sends AUTH with a password only its environment holds); MySQL logs in with the gateway's own
 * credential over the agent's stream (agent-side MySQL logins are not in this version).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { startMariaDb, type MariaDbServer } from "./harness/mariadb.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { runProcess, startRedis, type RedisServer } from "./harness/redis.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

const repo = join(import.meta.dirname, "..");
let buildDir = "";
let cli = "";
let db: MariaDbServer;
let redis: RedisServer;
let pgTls: PgServer;
const PG_PASSWORD = `pg-${randomBytes(8).toString("hex")}`;
let t: TestGateway;
let agent: ChildProcess | undefined;
let agentLog = "";
let botToken = "";

function opened(): number {
  return t.gw.agents.list().reduce((n, a) => n + a.streamsOpened, 0);
}

function redisCli(connection: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess("redis-cli", ["-h", "127.0.0.1", "-p", String(t.gw.addresses.redis?.port ?? 0), "--user", connection, "--pass", botToken, "--no-auth-warning", ...args]);
}

function mariadb(connection: string, sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess("mariadb", ["--no-defaults", "-h127.0.0.1", `-P${t.gw.addresses.mysql?.port ?? 0}`, "-ubot", `-p${botToken}`, "--batch", connection], { input: sql, timeoutMs: 60_000 });
}

describe("MySQL and Redis through a network-resident agent", () => {
  beforeAll(async () => {
    mkdirSync(join(repo, ".airlock"), { recursive: true });
    buildDir = mkdtempSync(join(repo, ".airlock", "agent-proto-"));
    const tsconfig = join(buildDir, "tsconfig.json");
    writeFileSync(tsconfig, JSON.stringify({ extends: join(repo, "tsconfig.build.json"), compilerOptions: { outDir: join(buildDir, "out"), rootDir: repo, incremental: false }, include: [], files: [join(repo, "src/cli/main.ts")] }));
    const compiled = promisify(execFile)(join(repo, "node_modules/.bin/tsc"), ["-p", tsconfig], { cwd: repo });
    cli = join(buildDir, "out", "src", "cli", "main.js");
    [db, redis, pgTls] = await Promise.all([
      startMariaDb(),
      startRedis(),
      startPostgres({ ssl: true, users: [{ name: "app", password: PG_PASSWORD, auth: "scram-sha-256" }], databases: ["orders"] }),
    ]);
    const caFile = join(buildDir, "pg-ca.pem");
    writeFileSync(caFile, pgTls.caCert ?? "");
    await redis.cli(["SET", "greeting", "hello through the agent"]);
    t = await startTestGateway({
      listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0", redis: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      serviceAccounts: [
        { name: "edge", groups: ["edge"] },
        { name: "bot", groups: ["agents"] },
      ],
      agents: { groups: [{ name: "dc", allow: ["edge"] }], heartbeat: "1s" },
      connections: [
        { name: "cache", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: "env:AGENT_REDIS_PASSWORD", credentialsOn: "agent", via: "dc", groups: ["agents"] },
        { name: "cachebad", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: "env:AGENT_WRONG_PASSWORD", credentialsOn: "agent", via: "dc", groups: ["agents"] },
        { name: "orders", type: "postgres", host: "127.0.0.1", port: pgTls.port, database: "orders", user: "app", password: "env:AGENT_PG_PASSWORD", credentialsOn: "agent", via: "dc", groups: ["agents"], sslmode: "verify-full", sslRootCert: `file:${caFile}`, pool: false },
        { name: "shop", type: "mysql", host: "127.0.0.1", port: db.port, database: "shop", user: "airlock_native", password: db.password, sslmode: "disable", via: "dc", groups: ["agents"] },
        { name: "shoped", type: "mysql", host: "127.0.0.1", port: db.port, database: "shop", user: "airlock_ed", password: db.password, sslmode: "disable", via: "dc", groups: ["agents"] },
      ],
      policies: [
        { name: "pii", connections: ["shop*"], action: "mask", columns: ["customers.email"], strategy: "redact" },
        { name: "no-flush", connections: ["cache*"], match: { commands: ["flushall", "flushdb"] }, action: "deny" },
      ],
    });
    botToken = await t.mint("bot", "1h");
    const edgeToken = await t.mint("edge", "1h");
    await compiled;
    agent = spawn(
      process.execPath,
      [cli, "agent", "--gateway", `ws://127.0.0.1:${t.gw.addresses.api?.port ?? 0}`, "--token", edgeToken, "--group", "dc", "--name", "p1", "--secret", "env:AGENT_REDIS_PASSWORD", "--secret", "env:AGENT_WRONG_PASSWORD", "--secret", "env:AGENT_PG_PASSWORD"],
      { env: { PATH: process.env["PATH"] ?? "", AGENT_PG_PASSWORD: PG_PASSWORD, AGENT_REDIS_PASSWORD: redis.password, AGENT_WRONG_PASSWORD: "not-the-password" }, stdio: ["ignore", "ignore", "pipe"] },
    );
    agent.stderr?.setEncoding("utf8").on("data", (d: string) => (agentLog += d));
    await until("the agent connected", () => (t.gw.agents.list().length === 1 ? true : undefined), 30_000).catch((e: unknown) => {
      throw new Error(`${String(e)}; agent log: ${agentLog.slice(0, 2000)}`);
    });
  }, 300_000);

  afterAll(async () => {
    agent?.kill("SIGKILL");
    await t.stop();
    await Promise.all([db.stop(), redis.stop(), pgTls.stop()]);
    rmSync(buildDir, { recursive: true, force: true });
  });

  it("redis-cli through the agent, logged in agent-side (AUTH sent by the agent); policies still apply", async () => {
    const before = opened();
    const r = await redisCli("cache", ["GET", "greeting"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("hello through the agent");
    expect(opened()).toBeGreaterThan(before);
    const denied = await redisCli("cache", ["FLUSHALL"]);
    expect(denied.stdout + denied.stderr).toContain("no-flush");
    expect((await redis.cli(["GET", "greeting"])).stdout.trim()).toBe("hello through the agent");
    // The gateway never held the Redis password: not in its config, logs or API answers.
    expect(JSON.stringify(t.gw.config)).not.toContain(redis.password);
    expect(t.logs()).not.toContain(redis.password);
    expect((await t.api("/v1/audit?limit=1000")).text).not.toContain(redis.password);
  });

  it("a Redis password the target refuses is a clean error in redis-cli (never the password)", async () => {
    const r = await redisCli("cachebad", ["GET", "greeting"]);
    const out = r.stdout + r.stderr;
    expect(out).not.toContain("hello through the agent");
    expect(out).toMatch(/refused|credential|login/i);
    expect(out).not.toContain("not-the-password");
    expect(agentLog).toContain("agent-side login failed");
  });

  it("agent-side PostgreSQL login over TLS to the target (sslmode verify-full, the CA sent by the gateway)", async () => {
    const r = await t.psql("orders", botToken, ["-A", "-t", "-c", "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("app|t");
    expect(t.logs()).not.toContain(PG_PASSWORD);
  });

  it("the mariadb client through the agent (mysql_native_password and ed25519 by the gateway over the agent's stream), with masking", async () => {
    for (const connection of ["shop", "shoped"]) {
      const before = opened();
      const r = await mariadb(connection, "SELECT id, email FROM customers ORDER BY id;");
      expect(r.stderr, connection).toBe("");
      expect(r.stdout.trim().split("\n"), connection).toEqual(["id\temail", "1\t[EMAIL]", "2\t[EMAIL]", "3\t[EMAIL]"]);
      expect(opened()).toBeGreaterThan(before);
    }
  });
});
