/**
 * RESP2 and RESP3 (redis.io/docs/reference/protocol-spec): a pure, bounded, incremental codec.
 * No I/O and no policy: bytes in, values (with the exact bytes they came from) out, and the
 * encoders the engine needs to answer in the client's own protocol.
 *
 * Both directions use the same reader: client commands are arrays of bulk strings (or an
 * inline command line, which only a client may send), replies are any RESP2/RESP3 value
 * (attributes `|` are read as a prefix of the value they annotate).
 *
 * Bounds: every length is checked against `RespLimits` before anything is buffered for it
 * (bulk length, aggregate element count, nesting depth, a line without CRLF). A violation is a
 * RespError (typed, code GW_PROTOCOL or GW_LIMIT), never another exception or a hang.
 * Incremental: `next()` returns undefined until a whole value is buffered, and remembers how
 * many bytes the incomplete value needs at least, so a large bulk string arriving in many
 * chunks is parsed once, not once per chunk.
 */
import { GatewayError } from "../../../core/errors.js";

export type RespValue =
  | { readonly type: "simple"; readonly value: string }
  | { readonly type: "error"; readonly value: string }
  | { readonly type: "integer"; readonly value: bigint }
  | { readonly type: "bulk"; readonly value: Buffer | null }
  | { readonly type: "array"; readonly value: readonly RespValue[] | null }
  | { readonly type: "null" }
  | { readonly type: "boolean"; readonly value: boolean }
  | { readonly type: "double"; readonly value: string }
  | { readonly type: "bignum"; readonly value: string }
  | { readonly type: "bulkError"; readonly value: Buffer }
  | { readonly type: "verbatim"; readonly format: string; readonly value: Buffer }
  | { readonly type: "map"; readonly value: readonly (readonly [RespValue, RespValue])[] }
  | { readonly type: "set"; readonly value: readonly RespValue[] }
  | { readonly type: "push"; readonly value: readonly RespValue[] }
  /** An attribute (`|`) and the value it annotates, kept together as one reply. */
  | { readonly type: "attribute"; readonly attributes: readonly (readonly [RespValue, RespValue])[]; readonly value: RespValue };

export interface RespLimits {
  /** Longest bulk string (Redis' own default proto-max-bulk-len is 512 MiB). */
  readonly maxBulkBytes: number;
  /** Most elements of one aggregate (array, map pairs, set, push). */
  readonly maxElements: number;
  /** Deepest nesting of aggregates. */
  readonly maxDepth: number;
  /** Longest simple line (`+`, `-`, `:`, inline command) before its CRLF. */
  readonly maxLineBytes: number;
}

export const DEFAULT_RESP_LIMITS: RespLimits = { maxBulkBytes: 64 * 1024 * 1024, maxElements: 1024 * 1024, maxDepth: 64, maxLineBytes: 64 * 1024 };

export class RespError extends GatewayError {}

function protocolError(why: string): RespError {
  return new RespError("GW_PROTOCOL", `RESP protocol error: ${why}`);
}

function limitError(why: string): RespError {
  return new RespError("GW_LIMIT", why);
}

/** One parsed value and the bytes it was read from (forwarded as they are when nothing changes). */
export interface RespFrame {
  readonly value: RespValue;
  readonly raw: Buffer;
  /** The client sent an inline command (a text line), not a RESP array. */
  readonly inline?: boolean;
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Thrown inside the parser when more bytes are needed: how many at least (0 = unknown). One
 * instance, reused (an incomplete value is the common case on a stream: no stack capture each time).
 */
class Incomplete extends Error {
  needAtLeast = 0;
}
const INCOMPLETE = new Incomplete("incomplete RESP value");
function incomplete(needAtLeast: number): Incomplete {
  INCOMPLETE.needAtLeast = needAtLeast;
  return INCOMPLETE;
}

interface Cursor {
  pos: number;
}

export class RespReader {
  readonly #limits: RespLimits;
  readonly #allowInline: boolean;
  #buf: Buffer = Buffer.alloc(0);
  /** Chunks not yet joined into #buf (joined once enough bytes are there). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The incomplete value at the head needs at least this many buffered bytes. */
  #need = 0;

  constructor(options: { readonly limits?: Partial<RespLimits>; readonly allowInline?: boolean } = {}) {
    this.#limits = { ...DEFAULT_RESP_LIMITS, ...options.limits };
    this.#allowInline = options.allowInline ?? false;
  }

  /** Bytes buffered and not yet returned as values. */
  get buffered(): number {
    return this.#buf.length + this.#pendingBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
  }

