import type { Decision } from "../core/decision.js";
import type { JudgedEvent } from "../core/events.js";

/**
 * One stage of judgement. Evaluators run in the pipeline's fixed order; each returns a
 * decision or `undefined` (no opinion). The first `deny` ends judgement. Evaluators are
 * synchronous on purpose: they run for every statement on the hot path; anything slow
 * (catalog lookups, approvals) is prepared ahead or handled as its own pipeline stage.
 */
export interface Evaluator {
  readonly name: string;
  evaluate(event: JudgedEvent): Decision | undefined;
}
