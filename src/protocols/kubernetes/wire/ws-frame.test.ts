import { describe, expect, it } from "vitest";
import { WS_BINARY, WS_CLOSE, WsFrameReader, wsFrame } from "./ws-frame.js";

describe("WebSocket frames read in passing", () => {
  it("reads unmasked frames of 7-, 16- and 64-bit lengths, split anywhere", () => {
    const sizes = [5, 300, 70_000];
    const frames = sizes.map((n) => wsFrame(WS_BINARY, Buffer.alloc(n, 7)));
    const all = Buffer.concat([...frames, wsFrame(WS_CLOSE, Buffer.from([0x03, 0xe8]))]);
    const r = new WsFrameReader();
    const got = [];
    for (let at = 0; at < all.length; at += 1000) got.push(...r.push(all.subarray(at, at + 1000)));
    expect(got.map((f) => f.payload.length)).toEqual([...sizes, 2]);
    expect(got.map((f) => f.opcode)).toEqual([WS_BINARY, WS_BINARY, WS_BINARY, WS_CLOSE]);
    expect(Buffer.concat(got.map((f) => f.raw)).equals(all)).toBe(true);
  });

  it("unmasks a client frame's payload and keeps its raw bytes", () => {
    const key = [9, 8, 7, 6];
    const payload = Buffer.from("spdy bytes");
    const raw = Buffer.concat([Buffer.from([0x82, 0x80 | payload.length, ...key]), Buffer.from(payload.map((b, i) => b ^ (key[i & 3] ?? 0)))]);
    const [f] = new WsFrameReader().push(raw);
    expect(f?.payload.toString()).toBe("spdy bytes");
    expect(f?.raw.equals(raw)).toBe(true);
  });

  it("refuses extension bits and oversized frames", () => {
    expect(() => new WsFrameReader().push(Buffer.from([0xc2, 0x00]))).toThrow(/extension/);
    const huge = Buffer.from([0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0]);
    expect(() => new WsFrameReader().push(huge)).toThrow(/longer/);
  });
});
