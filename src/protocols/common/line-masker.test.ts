import { describe, expect, it, vi } from "vitest";
import { LineMasker, lineMaskFn } from "./line-masker.js";

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

describe("lineMaskFn (the masking library's chain, for terminal lines)", () => {
  const hide = (word: string, kind: string, value: string | null) => ({
    maskText: (text: string) => (text.includes(word) ? { value: value === null ? null : text.replaceAll(word, value), counts: { [kind]: 1 } } : undefined),
  });

  it("is undefined without maskers, and chains maskers in order with their counts summed", () => {
    expect(lineMaskFn([])).toBeUndefined();
    const fn = lineMaskFn([
      { maskText: (t: string) => (t.includes("a") ? { value: t.replaceAll("a", "[A]"), counts: { a: 2 } } : undefined) },
      { maskText: (t: string) => (t.includes("[A]") ? { value: t.replaceAll("[A]", "[B]"), counts: { b: 1, a: 1 } } : undefined) },
    ]);
    expect(fn?.("xax")).toEqual({ text: "x[B]x", counts: { a: 3, b: 1 } });
    expect(fn?.("xyz")).toBeUndefined();
  });

  it("shows the null strategy as [REDACTED] (a terminal has no NULL) and stops there", () => {
    const second = vi.fn(() => undefined);
    const fn = lineMaskFn([hide("pw", "secret", null), { maskText: second }]);
    expect(fn?.("pw=1")).toEqual({ text: "[REDACTED]", counts: { secret: 1 } });
    expect(second).not.toHaveBeenCalled();
  });

  it("feeds a LineMasker: counts per kind over the stream", () => {
    const fn = lineMaskFn([hide("SECRET", "secret", "[S]")]);
    const out: Buffer[] = [];
    const m = new LineMasker({ mask: fn ?? mask, write: (b) => out.push(b), flushMs: 10_000 });
    m.push(Buffer.from("SECRET\nok\nSECRET again\n"));
    m.close();
    expect(Buffer.concat(out).toString()).toBe("[S]\nok\n[S] again\n");
    expect(m.counts).toEqual({ secret: 2 });
  });
});
