import type { Decision, Verdict } from "../core/decision.js";
import type { DbQueryEvent, SessionStartEvent, SshCommandEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";

/**
 * One stage of judgement. Evaluators run in the pipeline's fixed order; each returns a
 * decision or `undefined` (no opinion). The first `deny` ends judgement.
 *
 * Session-level judgement (`evaluateSession`) is synchronous. Statement judgement happens in a
 * per-session evaluator (it keeps session state: prepared statements, search_path); it is
 * synchronous on the hot path and may return a promise only when it must look something up
 * (e.g. a view's definition in the target's catalog), which is then cached.
 */
export interface Evaluator {
  readonly name: string;
  evaluateSession?(event: SessionStartEvent): Decision | undefined;
  /** Per-session state for statement judgement; undefined when this evaluator has nothing to judge there. */
  openSession?(session: SessionInfo): SessionEvaluator | undefined;
}

export interface SessionEvaluator {
  /** Settings injected into the target session at connect (e.g. statement_timeout). */
  readonly settings?: Readonly<Record<string, string>>;
  /** A hold (require_approval / require_grant) is resolved by the pipeline, never by engines. */
  evaluate(event: DbQueryEvent): Verdict | undefined | Promise<Verdict | undefined>;
  /** SSH commands, shell lines, channels and forwards (issue 6); evaluators without it have no opinion. */
  evaluateCommand?(event: SshCommandEvent): Verdict | undefined | Promise<Verdict | undefined>;
}
