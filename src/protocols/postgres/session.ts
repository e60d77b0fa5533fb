/**
 * One established PostgreSQL session: client <-> gateway <-> target, after both logins. This
 * file holds the pumps and the lifecycle; the parts live beside it:
 * - client-messages.ts: client → target, every statement judged before it is forwarded;
 * - refusals.ts: refusals that travel through the target (poison, skip to Sync);
 * - target-model.ts: a model of the target's state (statements, portals, cursors, what it is
 *   answering), changed only by the target's answers;
 * - results.ts: target → client, results reframed (masking, row limits, refusals) and recorded.
 */
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { MaskRule } from "../../core/decision.js";
import { type GatewayError, isGatewayError } from "../../core/errors.js";
import type { SessionJudge } from "../../core/judge.js";
import type { SessionEndReason, SessionStats } from "../../core/session.js";
import type { PgCatalog } from "./catalog.js";
import type { PgPreviewer } from "./preview.js";
import { ClientMessages } from "./client-messages.js";
import { renderRefusal } from "./errors.js";
import { SessionObjects } from "./object-resolution.js";
import { OutBuffer } from "./out-buffer.js";
import { Refusals } from "./refusals.js";
import type { RuleMasker } from "./result-masking.js";
import { ResultStage } from "./results.js";
import { StatementTimer } from "./statement-timer.js";
import { TargetModel } from "./target-model.js";
import type { UpstreamSession } from "./upstream.js";
import { type Frame, type FrameReader, encodeTerminate, FrontendType as F } from "./wire/index.js";

export interface PgSessionOptions {
  readonly gate: SessionJudge;
  readonly client: Duplex;
  /** The client's reader, possibly holding frames already received. */
  readonly clientReader: FrameReader;
  readonly upstream: UpstreamSession;
  readonly maxRowsPerStatement: number;
  readonly maxValueBytes: number;
  readonly logger: Logger;
  /** The target's catalog (column masking resolves RowDescription origins through it). */
  readonly catalog: PgCatalog;
  /** The masker for a mask rule (built once per rule). */
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  /** Previews of held writes and planner estimates (absent: none). */
  readonly previewer?: PgPreviewer;
  /** Send a CancelRequest for the session's running statement; resolves once the target has taken it. */
  readonly cancelUpstream: () => Promise<void>;
  /**
   * The target session may outlive this client session (pooling): when the client ends with
   * Terminate while nothing is in flight and no transaction is open, the target connection is
   * left open and handed back in the outcome instead of being closed.
   */
  readonly poolable?: boolean;
}

export interface PgSessionOutcome {
  readonly reason: SessionEndReason;
  readonly detail?: string;
  readonly stats: SessionStats;
  /** The target session, idle and detached from this session, when it may be reused. */
  readonly released?: UpstreamSession;
}

export class PgProxySession {
  readonly #o: PgSessionOptions;
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #log: Logger;
  readonly #model = new TargetModel();
  readonly #messages: ClientMessages;
  readonly #results: ResultStage;
  /** The policy's statementTimeout, timed by the gateway (undefined: no limit). */
  readonly #timer: StatementTimer | undefined;

