/**
 * Facts the caller checks against the target's catalog (issue 3 leftovers): `t.x` references
 * that are either a column of t or PostgreSQL's attribute notation for the call `x(t)`.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "./classify.js";
import { one } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

const refs = (sql: string): string[] =>
  (one(sql).facts.attributeRefs ?? []).map((r) => `${r.relation.schema === undefined ? "" : `${r.relation.schema}.`}${r.relation.name}.${r.name}`);

describe("attribute references", () => {
  it("reports t.x and (t).x of a relation's row", () => {
    expect(refs("SELECT u.users_pw FROM users u")).toEqual(["users.users_pw"]);
    expect(refs("SELECT (u).users_pw FROM users u")).toEqual(["users.users_pw"]);
    expect(refs("SELECT public.users.name FROM public.users")).toEqual(["public.users.name"]);
    expect(refs("SELECT 1 FROM users u WHERE u.id = 1 AND u.f IS NOT NULL")).toEqual(["users.f", "users.id"]);
    expect(refs("SELECT (SELECT u.f) FROM users u")).toEqual(["users.f"]);
  });

  it("reports none for bare names, subqueries, and renamed columns (already the whole row)", () => {
    expect(one("SELECT users_pw FROM users u").facts.attributeRefs).toBeUndefined();
    expect(one("SELECT s.x FROM (SELECT 1 AS x) s").facts.attributeRefs).toBeUndefined();
    expect(one("SELECT u.c FROM users AS u(a, b, c)").facts.attributeRefs).toBeUndefined();
    expect(one("SELECT 1").facts.attributeRefs).toBeUndefined();
  });
});

describe("facts for session-local catalog changes", () => {
  it("a view definition reads its base columns and writes the view", () => {
    const s = one("CREATE VIEW v10 AS SELECT id, name FROM users");
    expect(s.ops).toContain("create_view");
    expect(s.written).toEqual(["v10"]);
    expect(s.columns).toEqual(["users.id:read", "users.name:read"]);
  });

  it("a rename writes both names", () => {
    expect(one("ALTER VIEW users_v RENAME TO innocent").written).toEqual(["innocent", "users_v"]);
    expect(one("ALTER VIEW users_v RENAME TO innocent").ops).toContain("rename");
  });
});
