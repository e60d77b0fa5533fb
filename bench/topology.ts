/**
 * Scaling out (issue 18): pgbench select-only through Airlock in ONE run, three ways —
 *   1 worker    one gateway process (`--workers 1`)
 *   2 workers   one gateway, primary + 2 workers sharing the listener (`--workers 2`)
 *   2 gateways  two gateway processes (`--workers 1` each) on one store, the clients split
 *               between them (two pgbench processes at once, TPS summed; no load balancer,
 *               which would add its own hop)
 * plus direct to PostgreSQL for reference. Every gateway uses the same PostgreSQL store (a
 * harness database) and target. Results are prepended to bench/topology-results.md.
 *
 * Run: `npm run build --silent && node dist/bench/topology.js`. Environment (optional):
 *   BENCH_DURATION seconds per pgbench run (default 15), BENCH_CLIENTS (default 8).
 * Uses bin/airlock.js (the build in dist/). Passwords and tokens reach pgbench through
 * PGPASSWORD, never a command line.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../test/harness/ports.js";
import { postgresBinDir, startPostgres, SUPERUSER, SUPERUSER_PASSWORD } from "../test/harness/postgres.js";

const DURATION = Number(process.env["BENCH_DURATION"] ?? 15);
const CLIENTS = Number(process.env["BENCH_CLIENTS"] ?? 8);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = join(root, "bin", "airlock.js");

interface Gw {
  readonly dir: string;
  readonly api: number;
  readonly pg: number;
  readonly proc: ChildProcess;
  output: string;
}

async function startGw(name: string, storeUrl: string, target: { port: number }, workers: number, keysFrom?: string): Promise<Gw> {
  const dir = mkdtempSync(join(tmpdir(), `airlock-bench-topo-${name}-`));
  if (keysFrom !== undefined) cpSync(join(keysFrom, "keys"), join(dir, "keys"), { recursive: true });
  const api = await freePort();
  const pg = await freePort();
  const config = {
    dataDir: dir,
    store: { url: storeUrl },
    instance: { id: `bench-${name}` },
    listen: { api: `127.0.0.1:${api}`, postgres: `127.0.0.1:${pg}` },
    log: { level: "warn" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "bench", type: "postgres", host: "127.0.0.1", port: target.port, database: "bench", user: SUPERUSER, password: "env:BENCH_TARGET_PASSWORD", groups: ["agents"], sslmode: "disable" }],
  };
  writeFileSync(join(dir, "airlock.json.yaml"), JSON.stringify(config));
  const proc = spawn(process.execPath, [bin, "gateway", "--workers", String(workers), "--config", join(dir, "airlock.json.yaml")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, BENCH_TARGET_PASSWORD: SUPERUSER_PASSWORD },
  });
  const g: Gw = { dir, api, pg, proc, output: "" };
  proc.stdout.on("data", (d: Buffer) => (g.output += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (g.output += d.toString()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway ${name} exited: ${g.output.slice(-2000)}`);
    const ready = await fetch(`http://127.0.0.1:${api}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready && (workers === 1 || g.output.includes(`${workers} workers serving`))) return g;
    if (Date.now() > deadline) throw new Error(`gateway ${name} not ready: ${g.output.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopGw(g: Gw): Promise<void> {
  if (g.proc.exitCode === null) {
    await new Promise<void>((r) => {
      g.proc.once("exit", () => r());
      g.proc.kill("SIGINT");
    });
  }
  rmSync(g.dir, { recursive: true, force: true });
}

async function mint(g: Gw): Promise<string> {
  const admin = readFileSync(join(g.dir, "admin.token"), "utf8").trim();
  const r = await fetch(`http://127.0.0.1:${g.api}/v1/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ serviceAccount: "agent", ttl: "2h" }),
  });
  if (r.status !== 201) throw new Error(`mint: ${r.status}`);
  return ((await r.json()) as { token: string }).token;
}

function pgbench(port: number, user: string, password: string, clients: number): Promise<number> {
  const args = ["-n", "-S", "-c", String(clients), "-j", String(Math.min(2, clients)), "-T", String(DURATION), "-h", "127.0.0.1", "-p", String(port), "-U", user, "bench"];
  return new Promise((resolveTps, reject) => {
    const p = spawn(join(postgresBinDir(), "pgbench"), args, { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: "disable" } });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    p.once("exit", (code) => {
      const tps = /tps = ([0-9.]+)/.exec(out)?.[1];
      if (code !== 0 || tps === undefined) reject(new Error(`pgbench failed (${String(code)}): ${out.slice(-1500)}`));
      else resolveTps(Number(tps));
    });
  });
}

async function main(): Promise<void> {
  if (!existsSync(bin)) throw new Error("run `npm run build` first (bin/airlock.js loads dist/)");
  const server = await startPostgres({ databases: ["bench", "store"] });
  const rows: { path: string; tps: number }[] = [];
  const load0 = loadavg()[0] ?? 0;
  try {
    await new Promise<void>((res, rej) => {
      const p = spawn(join(postgresBinDir(), "pgbench"), ["-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p", String(server.port), "-U", SUPERUSER, "bench"], { env: { ...process.env, PGPASSWORD: SUPERUSER_PASSWORD } });
      p.once("exit", (code) => (code === 0 ? res() : rej(new Error("pgbench -i failed"))));
    });
    const storeUrl = server.url({ user: SUPERUSER, password: SUPERUSER_PASSWORD, database: "store" });
    rows.push({ path: "direct", tps: await pgbench(server.port, SUPERUSER, SUPERUSER_PASSWORD, CLIENTS) });

    const one = await startGw("one", storeUrl, server, 1);
    const token = await mint(one);
    rows.push({ path: "airlock, 1 worker", tps: await pgbench(one.pg, "agent", token, CLIENTS) });
    await stopGw(one);

    const two = await startGw("two", storeUrl, server, 2);
    rows.push({ path: "airlock, 2 workers (one gateway)", tps: await pgbench(two.pg, "agent", await mint(two), CLIENTS) });
    await stopGw(two);

    const a = await startGw("a", storeUrl, server, 1);
    const b = await startGw("b", storeUrl, server, 1, a.dir);
    const t = await mint(a);
    const half = Math.max(1, Math.floor(CLIENTS / 2));
    const [ta, tb] = await Promise.all([pgbench(a.pg, "agent", t, half), pgbench(b.pg, "agent", t, CLIENTS - half)]);
    rows.push({ path: `airlock, 2 gateways (${half} + ${CLIENTS - half} clients)`, tps: ta + tb });
    await stopGw(b);
    await stopGw(a);
  } finally {
    await server.stop();
  }
  const base = rows.find((r) => r.path === "airlock, 1 worker")?.tps ?? Number.NaN;
  const direct = rows.find((r) => r.path === "direct")?.tps ?? Number.NaN;
  const section = [
    `## ${new Date().toISOString().replace(/\.\d+Z$/, "Z")} — pgbench -S, ${CLIENTS} clients, ${DURATION} s per path, scale 10, one run`,
    "",
    `- Machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? "?"}); Node ${process.version}; PostgreSQL 15 (harness) as target and store; load average ${load0.toFixed(1)} at start, ${(loadavg()[0] ?? 0).toFixed(1)} at end`,
    "- pgbench, PostgreSQL, the gateway processes (and on this machine other work) share the same cores",
    "",
    "| path | TPS | vs 1 worker | vs direct |",
    "|---|---:|---:|---:|",
    ...rows.map((r) => `| ${r.path} | ${r.tps.toFixed(0)} | ${(r.tps / base).toFixed(2)} | ${(r.tps / direct).toFixed(2)} |`),
    "",
  ].join("\n");
  process.stdout.write(`${section}\n`);
  const file = resolve(root, process.env["BENCH_RESULTS"] ?? join("bench", "topology-results.md"));
  const marker = "<!-- newest results below this line -->\n";
  const head = `# Scaling out: workers and gateways\n\nProduced by \`node dist/bench/topology.js\` (bench/topology.ts). Newest first.\n\n${marker}`;
  const old = existsSync(file) ? readFileSync(file, "utf8") : head;
  const at = old.indexOf(marker);
  writeFileSync(file, at < 0 ? `${head}\n${section}\n${old}` : `${old.slice(0, at + marker.length)}\n${section}${old.slice(at + marker.length)}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
