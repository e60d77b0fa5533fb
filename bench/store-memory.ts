/**
 * Gateway memory with each embedded store (issue 13, "Memory": idle RSS ≤ 150 MB with the
 * embedded store; 1,000 idle authenticated sessions add ≤ 150 MB). In one run on this machine:
 *
 * 1. the store alone, in a fresh Node process per variant: open an existing store (created and
 *    migrated by an earlier process, as at a gateway's restart), append audit batches, read RSS.
 *    Variants: SQLite as shipped; PGlite as shipped (32 MB shared_buffers); PGlite with its own
 *    defaults (128 MB); PGlite with 16 MB shared_buffers and relaxed durability (its tuning knobs);
 *    plus bare Node for reference;
 * 2. the real gateway (`node bin/airlock.js gateway`, a separate process) per embedded store, with
 *    the demo policy set and one PostgreSQL connection to a throwaway PostgreSQL 15:
 *    - idle: after start, a token minted and one psql query, then 5 s of quiet;
 *    - 1,000 idle authenticated sessions: node-postgres clients through the gateway, token as the
 *      password, each having run `SELECT 1`, then 5 s of quiet (RSS, and the difference to idle);
 *    - peak under load: `pgbench -S -c 8 -j 2 -T 20` through the gateway (every statement judged,
 *      audited, recorded; sessions written to the store), RSS sampled every 100 ms, and the
 *      process's lifetime peak (VmHWM);
 *    - idle again 5 s after the load.
 * Results are prepended to bench/store-results.md. Memory moves far less with machine load than
 * timings do, but it does move (GC timing): compare within one run.
 *
 * Run: `npm run bench:store-memory`. Environment (optional):
 *   STORE_MEMORY_STORES    comma list from sqlite,pglite (default both)
 *   STORE_MEMORY_SESSIONS  idle sessions to open (default 1000)
 *   STORE_MEMORY_LOAD_S    seconds of pgbench load (default 20)
 *   STORE_MEMORY_RESULTS   file to prepend results to (default bench/store-results.md)
 *
 * Secrets: the upstream password reaches the gateway as an env: reference and the token reaches
 * psql/pgbench through PGPASSWORD; neither is printed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { stringify as toYaml } from "yaml";
import { z } from "zod";
import { DEMO_POLICIES } from "../src/runtime/demo-policies.js";
import { freePort } from "../test/harness/ports.js";
import { startPostgres, SUPERUSER, SUPERUSER_PASSWORD, type PgServer } from "../test/harness/postgres.js";

const STORES = ["sqlite", "pglite"] as const;
type StoreKind = (typeof STORES)[number];

const envSchema = z.object({
  STORE_MEMORY_STORES: z.string().optional(),
  STORE_MEMORY_SESSIONS: z.coerce.number().int().min(0).max(5000).default(1000),
  STORE_MEMORY_LOAD_S: z.coerce.number().int().min(1).max(600).default(20),
  STORE_MEMORY_RESULTS: z.string().min(1).optional(),
});

const t0 = Date.now();
function log(msg: string): void {
  process.stderr.write(`[store-memory +${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "bin", "airlock.js"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("store-memory: cannot find the repository root");
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
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-16384)));
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

const tail = (text: string, lines = 15): string => text.trim().split("\n").slice(-lines).join("\n");

/** VmRSS and VmHWM of a process in MiB, from /proc (Linux). */
function memoryOf(pid: number | "self"): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
    if (m === undefined) throw new Error(`no ${name} for ${pid}`);
    return Number(m) / 1024;
  };
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

const mib = (n: number): string => `${Math.round(n)} MB`;

// ---------------------------------------------------------------------------------------------
// Part 1: the store alone (this same file, run as a child with `--alone VARIANT DIR PHASE`)

const ALONE_VARIANTS = ["node", "sqlite", "pglite", "pglite-defaults", "pglite-16mb-relaxed"] as const;
type AloneVariant = (typeof ALONE_VARIANTS)[number];

