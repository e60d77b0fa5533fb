/**
 * Guardrails, masking plans and call limits for MCP gateway connections (issue 16), from the
 * same `policies:` list.
 *
 * Which policies apply: a policy whose `match` is an mcp match (`tools`, `arguments`) or that
 * has no `match`, on the session's connection and groups. Guard policies are tried in order and
 * the first whose match holds decides (allow, deny, require_approval / require_grant).
 *
 * Requests the upstream sends back towards the agent (`sampling/createMessage`,
 * `elicitation/create`) are refused unless an `allow` policy whose match names them explicitly
 * (`tools: ["sampling/createMessage"]`) holds: a policy without a match does not allow them.
 *
 * Masks: a `mask` policy (optionally narrowed by the same match) contributes its rule to the
 * result's plan: `columns` are JSON paths over structured content and JSON text (`$.user.email`,
 * `*.card`), `detectors` run over every string leaf and text content.
 *
 * Limits: the connection's `rateLimits` are windows per principal × tool, counted when a call
 * is allowed (or held) and refused with the window's size once full: src/policy/mcp-limits.ts
 * (shared with every gateway on the store when the store keeps counters).
 */
import { policyWhenHolds, type WhenContext } from "./cel.js";
import { policyHold } from "./holds.js";
import { McpCallLimiter, type CallLimiter } from "./mcp-limits.js";
import { connectionMap, type Connection, type ConnectionSource, type McpRateLimit } from "../core/connection.js";
import { deny, type AllowDecision, type HoldDecision, type MaskRule, type Verdict } from "../core/decision.js";
import type { JudgedEvent, JudgedKind, McpCallEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import type { PolicyConfig } from "../runtime/config.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { Glob, anyGlob } from "./glob.js";
import { compileMcpMatch, mcpMatchHolds, type CompiledMcpMatch } from "./mcp-match.js";

export const MCP_KINDS: readonly JudgedKind[] = ["mcp.call"];

interface McpPolicy {
  readonly config: PolicyConfig;
  readonly name: string;
  readonly connections: readonly Glob[];
  readonly groups: readonly string[] | undefined;
  readonly match: CompiledMcpMatch | undefined;
}

function compile(p: PolicyConfig): McpPolicy | undefined {
  const base = { config: p, name: p.name, connections: p.connections.map((g) => new Glob(g)), groups: p.groups };
  if (p.match === undefined) return { ...base, match: undefined };
  if (p.match.kind !== "mcp") return undefined;
  return { ...base, match: compileMcpMatch(p.match) };
}

export class McpPolicyEvaluator implements Evaluator {
  readonly name = "mcp-policies";
  readonly kinds = MCP_KINDS;
  readonly #policies: readonly McpPolicy[];
  readonly #connections: ReadonlyMap<string, Connection>;
  readonly #limiter: CallLimiter;
  readonly #whenContext: WhenContext | undefined;

  /**
   * `whenContext`: time and budget counters for `when:` (default: now, no budgets). `limiter`:
   * shared by the evaluators that replace this one when console policies change.
   */
  constructor(policies: readonly PolicyConfig[], connections: ConnectionSource, whenContext?: WhenContext, limiter: CallLimiter = new McpCallLimiter()) {
    this.#limiter = limiter;
    this.#policies = policies.map(compile).filter((p): p is McpPolicy => p !== undefined);
    this.#connections = connectionMap(connections);
    this.#whenContext = whenContext;
  }

  openSession(session: SessionInfo): SessionEvaluator | undefined {
    if (session.targetType !== "mcp") return undefined;
    const applicable = this.#policies.filter(
      (p) => anyGlob(p.connections, session.connection) && (p.groups === undefined || p.groups.some((g) => session.principal.groups.includes(g))),
    );
    const c = this.#connections.get(session.connection);
    const limits = c?.type === "mcp" ? c.rateLimits : [];
    return new McpSessionPolicies(applicable, limits, this.#limiter, this.#whenContext);
  }
}

function unpinnedDeny(e: McpCallEvent, why: "changed" | "new" | "unknown"): Verdict {
  const conn = e.session.connection;
  switch (why) {
    case "changed":
      return deny("GW_POLICY_DENIED", `tool ${e.tool} changed since an admin approved it (its description or input schema differ): it is hidden until an admin accepts the change (airlock mcp pin ${conn})`, "tool-pinning");
    case "new":
      return deny("GW_POLICY_DENIED", `tool ${e.tool} has not been approved by an admin yet (airlock mcp pin ${conn})`, "tool-pinning");
    case "unknown":
      return deny("GW_POLICY_DENIED", `the upstream has no tool ${e.tool}`, "tool-pinning");
  }
}

function windowText(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} day(s)`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} hour(s)`;
  if (ms % 60_000 === 0) return `${ms / 60_000} minute(s)`;
  return `${Math.ceil(ms / 1000)} second(s)`;
}

