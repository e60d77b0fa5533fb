/**
 * Micro-benchmark for the SQL classifier (not a test): microseconds per statement for
 * - normalize() alone (the cache key),
 * - classify() on every statement (parse with the WASM parser + walk),
 * - ClassificationCache.classify() on a stream where the same shapes recur with new literals
 *   (what a gateway sees: pgbench, ORMs, agents re-running queries).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/sql-classify.js [iterations]
 *
 * Timing assertions do not belong in tests; this prints numbers for bench/results.md.
 */
import { classify, ClassificationCache, initSqlParser, normalize } from "../src/policy/sql/index.js";

const iterations = Number(process.argv[2] ?? 20_000);

/** Statement shapes; `#` is replaced by a fresh number each time so no two texts repeat. */
const SHAPES: readonly (readonly [string, string])[] = [
  ["pgbench select-only", "SELECT abalance FROM pgbench_accounts WHERE aid = #;"],
  ["pgbench update", "UPDATE pgbench_accounts SET abalance = abalance + -# WHERE aid = #;"],
  ["pgbench insert", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (#, #, #, #, CURRENT_TIMESTAMP);"],
  [
    "app join",
    "SELECT c.id, c.email, o.total FROM customers c JOIN orders o ON o.customer_id = c.id " +
      "WHERE c.created_at > now() - interval '# days' AND o.status = 'paid' ORDER BY o.total DESC LIMIT #",
  ],
  [
    "CTE + subquery",
    "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '# hours') " +
      "SELECT customer_id, count(*) FROM recent WHERE total > # AND customer_id IN " +
      "(SELECT id FROM customers WHERE country = 'DE') GROUP BY customer_id",
  ],
];

function bench(label: string, fn: (i: number) => unknown): number {
  // warm up
  for (let i = 0; i < Math.min(2_000, iterations); i++) fn(i);
  const start = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < iterations; i++) {
    if (fn(i) !== undefined) sink++;
  }
  const micros = Number(process.hrtime.bigint() - start) / 1_000 / iterations;
  if (sink < 0) console.log(label); // keep the results alive
  return micros;
}

async function main(): Promise<void> {
  await initSqlParser();
  console.log(`SQL classifier, ${iterations} statements per row, µs per statement (Node ${process.version})`);
  console.log("| statement | chars | normalize | classify (uncached) | cache (hits) | speed-up |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [label, shape] of SHAPES) {
    const text = (i: number): string => shape.replace(/#/g, () => String((i * 7919) % 100_000));
    const texts = Array.from({ length: iterations }, (_, i) => text(i));
    const at = (i: number): string => texts[i] ?? "";
    const norm = bench(`${label} normalize`, (i) => normalize(at(i)));
    const full = bench(`${label} classify`, (i) => classify(at(i)));
    const cache = new ClassificationCache();
    const cached = bench(`${label} cached`, (i) => cache.classify(at(i)));
    const s = cache.stats();
    if (s.hits < iterations) throw new Error(`${label}: expected every measured call to hit, stats ${JSON.stringify(s)}`);
    console.log(
      `| ${label} | ${shape.length} | ${norm.toFixed(2)} | ${full.toFixed(2)} | ${cached.toFixed(2)} | ${(full / cached).toFixed(1)}× |`,
    );
    await cache.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
