import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "../../policy/sql/index.js";
import { sqlEffects } from "./sql-effects.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("sqlEffects", () => {
  it("names the cursors and statements a text creates, reads and removes, in order", () => {
    expect(sqlEffects("begin; declare c cursor with hold for select 1; fetch 2 from c; move all in c; close c")).toEqual([
      { kind: "plain" },
      { kind: "declare", cursor: "c", hold: true },
      { kind: "fetch", cursor: "c" },
      { kind: "plain" },
      { kind: "close_cursor", cursor: "c" },
    ]);
    expect(sqlEffects("prepare s as select 1; deallocate s; deallocate all; discard all; close all")).toEqual([
      { kind: "prepare", name: "s" },
      { kind: "deallocate", name: "s" },
      { kind: "deallocate", name: undefined },
      { kind: "discard_all" },
      { kind: "close_cursor", cursor: undefined },
    ]);
  });

  it("skips the parse for texts without those keywords, and is unknown (fail closed) for what it cannot parse", () => {
    expect(sqlEffects("select 1")).toEqual([{ kind: "plain" }]);
    expect(sqlEffects("fetch from")).toEqual([{ kind: "unknown" }]);
    expect(sqlEffects(`select 'close' ${"+1".repeat(200_000)}`)).toEqual([{ kind: "unknown" }]);
  });
});
