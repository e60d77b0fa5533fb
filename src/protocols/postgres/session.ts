/**
 * One established PostgreSQL session: client <-> gateway <-> target, after both logins.
 *
 * Client → target: every Query, Parse and FunctionCall is turned into a `db.query` event and
 * judged by the pipeline before anything of it is forwarded; other messages are forwarded as
 * the original bytes. Target → client: forwarded as the original bytes, observed on the way
 * to record results (row counts, the first rows, errors).
 *
 * A denied statement is replaced by a "poison" statement that the target rejects with a
 * syntax error; the target's error is swapped for the gateway's own ErrorResponse. Because
 * the refusal travels through the target, it keeps PostgreSQL's own semantics exactly:
 * responses stay in order with pipelined messages, an explicit transaction becomes failed
 * (25P02 until ROLLBACK) as with any error, the rest of an extended-protocol batch is skipped
 * until Sync, and a prepared statement whose Parse was denied does not exist upstream, so a
 * later Bind/Execute of it cannot run. (protocol-flow: "Extended Query", error handling.)
 */
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { DenyDecision } from "../../core/decision.js";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import type { DbQueryEvent, DbQueryStage } from "../../core/events.js";
import type { SessionEndReason } from "../../core/session.js";
import type { SessionGate, SessionStats } from "../../policy/pipeline.js";
import { sqlstateFor } from "./errors.js";
import { OutBuffer } from "./out-buffer.js";
import type { UpstreamSession } from "./upstream.js";
import {
  type Frame,
  type FrameReader,
  decodeBind,
  decodeClose,
  decodeCommandComplete,
  decodeDataRow,
  decodeErrorOrNotice,
  decodeExecute,
  decodeParse,
  decodeQuery,
  decodeReadyForQuery,
  decodeRowDescription,
  encodeErrorResponse,
  encodeParse,
  encodeQuery,
  encodeTerminate,
} from "./wire/index.js";

// Frontend message types (protocol-message-formats).
const F_QUERY = 0x51; // 'Q'
const F_PARSE = 0x50; // 'P'
const F_BIND = 0x42; // 'B'
const F_EXECUTE = 0x45; // 'E'
const F_DESCRIBE = 0x44; // 'D'
const F_CLOSE = 0x43; // 'C'
const F_SYNC = 0x53; // 'S'
const F_FLUSH = 0x48; // 'H'
const F_TERMINATE = 0x58; // 'X'
const F_FUNCTION_CALL = 0x46; // 'F'
const F_COPY_DATA = 0x64; // 'd'
const F_COPY_DONE = 0x63; // 'c'
const F_COPY_FAIL = 0x66; // 'f'
const F_PASSWORD = 0x70; // 'p' (also SASL/GSS responses)

// Backend message types.
const B_ROW_DESCRIPTION = 0x54; // 'T'
const B_DATA_ROW = 0x44; // 'D'
const B_COMMAND_COMPLETE = 0x43; // 'C'
const B_EMPTY_QUERY = 0x49; // 'I'
const B_PORTAL_SUSPENDED = 0x73; // 's'
const B_ERROR = 0x45; // 'E'
const B_READY = 0x5a; // 'Z'
const B_COPY_OUT = 0x48; // 'H'
const B_COPY_DATA = 0x64; // 'd'

const POISON_PREFIX = "airlock_denied_";
const POISON_RE = /airlock_denied_([0-9a-f]{16})/;

export interface PgSessionOptions {
  readonly gate: SessionGate;
  readonly client: Duplex;
  /** The client's reader, possibly holding frames already received. */
  readonly clientReader: FrameReader;
  readonly upstream: UpstreamSession;
  readonly maxRowsPerStatement: number;
  readonly maxValueBytes: number;
  readonly logger: Logger;
}

/** A statement execution whose results are still arriving (or a Sync marker). */
type Pending =
  | { kind: "simple"; seq: number; denied: boolean; started: number; result: ResultAcc }
  | { kind: "execute"; seq: number; params: readonly (string | null)[] | undefined; started: number; result: ResultAcc }
  | { kind: "sync" };

