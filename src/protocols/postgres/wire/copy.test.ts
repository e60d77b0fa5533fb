import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { GatewayError } from "../../../core/errors.js";
import { BINARY_SIGNATURE, CopyOutSplitter, decodeCopyField, encodeCopyField, rewriteCopyRow, type CopyFormat, type CopyItem } from "./copy.js";

const TEXT: CopyFormat = { kind: "text", delimiter: 0x09, null: Buffer.from("\\N"), header: false };
const TEXT_PIPE: CopyFormat = { kind: "text", delimiter: 0x7c, null: Buffer.from("NIL"), header: true };
const CSV: CopyFormat = { kind: "csv", delimiter: 0x2c, quote: 0x22, escape: 0x22, null: Buffer.alloc(0), header: true };
const CSV_ESC: CopyFormat = { kind: "csv", delimiter: 0x3b, quote: 0x27, escape: 0x5c, null: Buffer.from("NULL"), header: false };
const BINARY: CopyFormat = { kind: "binary" };
const FORMATS = [TEXT, TEXT_PIPE, CSV, CSV_ESC, BINARY];

type Row = (Buffer | null)[];

/** The stream the target would send for these rows (header line / binary header, trailer). */
function encodeStream(format: CopyFormat, rows: readonly Row[], columns: number): Buffer {
  const parts: Buffer[] = [];
  if (format.kind === "binary") {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(0, 0);
    head.writeUInt32BE(3, 4);
    parts.push(BINARY_SIGNATURE, head, Buffer.from("ext"));
    for (const r of rows) {
      const count = Buffer.alloc(2);
      count.writeInt16BE(r.length, 0);
      parts.push(count, ...r.map((v) => encodeCopyField(format, v)));
    }
    parts.push(Buffer.from([0xff, 0xff]));
    return Buffer.concat(parts);
  }
  const delim = Buffer.from([format.delimiter]);
  if (format.header) parts.push(Buffer.from(Array.from({ length: columns }, (_, i) => `c${i}`).join(String.fromCharCode(format.delimiter)) + "\n"));
  for (const r of rows) {
    r.forEach((v, i) => {
      if (i > 0) parts.push(delim);
      parts.push(encodeCopyField(format, v));
    });
    parts.push(Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

function collect(format: CopyFormat, chunks: readonly Buffer[], columns?: number, max = 1 << 20): CopyItem[] {
  const s = new CopyOutSplitter(format, max, columns);
  const items: CopyItem[] = [];
  for (const c of chunks) items.push(...s.push(c));
  s.finish();
  return items;
}

function rowsOf(format: CopyFormat, items: readonly CopyItem[]): Row[] {
  return items.flatMap((it) => (it.kind === "row" ? [it.fields.map((f) => decodeCopyField(format, it.raw, f))] : []));
}

function cut(buf: Buffer, at: readonly number[]): Buffer[] {
  const points = [...new Set(at.map((x) => x % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

const value = fc.option(fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)), { nil: null, freq: 5 });
const table = fc.integer({ min: 1, max: 4 }).chain((cols) => fc.tuple(fc.constant(cols), fc.array(fc.array(value, { minLength: cols, maxLength: cols }), { maxLength: 6 })));

/** Text formats cannot tell a value equal to the NULL string from NULL (as in PostgreSQL). */
function representable(format: CopyFormat, rows: readonly Row[]): boolean {
  if (format.kind !== "text") return true;
  return rows.every((r) => r.every((v) => v === null || !v.equals(format.null)));
}

describe("COPY OUT codec", () => {
  for (const format of FORMATS) {
    const name = format.kind === "binary" ? "binary" : `${format.kind} ${String.fromCharCode(format.delimiter)}`;
    it(`${name}: decodes what it encodes, whatever the message boundaries`, () => {
      fc.assert(
        fc.property(table, fc.array(fc.nat(), { maxLength: 8 }), ([cols, rows], at) => {
          fc.pre(representable(format, rows));
          const stream = encodeStream(format, rows, cols);
          const items = collect(format, cut(stream, at), cols);
          expect(rowsOf(format, items)).toEqual(rows);
          // Every byte is in exactly one item, in order.
          expect(Buffer.concat(items.map((i) => i.raw)).equals(stream)).toBe(true);
        }),
        { numRuns: 300 },
      );
    });

    it(`${name}: split in two at every offset gives the same items`, () => {
      const rows: Row[] = [
        [Buffer.from("a\tb\\c\nd"), null, Buffer.from('x,"y";\'z\'')],
        [Buffer.from(""), Buffer.from("NULL"), Buffer.from("\r\n\x00\xff", "latin1")],
      ];
      expect(representable(format, rows)).toBe(true);
      const stream = encodeStream(format, rows, 3);
      const whole = collect(format, [stream], 3);
      expect(rowsOf(format, whole)).toEqual(rows);
      for (let i = 0; i <= stream.length; i++) {
        const split = collect(format, [stream.subarray(0, i), stream.subarray(i)], 3);
        expect(split.map((x) => [x.kind, x.raw.toString("hex")])).toEqual(whole.map((x) => [x.kind, x.raw.toString("hex")]));
      }
      // One byte per message.
      const bytes = collect(format, [...stream].map((b) => Buffer.from([b])), 3);
      expect(rowsOf(format, bytes)).toEqual(rows);
    });

    it(`${name}: rewriting a field keeps every other byte`, () => {
      fc.assert(
        fc.property(table, value, fc.nat(), ([cols, rows], replacement, which) => {
          fc.pre(rows.length > 0 && representable(format, [...rows, [replacement]]));
          const stream = encodeStream(format, rows, cols);
          const items = collect(format, [stream], cols);
          const idx = which % cols;
          const out = items.map((it) => (it.kind === "row" ? rewriteCopyRow(format, it.raw, it.fields, new Map([[idx, replacement]])) : it.raw));
          const again = rowsOf(format, collect(format, [Buffer.concat(out)], cols));
          expect(again).toEqual(rows.map((r) => r.map((v, i) => (i === idx ? replacement : v))));
          // Unchanged rows' other fields, as written.
          items.forEach((it, k) => {
            if (it.kind !== "row") return;
            const re = collect(format, [Buffer.concat(out)], cols)[k];
            if (re?.kind !== "row") throw new Error("row expected");
            it.fields.forEach((f, i) => {
              if (i === idx) return;
              const a = it.raw.subarray(f.start, f.end === -1 ? f.start : f.end);
              const g = re.fields[i];
              if (g === undefined) throw new Error("field expected");
              expect(re.raw.subarray(g.start, g.end === -1 ? g.start : g.end).equals(a)).toBe(true);
            });
          });
        }),
        { numRuns: 200 },
      );
    });

    it(`${name}: random or corrupt bytes give a GatewayError or items, never another throw`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 4 }), fc.boolean(), (bytes, at, prefixed) => {
          const buf = prefixed && format.kind === "binary" ? Buffer.concat([BINARY_SIGNATURE, Buffer.alloc(8), Buffer.from(bytes)]) : Buffer.from(bytes);
          try {
            const items = collect(format, cut(buf, at), undefined, 64);
            for (const it of items) if (it.kind === "row") for (const f of it.fields) decodeCopyField(format, it.raw, f);
          } catch (e) {
            expect(e).toBeInstanceOf(GatewayError);
          }
        }),
        { numRuns: 500 },
      );
    });

    it(`${name}: a row over the limit is refused (GW_LIMIT), and so is a stream ending inside a row`, () => {
      const big = encodeStream(format, [[Buffer.alloc(500, 0x61)]], 1);
      expect(() => collect(format, cut(big, [7, 300]), 1, 100)).toThrow(expect.objectContaining({ code: "GW_LIMIT" }) as Error);
      const s = new CopyOutSplitter(format, 1 << 20, 1);
      s.push(big.subarray(0, big.length - 3));
      expect(() => s.finish()).toThrow(GatewayError);
    });
  }

  it("text: decodes PostgreSQL's escapes and NULL as written", () => {
    const raw = Buffer.from("a\\tb\\101\\x41\\N\\\\\t\\N\tx\\|y\n");
    const items = collect(TEXT, [raw], 3);
    expect(rowsOf(TEXT, items)).toEqual([[Buffer.from("a\tbAAN\\"), null, Buffer.from("x|y")]]);
  });

  it("csv: quoted fields hold delimiters, quotes and newlines; an unquoted empty field is NULL", () => {
    const raw = Buffer.from('1,"a,b ""q""\nline2",,""\n');
    const items = collect({ ...CSV, header: false }, [raw], 4);
    expect(rowsOf(CSV, items)).toEqual([[Buffer.from("1"), Buffer.from('a,b "q"\nline2'), null, Buffer.from("")]]);
  });

  it("binary: rejects a bad signature, a wrong field count and data after the trailer", () => {
    expect(() => collect(BINARY, [Buffer.from("NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", "latin1")])).toThrow(GatewayError);
    const one = encodeStream(BINARY, [[Buffer.from("x")]], 1);
    expect(() => collect(BINARY, [one], 2)).toThrow(GatewayError);
    expect(() => collect(BINARY, [one, Buffer.from([0])], 1)).toThrow(GatewayError);
  });
});
