/**
 * Preview-then-commit approvals and cost estimates (issue 21): what a held write would do,
 * found by running it on the gateway's own target session in a transaction that is rolled
 * back, and what the target's planner estimates a statement costs before it runs. Engines
 * produce these (PostgreSQL: src/protocols/postgres/preview.ts); the approval service binds an
 * approval to its preview and compares it again at release (previewDrift); the SQL policies
 * judge `match.cost` / `match.estimatedRows` on an estimate.
 */
import type { MaskRule } from "./decision.js";
import type { BoundParams } from "./events.js";

/** How far a repeated preview may move from the approved one: max(rows, percent of approved). */
export interface PreviewTolerance {
  readonly rows: number;
  readonly percent: number;
}

/** What a policy asks of a held statement's preview (policy keys preview, maxAffectedRows, previewTolerance). */
export interface PreviewSettings {
  readonly rule: string;
  /** A preview that changes more rows (all tables) is refused. */
  readonly maxAffectedRows?: number;
  readonly tolerance: PreviewTolerance;
  /** The classification of the held statement (what it may be run as). */
  readonly operations: readonly string[];
  readonly writes: readonly { readonly schema?: string | undefined; readonly name: string }[];
  readonly functions: readonly string[];
  /** Statements in the held text (a preview runs exactly one). */
  readonly statements: number;
}

/** What the engine is asked to preview. */
export interface PreviewStatement {
  readonly sql: string;
  readonly params?: BoundParams;
  readonly settings: PreviewSettings;
  /** The statement's masking plan: sample rows are masked like any result. */
  readonly masks: readonly MaskRule[];
}

/** Rows one table would have changed. */
export interface PreviewTableCount {
  /** Schema-qualified. */
  readonly relation: string;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
}

/** A few affected rows, masked: deleted rows as they were (before), inserted and updated rows as they would be (after). */
export interface PreviewSample {
  readonly image: "before" | "after";
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
  /** More rows were affected than shown. */
  readonly truncated: boolean;
}

export type StatementPreview =
  | {
      readonly status: "previewed";
      /** Rows changed over every table (cascades and triggers included). */
      readonly affectedRows: number;
      readonly tables: readonly PreviewTableCount[];
      readonly sample?: PreviewSample;
      /** EXPLAIN of the statement, one line per entry (capped). */
      readonly plan: readonly string[];
    }
  /** Not run: running it could have effects a rollback does not undo (or it is not a plain write). */
  | { readonly status: "unpreviewable"; readonly reason: string }
  /** Run, but the target refused it (its SQLSTATE only: a message could echo a value). */
  | { readonly status: "failed"; readonly reason: string };

/** Runs a preview on the target (engine-provided, JudgeHooks.preview). Never rejects. */
export type StatementPreviewer = (statement: PreviewStatement) => Promise<StatementPreview>;

/** The planner's estimate of one statement (EXPLAIN (FORMAT JSON)). */
export interface CostEstimate {
  /** The top plan node's total cost, in the planner's units (absent: the target's plan gives none, e.g. MariaDB 10.x). */
  readonly cost?: number;
  /** Rows the statement is estimated to return or, for a write, to touch. */
  readonly rows: number;
}

export const DEFAULT_PREVIEW_TOLERANCE: PreviewTolerance = { rows: 0, percent: 0 };

/** Parses a policy's previewTolerance (`5` rows or `"10%"`). */
export function previewTolerance(v: number | string | undefined): PreviewTolerance {
  if (v === undefined) return DEFAULT_PREVIEW_TOLERANCE;
  if (typeof v === "number") return { rows: v, percent: 0 };
  return { rows: 0, percent: Number(v.replace("%", "")) };
}

function allowed(approved: number, t: PreviewTolerance): number {
  return Math.max(t.rows, Math.floor((approved * t.percent) / 100));
}

function total(c: PreviewTableCount): number {
  return c.inserted + c.updated + c.deleted;
}

function describeCount(c: PreviewTableCount): string {
  const parts: string[] = [];
  if (c.deleted > 0) parts.push(`${c.deleted} deleted`);
  if (c.updated > 0) parts.push(`${c.updated} updated`);
  if (c.inserted > 0) parts.push(`${c.inserted} inserted`);
  return `${c.relation}: ${parts.length === 0 ? "no rows" : parts.join(", ")}`;
}

/**
 * Where a repeated preview differs from the approved one beyond the tolerance, as one sentence,
 * or undefined. The same tables must change (objects), and each table's count may move by the
 * tolerance at most.
 */
export function previewDrift(approved: StatementPreview, now: StatementPreview, t: PreviewTolerance): string | undefined {
  if (approved.status !== "previewed") return undefined;
  if (now.status !== "previewed") return `the preview could not be repeated (${now.reason})`;
  const before = new Map(approved.tables.map((c) => [c.relation, c]));
  const after = new Map(now.tables.map((c) => [c.relation, c]));
  const changes: string[] = [];
  for (const [rel, a] of before) {
    const n = after.get(rel);
    if (n === undefined) {
      changes.push(`${rel} would no longer change (approved: ${describeCount(a).slice(rel.length + 2)})`);
      continue;
    }
    const d = Math.abs(total(n) - total(a));
    if (d > allowed(total(a), t)) changes.push(`${rel} would now have ${describeCount(n).slice(rel.length + 2)} (approved: ${describeCount(a).slice(rel.length + 2)})`);
  }
  for (const [rel, n] of after) if (!before.has(rel)) changes.push(`${rel} would now change too (${describeCount(n).slice(rel.length + 2)})`);
  if (changes.length === 0) return undefined;
  const tol = t.rows === 0 && t.percent === 0 ? "no tolerance" : `tolerance ${t.rows > 0 ? `${t.rows} rows` : ""}${t.rows > 0 && t.percent > 0 ? " or " : ""}${t.percent > 0 ? `${t.percent}%` : ""}`;
  return `${changes.slice(0, 5).join("; ")} (${tol})`;
}

/** The preview as lines people read (CLI, approval page, notifications). */
export function describePreview(p: StatementPreview): string[] {
  switch (p.status) {
    case "unpreviewable":
      return [`cannot preview: ${p.reason}`];
    case "failed":
      return [`preview failed: ${p.reason}`];
    case "previewed": {
      const lines = [`would change ${p.affectedRows} row(s)`, ...p.tables.map((c) => `  ${describeCount(c)}`)];
      if (p.sample !== undefined && p.sample.rows.length > 0) {
        lines.push(`sample (${p.sample.image}${p.sample.truncated ? ", first rows" : ""}): ${p.sample.columns.join(" | ")}`);
        for (const r of p.sample.rows) lines.push(`  ${r.map((v) => (v === null ? "NULL" : v)).join(" | ")}`);
      }
      if (p.plan.length > 0) lines.push("plan:", ...p.plan.map((l) => `  ${l}`));
      return lines;
    }
  }
}

/** Whether an estimate satisfies a `{ gt, gte }` comparison. */
export function compareNumber(value: number, c: { readonly gt?: number | undefined; readonly gte?: number | undefined }): boolean {
  if (c.gt !== undefined && !(value > c.gt)) return false;
  if (c.gte !== undefined && !(value >= c.gte)) return false;
  return true;
}
