/**
 * SQL classification with the real PostgreSQL parser (libpg-query: PostgreSQL 18's own
 * grammar compiled to WASM). `classify(sql)` returns one StatementFacts per statement of a
 * (possibly multi-statement) query string, or `ok: false` when PostgreSQL's parser rejects it or
 * it exceeds a bound: callers deny what can't be classified (fail closed).
 *
 * The parser parses as a server with standard_conforming_strings = on and UTF-8 encoding
 * (PostgreSQL's defaults). A session that changes either would read later statements
 * differently from us, so the walker reports those SETs as unknown effects.
 */
import { hasSqlDetails, loadModule, parseSync } from "libpg-query";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import { isObj, list } from "./ast.js";
import type { Classification, ColumnAccess, QualifiedName, StatementFacts } from "./facts.js";
import { checkParseLimits, DEFAULT_PARSE_LIMITS, resetEmbeddedBudget } from "./limits.js";
import type { ParseOutcome, ParserPool } from "./parser-pool.js";
import { inheritanceLinks, statementLineage } from "./lineage.js";
import { MAX_WALK_NODES, walkStatement } from "./walk.js";

export { MAX_SQL_BYTES } from "./limits.js";

let ready: Promise<void> | undefined;
let loaded = false;

/** Loads the WASM parser. Await once at startup, before the first classify(). Idempotent. */
export function initSqlParser(): Promise<void> {
  ready ??= loadModule().then(
    () => {
      loaded = true;
    },
    (e: unknown) => {
      ready = undefined;
      throw new GatewayError("GW_INTERNAL", "the SQL parser could not be loaded", { cause: e });
    },
  );
  return ready;
}

export interface DetailedClassification {
  readonly classification: Classification;
  /** False when some fact was derived from a literal's value (SET values, regclass literals,
   * sequence/table names passed as text, EXPLAIN/VACUUM option values, …) or the effects are
   * unknown: such a classification must not be reused for another statement of the same shape. */
  readonly cacheable: boolean;
}

/** Classifies a query string. Synchronous; requires `await initSqlParser()` first. */
export function classify(sql: string): Classification {
  return classifyDetailed(sql).classification;
}

/**
 * Classifies in this thread, with the default limits (limits.ts) checked first. For tests,
 * startup and the small statements the data path has already bounded; the data path parses
 * what it has not cached with classifyDetailedWith() instead.
 */
export function classifyDetailed(sql: string): DetailedClassification {
  if (!loaded) throw new GatewayError("GW_INTERNAL", "the SQL parser is not initialised (await initSqlParser())");
  const early = precheck(sql);
  if (early !== undefined) return early;
  const over = checkParseLimits(sql, DEFAULT_PARSE_LIMITS);
  if (over !== undefined) return refused(over.message);
  let parsed: unknown;
  try {
    parsed = parseSync(sql);
  } catch (e) {
    if (hasSqlDetails(e) && e.sqlDetails !== undefined) {
      return syntaxError(sql, { ok: false, syntax: true, message: e.sqlDetails.message, cursorPosition: e.sqlDetails.cursorPosition });
    }
    // Not a syntax error: the WASM instance failed (stack, memory). Fail closed. Within the
    // limits this is not expected in this thread; the data path's threads are replaced instead.
    return refused("the SQL parser failed on this statement");
  }
  return classifyTree(parsed);
}

/**
 * Classifies with a parser thread of `pool` (its limits checked first, its time budget
 * applied): never blocks the event loop on the parser, and refuses (fail closed) whatever the
 * pool could not parse. The walk over the tree runs here, bounded as in classifyDetailed().
 */
export function classifyDetailedWith(pool: ParserPool, sql: string): DetailedClassification | Promise<DetailedClassification> {
  const early = precheck(sql);
  if (early !== undefined) return early;
  return pool.parse(sql).then((outcome) => {
    if (outcome.ok) return classifyTree(outcome.tree);
    return outcome.syntax ? syntaxError(sql, outcome) : refused(outcome.message);
  });
}

