/**
 * PostgreSQL value encodings that can carry text inside structure (pure, bounded, no policy):
 * arrays, records/composites, tsvector and bytea in text and binary format, and the binary
 * numbers that can hold a long digit run (int8, numeric). The masking of result fields
 * (result-masking.ts) decodes a value with these, masks its leaves, and encodes it again, so
 * that the client's parser still reads it.
 *
 * Formats as the server writes them (src/backend/utils/adt): array_out/array_send (arrayfuncs.c),
 * record_out/record_send (rowtypes.c), tsvectorout/tsvectorsend (tsvector.c),
 * byteaout (varlena.c: hex and escape), numeric_send (numeric.c), int8send (int8.c).
 *
 * Bounds: nesting (arrays in records in arrays …) at most MAX_VALUE_DEPTH, arrays at most
 * MAX_ARRAY_DIMS dimensions (PostgreSQL's MAXDIM), element counts checked against the bytes
 * present before anything is allocated. Malformed input throws ValueFormatError (a typed
 * GatewayError), never anything else.
 */
import { GatewayError } from "../../../core/errors.js";

/** A value the gateway cannot read as the encoding its type names. */
export class ValueFormatError extends GatewayError {
  constructor(what: string, why: string) {
    super("GW_PROTOCOL", `malformed ${what} value: ${why}`);
  }
}

/** Nesting of structured values (arrays, records) the codecs follow. */
export const MAX_VALUE_DEPTH = 16;
/** PostgreSQL's MAXDIM. */
export const MAX_ARRAY_DIMS = 6;

// ---------------------------------------------------------------------------------------------
// Arrays, text format: `{a,"b c",NULL,{…}}`, optionally preceded by `[1:2]=` decorations.

/** One element of a text array: a value, NULL, or a sub-array (one more dimension). */
export type TextArrayItem = string | null | TextArrayItem[];

export interface TextArray {
  /** Dimension decoration (`[0:1]=`), kept as it is; "" when the lower bounds are all 1. */
  readonly prefix: string;
  readonly items: TextArrayItem[];
}

function isArraySpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
}

/** Decode array_out's text. `delim` is the element type's delimiter (`,`; `;` for box). */
export function decodeTextArray(text: string, delim = ","): TextArray {
  const err = (why: string): ValueFormatError => new ValueFormatError("array", why);
  const d = delim.charCodeAt(0);
  let i = 0;
  const n = text.length;
  let prefix = "";
  if (text.charCodeAt(0) === 91 /* [ */) {
    const eq = text.indexOf("=");
    if (eq < 0 || !/^(\[-?\d+:-?\d+\]){1,6}$/.test(text.slice(0, eq))) throw err("bad dimension decoration");
    prefix = text.slice(0, eq + 1);
    i = eq + 1;
  }
  const parseLevel = (depth: number): TextArrayItem[] => {
    if (depth > MAX_ARRAY_DIMS) throw err("too many dimensions");
    if (text.charCodeAt(i) !== 123 /* { */) throw err("expected '{'");
    i++;
    const items: TextArrayItem[] = [];
    if (text.charCodeAt(i) === 125 /* } */) {
      i++;
      return items;
    }
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 123) {
        items.push(parseLevel(depth + 1));
      } else if (c === 34 /* " */) {
        i++;
        let s = "";
        let from = i;
        for (;;) {
          if (i >= n) throw err("unterminated quoted element");
          const q = text.charCodeAt(i);
          if (q === 34) break;
          if (q === 92 /* \ */) {
            s += text.slice(from, i);
            if (i + 1 >= n) throw err("backslash at the end");
            s += text.charAt(i + 1);
            i += 2;
            from = i;
            continue;
          }
          i++;
        }
        s += text.slice(from, i);
        i++;
        items.push(s);
      } else {
        let s = "";
        let from = i;
        let escaped = false;
        for (;;) {
          if (i >= n) throw err("unterminated array");
          const q = text.charCodeAt(i);
          if (q === d || q === 125) break;
          if (q === 123 || q === 34) throw err("unexpected character in an unquoted element");
          if (q === 92) {
            s += text.slice(from, i);
            if (i + 1 >= n) throw err("backslash at the end");
            s += text.charAt(i + 1);
            i += 2;
            from = i;
            escaped = true;
            continue;
          }
          i++;
        }
        s += text.slice(from, i);
        if (s.length === 0) throw err("empty unquoted element");
        items.push(!escaped && s.length === 4 && s.toUpperCase() === "NULL" ? null : s);
      }
      const sep = text.charCodeAt(i);
      if (sep === 125) {
        i++;
        return items;
      }
      if (sep !== d) throw err("expected a delimiter or '}'");
      i++;
    }
  };
  const items = parseLevel(1);
  if (i !== n) throw err("trailing characters");
  return { prefix, items };
}

