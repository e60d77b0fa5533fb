/**
 * Guardrails and masking plans for HTTP connections (issue 15), from the same `policies:` list.
 *
 * Which policies apply: a policy whose `match` is an http match (`methods`, `paths`, `query`,
 * `headers`, `body`) or that has no `match`, on the session's connection and groups. Guard
 * policies are tried in order and the first whose match holds decides (allow, deny,
 * require_approval / require_grant). Match details: src/policy/http-match.ts.
 *
 * Fail closed on bodies: a refusing policy (deny, require_approval, require_grant) with `body`
 * predicates whose other keys hold, on a request whose body the gateway could not read as JSON
 * (too large for the inspection cap, not JSON, invalid, in an unknown content encoding), is
 * refused: the predicate cannot be evaluated, so the request cannot be shown not to match.
 *
 * Masks: a `mask` policy (optionally narrowed by the same match keys, minus `body`) contributes
 * its rule to the response's plan: `columns` are JSON paths (`$.user.email`, `*.card`) masked
 * whole, `detectors` run over every string leaf of JSON bodies, text bodies and SSE events; a
 * `columns` entry `header:NAME` masks a response header (e.g. `header:set-cookie`).
 */
import { policyHold } from "./holds.js";
import { deny, type AllowDecision, type HoldDecision, type MaskRule, type Verdict } from "../core/decision.js";
import type { HttpRequestEvent, JudgedEvent, JudgedKind } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import type { PolicyConfig } from "../runtime/config.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { Glob, anyGlob } from "./glob.js";
import { policyWhenHolds, type WhenContext } from "./cel.js";
import { bodyPredicateHolds, compileHttpMatch, nameValueHolds, stripTrailingSlash, type CompiledHttpMatch } from "./http-match.js";

export const HTTP_KINDS: readonly JudgedKind[] = ["http.request"];

interface HttpPolicy {
  readonly config: PolicyConfig;
  readonly name: string;
  readonly connections: readonly Glob[];
  readonly groups: readonly string[] | undefined;
  readonly match: CompiledHttpMatch | undefined;
}

function compile(p: PolicyConfig): HttpPolicy | undefined {
  const base = { config: p, name: p.name, connections: p.connections.map((g) => new Glob(g)), groups: p.groups };
  if (p.match === undefined) return { ...base, match: undefined };
  if (p.match.kind !== "http") return undefined;
  return { ...base, match: compileHttpMatch(p.match) };
}

const isRefusing = (p: HttpPolicy): boolean => p.config.action === "deny" || p.config.action === "require_approval" || p.config.action === "require_grant";

/** Everything but the body holds. */
function headMatches(m: CompiledHttpMatch, e: HttpRequestEvent): boolean {
  if (m.methods !== undefined && !anyGlob(m.methods, e.method)) return false;
  if (m.paths !== undefined && !anyGlob(m.paths, stripTrailingSlash(e.path))) return false;
  if (m.query !== undefined && !m.query.some((q) => nameValueHolds(q, e.query))) return false;
  if (m.headers !== undefined) {
    const pairs = Object.entries(e.headers);
    if (!m.headers.some((h) => nameValueHolds(h, pairs))) return false;
  }
  return true;
}

type MatchResult = "yes" | "no" | "unknown";

/** The facts of a request for CEL `when:` (src/policy/cel.ts). */
function whenFacts(e: HttpRequestEvent): { operations: string[]; relations: string[]; event: Record<string, unknown> } {
  const query: Record<string, string> = {};
  for (const [k, v] of e.query) if (!(k in query)) query[k] = v;
  return { operations: [e.method], relations: [e.path], event: { method: e.method, path: e.path, query, headers: { ...e.headers } } };
}

/** The match's keys and the policy's `when:` hold, the body aside. */
function headAndWhen(p: HttpPolicy, e: HttpRequestEvent, context: WhenContext | undefined): boolean {
  if (p.match !== undefined && !headMatches(p.match, e)) return false;
  return policyWhenHolds(p.config, "http", e.session, context, whenFacts(e));
}

function matches(p: HttpPolicy, e: HttpRequestEvent, context: WhenContext | undefined): MatchResult {
  const m = p.match;
  if (!headAndWhen(p, e, context)) return "no";
  if (m === undefined) return "yes";
  if (m.body === undefined) return "yes";
  if (e.body.state !== "json") return e.body.state === "none" ? "no" : "unknown";
  const doc = e.body.value;
  return m.body.some((b) => bodyPredicateHolds(b, doc)) ? "yes" : "no";
}

export class HttpPolicyEvaluator implements Evaluator {
  readonly name = "http-policies";
  readonly kinds = HTTP_KINDS;
  readonly #policies: readonly HttpPolicy[];
  readonly #whenContext: WhenContext | undefined;

