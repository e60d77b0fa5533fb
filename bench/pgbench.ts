/**
 * pgbench through four paths, side by side in ONE run on this machine:
 *   direct    pgbench → PostgreSQL
 *   pgbouncer pgbench → PgBouncer (session mode) → PostgreSQL      (the peer proxy)
 *   pipe      pgbench → a bare Node.js TCP relay (bench/node-pipe.ts) → PostgreSQL: no parsing,
 *             no policy; the ceiling of any proxy on Node's socket layer on this machine
 *   airlock   pgbench → Airlock gateway (separate process) → PostgreSQL
 *
 * Runs are interleaved per repetition (direct, pgbouncer, airlock, direct, …) so slow drift of
 * the machine (thermal, page cache, background work) hits every path alike; each table shows
 * medians. Results are prepended to bench/results.md (newest first).
 *
 * Run: `npm run bench`. Environment (all optional):
 *   BENCH_DURATION  seconds per pgbench run (default 12)
 *   BENCH_REPS      repetitions of the headline workloads (default 2)
 *   BENCH_CLIENTS   pgbench clients (default 8; threads = min(2, clients))
 *   BENCH_SCALE     pgbench -i scale (default 10)
 *   BENCH_PATHS     comma list from direct,pgbouncer,pipe,airlock (default all four)
 *   BENCH_WORKLOADS comma list from select-only,select-only-extended,select-only-prepared,latency,
 *                   tpcb,reconnect (default all)
 *   BENCH_STREAM_ROWS rows of the masked streaming run (default 1000000; 0 skips it)
 *   BENCH_IDLE_SESSIONS idle authenticated sessions held open for the memory row (default 1000; 0 skips)
 *   BENCH_RESULTS   file to prepend results to (default bench/results.md)
 *   BENCH_GATEWAY_NODE_ARGS  extra node options for the gateway process, space-separated
 *                   (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile it)
 *
 * Secrets: every password and the Airlock token reach pgbench/psql through PGPASSWORD in the
 * child's environment, never on a command line (visible to every user in /proc), and are never
 * printed. The Airlock config names the upstream password as `env:…`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { availableParallelism, cpus, release, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { DEMO_POLICIES } from "../src/runtime/demo-policies.js";
import { z } from "zod";
import { startPgBouncer, type PgBouncerServer } from "../test/harness/pgbouncer.js";
import { freePort } from "../test/harness/ports.js";
import { startPostgres, SUPERUSER, SUPERUSER_PASSWORD, type PgServer } from "../test/harness/postgres.js";

// ---------------------------------------------------------------------------------------------
// Options

const PATHS = ["direct", "pgbouncer", "pipe", "airlock"] as const;
type PathId = (typeof PATHS)[number];
const WORKLOAD_IDS = ["select-only", "select-only-extended", "select-only-prepared", "latency", "tpcb", "reconnect"] as const;
type WorkloadId = (typeof WORKLOAD_IDS)[number];

const envSchema = z.object({
  BENCH_DURATION: z.coerce.number().int().min(1).max(3600).default(12),
  BENCH_REPS: z.coerce.number().int().min(1).max(20).default(2),
  BENCH_CLIENTS: z.coerce.number().int().min(1).max(150).default(8),
  BENCH_SCALE: z.coerce.number().int().min(1).max(1000).default(10),
  BENCH_PATHS: z.string().optional(),
  BENCH_WORKLOADS: z.string().optional(),
  BENCH_RESULTS: z.string().min(1).optional(),
});

/** A comma list naming members of `all` (unknown names are an error); undefined means all. */
function pickList<T extends string>(name: string, raw: string | undefined, all: readonly T[]): T[] {
  if (raw === undefined || raw.trim() === "") return [...all];
  const wanted = raw.split(",").map((x) => x.trim()).filter((x) => x !== "");
  const unknown = wanted.filter((x) => !(all as readonly string[]).includes(x));
  if (unknown.length > 0) throw new Error(`bench: ${name}: unknown ${unknown.join(", ")} (choose from ${all.join(", ")})`);
  return all.filter((x) => wanted.includes(x));
}

interface Workload {
  readonly id: WorkloadId;
  readonly title: string;
  readonly args: readonly string[];
  readonly reps: number;
  readonly durationS: number;
  /** TPC-B writes: reset the tables (as pgbench's own pre-run vacuum would) before each run. */
  readonly resetBefore: boolean;
  /** Clients for this workload instead of BENCH_CLIENTS (the one-client latency run). */
  readonly clients?: number;
  /** Log every transaction's latency (pgbench -l) for percentiles. */
  readonly percentiles?: boolean;
}

/**
 * The plan. Budget: about 6 minutes with the defaults and three paths (3 × (45 + 45 + 20 + 10) s
 * of pgbench plus ~20 s of setup and warm-up). The two headline workloads (select-only, which
 * isolates per-statement proxy cost, and TPC-B-like, the mixed read/write default) get
 * BENCH_REPS × BENCH_DURATION; the extended-protocol variant gets at most 2 × 10 s and the
 * reconnect variant at most 2 × 5 s (their numbers are stable enough for that).
 */
