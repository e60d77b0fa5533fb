/**
 * A real MariaDB server (Debian's mariadbd) for integration tests: loopback, a free port, a
 * throwaway data directory, one server per test file. Accounts: `root` over the unix socket
 * (tests look at the target directly), `airlock_native` (mysql_native_password) and
 * `airlock_ed` (MariaDB ed25519), both with a password only the gateway's config knows.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { freePort } from "./ports.js";
import { runProcess } from "./redis.js";

export interface MariaDbServer {
  readonly port: number;
  readonly dir: string;
  /** The gateway's accounts: same password (a secret the client must never see). */
  readonly password: string;
  /** Run SQL as root over the unix socket. */
  sql(sql: string, database?: string): Promise<{ code: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

function waitForPort(port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
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
        if (Date.now() > deadline || exited()) reject(new Error(`mariadbd did not listen on ${port}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/**
 * Start one server. Test files start theirs in parallel: a free port can be taken by another
 * file's server between `freePort()` and mariadbd's bind, and `mariadb-install-db` has failed
 * once when two ran at the same moment. A failed start is retried from scratch (a new
 * directory, a new port), up to three attempts; the last error is thrown with every attempt's.
 */
export async function startMariaDb(): Promise<MariaDbServer> {
  const errors: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), "airlock-mariadb-"));
    try {
      return await startMariaDbOnce(dir);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      errors.push(`attempt ${attempt}: ${e instanceof Error ? e.message : String(e)}`);
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
  throw new Error(`MariaDB did not start:\n${errors.join("\n")}`);
}

async function startMariaDbOnce(dir: string): Promise<MariaDbServer> {
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  const install = await runProcess("mariadb-install-db", [`--datadir=${data}`, "--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"], { timeoutMs: 120_000 });
  if (install.code !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr}`);
  chownSync(dir, uidOf("mysql"), gidOf("mysql"));
  const port = await freePort();
  const sock = join(dir, "sock");
  const child: ChildProcess = spawn(
    "mariadbd",
    [
      "--no-defaults",
      `--datadir=${data}`,
      `--socket=${sock}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      "--user=mysql",
      "--skip-log-bin",
      "--innodb-buffer-pool-size=16M",
      "--skip-name-resolve",
      `--pid-file=${join(dir, "pid")}`,
      "--plugin-load-add=auth_ed25519",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  let exited = false;
  child.stderr?.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
  child.once("exit", () => (exited = true));
  try {
    await waitForPort(port, 60_000, () => exited);
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`mariadbd failed to start: ${stderr.slice(-2000)}`, { cause: e });
  }
  const password = `gw-secret-${Math.random().toString(36).slice(2)}-canary`;
  const sql: MariaDbServer["sql"] = (text, database) =>
    runProcess("mariadb", ["--no-defaults", "-uroot", `--socket=${sock}`, "--batch", "--raw", ...(database === undefined ? [] : [database])], { input: text, timeoutMs: 60_000 });
  const setup = await sql(
    [
      "CREATE DATABASE shop;",
      "CREATE DATABASE other;",
      `CREATE USER 'airlock_native'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('${password}');`,
      `CREATE USER 'airlock_ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('${password}');`,
      "GRANT ALL ON *.* TO 'airlock_native'@'127.0.0.1';",
      "GRANT ALL ON *.* TO 'airlock_ed'@'127.0.0.1';",
      "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(100), email VARCHAR(200), card_number VARCHAR(30), balance DECIMAL(10,2), born DATE, notes TEXT);",
      "INSERT INTO shop.customers VALUES (1,'Ada','ada@example.com','4111 1111 1111 1111',10.50,'1815-12-10','call +1 202 555 0143'),(2,'Bob','bob@example.org','5500 0000 0000 0004',0,'1970-01-01',NULL),(3,'Cy','cy@example.net','340000000000009',99.99,NULL,'plain');",
      "CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT, total DECIMAL(10,2));",
      "INSERT INTO shop.orders (customer_id,total) VALUES (1,5),(2,7),(3,9);",
      "CREATE TABLE shop.numbers (n INT PRIMARY KEY);",
      "INSERT INTO shop.numbers SELECT seq FROM shop.seq_1_to_500;",
      "CREATE TABLE other.secrets (k VARCHAR(20), v VARCHAR(100));",
      "INSERT INTO other.secrets VALUES ('a','top secret');",
    ].join("\n"),
  );
  if (setup.code !== 0) {
    child.kill("SIGKILL");
    throw new Error(`MariaDB setup failed: ${setup.stderr}`);
  }
  return {
    port,
    dir,
    password,
    sql,
    async stop() {
      const done = new Promise<void>((resolve) => (exited ? resolve() : child.once("exit", () => resolve())));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await done;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function uidOf(user: string): number {
  return idOf(user, 2);
}

function gidOf(user: string): number {
  return idOf(user, 3);
}

function idOf(user: string, field: number): number {
  // /etc/passwd: name:x:uid:gid:…
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${user}:`));
  const v = Number(line?.split(":")[field]);
  if (!Number.isInteger(v)) throw new Error(`no ${user} account`);
  return v;
}