async function aloneChild(variant: AloneVariant, dir: string, phase: "create" | "measure"): Promise<void> {
  const { openStore } = await import("../src/store/index.js");
  const { makeAuditBatch } = await import("./store-memory-batch.js");
  const before = memoryOf("self").rss;
  if (variant === "node") {
    process.stdout.write(`${JSON.stringify({ open: before, afterWrites: memoryOf("self").rss, hwm: memoryOf("self").hwm })}\n`);
    return;
  }
  if (variant === "sqlite" || variant === "pglite") {
    const store = await openStore({ dataDir: dir, embedded: variant });
    if (phase === "create") {
      await store.close();
      return;
    }
    const open = memoryOf("self").rss;
    let last = await store.lastAudit();
    for (let i = 0; i < 200; i++) {
      const batch = makeAuditBatch(last, 50);
      await store.appendAudit(batch);
      last = batch[batch.length - 1];
    }
    const m = memoryOf("self");
    await store.close();
    process.stdout.write(`${JSON.stringify({ open, afterWrites: m.rss, hwm: m.hwm })}\n`);
    return;
  }
  // PGlite's own knobs, on the same data directory layout (in this thread: the measurement is RSS).
  const { PGlite } = await import("@electric-sql/pglite");
  mkdirSync(dir, { recursive: true });
  const startParams =
    variant === "pglite-defaults" ? PGlite.defaultStartParams : [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB"];
  const db = await PGlite.create(join(dir, "store"), { startParams, relaxedDurability: variant === "pglite-16mb-relaxed" });
  if (phase === "create") {
    await db.exec("CREATE TABLE IF NOT EXISTS seg (first_seq bigint PRIMARY KEY, body text NOT NULL)");
    await db.close();
    return;
  }
  const open = memoryOf("self").rss;
  let last: Awaited<ReturnType<typeof makeAuditBatch>>[number] | undefined;
  for (let i = 0; i < 200; i++) {
    const batch = makeAuditBatch(last, 50);
    await db.query("INSERT INTO seg VALUES ($1, $2)", [batch[0]?.seq ?? 0, batch.map((r) => JSON.stringify(r)).join("\n")]);
    last = batch[batch.length - 1];
  }
  const m = memoryOf("self");
  await db.close();
  process.stdout.write(`${JSON.stringify({ open, afterWrites: m.rss, hwm: m.hwm })}\n`);
}

interface AloneResult {
  readonly variant: AloneVariant;
  readonly open?: number;
  readonly afterWrites?: number;
  readonly hwm?: number;
  readonly error?: string;
}

async function measureAlone(variant: AloneVariant, work: string): Promise<AloneResult> {
  const dir = join(work, `alone-${variant}`);
  const self = fileURLToPath(import.meta.url);
  for (const phase of ["create", "measure"] as const) {
    const r = await run(process.execPath, [self, "--alone", variant, dir, phase], process.env, 180_000);
    if (r.code !== 0) return { variant, error: `${phase}: exit ${String(r.code)} ${tail(r.stderr, 3)}` };
    if (phase === "measure") {
      const m = z.object({ open: z.number(), afterWrites: z.number(), hwm: z.number() }).parse(JSON.parse(r.stdout.trim()));
      return { variant, ...m };
    }
  }
  return { variant, error: "no result" };
}

// ---------------------------------------------------------------------------------------------
// Part 2: the gateway

const PG_PASSWORD_ENV = "AIRLOCK_BENCH_PG_PASSWORD";

interface Gateway {
  readonly pid: number;
  readonly port: number;
  readonly token: string;
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      s.destroy();
      r(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

async function stopChild(child: ChildProcess, exited: Promise<void>, hasExited: () => boolean): Promise<void> {
  if (hasExited()) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (!hasExited()) child.kill("SIGKILL");
  }, 15_000);
  await exited;
  clearTimeout(timer);
}

async function startGateway(root: string, work: string, server: PgServer, store: StoreKind): Promise<Gateway> {
  const bin = join(root, "bin", "airlock.js");
  const [apiPort, pgPort] = [await freePort(), await freePort()];
  const configFile = join(work, `airlock-${store}.yaml`);
  writeFileSync(
    configFile,
    toYaml({
      dataDir: join(work, `data-${store}`),
      store: { embedded: store },
      listen: { api: `127.0.0.1:${apiPort}`, postgres: `127.0.0.1:${pgPort}` },
      log: { level: "warn" },
      serviceAccounts: [{ name: "bench", groups: ["bench"] }],
      policies: DEMO_POLICIES,
      connections: [
        {
          name: "bench",
          type: "postgres",
          host: server.host,
          port: server.port,
          database: "bench",
          user: SUPERUSER,
          password: `env:${PG_PASSWORD_ENV}`,
          groups: ["bench"],
          sslmode: "disable",
        },
      ],
    }),
  );
  const child = spawn(process.execPath, [bin, "gateway", "--config", configFile], {
    env: { ...process.env, [PG_PASSWORD_ENV]: SUPERUSER_PASSWORD },
    stdio: ["ignore", "pipe", "pipe"],
    cwd: work,
  });
  let output = "";
  const keep = (d: string): void => {
    output = (output + d).slice(-16384);
  };
  child.stdout.setEncoding("utf8").on("data", keep);
  child.stderr.setEncoding("utf8").on("data", keep);
  let exited = false;
  const exitPromise = new Promise<void>((r) =>
    child.once("exit", () => {
      exited = true;
      r();
    }),
  );
  const hasExited = (): boolean => exited;
  const stop = (): Promise<void> => stopChild(child, exitPromise, hasExited);
  try {
    const deadline = Date.now() + 90_000;
    while (!hasExited() && Date.now() < deadline && !((await canConnect(pgPort)) && (await canConnect(apiPort)))) await sleep(100);
    if (hasExited() || child.pid === undefined || !(await canConnect(pgPort))) throw new Error(`gateway (${store}) did not start:\n${tail(output, 20)}`);
    let token = "";
    const tokenDeadline = Date.now() + 30_000;
    while (token === "" && Date.now() < tokenDeadline) {
      const r = await run(process.execPath, [bin, "token", "create", "--service-account", "bench", "--ttl", "2h", "--config", configFile], process.env, 30_000);
      const out = r.stdout.trim();
      if (r.code === 0 && out !== "" && !/\s/.test(out)) token = out;
      else await sleep(250);
    }
    if (token === "") throw new Error("`airlock token create` failed");
    return { pid: child.pid, port: pgPort, token, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

function clientEnv(password: string): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: password, PGSSLMODE: "disable", PGGSSENCMODE: "disable", PGCONNECT_TIMEOUT: "10" };
}

async function psqlThrough(server: PgServer, gw: Gateway, sql: string): Promise<string> {
  const psql = existsSync(join(server.binDir, "psql")) ? join(server.binDir, "psql") : "psql";
  const r = await run(psql, ["-X", "-At", "-h", "127.0.0.1", "-p", String(gw.port), "-U", "bench", "-d", "bench", "-c", sql], clientEnv(gw.token), 30_000);
  if (r.code !== 0) throw new Error(`psql through the gateway failed: ${tail(r.stderr, 3)}`);
  return r.stdout.trim();
}

/** N authenticated node-postgres sessions through the gateway, each having run SELECT 1. */
async function openSessions(gw: Gateway, n: number): Promise<pg.Client[]> {
  const clients: pg.Client[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const c = new pg.Client({ host: "127.0.0.1", port: gw.port, user: "bench", database: "bench", password: gw.token, ssl: false });
      c.on("error", () => undefined);
      await c.connect();
      await c.query("SELECT 1");
      clients.push(c);
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  return clients;
}

interface GatewayResult {
  readonly store: StoreKind;
  readonly idle: number;
  readonly sessions: number;
  readonly withSessions: number;
  readonly loadMaxRss: number;
  readonly loadTps: number;
  readonly hwm: number;
  readonly idleAfter: number;
  /** Idle RSS of a second gateway process started on the same dataDir (the store reopened, as after an upgrade or restart). */
  readonly idleRestarted: number;
}

async function measureGateway(root: string, work: string, server: PgServer, store: StoreKind, sessions: number, loadS: number): Promise<GatewayResult> {
  log(`${store}: starting the gateway`);
  const gw = await startGateway(root, work, server, store);
  try {
    await psqlThrough(server, gw, "SELECT count(*) FROM pgbench_branches");
    await sleep(5000);
    const idle = memoryOf(gw.pid).rss;
    log(`${store}: idle ${mib(idle)}; opening ${sessions} sessions`);
    const clients = await openSessions(gw, sessions);
    await sleep(5000);
    const withSessions = memoryOf(gw.pid).rss;
    log(`${store}: with ${clients.length} sessions ${mib(withSessions)}`);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await sleep(3000);
    log(`${store}: pgbench -S for ${loadS} s`);
    let loadMaxRss = 0;
    const sampler = setInterval(() => {
      loadMaxRss = Math.max(loadMaxRss, memoryOf(gw.pid).rss);
    }, 100);
    const pgbenchBin = existsSync(join(server.binDir, "pgbench")) ? join(server.binDir, "pgbench") : "pgbench";
    const r = await run(
      pgbenchBin,
      ["-h", "127.0.0.1", "-p", String(gw.port), "-U", "bench", "-n", "-S", "-M", "simple", "-c", "8", "-j", "2", "-T", String(loadS), "bench"],
      clientEnv(gw.token),
      (loadS + 120) * 1000,
    );
    clearInterval(sampler);
    if (r.code !== 0) throw new Error(`pgbench through the gateway failed: ${tail(r.stderr, 5)}`);
    const loadTps = Number(/^tps = ([0-9.]+)/m.exec(r.stdout)?.[1] ?? Number.NaN);
    const hwm = memoryOf(gw.pid).hwm;
    await sleep(5000);
    const idleAfter = memoryOf(gw.pid).rss;
    log(`${store}: load max ${mib(loadMaxRss)}, HWM ${mib(hwm)}, idle after ${mib(idleAfter)}`);
    await gw.stop();
    log(`${store}: restarting the gateway on the same dataDir`);
    const again = await startGateway(root, work, server, store);
    let idleRestarted: number;
    try {
      await psqlThrough(server, again, "SELECT count(*) FROM pgbench_branches");
      await sleep(5000);
      idleRestarted = memoryOf(again.pid).rss;
    } finally {
      await again.stop();
    }
    log(`${store}: idle after restart ${mib(idleRestarted)}`);
    return { store, idle, sessions: clients.length, withSessions, loadMaxRss, loadTps, hwm, idleAfter, idleRestarted };
  } finally {
    await gw.stop();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const root = repoRoot();
  const env = envSchema.parse(process.env);
  const stores = env.STORE_MEMORY_STORES === undefined ? [...STORES] : STORES.filter((s) => env.STORE_MEMORY_STORES?.split(",").map((x) => x.trim()).includes(s));
  if (stores.length === 0) throw new Error("STORE_MEMORY_STORES names no store (sqlite, pglite)");
  const resultsFile = resolve(root, env.STORE_MEMORY_RESULTS ?? join("bench", "store-results.md"));
  const work = mkdtempSync(join(tmpdir(), "airlock-store-memory-"));
  let server: PgServer | undefined;
  try {
    log("store alone, per variant");
    const alone: AloneResult[] = [];
    for (const v of ALONE_VARIANTS) {
      const r = await measureAlone(v, work);
      log(`  ${v}: ${r.error ?? `open ${mib(r.open ?? 0)}, after writes ${mib(r.afterWrites ?? 0)}, peak ${mib(r.hwm ?? 0)}`}`);
      alone.push(r);
    }
    log("starting PostgreSQL");
    server = await startPostgres({ databases: ["bench"], settings: { max_connections: String(env.STORE_MEMORY_SESSIONS + 50) } });
    const pgbenchBin = existsSync(join(server.binDir, "pgbench")) ? join(server.binDir, "pgbench") : "pgbench";
    const init = await run(pgbenchBin, ["-i", "-s", "1", "-q", "-h", server.host, "-p", String(server.port), "-U", SUPERUSER, "bench"], clientEnv(SUPERUSER_PASSWORD), 300_000);
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${tail(init.stderr)}`);
    const gws: GatewayResult[] = [];
    for (const s of stores) gws.push(await measureGateway(root, work, server, s, env.STORE_MEMORY_SESSIONS, env.STORE_MEMORY_LOAD_S));

    const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const lines = [
      `## ${date} — gateway memory per embedded store`,
      "",
      `Machine: ${cpus().length} cores, ${mib(totalmem() / 1048576)} RAM, Node ${process.version}; other engineers' work was running (memory moves little with load, timings a lot: the TPS column is context, not a result).`,
      "",
      "### The gateway (`node bin/airlock.js gateway`, demo policies, one PostgreSQL connection)",
      "",
      "| embedded store | idle RSS (new dataDir) | RSS with idle sessions | added by the sessions | max RSS under `pgbench -S -c 8` | lifetime peak (VmHWM) | idle after the load | idle RSS, restarted on that dataDir | TPS under load |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...gws.map(
        (g) =>
          `| ${g.store} | ${mib(g.idle)} | ${mib(g.withSessions)} (${g.sessions}) | ${mib(g.withSessions - g.idle)} | ${mib(g.loadMaxRss)} | ${mib(g.hwm)} | ${mib(g.idleAfter)} | ${mib(g.idleRestarted)} | ${Math.round(g.loadTps)} |`,
      ),
      "",
      "Goal (issue 13): idle ≤ 150 MB; 1,000 idle sessions add ≤ 150 MB.",
      "",
      "### The store alone (fresh Node process, reopening a store created by an earlier process, 200 audit batches of 50)",
      "",
      "| variant | RSS after open | RSS after writes | peak (VmHWM) |",
      "|---|---:|---:|---:|",
      ...alone.map((a) => (a.error === undefined ? `| ${a.variant} | ${mib(a.open ?? 0)} | ${mib(a.afterWrites ?? 0)} | ${mib(a.hwm ?? 0)} |` : `| ${a.variant} | failed: ${a.error.replace(/\|/g, "/").replace(/\n/g, " ")} | | |`)),
      "",
      "",
    ];
    const previous = existsSync(resultsFile) ? readFileSync(resultsFile, "utf8") : "";
    const header = "# Store memory results (newest first; `npm run bench:store-memory`, bench/store-memory.ts)\n\n";
    writeFileSync(resultsFile, header + lines.join("\n") + previous.replace(header, ""));
    process.stdout.write(lines.join("\n"));
    log(`results prepended to ${resultsFile}`);
  } finally {
    await server?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === "--alone") {
  const variant = z.enum(ALONE_VARIANTS).parse(argv[1]);
  const phase = z.enum(["create", "measure"]).parse(argv[3]);
  await aloneChild(variant, z.string().parse(argv[2]), phase);
  process.exit(0);
} else {
  await main();
}
