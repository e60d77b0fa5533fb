/**
 * The hot-path cache key: a hand-written lexical normaliser (no WASM), and the LRU cache of
 * classifications keyed by it.
 *
 * normalize(sql) mirrors PostgreSQL's lexer (src/backend/parser/scan.l, PostgreSQL 16+ rules,
 * standard_conforming_strings = on, UTF-8) just far enough to find token boundaries:
 * - literal constants (numbers incl. 0x/0o/0b and `_` separators, '…', E'…' with backslash
 *   escapes, U&'…' [UESCAPE '…'], N'…', B'…', X'…', $tag$…$tag$) become a placeholder of their
 *   class;
 * - comments (`--…`, nested `/* … *\/`) and whitespace runs become one space (a comment is
 *   whitespace to PostgreSQL: `DR/**\/OP` is two tokens, and so is `dr op`);
 * - unquoted words are folded to lower case (ASCII only, like PostgreSQL); quoted identifiers,
 *   operators, punctuation and parameter markers ($1) are kept verbatim.
 *
 * Invariant the cache relies on (checked by the property test against libpg-query's own
 * fingerprint): two strings with the same key differ only in literal values, whitespace,
 * comments and the case of unquoted words, so they parse to the same tree up to constants.
 * Whenever the lexer is unsure — unterminated literal or comment, a literal whose content could
 * make the parse fail (invalid escapes, trailing junk after a number), adjacent string literals
 * (PostgreSQL joins them across a newline), a backslash in a plain string (its meaning depends
 * on standard_conforming_strings), a U&"…" identifier, control characters NUL/SOH (used for the
 * placeholders), unpaired surrogates — it returns undefined and the caller classifies without
 * the cache.
 *
 * Longer than ~500 lines because the lexer and the cache keyed by it are one invariant (the key
 * must mean "same parse tree"); shared lexical pieces live in lexical.ts.
 *
 * Longer than ~500 lines on purpose: one lexer, which must follow scan.l's token rules as a
 * whole (a string, a comment and a dollar quote end each other's scans).
 */
import { classify, classifyDetailed, classifyDetailedWith, type DetailedClassification } from "./classify.js";
import type { Classification } from "./facts.js";
import type { ParserPool } from "./parser-pool.js";
import { skipBlockComment } from "./lexical.js";

/** Longer inputs are not normalised (classified directly, never cached). */
export const MAX_NORMALIZE_CHARS = 64 * 1024;

