/**
 * Client → target: every Query, Parse, FunctionCall (and a Bind of a held or unknown statement)
 * is judged by the pipeline before anything of it is forwarded; other messages are forwarded as
 * the original bytes. Each forwarded message the target answers is queued in the TargetModel,
 * whose state changes only once the target confirms them.
 *
 * A statement held for approval (or a grant) is held where it would run: a simple Query at
 * once; an extended-protocol statement at each Bind, not at its Parse. Preparing runs nothing,
 * so the Parse is forwarded, and every Bind of the statement is decided on its own with its
 * parameters (the approver sees the values that will run); a refused Bind is a poison, so the
 * server skips the rest of the batch until Sync as it would after a failed Bind. A cost rule on
 * a statement prepared with parameters is judged the same way: at each Bind, on the planner's
 * estimate with that Bind's values (the previewer's EXPLAIN on the gateway's side session).
 */
import type { PgPreviewer } from "./preview.js";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { Decision, DenyDecision, ResultPlan } from "../../core/decision.js";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import type { DbQueryEvent, DbQueryStage, DeferredHold, JudgedEvent } from "../../core/events.js";

import type { HoldNotice, JudgeHooks, SessionJudge } from "../../core/judge.js";
import type { FunctionInfo, PgCatalog } from "./catalog.js";
import { renderNotice } from "./errors.js";
import { renderValue } from "./executions.js";
import type { SessionObjects } from "./object-resolution.js";
import type { OutBuffer } from "./out-buffer.js";
import type { Refusals } from "./refusals.js";
import { PLAIN, sqlEffects } from "./sql-effects.js";
import { newExecution, type NameView, type PortalRec, type StatementRec, type TargetModel } from "./target-model.js";
import { type BindMessage, type Frame, type FrameReader, FrontendType as F, decodeBind, decodeClose, decodeDescribe, decodeExecute, decodeFunctionCall, decodeParse, decodeQuery, encodeFlush } from "./wire/index.js";

/** A statement's judgement: its seq (the recording's and the results' key) and the decision. */
interface Judgement {
  readonly seq: number;
  readonly decision: Decision;
}

/**
 * A parameter reference (`$1`) may be in the text: an over-approximation (a `$1` inside a string
 * literal counts too), which only defers a cost rule's estimate to the Bind.
 */
const PARAMETER = /\$[0-9]/;

/** While a statement is held, at most this much of the client's later input is read ahead. */
const HOLD_READ_CAP = 1024 * 1024;

export interface ClientMessageContext {
  readonly gate: SessionJudge;
  readonly client: Duplex;
  readonly clientReader: FrameReader;
  readonly model: TargetModel;
  readonly refusals: Refusals;
  readonly logger: Logger;
  readonly maxValueBytes: number;
  /** The target's catalog: a fastpath FunctionCall's OID is resolved to its function there. */
  readonly catalog: PgCatalog;
  /** Write what is collected to the target now (before a judgement that may wait). */
  readonly flushUpstream: (out: OutBuffer) => Promise<void> | undefined;
  /** Write bytes the client did not send to the target (a Flush to get answers sooner). */
  readonly writeUpstream: (b: Buffer) => void;
  readonly writeClient: (b: Buffer) => boolean;
  readonly countFromClient: (n: number) => void;
  readonly finished: () => boolean;
  /** What held statements' names resolve to on the target (approvals are bound to it). */
  readonly objects: SessionObjects;
  /** Previews of held writes and planner estimates on a gateway-owned session (absent: none). */
  readonly previewer?: PgPreviewer;
  /** The transaction status of the target's last ReadyForQuery. */
  readonly transactionStatus: () => "I" | "T" | "E";
}

export class ClientMessages {
  readonly #c: ClientMessageContext;
  #seq = 0;
  statementsJudged = 0;
  /** While a statement waits for approval: aborts the wait (client cancel request). */
  #holdAbort: AbortController | undefined;
  /** The controller lent to judgements (see #holding); replaced once it has aborted. */
  #holdController = new AbortController();
  /** Set while a statement waits for approval: stops reading the client in the background. */
  #holdWatch: (() => void) | undefined;
  readonly #onHoldNotice = (n: HoldNotice): void => this.#onHold(n);