  /** Take the buffered bytes that were not parsed (the engine hands them on as they are). */
  drain(): Buffer {
    this.#join();
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    this.#need = 0;
    return rest;
  }

  #join(): void {
    if (this.#pending.length === 0) return;
    this.#buf = this.#buf.length === 0 && this.#pending.length === 1 ? (this.#pending[0] ?? Buffer.alloc(0)) : Buffer.concat([this.#buf, ...this.#pending]);
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** The next whole value, or undefined until one is buffered. Throws RespError on bad input. */
  next(): RespFrame | undefined {
    if (this.buffered === 0 || this.buffered < this.#need) return undefined;
    this.#join();
    const buf = this.#buf;
    const c: Cursor = { pos: 0 };
    let value: RespValue;
    let inline = false;
    try {
      const first = buf[0];
      if (this.#allowInline && first !== undefined && !isTypeByte(first)) {
        value = this.#inline(buf, c);
        inline = true;
      } else {
        value = this.#value(buf, c, 0);
      }
    } catch (e) {
      if (e instanceof Incomplete) {
        this.#need = Math.max(e.needAtLeast, buf.length + 1);
        return undefined;
      }
      throw e;
    }
    this.#need = 0;
    const raw = buf.subarray(0, c.pos);
    this.#buf = buf.subarray(c.pos);
    return inline ? { value, raw, inline } : { value, raw };
  }

  /** The end of the line starting at `c.pos` (index of its CR), bounded by maxLineBytes. */
  #lineEnd(buf: Buffer, c: Cursor): number {
    const limit = Math.min(buf.length, c.pos + this.#limits.maxLineBytes + 2);
    for (let i = c.pos; i < limit; i++) {
      if (buf[i] === CR) {
        if (i + 1 >= buf.length) throw incomplete(0);
        if (buf[i + 1] !== LF) throw protocolError("CR not followed by LF");
        return i;
      }
      if (buf[i] === LF) throw protocolError("LF without CR");
    }
    if (limit - c.pos >= this.#limits.maxLineBytes + 2) throw limitError(`a protocol line is longer than ${this.#limits.maxLineBytes} bytes`);
    throw incomplete(0);
  }

  #line(buf: Buffer, c: Cursor): string {
    const end = this.#lineEnd(buf, c);
    const s = buf.toString("latin1", c.pos, end);
    c.pos = end + 2;
    return s;
  }

  #length(buf: Buffer, c: Cursor, what: string, max: number): number {
    const text = this.#line(buf, c);
    if (text === "-1") return -1;
    if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) throw protocolError(`invalid ${what} length`);
    const n = Number(text);
    if (n > max) throw limitError(`a ${what} of ${n} exceeds the limit of ${max}`);
    return n;
  }

  #blob(buf: Buffer, c: Cursor, n: number): Buffer {
    const end = c.pos + n;
    if (end + 2 > buf.length) throw incomplete(end + 2);
    if (buf[end] !== CR || buf[end + 1] !== LF) throw protocolError("bulk string not terminated by CRLF");
    const out = buf.subarray(c.pos, end);
    c.pos = end + 2;
    return out;
  }

  #elements(buf: Buffer, c: Cursor, n: number, depth: number): RespValue[] {
    const out: RespValue[] = [];
    for (let i = 0; i < n; i++) out.push(this.#value(buf, c, depth + 1));
    return out;
  }