function plan(o: Options): Workload[] {
  const secondary = Math.min(o.reps, 2);
  const all: Workload[] = [
    { id: "select-only", title: "select-only (`-S`, simple protocol)", args: ["-S", "-M", "simple"], reps: o.reps, durationS: o.duration, resetBefore: false },
    { id: "select-only-extended", title: "select-only, extended protocol (`-S -M extended`)", args: ["-S", "-M", "extended"], reps: secondary, durationS: Math.min(o.duration, 6), resetBefore: false },
    { id: "select-only-prepared", title: "select-only, prepared statements (`-S -M prepared`)", args: ["-S", "-M", "prepared"], reps: secondary, durationS: Math.min(o.duration, 6), resetBefore: false },
    { id: "latency", title: "one client, select-only (`-c 1 -S`): latency per transaction", args: ["-S", "-M", "simple"], reps: secondary, durationS: Math.min(o.duration, 6), resetBefore: false, clients: 1, percentiles: true },
    { id: "tpcb", title: "TPC-B-like (default script, simple protocol)", args: ["-M", "simple"], reps: o.reps, durationS: o.duration, resetBefore: true },
    { id: "reconnect", title: "select-only, new connection per transaction (`-S -C`)", args: ["-S", "-C", "-M", "simple"], reps: secondary, durationS: Math.min(o.duration, 5), resetBefore: false },
  ];
  return all.filter((w) => o.workloads.includes(w.id));
}

interface Options {
  readonly duration: number;
  readonly reps: number;
  readonly clients: number;
  readonly threads: number;
  readonly scale: number;
  readonly paths: readonly PathId[];
  readonly workloads: readonly WorkloadId[];
  readonly resultsFile: string;
}

function repoRoot(): string {
  // Compiled to dist/bench/pgbench.js; source in bench/. Walk up to the package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "bin", "airlock.js"))) return dir;
    dir = dirname(dir);
  }
  // Compiled elsewhere (e.g. --outDir outside the checkout) and run from the repository root.
  if (existsSync(join(process.cwd(), "package.json")) && existsSync(join(process.cwd(), "bin", "airlock.js"))) return process.cwd();
  throw new Error("bench: cannot find the repository root (package.json with bin/airlock.js)");
}

function readOptions(root: string): Options {
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`bench: bad environment:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  return {
    duration: e.BENCH_DURATION,
    reps: e.BENCH_REPS,
    clients: e.BENCH_CLIENTS,
    threads: Math.min(2, e.BENCH_CLIENTS),
    scale: e.BENCH_SCALE,
    paths: pickList("BENCH_PATHS", e.BENCH_PATHS, PATHS),
    workloads: pickList("BENCH_WORKLOADS", e.BENCH_WORKLOADS, WORKLOAD_IDS),
    resultsFile: resolve(root, e.BENCH_RESULTS ?? join("bench", "results.md")),
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

const t0 = Date.now();
function log(msg: string): void {
  process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);
}

interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, [...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-65536)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

function tail(text: string, lines = 15): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

/** libpq environment shared by every client: TLS off on every path alike (none offers it here). */
function clientEnv(password: string): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: password, PGSSLMODE: "disable", PGGSSENCMODE: "disable", PGCONNECT_TIMEOUT: "10" };
}

function pgbenchBinary(pg: PgServer): string {
  const own = join(pg.binDir, "pgbench");
  return existsSync(own) ? own : "pgbench";
}

function psqlBinary(pg: PgServer): string {
  const own = join(pg.binDir, "psql");
  return existsSync(own) ? own : "psql";
}

interface Target {
  readonly id: PathId;
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly dbname: string;
  readonly password: string;
  /** The proxy's process id (PgBouncer, Airlock), for its CPU time; none for direct. */
  readonly pid?: number;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = connect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolvePromise(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Peak and current resident set of a process, from /proc (Linux). */
/** utime + stime of a process (all its threads) in clock ticks (USER_HZ, 100 on Linux), from /proc/PID/stat. */
function cpuTicksOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name (which may hold spaces): state is field 3.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
  } catch {
    return undefined;
  }
}

const USER_HZ = 100;

function memoryOf(pid: number): { hwmKiB: number; rssKiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    if (hwm === undefined || rss === undefined) return undefined;
    return { hwmKiB: Number(hwm), rssKiB: Number(rss) };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The Airlock gateway as a separate process

interface Gateway {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly token: string;
  stop(): Promise<void>;
}

const AIRLOCK_PG_PASSWORD_ENV = "AIRLOCK_BENCH_PG_PASSWORD";

/** Fails fast, before any server starts, when the gateway cannot be run from this checkout. */
function checkAirlockBuilt(root: string): void {
  const cliMain = join(root, "dist", "src", "cli", "main.js");
  if (!existsSync(cliMain)) {
    throw new Error(
      `Airlock is not built (${cliMain} is missing). \`npm run bench\` builds first; if the build did not produce the CLI, ` +
        "the gateway is not there yet. To measure the other paths only: BENCH_PATHS=direct,pgbouncer npm run bench",
    );
  }
}