// Placeholders start with U+0001, which normalize() refuses in its input, so a placeholder can
// never be confused with text copied from the statement.
const NUMBER = "\u0001#";
const STRING = "\u0001'";
const BITS = "\u0001b";
const NATIONAL = "\u0001n";

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isSpace(c: number): boolean {
  // scan.l: space [ \t\n\r\f\v]
  return c === 32 || (c >= 9 && c <= 13);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isIdentStart(c: number): boolean {
  // ident_start [A-Za-z\200-\377_]: every non-ASCII character is an identifier character
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

function isIdentCont(c: number): boolean {
  // ident_cont [A-Za-z\200-\377_0-9\$]
  return isIdentStart(c) || isDigit(c) || c === 36;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

function hexValue(s: string, from: number, count: number): number | undefined {
  let v = 0;
  for (let k = 0; k < count; k++) {
    const c = s.charCodeAt(from + k);
    if (!isHex(c)) return undefined;
    v = v * 16 + parseInt(s[from + k] ?? "", 16);
  }
  return v;
}

/** A code point PostgreSQL accepts from a Unicode escape without further questions. */
function plainCodePoint(cp: number): boolean {
  return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
}


/** Index of the next character that is neither whitespace nor inside a comment; -1 when a
 * comment is unterminated. */
function skipSpaceAndComments(s: string, i: number): number {
  let j = i;
  const n = s.length;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (isSpace(c)) j++;
    else if (c === 45 && s.charCodeAt(j + 1) === 45) {
      j += 2;
      while (j < n && s.charCodeAt(j) !== 10 && s.charCodeAt(j) !== 13) j++;
    } else if (c === 47 && s.charCodeAt(j + 1) === 42) {
      j = skipBlockComment(s, j);
      if (j < 0) return -1;
    } else break;
  }
  return j;
}

/** A '…' body with '' as the only escape, starting after the opening quote: end index (after
 * the closing quote), -1 when unterminated, -2 when it contains a backslash and
 * `rejectBackslash` (a backslash in a plain string means something else when the session has
 * standard_conforming_strings off). Linear time. */
function scanQuoted(s: string, from: number, rejectBackslash: boolean): number {
  // The first backslash after the opening quote: inside the literal iff before its end.
  const backslash = rejectBackslash ? s.indexOf("\\", from) : -1;
  let j = from;
  for (;;) {
    const q = s.indexOf("'", j);
    if (q < 0) return -1;
    if (backslash >= 0 && backslash < q) return -2;
    if (s.charCodeAt(q + 1) === 39) {
      j = q + 2;
      continue;
    }
    return q + 1;
  }
}

/** E'…' body (after the opening quote): end index, or -1 when unterminated or when an escape
 * could produce an invalid string (NUL, bytes ≥ 0x80, bad or surrogate Unicode escapes). */
function scanEscapeString(s: string, from: number): number {
  let j = from;
  const n = s.length;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === 39) {
      if (s.charCodeAt(j + 1) === 39) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    if (c !== 92) {
      j++;
      continue;
    }
    // backslash escape (scan.l xeoctesc / xehexesc / xeunicode / xeescape)
    const d = s.charCodeAt(j + 1);
    if (Number.isNaN(d)) return -1;
    if (d >= 48 && d <= 55) {
      let k = j + 1;
      let v = 0;
      while (k < j + 4 && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 55) {
        v = v * 8 + (s.charCodeAt(k) - 48);
        k++;
      }
      if (v === 0 || v >= 0x80) return -1;
      j = k;
    } else if (d === 120 && isHex(s.charCodeAt(j + 2))) {
      const two = isHex(s.charCodeAt(j + 3));
      const v = hexValue(s, j + 2, two ? 2 : 1) ?? 0;
      if (v === 0 || v >= 0x80) return -1;
      j += two ? 4 : 3;
    } else if (d === 117 || d === 85) {
      const len = d === 117 ? 4 : 8;
      const v = hexValue(s, j + 2, len);
      if (v === undefined || !plainCodePoint(v)) return -1;
      j += 2 + len;
    } else {
      j += 2; // \n, \t, \', \\, or any other character standing for itself
    }
  }
  return -1;
}

/** Validates the body of U&'…' (already without its quotes, '' undoubled) the way
 * str_udeescape (src/backend/parser/parser.c) decodes it. */
function validUnicodeBody(body: string, esc: string): boolean {
  let j = 0;
  while (j < body.length) {
    if (body[j] !== esc) {
      j++;
      continue;
    }
    if (body[j + 1] === esc) {
      j += 2;
      continue;
    }
    let cp: number | undefined;
    if (body[j + 1] === "+") {
      cp = hexValue(body, j + 2, 6);
      j += 8;
    } else {
      cp = hexValue(body, j + 1, 4);
      j += 5;
    }
    if (cp === undefined || !plainCodePoint(cp)) return false;
  }
  return true;
}

/** U&'…' [UESCAPE 'c'] starting at `i` (the U): end index or -1. */
function scanUnicodeString(s: string, i: number): number {
  // U&'…' is refused by PostgreSQL unless standard_conforming_strings is on, so a backslash
  // here is only ever the default Unicode escape character.
  const end = scanQuoted(s, i + 3, false);
  if (end < 0) return -1;
  const body = s.slice(i + 3, end - 1).replace(/''/g, "'");
  let esc = "\\";
  let stop = end;
  const j = skipSpaceAndComments(s, end);
  if (j < 0) return -1;
  if (s.charCodeAt(j) === 39) return -1; // string continuation: see normalize()
  if (s.slice(j, j + 7).toLowerCase() === "uescape" && !isIdentCont(s.charCodeAt(j + 7))) {
    const k = skipSpaceAndComments(s, j + 7);
    if (k < 0 || s.charCodeAt(k) !== 39 || s.charCodeAt(k + 2) !== 39 || s.charCodeAt(k + 3) === 39) return -1;
    esc = s[k + 1] ?? "";
    const e = esc.charCodeAt(0);
    if (isHex(e) || esc === "+" || esc === "'" || esc === '"' || isSpace(e) || e >= 0xd800) return -1;
    stop = k + 3;
    // The UESCAPE string can be continued too ('!'<newline>'' is '!').
    const after = skipSpaceAndComments(s, stop);
    if (after < 0 || s.charCodeAt(after) === 39) return -1;
  }
  return validUnicodeBody(body, esc) ? stop : -1;
}

/** Consumes decinteger: {decdigit}(_?{decdigit})*. `i` must be at a digit. */
function decInteger(s: string, i: number): number {
  let k = i + 1;
  for (;;) {
    const c = s.charCodeAt(k);
    if (isDigit(c)) k++;
    else if (c === 95 && isDigit(s.charCodeAt(k + 1))) k += 2;
    else return k;
  }
}

/** A numeric literal at `i`: end index or -1 (junk after it, or a malformed exponent/radix). */
function scanNumber(s: string, i: number): number {
  let k: number;
  const c = s.charCodeAt(i);
  const r = s.charCodeAt(i + 1) | 32;
  if (c === 48 && (r === 120 || r === 111 || r === 98)) {
    const digit = r === 120 ? isHex : r === 111 ? (d: number) => d >= 48 && d <= 55 : (d: number) => d === 48 || d === 49;
    k = i + 2;
    for (;;) {
      const d = s.charCodeAt(k);
      if (digit(d)) k++;
      else if (d === 95 && digit(s.charCodeAt(k + 1))) k += 2;
      else break;
    }
    if (k === i + 2) return -1;
  } else {
    if (c === 46) k = decInteger(s, i + 1);
    else {
      k = decInteger(s, i);
      if (s.charCodeAt(k) === 46 && s.charCodeAt(k + 1) !== 46) {
        k++;
        if (isDigit(s.charCodeAt(k))) k = decInteger(s, k);
      }
    }
    const e = s.charCodeAt(k);
    if (e === 101 || e === 69) {
      const sign = s.charCodeAt(k + 1);
      if (isDigit(sign)) k = decInteger(s, k + 1);
      else if ((sign === 43 || sign === 45) && isDigit(s.charCodeAt(k + 2))) k = decInteger(s, k + 2);
      else return -1;
    }
  }
  const after = s.charCodeAt(k);
  if (isIdentCont(after) || after === 46) return -1;
  return k;
}

/** The shape of a statement, or undefined when the lexer is unsure (see the module comment). */
export function normalize(sql: string): string | undefined {
  const n = sql.length;
  if (n > MAX_NORMALIZE_CHARS) return undefined;
  if (UNPAIRED_SURROGATE.test(sql)) return undefined;
  let out = "";
  let space = false;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      space = true;
      i++;
      continue;
    }
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      i += 2;
      while (i < n && sql.charCodeAt(i) !== 10 && sql.charCodeAt(i) !== 13) i++;
      space = true;
      continue;
    }
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      i = skipBlockComment(sql, i);
      if (i < 0) return undefined;
      space = true;
      continue;
    }
    if (c <= 1) return undefined; // NUL, SOH: reserved for placeholders
    if (space && out !== "") out += " ";
    space = false;

    let end: number;
    let placeholder: string | undefined;
    let stringLike = false;
    const next = sql.charCodeAt(i + 1);
    const lc = c | 32;
    if (c === 39) {
      end = scanQuoted(sql, i + 1, true);
      placeholder = STRING;
      stringLike = true;
    } else if (next === 39 && (lc === 101 || lc === 110 || lc === 98 || lc === 120)) {
      // E'…', N'…', B'…', X'…'
      if (lc === 101) {
        end = scanEscapeString(sql, i + 2);
        placeholder = STRING;
      } else if (lc === 110) {
        end = scanQuoted(sql, i + 2, true);
        placeholder = NATIONAL;
      } else {
        const q = sql.indexOf("'", i + 2);
        end = q < 0 || sql.charCodeAt(q + 1) === 39 ? -1 : q + 1;
        placeholder = BITS;
      }
      stringLike = true;
    } else if (lc === 117 && next === 38 && sql.charCodeAt(i + 2) === 39) {
      end = scanUnicodeString(sql, i);
      placeholder = STRING;
    } else if (lc === 117 && next === 38 && sql.charCodeAt(i + 2) === 34) {
      return undefined; // U&"…" identifiers (and their UESCAPE) are rare: don't guess
    } else if (c === 34) {
      // quoted identifier, verbatim
      let j = i + 1;
      for (;;) {
        const q = sql.indexOf('"', j);
        if (q < 0) return undefined;
        if (sql.charCodeAt(q + 1) === 34) {
          j = q + 2;
          continue;
        }
        end = q + 1;
        break;
      }
    } else if (c === 36) {
      if (isDigit(next)) {
        // parameter $n, verbatim
        let j = i + 1;
        while (isDigit(sql.charCodeAt(j))) j++;
        if (isIdentCont(sql.charCodeAt(j))) return undefined;
        end = j;
      } else {
        // $tag$ … $tag$
        let j = i + 1;
        if (isIdentStart(next)) {
          j++;
          while (isIdentStart(sql.charCodeAt(j)) || isDigit(sql.charCodeAt(j))) j++;
        }
        if (sql.charCodeAt(j) !== 36) return undefined;
        const tag = sql.slice(i, j + 1);
        const close = sql.indexOf(tag, j + 1);
        if (close < 0) return undefined;
        end = close + tag.length;
        placeholder = STRING;
      }
    } else if (isDigit(c) || (c === 46 && isDigit(next))) {
      end = scanNumber(sql, i);
      placeholder = NUMBER;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      let upper = c >= 65 && c <= 90;
      for (;;) {
        const d = sql.charCodeAt(j);
        if (!isIdentCont(d)) break;
        if (d >= 65 && d <= 90) upper = true;
        j++;
      }
      const word = sql.slice(i, j);
      out += upper ? asciiLowerWord(word) : word;
      i = j;
      continue;
    } else {
      end = i + 1;
    }

    if (end < 0) return undefined;
    if (stringLike) {
      // 'a'<newline>'b' is one literal to PostgreSQL, 'a' 'b' a syntax error: don't guess.
      const j = skipSpaceAndComments(sql, end);
      if (j < 0 || sql.charCodeAt(j) === 39) return undefined;
    }
    out += placeholder ?? sql.slice(i, end);
    i = end;
  }
  return out;
}

