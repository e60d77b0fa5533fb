/**
 * The parser threads of issue 12 (not a test): what they cost and what they withstand.
 *
 *   npx tsc -p tsconfig.build.json && node scripts/copy-assets.mjs && node dist/bench/parser-pool.js
 *
 * 1. cache hits: ClassificationCache.classify() (in-thread) vs classifyBounded() with a pool,
 *    on recurring shapes with fresh literals (the hot path; both must cost the same);
 * 2. a cache miss: classifyDetailed() in this thread vs classifyDetailedWith(pool), one at a
 *    time (latency) and with 8 outstanding (throughput);
 * 3. the attack: 300 KB `select 1+1+…` statements given to libpg-query in this thread with no
 *    bound (what the gateway did before), to the pool with the bounds off (each overflows a
 *    worker's stack; the worker is replaced), and to the pool with the bounds on.
 */
import { loadModule, parseSync } from "libpg-query";
import { ClassificationCache, classifyDetailed, classifyDetailedWith, initSqlParser, ParserPool } from "../src/policy/sql/index.js";

const SHAPES = [
  "SELECT abalance FROM pgbench_accounts WHERE aid = #;",
  "UPDATE pgbench_accounts SET abalance = abalance + -# WHERE aid = #;",
  "SELECT c.id, c.email, o.total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.created_at > now() - interval '# days' AND o.status = 'paid' ORDER BY o.total DESC LIMIT #",
];
const text = (i: number): string => SHAPES[i % SHAPES.length]?.replaceAll("#", String(i)) ?? "";
/** A new shape every time (a new column alias): never a cache hit. */
const fresh = (i: number): string => `SELECT abalance AS a${i} FROM pgbench_accounts WHERE aid = ${i}`;

function usPer(n: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(n, 2_000); i++) fn(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t) / 1e3 / n;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
}

const mb = (): number => Math.round(process.memoryUsage().rss / 1048576);

await initSqlParser();
await loadModule();
const pool = new ParserPool();
await pool.ready();

// 1. hot path
const plain = new ClassificationCache();
const pooled = new ClassificationCache(undefined, undefined, pool);
for (let i = 0; i < SHAPES.length; i++) {
  plain.classify(text(i));
  await pooled.classifyBounded(text(i));
}
// alternating rounds, best of each: the machine's other load moves single runs by ±20%
let hitPlain = Infinity;
let hitPooled = Infinity;
for (let round = 0; round < 5; round++) {
  hitPlain = Math.min(hitPlain, usPer(100_000, (i) => plain.classify(text(i))));
  hitPooled = Math.min(
    hitPooled,
    usPer(100_000, (i) => {
      const c = pooled.classifyBounded(text(i));
      if (c instanceof Promise) throw new Error("not a hit");
      return c;
    }),
  );
}
console.log(`cache hit: classify() ${hitPlain.toFixed(2)} µs, classifyBounded() ${hitPooled.toFixed(2)} µs`);

// 2. a miss
const inThread: number[] = [];
const viaPool: number[] = [];
for (let i = 0; i < 3_000; i++) {
  let t = process.hrtime.bigint();
  classifyDetailed(fresh(i));
  inThread.push(Number(process.hrtime.bigint() - t) / 1e3);
  t = process.hrtime.bigint();
  await classifyDetailedWith(pool, fresh(i + 1_000_000));
  viaPool.push(Number(process.hrtime.bigint() - t) / 1e3);
}
const tail = (xs: number[]): string => `p50 ${pct(xs, 50).toFixed(0)} µs, p99 ${pct(xs, 99).toFixed(0)} µs`;
console.log(`miss, one at a time: in-thread ${tail(inThread.slice(500))}; pool ${tail(viaPool.slice(500))}`);
const N = 20_000;
let t0 = performance.now();
for (let i = 0; i < N; i++) classifyDetailed(fresh(i + 2_000_000));
const inThreadRate = N / ((performance.now() - t0) / 1000);
t0 = performance.now();
const elu0 = performance.eventLoopUtilization();
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < N) await classifyDetailedWith(pool, fresh(3_000_000 + next++));
  }),
);
const poolRate = N / ((performance.now() - t0) / 1000);
const elu = performance.eventLoopUtilization(elu0);
console.log(
  `miss throughput: in-thread ${inThreadRate.toFixed(0)}/s (${(1e6 / inThreadRate).toFixed(0)} µs of event loop each); ` +
    `pool, 8 outstanding ${poolRate.toFixed(0)}/s (${((elu.active * 1000) / N).toFixed(0)} µs of event loop each, utilisation ${(elu.utilization * 100).toFixed(0)}%)`,
);

// 3. the attack
const attack = "select 1" + "+1".repeat(150_000);
const ATTACKS = 30;
let rss = mb();
t0 = performance.now();
let overflowed = 0;
for (let k = 0; k < ATTACKS; k++) {
  try {
    parseSync(attack);
  } catch (e) {
    if (e instanceof RangeError) overflowed++;
  }
}
const rawMs = (performance.now() - t0) / ATTACKS;
let after: string;
try {
  const t = performance.now();
  parseSync("select 1");
  after = `select 1 still parses (${(performance.now() - t).toFixed(2)} ms)`;
} catch (e) {
  after = `select 1 fails: ${e instanceof Error ? e.message : String(e)}`;
}
console.log(`unbounded, in-thread: ${overflowed}/${ATTACKS} stack overflows, ${rawMs.toFixed(0)} ms each, RSS +${mb() - rss} MB; ${after}`);

const unbounded = new ParserPool({ limits: { maxBytes: 1 << 20, maxDepth: Number.MAX_SAFE_INTEGER } });
await unbounded.ready();
rss = mb();
t0 = performance.now();
// one attacker at a time (a session waits for each answer), as through the gateway
const outcomes = [];
for (let k = 0; k < ATTACKS; k++) outcomes.push(await unbounded.parse(attack));
const poolMs = performance.now() - t0;
const ok = (await classifyDetailedWith(unbounded, "SELECT 1")).classification.ok;
const reasons = new Map<string, number>();
for (const o of outcomes) if (!o.ok) reasons.set(o.message, (reasons.get(o.message) ?? 0) + 1);
console.log(
  `bounds off, pool: ${ATTACKS} attacks in ${poolMs.toFixed(0)} ms (${(ATTACKS / (poolMs / 1000)).toFixed(1)}/s), refused: ${JSON.stringify(Object.fromEntries(reasons))}; ` +
    `workers replaced ${unbounded.stats().replaced}, RSS +${mb() - rss} MB; select 1 ok: ${ok}`,
);
await unbounded.close();

t0 = performance.now();
const K = 500;
for (let k = 0; k < K; k++) await classifyDetailedWith(pool, attack);
const boundedMs = performance.now() - t0;
console.log(`bounds on, pool: ${K} refused at ${(K / (boundedMs / 1000)).toFixed(0)}/s (${((boundedMs / K) * 1000).toFixed(0)} µs each, in this thread)`);
await pool.close();
