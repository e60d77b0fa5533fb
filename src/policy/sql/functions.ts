/**
 * Function calls and casts: every call is reported by name; calls whose arguments change the
 * facts (sequences, regclass, table/schema-reading functions, functions that run SQL text,
 * dblink, pg_background, pg_cron, set_config) are handled here, from the catalog in
 * known-functions.ts.
 */
import { parseEmbeddedSync } from "./limits.js";
import { asNode, constString, isIntegerConst, isObj, list, obj, splitIdentifiers, stringList, type Obj } from "./ast.js";
import { qn, UNKNOWN } from "./collector.js";
import type { QualifiedName } from "./facts.js";
import { DATABASE_READING_FUNCTIONS, LITERAL_SENSITIVE_FUNCTIONS, REG_TYPES, SCHEMA_READING_FUNCTIONS, SEQUENCE_FUNCTIONS, SQL_TEXT_FUNCTIONS, TABLE_READING_FUNCTIONS } from "./known-functions.js";
import { Scope } from "./scope.js";
import { setConfig } from "./session-settings.js";
import { statement } from "./statements.js";
import type { Walker } from "./walk.js";

const SKIP_FUNCNAME: ReadonlySet<string> = new Set(["funcname"]);

export function funcCall(w: Walker, body: Obj, scope: Scope): void {
  w.calls++;
  const names = stringList(list(body, "funcname")) ?? [];
  if (names.length > 0) {
    w.c.fn(names.join("."));
    specialFunction(w, names, list(body, "args"), scope);
  }
  w.visitFields(body, scope, SKIP_FUNCNAME);
}

export function specialFunction(w: Walker, names: readonly string[], args: readonly unknown[], scope: Scope): void {
  const last = names[names.length - 1] ?? "";
  const schema = names.length > 1 ? names[names.length - 2] : undefined;
  const c = w.c;
  if (last.startsWith("dblink")) {
    c.unknown(UNKNOWN.dblink);
    c.literalDependent = true;
    return;
  }
  if (last.startsWith("pg_background")) {
    c.unknown(UNKNOWN.background);
    c.literalDependent = true;
    return;
  }
  if (schema === "cron" || last === "schedule_in_database" || last === "alter_job" || (last === "schedule" && (args.length === 2 || args.length === 3))) {
    c.unknown(UNKNOWN.cron);
    c.literalDependent = true;
    return;
  }
  if (REG_TYPES.has(last) || last === "to_regclass") {
    // regclass('users') is a cast written as a call; to_regclass('users') looks it up.
    c.literalDependent = true;
    if (last === "regclass" || last === "to_regclass") {
      const r = relationFromText(w, constString(args[0]));
      if (r !== undefined) c.readRel(r);
    }
    return;
  }
  const seq = SEQUENCE_FUNCTIONS[last];
  if (seq !== undefined) {
    c.literalDependent = true;
    const r = relationFromText(w, constString(args[0]));
    if (r !== undefined) {
      if (seq === "read") c.readRel(r);
      else c.writeRel(r);
    }
    return;
  }
  if (TABLE_READING_FUNCTIONS.has(last)) {
    c.literalDependent = true;
    const r = relationFromText(w, constString(args[0]));
    if (r === undefined) c.unknown(UNKNOWN.dynamicTable);
    else c.column(r, "*", "read");
    return;
  }
  if (SCHEMA_READING_FUNCTIONS.has(last)) {
    c.literalDependent = true;
    const text = constString(args[0]);
    const parts = text === undefined ? undefined : splitIdentifiers(text, ".");
    const s = parts?.length === 1 ? parts[0] : undefined;
    if (s === undefined) c.unknown(UNKNOWN.dynamicTable);
    else c.column(qn(s, "*"), "*", "read");
    return;
  }
  if (DATABASE_READING_FUNCTIONS.has(last)) {
    c.unknown(UNKNOWN.database);
    return;
  }
  const sqlArgs = SQL_TEXT_FUNCTIONS[last];
  if (sqlArgs !== undefined) {
    c.literalDependent = true;
    if (last === "ts_rewrite" && args.length !== 2) return;
    for (const i of sqlArgs) {
      const arg = args[i];
      if (arg === undefined) continue;
      if (last === "crosstab" && i === 1 && isIntegerConst(arg)) continue;
      embeddedSql(w, constString(arg));
    }
    return;
  }
  if (last === "set_config") {
    setConfig(w, args, scope);
    return;
  }
  if (LITERAL_SENSITIVE_FUNCTIONS.has(last)) c.literalDependent = true;
}

/** Relation named by a text constant (regclass input syntax); undefined for OIDs/garbage. */
export function relationFromText(w: Walker, text: string | undefined): QualifiedName | undefined {
  if (text === undefined || /^\s*\d+\s*$/.test(text)) return undefined;
  const parts = splitIdentifiers(text, ".");
  if (parts === undefined || parts.length === 0 || parts.length > 3) return undefined;
  const name = parts[parts.length - 1] ?? "";
  return qn(parts.length >= 2 ? parts[parts.length - 2] : undefined, name);
}

/** SQL text run by a function: parsed and its facts merged, or an unknown effect. */
export function embeddedSql(w: Walker, text: string | undefined): void {
  if (text === undefined) {
    w.c.unknown(UNKNOWN.dynamicSql);
    return;
  }
  let stmts: readonly unknown[];
  try {
    const parsed: unknown = parseEmbeddedSync(text);
    stmts = isObj(parsed) ? list(parsed, "stmts") : [];
  } catch {
    w.c.unknown(UNKNOWN.unparsableSql);
    return;
  }
  for (const raw of stmts) {
    const s = isObj(raw) ? asNode(raw.stmt) : undefined;
    if (s !== undefined) statement(w, s[0], s[1], new Scope(undefined), false);
  }
}

export function typeCast(w: Walker, body: Obj, scope: Scope): void {
  const typeName = obj(body, "typeName");
  const names = typeName === undefined ? undefined : stringList(list(typeName, "names"));
  const last = names === undefined ? undefined : names[names.length - 1];
  if (last !== undefined && REG_TYPES.has(last)) {
    w.c.literalDependent = true;
    if (last === "regclass" && typeName !== undefined && list(typeName, "arrayBounds").length === 0) {
      const r = relationFromText(w, constString(body.arg));
      if (r !== undefined) w.c.readRel(r);
    }
  }
  w.visit(body.arg, scope);
}
