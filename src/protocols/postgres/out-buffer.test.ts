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

  it("keeps non-adjacent or foreign parts separate and in order", () => {
    const chunk = Buffer.from("aaaabbbbcccc");
    const out = new OutBuffer();
    out.add(chunk.subarray(0, 4));
    out.add(Buffer.from("XX"));
    out.add(chunk.subarray(8, 12));
    out.add(chunk.subarray(4, 8));
    expect(out.length).toBe(14);
    const writes: string[] = [];
    const ok = out.flushTo((b) => (writes.push(b.toString()), writes.length !== 2));
    expect(writes).toEqual(["aaaa", "XX", "cccc", "bbbb"]);
    expect(ok).toBe(false);
    expect(out.length).toBe(0);
  });
});