/** array_out's quoting of one element. */
function quoteArrayElement(s: string, delim: string): string {
  let needs = s.length === 0 || (s.length === 4 && s.toUpperCase() === "NULL");
  if (!needs) {
    for (let k = 0; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c === 34 || c === 92 || c === 123 || c === 125 || isArraySpace(c) || s[k] === delim) {
        needs = true;
        break;
      }
    }
  }
  if (!needs) return s;
  return `"${s.replace(/["\\]/g, "\\$&")}"`;
}

export function encodeTextArray(a: TextArray, delim = ","): string {
  const level = (items: readonly TextArrayItem[]): string => {
    const parts: string[] = [];
    for (const it of items) parts.push(it === null ? "NULL" : typeof it === "string" ? quoteArrayElement(it, delim) : level(it));
    return `{${parts.join(delim)}}`;
  };
  return a.prefix + level(a.items);
}

// ---------------------------------------------------------------------------------------------
// Records, text format: `(a,"b c",,"x""y")` — an empty field is NULL.

export function decodeTextRecord(text: string): (string | null)[] {
  const err = (why: string): ValueFormatError => new ValueFormatError("record", why);
  const n = text.length;
  if (n < 2 || text.charCodeAt(0) !== 40 /* ( */) throw err("expected '('");
  let i = 1;
  const fields: (string | null)[] = [];
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 44 /* , */ || c === 41 /* ) */) {
      fields.push(null);
    } else {
      let s = "";
      let quoted = false;
      let from = i;
      for (;;) {
        if (i >= n) throw err("unterminated record");
        const q = text.charCodeAt(i);
        if (!quoted && (q === 44 || q === 41)) break;
        if (q === 92) {
          s += text.slice(from, i);
          if (i + 1 >= n) throw err("backslash at the end");
          s += text.charAt(i + 1);
          i += 2;
          from = i;
          continue;
        }
        if (q === 34) {
          s += text.slice(from, i);
          if (quoted && text.charCodeAt(i + 1) === 34) {
            s += '"';
            i += 2;
          } else {
            quoted = !quoted;
            i++;
          }
          from = i;
          continue;
        }
        i++;
      }
      s += text.slice(from, i);
      fields.push(s);
    }
    const sep = text.charCodeAt(i);
    i++;
    if (sep === 41) break;
    if (sep !== 44) throw err("expected ',' or ')'");
  }
  if (i !== n) throw err("trailing characters");
  return fields;
}

/** record_out's quoting of one field. */
function quoteRecordField(s: string): string {
  let needs = s.length === 0;
  if (!needs) {
    for (let k = 0; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c === 34 || c === 92 || c === 40 || c === 41 || c === 44 || isArraySpace(c)) {
        needs = true;
        break;
      }
    }
  }
  if (!needs) return s;
  return `"${s.replace(/["\\]/g, "$&$&")}"`;
}

export function encodeTextRecord(fields: readonly (string | null)[]): string {
  return `(${fields.map((f) => (f === null ? "" : quoteRecordField(f))).join(",")})`;
}

// ---------------------------------------------------------------------------------------------
// tsvector, text format: `'lexeme':1A,2 'other'` (quotes doubled, backslashes escaped).

export interface TsLexeme {
  readonly lexeme: string;
  /** Text format: the positions as written after ':' (`1A,2`), or "" for none. */
  readonly positions: string;
}

