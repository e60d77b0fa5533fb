import type { ObjectNames } from "./objects.js";
import type { ErrorCode } from "./errors.js";
import type { DeferredHold } from "./events.js";
import type { CostEstimate, PreviewSettings } from "./preview.js";

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
  /**
   * A prepared statement whose executions are held: preparing is allowed, and each execution
   * is judged on its own (`db.execute` with this token and the execution's values).
   */
  readonly deferred?: DeferredHold;
}

/** The masking plan and limits for a statement's results, decided before it is forwarded. */
export interface ResultPlan {
  readonly masks: readonly MaskRule[];
  /** Rows beyond this are dropped, the client is told, and the statement is cancelled. */
  readonly maxRows?: number;
  /** The rule that set maxRows, for the notice. */
  readonly maxRowsRule?: string;
  /**
   * The statement reads a column a column rule covers: its errors and notices may echo such a
   * value (`select password::int …` → `invalid input syntax for type integer: "hunter2"`) that
   * no content detector would find, so the engine redacts their value-echoing parts.
   */
  readonly redactEchoes?: boolean;
  /**
   * The result must not reach the client at all (e.g. a COPY whose columns a mask rule covers
   * in a format that cannot be rewritten): the engine renders this refusal in place of the
   * result, and the recording shows the refusal, not the target's answer.
   */
  readonly refuse?: DenyDecision;
  /**
   * The stream is passed as raw bytes, unmasked, and recorded as a file transfer (sizes and
   * hashes, not content): a file-copy protocol (scp, rsync) whose bytes a text masker would
   * corrupt. Only an evaluator that knows the command decides this.
   */
  readonly transfer?: "raw";
  /**
   * Where the result's columns come from, per statement of the message (one per simple-query
   * unit; the model narrows it to the running statement): lets a column rule cover a computed
   * field (`lower(email)`) that carries no table origin. Absent: not known (no SQL facts).
   */
  readonly lineage?: readonly (StatementLineage | undefined)[];
}

/** A column a result value may derive from. `relation` absent: any relation; column `*`: the whole row. */
export interface SourceColumn {
  readonly schema?: string;
  readonly relation?: string;
  readonly column: string;
}

/** The source columns of a statement's output columns (src/policy/sql/lineage.ts). */
export interface StatementLineage {
  /** Per output column, in order; absent when the output list cannot be mapped to the
   * result's fields (a `*` in the output list, a statement that is not a query). */
  readonly outputs?: readonly (readonly SourceColumn[])[];
  /** Every column the statement reads anywhere: what an output of unknown lineage may carry. */
  readonly reads: readonly SourceColumn[];
  /** The output columns' names, aligned with `outputs` (MySQL: a view's columns by name). */
  readonly names?: readonly (string | undefined)[];
  /**
   * MySQL/MariaDB: relations whose columns a result field may name as its origin (org_table,
   * org_name) although they are not tables: derived tables, CTEs and views, with the base
   * columns behind each of their columns (src/policy/mysql/lineage.ts).
   */
  readonly derived?: readonly DerivedRelation[];
}

/** A derived table, CTE or view: its columns' sources (`all`: every source of any of its columns). */
export interface DerivedRelation {
  /** Absent for derived tables and CTEs (named by alias in the statement). */
  readonly schema?: string;
  readonly name: string;
  /** Column name (lower case) → sources. A column not listed may carry any of `all`. */
  readonly columns: Readonly<Record<string, readonly SourceColumn[]>>;
  readonly all: readonly SourceColumn[];
}

export type MaskStrategyName = "redact" | "partial" | "hash" | "null";

export interface MaskRule {
  readonly rule: string;
  /** table.column globs (schema.table.column also), matched case-insensitively. */
  readonly columns: readonly string[];
  /** Content detectors applied to every text value. */
  readonly detectors: readonly string[];
  readonly strategy: MaskStrategyName;
  /**
   * The countries whose national phone formats the `phone` detector knows (ISO 3166 codes,
   * validated at config load); absent: the library's default list.
   */
  readonly phoneRegions?: readonly string[];
}

