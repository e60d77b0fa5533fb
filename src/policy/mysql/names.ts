/**
 * Names in MySQL/MariaDB statements, as the facts report them.
 *
 * - `db.table` maps to `{ schema: db, name: table }` (a MySQL database is what a policy glob's
 *   schema part names); an unqualified table resolves to the session's current database, which
 *   the caller tracks (`switchesDatabase`).
 * - Quoting: backticks (``` `` ``` inside), and `"…"` when read under ANSI_QUOTES, are removed;
 *   the name is otherwise kept exactly as written.
 * - Case: table and database names are case-sensitive on Linux by default
 *   (lower_case_table_names=0) and case-insensitive on servers configured otherwise: a name is
 *   reported as written, and ALSO lower-cased when that differs (see tableNames), so a policy
 *   naming the lower-case table matches either way. Column and function names are
 *   case-insensitive in MySQL everywhere: reported lower-cased.
 */
import type { MysqlNode, MysqlRule } from "./tree.mjs";

export function isRule(n: MysqlNode | undefined): n is MysqlRule {
  return Array.isArray(n);
}

export function ruleName(n: MysqlNode | undefined): string | undefined {
  return isRule(n) ? n[0] : undefined;
}

/** Children of a rule node (tokens and rules). */
export function kids(n: MysqlRule): readonly MysqlNode[] {
  return n.slice(1);
}

/** The first descendant (or self) named `name`, depth-first, not entering `stop` nodes. */
export function find(n: MysqlNode, name: string, stop?: ReadonlySet<string>): MysqlRule | undefined {
  if (!isRule(n)) return undefined;
  if (n[0] === name) return n;
  for (const c of kids(n)) {
    if (isRule(c) && stop?.has(c[0]) === true) continue;
    const f = find(c, name, stop);
    if (f !== undefined) return f;
  }
  return undefined;
}

/** The tokens of a subtree, in order. */
export function tokens(n: MysqlNode, out: string[] = []): string[] {
  if (!isRule(n)) {
    out.push(n);
    return out;
  }
  for (const c of kids(n)) tokens(c, out);
  return out;
}

/** A token's identifier value: quotes removed (``` ` ``` or `"`), doubled quotes undone. */
export function unquote(s: string): string {
  const q = s.charAt(0);
  if ((q === "`" || q === '"') && s.length >= 2 && s.endsWith(q)) return s.slice(1, -1).split(q + q).join(q);
  return s;
}

/** A string literal's value (`'…'`, `"…"`, with `_charset`/`N` prefixes), backslash escapes applied. */
export function stringValue(s: string, backslashEscapes = true): string | undefined {
  const m = /^(?:_[A-Za-z0-9]+\s*|[nN])?(['"])([\s\S]*)\1$/.exec(s);
  if (m === null) return undefined;
  const q = m[1] ?? "'";
  let body = m[2] ?? "";
  body = body.split(q + q).join(q);
  if (!backslashEscapes) return body;
  const map: Record<string, string> = { n: "\n", t: "\t", r: "\r", b: "\b", "0": "\u0000", Z: "\u001a" };
  return body.replace(/\\([\s\S])/g, (_, c: string) => map[c] ?? c);
}

/**
 * The dotted parts of a name subtree (FullId, TableName, ColumnName, …): its tokens joined and
 * split at dots outside quotes (`db`.`t` → [db, t]; `` `a.b` `` stays one part).
 */
export function nameParts(n: MysqlNode): string[] {
  const text = tokens(n).join("");
  const parts: string[] = [];
  let cur = "";
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quote !== "") {
      cur += c;
      if (c === quote) {
        if (text.charAt(i + 1) === quote) {
          cur += c;
          i++;
        } else quote = "";
      }
    } else if (c === "`" || c === '"') {
      quote = c;
      cur += c;
    } else if (c === ".") {
      parts.push(cur);
      cur = "";
    } else cur += c;
  }
  parts.push(cur);
  return parts.map((p) => unquote(p.trim()));
}
