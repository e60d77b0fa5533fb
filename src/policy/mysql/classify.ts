/**
 * MySQL/MariaDB classification: `classifyMysql*` return exactly the Classification of
 * src/policy/sql/facts.ts (one StatementFacts per statement of a possibly multi-statement
 * text), so the same policy keys (`operations`, `relations`, `columns`, `functions`,
 * `noWhere`, `statementRegex`) judge MySQL sessions. The parser is dt-sql-parser's MySQL
 * grammar (chosen by measurement: bench/mysql-parser-results.md), run in worker threads on the
 * data path (MysqlClassifier) and through a caller-given function elsewhere.
 *
 * Fail closed: text that any step cannot read is `ok: false` (the session refuses it when a
 * deny/approval policy applies, as for PostgreSQL): an unterminated literal or comment, a NUL,
 * text beyond the size or nesting bounds, a syntax error of the grammar, a parser fault or
 * timeout, a tree beyond the walk's bounds.
 *
 * sql_mode: ANSI_QUOTES and NO_BACKSLASH_ESCAPES make the server read the same bytes
 * differently (`"x"` an identifier rather than a string; `'a\'; DROP TABLE t; -- '` two
 * statements rather than one). Airlock does not know the target's global sql_mode, so a text
 * whose reading depends on them is classified under every combination and the facts of all
 * readings are reported together (an over-approximation). A reading other than the default that
 * the grammar rejects is ignored (a server in that mode rejects it too), unless `strictModes`
 * (the session changed sql_mode itself: then every reading must parse).
 */
import type { Classification, StatementFacts } from "../sql/facts.js";
import { estimateDepth } from "../sql/limits.js";
import { ParserPool, type ParserPoolOptions } from "../sql/parser-pool.js";
import { DEFAULT_LEX_MODE, lexMysql, type LexMode } from "./lexer.js";
import { isRule, kids } from "./names.js";
import type { MysqlRule, MysqlTreeOutcome } from "./tree.mjs";
import { MAX_WALK_NODES, WalkLimitError, walkMysqlStatement, type WalkedStatement } from "./walk.js";

/** Longest text classified (UTF-8 bytes); longer is refused. */
export const MAX_MYSQL_BYTES = 1024 * 1024;
/**
 * Deepest estimated nesting (brackets, CASE, chained operators: src/policy/sql/limits.ts's
 * estimate over the text with literals blanked); deeper is refused before the parser sees it.
 * ANTLR's recursive descent spends many stack frames per level: see the bench's hostile rows.
 */
export const MAX_MYSQL_DEPTH = 100;

const ALL_MODES: readonly LexMode[] = [
  DEFAULT_LEX_MODE,
  { ansiQuotes: true, noBackslashEscapes: false },
  { ansiQuotes: false, noBackslashEscapes: true },
  { ansiQuotes: true, noBackslashEscapes: true },
];

export interface MysqlClassifyOptions {
  /** Every reading must parse (the session changed sql_mode). Default false. */
  readonly strictModes?: boolean;
}

export interface DetailedMysqlClassification {
  readonly classification: Classification;
  /** False when a fact depends on a literal's value or effects are unknown (not reusable for another text of the same shape). */
  readonly cacheable: boolean;
}

/** Parses one text (already through the lexer) into the compact tree. */
export type MysqlParse = (text: string) => MysqlTreeOutcome | Promise<MysqlTreeOutcome>;

function refused(error: string, position?: number): DetailedMysqlClassification {
  return { classification: position === undefined ? { ok: false, error } : { ok: false, error, position }, cacheable: false };
}

/**
 * The text with each `?` parameter marker (COM_STMT_PREPARE's placeholders, outside literals and
 * comments: a `?` of the skeleton) read as the value `0`, which the grammar takes wherever a
 * marker may stand (`= ?`, `IN (?, ?)`, `LIMIT ?`). The server rejects a marker in a plain query,
 * so reading one as a value never hides anything there. When the parser's text is not the
 * skeleton's length (backslashes doubled for NO_BACKSLASH_ESCAPES) it is left as is (and a
 * marker in it fails to parse: refused).
 */
function withoutPlaceholders(parserText: string, skeleton: string): string {
  if (!skeleton.includes("?") || parserText.length !== skeleton.length) return parserText;
  let out = "";
  for (let i = 0; i < parserText.length; i++) {
    const ch = parserText.charAt(i);
    out += ch === "?" && skeleton.charAt(i) === "?" ? "0" : ch;
  }
  return out;
}

/**
 * MariaDB's `SHOW PACKAGE [BODY] STATUS …` (Oracle-mode packages; mariadb-dump --routines asks
 * it) is outside the MySQL grammar: it is read as `SHOW PROCEDURE STATUS …`, the same shape and
 * the same kind of answer (routine metadata).
 */
