import { describe, expect, it } from "vitest";
import { LineMasker } from "./line-masker.js";

const mask = (text: string): { text: string; counts: Record<string, number> } | undefined =>
  text.includes("SECRET") ? { text: text.replaceAll("SECRET", "[X]"), counts: { secret: 1 } } : undefined;

describe("LineMasker", () => {
  it("masks whole lines, however they arrive", () => {
    const input = Buffer.from("a SECRET line\nclean\nSECRET\n");
    for (let i = 1; i < input.length; i++) {
      const out: Buffer[] = [];
      const m = new LineMasker({ mask, write: (b) => out.push(b), flushMs: 10_000 });
      m.push(input.subarray(0, i));
      m.push(input.subarray(i));
      m.close();
      expect(Buffer.concat(out).toString()).toBe("a [X] line\nclean\n[X]\n");
    }
  });

  it("writes clean lines as the original bytes and flushes a partial line (a prompt) on a timer", async () => {
    const out: Buffer[] = [];
    const m = new LineMasker({ mask, write: (b) => out.push(b), flushMs: 5 });
    const binary = Buffer.from([0xff, 0xfe, 0x0a]);
    m.push(binary);
    expect(out[0]).toEqual(binary);
    m.push(Buffer.from("$ "));
    await new Promise((r) => setTimeout(r, 30));
    expect(Buffer.concat(out).toString("latin1").endsWith("$ ")).toBe(true);
    m.close();
  });

  it("caps a line without a newline", () => {
    const out: Buffer[] = [];
    const m = new LineMasker({ mask, write: (b) => out.push(b), maxLineBytes: 8, flushMs: 10_000 });
    m.push(Buffer.from("0123456789"));
    expect(Buffer.concat(out).length).toBe(10);
    m.close();
    expect(m.counts).toEqual({});
  });
});
