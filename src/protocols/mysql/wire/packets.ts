/**
 * MySQL/MariaDB packet framing and the basic data types, pure and bounded.
 *
 * MySQL Source Code Documentation, "MySQL Packets" (page_protocol_basic_packets) and MariaDB
 * KB "0 - Packet": every packet is a 3-byte little-endian payload length, a 1-byte sequence id,
 * then the payload. A payload of 0xffffff bytes or more is sent as several packets of exactly
 * 0xffffff bytes followed by one shorter packet (possibly empty): "Sending More Than 16Mb".
 * "Basic Data Types" (page_protocol_basic_dt_integers, page_protocol_basic_dt_strings):
 * fixed-length integers, length-encoded integers (0xfb NULL in rows, 0xfc 2 bytes, 0xfd 3,
 * 0xfe 8), NUL-terminated and length-encoded strings.
 */
import { GatewayError } from "../../../core/errors.js";

/** The largest payload of one physical packet; a logical payload of this size continues. */
export const MAX_PACKET_PAYLOAD = 0xffffff;

export interface Packet {
  /** Sequence id of the first physical packet. */
  readonly seq: number;
  /** Sequence id of the last physical packet (differs from `seq` for continued payloads). */
  readonly lastSeq: number;
  readonly payload: Buffer;
}

export interface PacketLimits {
  /** Largest logical payload accepted (continuations included). */
  readonly maxPayload: number;
}

export const DEFAULT_PACKET_LIMITS: PacketLimits = { maxPayload: 64 * 1024 * 1024 };

/**
 * Reassembles logical packets from a byte stream split anywhere. Bytes are held as a list of
 * chunks so a large payload arriving in many reads is copied once.
 */
export class PacketReader {
  #limits: PacketLimits;
  #chunks: Buffer[] = [];
  #length = 0;
  /** Fragments of a continued payload read so far. */
  #parts: Buffer[] = [];
  #partsLength = 0;
  #firstSeq = -1;

  constructor(limits: PacketLimits = DEFAULT_PACKET_LIMITS) {
    this.#limits = limits;
  }

