import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "../../policy/sql/index.js";
import { countsChanged, estimateFromExplain, sampleQuery, valuesKey } from "./preview.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("sampleQuery", () => {
  it("wraps one plain write with RETURNING * (unless it has its own), after a newline", () => {
    expect(sampleQuery("delete from t where id = $1;  ", 6)).toBe("WITH airlock_preview AS (\ndelete from t where id = $1\nRETURNING *\n) SELECT * FROM airlock_preview LIMIT 6");
    expect(sampleQuery("update t set a = 1 returning id -- done", 6)).toBe("WITH airlock_preview AS (\nupdate t set a = 1 returning id -- done\n) SELECT * FROM airlock_preview LIMIT 6");
  });
  it("refuses what is not exactly one INSERT, UPDATE or DELETE, or that the wrapper would not survive", () => {
    expect(sampleQuery("select 1", 6)).toBeUndefined();
    expect(sampleQuery("delete from t; delete from u", 6)).toBeUndefined();
    expect(sampleQuery("create table x (id int)", 6)).toBeUndefined();
    expect(sampleQuery("delete from t /* open comment", 6)).toBeUndefined();
    expect(sampleQuery("not sql at all", 6)).toBeUndefined();
  });
});

describe("estimateFromExplain", () => {
  it("reads the top node; a write's rows are those of its input plan", () => {
    expect(estimateFromExplain(JSON.stringify([{ Plan: { "Node Type": "Seq Scan", "Total Cost": 15.5, "Plan Rows": 1000 } }]))).toEqual({ cost: 15.5, rows: 1000 });
    expect(
      estimateFromExplain(JSON.stringify([{ Plan: { "Node Type": "ModifyTable", "Total Cost": 20, "Plan Rows": 0, Plans: [{ "Node Type": "Seq Scan", "Plan Rows": 500 }] } }])),
    ).toEqual({ cost: 20, rows: 500 });
  });
  it("bad plans are clear errors", () => {
    expect(() => estimateFromExplain("nope")).toThrow("could not be read");
    expect(() => estimateFromExplain("[{}]")).toThrow("no top node");
    expect(() => estimateFromExplain("x".repeat(1_048_577))).toThrow("too large");
  });
});

describe("countsChanged", () => {
  it("subtracts the counters pending before the statement", () => {
    expect(countsChanged([["public.t", "0", "0", "5"]], [["public.t", "0", "0", "7"], ["public.u", "1", "0", "0"]])).toEqual([
      { relation: "public.t", inserted: 0, updated: 0, deleted: 2 },
      { relation: "public.u", inserted: 1, updated: 0, deleted: 0 },
    ]);
    expect(countsChanged([["public.t", "0", "0", "5"]], [["public.t", "0", "0", "5"]])).toEqual([]);
    expect(countsChanged([], [["public.t", "x", "-1", "2"]])).toEqual([{ relation: "public.t", inserted: 0, updated: 0, deleted: 2 }]);
  });
});

describe("valuesKey (estimates with values are cached per execution's values)", () => {
  const p = (values: (string | null)[], formats: number[] = [], types: number[] = []) => ({
    shown: values,
    values: values.map((v) => (v === null ? null : Buffer.from(v))),
    formats,
    types,
  });
  it("is the same for the same text, values, formats and types, and differs when any differs", () => {
    const k = valuesKey("public\u0000select $1", p(["1"]));
    expect(valuesKey("public\u0000select $1", p(["1"]))).toBe(k);
    expect(valuesKey("public\u0000select $1", p(["2"]))).not.toBe(k);
    expect(valuesKey("public\u0000select $1", p([null]))).not.toBe(k);
    expect(valuesKey("public\u0000select $1", p(["1"], [1]))).not.toBe(k);
    expect(valuesKey("public\u0000select $1", p(["1"], [], [23]))).not.toBe(k);
    expect(valuesKey("small\u0000select $1", p(["1"]))).not.toBe(k);
    // Value boundaries count: ["ab", "c"] is not ["a", "bc"].
    expect(valuesKey("q", p(["ab", "c"]))).not.toBe(valuesKey("q", p(["a", "bc"])));
  });
  it("keeps no value: a fixed-size hash whatever the values", () => {
    const k = valuesKey("q", p(["secret-value-1234".repeat(1000)]));
    expect(k).toHaveLength(44);
    expect(k).not.toContain("secret");
  });
});
