/**
 * A pure, bounded framer and decoder for SFTP v3 packets (draft-ietf-secsh-filexfer-02 §3:
 * `uint32 length, byte type, payload`), used only to observe file operations on the sftp
 * subsystem; the bytes themselves are forwarded untouched. No I/O, no policy.
 */
export const SFTP_MAX_PACKET = 1024 * 1024;

export const FXP = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18, READLINK: 19,
  SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200, EXTENDED_REPLY: 201,
} as const;

export class SftpFramingError extends Error {
  override readonly name = "SftpFramingError";
}

/** Splits a byte stream into whole packets (type + payload, without the length). */
export class SftpFramer {
  #chunks: Buffer[] = [];
  #buffered = 0;
  readonly #max: number;

  constructor(maxPacket = SFTP_MAX_PACKET) {
    this.#max = maxPacket;
  }

  /** Feed bytes; returns the packets completed. Throws SftpFramingError on an oversized or empty packet. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Buffer[] = [];
    for (;;) {
      if (this.#buffered < 4) return out;
      const head = this.#peek(4);
      const len = head.readUInt32BE(0);
      if (len < 1 || len > this.#max) throw new SftpFramingError(`SFTP packet length ${len} out of bounds`);
      if (this.#buffered < 4 + len) return out;
      const all = this.#take(4 + len);
      out.push(all.subarray(4));
    }
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.#chunks).subarray(0, n);
  }

  #take(n: number): Buffer {
    const all = this.#chunks.length === 1 && this.#chunks[0] !== undefined ? this.#chunks[0] : Buffer.concat(this.#chunks);
    const taken = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return taken;
  }
}

/** Reads SFTP fields from one packet; every read is bounds-checked. */
export class SftpReader {
  #pos = 0;

  constructor(readonly buf: Buffer) {}

