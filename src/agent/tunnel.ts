/**
 * One agent tunnel: many byte streams multiplexed over one message transport (a WebSocket),
 * with per-stream credit-based flow control (a sender never has more than `window` unacknowledged
 * bytes in flight per stream, so a slow reader bounds the memory both ends hold for it), and
 * heartbeats (PING every `heartbeatMs`; no frame for `deadAfterMs` = the tunnel is dead).
 * The gateway opens streams; the agent accepts or refuses them. Used by both ends.
 */
import { randomBytes } from "node:crypto";
import { Duplex } from "node:stream";
import { closeReasonSchema, parseJsonWith, type CloseReason, type OpenSpec } from "./spec.js";
import { FrameDecoder, MAX_DATA_PAYLOAD, TunnelProtocolError, encodeFrame, type TunnelFrame } from "./wire/frames.js";

export interface TunnelTransport {
  send(bytes: Buffer): void;
  /** End the transport (the tunnel calls this once, on protocol errors and on close). */
  close(why: string): void;
}

export interface TunnelOptions {
  readonly role: "gateway" | "agent";
  /** Per-stream receive window in bytes. */
  readonly window?: number;
  readonly heartbeatMs?: number;
  readonly deadAfterMs?: number;
  readonly maxStreams?: number;
  /** Agent side: a stream the gateway asks for. Call `accept()` once dialed, or `refuse()`. */
  readonly onOpen?: (stream: TunnelStream, spec: Buffer) => void;
  /** Called once when the tunnel ends (transport closed, protocol error, heartbeat timeout). */
  readonly onClosed?: (why: string) => void;
}

export const DEFAULT_WINDOW = 256 * 1024;
/** Send credit back once this much was consumed (fewer, larger WINDOW frames). */
const CREDIT_THRESHOLD = 16 * 1024;

/** A stream ended by the other side with a reason (or by the tunnel's loss). */
export class StreamClosedError extends Error {
  override readonly name = "StreamClosedError";
  constructor(readonly reason: CloseReason | undefined, message: string) {
    super(message);
  }
}

export class TunnelStream extends Duplex {
  readonly id: number;
  readonly #tunnel: Tunnel;
  #sendWindow: number;
  #recvAvailable: number;
  #pendingCredit = 0;
  #pendingWrite: { chunk: Buffer; cb: (e?: Error | null) => void } | undefined;
  #remoteClosed = false;
  #accepted = false;

  constructor(tunnel: Tunnel, id: number, window: number) {
    super({ allowHalfOpen: true });
    this.#tunnel = tunnel;
    this.id = id;
    this.#sendWindow = window;
    this.#recvAvailable = window;
  }

  get accepted(): boolean {
    return this.#accepted;
  }

  /** Agent side: the target is connected; data may flow. */
  accept(): void {
    if (this.#accepted || this.destroyed) return;
    this.#accepted = true;
    this.#tunnel.sendFrame({ type: "accept", stream: this.id });
  }

  /** Agent side: the stream could not be opened. */
  refuse(reason: CloseReason): void {
    this.#tunnel.sendFrame({ type: "close", stream: this.id, reason: Buffer.from(JSON.stringify(reason)) });
    this.#remoteClosed = true;
    this.destroy();
  }

  markAccepted(): void {
    this.#accepted = true;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#pendingWrite = { chunk, cb };
    this.#pump();
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.#remoteClosed) this.#tunnel.sendFrame({ type: "end", stream: this.id });
    cb();
  }

  override _read(): void {
    this.#flushCredit(true);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.#remoteClosed) {
      this.#remoteClosed = true;
      this.#tunnel.sendFrame({ type: "close", stream: this.id, reason: Buffer.alloc(0) });
    }
    this.#tunnel.forget(this.id);
    const pending = this.#pendingWrite;
    this.#pendingWrite = undefined;
    pending?.cb(err ?? new Error("stream closed"));
    cb(err);
  }

