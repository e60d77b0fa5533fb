import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { newFeatures, scanBytes, scanText, type Features } from "./prefilter.js";

const text = (s: string): Features => scanText(s, s.length, newFeatures());

describe("scanText", () => {
  it("counts the characters the detectors need", () => {
    const f = text("Mail a.b@x.io, +1 (415) 555-2671; k='v' t=1\té");
    expect(f).toMatchObject({
      length: 45,
      at: 1,
      dots: 2,
      dashes: 1,
      plus: 1,
      parens: 2,
      spaces: 7,
      assigns: 2,
      quotes: 2,
      upper: 1,
      nonAscii: true,
    });
    expect(f.digits).toBe(12);
  });

  it.each([
    ["4111 1111 1111 1111", 16],
    ["4111-1111-1111-1111", 16],
    ["+1 (415) 555-2671", 11],
    ["10.0.0.1", 5],
    ["12 -- 34", 2], // a gap of three breaks the run
    ["550e8400-e29b-41d4-a716-446655440000", 12], // groups glued to a letter do not count
    ["x4111111111111111", 0],
    ["2024-01-15 10:30:00", 10],
  ])("digitRun of %j is %d", (s, run) => {
    expect(text(s).digitRun).toBe(run);
  });

  it("measures token runs with and without dots", () => {
    const f = text("id: abc-DEF_123+/= x.y.z~w");
    expect(f.tokenRun).toBe(14); // "abc-DEF_123+/="
    expect(f.tokenDotRun).toBe(14);
    expect(text("aaaa.bbbb.cccc").tokenDotRun).toBe(14);
    expect(text("aaaa.bbbb.cccc").tokenRun).toBe(4);
  });

  it("summarises only the first `end` characters", () => {
    const f = scanText("a@b.io 4111111111111111", 6, newFeatures());
    expect(f.length).toBe(6);
    expect(f.at).toBe(1);
    expect(f.digits).toBe(0);
  });

  it("reuses the object it is given", () => {
    const f = newFeatures();
    expect(scanText("a@b", 3, f)).toBe(f);
    scanText("xyz", 3, f);
    expect(f.at).toBe(0);
  });
});

describe("scanBytes", () => {
  it("matches scanText on the UTF-8 bytes of any string (except length, in bytes)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 60 }), (s) => {
        const bytes = Buffer.from(s, "utf8");
        const a = scanText(s, s.length, newFeatures());
        const b = scanBytes(bytes, bytes.length, newFeatures());
        expect({ ...b, length: 0 }).toEqual({ ...a, length: 0 });
        expect(b.length).toBe(bytes.length);
      }),
    );
  });

  it("matches scanText on ASCII built from the interesting characters", () => {
    const ascii = fc.string({ unit: fc.constantFrom(..."aZ09 -.()+@=:'_/~\t".split("")), maxLength: 80 });
    fc.assert(
      fc.property(ascii, (s) => {
        expect(scanBytes(Buffer.from(s, "latin1"), s.length, newFeatures())).toEqual(scanText(s, s.length, newFeatures()));
      }),
    );
  });

  it("summarises a range inside a larger buffer exactly like the range on its own", () => {
    const ascii = fc.string({ unit: fc.constantFrom(..."aZ09 -.()+@=:'_/~\t\u00e9".split("")), maxLength: 40 });
    fc.assert(
      fc.property(ascii, ascii, ascii, (before, value, after) => {
        const whole = Buffer.from(before + value + after, "utf8");
        const start = Buffer.byteLength(before, "utf8");
        const end = start + Buffer.byteLength(value, "utf8");
        const own = Buffer.from(value, "utf8");
        expect(scanBytes(whole, end, newFeatures(), start)).toEqual(scanBytes(own, own.length, newFeatures()));
      }),
    );
  });
});
