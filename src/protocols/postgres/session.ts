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
 *
 * A statement held for approval (or a grant) is held where it would run: a simple Query at
 * once; an extended-protocol statement at each Bind, not at its Parse. Preparing runs nothing,
 * so the Parse is forwarded, and every Bind of the statement is decided on its own with its
 * parameters (the approver sees the values that will run); a refused Bind is a poison, as
 * above, so the server skips the rest of the batch until Sync as it would after a failed Bind.
 */
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { Decision, DenyDecision, MaskRule, ResultPlan } from "../../core/decision.js";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import { gatewayText } from "../../core/engine.js";
import type { DbQueryEvent, DbQueryStage, DeferredHold, JudgedEvent } from "../../core/events.js";
import type { HoldNotice, JudgeHooks, SessionJudge } from "../../core/judge.js";
import type { SessionEndReason, SessionStats } from "../../core/session.js";
import type { PgCatalog } from "./catalog.js";
import { renderNotice, renderRefusal } from "./errors.js";
import { OutBuffer } from "./out-buffer.js";
import {
  EMPTY,
  isRefused,
  maskCopyLine,
  newResult,
  renderValue,
  tagWithRows,
  type Execution,
  type Pending,
  type PortalRef,
  type ResultAcc,
  type StatementRef,
} from "./executions.js";
import { needsWork, planFields, rewriteDataRow, type ResolvedField, type RuleMasker } from "./result-masking.js";
import type { UpstreamSession } from "./upstream.js";
import {
  type BindMessage,
  type Frame,
  type FrameReader,
  decodeBind,
  decodeClose,
  decodeCommandComplete,
  decodeCopyResponse,
  decodeDataRow,
  decodeErrorOrNotice,
  decodeExecute,
  decodeFunctionCall,
  decodeParse,
  decodeQuery,
  decodeReadyForQuery,
  decodeRowDescription,
  type RowDescriptionField,
  encodeCommandComplete,
  encodeErrorResponse,
  encodeParse,
  encodeCopyData,
  encodeQuery,
  encodeTerminate,
  BackendType,
  FrontendType,
} from "./wire/index.js";

// Message types (protocol-message-formats), named as in the codecs.
const F = FrontendType;
const B = BackendType;