  constructor(c: ClientMessageContext) {
    this.#c = c;
  }

  /**
   * The target will ignore this message: the gateway refused an extended message of this batch,
   * or the target answered one with an error, and no Sync has been sent since. It is dropped
   * unjudged, with no answer expected (postgres.c: ignore_till_sync).
   */
  get #skip(): boolean {
    return this.#c.refusals.skipUntilSync || this.#c.model.ignoring;
  }

  /**
   * Handle one client frame (not Terminate). Returns a promise only for a message that is
   * judged (or may be); the others are handled before this returns.
   */
  handle(frame: Frame, out: OutBuffer): Promise<void> | undefined {
    const { model, refusals } = this.#c;
    switch (frame.type) {
      case F.Query:
      case F.FunctionCall:
        // After an error the target ignores everything until Sync, a Query included
        // (postgres.c ignore_till_sync): it is not judged and no answer is expected.
        if (this.#skip) return undefined;
        return this.#judged(frame, out);
      case F.Parse:
        if (this.#skip) return undefined;
        return this.#judged(frame, out);
      case F.Bind:
        if (this.#skip) return undefined;
        return this.#onBind(frame, out);
      case F.Execute:
        if (this.#skip) return undefined;
        model.execute(decodeExecute(frame.body).portal, newExecution("execute", 0, false, undefined));
        out.add(frame.bytes);
        return undefined;
      case F.Describe: {
        if (this.#skip) return undefined;
        const d = decodeDescribe(frame.body);
        model.describe(d.kind, d.name);
        out.add(frame.bytes);
        return undefined;
      }
      case F.Close: {
        if (this.#skip) return undefined;
        const c = decodeClose(frame.body);
        model.close(c.kind, c.name);
        out.add(frame.bytes);
        return undefined;
      }
      case F.CopyData:
      case F.CopyDone:
      case F.CopyFail:
      case F.Password:
        if (this.#skip) return undefined;
        out.add(frame.bytes);
        return undefined;
      case F.Sync:
        refusals.skipUntilSync = false;
        model.sync();
        out.add(frame.bytes);
        return undefined;
      case F.Flush:
        out.add(frame.bytes);
        return undefined;
      default:
        throw new GatewayError("GW_PROTOCOL", `unexpected message type 0x${frame.type.toString(16)} from the client`);
    }
  }

  /**
   * Query, FunctionCall, Parse: what the batch collected so far goes first, then the judgement.
   * A Query allowed by a synchronous verdict is handled before this returns (no promise).
   */
  #judged(frame: Frame, out: OutBuffer): Promise<void> | undefined {
    const flushed = this.#c.flushUpstream(out);
    if (flushed !== undefined) return flushed.then(() => this.#judgedNow(frame, out));
    return this.#judgedNow(frame, out);
  }

  #judgedNow(frame: Frame, out: OutBuffer): Promise<void> | undefined {
    if (frame.type === F.Query) return this.#onQuery(frame, out);
    if (frame.type === F.FunctionCall) return this.#onFunctionCall(frame, out);
    return this.#onParse(frame, out);
  }

  /** The gate's synchronous judgement where it has one (SessionJudge.judgeNow). */
  #judgeNow(event: JudgedEvent, hooks: JudgeHooks): Decision | Promise<Decision> {
    const gate = this.#c.gate;
    return gate.judgeNow === undefined ? gate.judge(event, hooks) : gate.judgeNow(event, hooks);
  }

  #judge(stage: DbQueryStage, sql: string, statementName?: string, parameterized?: boolean): Judgement | Promise<Judgement> {
    const seq = ++this.#seq;
    this.statementsJudged++;
    const previewer = this.#c.previewer;
    const event: DbQueryEvent = {
      type: "db.query",
      session: this.#c.gate.info,
      seq,
      stage,
      sql,
      ...(statementName === undefined ? {} : { statementName }),
      ...(previewer === undefined ? {} : { estimate: () => previewer.estimate(sql, this.#c.objects.searchPath) }),
      ...(parameterized === true ? { parameterized } : {}),
    };
    // A prepare never waits for a person: a hold comes back deferred, decided at each Bind.
    const decision = stage === "prepare" ? this.#judgeNow(event, { resolveObjects: this.#c.objects.resolve, settlesBeforeRelease: true }) : this.#holding((hooks) => this.#judgeNow(event, hooks));
    return decision instanceof Promise ? decision.then((d) => ({ seq, decision: d })) : { seq, decision };
  }

  /**
   * A refusal the engine itself knows must follow (a malformed message, a Bind of a statement
   * that does not exist, a Parse of a name the target holds): a pipeline decision like any
   * other, so it is audited and recorded. Whatever the pipeline says, the message is refused.
   */
  async #protocolRefusal(feature: string, detail: string, violation: { code: GatewayError["code"]; reason: string }): Promise<DenyDecision> {
    const seq = ++this.#seq;
    const d = await this.#c.gate.judge({ type: "protocol.request", session: this.#c.gate.info, seq, feature, detail, violation });
    return d.type === "deny" ? d : { type: "deny", code: violation.code, message: violation.reason };
  }

  /**
   * A Query or Parse whose framing is sound but whose content is not (a NUL inside the text,
   * invalid UTF-8): refused like PostgreSQL does (08P01 "invalid message format", the session
   * goes on), never forwarded.
   */
  async #malformed(frame: Frame, e: unknown, out: OutBuffer): Promise<boolean> {
    if (!isGatewayError(e) || e.code !== "GW_PROTOCOL") return false;
    this.#c.logger.warn({ err: e, type: String.fromCharCode(frame.type) }, "malformed statement refused");
    const denial = await this.#protocolRefusal("postgres.malformed", `a malformed ${String.fromCharCode(frame.type)} message`, {
      code: "GW_PROTOCOL",
      reason: `invalid message format: ${e.message}`,
    });
    if (frame.type === F.Parse) this.#c.refusals.extended(denial, out);
    else this.#simpleRefused(denial, out);
    return true;
  }

  #simpleRefused(denial: DenyDecision, out: OutBuffer): void {
    this.#c.model.simple(newExecution("simple", 0, true, undefined), [PLAIN]);
    out.add(this.#c.refusals.simple(denial));
  }

  /** A simple Query; synchronous (no promise) when its judgement is. */
  #onQuery(frame: Frame, out: OutBuffer): Promise<void> | undefined {
    let sql: string;
    try {
      sql = decodeQuery(frame.body).sql;
    } catch (e) {
      return this.#malformed(frame, e, out).then((refused) => {
        if (!refused) throw e;
      });
    }
    const judged = this.#judge("simple", sql);
    if (judged instanceof Promise) return judged.then((j) => this.#queryJudged(frame, sql, j, out));
    this.#queryJudged(frame, sql, judged, out);
    return undefined;
  }

  #queryJudged(frame: Frame, sql: string, { seq, decision }: Judgement, out: OutBuffer): void {
    if (decision.type === "deny") {
      this.#simpleRefused(decision, out);
      return;
    }
    // Sent alone while nothing else runs and no transaction is open, a SET search_path commits
    // by itself: the session's path is then known exactly (object-resolution.ts).
    this.#c.objects.sent(sql, { simple: true, quiet: this.#c.model.idle && this.#c.transactionStatus() === "I" });
    this.#c.model.simple(newExecution("simple", seq, false, decision.plan), sqlEffects(sql));
    out.add(frame.bytes);
  }

  /**
   * A fastpath FunctionCall (libpq's lo_* API: psycopg2 `lobject`, pgjdbc LargeObjectManager,
   * psql `\lo_import`, pg_dump of large objects) names its function by OID, with binary
   * arguments. The OID is resolved in the target's catalog (pg_proc: schema, name, identity
   * arguments) and the call is judged as the SQL call of that function would be
   * (`SELECT "schema"."name"($1, …)`: the `functions` rules and their dangerous families, the
   * masking plan of its result), audited and recorded under that text. An OID the catalog
   * does not resolve is judged as an unknown fastpath call, which is refused (fail closed).
   * A FunctionCall is answered like a simple Query (result or error, then ReadyForQuery), so a
   * poison Query takes the place of a refused one.
   */
  async #onFunctionCall(frame: Frame, out: OutBuffer): Promise<void> {
    let call: ReturnType<typeof decodeFunctionCall>;
    try {
      call = decodeFunctionCall(frame.body);
    } catch (e) {
      if (await this.#malformed(frame, e, out)) return;
      throw e;
    }
    let fn: FunctionInfo | undefined;
    try {
      fn = await this.#c.catalog.functionByOid(call.functionOid);
    } catch (e) {
      this.#c.logger.warn({ err: e, functionOid: call.functionOid }, "fastpath function lookup failed; the call is refused");
    }
    let seq: number;
    let decision: Decision;
    if (fn === undefined) {
      seq = ++this.#seq;
      this.statementsJudged++;
      decision = await this.#holding((hooks) => this.#c.gate.judge({ type: "db.function_call", session: this.#c.gate.info, seq, functionOid: call.functionOid, argumentCount: call.argCount }, hooks));
    } else {
      ({ seq, decision } = await this.#judge("simple", fastpathCallSql(fn, call.argCount)));
    }
    if (decision.type === "deny") {
      this.#simpleRefused(decision, out);
      return;
    }
    this.#c.model.simple(newExecution("simple", seq, false, decision.plan), [PLAIN]);
    out.add(frame.bytes);
  }

  async #onParse(frame: Frame, out: OutBuffer): Promise<void> {
    let parse: ReturnType<typeof decodeParse>;
    try {
      parse = decodeParse(frame.body);
    } catch (e) {
      if (await this.#malformed(frame, e, out)) return;
      throw e;
    }
    const { model, refusals } = this.#c;
    if (parse.name !== "") {
      // The target refuses a Parse of a name it holds (42P05) and keeps the old statement: the
      // text is not judged (judging records it), and the gateway's record stays the target's.
      const view = await this.#settledView(parse.name, out);
      if (view === undefined) return;
      if (view.rec !== undefined) {
        const denial = await this.#protocolRefusal("postgres.statement_exists", `a Parse of the existing prepared statement "${parse.name}"`, {
          code: "GW_CONFLICT",
          reason: `prepared statement "${parse.name}" already exists; close it before preparing it again`,
        });
        refusals.extended(denial, out);
        return;
      }
    }
    // With parameters, a cost rule is judged at each Bind, with its values (CostDeferral).
    const { seq, decision } = await this.#judge("prepare", parse.sql, parse.name, parse.paramTypes.length > 0 || PARAMETER.test(parse.sql));
    if (decision.type === "deny") {
      // Refused like a failed Parse: an unnamed one is gone on the target too (exec_parse_message
      // drops the unnamed statement before parsing), so the poison takes its name.
      refusals.extended(decision, out, parse.name === "" ? "" : undefined);
      return;
    }
    const effect = sqlEffects(parse.sql)[0] ?? PLAIN;
    const rec: StatementRec =
      decision.deferred === undefined ? { seq, plan: decision.plan, effect } : { seq, plan: decision.plan, effect, held: { deferred: decision.deferred, paramTypes: parse.paramTypes } };
    this.#c.objects.sent(parse.sql, { simple: false, quiet: false });
    model.parse(parse.name, rec);
    out.add(frame.bytes);
  }

  /**
   * What the target holds under `name` by the time this message runs. When the model cannot know
   * yet (an operation on the name in an earlier batch, or SQL that may prepare or deallocate, is
   * unanswered), the collected messages and a Flush go out and the answers are awaited.
   */
  async #settledView(name: string, out: OutBuffer): Promise<{ rec: StatementRec | undefined } | undefined> {
    const { model } = this.#c;
    let view: NameView = model.statementFor(name);
    if (view !== "wait") return view;
    await this.#c.flushUpstream(out);
    this.#c.writeUpstream(encodeFlush());
    while (view === "wait") {
      if (this.#c.finished()) return undefined;
      await model.answered();
      view = model.statementFor(name);
    }
    return view;
  }

  async #onBind(frame: Frame, out: OutBuffer): Promise<void> {
    const bind = decodeBind(frame.body);
    const view = await this.#settledView(bind.statement, out);
    if (view === undefined) return;
    const stmt = view.rec;
    if (stmt !== undefined && stmt.held === undefined && stmt.sql !== true) {
      this.#bound(frame, bind, stmt, stmt.seq, this.#renderParams(bind), stmt.plan, out);
      return;
    }
    // Decided now, with its values: what the client sent before it reaches the target first,
    // what it sends after it stays queued in the reader (as for a held Parse).
    await this.#c.flushUpstream(out);
    if (stmt?.held !== undefined) await this.#onHeldBind(frame, bind, stmt, stmt.held.deferred, stmt.held.paramTypes, out);
    else await this.#onUnknownBind(frame, bind, stmt, out);
  }

  #bound(frame: Frame, bind: BindMessage, stmt: StatementRec | undefined, seq: number, params: readonly (string | null)[], plan: ResultPlan | undefined, out: OutBuffer): void {
    const rec: PortalRec = {
      kind: "bound",
      seq,
      params,
      plan,
      resultFormats: bind.resultFormats,
      effect: stmt?.effect ?? PLAIN,
      hold: false,
      usage: { sent: 0, cut: false },
      ...(stmt === undefined ? {} : { statement: stmt, fields: stmt.fields }),
    };
    this.#c.model.bind(bind.portal, rec);
    out.add(frame.bytes);
  }

  /** Bind parameters as people read them (recordings, approvers): text, or `\x…` hex for binary; capped. */
  #renderParams(bind: BindMessage): (string | null)[] {
    return bind.params.map((v, i) => {
      if (v === null) return null;
      const fmt = bind.paramFormats.length === 1 ? bind.paramFormats[0] : bind.paramFormats[i];
      return renderValue(v, fmt ?? 0, this.#c.maxValueBytes);
    });
  }

  /**
   * A Bind of a statement held for approval: this execution is decided now, with its values
   * (a new request each time; in async mode, an approval of exactly these bytes). Allowed: the
   * Bind goes on and its portal carries the decision's plan. Refused: a poison takes its place
   * and the rest of the batch is skipped until Sync, as the server does after a failed Bind.
   */
  async #onHeldBind(frame: Frame, bind: BindMessage, stmt: StatementRec | undefined, deferred: DeferredHold, paramTypes: readonly number[], out: OutBuffer, judged?: number): Promise<void> {
    const seq = judged ?? ++this.#seq;
    if (judged === undefined) this.statementsJudged++;
    const shown = this.#renderParams(bind);
    const params = { shown, values: bind.params, formats: bind.paramFormats, types: paramTypes };
    // A cost deferral asks for this execution's estimate: EXPLAIN of the statement with these
    // values, types and formats, under the session's search_path (asked only then).
    const previewer = this.#c.previewer;
    const estimate = previewer === undefined ? undefined : () => previewer.estimate(deferred.sql, this.#c.objects.searchPath, params);
    const event: JudgedEvent = { type: "db.execute", session: this.#c.gate.info, seq, deferred, params, ...(estimate === undefined ? {} : { estimate }) };
    const decision = await this.#holding((hooks) => this.#c.gate.judge(event, hooks));
    if (decision.type === "deny") this.#c.refusals.extended(decision, out);
    else this.#bound(frame, bind, stmt, seq, shown, decision.plan, out);
  }

  /**
   * A Bind of a statement this session did not prepare by Parse. A named one may exist on the
   * target through SQL PREPARE (the guardrails know those): it is judged as `EXECUTE name` is,
   * with this Bind's values when held, so a Bind cannot run what an EXECUTE may not, nor escape
   * its masking. The unnamed statement exists only through Parse: a Bind of it when the target
   * holds none is refused (a protocol decision, audited).
   */
  async #onUnknownBind(frame: Frame, bind: BindMessage, stmt: StatementRec | undefined, out: OutBuffer): Promise<void> {
    if (bind.statement === "") {
      const denial = await this.#protocolRefusal("postgres.unknown_statement", "a Bind of the unnamed prepared statement, which does not exist", {
        code: "GW_POLICY_DENIED",
        reason: "the unnamed prepared statement does not exist (its Parse was refused or never sent)",
      });
      this.#c.refusals.extended(denial, out);
      return;
    }
    const seq = ++this.#seq;
    this.statementsJudged++;
    const event: DbQueryEvent = {
      type: "db.query",
      session: this.#c.gate.info,
      seq,
      stage: "execute",
      sql: `EXECUTE "${bind.statement.replaceAll('"', '""')}"`,
      statementName: bind.statement,
    };
    const d = await this.#c.gate.judge(event);
    if (d.type === "deny") {
      this.#c.refusals.extended(d, out);
      return;
    }
    if (d.deferred !== undefined) {
      await this.#onHeldBind(frame, bind, stmt, d.deferred, [], out, seq);
      return;
    }
    this.#bound(frame, bind, stmt, seq, this.#renderParams(bind), d.plan, out);
  }

  /** The preview hook for held writes (JudgeHooks.preview), under the session's search_path. */
  get #previewHook(): Pick<JudgeHooks, "preview"> {
    const previewer = this.#c.previewer;
    return previewer === undefined ? {} : { preview: (stmt) => previewer.preview(stmt, this.#c.objects.searchPath) };
  }

  /**
   * Run a judgement that may wait for a person's decision. A statement held for approval keeps
   * the client's later messages queued behind it (they stay in the reader, in order); the hold
   * ends when the decision, the timeout, a cancel request or the client's disconnect arrives.
   * No gateway timer ends the session meanwhile. One controller serves statement after
   * statement until a cancel uses it up (creating an AbortSignal per statement showed in
   * profiles of the hot path).
   */
  #holding(judge: (hooks: JudgeHooks) => Decision | Promise<Decision>): Decision | Promise<Decision> {
    if (this.#holdController.signal.aborted) this.#holdController = new AbortController();
    const hold = this.#holdController;
    this.#holdAbort = hold;
    let decision: Decision | Promise<Decision>;
    try {
      // Results reach the client only through PgProxySession, which settles the audit first.
      decision = judge({ onHold: this.#onHoldNotice, signal: hold.signal, resolveObjects: this.#c.objects.resolve, settlesBeforeRelease: true, ...this.#previewHook });
    } catch (e) {
      this.#holdEnded();
      throw e;
    }
    // Decided synchronously (nothing was held): no promise.
    if (decision instanceof Promise) return decision.finally(() => this.#holdEnded());
    this.#holdEnded();
    return decision;
  }

  #holdEnded(): void {
    this.#holdAbort = undefined;
    this.#holdWatch?.();
    this.#holdWatch = undefined;
  }

  /**
   * A statement is waiting for approval: tell the client (NoticeResponse, which the protocol
   * allows at any time between messages), and keep reading it meanwhile so that a client that
   * goes away is noticed (EOF ends the session, which cancels the request). Frames read meanwhile
   * queue in the reader behind the held statement, up to a cap; beyond it reading pauses.
   */
  #onHold(notice: HoldNotice): void {
    this.#c.writeClient(renderNotice(notice.message));
    const { client, clientReader: reader } = this.#c;
    const onReadable = (): void => {
      while (reader.buffered < HOLD_READ_CAP) {
        const chunk = client.read() as Buffer | null;
        if (chunk === null) break;
        this.#c.countFromClient(chunk.length);
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
}

/** A quoted SQL identifier (case and characters kept; the guardrails fold names as PostgreSQL does). */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The SQL a fastpath call is judged, audited and recorded as: the call of the function its OID
 * names, one parameter per argument, and a comment naming the OID and the identity arguments
 * (comment delimiters in them defused).
 */
export function fastpathCallSql(fn: FunctionInfo, argCount: number): string {
  const params = Array.from({ length: argCount }, (_, i) => `$${i + 1}`).join(", ");
  const note = `fastpath FunctionCall: oid ${fn.oid}, ${fn.schema}.${fn.name}(${fn.identityArgs})`.replaceAll("*/", "* /").replaceAll("/*", "/ *");
  return `SELECT ${quoteIdent(fn.schema)}.${quoteIdent(fn.name)}(${params}) /* ${note} */`;
}