  byte(): number {
    if (this.#pos + 1 > this.buf.length) throw new SftpFramingError("truncated SFTP packet");
    return this.buf[this.#pos++] ?? 0;
  }

  u32(): number {
    if (this.#pos + 4 > this.buf.length) throw new SftpFramingError("truncated SFTP packet");
    const v = this.buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    return hi * 2 ** 32 + lo;
  }

  bytes(): Buffer {
    const len = this.u32();
    if (this.#pos + len > this.buf.length) throw new SftpFramingError("truncated SFTP string");
    const b = this.buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return b;
  }

  string(): string {
    return this.bytes().toString("utf8");
  }
}

/** Longest file handle accepted in a streamed WRITE (draft-02 §6.2: handles are at most 256 bytes). */
export const SFTP_MAX_HANDLE = 256;

/**
 * What SftpStreamFramer yields: whole packets (type + payload) for the small ones, and for
 * the bulk ones (WRITE from the client, DATA from the server) a `start` with their fields,
 * then their data as `data` slices of the chunks pushed (never copied), in order.
 */
export type SftpFrame =
  | { readonly kind: "packet"; readonly packet: Buffer }
  | { readonly kind: "start"; readonly type: number; readonly id: number; readonly handle: Buffer | undefined; readonly offset: number; readonly length: number }
  | { readonly kind: "data"; readonly data: Buffer };

/**
 * A streaming framer for one direction of an sftp channel. Bulk packets are not reassembled:
 * `WRITE` (`uint32 id, string handle, uint64 offset, string data`, draft-02 §6.4) and `DATA`
 * (`uint32 id, string data`, §7) yield their header fields, then their data as slices, so the
 * observer hashes file bytes without copying them. Other packets are framed whole, bounded by
 * `maxPacket` as SftpFramer does. Throws SftpFramingError on a length that does not add up.
 */
export class SftpStreamFramer {
  readonly #streamed: number;
  readonly #max: number;
  /** The packet header being collected (length, type and, for a bulk packet, its fields). */
  readonly #head = Buffer.alloc(4 + 1 + 4 + 4 + SFTP_MAX_HANDLE + 8 + 4);
  #headFill = 0;
  #mode: "head" | "body" | "data" = "head";
  #remaining = 0;
  #body: Buffer[] = [];

  /** `streamed`: the bulk packet type of this direction (FXP.WRITE or FXP.DATA). */
  constructor(streamed: typeof FXP.WRITE | typeof FXP.DATA, maxPacket = SFTP_MAX_PACKET) {
    this.#streamed = streamed;
    this.#max = maxPacket;
  }

  push(chunk: Buffer): SftpFrame[] {
    const out: SftpFrame[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#mode === "body" || this.#mode === "data") {
        const n = Math.min(this.#remaining, chunk.length - pos);
        const slice = chunk.subarray(pos, pos + n);
        pos += n;
        this.#remaining -= n;
        if (this.#mode === "data") {
          out.push({ kind: "data", data: slice });
        } else {
          this.#body.push(slice);
        }
        if (this.#remaining === 0) this.#finish(out);
        continue;
      }
      // Collect the header one field at a time: as many bytes as the next decision needs.
      const need = this.#headNeed();
      const n = Math.min(need - this.#headFill, chunk.length - pos);
      chunk.copy(this.#head, this.#headFill, pos, pos + n);
      this.#headFill += n;
      pos += n;
      if (this.#headFill === need) this.#headStep(out);
    }
    return out;
  }

  /** Header bytes needed before the next step. */
  #headNeed(): number {
    if (this.#headFill < 5) return 5;
    const type = this.#head[4];
    if (type !== this.#streamed) return 5;
    if (this.#streamed === FXP.DATA) return 5 + 4 + 4;
    if (this.#headFill < 5 + 4 + 4) return 5 + 4 + 4;
    const handleLength = this.#head.readUInt32BE(9);
    return 5 + 4 + 4 + handleLength + 8 + 4;
  }

  #headStep(out: SftpFrame[]): void {
    const len = this.#head.readUInt32BE(0);
    const type = this.#head[4] ?? 0;
    if (this.#headFill === 5) {
      if (len < 1 || len > this.#max) throw new SftpFramingError(`SFTP packet length ${len} out of bounds`);
      if (type === this.#streamed) return; // its fields come next
      this.#mode = "body";
      this.#body = [Buffer.from([type])];
      this.#remaining = len - 1;
      if (this.#remaining === 0) this.#finish(out);
      return;
    }
    if (this.#streamed === FXP.WRITE && this.#headFill === 5 + 4 + 4) {
      const handleLength = this.#head.readUInt32BE(9);
      if (handleLength > SFTP_MAX_HANDLE) throw new SftpFramingError(`SFTP handle length ${handleLength} out of bounds`);
      return; // the handle, offset and data length come next
    }
    const id = this.#head.readUInt32BE(5);
    let handle: Buffer | undefined;
    let offset = 0;
    if (this.#streamed === FXP.WRITE) {
      const handleLength = this.#head.readUInt32BE(9);
      handle = Buffer.from(this.#head.subarray(13, 13 + handleLength));
      offset = this.#head.readUInt32BE(13 + handleLength) * 2 ** 32 + this.#head.readUInt32BE(17 + handleLength);
    }
    const length = this.#head.readUInt32BE(this.#headFill - 4);
    if (len !== this.#headFill - 4 + length) throw new SftpFramingError("SFTP packet length does not match its data length");
    out.push({ kind: "start", type, id, handle, offset, length });
    this.#mode = "data";
    this.#remaining = length;
    if (length === 0) this.#finish(out);
  }

  #finish(out: SftpFrame[]): void {
    if (this.#mode === "body") {
      const parts = this.#body;
      out.push({ kind: "packet", packet: parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts) });
      this.#body = [];
    }
    this.#mode = "head";
    this.#headFill = 0;
    this.#remaining = 0;
  }
}
