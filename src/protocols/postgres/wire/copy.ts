/**
 * COPY … TO STDOUT stream codec (pure: no I/O, no policy): splits the bytes of the CopyData
 * messages of one COPY OUT into rows, whatever the message boundaries (a row may span messages,
 * a message may hold several rows), decodes single fields, and re-encodes a row with some
 * fields replaced, the other fields kept byte for byte.
 *
 * Formats (PostgreSQL 15 "COPY", "File Formats"; copyto.c / copyfromparse.c):
 * - text: rows end at a newline; fields are separated by the one-byte delimiter (tab by
 *   default); a field equal to the NULL string (`\N` by default) as written is NULL; backslash
 *   escapes `\b \f \n \r \t \v`, `\ooo` (octal), `\xhh` (hex), and `\c` = c for any other byte
 *   (including the delimiter, a backslash and a raw newline, which it keeps inside the row).
 * - csv: fields are separated by the delimiter (`,`), quoted with QUOTE (`"`) where needed, a
 *   quote or escape byte inside quotes preceded by ESCAPE (the quote itself by default); a
 *   quoted newline stays inside the row; an unquoted field equal to the NULL string (empty by
 *   default) is NULL. With HEADER the first row holds the column names.
 * - binary: the header `PGCOPY\n\377\r\n\0`, Int32 flags, Int32 extension length and the
 *   extension; then per tuple Int16 field count and per field Int32 length (-1 = NULL) and the
 *   bytes (the types' binary send format); the trailer is a count of -1.
 *
 * Bounds: only the current partial row is buffered, at most `maxRowBytes`; a longer row, a
 * malformed stream or data after the binary trailer throw GatewayError (GW_LIMIT / GW_PROTOCOL).
 */
import { GatewayError } from "../../../core/errors.js";

export type CopyFormat =
  | { readonly kind: "text"; readonly delimiter: number; readonly null: Buffer; readonly header: boolean }
  | { readonly kind: "csv"; readonly delimiter: number; readonly quote: number; readonly escape: number; readonly null: Buffer; readonly header: boolean }
  | { readonly kind: "binary" };

/** A field of a row: `raw[start, end)` as written (binary: the value bytes; `end` -1 for NULL). */
export interface CopyField {
  readonly start: number;
  readonly end: number;
}

export type CopyItem =
  /** The header line (text/csv HEADER) or the binary file header: passed as is. */
  | { readonly kind: "header"; readonly raw: Buffer }
  | { readonly kind: "row"; readonly raw: Buffer; readonly fields: readonly CopyField[] }
  /** The binary trailer (Int16 -1). */
  | { readonly kind: "trailer"; readonly raw: Buffer };

export const BINARY_SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
const NL = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
/** Most fields a row may have (PostgreSQL's MaxTupleAttributeNumber is 1664). */
const MAX_FIELDS = 1664;

function protocol(why: string): GatewayError {
  return new GatewayError("GW_PROTOCOL", `malformed COPY data: ${why}`);
}

/**
 * Splits a COPY OUT byte stream into rows. `push` each CopyData body in order; `finish` at
 * CopyDone (throws if a row is incomplete).
 */
export class CopyOutSplitter {
  readonly #format: CopyFormat;
  readonly #maxRowBytes: number;
  /** Expected field count per row (binary: checked; text/csv: checked), or undefined. */
  readonly #columns: number | undefined;
  /** Pieces of the current partial row and their total length. */
  #parts: Buffer[] = [];
  #held = 0;
  #headerPending: boolean;
  // text / csv scanner state (kept across pushes)
  #escaped = false;
  #quoted = false;
  // binary state
  #phase: "signature" | "ext" | "count" | "length" | "value" | "done" = "signature";
  /** Bytes still needed for the current binary item. */
  #need = BINARY_SIGNATURE.length + 8;
  #fieldsLeft = 0;
  /** The fixed-size item being read (signature + flags + extension length, a count, a length). */
  readonly #fixed = Buffer.alloc(BINARY_SIGNATURE.length + 8);
  #fixedFill = 0;

