/**
 * MySQL through the gateway vs direct vs a bare Node relay (bench/node-pipe.ts), side by side in
 * one run (issue 14), with Debian's `mariadb-slap` (mysqlslap) against the harness's MariaDB:
 * a masked point select and a 100-row range read, 8 clients, in alternating rounds
 * (`BENCH_MYSQL_ROUNDS`, default 3; `BENCH_MYSQL_QUERIES` queries per run, default 20000). The
 * gateway runs a demo-like policy set (a deny rule, a column masking rule and detectors),
 * recording and audit on. Reports median queries/s and ratios; appends to bench/mysql-results.md
 * with `--record`.
 *
 *   npm run bench:mysql [-- --record]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../src/observability/logger.js";
import { parseConfig } from "../src/runtime/config.js";
import { startGateway } from "../src/runtime/gateway.js";
import { startMariaDb } from "../test/harness/mariadb.js";
import { freePort } from "../test/harness/ports.js";
import { runProcess } from "../test/harness/redis.js";

const ROUNDS = Number(process.env["BENCH_MYSQL_ROUNDS"] ?? 3);
const QUERIES = Number(process.env["BENCH_MYSQL_QUERIES"] ?? 20_000);
const CLIENTS = 8;
const record = process.argv.includes("--record");

const WORKLOADS = {
  "point select, masked email": "SELECT id, name, email FROM customers WHERE id = 2",
  "100-row range read": "SELECT n FROM numbers WHERE n <= 100",
} as const;
type Workload = keyof typeof WORKLOADS;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

/** mariadb-slap --csv; queries per second of the run (all clients' queries over the average run time). */
async function slap(port: number, user: string, password: string, database: string, query: string): Promise<number> {
  const r = await runProcess(
    "mariadb-slap",
    [
      "--no-defaults",
      "-h127.0.0.1",
      `-P${port}`,
      `-u${user}`,
      `-p${password}`,
      `--create-schema=${database}`,
      "--no-drop",
      `--query=${query}`,
      `--concurrency=${CLIENTS}`,
      `--number-of-queries=${QUERIES}`,
      "--iterations=1",
      "--csv",
    ],
    { timeoutMs: 600_000 },
  );
  if (r.code !== 0) throw new Error(`mariadb-slap failed: ${r.stderr}${r.stdout}`);
  // `,mixed,AVG,MIN,MAX,CLIENTS,QUERIES_PER_CLIENT` (an empty first field: no engine named).
  const avg = Number(/(?:^|,)mixed,([0-9.]+),/m.exec(r.stdout)?.[1]);
  if (!(avg > 0)) throw new Error(`unexpected mariadb-slap output: ${r.stdout}${r.stderr}`);
  return QUERIES / avg;
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
  const db = await startMariaDb();
  const work = mkdtempSync(join(tmpdir(), "airlock-bench-mysql-"));
  let gw: Awaited<ReturnType<typeof startGateway>> | undefined;
  let relay: ChildProcess | undefined;
  try {
    gw = await startGateway(
      parseConfig({
        dataDir: join(work, "gw"),
        listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
        serviceAccounts: [{ name: "bench", groups: ["bench"] }],
        connections: [{ name: "shop", type: "mysql", host: "127.0.0.1", port: db.port, database: "shop", user: "airlock_native", password: db.password, groups: ["bench"], sslmode: "disable" }],
        policies: [
          { name: "no-drop", match: { operations: ["drop", "truncate"] }, action: "deny" },
          { name: "pii", action: "mask", columns: ["customers.card_number"], detectors: ["email", "phone"] },
        ],
      }),
      { logger: createLogger({ level: "warn" }) },
    );
    const relayPort = await freePort();
    relay = await startRelay(relayPort, db.port);
    const token = (await gw.tokens.mint("bench", { ttlMs: 3_600_000, createdBy: "bench" })).token;
    const paths = {
      direct: { port: db.port, user: "airlock_native", password: db.password },
      "Node relay": { port: relayPort, user: "airlock_native", password: db.password },
      Airlock: { port: gw.addresses.mysql?.port ?? 0, user: "bench", password: token },
    } as const;
    type PathName = keyof typeof paths;
    const results = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of Object.keys(WORKLOADS) as Workload[]) {
        for (const name of Object.keys(paths) as PathName[]) {
          const p = paths[name];
          const qps = await slap(p.port, p.user, p.password, "shop", WORKLOADS[w]);
          const key = `${w}|${name}`;
          results.set(key, [...(results.get(key) ?? []), qps]);
        }
      }
    }
    const rows: string[] = [];
    for (const w of Object.keys(WORKLOADS) as Workload[]) {
      const m = (name: PathName): number => median(results.get(`${w}|${name}`) ?? []);
      const d = m("direct");
      const r = m("Node relay");
      const a = m("Airlock");
      rows.push(`| ${w}, ${CLIENTS} clients | ${Math.round(d).toLocaleString("en")} | ${Math.round(r).toLocaleString("en")} | ${Math.round(a).toLocaleString("en")} | ${(a / d).toFixed(2)}× | ${(a / r).toFixed(2)}× |`);
    }
    const report = [
      `## ${new Date().toISOString()} — mariadb-slap, ${QUERIES} queries per run, ${ROUNDS} rounds (median), ${cpus().length} cores, load ${loadAtStart} at start`,
      "",
      "| workload | direct q/s | Node relay q/s | Airlock q/s | Airlock ÷ direct | Airlock ÷ relay |",
      "|---|---:|---:|---:|---:|---:|",
      ...rows,
      "",
    ].join("\n");
    console.log(report);
    if (record) appendFileSync(join(process.cwd(), "bench", "mysql-results.md"), `${report}\n`);
  } finally {
    relay?.kill("SIGTERM");
    await gw?.close();
    await db.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
