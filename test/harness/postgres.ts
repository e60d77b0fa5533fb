/**
 * Starts a real, throwaway PostgreSQL (Debian's binaries) on a free loopback port, with
 * password authentication per user, for integration tests and benchmarks. PostgreSQL refuses
 * to run as root, so as root everything runs as the `postgres` system user.
 */
import { execFile, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports.js";
import { localhostCertificate } from "./tls.js";

const execFileP = promisify(execFile);

export type PgAuthMethod = "scram-sha-256" | "md5" | "password" | "trust";

export interface PgUser {
  readonly name: string;
  readonly password: string;
  readonly auth: PgAuthMethod;
  readonly superuser?: boolean;
}

export interface StartPostgresOptions {
  readonly users?: readonly PgUser[];
  readonly databases?: readonly string[];
  /** Serve TLS with a fresh self-signed certificate (for localhost and 127.0.0.1). */
  readonly ssl?: boolean;
  /** Extra server settings (`-c name=value`). */
  readonly settings?: Readonly<Record<string, string>>;
}

export interface PgServer {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly binDir: string;
  /** PEM of the server certificate (self-signed: it is its own CA) when ssl was requested. */
  readonly caCert?: string;
  url(opts?: { user?: string; password?: string; database?: string }): string;
  /** Run SQL as the superuser over TCP; returns psql's unaligned, tuples-only output. */
  psql(sql: string, opts?: { database?: string }): Promise<string>;
  stop(): Promise<void>;
}

export const SUPERUSER = "postgres";
export const SUPERUSER_PASSWORD = "postgres";

export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql (install postgresql)");
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  const v = versions[0];
  if (v === undefined) throw new Error("no PostgreSQL version with pg_ctl under /usr/lib/postgresql");
  return join(root, v, "bin");
}

const isRoot = userInfo().uid === 0;

function asPostgres(cmd: string, args: readonly string[]): [string, string[]] {
  return isRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, [...args]];
}

async function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const [c, a] = asPostgres(cmd, args);
  const { stdout } = await execFileP(c, a, { env, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgServer> {
  const binDir = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), "airlock-pg-"));
  const dataDir = join(dir, "data");
  if (isRoot) {
    const { uid, gid } = await postgresIds();
    chownSync(dir, uid, gid);
  }
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
  if (isRoot) {
    const { uid, gid } = await postgresIds();
    chownSync(pwfile, uid, gid);
  }
  await run(join(binDir, "initdb"), [
    "-D",
    dataDir,
    "-U",
    SUPERUSER,
    "--pwfile",
    pwfile,
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ]);

  const users = options.users ?? [];
  const hba = [
    "# written by the Airlock test harness",
    "local all all trust",
    ...users.map((u) => `host all ${u.name} 127.0.0.1/32 ${u.auth}`),
    `host all ${SUPERUSER} 127.0.0.1/32 scram-sha-256`,
    "host all all 127.0.0.1/32 scram-sha-256",
  ];
  writeFileSync(join(dataDir, "pg_hba.conf"), `${hba.join("\n")}\n`);

  let caCert: string | undefined;
  const conf: string[] = ["fsync = off", "synchronous_commit = off", "full_page_writes = off", "max_connections = 200"];
  if (options.ssl === true) {
    const pems = await localhostCertificate();
    writeFileSync(join(dataDir, "server.crt"), pems.cert);
    writeFileSync(join(dataDir, "server.key"), pems.key, { mode: 0o600 });
    caCert = pems.cert;
    conf.push("ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'");
  }
  for (const [k, v] of Object.entries(options.settings ?? {})) conf.push(`${k} = ${quoteLiteral(v)}`);
  writeFileSync(join(dataDir, "postgresql.auto.conf"), `${conf.join("\n")}\n`);
  if (isRoot) {
    const { uid, gid } = await postgresIds();
    for (const f of ["pg_hba.conf", "postgresql.auto.conf", "server.crt", "server.key"]) {
      const p = join(dataDir, f);
      if (existsSync(p)) chownSync(p, uid, gid);
    }
    chmodSync(dataDir, 0o700);
  }

  const host = "127.0.0.1";
  let port = 0;
  let started = false;
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    port = await freePort();
    try {
      await run(join(binDir, "pg_ctl"), [
        "-D",
        dataDir,
        "-o",
        `-p ${port} -k ${dir} -c listen_addresses=${host}`,
        "-l",
        join(dir, "server.log"),
        "-w",
        "-t",
        "60",
        "start",
      ]);
      started = true;
    } catch (e) {
      if (attempt === 4) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }

  const env = { ...process.env, PGPASSWORD: SUPERUSER_PASSWORD, PGCONNECT_TIMEOUT: "10" };
  const psql = async (sql: string, opts: { database?: string } = {}): Promise<string> => {
    const { stdout } = await execFileP(
      "psql",
      ["-X", "-q", "-h", host, "-p", String(port), "-U", SUPERUSER, "-d", opts.database ?? "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
      { env, maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  };

  for (const u of users) {
    // An md5 user must have an md5-hashed password, or the server silently upgrades to SCRAM.
    const enc = u.auth === "md5" ? "md5" : "scram-sha-256";
    await psql(
      `SET password_encryption = '${enc}'; CREATE ROLE ${quoteIdent(u.name)} LOGIN ${u.superuser === true ? "SUPERUSER" : ""} PASSWORD ${quoteLiteral(u.password)}`,
    );
  }
  for (const db of options.databases ?? []) {
    const owner = users[0]?.name ?? SUPERUSER;
    await psql(`CREATE DATABASE ${quoteIdent(db)} OWNER ${quoteIdent(owner)}`);
  }

  let stopped = false;
  const server: PgServer = {
    host,
    port,
    dataDir,
    binDir,
    ...(caCert === undefined ? {} : { caCert }),
    url(opts = {}) {
      const user = encodeURIComponent(opts.user ?? SUPERUSER);
      const password = encodeURIComponent(opts.password ?? SUPERUSER_PASSWORD);
      return `postgres://${user}:${password}@${host}:${port}/${encodeURIComponent(opts.database ?? "postgres")}`;
    },
    psql,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await run(join(binDir, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

let ids: { uid: number; gid: number } | undefined;
async function postgresIds(): Promise<{ uid: number; gid: number }> {
  if (ids !== undefined) return ids;
  const [u, g] = await Promise.all([execFileP("id", ["-u", "postgres"]), execFileP("id", ["-g", "postgres"])]);
  ids = { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  return ids;
}

/** Run a command-line client and collect its output, without a shell. */
export function runClient(
  cmd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}
