/**
 * Bounds on the work handed to the WASM parser, checked BEFORE the text reaches it.
 *
 * Why: libpg_query recurses over the parse tree (raw_expression_tree_walker, the JSON output),
 * and in WASM those frames live on the V8 stack. A left-deep tree (`select 1+1+1+…`, about 10k
 * operators) or deeply nested subqueries (about 3k) overflow it; the overflow unwinds through
 * the WASM code without running its cleanup, leaking the parser's memory context (~21 MB per
 * 300 KB statement) and its shadow stack, so a few dozen such statements poison the instance
 * for every session. A linear lexical scan estimates the tree depth cheaply (~1 ms per 100 KB)
 * and refuses with a message that names the limit; the parser workers (parser-pool.ts) are the
 * backstop for shapes the estimate misses.
 *
 * The estimate (`depth`) is conservative by construction:
 * - every bracket level (`(`, `[`, CASE … END) adds one;
 * - within a level, every operator token (symbolic operators, `::`, and the keyword operators
 *   NOT, IS, LIKE, IN, BETWEEN, COLLATE, AT, OPERATOR, JOIN, UNION, …) adds one, because
 *   PostgreSQL's grammar builds binary operator chains as left-deep trees;
 * - list separators reset the count of their level: `,` and `;`, AND/OR (the grammar flattens
 *   `a AND b AND c` into one BoolExpr), and WHEN/THEN/ELSE (a CASE's branches are a list), so
 *   long IN lists, VALUES lists, WHERE clauses of many conditions and CASEs of thousands of
 *   branches (Django's bulk_update) stay shallow.
 * Literals, quoted identifiers and comments are skipped, as the lexer would.
 */
import { parseSync } from "libpg-query";
import { GatewayError } from "../../core/errors.js";
import { skipBlockComment } from "./lexical.js";

/** Longest statement text parsed (UTF-8 bytes); longer is refused. */
export const MAX_SQL_BYTES = 1024 * 1024;
/** Deepest estimated nesting parsed (see the module comment); deeper is refused. */
export const MAX_SQL_DEPTH = 1_000;

export interface ParseLimits {
  /** UTF-8 bytes. */
  readonly maxBytes: number;
  /** Estimated parse-tree depth. */
  readonly maxDepth: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxBytes: MAX_SQL_BYTES, maxDepth: MAX_SQL_DEPTH };

/** Refusal messages: stable texts a client sees (the codes stay those of a refused statement). */
export function tooLongMessage(limits: ParseLimits): string {
  return `statement too long (limit ${limits.maxBytes} bytes)`;
}

export function tooDeepMessage(limits: ParseLimits): string {
  return `statement too deeply nested (limit ${limits.maxDepth} levels of nesting or chained operators)`;
}

export interface LimitViolation {
  readonly limit: "bytes" | "depth";
  readonly message: string;
}

// Keyword operators that build a deeper tree when chained (a_expr productions in gram.y and
// the left-deep JOIN and set-operation trees).
const CHAINING_WORDS = ["not", "is", "isnull", "notnull", "like", "ilike", "similar", "between", "in", "collate", "at", "operator", "overlaps", "escape", "join", "union", "intersect", "except"];
// Words after which the following expression is a new element of a flat list.
const SEPARATING_WORDS = ["and", "or", "when", "then", "else"];

/** Keywords by length, to compare a word in place (no substring, no allocation per word). */
function byLength(words: readonly string[]): readonly (readonly string[])[] {
  const out: string[][] = [];
  for (const w of words) (out[w.length] ??= []).push(w);
  return out;
}
const CHAINING = byLength(CHAINING_WORDS);
const SEPARATING = byLength(SEPARATING_WORDS);
const CASE = byLength(["case"]);
const END = byLength(["end"]);

/** Whether s[i, i+len) is one of `words` (lower-case ASCII), ignoring ASCII case. */
function isWord(s: string, i: number, len: number, words: readonly (readonly string[])[]): boolean {
  const candidates = words[len];
  if (candidates === undefined) return false;
  next: for (const w of candidates) {
    for (let k = 0; k < len; k++) {
      const c = s.charCodeAt(i + k);
      // Only ASCII letters fold; `| 32` maps A-Z to a-z and leaves a-z alone.
      const lower = c >= 65 && c <= 90 ? c | 32 : c;
      if (lower !== w.charCodeAt(k)) continue next;
    }
    return true;
  }
  return false;
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function isWordStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

function isWordPart(c: number): boolean {
  return isWordStart(c) || (c >= 48 && c <= 57) || c === 36;
}

/** PostgreSQL's operator characters (scan.l `op_chars`). */
function isOpChar(c: number): boolean {
  // ~ ! @ # ^ & | ` ? + - * / % < > =
  return (
    c === 126 || c === 33 || c === 64 || c === 35 || c === 94 || c === 38 || c === 124 || c === 96 ||
    c === 63 || c === 43 || c === 45 || c === 42 || c === 47 || c === 37 || c === 60 || c === 62 || c === 61
  );
}

/** End of a `'…'` literal body starting after the quote; `backslash`: E'…' escapes. Unterminated: n. */
function skipQuoted(s: string, from: number, quote: number, backslash: boolean): number {
  const n = s.length;
  let j = from;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (backslash && c === 92) j += 2;
    else if (c === quote) {
      if (s.charCodeAt(j + 1) === quote) j += 2;
      else return j + 1;
    } else j++;
  }
  return n;
}


/**
 * The estimated nesting depth of `sql` (see the module comment), stopping early once it
 * exceeds `stopAbove`. Linear in the length of the text.
 */
