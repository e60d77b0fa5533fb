/**
 * The store's SQL is written once, in PostgreSQL's dialect (sql-store.ts, approvals.ts,
 * migrations.ts). The SQLite backend runs the same text after this small, mechanical rewrite;
 * the few statements that need PostgreSQL-only features (unnest over arrays, jsonb containment,
 * LATERAL, string_agg with E'' literals) have SQLite forms written out beside them and are
 * chosen by `SqlClient.kind`.
 *
 * What the rewrite does, outside string literals and quoted identifiers only:
 * - `expr::type` casts are dropped (SQLite is dynamically typed; values arrive as parameters of
 *   the right JS type, and timestamps as ISO-8601 text that compares correctly as text);
 * - `now()` becomes the current time as ISO-8601 UTC text with milliseconds, the exact format of
 *   `Date.prototype.toISOString`, which is how every timestamp is stored;
 * - in DDL (`ddl: true`, migrations): PostgreSQL column types become SQLite ones
 *   (`bigserial PRIMARY KEY` → `INTEGER PRIMARY KEY AUTOINCREMENT`, timestamptz/jsonb → TEXT,
 *   bigint/boolean → INTEGER), so that column affinity never reinterprets stored text.
 * `$1`…`$n` need no rewrite: SQLite reads them as named parameters "1"…"n".
 *
 * Fail closed: constructs this rewrite cannot carry over are refused with GW_STORE before SQLite
 * sees them (a clear error instead of a puzzling one, or worse, a different meaning).
 */
import { GatewayError } from "../core/errors.js";

/** Longest SQL text accepted (the store's own statements are a few KB; a bound, not a limit in practice). */
export const MAX_SQL_CHARS = 1_000_000;

const NOW_SQLITE = "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))";

/** PostgreSQL-only constructs with no mechanical SQLite equivalent. */
const UNSUPPORTED: readonly RegExp[] = [/\bunnest\s*\(/i, /@>/, /<@/, /\blateral\b/i, /\bpg_[a-z_]+\s*\(/i, /\bregexp_split_to_table\b/i, /\bILIKE\b/i];

const DDL_TYPES: readonly (readonly [RegExp, string])[] = [
  [/\bbigserial\s+PRIMARY\s+KEY\b/gi, "INTEGER PRIMARY KEY AUTOINCREMENT"],
  [/\btimestamptz\b/gi, "TEXT"],
  [/\bjsonb\b/gi, "TEXT"],
  [/\bbigint\b/gi, "INTEGER"],
  [/\bboolean\b/gi, "INTEGER"],
];

/** Rewrite code (text outside literals); see the module comment. */
function rewriteCode(code: string, ddl: boolean): string {
  for (const re of UNSUPPORTED) {
    if (re.test(code)) {
      throw new GatewayError("GW_STORE", `the SQLite store cannot run this statement (${re.source.replace(/\\[bs]|\\\(|\*/g, "")}): it needs a SQLite form`);
    }
  }
  let out = code.replace(/::\s*[a-zA-Z_][a-zA-Z0-9_]*(\s*\[\s*\])?/g, "").replace(/\bnow\s*\(\s*\)/gi, NOW_SQLITE);
  if (ddl) for (const [re, to] of DDL_TYPES) out = out.replace(re, to);
  return out;
}

/**
 * PostgreSQL-flavoured SQL → SQLite. Literals ('…' with '' escapes), quoted identifiers ("…")
 * and comments are copied unchanged; an `E'…'` literal (backslash escapes) is refused.
 */
export function toSqlite(sql: string, options: { readonly ddl?: boolean } = {}): string {
  if (sql.length > MAX_SQL_CHARS) throw new GatewayError("GW_STORE", "statement too long for the store");
  const ddl = options.ddl === true;
  let out = "";
  let code = "";
  let i = 0;
  const flush = (): void => {
    out += rewriteCode(code, ddl);
    code = "";
  };
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === "'" || ch === '"') {
      if (ch === "'" && /[eE]$/.test(code) && !/[a-zA-Z0-9_$]$/.test(code.slice(0, -1))) {
        throw new GatewayError("GW_STORE", "the SQLite store cannot run this statement (E'' literal): it needs a SQLite form");
      }
      flush();
      let j = i + 1;
      for (;;) {
        const k = sql.indexOf(ch, j);
        if (k === -1) throw new GatewayError("GW_STORE", "unterminated quoted text in a store statement");
        if (sql[k + 1] === ch) {
          j = k + 2;
          continue;
        }
        j = k + 1;
        break;
      }
      out += sql.slice(i, j);
      i = j;
      continue;
    }
    if (ch === "-" && sql[i + 1] === "-") {
      flush();
      const k = sql.indexOf("\n", i);
      const end = k === -1 ? sql.length : k;
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    if (ch === "/" && sql[i + 1] === "*") {
      flush();
      const k = sql.indexOf("*/", i + 2);
      if (k === -1) throw new GatewayError("GW_STORE", "unterminated comment in a store statement");
      out += sql.slice(i, k + 2);
      i = k + 2;
      continue;
    }
    code += sql.charAt(i);
    i++;
  }
  flush();
  return out;
}

/**
 * Parameters as better-sqlite3 binds them: booleans become 1/0 and Dates ISO-8601 text (it binds
 * neither); values it cannot bind at all (objects, functions, symbols) are refused here, in the
 * caller's thread. The worker binds the list as `$1`…`$n` (named "1"…"n").
 */
export function sqliteParams(params: readonly unknown[]): (string | number | bigint | Buffer | null)[] {
  return params.map(sqliteValue);
}

function sqliteValue(p: unknown): string | number | bigint | Buffer | null {
  if (p === null) return null;
  switch (typeof p) {
    case "string":
    case "number":
    case "bigint":
      return p;
    case "boolean":
      return p ? 1 : 0;
    case "object":
      if (p instanceof Date) return p.toISOString();
      if (Buffer.isBuffer(p)) return p;
      if (p instanceof Uint8Array) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
      break;
    case "undefined":
      return null;
    case "symbol":
    case "function":
      break;
  }
  throw new GatewayError("GW_STORE", `the SQLite store cannot bind a parameter of type ${typeof p}`);
}
