/**
 * Guardrails and masking plans for Kubernetes sessions (issue 15), from the same `policies:`
 * list. A policy applies when its `match` is a kubernetes match (`verbs`, `resources`,
 * `namespaces`, `names`) or it has no `match`, on the session's connection and groups. Guard
 * policies are tried in order; the first that matches a request decides (allow, deny,
 * require_approval / require_grant). `kubectl exec`'s command and typed lines are judged by
 * the shell guardrails (ssh-policies.ts), which take Kubernetes sessions too.
 *
 * Matching (every key given must hold; globs, case-insensitive):
 * - `verbs`: the gateway's verbs (src/protocols/kubernetes/request.ts). A verb also covers
 *   the verbs that do the same to more objects or by another door, so a refusal cannot be
 *   stepped around: `get` covers list and watch (they return the same objects), `delete`
 *   covers deletecollection, `update` covers patch, `exec` covers attach (attaching to a pod
 *   started with a shell is a shell).
 * - `resources`: `pods`, `apps/deployments`, `pods/log`, `apps/deployments/scale`; a
 *   resource name also covers its subresources. Non-resource requests match entries that
 *   start with `/` (`/version`, `/openapi/*`).
 * - `namespaces`: a request for all namespaces (`-A`) may reach any of them, so it matches a
 *   refusing policy (fail closed) and never an allowing one. Cluster-scoped resources have no
 *   namespace; a `namespaces` policy about them matches their name for `namespaces` itself.
 * - `names`: a collection request (list, watch, deletecollection, a create whose body the
 *   gateway did not read) may touch any name: it matches a refusing policy, never an allow.
 *
 * Masks: a `mask` policy whose match matches the request gives the response its plan. With
 * `detectors`, every string value is scanned (Secrets' `data` values decoded first); with
 * `columns`, JSON paths are masked whole; with neither, the values of Secrets' `data` and
 * `stringData` are masked whole (`mask` with `resources: [secrets]`: "hide their data").
 */
import { policyWhenHolds, type WhenContext } from "./cel.js";
import { policyHold } from "./holds.js";
import { deny, type AllowDecision, type HoldDecision, type MaskRule, type Verdict } from "../core/decision.js";
import type { JudgedEvent, JudgedKind, K8sRequestEvent, K8sVerb } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import type { PolicyConfig } from "../runtime/config.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { Glob, anyGlob } from "./glob.js";

export const K8S_KINDS: readonly JudgedKind[] = ["k8s.request"];

/** JSON paths a Secret's values live under (objects, lists, watch events). */
export const SECRET_DATA_COLUMNS: readonly string[] = ["$.data.*", "$.stringData.*", "$.items[*].data.*", "$.items[*].stringData.*", "$.object.data.*", "$.object.stringData.*", "$.rows[*].object.data.*"];

/** What a policy's verb also covers (see the header). */
const VERB_FAMILY: Readonly<Partial<Record<K8sVerb, readonly K8sVerb[]>>> = {
  get: ["list", "watch"],
  delete: ["deletecollection"],
  update: ["patch"],
  exec: ["attach"],
};

interface K8sPolicy {
  readonly config: PolicyConfig;
  readonly name: string;
  readonly connections: readonly Glob[];
  readonly groups: readonly string[] | undefined;
  readonly hasMatch: boolean;
  readonly verbs?: readonly Glob[];
  readonly resources?: readonly Glob[];
  readonly namespaces?: readonly Glob[];
  readonly names?: readonly Glob[];
}

function compile(p: PolicyConfig): K8sPolicy | undefined {
  const m = p.match;
  const base = { config: p, name: p.name, connections: p.connections.map((g) => new Glob(g)), groups: p.groups };
  if (m === undefined) return { ...base, hasMatch: false };
  if (m.kind !== "kubernetes") return undefined;
  const verbs = m.verbs?.flatMap((v) => [v, ...(VERB_FAMILY[v.toLowerCase() as K8sVerb] ?? [])]);
  return {
    ...base,
    hasMatch: true,
    ...(verbs === undefined ? {} : { verbs: verbs.map((g) => new Glob(g)) }),
    ...(m.resources === undefined ? {} : { resources: m.resources.map((g) => new Glob(g)) }),
    ...(m.namespaces === undefined ? {} : { namespaces: m.namespaces.map((g) => new Glob(g)) }),
    ...(m.names === undefined ? {} : { names: m.names.map((g) => new Glob(g)) }),
  };
}

const isRefusing = (p: K8sPolicy): boolean => p.config.action !== "allow";

/** How policies name the request's resource (see request.ts resourceNames). */
function resourceNamesOf(e: K8sRequestEvent): string[] {
  if (!e.resourceRequest) return [e.path];
  const grouped = e.apiGroup === "" ? e.resource : `${e.apiGroup}/${e.resource}`;
  const out = [e.resource, grouped];
  if (e.subresource !== "") out.push(`${e.resource}/${e.subresource}`, `${grouped}/${e.subresource}`);
  return out;
}

const COLLECTION_VERBS: ReadonlySet<K8sVerb> = new Set<K8sVerb>(["list", "watch", "deletecollection"]);

