import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FXP, SftpFramer, SftpFramingError, SftpReader } from "./sftp.js";

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
