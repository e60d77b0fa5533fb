import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../core/errors.js";
import type { MaskRule } from "../../core/decision.js";
import { maskFieldValue, needsWork, planFields, rewriteDataRow, type FieldAction, type ResolvedField, type RuleMasker } from "./result-masking.js";
import { decodeDataRow, encodeDataRow } from "./wire/index.js";
import { MaskChain, RecordSink, ValueMasker, createMaskerFactory } from "../../masking/index.js";

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

describe("every type and format (arrays, records, tsvector, bytea, casts, binary numbers)", () => {
  const real = createMaskerFactory(Buffer.alloc(32, 5));
  const redact: MaskRule = { rule: "pii", columns: [], detectors: ["email", "credit_card"], strategy: "redact" };
  const partial: MaskRule = { rule: "pii", columns: [], detectors: ["email", "credit_card"], strategy: "partial" };
  const column: MaskRule = { rule: "cols", columns: ["customers.email"], detectors: [], strategy: "redact" };
  const CARD = "4111111111111111";
  const int4 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  /** Mask one value of this type and format under `rule`; the new value (or the original). */
  function mask(typeOid: number, format: number, value: Buffer | string, rule: MaskRule = redact, origin?: [string, string]): Buffer | null {
    const actions = planFields([field("v", typeOid, format, origin)], [rule], real);
    const v = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    const out = rewriteDataRow(row([v]), actions, {});
    return out === undefined ? v : (decodeDataRow(out.subarray(5))[0] ?? null);
  }
  const text = (b: Buffer | null): string | null => (b === null ? null : b.toString("utf8"));

  it("plans by type and format", () => {
    const kinds = planFields(
      [field("a", 1009, 0), field("n", 1700, 0), field("i", INT4, 1), field("r", 2249, 1), field("u", 16500, 0), field("t", TEXT, 1)],
      [redact],
      real,
    ).map((a) => (a.kind === "detect" ? (a.mode ?? "text") : a.kind));
    expect(kinds).toEqual(["structured", "scalar", "keep", "structured", "structured", "text"]);
  });

  it("text arrays: each element masked, quoting kept right", () => {
    expect(text(mask(1009, 0, '{alice@example.com,"x y",NULL}'))).toBe('{[EMAIL],"x y",NULL}');
    const p = text(mask(1009, 0, `{"4111 1111 1111 1111",bob@example.com}`, partial));
    expect(p?.startsWith('{"**** **** **** 1111",')).toBe(true);
    expect(p).not.toContain("bob");
    expect(text(mask(1009, 0, "{{a@b.io,x},{y,c@d.io}}"))).toBe("{{[EMAIL],x},{y,[EMAIL]}}");
    // An array of numeric holding card numbers: the element becomes NULL (no masked text fits numeric).
    expect(text(mask(1231, 0, `{${CARD},12.5}`))).toBe("{NULL,12.5}");
  });

  it("binary arrays: each element masked, lengths and the has-null flag right", () => {
    const arr = Buffer.concat([int4(1), int4(0), int4(25), int4(2), int4(1), int4(17), Buffer.from("alice@example.com"), int4(2), Buffer.from("ok")]);
    const out = mask(1009, 1, arr);
    expect(out?.readInt32BE(4)).toBe(0);
    expect(out?.toString("latin1")).toContain("[EMAIL]");
    expect(out?.toString("latin1")).not.toContain("alice");
    const card8 = Buffer.alloc(8);
    card8.writeBigInt64BE(BigInt(CARD));
    const bigints = Buffer.concat([int4(1), int4(0), int4(20), int4(1), int4(1), int4(8), card8]);
    const masked = mask(1016, 1, bigints);
    expect(masked?.readInt32BE(4)).toBe(1); // now holds a NULL
    expect(masked?.readInt32BE(20)).toBe(-1);
  });

  it("records: text `(…)` and binary (per field OID), anonymous and named row types", () => {
    expect(text(mask(2249, 0, '(1,alice@example.com,"a b")'))).toBe('(1,[EMAIL],"a b")');
    expect(text(mask(2249, 0, `(7,${CARD})`))).toBe("(7,)"); // a number-like field holding a card: NULL
    expect(text(mask(16500, 0, '(1,"bob@example.com")'))).toBe("(1,[EMAIL])");
    const rec = Buffer.concat([int4(2), int4(23), int4(4), int4(7), int4(25), int4(17), Buffer.from("alice@example.com")]);
    for (const oid of [2249, 16500]) {
      const out = mask(oid, 1, rec);
      expect(out).not.toBeNull();
      expect(out?.toString("latin1")).toContain("[EMAIL]");
      expect(out?.toString("latin1")).not.toContain("alice");
      expect(out?.subarray(0, 16)).toEqual(rec.subarray(0, 16)); // the int4 field unchanged
    }
  });

  it("tsvector (text and binary), bytea (hex, escape, binary)", () => {
    expect(text(mask(3614, 0, "'alice@example.com':1 'word':2"))).toBe("'[EMAIL]':1 'word':2");
    const tsv = Buffer.concat([int4(1), Buffer.from("alice@example.com\0"), Buffer.from([0, 1, 0, 1])]);
    expect(mask(3614, 1, tsv)).toEqual(Buffer.concat([int4(1), Buffer.from("[EMAIL]\0"), Buffer.from([0, 1, 0, 1])]));
    expect(text(mask(17, 0, "alice@example.com\\012"))).toBe("[EMAIL]\\012");
    expect(text(mask(17, 0, `\\x${Buffer.from("x alice@example.com").toString("hex")}`))).toBe(`\\x${Buffer.from("x [EMAIL]").toString("hex")}`);
    expect(text(mask(17, 1, "x alice@example.com"))).toBe("x [EMAIL]");
  });

  it("casts: text-capable types masked in place, others NULL when something is found", () => {
    expect(text(mask(1790 /* refcursor */, 0, "alice@example.com"))).toBe("[EMAIL]");
    expect(mask(1700, 0, CARD)).toBeNull();
    expect(text(mask(1700, 0, "12.50"))).toBe("12.50");
    expect(mask(3615 /* tsquery */, 0, "'alice@example.com' & 'x'")).toBeNull();
    expect(mask(20, 0, CARD)).toBeNull();
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(BigInt(CARD));
    expect(mask(20, 1, int8)).toBeNull();
    const small = Buffer.alloc(8);
    small.writeBigInt64BE(42n);
    expect(mask(20, 1, small)).toEqual(small);
    // numeric_send of 4111111111111111: weight 3, groups 4111 1111 1111 1111
    const num = Buffer.concat([Buffer.from([0, 4, 0, 3, 0, 0, 0, 0]), ...[4111, 1111, 1111, 1111].map((g) => Buffer.from([g >> 8, g & 0xff]))]);
    expect(mask(1700, 1, num)).toBeNull();
  });

  it("fails closed: an unknown binary type, or a value that does not decode, refuses the result", () => {
    const denied = (run: () => unknown): void => {
      try {
        run();
        expect.unreachable("not refused");
      } catch (e) {
        expect(e).toBeInstanceOf(GatewayError);
        expect((e as GatewayError).code).toBe("GW_POLICY_DENIED");
        expect((e as GatewayError).rule).toBe("masking");
        expect((e as GatewayError).message).not.toContain("alice");
      }
    };
    denied(() => mask(16600, 1, "alice@example.com")); // an enum or domain in binary: unknown structure
    denied(() => mask(3906 /* numrange */, 1, Buffer.from([2, 0, 0, 0, 1, 9])));
    denied(() => mask(1009, 1, Buffer.from([0, 0, 0, 1]))); // a corrupt array
    denied(() => mask(3614, 0, "'unterminated"));
    // A NULL value of such a type shows nothing and passes.
    const actions = planFields([field("v", 16600, 1)], [redact], real);
    expect(rewriteDataRow(row([null]), actions, {})).toBeUndefined();
  });

  it("a column rule on an array or record masks each leaf and keeps the structure", () => {
    expect(text(mask(1009, 0, "{alice@example.com,bob@example.com}", column, ["customers", "email"]))).toBe("{[EMAIL],[EMAIL]}");
    const rec = Buffer.concat([int4(2), int4(23), int4(4), int4(7), int4(25), int4(5), Buffer.from("hello")]);
    const out = mask(2249, 1, rec, column, ["customers", "email"]);
    const fields = out === null ? [] : [out.readInt32BE(8), out.readInt32BE(16 - 4 + 4)];
    expect(fields[0]).toBe(-1); // the int4 leaf: NULL under a column rule
    expect(out?.toString("latin1")).toContain("[REDACTED]");
    expect(mask(1700, 0, "12", column, ["customers", "email"])).toBeNull();
    expect(text(mask(1009, 0, "{}", column, ["customers", "email"]))).toBe("{}");
    // A user type that is plain text (citext, a domain over text): masked whole as text.
    expect(text(mask(16500, 0, "alice@example.com", column, ["customers", "email"]))).toBe("[EMAIL]");
  });

  it("maskFieldValue (the COPY path) treats a value as rewriteDataRow does", () => {
    const [action] = planFields([field("v", 1009, 0)], [redact], real);
    expect(maskFieldValue(Buffer.from("{alice@example.com}"), action ?? { kind: "keep" }, {})?.toString()).toBe("{[EMAIL]}");
  });

  it("large json/jsonb values are masked whole and stay valid JSON (property, small windows)", () => {
    const small = new ValueMasker({ detectors: ["email", "credit_card"], strategy: "redact", key: Buffer.alloc(32, 1), maxScanBytes: 1024 });
    const m: RuleMasker = {
      maskText: (t) => small.maskText(t),
      maskBytes: (b, s, e, c) => {
        const sink = new RecordSink();
        sink.target = c;
        return small.maskRange(b, s, e, sink);
      },
      kindOf: () => "column",
      maskWhole: (t, k) => small.maskWhole(t, k),
      constantPerKind: true,
    };
    const leaf = fc.oneof(fc.constantFrom("alice@example.com", "x", "ünïcode", 'q"uote'), fc.string({ maxLength: 8 }), fc.integer());
    const doc = fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.array(leaf, { maxLength: 30 }), fc.nat(3000)), { minLength: 1, maxLength: 12 }).map((members) =>
      Object.fromEntries(members.map(([k, v, pad], i) => [`${k}${i}`, [...v, `${"filler ".repeat(pad >> 3)}carol@example.com tail`]])),
    );
    fc.assert(
      fc.property(doc, (d) => {
        const json = JSON.stringify(d);
        const actions: FieldAction[] = [{ kind: "detect", chain: new MaskChain([m]), json: true, jsonbBinary: false }];
        const out = rewriteDataRow(row([json]), actions, {});
        const got = decodeDataRow((out ?? Buffer.alloc(0)).subarray(5))[0]?.toString("utf8") ?? "";
        const parsed = JSON.parse(got) as unknown;
        const want = JSON.parse(json.replaceAll("alice@example.com", "[EMAIL]").replaceAll("carol@example.com", "[EMAIL]")) as unknown;
        expect(parsed).toEqual(want);
      }),
      { numRuns: 30 },
    );
  });
});
