import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../core/errors.js";
import {
  ValueFormatError,
  decodeBinaryArray,
  decodeBinaryInt8,
  decodeBinaryNumeric,
  decodeBinaryRecord,
  decodeBinaryTsvector,
  decodeByteaText,
  decodeTextArray,
  decodeTextRecord,
  decodeTextTsvector,
  encodeBinaryArray,
  encodeBinaryRecord,
  encodeBinaryTsvector,
  encodeByteaText,
  encodeTextArray,
  encodeTextRecord,
  encodeTextTsvector,
  type TextArrayItem,
} from "./values.js";

/** Text PostgreSQL can hold (no NUL). */
const pgText = fc.string({ unit: "binary", maxLength: 20 }).map((s) => s.replaceAll("\u0000", ""));

/** Every codec either decodes or throws ValueFormatError: nothing else, never a hang. */
function typedOnly(run: () => unknown): void {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ValueFormatError);
    expect(e).toBeInstanceOf(GatewayError);
  }
}

describe("text arrays", () => {
  it("decodes what PostgreSQL writes", () => {
    expect(decodeTextArray('{a@b.com,"x y",NULL,"NULL","",{1,2}}').items).toEqual(["a@b.com", "x y", null, "NULL", "", ["1", "2"]]);
    expect(decodeTextArray('{"a\\"b","c\\\\d"}').items).toEqual(['a"b', "c\\d"]);
    expect(decodeTextArray("[0:1]={x,y}")).toEqual({ prefix: "[0:1]=", items: ["x", "y"] });
    expect(decodeTextArray("{}").items).toEqual([]);
    expect(decodeTextArray("{(1,2);(3,4)}", ";").items).toEqual(["(1,2)", "(3,4)"]);
  });

  it("quotes what array_out quotes", () => {
    expect(encodeTextArray({ prefix: "", items: ["**** **** **** 1111", "[EMAIL]", "", "null", 'q"\\', null] })).toBe(
      '{"**** **** **** 1111",[EMAIL],"","null","q\\"\\\\",NULL}',
    );
  });

  it("round-trips any nested array of any text", () => {
    const depth = (items: readonly TextArrayItem[]): number => 1 + Math.max(0, ...items.map((x) => (Array.isArray(x) ? depth(x) : 0)));
    const { arr } = fc.letrec<{ arr: TextArrayItem[] }>((tie) => ({
      arr: fc.array(fc.oneof({ depthSize: "small" }, fc.option(pgText, { nil: null }), tie("arr")), { maxLength: 4 }),
    }));
    const item = (): fc.Arbitrary<TextArrayItem[]> => arr.filter((a) => depth(a) <= 6);
    fc.assert(
      fc.property(item(), fc.constantFrom(",", ";"), (items, delim) => {
        const text = encodeTextArray({ prefix: "", items }, delim);
        expect(decodeTextArray(text, delim).items).toEqual(items);
      }),
    );
  });

  it("gives a typed error for any corrupt input", () => {
    for (const bad of ["", "{", "{a", '{"a', "{a}x", "{a,{b}", "[1:2{a}", "{a\"b}", "{,}", "{\\"]) expect(() => decodeTextArray(bad)).toThrow(ValueFormatError);
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => typedOnly(() => decodeTextArray(s))));
    fc.assert(fc.property(fc.stringMatching(/^[{}",\\a NUL[\]:=0-9]{0,40}$/), (s) => typedOnly(() => decodeTextArray(s))));
  });

  it("refuses more than six dimensions", () => {
    expect(() => decodeTextArray("{{{{{{{a}}}}}}}")).toThrow(ValueFormatError);
    expect(decodeTextArray("{{{{{{a}}}}}}").items).toEqual([[[[[["a"]]]]]]);
  });
});

describe("text records", () => {
  it("decodes what record_out writes (an empty field is NULL)", () => {
    expect(decodeTextRecord('(1,a@b.com,,"x y","q""u\\\\o","")')).toEqual(["1", "a@b.com", null, "x y", 'q"u\\o', ""]);
    expect(decodeTextRecord("()")).toEqual([null]);
  });

  it("round-trips any fields", () => {
    fc.assert(
      fc.property(fc.array(fc.option(pgText, { nil: null }), { minLength: 1, maxLength: 8 }), (fields) => {
        expect(decodeTextRecord(encodeTextRecord(fields))).toEqual(fields);
      }),
    );
  });

  it("gives a typed error for any corrupt input", () => {
    for (const bad of ["", "(", "(a", "a)", "(a)x", '("a)', "(a\\"]) expect(() => decodeTextRecord(bad)).toThrow(ValueFormatError);
    fc.assert(fc.property(fc.stringMatching(/^[(),"\\a ]{0,40}$/), (s) => typedOnly(() => decodeTextRecord(s))));
  });
});

describe("tsvector", () => {
  it("text: decodes lexemes and positions, quotes them again", () => {
    const v = decodeTextTsvector("'a@b.com':1 'it''s':2A,3 'x\\\\y'");
    expect(v).toEqual([
      { lexeme: "a@b.com", positions: "1" },
      { lexeme: "it's", positions: "2A,3" },
      { lexeme: "x\\y", positions: "" },
    ]);
    expect(encodeTextTsvector(v)).toBe("'a@b.com':1 'it''s':2A,3 'x\\\\y'");
    expect(decodeTextTsvector("")).toEqual([]);
  });

  it("text: round-trips any lexemes", () => {
    const lex = fc.record({ lexeme: pgText.filter((s) => s.length > 0), positions: fc.constantFrom("", "1", "2A,3") });
    fc.assert(
      fc.property(fc.array(lex, { maxLength: 6 }), (ls) => {
        expect(decodeTextTsvector(encodeTextTsvector(ls))).toEqual(ls);
      }),
    );
  });

  it("binary: round-trips and refuses corrupt input with a typed error", () => {
    const lex = fc.record({
      lexeme: fc.uint8Array({ minLength: 1, maxLength: 10 }).map((a) => Buffer.from(a.map((b) => b || 1))),
      positions: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 4 }).map((ps) => {
        const b = Buffer.alloc(2 + ps.length * 2);
        b.writeUInt16BE(ps.length, 0);
        ps.forEach((p, i) => b.writeUInt16BE(p, 2 + i * 2));
        return b;
      }),
    });
    fc.assert(
      fc.property(fc.array(lex, { maxLength: 5 }), (ls) => {
        const got = decodeBinaryTsvector(encodeBinaryTsvector(ls));
        expect(got.map((l) => [Buffer.from(l.lexeme), Buffer.from(l.positions)])).toEqual(ls.map((l) => [l.lexeme, l.positions]));
      }),
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (a) => typedOnly(() => decodeBinaryTsvector(Buffer.from(a)))));
    expect(() => decodeBinaryTsvector(Buffer.from([0x7f, 0, 0, 0]))).toThrow(ValueFormatError);
  });
});

describe("binary arrays and records", () => {
  const element = fc.option(fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)), { nil: null });

  it("arrays round-trip (dimensions, bounds, NULLs, the has-null flag)", () => {
    fc.assert(
      fc.property(fc.array(element, { maxLength: 12 }), fc.integer({ min: -3, max: 3 }), (elements, lb) => {
        const a = { elementOid: 25, dims: elements.length === 0 ? [] : [[elements.length, lb] as const], elements };
        const bytes = encodeBinaryArray(a);
        expect(bytes.readInt32BE(4)).toBe(elements.includes(null) ? 1 : 0);
        const back = decodeBinaryArray(bytes);
        expect(back.elementOid).toBe(25);
        expect(back.dims).toEqual(a.dims);
        expect(back.elements.map((e) => (e === null ? null : Buffer.from(e)))).toEqual(elements);
      }),
    );
    const two = encodeBinaryArray({ elementOid: 23, dims: [[2, 1], [2, 1]], elements: [Buffer.alloc(4), Buffer.alloc(4), null, Buffer.alloc(4)] });
    expect(decodeBinaryArray(two).elements).toHaveLength(4);
  });

  it("records round-trip", () => {
    const field = fc.record({ typeOid: fc.integer({ min: 0, max: 0xffffffff }), value: element });
    fc.assert(
      fc.property(fc.array(field, { maxLength: 8 }), (fields) => {
        const back = decodeBinaryRecord(encodeBinaryRecord(fields));
        expect(back.map((f) => ({ typeOid: f.typeOid, value: f.value === null ? null : Buffer.from(f.value) }))).toEqual(fields);
      }),
    );
  });

  it("corrupt input gives a typed error (random bytes, and every truncation and bit flip of a valid value)", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (a) => typedOnly(() => decodeBinaryArray(Buffer.from(a)))));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (a) => typedOnly(() => decodeBinaryRecord(Buffer.from(a)))));
    const valid = encodeBinaryArray({ elementOid: 25, dims: [[2, 1]], elements: [Buffer.from("a@b.com"), null] });
    const rec = encodeBinaryRecord([{ typeOid: 1009, value: valid }, { typeOid: 25, value: null }]);
    for (const v of [valid, rec]) {
      for (let cut = 0; cut < v.length; cut++) {
        typedOnly(() => decodeBinaryArray(v.subarray(0, cut)));
        typedOnly(() => decodeBinaryRecord(v.subarray(0, cut)));
      }
      fc.assert(
        fc.property(fc.nat(v.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
          const c = Buffer.from(v);
          c[at] = byte;
          typedOnly(() => decodeBinaryArray(c));
          typedOnly(() => decodeBinaryRecord(c));
        }),
      );
    }
    // Huge counts are refused before anything is allocated.
    const huge = Buffer.alloc(20);
    huge.writeInt32BE(1, 0);
    huge.writeInt32BE(0x7fffffff, 12);
    expect(() => decodeBinaryArray(huge)).toThrow(ValueFormatError);
    expect(() => decodeBinaryRecord(Buffer.from([0x7f, 0xff, 0xff, 0xff]))).toThrow(ValueFormatError);
  });
});