export function decodeTextTsvector(text: string): TsLexeme[] {
  const err = (why: string): ValueFormatError => new ValueFormatError("tsvector", why);
  const out: TsLexeme[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (text.charCodeAt(i) !== 39 /* ' */) throw err("expected a quoted lexeme");
    i++;
    let s = "";
    let from = i;
    for (;;) {
      if (i >= n) throw err("unterminated lexeme");
      const c = text.charCodeAt(i);
      if (c === 39) {
        s += text.slice(from, i);
        if (text.charCodeAt(i + 1) === 39) {
          s += "'";
          i += 2;
          from = i;
          continue;
        }
        i++;
        break;
      }
      if (c === 92) {
        s += text.slice(from, i);
        if (i + 1 >= n) throw err("backslash at the end");
        s += text.charAt(i + 1);
        i += 2;
        from = i;
        continue;
      }
      i++;
    }
    let positions = "";
    if (text.charCodeAt(i) === 58 /* : */) {
      const m = /^[0-9A-D,]+/.exec(text.slice(i + 1, i + 1 + 65536));
      if (m === null) throw err("bad positions");
      positions = m[0];
      i += 1 + positions.length;
    }
    out.push({ lexeme: s, positions });
    if (i < n) {
      if (text.charCodeAt(i) !== 32) throw err("expected a space between lexemes");
      i++;
      if (i === n) throw err("trailing space");
    }
  }
  return out;
}

export function encodeTextTsvector(lexemes: readonly TsLexeme[]): string {
  return lexemes.map((l) => `'${l.lexeme.replace(/'/g, "''").replace(/\\/g, "\\\\")}'${l.positions === "" ? "" : `:${l.positions}`}`).join(" ");
}

// ---------------------------------------------------------------------------------------------
// Binary formats.

function need(buf: Buffer, pos: number, n: number, what: string): void {
  if (n < 0 || buf.length - pos < n) throw new ValueFormatError(what, "shorter than its header says");
}

export interface BinaryArray {
  readonly elementOid: number;
  /** (length, lower bound) per dimension; empty for an empty array. */
  readonly dims: readonly (readonly [number, number])[];
  readonly elements: (Buffer | null)[];
}

export function decodeBinaryArray(buf: Buffer): BinaryArray {
  const err = (why: string): ValueFormatError => new ValueFormatError("binary array", why);
  need(buf, 0, 12, "binary array");
  const ndim = buf.readInt32BE(0);
  const flags = buf.readInt32BE(4);
  const elementOid = buf.readUInt32BE(8);
  if (ndim < 0 || ndim > MAX_ARRAY_DIMS) throw err("bad number of dimensions");
  if (flags !== 0 && flags !== 1) throw err("bad flags");
  need(buf, 12, ndim * 8, "binary array");
  const dims: [number, number][] = [];
  let count = ndim === 0 ? 0 : 1;
  for (let k = 0; k < ndim; k++) {
    const len = buf.readInt32BE(12 + k * 8);
    const lb = buf.readInt32BE(16 + k * 8);
    if (len < 0) throw err("negative dimension");
    dims.push([len, lb]);
    count *= len;
    // Every element takes at least its 4-byte length: bound the count before allocating.
    if (count > (buf.length - 12 - ndim * 8) / 4) throw err("more elements than bytes");
  }
  let pos = 12 + ndim * 8;
  const elements: (Buffer | null)[] = [];
  for (let k = 0; k < count; k++) {
    need(buf, pos, 4, "binary array");
    const len = buf.readInt32BE(pos);
    pos += 4;
    if (len === -1) {
      elements.push(null);
      continue;
    }
    if (len < 0) throw err("bad element length");
    need(buf, pos, len, "binary array");
    elements.push(buf.subarray(pos, pos + len));
    pos += len;
  }
  if (pos !== buf.length) throw err("trailing bytes");
  return { elementOid, dims, elements };
}

export function encodeBinaryArray(a: BinaryArray): Buffer {
  let size = 12 + a.dims.length * 8;
  let hasNull = 0;
  for (const e of a.elements) {
    size += 4 + (e === null ? 0 : e.length);
    if (e === null) hasNull = 1;
  }
  const out = Buffer.allocUnsafe(size);
  out.writeInt32BE(a.dims.length, 0);
  out.writeInt32BE(hasNull, 4);
  out.writeUInt32BE(a.elementOid, 8);
  let pos = 12;
  for (const [len, lb] of a.dims) {
    pos = out.writeInt32BE(len, pos);
    pos = out.writeInt32BE(lb, pos);
  }
  for (const e of a.elements) {
    if (e === null) {
      pos = out.writeInt32BE(-1, pos);
    } else {
      pos = out.writeInt32BE(e.length, pos);
      pos += e.copy(out, pos);
    }
  }
  return out;
}

