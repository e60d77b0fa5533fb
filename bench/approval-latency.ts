/**
 * Approval latency: the time from an approver's `approve` API call to the held client receiving
 * its result, on loopback (goal: under 50 ms). Not a test.
 *
 *   npm run bench:approvals            # builds, then node dist/bench/approval-latency.js
 *   BENCH_APPROVAL_RUNS=200 npm run bench:approvals
 *
 * One throwaway PostgreSQL 15 (test harness), the gateway in this process (store: embedded
 * PGlite, audit log local), node-postgres as the held client, and fetch() as the approver.
 * Per run: the client sends `UPDATE … RETURNING` that a require_approval policy holds; once its
 * NoticeResponse names the approval id, t0 is taken, the approve call is made (t1 when the API
 * answers), and t2 when the client has its rows. Reported: approve→result (t2 − t0), the API
 * call alone (t1 − t0), and for comparison the same statement on a table no policy holds.
 * Results are prepended to bench/approval-results.md (newest first).
 *
 * Everything shares one event loop here (client, approver, gateway), so the numbers are an
 * upper bound for a gateway running as its own process.
 *
 * BENCH_APPROVAL_MODE (issue 18): `embedded` (default, as above); `postgres`: the same gateway on
 * a PostgreSQL store (harness database); `cross`: two gateways in this process on that store,
 * the client held on A and the approve call made to B, so the release travels B → store NOTIFY
 * → A (what a load-balanced pair does).
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import pino from "pino";
import { parseConfig } from "../src/runtime/config.js";
import { startGateway, type RunningGateway } from "../src/runtime/gateway.js";
import { startPostgres } from "../test/harness/postgres.js";

const RUNS = Number(process.env["BENCH_APPROVAL_RUNS"] ?? 100);
const WARMUP = 5;
const MODE = process.env["BENCH_APPROVAL_MODE"] ?? "embedded";
if (MODE !== "embedded" && MODE !== "postgres" && MODE !== "cross") throw new Error("BENCH_APPROVAL_MODE: embedded, postgres or cross");

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

function stats(xs: readonly number[]): { p50: number; p95: number; max: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95), max: s[s.length - 1] ?? Number.NaN, mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) };
}

const ms = (n: number): string => n.toFixed(2);

async function main(): Promise<void> {
  const server = await startPostgres({ users: [{ name: "app", password: "bench-password", auth: "scram-sha-256" }], databases: ["bench", "store"] });
  await server.psql("alter database store owner to app;", { database: "store" });
  const storeUrl = MODE === "embedded" ? undefined : server.url({ user: "app", password: "bench-password", database: "store" });
  await server.psql("create table held (id int primary key, v int); insert into held values (1, 0); create table free (id int primary key, v int); insert into free values (1, 0); alter table held owner to app; alter table free owner to app;", {
    database: "bench",
  });
  const dataDirs: string[] = [];
  const start = async (name: string, keysFrom?: string): Promise<RunningGateway> => {
    const dataDir = mkdtempSync(join(tmpdir(), `airlock-bench-approvals-${name}-`));
    dataDirs.push(dataDir);
    if (keysFrom !== undefined) cpSync(join(keysFrom, "keys"), join(dataDir, "keys"), { recursive: true });
    return startGateway(
      parseConfig({
        dataDir,
        ...(storeUrl === undefined ? {} : { store: { url: storeUrl }, instance: { id: `bench-${name}` } }),
        listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
        log: { level: "silent" },
        serviceAccounts: [
          { name: "agent", groups: ["agents"] },
          { name: "dba", groups: ["dba"] },
        ],
        connections: [{ name: "bench", type: "postgres", host: "127.0.0.1", port: server.port, database: "bench", user: "app", password: "bench-password", groups: ["agents"], sslmode: "disable" }],
        policies: [{ name: "held-writes", match: { operations: ["update"], relations: ["held"] }, action: "require_approval", approvers: ["dba"] }],
      }),
      { logger: pino({ level: "silent" }) },
    );
  };
  const gw = await start("a");
  const approver = MODE === "cross" ? await start("b", dataDirs[0]) : gw;
  const api = `http://127.0.0.1:${gw.addresses.api?.port ?? 0}`;
  const approverApi = `http://127.0.0.1:${approver.addresses.api?.port ?? 0}`;
  const mint = async (sa: string): Promise<string> => {
    const r = await fetch(`${api}/v1/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${gw.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ serviceAccount: sa, ttl: "2h" }),
    });
    return ((await r.json()) as { token: string }).token;
  };
  const agent = await mint("agent");
  const dba = await mint("dba");
  const c = new pg.Client({ host: "127.0.0.1", port: gw.addresses.postgres?.port ?? 0, database: "bench", user: "agent", password: agent });
  await c.connect();

  const approveToResult: number[] = [];
  const apiCall: number[] = [];
  const unheld: number[] = [];
  try {
    for (let i = 0; i < RUNS + WARMUP; i++) {
      const noticed = new Promise<string>((res) => {
        c.once("notice", (n: { message?: string }) => res(/approval (apr_\w+)/.exec(n.message ?? "")?.[1] ?? ""));
      });
      const q = c.query("update held set v = v + 1 where id = 1 returning v");
      const id = await noticed;
      const t0 = performance.now();
      const r = await fetch(`${approverApi}/v1/approvals/${id}/approve`, {
        method: "POST",
        headers: { authorization: `Bearer ${dba}`, "content-type": "application/json" },
        body: "{}",
      });
      const t1 = performance.now();
      if (r.status !== 200) throw new Error(`approve answered ${r.status}: ${await r.text()}`);
      await q;
      const t2 = performance.now();
      const f0 = performance.now();
      await c.query("update free set v = v + 1 where id = 1 returning v");
      const f1 = performance.now();
      if (i < WARMUP) continue;
      approveToResult.push(t2 - t0);
      apiCall.push(t1 - t0);
      unheld.push(f1 - f0);
    }
  } finally {
    await c.end();
    if (approver !== gw) await approver.close();
    await gw.close();
    await server.stop();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  }

  const a = stats(approveToResult);
  const b = stats(apiCall);
  const u = stats(unheld);
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  const section = [
    `## ${new Date().toISOString().replace(/\.\d+Z$/, "Z")} — ${RUNS} runs (after ${WARMUP} warm-up), mode ${MODE}`,
    "",
    `- Machine: ${cpus().length} cores (${cpu}); Node ${process.version}; PostgreSQL 15 (test harness); store: ${MODE === "embedded" ? "embedded" : "PostgreSQL 15 (harness)"}`,
    MODE === "cross"
      ? "- Two gateways (A holds the client, B takes the approve call; the release goes through the store's NOTIFY), approver (fetch) and held client (node-postgres), all in one process, loopback"
      : "- Gateway, approver (fetch) and held client (node-postgres) in one process, loopback",
    "",
    "| measure | p50 ms | p95 ms | max ms | mean ms |",
    "|---|---:|---:|---:|---:|",
    `| approve call → client has its rows | ${ms(a.p50)} | ${ms(a.p95)} | ${ms(a.max)} | ${ms(a.mean)} |`,
    `| approve API call alone | ${ms(b.p50)} | ${ms(b.p95)} | ${ms(b.max)} | ${ms(b.mean)} |`,
    `| same UPDATE, not held (baseline) | ${ms(u.p50)} | ${ms(u.p95)} | ${ms(u.max)} | ${ms(u.mean)} |`,
    "",
    `Goal: approve → result under 50 ms: ${a.p95 < 50 ? "met" : "NOT met"} at p95.`,
    "",
  ].join("\n");
  process.stdout.write(`${section}\n`);

  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const file = resolve(root, process.env["BENCH_RESULTS"] ?? join("bench", "approval-results.md"));
  const marker = "<!-- newest results below this line -->\n";
  const head = `# Approval latency results\n\nProduced by \`npm run bench:approvals\` (bench/approval-latency.ts). Newest first.\n\n${marker}`;
  const old = existsSync(file) ? readFileSync(file, "utf8") : head;
  const at = old.indexOf(marker);
  const next = at < 0 ? `${head}\n${section}\n${old}` : `${old.slice(0, at + marker.length)}\n${section}${old.slice(at + marker.length)}`;
  writeFileSync(file, next);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
