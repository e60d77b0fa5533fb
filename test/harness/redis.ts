/**
 * A real redis-server for integration tests: loopback, a port of its own, no persistence, a
 * throwaway directory, and an ACL user for the gateway (`airlock`, its password known only to
 * the gateway's config) besides a `default` user tests use to look at the target directly.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { freePort } from "./ports.js";

export interface RedisServer {
  readonly port: number;
  /** The gateway's ACL user and its password (a secret the client must never see). */
  readonly user: string;
  readonly password: string;
  /** Password of the `default` user, for direct checks. */
  readonly adminPassword: string;
  /** Run redis-cli directly against the target (as the default user). */
  cli(args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export function runProcess(cmd: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on("error", () => undefined); // the program may exit before reading its input
    child.stdin.end(options.input ?? "");
  });
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = createConnection({ host: "127.0.0.1", port });
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`redis-server did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "airlock-redis-"));
  const port = await freePort();
  const password = `gw-secret-${Math.random().toString(36).slice(2)}-canary`;
  const adminPassword = `admin-${Math.random().toString(36).slice(2)}`;
  const conf = join(dir, "redis.conf");
  writeFileSync(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      'save ""',
      "appendonly no",
      "protected-mode yes",
      `user default on >${adminPassword} ~* &* +@all`,
      `user airlock on >${password} ~* &* +@all`,
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("redis-server", [conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
  try {
    await waitForPort(port, 15_000);
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`redis-server failed to start: ${stderr}`, { cause: e });
  }
  return {
    port,
    user: "airlock",
    password,
    adminPassword,
    cli: (args, input) => runProcess("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "--user", "default", "--pass", adminPassword, "--no-auth-warning", ...args], input === undefined ? {} : { input }),
    async stop() {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
