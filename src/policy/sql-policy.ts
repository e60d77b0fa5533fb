/**
 * SQL policies compiled for judging statements: their match (globs, RE2), the refusals the
 * per-session judge uses, and what approvers are shown. Pure: no session state.
 */
import { RE2JS } from "re2js";
import { deny } from "../core/decision.js";
import { GatewayError } from "../core/errors.js";
import type { JudgedKind } from "../core/events.js";
import type { ObjectNames } from "../core/objects.js";
import type { PolicyConfig } from "../runtime/config.js";
import type { NumberCompare, SqlMatch } from "./match.js";
import { ColumnGlob, Glob } from "./glob.js";
import type { ColumnAccess, QualifiedName, StatementFacts } from "./sql/index.js";

export const ATTRIBUTE_LOOKUP_FAILED = deny(
  "GW_POLICY_DENIED",
  "whether the statement's qualified names are columns or function calls (attribute notation) could not be checked against the target's catalog, so it is refused (fail closed)",
  "fail-closed",
);

/** What a view created (or renamed) by this session reads: its catalog entry may not be visible yet. */
export interface SessionView {
  readonly columns: readonly ColumnAccess[];
  readonly relations: readonly QualifiedName[];
}

export const VIEW_LOOKUP_FAILED = deny(
  "GW_POLICY_DENIED",
  "the views this statement reads could not be resolved against the target's catalog, so it is refused (fail closed)",
  "fail-closed",
);

/**
 * Whether a relation glob (`table`, `schema.table`, globs allowed) can name some table of
 * `schema`: a statement that touches every table of a schema (DROP SCHEMA … CASCADE, GRANT … ON
 * ALL TABLES IN SCHEMA, schema_to_xml) touches whatever such a glob guards there.
 */
export function globCoversSchema(relationGlob: string, schema: string | undefined): boolean {
  const dot = relationGlob.lastIndexOf(".");
  if (dot < 0 || schema === undefined) return true;
  return new Glob(relationGlob.slice(0, dot)).test(schema);
}

export type GuardAction = "deny" | "require_approval" | "require_grant" | "allow";

/** Defaults of require_approval policies (INTERFACE.md / README "Approvals"). */
/** The event kinds SQL policies judge. */
export const SQL_KINDS: readonly JudgedKind[] = ["db.query"];

export const DEFAULT_APPROVAL_TIMEOUT_MS = 10 * 60_000;

export interface CompiledMatch {
  readonly operations?: readonly Glob[];
  readonly relations?: readonly Glob[];
  readonly columns?: readonly ColumnGlob[];
  readonly functions?: readonly Glob[];
  readonly noWhere?: boolean;
  readonly statementRegex?: RE2JS;
  readonly cost?: NumberCompare;
  readonly estimatedRows?: NumberCompare;
}

/** A policy whose match (if any) is about SQL. */
export type SqlPolicyConfig = PolicyConfig & { readonly match?: SqlMatch };

export function isSqlPolicy(p: PolicyConfig): p is SqlPolicyConfig {
  return p.match === undefined || p.match.kind === "sql";
}

export interface CompiledPolicy {
  readonly config: SqlPolicyConfig;
  readonly name: string;
  readonly connections: readonly Glob[];
  readonly groups: readonly string[] | undefined;
  readonly match: CompiledMatch | undefined;
}

/** Operations that can change session settings (and so undo injected limits). */
export const SETTINGS_OPERATIONS: ReadonlySet<string> = new Set(["set", "reset", "begin", "start_transaction", "set_transaction", "discard"]);
/** Operations that change data or schema: refused in read-only sessions (PostgreSQL refuses them too). */
export const WRITE_OPERATIONS = new Set([
  "insert", "update", "delete", "merge", "truncate", "copy_from", "create", "alter", "drop", "grant", "revoke",
  "vacuum", "cluster", "reindex", "refresh_materialized_view", "lock", "call", "do", "comment", "security_label",
  "import_foreign_schema", "alter_system", "create_extension",
]);

/** Settings a session-level limit injects; changing them in the session would undo the limit. */
export const READ_ONLY_SETTINGS = ["default_transaction_read_only", "transaction_read_only"];
export const TIMEOUT_SETTINGS = ["statement_timeout"];

/** The policy's SQL match; undefined for a policy without match (it matches every statement). */
export function compileMatch(p: SqlPolicyConfig): CompiledMatch | undefined {
  const m = p.match;
  if (m === undefined) return undefined;
  let statementRegex: RE2JS | undefined;
  if (m.statementRegex !== undefined) {
    try {
      statementRegex = RE2JS.compile(m.statementRegex, RE2JS.CASE_INSENSITIVE | RE2JS.DOTALL);
    } catch (e) {
      throw new GatewayError("GW_CONFIG", `policy "${p.name}": match.statementRegex is not a valid (RE2) regular expression`, { cause: e });
    }
  }
  return {
    ...(m.operations === undefined ? {} : { operations: m.operations.map((g) => new Glob(g)) }),
    ...(m.relations === undefined ? {} : { relations: m.relations.map((g) => new Glob(g)) }),
    ...(m.columns === undefined ? {} : { columns: m.columns.map((g) => new ColumnGlob(g)) }),
    ...(m.functions === undefined ? {} : { functions: m.functions.map((g) => new Glob(g)) }),
    ...(m.noWhere === undefined ? {} : { noWhere: m.noWhere }),
    ...(statementRegex === undefined ? {} : { statementRegex }),
    ...(m.cost === undefined ? {} : { cost: m.cost }),
    ...(m.estimatedRows === undefined ? {} : { estimatedRows: m.estimatedRows }),
  };
}

export function defaultMessage(action: GuardAction, p: CompiledPolicy): string {
  switch (action) {
    case "require_approval":
      return `the statement needs approval (rule ${p.name})`;
    case "require_grant":
      return `the statement needs an active access grant (rule ${p.name})`;
    case "deny":
    case "allow":
      return `the statement is not allowed (rule ${p.name})`;
  }
}

/** What approvers are shown about a held statement: its operations and the relations it touches. */
/** Every relation and function the statements name, as written (an approval is bound to what they resolve to). */
export function objectNames(facts: readonly StatementFacts[]): ObjectNames {
  const relations = new Map<string, { schema?: string; name: string }>();
  const functions = new Set<string>();
  for (const f of facts) {
    for (const r of [...f.relationsWritten, ...f.relationsRead]) {
      if (r.name === "*") continue;
      relations.set(`${r.schema ?? ""}\u0000${r.name}`, r.schema === undefined ? { name: r.name } : { schema: r.schema, name: r.name });
    }
    for (const fn of f.functions) functions.add(fn);
  }
  return { relations: [...relations.values()], functions: [...functions] };
}

export function summarize(facts: readonly StatementFacts[]): { operations: string[]; relations: string[] } {
  const operations = new Set<string>();
  const relations = new Set<string>();
  for (const f of facts) {
    for (const op of f.operations) operations.add(op);
    for (const r of [...f.relationsWritten, ...f.relationsRead]) relations.add(r.schema === undefined ? r.name : `${r.schema}.${r.name}`);
  }
  return { operations: [...operations].slice(0, 20), relations: [...relations].slice(0, 20) };
}