function packageStatus(text: string, skeleton: string): string {
  const m = /^(\s*show\s+)(package\s+body|package)(\s+status)(?![\w$])/i.exec(skeleton);
  if (m === null || text.length !== skeleton.length) return text;
  const head = m[1] ?? "";
  const word = m[2] ?? "";
  return `${text.slice(0, head.length)}PROCEDURE${text.slice(head.length + word.length)}`;
}

/** Readings of `sql` to classify: the default one first, then those the sql_mode flags make different. */
function readings(sql: string): { mode: LexMode; text: string; skeleton: string }[] | DetailedMysqlClassification {
  const first = lexMysql(sql, DEFAULT_LEX_MODE);
  if (!first.ok) return refused(first.error, first.offset + 1);
  const out = [{ mode: DEFAULT_LEX_MODE, text: packageStatus(withoutPlaceholders(first.parserText, first.skeleton), first.skeleton), skeleton: first.skeleton }];
  if (!first.modeSensitive) return out;
  for (const mode of ALL_MODES.slice(1)) {
    const r = lexMysql(sql, mode);
    // Unreadable under this mode: a server in it refuses the text (unterminated literal).
    if (!r.ok) continue;
    const text = packageStatus(withoutPlaceholders(r.parserText, r.skeleton), r.skeleton);
    if (out.some((o) => o.text === text)) continue;
    out.push({ mode, text, skeleton: r.skeleton });
  }
  return out;
}

function precheck(sql: string): DetailedMysqlClassification | undefined {
  if (sql.length * 3 > MAX_MYSQL_BYTES && Buffer.byteLength(sql, "utf8") > MAX_MYSQL_BYTES) return refused(`statement too long (limit ${MAX_MYSQL_BYTES} bytes)`);
  return undefined;
}

/** The statements of a parse tree (Program → SingleStatement*), each walked. */
function walkTree(tree: MysqlRule, budget: { left: number }): WalkedStatement[] {
  const out: WalkedStatement[] = [];
  for (const s of kids(tree)) {
    if (!isRule(s) || s[0] !== "SingleStatement") continue;
    const body = kids(s).find(isRule);
    if (body === undefined || body[0] === "EmptyStatement_") continue;
    out.push(walkMysqlStatement(body, budget));
  }
  return out;
}

