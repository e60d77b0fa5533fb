/**
 * dt-sql-parser's MySQL grammar (ANTLR) → a compact parse tree: each rule node is an array
 * `[name, ...children]` (name: the context class without "Context", e.g. "TableName",
 * "SimpleSelect"), each token a string (its text as written, quotes included).
 *
 * Plain JavaScript so that the parser worker (parser-worker.mjs) can load it without a
 * TypeScript loader; tree.d.mts types it for the TypeScript side (tests parse in-thread).
 *
 * Strategy: SLL prediction first (fast), full LL on a syntax error (ANTLR's two-stage parse:
 * SLL either agrees with LL or reports an error, never a different tree). Any lexer or parser
 * error rejects the text: the caller fails closed.
 *
 * The caller must have made dt-sql-parser loadable (its ESM build needs a resolve hook under
 * plain Node, see parser-worker.mjs and load.ts).
 */
const dt = await import("dt-sql-parser");
// antlr4ng's PredictionMode values (dt-sql-parser's runtime; not a dependency of ours).
const PredictionMode = { SLL: 0, LL: 1 };

const mysql = new dt.MySQL();

/** Longest statement text parsed here (characters); the pool checks bytes before. */
const MAX_CHARS = 1024 * 1024;
/** Most nodes a compact tree may have. */
export const MAX_TREE_NODES = 2_000_000;

function compact(ctx, budget) {
  if (--budget.left < 0) throw new RangeError("parse tree too large");
  if (ctx.symbol !== undefined) return ctx.symbol.text ?? "";
  const name = ctx.constructor.name.replace(/Context$/, "");
  const out = [name];
  for (const c of ctx.children ?? []) out.push(compact(c, budget));
  return out;
}

function attempt(sql, mode) {
  const errors = [];
  const listener = (e) => {
    errors.push(e);
  };
  const parser = mysql.createParser(sql, listener);
  parser.interpreter.predictionMode = mode;
  parser.buildParseTrees = true;
  const tree = parser.program();
  return { tree, errors };
}

/**
 * Parses `sql` (already through lexer.ts). Returns `{ ok: true, tree }` or
 * `{ ok: false, message, offset }` for a syntax error. Throws only on faults (stack, size).
 */
export function parseMysqlTree(sql) {
  if (sql.length > MAX_CHARS) throw new RangeError("statement too long");
  let r = attempt(sql, PredictionMode.SLL);
  if (r.errors.length > 0) r = attempt(sql, PredictionMode.LL);
  if (r.errors.length > 0) {
    const e = r.errors[0];
    const message = `syntax error near line ${e.startLine ?? "?"}, column ${e.startColumn ?? "?"}: ${String(e.message ?? "").slice(0, 200)}`;
    return { ok: false, message };
  }
  return { ok: true, tree: compact(r.tree, { left: MAX_TREE_NODES }) };
}