const POISON_PREFIX = "airlock_denied_";
/** While a statement is held, at most this much of the client's later input is read ahead. */
const HOLD_READ_CAP = 1024 * 1024;
const POISON_RE = /airlock_denied_([0-9a-f]{16})/;

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
  /** The last RowDescription's fields, for results whose DataRows come without one. */
  #lastFields: readonly RowDescriptionField[] | undefined;
  /** Upstream processing waits (catalog lookup); frames stay in the reader meanwhile. */
  #blocked: Frame | undefined;
  /** After a maxRows cancel, new client work waits until the cancelled statement completes. */
  #cancelBarrier: Promise<void> | undefined;
  #releaseCancelBarrier: (() => void) | undefined;
  #txStatus: "I" | "T" | "E";
  /** A DDL statement completed and its transaction has not ended yet (see ReadyForQuery). */
  #catalogChanged = false;

  #finished = false;
  /** While a statement waits for approval: aborts the wait (client cancel request). */
  #holdAbort: AbortController | undefined;
  /** The controller lent to judgements (see #judge); replaced once it has aborted. */
  #holdController = new AbortController();
  /** Set while a statement waits for approval: stops reading the client in the background. */
  #holdWatch: (() => void) | undefined;
  readonly #onHoldNotice = (n: HoldNotice): void => this.#onHold(n);
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
      if (this.#cancelBarrier !== undefined && frame.type !== F.Sync && frame.type !== F.Flush) {
        // A maxRows cancel is in flight: no new work reaches the target until it has landed.
        await this.#flushUpstream(out);
        await this.#cancelBarrier;
      }
      switch (frame.type) {
        case F.Query:
          await this.#flushUpstream(out);
          await this.#onQuery(frame, out);
          break;
        case F.Parse:
          await this.#flushUpstream(out);
          await this.#onParse(frame, out);
          break;
        case F.FunctionCall:
          await this.#flushUpstream(out);
          await this.#onFunctionCall(frame, out);
          break;
        case F.Bind: {
          if (this.#skipUntilSync) break;
          const bind = decodeBind(frame.body);
          const stmt = this.#statements.get(bind.statement);
          if (stmt !== undefined && stmt.held === undefined) {
            this.#onBind(bind, stmt);
            out.add(frame.bytes);
            break;
          }
          // Decided now, with its values: what the client sent before it reaches the target
          // first, what it sends after it stays queued in the reader (as for a held Parse).
          await this.#flushUpstream(out);
          if (stmt === undefined) await this.#onUnknownBind(frame, bind, out);
          else if (stmt.held !== undefined) await this.#onHeldBind(frame, bind, stmt.held.deferred, stmt.held.paramTypes, out);
          break;
        }
        case F.Execute:
          if (this.#skipUntilSync) break;
          this.#onExecute(frame);
          out.add(frame.bytes);
          break;
        case F.Close:
          if (this.#skipUntilSync) break;
          this.#onClose(frame);
          out.add(frame.bytes);
          break;
        case F.Describe:
        case F.CopyData:
        case F.CopyDone:
        case F.CopyFail:
        case F.Password:
          if (this.#skipUntilSync) break;
          out.add(frame.bytes);
          break;
        case F.Sync:
          this.#skipUntilSync = false;
          this.#pending.push({ kind: "sync" });
          out.add(frame.bytes);
          break;
        case F.Flush:
          out.add(frame.bytes);
          break;
        case F.Terminate:
          await this.#flushUpstream(out);
          if (this.#reusable()) {
            this.#release = true;
          } else {
            this.#upstream.end(encodeTerminate());
          }
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
    // After a long wait (a statement held for approval) the session may have ended meanwhile.
    if (out.length === 0 || this.#isFinished()) return;
    const ok = out.flushTo((b) => this.#upstream.write(b));
    if (!ok && !this.#finished) await waitDrain(this.#upstream);
  }

  async #judge(
    stage: DbQueryStage,
    sql: string,
    statementName?: string,
  ): Promise<{ seq: number; denial: DenyDecision | undefined; plan: ResultPlan | undefined; deferred?: DeferredHold }> {
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
    let decision: Decision;
    if (stage === "prepare") {
      // Never waits for a person: a hold comes back deferred, to be decided at each Bind.
      decision = await this.#o.gate.judge(event);
    } else decision = await this.#holding((hooks) => this.#o.gate.judge(event, hooks));
    if (decision.type === "deny") return { seq, denial: decision, plan: undefined };
    if (decision.deferred !== undefined) return { seq, denial: undefined, plan: undefined, deferred: decision.deferred };
    return { seq, denial: undefined, plan: decision.plan };
  }

  /**
   * Run a judgement that may wait for a person's decision. A statement held for approval keeps
   * the client's later messages queued behind it (they stay in the reader, in order); the hold
   * ends when the decision, the timeout, a cancel request or the client's disconnect arrives.
   * No gateway timer ends the session meanwhile. One controller serves statement after
   * statement until a cancel uses it up (creating an AbortSignal per statement showed in
   * profiles of the hot path).
   */
  async #holding(judge: (hooks: JudgeHooks) => Promise<Decision>): Promise<Decision> {
    if (this.#holdController.signal.aborted) this.#holdController = new AbortController();
    const hold = this.#holdController;
    this.#holdAbort = hold;
    try {
      return await judge({ onHold: this.#onHoldNotice, signal: hold.signal });
    } finally {
      this.#holdAbort = undefined;
      this.#holdWatch?.();
      this.#holdWatch = undefined;
    }
  }

  /**
   * A statement is waiting for approval: tell the client (NoticeResponse, which the protocol
   * allows at any time between messages), and keep reading it meanwhile so that a client that
   * goes away is noticed (EOF ends the session, which cancels the request). Frames read meanwhile
   * queue in the reader behind the held statement, up to a cap; beyond it reading pauses.
   */
  #onHold(notice: HoldNotice): void {
    this.#writeClient(renderNotice(notice.message));
    const client = this.#client;
    const reader = this.#o.clientReader;
    const onReadable = (): void => {
      while (reader.buffered < HOLD_READ_CAP) {
        const chunk = client.read() as Buffer | null;
        if (chunk === null) break;
        this.#bytesFromClient += chunk.length;
        reader.push(chunk);
      }
    };
    client.on("readable", onReadable);
    this.#holdWatch = () => client.off("readable", onReadable);
    onReadable();
  }

  /** The client sent a CancelRequest: a statement waiting for approval is withdrawn. */
  cancelHold(): boolean {
    // Only a statement actually waiting for a decision; otherwise the cancel goes to the target.
    if (this.#holdWatch === undefined || this.#holdAbort === undefined) return false;
    this.#holdAbort.abort("the client cancelled the statement");
    return true;
  }

  /**
   * A Query or Parse whose framing is sound but whose content is not (a NUL inside the text,
   * invalid UTF-8): refused like PostgreSQL does (08P01 "invalid message format", the session
   * goes on), never forwarded.
   */
  #malformed(frame: Frame, e: unknown, out: OutBuffer): boolean {
    if (!isGatewayError(e) || e.code !== "GW_PROTOCOL") return false;
    this.#log.warn({ err: e, type: String.fromCharCode(frame.type) }, "malformed statement refused");
    const denial: DenyDecision = { type: "deny", code: "GW_PROTOCOL", message: `invalid message format: ${e.message}` };
    if (frame.type === F.Query) {
      this.#pending.push({ kind: "simple", seq: ++this.#seq, denied: true, started: performance.now(), plan: undefined, result: newResult() });
      out.add(encodeQuery(this.#poison(denial)));
    } else this.#refuseExtended(denial, out);
    return true;
  }

  async #onQuery(frame: Frame, out: OutBuffer): Promise<void> {
    let sql: string;
    try {
      sql = decodeQuery(frame.body).sql;
    } catch (e) {
      if (this.#malformed(frame, e, out)) return;
      throw e;
    }
    const { seq, denial, plan } = await this.#judge("simple", sql);
    const started = performance.now();
    if (denial === undefined) {
      this.#pending.push({ kind: "simple", seq, denied: false, started, plan, result: newResult() });
      out.add(frame.bytes);
      return;
    }
    this.#pending.push({ kind: "simple", seq, denied: true, started, plan: undefined, result: newResult() });
    out.add(encodeQuery(this.#poison(denial)));
  }

  async #onParse(frame: Frame, out: OutBuffer): Promise<void> {
    if (this.#skipUntilSync) return;
    let parse: ReturnType<typeof decodeParse>;
    try {
      parse = decodeParse(frame.body);
    } catch (e) {
      if (this.#malformed(frame, e, out)) return;
      throw e;
    }
    const { seq, denial, plan, deferred } = await this.#judge("prepare", parse.sql, parse.name);
    if (denial === undefined) {
      this.#statements.set(parse.name, deferred === undefined ? { seq, plan } : { seq, plan, held: { deferred, paramTypes: parse.paramTypes } });
      out.add(frame.bytes);
      return;
    }
    this.#statements.delete(parse.name);
    this.#refuseExtended(denial, out);
  }

  async #onFunctionCall(frame: Frame, out: OutBuffer): Promise<void> {
    if (this.#skipUntilSync) return;
    // Judged by the function it names (no SQL to inspect). A FunctionCall is answered like a
    // simple Query (result or error, then ReadyForQuery), so a poison Query takes its place
    // when refused.
    let call: ReturnType<typeof decodeFunctionCall>;
    try {
      call = decodeFunctionCall(frame.body);
    } catch (e) {
      if (this.#malformed(frame, e, out)) return;
      throw e;
    }
    const seq = ++this.#seq;
    this.#statementsJudged++;
    const decision = await this.#holding((hooks) => this.#o.gate.judge({ type: "db.function_call", session: this.#o.gate.info, seq, functionOid: call.functionOid, argumentCount: call.argCount }, hooks));
    const denial = decision.type === "deny" ? decision : undefined;
    this.#pending.push({ kind: "simple", seq, denied: denial !== undefined, started: performance.now(), plan: undefined, result: newResult() });
    out.add(denial === undefined ? frame.bytes : encodeQuery(this.#poison(denial)));
  }

  #onBind(bind: BindMessage, stmt: StatementRef | undefined): void {
    this.#portals.set(bind.portal, { seq: stmt?.seq ?? 0, params: this.#renderParams(bind), plan: stmt?.plan, resultFormats: bind.resultFormats });
  }

  /** Bind parameters as people read them (recordings, approvers): text, or `\x…` hex for binary; capped. */
  #renderParams(bind: BindMessage): (string | null)[] {
    return bind.params.map((v, i) => {
      if (v === null) return null;
      const fmt = bind.paramFormats.length === 1 ? bind.paramFormats[0] : bind.paramFormats[i];
      return renderValue(v, fmt ?? 0, this.#o.maxValueBytes);
    });
  }

  /**
   * A Bind of a statement held for approval: this execution is decided now, with its values
   * (a new request each time; in async mode, an approval of exactly these bytes). Allowed: the
   * Bind goes on and its portal carries the decision's plan. Refused: a poison takes its place
   * and the rest of the batch is skipped until Sync, as the server does after a failed Bind
   * (protocol-flow "Extended Query": errors discard messages until Sync).
   */
  async #onHeldBind(frame: Frame, bind: BindMessage, deferred: DeferredHold, paramTypes: readonly number[], out: OutBuffer, judged?: number): Promise<void> {
    const seq = judged ?? ++this.#seq;
    if (judged === undefined) this.#statementsJudged++;
    const shown = this.#renderParams(bind);
    const params = { shown, values: bind.params, formats: bind.paramFormats, types: paramTypes };
    const event: JudgedEvent = { type: "db.execute", session: this.#o.gate.info, seq, deferred, params };
    const decision = await this.#holding((hooks) => this.#o.gate.judge(event, hooks));
    this.#bindDecided(frame, bind, seq, shown, decision, out);
  }

  /**
   * A Bind of a statement this session did not see prepared by Parse. A named one may exist on
   * the target through SQL PREPARE (the guardrails know those): it is judged as `EXECUTE name`
   * is, with this Bind's values when held, so a Bind cannot run what an EXECUTE may not, nor
   * escape its masking. The unnamed statement exists only through Parse; when its Parse was
   * refused (or it was closed), the target may still hold an older one, so the Bind is refused
   * rather than forwarded to run that.
   */
  async #onUnknownBind(frame: Frame, bind: BindMessage, out: OutBuffer): Promise<void> {
    if (bind.statement === "") {
      this.#bindDecided(frame, bind, 0, [], { type: "deny", code: "GW_POLICY_DENIED", message: "the unnamed prepared statement does not exist (its Parse was refused or never sent)" }, out);
      return;
    }
    const seq = ++this.#seq;
    this.#statementsJudged++;
    const event: DbQueryEvent = {
      type: "db.query",
      session: this.#o.gate.info,
      seq,
      stage: "execute",
      sql: `EXECUTE "${bind.statement.replaceAll('"', '""')}"`,
      statementName: bind.statement,
    };
    const d = await this.#o.gate.judge(event);
    if (d.type === "allow" && d.deferred !== undefined) {
      await this.#onHeldBind(frame, bind, d.deferred, [], out, seq);
      return;
    }
    this.#bindDecided(frame, bind, seq, d.type === "allow" ? this.#renderParams(bind) : [], d, out);
  }

  /** Forward a decided Bind with its portal's plan, or refuse it (poison, then skip to Sync). */
  #bindDecided(frame: Frame, bind: BindMessage, seq: number, shown: readonly (string | null)[], decision: Decision, out: OutBuffer): void {
    if (decision.type === "allow") {
      this.#portals.set(bind.portal, { seq, params: shown, plan: decision.plan, resultFormats: bind.resultFormats });
      out.add(frame.bytes);
      return;
    }
    this.#portals.delete(bind.portal);
    this.#refuseExtended(decision, out);
  }

  /**
   * Refuse an extended-protocol message (Parse or Bind): a poison Parse takes its place and the
   * client's messages are dropped until Sync, as the server does after an error. The poison is
   * named, so its failed Parse never replaces the client's unnamed statement.
   */
  #refuseExtended(denial: DenyDecision, out: OutBuffer): void {
    const poison = this.#poison(denial);
    out.add(encodeParse(poison, poison));
    this.#skipUntilSync = true;
  }

  #onExecute(frame: Frame): void {
    const exec = decodeExecute(frame.body);
    const portal = this.#portals.get(exec.portal);
    this.#pending.push({
      kind: "execute",
      seq: portal?.seq ?? 0,
      denied: false,
      params: portal?.params,
      plan: portal?.plan,
      resultFormats: portal?.resultFormats,
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
    this.#poisons.set(nonce, renderRefusal(denial));
    return POISON_PREFIX + nonce;
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
        const r = this.#observeUpstream(frame, out);
        if (r === "block") {
          this.#blocked = frame;
          break;
        }
        if (r !== undefined) {
          if (r.length > 0) out.add(r);
        } else out.add(frame.bytes);
      }
    } catch (e) {
      this.#log.error({ err: e }, "malformed message from the target");
      out.flushTo((b) => this.#writeClient(b));
      this.#fatalToClient("GW_UPSTREAM_UNAVAILABLE", "the target sent a malformed message");
      this.#finish("error", "the target sent a malformed message", e);
      return;
    }
    if (out.length > 0 && !out.flushTo((b) => this.#writeClient(b))) this.#upstream.pause();
    if (this.#blocked !== undefined) this.#upstream.pause();
  }

  /** Continue after a lookup: re-observe the held frame, then carry on with the reader. */
  #unblock(): void {
    const held = this.#blocked;
    this.#blocked = undefined;
    if (held === undefined || this.#finished) return;
    const out = new OutBuffer();
    const r = this.#observeUpstream(held, out);
    if (r === "block") {
      // The lookup failed and the result was refused meanwhile, or new OIDs appeared: try again.
      this.#blocked = held;
      return;
    }
    if (r !== undefined) {
      if (r.length > 0) out.add(r);
    } else out.add(held.bytes);
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

  #writeClient(b: Buffer): boolean {
    this.#bytesToClient += b.length;
    return this.#client.write(b);
  }

  /**
   * Observe one frame from the target. Returns undefined to forward it as is, replacement
   * bytes (empty to drop it), or "block" to wait for a catalog lookup before going on.
   * Extra frames to send before it may be added to `out`.
   */
  #observeUpstream(frame: Frame, out: OutBuffer): Buffer | "block" | undefined {
    switch (frame.type) {
      case B.RowDescription:
        return this.#onRowDescription(frame);
      case B.DataRow:
        return this.#onDataRow(frame, out);
      case B.CopyOutResponse: {
        this.#columns = ["copy"];
        this.#formats = [0];
        const p = this.#current();
        if (p !== undefined && p.plan !== undefined && p.plan.masks.length > 0) {
          const format = decodeCopyResponse(frame.body).format;
          p.result.copyFormat = format;
          if (p.plan.masks.some((m) => m.columns.length > 0)) {
            return this.#refuse(p, "COPY … TO STDOUT is refused while column masking applies to this session; use SELECT");
          }
          if (format === 1) return this.#refuse(p, "binary COPY cannot be masked; use text or CSV format");
        }
        return undefined;
      }
      case B.CopyData:
        return this.#onCopyData(frame, out);
      case B.CommandComplete: {
        const p = this.#current();
        let replacement: Buffer | undefined;
        if (p !== undefined) {
          const { tag, rows } = decodeCommandComplete(frame.body);
          if (changesCatalog(tag)) this.#catalogChanged = true;
          const acc = p.result;
          if (acc.refused !== undefined) {
            replacement = this.#refusalError(acc.refused);
          } else if (acc.cancelled === true && p.plan?.maxRows !== undefined) {
            // The target finished before the cancel arrived: report what the client got.
            const shown = tagWithRows(tag, p.plan.maxRows);
            replacement = encodeCommandComplete(shown);
          }
          this.#emitResult(p, { tag, rows });
          this.#completeExecution(p);
        }
        this.#columns = undefined;
        this.#formats = undefined;
        return replacement;
      }
      case B.EmptyQueryResponse:
      case B.PortalSuspended: {
        const p = this.#current();
        if (p?.kind === "execute") {
          this.#emitResult(p, { tag: frame.type === B.EmptyQueryResponse ? "EMPTY" : "SUSPENDED" });
          this.#completeExecution(p);
        }
        return undefined;
      }
      case B.ErrorResponse:
        return this.#onUpstreamError(frame);
      case B.ReadyForQuery: {
        this.#txStatus = decodeReadyForQuery(frame.body);
        if (this.#catalogChanged) {
          // DDL ran: what the gateway's catalog lookups cached (views, columns, search_path
          // defaults) may be stale for every session of this connection. Again at the end of
          // the transaction, when the change becomes visible to the side connection.
          this.#o.catalog.invalidate();
          if (this.#txStatus === "I") this.#catalogChanged = false;
        }
        // Everything up to the Sync (or the simple Query) this answers is finished; executions
        // still pending were skipped by the server after an error.
        while (this.#pendingHead < this.#pending.length) {
          const p = this.#pending[this.#pendingHead];
          this.#shift();
          if (p !== undefined && p.kind !== "sync") this.#releaseBarrier();
          if (p === undefined || p.kind === "sync" || p.kind === "simple") break;
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }

  #onRowDescription(frame: Frame): Buffer | "block" | undefined {
    const fields = decodeRowDescription(frame.body);
    this.#columns = fields.map((f) => f.name);
    this.#formats = fields.map((f) => f.format);
    this.#lastFields = fields;
    const p = this.#current();
    const masks = p?.plan?.masks;
    if (p === undefined || masks === undefined || masks.length === 0) return undefined;
    const resolved = this.#resolveFields(fields, p);
    if (resolved === "block") return "block";
    if (resolved === undefined) return this.#refuse(p, "the masking rules could not be resolved against the target's catalog");
    const actions = planFields(resolved, masks, this.#o.maskerFor);
    p.result.actions = needsWork(actions) ? actions : undefined;
    return undefined;
  }

  /**
   * Field origins (relation.column) for masking. Returns "block" after starting a catalog
   * lookup (processing resumes when it completes), or undefined when the lookup failed.
   */
  #resolveFields(fields: readonly RowDescriptionField[], p: Execution): ResolvedField[] | "block" | undefined {
    const catalog = this.#o.catalog;
    const needColumnRules = p.plan?.masks.some((m) => m.columns.length > 0) === true;
    const missing: number[] = [];
    if (needColumnRules) for (const f of fields) if (f.tableOid !== 0 && catalog.cached(f.tableOid) === "missing") missing.push(f.tableOid);
    if (missing.length > 0) {
      if (p.result.refused !== undefined) return undefined;
      catalog.relations(missing).then(
        () => this.#unblock(),
        (e: unknown) => {
          this.#log.warn({ err: e }, "catalog lookup for masking failed; refusing the result");
          p.result.refused = "the masking rules could not be resolved against the target's catalog";
          this.#unblock();
        },
      );
      return "block";
    }
    const formats = p.resultFormats;
    return fields.map((f, i): ResolvedField => {
      const format = formats === undefined || formats.length === 0 ? f.format : formats.length === 1 ? (formats[0] ?? 0) : (formats[i] ?? 0);
      const info = f.tableOid !== 0 ? catalog.cached(f.tableOid) : undefined;
      const rel = info !== undefined && info !== "missing" ? info : undefined;
      const column = rel?.columns.get(f.columnAttr);
      return {
        name: f.name,
        typeOid: f.typeOid,
        format,
        ...(rel === undefined || column === undefined ? {} : { relation: { schema: rel.schema, name: rel.name }, column }),
      };
    });
  }

  #onDataRow(frame: Frame, out: OutBuffer): Buffer | "block" | undefined {
    const p = this.#current();
    if (p === undefined) return undefined;
    const acc = p.result;
    if (acc.refused !== undefined) return EMPTY;
    const plan = p.plan;
    if (plan !== undefined && plan.masks.length > 0 && acc.actions === undefined && this.#lastFields !== undefined && acc.rowCount === 0) {
      // Rows without a RowDescription of their own (Describe of the statement came earlier).
      const r = this.#onRowDescriptionFields(this.#lastFields, p);
      if (r === "block") return "block";
      if (isRefused(acc)) return EMPTY;
    }
    let bytes: Buffer | undefined;
    if (acc.actions !== undefined) {
      bytes = rewriteDataRow(frame.body, acc.actions, acc.masked);
    }
    if (plan?.maxRows !== undefined && acc.sent >= plan.maxRows) {
      acc.rowCount++;
      this.#limitExceeded(p, out);
      return EMPTY;
    }
    acc.sent++;
    this.#captureRow(acc, bytes === undefined ? frame.body : bytes.subarray(5));
    return bytes;
  }

  #onRowDescriptionFields(fields: readonly RowDescriptionField[], p: Execution): "block" | undefined {
    const masks = p.plan?.masks ?? [];
    const resolved = this.#resolveFields(fields, p);
    if (resolved === "block") return "block";
    if (resolved === undefined) {
      p.result.refused = "the masking rules could not be resolved against the target's catalog";
      return undefined;
    }
    const actions = planFields(resolved, masks, this.#o.maskerFor);
    p.result.actions = needsWork(actions) ? actions : undefined;
    return undefined;
  }

  #onCopyData(frame: Frame, out: OutBuffer): Buffer | undefined {
    const p = this.#current();
    if (p === undefined) return undefined;
    const acc = p.result;
    if (acc.refused !== undefined) return EMPTY;
    if (p.plan?.maxRows !== undefined && acc.sent >= p.plan.maxRows) {
      acc.rowCount++;
      this.#limitExceeded(p, out);
      return EMPTY;
    }
    let replacement: Buffer | undefined;
    const masks = p.plan?.masks ?? [];
    if (masks.length > 0 && acc.copyFormat === 0) {
      const line = frame.body.toString("utf8");
      const masked = maskCopyLine(line, masks, this.#o.maskerFor, acc.masked);
      if (masked !== undefined) replacement = encodeCopyData(Buffer.from(masked, "utf8"));
    }
    acc.sent++;
    acc.rowCount++;
    if (acc.rows.length < this.#o.maxRowsPerStatement) {
      acc.rows.push([renderValue(replacement === undefined ? frame.body : replacement.subarray(5), 0, this.#o.maxValueBytes)]);
    } else acc.truncated = true;
    return replacement;
  }

  /** maxRows reached: tell the client once, and cancel the statement on the target. */
  #limitExceeded(p: Execution, out: OutBuffer): void {
    const acc = p.result;
    if (acc.cancelled === true) return;
    acc.cancelled = true;
    const limit = p.plan?.maxRows ?? 0;
    const rule = p.plan?.maxRowsRule;
    out.add(renderNotice(`the result was cut at ${limit} rows${rule === undefined ? "" : ` (rule: ${rule})`}; the statement is cancelled`));
    // New client work waits until this statement has completed, so that the asynchronous
    // cancel cannot hit a later statement.
    // Both must happen before new work goes out: the statement has completed, and the target has
    // taken the cancel (a cancel still in flight could otherwise hit the next statement).
    const completed = new Promise<void>((resolve) => (this.#releaseCancelBarrier = resolve));
    this.#cancelBarrier ??= Promise.all([completed, this.#o.cancelUpstream()]).then(() => undefined);
  }

  #releaseBarrier(): void {
    const release = this.#releaseCancelBarrier;
    if (release === undefined) return;
    this.#releaseCancelBarrier = undefined;
    const barrier = this.#cancelBarrier;
    release();
    void barrier?.then(() => {
      if (this.#cancelBarrier === barrier) this.#cancelBarrier = undefined;
    });
  }

  #refuse(p: Execution, message: string): Buffer {
    p.result.refused = message;
    return EMPTY;
  }

  #refusalError(message: string): Buffer {
    return renderRefusal({ type: "deny", code: "GW_POLICY_DENIED", message });
  }

  #completeExecution(p: Execution): void {
    if (p.kind === "execute") {
      this.#shift();
      this.#releaseBarrier();
    } else p.result = newResult();
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
    if (p === undefined || p.denied) return undefined;
    const acc = p.result;
    let replacement: Buffer | undefined;
    if (acc.refused !== undefined) {
      replacement = this.#refusalError(acc.refused);
    } else if (acc.cancelled === true && err.code === "57014") {
      const limit = p.plan?.maxRows ?? 0;
      const rule = p.plan?.maxRowsRule;
      // In an implicit transaction the cut result is the whole answer; inside a transaction
      // block the cancel aborted it, and the client must know.
      replacement =
        this.#txStatus === "I" && p.kind === "simple"
          ? encodeCommandComplete(`SELECT ${limit}`)
          : encodeErrorResponse({
              severity: "ERROR",
              code: "57014",
              message: gatewayText(`the result exceeded ${limit} rows${rule === undefined ? "" : ` (rule: ${rule})`}; the statement was cancelled`),
            });
    }
    this.#emitResult(p, { error: { sqlstate: err.code, message: err.message } });
    if (p.kind === "execute") {
      this.#shift();
      this.#releaseBarrier();
    }
    return replacement;
  }

  /** The execution that incoming rows belong to (not a Sync marker). */
  #current(): Execution | undefined {
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

  #emitResult(p: Execution, r: { tag?: string; rows?: number | undefined; error?: { sqlstate: string; message: string } }): void {
    if (p.denied) return;
    const acc = p.result;
    const masked = Object.keys(acc.masked).length > 0 ? acc.masked : undefined;
    this.#o.gate.observe({
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
      ...(masked === undefined ? {} : { masked }),
      ...(acc.cancelled === true ? { rowsSent: acc.sent } : {}),
    });
  }

  // ---------------------------------------------------------------- ending

  #fatalToClient(code: GatewayError["code"], message: string): void {
    if (this.#client.writableEnded || this.#client.destroyed) return;
    this.#writeClient(renderRefusal({ type: "deny", code, message }, "FATAL"));
  }

  #terminate(reason: SessionEndReason, detail: string): void {
    if (this.#finished) return;
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
      this.#pendingHead >= this.#pending.length &&
      this.#txStatus === "I" &&
      this.#blocked === undefined &&
      this.#cancelBarrier === undefined &&
      this.#o.upstream.reader.buffered === 0 &&
      !this.#upstream.destroyed &&
      this.#upstream.writable
    );
  }

  #finish(reason: SessionEndReason, detail?: string, cause?: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
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
      stats: { statements: this.#statementsJudged, bytesFromClient: this.#bytesFromClient, bytesToClient: this.#bytesToClient },
      ...(this.#release ? { released: this.#o.upstream } : {}),
    });
  }

  get transactionStatus(): "I" | "T" | "E" {
    return this.#txStatus;
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

/** Command tags of statements that may change what the catalog lookups cache (CREATE …, ALTER …
 * including ALTER ROLE/DATABASE … SET, DROP …, IMPORT FOREIGN SCHEMA, COMMENT, SECURITY LABEL). */
function changesCatalog(tag: string): boolean {
  return tag.startsWith("CREATE") || tag.startsWith("ALTER") || tag.startsWith("DROP") || tag.startsWith("IMPORT") || tag === "COMMENT" || tag === "SECURITY LABEL";
}
