import { GatewayError } from "../../../core/errors.js";

/**
 * Incremental message framing for the PostgreSQL frontend/backend protocol v3
 * (protocol-overview "Messaging Overview": every message is a type byte, an Int32 length that
 * counts itself but not the type byte, and the body; the startup-phase messages StartupMessage,
 * SSLRequest, GSSENCRequest and CancelRequest have no type byte, see protocol-message-formats).
 *
 * This is the proxy's hot path. Design:
 * - Frames that lie inside one pushed chunk are returned as subarrays of that chunk: no copy.
 * - Only a frame that straddles chunk boundaries is copied, into an accumulator that belongs to
 *   that frame alone and is handed out with it, so returned frames stay valid forever (callers
 *   may keep `bytes` across awaits; nothing here ever writes into a buffer it has returned).
 * - A frame's length is validated from its header (5 bytes tagged, 4 untagged) before any of its
 *   body is buffered: a length below 4 is GW_PROTOCOL, above the cap GW_LIMIT.
 * - The accumulator grows with the bytes that actually arrived (exact size up to 64 KiB, then
 *   doubling), so a peer announcing a huge message and sending nothing cannot make the gateway
 *   allocate the announced size.
 * - Once `next()` has thrown, the stream is out of sync and the reader is dead: every later
 *   call throws the same error. The connection must be closed.
 *
 * Security note for the caller: after an SSLRequest/GSSENCRequest the client must send nothing
 * before the TLS handshake; check `buffered === 0` before starting TLS (CVE-2021-23214), since
 * bytes already pushed here arrived in plaintext.
 */

export interface Frame {
  /** Message type byte (e.g. 0x51 'Q'); 0 for untagged startup-phase messages. */
  readonly type: number;
  /**
   * The whole message as received (type byte + length + body, or length + body when untagged).
   * A slice of the input chunk whenever the message lies within one chunk (no copy).
   */
  readonly bytes: Buffer;
  /** The body after the length field (a subarray of `bytes`). */
  readonly body: Buffer;
}

/** Real startup packets are small; PostgreSQL itself caps them at 10,000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_UNTAGGED_MESSAGE_BYTES = 10_000;

/** Accumulators up to this size are allocated at the frame's exact size at once. */
const EXACT_ALLOCATION_LIMIT = 64 * 1024;

const EMPTY = Buffer.alloc(0);

/**
 * A frame whose body subarray is created only when asked for: a proxy that forwards `bytes`
 * for most messages never pays for it.
 */
class WireFrame implements Frame {
  private cachedBody: Buffer | undefined;

  constructor(
    readonly type: number,
    readonly bytes: Buffer,
    private readonly headerSize: number,
  ) {}

  get body(): Buffer {
    return (this.cachedBody ??= this.bytes.subarray(this.headerSize));
  }
}

export interface FrameReaderOptions {
  /** Largest accepted value of a tagged message's length field (which counts itself). */
  readonly maxMessageBytes: number;
  /** Start in the startup phase (untagged messages: Int32 length first). Default false. */
  readonly untagged?: boolean;
}

export class FrameReader {
  private maxTagged: number;
  private readonly maxUntagged: number;
  private tagged: boolean;

  /** Unconsumed chunks; chunks[head] is read from `offset`. Chunks before `head` are spent. */
  private chunks: Buffer[] = [];
  private head = 0;
  private offset = 0;
  /** Unconsumed bytes in `chunks`. */
  private queued = 0;

  /** Header bytes of a frame whose header straddles chunks (only while `need === 0`). */
  private readonly header = Buffer.alloc(5);
  /** Bytes of the current straddling frame held (in `header` while need === 0, else in `acc`). */
  private held = 0;
  /** Total size of the straddling frame, known once its header is complete; 0 otherwise. */
  private need = 0;
  private acc: Buffer = EMPTY;

  private failure: GatewayError | undefined;

  constructor(options: FrameReaderOptions) {
    const max = options.maxMessageBytes;
    if (!Number.isSafeInteger(max) || max < 4 || max > 0x7fff_ffff) {
      throw new GatewayError("GW_CONFIG", "maxMessageBytes must be an integer between 4 and 2147483647");
    }
    this.maxTagged = max;
    this.maxUntagged = Math.min(max, MAX_UNTAGGED_MESSAGE_BYTES);
    this.tagged = options.untagged !== true;
  }

  /**
   * Switch from untagged (startup phase) to tagged framing. Call it between frames, right after
   * the startup packet has been taken; bytes already pushed after that packet are framed tagged.
   */
  setTagged(): void {
    // Header bytes collected so far (need === 0) are just the start of the next frame in either
    // framing; only a frame whose untagged header was already read cannot be reinterpreted.
    if (this.need !== 0) {
      throw new GatewayError("GW_INTERNAL", "setTagged called in the middle of a frame");
    }
    this.tagged = true;
  }

