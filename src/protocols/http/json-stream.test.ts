import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MaskRule } from "../../core/decision.js";
import { MaskChain, createMaskerFactory, jsonPathRules } from "../../masking/index.js";
import { JsonStreamError, JsonStreamMasker } from "./json-stream.js";

const maskerFor = createMaskerFactory(Buffer.alloc(32, 9));
const pii: MaskRule = { rule: "pii", columns: [], detectors: ["email", "credit_card", "phone"], strategy: "redact" };
const byPath: MaskRule = { rule: "ssn", columns: ["$.items[*].ssn", "$.secretBox"], detectors: [], strategy: "redact" };

function run(chunks: readonly string[], rules: MaskRule[] = [pii, byPath]): string {
  const m = new JsonStreamMasker({ chain: new MaskChain(rules.filter((r) => r.detectors.length > 0).map(maskerFor)), pathRules: jsonPathRules(rules), maskerFor, counts: {} });
  let out = "";
  for (const c of chunks) out += m.push(c);
  return out + m.end();
}

const DOC = JSON.stringify({
  items: [
    { id: 1, email: "ana.garcia@example.es", ssn: "078-05-1120", note: 'a "quoted" \\ text', n: -1.5e3 },
    { id: 2, card: "4111 1111 1111 1111", ssn: 123456789, ok: true, nothing: null, nested: [[], {}] },
  ],
  secretBox: { a: "x", b: [1, 2] },
  "unicode é ☃": "ok",
});

describe("JsonStreamMasker", () => {
  it("masks by detectors and JSON paths and keeps valid JSON", () => {
    const out = run([DOC]);
    const v = JSON.parse(out) as { items: Record<string, unknown>[]; secretBox: Record<string, unknown> };
    expect(out).not.toContain("ana.garcia");
    expect(out).not.toContain("4111 1111");
    expect(out).not.toContain("078-05-1120");
    expect(out).not.toContain("123456789");
    expect(v.items[0]?.email).toBe("[EMAIL]");
    expect(v.items[0]?.note).toBe('a "quoted" \\ text');
    expect(v.items[0]?.n).toBe(-1500);
    expect(v.secretBox.a).not.toBe("x");
    expect(v.items[1]?.ok).toBe(true);
  });

  it("gives the same output split at every position", () => {
    const whole = run([DOC]);
    for (let i = 0; i <= DOC.length; i++) expect(run([DOC.slice(0, i), DOC.slice(i)])).toBe(whole);
  });

  it("passes clean documents byte for byte, in any chunking (property)", () => {
    fc.assert(
      fc.property(fc.json(), fc.array(fc.nat(), { maxLength: 6 }), (doc, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (doc.length + 1)))].sort((a, b) => a - b);
        const chunks: string[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(doc.slice(prev, p));
          prev = p;
        }
        chunks.push(doc.slice(prev));
        const out = run(chunks, []);
        expect(out).toBe(doc);
      }),
    );
  });

  it("always yields valid JSON of the same shape with detectors on (property)", () => {
    fc.assert(
      fc.property(fc.json(), (doc) => {
        const out = run([doc]);
        const a = JSON.parse(doc) as unknown;
        const b = JSON.parse(out) as unknown;
        expect(typeof b).toBe(typeof a === "number" ? typeof b : typeof a);
      }),
    );
  });

  it("refuses what is not JSON, and bounds depth and token size", () => {
    for (const bad of ['{"a" "b"}', "[1,]", "{,}", '{"a":1}}', "[1 2]", "tru", '"\u0001"', "01", "{'a':1}"]) {
      expect(() => run([bad]), bad).toThrow(JsonStreamError);
    }
    expect(() => run(["[".repeat(600)])).toThrow(JsonStreamError);
    const m = new JsonStreamMasker({ chain: new MaskChain([]), pathRules: [], maskerFor, counts: {}, maxTokenChars: 100 });
    expect(() => m.push(`"${"x".repeat(200)}`)).toThrow(JsonStreamError);
  });

  it("fuzz: never throws anything but JsonStreamError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        try {
          run([s]);
        } catch (e) {
          expect(e).toBeInstanceOf(JsonStreamError);
        }
      }),
    );
  });
});