export interface BinaryRecordField {
  readonly typeOid: number;
  readonly value: Buffer | null;
}

export function decodeBinaryRecord(buf: Buffer): BinaryRecordField[] {
  const err = (why: string): ValueFormatError => new ValueFormatError("binary record", why);
  need(buf, 0, 4, "binary record");
  const count = buf.readInt32BE(0);
  if (count < 0 || count > (buf.length - 4) / 8) throw err("more fields than bytes");
  let pos = 4;
  const fields: BinaryRecordField[] = [];
  for (let k = 0; k < count; k++) {
    need(buf, pos, 8, "binary record");
    const typeOid = buf.readUInt32BE(pos);
    const len = buf.readInt32BE(pos + 4);
    pos += 8;
    if (len === -1) {
      fields.push({ typeOid, value: null });
      continue;
    }
    if (len < 0) throw err("bad field length");
    need(buf, pos, len, "binary record");
    fields.push({ typeOid, value: buf.subarray(pos, pos + len) });
    pos += len;
  }
  if (pos !== buf.length) throw err("trailing bytes");
  return fields;
}

export function encodeBinaryRecord(fields: readonly BinaryRecordField[]): Buffer {
  let size = 4;
  for (const f of fields) size += 8 + (f.value === null ? 0 : f.value.length);
  const out = Buffer.allocUnsafe(size);
  let pos = out.writeInt32BE(fields.length, 0);
  for (const f of fields) {
    pos = out.writeUInt32BE(f.typeOid, pos);
    if (f.value === null) {
      pos = out.writeInt32BE(-1, pos);
    } else {
      pos = out.writeInt32BE(f.value.length, pos);
      pos += f.value.copy(out, pos);
    }
  }
  return out;
}

export interface BinaryLexeme {
  /** The lexeme's bytes (UTF-8 in a UTF-8 database; never a NUL). */
  readonly lexeme: Buffer;
  /** The WordEntryPos values, as sent. */
  readonly positions: Buffer;
}

export function decodeBinaryTsvector(buf: Buffer): BinaryLexeme[] {
  const err = (why: string): ValueFormatError => new ValueFormatError("binary tsvector", why);
  need(buf, 0, 4, "binary tsvector");
  const count = buf.readInt32BE(0);
  if (count < 0 || count > (buf.length - 4) / 3) throw err("more lexemes than bytes");
  let pos = 4;
  const out: BinaryLexeme[] = [];
  for (let k = 0; k < count; k++) {
    const nul = buf.indexOf(0, pos);
    if (nul < 0) throw err("unterminated lexeme");
    const lexeme = buf.subarray(pos, nul);
    pos = nul + 1;
    need(buf, pos, 2, "binary tsvector");
    const npos = buf.readUInt16BE(pos);
    need(buf, pos + 2, npos * 2, "binary tsvector");
    out.push({ lexeme, positions: buf.subarray(pos, pos + 2 + npos * 2) });
    pos += 2 + npos * 2;
  }
  if (pos !== buf.length) throw err("trailing bytes");
  return out;
}

