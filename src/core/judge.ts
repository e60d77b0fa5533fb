/**
 * What engines see of the pipeline: one `Judge` per admitted session. Engines depend on these
 * interfaces, never on the pipeline's class (src/policy/pipeline.ts implements them).
 */
import type { Decision } from "./decision.js";
import type { JudgedEvent, ObservedEvent } from "./events.js";
import type { ObjectResolver } from "./objects.js";
import type { ResultWatch } from "./result-watch.js";
import type { StatementPreviewer } from "./preview.js";
import type { SessionEndReason, SessionInfo, SessionStats, TerminationReason } from "./session.js";

/** What an engine is told while a statement waits for a person's decision. */
export interface HoldNotice {
  readonly approvalId: string;
  /** e.g. "waiting for approval …: airlock approvals approve ID" (no secrets). */
  readonly message: string;
}

/** Engine hooks for one judgement. */
export interface JudgeHooks {
  /** Called once when the event is held (wait mode), before waiting. */
  readonly onHold?: (notice: HoldNotice) => void;
  /** Aborts the wait (e.g. the client sent a cancel request). */
  readonly signal?: AbortSignal;
  /**
   * Resolves the objects a held statement names as the client's session on the target would
   * (PostgreSQL: relations and functions through the session's search_path): the approval is
   * bound to them and they are compared again when the approved statement is released.
   */
  readonly resolveObjects?: ObjectResolver;
  /**
   * The engine calls `settle()` on the session before it releases anything the target sends
   * back: an allowed statement's audit record may then be queued (durable before its result
   * reaches the client) instead of written before the engine forwards (issue 13).
   */
  readonly settlesBeforeRelease?: boolean;
  /** Runs a held write in a rolled-back transaction on the target (policies with `preview`). */
  readonly preview?: StatementPreviewer;
}

/**
 * The one way an engine asks for decisions and reports facts. `judge` runs every evaluator
 * that opted in to the event's kind, resolves holds (approvals, grants), audits the decision
 * (a failed audit write turns it into a deny) and records it, before the engine forwards
 * anything. `observe` records and audits facts (results, transfers); it never refuses.
 */
export interface Judge {
  judge(event: JudgedEvent, hooks?: JudgeHooks): Promise<Decision>;
  observe(event: ObservedEvent): void;
}

/** A policy's limit on a statement's running time, and the rule (policy name) that set it. */
export interface StatementTimeoutLimit {
  readonly ms: number;
  readonly rule: string;
}

/** One admitted session as its engine holds it. */
export interface SessionJudge extends Judge {
  readonly info: SessionInfo;
  /** Aborts (with a TerminationReason) when the session must end: revocation, expiry, operator, shutdown. */
  readonly signal: AbortSignal;
  /** Why the session was terminated, once `signal` has aborted. */
  readonly termination: TerminationReason | undefined;
  /** Settings the target session starts with (limits from policies, e.g. default_transaction_read_only). */
  readonly settings: Readonly<Record<string, string>>;
  /**
   * The longest a statement may run, from the session's policies: the engine times each
   * statement and cancels it on the target when the limit passes (whatever statement_timeout
   * the client set). Undefined: no limit.
   */
  readonly statementTimeout?: StatementTimeoutLimit;
  /**
   * Make the audit records of statements judged with `settlesBeforeRelease` durable now
   * (synchronous). False: the audit log failed, and what those statements produced must not
   * be released (the engine ends the session).
   */
  settle?(): boolean;
  /**
   * `judge`, answered synchronously when nothing has to be waited for (a synchronous verdict
   * that allows, its audit record queued because the hooks say `settlesBeforeRelease`); the
   * promise `judge` returns otherwise. The hot path of an engine that settles before release.
   */
  judgeNow?(event: JudgedEvent, hooks?: JudgeHooks): Decision | Promise<Decision>;
  /** Budgets and result scanning for the rows the client receives (absent: none apply). */
  readonly results?: ResultWatch;
  /** End the session: audit, close the recording, update the store. Idempotent. */
  end(reason: SessionEndReason, stats: SessionStats, detail?: string): Promise<void>;
}
