import type { ErrorCode } from "./errors.js";

/**
 * What the pipeline decided about a judged event. Engines render it in their protocol:
 * `allow` forwards; `deny` becomes a native error (PostgreSQL ErrorResponse 42501, …).
 */
export type Decision = AllowDecision | DenyDecision;

export interface AllowDecision {
  readonly type: "allow";
  /** The rule that explicitly allowed it, if any. */
  readonly rule?: string;
  /** How the results must be treated on the way back (masking, limits). */
  readonly plan?: ResultPlan;
}

/** The masking plan and limits for a statement's results, decided before it is forwarded. */
export interface ResultPlan {
  readonly masks: readonly MaskRule[];
  /** Rows beyond this are dropped, the client is told, and the statement is cancelled. */
  readonly maxRows?: number;
  /** The rule that set maxRows, for the notice. */
  readonly maxRowsRule?: string;
}

export type MaskStrategyName = "redact" | "partial" | "hash" | "null";

export interface MaskRule {
  readonly rule: string;
  /** table.column globs (schema.table.column also), matched case-insensitively. */
  readonly columns: readonly string[];
  /** Content detectors applied to every text value. */
  readonly detectors: readonly string[];
  readonly strategy: MaskStrategyName;
}

export interface DenyDecision {
  readonly type: "deny";
  readonly code: ErrorCode;
  readonly rule?: string;
  /** Client-facing message; engines prefix it with `airlock: `. Never contains secrets. */
  readonly message: string;
}

export const ALLOW: AllowDecision = Object.freeze({ type: "allow" });

export function deny(code: ErrorCode, message: string, rule?: string): DenyDecision {
  return rule === undefined ? { type: "deny", code, message } : { type: "deny", code, message, rule };
}