  /** `whenContext`: time and budget counters for `when:` (default: now, no budgets). */
  constructor(policies: readonly PolicyConfig[], whenContext?: WhenContext) {
    this.#policies = policies.map(compile).filter((p): p is HttpPolicy => p !== undefined);
    this.#whenContext = whenContext;
  }

  openSession(session: SessionInfo): SessionEvaluator | undefined {
    if (session.targetType !== "http") return undefined;
    const applicable = this.#policies.filter(
      (p) => anyGlob(p.connections, session.connection) && (p.groups === undefined || p.groups.some((g) => session.principal.groups.includes(g))),
    );
    return new HttpSessionPolicies(applicable, this.#whenContext);
  }
}

const maskRules = new WeakMap<HttpPolicy, MaskRule>();

/** A mask policy as a MaskRule: one object per policy, so maskers and compiled paths cached by rule are reused. */
function maskRuleOf(p: HttpPolicy): MaskRule {
  let r = maskRules.get(p);
  if (r === undefined) {
    r = Object.freeze({
      rule: p.name,
      columns: p.config.columns ?? [],
      detectors: p.config.detectors ?? [],
      strategy: p.config.strategy ?? "redact",
      ...(p.config.phoneRegions === undefined ? {} : { phoneRegions: p.config.phoneRegions }),
    });
    maskRules.set(p, r);
  }
  return r;
}

export class HttpSessionPolicies implements SessionEvaluator {
  readonly kinds = HTTP_KINDS;
  readonly #guards: readonly HttpPolicy[];
  readonly #masks: readonly HttpPolicy[];
  readonly #whenContext: WhenContext | undefined;
  /** Mask plans by the set of mask policies that applied (indexes into #masks). */
  readonly #plans = new Map<string, { readonly masks: readonly MaskRule[] }>();

  constructor(policies: readonly HttpPolicy[], whenContext?: WhenContext) {
    this.#guards = policies.filter((p) => p.config.action !== "mask");
    this.#masks = policies.filter((p) => p.config.action === "mask");
    this.#whenContext = whenContext;
  }

  evaluate(event: JudgedEvent): Verdict | undefined {
    if (event.type !== "http.request") return undefined;
    const allow = this.#allowFor(event);
    for (const p of this.#guards) {
      const r = matches(p, event, this.#whenContext);
      if (r === "no") continue;
      if (r === "unknown") {
        // An allow whose body predicate cannot be read does not allow; a refusing rule refuses.
        if (!isRefusing(p)) continue;
        const why = event.body.state === "opaque" ? describeOpaque(event.body.reason) : "it has no body";
        return deny("GW_POLICY_DENIED", `rule ${p.name} must inspect the request body, but ${why}, so the request is refused (fail closed)`, p.name);
      }
      if (p.config.action === "allow") return { ...allow, rule: p.name };
      if (p.config.action === "require_approval" || p.config.action === "require_grant") {
        // An approval is bound to the request's text, which carries the body's digest: a body the
        // gateway did not read whole has none, and could be swapped after approval.
        if (p.config.action === "require_approval" && event.body.state === "opaque" && event.body.sha256 === undefined) {
          return deny("GW_POLICY_DENIED", `rule ${p.name} needs approval, but the request body is too large to bind to an approval, so it is refused`, p.name);
        }
        return this.#hold(p, event, allow);
      }
      return deny("GW_POLICY_DENIED", p.config.message ?? `${event.method} ${event.path} is not allowed here (rule ${p.name})`, p.name);
    }
    return allow;
  }

  #allowFor(event: HttpRequestEvent): AllowDecision {
    let masks: MaskRule[] | undefined;
    let key = "";
    for (let i = 0; i < this.#masks.length; i++) {
      const p = this.#masks[i];
      if (p === undefined || !headAndWhen(p, event, this.#whenContext)) continue;
      (masks ??= []).push(maskRuleOf(p));
      key += `${i},`;
    }
    if (masks === undefined) return { type: "allow" };
    // The same list of rules for the same set of policies: the maskers, compiled JSON paths and
    // derived body/header rules the engine caches by identity are then built once, not per request.
    let plan = this.#plans.get(key);
    if (plan === undefined) {
      plan = Object.freeze({ masks: Object.freeze(masks) });
      this.#plans.set(key, plan);
    }
    return { type: "allow", plan };
  }

  #hold(p: HttpPolicy, e: HttpRequestEvent, allow: AllowDecision): HoldDecision {
    return policyHold(p, allow, `${e.method} ${e.path}`, { operations: [e.method], relations: [e.path] });
  }

}

function describeOpaque(reason: "too_large" | "not_json" | "invalid_json" | "encoded"): string {
  switch (reason) {
    case "too_large":
      return "it is larger than the inspection limit";
    case "not_json":
      return "it is not JSON";
    case "invalid_json":
      return "it is not valid JSON";
    case "encoded":
      return "its content encoding cannot be read";
  }
}