export class McpSessionPolicies implements SessionEvaluator {
  readonly kinds = MCP_KINDS;
  readonly #guards: readonly McpPolicy[];
  readonly #masks: readonly McpPolicy[];
  readonly #limits: readonly McpRateLimit[];
  readonly #limiter: CallLimiter;
  readonly #whenContext: WhenContext | undefined;

  constructor(policies: readonly McpPolicy[], limits: readonly McpRateLimit[], limiter: CallLimiter, whenContext?: WhenContext) {
    this.#whenContext = whenContext;
    this.#guards = policies.filter((p) => p.config.action !== "mask");
    this.#masks = policies.filter((p) => p.config.action === "mask");
    this.#limits = limits;
    this.#limiter = limiter;
  }

  evaluate(event: JudgedEvent): Verdict | undefined {
    if (event.type !== "mcp.call") return undefined;
    if (event.unpinned !== undefined) return unpinnedDeny(event, event.unpinned);
    const verdict = this.#guard(event);
    if (verdict.type === "deny" || event.method !== "tools/call") return verdict;
    const full = this.#limiter.take(this.#limits, event.session.principal.id, event.session.connection, event.tool, event.preview !== true);
    if (full !== undefined) {
      return deny("GW_LIMIT", `tool ${event.tool} may be called at most ${full.calls} time(s) per ${windowText(full.perMs)} by each principal on this connection: try again later`, "rate-limit");
    }
    return verdict;
  }

  #guard(event: McpCallEvent): Verdict {
    const allow = this.#allowFor(event);
    const upstreamRequest = event.method === "sampling/createMessage" || event.method === "elicitation/create";
    for (const p of this.#guards) {
      if (p.match === undefined) {
        // A policy for the whole connection does not allow what the upstream asks of the agent.
        if (upstreamRequest && p.config.action === "allow") continue;
      } else if (!mcpMatchHolds(p.match, event.tool, event.arguments)) continue;
      if (!this.#when(p, event)) continue;
      if (p.config.action === "allow") return { ...allow, rule: p.name };
      if (p.config.action === "require_approval" || p.config.action === "require_grant") {
        if (event.method !== "tools/call") return deny("GW_POLICY_DENIED", `${event.method} cannot wait for approval, so it is refused (rule ${p.name})`, p.name);
        return this.#hold(p, event, allow);
      }
      return deny("GW_POLICY_DENIED", p.config.message ?? `tool ${event.tool} is not allowed here (rule ${p.name})`, p.name);
    }
    if (upstreamRequest) {
      return deny("GW_POLICY_DENIED", `the upstream MCP server asked for ${event.method}, which is refused unless a policy allows it (match: { tools: ["${event.method}"] }, action: allow)`, "mcp-upstream-requests");
    }
    return allow;
  }

  #allowFor(event: McpCallEvent): AllowDecision {
    const masks: MaskRule[] = [];
    for (const p of this.#masks) {
      if (p.match !== undefined && !mcpMatchHolds(p.match, event.tool, event.arguments)) continue;
      if (!this.#when(p, event)) continue;
      masks.push({
        rule: p.name,
        columns: p.config.columns ?? [],
        detectors: p.config.detectors ?? [],
        strategy: p.config.strategy ?? "redact",
        ...(p.config.phoneRegions === undefined ? {} : { phoneRegions: p.config.phoneRegions }),
      });
    }
    return masks.length === 0 ? { type: "allow" } : { type: "allow", plan: { masks } };
  }

  /**
   * The policy's `when:` (over tool, arguments: src/policy/cel.ts) holds. For the tool list no
   * call exists: the arguments are unknown, and an expression that reads them does not hold
   * (the tool is shown; each call is judged with its arguments).
   */
  #when(p: McpPolicy, e: McpCallEvent): boolean {
    if (e.listing === true && p.config.when !== undefined) {
      return policyWhenHolds({ when: p.config.when, action: "allow" }, "mcp", e.session, this.#whenContext, { operations: [e.tool], relations: [], event: { tool: e.tool } });
    }
    return policyWhenHolds(p.config, "mcp", e.session, this.#whenContext, { operations: [e.tool], relations: [], event: { tool: e.tool, arguments: e.arguments } });
  }

  #hold(p: McpPolicy, e: McpCallEvent, allow: AllowDecision): HoldDecision {
    return policyHold(p, allow, `tool ${e.tool}`, { operations: [e.method], relations: [e.tool] });
  }

}
