import { describe, expect, it } from "vitest";
import { CommandTable } from "./commands.js";
import type { RespValue } from "./wire/resp.js";

const bulk = (s: string): RespValue => ({ type: "bulk", value: Buffer.from(s) });
const int = (n: number): RespValue => ({ type: "integer", value: BigInt(n) });
const arr = (...v: RespValue[]): RespValue => ({ type: "array", value: v });
/** A key spec as Redis 7 writes it in RESP2 (flat key/value arrays). */
function spec(begin: RespValue, find: RespValue, flags: string[] = []): RespValue {
  return arr(bulk("flags"), arr(...flags.map(bulk)), bulk("begin_search"), begin, bulk("find_keys"), find);
}
const index = (i: number): RespValue => arr(bulk("type"), bulk("index"), bulk("spec"), arr(bulk("index"), int(i)));
const keyword = (k: string, from: number): RespValue => arr(bulk("type"), bulk("keyword"), bulk("spec"), arr(bulk("keyword"), bulk(k), bulk("startfrom"), int(from)));
const range = (last: number, step: number, limit: number): RespValue => arr(bulk("type"), bulk("range"), bulk("spec"), arr(bulk("lastkey"), int(last), bulk("keystep"), int(step), bulk("limit"), int(limit)));
const keynum = (idx: number, first: number, step: number): RespValue => arr(bulk("type"), bulk("keynum"), bulk("spec"), arr(bulk("keynumidx"), int(idx), bulk("firstkey"), int(first), bulk("keystep"), int(step)));
function command(name: string, arity: number, flags: string[], specs: RespValue[], subcommands: RespValue[] = []): RespValue {
  return arr(bulk(name), int(arity), arr(...flags.map(bulk)), int(0), int(0), int(0), arr(), arr(), arr(...specs), arr(...subcommands));
}

const table = new CommandTable(
  arr(
    command("get", 2, ["readonly"], [spec(index(1), range(0, 1, 0))]),
    command("mset", -3, ["write"], [spec(index(1), range(-1, 2, 0))]),
    command("eval", -3, ["movablekeys"], [spec(index(2), keynum(0, 1, 1))]),
    command("xread", -4, ["readonly", "movablekeys"], [spec(keyword("STREAMS", 1), range(-1, 1, 2))]),
    command("sort", -2, ["write", "movablekeys"], [spec(index(1), range(0, 1, 0)), spec(keyword("STORE", 1), range(0, 1, 0)), spec(index(1), range(0, 1, 0), ["INCOMPLETE"])]),
    command("object", -2, [], [], [command("object|encoding", 3, ["readonly"], [spec(index(2), range(0, 1, 0))])]),
  ),
);
const keys = (...args: string[]): { name: string; keys: string[]; complete: boolean; unknown: boolean } => {
  const k = table.keysOf(args.map((a) => Buffer.from(a)));
  return { name: k.name, keys: k.keys.map(String), complete: k.complete, unknown: k.unknown };
};

describe("keys from the target's key specifications", () => {
  it("reads index/range, step, keynum, keyword and subcommand specs", () => {
    expect(keys("GET", "a")).toEqual({ name: "get", keys: ["a"], complete: true, unknown: false });
    expect(keys("MSET", "a", "1", "b", "2").keys).toEqual(["a", "b"]);
    expect(keys("EVAL", "return 1", "2", "k1", "k2", "arg").keys).toEqual(["k1", "k2"]);
    expect(keys("XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0").keys).toEqual(["s1", "s2"]);
    expect(keys("object", "ENCODING", "k")).toMatchObject({ name: "object|encoding", keys: ["k"] });
  });

  it("says when it cannot know every key, and when the command is unknown", () => {
    expect(keys("SORT", "l", "BY", "w_*", "STORE", "dst")).toMatchObject({ keys: ["l", "dst", "l"], complete: false });
    expect(keys("FROBNICATE", "x")).toMatchObject({ name: "frobnicate", keys: [], unknown: true, complete: false });
  });

  it("finds no key past the arguments given (the server refuses such a command itself)", () => {
    expect(keys("EVAL", "return 1", "5", "k1").keys).toEqual(["k1"]);
    expect(keys("EVAL", "return 1", "-1").keys).toEqual([]);
    expect(keys("GET").keys).toEqual([]);
  });
});
