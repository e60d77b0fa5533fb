/** Test helpers for the SQL classifier: compact renderings of facts that read well in
 * assertions. Not used by production code. */
import { classify } from "./classify.js";
import type { ColumnAccess, QualifiedName, StatementFacts } from "./facts.js";

export function relName(r: QualifiedName): string {
  return r.schema === undefined ? r.name : `${r.schema}.${r.name}`;
}

/** `users.password:read`, `?.x:read` for a column without relation. */
export function columnName(c: ColumnAccess): string {
  return `${c.relation === undefined ? "?" : relName(c.relation)}.${c.column}:${c.access}`;
}

export interface Summary {
  readonly ops: readonly string[];
  readonly read: readonly string[];
  readonly written: readonly string[];
  readonly columns: readonly string[];
  readonly functions: readonly string[];
  readonly noWhere: boolean;
  readonly unknown: boolean;
  readonly facts: StatementFacts;
}

export function summarize(f: StatementFacts): Summary {
  return {
    ops: f.operations,
    read: f.relationsRead.map(relName),
    written: f.relationsWritten.map(relName),
    columns: f.columns.map(columnName),
    functions: f.functions,
    noWhere: f.noWhere,
    unknown: f.unknownEffects !== undefined,
    facts: f,
  };
}

/** Classifies and returns every statement's summary; throws when classification failed. */
export function statementsOf(sql: string): Summary[] {
  const c = classify(sql);
  if (!c.ok) throw new Error(`classification failed: ${c.error}`);
  return c.statements.map(summarize);
}

/** The summary of a single-statement string. */
export function one(sql: string): Summary {
  const all = statementsOf(sql);
  if (all.length !== 1) throw new Error(`expected one statement, got ${all.length}`);
  const first = all[0];
  if (first === undefined) throw new Error("unreachable");
  return first;
}
