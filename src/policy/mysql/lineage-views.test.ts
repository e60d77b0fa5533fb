/**
 * MysqlSessionLineage over a catalog snapshot (the definitions MariaDB stores): views over
 * views, renamed columns, UNION inside a view, stored functions (also called from a view),
 * unreadable definitions (fail closed), cycles, and HANDLER names.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { SourceColumn } from "../../core/decision.js";
import type { StatementFacts } from "../sql/facts.js";
import { ANY_COLUMN, MysqlSessionLineage, type MysqlObjectSource, type MysqlObjects } from "./lineage.js";
import { classifyMysql, closeTestClassifier } from "./testing.js";

afterAll(closeTestClassifier);

const T = 120_000;
const key = (s: SourceColumn): string => `${s.schema === undefined ? "" : `${s.schema}.`}${s.relation === undefined ? "" : `${s.relation}.`}${s.column}`;
const keys = (s: readonly SourceColumn[] | undefined): string[] => [...new Set((s ?? []).map(key))].sort();

const objects: MysqlObjects = {
  views: new Map<string, string | null>([
    ["shop.cards_v", "select `shop`.`customers`.`id` AS `id`,`shop`.`customers`.`card_number` AS `card_number` from `shop`.`customers`"],
    ["shop.cards_v2", "select `shop`.`customers`.`id` AS `i`,`shop`.`customers`.`card_number` AS `c` from `shop`.`customers`"],
    ["shop.cards_vv", "select `cards_v2`.`c` AS `cc`,`cards_v2`.`i` AS `i` from `shop`.`cards_v2`"],
    ["shop.cards_u", "select `shop`.`customers`.`name` AS `x` from `shop`.`customers` union all select `shop`.`customers`.`card_number` AS `card_number` from `shop`.`customers`"],
    ["shop.cards_fn", "select `shop`.`customers`.`id` AS `id`,`card_of`(`shop`.`customers`.`id`) AS `c` from `shop`.`customers`"],
    ["shop.names_v", "select `shop`.`customers`.`id` AS `id`,`shop`.`customers`.`name` AS `name` from `shop`.`customers`"],
    ["shop.hidden_v", null],
    ["shop.loop_a", "select `shop`.`loop_b`.`x` AS `x` from `shop`.`loop_b`"],
    ["shop.loop_b", "select `shop`.`loop_a`.`x` AS `x` from `shop`.`loop_a`"],
  ]),
  functions: new Map<string, string | null>([
    ["shop.card_of", "RETURN (SELECT card_number FROM customers WHERE id = i)"],
    ["shop.pw_of", "BEGIN DECLARE r VARCHAR(40); SELECT password INTO r FROM users WHERE id = i; RETURN r; END"],
    ["shop.secret_fn", null],
  ]),
};

function session(source: MysqlObjectSource | undefined = { objects: () => objects, invalidate: () => undefined }): MysqlSessionLineage {
  return new MysqlSessionLineage("shop", "shop", (sql) => classifyMysql(sql), source);
}

async function through(s: MysqlSessionLineage, sql: string): Promise<StatementFacts> {
  const c = await s.apply(await classifyMysql(sql));
  if (!c.ok || c.statements[0] === undefined) throw new Error("not classified");
  return c.statements[0];
}

const derivedOf = (f: StatementFacts, name: string): { columns: Readonly<Record<string, readonly SourceColumn[]>>; all: readonly SourceColumn[] } | undefined =>
  f.lineage?.derived?.find((d) => d.name === name);

describe("MySQL lineage through views and stored functions", () => {
  it("a view's columns carry their base columns, renamed or not; columns of base reads are added", async () => {
    const s = session();
    const f = await through(s, "SELECT c, i FROM cards_v2");
    expect(keys(derivedOf(f, "cards_v2")?.columns["c"])).toEqual(["shop.customers.card_number"]);
    expect(keys(derivedOf(f, "cards_v2")?.columns["i"])).toEqual(["shop.customers.id"]);
    expect(f.columns).toContainEqual({ relation: { schema: "shop", name: "customers" }, column: "card_number", access: "read" });
  }, T);

  it("views over views, and UNION inside a view", async () => {
    const s = session();
    expect(keys(derivedOf(await through(s, "SELECT cc FROM cards_vv"), "cards_vv")?.columns["cc"])).toEqual(["shop.customers.card_number"]);
    expect(keys(derivedOf(await through(s, "SELECT x FROM cards_u"), "cards_u")?.columns["x"])).toEqual(["shop.customers.card_number", "shop.customers.name"]);
  }, T);

  it("stored functions: their bodies' reads, also when a view calls one", async () => {
    const s = session();
    const call = await through(s, "SELECT card_of(1) AS c");
    expect(keys(call.lineage?.reads)).toContain("shop.customers.card_number");
    expect(call.columns).toContainEqual({ relation: { schema: "shop", name: "customers" }, column: "card_number", access: "read" });
    const block = await through(s, "SELECT pw_of(1)");
    expect(block.columns).toContainEqual({ relation: { schema: "shop", name: "users" }, column: "password", access: "read" });
    const view = await through(s, "SELECT c FROM cards_fn");
    expect(keys(derivedOf(view, "cards_fn")?.columns["c"])).toContain("shop.customers.card_number");
  }, T);

  it("a view without covered columns gets nothing it does not read", async () => {
    const f = await through(session(), "SELECT id, name FROM names_v");
    expect(keys(derivedOf(f, "names_v")?.all)).toEqual(["shop.customers.id", "shop.customers.name"]);
  }, T);

  it("fails closed: unreadable definitions, cycles, an unavailable catalog read anything", async () => {
    const s = session();
    expect(keys(derivedOf(await through(s, "SELECT * FROM hidden_v"), "hidden_v")?.all)).toEqual([key(ANY_COLUMN)]);
    expect(keys((await through(s, "SELECT secret_fn()")).lineage?.reads)).toContain(key(ANY_COLUMN));
    expect(keys(derivedOf(await through(s, "SELECT x FROM loop_a"), "loop_a")?.columns["x"])).toContain(key(ANY_COLUMN));
    const down = session({ objects: () => Promise.reject(new Error("down")), invalidate: () => undefined });
    expect((await through(down, "SELECT id FROM customers")).columns).toContainEqual({ column: "*", access: "read" });
    // A statement that names no relation or function needs no catalog.
    expect((await through(down, "SELECT 1")).columns).toEqual([]);
  }, T);

  it("DDL on views or routines invalidates the catalog", async () => {
    let invalidated = 0;
    const s = session({ objects: () => objects, invalidate: () => {
      invalidated++;
    } });
    await through(s, "SELECT 1 FROM customers");
    expect(invalidated).toBe(0);
    await through(s, "CREATE OR REPLACE VIEW v AS SELECT 1");
    expect(invalidated).toBe(1);
  }, T);

  it("HANDLER: a read under a name this session opened is a read of that table only", async () => {
    const s = session(undefined);
    const unknown = await through(s, "HANDLER h READ FIRST");
    expect(unknown.columns).toContainEqual({ column: "*", access: "read" });
    await through(s, "HANDLER victims OPEN AS h");
    const known = await through(s, "HANDLER h READ FIRST");
    expect(known.columns).toEqual([{ relation: { name: "victims" }, column: "*", access: "read" }]);
    await through(s, "HANDLER h CLOSE");
    expect((await through(s, "HANDLER h READ FIRST")).columns).toContainEqual({ column: "*", access: "read" });
    // After a statement with effects the walk cannot see, names may mean anything.
    await through(s, "HANDLER victims OPEN AS h");
    await through(s, "CALL p()");
    expect((await through(s, "HANDLER h READ FIRST")).columns).toContainEqual({ column: "*", access: "read" });
  }, T);
});
