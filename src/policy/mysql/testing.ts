/**
 * Test support: one MysqlClassifier (worker threads running the real grammar) shared by a test
 * file, and helpers over its facts.
 */
import type { Classification, StatementFacts } from "../sql/facts.js";
import { MysqlClassifier, type MysqlClassifyOptions } from "./classify.js";

let shared: MysqlClassifier | undefined;

export function testClassifier(): MysqlClassifier {
  // Generous budget: the first parses warm ANTLR's caches on a machine shared with other tests.
  shared ??= new MysqlClassifier({ size: 1, timeoutMs: 60_000, maxQueue: 10_000, cacheEntries: 0 });
  return shared;
}

export async function closeTestClassifier(): Promise<void> {
  const c = shared;
  shared = undefined;
  await c?.close();
}

export async function classifyMysql(sql: string, options?: MysqlClassifyOptions): Promise<Classification> {
  return testClassifier().classify(sql, options);
}

/** The facts of a text that must classify; throws with the parser's message otherwise. */
export async function facts(sql: string, options?: MysqlClassifyOptions): Promise<readonly StatementFacts[]> {
  const c = await classifyMysql(sql, options);
  if (!c.ok) throw new Error(`not classified: ${c.error}`);
  return c.statements;
}

/** The one statement of a text. */
export async function one(sql: string): Promise<StatementFacts> {
  const s = await facts(sql);
  if (s.length !== 1 || s[0] === undefined) throw new Error(`expected one statement, got ${s.length}`);
  return s[0];
}

export function rel(r: { schema?: string; name: string }): string {
  return r.schema === undefined ? r.name : `${r.schema}.${r.name}`;
}