interface ResultAcc {
  rowCount: number;
  rows: (string | null)[][];
  truncated: boolean;
}

interface StatementRef {
  readonly seq: number;
}

interface PortalRef {
  readonly seq: number;
  readonly params: readonly (string | null)[];
}

export interface PgSessionOutcome {
  readonly reason: SessionEndReason;
  readonly detail?: string;
  readonly stats: SessionStats;
}

export class PgProxySession {
  readonly #o: PgSessionOptions;
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #log: Logger;

  #seq = 0;
  #statementsJudged = 0;
  #bytesFromClient = 0;
  #bytesToClient = 0;

  /** Pending executions in the order the target will answer them. */
  readonly #pending: Pending[] = [];
  #pendingHead = 0;
  readonly #statements = new Map<string, StatementRef>();
  readonly #portals = new Map<string, PortalRef>();
  /** Poison nonces awaiting their error from the target → the ErrorResponse to send instead. */
  readonly #poisons = new Map<string, Buffer>();
  /** After a denied Parse: drop the client's messages until Sync, as the server would. */
  #skipUntilSync = false;
  #columns: string[] | undefined;
  #formats: number[] | undefined;
  #txStatus: "I" | "T" | "E";

  #finished = false;
  #resolve!: (o: PgSessionOutcome) => void;
  readonly #done: Promise<PgSessionOutcome>;

  constructor(options: PgSessionOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#upstream = options.upstream.socket;
    this.#log = options.logger;
    this.#txStatus = options.upstream.txStatus;
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

    this.#upstream.on("error", (e) => this.#finish("upstream_closed", "the target connection failed", e));
    this.#upstream.on("close", () => this.#finish("upstream_closed", "the target closed the connection"));
    this.#client.on("error", (e) => this.#finish("client_closed", undefined, e));
    this.#client.on("close", () => this.#finish("client_closed"));
    this.#client.on("drain", () => this.#upstream.resume());

    // Frames the target sent right after ReadyForQuery.
    this.#onUpstreamData(undefined);
    this.#upstream.on("data", (chunk: Buffer) => this.#onUpstreamData(chunk));
    this.#upstream.resume();
    void this.#pumpClient();
    return this.#done.finally(() => gate.signal.removeEventListener("abort", onAbort));
  }

  // ---------------------------------------------------------------- client → target

