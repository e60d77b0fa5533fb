/**
 * Starts a real PgBouncer (Debian's `pgbouncer` package) in front of a PostgreSQL, on a free
 * loopback port, for integration tests and the benchmark's peer-proxy comparison.
 *
 * Invariants:
 * - PgBouncer runs in the FOREGROUND as our child (never `-d`), so stop() (or this process
 *   exiting) ends it; nothing outlives the test run.
 * - PgBouncer refuses to run as root: as root the child runs as the `postgres` system user
 *   (spawned with its uid/gid directly rather than through runuser, so the pid we signal is
 *   PgBouncer itself and no intermediate process has to forward signals).
 * - Its config, userlist and socket directory live in a throwaway directory owned by that user
 *   (mode 0700; the userlist holds plain passwords), removed by stop().
 * - Passwords never go on a command line: they are only in the 0600 files.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";

export interface PgBouncerDatabase {
  /** The real database name on the upstream server. */
  readonly dbname: string;
  /** The upstream role PgBouncer logs in as (forced for every client of this alias). */
  readonly user: string;
  readonly password: string;
}

export interface PgBouncerUser {
  readonly name: string;
  readonly password: string;
}

export interface StartPgBouncerOptions {
  readonly upstream: { readonly host: string; readonly port: number };
  /** Client-visible database alias → upstream database and credential. */
  readonly databases: Readonly<Record<string, PgBouncerDatabase>>;
  readonly poolMode?: "session" | "transaction";
  /** The logins clients may use against PgBouncer itself (its auth_file). */
  readonly authUsers: readonly PgBouncerUser[];
  /** Client authentication; default scram-sha-256 (PgBouncer derives it from plain userlist passwords). */
  readonly authType?: "scram-sha-256" | "md5" | "plain";
  /** Server connections per (database, user) pool; default 20. */
  readonly poolSize?: number;
  /** Readiness deadline; default 15 s. */
  readonly startTimeoutMs?: number;
}

export interface PgBouncerServer {
  readonly host: string;
  readonly port: number;
  /** PgBouncer's own process id (for resource measurements). */
  readonly pid: number;
  readonly version: string;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";
const isRoot = userInfo().uid === 0;

/** Debian installs it in /usr/sbin, which a non-root PATH often lacks. */
export function pgbouncerBinary(): string {
  for (const p of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]) if (existsSync(p)) return p;
  return "pgbouncer";
}

/**
 * libpq-style connect-string value as PgBouncer's [databases] parser reads it: single-quoted,
 * an embedded quote doubled. Newlines would end the ini line, so they are refused outright.
 */
function connstrValue(v: string): string {
  if (/[\r\n\0]/.test(v)) throw new Error("pgbouncer harness: connect-string values may not contain newlines or NUL");
  return `'${v.replace(/'/g, "''")}'`;
}

/** auth_file entry: both fields double-quoted, an embedded double quote doubled. */
function userlistField(v: string): string {
  if (/[\r\n\0]/.test(v)) throw new Error("pgbouncer harness: userlist fields may not contain newlines or NUL");
  return `"${v.replace(/"/g, '""')}"`;
}

function checkAlias(alias: string): void {
  // Unquoted [databases] keys allow exactly these characters (PgBouncer docs, [databases]).
  if (!/^[0-9A-Za-z_.-]+$/.test(alias)) throw new Error(`pgbouncer harness: database alias "${alias}" must match [0-9A-Za-z_.-]+`);
}

/** The `postgres` system user, resolved once via `id` (as root only). */
let postgresIds: { uid: number; gid: number } | undefined;

async function resolvePostgresIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (!isRoot) return undefined;
  if (postgresIds !== undefined) return postgresIds;
  const out = await runCollect("id", ["-u", "postgres"]);
  const outG = await runCollect("id", ["-g", "postgres"]);
  const uid = Number(out.trim());
  const gid = Number(outG.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error("pgbouncer harness: no `postgres` system user (install postgresql)");
  postgresIds = { uid, gid };
  return postgresIds;
}

