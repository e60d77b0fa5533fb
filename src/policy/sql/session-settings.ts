/**
 * Session settings as the walker sees them: SET / RESET / SET TRANSACTION, set_config(), and
 * ALTER ROLE / DATABASE / SYSTEM … SET for later sessions. Settings that would make the gateway
 * read later traffic differently from the server (standard_conforming_strings, client_encoding,
 * search_path) are reported as unknown effects unless their new value is known and harmless.
 */
import { constString, list, listItems, nodeOf, splitIdentifiers, str, stringList, truncateIdentifier, type Obj } from "./ast.js";
import { UNKNOWN } from "./collector.js";
import type { Scope } from "./scope.js";
import type { Walker } from "./walk.js";

/** Settings that, changed for later sessions (ALTER ROLE / DATABASE / SYSTEM … SET), would make
 * the gateway read their statements differently from the server. */
export const FUTURE_SESSION_SETTINGS: ReadonlySet<string> = new Set([
  "search_path", "role", "session_authorization", "standard_conforming_strings", "client_encoding",
]);

export function isOnValue(v: string): boolean {
  // parse_bool (src/backend/utils/adt/bool.c): unique prefixes of true/yes/on, and 1
  const s = v.trim().toLowerCase();
  if (s === "") return false;
  return "true".startsWith(s) || "yes".startsWith(s) || s === "on" || s === "1";
}

export function isUtf8Name(v: string): boolean {
  const s = v.trim().toLowerCase().replace(/[-_]/g, "");
  return s === "utf8" || s === "unicode";
}

/** The values of a SET as strings, or undefined when one of them is not a constant. */
function constStrings(args: readonly unknown[]): string[] | undefined {
  const values: string[] = [];
  for (const a of args) {
    const s = constString(a);
    if (s === undefined) return undefined;
    values.push(s);
  }
  return values;
}

/**
 * set_config(name, value, is_local). The setting must be knowable: a constant, or the `name`
 * column of pg_settings pinned to constants by the WHERE clause of the query level that reads
 * it — pg_dump sends `SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings
 * WHERE name = 'restrict_nonsystem_relation_kind'`. Any other first argument may name any
 * setting: an unknown effect. The caller refuses protected settings (sql-settings.ts).
 */
export function setConfig(w: Walker, args: readonly unknown[], scope: Scope): void {
  const c = w.c;
  c.op("set");
  c.literalDependent = true;
  const constant = constString(args[0]);
  const names = constant === undefined ? pinnedSettingNames(args[0], scope) : [constant];
  if (names === undefined) {
    c.unknown(UNKNOWN.dynamicSetting);
    return;
  }
  const value = constString(args[1]);
  for (const name of names) {
    const setting = name.trim().toLowerCase();
    c.settings.add(setting);
    if (setting === "role" || setting === "session_authorization") c.op("set_role");
    if (setting === "search_path") {
      const path = value === undefined ? undefined : splitIdentifiers(value, ",");
      if (path === undefined) c.unknown(UNKNOWN.searchPath);
      else c.setsSearchPath = path;
      continue;
    }
    checkSessionSetting(w, setting, value === undefined ? undefined : [value]);
  }
}

/**
 * The values `arg` can take when it is the column `name` (or `q.name`) of the catalog view
 * pg_settings, the only FROM item of the nearest query level that has any, and that level's
 * WHERE pins it (`name = 'x'`, `'x' = name`, `name IN ('x', 'y')`, or such a conjunct of an
 * AND). Undefined when that can't be shown.
 */
function pinnedSettingNames(arg: unknown, scope: Scope): string[] | undefined {
  const ref = nodeOf(arg, "ColumnRef");
  const fields = ref === undefined ? undefined : stringList(list(ref, "fields"));
  if (fields === undefined || fields.length < 1 || fields.length > 2 || fields[fields.length - 1] !== "name") return undefined;
  let level: Scope | undefined = scope;
  while (level !== undefined && level.entries.length === 0) level = level.parent;
  const entry = level?.entries.length === 1 ? level.entries[0] : undefined;
  if (level === undefined || entry === undefined || entry.relations.length !== 1) return undefined;
  const rel = entry.relations[0];
  if (rel?.name !== "pg_settings" || (rel.schema !== undefined && rel.schema !== "pg_catalog")) return undefined;
  const qualifier = fields.length === 2 ? fields[0] : undefined;
  if (qualifier !== undefined && qualifier !== entry.refname) return undefined;
  return pinned(level.where, entry.refname);
}

