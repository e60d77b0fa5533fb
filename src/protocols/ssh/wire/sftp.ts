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