function sameFacts(a: StatementFacts, b: StatementFacts): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Classifies `sql` with `parse` (a worker pool's or an in-thread parser). Synchronous when
 * `parse` is; the data path passes the pool's (never blocking the event loop on the grammar).
 */
export function classifyMysqlWith(parse: MysqlParse, sql: string, options: MysqlClassifyOptions = {}): DetailedMysqlClassification | Promise<DetailedMysqlClassification> {
  return run(parse, sql, options, true);
}

function run(parse: MysqlParse, sql: string, options: MysqlClassifyOptions, outer: boolean): DetailedMysqlClassification | Promise<DetailedMysqlClassification> {
  const early = precheck(sql);
  if (early !== undefined) return early;
  const rs = readings(sql);
  if (!Array.isArray(rs)) return rs;
  if (rs.every((r) => r.text.trim() === "")) return { classification: { ok: true, statements: [] }, cacheable: true };
  for (const r of rs) {
    if (estimateDepth(r.skeleton, MAX_MYSQL_DEPTH) > MAX_MYSQL_DEPTH) {
      return refused(`statement too deeply nested (limit ${MAX_MYSQL_DEPTH} levels of nesting or chained operators)`);
    }
  }
  const outcomes = rs.map((r) => parse(r.text));
  const finish = (done: readonly MysqlTreeOutcome[]): DetailedMysqlClassification | Promise<DetailedMysqlClassification> =>
    combine(parse, done, options, outer);
  if (outcomes.some((o) => o instanceof Promise)) return Promise.all(outcomes.map(async (o) => o)).then(finish);
  return finish(outcomes as MysqlTreeOutcome[]);
}

function combine(parse: MysqlParse, outcomes: readonly MysqlTreeOutcome[], options: MysqlClassifyOptions, outer: boolean): DetailedMysqlClassification | Promise<DetailedMysqlClassification> {
  const first = outcomes[0];
  if (first === undefined) return refused("nothing to classify");
  if (!first.ok) return refused(first.message);
  const statements: StatementFacts[] = [];
  const embedded: { index: number; name: string; sql: string }[] = [];
  let cacheable = true;
  const budget = { left: MAX_WALK_NODES };
  try {
    for (const o of outcomes) {
      if (!o.ok) {
        if (options.strictModes === true) return refused(`${o.message} (under another sql_mode reading of the text)`);
        continue;
      }
      for (const w of walkTree(o.tree, budget)) {
        if (w.literalDependent) cacheable = false;
        if (statements.some((s) => sameFacts(s, w.facts))) continue;
        if (w.embedded !== undefined) embedded.push({ index: statements.length, name: w.embedded.name, sql: w.embedded.sql });
        statements.push(w.facts);
      }
    }
  } catch (e) {
    if (e instanceof WalkLimitError || e instanceof RangeError) return refused("statement too complex");
    throw e;
  }
  if (embedded.length === 0) return { classification: { ok: true, statements }, cacheable };
  // PREPARE name FROM '…': the prepared text's facts are the PREPARE's (plus "prepare").
  const inner = embedded.map((e) =>
    outer ? run(parse, e.sql, options, false) : refused("PREPARE inside a prepared statement"),
  );
  const merge = (results: readonly DetailedMysqlClassification[]): DetailedMysqlClassification => {
    const out = [...statements];
    results.forEach((r, k) => {
      const e = embedded[k];
      const at = e === undefined ? undefined : out[e.index];
      if (e === undefined || at === undefined) return;
      out[e.index] = withPrepared(at, e.name, r.classification);
    });
    return { classification: { ok: true, statements: out }, cacheable: false };
  };
  if (inner.some((r) => r instanceof Promise)) return Promise.all(inner.map(async (r) => r)).then(merge);
  return merge(inner as DetailedMysqlClassification[]);
}

function withPrepared(prepare: StatementFacts, name: string, inner: Classification): StatementFacts {
  if (!inner.ok) return { ...prepare, unknownEffects: `PREPARE ${name}: its text cannot be classified (${inner.error})` };
  const [only, ...rest] = inner.statements;
  if (only === undefined || rest.length > 0) return { ...prepare, unknownEffects: `PREPARE ${name}: the prepared text must be exactly one statement` };
  if (only.prepares !== undefined || only.executes !== undefined) return { ...prepare, unknownEffects: `PREPARE ${name}: prepared statements cannot be nested` };
  const ops = new Set([...only.operations, ...prepare.operations]);
  return {
    ...only,
    operations: [...ops].sort(),
    prepares: name,
    ...(only.unknownEffects === undefined ? {} : { unknownEffects: only.unknownEffects }),
  };
}

/**
 * The data path's classifier: a pool of parser threads (src/policy/sql/parser-pool.ts with
 * parser-worker.mjs of this folder) and a small cache of classifications by exact text.
 */
export class MysqlClassifier {
  readonly #pool: ParserPool;
  readonly #cache = new Map<string, Classification>();
  readonly #maxEntries: number;

  constructor(options: Omit<ParserPoolOptions, "workerUrl" | "limits"> & { readonly cacheEntries?: number } = {}) {
    this.#pool = new ParserPool({
      // A cold shape can cost the grammar seconds (see parser-worker.mjs): a longer budget than
      // PostgreSQL's parser needs, still bounded; a worker over it is replaced.
      timeoutMs: 15_000,
      ...options,
      workerUrl: new URL("./parser-worker.mjs", import.meta.url),
      // Bytes are checked here too; depth is estimated by this module over the text with its
      // literals blanked (MySQL's literals are not PostgreSQL's).
      limits: { maxBytes: 4 * MAX_MYSQL_BYTES, maxDepth: Number.MAX_SAFE_INTEGER },
    });
    this.#maxEntries = options.cacheEntries ?? 5_000;
  }

  get pool(): ParserPool {
    return this.#pool;
  }

  /** Classifies `sql`: answered at once from the cache, else parsed by a worker. */
  classify(sql: string, options: MysqlClassifyOptions = {}): Classification | Promise<Classification> {
    const key = `${options.strictModes === true ? "1" : "0"}${sql}`;
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return hit;
    }
    const parse: MysqlParse = (text) =>
      this.#pool.parse(text).then((o): MysqlTreeOutcome => {
        if (o.ok) {
          const tree = o.tree;
          if (Array.isArray(tree) && typeof tree[0] === "string") return { ok: true, tree: tree as unknown as MysqlRule };
          return { ok: false, message: "the MySQL parser returned no tree" };
        }
        return { ok: false, message: o.message };
      });
    const store = (d: DetailedMysqlClassification): Classification => {
      if (d.cacheable && d.classification.ok && sql.length <= 16 * 1024 && this.#maxEntries > 0) {
        this.#cache.set(key, d.classification);
        while (this.#cache.size > this.#maxEntries) {
          const oldest = this.#cache.keys().next();
          if (oldest.done === true) break;
          this.#cache.delete(oldest.value);
        }
      }
      return d.classification;
    };
    const r = classifyMysqlWith(parse, sql, options);
    return r instanceof Promise ? r.then(store) : store(r);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