  #bytesFromClient = 0;
  #bytesToClient = 0;
  /** Upstream processing waits (catalog lookup); frames stay in the reader meanwhile. */
  #blocked: Frame | undefined;
  #finished = false;
  /** Set when the client ended cleanly and the target session is handed back for reuse. */
  #release = false;
  readonly #onUpstreamFailure = (e: Error): void => this.#finish("upstream_closed", "the target connection failed", e);
  readonly #onUpstreamClose = (): void => this.#finish("upstream_closed", "the target closed the connection");
  readonly #onUpstreamChunk = (chunk: Buffer): void => this.#onUpstreamData(chunk);
  readonly #onClientDrain = (): void => {
    this.#upstream.resume();
  };
  #resolve!: (o: PgSessionOutcome) => void;
  readonly #done: Promise<PgSessionOutcome>;

  constructor(options: PgSessionOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#upstream = options.upstream.socket;
    this.#log = options.logger;
    const refusals = new Refusals(this.#model);
    this.#messages = new ClientMessages({
      gate: options.gate,
      client: options.client,
      clientReader: options.clientReader,
      model: this.#model,
      refusals,
      logger: options.logger,
      maxValueBytes: options.maxValueBytes,
      catalog: options.catalog,
      flushUpstream: (out) => this.#flushUpstream(out),
      writeUpstream: (b) => {
        if (!this.#finished) this.#upstream.write(b);
      },
      writeClient: (b) => this.#writeClient(b),
      countFromClient: (n) => {
        this.#bytesFromClient += n;
      },
      finished: () => this.#finished,
      objects: new SessionObjects(options.catalog, options.gate.info.attributes["search_path"]),
      ...(options.previewer === undefined ? {} : { previewer: options.previewer }),
      transactionStatus: () => this.#results.txStatus,
    });
    this.#results = new ResultStage(
      {
        gate: options.gate,
        catalog: options.catalog,
        maskerFor: options.maskerFor,
        maxRowsPerStatement: options.maxRowsPerStatement,
        maxValueBytes: options.maxValueBytes,
        logger: options.logger,
        cancelUpstream: options.cancelUpstream,
        unblock: () => this.#unblock(),
      },
      this.#model,
      refusals,
      options.upstream.txStatus,
    );
    const limit = options.gate.statementTimeout;
    this.#timer =
      limit === undefined
        ? undefined
        : new StatementTimer({ limit, model: this.#model, logger: options.logger, cancel: () => this.#results.barrier.arm(options.cancelUpstream) });
    this.#done = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** Serve until either side ends or the session is terminated. Never rejects. */
  run(): Promise<PgSessionOutcome> {
    const { gate } = this.#o;
    const onAbort = (): void => {
      const t = gate.termination;
      this.#terminate(t?.reason ?? "terminated", t?.detail ?? "the session was terminated");
    };
    if (gate.signal.aborted) onAbort();
    else gate.signal.addEventListener("abort", onAbort, { once: true });

    this.#upstream.on("error", this.#onUpstreamFailure);
    this.#upstream.on("close", this.#onUpstreamClose);
    this.#client.on("error", (e) => this.#finish("client_closed", undefined, e));
    this.#client.on("close", () => this.#finish("client_closed"));
    this.#client.on("drain", this.#onClientDrain);

    // Frames the target sent right after ReadyForQuery.
    this.#onUpstreamData(undefined);
    this.#upstream.on("data", this.#onUpstreamChunk);
    this.#upstream.resume();
    void this.#pumpClient();
    return this.#done.finally(() => gate.signal.removeEventListener("abort", onAbort));
  }

  /** The client sent a CancelRequest: a statement waiting for approval is withdrawn. */
  cancelHold(): boolean {
    return this.#messages.cancelHold();
  }

  get transactionStatus(): "I" | "T" | "E" {
    return this.#results.txStatus;
  }

  // ---------------------------------------------------------------- client → target

  async #pumpClient(): Promise<void> {
    const reader = this.#o.clientReader;
    try {
      // Frames that arrived together with the password message are handled first.
      const first = this.#processClientFrames();
      if (!(first instanceof Promise ? await first : first)) return;
      for await (const chunk of this.#client) {
        if (this.#finished) return;
        const buf = chunk as Buffer;
        this.#bytesFromClient += buf.length;
        reader.push(buf);
        const more = this.#processClientFrames();
        if (!(more instanceof Promise ? await more : more)) return;
      }
      this.#finish("client_closed");
    } catch (e) {
      if (this.#finished) return;
      if (isGatewayError(e) && (e.code === "GW_PROTOCOL" || e.code === "GW_LIMIT")) {
        this.#fatalToClient(e.code, e.message);
        this.#finish("error", e.message, e);
        return;
      }
      this.#finish("client_closed", undefined, e);
    }
  }

  /**
   * Process every complete frame buffered from the client. Returns false once the session
   * ended. Synchronous while every frame is (a Query allowed by a cached verdict, the messages
   * that need no judgement); from the first frame that has to wait, the rest goes on in
   * #processClientFramesAsync, in order.
   */
  #processClientFrames(): boolean | Promise<boolean> {
    const reader = this.#o.clientReader;
    const out = new OutBuffer();
    for (let frame = reader.next(); frame !== undefined; frame = reader.next()) {
      if (this.#isFinished()) return false;
      if (frame.type === F.Terminate || (this.#results.barrier.promise !== undefined && frame.type !== F.Sync && frame.type !== F.Flush)) {
        return this.#processClientFramesAsync(out, frame);
      }
      const handled = this.#messages.handle(frame, out);
      if (handled !== undefined) return handled.then(() => this.#processClientFramesAsync(out, undefined));
    }
    const flushed = this.#flushUpstream(out);
    if (flushed !== undefined) return flushed.then(() => !this.#isFinished());
    return !this.#isFinished();
  }

  /** #processClientFrames from `first` (or the reader's next frame) on, awaiting what needs it. */
  async #processClientFramesAsync(out: OutBuffer, first: Frame | undefined): Promise<boolean> {
    const reader = this.#o.clientReader;
    for (let frame = first ?? reader.next(); frame !== undefined; frame = reader.next()) {
      if (this.#finished) return false;
      const barrier = this.#results.barrier.promise;
      if (barrier !== undefined && frame.type !== F.Sync && frame.type !== F.Flush) {
        // A maxRows cancel is in flight: no new work reaches the target until it has landed.
        await this.#flushUpstream(out);
        await barrier;
      }
      if (frame.type === F.Terminate) {
        await this.#flushUpstream(out);
        if (this.#reusable()) this.#release = true;
        else this.#upstream.end(encodeTerminate());
        this.#finish("client_closed");
        return false;
      }
      // Messages that need no judgement are handled synchronously (no promise per frame).
      const handled = this.#messages.handle(frame, out);
      if (handled !== undefined) await handled;
    }
    const flushed = this.#flushUpstream(out);
    if (flushed !== undefined) await flushed;
    return !this.#isFinished();
  }

  /** Write what is collected; a promise only when the target asked to back off (no await per batch otherwise). */
  #flushUpstream(out: OutBuffer): Promise<void> | undefined {
    // After a long wait (a statement held for approval) the session may have ended meanwhile.
    if (out.length === 0 || this.#isFinished()) return undefined;
    const ok = out.flushTo((b) => this.#upstream.write(b));
    this.#timer?.check();
    return !ok && !this.#isFinished() ? waitDrain(this.#upstream) : undefined;
  }

  // ---------------------------------------------------------------- target → client

  #onUpstreamData(chunk: Buffer | undefined): void {
    if (this.#finished) return;
    const reader = this.#o.upstream.reader;
    if (chunk !== undefined) reader.push(chunk);
    if (this.#blocked !== undefined) return; // resumes when the lookup completes
    const out = new OutBuffer();
    try {
      for (let frame = reader.next(); frame !== undefined; frame = reader.next()) {
        const r = this.#results.observe(frame, out);
        if (r === "block") {
          this.#blocked = frame;
          break;
        }
        if (r !== undefined) {
          if (r.length > 0) out.add(r);
        } else out.add(frame.bytes);
      }
    } catch (e) {
      this.#log.error({ err: e }, "malformed or unexpected message from the target");
      if (!this.#settled()) return;
      out.flushTo((b) => this.#writeClient(b));
      this.#fatalToClient("GW_UPSTREAM_UNAVAILABLE", "the target sent a malformed or unexpected message");
      this.#finish("error", "the target sent a malformed or unexpected message", e);
      return;
    }
    this.#timer?.check();
    if (out.length > 0 && (!this.#settled() || !out.flushTo((b) => this.#writeClient(b)))) this.#upstream.pause();
    if (this.#blocked !== undefined) this.#upstream.pause();
  }

  /** Continue after a lookup: re-observe the held frame, then carry on with the reader. */
  #unblock(): void {
    const held = this.#blocked;
    this.#blocked = undefined;
    if (held === undefined || this.#finished) return;
    const out = new OutBuffer();
    const r = this.#results.observe(held, out);
    if (r === "block") {
      // The lookup failed and the result was refused meanwhile, or new OIDs appeared: try again.
      this.#blocked = held;
      return;
    }
    if (r !== undefined) {
      if (r.length > 0) out.add(r);
    } else out.add(held.bytes);
    if (!this.#settled()) return;
    out.flushTo((b) => this.#writeClient(b));
    this.#onUpstreamData(undefined);
    if (!this.#isBlockedOrFinished()) this.#upstream.resume();
  }

  #isFinished(): boolean {
    return this.#finished;
  }

  /** Read through a method: callbacks may have changed these since the last check. */
  #isBlockedOrFinished(): boolean {
    return this.#blocked !== undefined || this.#finished;
  }

  /**
   * Before anything from the target reaches the client: the audit records of the statements
   * forwarded so far are made durable (they may have been queued, not written, when the
   * statements were forwarded). If the audit log failed, the result is withheld and the
   * session ends (fail closed). Returns false then.
   */
  #settled(): boolean {
    if (this.#o.gate.settle === undefined || this.#o.gate.settle()) return true;
    this.#fatalToClient("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable, so the result is withheld");
    this.#finish("error", "the audit log failed before a result could be released");
    return false;
  }

  #writeClient(b: Buffer): boolean {
    this.#bytesToClient += b.length;
    return this.#client.write(b);
  }

  // ---------------------------------------------------------------- ending

  #fatalToClient(code: GatewayError["code"], message: string): void {
    if (this.#client.writableEnded || this.#client.destroyed) return;
    this.#writeClient(renderRefusal({ type: "deny", code, message }, "FATAL"));
  }

  #terminate(reason: SessionEndReason, detail: string): void {
    if (this.#finished) return;
    // Closing the connection does not stop what the target is running (PostgreSQL notices a
    // gone client only when it next reads or writes): a statement in flight is cancelled first.
    if (!this.#model.idle) void this.#o.cancelUpstream();
    this.#fatalToClient("GW_SESSION_TERMINATED", `session ended: ${detail}`);
    this.#finish(reason, detail);
  }

  /**
   * Whether the target session is idle and clean enough to hand back for reuse: no result
   * pending, no transaction open, no statement cancelled or waiting, no unread target bytes.
   * (Session state that survives — settings, prepared statements, LISTEN, temp tables — is
   * what the pool's DISCARD ALL resets.)
   */
  #reusable(): boolean {
    return (
      this.#o.poolable === true &&
      this.#model.idle &&
      this.#results.txStatus === "I" &&
      this.#blocked === undefined &&
      this.#results.barrier.promise === undefined &&
      this.#o.upstream.reader.buffered === 0 &&
      !this.#upstream.destroyed &&
      this.#upstream.writable
    );
  }

  #finish(reason: SessionEndReason, detail?: string, cause?: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#timer?.stop();
    this.#model.dispose();
    if (cause !== undefined) this.#log.debug({ err: cause, reason }, "session ending");
    if (this.#release) {
      this.#upstream.off("error", this.#onUpstreamFailure);
      this.#upstream.off("close", this.#onUpstreamClose);
      this.#upstream.off("data", this.#onUpstreamChunk);
      this.#client.off("drain", this.#onClientDrain);
      this.#upstream.pause();
    } else if (!this.#upstream.destroyed) {
      this.#upstream.end(encodeTerminate());
      setTimeout(() => this.#upstream.destroy(), 2000).unref();
    }
    if (!this.#client.destroyed) {
      this.#client.end();
      setTimeout(() => this.#client.destroy(), 2000).unref();
    }
    this.#resolve({
      reason,
      ...(detail === undefined ? {} : { detail }),
      stats: { statements: this.#messages.statementsJudged, bytesFromClient: this.#bytesFromClient, bytesToClient: this.#bytesToClient },
      ...(this.#release ? { released: this.#o.upstream } : {}),
    });
  }
}

function waitDrain(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}