export function estimateDepth(sql: string, stopAbove = Infinity): number {
  const n = sql.length;
  // Per open level: its base depth, the operators counted in its current list element, and
  // whether it was opened by CASE (closed by END) rather than a bracket.
  const base: number[] = [0];
  const ops: number[] = [0];
  const isCase: boolean[] = [false];
  let max = 0;
  const bump = (): boolean => {
    const top = ops.length - 1;
    ops[top] = (ops[top] ?? 0) + 1;
    const d = (base[top] ?? 0) + (ops[top] ?? 0);
    if (d > max) max = d;
    return max > stopAbove;
  };
  const open = (caseLevel: boolean): boolean => {
    const top = ops.length - 1;
    const d = (base[top] ?? 0) + (ops[top] ?? 0) + 1;
    base.push(d);
    ops.push(0);
    isCase.push(caseLevel);
    if (d > max) max = d;
    return max > stopAbove;
  };
  const close = (caseLevel: boolean): void => {
    // An unmatched closer is a syntax error the parser reports; never pop the outermost level.
    if (ops.length > 1 && isCase[isCase.length - 1] === caseLevel) {
      base.pop();
      ops.pop();
      isCase.pop();
    }
  };
  const reset = (): void => {
    ops[ops.length - 1] = 0;
  };
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (isSpace(c)) {
      i++;
    } else if (c === 45 && next === 45) {
      const nl = sql.indexOf("\n", i + 2);
      i = nl < 0 ? n : nl + 1;
    } else if (c === 47 && next === 42) {
      const end = skipBlockComment(sql, i);
      i = end < 0 ? sql.length : end;
    } else if (c === 39) {
      i = skipQuoted(sql, i + 1, 39, false);
    } else if (c === 34) {
      i = skipQuoted(sql, i + 1, 34, false);
    } else if ((c === 69 || c === 101) && next === 39) {
      i = skipQuoted(sql, i + 2, 39, true);
    } else if (c === 36 && !(next >= 48 && next <= 57)) {
      // $tag$ … $tag$ (a lone `$` is a syntax error the parser reports)
      let j = i + 1;
      while (j < n && isWordPart(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++;
      if (sql.charCodeAt(j) === 36) {
        const tag = sql.slice(i, j + 1);
        const end = sql.indexOf(tag, j + 1);
        i = end < 0 ? n : end + tag.length;
      } else i = j;
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordPart(sql.charCodeAt(j))) j++;
      const len = j - i;
      const at = i;
      i = j;
      if (isWord(sql, at, len, CASE)) {
        if (open(true)) return max;
      } else if (isWord(sql, at, len, END)) close(true);
      else if (isWord(sql, at, len, SEPARATING)) reset();
      else if (isWord(sql, at, len, CHAINING) && bump()) return max;
    } else if (c === 40 || c === 91) {
      i++;
      if (open(false)) return max;
    } else if (c === 41 || c === 93) {
      i++;
      close(false);
    } else if (c === 44 || c === 59) {
      i++;
      reset();
    } else if (isOpChar(c) || (c === 58 && next === 58)) {
      let j = i + 1;
      while (j < n && (isOpChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 58)) j++;
      i = j;
      if (bump()) return max;
    } else {
      i++; // digits, `$1`, `.`, `:` and the rest add no depth
    }
  }
  return max;
}

/** The first limit `sql` exceeds, or undefined. */
export function checkParseLimits(sql: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): LimitViolation | undefined {
  // Cheap test first: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (sql.length * 3 > limits.maxBytes && Buffer.byteLength(sql, "utf8") > limits.maxBytes) {
    return { limit: "bytes", message: tooLongMessage(limits) };
  }
  if (estimateDepth(sql, limits.maxDepth) > limits.maxDepth) return { limit: "depth", message: tooDeepMessage(limits) };
  return undefined;
}

/**
 * Limits for SQL text found inside a statement (a constant passed to query_to_xml(), dblink(),
 * …): parsed in this thread, while the walker may already be deep in its own recursion.
 */
export const EMBEDDED_PARSE_LIMITS: ParseLimits = { maxBytes: 128 * 1024, maxDepth: 200 };

// What embedded SQL may still cost the event loop in the current classification: a statement
// that the parser threads parsed can carry many such constants, and each is parsed here.
let embeddedBytesLeft = EMBEDDED_PARSE_LIMITS.maxBytes;

/** Starts the embedded-SQL budget of one classification (classify.ts, before each walk). */
export function resetEmbeddedBudget(): void {
  embeddedBytesLeft = EMBEDDED_PARSE_LIMITS.maxBytes;
}

/**
 * Parses SQL text found inside a statement, in this thread: within EMBEDDED_PARSE_LIMITS, and
 * within what is left of the budget of the classification under way (all of its embedded
 * texts together). Throws GatewayError GW_LIMIT beyond them (the walker reports the text as
 * unparsable: fail closed), SqlError for a syntax error.
 */
export function parseEmbeddedSync(sql: string): unknown {
  const bytes = Buffer.byteLength(sql, "utf8");
  if (bytes > embeddedBytesLeft) throw new GatewayError("GW_LIMIT", "embedded SQL beyond the budget of one statement");
  embeddedBytesLeft -= bytes;
  return parseSyncBounded(sql, EMBEDDED_PARSE_LIMITS);
}

/**
 * libpg-query's parseSync in this thread, after the limits: throws GatewayError GW_LIMIT (with
 * the limit's message) instead of handing the parser text beyond them; otherwise as parseSync
 * (its SqlError for a syntax error).
 */
export function parseSyncBounded(sql: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): unknown {
  const over = checkParseLimits(sql, limits);
  if (over !== undefined) throw new GatewayError("GW_LIMIT", over.message);
  return parseSync(sql);
}
