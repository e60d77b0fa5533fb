import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FXP, SftpFramer, SftpFramingError, SftpReader, SftpStreamFramer, type SftpFrame } from "./sftp.js";

function packet(type: number, ...fields: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...fields]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (s: string | Buffer): Buffer => {
  const b = typeof s === "string" ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};

describe("SftpFramer", () => {
  const stream = Buffer.concat([
    packet(FXP.OPEN, u32(1), str("/tmp/a"), u32(0x1a), u32(0)),
    packet(FXP.WRITE, u32(2), str("h1"), u32(0), u32(0), str(Buffer.alloc(300, 7))),
    packet(FXP.CLOSE, u32(3), str("h1")),
  ]);

  it("yields the same packets split at every byte", () => {
    const whole = new SftpFramer().push(stream);
    expect(whole).toHaveLength(3);
    for (let i = 0; i <= stream.length; i++) {
      const f = new SftpFramer();
      const got = [...f.push(stream.subarray(0, i)), ...f.push(stream.subarray(i))];
      expect(got).toEqual(whole);
    }
    const r = new SftpReader(whole[0] ?? Buffer.alloc(0));
    expect(r.byte()).toBe(FXP.OPEN);
    expect(r.u32()).toBe(1);
    expect(r.string()).toBe("/tmp/a");
  });

  it("refuses oversized and empty packets", () => {
    expect(() => new SftpFramer(1024).push(u32(2048))).toThrow(SftpFramingError);
    expect(() => new SftpFramer().push(u32(0))).toThrow(SftpFramingError);
  });

  it("never throws anything but SftpFramingError on arbitrary bytes, and readers stay in bounds", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const f = new SftpFramer(4096);
        try {
          for (const c of chunks) {
            for (const p of f.push(Buffer.from(c))) {
              const r = new SftpReader(p);
              try {
                r.byte();
                r.u32();
                r.string();
                r.u64();
              } catch (e) {
                expect(e).toBeInstanceOf(SftpFramingError);
              }
            }
          }
        } catch (e) {
          expect(e).toBeInstanceOf(SftpFramingError);
        }
      }),
    );
  });
});

/** Frames merged for comparison: consecutive data slices joined. */
function merged(frames: readonly SftpFrame[]): unknown[] {
  const out: unknown[] = [];
  for (const f of frames) {
    const last = out[out.length - 1] as { kind?: string; data?: Buffer } | undefined;
    if (f.kind === "data" && last?.kind === "data" && last.data !== undefined) last.data = Buffer.concat([last.data, f.data]);
    else out.push(f.kind === "data" ? { kind: "data", data: Buffer.from(f.data) } : f);
  }
  return out;
}