function runCollect(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err.trim()}`));
    });
  });
}

/** Resolves true once a TCP connection to host:port is accepted. */
function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function startPgBouncer(options: StartPgBouncerOptions): Promise<PgBouncerServer> {
  const aliases = Object.entries(options.databases);
  if (aliases.length === 0) throw new Error("pgbouncer harness: at least one database is required");
  if (options.authUsers.length === 0) throw new Error("pgbouncer harness: at least one auth user is required");
  const owner = await resolvePostgresIds();
  const binary = pgbouncerBinary();
  const version = (await runCollect(binary, ["--version"])).split("\n")[0]?.trim() ?? "PgBouncer (unknown version)";

  const dir = mkdtempSync(join(tmpdir(), "airlock-pgbouncer-"));
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
  const userlist = join(dir, "userlist.txt");
  const ini = join(dir, "pgbouncer.ini");

  const writeOwned = (path: string, text: string): void => {
    writeFileSync(path, text, { mode: 0o600 });
    if (owner !== undefined) chownSync(path, owner.uid, owner.gid);
  };
  writeOwned(userlist, options.authUsers.map((u) => `${userlistField(u.name)} ${userlistField(u.password)}\n`).join(""));

  const timeoutMs = options.startTimeoutMs ?? 15_000;
  let lastError = "";
  // A port taken by binding port 0 can be grabbed by someone else before PgBouncer binds it;
  // PgBouncer then exits at once, and we retry with a fresh port.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(HOST);
    const databases = aliases.map(([alias, db]) => {
      checkAlias(alias);
      const parts = [
        `host=${connstrValue(options.upstream.host)}`,
        `port=${options.upstream.port}`,
        `dbname=${connstrValue(db.dbname)}`,
        `user=${connstrValue(db.user)}`,
        `password=${connstrValue(db.password)}`,
      ];
      return `${alias} = ${parts.join(" ")}`;
    });
    writeOwned(
      ini,
      [
        "; written by the Airlock test harness",
        "[databases]",
        ...databases,
        "",
        "[pgbouncer]",
        `listen_addr = ${HOST}`,
        `listen_port = ${port}`,
        // Sockets go in the throwaway dir, not /var/run/postgresql (may not exist or be ours).
        `unix_socket_dir = ${dir}`,
        `auth_type = ${options.authType ?? "scram-sha-256"}`,
        `auth_file = ${userlist}`,
        `pool_mode = ${options.poolMode ?? "session"}`,
        `default_pool_size = ${options.poolSize ?? 20}`,
        "max_client_conn = 500",
        // Drivers (JDBC, node-postgres options) send these; PgBouncer would refuse the login.
        "ignore_startup_parameters = extra_float_digits,options",
        // Per-connection log lines cost measurable time in reconnect-heavy benchmarks.
        "log_connections = 0",
        "log_disconnections = 0",
        "log_pooler_errors = 1",
        "server_tls_sslmode = disable",
        "",
      ].join("\n"),
    );

    const child = spawn(binary, [ini], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      ...(owner === undefined ? {} : { uid: owner.uid, gid: owner.gid }),
    });
    let output = "";
    const keep = (d: string): void => {
      // Keep only the tail: enough to explain a failure, bounded for long runs.
      output = (output + d).slice(-8192);
    };
    child.stdout.setEncoding("utf8").on("data", keep);
    child.stderr.setEncoding("utf8").on("data", keep);
    let exited = false;
    const exitPromise = new Promise<void>((resolve) => {
      child.once("exit", () => {
        exited = true;
        resolve();
      });
      child.once("error", (e) => {
        keep(`spawn error: ${e.message}\n`);
        exited = true;
        resolve();
      });
    });

    // Read through a function: `exited` changes in event handlers between awaits.
    const hasExited = (): boolean => exited;
    const deadline = Date.now() + timeoutMs;
    let ready = false;
    while (!hasExited() && Date.now() < deadline) {
      if (await canConnect(HOST, port)) {
        ready = !hasExited();
        break;
      }
      await sleep(50);
    }
    if (ready && child.pid !== undefined) {
      return makeServer(child, child.pid, port, version, dir, exitPromise, hasExited);
    }
    lastError = output.trim();
    const diedByItself = hasExited();
    await killAndWait(child, exitPromise, hasExited);
    // Only an early exit (typically: port taken) is worth another try; a timeout is not.
    if (!diedByItself) {
      lastError = `no connection accepted within ${timeoutMs} ms${lastError === "" ? "" : `\n${lastError}`}`;
      break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`pgbouncer harness: PgBouncer did not start${lastError === "" ? "" : `:\n${lastError}`}`);
}

async function killAndWait(child: ChildProcess, exitPromise: Promise<void>, exited: () => boolean): Promise<void> {
  if (exited()) return;
  // SIGTERM: PgBouncer's immediate shutdown (SIGINT would wait for clients to leave).
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (!exited()) child.kill("SIGKILL");
  }, 5000);
  await exitPromise;
  clearTimeout(timer);
}

function makeServer(
  child: ChildProcess,
  pid: number,
  port: number,
  version: string,
  dir: string,
  exitPromise: Promise<void>,
  exited: () => boolean,
): PgBouncerServer {
  // If the test process dies without calling stop(), do not leave PgBouncer behind.
  const onExit = (): void => {
    if (!exited()) child.kill("SIGKILL");
  };
  process.once("exit", onExit);
  let stopping: Promise<void> | undefined;
  return {
    host: HOST,
    port,
    pid,
    version,
    stop() {
      stopping ??= (async () => {
        process.removeListener("exit", onExit);
        await killAndWait(child, exitPromise, exited);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
