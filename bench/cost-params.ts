/**
 * What a cost rule costs a parameterised statement (issue 21): the latency of one
 * `client.query(text, [value])` (node-postgres, extended protocol) through a gateway with an
 * `estimatedRows` rule, against the same gateway setup without one, and direct. Not a test.
 *
 *   npm run build --silent && node dist/bench/cost-params.js
 *   BENCH_COST_RUNS=1000 node dist/bench/cost-params.js
 *
 * One throwaway PostgreSQL 15 (test harness) and two gateways in this process (test harness):
 * `plain` (an allow-all policy set) and `cost` (`match: { estimatedRows: { gt: 1e5 } }`, deny).
 * Each query is an index lookup the rule allows. With the rule, every Bind is estimated on the
 * gateway's side session (EXPLAIN with the Bind's values) unless the same values were estimated
 * within 60 s: `new values` uses a different id each run (every Bind estimated), `same values`
 * repeats one id (answered from the cache). Runs are interleaved across paths; the median and
 * p95 of each are printed. Everything shares one event loop, so the numbers are an upper bound.
 */
import { cpus, loadavg } from "node:os";
import pg from "pg";
import { startPostgres } from "../test/harness/postgres.js";
import { startTestGateway, type TestGateway } from "../test/harness/gateway.js";

const RUNS = Number(process.env["BENCH_COST_RUNS"] ?? 500);
const WARMUP = 50;
const TEXT = "select v from a where id = $1";

function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

async function main(): Promise<void> {
  const server = await startPostgres({ users: [{ name: "app", password: "bench-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table a (id int primary key, v text); insert into a select g, 'a' || g from generate_series(1, 100000) g; analyze a; alter table a owner to app;`,
    { database: "shop" },
  );
  const connection = { name: "shop", type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "bench-password", groups: ["agents"], sslmode: "disable" as const };
  const gateways: Record<string, TestGateway> = {
    plain: await startTestGateway({ serviceAccounts: [{ name: "agent", groups: ["agents"] }], connections: [connection], policies: [{ name: "all", action: "allow" }] }),
    cost: await startTestGateway({
      serviceAccounts: [{ name: "agent", groups: ["agents"] }],
      connections: [connection],
      policies: [{ name: "no-runaway", match: { estimatedRows: { gt: 1e5 } }, action: "deny", message: "too many rows" }],
    }),
  };
  const clients: Record<string, pg.Client> = {};
  for (const [name, t] of Object.entries(gateways)) {
    const token = await t.mint("agent", "1h");
    clients[name] = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
  }
  clients["direct"] = new pg.Client({ host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "bench-password" });
  for (const c of Object.values(clients)) await c.connect();
  const paths: { name: string; client: pg.Client; value: (i: number) => number }[] = [
    { name: "direct", client: clients["direct"], value: (i) => (i % 100_000) + 1 },
    { name: "gateway, no cost rule", client: clients["plain"] as pg.Client, value: (i) => (i % 100_000) + 1 },
    { name: "gateway, cost rule, new values", client: clients["cost"] as pg.Client, value: (i) => ((i * 7919) % 100_000) + 1 },
    { name: "gateway, cost rule, same values", client: clients["cost"] as pg.Client, value: () => 42 },
  ];
  const times = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const p of paths) {
      // New values never repeat within a run (7919 is prime to 100000); warm-up uses others.
      const v = p.value(i + (i < WARMUP ? 50_000 : 0));
      const t0 = process.hrtime.bigint();
      const r = await p.client.query(TEXT, [v]);
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.rows.length !== 1) throw new Error(`${p.name}: expected one row`);
      if (i >= WARMUP) times.get(p.name)?.push(dt);
    }
  }
  console.log(`cost rule on a parameterised query: ${RUNS} runs per path (after ${WARMUP} warm-up), ${cpus().length} cores, load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const base = percentile([...(times.get("gateway, no cost rule") ?? [])].sort((a, b) => a - b), 50);
  for (const p of paths) {
    const s = [...(times.get(p.name) ?? [])].sort((a, b) => a - b);
    const p50 = percentile(s, 50);
    console.log(`| ${p.name} | ${p50.toFixed(3)} ms | ${percentile(s, 95).toFixed(3)} ms | ${p.name.startsWith("gateway, cost") ? `+${(p50 - base).toFixed(3)} ms` : ""} |`);
  }
  for (const c of Object.values(clients)) await c.end();
  for (const t of Object.values(gateways)) await t.stop();
  await server.stop();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