  /** Change the bounds (the login's small limit gives way to the session's). */
  setLimits(limits: PacketLimits): void {
    this.#limits = limits;
  }

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.#chunks.push(b);
    this.#length += b.length;
  }

  /** Bytes received and not yet returned as packets. */
  get buffered(): number {
    return this.#length + this.#partsLength;
  }

  /** Everything buffered and not framed yet (e.g. bytes that follow a TLS upgrade request). */
  drain(): Buffer {
    const b = this.#take(this.#length);
    return b;
  }

  /** The next complete logical packet, or undefined. Throws GatewayError on an oversize payload. */
  next(): Packet | undefined {
    for (;;) {
      if (this.#length < 4) return undefined;
      const header = this.#peek(4);
      const len = header.readUIntLE(0, 3);
      const seq = header[3] ?? 0;
      if (this.#partsLength + len > this.#limits.maxPayload) {
        throw new GatewayError("GW_LIMIT", `packet of more than ${this.#limits.maxPayload} bytes`);
      }
      if (this.#length < 4 + len) return undefined;
      this.#take(4);
      const body = this.#take(len);
      if (this.#firstSeq < 0) this.#firstSeq = seq;
      if (len === MAX_PACKET_PAYLOAD) {
        this.#parts.push(body);
        this.#partsLength += len;
        continue;
      }
      const payload = this.#parts.length === 0 ? body : Buffer.concat([...this.#parts, body]);
      const first = this.#firstSeq;
      this.#parts = [];
      this.#partsLength = 0;
      this.#firstSeq = -1;
      return { seq: first, lastSeq: seq, payload };
    }
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.#chunks).subarray(0, n);
  }

  #take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0];
      if (c === undefined) throw new GatewayError("GW_INTERNAL", "packet reader underflow");
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#length -= n;
    return out;
  }
}

/**
 * Frame one logical payload as physical packets starting at `seq`; returns the bytes and the
 * sequence id that follows.
 */
export function framePacket(payload: Buffer, seq: number): { readonly bytes: Buffer; readonly nextSeq: number } {
  if (payload.length < MAX_PACKET_PAYLOAD) {
    const header = Buffer.allocUnsafe(4);
    header.writeUIntLE(payload.length, 0, 3);
    header[3] = seq & 0xff;
    return { bytes: Buffer.concat([header, payload]), nextSeq: (seq + 1) & 0xff };
  }
  const parts: Buffer[] = [];
  let off = 0;
  let s = seq;
  for (;;) {
    const len = Math.min(MAX_PACKET_PAYLOAD, payload.length - off);
    const header = Buffer.allocUnsafe(4);
    header.writeUIntLE(len, 0, 3);
    header[3] = s & 0xff;
    parts.push(header, payload.subarray(off, off + len));
    off += len;
    s = (s + 1) & 0xff;
    if (len < MAX_PACKET_PAYLOAD) break;
  }
  return { bytes: Buffer.concat(parts), nextSeq: s };
}

function protocolError(message: string): GatewayError {
  return new GatewayError("GW_PROTOCOL", message);
}

/** A bounds-checked cursor over one payload. Every read past the end throws GW_PROTOCOL. */
export class Cursor {
  readonly buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos = 0) {
    this.buf = buf;
    this.pos = pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  #need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw protocolError("truncated packet");
  }

  u8(): number {
    this.#need(1);
    return this.buf[this.pos++] ?? 0;
  }

  u16(): number {
    this.#need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.#need(3);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  u32(): number {
    this.#need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.#need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  bytes(n: number): Buffer {
    this.#need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }

  /** A NUL-terminated string (the NUL is consumed). */
  nulBytes(): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw protocolError("unterminated string");
    const b = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return b;
  }

  /** A NUL-terminated string, or the rest of the payload when no NUL follows (as servers send some). */
  nulOrRest(): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) return this.rest();
    const b = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return b;
  }

  /** A length-encoded integer; null for 0xfb (NULL in a row). */
  lenenc(): number | null {
    const first = this.u8();
    if (first < 0xfb) return first;
    switch (first) {
      case 0xfb:
        return null;
      case 0xfc:
        return this.u16();
      case 0xfd:
        return this.u24();
      case 0xfe: {
        const v = this.u64();
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError("length-encoded integer too large");
        return Number(v);
      }
      default:
        throw protocolError("invalid length-encoded integer");
    }
  }

  /** A length-encoded integer that must not be NULL. */
  lenencInt(): number {
    const v = this.lenenc();
    if (v === null) throw protocolError("unexpected NULL");
    return v;
  }

  /** A length-encoded string; null for NULL (0xfb). */
  lenencBytes(): Buffer | null {
    const n = this.lenenc();
    if (n === null) return null;
    return this.bytes(n);
  }

  lenencString(): string {
    return (this.lenencBytes() ?? Buffer.alloc(0)).toString("utf8");
  }
}

/** The bytes of a length-encoded integer. */
export function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n <= 0xffff) {
    const b = Buffer.allocUnsafe(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n <= 0xffffff) {
    const b = Buffer.allocUnsafe(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.allocUnsafe(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencBytes(v: Buffer | string): Buffer {
  const b = typeof v === "string" ? Buffer.from(v, "utf8") : v;
  return Buffer.concat([lenencInt(b.length), b]);
}

/** Builds a payload from parts. */
export class PayloadWriter {
  readonly #parts: Buffer[] = [];

  u8(v: number): this {
    this.#parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  u16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(v & 0xffff, 0);
    this.#parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0, 0);
    this.#parts.push(b);
    return this;
  }

  bytes(b: Buffer): this {
    this.#parts.push(b);
    return this;
  }

  zeros(n: number): this {
    this.#parts.push(Buffer.alloc(n));
    return this;
  }

  nul(v: Buffer | string): this {
    this.#parts.push(typeof v === "string" ? Buffer.from(v, "utf8") : v, Buffer.from([0]));
    return this;
  }

  lenenc(v: number): this {
    this.#parts.push(lenencInt(v));
    return this;
  }

  lenencBytes(v: Buffer | string): this {
    this.#parts.push(lenencBytes(v));
    return this;
  }

  build(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
