import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MaskRule } from "../../core/decision.js";
import { isGatewayError } from "../../core/errors.js";
import { MaskChain, createMaskerFactory } from "../../masking/index.js";
import { ECHO_REDACTED, maskErrorOrNotice, maskFunctionResult, maskNotification, redactQuoted } from "./channel-masking.js";
import {
  BackendType as B,
  decodeErrorOrNotice,
  decodeFunctionCallResponse,
  decodeNotification,
  encodeErrorOrNoticeFields,
  encodeFunctionCallResponse,
  encodeNotification,
} from "./wire/index.js";

const maskerFor = createMaskerFactory(Buffer.alloc(32, 7));
const EMAILS: MaskRule = { rule: "pii", columns: [], detectors: ["email"], strategy: "redact" };
const chain = new MaskChain([maskerFor(EMAILS)]);

function errorBody(fields: Record<string, string>): Buffer {
  return encodeErrorOrNoticeFields(B.ErrorResponse, new Map(Object.entries(fields))).subarray(5);
}

describe("channel masking", () => {
  it("runs the detectors over every data field of an error, keeping the structure fields", () => {
    const body = errorBody({ S: "ERROR", V: "ERROR", C: "22P02", M: 'invalid input syntax for type integer: "ann@example.com"', D: "mail ann@example.com", F: "numutils.c", L: "232" });
    const out = maskErrorOrNotice(B.ErrorResponse, body, { chain, redactEchoes: false }, {});
    expect(out).toBeDefined();
    const e = decodeErrorOrNotice((out ?? Buffer.alloc(0)).subarray(5));
    expect(e.message).not.toContain("ann@example.com");
    expect(e.message).toContain("invalid input syntax for type integer");
    expect(e.fields.get("D")).not.toContain("ann@example.com");
    expect(e.code).toBe("22P02");
    expect(e.fields.get("F")).toBe("numutils.c");
    expect(e.fields.get("L")).toBe("232");
  });

  it("leaves a clean error as it is (undefined: forward the original bytes)", () => {
    const body = errorBody({ S: "ERROR", C: "42P01", M: 'relation "nope" does not exist', P: "15" });
    expect(maskErrorOrNotice(B.ErrorResponse, body, { chain, redactEchoes: false }, {})).toBeUndefined();
    expect(maskErrorOrNotice(B.ErrorResponse, body, { chain: undefined, redactEchoes: false }, {})).toBeUndefined();
  });

  it("redacts the echoed value of a statement that reads a covered column, which no detector finds", () => {
    const body = errorBody({ S: "ERROR", C: "22P02", M: 'invalid input syntax for type integer: "hunter2"', D: "Token \"hunter2\" is invalid.", W: "JSON data, line 1: hunter2" });
    const counts: Record<string, number> = {};
    const out = maskErrorOrNotice(B.ErrorResponse, body, { chain, redactEchoes: true }, counts);
    const e = decodeErrorOrNotice((out ?? Buffer.alloc(0)).subarray(5));
    expect(e.message).toBe(`invalid input syntax for type integer: "${ECHO_REDACTED}"`);
    expect(e.fields.get("D")).toBe(ECHO_REDACTED);
    expect(e.fields.get("W")).toBe(ECHO_REDACTED);
    expect(JSON.stringify([...e.fields])).not.toContain("hunter2");
    expect(counts["column:echo"]).toBe(3);
  });

  it("takes the quoted span greedily (a value may hold quotes)", () => {
    expect(redactQuoted('bad: "a"b"c" here')).toBe(`bad: "${ECHO_REDACTED}" here`);
    expect(redactQuoted("only ' one")).toBe(`only "${ECHO_REDACTED}"`);
    expect(redactQuoted("no quotes")).toBeUndefined();
  });

  it("masks a notification payload and a function result", () => {
    const n = maskNotification(encodeNotification(42, "ch", "new user bob@example.org").subarray(5), chain, {});
    const d = decodeNotification((n ?? Buffer.alloc(0)).subarray(5));
    expect(d).toMatchObject({ processId: 42, channel: "ch" });
    expect(d.payload).not.toContain("bob@example.org");
    expect(maskNotification(encodeNotification(1, "ch", "clean").subarray(5), chain, {})).toBeUndefined();
    const f = maskFunctionResult(encodeFunctionCallResponse(Buffer.from("x carol@example.net y")).subarray(5), chain, {});
    expect(decodeFunctionCallResponse((f ?? Buffer.alloc(0)).subarray(5))?.toString()).not.toContain("carol@example.net");
    expect(maskFunctionResult(encodeFunctionCallResponse(null).subarray(5), chain, {})).toBeUndefined();
  });

  it("encodes error/notice fields and function results that decode to what was given", () => {
    const fieldType = fc.integer({ min: 1, max: 0x7f }).map((c) => String.fromCharCode(c));
    const text = fc.string({ maxLength: 40 }).map((x) => x.replaceAll("\0", ""));
    fc.assert(
      fc.property(fc.dictionary(fieldType, text, { maxKeys: 12 }), fc.option(fc.uint8Array({ maxLength: 64 })), (fields, value) => {
        const map = new Map(Object.entries(fields));
        expect(decodeErrorOrNotice(encodeErrorOrNoticeFields(B.NoticeResponse, map).subarray(5)).fields).toEqual(map);
        const v = value === null ? null : Buffer.from(value);
        expect(decodeFunctionCallResponse(encodeFunctionCallResponse(v).subarray(5))).toEqual(v);
      }),
    );
  });

  it("random or corrupt bodies give a typed error or a well-formed message, never another throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, echo) => {
        const body = Buffer.from(bytes);
        for (const run of [
          () => maskErrorOrNotice(B.NoticeResponse, body, { chain, redactEchoes: echo }, {}),
          () => maskNotification(body, chain, {}),
          () => maskFunctionResult(body, chain, {}),
        ]) {
          try {
            const out = run();
            if (out !== undefined) expect(out.readInt32BE(1)).toBe(out.length - 1);
          } catch (e) {
            expect(isGatewayError(e)).toBe(true);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
