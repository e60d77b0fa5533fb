/**
 * What a `COPY … TO STDOUT` statement sends, from its parse tree (the real PostgreSQL parser):
 * the source (a table with an optional column list, or a query with its text) and the stream
 * format with its options (FORMAT, DELIMITER, NULL, HEADER, QUOTE, ESCAPE, FORCE_QUOTE,
 * ENCODING). Options the gateway cannot tell for sure (an unknown option, a non-literal value, a
 * multi-byte delimiter, another encoding) leave the format unknown: the result stage then
 * refuses a masked COPY (fail closed).
 */
import { scanSync } from "libpg-query";
import { asNode, bool, list, nodeOf, obj, str, stringList, type Obj } from "../../policy/sql/ast.js";
import type { CopyFormat } from "./wire/copy.js";

export interface CopyOutSpec {
  /** COPY table [(columns)]: the relation as written, and the column list (empty: all). */
  readonly relation?: { readonly schema?: string; readonly name: string };
  readonly columns?: readonly string[];
  /** COPY (query): the inner query's text. */
  readonly query?: string;
  /** The stream format, or a reason why it cannot be known. */
  readonly format: CopyFormat | { readonly unknown: string };
}

const TAB = 0x09;
const COMMA = 0x2c;
const DQUOTE = 0x22;

/** defGetBoolean (commands/define.c): no value, true/false/on/off, 1/0. */
function booleanOption(arg: unknown): boolean | undefined {
  if (arg === undefined) return true;
  const n = asNode(arg);
  if (n === undefined) return undefined;
  const [type, body] = n;
  if (type === "Integer") {
    const v = typeof body["ival"] === "number" ? body["ival"] : 0;
    return v === 0 ? false : v === 1 ? true : undefined;
  }
  if (type === "Boolean") return body["boolval"] === true;
  if (type === "String") {
    const s = (str(body, "sval") ?? "").toLowerCase();
    if (s === "true" || s === "on") return true;
    if (s === "false" || s === "off") return false;
  }
  return undefined;
}

/** A string option's value ('' when libpg_query leaves an empty string out). */
function stringOption(arg: unknown): string | undefined {
  const n = asNode(arg);
  if (n === undefined || n[0] !== "String") return undefined;
  return str(n[1], "sval") ?? "";
}

/** A one-byte character option (DELIMITER, QUOTE, ESCAPE must be one single-byte character). */
function byteOption(arg: unknown): number | undefined {
  const s = stringOption(arg);
  if (s === undefined) return undefined;
  const b = Buffer.from(s, "utf8");
  return b.length === 1 ? b[0] : undefined;
}

/** The format of a COPY … TO from its options (copy.c ProcessCopyOptions). */
export function copyFormatOf(options: readonly unknown[]): CopyFormat | { readonly unknown: string } {
  let kind: "text" | "csv" | "binary" = "text";
  let delimiter: number | undefined;
  let nullString: string | undefined;
  let header = false;
  let quote: number | undefined;
  let escape: number | undefined;
  for (const o of options) {
    const d = nodeOf(o, "DefElem");
    if (d === undefined) return { unknown: "an option the gateway cannot read" };
    const name = str(d, "defname") ?? "";
    const arg = d["arg"];
    switch (name) {
      case "format": {
        const f = stringOption(arg)?.toLowerCase();
        if (f !== "text" && f !== "csv" && f !== "binary") return { unknown: `FORMAT ${f ?? "?"}` };
        kind = f;
        break;
      }
      case "delimiter":
        delimiter = byteOption(arg);
        if (delimiter === undefined) return { unknown: "a DELIMITER that is not one single-byte character" };
        break;
      case "null":
        nullString = stringOption(arg);
        if (nullString === undefined) return { unknown: "a NULL option that is not a string" };
        break;
      case "header": {
        const h = booleanOption(arg);
        if (h === undefined) return { unknown: "a HEADER option the gateway cannot read" };
        header = h;
        break;
      }
      case "quote":
        quote = byteOption(arg);
        if (quote === undefined) return { unknown: "a QUOTE that is not one single-byte character" };
        break;
      case "escape":
        escape = byteOption(arg);
        if (escape === undefined) return { unknown: "an ESCAPE that is not one single-byte character" };
        break;
      case "encoding": {
        const e = (stringOption(arg) ?? "").toLowerCase().replace(/[-_]/g, "");
        if (e !== "utf8" && e !== "unicode") return { unknown: `ENCODING ${stringOption(arg) ?? "?"}` };
        break;
      }
      // Quoting and COPY FROM options: they do not change how the output reads.
      case "force_quote":
      case "force_not_null":
      case "force_null":
      case "freeze":
        break;
      default:
        return { unknown: `the option ${name}` };
    }
  }
  if (kind === "binary") return { kind: "binary" };
  if (kind === "text") return { kind: "text", delimiter: delimiter ?? TAB, null: Buffer.from(nullString ?? "\\N", "utf8"), header };
  const q = quote ?? DQUOTE;
  return { kind: "csv", delimiter: delimiter ?? COMMA, quote: q, escape: escape ?? q, null: Buffer.from(nullString ?? "", "utf8"), header };
}

/**
 * The spec of a CopyStmt that copies TO STDOUT (undefined for COPY FROM, a file or a program).
 * `text` is the statement's own text (the inner query is cut from it by token positions).
 */
export function copyOutSpec(body: Obj, text: string): CopyOutSpec | undefined {
  if (bool(body, "is_from") || bool(body, "is_program") || str(body, "filename") !== undefined) return undefined;
  const format = copyFormatOf(list(body, "options"));
  const rel = obj(body, "relation");
  if (rel !== undefined) {
    const name = str(rel, "relname");
    if (name === undefined) return { format: { unknown: "a COPY whose table the gateway cannot read" } };
    const schema = str(rel, "schemaname");
    const columns = stringList(list(body, "attlist")) ?? [];
    return { relation: schema === undefined ? { name } : { schema, name }, columns, format };
  }
  const query = innerQuery(text);
  if (query === undefined) return { format: { unknown: "a COPY whose query the gateway cannot read" } };
  return { query, format };
}

/** The text between the parentheses of `COPY ( … ) TO`, by the parser's own tokens. */
function innerQuery(text: string): string | undefined {
  let tokens: readonly { start: number; end: number; text: string }[];
  try {
    tokens = scanSync(text).tokens.filter((t) => t.tokenName !== "C_COMMENT" && t.tokenName !== "SQL_COMMENT");
  } catch {
    return undefined;
  }
  const bytes = Buffer.from(text, "utf8");
  let i = 0;
  if (tokens[i]?.text.toLowerCase() !== "copy") return undefined;
  i++;
  const open = tokens[i];
  if (open?.text !== "(") return undefined;
  let depth = 0;
  for (; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === undefined) break;
    if (t.text === "(") depth++;
    else if (t.text === ")") {
      depth--;
      if (depth === 0) return bytes.subarray(open.end, t.start).toString("utf8");
    }
  }
  return undefined;
}
