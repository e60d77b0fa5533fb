import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../core/errors.js";
import type { MaskRule } from "../../core/decision.js";
import { needsWork, planFields, rewriteDataRow, type ResolvedField, type RuleMasker } from "./result-masking.js";
import { decodeDataRow, encodeDataRow } from "./wire/index.js";
import { MaskChain, createMaskerFactory } from "../../masking/index.js";

/** A masker that replaces "secret" wherever it appears, and labels whole values. */
const fake: RuleMasker = {
  maskText: (text) => (text.includes("secret") ? { value: text.replaceAll("secret", "[S]"), counts: { secret: 1 } } : undefined),
  maskBytes: (buf, start, end, counts) => {
    const text = buf.toString("utf8", start, end);
    if (!text.includes("secret")) return undefined;
    counts["secret"] = (counts["secret"] ?? 0) + 1;
    return Buffer.from(text.replaceAll("secret", "[S]"), "utf8");
  },
  kindOf: () => "column",
  maskWhole: () => "[REDACTED]",
  constantPerKind: true,
};

const columnRule: MaskRule = { rule: "cols", columns: ["users.email", "*.card"], detectors: [], strategy: "redact" };
const detectRule: MaskRule = { rule: "detect", columns: [], detectors: ["secret"], strategy: "redact" };

const TEXT = 25;
const INT4 = 23;
const JSONB = 3802;

function field(name: string, typeOid: number, format = 0, origin?: [string, string]): ResolvedField {
  return { name, typeOid, format, ...(origin === undefined ? {} : { relation: { schema: "public", name: origin[0] }, column: origin[1] }) };
}

function row(values: (string | Buffer | null)[]): Buffer {
  // encodeDataRow returns the whole message; the masker works on its body.
  return encodeDataRow(values.map((v) => (v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(v, "utf8")))).subarray(5);
}

describe("planFields", () => {
  it("masks whole by column origin or, for expressions, by result name; NULL for non-text types", () => {
    const actions = planFields(
      [
        field("email", TEXT, 0, ["users", "email"]),
        field("card", TEXT), // an expression named like a guarded column
        field("id", INT4, 0, ["users", "id"]),
        field("balance", INT4, 1, ["accounts", "card"]), // non-text column under a column rule
        field("note", TEXT, 0, ["users", "note"]),
      ],
      [columnRule, detectRule],
      () => fake,
    );
    expect(actions.map((a) => a.kind)).toEqual(["whole", "whole", "keep", "null", "detect"]);
    expect(needsWork(actions)).toBe(true);
  });

  it("keeps everything when no rule applies", () => {
    const actions = planFields([field("id", INT4, 0, ["orders", "id"])], [detectRule], () => fake);
    expect(needsWork(actions)).toBe(false);
  });
});