  /** @internal frames for this stream, from the tunnel. */
  onFrame(f: TunnelFrame): void {
    switch (f.type) {
      case "data":
        if (f.data.length > this.#recvAvailable) {
          this.#tunnel.protocolError(`stream ${this.id}: data beyond the granted window`);
          return;
        }
        this.#recvAvailable -= f.data.length;
        this.#pendingCredit += f.data.length;
        if (this.push(f.data)) this.#flushCredit(false);
        return;
      case "end":
        this.push(null);
        return;
      case "window":
        this.#sendWindow += f.credit;
        if (this.#sendWindow > 0x7fff_ffff) {
          this.#tunnel.protocolError(`stream ${this.id}: window overflow`);
          return;
        }
        this.#pump();
        return;
      case "close": {
        this.#remoteClosed = true;
        const reason = f.reason.length === 0 ? undefined : parseJsonWith(closeReasonSchema, f.reason);
        this.#end(reason === undefined ? undefined : new StreamClosedError(reason, reason.message));
        return;
      }
      case "accept":
      case "open":
      case "ping":
      case "pong":
        // Routed elsewhere by the tunnel.
        return;
    }
  }

  /** @internal the tunnel is gone. */
  lost(why: string): void {
    this.#remoteClosed = true;
    this.#end(new StreamClosedError(undefined, why));
  }

  /** Destroy with the error only when someone listens for it: an unheard 'error' would crash the process. */
  #end(e: StreamClosedError | undefined): void {
    this.destroy(e !== undefined && this.listenerCount("error") > 0 ? e : undefined);
  }

  #pump(): void {
    const p = this.#pendingWrite;
    if (p === undefined) return;
    while (p.chunk.length > 0 && this.#sendWindow > 0) {
      const n = Math.min(p.chunk.length, this.#sendWindow, MAX_DATA_PAYLOAD);
      this.#tunnel.sendFrame({ type: "data", stream: this.id, data: p.chunk.subarray(0, n) });
      p.chunk = p.chunk.subarray(n);
      this.#sendWindow -= n;
    }
    if (p.chunk.length === 0) {
      this.#pendingWrite = undefined;
      p.cb();
    }
  }

  #flushCredit(force: boolean): void {
    if (this.#pendingCredit === 0 || this.destroyed) return;
    if (!force && this.#pendingCredit < CREDIT_THRESHOLD) return;
    const credit = this.#pendingCredit;
    this.#pendingCredit = 0;
    this.#recvAvailable += credit;
    this.#tunnel.sendFrame({ type: "window", stream: this.id, credit });
  }
}

export class Tunnel {
  readonly #transport: TunnelTransport;
  readonly #opts: TunnelOptions;
  readonly #decoder = new FrameDecoder();
  readonly #streams = new Map<number, TunnelStream>();
  readonly #pendingOpens = new Map<number, { resolve: (s: TunnelStream) => void; reject: (e: Error) => void }>();
  readonly #window: number;
  readonly #heartbeat: NodeJS.Timeout;
  #nextId = 1;
  #closed = false;
  lastSeen = new Date();
  /** Streams opened over the tunnel's life. */
  opened = 0;

