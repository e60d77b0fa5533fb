/**
 * How the pipeline combines its evaluators' answers (pure, no I/O).
 *
 * Sessions: the first deny wins, else the first explicit allow. Statements and commands: the
 * first deny wins; allows merge (masks accumulate, the smallest row limit wins); the first hold
 * is kept while later evaluators may still deny (no person is asked about something refused
 * anyway), and the allows merge into what the hold allows once approved.
 */
import { ALLOW, type AllowDecision, type Decision, type HoldDecision, type ResultPlan, type Verdict } from "../core/decision.js";
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
export function evaluateEvent(evaluators: readonly SessionEvaluator[], event: JudgedEvent): Verdict | Promise<Verdict> {
  return combineVerdicts(evaluators, (e) => e.evaluate(event));
}

/**
 * Ask each evaluator in order and combine the answers (see the module comment). Synchronous
 * unless an evaluator returns a promise.
 */
export function combineVerdicts(evaluators: readonly SessionEvaluator[], ask: (e: SessionEvaluator) => Answer): Verdict | Promise<Verdict> {
  let acc: AllowDecision = ALLOW;
  let hold: HoldDecision | undefined;
  for (let i = 0; i < evaluators.length; i++) {
    const e = evaluators[i];
    const d = e === undefined ? undefined : ask(e);
    if (d instanceof Promise) return finishAsync(evaluators, ask, i, d, acc, hold);
    if (d === undefined) continue;
    if (d.type === "deny") return d;
    if (d.type === "hold") hold ??= d;
    else acc = mergeAllows(acc, d);
  }
  return hold === undefined ? acc : { ...hold, allow: mergeAllows(acc, hold.allow) };
}

async function finishAsync(
  evaluators: readonly SessionEvaluator[],
  ask: (e: SessionEvaluator) => Answer,
  index: number,
  pending: Promise<Verdict | undefined>,
  acc: AllowDecision,
  held: HoldDecision | undefined,
): Promise<Verdict> {
  let current = acc;
  let hold = held;
  const take = (d: Verdict | undefined): Verdict | undefined => {
    if (d === undefined) return undefined;
    if (d.type === "deny") return d;
    if (d.type === "hold") hold ??= d;
    else current = mergeAllows(current, d);
    return undefined;
  };
  const first = take(await pending);
  if (first !== undefined) return first;
  for (let i = index + 1; i < evaluators.length; i++) {
    const e = evaluators[i];
    const denied = take(e === undefined ? undefined : await ask(e));
    if (denied !== undefined) return denied;
  }
  return hold === undefined ? current : { ...hold, allow: mergeAllows(current, hold.allow) };
}
