import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FrameDecoder, HEADER_BYTES, MAX_CONTROL_PAYLOAD, MAX_DATA_PAYLOAD, TunnelProtocolError, encodeFrame, type TunnelFrame } from "./frames.js";

const SAMPLE: readonly TunnelFrame[] = [
  { type: "open", stream: 1, spec: Buffer.from('{"host":"db","port":5432}') },
  { type: "accept", stream: 1 },
  { type: "data", stream: 1, data: Buffer.from("hello") },
  { type: "data", stream: 3, data: Buffer.alloc(0) },
  { type: "window", stream: 1, credit: 65536 },
  { type: "end", stream: 1 },
  { type: "close", stream: 1, reason: Buffer.from('{"code":"unreachable","message":"x"}') },
  { type: "ping", nonce: Buffer.from("12345678") },
  { type: "pong", nonce: Buffer.from("87654321") },
  { type: "data", stream: 0xffff_ffff, data: randomBytes(100) },
];

function decodeAll(bytes: Buffer, splits: readonly number[]): TunnelFrame[] {
  const d = new FrameDecoder();
  const out: TunnelFrame[] = [];
  let at = 0;
  for (const s of [...splits, bytes.length]) {
    d.push(bytes.subarray(at, s));
    at = s;
    for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  }
  return out;
}

describe("agent tunnel frame codec", () => {
  const all = Buffer.concat(SAMPLE.map(encodeFrame));

  it("round-trips every frame type", () => {
    expect(decodeAll(all, [])).toEqual(SAMPLE);
  });

  it("decodes the same frames when the input is split at every byte", () => {
    for (let i = 1; i < all.length; i++) expect(decodeAll(all, [i])).toEqual(SAMPLE);
  });

  it("decodes one byte at a time", () => {
    expect(decodeAll(all, Array.from({ length: all.length - 1 }, (_, i) => i + 1))).toEqual(SAMPLE);
  });

  it("refuses a header whose length exceeds the type's bound before buffering the payload", () => {
    const h = Buffer.alloc(HEADER_BYTES);
    h.writeUInt8(3, 0);
    h.writeUInt32BE(1, 1);
    h.writeUInt32BE(MAX_DATA_PAYLOAD + 1, 5);
    const d = new FrameDecoder();
    d.push(h);
    expect(() => d.next()).toThrow(TunnelProtocolError);
    expect(() => d.next()).toThrow(/already failed/);
  });

  it("refuses unknown types, wrong fixed sizes, zero credit and pings on a stream", () => {
    const bad = (type: number, stream: number, payload: Buffer): (() => unknown) => {
      const h = Buffer.alloc(HEADER_BYTES);
      h.writeUInt8(type, 0);
      h.writeUInt32BE(stream, 1);
      h.writeUInt32BE(payload.length, 5);
      const d = new FrameDecoder();
      d.push(Buffer.concat([h, payload]));
      return () => d.next();
    };
    expect(bad(0, 1, Buffer.alloc(0))).toThrow(/unknown frame type/);
    expect(bad(99, 1, Buffer.alloc(0))).toThrow(/unknown frame type/);
    expect(bad(2, 1, Buffer.alloc(1))).toThrow(/accept frame/);
    expect(bad(6, 1, Buffer.alloc(3))).toThrow(/window frame/);
    expect(bad(6, 1, Buffer.alloc(4))).toThrow(/no credit/);
    expect(bad(7, 5, Buffer.alloc(8))).toThrow(/ping frame on stream 5/);
    expect(bad(1, 1, Buffer.alloc(MAX_CONTROL_PAYLOAD + 1))).toThrow(/open frame/);
  });

  it("the encoder refuses what the decoder would", () => {
    expect(() => encodeFrame({ type: "data", stream: 1, data: Buffer.alloc(MAX_DATA_PAYLOAD + 1) })).toThrow(TunnelProtocolError);
    expect(() => encodeFrame({ type: "window", stream: 1, credit: 0 })).toThrow(TunnelProtocolError);
    expect(() => encodeFrame({ type: "ping", nonce: Buffer.alloc(7) })).toThrow(TunnelProtocolError);
    expect(() => encodeFrame({ type: "end", stream: -1 })).toThrow(TunnelProtocolError);
  });

  it("fuzz: random bytes either decode to valid frames or fail with TunnelProtocolError, never anything else", () => {
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 3000; round++) {
      // Half the rounds mutate a valid stream (realistic corruption), half are pure noise.
      const base = round % 2 === 0 ? Buffer.from(all) : randomBytes(1 + rnd(200));
      for (let k = 0; k < 1 + rnd(4); k++) base[rnd(base.length)] = rnd(256);
      const d = new FrameDecoder();
      try {
        let at = 0;
        while (at < base.length) {
          const n = 1 + rnd(50);
          d.push(base.subarray(at, at + n));
          at += n;
          for (let f = d.next(); f !== undefined; f = d.next()) expect(typeof f.type).toBe("string");
        }
      } catch (e) {
        expect(e).toBeInstanceOf(TunnelProtocolError);
      }
    }
  });
});
