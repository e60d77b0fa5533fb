/**
 * Sequential frame reads for the handshake phases (startup, authentication, upstream login),
 * where the code reads straight down: `await framed.read()`. Once a session is established
 * the proxy loop takes over the same FrameReader (with whatever it already buffered).
 */
import type { Duplex } from "node:stream";
import { GatewayError } from "../../core/errors.js";
import type { Frame, FrameReader } from "./wire/index.js";

export class FramedSocket {
  socket: Duplex;
  readonly reader: FrameReader;
  #waiter: { resolve: (f: Frame) => void; reject: (e: unknown) => void } | undefined;
  #error: unknown;
  #closed = false;
  readonly #onData = (chunk: Buffer): void => {
    this.reader.push(chunk);
    this.#deliver();
  };
  readonly #onEnd = (): void => {
    this.#closed = true;
    this.#deliver();
  };
  readonly #onError = (e: unknown): void => {
    this.#error ??= e;
    this.#deliver();
  };

  constructor(socket: Duplex, reader: FrameReader) {
    this.socket = socket;
    this.reader = reader;
    this.#attach();
  }

  #attach(): void {
    this.socket.on("data", this.#onData);
    this.socket.on("end", this.#onEnd);
    this.socket.on("close", this.#onEnd);
    this.socket.on("error", this.#onError);
  }

  #deliver(): void {
    const w = this.#waiter;
    if (w === undefined) return;
    let frame: Frame | undefined;
    try {
      frame = this.reader.next();
    } catch (e) {
      this.#waiter = undefined;
      w.reject(e);
      return;
    }
    if (frame !== undefined) {
      this.#waiter = undefined;
      this.socket.pause();
      w.resolve(frame);
      return;
    }
    if (this.#error !== undefined || this.#closed) {
      this.#waiter = undefined;
      w.reject(new GatewayError("GW_PROTOCOL", "connection closed during the handshake", { cause: this.#error }));
    }
  }

  /** The next whole frame, or a rejection on close, error, malformed frame or timeout. */
  read(timeoutMs: number): Promise<Frame> {
    if (this.#waiter !== undefined) return Promise.reject(new GatewayError("GW_INTERNAL", "concurrent read"));
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new GatewayError("GW_PROTOCOL", `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new GatewayError("GW_PROTOCOL", "read failed", { cause: e }));
        },
      };
      this.#deliver();
      // #deliver() may have settled the read synchronously (a frame was already buffered).
      if ((this.#waiter as unknown) !== undefined) this.socket.resume();
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Stop listening (before a TLS upgrade or before the proxy loop takes over). */
  detach(): void {
    this.socket.off("data", this.#onData);
    this.socket.off("end", this.#onEnd);
    this.socket.off("close", this.#onEnd);
    this.socket.off("error", this.#onError);
    this.socket.pause();
  }

  /** Continue reading from a new stream (the TLS socket wrapping the old one). */
  replace(socket: Duplex): void {
    this.detach();
    this.socket = socket;
    this.#closed = false;
    this.#error = undefined;
    this.#attach();
  }
}
