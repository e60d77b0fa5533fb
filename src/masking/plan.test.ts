import { describe, expect, it } from "vitest";
import type { MaskRule } from "../core/decision.js";
import { JsonPathPattern, columnRuleCovers, columnRuleCoversSource, renderPath, rulesForField } from "./plan.js";

const rule = (name: string, columns: string[], detectors: string[] = []): MaskRule => ({ rule: name, columns, detectors, strategy: "redact" });

describe("plan application: which rule covers which field", () => {
  const users = { name: "email", relation: { schema: "public", name: "users" }, column: "email" };

  it("matches column globs by origin (table.column, schema.table.column) and expressions by name", () => {
    expect(columnRuleCovers(rule("a", ["users.email"]), users)).toBe(true);
    expect(columnRuleCovers(rule("a", ["public.users.email"]), users)).toBe(true);
    expect(columnRuleCovers(rule("a", ["*.EMAIL"]), users)).toBe(true);
    expect(columnRuleCovers(rule("a", ["orders.email"]), users)).toBe(false);
    expect(columnRuleCovers(rule("a", ["*.email"]), { name: "email" })).toBe(true);
    // An aliased column keeps its origin: the alias does not hide it, nor does it match by alias.
    expect(columnRuleCovers(rule("a", ["*.mail"]), { ...users, name: "mail" })).toBe(false);
    // JSON paths are not column globs.
    expect(columnRuleCovers(rule("a", ["$.email"]), { name: "email" })).toBe(false);
  });

  it("a field is covered when a column it derives from is (lineage, inheritance)", () => {
    const c1 = rule("c1", ["public.users.email"]);
    const lowered = { name: "lower", derivedFrom: [{ schema: "public", relation: "users", column: "email" }] };
    expect(rulesForField(lowered, [c1])).toEqual({ kind: "whole", rule: c1 });
    expect(rulesForField({ name: "lower", derivedFrom: [{ schema: "public", relation: "users", column: "name" }] }, [c1])).toEqual({ kind: "keep" });
    // A whole row is every column; a source of any relation matches by column.
    expect(columnRuleCoversSource(c1, { schema: "public", relation: "users", column: "*" })).toBe(true);
    expect(columnRuleCoversSource(c1, { schema: "public", relation: "orders", column: "*" })).toBe(false);
    expect(columnRuleCoversSource(c1, { column: "email" })).toBe(true);
    expect(columnRuleCoversSource(c1, { column: "*" })).toBe(true);
    expect(columnRuleCoversSource(rule("a", ["users.email"]), { relation: "users", column: "email" })).toBe(true);
    // A child's column read through its parent: the field's origin is the parent's.
    const viaParent = { name: "password", relation: { schema: "public", name: "par" }, column: "password", derivedFrom: [{ schema: "public", relation: "users", column: "password" }] };
    expect(rulesForField(viaParent, [rule("p", ["users.password"])]).kind).toBe("whole");
  });

  it("the first covering column rule wins; otherwise every detector rule applies, in order", () => {
    const d1 = rule("d1", [], ["email"]);
    const c1 = rule("c1", ["users.email"]);
    const c2 = rule("c2", ["*.email"]);
    const d2 = rule("d2", [], ["secret"]);
    expect(rulesForField(users, [d1, c1, c2, d2])).toEqual({ kind: "whole", rule: c1 });
    expect(rulesForField({ name: "note" }, [d1, c1, c2, d2])).toEqual({ kind: "detect", rules: [d1, d2] });
    expect(rulesForField({ name: "note" }, [c1])).toEqual({ kind: "keep" });
  });

  it("JSON paths: $.a.b, [*] and [n], .* one key, .. any depth, bare and *. globs at any depth", () => {
    const t = (pattern: string, path: (string | number)[]): boolean => new JsonPathPattern(pattern).test(renderPath(path));
    expect(renderPath(["items", 0, "card"])).toBe("$.items[0].card");
    expect(t("$.user.email", ["user", "email"])).toBe(true);
    expect(t("$.user.email", ["user", "email", "x"])).toBe(false);
    expect(t("$.user.email", ["other", "user", "email"])).toBe(false);
    expect(t("$.User.Email", ["user", "email"])).toBe(true);
    expect(t("$.items[*].card", ["items", 3, "card"])).toBe(true);
    expect(t("$.items[1].card", ["items", 3, "card"])).toBe(false);
    expect(t("$.*.email", ["user", "email"])).toBe(true);
    expect(t("$.*.email", ["a", "user", "email"])).toBe(false);
    expect(t("$..email", ["email"])).toBe(true);
    expect(t("$..email", ["a", 1, "b", "email"])).toBe(true);
    expect(t("$..email", ["a", "email_verified"])).toBe(false);
    expect(t("*.email", ["email"])).toBe(true);
    expect(t("*.email", ["a", 2, "email"])).toBe(true);
    expect(t("email", ["a", "email"])).toBe(true);
    expect(t("email", ["a", "emails"])).toBe(false);
    expect(t("$", [])).toBe(true);
  });
});