/** What is decided before any parser sees the text. */
function precheck(sql: string): DetailedClassification | undefined {
  // The C parser would stop reading at a NUL and judge only the text before it; PostgreSQL
  // never accepts one in query text (a Query message is a NUL-terminated string).
  if (sql.includes("\u0000")) return refused("statement contains a NUL character");
  // libpg_query refuses an empty string; PostgreSQL answers it with EmptyQueryResponse.
  if (sql === "") return { classification: { ok: true, statements: [] }, cacheable: true };
  return undefined;
}

function classifyTree(parsed: unknown): DetailedClassification {
  const stmts = isObj(parsed) ? list(parsed, "stmts") : [];
  const statements: StatementFacts[] = [];
  let cacheable = true;
  resetEmbeddedBudget();
  try {
    // One budget for the whole string: many small statements can't add up past the bound.
    const budget = { nodes: MAX_WALK_NODES };
    for (const raw of stmts) {
      if (!isObj(raw)) continue;
      const { facts, literalDependent } = walkStatement(raw.stmt, budget);
      if (literalDependent || facts.unknownEffects !== undefined) cacheable = false;
      const inherits = inheritanceLinks(raw.stmt);
      statements.push({ ...facts, lineage: statementLineage(raw.stmt, facts), ...(inherits.length > 0 ? { inherits } : {}) });
    }
  } catch (e) {
    if ((isGatewayError(e) && e.code === "GW_LIMIT") || e instanceof RangeError) {
      // RangeError: the JS stack ran out before our own depth bound did. Fail closed.
      return refused("statement too complex");
    }
    throw e;
  }
  return { classification: { ok: true, statements: throughNewViews(statements) }, cacheable };
}

function sameRelation(a: QualifiedName, b: QualifiedName): boolean {
  return a.name === b.name && (a.schema === undefined || b.schema === undefined || a.schema === b.schema);
}

/**
 * A view created earlier in the same message is not in the target's catalog yet, so the
 * gateway can't resolve it there: a later statement writing it (an updatable view writes its
 * base tables) is reported as writing the view's base relations too.
 */
function throughNewViews(statements: readonly StatementFacts[]): readonly StatementFacts[] {
  if (statements.length < 2 || !statements.some((f) => f.operations.includes("create_view"))) return statements;
  const views: { view: QualifiedName; base: readonly QualifiedName[] }[] = [];
  return statements.map((f) => {
    const base = new Map<string, QualifiedName>();
    for (const v of views) {
      if (!f.relationsWritten.some((w) => sameRelation(w, v.view))) continue;
      for (const b of v.base) base.set(`${b.schema ?? ""}\u0000${b.name}`, b);
    }
    if (f.operations.includes("create_view")) {
      for (const w of f.relationsWritten) views.push({ view: w, base: f.relationsRead });
    }
    if (base.size === 0) return f;
    const known = new Set(f.relationsWritten.map((w) => `${w.schema ?? ""}\u0000${w.name}`));
    const extra = [...base].filter(([k]) => !known.has(k)).map(([, b]) => b);
    const columns: ColumnAccess[] = [...f.columns];
    for (const b of extra) if (!columns.some((c) => c.relation !== undefined && c.column === "*" && c.access === "write" && sameRelation(c.relation, b))) columns.push({ relation: b, column: "*", access: "write" });
    return { ...f, relationsWritten: [...f.relationsWritten, ...extra], columns };
  });
}

function refused(error: string): DetailedClassification {
  return { classification: { ok: false, error }, cacheable: false };
}

function syntaxError(sql: string, e: Extract<ParseOutcome, { syntax: true }>): DetailedClassification {
  const pos = e.cursorPosition;
  // libpg_query's cursorPosition is a 0-based character offset; PostgreSQL's `P` is 1-based.
  const classification: Classification =
    pos !== undefined && Number.isInteger(pos) && pos >= 0 && pos <= sql.length
      ? { ok: false, error: e.message, position: pos + 1 }
      : { ok: false, error: e.message };
  return { classification, cacheable: false };
}
