/**
 * Micro-benchmark of the policy evaluation on the hot path (not a test): one session of the
 * demo policy set (the one `npm run bench` runs with) judging pgbench's statements, each with a
 * fresh literal as pgbench sends them, the same way the engine asks (SessionEvaluator.evaluate).
 * Prints CPU µs per statement (process.cpuUsage, so a busy machine moves it less than wall
 * time) for the shapes of `pgbench -S` and of the TPC-B-like script.
 *
 *   npm run build && node dist/bench/judge-path.js [statements]
 *
 * For numbers that load does not move at all, count instructions (valgrind is on the machine):
 *   valgrind --tool=callgrind --smc-check=all --callgrind-out-file=/dev/null \
 *     node dist/bench/judge-path.js 2000      (and again with 4000: the difference / 2000)
 */
import { parseConfig } from "../src/runtime/config.js";
import { DEMO_POLICIES } from "../src/runtime/demo-policies.js";
import { PolicyEvaluator } from "../src/policy/policies.js";
import { ClassificationCache, initSqlParser } from "../src/policy/sql/index.js";
import type { DbQueryEvent } from "../src/core/events.js";
import type { SessionInfo } from "../src/core/session.js";

const n = Number(process.argv[2] ?? 300_000);

const SHAPES = [
  "SELECT abalance FROM pgbench_accounts WHERE aid = #;",
  "UPDATE pgbench_accounts SET abalance = abalance + # WHERE aid = #;",
  "UPDATE pgbench_tellers SET tbalance = tbalance + # WHERE tid = #;",
  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (#, #, #, #, CURRENT_TIMESTAMP);",
];

async function main(): Promise<void> {
  await initSqlParser();
  const config = parseConfig({
    connections: [{ name: "bench", type: "postgres", host: "127.0.0.1", database: "bench", user: "postgres", groups: ["bench"] }],
    policies: DEMO_POLICIES,
  });
  const evaluator = new PolicyEvaluator(config.policies, config.connections, new ClassificationCache());
  const session: SessionInfo = {
    id: "bench",
    clientProtocol: "postgres",
    targetType: "postgres",
    connection: "bench",
    principal: { kind: "service_account", id: "sa:bench", name: "bench", groups: ["bench"] },
    clientAddress: "127.0.0.1:1",
    startedAt: new Date(),
    attributes: {},
  };
  const s = evaluator.openSession(session);
  if (s === undefined) throw new Error("no policy applies to the bench session");
  let seq = 0;
  const judge = (shape: string, i: number): void => {
    const sql = shape.replaceAll("#", String((i * 7919) % 1_000_000));
    const event: DbQueryEvent = { type: "db.query", session, seq: ++seq, stage: "simple", sql };
    const d = s.evaluate(event);
    if (d instanceof Promise) throw new Error("the bench expects synchronous verdicts (no catalog here)");
  };
  for (const [label, shapes] of [
    ["pgbench -S (select-only)", SHAPES.slice(0, 1)],
    ["TPC-B-like statements", SHAPES],
  ] as const) {
    for (let i = 0; i < 20_000; i++) judge(shapes[i % shapes.length] ?? "", i);
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) judge(shapes[i % shapes.length] ?? "", i);
    const used = process.cpuUsage(before);
    console.log(`${label}: ${((used.user + used.system) / n).toFixed(2)} CPU µs per statement (${n} statements)`);
  }
}

void main();
