/**
 * How the pipeline combines its evaluators' answers (pure, no I/O).
 *
 * Sessions: the first deny wins, else the first explicit allow. Statements and commands: the
 * first deny wins; allows merge (masks accumulate, the smallest row limit wins); the first hold
 * is kept while later evaluators may still deny (no person is asked about something refused
 * anyway), and the allows merge into what the hold allows once approved. A cost deferral (a
 * prepared statement whose cost rule needs each execution's values) is kept like a hold, and
 * the allows merge into each execution's verdict.
 */
import { ALLOW, deny, type AllowDecision, type CostDeferral, type Decision, type DenyDecision, type EvaluatorVerdict, type HoldDecision, type ResultPlan, type Verdict } from "../core/decision.js";
import type { JudgedEvent, SessionStartEvent } from "../core/events.js";
import type { Answer, Evaluator, SessionEvaluator } from "./evaluator.js";

/** Session admission: the first deny wins; otherwise the first explicit allow. */
export function evaluateSession(evaluators: readonly Evaluator[], event: SessionStartEvent): Decision {
  let decision: Decision | undefined;
  for (const evaluator of evaluators) {
    const d = evaluator.evaluateSession?.(event);
    if (d === undefined) continue;
    if (d.type === "deny") return d;
    decision ??= d;
  }
  return decision ?? ALLOW;
}

/**
 * Merge allow decisions: masks accumulate, the smallest row limit wins, the first refusal of
 * the result stands, and a raw transfer stays raw. A deferred hold is never merged: only the
 * pipeline makes one, after merging.
 */
export function mergeAllows(a: AllowDecision, b: AllowDecision): AllowDecision {
  const rule = a.rule ?? b.rule;
  if (b.plan === undefined) return a.rule === undefined && b.rule !== undefined ? { ...a, rule: b.rule } : a;
  if (a.plan === undefined) return a.rule === undefined ? b : { ...b, rule: a.rule };
  const limit = b.plan.maxRows !== undefined && (a.plan.maxRows === undefined || b.plan.maxRows < a.plan.maxRows) ? b.plan : a.plan;
  const refuse = a.plan.refuse ?? b.plan.refuse;
  const plan: ResultPlan = {
    masks: [...a.plan.masks, ...b.plan.masks],
    ...(limit.maxRows === undefined ? {} : { maxRows: limit.maxRows }),
    ...(limit.maxRowsRule === undefined ? {} : { maxRowsRule: limit.maxRowsRule }),
    ...(refuse === undefined ? {} : { refuse }),
    ...(a.plan.transfer === "raw" || b.plan.transfer === "raw" ? { transfer: "raw" as const } : {}),
  };
  return { type: "allow", plan, ...(rule === undefined ? {} : { rule }) };
}

/** Event judgement over the evaluators that opted in to its kind, in order. */
export function evaluateEvent(evaluators: readonly SessionEvaluator[], event: JudgedEvent): EvaluatorVerdict | Promise<EvaluatorVerdict> {
  return combineVerdicts(evaluators, (e) => e.evaluate(event));
}

/** A hold or a cost deferral, kept while later evaluators may still deny. */
type Pending = HoldDecision | CostDeferral;

/**
 * Ask each evaluator in order and combine the answers (see the module comment). Synchronous
 * unless an evaluator returns a promise.
 */
export function combineVerdicts(evaluators: readonly SessionEvaluator[], ask: (e: SessionEvaluator) => Answer): EvaluatorVerdict | Promise<EvaluatorVerdict> {
  let acc: AllowDecision = ALLOW;
  let pending: Pending | undefined;
  for (let i = 0; i < evaluators.length; i++) {
    const e = evaluators[i];
    const d = e === undefined ? undefined : ask(e);
    if (d instanceof Promise) return finishAsync(evaluators, ask, i, d, acc, pending);
    if (d === undefined) continue;
    if (d.type === "deny") return d;
    if (d.type === "hold" || d.type === "defer") {
      const both = keepPending(pending, d);
      if (both.type === "deny") return both;
      pending = both;
    } else acc = mergeAllows(acc, d);
  }
  return finish(acc, pending);
}

/**
 * The first hold (or cost deferral) is kept. A hold and a cost deferral from different
 * evaluators cannot both be honoured by one decision: refused (fail closed).
 */
function keepPending(kept: Pending | undefined, d: Pending): Pending | DenyDecision {
  if (kept === undefined || kept.type === d.type) return kept ?? d;
  return deny("GW_POLICY_DENIED", `rules ${kept.rule} and ${d.rule} would decide this statement at different times (one holds it, one judges its estimate at each execution), so it is refused (fail closed)`, d.rule);
}

function finish(acc: AllowDecision, pending: Pending | undefined): EvaluatorVerdict {
  if (pending === undefined) return acc;
  if (pending.type === "hold") return { ...pending, allow: mergeAllows(acc, pending.allow) };
  if (acc === ALLOW) return pending;
  // The other evaluators' allows merge into whatever each execution is decided.
  const decide = pending.decide;
  return {
    ...pending,
    decide: (estimate) => {
      const v = decide(estimate);
      return v instanceof Promise ? v.then((x) => withAllows(acc, x)) : withAllows(acc, v);
    },
  };
}

/** Merge earlier evaluators' allows into a verdict (the allow a hold gives once approved included). */
export function withAllows(acc: AllowDecision, v: Verdict): Verdict {
  switch (v.type) {
    case "deny":
      return v;
    case "allow":
      return mergeAllows(acc, v);
    case "hold":
      return { ...v, allow: mergeAllows(acc, v.allow) };
  }
}

/**
 * A verdict for a dry run (MCP `check_policy`, the console's try-it): a cost deferral, which
 * only a live prepare with parameters gets, is shown as the refusal its rule would give
 * without an estimate.
 */
export function settledVerdict(v: EvaluatorVerdict): Verdict | Promise<Verdict> {
  return v.type === "defer" ? v.decide(undefined) : v;
}

async function finishAsync(
  evaluators: readonly SessionEvaluator[],
  ask: (e: SessionEvaluator) => Answer,
  index: number,
  first: Promise<EvaluatorVerdict | undefined>,
  acc: AllowDecision,
  held: Pending | undefined,
): Promise<EvaluatorVerdict> {
  let current = acc;
  let pending = held;
  const take = (d: EvaluatorVerdict | undefined): DenyDecision | undefined => {
    if (d === undefined) return undefined;
    if (d.type === "deny") return d;
    if (d.type === "hold" || d.type === "defer") {
      const both = keepPending(pending, d);
      if (both.type === "deny") return both;
      pending = both;
    } else current = mergeAllows(current, d);
    return undefined;
  };
  const denied = take(await first);
  if (denied !== undefined) return denied;
  for (let i = index + 1; i < evaluators.length; i++) {
    const e = evaluators[i];
    const refused = take(e === undefined ? undefined : await ask(e));
    if (refused !== undefined) return refused;
  }
  return finish(current, pending);
}
