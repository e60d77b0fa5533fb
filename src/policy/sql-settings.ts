/**
 * Which session settings a statement touches, for the limits a policy injects (read-only). Only statements the classifier tags set/reset/begin/discard get here, so the cost
 * of a second parse does not reach the hot path.
 */
import type { StatementFacts } from "./sql/facts.js";
import { parseSyncBounded } from "./sql/limits.js";

export interface SettingsTouched {
  /** Lower-cased names of variables SET or RESET. */
  readonly variables: readonly string[];
  readonly resetAll: boolean;
  readonly discardAll: boolean;
  /** BEGIN / START TRANSACTION / SET TRANSACTION … READ WRITE. */
  readonly readWrite: boolean;
  /** SET TRANSACTION / SET SESSION CHARACTERISTICS (any form). */
  readonly transactionCharacteristics: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `transaction_read_only` option whose value is false (0) means READ WRITE. */
function readWriteOption(options: unknown): boolean {
  if (!Array.isArray(options)) return false;
  for (const o of options) {
    const d = isRecord(o) ? o["DefElem"] : undefined;
    if (!isRecord(d) || d["defname"] !== "transaction_read_only") continue;
    const arg = d["arg"];
    const c = isRecord(arg) ? arg["A_Const"] : undefined;
    const iv = isRecord(c) ? c["ival"] : undefined;
    // An absent ival means 0 in libpg_query's JSON (zero values are omitted).
    const value = isRecord(iv) ? iv["ival"] : undefined;
    if (value === undefined || value === 0) return true;
  }
  return false;
}

export function settingsTouched(sql: string): SettingsTouched {
  const variables: string[] = [];
  let resetAll = false;
  let discardAll = false;
  let readWrite = false;
  let transactionCharacteristics = false;
  let tree: unknown;
  try {
    tree = parseSyncBounded(sql);
  } catch {
    // Unparseable statements are refused earlier (and one beyond the limits is never parsed
    // here); report everything as touched to be safe.
    return { variables: [], resetAll: true, discardAll: true, readWrite: true, transactionCharacteristics: true };
  }
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!isRecord(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === "VariableSetStmt" && isRecord(value)) {
        const kind = value["kind"];
        const name = typeof value["name"] === "string" ? value["name"].toLowerCase() : "";
        if (kind === "VAR_RESET_ALL") resetAll = true;
        else if (kind === "VAR_SET_MULTI") {
          transactionCharacteristics = true;
          if (readWriteOption(value["args"])) readWrite = true;
        } else if (name !== "") variables.push(name);
      } else if (key === "TransactionStmt" && isRecord(value)) {
        if (readWriteOption(value["options"])) readWrite = true;
      } else if (key === "DiscardStmt" && isRecord(value)) {
        if (value["target"] === "DISCARD_ALL") discardAll = true;
      }
      visit(value);
    }
  };
  visit(tree);
  return { variables, resetAll, discardAll, readWrite, transactionCharacteristics };
}

/**
 * Settings a set_config() call may not change while the session is read-only: the read-only
 * limit, the name resolution and identity the guardrails rely on, and the parsing settings
 * (a statementTimeout alone does not guard set_config: the gateway times it itself). Any other setting named knowably (pg_dump's `set_config(name, …) FROM pg_settings
 * WHERE name = 'restrict_nonsystem_relation_kind'`) is the session's own business.
 */
export const PROTECTED_SETTINGS: ReadonlySet<string> = new Set([
  "default_transaction_read_only", "transaction_read_only", "search_path", "role",
  "session_authorization", "standard_conforming_strings", "client_encoding", "all",
]);

/** Whether a statement calling set_config() may change a protected setting: it names one, or
 * names no setting the classifier could read (set_config named by DDL, attribute notation, …). */
export function setConfigTouchesProtected(f: StatementFacts): boolean {
  if (!f.functions.some((fn) => fn === "set_config" || fn.endsWith(".set_config"))) return false;
  const settings = f.settings ?? [];
  return settings.length === 0 || settings.some((s) => PROTECTED_SETTINGS.has(s));
}

/** Settings that say who the target session runs as: the gateway's connection decides that. */
const IDENTITY_SETTINGS: readonly string[] = ["role", "session_authorization"];
/** Settings that undo a session's read-only limit. */
const READ_ONLY_LIMIT_SETTINGS: readonly string[] = ["default_transaction_read_only", "transaction_read_only"];

/** Settings the gateway enforces itself whatever the session sets: `statement_timeout` (a
 * policy's `statementTimeout` is timed by the gateway, which cancels the statement; the
 * session's own statement_timeout is the client's). */
const SELF_ENFORCED_SETTINGS: readonly string[] = ["statement_timeout"];

/**
 * Whether a client may not set `name` in a session whose policies injected `injected` (the
 * session's settings at connect): the read-only pair and the session's identity (role,
 * session_authorization). For settings a client gives outside a statement (PostgreSQL start-up
 * parameters and `options`), the same as SET refuses. `statement_timeout` is the client's to
 * set: the gateway times a policy's limit itself.
 */
export function isProtectedSetting(name: string, injected: Readonly<Record<string, string>>): boolean {
  const n = name.toLowerCase();
  if (IDENTITY_SETTINGS.includes(n)) return true;
  if (SELF_ENFORCED_SETTINGS.includes(n)) return false;
  if (Object.keys(injected).some((k) => k.toLowerCase() === n)) return true;
  const readOnly = Object.keys(injected).some((k) => READ_ONLY_LIMIT_SETTINGS.includes(k.toLowerCase()));
  return readOnly && READ_ONLY_LIMIT_SETTINGS.includes(n);
}
