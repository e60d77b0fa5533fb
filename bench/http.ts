/**
 * The HTTP engine vs direct vs a bare Node HTTP relay (issue 15), side by side in one run, with
 * Debian's `wrk` (`apt-get install -y wrk`): GET of a ~1.6 KB JSON array (20 objects, an email
 * in each) from a local Node upstream in its own process, 2 threads, 16 connections, keep-alive,
 * `BENCH_HTTP_SECONDS` per run (default 8), `BENCH_HTTP_ROUNDS` alternating rounds (default 3).
 * Paths: direct to the upstream; a bare Node reverse proxy (http.createServer → http.request with
 * a keep-alive Agent, bodies piped, its own process: the ceiling of any proxy on Node's HTTP
 * stack here); Airlock with no masking policy (auth, admission, judge, credential injection,
 * scrub of the credential, recording, audit); Airlock with JSON masking (detectors on every
 * string leaf, streamed). Reports median requests/s, p50/p99 latency, ratios and the serving
 * process's CPU time per request (µs of user+system: the upstream's for direct, the relay's, the
 * gateway's; less sensitive to other load on the machine than throughput); appends to
 * bench/results-http.md with `--record`. `BENCH_HTTP_PATHS=direct,relay,plain,masked` runs a
 * subset (e.g. only the gateway's paths under `node --cpu-prof dist/bench/http.js`: the gateway
 * runs in this process, so its profile is the gateway's).
 *
 *   npm run bench:http [-- --record]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../src/observability/logger.js";
import { parseConfig } from "../src/runtime/config.js";
import { startGateway } from "../src/runtime/gateway.js";
import { freePort } from "../test/harness/ports.js";
import { runProcess } from "../test/harness/redis.js";

const ROUNDS = Number(process.env["BENCH_HTTP_ROUNDS"] ?? 3);
const SECONDS = Number(process.env["BENCH_HTTP_SECONDS"] ?? 8);
const record = process.argv.includes("--record");

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

const UPSTREAM = `
const http = require("http");
const rows = Array.from({ length: 20 }, (_, i) => ({ id: i, name: "user " + i, email: "user" + i + "@example.com", plan: "pro", note: "plain text of row " + i }));
const body = JSON.stringify(rows);
http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  req.resume();
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.argv[1]), "127.0.0.1", () => console.log("listening"));
`;

const RELAY = `
const http = require("http");
const [port, target] = [Number(process.argv[1]), Number(process.argv[2])];
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 });
http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  const up = http.request({ host: "127.0.0.1", port: target, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
    res.writeHead(r.statusCode || 502, r.headers);
    r.pipe(res);
  });
  up.on("error", () => { res.writeHead(502); res.end(); });
  req.pipe(up);
}).listen(port, "127.0.0.1", () => console.log("listening"));
`;

function startNode(script: string, args: readonly string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", script, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    child.stdout.once("data", () => resolve(child));
    child.once("error", reject);
  });
}

interface Run {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU time (user+system) of the serving process per request, µs. */
  readonly cpuUs: number;
}