describe("numbers that can hold a card number", () => {
  it("int8: its decimal text", () => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(4111111111111111n);
    expect(decodeBinaryInt8(b)).toBe("4111111111111111");
    b.writeBigInt64BE(-42n);
    expect(decodeBinaryInt8(b)).toBe("-42");
    expect(() => decodeBinaryInt8(Buffer.alloc(4))).toThrow(ValueFormatError);
  });

  /** numeric_send of a decimal string (test helper). */
  function numericSend(text: string): Buffer {
    const neg = text.startsWith("-");
    const [ip = "", fp = ""] = (neg ? text.slice(1) : text).split(".");
    const intDigits = ip.replace(/^0+/, "");
    const padInt = intDigits.padStart(Math.ceil(intDigits.length / 4) * 4, "0");
    const padFrac = fp.padEnd(Math.ceil(fp.length / 4) * 4, "0");
    const groups = (padInt + padFrac).match(/.{4}/g)?.map(Number) ?? [];
    let weight = padInt.length / 4 - 1;
    while (groups.length > 0 && groups[0] === 0) {
      groups.shift();
      weight--;
    }
    while (groups.length > 0 && groups[groups.length - 1] === 0) groups.pop();
    const b = Buffer.alloc(8 + groups.length * 2);
    b.writeInt16BE(groups.length, 0);
    b.writeInt16BE(groups.length === 0 ? 0 : weight, 2);
    b.writeUInt16BE(neg ? 0x4000 : 0, 4);
    b.writeUInt16BE(fp.length, 6);
    groups.forEach((g, i) => b.writeInt16BE(g, 8 + i * 2));
    return b;
  }

  it("numeric: the text numeric_out writes", () => {
    expect(decodeBinaryNumeric(numericSend("4111111111111111"))).toBe("4111111111111111");
    expect(decodeBinaryNumeric(numericSend("-12.50"))).toBe("-12.50");
    expect(decodeBinaryNumeric(numericSend("0.0001"))).toBe("0.0001");
    expect(decodeBinaryNumeric(numericSend("0"))).toBe("0");
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.nat(12), (n, scale) => {
        const abs = (n < 0n ? -n : n).toString().padStart(scale + 1, "0");
        const text = (n < 0n ? "-" : "") + (scale === 0 ? abs : `${abs.slice(0, -scale)}.${abs.slice(-scale)}`);
        const want = text === "-0" || /^-0\.0*$/.test(text) ? text.slice(1) : text;
        expect(decodeBinaryNumeric(numericSend(want))).toBe(want);
      }),
    );
  });

  it("numeric: NaN and infinities; corrupt input gives a typed error", () => {
    const special = (sign: number): Buffer => Buffer.from([0, 0, 0, 0, sign >> 8, sign & 0xff, 0, 0]);
    expect(decodeBinaryNumeric(special(0xc000))).toBe("NaN");
    expect(decodeBinaryNumeric(special(0xd000))).toBe("Infinity");
    expect(decodeBinaryNumeric(special(0xf000))).toBe("-Infinity");
    fc.assert(fc.property(fc.uint8Array({ maxLength: 24 }), (a) => typedOnly(() => decodeBinaryNumeric(Buffer.from(a)))));
  });
});

describe("bytea text formats", () => {
  it("hex and escape round-trip any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.constantFrom("hex" as const, "escape" as const), (a, format) => {
        const bytes = Buffer.from(a);
        const back = decodeByteaText(encodeByteaText(bytes, format));
        expect(back.format).toBe(format);
        expect(Buffer.from(back.bytes)).toEqual(bytes);
      }),
    );
    expect(encodeByteaText(Buffer.from("a@b\\\n"), "escape").toString()).toBe("a@b\\\\\\012");
    expect(decodeByteaText(Buffer.from("\\x6140")).bytes.toString()).toBe("a@");
  });

  it("corrupt input gives a typed error", () => {
    for (const bad of ["\\x6", "\\xzz", "a\\9", "\\"]) expect(() => decodeByteaText(Buffer.from(bad))).toThrow(ValueFormatError);
    fc.assert(fc.property(fc.stringMatching(/^[\\x0-9a-z]{0,20}$/), (s) => typedOnly(() => decodeByteaText(Buffer.from(s)))));
  });
});
