import { describe, expect, it } from "vitest";
import { OutBuffer } from "./out-buffer.js";

describe("OutBuffer", () => {
  it("merges adjacent slices of one chunk into one write of the original bytes", () => {
    const chunk = Buffer.from("aaaabbbbcccc");
    const out = new OutBuffer();
    out.add(chunk.subarray(0, 4));
    out.add(chunk.subarray(4, 8));
    out.add(chunk.subarray(8, 12));
    const writes: Buffer[] = [];
    out.flushTo((b) => (writes.push(b), true));
    expect(writes).toHaveLength(1);
    expect(writes[0]?.toString()).toBe("aaaabbbbcccc");
  });

  it("joins non-adjacent or foreign parts, in order, into one write", () => {
    const chunk = Buffer.from("aaaabbbbcccc");
    const out = new OutBuffer();
    out.add(chunk.subarray(0, 4));
    out.add(Buffer.from("XX"));
    out.add(chunk.subarray(8, 12));
    out.add(chunk.subarray(4, 8));
    expect(out.length).toBe(14);
    const writes: string[] = [];
    const ok = out.flushTo((b) => (writes.push(b.toString()), false));
    expect(writes).toEqual(["aaaaXXccccbbbb"]);
    expect(ok).toBe(false);
    expect(out.length).toBe(0);
    expect(out.flushTo(() => false)).toBe(true);
  });
});
