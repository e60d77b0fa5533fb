import type { Decision, EvaluatorVerdict } from "../core/decision.js";
import type { JudgedEvent, JudgedKind, SessionStartEvent } from "../core/events.js";
import type { StatementTimeoutLimit } from "../core/judge.js";
import type { SessionInfo } from "../core/session.js";

/** One evaluator's answer: synchronous on the hot path, a promise when it must look something up. */
export type Answer = EvaluatorVerdict | undefined | Promise<EvaluatorVerdict | undefined>;

/**
 * One stage of judgement. Evaluators run in the pipeline's fixed order; each returns a
 * decision or `undefined` (no opinion). The first `deny` ends judgement.
 *
 * Routing is by positive opt-in: an evaluator lists the event kinds it judges (`kinds`), and
 * the pipeline asks it about those only. A judged kind that no evaluator of the pipeline lists
 * is refused (fail closed): a new protocol's events are never judged by another's rules, nor
 * let through because nobody was asked.
 *
 * Session-level judgement (`evaluateSession`) is synchronous. Event judgement happens in a
 * per-session evaluator (it keeps session state: prepared statements, search_path); it is
 * synchronous on the hot path and may return a promise only when it must look something up
 * (e.g. a view's definition in the target's catalog), which is then cached.
 */
export interface Evaluator {
  readonly name: string;
  /** The judged event kinds this evaluator's sessions may have an opinion on. */
  readonly kinds: readonly JudgedKind[];
  evaluateSession?(event: SessionStartEvent): Decision | undefined;
  /** Per-session state for event judgement; undefined when nothing of this session is this evaluator's business. */
  openSession?(session: SessionInfo): SessionEvaluator | undefined;
}

export interface SessionEvaluator {
  /** The kinds this session's evaluator judges (a subset of its Evaluator's `kinds`). */
  readonly kinds: readonly JudgedKind[];
  /** Settings injected into the target session at connect (e.g. default_transaction_read_only). */
  readonly settings?: Readonly<Record<string, string>>;
  /** A limit on each statement's running time the engine enforces itself (cancelling it), with the rule that set it. */
  readonly statementTimeout?: StatementTimeoutLimit;
  /** Judge one event of a kind listed in `kinds`. A hold is resolved by the pipeline, never by engines. */
  evaluate(event: JudgedEvent): Answer;
}