async function startGateway(root: string, work: string, pg: PgServer): Promise<Gateway> {
  checkAirlockBuilt(root);
  const bin = join(root, "bin", "airlock.js");
  const [apiPort, pgPort] = [await freePort(), await freePort()];
  const configFile = join(work, "airlock.yaml");
  // No secret in this file: the upstream password is an env: reference resolved by the gateway.
  writeFileSync(
    configFile,
    toYaml({
      dataDir: join(work, "airlock-data"),
      listen: { api: `127.0.0.1:${apiPort}`, postgres: `127.0.0.1:${pgPort}` },
      log: { level: "warn" },
      serviceAccounts: [{ name: "bench", groups: ["bench"] }],
      // Measured with the demo policy set on: guardrails, masking, limits (plus recording and audit).
      // The row cap stays on the pgbench connection so the streaming run can fetch its million rows.
      policies: DEMO_POLICIES.map((p) => (p.maxRows === undefined ? p : { ...p, connections: ["bench"] })),
      connections: ["bench", "bench_stream"].map((name) => ({
        name,
        type: "postgres",
        host: pg.host,
        port: pg.port,
        database: "bench",
        user: SUPERUSER,
        password: `env:${AIRLOCK_PG_PASSWORD_ENV}`,
        groups: ["bench"],
        sslmode: "disable",
      })),
    }),
  );
  const env = { ...process.env, [AIRLOCK_PG_PASSWORD_ENV]: SUPERUSER_PASSWORD };
  const nodeArgs = (process.env["BENCH_GATEWAY_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "");
  const child = spawn(process.execPath, [...nodeArgs, bin, "gateway", "--config", configFile], { env, stdio: ["ignore", "pipe", "pipe"], cwd: work });
  let output = "";
  const keep = (d: string): void => {
    output = (output + d).slice(-16384);
  };
  child.stdout.setEncoding("utf8").on("data", keep);
  child.stderr.setEncoding("utf8").on("data", keep);
  let exited = false;
  let exitCode: number | null = null;
  const exitPromise = new Promise<void>((r) => {
    child.once("exit", (code) => {
      exited = true;
      exitCode = code;
      r();
    });
  });
  const hasExited = (): boolean => exited;
  const stop = async (): Promise<void> => stopChild(child, exitPromise, hasExited);
  try {
    const deadline = Date.now() + 60_000;
    let ready = false;
    while (!hasExited() && Date.now() < deadline) {
      if ((await canConnect("127.0.0.1", pgPort)) && (await canConnect("127.0.0.1", apiPort))) {
        ready = true;
        break;
      }
      await sleep(100);
    }
    if (!ready || child.pid === undefined) {
      const why = hasExited() ? `exited with code ${String(exitCode)}` : "did not listen within 60 s";
      throw new Error(`Airlock gateway ${why}:\n${tail(output, 30)}`);
    }
    // The CLI finds the API and the admin credential (written at start) through the config.
    let token = "";
    let lastFailure = "";
    const tokenDeadline = Date.now() + 30_000;
    while (token === "" && Date.now() < tokenDeadline) {
      const r = await run(
        process.execPath,
        [bin, "token", "create", "--service-account", "bench", "--ttl", "2h", "--config", configFile],
        process.env,
        Math.max(1000, tokenDeadline - Date.now()),
      );
      const out = r.stdout.trim();
      if (r.code === 0 && out !== "" && !/\s/.test(out)) token = out;
      else {
        lastFailure = `exit ${String(r.code)}: ${tail(r.stderr, 5)}`;
        await sleep(250);
      }
    }
    if (token === "") throw new Error(`\`airlock token create\` failed: ${lastFailure}`);
    return { host: "127.0.0.1", port: pgPort, pid: child.pid, token, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The bare Node relay (bench/node-pipe.ts) in its own process, so that its CPU time is its own. */
async function startNodePipe(root: string, pg: PgServer): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const script = join(root, "dist", "bench", "node-pipe.js");
  const port = await freePort();
  const child = spawn(process.execPath, [script, String(port), pg.host, String(pg.port)], { stdio: ["ignore", "pipe", "pipe"] });
  let exited = false;
  const exitPromise = new Promise<void>((r) => {
    child.once("exit", () => {
      exited = true;
      r();
    });
  });
  const hasExited = (): boolean => exited;
  const stop = (): Promise<void> => stopChild(child, exitPromise, hasExited);
  const deadline = Date.now() + 10_000;
  while (!hasExited() && Date.now() < deadline && !(await canConnect("127.0.0.1", port))) await sleep(50);
  if (hasExited() || child.pid === undefined || !(await canConnect("127.0.0.1", port))) {
    await stop();
    throw new Error("the Node pipe relay did not start");
  }
  return { port, pid: child.pid, stop };
}

async function stopChild(child: ChildProcess, exitPromise: Promise<void>, exited: () => boolean): Promise<void> {
  if (exited()) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (!exited()) child.kill("SIGKILL");
  }, 10_000);
  await exitPromise;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// pgbench

interface Sample {
  readonly tps: number;
  readonly latencyMs: number;
  readonly connectMs: number | undefined;
  readonly transactions: number;
  /** CPU time (user + system, all threads) the proxy process spent per transaction, in µs. */
  readonly proxyCpuUs?: number;
  /** Per-transaction latency percentiles (µs), from pgbench's transaction log. */
  readonly p50Us?: number;
  readonly p99Us?: number;
}

/** Parses pgbench 15's report (doc: pgbench "Notes" → output format). */
function parsePgbench(stdout: string): Sample {
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(stdout)?.[1];
    return m === undefined ? undefined : Number(m);
  };
  const tps = num(/^tps = ([0-9.]+)/m);
  const latencyMs = num(/^latency average = ([0-9.]+) ms/m);
  const transactions = num(/^number of transactions actually processed: (\d+)/m);
  const failed = num(/^number of failed transactions: (\d+)/m) ?? 0;
  if (tps === undefined || latencyMs === undefined || transactions === undefined) {
    throw new Error(`unrecognised pgbench output:\n${tail(stdout)}`);
  }
  if (failed > 0) throw new Error(`pgbench reported ${failed} failed transactions`);
  if (transactions === 0) throw new Error("pgbench processed no transaction");
  return { tps, latencyMs, connectMs: num(/^average connection time = ([0-9.]+) ms/m), transactions };
}

async function pgbench(pg: PgServer, t: Target, w: Workload, o: Options, durationS = w.durationS): Promise<Sample> {
  const clients = w.clients ?? o.clients;
  const threads = Math.min(o.threads, clients);
  // pgbench -l writes one line per transaction to PREFIX.PID[.THREAD]: latency is the 3rd field (µs).
  const logDir = w.percentiles === true ? mkdtempSync(join(tmpdir(), "airlock-bench-log-")) : undefined;
  const args = [
    "-h", t.host, "-p", String(t.port), "-U", t.user,
    // -n: no pre-run vacuum through the path being measured (done directly instead).
    "-n", "-c", String(clients), "-j", String(threads), "-T", String(durationS),
    ...(logDir === undefined ? [] : ["-l", `--log-prefix=${join(logDir, "txn")}`]),
    ...w.args,
    t.dbname,
  ];
  try {
    const ticksBefore = t.pid === undefined ? undefined : cpuTicksOf(t.pid);
    const r = await run(pgbenchBinary(pg), args, clientEnv(t.password), (durationS + 120) * 1000);
    const ticksAfter = t.pid === undefined ? undefined : cpuTicksOf(t.pid);
    if (r.code !== 0) throw new Error(`pgbench exited ${String(r.code)}:\n${tail(r.stderr)}`);
    let sample: Sample = parsePgbench(r.stdout);
    if (logDir !== undefined) {
      const lat: number[] = [];
      for (const f of readdirSync(logDir)) {
        for (const line of readFileSync(join(logDir, f), "utf8").split("\n")) {
          const us = Number(line.split(" ")[2]);
          if (line !== "" && Number.isFinite(us)) lat.push(us);
        }
      }
      lat.sort((a, b) => a - b);
      const at = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? Number.NaN;
      if (lat.length > 0) sample = { ...sample, p50Us: at(0.5), p99Us: at(0.99) };
    }
    if (ticksBefore === undefined || ticksAfter === undefined) return sample;
    return { ...sample, proxyCpuUs: (((ticksAfter - ticksBefore) / USER_HZ) * 1e6) / sample.transactions };
  } finally {
    if (logDir !== undefined) rmSync(logDir, { recursive: true, force: true });
  }
}

async function smoke(pg: PgServer, t: Target): Promise<void> {
  const r = await run(
    psqlBinary(pg),
    ["-X", "-At", "-h", t.host, "-p", String(t.port), "-U", t.user, "-d", t.dbname, "-c", "select count(*) from pgbench_branches"],
    clientEnv(t.password),
    30_000,
  );
  if (r.code !== 0 || r.stdout.trim() === "") throw new Error(`${t.label}: cannot query through this path: ${tail(r.stderr, 5)}`);
}

async function resetTpcb(pg: PgServer): Promise<void> {
  // What pgbench's own pre-run vacuum does; VACUUM cannot share a multi-statement string.
  for (const sql of ["VACUUM pgbench_branches", "VACUUM pgbench_tellers", "TRUNCATE pgbench_history"]) {
    await pg.psql(sql, { database: "bench" });
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");
const fmtMs = (n: number): string => (n < 1 ? n.toFixed(3) : n.toFixed(2));
const fmtRatio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "–");

interface Cell {
  readonly samples: Sample[];
  readonly errors: string[];
}

function workloadTable(w: Workload, targets: readonly Target[], cells: ReadonlyMap<string, Cell>): string {
  const key = (p: PathId): string => `${w.id}/${p}`;
  const medTps = (p: PathId): number => median(cells.get(key(p))?.samples.map((s) => s.tps) ?? []);
  const direct = medTps("direct");
  const bouncer = medTps("pgbouncer");
  const withConnect = w.args.includes("-C");
  const pct = w.percentiles === true;
  const head = [
    `### ${w.title}`,
    "",
    `${w.reps} × ${w.durationS} s per path; \`pgbench -n -c ${w.clients ?? "C"} -j J -T ${w.durationS} ${w.args.join(" ")}\``,
    "",
    `| path | TPS (median) | latency avg ms (median)${pct ? " | p50 µs | p99 µs" : ""}${withConnect ? " | connect ms (median)" : ""} | proxy CPU µs/txn (median) | vs direct | vs PgBouncer | runs (TPS) |`,
    `|---|---:|---:|${pct ? "---:|---:|" : ""}${withConnect ? "---:|" : ""}---:|---:|---:|---|`,
  ];
  const rows = targets.map((t) => {
    const cell = cells.get(key(t.id));
    const samples = cell?.samples ?? [];
    if (samples.length === 0) {
      const err = cell?.errors[0] ?? "not run";
      return `| ${t.label} | error | – |${pct ? " – | – |" : ""}${withConnect ? " – |" : ""} – | – | – | ${err.split("\n")[0] ?? ""} |`;
    }
    const tps = median(samples.map((s) => s.tps));
    const lat = median(samples.map((s) => s.latencyMs));
    const conn = median(samples.map((s) => s.connectMs ?? Number.NaN));
    const cpuUs = median(samples.map((s) => s.proxyCpuUs ?? Number.NaN));
    const p50 = median(samples.map((s) => s.p50Us ?? Number.NaN));
    const p99 = median(samples.map((s) => s.p99Us ?? Number.NaN));
    const runs = samples.map((s) => fmtInt(s.tps)).join(" / ") + (cell !== undefined && cell.errors.length > 0 ? ` (+${cell.errors.length} failed)` : "");
    const opt = (n: number): string => (Number.isFinite(n) ? fmtInt(n) : "–");
    return `| ${t.label} | ${fmtInt(tps)} | ${fmtMs(lat)} |${pct ? ` ${opt(p50)} | ${opt(p99)} |` : ""}${withConnect ? ` ${Number.isFinite(conn) ? fmtMs(conn) : "–"} |` : ""} ${opt(cpuUs)} | ${fmtRatio(tps / direct)} | ${fmtRatio(tps / bouncer)} | ${runs} |`;
  });
  return [...head, ...rows, ""].join("\n");
}

/** What the stream and memory measurements found, for the goals table. */
interface Extras {
  streamRatio?: number;
  streamRssGrowthMiB?: number;
  idleRssMiB?: number;
  idleSessions?: number;
  idleSessionsMiB?: number;
}

/**
 * The goals of issue 13, each with the ratio this run measured next to it. Each ratio is taken
 * within this run (the paths ran interleaved), never against numbers from another run.
 */
function goalsTable(cells: ReadonlyMap<string, Cell>, extras: Extras): string {
  const med = (w: WorkloadId, p: PathId, f: (s: Sample) => number | undefined): number => median((cells.get(`${w}/${p}`)?.samples ?? []).map((s) => f(s) ?? Number.NaN));
  const tps = (w: WorkloadId, p: PathId): number => med(w, p, (s) => s.tps);
  const cpu = (w: WorkloadId, p: PathId): number => med(w, p, (s) => s.proxyCpuUs);
  const row = (goal: string, measured: number, target: number, higherIsBetter: boolean, fmt: (n: number) => string = fmtRatio): string => {
    if (!Number.isFinite(measured)) return `| ${goal} | not measured | ${higherIsBetter ? "≥" : "≤"} ${fmt(target)} | – |`;
    const met = higherIsBetter ? measured >= target : measured <= target;
    return `| ${goal} | ${fmt(measured)} | ${higherIsBetter ? "≥" : "≤"} ${fmt(target)} | ${met ? "met" : "**not met**"} |`;
  };
  const addedP = (p: PathId, q: (s: Sample) => number | undefined): number => med("latency", p, q) - med("latency", "direct", q);
  const mib = (n: number): string => `${n.toFixed(0)} MiB`;
  const lines = [
    "### Goals (issue 13): each ratio from this run",
    "",
    "| goal | measured | target | |",
    "|---|---:|---:|---|",
    row("select-only TPS, Airlock / bare relay", tps("select-only", "airlock") / tps("select-only", "pipe"), 0.8, true),
    row("select-only proxy CPU/txn, Airlock / PgBouncer", cpu("select-only", "airlock") / cpu("select-only", "pgbouncer"), 2, false),
    row("one client: added p50 latency, Airlock / bare relay", addedP("airlock", (s) => s.p50Us) / addedP("pipe", (s) => s.p50Us), 2, false),
    row("one client: added p99 latency, Airlock / bare relay", addedP("airlock", (s) => s.p99Us) / addedP("pipe", (s) => s.p99Us), 2, false),
    row("TPC-B-like TPS, Airlock / bare relay", tps("tpcb", "airlock") / tps("tpcb", "pipe"), 0.8, true),
    row("`-M extended` TPS, Airlock / bare relay", tps("select-only-extended", "airlock") / tps("select-only-extended", "pipe"), 0.8, true),
    row("`-M extended` proxy CPU/txn, Airlock / PgBouncer", cpu("select-only-extended", "airlock") / cpu("select-only-extended", "pgbouncer"), 2, false),
    row("`-M prepared` TPS, Airlock / bare relay", tps("select-only-prepared", "airlock") / tps("select-only-prepared", "pipe"), 0.8, true),
    row("`-M prepared` proxy CPU/txn, Airlock / PgBouncer", cpu("select-only-prepared", "airlock") / cpu("select-only-prepared", "pgbouncer"), 2, false),
    row("`-C` (token as password) TPS, Airlock / PgBouncer (plain auth)", tps("reconnect", "airlock") / tps("reconnect", "pgbouncer"), 1, true),
    row("1,000,000 masked rows, Airlock / direct (rows/s)", extras.streamRatio ?? Number.NaN, 0.6, true),
    row("gateway RSS growth while streaming", extras.streamRssGrowthMiB ?? Number.NaN, 50, false, mib),
    row("gateway idle RSS (embedded store)", extras.idleRssMiB ?? Number.NaN, 150, false, mib),
    row(`${fmtInt(extras.idleSessions ?? 1000)} idle authenticated sessions add`, extras.idleSessionsMiB ?? Number.NaN, 150, false, mib),
    "",
    `One client, added latency over direct (p50 / p99): bare relay ${fmtInt(addedP("pipe", (s) => s.p50Us))} / ${fmtInt(addedP("pipe", (s) => s.p99Us))} µs, PgBouncer ${fmtInt(addedP("pgbouncer", (s) => s.p50Us))} / ${fmtInt(addedP("pgbouncer", (s) => s.p99Us))} µs, Airlock ${fmtInt(addedP("airlock", (s) => s.p50Us))} / ${fmtInt(addedP("airlock", (s) => s.p99Us))} µs. ` +
      `Connect latency with \`-C\`: PgBouncer ${fmtMs(med("reconnect", "pgbouncer", (s) => s.connectMs))} ms, Airlock ${fmtMs(med("reconnect", "airlock", (s) => s.connectMs))} ms.`,
    "",
  ];
  return lines.join("\n");
}

const RESULTS_HEADER = `# pgbench results

Produced by \`npm run bench\` (bench/pgbench.ts; see bench/README.md). Newest first. All paths
run in one process tree on the same machine, interleaved per repetition; compare rows within one
run, not across runs or machines.

<!-- newest results below this line -->
`;

function prependResults(file: string, section: string): void {
  const marker = "<!-- newest results below this line -->\n";
  let existing = existsSync(file) ? readFileSync(file, "utf8") : "";
  if (!existing.includes(marker)) existing = RESULTS_HEADER + (existing === "" ? "" : `\n${existing}`);
  const at = existing.indexOf(marker) + marker.length;
  writeFileSync(file, `${existing.slice(0, at)}\n${section.trim()}\n${existing.slice(at)}`);
}

async function gitDescribe(root: string): Promise<string> {
  try {
    const head = await run("git", ["-C", root, "rev-parse", "--short", "HEAD"], process.env, 10_000);
    const dirty = await run("git", ["-C", root, "status", "--porcelain", "--untracked-files=no"], process.env, 10_000);
    if (head.code !== 0) return "unknown";
    return `${head.stdout.trim()}${dirty.stdout.trim() === "" ? "" : " + uncommitted changes"}`;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------------------------------------
// Main

/**
 * Streaming a large masked result: direct vs Airlock (masking on: the demo policy set without
 * its row cap), timed with psql, the gateway's RSS sampled during the stream to show that
 * memory stays flat (DataRows are rewritten one at a time).
 */
async function streamMasked(pg: PgServer, targets: readonly Target[], gateway: Gateway | undefined, o: Options, extras: Extras): Promise<string[]> {
  const rows = Number(process.env["BENCH_STREAM_ROWS"] ?? "1000000");
  const direct = targets.find((t) => t.id === "direct");
  const airlock = targets.find((t) => t.id === "airlock");
  if (!(rows > 0) || direct === undefined || airlock === undefined || gateway === undefined) return [];
  const sql = `select g, 'user' || g || '@example.com' as email, '4111 1111 1111 1111' as card, 'note for customer ' || g as note from generate_series(1, ${rows}) g`;
  const via = (t: Target, dbname: string): string[] => ["-X", "-Atq", "-o", "/dev/null", "-h", t.host, "-p", String(t.port), "-U", t.user, "-d", dbname, "-c", sql];
  // Masking really is on for the stream connection.
  const check = await run(psqlBinary(pg), ["-X", "-Atq", "-h", airlock.host, "-p", String(airlock.port), "-U", airlock.user, "-d", "bench_stream", "-c", "select 'someone@example.com'"], clientEnv(airlock.password), 30_000);
  if (check.stdout.trim() !== "[EMAIL]") throw new Error(`masking is not on for the stream connection: ${check.stdout}${check.stderr}`);
  const times: Record<"direct" | "airlock", number[]> = { direct: [], airlock: [] };
  let peakRss = 0;
  const before = memoryOf(gateway.pid)?.rssKiB ?? 0;
  const reps = Math.max(1, Math.min(2, o.reps));
  for (let rep = 1; rep <= reps; rep++) {
    for (const [id, t, db] of [["direct", direct, "bench"], ["airlock", airlock, "bench_stream"]] as const) {
      const sampler = setInterval(() => {
        const m = memoryOf(gateway.pid);
        if (m !== undefined) peakRss = Math.max(peakRss, m.rssKiB);
      }, 100);
      const started = performance.now();
      const r = await run(psqlBinary(pg), via(t, db), clientEnv(t.password), 600_000);
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      if (r.code !== 0) throw new Error(`streaming through ${t.label} failed: ${tail(r.stderr)}`);
      times[id].push(seconds);
      log(`stream ${rows} rows rep ${rep}/${reps} ${t.label}: ${seconds.toFixed(2)} s`);
    }
  }
  const after = memoryOf(gateway.pid)?.rssKiB ?? 0;
  const d = median(times.direct);
  const a = median(times.airlock);
  const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
  extras.streamRatio = d / a;
  extras.streamRssGrowthMiB = Math.max(0, peakRss - before) / 1024;
  return [
    `### Streaming ${rows.toLocaleString("en-US")} rows with masking (email and card in every row)`,
    "",
    "| path | seconds (median) | rows/s | ratio vs direct |",
    "|---|---:|---:|---:|",
    `| direct | ${d.toFixed(2)} | ${fmtInt(rows / d)} | 1.00× |`,
    `| Airlock (masking on) | ${a.toFixed(2)} | ${fmtInt(rows / a)} | ${(d / a).toFixed(2)}× |`,
    "",
    `Gateway RSS: ${mib(before)} before, ${mib(peakRss)} peak while streaming, ${mib(after)} after (psql holds the result client-side; the gateway streams).`,
    "",
  ];
}

/**
 * Opens `n` authenticated sessions through the gateway (PostgreSQL wire protocol, the token as
 * a cleartext password, as psql would) and holds them idle while the gateway's RSS is read; then
 * closes them. Returns the RSS growth in MiB, or undefined when a session could not be opened.
 */
async function idleSessions(gateway: Gateway, n: number): Promise<{ addedMiB: number; opened: number } | undefined> {
  const startup = (user: string, db: string): Buffer => {
    const kv = Buffer.from(`user\0${user}\0database\0${db}\0\0`, "utf8");
    const b = Buffer.alloc(8 + kv.length);
    b.writeInt32BE(b.length, 0);
    b.writeInt32BE(196608, 4);
    kv.copy(b, 8);
    return b;
  };
  const password = (pw: string): Buffer => {
    const body = Buffer.from(`${pw}\0`, "utf8");
    const b = Buffer.alloc(5 + body.length);
    b.write("p", 0, "latin1");
    b.writeInt32BE(4 + body.length, 1);
    body.copy(b, 5);
    return b;
  };
  const open = (): Promise<import("node:net").Socket> =>
    new Promise((resolveOpen, reject) => {
      const s = connect({ host: gateway.host, port: gateway.port });
      let buf = Buffer.alloc(0);
      const fail = (why: string): void => {
        s.destroy();
        reject(new Error(why));
      };
      s.setTimeout(30_000, () => fail("timed out opening an idle session"));
      s.once("error", (e) => fail(e.message));
      s.once("connect", () => s.write(startup("bench", "bench")));
      const onData = (chunk: Buffer): void => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 5) {
          const len = buf.readInt32BE(1);
          if (buf.length < 1 + len) return;
          const type = String.fromCharCode(buf[0] ?? 0);
          const code = type === "R" ? buf.readInt32BE(5) : -1;
          buf = buf.subarray(1 + len);
          if (type === "R" && code === 3) s.write(password(gateway.token));
          else if (type === "E") return fail("the gateway refused an idle session");
          else if (type === "Z") {
            s.off("data", onData);
            s.setTimeout(0);
            resolveOpen(s);
            return;
          }
        }
      };
      s.on("data", onData);
    });
  const before = memoryOf(gateway.pid)?.rssKiB;
  const sockets: import("node:net").Socket[] = [];
  try {
    // A few at a time: the gateway admits each (token check, audit, upstream log-in).
    for (let i = 0; i < n; i += 20) {
      const batch = await Promise.all(Array.from({ length: Math.min(20, n - i) }, open));
      sockets.push(...batch);
    }
    await sleep(2000);
    const after = memoryOf(gateway.pid)?.rssKiB;
    if (before === undefined || after === undefined) return undefined;
    return { addedMiB: (after - before) / 1024, opened: sockets.length };
  } catch (e) {
    log(`idle sessions: ${e instanceof Error ? e.message : String(e)} after ${sockets.length}`);
    return undefined;
  } finally {
    for (const s of sockets) s.destroy();
    await sleep(1000);
  }
}

async function main(): Promise<number> {
  const root = repoRoot();
  const o = readOptions(root);
  if (o.paths.includes("airlock")) checkAirlockBuilt(root);
  const workloads = plan(o);
  const runSeconds = workloads.reduce((acc, w) => acc + w.reps * w.durationS * o.paths.length, 0);
  log(
    `plan: ${workloads.map((w) => `${w.id} ${w.reps}×${w.durationS}s`).join(", ")} over ${o.paths.join(", ")}; ` +
      `about ${Math.ceil((runSeconds + 40) / 60)} min`,
  );

  const work = mkdtempSync(join(tmpdir(), "airlock-bench-"));
  let pg: PgServer | undefined;
  let bouncer: PgBouncerServer | undefined;
  let gateway: Gateway | undefined;
  let pipe: { stop(): Promise<void> } | undefined;
  const cleanup = async (): Promise<void> => {
    await gateway?.stop().catch(() => undefined);
    await pipe?.stop().catch(() => undefined);
    await bouncer?.stop().catch(() => undefined);
    await pg?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    log("interrupted: stopping servers");
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  let failures = 0;
  try {
    log("starting PostgreSQL");
    // Client-edge authentication is a cleartext password on EVERY path: Airlock's token is a
    // password, and SCRAM's client-side key derivation (in pgbench, on the same 2 cores) would
    // otherwise dominate the reconnect numbers. Upstream, PgBouncer and Airlock log in as the
    // superuser with SCRAM, as against a real server.
    const benchPassword = randomBytes(18).toString("base64url");
    // Room for the idle-sessions row (each gateway session holds a target session).
    const idleN = Number(process.env["BENCH_IDLE_SESSIONS"] ?? "1000");
    pg = await startPostgres({
      users: [{ name: "bench", password: benchPassword, auth: "password", superuser: true }],
      databases: ["bench"],
      ...(idleN > 150 ? { settings: { max_connections: String(idleN + 100) } } : {}),
    });
    const server = pg;
    log(`pgbench -i -s ${o.scale}`);
    const init = await run(
      pgbenchBinary(server),
      ["-i", "-s", String(o.scale), "-q", "-h", server.host, "-p", String(server.port), "-U", SUPERUSER, "bench"],
      clientEnv(SUPERUSER_PASSWORD),
      600_000,
    );
    if (init.code !== 0) throw new Error(`pgbench -i failed:\n${tail(init.stderr)}`);

    const extras: Extras = {};
    const targets: Target[] = [];
    if (o.paths.includes("direct")) {
      targets.push({ id: "direct", label: "direct", host: server.host, port: server.port, user: "bench", dbname: "bench", password: benchPassword });
    }
    if (o.paths.includes("pgbouncer")) {
      log("starting PgBouncer (session mode)");
      const clientPassword = randomBytes(18).toString("base64url");
      bouncer = await startPgBouncer({
        upstream: { host: server.host, port: server.port },
        databases: { bench: { dbname: "bench", user: SUPERUSER, password: SUPERUSER_PASSWORD } },
        authUsers: [{ name: "bench", password: clientPassword }],
        poolMode: "session",
        authType: "plain",
        poolSize: Math.max(20, o.clients + 2),
      });
      targets.push({ id: "pgbouncer", label: "PgBouncer", host: bouncer.host, port: bouncer.port, user: "bench", dbname: "bench", password: clientPassword, pid: bouncer.pid });
    }
    if (o.paths.includes("pipe")) {
      log("starting the bare Node relay");
      const relay = await startNodePipe(root, server);
      pipe = relay;
      targets.push({ id: "pipe", label: "Node pipe (no inspection)", host: "127.0.0.1", port: relay.port, user: "bench", dbname: "bench", password: benchPassword, pid: relay.pid });
    }
    if (o.paths.includes("airlock")) {
      log("starting the Airlock gateway");
      gateway = await startGateway(root, work, server);
      // Idle RSS: started, token minted, nothing served yet (after a moment to settle).
      await sleep(2000);
      const idle = memoryOf(gateway.pid);
      if (idle !== undefined) extras.idleRssMiB = idle.rssKiB / 1024;
      targets.push({ id: "airlock", label: "Airlock", host: gateway.host, port: gateway.port, user: "bench", dbname: "bench", password: gateway.token, pid: gateway.pid });
    }

    for (const t of targets) await smoke(server, t);
    // Warm-up: caches, JIT of the gateway, PgBouncer's pool; not recorded.
    const warm = workloads.find((w) => w.id === "select-only") ?? workloads[0];
    if (warm !== undefined) {
      for (const t of targets) await pgbench(server, t, { ...warm, args: ["-S", "-M", "simple"] }, o, 3);
    }

    const cells = new Map<string, Cell>();
    for (const w of workloads) {
      for (let rep = 1; rep <= w.reps; rep++) {
        for (const t of targets) {
          const key = `${w.id}/${t.id}`;
          const cell = cells.get(key) ?? { samples: [], errors: [] };
          cells.set(key, cell);
          if (w.resetBefore) await resetTpcb(server);
          try {
            const s = await pgbench(server, t, w, o);
            cell.samples.push(s);
            log(`${w.id} rep ${rep}/${w.reps} ${t.label}: ${fmtInt(s.tps)} TPS, ${fmtMs(s.latencyMs)} ms`);
          } catch (e) {
            failures++;
            const msg = e instanceof Error ? e.message : String(e);
            cell.errors.push(msg);
            log(`${w.id} rep ${rep}/${w.reps} ${t.label}: FAILED: ${msg}`);
          }
        }
      }
    }

    const streamLines = await streamMasked(server, targets, gateway, o, extras);
    if (gateway !== undefined && idleN > 0) {
      log(`holding ${idleN} idle sessions through Airlock`);
      const r = await idleSessions(gateway, idleN);
      if (r !== undefined) {
        extras.idleSessions = r.opened;
        extras.idleSessionsMiB = r.addedMiB;
      }
    }

    const gwMem = gateway === undefined ? undefined : memoryOf(gateway.pid);
    const pbMem = bouncer === undefined ? undefined : memoryOf(bouncer.pid);
    const pgVersion = (await server.psql("show server_version")).trim();
    const settings = (await server.psql("select string_agg(name || '=' || current_setting(name), ', ' order by name) from pg_settings where name in ('fsync','synchronous_commit','shared_buffers','max_connections')")).trim();
    const pgbenchVersion = (await run(pgbenchBinary(server), ["--version"], process.env, 10_000)).stdout.trim();
    const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
    const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;

    const lines = [
      `## ${when} — scale ${o.scale}, ${o.clients} clients, ${o.threads} threads`,
      "",
      `- Machine: ${availableParallelism()} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}; Node ${process.version}`,
      `- PostgreSQL ${pgVersion} (throwaway test harness server: ${settings}); ${pgbenchVersion}`,
      ...(bouncer === undefined ? [] : [`- ${bouncer.version}, session mode; peak RSS (VmHWM) ${pbMem === undefined ? "n/a" : mib(pbMem.hwmKiB)}`]),
      ...(gateway === undefined
        ? ["- Airlock: not measured in this run"]
        : [
            `- Airlock ${await gitDescribe(root)}, gateway as a separate process, token as password; gateway peak RSS (VmHWM) after the runs ${gwMem === undefined ? "n/a" : mib(gwMem.hwmKiB)}, current RSS ${gwMem === undefined ? "n/a" : mib(gwMem.rssKiB)}`,
          ]),
      `- Reproduce: \`npm run bench\` (here: BENCH_DURATION=${o.duration} BENCH_REPS=${o.reps} BENCH_CLIENTS=${o.clients} BENCH_SCALE=${o.scale}${o.paths.length < PATHS.length ? ` BENCH_PATHS=${o.paths.join(",")}` : ""}${o.workloads.length < WORKLOAD_IDS.length ? ` BENCH_WORKLOADS=${o.workloads.join(",")}` : ""})`,
      `- Order: per repetition ${targets.map((t) => t.label).join(" → ")}; medians; ratios are TPS ratios (higher is better)`,
      "- Client auth: cleartext password on every path (Airlock's token is a password); PgBouncer and Airlock log in upstream as `postgres` with SCRAM; TLS off everywhere",
      "",
      goalsTable(cells, extras),
      ...workloads.map((w) => workloadTable(w, targets, cells)),
      ...streamLines,
    ];
    prependResults(o.resultsFile, lines.join("\n"));
    log(`results prepended to ${o.resultsFile}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    await cleanup();
  }
  if (failures > 0) {
    log(`${failures} pgbench run(s) failed`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    log(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
