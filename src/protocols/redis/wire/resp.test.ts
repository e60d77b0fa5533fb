import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../core/errors.js";
import { RespError, RespReader, commandArgs, encodeCommand, encodeResp, splitInline, type RespValue } from "./resp.js";

function readAll(bytes: Buffer, opts: ConstructorParameters<typeof RespReader>[0] = {}): RespValue[] {
  const r = new RespReader(opts);
  r.push(bytes);
  const out: RespValue[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) out.push(f.value);
  return out;
}

const leaf: fc.Arbitrary<RespValue> = fc.oneof(
  fc.string().map((s) => ({ type: "simple", value: s.replace(/[\r\n]/g, "") }) as const),
  fc.string().map((s) => ({ type: "error", value: `ERR ${s.replace(/[\r\n]/g, "")}` }) as const),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((value) => ({ type: "integer", value }) as const),
  fc.option(fc.uint8Array({ maxLength: 40 })).map((b) => ({ type: "bulk", value: b === null ? null : Buffer.from(b) }) as const),
  fc.constant({ type: "null" } as const),
  fc.boolean().map((value) => ({ type: "boolean", value }) as const),
  fc.constantFrom("1.5", "-inf", "inf", "nan", "10").map((value) => ({ type: "double", value }) as const),
  fc.bigInt().map((v) => ({ type: "bignum", value: v.toString() }) as const),
  fc.uint8Array({ maxLength: 20 }).map((b) => ({ type: "bulkError", value: Buffer.from(b) }) as const),
  fc.uint8Array({ maxLength: 20 }).map((b) => ({ type: "verbatim", format: "txt", value: Buffer.from(b) }) as const),
);

const value: fc.Arbitrary<RespValue> = fc.letrec<{ v: RespValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.option(fc.array(tie("v"), { maxLength: 4 })).map((a) => ({ type: "array", value: a }) as const),
    fc.array(fc.tuple(tie("v"), tie("v")), { maxLength: 3 }).map((p) => ({ type: "map", value: p }) as const),
    fc.array(tie("v"), { maxLength: 3 }).map((a) => ({ type: "set", value: a }) as const),
    fc.array(tie("v"), { maxLength: 3 }).map((a) => ({ type: "push", value: a }) as const),
    fc.tuple(fc.array(fc.tuple(tie("v"), tie("v")), { maxLength: 2 }), tie("v")).map(([attributes, v]) => ({ type: "attribute", attributes, value: v }) as const),
  ),
})).v;

describe("RESP codec", () => {
  it("round-trips every RESP2/RESP3 value, whole and split at every byte", () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 3 }), (values) => {
        const bytes = Buffer.concat(values.map(encodeResp));
        expect(readAll(bytes)).toEqual(values);
        for (let cut = 0; cut <= bytes.length; cut++) {
          const r = new RespReader();
          const got: RespValue[] = [];
          r.push(bytes.subarray(0, cut));
          for (let f = r.next(); f !== undefined; f = r.next()) got.push(f.value);
          r.push(bytes.subarray(cut));
          for (let f = r.next(); f !== undefined; f = r.next()) got.push(f.value);
          expect(got).toEqual(values);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("returns the exact bytes of each value", () => {
    const a = encodeCommand(["SET", "k", "v"]);
    const b = encodeCommand(["GET", "k"]);
    const r = new RespReader();
    r.push(Buffer.concat([a, b]));
    expect(r.next()?.raw.equals(a)).toBe(true);
    expect(r.next()?.raw.equals(b)).toBe(true);
    expect(r.next()).toBeUndefined();
  });

  it("reads a large bulk string arriving in small chunks without re-parsing it per chunk", () => {
    const big = Buffer.alloc(1 << 20, 0x61);
    const bytes = encodeCommand(["SET", "k", big]);
    const r = new RespReader();
    let frames = 0;
    for (let i = 0; i < bytes.length; i += 1000) {
      r.push(bytes.subarray(i, i + 1000));
      if (r.next() !== undefined) frames++;
    }
    expect(frames).toBe(1);
  });

  it("splits inline commands as redis-server does", () => {
    const s = (t: string): string[] => splitInline(Buffer.from(t)).map((b) => b.toString("latin1"));
    expect(s("SET k v")).toEqual(["SET", "k", "v"]);
    expect(s(`  set  "a b" 'c d'  `)).toEqual(["set", "a b", "c d"]);
    expect(s(String.raw`set k "x\n\x41\"y"`)).toEqual(["set", "k", 'x\nA"y']);
    expect(s(String.raw`set k 'it\'s'`)).toEqual(["set", "k", "it's"]);
    expect(() => s(`set "unbalanced`)).toThrow(RespError);
    expect(() => s(`set "a"b`)).toThrow(RespError);
    const r = new RespReader({ allowInline: true });
    r.push(Buffer.from("PING\r\nGET k\n"));
    expect(commandArgs(r.next()?.value ?? { type: "null" }).map(String)).toEqual(["PING"]);
    expect(commandArgs(r.next()?.value ?? { type: "null" }).map(String)).toEqual(["GET", "k"]);
  });

  it("enforces its bounds with typed errors", () => {
    const lim = { maxBulkBytes: 10, maxElements: 3, maxDepth: 2, maxLineBytes: 16 };
    expect(() => readAll(Buffer.from("$11\r\n"), { limits: lim })).toThrow(/exceeds the limit/);
    expect(() => readAll(Buffer.from("*4\r\n"), { limits: lim })).toThrow(/exceeds the limit/);
    expect(() => readAll(Buffer.from("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"), { limits: lim })).toThrow(/nested deeper/);
    expect(() => readAll(Buffer.from(`+${"x".repeat(40)}`), { limits: lim })).toThrow(/longer than/);
    expect(() => readAll(Buffer.from("PING".repeat(10)), { limits: lim, allowInline: true })).toThrow(/longer than/);
    // A reply reader never takes inline text.
    expect(() => readAll(Buffer.from("PING\r\n"))).toThrow(/unknown type byte/);
  });

  it("never throws anything but a typed error, and never loops, on corrupt input", () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 2 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.boolean(), (values, flips, inline) => {
        const bytes = Buffer.from(Buffer.concat(values.map(encodeResp)));
        for (const [at, b] of flips) bytes[at % bytes.length] = b;
        const r = new RespReader({ allowInline: inline, limits: { maxBulkBytes: 1 << 16, maxElements: 1000, maxDepth: 16, maxLineBytes: 1024 } });
        r.push(bytes);
        try {
          for (let i = 0; i < 1000 && r.next() !== undefined; i++);
        } catch (e) {
          expect(e).toBeInstanceOf(GatewayError);
        }
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, inline) => {
        const r = new RespReader({ allowInline: inline });
        r.push(Buffer.from(bytes));
        try {
          for (let i = 0; i < 1000 && r.next() !== undefined; i++);
        } catch (e) {
          expect(e).toBeInstanceOf(GatewayError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
