import { describe, expect, it } from "vitest";
import { whenHolds, whenProblem, type WhenFacts } from "./cel.js";

const facts: WhenFacts = {
  principal: { id: "sa:ci-bot", name: "ci-bot", kind: "service_account" },
  groups: ["agents"],
  connection: "orders-prod",
  operations: ["update"],
  relations: ["public.orders"],
  now: new Date("2026-12-05T22:30:00Z"), // a Saturday
  budgets: { "agent-rows": { rows: 9_500, bytes: 10, statements: 3 } },
};

describe("CEL when:", () => {
  it("type-checks at load: unknown names, wrong types and non-bool results are problems", () => {
    expect(whenProblem('"agents" in groups && hour >= 9')).toBeUndefined();
    expect(whenProblem("nosuchfact == 1")).toMatch(/nosuchfact/);
    expect(whenProblem("groups + 1")).toMatch(/overload/);
    expect(whenProblem("connection")).toMatch(/bool/);
    expect(whenProblem("hour >= ")).toBeDefined();
    expect(whenProblem("a".repeat(5000))).toMatch(/longer/);
  });

  it("evaluates over principal, groups, connection, operations, relations, time and budgets", () => {
    expect(whenHolds('"agents" in groups && connection.startsWith("orders-")', facts, false)).toBe(true);
    expect(whenHolds('principal.name == "ci-bot" && principal.kind == "service_account"', facts, false)).toBe(true);
    expect(whenHolds('"update" in operations && relations.exists(r, r.endsWith("orders"))', facts, false)).toBe(true);
    expect(whenHolds("hour >= 22 && weekday == 6", facts, false)).toBe(true);
    expect(whenHolds("now.getHours() < 9", facts, false)).toBe(false);
    expect(whenHolds('budgets["agent-rows"]["rows"] > 9000', facts, false)).toBe(true);
  });

  it("a run-time failure answers failClosed", () => {
    expect(whenHolds('budgets["missing"]["rows"] > 1', facts, true)).toBe(true);
    expect(whenHolds('budgets["missing"]["rows"] > 1', facts, false)).toBe(false);
    expect(whenHolds('"missing" in budgets && budgets["missing"]["rows"] > 1', facts, true)).toBe(false);
  });
});

describe("CEL when: in the configuration", () => {
  it("a bad expression is a configuration error naming the policy's key", async () => {
    const { parseConfig } = await import("../runtime/config.js");
    const match = { operations: ["*"] };
    expect(() => parseConfig({ policies: [{ name: "p", action: "deny", match, when: "hour >= " }] })).toThrow(/policies\[0\]\.when: /);
    expect(() => parseConfig({ policies: [{ name: "p", action: "deny", match, when: "connection" }] })).toThrow(/policies\[0\]\.when: must be a bool/);
    expect(() => parseConfig({ policies: [{ name: "p", action: "allow", when: "hour >= 22" }] })).toThrow(/policies\[0\]\.when: needs a match that says the kind of event/);
    expect(parseConfig({ policies: [{ name: "p", action: "deny", match: { kind: "shell", commands: ["rm"] }, when: "hour >= 22" }] }).policies[0]?.when).toBe("hour >= 22");
    expect(parseConfig({ policies: [{ name: "p", action: "deny", match, when: "hour >= 22" }] }).policies[0]?.when).toBe("hour >= 22");
  });

  it("type-checks against the facts of the match's kind", async () => {
    const { parseConfig } = await import("../runtime/config.js");
    const http = { methods: ["*"] };
    const redis = { kind: "redis", commands: ["*"] };
    expect(parseConfig({ policies: [{ name: "p", action: "deny", match: http, when: 'method == "POST" && path.startsWith("/admin") && headers["x-env"] == "prod" && query["debug"] == "1"' }] }).policies).toHaveLength(1);
    expect(parseConfig({ policies: [{ name: "p", action: "deny", match: redis, when: 'command == "get" && keys.exists(k, k.startsWith("user:"))' }] }).policies).toHaveLength(1);
    // A fact of another kind is not there: the error names the key and the kind.
    expect(() => parseConfig({ policies: [{ name: "p", action: "deny", match: http, when: "keys.size() > 1" }] })).toThrow(/policies\[0\]\.when: .*keys.*\(facts of http policies\)/);
    expect(() => parseConfig({ policies: [{ name: "p", action: "deny", match: redis, when: 'method == "GET"' }] })).toThrow(/policies\[0\]\.when: .*method.*\(facts of redis policies\)/);
    expect(() => parseConfig({ policies: [{ name: "p", action: "deny", match: redis, when: "command + 1" }] })).toThrow(/policies\[0\]\.when: /);
    expect(() => parseConfig({ policies: [{ name: "p", action: "deny", match: { kind: "sql", operations: ["*"] }, when: 'method == "GET"' }] })).toThrow(/facts of sql policies/);
  });
});
