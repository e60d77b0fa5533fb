import { describe, expect, it } from "vitest";
import type { HttpBodyFacts, HttpRequestEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import { parseConfig } from "../runtime/config.js";
import { bodyPredicateHolds, parseBodyPredicate } from "./http-match.js";
import { HttpPolicyEvaluator } from "./http-policies.js";

const config = parseConfig({
  connections: [{ name: "api", type: "http", baseUrl: "http://127.0.0.1:1", groups: ["a"] }],
  policies: [
    { name: "no-admin", match: { paths: ["/admin/*", "/admin"] }, action: "deny" },
    { name: "big", match: { methods: ["POST"], paths: ["/payments"], body: ["$.amount > 1000", '$.currency in ["XAU"]'] }, action: "require_approval", approvers: ["boss"] },
    { name: "dry", match: { query: ["dryRun=true"] }, action: "allow" },
    { name: "env", match: { headers: ["x-env: prod*"] }, action: "deny" },
    { name: "pii", action: "mask", detectors: ["email"] },
  ],
});
const session: SessionInfo = {
  id: "s",
  clientProtocol: "http",
  targetType: "http",
  connection: "api",
  principal: { kind: "service_account", id: "sa:x", name: "x", groups: ["a"] },
  clientAddress: "1:1",
  startedAt: new Date(),
  attributes: {},
};
const evaluator = new HttpPolicyEvaluator(config.policies).openSession(session);

function ev(method: string, path: string, body: HttpBodyFacts = { state: "none" }, extra: Partial<HttpRequestEvent> = {}): HttpRequestEvent {
  return { type: "http.request", session, seq: 1, method, path, query: [], headers: {}, body, text: `${method} ${path}`, ...extra };
}
const json = (value: unknown): HttpBodyFacts => ({ state: "json", value, bytes: 1, sha256: "x" });

describe("HTTP policies", () => {
  it("denies by path, holds by body predicate, and passes the rest with the mask plan", () => {
    expect(evaluator?.evaluate(ev("GET", "/admin/x"))).toMatchObject({ type: "deny", rule: "no-admin" });
    expect(evaluator?.evaluate(ev("POST", "/payments", json({ amount: 5000 })))).toMatchObject({ type: "hold", rule: "big" });
    expect(evaluator?.evaluate(ev("POST", "/payments", json({ amount: "5000" })))).toMatchObject({ type: "hold" });
    expect(evaluator?.evaluate(ev("POST", "/payments", json({ amount: 5, currency: "XAU" })))).toMatchObject({ type: "hold" });
    expect(evaluator?.evaluate(ev("POST", "/payments", json({ amount: 5 })))).toMatchObject({ type: "allow", plan: { masks: [{ rule: "pii" }] } });
    expect(evaluator?.evaluate(ev("GET", "/x", { state: "none" }, { headers: { "x-env": "production" } }))).toMatchObject({ type: "deny", rule: "env" });
    expect(evaluator?.evaluate(ev("GET", "/x", { state: "none" }, { query: [["dryRun", "true"]] }))).toMatchObject({ type: "allow", rule: "dry" });
  });

  it("fails closed when a body rule cannot read the body", () => {
    for (const reason of ["too_large", "not_json", "invalid_json", "encoded"] as const) {
      expect(evaluator?.evaluate(ev("POST", "/payments", { state: "opaque", reason, bytes: 9, sha256: "y" }))).toMatchObject({ type: "deny", rule: "big" });
    }
  });

  it("parses and evaluates body predicates", () => {
    expect(bodyPredicateHolds(parseBodyPredicate("$.items[*].price >= 10"), { items: [{ price: 1 }, { price: 10 }] })).toBe(true);
    expect(bodyPredicateHolds(parseBodyPredicate("$.note =~ /urgent/i"), { note: "URGENT pay" })).toBe(true);
    expect(bodyPredicateHolds(parseBodyPredicate("$.a.b"), { a: { b: null } })).toBe(true);
    expect(bodyPredicateHolds(parseBodyPredicate("$.type == refund"), { type: "refund" })).toBe(true);
    expect(bodyPredicateHolds(parseBodyPredicate("$.type != refund"), { type: "refund" })).toBe(false);
    expect(() => parseBodyPredicate("amount > 1")).toThrow();
    expect(() => parseBodyPredicate("$.a > x")).toThrow();
    expect(() => parseConfig({ policies: [{ name: "p", match: { body: ["$.a >"] }, action: "deny" }] })).toThrow(/body\[0\]/);
  });
});