  /**
   * Change the cap for tagged frames (e.g. a small cap before authentication, the configured
   * one after). Applies to frames whose header has not been read yet.
   */
  setMaxMessageBytes(max: number): void {
    if (!Number.isSafeInteger(max) || max < 4 || max > 0x7fff_ffff) {
      throw new GatewayError("GW_CONFIG", "maxMessageBytes must be an integer between 4 and 2147483647");
    }
    if (this.need !== 0) throw new GatewayError("GW_INTERNAL", "setMaxMessageBytes called in the middle of a frame");
    this.maxTagged = max;
  }

  /** Queue a chunk. Never copies it and never throws: all parsing happens in `next()`. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.head === this.chunks.length) {
      // Everything queued is spent: start over rather than grow the array.
      this.chunks.length = 0;
      this.head = 0;
      this.offset = 0;
    } else if (this.head > 32 && this.head * 2 > this.chunks.length) {
      // A caller pushing without draining: drop spent chunks so they can be collected.
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
    this.chunks.push(chunk);
    this.queued += chunk.length;
  }

  /** Bytes held for an incomplete frame (and pushed bytes not yet framed). */
  get buffered(): number {
    return this.held + this.queued;
  }

  /**
   * Next complete frame, or undefined if more bytes are needed. Throws GatewayError GW_PROTOCOL
   * for a length < 4, GW_LIMIT for a length above the cap, both detected from the header
   * before buffering the body.
   */
  next(): Frame | undefined {
    if (this.failure !== undefined) throw this.failure;
    const headerSize = this.tagged ? 5 : 4;
    for (;;) {
      const chunk = this.chunks[this.head];
      if (chunk === undefined) return undefined;
      const off = this.offset;
      const avail = chunk.length - off;

      if (this.need === 0) {
        if (this.held === 0 && avail >= headerSize) {
          // Fast path: the header is inside this chunk.
          const total = this.frameSize(chunk, off);
          if (avail >= total) {
            this.consume(chunk, total);
            const bytes = off === 0 && total === chunk.length ? chunk : chunk.subarray(off, off + total);
            return new WireFrame(this.tagged ? bytes[0] ?? 0 : 0, bytes, headerSize);
          }
          this.startAccumulating(total);
        } else {
          // The header itself straddles chunks: collect it byte-exactly first.
          const take = Math.min(headerSize - this.held, avail);
          chunk.copy(this.header, this.held, off, off + take);
          this.held += take;
          this.consume(chunk, take);
          if (this.held < headerSize) continue;
          this.startAccumulating(this.frameSize(this.header, 0));
          this.header.copy(this.acc, 0, 0, this.held);
          if (this.held === this.need) return this.takeAccumulated(headerSize);
          continue;
        }
      }

      // Copy as much of the straddling frame as this chunk holds (nothing of `chunk` has been
      // consumed on the way here: either `need` was already set, or the fast path fell through).
      const take = Math.min(this.need - this.held, avail);
      this.reserve(this.held + take);
      chunk.copy(this.acc, this.held, off, off + take);
      this.held += take;
      this.consume(chunk, take);
      if (this.held === this.need) return this.takeAccumulated(headerSize);
    }
  }

  /** Validate the header at `buf[off]` and return the frame's total size including the header. */
  private frameSize(buf: Buffer, off: number): number {
    if (this.tagged) {
      const len = buf.readInt32BE(off + 1);
      this.checkLength(len, this.maxTagged);
      return len + 1;
    }
    const len = buf.readInt32BE(off);
    this.checkLength(len, this.maxUntagged);
    return len;
  }

  private checkLength(len: number, max: number): void {
    if (len < 4) {
      this.failure = new GatewayError("GW_PROTOCOL", `invalid message length ${len} (below 4)`);
      throw this.failure;
    }
    if (len > max) {
      this.failure = new GatewayError("GW_LIMIT", `message length ${len} exceeds the limit of ${max} bytes`);
      throw this.failure;
    }
  }

  private consume(chunk: Buffer, n: number): void {
    this.offset += n;
    this.queued -= n;
    if (this.offset === chunk.length) {
      this.head += 1;
      this.offset = 0;
      if (this.head === this.chunks.length) {
        this.chunks.length = 0;
        this.head = 0;
      }
    }
  }

  private startAccumulating(total: number): void {
    this.need = total;
    this.acc = Buffer.allocUnsafe(total <= EXACT_ALLOCATION_LIMIT ? total : EXACT_ALLOCATION_LIMIT);
  }

  /** Grow the accumulator to hold `n` bytes: at least doubling, never beyond the frame size. */
  private reserve(n: number): void {
    if (n <= this.acc.length) return;
    const grown = Buffer.allocUnsafe(Math.min(this.need, Math.max(n, this.acc.length * 2)));
    this.acc.copy(grown, 0, 0, this.held);
    this.acc = grown;
  }

  private takeAccumulated(headerSize: number): Frame {
    // Invariant: capacity never exceeds `need`, so a full accumulator is exactly the frame.
    const bytes = this.acc;
    this.acc = EMPTY;
    this.held = 0;
    this.need = 0;
    return new WireFrame(this.tagged ? bytes[0] ?? 0 : 0, bytes, headerSize);
  }
}
