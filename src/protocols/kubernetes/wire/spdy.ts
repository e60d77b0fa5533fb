/**
 * SPDY/3.1 framing, as Kubernetes streams use it (k8s.io/apimachinery/pkg/util/httpstream/spdy
 * over moby/spdystream): `kubectl port-forward` after `Upgrade: SPDY/3.1`, or tunnelled as
 * binary WebSocket messages (subprotocol `SPDY/3.1+portforward.k8s.io`, KEP-4006).
 *
 * Frames (SPDY draft 3.1, section 2.2): an 8-byte header, then `length` bytes.
 *  - control: bit 0 set, 15-bit version (3), 16-bit type, 8-bit flags, 24-bit length;
 *  - data: bit 0 clear, 31-bit stream id, 8-bit flags (FIN), 24-bit length.
 * Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are a 32-bit count of name/value pairs, each
 * a 32-bit length and bytes; compressed with zlib primed with the spec's dictionary, ONE
 * compression context per direction for the whole connection, each block ended by a sync flush.
 *
 * Pure except HeaderInflater (zlib is asynchronous in Node). Bounded: frames over
 * MAX_FRAME_LENGTH cannot exist (24-bit length); header blocks over MAX_HEADER_BLOCK are refused.
 */
import { constants as zc, createInflate, type Inflate } from "node:zlib";
import { GatewayError } from "../../../core/errors.js";

export const SPDY_VERSION = 3;
export const SYN_STREAM = 1;
export const SYN_REPLY = 2;
export const RST_STREAM = 3;
export const SETTINGS = 4;
export const PING = 6;
export const GOAWAY = 7;
export const HEADERS = 8;
export const WINDOW_UPDATE = 9;
export const FLAG_FIN = 0x01;
/** RST_STREAM status codes used here. */
export const RST_PROTOCOL_ERROR = 1;
export const RST_REFUSED_STREAM = 3;
export const RST_CANCEL = 5;
export const MAX_FRAME_LENGTH = 0xffffff;
/** A decompressed header block larger than this is refused (Kubernetes sends a few short headers). */
export const MAX_HEADER_BLOCK = 64 * 1024;
const MAX_HEADER_PAIRS = 256;

