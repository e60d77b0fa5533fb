/**
 * Session settings as the walker sees them: SET / RESET / SET TRANSACTION, set_config(), and
 * ALTER ROLE / DATABASE / SYSTEM … SET for later sessions. Settings that would make the gateway
 * read later traffic differently from the server (standard_conforming_strings, client_encoding,
 * search_path) are reported as unknown effects unless their new value is known and harmless.
 */
import { constString, list, nodeOf, splitIdentifiers, str, truncateIdentifier, type Obj } from "./ast.js";
import { UNKNOWN } from "./collector.js";
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

export function setConfig(w: Walker, args: readonly unknown[]): void {
  const c = w.c;
  c.op("set");
  c.literalDependent = true;
  const name = constString(args[0]);
  if (name === undefined) {
    c.unknown(UNKNOWN.dynamicSetting);
    return;
  }
  const value = constString(args[1]);
  const setting = name.trim().toLowerCase();
  c.settings.add(setting);
  if (setting === "role" || setting === "session_authorization") c.op("set_role");
  if (setting === "search_path") {
    const path = value === undefined ? undefined : splitIdentifiers(value, ",");
    if (path === undefined) c.unknown(UNKNOWN.searchPath);
    else c.setsSearchPath = path;
    return;
  }
  checkSessionSetting(w, setting, value === undefined ? undefined : [value]);
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
