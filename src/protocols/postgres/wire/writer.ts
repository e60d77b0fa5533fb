import { GatewayError } from "../../../core/errors.js";

/** The largest value a message length field (Int32, counting itself) can hold. */
const MAX_LENGTH_FIELD = 0x7fff_ffff;

/**
 * UTF-8 byte length of `s` plus its NUL terminator (protocol-message-types "String(s)").
 * A string containing NUL cannot be carried: the receiver would end it early and read the rest
 * as the next field, so encoders refuse it instead of producing a different message.
 */
export function cstringSize(s: string): number {
  if (s.includes("\0")) throw new GatewayError("GW_PROTOCOL", "a protocol string cannot contain a NUL byte");
  return Buffer.byteLength(s, "utf8") + 1;
}

/**
 * Writes one message into a buffer allocated once at its final size: encoders compute the body
 * length first, then fill every byte in a single pass (`finish` checks the count matched).
 *
 * `type === 0` writes an untagged (startup-phase) message: Int32 length first, no type byte.
 * `sensitive` buffers (passwords, SASL data) are not taken from Node's shared allocation pool,
 * so the caller can zero them after writing and no pooled slab keeps a copy.
 */
export class MessageWriter {
  readonly buf: Buffer;
  pos = 0;

  constructor(type: number, bodyLength: number, sensitive = false) {
    if (bodyLength + 4 > MAX_LENGTH_FIELD) {
      throw new GatewayError("GW_LIMIT", "message too large for the PostgreSQL protocol");
    }
    const total = (type === 0 ? 4 : 5) + bodyLength;
    this.buf = sensitive ? Buffer.alloc(total) : Buffer.allocUnsafe(total);
    if (type !== 0) {
      this.buf[0] = type;
      this.pos = 1;
    }
    this.int32(bodyLength + 4);
  }

  /**
   * Integer fields are range-checked here so that a caller's out-of-range number surfaces as a
   * GatewayError rather than Node's RangeError (and never as a silently wrapped value).
   */
  private check(v: number, min: number, max: number): void {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new GatewayError("GW_PROTOCOL", `protocol field value ${v} is outside ${min}..${max}`);
    }
  }

  uint8(v: number): this {
    this.check(v, 0, 0xff);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.check(v, -0x8000, 0x7fff);
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }

  uint16(v: number): this {
    this.check(v, 0, 0xffff);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
    return this;
  }

  int32(v: number): this {
    this.check(v, -0x8000_0000, 0x7fff_ffff);
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }

  uint32(v: number): this {
    this.check(v, 0, 0xffff_ffff);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
    return this;
  }

  /** Writes `s` and its NUL; `s` must already have been measured with cstringSize. */
  cstring(s: string): this {
    this.pos += this.buf.write(s, this.pos, "utf8");
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  finish(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new GatewayError("GW_INTERNAL", "message encoder wrote a different length than it measured");
    }
    return this.buf;
  }
}

/** Int16 count fields hold at most 65535 items (PostgreSQL reads them unsigned). */
export function checkCount(n: number, what: string): void {
  if (n > 0xffff) throw new GatewayError("GW_LIMIT", `too many ${what} for one message (max 65535)`);
}