  async #pumpClient(): Promise<void> {
    const reader = this.#o.clientReader;
    try {
      // Frames that arrived together with the password message are handled first.
      if (!(await this.#processClientFrames())) return;
      for await (const chunk of this.#client) {
        if (this.#finished) return;
        const buf = chunk as Buffer;
        this.#bytesFromClient += buf.length;
        reader.push(buf);
        if (!(await this.#processClientFrames())) return;
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

  /** Process every complete frame buffered from the client. Returns false once the session ended. */
  async #processClientFrames(): Promise<boolean> {
    const reader = this.#o.clientReader;
    const out = new OutBuffer();
    for (let frame = reader.next(); frame !== undefined; frame = reader.next()) {
      if (this.#finished) return false;
      switch (frame.type) {
        case F_QUERY:
          await this.#flushUpstream(out);
          await this.#onQuery(frame, out);
          break;
        case F_PARSE:
          await this.#flushUpstream(out);
          await this.#onParse(frame, out);
          break;
        case F_FUNCTION_CALL:
          await this.#flushUpstream(out);
          await this.#onFunctionCall(out);
          break;
        case F_BIND:
          if (this.#skipUntilSync) break;
          this.#onBind(frame);
          out.add(frame.bytes);
          break;
        case F_EXECUTE:
          if (this.#skipUntilSync) break;
          this.#onExecute(frame);
          out.add(frame.bytes);
          break;
        case F_CLOSE:
          if (this.#skipUntilSync) break;
          this.#onClose(frame);
          out.add(frame.bytes);
          break;
        case F_DESCRIBE:
        case F_COPY_DATA:
        case F_COPY_DONE:
        case F_COPY_FAIL:
        case F_PASSWORD:
          if (this.#skipUntilSync) break;
          out.add(frame.bytes);
          break;
        case F_SYNC:
          this.#skipUntilSync = false;
          this.#pending.push({ kind: "sync" });
          out.add(frame.bytes);
          break;
        case F_FLUSH:
          out.add(frame.bytes);
          break;
        case F_TERMINATE:
          await this.#flushUpstream(out);
          this.#upstream.end(encodeTerminate());
          this.#finish("client_closed");
          return false;
        default:
          throw new GatewayError("GW_PROTOCOL", `unexpected message type 0x${frame.type.toString(16)} from the client`);
      }
    }
    await this.#flushUpstream(out);
    return !this.#finished;
  }

  async #flushUpstream(out: OutBuffer): Promise<void> {
    if (out.length === 0) return;
    const ok = out.flushTo((b) => this.#upstream.write(b));
    if (!ok && !this.#finished) await waitDrain(this.#upstream);
  }

  async #judge(stage: DbQueryStage, sql: string, statementName?: string): Promise<{ seq: number; denial: DenyDecision | undefined }> {
    const seq = ++this.#seq;
    this.#statementsJudged++;
    const event: DbQueryEvent = {
      type: "db.query",
      session: this.#o.gate.info,
      seq,
      stage,
      sql,
      ...(statementName === undefined ? {} : { statementName }),
    };
    const decision = await this.#o.gate.judge(event);
    return { seq, denial: decision.type === "deny" ? decision : undefined };
  }

  async #onQuery(frame: Frame, out: OutBuffer): Promise<void> {
    const { sql } = decodeQuery(frame.body);
    const { seq, denial } = await this.#judge("simple", sql);
    const started = performance.now();
    if (denial === undefined) {
      this.#pending.push({ kind: "simple", seq, denied: false, started, result: newResult() });
      out.add(frame.bytes);
      return;
    }
    this.#pending.push({ kind: "simple", seq, denied: true, started, result: newResult() });
    out.add(encodeQuery(this.#poison(denial)));
  }

  async #onParse(frame: Frame, out: OutBuffer): Promise<void> {
    if (this.#skipUntilSync) return;
    const parse = decodeParse(frame.body);
    const { seq, denial } = await this.#judge("parse", parse.sql, parse.name);
    if (denial === undefined) {
      this.#statements.set(parse.name, { seq });
      out.add(frame.bytes);
      return;
    }
    this.#statements.delete(parse.name);
    const poison = this.#poison(denial);
    // A named poison: its Parse fails, so it never replaces the client's unnamed statement.
    out.add(encodeParse(poison, poison));
    this.#skipUntilSync = true;
  }

  async #onFunctionCall(out: OutBuffer): Promise<void> {
    if (this.#skipUntilSync) return;
    // The fastpath interface calls a function by OID with no SQL to inspect (e.g. lo_import):
    // always refused. A poison Query yields the same ErrorResponse + ReadyForQuery shape.
    const { seq } = await this.#judge("function_call", "<fastpath function call>");
    const denial: DenyDecision = {
      type: "deny",
      code: "GW_POLICY_DENIED",
      message: "the fastpath function-call interface is not allowed through the gateway",
      rule: "no-fastpath",
    };
    this.#pending.push({ kind: "simple", seq, denied: true, started: performance.now(), result: newResult() });
    out.add(encodeQuery(this.#poison(denial)));
  }

  #onBind(frame: Frame): void {
    const bind = decodeBind(frame.body);
    const stmt = this.#statements.get(bind.statement);
    const params = bind.params.map((v, i) => {
      if (v === null) return null;
      const fmt = bind.paramFormats.length === 1 ? bind.paramFormats[0] : bind.paramFormats[i];
      return renderValue(v, fmt ?? 0, this.#o.maxValueBytes);
    });
    this.#portals.set(bind.portal, { seq: stmt?.seq ?? 0, params });
  }

  #onExecute(frame: Frame): void {
    const exec = decodeExecute(frame.body);
    const portal = this.#portals.get(exec.portal);
    this.#pending.push({
      kind: "execute",
      seq: portal?.seq ?? 0,
      params: portal?.params,
      started: performance.now(),
      result: newResult(),
    });
  }

  #onClose(frame: Frame): void {
    const c = decodeClose(frame.body);
    if (c.kind === "S") this.#statements.delete(c.name);
    else this.#portals.delete(c.name);
  }

  #poison(denial: DenyDecision): string {
    const nonce = randomBytes(8).toString("hex");
    const message = denial.rule === undefined ? `airlock: ${denial.message}` : `airlock: ${denial.message} (rule: ${denial.rule})`;
    this.#poisons.set(nonce, encodeErrorResponse({ severity: "ERROR", code: sqlstateFor(denial.code), message }));
    return POISON_PREFIX + nonce;
  }

  // ---------------------------------------------------------------- target → client

  #onUpstreamData(chunk: Buffer | undefined): void {
    if (this.#finished) return;
    const reader = this.#o.upstream.reader;
    if (chunk !== undefined) reader.push(chunk);
    const out = new OutBuffer();
    try {
      for (let frame = reader.next(); frame !== undefined; frame = reader.next()) {
        const replacement = this.#observeUpstream(frame);
        out.add(replacement ?? frame.bytes);
      }
    } catch (e) {
      this.#log.error({ err: e }, "malformed message from the target");
      out.flushTo((b) => this.#writeClient(b));
      this.#fatalToClient("GW_UPSTREAM_UNAVAILABLE", "the target sent a malformed message");
      this.#finish("error", "the target sent a malformed message", e);
      return;
    }
    if (out.length === 0) return;
    if (!out.flushTo((b) => this.#writeClient(b))) this.#upstream.pause();
  }

  #writeClient(b: Buffer): boolean {
    this.#bytesToClient += b.length;
    return this.#client.write(b);
  }

  /** Observe one frame from the target; returns replacement bytes when it must be rewritten. */
  #observeUpstream(frame: Frame): Buffer | undefined {
    switch (frame.type) {
      case B_ROW_DESCRIPTION: {
        const fields = decodeRowDescription(frame.body);
        this.#columns = fields.map((f) => f.name);
        this.#formats = fields.map((f) => f.format);
        return undefined;
      }
      case B_DATA_ROW: {
        const p = this.#current();
        if (p !== undefined) this.#captureRow(p.result, frame.body);
        return undefined;
      }
      case B_COPY_OUT:
        this.#columns = ["copy"];
        this.#formats = [0];
        return undefined;
      case B_COPY_DATA: {
        const p = this.#current();
        if (p !== undefined) {
          p.result.rowCount++;
          if (p.result.rows.length < this.#o.maxRowsPerStatement) {
            p.result.rows.push([renderValue(frame.body, 0, this.#o.maxValueBytes)]);
          } else p.result.truncated = true;
        }
        return undefined;
      }
      case B_COMMAND_COMPLETE: {
        const p = this.#current();
        if (p !== undefined) {
          const { tag, rows } = decodeCommandComplete(frame.body);
          this.#emitResult(p, { tag, rows });
          if (p.kind === "execute") this.#shift();
          else p.result = newResult();
        }
        this.#columns = undefined;
        this.#formats = undefined;
        return undefined;
      }
      case B_EMPTY_QUERY:
      case B_PORTAL_SUSPENDED: {
        const p = this.#current();
        if (p?.kind === "execute") {
          this.#emitResult(p, { tag: frame.type === B_EMPTY_QUERY ? "EMPTY" : "SUSPENDED" });
          this.#shift();
        }
        return undefined;
      }
      case B_ERROR:
        return this.#onUpstreamError(frame);
      case B_READY: {
        this.#txStatus = decodeReadyForQuery(frame.body);
        // Everything up to the Sync (or the simple Query) this answers is finished; executions
        // still pending were skipped by the server after an error.
        while (this.#pendingHead < this.#pending.length) {
          const p = this.#pending[this.#pendingHead];
          this.#shift();
          if (p === undefined || p.kind === "sync" || p.kind === "simple") break;
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }

  #onUpstreamError(frame: Frame): Buffer | undefined {
    const err = decodeErrorOrNotice(frame.body);
    const m = POISON_RE.exec(err.message);
    const nonce = m?.[1];
    if (nonce !== undefined) {
      const replacement = this.#poisons.get(nonce);
      if (replacement !== undefined) {
        this.#poisons.delete(nonce);
        return replacement;
      }
    }
    const p = this.#current();
    if (p !== undefined && !(p.kind === "simple" && p.denied)) {
      this.#emitResult(p, { error: { sqlstate: err.code, message: err.message } });
      if (p.kind === "execute") this.#shift();
    }
    return undefined;
  }

  /** The execution that incoming rows belong to (not a Sync marker). */
  #current(): Exclude<Pending, { kind: "sync" }> | undefined {
    const p = this.#pending[this.#pendingHead];
    return p === undefined || p.kind === "sync" ? undefined : p;
  }

  #shift(): void {
    this.#pendingHead++;
    if (this.#pendingHead > 1024 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#pendingHead);
      this.#pendingHead = 0;
    } else if (this.#pendingHead === this.#pending.length) {
      this.#pending.length = 0;
      this.#pendingHead = 0;
    }
  }

  #captureRow(acc: ResultAcc, body: Buffer): void {
    acc.rowCount++;
    if (acc.rows.length >= this.#o.maxRowsPerStatement) {
      acc.truncated = true;
      return;
    }
    const values = decodeDataRow(body);
    const formats = this.#formats;
    acc.rows.push(values.map((v, i) => (v === null ? null : renderValue(v, formats?.[i] ?? 0, this.#o.maxValueBytes))));
  }

  #emitResult(
    p: Exclude<Pending, { kind: "sync" }>,
    r: { tag?: string; rows?: number | undefined; error?: { sqlstate: string; message: string } },
  ): void {
    if (p.kind === "simple" && p.denied) return;
    const acc = p.result;
    this.#o.gate.result({
      type: "db.result",
      session: this.#o.gate.info,
      seq: p.seq,
      kind: p.kind,
      rowCount: r.rows ?? acc.rowCount,
      durationMs: Math.round((performance.now() - p.started) * 1000) / 1000,
      ...(p.kind === "execute" && p.params !== undefined ? { params: p.params } : {}),
      ...(r.tag === undefined ? {} : { commandTag: r.tag }),
      ...(this.#columns === undefined ? {} : { columns: this.#columns }),
      ...(acc.rows.length > 0 ? { rows: acc.rows } : {}),
      ...(acc.truncated ? { rowsTruncated: true } : {}),
      ...(r.error === undefined ? {} : { error: r.error }),
    });
  }

  // ---------------------------------------------------------------- ending

  #fatalToClient(code: GatewayError["code"], message: string): void {
    if (this.#client.writableEnded || this.#client.destroyed) return;
    this.#writeClient(encodeErrorResponse({ severity: "FATAL", code: sqlstateFor(code), message: `airlock: ${message}` }));
  }

  #terminate(reason: SessionEndReason, detail: string): void {
    if (this.#finished) return;
    this.#fatalToClient("GW_SESSION_TERMINATED", `session ended: ${detail}`);
    this.#finish(reason, detail);
  }

  #finish(reason: SessionEndReason, detail?: string, cause?: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    if (cause !== undefined) this.#log.debug({ err: cause, reason }, "session ending");
    if (!this.#upstream.destroyed) {
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
      stats: { statements: this.#statementsJudged, bytesFromClient: this.#bytesFromClient, bytesToClient: this.#bytesToClient },
    });
  }

  get transactionStatus(): "I" | "T" | "E" {
    return this.#txStatus;
  }
}

function newResult(): ResultAcc {
  return { rowCount: 0, rows: [], truncated: false };
}

/** A value as text for the recording: text format as UTF-8, binary as `\x` hex; capped. */
export function renderValue(v: Buffer, format: number, maxBytes: number): string {
  if (format === 1) {
    const shown = v.subarray(0, Math.floor(maxBytes / 2));
    return `\\x${shown.toString("hex")}${shown.length < v.length ? "…" : ""}`;
  }
  if (v.length <= maxBytes) return v.toString("utf8");
  return `${v.subarray(0, maxBytes).toString("utf8")}…`;
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
