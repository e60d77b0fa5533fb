/**
 * The hold decision of a `require_approval` / `require_grant` policy, built the same way by every
 * protocol's evaluator: the policy's approvers, quorum, timeout and mode, its own message or
 * "WHAT needs approval (rule NAME)", and what approvers are shown (`summary`). SQL holds carry
 * more (objects, previews) and are built in sql-session.ts.
 */
import type { AllowDecision, HoldDecision } from "../core/decision.js";
import { DEFAULT_APPROVAL_TIMEOUT_MS } from "./sql-policy.js";
import type { PolicyConfig } from "../runtime/config.js";

export function policyHold(p: { readonly name: string; readonly config: PolicyConfig }, allow: AllowDecision, what: string, summary: NonNullable<HoldDecision["summary"]>): HoldDecision {
  const grant = p.config.action === "require_grant";
  return {
    type: "hold",
    need: grant ? "grant" : "approval",
    rule: p.name,
    message: p.config.message ?? `${what} needs ${grant ? "an active access grant" : "approval"} (rule ${p.name})`,
    approvers: p.config.approvers ?? [],
    minApprovals: p.config.minApprovals ?? 1,
    timeoutMs: p.config.timeout ?? DEFAULT_APPROVAL_TIMEOUT_MS,
    mode: p.config.mode ?? "wait",
    allow: { ...allow, rule: p.name },
    summary,
  };
}