/** The SPDY/3 header compression dictionary (SPDY draft 3, section 2.6.10.1), 1423 bytes. */
export const SPDY_DICTIONARY: Buffer = Buffer.from(
  "AAAAB29wdGlvbnMAAAAEaGVhZAAAAARwb3N0AAAAA3B1dAAAAAZkZWxldGUAAAAFdHJhY2UAAAAGYWNjZXB0AAAADmFjY2Vw" +
  "dC1jaGFyc2V0AAAAD2FjY2VwdC1lbmNvZGluZwAAAA9hY2NlcHQtbGFuZ3VhZ2UAAAANYWNjZXB0LXJhbmdlcwAAAANhZ2UA" +
  "AAAFYWxsb3cAAAANYXV0aG9yaXphdGlvbgAAAA1jYWNoZS1jb250cm9sAAAACmNvbm5lY3Rpb24AAAAMY29udGVudC1iYXNl" +
  "AAAAEGNvbnRlbnQtZW5jb2RpbmcAAAAQY29udGVudC1sYW5ndWFnZQAAAA5jb250ZW50LWxlbmd0aAAAABBjb250ZW50LWxv" +
  "Y2F0aW9uAAAAC2NvbnRlbnQtbWQ1AAAADWNvbnRlbnQtcmFuZ2UAAAAMY29udGVudC10eXBlAAAABGRhdGUAAAAEZXRhZwAA" +
  "AAZleHBlY3QAAAAHZXhwaXJlcwAAAARmcm9tAAAABGhvc3QAAAAIaWYtbWF0Y2gAAAARaWYtbW9kaWZpZWQtc2luY2UAAAAN" +
  "aWYtbm9uZS1tYXRjaAAAAAhpZi1yYW5nZQAAABNpZi11bm1vZGlmaWVkLXNpbmNlAAAADWxhc3QtbW9kaWZpZWQAAAAIbG9j" +
  "YXRpb24AAAAMbWF4LWZvcndhcmRzAAAABnByYWdtYQAAABJwcm94eS1hdXRoZW50aWNhdGUAAAATcHJveHktYXV0aG9yaXph" +
  "dGlvbgAAAAVyYW5nZQAAAAdyZWZlcmVyAAAAC3JldHJ5LWFmdGVyAAAABnNlcnZlcgAAAAJ0ZQAAAAd0cmFpbGVyAAAAEXRy" +
  "YW5zZmVyLWVuY29kaW5nAAAAB3VwZ3JhZGUAAAAKdXNlci1hZ2VudAAAAAR2YXJ5AAAAA3ZpYQAAAAd3YXJuaW5nAAAAEHd3" +
  "dy1hdXRoZW50aWNhdGUAAAAGbWV0aG9kAAAAA2dldAAAAAZzdGF0dXMAAAAGMjAwIE9LAAAAB3ZlcnNpb24AAAAISFRUUC8x" +
  "LjEAAAADdXJsAAAABnB1YmxpYwAAAApzZXQtY29va2llAAAACmtlZXAtYWxpdmUAAAAGb3JpZ2luMTAwMTAxMjAxMjAyMjA1" +
  "MjA2MzAwMzAyMzAzMzA0MzA1MzA2MzA3NDAyNDA1NDA2NDA3NDA4NDA5NDEwNDExNDEyNDEzNDE0NDE1NDE2NDE3NTAyNTA0" +
  "NTA1MjAzIE5vbi1BdXRob3JpdGF0aXZlIEluZm9ybWF0aW9uMjA0IE5vIENvbnRlbnQzMDEgTW92ZWQgUGVybWFuZW50bHk0" +
  "MDAgQmFkIFJlcXVlc3Q0MDEgVW5hdXRob3JpemVkNDAzIEZvcmJpZGRlbjQwNCBOb3QgRm91bmQ1MDAgSW50ZXJuYWwgU2Vy" +
  "dmVyIEVycm9yNTAxIE5vdCBJbXBsZW1lbnRlZDUwMyBTZXJ2aWNlIFVuYXZhaWxhYmxlSmFuIEZlYiBNYXIgQXByIE1heSBK" +
  "dW4gSnVsIEF1ZyBTZXB0IE9jdCBOb3YgRGVjIDAwOjAwOjAwIE1vbiwgVHVlLCBXZWQsIFRodSwgRnJpLCBTYXQsIFN1biwg" +
  "R01UY2h1bmtlZCx0ZXh0L2h0bWwsaW1hZ2UvcG5nLGltYWdlL2pwZyxpbWFnZS9naWYsYXBwbGljYXRpb24veG1sLGFwcGxp" +
  "Y2F0aW9uL3hodG1sK3htbCx0ZXh0L3BsYWluLHRleHQvamF2YXNjcmlwdCxwdWJsaWNwcml2YXRlbWF4LWFnZT1nemlwLGRl" +
  "ZmxhdGUsc2RjaGNoYXJzZXQ9dXRmLThjaGFyc2V0PWlzby04ODU5LTEsdXRmLSwqLGVucT0wLg==",
  "base64",
);

export type SpdyFrame =
  | { readonly kind: "data"; readonly streamId: number; readonly flags: number; readonly data: Buffer; readonly raw: Buffer }
  | { readonly kind: "control"; readonly type: number; readonly flags: number; readonly payload: Buffer; readonly raw: Buffer };

