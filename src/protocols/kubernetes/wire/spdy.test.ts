import { constants, createDeflate } from "node:zlib";
import { describe, expect, it } from "vitest";
import { controlFrame, dataFrame, decodeHeaderBlock, encodeHeaderBlock, FLAG_FIN, HeaderDeflater, HeaderInflater, parseSynStream, SPDY_DICTIONARY, SpdyFrameReader, SYN_STREAM } from "./spdy.js";

/** A real zlib compressor primed with the dictionary, sync-flushed per block (as Go's spdystream writes). */
async function zlibBlocks(blocks: readonly Buffer[]): Promise<Buffer[]> {
  const z = createDeflate({ dictionary: SPDY_DICTIONARY });
  const out: Buffer[] = [];
  for (const b of blocks) {
    const chunks: Buffer[] = [];
    const onData = (c: Buffer): void => void chunks.push(c);
    z.on("data", onData);
    z.write(b);
    await new Promise<void>((r) => z.flush(constants.Z_SYNC_FLUSH, () => setImmediate(r)));
    z.off("data", onData);
    out.push(Buffer.concat(chunks));
  }
  z.destroy();
  return out;
}

describe("SPDY/3.1 codec", () => {
  it("frames split anywhere come out whole", () => {
    const a = dataFrame(3, FLAG_FIN, Buffer.from("hello"));
    const b = controlFrame(SYN_STREAM, 0, Buffer.alloc(12));
    const all = Buffer.concat([a, b]);
    const r = new SpdyFrameReader();
    const got = [...r.push(all.subarray(0, 3)), ...r.push(all.subarray(3, 15)), ...r.push(all.subarray(15))];
    expect(got.map((f) => f.kind)).toEqual(["data", "control"]);
    const d = got[0];
    expect(d?.kind === "data" && d.streamId === 3 && d.flags === FLAG_FIN && d.data.toString()).toBe("hello");
    expect(r.pending).toBe(0);
  });

  it("refuses another SPDY version", () => {
    const f = controlFrame(SYN_STREAM, 0, Buffer.alloc(10));
    f.writeUInt16BE(0x8002, 0);
    expect(() => new SpdyFrameReader().push(f)).toThrow(/version 2/);
  });

  it("header blocks round-trip, and a malformed one is refused", () => {
    const b = encodeHeaderBlock([["streamType", "data"], ["port", "8080"], ["requestID", "0"]]);
    expect([...decodeHeaderBlock(b)]).toEqual([["streamtype", "data"], ["port", "8080"], ["requestid", "0"]]);
    expect(() => decodeHeaderBlock(b.subarray(0, b.length - 1))).toThrow();
    expect(() => decodeHeaderBlock(Buffer.concat([b, Buffer.from([0])]))).toThrow();
  });

  it("inflates a real zlib stream with the dictionary, block after block on one context", async () => {
    const blocks = [encodeHeaderBlock([["streamtype", "error"], ["port", "80"], ["requestid", "0"]]), encodeHeaderBlock([["streamtype", "data"], ["port", "80"], ["requestid", "0"]])];
    const compressed = await zlibBlocks(blocks);
    const inf = new HeaderInflater();
    expect((await inf.inflate(compressed[0] ?? Buffer.alloc(0))).get("streamtype")).toBe("error");
    expect((await inf.inflate(compressed[1] ?? Buffer.alloc(0))).get("streamtype")).toBe("data");
    inf.close();
  });

  it("the stored-block deflater is read back by zlib, and SYN_STREAM's block starts at byte 10", async () => {
    const d = new HeaderDeflater();
    const inf = new HeaderInflater();
    for (const port of ["1", "2", "3"]) {
      const payload = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), d.compress(encodeHeaderBlock([["port", port]]))]);
      const { streamId, block } = parseSynStream(payload);
      expect(streamId).toBe(1);
      expect((await inf.inflate(block)).get("port")).toBe(port);
    }
    inf.close();
  });

  it("garbage in a header block is refused, not hung on", async () => {
    const inf = new HeaderInflater();
    await expect(inf.inflate(Buffer.from("not zlib at all"))).rejects.toThrow();
    inf.close();
  });
});
