/**
 * Cost rules and previews of SQL policies (issue 21): matching `match.cost` /
 * `match.estimatedRows` on the planner's estimate, and what a held write's preview is run as.
 */
import { compareNumber, previewTolerance, type CostEstimate, type PreviewSettings } from "../core/preview.js";
import type { CompiledPolicy } from "./sql-policy.js";
import type { StatementFacts } from "./sql/index.js";

/** Statements the planner estimates (EXPLAIN): a cost rule does not apply to others (SET, BEGIN, DDL). */
export const EXPLAINABLE_OPERATIONS: ReadonlySet<string> = new Set(["select", "insert", "update", "delete", "merge"]);

export function hasCostMatch(p: CompiledPolicy): boolean {
  return p.match?.cost !== undefined || p.match?.estimatedRows !== undefined;
}

/** The rule judges a cost the target's plan does not give (it then refuses: fail closed). */
export function costMissing(p: CompiledPolicy, e: CostEstimate): boolean {
  return p.match?.cost !== undefined && e.cost === undefined;
}

export function costMatches(p: CompiledPolicy, e: CostEstimate): boolean {
  const m = p.match;
  if (m === undefined) return true;
  if (m.cost !== undefined && (e.cost === undefined || !compareNumber(e.cost, m.cost))) return false;
  if (m.estimatedRows !== undefined && !compareNumber(e.rows, m.estimatedRows)) return false;
  return true;
}

export function formatEstimate(n: number): string {
  return n >= 1e6 ? n.toExponential(2) : String(Math.round(n * 100) / 100);
}

/** What a held write's preview is run as and checked against (policy keys preview, maxAffectedRows, previewTolerance). */
export function previewSettings(p: CompiledPolicy, statements: readonly StatementFacts[], effective: readonly StatementFacts[]): PreviewSettings {
  const writes = new Map<string, { schema?: string; name: string }>();
  const operations = new Set<string>();
  const functions = new Set<string>();
  for (const f of effective) {
    for (const op of f.operations) operations.add(op);
    for (const fn of f.functions) functions.add(fn);
    for (const r of f.relationsWritten) writes.set(`${r.schema ?? ""}.${r.name}`, r.schema === undefined ? { name: r.name } : { schema: r.schema, name: r.name });
  }
  return {
    rule: p.name,
    ...(p.config.maxAffectedRows === undefined ? {} : { maxAffectedRows: p.config.maxAffectedRows }),
    tolerance: previewTolerance(p.config.previewTolerance),
    operations: [...operations],
    writes: [...writes.values()],
    functions: [...functions],
    statements: statements.length,
  };
}
