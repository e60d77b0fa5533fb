import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { GatewayError } from "../../../core/errors.js";
import { FrameReader, MAX_UNTAGGED_MESSAGE_BYTES } from "./framer.js";
import { byteChunks, cutAt, frameChunks, plain, splitsInTwo } from "./test-support.js";

/** A tagged message built by hand (independent of the encoders under test elsewhere). */
function msg(type: string, body: Buffer | string): Buffer {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  const out = Buffer.alloc(5 + b.length);
  out.write(type, 0, "latin1");
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

function untagged(body: Buffer): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeInt32BE(4 + body.length, 0);
  body.copy(out, 4);
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e.code;
    throw e;
  }
  return "no error";
}

const startupBody = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from("user\0bob\0database\0orders\0\0")]);

describe("FrameReader", () => {
  it("frames several tagged messages from one chunk as slices of that chunk", () => {
    const a = msg("Q", "select 1\0");
    const b = msg("S", "");
    const chunk = Buffer.concat([a, b]);
    const r = new FrameReader({ maxMessageBytes: 1024 });
    r.push(chunk);
    const f1 = r.next();
    const f2 = r.next();
    expect(r.next()).toBeUndefined();
    expect(f1?.type).toBe(0x51);
    expect(f1?.bytes.equals(a)).toBe(true);
    expect(f1?.body.toString()).toBe("select 1\0");
    expect(f2?.type).toBe(0x53);
    expect(f2?.body.length).toBe(0);
    // No copy: the frame is a view of the pushed chunk.
    chunk[5] = "S".charCodeAt(0);
    expect(f1?.body.toString()).toBe("Select 1\0");
    expect(f1?.bytes.buffer).toBe(chunk.buffer);
    expect(r.buffered).toBe(0);
  });

  it("copies a frame that straddles chunks, and returned frames are never overwritten", () => {
    const a = msg("Q", "first query\0");
    const b = msg("Q", "second query, longer\0");
    const both = Buffer.concat([a, b]);
    const chunks = [Buffer.from(both.subarray(0, 7)), Buffer.from(both.subarray(7, a.length + 3)), Buffer.from(both.subarray(a.length + 3))];
    const r = new FrameReader({ maxMessageBytes: 1024 });
    r.push(chunks[0]!);
    expect(r.next()).toBeUndefined();
    expect(r.buffered).toBe(7);
    r.push(chunks[1]!);
    const f1 = r.next();
    expect(f1?.bytes.equals(a)).toBe(true);
    expect(r.next()).toBeUndefined();
    r.push(chunks[2]!);
    const f2 = r.next();
    expect(f2?.bytes.equals(b)).toBe(true);
    // Scribbling over the input (as a socket's pooled buffers may be) leaves the copies intact.
    for (const c of chunks) c.fill(0x41);
    expect(f1?.bytes.equals(a)).toBe(true);
    expect(f2?.bytes.equals(b)).toBe(true);
  });

  it("frames an untagged startup packet, then tagged messages after setTagged", () => {
    const startup = untagged(startupBody);
    const q = msg("Q", "select 1\0");
    const r = new FrameReader({ maxMessageBytes: 1024, untagged: true });
    r.push(Buffer.concat([startup, q]));
    const s = r.next();
    expect(s?.type).toBe(0);
    expect(s?.bytes.equals(startup)).toBe(true);
    expect(s?.body.equals(startupBody)).toBe(true);
    r.setTagged();
    const f = r.next();
    expect(f?.type).toBe(0x51);
    expect(f?.bytes.equals(q)).toBe(true);
  });

  it("may switch to tagged framing while only part of the next header has arrived", () => {
    const startup = untagged(startupBody);
    const q = msg("Q", "select 1\0");
    const r = new FrameReader({ maxMessageBytes: 1024, untagged: true });
    r.push(Buffer.concat([startup, q.subarray(0, 2)]));
    expect(r.next()?.type).toBe(0);
    expect(r.next()).toBeUndefined();
    r.setTagged();
    r.push(q.subarray(2));
    expect(r.next()?.bytes.equals(q)).toBe(true);
  });

  it("refuses setTagged inside an untagged frame whose length was already read", () => {
    const r = new FrameReader({ maxMessageBytes: 1024, untagged: true });
    r.push(untagged(startupBody).subarray(0, 6));
    expect(r.next()).toBeUndefined();
    expect(codeOf(() => r.setTagged())).toBe("GW_INTERNAL");
  });

  it("rejects a length below 4 from the header alone, and stays failed", () => {
    for (const len of [0, 3, -1, -2147483648]) {
      const header = Buffer.alloc(5);
      header.write("Q", 0, "latin1");
      header.writeInt32BE(len, 1);
      const r = new FrameReader({ maxMessageBytes: 1024 });
      r.push(header);
      expect(codeOf(() => r.next())).toBe("GW_PROTOCOL");
      r.push(Buffer.from("more"));
      expect(codeOf(() => r.next())).toBe("GW_PROTOCOL");
    }
  });

  it("rejects a length above the limit from the header before any body arrives", () => {
    const max = 100;
    const header = Buffer.alloc(5);
    header.write("D", 0, "latin1");
    header.writeInt32BE(max + 1, 1);
    // Header whole, and header split in every way: the verdict comes at its fifth byte.
    for (const chunks of splitsInTwo(header)) {
      const r = new FrameReader({ maxMessageBytes: max });
      let code = "no error";
      for (const c of chunks) {
        r.push(c);
        code = codeOf(() => r.next());
        if (code !== "no error") break;
      }
      expect(code).toBe("GW_LIMIT");
      expect(r.buffered).toBeLessThanOrEqual(5);
    }
    // Exactly the limit is accepted.
    const ok = new FrameReader({ maxMessageBytes: max });
    ok.push(msg("D", Buffer.alloc(max - 4)));
    expect(ok.next()?.body.length).toBe(max - 4);
  });

  it("caps untagged frames at min(maxMessageBytes, 10000)", () => {
    const big = new FrameReader({ maxMessageBytes: 1 << 20, untagged: true });
    const header = Buffer.alloc(4);
    header.writeInt32BE(MAX_UNTAGGED_MESSAGE_BYTES + 1, 0);
    big.push(header);
    expect(codeOf(() => big.next())).toBe("GW_LIMIT");

    const atCap = new FrameReader({ maxMessageBytes: 1 << 20, untagged: true });
    atCap.push(untagged(Buffer.alloc(MAX_UNTAGGED_MESSAGE_BYTES - 4)));
    expect(atCap.next()?.bytes.length).toBe(MAX_UNTAGGED_MESSAGE_BYTES);

    const small = new FrameReader({ maxMessageBytes: 64, untagged: true });
    header.writeInt32BE(65, 0);
    small.push(header);
    expect(codeOf(() => small.next())).toBe("GW_LIMIT");
  });

  it("rejects unusable limits", () => {
    expect(codeOf(() => new FrameReader({ maxMessageBytes: 3 }))).toBe("GW_CONFIG");
    expect(codeOf(() => new FrameReader({ maxMessageBytes: 1.5 }))).toBe("GW_CONFIG");
    expect(codeOf(() => new FrameReader({ maxMessageBytes: 2 ** 31 }))).toBe("GW_CONFIG");
  });

  it("frames every message identically however the stream is split", () => {
    const stream = Buffer.concat([
      untagged(startupBody),
      msg("p", "secret\0"),
      msg("Q", "select 1; select 2\0"),
      msg("S", ""),
      msg("D", Buffer.from([0, 1, 0, 0, 0, 3, 0x61, 0x62, 0x63])),
      msg("X", ""),
    ]);
    const options = { maxMessageBytes: 4096, untagged: true } as const;
    const reference = plain(frameChunks([stream], options));
    expect(reference.map((f) => f.type)).toEqual([0, 0x70, 0x51, 0x53, 0x44, 0x58]);
    for (const chunks of splitsInTwo(stream)) expect(plain(frameChunks(chunks, options))).toEqual(reference);
    expect(plain(frameChunks(byteChunks(stream), options))).toEqual(reference);
  });

  it("reassembles a 1 MiB DataRow split across many chunks", () => {
    const value = Buffer.alloc(1 << 20);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31 + 7) & 0xff;
    const body = Buffer.alloc(2 + 4 + value.length);
    body.writeUInt16BE(1, 0);
    body.writeInt32BE(value.length, 2);
    value.copy(body, 6);
    const row = msg("D", body);
    const stream = Buffer.concat([msg("T", Buffer.alloc(2)), row, msg("C", "SELECT 1\0")]);
    const rand = fc.sample(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { minLength: 50, maxLength: 400 }), { numRuns: 3, seed: 42 });
    const cuts = [Array.from({ length: Math.floor(stream.length / 1000) }, (_, i) => (i + 1) * 1000), ...rand.map((r) => [...r].sort((x, y) => x - y))];
    for (const offsets of cuts) {
      const frames = frameChunks(cutAt(stream, offsets), { maxMessageBytes: 2 << 20 });
      expect(frames.map((f) => f.type)).toEqual([0x54, 0x44, 0x43]);
      expect(frames[1]!.bytes.equals(row)).toBe(true);
      expect(frames[1]!.body.subarray(6).equals(value)).toBe(true);
    }
  });

  it("never holds more than the largest frame while it waits", () => {
    const r = new FrameReader({ maxMessageBytes: 1 << 20 });
    const header = Buffer.alloc(5);
    header.write("D", 0, "latin1");
    header.writeInt32BE(1 << 20, 1);
    r.push(header);
    r.push(Buffer.alloc(10));
    expect(r.next()).toBeUndefined();
    expect(r.buffered).toBe(15);
  });

  // Property (a): arbitrary bytes either frame or fail with GatewayError, in bounded steps.
  it("survives arbitrary input: frames or GatewayError only, bounded buffering", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.integer({ min: 4, max: 300 }),
        fc.boolean(),
        (bytes, rawCuts, max, startUntagged) => {
          const input = Buffer.from(bytes);
          const offsets = [...new Set(rawCuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
          const r = new FrameReader({ maxMessageBytes: max, untagged: startUntagged });
          const out: Buffer[] = [];
          let steps = 0;
          try {
            for (const chunk of cutAt(input, offsets)) {
              r.push(chunk);
              for (let f = r.next(); f !== undefined; f = r.next()) {
                expect(++steps).toBeLessThanOrEqual(input.length);
                expect(f.bytes.length).toBeLessThanOrEqual(max + 1);
                out.push(Buffer.from(f.bytes));
                if (out.length === 1 && startUntagged) r.setTagged();
              }
              expect(r.buffered).toBeLessThanOrEqual(max + 5);
            }
          } catch (e) {
            if (!(e instanceof GatewayError)) throw e;
            expect(["GW_PROTOCOL", "GW_LIMIT"]).toContain(e.code);
            return;
          }
          // Nothing lost or invented: frames plus what is held are exactly the input.
          const framed = Buffer.concat(out);
          expect(framed.equals(input.subarray(0, framed.length))).toBe(true);
          expect(framed.length + r.buffered).toBe(input.length);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("frames generated valid streams identically under random splits", () => {
    const message = fc
      .tuple(fc.integer({ min: 0x20, max: 0x7e }), fc.uint8Array({ maxLength: 300 }))
      .map(([t, body]) => msg(String.fromCharCode(t), Buffer.from(body)));
    fc.assert(
      fc.property(fc.array(message, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (messages, rawCuts) => {
        const stream = Buffer.concat(messages);
        const offsets = [...new Set(rawCuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
        const frames = frameChunks(cutAt(stream, offsets), { maxMessageBytes: 400 });
        expect(frames.map((f) => f.bytes.toString("hex"))).toEqual(messages.map((m) => m.toString("hex")));
        expect(frames.map((f) => f.type)).toEqual(messages.map((m) => m[0]));
      }),
      { numRuns: 500 },
    );
  });
});

describe("FrameReader.setMaxMessageBytes", () => {
  it("applies a smaller cap before authentication and the configured one after", async () => {
    const { FrameReader } = await import("./framer.js");
    const big = Buffer.alloc(5 + 20_000);
    big[0] = 0x70;
    big.writeInt32BE(4 + 20_000, 1);
    const pre = new FrameReader({ maxMessageBytes: 1 << 20 });
    pre.setMaxMessageBytes(16 * 1024);
    pre.push(big.subarray(0, 5));
    expect(() => pre.next()).toThrow(/20004|limit|large|exceeds/i);
    const post = new FrameReader({ maxMessageBytes: 1 << 20 });
    post.setMaxMessageBytes(16 * 1024);
    post.setMaxMessageBytes(1 << 20);
    post.push(big);
    expect(post.next()?.bytes.length).toBe(big.length);
  });
});