describe("SftpStreamFramer", () => {
  const data = Buffer.alloc(300, 7);
  const client = Buffer.concat([
    packet(FXP.OPEN, u32(1), str("/tmp/a"), u32(0x1a), u32(0)),
    packet(FXP.WRITE, u32(2), str("h1"), u32(1), u32(5), str(data)),
    packet(FXP.WRITE, u32(3), str("h1"), u32(0), u32(0), str(Buffer.alloc(0))),
    packet(FXP.CLOSE, u32(4), str("h1")),
  ]);
  const server = Buffer.concat([packet(FXP.HANDLE, u32(1), str("h1")), packet(FXP.DATA, u32(2), str(data)), packet(FXP.STATUS, u32(3), u32(0), str(""), str(""))]);

  it("streams WRITE data as slices, with its fields, and frames other packets whole, split at every byte", () => {
    const whole = new SftpStreamFramer(FXP.WRITE).push(client);
    expect(merged(whole)).toEqual([
      { kind: "packet", packet: client.subarray(4, 4 + client.readUInt32BE(0)) },
      { kind: "start", type: FXP.WRITE, id: 2, handle: Buffer.from("h1"), offset: 2 ** 32 + 5, length: 300 },
      { kind: "data", data },
      { kind: "start", type: FXP.WRITE, id: 3, handle: Buffer.from("h1"), offset: 0, length: 0 },
      { kind: "packet", packet: packet(FXP.CLOSE, u32(4), str("h1")).subarray(4) },
    ]);
    for (let i = 0; i <= client.length; i++) {
      for (const j of [i, Math.min(client.length, i + 1), Math.min(client.length, i + 37)]) {
        const f = new SftpStreamFramer(FXP.WRITE);
        const got = [...f.push(client.subarray(0, i)), ...f.push(client.subarray(i, j)), ...f.push(client.subarray(j))];
        expect(merged(got)).toEqual(merged(whole));
      }
    }
  });

  it("streams DATA replies, split at every byte", () => {
    const whole = new SftpStreamFramer(FXP.DATA).push(server);
    expect(merged(whole)).toEqual([
      { kind: "packet", packet: packet(FXP.HANDLE, u32(1), str("h1")).subarray(4) },
      { kind: "start", type: FXP.DATA, id: 2, handle: undefined, offset: 0, length: 300 },
      { kind: "data", data },
      { kind: "packet", packet: packet(FXP.STATUS, u32(3), u32(0), str(""), str("")).subarray(4) },
    ]);
    for (let i = 0; i <= server.length; i++) {
      const f = new SftpStreamFramer(FXP.DATA);
      expect(merged([...f.push(server.subarray(0, i)), ...f.push(server.subarray(i))])).toEqual(merged(whole));
    }
  });

  it("yields data as slices of the pushed chunk (no copy)", () => {
    const chunk = packet(FXP.WRITE, u32(2), str("h1"), u32(0), u32(0), str(data));
    const frames = new SftpStreamFramer(FXP.WRITE).push(chunk);
    const d = frames.find((f) => f.kind === "data");
    expect(d?.kind === "data" && d.data.buffer === chunk.buffer).toBe(true);
  });

  it("refuses lengths that do not add up, oversized packets and handles", () => {
    const bad = packet(FXP.WRITE, u32(2), str("h1"), u32(0), u32(0), str(data));
    bad.writeUInt32BE(bad.readUInt32BE(0) + 1, 0);
    expect(() => new SftpStreamFramer(FXP.WRITE).push(bad)).toThrow(SftpFramingError);
    expect(() => new SftpStreamFramer(FXP.WRITE).push(u32(SFTP_TOO_BIG))).not.toThrow();
    expect(() => new SftpStreamFramer(FXP.WRITE).push(Buffer.concat([u32(SFTP_TOO_BIG), Buffer.from([FXP.OPEN])]))).toThrow(SftpFramingError);
    expect(() => new SftpStreamFramer(FXP.WRITE).push(Buffer.concat([u32(0), Buffer.from([FXP.OPEN])]))).toThrow(SftpFramingError);
    expect(() => new SftpStreamFramer(FXP.WRITE).push(Buffer.concat([u32(2000), Buffer.from([FXP.WRITE]), u32(1), u32(257)]))).toThrow(SftpFramingError);
  });

  it("agrees with SftpFramer on random packet streams split anywhere (property)", () => {
    const arbPacket = fc.oneof(
      fc.tuple(fc.nat(1000), fc.uint8Array({ maxLength: 40 }), fc.nat(2 ** 20), fc.uint8Array({ maxLength: 200 })).map(([id, h, off, d]) => packet(FXP.WRITE, u32(id), str(Buffer.from(h)), u32(0), u32(off), str(Buffer.from(d)))),
      fc.tuple(fc.constantFrom(FXP.OPEN, FXP.CLOSE, FXP.REMOVE, FXP.READ), fc.uint8Array({ maxLength: 60 })).map(([t, b]) => packet(t, Buffer.from(b))),
    );
    fc.assert(
      fc.property(fc.array(arbPacket, { maxLength: 8 }), fc.array(fc.nat(400), { maxLength: 5 }), (packets, cuts) => {
        const stream = Buffer.concat(packets);
        const reference = new SftpFramer().push(stream);
        const f = new SftpStreamFramer(FXP.WRITE);
        const frames: SftpFrame[] = [];
        let last = 0;
        for (const c of [...cuts.map((x) => x % (stream.length + 1))].sort((a, b) => a - b)) {
          frames.push(...f.push(stream.subarray(last, c)));
          last = c;
        }
        frames.push(...f.push(stream.subarray(last)));
        // Rebuild whole packets from the frames: they must be the reference packets.
        const rebuilt: Buffer[] = [];
        let current: Buffer[] | undefined;
        let pendingLength = 0;
        for (const fr of frames) {
          if (fr.kind === "packet") rebuilt.push(fr.packet);
          else if (fr.kind === "start") {
            const handle = fr.handle ?? Buffer.alloc(0);
            const off = Buffer.alloc(8);
            off.writeUInt32BE(Math.floor(fr.offset / 2 ** 32), 0);
            off.writeUInt32BE(fr.offset % 2 ** 32, 4);
            current = [Buffer.from([FXP.WRITE]), u32(fr.id), str(handle), off, u32(fr.length)];
            pendingLength = fr.length;
            if (pendingLength === 0) rebuilt.push(Buffer.concat(current));
          } else if (current !== undefined) {
            current.push(fr.data);
            pendingLength -= fr.data.length;
            if (pendingLength === 0) rebuilt.push(Buffer.concat(current));
          }
        }
        expect(rebuilt).toEqual(reference);
      }),
      { numRuns: 300 },
    );
  });
});

const SFTP_TOO_BIG = 1024 * 1024 + 1;