/** Splits a byte stream into frames; `push` returns the frames completed by the chunk. */
export class SpdyFrameReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): SpdyFrame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: SpdyFrame[] = [];
    while (this.#buf.length >= 8) {
      const length = this.#buf.readUIntBE(5, 3);
      if (this.#buf.length < 8 + length) break;
      const raw = this.#buf.subarray(0, 8 + length);
      this.#buf = this.#buf.subarray(8 + length);
      const first = raw.readUInt32BE(0);
      const flags = raw[4] ?? 0;
      if ((first & 0x80000000) !== 0) {
        const version = (first >>> 16) & 0x7fff;
        if (version !== SPDY_VERSION) throw new GatewayError("GW_PROTOCOL", `SPDY version ${version} is not served (3.1 only)`);
        out.push({ kind: "control", type: first & 0xffff, flags, payload: raw.subarray(8), raw });
      } else {
        out.push({ kind: "data", streamId: first & 0x7fffffff, flags, data: raw.subarray(8), raw });
      }
    }
    return out;
  }

  /** Bytes of an unfinished frame still held. */
  get pending(): number {
    return this.#buf.length;
  }
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_LENGTH) throw new GatewayError("GW_LIMIT", "SPDY frame too long");
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, 0);
  h[4] = flags;
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

export function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  if (data.length > MAX_FRAME_LENGTH) throw new GatewayError("GW_LIMIT", "SPDY frame too long");
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h[4] = flags;
  h.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([h, data]);
}

function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
}

export function synReplyFrame(streamId: number, compressedBlock: Buffer, flags = 0): Buffer {
  return controlFrame(SYN_REPLY, flags, Buffer.concat([u32(streamId & 0x7fffffff), compressedBlock]));
}

export function rstStreamFrame(streamId: number, status: number): Buffer {
  return controlFrame(RST_STREAM, 0, u32(streamId & 0x7fffffff, status));
}

export function goAwayFrame(lastGoodStreamId: number, status: number): Buffer {
  return controlFrame(GOAWAY, 0, u32(lastGoodStreamId & 0x7fffffff, status));
}

export function pingFrame(id: number): Buffer {
  return controlFrame(PING, 0, u32(id));
}

/** The stream id a control frame is about (SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE), else undefined. */
export function controlStreamId(f: { readonly type: number; readonly payload: Buffer }): number | undefined {
  const withStream = f.type === SYN_STREAM || f.type === SYN_REPLY || f.type === RST_STREAM || f.type === HEADERS || f.type === WINDOW_UPDATE;
  return withStream && f.payload.length >= 4 ? f.payload.readUInt32BE(0) & 0x7fffffff : undefined;
}

/** SYN_STREAM's fixed part: stream id, associated stream, and where its header block starts. */
export function parseSynStream(payload: Buffer): { readonly streamId: number; readonly block: Buffer } {
  if (payload.length < 10) throw new GatewayError("GW_PROTOCOL", "SPDY SYN_STREAM too short");
  return { streamId: payload.readUInt32BE(0) & 0x7fffffff, block: payload.subarray(10) };
}

/** An uncompressed header block; names lower case, repeated values joined by NUL. */
export function encodeHeaderBlock(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [u32(headers.length)];
  for (const [name, value] of headers) {
    const n = Buffer.from(name.toLowerCase(), "utf8");
    const v = Buffer.from(value, "utf8");
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Decode an uncompressed header block (exactly one): names → values (a repeated name's values joined by NUL). */
export function decodeHeaderBlock(block: Buffer): Map<string, string> {
  const bad = (): GatewayError => new GatewayError("GW_PROTOCOL", "a SPDY header block could not be read");
  if (block.length < 4) throw bad();
  const count = block.readUInt32BE(0);
  if (count > MAX_HEADER_PAIRS) throw bad();
  const out = new Map<string, string>();
  let at = 4;
  const take = (): string => {
    if (at + 4 > block.length) throw bad();
    const len = block.readUInt32BE(at);
    at += 4;
    if (at + len > block.length) throw bad();
    const s = block.toString("utf8", at, at + len);
    at += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = take();
    const value = take();
    if (name === "" || name !== name.toLowerCase()) throw bad();
    const prev = out.get(name);
    out.set(name, prev === undefined ? value : `${prev}\0${value}`);
  }
  if (at !== block.length) throw bad();
  return out;
}

function adler32(b: Buffer): number {
  let a = 1;
  let s = 0;
  for (const byte of b) {
    a = (a + byte) % 65521;
    s = (s + a) % 65521;
  }
  return ((s << 16) | a) >>> 0;
}

/**
 * Header compression without compressing: a zlib stream (primed with the dictionary, as SPDY
 * requires) made of stored deflate blocks, each header block followed by an empty stored block
 * exactly as a sync flush ends one. Any conforming reader inflates it; synchronous.
 */
export class HeaderDeflater {
  #started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.#started) {
      this.#started = true;
      // CMF 0x78 (deflate, 32 KiB window); FLG 0x20: FDICT set, and 0x7820 is a multiple of 31.
      parts.push(Buffer.from([0x78, 0x20]), u32(adler32(SPDY_DICTIONARY)));
    }
    let at = 0;
    do {
      const piece = block.subarray(at, at + 0xffff);
      const h = Buffer.alloc(5);
      h[0] = 0x00; // BFINAL 0, BTYPE 00 (stored), padded to the byte
      h.writeUInt16LE(piece.length, 1);
      h.writeUInt16LE(~piece.length & 0xffff, 3);
      parts.push(h, piece);
      at += 0xffff;
    } while (at < block.length);
    // An empty stored block ends it, as zlib's sync flush does: inflaters (Go's compress/flate)
    // hand over what they have on meeting it rather than reading on into the next frame.
    if (block.length > 0) parts.push(Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]));
    return Buffer.concat(parts);
  }
}

