import { describe, expect, it } from "vitest";
import { boundLiteral, estimateFromMysqlExplain, hexLiteral, paramLiteral, unreadablePlanInput, valuesKey } from "./preview.js";
import { TYPE } from "./wire/protocol.js";

const join = {
  query_block: {
    select_id: 1,
    nested_loop: [
      { table: { table_name: "a", access_type: "ALL", rows: 1000, filtered: 100 } },
      { "block-nl-join": { table: { table_name: "b", access_type: "ALL", rows: 1000, filtered: 50 }, join_type: "BNL" } },
    ],
  },
};

describe("estimateFromMysqlExplain", () => {
  it("multiplies a join's tables (rows × filtered), with no cost on MariaDB 10.x", () => {
    expect(estimateFromMysqlExplain(JSON.stringify(join))).toEqual({ rows: 500_000 });
  });
  it("reads an UPDATE/DELETE's one table, wrappers (filesort) and UNION branches", () => {
    expect(estimateFromMysqlExplain(JSON.stringify({ query_block: { select_id: 1, table: { delete: 1, table_name: "a", access_type: "ALL", rows: 1000 } } }))).toEqual({ rows: 1000 });
    const sorted = { query_block: { select_id: 1, filesort: { sort_key: "a.v", temporary_table: { nested_loop: [{ table: { table_name: "a", rows: 10, filtered: 100 } }] } } } };
    expect(estimateFromMysqlExplain(JSON.stringify(sorted))).toEqual({ rows: 10 });
    const union = { query_block: { union_result: { table_name: "<union1,2>", query_specifications: [{ query_block: join.query_block }, { query_block: { nested_loop: [{ table: { rows: 7 } }] } }] } } };
    expect(estimateFromMysqlExplain(JSON.stringify(union))).toEqual({ rows: 500_007 });
  });
  it("takes the cost where the target gives one (MariaDB 11, MySQL 8)", () => {
    expect(estimateFromMysqlExplain(JSON.stringify({ query_block: { cost: 12.5, nested_loop: [{ table: { rows: 3 } }] } }))).toEqual({ rows: 3, cost: 12.5 });
    expect(estimateFromMysqlExplain(JSON.stringify({ query_block: { cost_info: { query_cost: "101.25" }, table: { rows: 3, filtered: "100.00" } } }))).toEqual({ rows: 3, cost: 101.25 });
  });
  it("fails closed when a plan gives no rows (INSERT … VALUES) or cannot be read", () => {
    expect(() => estimateFromMysqlExplain(JSON.stringify({ query_block: { select_id: 1, table: { table_name: "a" } } }))).toThrow("no row estimate");
    expect(() => estimateFromMysqlExplain(JSON.stringify({ query_block: { nested_loop: [{ table: { rows: 3 } }, { table: { table_name: "x" } }] } }))).toThrow("no row estimate");
    expect(() => estimateFromMysqlExplain("nope")).toThrow("could not be read");
    expect(() => estimateFromMysqlExplain("{}")).toThrow("no query_block");
    let deep: Record<string, unknown> = { table: { rows: 1 } };
    for (let i = 0; i < 100; i++) deep = { filesort: { temporary_table: deep } };
    expect(() => estimateFromMysqlExplain(JSON.stringify({ query_block: deep }))).toThrow("too deeply nested");
  });
});

describe("preview literals", () => {
  it("numbers stay numbers; everything else is hex (nothing in a value is read as SQL)", () => {
    expect(paramLiteral("42", TYPE.LONGLONG)).toBe("42");
    expect(paramLiteral("1; drop table x", TYPE.LONGLONG)).toBe(hexLiteral("1; drop table x"));
    expect(paramLiteral("o'hara", TYPE.VAR_STRING)).toBe("_utf8mb4 X'6f2768617261'");
    expect(paramLiteral(null, TYPE.VAR_STRING)).toBe("NULL");
  });
});

describe("valuesKey", () => {
  it("differs per value and per split of the values, and keeps no value", () => {
    const sql = "SELECT * FROM a WHERE id > ? AND v <> ?";
    const k = valuesKey(sql, ["995", hexLiteral("secret-value")]);
    expect(k).toBe(valuesKey(sql, ["995", hexLiteral("secret-value")]));
    expect(k).not.toBe(valuesKey(sql, ["0", hexLiteral("secret-value")]));
    expect(valuesKey(sql, ["1", "23"])).not.toBe(valuesKey(sql, ["12", "3"]));
    expect(valuesKey(sql, ["1"])).not.toBe(valuesKey(`${sql} `, ["1"]));
    expect(k).not.toContain(Buffer.from("secret-value").toString("hex"));
    expect(k).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });
});

describe("boundLiteral", () => {
  const at = (b: Buffer): { start: number; end: number; at: number } => ({ at: 0, start: 1, end: 1 + b.length });
  it("strings from their bytes: UTF-8 as utf8mb4, other bytes as a binary string; numbers as numbers", () => {
    const text = Buffer.from("o'hara ü", "utf8");
    expect(boundLiteral(Buffer.concat([Buffer.from([9]), text]), TYPE.VAR_STRING, 0, at(text))).toBe(`_utf8mb4 X'${text.toString("hex")}'`);
    const blob = Buffer.from([0xff, 0x00, 0x27, 0xc3]);
    expect(boundLiteral(Buffer.concat([Buffer.from([9]), blob]), TYPE.BLOB, 0, at(blob))).toBe("_binary X'ff0027c3'");
    const dec = Buffer.from("12.50");
    expect(boundLiteral(Buffer.concat([Buffer.from([9]), dec]), TYPE.NEWDECIMAL, 0, at(dec))).toBe("12.50");
    const n = Buffer.alloc(8);
    n.writeBigInt64LE(-7n);
    expect(boundLiteral(Buffer.concat([Buffer.from([9]), n]), TYPE.LONGLONG, 0, at(n))).toBe("-7");
    expect(boundLiteral(Buffer.alloc(0), TYPE.VAR_STRING, 0, null)).toBe("NULL");
  });
});

describe("unreadablePlanInput", () => {
  it("refuses a text or value with a double quote or backslash (printed unescaped into the plan's JSON)", () => {
    expect(unreadablePlanInput("SELECT * FROM a WHERE id > ?", ["1", hexLiteral("o'hara"), "NULL"])).toBeUndefined();
    expect(unreadablePlanInput("SELECT * FROM a WHERE v <> 'x\", \"rows\": 1'", [])).toMatch(/its text has a double quote/);
    expect(unreadablePlanInput("SELECT * FROM a WHERE v <> ?", [hexLiteral('x", "rows": 1, "z": "')])).toMatch(/a value has a double quote/);
    expect(unreadablePlanInput("SELECT * FROM a WHERE v <> ?", [hexLiteral("a\\b")])).toMatch(/a value has a double quote or backslash/);
    expect(unreadablePlanInput("SELECT * FROM a WHERE v <> ?", ["_binary X'ff41'"])).toMatch(/a value is not UTF-8 text/);
  });
  it("a forged rows key would win in JSON.parse: why such input is refused", () => {
    const forged = '{"query_block": {"table": {"rows": 1000000, "attached_condition": "v <> \'x", "rows": 1, "z": "\'"}}}';
    expect(estimateFromMysqlExplain(forged)).toEqual({ rows: 1 });
  });
  it("raw control characters printed into a condition do not make the plan unreadable", () => {
    expect(estimateFromMysqlExplain('{"query_block": {"table": {"rows": 10, "attached_condition": "v <> \'a\nb\u0001\'"}}}')).toEqual({ rows: 10 });
  });
});
