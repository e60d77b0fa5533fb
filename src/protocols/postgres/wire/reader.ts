import { isUtf8 } from "node:buffer";
import { GatewayError } from "../../../core/errors.js";

/**
 * A bounds-checked cursor over one message body (the bytes after the length field).
 *
 * Invariants: `pos` never exceeds `buf.length`; every read either succeeds completely or throws
 * GatewayError GW_PROTOCOL naming the message, never another exception and never a partial
 * read. Error messages name the message kind and what was wrong, never the bytes themselves
 * (bodies can hold passwords or row values).
 *
 * Integer reads follow protocol-message-types ("Intn(i)": big-endian, signed). Counts declared
 * as Int16 are read unsigned where PostgreSQL itself reads them unsigned (pq_getmsgint(msg, 2)
 * returns 0..65535), so a client binding 40,000 parameters is framed as the server frames it.
 */
export class BodyReader {
  pos = 0;

  /**
   * @param strictUtf8 reject strings that are not valid UTF-8 (frontend messages: what the
   *   gateway judges must be exactly what the server will read). Backend messages decode
   *   leniently (invalid sequences become U+FFFD) so that a server error in another encoding
   *   can still be relayed.
   */
  constructor(
    readonly buf: Buffer,
    readonly what: string,
    readonly strictUtf8: boolean,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(reason: string): never {
    throw new GatewayError("GW_PROTOCOL", `malformed ${this.what} message: ${reason}`);
  }

  private need(n: number): void {
    if (this.buf.length - this.pos < n) this.fail("message is shorter than its fields");
  }

  uint8(): number {
    this.need(1);
    const v = this.buf.readUInt8(this.pos);
    this.pos += 1;
    return v;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** OIDs are unsigned 32-bit values sent in an Int32 field. */
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** protocol-message-types "String(s)": bytes up to a NUL terminator, which is consumed. */
  cstring(): string {
    const start = this.pos;
    const nul = this.buf.indexOf(0, start);
    if (nul < 0) this.fail("string without NUL terminator");
    if (this.strictUtf8 && !isUtf8(this.buf.subarray(start, nul))) this.fail("string is not valid UTF-8");
    this.pos = nul + 1;
    return this.buf.toString("utf8", start, nul);
  }

  /** Raw bytes of a NUL-terminated string, as a subarray (no copy). */
  cstringBytes(): Buffer {
    const start = this.pos;
    const nul = this.buf.indexOf(0, start);
    if (nul < 0) this.fail("string without NUL terminator");
    this.pos = nul + 1;
    return this.buf.subarray(start, nul);
  }

  /** `n` bytes as a subarray (no copy). */
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Everything left, as a subarray. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }

  /**
   * Before reading `count` items of at least `minBytes` each, check that they can fit, so that a
   * forged count can never make a decoder allocate or loop beyond the body's size.
   */
  expectItems(count: number, minBytes: number): void {
    if (count < 0 || count * minBytes > this.remaining) this.fail("count does not fit the message");
  }

  /** Messages have no trailing bytes after their last field. */
  end(): void {
    if (this.pos !== this.buf.length) this.fail("trailing bytes after the last field");
  }
}