export function matchesK8s(p: K8sPolicy, e: K8sRequestEvent): boolean {
  if (!p.hasMatch) return true;
  if (p.verbs !== undefined && !anyGlob(p.verbs, e.verb)) return false;
  if (p.resources !== undefined) {
    const names = resourceNamesOf(e);
    const rs = p.resources;
    // A non-resource path matches only entries written as paths; a resource never matches those.
    const ok = e.resourceRequest ? rs.some((g) => !g.source.startsWith("/") && names.some((n) => g.test(n))) : rs.some((g) => g.source.startsWith("/") && g.test(e.path));
    if (!ok) return false;
  } else if (!e.resourceRequest && (p.namespaces !== undefined || p.names !== undefined)) {
    return false;
  }
  if (p.namespaces !== undefined) {
    const ns = e.namespace !== "" ? e.namespace : e.resource === "namespaces" ? e.name : "";
    if (ns === "") {
      // All namespaces (or a cluster-scoped object, or a namespace list): may reach any.
      if (!isRefusing(p)) return false;
      if (!(e.resource === "namespaces" || COLLECTION_VERBS.has(e.verb))) return false;
    } else if (!anyGlob(p.namespaces, ns)) return false;
  }
  if (p.names !== undefined) {
    if (e.name === "") {
      if (!isRefusing(p)) return false;
    } else if (!anyGlob(p.names, e.name)) return false;
  }
  return true;
}

/**
 * The facts `when:` reads of a request (verb, resource, ns, name). What the request does not pin
 * is left out, so an expression that reads it cannot be evaluated and holds for refusing and
 * masking policies, not for allow policies (src/policy/cel.ts) — as the `namespaces` and `names`
 * match keys treat such requests: `ns` of a request that may reach every namespace (a list or
 * watch without one, a list of namespaces), `name` of a request for no one object (a list, a
 * create whose name was not read). Else `kubectl get secrets -A` would show what a refusing
 * `when: ns == "prod"` refuses one namespace at a time. A Namespace object's `ns` is its name.
 */
export function k8sWhenFacts(e: K8sRequestEvent): Record<string, string> {
  const facts: Record<string, string> = { verb: e.verb, resource: e.resource };
  const ns = e.namespace !== "" ? e.namespace : e.resource === "namespaces" ? e.name : "";
  if (!(e.resourceRequest && ns === "" && (e.resource === "namespaces" || COLLECTION_VERBS.has(e.verb)))) facts["ns"] = ns;
  if (!(e.resourceRequest && e.name === "")) facts["name"] = e.name;
  return facts;
}

/** The match's keys and the policy's `when:` (over verb, resource, namespace, name: src/policy/cel.ts) hold. */
function applies(p: K8sPolicy, e: K8sRequestEvent, context: WhenContext | undefined): boolean {
  if (!matchesK8s(p, e)) return false;
  return policyWhenHolds(p.config, "kubernetes", e.session, context, { operations: [e.verb], relations: [e.resource], event: k8sWhenFacts(e) });
}

export class K8sPolicyEvaluator implements Evaluator {
  readonly name = "kubernetes-policies";
  readonly kinds = K8S_KINDS;
  readonly #policies: readonly K8sPolicy[];
  readonly #whenContext: WhenContext | undefined;

  /** `whenContext`: time and budget counters for `when:` (default: now, no budgets). */
  constructor(policies: readonly PolicyConfig[], whenContext?: WhenContext) {
    this.#policies = policies.map(compile).filter((p): p is K8sPolicy => p !== undefined);
    this.#whenContext = whenContext;
  }

  openSession(session: SessionInfo): SessionEvaluator | undefined {
    if (session.targetType !== "kubernetes") return undefined;
    const applicable = this.#policies.filter(
      (p) => anyGlob(p.connections, session.connection) && (p.groups === undefined || p.groups.some((g) => session.principal.groups.includes(g))),
    );
    return new K8sSessionPolicies(applicable, this.#whenContext);
  }
}

export class K8sSessionPolicies implements SessionEvaluator {
  readonly kinds = K8S_KINDS;
  readonly #guards: readonly K8sPolicy[];
  readonly #masks: readonly K8sPolicy[];
  readonly #whenContext: WhenContext | undefined;

  constructor(policies: readonly K8sPolicy[], whenContext?: WhenContext) {
    this.#whenContext = whenContext;
    this.#guards = policies.filter((p) => p.config.action !== "mask");
    this.#masks = policies.filter((p) => p.config.action === "mask");
  }

  evaluate(event: JudgedEvent): Verdict | undefined {
    if (event.type !== "k8s.request") return undefined;
    const allow = this.#allowFor(event);
    for (const p of this.#guards) {
      if (!applies(p, event, this.#whenContext)) continue;
      switch (p.config.action) {
        case "allow":
          return { ...allow, rule: p.name };
        case "require_approval":
        case "require_grant":
          return this.#hold(p, event, allow);
        case "deny":
        case "mask":
          return deny("GW_POLICY_DENIED", p.config.message ?? `${event.text} is not allowed here (rule ${p.name})`, p.name);
      }
    }
    return allow;
  }

  #allowFor(e: K8sRequestEvent): AllowDecision {
    const masks: MaskRule[] = [];
    for (const p of this.#masks) {
      if (!applies(p, e, this.#whenContext)) continue;
      const detectors = p.config.detectors ?? [];
      const columns = p.config.columns ?? (detectors.length === 0 ? SECRET_DATA_COLUMNS : []);
      masks.push({
        rule: p.name,
        columns,
        detectors,
        strategy: p.config.strategy ?? "redact",
        ...(p.config.phoneRegions === undefined ? {} : { phoneRegions: p.config.phoneRegions }),
      });
    }
    return masks.length === 0 ? { type: "allow" } : { type: "allow", plan: { masks } };
  }

  #hold(p: K8sPolicy, e: K8sRequestEvent, allow: AllowDecision): HoldDecision {
    return policyHold(p, allow, e.text, { operations: [e.verb], relations: [e.namespace === "" ? e.resource : `${e.namespace}/${e.resource}${e.name === "" ? "" : `/${e.name}`}`] });
  }

}
