import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MaskRule } from "../core/decision.js";
import { MaskChain } from "./chain.js";
import { MAX_JSON_DEPTH, maskJson } from "./json.js";
import { createMaskerFactory } from "./rules.js";

const maskerFor = createMaskerFactory(Buffer.alloc(32, 9));
const rule = (name: string, detectors: string[], strategy: MaskRule["strategy"] = "redact", columns: string[] = []): MaskRule => ({ rule: name, columns, detectors, strategy });
const pii = rule("pii", ["email", "credit_card", "phone", "ssn", "secret"]);
const chain = new MaskChain([maskerFor(pii)]);

function mask(doc: string, rules?: MaskRule[]): { text: string; json: boolean; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const r = maskJson(doc, { chain, ...(rules === undefined ? {} : { rules, maskerFor }) }, counts);
  return { text: r.text ?? doc, json: r.json, counts };
}

/** The same shape: same keys in the same order, arrays of the same length; leaves may differ. */
function sameShape(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameShape(x, b[i]));
  if (a !== null && typeof a === "object") {
    if (b === null || typeof b !== "object" || Array.isArray(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameShape((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return true;
}

const sensitive = fc.constantFrom("ana.garcia@example.es", "4111 1111 1111 1111", "+44 20 7946 0958", "078-05-1120", "password=Tr0ub4dor&3", 'quote " and \\ and \n', "plain text", "");
const leaf = fc.oneof(
  fc.string(),
  sensitive,
  fc.tuple(fc.string({ maxLength: 8 }), sensitive, fc.string({ maxLength: 8 })).map(([a, s, b]) => `${a} ${s} ${b}`),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(4111111111111111),
);
const doc = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("array"), tie("object")),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom("email", "password", "user", "card")), tie("value"), { maxKeys: 5 }),
})).value;

describe("maskJson: a JSON document's leaves, valid JSON kept", () => {
  it("returns valid JSON of the same shape for any JSON document, compact or indented", () => {
    fc.assert(
      fc.property(doc, fc.constantFrom(0, 2, "\t"), (value, indent) => {
        const input = JSON.stringify(value, null, indent);
        const r = mask(input);
        expect(r.json).toBe(true);
        const parsed: unknown = JSON.parse(r.text);
        expect(sameShape(value, parsed)).toBe(true);
        expect(r.text).not.toContain("ana.garcia@example.es");
        expect(r.text).not.toContain("4111 1111 1111 1111");
      }),
      { numRuns: 300 },
    );
  });

  it("valid JSON out for fast-check's own JSON texts too (unicode, escapes, deep nesting)", () => {
    fc.assert(
      fc.property(fc.json({ depthSize: "medium" }), (input) => {
        const r = mask(input);
        expect(r.json).toBe(true);
        expect(() => JSON.parse(r.text) as unknown).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it("leaves a clean document byte for byte (formatting, number spelling, big integers)", () => {
    const input = '{ "id" : 12345678901234567890, "x": 1.50e3,\n "tags": ["a", "b"], "ok": true, "none": null }';
    const counts: Record<string, number> = {};
    expect(maskJson(input, { chain }, counts)).toEqual({ text: undefined, json: true });
    expect(counts).toEqual({});
  });

  it("masks string leaves, escaped ones included, and a card number stored as a number", () => {
    const input = '{"a":"mail ana\\u0040example.es now","n":4111111111111111,"list":["x","b@example.org"],"keep":"\\"q\\""}';
    const r = mask(input);
    expect(JSON.parse(r.text)).toEqual({ a: "mail [EMAIL] now", n: "[CREDIT_CARD]", list: ["x", "[EMAIL]"], keep: '"q"' });
    expect(r.counts).toEqual({ email: 2, credit_card: 1 });
  });

  it("masks the value of a secret-named key, which the leaf alone does not show", () => {
    const r = mask('{"user":"ana","password":"correct horse","apiToken":"abc","token_ttl":"3600","pw_hint":null,"secret":"none"}');
    expect(JSON.parse(r.text)).toEqual({ user: "ana", password: "[SECRET]", apiToken: "[SECRET]", token_ttl: "3600", pw_hint: null, secret: "none" });
    expect(r.counts).toEqual({ secret: 2 });
  });

  it("masks whole the leaves a JSON-path rule names: $.a.b, $.items[*].x, $..k, *.k, and everything under a named container", () => {
    const paths = rule("paths", [], "redact", ["$.user.email", "$.items[*].card", "$..token", "*.ssn", "$.profile"]);
    const input = JSON.stringify({
      user: { email: "not-an-email", name: "Ana", ssn: 123456789 },
      other: { email: "kept" },
      items: [{ card: 42 }, { card: "x", note: "n" }],
      deep: { a: [{ token: "t1" }] },
      profile: { city: "Madrid", tags: ["a", null] },
    });
    const r = mask(input, [paths]);
    expect(JSON.parse(r.text)).toEqual({
      user: { email: "[REDACTED]", name: "Ana", ssn: "[REDACTED]" },
      other: { email: "kept" },
      items: [{ card: "[REDACTED]" }, { card: "[REDACTED]", note: "n" }],
      deep: { a: [{ token: "[REDACTED]" }] },
      profile: { city: "[REDACTED]", tags: ["[REDACTED]", null] },
    });
    expect(r.counts).toEqual({ "column:paths": 7 });
  });

  it("a path rule with the null strategy makes the leaf JSON null; the first rule in order wins", () => {
    const first = rule("first", [], "null", ["$.a"]);
    const second = rule("second", [], "redact", ["$.a", "$.b"]);
    const r = mask('{"a":"x","b":"ana@example.es"}', [first, second]);
    expect(JSON.parse(r.text)).toEqual({ a: null, b: "[EMAIL]" });
    expect(r.counts).toEqual({ "column:first": 1, "column:second": 1 });
  });

  it("masks text that is not JSON as plain text (fail closed) and says so", () => {
    for (const input of ['{"a": "ana@example.es"', "ana@example.es", "{'a': 1}", '[1,]', '{"a":01}', "[" .repeat(MAX_JSON_DEPTH + 1)]) {
      const r = mask(input);
      expect(r.json).toBe(false);
      expect(r.text).not.toContain("ana@example.es");
    }
  });
});
