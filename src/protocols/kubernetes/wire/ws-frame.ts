/**
 * RFC 6455 frames read in passing: the gateway relays a WebSocket it does not end (the
 * port-forward tunnel, whose subprotocol `SPDY/3.1+portforward.k8s.io` the `ws` library will
 * not negotiate) byte for byte, and reads each frame to look inside (unmasking a copy).
 *
 * Pure: no I/O. Bounded: a frame longer than MAX_WS_FRAME is refused; extensions (RSV bits)
 * are refused, as the gateway never lets any be negotiated.
 */
import { GatewayError } from "../../../core/errors.js";

export const WS_CONTINUATION = 0x0;
export const WS_TEXT = 0x1;
export const WS_BINARY = 0x2;
export const WS_CLOSE = 0x8;
export const WS_PING = 0x9;
export const WS_PONG = 0xa;
/** The largest frame read (gorilla/websocket, client-go's library, writes far smaller ones). */
export const MAX_WS_FRAME = 16 * 1024 * 1024;

export interface WsFrame {
  readonly fin: boolean;
  readonly opcode: number;
  /** The payload, unmasked. */
  readonly payload: Buffer;
  /** The frame's bytes as received (masked when the client sent it). */
  readonly raw: Buffer;
}

export class WsFrameReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): WsFrame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: WsFrame[] = [];
    for (;;) {
      const f = this.#next();
      if (f === undefined) return out;
      out.push(f);
    }
  }

  #next(): WsFrame | undefined {
    const b = this.#buf;
    if (b.length < 2) return undefined;
    const b0 = b[0] ?? 0;
    const b1 = b[1] ?? 0;
    if ((b0 & 0x70) !== 0) throw new GatewayError("GW_PROTOCOL", "a WebSocket extension was used that the gateway did not negotiate");
    let len = b1 & 0x7f;
    let at = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(MAX_WS_FRAME)) throw new GatewayError("GW_LIMIT", `a WebSocket frame is longer than ${MAX_WS_FRAME} bytes`);
      len = Number(big);
      at = 10;
    }
    if (len > MAX_WS_FRAME) throw new GatewayError("GW_LIMIT", `a WebSocket frame is longer than ${MAX_WS_FRAME} bytes`);
    const masked = (b1 & 0x80) !== 0;
    const keyAt = at;
    if (masked) at += 4;
    if (b.length < at + len) return undefined;
    const raw = b.subarray(0, at + len);
    this.#buf = b.subarray(at + len);
    let payload = raw.subarray(at);
    if (masked) {
      const key = raw.subarray(keyAt, keyAt + 4);
      payload = Buffer.from(payload);
      for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (key[i & 3] ?? 0);
    }
    return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload, raw };
  }
}

/** An unmasked frame (server → client). */
export function wsFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126) {
    head[0] = 0x80 | opcode;
    if (len < 65536) {
      head[1] = 126;
      head.writeUInt16BE(len, 2);
    } else {
      head[1] = 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
  }
  return Buffer.concat([head, payload]);
}
