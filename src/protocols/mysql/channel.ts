/**
 * One side of a MySQL conversation as packets: pull the next logical packet (with a deadline),
 * write payloads framed with the right sequence id. Reading pauses the socket when too much
 * is buffered, so a fast target cannot fill the gateway's memory while the client is slow.
 */
import type { Duplex } from "node:stream";
import { GatewayError } from "../../core/errors.js";
import { PacketReader, framePacket, type Packet, type PacketLimits } from "./wire/packets.js";

const HIGH_WATER = 1 << 20;

export class PacketChannel {
  readonly reader: PacketReader;
  socket: Duplex;
  #waiter: (() => void) | undefined;
  #closed = false;
  #error: GatewayError | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** The sequence id the next packet of the current exchange takes (after the last `write`). */
  nextSeq = 0;

  readonly #onData = (b: Buffer): void => {
    this.bytesIn += b.length;
    this.reader.push(b);
    if (this.reader.buffered > HIGH_WATER) this.socket.pause();
    this.#wake();
  };
  readonly #onClose = (): void => {
    this.#closed = true;
    this.#wake();
  };

  constructor(socket: Duplex, limits: PacketLimits) {
    this.reader = new PacketReader(limits);
    this.socket = socket;
    this.#attach(socket);
  }

  #attach(s: Duplex): void {
    s.on("data", this.#onData);
    s.on("end", this.#onClose);
    s.on("close", this.#onClose);
    s.on("error", this.#onClose);
  }

  /** Stop reading the socket (before a TLS upgrade hands it to a TLSSocket). */
  detach(): void {
    this.socket.off("data", this.#onData);
    this.socket.off("end", this.#onClose);
    this.socket.off("close", this.#onClose);
    this.socket.off("error", this.#onClose);
  }

  /** Read from another socket from now on (the TLS socket wrapping the old one). */
  replaceSocket(s: Duplex): void {
    this.detach();
    this.socket = s;
    this.#closed = false;
    this.#attach(s);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The next packet; undefined when the peer closed. Throws GatewayError on a framing error or timeout. */
  async next(timeoutMs?: number, signal?: AbortSignal): Promise<Packet | undefined> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      let p: Packet | undefined;
      try {
        p = this.reader.next();
      } catch (e) {
        this.#error = e instanceof GatewayError ? e : new GatewayError("GW_PROTOCOL", "malformed packet", { cause: e });
        throw this.#error;
      }
      if (p !== undefined) {
        if (this.socket.isPaused() && this.reader.buffered < HIGH_WATER / 2) this.socket.resume();
        return p;
      }
      if (this.#closed) return undefined;
      if (this.socket.isPaused()) this.socket.resume();
      if (signal?.aborted === true) throw new GatewayError("GW_SESSION_TERMINATED", "the session was ended");
      const timedOut = await new Promise<boolean>((resolve) => {
        const t = timeoutMs === undefined ? undefined : setTimeout(() => resolve(true), timeoutMs);
        const onAbort = (): void => this.#wake();
        signal?.addEventListener("abort", onAbort, { once: true });
        this.#waiter = () => {
          if (t !== undefined) clearTimeout(t);
          signal?.removeEventListener("abort", onAbort);
          resolve(false);
        };
      });
      if (timedOut) {
        this.#waiter = undefined;
        throw new GatewayError("GW_LIMIT", "timed out waiting for a packet");
      }
    }
  }

  /** Write one logical payload with sequence id `seq`; returns the next sequence id. */
  write(payload: Buffer, seq: number): number {
    const { bytes, nextSeq } = framePacket(payload, seq);
    this.writeRaw(bytes);
    this.nextSeq = nextSeq;
    return nextSeq;
  }

  writeRaw(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    this.bytesOut += bytes.length;
    this.socket.write(bytes);
  }

  /** Resolves once the socket's write buffer has drained below its high-water mark. */
  async drained(): Promise<void> {
    const s = this.socket;
    if (s.destroyed || !s.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        s.off("drain", done);
        s.off("close", done);
        resolve();
      };
      s.once("drain", done);
      s.once("close", done);
    });
  }
}
