/**
 * MySQL column lineage from the walk (walk.ts): the outputs of a query by name, derived tables
 * and CTEs (recursive ones included) with the base columns behind each of their columns, and
 * HANDLER names. The engine masks a result field whose origin is a derived relation by these.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { SourceColumn } from "../../core/decision.js";
import { closeTestClassifier, one } from "./testing.js";

afterAll(closeTestClassifier);

const T = 120_000;
const key = (s: SourceColumn): string => `${s.schema === undefined ? "" : `${s.schema}.`}${s.relation === undefined ? "" : `${s.relation}.`}${s.column}`;
const keys = (s: readonly SourceColumn[] | undefined): string[] => [...new Set((s ?? []).map(key))].sort();

describe("MySQL lineage", () => {
  it("names each output and its sources", async () => {
    const f = await one("SELECT c.id, card_number AS n, CONCAT(name, '') label, 1 + 2 FROM customers c");
    expect(f.lineage?.names).toEqual(["id", "n", "label", undefined]);
    expect(f.lineage?.outputs?.map(keys)).toEqual([["customers.id"], ["customers.card_number"], ["customers.name"], []]);
  }, T);

  it("a derived table's columns carry the base columns they select", async () => {
    const f = await one("SELECT c, x FROM (SELECT card_number AS c, id AS x FROM customers WHERE id = 1) AS d");
    const d = f.lineage?.derived?.find((r) => r.name === "d");
    // (An unqualified name may also be an outer query's column: `card_number` of any relation.)
    expect(keys(d?.columns["c"])).toContain("customers.card_number");
    expect(keys(d?.columns["x"])).toContain("customers.id");
    expect(keys(d?.columns["x"])).not.toContain("customers.card_number");
    expect(keys(d?.all)).toContain("customers.card_number");
  }, T);

  it("CTEs (with column lists, over other CTEs, recursive, with UNION) carry their sources", async () => {
    const f = await one(
      "WITH RECURSIVE a (k) AS (SELECT card_number FROM customers), b AS (SELECT k AS kk FROM a), r AS (SELECT name AS v FROM customers UNION ALL SELECT v FROM r) SELECT kk FROM b",
    );
    const byName = new Map((f.lineage?.derived ?? []).map((r) => [r.name, r]));
    expect(keys(byName.get("a")?.columns["k"])).toEqual(["customers.card_number"]);
    expect(keys(byName.get("b")?.columns["kk"])).toContain("customers.card_number");
    expect(keys(byName.get("r")?.columns["v"])).toContain("customers.name");
  }, T);

  it("a UNION's outputs are every branch's, by position", async () => {
    const f = await one("SELECT name FROM customers UNION SELECT card_number FROM customers");
    expect(f.lineage?.outputs?.map(keys)).toEqual([["customers.card_number", "customers.name"]]);
  }, T);

  it("a `*` makes outputs unknown; reads still list the whole row", async () => {
    const f = await one("SELECT * FROM (SELECT * FROM customers) d");
    expect(f.lineage?.outputs).toBeUndefined();
    expect(keys(f.lineage?.derived?.find((r) => r.name === "d")?.all)).toContain("customers.*");
  }, T);

  it("HANDLER names: opened under an alias, read, closed", async () => {
    expect((await one("HANDLER shop.customers OPEN AS hc")).handler).toEqual({ action: "open", name: "hc", relation: { schema: "shop", name: "customers" } });
    expect((await one("HANDLER customers OPEN")).handler).toEqual({ action: "open", name: "customers", relation: { name: "customers" } });
    expect((await one("HANDLER hc READ `PRIMARY` FIRST")).handler).toEqual({ action: "read", name: "hc" });
    expect((await one("HANDLER hc CLOSE")).handler).toEqual({ action: "close", name: "hc" });
  }, T);
});