/** The length of the complete header block at the start of `b`, or undefined while incomplete. */
function headerBlockLength(b: Buffer): number | undefined {
  if (b.length < 4) return undefined;
  const count = b.readUInt32BE(0);
  if (count > MAX_HEADER_PAIRS) throw new GatewayError("GW_PROTOCOL", "a SPDY header block could not be read");
  let at = 4;
  for (let i = 0; i < 2 * count; i++) {
    if (at + 4 > b.length) return undefined;
    at += 4 + b.readUInt32BE(at);
    if (at > b.length) return undefined;
  }
  return at;
}

/**
 * One direction's header decompression context (stateful across the connection's blocks).
 * Calls must not overlap: the caller handles one frame at a time.
 */
export class HeaderInflater {
  readonly #z: Inflate = createInflate({ dictionary: SPDY_DICTIONARY });
  #out: Buffer = Buffer.alloc(0);
  #failed = false;
  #waiter: (() => void) | undefined;

  constructor() {
    this.#z.on("data", (c: Buffer) => {
      this.#out = this.#out.length === 0 ? c : Buffer.concat([this.#out, c]);
      this.#waiter?.();
    });
    this.#z.on("error", () => {
      this.#failed = true;
      this.#waiter?.();
    });
  }

  /** The decoded headers of one compressed block. */
  async inflate(compressed: Buffer): Promise<Map<string, string>> {
    const fail = (): GatewayError => new GatewayError("GW_PROTOCOL", "SPDY header compression failed");
    if (this.#failed) throw fail();
    const z = this.#z;
    let flushed = false;
    const block = await new Promise<Buffer>((resolve, reject) => {
      const check = (): void => {
        if (this.#failed) {
          reject(fail());
          return;
        }
        let len: number | undefined;
        try {
          len = headerBlockLength(this.#out);
        } catch (e) {
          reject(e instanceof Error ? e : fail());
          return;
        }
        if (len !== undefined) {
          const b = this.#out.subarray(0, len);
          this.#out = this.#out.subarray(len);
          this.#waiter = undefined;
          resolve(b);
          return;
        }
        if (this.#out.length > MAX_HEADER_BLOCK) reject(new GatewayError("GW_LIMIT", "a SPDY header block is too large"));
        // A sync-flushed block has given all its bytes once the flush is done and its output delivered.
        else if (flushed) reject(new GatewayError("GW_PROTOCOL", "a SPDY header block was incomplete"));
      };
      this.#waiter = check;
      z.write(compressed);
      z.flush(zc.Z_SYNC_FLUSH, () => {
        setImmediate(() => {
          flushed = true;
          if (this.#waiter === check) check();
        });
      });
    });
    return decodeHeaderBlock(block);
  }

  close(): void {
    this.#z.destroy();
  }
}
