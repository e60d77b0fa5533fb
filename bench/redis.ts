/**
 * Redis through the gateway vs direct vs a bare Node relay (bench/node-pipe.ts), side by side in
 * one run (issue 14), with Debian's `redis-benchmark`: GET and SET, 8 clients, without and with
 * pipelining (-P 16), in alternating rounds (`BENCH_REDIS_ROUNDS`, default 3; `BENCH_REDIS_N`
 * requests per test, default 100000). The gateway runs a demo-like policy set (a deny rule, a key
 * rule, a masking rule with detectors), recording and audit on. Reports median requests/s and
 * ratios; appends to bench/redis-results.md with `--record`.
 *
 *   npm run bench:redis [-- --record]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../src/observability/logger.js";
import { parseConfig } from "../src/runtime/config.js";
import { startGateway } from "../src/runtime/gateway.js";
import { freePort } from "../test/harness/ports.js";
import { runProcess, startRedis } from "../test/harness/redis.js";

const ROUNDS = Number(process.env["BENCH_REDIS_ROUNDS"] ?? 3);
const N = Number(process.env["BENCH_REDIS_N"] ?? 100_000);
const record = process.argv.includes("--record");

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

/** redis-benchmark --csv: `"test","rps",…` lines; the requests per second of each test. */
async function benchmark(port: number, user: string, password: string, pipeline: number): Promise<Record<string, number>> {
  const r = await runProcess(
    "redis-benchmark",
    ["-h", "127.0.0.1", "-p", String(port), "--user", user, "-a", password, "-t", "set,get", "-n", String(N), "-c", "8", "-P", String(pipeline), "-r", "10000", "-d", "64", "--csv"],
    { timeoutMs: 600_000 },
  );
  if (r.code !== 0) throw new Error(`redis-benchmark failed: ${r.stderr}${r.stdout}`);
  const out: Record<string, number> = {};
  for (const line of r.stdout.split("\n")) {
    const m = /^"([A-Z]+)","([0-9.]+)"/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = Number(m[2]);
  }
  if (out["GET"] === undefined || out["SET"] === undefined) throw new Error(`unexpected redis-benchmark output: ${r.stdout}${r.stderr}`);
  return out;
}

function startRelay(listen: number, targetPort: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, "node-pipe.js"), String(listen), "127.0.0.1", String(targetPort)], { stdio: ["ignore", "pipe", "inherit"] });
    child.stdout.once("data", () => resolve(child));
    child.once("error", reject);
  });
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]?.toFixed(1) ?? "?";
  const redis = await startRedis();
  const work = mkdtempSync(join(tmpdir(), "airlock-bench-redis-"));
  const gw = await startGateway(
    parseConfig({
      dataDir: join(work, "gw"),
      listen: { api: "127.0.0.1:0", redis: "127.0.0.1:0" },
      serviceAccounts: [{ name: "bench", groups: ["bench"] }],
      connections: [{ name: "cache", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: redis.password, groups: ["bench"] }],
      policies: [
        { name: "no-flush", match: { commands: ["flushall", "flushdb"] }, action: "deny" },
        { name: "no-sessions", match: { keys: ["session:*"] }, action: "deny" },
        { name: "pii", action: "mask", detectors: ["email", "credit_card", "secret"] },
      ],
    }),
    { logger: createLogger({ level: "warn" }) },
  );
  const relayPort = await freePort();
  const relay = await startRelay(relayPort, redis.port);
  try {
    const token = (await gw.tokens.mint("bench", { ttlMs: 3_600_000, createdBy: "bench" })).token;
    const gwPort = gw.addresses.redis?.port ?? 0;
    const paths = {
      direct: { port: redis.port, user: redis.user, password: redis.password },
      "Node relay": { port: relayPort, user: redis.user, password: redis.password },
      Airlock: { port: gwPort, user: "cache", password: token },
    } as const;
    type PathName = keyof typeof paths;
    const results = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const pipeline of [1, 16]) {
        for (const name of Object.keys(paths) as PathName[]) {
          const p = paths[name];
          const r = await benchmark(p.port, p.user, p.password, pipeline);
          for (const [test, rps] of Object.entries(r)) {
            const key = `${test} -P ${pipeline}|${name}`;
            results.set(key, [...(results.get(key) ?? []), rps]);
          }
        }
      }
    }
    const rows: string[] = [];
    for (const test of ["GET", "SET"]) {
      for (const pipeline of [1, 16]) {
        const m = (name: PathName): number => median(results.get(`${test} -P ${pipeline}|${name}`) ?? []);
        const d = m("direct");
        const relayRps = m("Node relay");
        const a = m("Airlock");
        rows.push(`| ${test}, 8 clients, pipeline ${pipeline} | ${Math.round(d).toLocaleString("en")} | ${Math.round(relayRps).toLocaleString("en")} | ${Math.round(a).toLocaleString("en")} | ${(a / d).toFixed(2)}× | ${(a / relayRps).toFixed(2)}× |`);
      }
    }
    const report = [
      `## ${new Date().toISOString()} — redis-benchmark, ${N} requests per test, ${ROUNDS} rounds (median), ${cpus().length} cores, load ${loadAtStart} at start`,
      "",
      "| test | direct req/s | Node relay req/s | Airlock req/s | Airlock ÷ direct | Airlock ÷ relay |",
      "|---|---:|---:|---:|---:|---:|",
      ...rows,
      "",
    ].join("\n");
    console.log(report);
    if (record) appendFileSync(join(process.cwd(), "bench", "redis-results.md"), `${report}\n`);
  } finally {
    relay.kill("SIGTERM");
    await gw.close();
    await redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
