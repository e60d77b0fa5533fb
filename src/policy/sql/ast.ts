/**
 * Small, allocation-light accessors over libpg-query's JSON parse tree.
 *
 * The tree is PostgreSQL's raw parse tree serialised by libpg_query's protobuf/JSON output:
 * a field typed `Node` holds a one-key wrapper `{ "SelectStmt": { … } }` whose key is the node
 * type (always starting with an upper-case letter), while a field of a concrete struct type
 * (`relation: RangeVar`, `larg: SelectStmt`, `intoClause: IntoClause`, …) holds the struct
 * inline, without a wrapper. Fields whose value is the protobuf default (0, false, "", empty
 * list) are omitted, so every accessor treats "absent" as that default.
 *
 * We read the tree as `unknown` and narrow it field by field instead of trusting the generated
 * TypeScript declarations: the walker must never crash on a node shape it did not expect (it
 * then walks it generically, which is the conservative thing to do).
 */

export type Obj = Readonly<Record<string, unknown>>;

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `{ Type: body }` → [Type, body]; undefined for inline structs, lists, scalars. */
export function asNode(v: unknown): readonly [string, Obj] | undefined {
  if (!isObj(v)) return undefined;
  let key: string | undefined;
  for (const k in v) {
    if (key !== undefined) return undefined; // more than one key: an inline struct
    key = k;
  }
  if (key === undefined) return undefined;
  const c = key.charCodeAt(0);
  if (c < 65 || c > 90) return undefined; // struct fields are lower camel case
  const body = v[key];
  return isObj(body) ? [key, body] : undefined;
}

/** The body when `v` is a wrapped node of type `type`. */
export function nodeOf(v: unknown, type: string): Obj | undefined {
  if (!isObj(v)) return undefined;
  const body = v[type];
  return isObj(body) ? body : undefined;
}

export function str(o: Obj, key: string): string | undefined {
  const v = o[key];
  return typeof v === "string" ? v : undefined;
}

export function bool(o: Obj, key: string): boolean {
  return o[key] === true;
}

export function obj(o: Obj, key: string): Obj | undefined {
  const v = o[key];
  return isObj(v) ? v : undefined;
}

const EMPTY: readonly unknown[] = [];

export function list(o: Obj, key: string): readonly unknown[] {
  const v = o[key];
  return Array.isArray(v) ? (v as readonly unknown[]) : EMPTY;
}

/** The value of a `String` node (`{ String: { sval } }`); "" when sval is omitted. */
export function stringValue(v: unknown): string | undefined {
  const s = nodeOf(v, "String");
  if (s === undefined) return undefined;
  return str(s, "sval") ?? "";
}

/** A list of `String` nodes (qualified names) → the strings; undefined if any item is not one. */
export function stringList(items: readonly unknown[]): string[] | undefined {
  const out: string[] = [];
  for (const item of items) {
    const s = stringValue(item);
    if (s === undefined) return undefined;
    out.push(s);
  }
  return out;
}

/** `{ List: { items } }` → items. */
export function listItems(v: unknown): readonly unknown[] | undefined {
  const l = nodeOf(v, "List");
  return l === undefined ? undefined : list(l, "items");
}

/**
 * A constant string argument: an `A_Const` string, possibly under casts (`'users'::regclass`,
 * `'x'::text::regclass`) or a COLLATE clause. Undefined for anything computed.
 */
export function constString(v: unknown): string | undefined {
  let cur = v;
  for (let i = 0; i < 16; i++) {
    const n = asNode(cur);
    if (n === undefined) return undefined;
    const [type, body] = n;
    if (type === "A_Const") {
      const s = obj(body, "sval");
      if (s !== undefined) return str(s, "sval") ?? "";
      return undefined;
    }
    if (type === "TypeCast" || type === "CollateClause") {
      cur = body.arg;
      continue;
    }
    return undefined;
  }
  return undefined;
}

/** True for an integer constant (`A_Const` with ival), possibly under casts. */
export function isIntegerConst(v: unknown): boolean {
  let cur = v;
  for (let i = 0; i < 16; i++) {
    const n = asNode(cur);
    if (n === undefined) return false;
    const [type, body] = n;
    if (type === "A_Const") return isObj(body.ival);
    if (type === "TypeCast") {
      cur = body.arg;
      continue;
    }
    return false;
  }
  return false;
}

/**
 * Splits a text value into identifiers the way PostgreSQL's SplitIdentifierString does
 * (src/backend/utils/adt/varlena.c), used by regclassin (separator ".") and when a search_path
 * string is applied (separator ","): surrounding whitespace is skipped, unquoted names are
 * folded to lower case (ASCII only, as in a UTF-8 database), `"…"` keeps case and `""` means a
 * quote, and every name is truncated to NAMEDATALEN-1 bytes as PostgreSQL does (the parser does
 * the same to identifiers, so names from text and from SQL compare equal). Undefined when the
 * text is not a valid list (PostgreSQL would reject it too).
 */
export function splitIdentifiers(text: string, separator: "." | ","): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  if (i === n) return separator === "," ? out : undefined; // an empty search_path is allowed
  for (;;) {
    let name: string;
    if (text.charCodeAt(i) === 34) {
      // quoted
      let j = i + 1;
      let buf = "";
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) return undefined;
        buf += text.slice(j, q);
        if (text.charCodeAt(q + 1) === 34) {
          buf += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (buf === "") return undefined;
      name = buf;
    } else {
      const start = i;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (isSpace(c) || text[i] === separator) break;
        i++;
      }
      if (i === start) return undefined;
      name = asciiLower(text.slice(start, i));
    }
    out.push(truncateIdentifier(name));
    while (i < n && isSpace(text.charCodeAt(i))) i++;
    if (i === n) return out;
    if (text[i] !== separator) return undefined;
    i++;
    while (i < n && isSpace(text.charCodeAt(i))) i++;
    if (i === n) return undefined;
  }
}

/** NAMEDATALEN - 1: the longest identifier, in bytes. */
export const MAX_IDENTIFIER_BYTES = 63;

/** truncate_identifier (src/backend/parser/scansup.c): at most 63 bytes, never splitting a
 * character (pg_mbcliplen). */
export function truncateIdentifier(name: string): string {
  if (name.length <= MAX_IDENTIFIER_BYTES / 3 || Buffer.byteLength(name, "utf8") <= MAX_IDENTIFIER_BYTES) return name;
  let bytes = 0;
  let end = 0;
  for (const ch of name) {
    const b = Buffer.byteLength(ch, "utf8");
    if (bytes + b > MAX_IDENTIFIER_BYTES) break;
    bytes += b;
    end += ch.length;
  }
  return name.slice(0, end);
}

/** PostgreSQL folds unquoted identifiers to lower case in ASCII only (downcase_identifier). */
export function asciiLower(s: string): string {
  let needs = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      needs = true;
      break;
    }
  }
  if (!needs) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : (s[i] ?? "");
  }
  return out;
}
