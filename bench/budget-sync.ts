/**
 * What shared budgets cost (issue 21): the data path's charge per row, in memory vs shared
 * (shared only adds to a pending count), and one flush to the store (add + read back, one
 * statement per live counter in one transaction) on SQLite and on PostgreSQL 15. Not a test.
 *
 *   npm run build --silent && node dist/bench/budget-sync.js
 *
 * Results are prepended to bench/budget-sync-results.md (newest first).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BudgetLedger, type BudgetConfig } from "../src/policy/budgets.js";
import type { SessionInfo } from "../src/core/session.js";
import { openStore } from "../src/store/index.js";
import type { BudgetCounterStore } from "../src/store/budgets.js";
import { startPostgres } from "../test/harness/postgres.js";

const ROWS = 2_000_000;
const FLUSHES = 300;
const budget: BudgetConfig = { name: "bench", connections: ["*"], per: "principal", window: 3_600_000, rows: 1e12, bytes: 1e15, warnAt: 1 };

function info(i: number): SessionInfo {
  return {
    id: `s${i}`,
    clientProtocol: "postgres",
    targetType: "postgres",
    connection: "shop",
    principal: { kind: "service_account", id: `sa:p${i}`, name: `p${i}`, groups: [] },
    clientAddress: "127.0.0.1:1",
    startedAt: new Date(),
    attributes: {},
  };
}

function hotPath(store: BudgetCounterStore | undefined): number {
  const ledger = new BudgetLedger([budget], store === undefined ? {} : { store, flushMs: 3_600_000 });
  const s = ledger.open(info(0));
  if (s === undefined) throw new Error("no budget");
  for (let i = 0; i < 100_000; i++) s.row(100);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ROWS; i++) s.row(100);
  const ns = Number(process.hrtime.bigint() - t0) / ROWS;
  void ledger.close();
  return ns;
}

async function flushes(store: BudgetCounterStore, counters: number): Promise<{ avg: number; p99: number }> {
  const ledger = new BudgetLedger([budget], { store, flushMs: 3_600_000 });
  const sessions = Array.from({ length: counters }, (_, i) => ledger.open(info(i)));
  const times: number[] = [];
  for (let f = 0; f < FLUSHES; f++) {
    for (const s of sessions) s?.row(100);
    const t0 = performance.now();
    await ledger.flush();
    times.push(performance.now() - t0);
  }
  await ledger.close();
  times.sort((x, y) => x - y);
  return { avg: times.reduce((a, b) => a + b, 0) / times.length, p99: times[Math.floor(times.length * 0.99)] ?? 0 };
}

const sqlite = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "airlock-bench-budgets-")), embedded: "sqlite" });
await sqlite.migrate();
const pgServer = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["store"] });
const pgStore = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "airlock-bench-budgets-pg-")), url: pgServer.url({ user: "app", password: "app-password", database: "store" }) });
await pgStore.migrate();
try {
  const memNs = hotPath(undefined);
  const sharedNs = hotPath(sqlite.budgets);
  const lines = [`## ${new Date().toISOString()}`, "", `data path, one row charged (rows + bytes), ${ROWS} rows: in memory ${memNs.toFixed(0)} ns, shared ${sharedNs.toFixed(0)} ns`, "", "| store | live counters | flush avg ms | flush p99 ms |", "|---|---|---|---|"];
  for (const [name, st] of [["sqlite", sqlite.budgets], ["postgres 15", pgStore.budgets]] as const) {
    if (st === undefined) continue;
    for (const n of [1, 10, 100]) {
      const r = await flushes(st, n);
      lines.push(`| ${name} | ${n} | ${r.avg.toFixed(2)} | ${r.p99.toFixed(2)} |`);
    }
  }
  lines.push("", `A flush runs every 200 ms whatever the traffic (5 per second per gateway); it is off the data path.`, "");
  const out = lines.join("\n");
  process.stdout.write(out + "\n");
  const here = dirname(fileURLToPath(import.meta.url));
  const file = resolve(here, "..", "..", "bench", "budget-sync-results.md");
  const old = existsSync(file) ? readFileSync(file, "utf8").replace(/^# .*\n\n/, "") : "";
  writeFileSync(file, `# Shared budget counters: cost\n\n${out}\n${old}`);
} finally {
  await sqlite.close();
  await pgStore.close();
  await pgServer.stop();
}