  constructor(transport: TunnelTransport, opts: TunnelOptions) {
    this.#transport = transport;
    this.#opts = opts;
    this.#window = opts.window ?? DEFAULT_WINDOW;
    const every = opts.heartbeatMs ?? 10_000;
    const deadAfter = opts.deadAfterMs ?? every * 3;
    this.#heartbeat = setInterval(() => {
      if (Date.now() - this.lastSeen.getTime() > deadAfter) {
        this.close(`no heartbeat for ${deadAfter} ms`);
        return;
      }
      this.sendFrame({ type: "ping", nonce: randomBytes(8) });
    }, every);
    this.#heartbeat.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Bytes from the transport (any split). */
  receive(bytes: Buffer): void {
    if (this.#closed) return;
    this.lastSeen = new Date();
    try {
      this.#decoder.push(bytes);
      for (let f = this.#decoder.next(); f !== undefined; f = this.#decoder.next()) this.#route(f);
    } catch (e) {
      if (e instanceof TunnelProtocolError) this.protocolError(e.message);
      else throw e;
    }
  }

  /** Gateway side: open a stream to `spec`; resolves once the agent has connected it. */
  open(spec: OpenSpec, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<TunnelStream> {
    if (this.#closed) return Promise.reject(new StreamClosedError(undefined, "the agent tunnel is closed"));
    if (this.#streams.size >= (this.#opts.maxStreams ?? 1024)) return Promise.reject(new StreamClosedError(undefined, "the agent tunnel has too many streams"));
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new TunnelStream(this, id, this.#window);
    this.#streams.set(id, stream);
    this.opened++;
    return new Promise((resolve, reject) => {
      const fail = (e: Error): void => {
        cleanup();
        stream.destroy();
        reject(e);
      };
      const timer = setTimeout(() => fail(new StreamClosedError(undefined, `the agent did not connect the target within ${options.timeoutMs} ms`)), options.timeoutMs);
      const onAbort = (): void => fail(new StreamClosedError(undefined, "aborted"));
      const onClose = (): void => fail(new StreamClosedError(undefined, "the agent closed the stream"));
      const onError = (e: Error): void => fail(e);
      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        stream.off("error", onError);
        stream.off("close", onClose);
        this.#pendingOpens.delete(id);
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      stream.once("error", onError);
      stream.once("close", onClose);
      this.#pendingOpens.set(id, {
        resolve: (s) => {
          cleanup();
          resolve(s);
        },
        reject: fail,
      });
      this.sendFrame({ type: "open", stream: id, spec: Buffer.from(JSON.stringify(spec)) });
    });
  }

  /** @internal */
  sendFrame(f: TunnelFrame): void {
    if (this.#closed) return;
    this.#transport.send(encodeFrame(f));
  }

  /** @internal */
  forget(id: number): void {
    this.#streams.delete(id);
  }

  /** @internal a violation by the peer: the whole tunnel ends (it cannot be trusted to frame). */
  protocolError(message: string): void {
    this.close(`protocol error: ${message}`);
  }

  close(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const s of [...this.#streams.values()]) s.lost(`the agent tunnel closed (${why})`);
    this.#streams.clear();
    this.#transport.close(why);
    this.#opts.onClosed?.(why);
  }

  #route(f: TunnelFrame): void {
    switch (f.type) {
      case "ping":
        this.sendFrame({ type: "pong", nonce: f.nonce });
        return;
      case "pong":
        return;
      case "open": {
        if (this.#opts.role !== "agent" || this.#opts.onOpen === undefined) return this.protocolError("unexpected OPEN");
        if (this.#streams.has(f.stream) || f.stream % 2 === 0) return this.protocolError(`OPEN of stream ${f.stream} in use or invalid`);
        const stream = new TunnelStream(this, f.stream, this.#window);
        this.#streams.set(f.stream, stream);
        this.opened++;
        if (this.#streams.size > (this.#opts.maxStreams ?? 1024)) {
          stream.refuse({ code: "refused", message: "the agent has too many streams" });
          return;
        }
        this.#opts.onOpen(stream, f.spec);
        return;
      }
      case "accept": {
        const stream = this.#streams.get(f.stream);
        const pending = this.#pendingOpens.get(f.stream);
        if (stream === undefined || pending === undefined) return; // raced with a local close
        stream.markAccepted();
        pending.resolve(stream);
        return;
      }
      case "data":
      case "end":
      case "window":
      case "close": {
        const stream = this.#streams.get(f.stream);
        // Frames for a stream this side already closed are expected while the CLOSE is in flight.
        if (stream === undefined) return;
        if (!stream.accepted && f.type !== "close" && this.#opts.role === "gateway") return this.protocolError(`${f.type} before ACCEPT`);
        stream.onFrame(f);
        return;
      }
    }
  }
}
