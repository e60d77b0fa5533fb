/**
 * The agent tunnel's frame codec (issue 19): pure, no I/O. Many byte streams share one
 * WebSocket between the gateway and a network-resident agent; each frame is
 *
 *   u8 type | u32 stream id (big-endian) | u32 payload length | payload
 *
 * Types: OPEN (JSON: what to dial), ACCEPT (the stream is connected), DATA (bytes), END (the
 * sender sends no more data: half-close), CLOSE (the stream is gone; optional JSON reason),
 * WINDOW (u32 credit: the receiver consumed that many DATA bytes), PING/PONG (8 opaque bytes,
 * stream 0). Every length is bounded before anything is buffered; a bad frame is a
 * TunnelProtocolError, never a crash or an unbounded wait.
 */

export const FRAME_TYPES = {
  open: 1,
  accept: 2,
  data: 3,
  end: 4,
  close: 5,
  window: 6,
  ping: 7,
  pong: 8,
} as const;

export type FrameType = keyof typeof FRAME_TYPES;

export type TunnelFrame =
  | { readonly type: "open"; readonly stream: number; readonly spec: Buffer }
  | { readonly type: "accept"; readonly stream: number }
  | { readonly type: "data"; readonly stream: number; readonly data: Buffer }
  | { readonly type: "end"; readonly stream: number }
  | { readonly type: "close"; readonly stream: number; readonly reason: Buffer }
  | { readonly type: "window"; readonly stream: number; readonly credit: number }
  | { readonly type: "ping"; readonly nonce: Buffer }
  | { readonly type: "pong"; readonly nonce: Buffer };

export const HEADER_BYTES = 9;
/** The largest DATA payload a sender may put in one frame. */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** OPEN specs and CLOSE reasons are small JSON documents. */
export const MAX_CONTROL_PAYLOAD = 16 * 1024;
const MAX_STREAM_ID = 0xffff_ffff;

export class TunnelProtocolError extends Error {
  override readonly name = "TunnelProtocolError";
}

const TYPE_BY_CODE = new Map<number, FrameType>(Object.entries(FRAME_TYPES).map(([k, v]) => [v, k as FrameType]));

function header(code: number, stream: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt8(code, 0);
  h.writeUInt32BE(stream, 1);
  h.writeUInt32BE(length, 5);
  return h;
}

/** Encode one frame. Throws on values the decoder would refuse (the sender's bug, caught early). */
export function encodeFrame(f: TunnelFrame): Buffer {
  switch (f.type) {
    case "open":
      return withPayload("open", f.stream, f.spec, MAX_CONTROL_PAYLOAD);
    case "accept":
      return withPayload("accept", f.stream, Buffer.alloc(0), 0);
    case "data":
      return withPayload("data", f.stream, f.data, MAX_DATA_PAYLOAD);
    case "end":
      return withPayload("end", f.stream, Buffer.alloc(0), 0);
    case "close":
      return withPayload("close", f.stream, f.reason, MAX_CONTROL_PAYLOAD);
    case "window": {
      if (!Number.isInteger(f.credit) || f.credit < 1 || f.credit > MAX_STREAM_ID) throw new TunnelProtocolError("window credit out of range");
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(f.credit, 0);
      return withPayload("window", f.stream, p, 4);
    }
    case "ping":
    case "pong":
      if (f.nonce.length !== 8) throw new TunnelProtocolError(`${f.type} nonce must be 8 bytes`);
      return withPayload(f.type, 0, f.nonce, 8);
  }
}

function withPayload(type: FrameType, stream: number, payload: Buffer, max: number): Buffer {
  if (!Number.isInteger(stream) || stream < 0 || stream > MAX_STREAM_ID) throw new TunnelProtocolError("stream id out of range");
  if (payload.length > max) throw new TunnelProtocolError(`${type} payload of ${payload.length} bytes exceeds ${max}`);
  return Buffer.concat([header(FRAME_TYPES[type], stream, payload.length), payload]);
}

/** The largest payload each type may carry, and whether it must be exactly that long. */
function payloadRule(type: FrameType): { readonly max: number; readonly exact: boolean } {
  switch (type) {
    case "open":
    case "close":
      return { max: MAX_CONTROL_PAYLOAD, exact: false };
    case "data":
      return { max: MAX_DATA_PAYLOAD, exact: false };
    case "accept":
    case "end":
      return { max: 0, exact: true };
    case "window":
      return { max: 4, exact: true };
    case "ping":
    case "pong":
      return { max: 8, exact: true };
  }
}

/**
 * Incremental decoder: push bytes as they arrive (split anywhere), take whole frames with
 * `next()`. Buffers at most one frame (header + its bounded payload).
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #failed = false;

  push(chunk: Buffer): void {
    if (this.#failed) throw new TunnelProtocolError("decoder already failed");
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next whole frame, or undefined when more bytes are needed. */
  next(): TunnelFrame | undefined {
    if (this.#failed) throw new TunnelProtocolError("decoder already failed");
    if (this.#buffered < HEADER_BYTES) return undefined;
    const head = this.#peek(HEADER_BYTES);
    const code = head.readUInt8(0);
    const stream = head.readUInt32BE(1);
    const length = head.readUInt32BE(5);
    const type = TYPE_BY_CODE.get(code);
    if (type === undefined) return this.#fail(`unknown frame type ${code}`);
    const rule = payloadRule(type);
    if (length > rule.max || (rule.exact && length !== rule.max)) return this.#fail(`${type} frame with a payload of ${length} bytes`);
    if ((type === "ping" || type === "pong") !== (stream === 0)) return this.#fail(`${type} frame on stream ${stream}`);
    if (this.#buffered < HEADER_BYTES + length) return undefined;
    const all = this.#take(HEADER_BYTES + length);
    const payload = all.subarray(HEADER_BYTES);
    switch (type) {
      case "open":
        return { type, stream, spec: payload };
      case "accept":
        return { type, stream };
      case "data":
        return { type, stream, data: payload };
      case "end":
        return { type, stream };
      case "close":
        return { type, stream, reason: payload };
      case "window": {
        const credit = payload.readUInt32BE(0);
        if (credit === 0) return this.#fail("window frame with no credit");
        return { type, stream, credit };
      }
      case "ping":
        return { type, nonce: payload };
      case "pong":
        return { type, nonce: payload };
    }
  }

  #fail(message: string): never {
    this.#failed = true;
    this.#chunks = [];
    this.#buffered = 0;
    throw new TunnelProtocolError(message);
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined.subarray(0, n);
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let out: Buffer;
    if (first !== undefined && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.#chunks);
      out = joined.subarray(0, n);
      this.#chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.#buffered -= n;
    return out;
  }
}
