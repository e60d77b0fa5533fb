/**
 * Column lineage of output columns (lineage.ts): per output, the table columns its value may
 * derive from; `reads` when the outputs cannot be mapped. Rendered as `rel.col` (`?.col` for
 * a column of any relation, `*` for a whole row).
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { SourceColumn } from "../../core/decision.js";
import { classify, initSqlParser } from "./classify.js";

beforeAll(async () => {
  await initSqlParser();
});

function render(s: readonly SourceColumn[]): string[] {
  return [...new Set(s.map((c) => `${c.schema === undefined ? "" : `${c.schema}.`}${c.relation ?? "?"}.${c.column}`))].sort();
}

function lineageOf(sql: string, i = 0) {
  const c = classify(sql);
  if (!c.ok) throw new Error(c.error);
  const l = c.statements[i]?.lineage;
  if (l === undefined) throw new Error("no lineage");
  return l;
}

function outputs(sql: string): string[][] | undefined {
  return lineageOf(sql).outputs?.map(render);
}

describe("output lineage", () => {
  it.each([
    ["select lower(email) from users", [["users.email"]]],
    ["select email || '' from users", [["users.email"]]],
    ["select array_agg(email) from users", [["users.email"]]],
    ["select row(email) from users", [["users.email"]]],
    ["select email::refcursor from users", [["users.email"]]],
    ["select coalesce(password, '') from users", [["users.password"]]],
    ["select (select password from users limit 1)", [["users.password"]]],
    ["select 1 + 1", [[]]],
    ["select count(*) from users", [[]]],
    ["select count(*) from users where password = 'x'", [[]]],
    ["select lower(name), upper(email) from users", [["users.name"], ["users.email"]]],
    ["select u from users u", [["users.*", "users.u"]]],
    ["select json_agg(u) from users u", [["users.*", "users.u"]]],
    ["select row_to_json(u.*) from users u", [["users.*"]]],
    ["select u.email || 'x' from users u", [["users.email"]]],
    ["select public.users.email || 'x' from public.users", [["public.users.email"]]],
    ["with c as (select email as e from users) select lower(e) from c", [["users.email"]]],
    ["with c(x) as (select email from users) select x || '' from c", [["users.email"]]],
    ["select lower(d.m) from (select email as m, name from users) d", [["users.email"]]],
    ["select lower(d.z) from (select email, name from users) d(y, z)", [["users.name"]]],
    ["select lower(m) from (select email as m from users) d", [["users.email"]]],
    ["select x from unnest(array(select email from users)) x", [["users.email"]]],
    ["select lower(name) from users union select lower(email) from customers", [["customers.email", "users.name"]]],
    ["values (1, 'a')", [[], []]],
    ["select (select lower(email) from orders o limit 1) from users", [["orders.email", "users.email"]]],
    ["select exists (select 1 from users where password like 'a%')", [["users.password"]]],
    ["declare c cursor for select lower(email) from users", [["users.email"]]],
    ["prepare p as select lower(email) from users", [["users.email"]]],
    ["insert into users (email) values ('a') returning lower(email)", [["users.email"]]],
    ["update users set name = 'x' returning email || ''", [["users.email"]]],
    ["delete from users using orders o where o.id = users.id returning o.note || ''", [["orders.note"]]],
    ["explain select lower(email) from users", [[]]],
    // A recursive CTE's columns: what its body reads (an unresolved name: that column anywhere).
    ["with recursive r(n) as (select 1 union all select n + 1 from r where n < 10) select n from r", [["?.n"]]],
    ["with recursive r(n, e) as (select 1, ''::text union all select n + 1, email from r, users where n < 3) select n from r", [["users.email", "users.n"]]],
    ["select j.a from (users join orders on true) j", [["orders.*", "users.*"]]],
  ])("%s", (sql, expected) => {
    expect(outputs(sql)).toEqual(expected);
  });
});

describe("statement-level fallback", () => {
  it.each([
    ["select * from (select lower(email) as e from users) d", "users.email"],
    ["select d.* from (select lower(password) p from users) d", "users.password"],
    ["with recursive r(x) as (select email from users union all select x from r) select * from r", "users.email"],
    ["call p(1)", undefined],
  ])("%s reads %s", (sql, column) => {
    const l = lineageOf(sql);
    expect(l.outputs).toBeUndefined();
    if (column !== undefined) expect(render(l.reads)).toContain(column);
  });

  it("a query too deep to walk reads anything", () => {
    const sql = `select ${"lower(".repeat(500)}email${")".repeat(500)} from users`;
    const c = classify(sql);
    if (c.ok) {
      const l = c.statements[0]?.lineage;
      expect(l?.outputs === undefined ? render(l?.reads ?? []) : render(l.outputs.flat())).toEqual(expect.arrayContaining([expect.stringMatching(/email|\?\.\*/)]));
    }
  });

  it("each statement of a message has its own lineage", () => {
    expect(lineageOf("select 1; select lower(email) from users", 1).outputs?.map(render)).toEqual([["users.email"]]);
    expect(lineageOf("select 1; select lower(email) from users", 0).outputs?.map(render)).toEqual([[]]);
  });
});