export function encodeBinaryTsvector(lexemes: readonly BinaryLexeme[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  (parts[0] as Buffer).writeInt32BE(lexemes.length, 0);
  for (const l of lexemes) {
    if (l.lexeme.includes(0)) throw new ValueFormatError("binary tsvector", "a lexeme cannot hold a NUL");
    parts.push(l.lexeme, Buffer.from([0]), l.positions);
  }
  return Buffer.concat(parts);
}

/** int8send: the decimal text of the integer (as int8out writes it). */
export function decodeBinaryInt8(buf: Buffer): string {
  if (buf.length !== 8) throw new ValueFormatError("binary int8", "not 8 bytes");
  return buf.readBigInt64BE(0).toString();
}

const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PINF = 0xd000;
const NUMERIC_NINF = 0xf000;
const NUMERIC_DSCALE_MAX = 0x3fff;

/** numeric_send: the decimal text (as numeric_out writes it). */
export function decodeBinaryNumeric(buf: Buffer): string {
  const err = (why: string): ValueFormatError => new ValueFormatError("binary numeric", why);
  need(buf, 0, 8, "binary numeric");
  const ndigits = buf.readInt16BE(0);
  const weight = buf.readInt16BE(2);
  const sign = buf.readUInt16BE(4);
  const dscale = buf.readUInt16BE(6);
  if (ndigits < 0 || buf.length !== 8 + ndigits * 2) throw err("digit count does not fit the value");
  if (dscale > NUMERIC_DSCALE_MAX) throw err("bad display scale");
  switch (sign) {
    case NUMERIC_NAN:
      return "NaN";
    case NUMERIC_PINF:
      return "Infinity";
    case NUMERIC_NINF:
      return "-Infinity";
    case NUMERIC_POS:
    case NUMERIC_NEG:
      break;
    default:
      throw err("bad sign");
  }
  const digit = (k: number): number => {
    if (k < 0 || k >= ndigits) return 0;
    const v = buf.readInt16BE(8 + k * 2);
    if (v < 0 || v > 9999) throw err("bad digit");
    return v;
  };
  for (let k = 0; k < ndigits; k++) digit(k); // validate every digit
  let int = "";
  if (weight < 0) int = "0";
  else {
    for (let k = 0; k <= weight; k++) {
      const v = String(digit(k));
      int += k === 0 ? v : v.padStart(4, "0");
    }
  }
  let frac = "";
  if (dscale > 0) {
    for (let k = weight + 1; frac.length < dscale; k++) frac += String(digit(k)).padStart(4, "0");
    frac = frac.slice(0, dscale);
  }
  return (sign === NUMERIC_NEG ? "-" : "") + int + (dscale > 0 ? `.${frac}` : "");
}

// ---------------------------------------------------------------------------------------------
// bytea, text format: hex (`\x4142`) or escape (`AB\\\001`), as bytea_output says.

export type ByteaTextFormat = "hex" | "escape";

export function decodeByteaText(text: Buffer): { readonly bytes: Buffer; readonly format: ByteaTextFormat } {
  const err = (why: string): ValueFormatError => new ValueFormatError("bytea", why);
  if (text.length >= 2 && text[0] === 0x5c && text[1] === 0x78 /* \x */) {
    const hex = text.toString("latin1", 2);
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw err("bad hex digits");
    return { bytes: Buffer.from(hex, "hex"), format: "hex" };
  }
  const out = Buffer.allocUnsafe(text.length);
  let w = 0;
  for (let i = 0; i < text.length; ) {
    const c = text[i] ?? 0;
    if (c !== 0x5c) {
      out[w++] = c;
      i++;
      continue;
    }
    if (text[i + 1] === 0x5c) {
      out[w++] = 0x5c;
      i += 2;
      continue;
    }
    const a = (text[i + 1] ?? 0) - 48;
    const b = (text[i + 2] ?? 0) - 48;
    const d = (text[i + 3] ?? 0) - 48;
    if (a < 0 || a > 3 || b < 0 || b > 7 || d < 0 || d > 7) throw err("bad escape");
    out[w++] = a * 64 + b * 8 + d;
    i += 4;
  }
  return { bytes: out.subarray(0, w), format: "escape" };
}

export function encodeByteaText(bytes: Buffer, format: ByteaTextFormat): Buffer {
  if (format === "hex") return Buffer.from(`\\x${bytes.toString("hex")}`, "latin1");
  let size = 0;
  for (const c of bytes) size += c === 0x5c ? 2 : c < 0x20 || c > 0x7e ? 4 : 1;
  const out = Buffer.allocUnsafe(size);
  let w = 0;
  for (const c of bytes) {
    if (c === 0x5c) {
      out[w++] = 0x5c;
      out[w++] = 0x5c;
    } else if (c < 0x20 || c > 0x7e) {
      out[w++] = 0x5c;
      out[w++] = 48 + (c >> 6);
      out[w++] = 48 + ((c >> 3) & 7);
      out[w++] = 48 + (c & 7);
    } else out[w++] = c;
  }
  return out;
}
