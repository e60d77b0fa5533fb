/**
 * Protocol features that are not statements or commands (an SSH `env` or `x11` request, agent
 * forwarding, a global request; a PostgreSQL fastpath call; a message the engine found
 * malformed): judged here, so that every refusal is a decision of the pipeline, audited and
 * recorded, and the engine only renders it. The list of what the gateway serves is positive:
 * a feature not named here is refused.
 */
import { deny, type Verdict } from "../core/decision.js";
import type { JudgedEvent, JudgedKind } from "../core/events.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";

/** Features an engine may serve when asked (none yet: each is listed with the reason it is safe). */
const SERVED_FEATURES: ReadonlySet<string> = new Set<string>([]);

const KINDS: readonly JudgedKind[] = ["protocol.request", "db.function_call"];

/**
 * The engine judges a fastpath call as the SQL call of the function its OID names; it sends
 * this event only when the OID could not be resolved in the target's catalog: nothing to judge.
 */
const FASTPATH_DENIED = deny("GW_POLICY_DENIED", "the fastpath call names a function the gateway could not resolve in the target's catalog, so it is refused (fail closed)", "no-fastpath");

class FeatureJudge implements SessionEvaluator {
  readonly kinds = KINDS;

  evaluate(event: JudgedEvent): Verdict | undefined {
    if (event.type === "db.function_call") return FASTPATH_DENIED;
    if (event.type !== "protocol.request") return undefined;
    if (event.violation !== undefined) return deny(event.violation.code, event.violation.reason, "protocol");
    if (SERVED_FEATURES.has(event.feature)) return undefined;
    return deny("GW_UNSUPPORTED", `${event.detail} is not supported through the gateway`, "unsupported-feature");
  }
}

const JUDGE = new FeatureJudge();

export class FeatureEvaluator implements Evaluator {
  readonly name = "features";
  readonly kinds = KINDS;

  openSession(): SessionEvaluator {
    return JUDGE;
  }
}