/** Constants the `name` column is pinned to by a WHERE clause (see pinnedSettingNames). */
function pinned(where: unknown, refname: string | undefined): string[] | undefined {
  const and = nodeOf(where, "BoolExpr");
  if (and !== undefined) {
    // AND_EXPR is the enum's zero value: libpg_query's JSON omits it.
    if ((str(and, "boolop") ?? "AND_EXPR") !== "AND_EXPR") return undefined;
    for (const a of list(and, "args")) {
      const p = pinned(a, refname);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  const e = nodeOf(where, "A_Expr");
  if (e === undefined) return undefined;
  const op = stringList(list(e, "name"));
  if (op === undefined || op[op.length - 1] !== "=" || (op.length === 2 && op[0] !== "pg_catalog") || op.length > 2) return undefined;
  const isName = (v: unknown): boolean => {
    const f = stringList(list(nodeOf(v, "ColumnRef") ?? {}, "fields"));
    return f !== undefined && (f.length === 1 ? f[0] === "name" : f.length === 2 && f[0] === refname && f[1] === "name");
  };
  // AEXPR_OP is the enum's zero value: libpg_query's JSON omits it.
  const kind = str(e, "kind") ?? "AEXPR_OP";
  if (kind === "AEXPR_OP") {
    const other = isName(e.lexpr) ? e.rexpr : isName(e.rexpr) ? e.lexpr : undefined;
    const v = other === undefined ? undefined : constString(other);
    return v === undefined ? undefined : [v];
  }
  if (kind === "AEXPR_IN" && isName(e.lexpr)) {
    const values = (listItems(e.rexpr) ?? []).map((v) => constString(v));
    return values.length > 0 && values.every((v) => v !== undefined) ? values : undefined;
  }
  return undefined;
}

/** Settings that would make the gateway's reading of later traffic disagree with the
 * server's. `values` undefined: not known statically. */
export function checkSessionSetting(w: Walker, setting: string, values: readonly string[] | undefined): void {
  if (setting === "standard_conforming_strings") {
    if (values === undefined || values.length !== 1 || !isOnValue(values[0] ?? "")) w.c.unknown(UNKNOWN.scs);
  } else if (setting === "client_encoding") {
    if (values === undefined || values.length !== 1 || !isUtf8Name(values[0] ?? "")) w.c.unknown(UNKNOWN.encoding);
  }
}

export function variableSet(w: Walker, body: Obj): void {
  const c = w.c;
  const kind = str(body, "kind") ?? "VAR_SET_VALUE";
  const name = (str(body, "name") ?? "").toLowerCase();
  c.literalDependent = true;
  c.op(kind === "VAR_RESET" || kind === "VAR_RESET_ALL" ? "reset" : "set");
  if (name === "role" || name === "session_authorization") c.op("set_role");
  if (kind === "VAR_RESET_ALL") {
    c.setsSearchPath = "default";
    c.settings.add("all");
    return;
  }
  if (kind === "VAR_SET_MULTI") {
    // SET TRANSACTION … / SET SESSION CHARACTERISTICS AS TRANSACTION …
    const prefix = name === "session characteristics" ? "default_" : "";
    for (const a of list(body, "args")) {
      const d = nodeOf(a, "DefElem");
      const opt = d === undefined ? undefined : str(d, "defname");
      if (opt !== undefined) c.settings.add(prefix + opt.toLowerCase());
    }
    return;
  }
  c.settings.add(name);
  if (name === "search_path") {
    if (kind === "VAR_SET_VALUE") {
      const values = constStrings(list(body, "args"));
      if (values === undefined) c.unknown(UNKNOWN.searchPath);
      else c.setsSearchPath = values.map(truncateIdentifier);
    } else if (kind === "VAR_SET_DEFAULT" || kind === "VAR_RESET") {
      c.setsSearchPath = "default";
    }
    return;
  }
  if (kind === "VAR_SET_VALUE") checkSessionSetting(w, name, constStrings(list(body, "args")));
}

/** ALTER ROLE / DATABASE / SYSTEM … SET: settings of later sessions (never this one's). */
export function futureSetting(w: Walker, setstmt: Obj | undefined): void {
  if (setstmt === undefined) return;
  const name = (str(setstmt, "name") ?? "").toLowerCase();
  const kind = str(setstmt, "kind") ?? "VAR_SET_VALUE";
  w.c.literalDependent = true;
  if (kind === "VAR_RESET_ALL" || kind === "VAR_RESET" || kind === "VAR_SET_DEFAULT" || !FUTURE_SESSION_SETTINGS.has(name)) return;
  const values = list(setstmt, "args").map((a) => constString(a));
  const one = values.length === 1 ? values[0] : undefined;
  if (name === "standard_conforming_strings" && one !== undefined && isOnValue(one)) return;
  if (name === "client_encoding" && one !== undefined && isUtf8Name(one)) return;
  w.c.unknown(UNKNOWN.futureSettings);
}