  #pairs(buf: Buffer, c: Cursor, n: number, depth: number): [RespValue, RespValue][] {
    const out: [RespValue, RespValue][] = [];
    for (let i = 0; i < n; i++) out.push([this.#value(buf, c, depth + 1), this.#value(buf, c, depth + 1)]);
    return out;
  }

  #value(buf: Buffer, c: Cursor, depth: number): RespValue {
    if (depth > this.#limits.maxDepth) throw limitError(`RESP values nested deeper than ${this.#limits.maxDepth}`);
    if (c.pos >= buf.length) throw incomplete(c.pos + 1);
    const t = buf[c.pos] ?? 0;
    c.pos++;
    const L = this.#limits;
    switch (t) {
      case 0x2b: // +
        return { type: "simple", value: this.#line(buf, c) };
      case 0x2d: // -
        return { type: "error", value: this.#line(buf, c) };
      case 0x3a: {
        // :
        const text = this.#line(buf, c);
        if (!/^[-+]?[0-9]{1,20}$/.test(text)) throw protocolError("invalid integer");
        return { type: "integer", value: BigInt(text) };
      }
      case 0x24: {
        // $
        const n = this.#length(buf, c, "bulk string", L.maxBulkBytes);
        return { type: "bulk", value: n < 0 ? null : this.#blob(buf, c, n) };
      }
      case 0x2a: {
        // *
        const n = this.#length(buf, c, "array", L.maxElements);
        return { type: "array", value: n < 0 ? null : this.#elements(buf, c, n, depth) };
      }
      case 0x5f: // _
        if (this.#line(buf, c) !== "") throw protocolError("invalid null");
        return { type: "null" };
      case 0x23: {
        // #
        const b = this.#line(buf, c);
        if (b !== "t" && b !== "f") throw protocolError("invalid boolean");
        return { type: "boolean", value: b === "t" };
      }
      case 0x2c: {
        // ,
        const d = this.#line(buf, c);
        if (!/^([-+]?(inf|nan)|[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)$/i.test(d)) throw protocolError("invalid double");
        return { type: "double", value: d };
      }
      case 0x28: {
        // (
        const d = this.#line(buf, c);
        if (!/^[-+]?[0-9]+$/.test(d)) throw protocolError("invalid big number");
        return { type: "bignum", value: d };
      }
      case 0x21: {
        // !
        const n = this.#length(buf, c, "bulk error", L.maxBulkBytes);
        if (n < 0) throw protocolError("invalid bulk error length");
        return { type: "bulkError", value: this.#blob(buf, c, n) };
      }
      case 0x3d: {
        // =
        const n = this.#length(buf, c, "verbatim string", L.maxBulkBytes);
        if (n < 4) throw protocolError("invalid verbatim string");
        const blob = this.#blob(buf, c, n);
        if (blob[3] !== 0x3a) throw protocolError("verbatim string without its format");
        return { type: "verbatim", format: blob.toString("latin1", 0, 3), value: blob.subarray(4) };
      }
      case 0x25: {
        // %
        const n = this.#length(buf, c, "map", L.maxElements);
        if (n < 0) throw protocolError("invalid map length");
        return { type: "map", value: this.#pairs(buf, c, n, depth) };
      }
      case 0x7e: {
        // ~
        const n = this.#length(buf, c, "set", L.maxElements);
        if (n < 0) throw protocolError("invalid set length");
        return { type: "set", value: this.#elements(buf, c, n, depth) };
      }
      case 0x3e: {
        // >
        const n = this.#length(buf, c, "push", L.maxElements);
        if (n < 0) throw protocolError("invalid push length");
        return { type: "push", value: this.#elements(buf, c, n, depth) };
      }
      case 0x7c: {
        // |
        const n = this.#length(buf, c, "attribute", L.maxElements);
        if (n < 0) throw protocolError("invalid attribute length");
        const attributes = this.#pairs(buf, c, n, depth);
        return { type: "attribute", attributes, value: this.#value(buf, c, depth + 1) };
      }
      default:
        throw protocolError(`unknown type byte 0x${t.toString(16).padStart(2, "0")}`);
    }
  }

  /**
   * An inline command: one text line split into arguments as redis-server does (sdssplitargs:
   * spaces separate, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single quotes'
   * with \' only). An empty line is skipped.
   */
  #inline(buf: Buffer, c: Cursor): RespValue {
    const start = c.pos;
    let end = -1;
    const limit = Math.min(buf.length, start + this.#limits.maxLineBytes + 1);
    for (let i = start; i < limit; i++) {
      if (buf[i] === LF) {
        end = i;
        break;
      }
    }
    if (end < 0) {
      if (limit - start > this.#limits.maxLineBytes) throw limitError(`an inline command is longer than ${this.#limits.maxLineBytes} bytes`);
      throw incomplete(0);
    }
    const lineEnd = end > start && buf[end - 1] === CR ? end - 1 : end;
    c.pos = end + 1;
    const args = splitInline(buf.subarray(start, lineEnd));
    return { type: "array", value: args.map((a) => ({ type: "bulk", value: a })) };
  }
}

function isTypeByte(b: number): boolean {
  return "+-:$*_#,(!=%~>|".includes(String.fromCharCode(b));
}

const HEX = /^[0-9a-fA-F]{2}$/;

/** sdssplitargs over one inline line. Unbalanced quotes are a protocol error (as in Redis). */
export function splitInline(line: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  const n = line.length;
  const isSpace = (b: number | undefined): boolean => b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a || b === 0x0b || b === 0x0c;
  while (i < n) {
    while (i < n && isSpace(line[i])) i++;
    if (i >= n) break;
    const bytes: number[] = [];
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      const b = line[i];
      if (inDouble) {
        if (b === undefined) throw protocolError("unbalanced quotes in an inline command");
        if (b === 0x5c && line[i + 1] === 0x78 && i + 3 < n && HEX.test(line.toString("latin1", i + 2, i + 4))) {
          bytes.push(parseInt(line.toString("latin1", i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        if (b === 0x5c && i + 1 < n) {
          const e = line[i + 1] ?? 0;
          const map: Record<number, number> = { 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x62: 0x08, 0x61: 0x07 };
          bytes.push(map[e] ?? e);
          i += 2;
          continue;
        }
        if (b === 0x22) {
          if (i + 1 < n && !isSpace(line[i + 1])) throw protocolError("closing quote must be followed by a space in an inline command");
          i++;
          break;
        }
        bytes.push(b);
        i++;
      } else if (inSingle) {
        if (b === undefined) throw protocolError("unbalanced quotes in an inline command");
        if (b === 0x5c && line[i + 1] === 0x27) {
          bytes.push(0x27);
          i += 2;
          continue;
        }
        if (b === 0x27) {
          if (i + 1 < n && !isSpace(line[i + 1])) throw protocolError("closing quote must be followed by a space in an inline command");
          i++;
          break;
        }
        bytes.push(b);
        i++;
      } else {
        if (b === undefined || isSpace(b)) break;
        if (b === 0x22) inDouble = true;
        else if (b === 0x27) inSingle = true;
        else bytes.push(b);
        i++;
      }
    }
    out.push(Buffer.from(bytes));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding

const CRLF = "\r\n";

/** Encode a value (RESP3 types are written as they are: callers choose what the client speaks). */
export function encodeResp(v: RespValue): Buffer {
  const parts: Buffer[] = [];
  write(v, parts);
  return parts.length === 1 ? (parts[0] ?? Buffer.alloc(0)) : Buffer.concat(parts);
}

function line(prefix: string, text: string, parts: Buffer[]): void {
  parts.push(Buffer.from(`${prefix}${text}${CRLF}`, "utf8"));
}

function blob(prefix: string, b: Buffer, parts: Buffer[]): void {
  parts.push(Buffer.from(`${prefix}${b.length}${CRLF}`, "latin1"), b, Buffer.from(CRLF, "latin1"));
}

function write(v: RespValue, parts: Buffer[]): void {
  switch (v.type) {
    case "simple":
      line("+", v.value.replace(/[\r\n]/g, " "), parts);
      return;
    case "error":
      line("-", v.value.replace(/[\r\n]/g, " "), parts);
      return;
    case "integer":
      line(":", v.value.toString(), parts);
      return;
    case "bulk":
      if (v.value === null) line("$", "-1", parts);
      else blob("$", v.value, parts);
      return;
    case "array":
      if (v.value === null) {
        line("*", "-1", parts);
        return;
      }
      line("*", String(v.value.length), parts);
      for (const e of v.value) write(e, parts);
      return;
    case "null":
      line("_", "", parts);
      return;
    case "boolean":
      line("#", v.value ? "t" : "f", parts);
      return;
    case "double":
      line(",", v.value, parts);
      return;
    case "bignum":
      line("(", v.value, parts);
      return;
    case "bulkError":
      blob("!", v.value, parts);
      return;
    case "verbatim":
      blob("=", Buffer.concat([Buffer.from(`${v.format}:`, "latin1"), v.value]), parts);
      return;
    case "map":
      line("%", String(v.value.length), parts);
      for (const [k, x] of v.value) {
        write(k, parts);
        write(x, parts);
      }
      return;
    case "set":
      line("~", String(v.value.length), parts);
      for (const e of v.value) write(e, parts);
      return;
    case "push":
      line(">", String(v.value.length), parts);
      for (const e of v.value) write(e, parts);
      return;
    case "attribute":
      line("|", String(v.attributes.length), parts);
      for (const [k, x] of v.attributes) {
        write(k, parts);
        write(x, parts);
      }
      write(v.value, parts);
      return;
  }
}

/** A command as a RESP array of bulk strings (how the gateway talks to the target). */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}${CRLF}`, "latin1")];
  for (const a of args) blob("$", typeof a === "string" ? Buffer.from(a, "utf8") : a, parts);
  return Buffer.concat(parts);
}

/** An error reply (`-CODE message`); CR/LF in the message become spaces. */
export function encodeError(message: string): Buffer {
  return encodeResp({ type: "error", value: message });
}

/** The arguments of a client command (an array of bulk strings), or a RespError. */
export function commandArgs(v: RespValue): Buffer[] {
  if (v.type !== "array" || v.value === null) throw protocolError("expected a command as an array of bulk strings");
  const out: Buffer[] = [];
  for (const e of v.value) {
    if (e.type !== "bulk" || e.value === null) throw protocolError("expected a command as an array of bulk strings");
    out.push(e.value);
  }
  return out;
}
