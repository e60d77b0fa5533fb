import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../core/errors.js";
import { Cursor, MAX_PACKET_PAYLOAD, PacketReader, framePacket, lenencInt } from "./packets.js";

function readAll(bytes: Buffer, splits: readonly number[], maxPayload = 64 * 1024 * 1024): { seq: number; payload: string }[] {
  const r = new PacketReader({ maxPayload });
  const out: { seq: number; payload: string }[] = [];
  let at = 0;
  for (const s of [...splits, bytes.length]) {
    r.push(bytes.subarray(at, Math.max(at, s)));
    at = Math.max(at, s);
    for (let p = r.next(); p !== undefined; p = r.next()) out.push({ seq: p.seq, payload: p.payload.toString("hex") });
  }
  return out;
}

describe("MySQL packet framing", () => {
  const packets = [Buffer.from([0x03, 0x53, 0x45, 0x4c]), Buffer.alloc(0), Buffer.from("hello world"), Buffer.alloc(300, 7)];
  const stream = Buffer.concat(packets.map((p, i) => framePacket(p, i).bytes));
  const expected = packets.map((p, i) => ({ seq: i, payload: p.toString("hex") }));

  it("reassembles packets split at every byte", () => {
    for (let i = 0; i <= stream.length; i++) expect(readAll(stream, [i])).toEqual(expected);
    expect(readAll(stream, Array.from({ length: stream.length }, (_, i) => i))).toEqual(expected);
  });

  it("joins a payload of 16 MiB and more from continuation packets (and an empty last one)", () => {
    for (const size of [MAX_PACKET_PAYLOAD, MAX_PACKET_PAYLOAD + 5]) {
      const payload = Buffer.alloc(size, 0x61);
      const { bytes, nextSeq } = framePacket(payload, 3);
      expect(nextSeq).toBe(5);
      const r = new PacketReader();
      // In uneven pieces.
      for (let at = 0; at < bytes.length; at += 1_000_003) r.push(bytes.subarray(at, at + 1_000_003));
      const p = r.next();
      expect(p?.payload.length).toBe(size);
      expect(p?.seq).toBe(3);
      expect(p?.lastSeq).toBe(4);
      expect(r.next()).toBeUndefined();
    }
  });

  it("refuses a payload over its bound before buffering it", () => {
    const r = new PacketReader({ maxPayload: 100 });
    r.push(Buffer.from([0xff, 0x00, 0x00, 0x00]));
    expect(() => r.next()).toThrow(GatewayError);
    const big = new PacketReader({ maxPayload: MAX_PACKET_PAYLOAD + 10 });
    big.push(Buffer.from([0xff, 0xff, 0xff, 0x00]));
    big.push(Buffer.alloc(MAX_PACKET_PAYLOAD));
    expect(big.next()).toBeUndefined();
    big.push(Buffer.from([0xff, 0x00, 0x00, 0x01]));
    expect(() => big.next()).toThrow(/more than/);
  });

  it("round-trips any packets through any split (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }), (bodies, cuts) => {
        const bufs = bodies.map((b) => Buffer.from(b));
        const bytes = Buffer.concat(bufs.map((b, i) => framePacket(b, i & 0xff).bytes));
        const splits = cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))).sort((a, b) => a - b);
        expect(readAll(bytes, splits)).toEqual(bufs.map((b, i) => ({ seq: i, payload: b.toString("hex") })));
      }),
    );
  });

  it("never throws anything but GatewayError on random bytes (fuzz)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const r = new PacketReader({ maxPayload: 1000 });
        r.push(Buffer.from(bytes));
        try {
          while (r.next() !== undefined);
        } catch (e) {
          expect(e).toBeInstanceOf(GatewayError);
        }
      }),
    );
  });
});

describe("length-encoded integers", () => {
  it("round-trip at every width boundary", () => {
    for (const n of [0, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 40]) {
      const c = new Cursor(lenencInt(n));
      expect(c.lenenc()).toBe(n);
      expect(c.remaining).toBe(0);
    }
  });

  it("reads 0xfb as NULL and rejects 0xff and truncation", () => {
    expect(new Cursor(Buffer.from([0xfb])).lenenc()).toBeNull();
    expect(() => new Cursor(Buffer.from([0xff])).lenenc()).toThrow(GatewayError);
    expect(() => new Cursor(Buffer.from([0xfc, 0x01])).lenenc()).toThrow(GatewayError);
    expect(() => new Cursor(Buffer.from([0x05, 0x61])).lenencBytes()).toThrow(GatewayError);
  });
});