function asciiLowerWord(w: string): string {
  let out = "";
  for (let k = 0; k < w.length; k++) {
    const d = w.charCodeAt(k);
    out += d >= 65 && d <= 90 ? String.fromCharCode(d + 32) : (w[k] ?? "");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface CacheStats {
  /** classify() calls answered from the cache. */
  readonly hits: number;
  /** Calls that parsed a normalisable statement (cached afterwards when cacheable). */
  readonly misses: number;
  /** Misses whose result was not stored: facts depending on literals, unknown effects,
   * parse errors, or a key beyond the size budget. */
  readonly uncacheable: number;
  /** Calls whose statement the normaliser declined (classified directly). */
  readonly unnormalizable: number;
  readonly entries: number;
}

/**
 * LRU cache of classifications keyed by statement shape. Only classifications that are a
 * function of the shape are stored (see DetailedClassification.cacheable); a hit returns the
 * stored (deep-frozen) object itself, so callers must treat it as read-only, as its types say.
 * Memory is bounded by entry count and by the total length of the keys.
 */
export class ClassificationCache {
  private readonly map = new Map<string, Classification>();
  private keyChars = 0;
  private hits = 0;
  private misses = 0;
  private uncacheable = 0;
  private unnormalizable = 0;

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxKeyChars = 8 * 1024 * 1024,
    /** Where classifyBounded() parses what is not cached; without one it parses in this thread. */
    private readonly pool?: ParserPool,
  ) {}

  /** Classifies in this thread (tests, startup): see classifyDetailed(). */
  classify(sql: string): Classification {
    const key = normalize(sql);
    if (key === undefined) {
      this.unnormalizable++;
      return classify(sql);
    }
    const hit = this.#hit(key);
    if (hit !== undefined) return hit;
    this.misses++;
    return this.#store(key, classifyDetailed(sql));
  }

  /**
   * The data path: a cached statement is answered here and now (synchronously, as cheap as
   * classify()); anything else is parsed by the pool's threads, bounded by its limits and time
   * budget, so no statement can stall or damage the parser of other sessions.
   */
  classifyBounded(sql: string): Classification | Promise<Classification> {
    const pool = this.pool;
    if (pool === undefined) return this.classify(sql);
    const key = normalize(sql);
    if (key === undefined) {
      this.unnormalizable++;
      return settled(classifyDetailedWith(pool, sql), (d) => d.classification);
    }
    const hit = this.#hit(key);
    if (hit !== undefined) return hit;
    this.misses++;
    return settled(classifyDetailedWith(pool, sql), (d) => this.#store(key, d));
  }

  #hit(key: string): Classification | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.hits++;
    // refresh recency: Map iterates in insertion order, oldest first
    this.map.delete(key);
    this.map.set(key, hit);
    return hit;
  }

  #store(key: string, { classification, cacheable }: DetailedClassification): Classification {
    if (!cacheable || !classification.ok || this.maxEntries <= 0 || key.length > this.maxKeyChars) {
      this.uncacheable++;
      return classification;
    }
    const old = this.map.get(key);
    if (old !== undefined) {
      // Another session parsed the same shape meanwhile (classifyBounded): keep one entry.
      this.map.delete(key);
      this.keyChars -= key.length;
    }
    deepFreeze(classification);
    this.map.set(key, classification);
    this.keyChars += key.length;
    while (this.map.size > this.maxEntries || this.keyChars > this.maxKeyChars) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.map.delete(oldest.value);
      this.keyChars -= oldest.value.length;
    }
    return classification;
  }

  stats(): CacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      uncacheable: this.uncacheable,
      unnormalizable: this.unnormalizable,
      entries: this.map.size,
    };
  }

  clear(): void {
    this.map.clear();
    this.keyChars = 0;
  }

  close(): Promise<void> {
    this.clear();
    return Promise.resolve();
  }
}

function settled<T, R>(v: T | Promise<T>, f: (t: T) => R): R | Promise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

function deepFreeze(v: unknown): void {
  if (typeof v !== "object" || v === null || Object.isFrozen(v)) return;
  Object.freeze(v);
  for (const x of Object.values(v)) deepFreeze(x);
}
