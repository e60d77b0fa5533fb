import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createMaskerFactory } from "../../masking/index.js";
import { maskReply, previewReply, replyPlan } from "./replies.js";
import { encodeResp, type RespValue } from "./wire/resp.js";

const maskerFor = createMaskerFactory(randomBytes(32));
const detect = replyPlan([{ rule: "pii", columns: [], detectors: ["email"], strategy: "redact" }], maskerFor);
const whole = replyPlan([{ rule: "users", columns: ["*"], detectors: [], strategy: "redact" }], maskerFor);
const nulls = replyPlan([{ rule: "gone", columns: ["*"], detectors: [], strategy: "null" }], maskerFor);
const bulk = (s: string): RespValue => ({ type: "bulk", value: Buffer.from(s) });
const text = (v: RespValue | undefined): string => (v === undefined ? "(unchanged)" : encodeResp(v).toString("utf8"));

describe("Redis reply masking", () => {
  it("runs detectors over every string a reply carries and leaves clean replies untouched", () => {
    if (detect === undefined) throw new Error("no plan");
    const counts: Record<string, number> = {};
    const v: RespValue = { type: "array", value: [bulk("a@example.com"), { type: "map", value: [[bulk("k"), { type: "verbatim", format: "txt", value: Buffer.from("to b@example.org") }]] }, { type: "error", value: "ERR c@example.net" }, { type: "integer", value: 5n }] };
    const out = text(maskReply(v, detect, { resp3: true, command: "x" }, counts));
    expect(out).not.toMatch(/@example/);
    expect(counts["email"]).toBe(3);
    expect(maskReply(bulk("hello"), detect, { resp3: false, command: "get" }, {})).toBeUndefined();
  });

  it("masks values whole but keeps field names readable", () => {
    if (whole === undefined) throw new Error("no plan");
    const flat: RespValue = { type: "array", value: [bulk("name"), bulk("Bob"), bulk("card"), bulk("4111")] };
    expect(text(maskReply(flat, whole, { resp3: false, command: "hgetall" }, {}))).toBe("*4\r\n$4\r\nname\r\n$10\r\n[REDACTED]\r\n$4\r\ncard\r\n$10\r\n[REDACTED]\r\n");
    const list: RespValue = { type: "array", value: [bulk("a"), bulk("b")] };
    expect(text(maskReply(list, whole, { resp3: false, command: "lrange" }, {}))).not.toMatch(/\$1\r\n[ab]/);
    const map: RespValue = { type: "map", value: [[bulk("name"), bulk("Bob")]] };
    expect(text(maskReply(map, whole, { resp3: true, command: "hgetall" }, {}))).toBe("%1\r\n$4\r\nname\r\n$10\r\n[REDACTED]\r\n");
  });

  it("masks numbers that can be content under a whole-value rule, not structural counts", () => {
    if (whole === undefined) throw new Error("no plan");
    const n: RespValue = { type: "integer", value: 1n };
    expect(text(maskReply(n, whole, { resp3: false, command: "getbit" }, {}))).toBe("$-1\r\n");
    expect(text(maskReply({ type: "double", value: "3.5" }, whole, { resp3: true, command: "zscore" }, {}))).toBe("_\r\n");
    expect(maskReply(n, whole, { resp3: false, command: "exists" }, {})).toBeUndefined();
    expect(maskReply(n, detect ?? whole, { resp3: false, command: "getbit" }, {})).toBeUndefined();
  });

  it("turns a value into the protocol's null under strategy null", () => {
    if (nulls === undefined) throw new Error("no plan");
    expect(text(maskReply(bulk("x"), nulls, { resp3: false, command: "get" }, {}))).toBe("$-1\r\n");
    expect(text(maskReply(bulk("x"), nulls, { resp3: true, command: "get" }, {}))).toBe("_\r\n");
  });

  it("previews replies for the recording, capped", () => {
    expect(previewReply({ type: "array", value: [bulk("a"), { type: "integer", value: 2n }, { type: "bulk", value: null }] }, 100)).toBe('["a", (integer) 2, (nil)]');
    expect(previewReply(bulk("x".repeat(50)), 10)).toHaveLength(11);
  });
});