/** CPU time (user+system, µs) of a process: this one from process.cpuUsage, a child from /proc/PID/stat (clock ticks of 10 ms). */
function cpuOf(pid: number | undefined): number {
  if (pid === undefined) {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** wrk's latency distribution line: `50%  1.23ms`; in ms. */
function latency(out: string, pct: string): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([0-9.]+)(us|ms|s)`, "m").exec(out);
  if (m?.[1] === undefined) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

async function wrk(url: string, token: string | undefined, pid: number | undefined, seconds = SECONDS): Promise<Run> {
  const cpu0 = cpuOf(pid);
  const args = ["-t2", "-c16", `-d${seconds}s`, "--latency", ...(token === undefined ? [] : ["-H", `Authorization: Bearer ${token}`]), url];
  const r = await runProcess("wrk", args, { timeoutMs: (seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`wrk failed (is it installed? apt-get install -y wrk): ${r.stderr}${r.stdout}`);
  if (/Non-2xx or 3xx responses/.test(r.stdout)) throw new Error(`wrk saw errors on ${url}: ${r.stdout}`);
  const cpu = cpuOf(pid) - cpu0;
  const rps = /Requests\/sec:\s+([0-9.]+)/.exec(r.stdout)?.[1];
  const total = /^\s*([0-9]+) requests in/m.exec(r.stdout)?.[1];
  if (rps === undefined || total === undefined) throw new Error(`unexpected wrk output: ${r.stdout}`);
  return { rps: Number(rps), p50: latency(r.stdout, "50"), p99: latency(r.stdout, "99"), cpuUs: cpu / Math.max(1, Number(total)) };
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]?.toFixed(1) ?? "?";
  const upPort = await freePort();
  const upstream = await startNode(UPSTREAM, [String(upPort)]);
  const relayPort = await freePort();
  const relay = await startNode(RELAY, [String(relayPort), String(upPort)]);
  const work = mkdtempSync(join(tmpdir(), "airlock-bench-http-"));
  const gw = await startGateway(
    parseConfig({
      dataDir: join(work, "gw"),
      listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
      serviceAccounts: [{ name: "bench", groups: ["bench"] }],
      connections: [
        { name: "plain", type: "http", baseUrl: `http://127.0.0.1:${upPort}`, auth: { bearer: "bench-target-token-0123" }, groups: ["bench"] },
        { name: "masked", type: "http", baseUrl: `http://127.0.0.1:${upPort}`, auth: { bearer: "bench-target-token-0123" }, groups: ["bench"] },
      ],
      policies: [
        { name: "no-admin", match: { paths: ["/admin/*"] }, action: "deny" },
        { name: "pii", connections: ["masked"], action: "mask", detectors: ["email", "credit_card", "secret"] },
      ],
    }),
    { logger: createLogger({ level: "warn" }) },
  );
  try {
    const token = (await gw.tokens.mint("bench", { ttlMs: 3_600_000, createdBy: "bench" })).token;
    const gwPort = gw.addresses.http?.port ?? 0;
    const all: Record<string, { key: string; url: string; token?: string; pid: number | undefined }> = {
      direct: { key: "direct", url: `http://127.0.0.1:${upPort}/rows`, pid: upstream.pid },
      "Node relay": { key: "relay", url: `http://127.0.0.1:${relayPort}/rows`, pid: relay.pid },
      "Airlock, no masking": { key: "plain", url: `http://127.0.0.1:${gwPort}/plain/rows`, token, pid: undefined },
      "Airlock, JSON masking": { key: "masked", url: `http://127.0.0.1:${gwPort}/masked/rows`, token, pid: undefined },
    };
    const only = process.env["BENCH_HTTP_PATHS"]?.split(",");
    const paths = Object.fromEntries(Object.entries(all).filter(([, p]) => only === undefined || only.includes(p.key)));
    // Warm-up, not counted: the first seconds under load are JIT compilation and first-use caches
    // (a first round measured 1.5–2× the CPU per request of the next ones).
    for (const p of Object.values(paths)) await wrk(p.url, p.token, p.pid, 2);
    const results = new Map<string, Run[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, p] of Object.entries(paths)) {
        const r = await wrk(p.url, p.token, p.pid);
        results.set(name, [...(results.get(name) ?? []), r]);
        console.error(`round ${round + 1} ${name}: ${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${Math.round(r.cpuUs)} CPU-µs/req`);
      }
    }
    const m = (name: string, k: keyof Run): number => median((results.get(name) ?? []).map((r) => r[k]));
    const d = m("direct", "rps");
    const rel = m("Node relay", "rps");
    const ratio = (x: number, y: number): string => (y > 0 ? `${(x / y).toFixed(2)}×` : "–");
    const rows = Object.keys(paths).map((name) => {
      const rps = m(name, "rps");
      return `| ${name} | ${Math.round(rps).toLocaleString("en")} | ${m(name, "p50").toFixed(2)} | ${m(name, "p99").toFixed(2)} | ${ratio(rps, d)} | ${ratio(rps, rel)} | ${Math.round(m(name, "cpuUs"))} |`;
    });
    const report = [
      `## ${new Date().toISOString()} — wrk -t2 -c16 -d${SECONDS}s, GET of a 20-row JSON array, 2 s warm-up per path, ${ROUNDS} rounds (median), ${cpus().length} cores, load ${loadAtStart} at start`,
      "",
      "| path | req/s | p50 ms | p99 ms | ÷ direct | ÷ Node relay | CPU-µs/req |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ...rows,
      "",
    ].join("\n");
    console.log(report);
    if (record) appendFileSync(join(process.cwd(), "bench", "results-http.md"), `${report}\n`);
  } finally {
    relay.kill("SIGTERM");
    upstream.kill("SIGTERM");
    await gw.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