describe("rewriteDataRow", () => {
  it("returns undefined (forward the original bytes) when nothing changes", () => {
    const actions = planFields([field("note", TEXT)], [detectRule], () => fake);
    const counts: Record<string, number> = {};
    expect(rewriteDataRow(row(["nothing here"]), actions, counts)).toBeUndefined();
    expect(counts).toEqual({});
  });

  it("rewrites only the masked values, with recomputed lengths, and counts per kind", () => {
    const actions = planFields(
      [field("id", INT4), field("email", TEXT, 0, ["users", "email"]), field("note", TEXT), field("gone", INT4, 0, ["t", "card"])],
      [columnRule, detectRule],
      () => fake,
    );
    const counts: Record<string, number> = {};
    const out = rewriteDataRow(row(["7", "a@example.com", "my secret and another secret", "42"]), actions, counts);
    expect(out).toBeDefined();
    const values = decodeDataRow((out ?? Buffer.alloc(0)).subarray(5)).map((v) => (v === null ? null : v.toString("utf8")));
    expect(values).toEqual(["7", "[REDACTED]", "my [S] and another [S]", null]);
    expect(counts).toEqual({ "column:cols": 2, secret: 1 });
    expect(out?.readInt32BE(1)).toBe((out?.length ?? 0) - 1);
  });

  it("keeps NULLs and keeps json valid", () => {
    const actions = planFields([field("email", JSONB, 0, ["users", "email"]), field("note", TEXT)], [columnRule, detectRule], () => fake);
    const out = rewriteDataRow(row(['{"a":1}', null]), actions, {});
    const values = decodeDataRow((out ?? Buffer.alloc(0)).subarray(5));
    expect(values[0]?.toString("utf8")).toBe('"[REDACTED]"');
    expect(JSON.parse(values[0]?.toString("utf8") ?? "")).toBe("[REDACTED]");
    expect(values[1]).toBeNull();
  });

  it("masks binary jsonb after its version byte", () => {
    const actions = planFields([field("doc", JSONB, 1)], [detectRule], () => fake);
    const value = Buffer.concat([Buffer.from([1]), Buffer.from('{"k":"secret"}', "utf8")]);
    const out = rewriteDataRow(row([value]), actions, {});
    const v = decodeDataRow((out ?? Buffer.alloc(0)).subarray(5))[0];
    expect(v?.[0]).toBe(1);
    expect(v?.subarray(1).toString("utf8")).toBe('{"k":"[S]"}');
  });

  it("equals decoding, masking value by value and encoding again, for any row and any plan", () => {
    const kinds = ["keep", "whole", "null", "detect"] as const;
    const value = fc.option(fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("secret", "a secret b", "")), { nil: null });
    fc.assert(
      fc.property(fc.array(fc.tuple(value, fc.constantFrom(...kinds)), { maxLength: 12 }), (cols) => {
        const actions = cols.map(([, kind]) => {
          switch (kind) {
            case "keep":
              return { kind: "keep" } as const;
            case "whole":
              return { kind: "whole", masker: fake, rule: "cols", json: false, memo: {}, countKey: "column:cols" } as const;
            case "null":
              return { kind: "null", rule: "cols", countKey: "column:cols" } as const;
            case "detect":
              return { kind: "detect", chain: new MaskChain([fake]), json: false, jsonbBinary: false } as const;
          }
        });
        const values = cols.map(([v]) => v);
        const expected = values.map((v, i) => {
          const kind = cols[i]?.[1];
          if (v === null || kind === "keep") return v;
          if (kind === "null") return null;
          if (kind === "whole") return "[REDACTED]";
          return v.replaceAll("secret", "[S]");
        });
        const counts: Record<string, number> = {};
        const out = rewriteDataRow(row(values), actions, counts);
        const got = out === undefined ? values : decodeDataRow(out.subarray(5)).map((v) => (v === null ? null : v.toString("utf8")));
        expect(got).toEqual(expected);
        if (out !== undefined) {
          expect(out[0]).toBe(0x44);
          expect(out.readInt32BE(1)).toBe(out.length - 1);
        }
        const changed = expected.some((v, i) => v !== values[i]);
        expect(out === undefined).toBe(!changed);
      }),
    );
  });

  it("refuses malformed rows with GW_PROTOCOL (short, bad count, bad length, trailing bytes)", () => {
    const actions = planFields([field("note", TEXT), field("x", TEXT)], [detectRule], () => fake);
    const good = row(["a secret", "b"]);
    const bad = [
      Buffer.from([0]),
      Buffer.from([0, 9, 0, 0]),
      Buffer.concat([good.subarray(0, 2), Buffer.from([0x7f, 0, 0, 0]), good.subarray(6)]),
      Buffer.concat([good.subarray(0, 2), Buffer.from([0xff, 0xff, 0xff, 0xfe]), good.subarray(6)]),
      Buffer.concat([good, Buffer.from([1])]),
      good.subarray(0, good.length - 1),
    ];
    for (const b of bad) {
      expect(() => rewriteDataRow(b, actions, {})).toThrow(GatewayError);
    }
  });
});

describe("json/jsonb values through the masking library's JSON API", () => {
  const real = createMaskerFactory(Buffer.alloc(32, 3));
  const pii: MaskRule = { rule: "pii", columns: [], detectors: ["email", "credit_card", "secret"], strategy: "partial" };

  it("masks leaves and keeps the value valid JSON, escapes and numbers included; a clean value is forwarded", () => {
    const actions = planFields([field("doc", JSONB, 0), field("plain", 114, 0)], [pii], real);
    const doc = '{"mail":"ana\\u0040example.es","card":4111111111111111,"password":"x\\"y","ok":[1,2]}';
    const counts: Record<string, number> = {};
    const out = rewriteDataRow(row([doc, '{"a": [1, "b"]}']), actions, counts);
    const [masked, clean] = decodeDataRow((out ?? Buffer.alloc(0)).subarray(5));
    const parsed = JSON.parse(masked?.toString("utf8") ?? "") as Record<string, unknown>;
    expect(parsed.ok).toEqual([1, 2]);
    expect(JSON.stringify(parsed)).not.toContain("ana@example.es");
    expect(JSON.stringify(parsed)).not.toContain("4111111111111111");
    expect(parsed.password).not.toBe('x"y');
    expect(counts).toEqual({ email: 1, credit_card: 1, secret: 1 });
    expect(clean?.toString("utf8")).toBe('{"a": [1, "b"]}');
  });
});