export interface DenyDecision {
  readonly type: "deny";
  readonly code: ErrorCode;
  readonly rule?: string;
  /** Client-facing message; engines prefix it with `airlock: `. Never contains secrets. */
  readonly message: string;
  /** An async-mode approval request this refusal created or found (HTTP answers 202 with it). */
  readonly pending?: { readonly approvalId: string; readonly expiresAt: Date };
  /**
   * The refusal lasts until then and no longer (a spent budget: the end of its window). HTTP
   * answers it with 429 and `Retry-After`.
   */
  readonly retryAt?: Date;
}

/**
 * An evaluator's verdict that a person must decide first (`require_approval`), or that an
 * active access grant is needed (`require_grant`). Only the pipeline sees it: it turns a hold
 * into the final allow or deny (src/approvals), so engines only ever render allow and deny.
 */
export interface HoldDecision {
  readonly type: "hold";
  readonly need: "approval" | "grant";
  readonly rule: string;
  /** The policy's message (or a default naming the rule). */
  readonly message: string;
  /** Groups whose members may approve (approval only). */
  readonly approvers: readonly string[];
  /** Distinct approvers needed; any deny denies. */
  readonly minApprovals: number;
  /** How long a request waits for its decision; in async mode also how long an approval stays usable. */
  readonly timeoutMs: number;
  /** wait: the client waits for the decision; async: refused at once, the approved re-send runs once. */
  readonly mode: "wait" | "async";
  /** What the statement is allowed with (masks, limits) once approved. */
  readonly allow: AllowDecision;
  /** Classification summary shown to approvers. */
  readonly summary?: { readonly operations: readonly string[]; readonly relations: readonly string[] };
  /**
   * The objects the statement names (relations, functions), for an approval bound to what they
   * resolve to on the target (core/objects.ts). Undefined: nothing to bind (SSH, grants).
   */
  readonly objects?: ObjectNames;
  /** The statement is SQL `PREPARE name`: what its names resolve to now is what its EXECUTEs run. */
  readonly prepares?: string;
  /** The statement is SQL `EXECUTE name` (or a Bind of it): compared with what `name` was prepared against. */
  readonly executes?: string;
  /** Called once if the statement is finally allowed (session state such as prepared statements). */
  readonly onAllowed?: () => void;
  /**
   * The policy asks for a preview (`preview: true` / `maxAffectedRows`): the statement is run
   * in a rolled-back transaction first and the approval is bound to what it did (core/preview.ts).
   */
  readonly preview?: PreviewSettings;
}

/** What evaluators may return for a statement: a decision, or a hold the pipeline resolves. */
export type Verdict = Decision | HoldDecision;

/**
 * A cost rule (`match.cost` / `match.estimatedRows`) applies to a statement prepared with
 * parameters: the planner can estimate it only with values, which each execution brings. The
 * pipeline allows the prepare (preparing runs nothing) carrying this deferral (DeferredHold),
 * and decides each execution with `decide`, given the estimator of that execution (EXPLAIN
 * with its values). Only the pipeline sees it; engines only ever render allow and deny.
 */
export interface CostDeferral {
  readonly type: "defer";
  /** The first cost rule that needs the values. */
  readonly rule: string;
  /** Why an execution would be refused by that rule (fail closed), for a refusal at the prepare. */
  readonly message: string;
  /**
   * The statement's objects, when an execution may be held for approval: bound at the prepare,
   * as for a held prepared statement (the target analyses it then).
   */
  readonly objects?: ObjectNames;
  /**
   * The verdict of one execution. `estimate` absent: the engine cannot estimate it (refused,
   * fail closed); an estimate that cannot be had refuses too. Never rejects.
   */
  readonly decide: (estimate: (() => Promise<CostEstimate>) | undefined) => Verdict | Promise<Verdict>;
}

/** What an evaluator may answer: a verdict, or (a statement prepared with parameters) a cost deferral. */
export type EvaluatorVerdict = Verdict | CostDeferral;

export const ALLOW: AllowDecision = Object.freeze({ type: "allow" });

export function deny(code: ErrorCode, message: string, rule?: string): DenyDecision {
  return rule === undefined ? { type: "deny", code, message } : { type: "deny", code, message, rule };
}