  constructor(format: CopyFormat, maxRowBytes: number, columns?: number) {
    this.#format = format;
    this.#maxRowBytes = maxRowBytes;
    this.#columns = columns;
    this.#headerPending = format.kind !== "binary" && format.header;
  }

  /** Feed the next CopyData body; returns the items it completes, in order. */
  push(chunk: Buffer): CopyItem[] {
    const out: CopyItem[] = [];
    if (this.#format.kind === "binary") this.#pushBinary(chunk, out);
    else this.#pushText(chunk, out);
    return out;
  }

  /** The stream ended (CopyDone): nothing may be left over. */
  finish(): void {
    if (this.#held > 0) throw protocol("the stream ended inside a row");
    if (this.#format.kind === "binary" && this.#phase !== "done" && this.#phase !== "signature") throw protocol("the binary stream ended without its trailer");
  }

  #hold(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.#held + (to - from) > this.#maxRowBytes) {
      this.#parts = [];
      this.#held = 0;
      throw new GatewayError("GW_LIMIT", `a COPY row exceeds ${this.#maxRowBytes} bytes`);
    }
    this.#parts.push(chunk.subarray(from, to));
    this.#held += to - from;
  }

  #take(): Buffer {
    const parts = this.#parts;
    const raw = parts.length === 1 ? (parts[0] ?? Buffer.alloc(0)) : Buffer.concat(parts, this.#held);
    this.#parts = [];
    this.#held = 0;
    return raw;
  }

  #pushText(chunk: Buffer, out: CopyItem[]): void {
    const f = this.#format;
    if (f.kind === "binary") return;
    const csv = f.kind === "csv";
    const quote = csv ? f.quote : -1;
    const escape = csv ? f.escape : -1;
    let rowStart = 0;
    if (!csv) {
      // Text: a newline ends the row unless a backslash escapes it; find both with indexOf
      // (rows rarely hold backslashes, so this is mostly one search per row).
      let i = 0;
      if (this.#escaped && chunk.length > 0) {
        this.#escaped = false;
        i = 1;
      }
      // The next backslash at or after i (searched once per chunk, not once per row).
      let bs = chunk.indexOf(BACKSLASH, i);
      while (i < chunk.length) {
        if (bs !== -1 && bs < i) bs = chunk.indexOf(BACKSLASH, i);
        // Skip escaped bytes before the newline; an escaped newline is data.
        let end = chunk.indexOf(NL, i);
        while (bs !== -1 && (end === -1 || bs < end)) {
          const next = bs + 2;
          if (next > chunk.length) {
            // The chunk ends in a backslash: it escapes the first byte of the next one.
            this.#escaped = true;
            end = -1;
            break;
          }
          if (end !== -1 && bs + 1 === end) end = chunk.indexOf(NL, next);
          bs = chunk.indexOf(BACKSLASH, next);
        }
        if (end === -1) break;
        this.#hold(chunk, rowStart, end + 1);
        rowStart = end + 1;
        i = end + 1;
        this.#row(out);
      }
      this.#hold(chunk, rowStart, chunk.length);
      return;
    }
    // CSV: a newline outside quotes ends the row.
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.#quoted) {
        if (this.#escaped) {
          this.#escaped = false;
          continue;
        }
        if (c === escape && escape !== quote) {
          // An escape byte escapes only a following quote or escape byte (copyfromparse.c);
          // skipping whatever follows it reads the same inside quotes.
          this.#escaped = true;
          continue;
        }
        if (c === quote) this.#quoted = false;
        continue;
      }
      if (c === quote) {
        this.#quoted = true;
        continue;
      }
      if (c !== NL) continue;
      this.#hold(chunk, rowStart, i + 1);
      rowStart = i + 1;
      this.#row(out);
    }
    this.#hold(chunk, rowStart, chunk.length);
  }

  /** The held bytes are one complete text/csv row (or the header line). */
  #row(out: CopyItem[]): void {
    const raw = this.#take();
    if (this.#headerPending) {
      this.#headerPending = false;
      out.push({ kind: "header", raw });
    } else out.push({ kind: "row", raw, fields: this.#fields(raw) });
  }

  /** Field spans of one complete text/csv row (its newline included in `raw`). */
  #fields(raw: Buffer): CopyField[] {
    const f = this.#format;
    if (f.kind === "binary") return [];
    let end = raw.length;
    if (end > 0 && raw[end - 1] === NL) end--;
    if (end > 0 && raw[end - 1] === CR && f.kind === "csv") end--;
    const fields: CopyField[] = [];
    let start = 0;
    let quoted = false;
    let escaped = false;
    for (let i = 0; i < end; i++) {
      const c = raw[i];
      if (f.kind === "text") {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === f.delimiter) {
          fields.push({ start, end: i });
          start = i + 1;
        }
        continue;
      }
      if (quoted) {
        if (escaped) escaped = false;
        else if (c === f.escape && f.escape !== f.quote) escaped = true;
        else if (c === f.quote) quoted = false;
        continue;
      }
      if (c === f.quote) quoted = true;
      else if (c === f.delimiter) {
        fields.push({ start, end: i });
        start = i + 1;
      }
      if (fields.length > MAX_FIELDS) throw protocol("too many fields in a row");
    }
    fields.push({ start, end });
    if (this.#columns !== undefined && fields.length !== this.#columns) throw protocol(`a row has ${fields.length} fields, expected ${this.#columns}`);
    return fields;
  }

  #pushBinary(chunk: Buffer, out: CopyItem[]): void {
    let pos = 0;
    let rowStart = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.#phase === "done") throw protocol("data after the binary trailer");
      const take = Math.min(this.#need, n - pos);
      if (this.#phase !== "value" && this.#phase !== "ext") {
        chunk.copy(this.#fixed, this.#fixedFill, pos, pos + take);
        this.#fixedFill += take;
      }
      pos += take;
      this.#need -= take;
      if (this.#need > 0) break;
      const fixed = this.#fixed;
      this.#fixedFill = 0;
      switch (this.#phase) {
        case "signature": {
          if (!fixed.subarray(0, BINARY_SIGNATURE.length).equals(BINARY_SIGNATURE)) throw protocol("bad binary signature");
          const flags = fixed.readUInt32BE(BINARY_SIGNATURE.length);
          // Bit 16: OIDs included (servers before 12); the other high bits are critical and unknown.
          if ((flags & 0xffff0000) !== 0) throw protocol("unsupported binary COPY flags");
          const ext = fixed.readUInt32BE(BINARY_SIGNATURE.length + 4);
          if (ext > this.#maxRowBytes) throw new GatewayError("GW_LIMIT", `a COPY header extension exceeds ${this.#maxRowBytes} bytes`);
          this.#phase = "ext";
          this.#need = ext;
          if (ext === 0) rowStart = this.#endHeader(chunk, rowStart, pos, out);
          break;
        }
        case "ext":
          rowStart = this.#endHeader(chunk, rowStart, pos, out);
          break;
        case "count": {
          const count = fixed.readInt16BE(0);
          if (count === -1) {
            this.#hold(chunk, rowStart, pos);
            rowStart = pos;
            out.push({ kind: "trailer", raw: this.#take() });
            this.#phase = "done";
            this.#need = 0;
            break;
          }
          if (count < 0) throw protocol("negative field count");
          if (this.#columns !== undefined && count !== this.#columns) throw protocol(`a tuple has ${count} fields, expected ${this.#columns}`);
          this.#fieldsLeft = count;
          if (count === 0) rowStart = this.#emitTuple(chunk, rowStart, pos, out);
          else {
            this.#phase = "length";
            this.#need = 4;
          }
          break;
        }
        case "length": {
          const len = fixed.readInt32BE(0);
          if (len < -1) throw protocol("negative field length");
          if (len > 0 && this.#held + (pos - rowStart) + len > this.#maxRowBytes) {
            this.#parts = [];
            this.#held = 0;
            throw new GatewayError("GW_LIMIT", `a COPY row exceeds ${this.#maxRowBytes} bytes`);
          }
          if (len <= 0) rowStart = this.#fieldDone(chunk, rowStart, pos, out);
          else {
            this.#phase = "value";
            this.#need = len;
          }
          break;
        }
        case "value":
          rowStart = this.#fieldDone(chunk, rowStart, pos, out);
          break;
      }
    }
    this.#hold(chunk, rowStart, pos);
  }

  /** A field ended at `pos`: the next field, or the tuple is complete. Returns the new row start. */
  #fieldDone(chunk: Buffer, rowStart: number, pos: number, out: CopyItem[]): number {
    this.#fieldsLeft--;
    if (this.#fieldsLeft > 0) {
      this.#phase = "length";
      this.#need = 4;
      return rowStart;
    }
    return this.#emitTuple(chunk, rowStart, pos, out);
  }

  #endHeader(chunk: Buffer, rowStart: number, pos: number, out: CopyItem[]): number {
    this.#hold(chunk, rowStart, pos);
    out.push({ kind: "header", raw: this.#take() });
    this.#phase = "count";
    this.#need = 2;
    return pos;
  }

  #emitTuple(chunk: Buffer, rowStart: number, pos: number, out: CopyItem[]): number {
    this.#hold(chunk, rowStart, pos);
    const raw = this.#take();
    out.push({ kind: "row", raw, fields: binaryFields(raw) });
    this.#phase = "count";
    this.#need = 2;
    return pos;
  }
}

/** Field spans of one complete binary tuple. */
function binaryFields(raw: Buffer): CopyField[] {
  const count = raw.readInt16BE(0);
  const fields: CopyField[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const len = raw.readInt32BE(pos);
    pos += 4;
    if (len === -1) fields.push({ start: pos, end: -1 });
    else {
      fields.push({ start: pos, end: pos + len });
      pos += len;
    }
  }
  if (pos !== raw.length) throw protocol("tuple length mismatch");
  return fields;
}

// ------------------------------------------------------------------------------ fields

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** The value of one field as the target meant it: bytes, or null for NULL. */
export function decodeCopyField(format: CopyFormat, raw: Buffer, field: CopyField): Buffer | null {
  if (format.kind === "binary") return field.end === -1 ? null : raw.subarray(field.start, field.end);
  const { start, end } = field;
  if (format.kind === "text") {
    if (end - start === format.null.length && raw.subarray(start, end).equals(format.null)) return null;
    if (raw.indexOf(BACKSLASH, start) === -1 || raw.indexOf(BACKSLASH, start) >= end) return raw.subarray(start, end);
    const out = Buffer.allocUnsafe(end - start);
    let w = 0;
    for (let i = start; i < end; i++) {
      const c = raw[i] ?? 0;
      if (c !== BACKSLASH || i + 1 >= end) {
        out[w++] = c;
        continue;
      }
      const d = raw[++i] ?? 0;
      if (d >= 0x30 && d <= 0x37) {
        let v = d - 0x30;
        for (let k = 0; k < 2 && i + 1 < end && (raw[i + 1] ?? 0) >= 0x30 && (raw[i + 1] ?? 0) <= 0x37; k++) v = v * 8 + ((raw[++i] ?? 0) - 0x30);
        out[w++] = v & 0xff;
      } else if (d === 0x78 /* x */ && i + 1 < end && hexValue(raw[i + 1] ?? 0) >= 0) {
        let v = hexValue(raw[++i] ?? 0);
        if (i + 1 < end && hexValue(raw[i + 1] ?? 0) >= 0) v = v * 16 + hexValue(raw[++i] ?? 0);
        out[w++] = v;
      } else {
        out[w++] = d === 0x62 ? 0x08 : d === 0x66 ? 0x0c : d === 0x6e ? NL : d === 0x72 ? CR : d === 0x74 ? 0x09 : d === 0x76 ? 0x0b : d;
      }
    }
    return out.subarray(0, w);
  }
  // csv
  let quotedAny = false;
  const parts: number[] = [];
  let quoted = false;
  for (let i = start; i < end; i++) {
    const c = raw[i] ?? 0;
    if (quoted) {
      if (c === format.escape && i + 1 < end && (raw[i + 1] === format.quote || raw[i + 1] === format.escape)) {
        // With ESCAPE = QUOTE, `""` inside quotes is one quote; a lone quote ends the section.
        parts.push(raw[++i] ?? 0);
        continue;
      }
      if (c === format.quote) {
        quoted = false;
        continue;
      }
      parts.push(c);
      continue;
    }
    if (c === format.quote) {
      quoted = true;
      quotedAny = true;
      continue;
    }
    parts.push(c);
  }
  if (!quotedAny && end - start === format.null.length && raw.subarray(start, end).equals(format.null)) return null;
  return Buffer.from(parts);
}

/** One field encoded for the format (binary: with its Int32 length). */
export function encodeCopyField(format: CopyFormat, value: Buffer | null): Buffer {
  if (format.kind === "binary") {
    if (value === null) return Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const out = Buffer.allocUnsafe(4 + value.length);
    out.writeInt32BE(value.length, 0);
    value.copy(out, 4);
    return out;
  }
  if (value === null) return format.null;
  if (format.kind === "text") {
    // copyto.c CopyAttributeOutText: control characters by name, backslash and delimiter escaped.
    const bytes: number[] = [];
    for (const c of value) {
      if (c === BACKSLASH || c === format.delimiter) bytes.push(BACKSLASH, c);
      else if (c === 0x08) bytes.push(BACKSLASH, 0x62);
      else if (c === 0x0c) bytes.push(BACKSLASH, 0x66);
      else if (c === NL) bytes.push(BACKSLASH, 0x6e);
      else if (c === CR) bytes.push(BACKSLASH, 0x72);
      else if (c === 0x09) bytes.push(BACKSLASH, 0x74);
      else if (c === 0x0b) bytes.push(BACKSLASH, 0x76);
      else bytes.push(c);
    }
    return Buffer.from(bytes);
  }
  // copyto.c CopyAttributeOutCSV: quoted when it equals the NULL string or holds a delimiter,
  // quote, newline or carriage return (or is empty: an unquoted empty field could read as
  // NULL under the default NULL string); quote and escape bytes inside escaped.
  const needs =
    value.length === 0 ||
    value.equals(format.null) ||
    value.includes(format.delimiter) ||
    value.includes(format.quote) ||
    value.includes(format.escape) ||
    value.includes(NL) ||
    value.includes(CR);
  if (!needs) return value;
  const bytes: number[] = [format.quote];
  for (const c of value) {
    if (c === format.quote || c === format.escape) bytes.push(format.escape);
    bytes.push(c);
  }
  bytes.push(format.quote);
  return Buffer.from(bytes);
}

/**
 * The row with some fields replaced (index → new value, null for NULL); every other byte of
 * `raw` is kept as it is.
 */
export function rewriteCopyRow(format: CopyFormat, raw: Buffer, fields: readonly CopyField[], replace: ReadonlyMap<number, Buffer | null>): Buffer {
  if (replace.size === 0) return raw;
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < fields.length; i++) {
    if (!replace.has(i)) continue;
    const f = fields[i];
    if (f === undefined) continue;
    const value = replace.get(i) ?? null;
    // Binary: the Int32 length before the value is replaced too.
    const from = format.kind === "binary" ? f.start - 4 : f.start;
    const to = format.kind === "binary" ? (f.end === -1 ? f.start : f.end) : f.end;
    parts.push(raw.subarray(at, from), encodeCopyField(format, value));
    at = to;
  }
  parts.push(raw.subarray(at));
  return Buffer.concat(parts);
}
