/** Pieces of `airlock policy test` (src/runtime/policy-test.ts): Redis lines, the built-in command table. */
import { describe, expect, it } from "vitest";
import { REDIS_7_COMMANDS } from "../protocols/redis/builtin-commands.js";
import { CommandTable, respFromJson } from "../protocols/redis/commands.js";
import { redisWords } from "./policy-test.js";

const keysOf = (table: CommandTable, words: readonly string[]): { name: string; keys: string[]; complete: boolean; unknown: boolean } => {
  const k = table.keysOf(words.map((w) => Buffer.from(w)));
  return { name: k.name, keys: k.keys.map((b) => b.toString()), complete: k.complete, unknown: k.unknown };
};

describe("redisWords", () => {
  it("splits at blanks and groups quoted words as redis-cli does", () => {
    expect(redisWords("SET k v")).toEqual(["SET", "k", "v"]);
    expect(redisWords(`SET "a b" 'c d'  e`)).toEqual(["SET", "a b", "c d", "e"]);
    expect(redisWords(String.raw`SET "say \"hi\"" x`)).toEqual(["SET", 'say "hi"', "x"]);
  });
});

describe("the built-in Redis 7.0 command table", () => {
  const table = new CommandTable(respFromJson(REDIS_7_COMMANDS));

  it("holds Redis 7.0's commands with their key specifications", () => {
    expect(table.size).toBe(240);
    expect(keysOf(table, ["MGET", "a", "b"])).toEqual({ name: "mget", keys: ["a", "b"], complete: true, unknown: false });
    expect(keysOf(table, ["MSET", "a", "1", "b", "2"]).keys).toEqual(["a", "b"]);
    expect(keysOf(table, ["EVAL", "return 1", "2", "k1", "k2", "arg"]).keys).toEqual(["k1", "k2"]);
    expect(keysOf(table, ["OBJECT", "ENCODING", "k"])).toMatchObject({ name: "object|encoding", keys: ["k"] });
    expect(keysOf(table, ["SORT", "k", "BY", "w_*"]).complete).toBe(false);
    expect(keysOf(table, ["NOPE", "k"])).toMatchObject({ unknown: true, complete: false });
  });

  it("reads flags from the table (write, readonly, admin)", () => {
    expect([...table.keysOf([Buffer.from("SET"), Buffer.from("k"), Buffer.from("v")]).flags]).toContain("write");
    expect([...table.keysOf([Buffer.from("FLUSHALL")]).flags]).toContain("write");
    expect([...table.keysOf([Buffer.from("GET"), Buffer.from("k")]).flags]).toContain("readonly");
  });
});
