/**
 * How the pipeline combines its evaluators' answers (pure, no I/O).
 *
 * Sessions: the first deny wins, else the first explicit allow. Statements and commands: the
 * first deny wins; allows merge (masks accumulate, the smallest row limit wins); the first hold
 * is kept while later evaluators may still deny (no person is asked about something refused
 * anyway), and the allows merge into what the hold allows once approved.
 */
import { ALLOW, deny, type AllowDecision, type Decision, type HoldDecision, type ResultPlan, type Verdict } from "../core/decision.js";
import type { DbQueryEvent, SessionStartEvent } from "../core/events.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";

/** One evaluator's answer: synchronous on the hot path, a promise when it must look something up. */
type Answer = Verdict | undefined | Promise<Verdict | undefined>;

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
 * The fastpath function-call interface calls a function by OID with arguments in binary: there
 * is no statement to inspect (e.g. lo_import), so it is refused whatever the policies say.
 */
const FASTPATH_DENIED = deny("GW_POLICY_DENIED", "the fastpath function-call interface is not allowed through the gateway", "no-fastpath");

/** Merge allow decisions: masks accumulate, the smallest row limit wins. */
export function mergeAllows(a: AllowDecision, b: AllowDecision): AllowDecision {
  if (b.plan === undefined) return a.rule === undefined && b.rule !== undefined ? { ...a, rule: b.rule } : a;
  if (a.plan === undefined) return a.rule === undefined ? b : { ...b, rule: a.rule };
  const limitFromB = b.plan.maxRows !== undefined && (a.plan.maxRows === undefined || b.plan.maxRows < a.plan.maxRows);
  const plan: ResultPlan = {
    masks: [...a.plan.masks, ...b.plan.masks],
    ...(limitFromB ? { maxRows: b.plan.maxRows, ...(b.plan.maxRowsRule === undefined ? {} : { maxRowsRule: b.plan.maxRowsRule }) } : {}),
    ...(!limitFromB && a.plan.maxRows !== undefined ? { maxRows: a.plan.maxRows, ...(a.plan.maxRowsRule === undefined ? {} : { maxRowsRule: a.plan.maxRowsRule }) } : {}),
  };
  return { type: "allow", plan, ...(a.rule ?? b.rule) === undefined ? {} : { rule: a.rule ?? b.rule } };
}

/** Statement judgement over the session's evaluators, in order. */
export function evaluateStatement(evaluators: readonly SessionEvaluator[], event: DbQueryEvent): Verdict | Promise<Verdict> {
  if (event.stage === "function_call") return FASTPATH_DENIED;
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
