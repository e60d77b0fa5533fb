/**
 * The one pipeline that judges every event of every protocol, in one fixed order:
 * access → guardrails → approval → masking plan (evaluators) → audit → record → forward.
 * Engines translate wire traffic into events and render the decisions; they never decide.
 *
 * Invariants:
 * - An audit record is appended (to the local group-committed log) before the engine is told
 *   to forward. If the audit write fails, the decision becomes a deny (fail closed). A held
 *   Parse, which runs nothing, is decided and audited at each of its Binds (judgeDeferring).
 * - The recording stores what the agent saw; audit stores decisions and counts, never values.
 */
import type { Logger } from "pino";
import type { AuditEventInput, AuditLog, AuditPrincipal } from "../audit/types.js";
import { deny, type Decision, type HoldDecision, type Verdict } from "../core/decision.js";
import { isGatewayError, type ErrorCode } from "../core/errors.js";
import type { AuthFailureEvent, DbQueryEvent, DbResultEvent, SessionStartEvent, SshCommandEvent } from "../core/events.js";
import type { Principal } from "../core/principal.js";
import type { SessionEndReason, SessionInfo } from "../core/session.js";
import type { RecordingStore, SessionRecorder } from "../recording/types.js";
import { sessionRowFromInfo } from "../store/session-row.js";
import type { Store } from "../store/types.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { combineVerdicts, evaluateSession, evaluateStatement } from "./verdicts.js";
import type { SessionRegistry, TerminationReason } from "./registry.js";

export { evaluateSession, evaluateStatement, mergeAllows } from "./verdicts.js";

/** The counters the pipeline feeds (implemented by observability/metrics GatewayMetrics). */
export interface PipelineMetrics {
  sessionOpened(protocol: string): void;
  sessionDenied(protocol: string): void;
  sessionClosed(protocol: string, reason: SessionEndReason): void;
  statement(protocol: string, decision: "allow" | "deny"): void;
  authFailure(protocol: string, code: ErrorCode): void;
  auditWriteError(): void;
  bytes(protocol: string, direction: "from_client" | "to_client", n: number): void;
}

export interface PipelineOptions {
  readonly evaluators: readonly Evaluator[];
  readonly audit: AuditLog;
  readonly recordings: RecordingStore;
  readonly store: Store;
  readonly registry: SessionRegistry;
  readonly metrics: PipelineMetrics;
  readonly logger: Logger;
  /** End sessions when the principal's credential expires. */
  readonly endSessionsAtExpiry: boolean;
  /** Approvals and access grants (src/approvals). Without it, holds are refused. */
  readonly approvals?: HoldResolver;
}

/** What an engine is told while a statement waits for a person's decision. */
export interface HoldNotice {
  readonly approvalId: string;
  /** e.g. "waiting for approval …: airlock approvals approve ID" (no secrets). */
  readonly message: string;
}

/** Engine hooks for one judgement. */
export interface JudgeHooks {
  /** Called once when the statement is held (wait mode), before waiting. */
  readonly onHold?: (notice: HoldNotice) => void;
  /** Aborts the wait (e.g. the client sent a cancel request). */
  readonly signal?: AbortSignal;
}

/**
 * A prepared statement (extended-protocol Parse) whose verdict is a hold. Preparing runs
 * nothing, so the Parse is forwarded and the hold is kept, unresolved, for its executions:
 * every Bind is decided on its own, with its parameters, by `SessionGate.resolveDeferred`.
 * Engines keep it as is and hand it back; they never look inside.
 */
export interface DeferredHold {
  readonly type: "deferred";
  readonly hold: HoldDecision;
  readonly sql: string;
  readonly statementName?: string;
}

/**
 * Bind parameters of one execution. `shown` is what people read (approvers, recordings: text,
 * or `\x…` hex for binary, capped); an async approval is bound to the raw values, their format
 * codes and the declared types, so two values that render alike (clipped) never match.
 */
export interface BoundParams {
  readonly shown: readonly (string | null)[];
  readonly values: readonly (Uint8Array | null)[];
  /** As in Bind: empty = all text, one entry = applies to all, else one per value. */
  readonly formats: readonly number[];
  /** Type OIDs declared at Parse (0 or missing = unspecified). */
  readonly types: readonly number[];
}

/** Turns holds into allow or deny, and grants into session admission (implemented by src/approvals). */
export interface HoldResolver {
  /** Session admission with access grants: may turn an access deny into an allow, or require a grant. */
  admit(session: SessionInfo, decision: Decision): { readonly decision: Decision; readonly grantUntil?: Date };
  resolve(request: HoldRequest): Promise<{ readonly decision: Decision; readonly approvalId?: string }>;
}

export interface HoldRequest {
  readonly session: SessionInfo;
  readonly hold: HoldDecision;
  /** The exact statement or command. */
  readonly text: string;
  /** Bind parameters of the execution (extended protocol). */
  readonly params?: BoundParams;
  /** Aborted when the client goes away or the session ends: the request is cancelled. */
  readonly signal: AbortSignal;
  readonly onHold?: (notice: HoldNotice) => void;
}

export interface SessionStats {
  readonly statements: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

export function auditPrincipal(p: Principal): AuditPrincipal {
  return { id: p.id, kind: p.kind, name: p.name };
}

export class Pipeline {
  readonly #o: PipelineOptions;

  constructor(options: PipelineOptions) {
    this.#o = options;
  }

  /**
   * Appends an audit record; on failure returns the fail-closed deny to use instead.
   * Exported to sessions through `SessionGate`.
   */
  async audit(input: AuditEventInput): Promise<Decision | undefined> {
    try {
      await this.#o.audit.append(input);
      return undefined;
    } catch (e) {
      this.#o.metrics.auditWriteError();
      this.#o.logger.error({ err: e, type: input.type }, "audit write failed; refusing");
      const code = isGatewayError(e) ? e.code : "GW_AUDIT_UNAVAILABLE";
      return deny(code === "GW_AUDIT_UNAVAILABLE" ? code : "GW_AUDIT_UNAVAILABLE", "the audit log is unavailable, so nothing is forwarded");
    }
  }

  /**
   * Judge a new session. On allow, the session is registered (it can be terminated from now
   * on), its recording is opened and a gate for its statements is returned.
   */
  async startSession(session: SessionInfo): Promise<{ decision: Decision; gate?: SessionGate }> {
    const event: SessionStartEvent = { type: "session.start", session };
    let decision = evaluateSession(this.#o.evaluators, event);
    // Access grants: time-boxed access to a connection the groups do not give (or that needs a grant).
    const admitted = this.#o.approvals?.admit(session, decision);
    if (admitted !== undefined) {
      // A grant stands in for the groups check only: every other evaluator still judges the session.
      const granted = decision.type === "deny" && admitted.decision.type === "allow";
      decision = admitted.decision;
      if (granted) {
        const others = evaluateSession(
          this.#o.evaluators.filter((e) => e.name !== "access"),
          event,
        );
        if (others.type === "deny") decision = others;
      }
    }
    const grantUntil = decision.type === "allow" ? admitted?.grantUntil : undefined;
    const failed = await this.audit({
      type: "session.start",
      sessionId: session.id,
      principal: auditPrincipal(session.principal),
      connection: session.connection,
      protocol: session.protocol,
      clientAddress: session.clientAddress,
      decision: decision.type,
      ...(decision.type === "deny" ? { code: decision.code, message: decision.message } : {}),
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      ...(session.principal.tokenId === undefined && grantUntil === undefined
        ? {}
        : {
            details: {
              ...(session.principal.tokenId === undefined ? {} : { tokenId: session.principal.tokenId }),
              ...(grantUntil === undefined ? {} : { grantUntil: grantUntil.toISOString() }),
            },
          }),
    });
    if (failed !== undefined) decision = failed;
    if (decision.type === "deny") this.#o.metrics.sessionDenied(session.protocol);
    else this.#o.metrics.sessionOpened(session.protocol);
    if (decision.type === "deny") return { decision };
    const gate = new SessionGate(this, this.#o, session, grantUntil);
    return { decision, gate };
  }

  /** Facts outside any session (authentication failures). Never throws. */
  async authFailure(event: AuthFailureEvent): Promise<void> {
    this.#o.metrics.authFailure(event.protocol, event.code);
    await this.audit({
      type: "auth.failure",
      protocol: event.protocol,
      clientAddress: event.clientAddress,
      code: event.code,
      message: event.reason,
      decision: "deny",
      ...(event.connection === undefined ? {} : { connection: event.connection }),
      ...(event.claimedUser === undefined ? {} : { details: { claimedUser: event.claimedUser } }),
    });
  }
}

/**
 * The pipeline's view of one admitted session: judges its statements, records its results,
 * and ends it. `signal` aborts (with a TerminationReason) when the session must end.
 */
export class SessionGate {
  readonly info: SessionInfo;
  readonly signal: AbortSignal;
  readonly #pipeline: Pipeline;
  readonly #o: PipelineOptions;
  readonly #recorder: SessionRecorder;
  readonly #unregister: () => void;
  readonly #stored: Promise<void>;
  readonly #principal: AuditPrincipal;
  readonly #evaluators: readonly SessionEvaluator[];
  /** Settings to inject into the target session at connect (limits from policies). */
  readonly settings: Readonly<Record<string, string>>;
  #expiryTimer: NodeJS.Timeout | undefined;
  #grantTimer: NodeJS.Timeout | undefined;
  /** Aborted when the session ends: statements waiting for approval are cancelled. */
  readonly #holds = new AbortController();
  #ended = false;

  constructor(pipeline: Pipeline, o: PipelineOptions, info: SessionInfo, grantUntil?: Date) {
    this.#pipeline = pipeline;
    this.#o = o;
    this.info = info;
    this.#principal = auditPrincipal(info.principal);
    const evaluators: SessionEvaluator[] = [];
    const settings: Record<string, string> = {};
    for (const e of o.evaluators) {
      const se = e.openSession?.(info);
      if (se === undefined) continue;
      evaluators.push(se);
      Object.assign(settings, se.settings);
    }
    this.#evaluators = evaluators;
    this.settings = settings;
    const live = o.registry.register(info);
    this.signal = live.signal;
    this.#unregister = () => {
      live.unregister();
    };
    this.#recorder = o.recordings.open(info.id);
    this.#recorder.append({
      kind: "header",
      sessionId: info.id,
      protocol: info.protocol,
      connection: info.connection,
      principal: info.principal.id,
      startedAt: info.startedAt.toISOString(),
      version: 1,
    });
    // The session row is for listing; the audit record above is the authoritative fact,
    // so a slow store never delays the data path.
    this.#stored = o.store
      .insertSession(sessionRowFromInfo(info))
      .catch((e: unknown) => {
        o.logger.error({ err: e, sessionId: info.id }, "could not store session row");
      });
    const expiresAt = info.principal.expiresAt;
    if (o.endSessionsAtExpiry && expiresAt !== undefined) {
      const ms = expiresAt.getTime() - Date.now();
      // setTimeout caps at ~24.8 days; tokens are far shorter-lived than that.
      this.#expiryTimer = setTimeout(
        () => {
          o.registry.terminate({ sessionId: info.id }, "expired", "the access token expired");
        },
        Math.max(0, Math.min(ms, 2_147_000_000)),
      );
      this.#expiryTimer.unref();
    }
    if (grantUntil !== undefined) {
      // Admitted under an access grant: the session ends with the grant.
      this.#grantTimer = setTimeout(
        () => {
          o.registry.terminate({ sessionId: info.id }, "expired", "the access grant expired");
        },
        Math.max(0, Math.min(grantUntil.getTime() - Date.now(), 2_147_000_000)),
      );
      this.#grantTimer.unref();
    }
    this.signal.addEventListener(
      "abort",
      () => {
        this.#holds.abort(`the session was ended: ${this.termination?.detail ?? "terminated"}`);
      },
      { once: true },
    );
  }

  /** Why the session was terminated, once `signal` has aborted. */
  get termination(): TerminationReason | undefined {
    const r: unknown = this.signal.reason;
    if (typeof r === "object" && r !== null && "reason" in r && "detail" in r) return r as TerminationReason;
    return undefined;
  }

  /**
   * Turn a hold into the final decision: approvals (wait or async) and grants are resolved by
   * the HoldResolver. Any judge method (SQL statements, shell commands) calls this. Fails closed.
   */
  async #resolveHold(hold: HoldDecision, text: string, params: BoundParams | undefined, hooks: JudgeHooks): Promise<{ decision: Decision; approvalId?: string }> {
    const resolver = this.#o.approvals;
    if (resolver === undefined) {
      const what = hold.need === "approval" ? `approval by ${hold.approvers.join(", ")} is required` : "an access grant is required";
      return { decision: deny("GW_POLICY_DENIED", `${hold.message} (${what}; approvals are not enabled on this gateway)`, hold.rule) };
    }
    const signal = hooks.signal === undefined ? this.#holds.signal : AbortSignal.any([this.#holds.signal, hooks.signal]);
    try {
      const r = await resolver.resolve({
        session: this.info,
        hold,
        text,
        ...(params === undefined ? {} : { params }),
        signal,
        ...(hooks.onHold === undefined ? {} : { onHold: hooks.onHold }),
      });
      // A deferred hold's statement was defined when its Parse went through (judgeParse).
      if (r.decision.type === "allow" && params === undefined) hold.onAllowed?.();
      return r;
    } catch (e) {
      this.#o.logger.error({ err: e, sessionId: this.info.id, rule: hold.rule }, "approval could not be resolved; refusing");
      return { decision: deny("GW_POLICY_DENIED", `${hold.message}: approvals are unavailable right now, so it is refused (fail closed)`, hold.rule) };
    }
  }

  /** Judge a statement: evaluators, then approval, then audit (before forward), then record. */
  async judge(event: DbQueryEvent, hooks: JudgeHooks = {}): Promise<Decision> {
    const judged = evaluateStatement(this.#evaluators, event);
    const verdict = judged instanceof Promise ? await judged : judged;
    return this.#conclude(verdict, hooks, statementWhat(event));
  }

  /**
   * Judge an extended-protocol statement whose values come with its Bind (a Parse; or a Bind
   * of a statement prepared by SQL PREPARE). Like `judge`, except that a hold is not resolved
   * now but returned as a DeferredHold: preparing a statement runs nothing, and the approval
   * request must show what will run, which the parameters of each Bind complete (protocol-flow
   * "Extended Query"). Nothing is audited or recorded for a deferred hold yet: the decision is
   * made, audited and recorded at each Bind (`resolveDeferred`). A Parse defines its statement
   * for later ones at once (EXECUTE of it is judged with its facts): the target now has it.
   */
  async judgeDeferring(event: DbQueryEvent): Promise<Decision | DeferredHold> {
    const judged = evaluateStatement(this.#evaluators, event);
    const verdict = judged instanceof Promise ? await judged : judged;
    if (verdict.type === "hold") {
      verdict.onAllowed?.();
      return { type: "deferred", hold: verdict, sql: event.sql, ...(event.statementName === undefined ? {} : { statementName: event.statementName }) };
    }
    return this.#conclude(verdict, {}, statementWhat(event));
  }

  /**
   * Decide one execution (Bind) of a statement whose Parse was deferred: the hold is resolved
   * with this Bind's parameters (a new approval request each time, or an async approval bound
   * to exactly these values), then audited and recorded under `seq` like any judgement.
   */
  async resolveDeferred(deferred: DeferredHold, execution: { readonly seq: number; readonly params: BoundParams }, hooks: JudgeHooks = {}): Promise<Decision> {
    return this.#conclude(deferred.hold, hooks, {
      audit: "db.query",
      text: deferred.sql,
      seq: execution.seq,
      stage: "bind",
      details: { seq: execution.seq, stage: "bind" },
      params: execution.params,
      ...(deferred.statementName === undefined ? {} : { statementName: deferred.statementName }),
    });
  }

  /**
   * Judge an SSH command, shell line, channel or forward (issue 6) in the same order as
   * `judge`. Recorded as a `query` entry (stage = the SSH event type) so `airlock sessions show`
   * lists SSH commands like statements; the terminal stream itself goes to the asciicast file.
   */
  async judgeCommand(event: SshCommandEvent, hooks: JudgeHooks = {}): Promise<Decision> {
    const judged = combineVerdicts(this.#evaluators, (e) => e.evaluateCommand?.(event));
    const verdict = judged instanceof Promise ? await judged : judged;
    return this.#conclude(verdict, hooks, {
      audit: "ssh.command",
      text: sshCommandText(event),
      seq: event.seq,
      stage: event.type,
      details: { seq: event.seq, kind: event.type },
    });
  }

  /** The common tail of every judgement: resolve a hold, audit (fail closed), count, record. */
  async #conclude(
    verdict: Verdict,
    hooks: JudgeHooks,
    what: {
      readonly audit: "db.query" | "ssh.command";
      readonly text: string;
      readonly seq: number;
      readonly stage: string;
      readonly details: Readonly<Record<string, string | number>>;
      readonly statementName?: string;
      /** Bind parameters: go to the approval request and the recording, never to the audit log (values). */
      readonly params?: BoundParams;
    },
  ): Promise<Decision> {
    let decision: Decision;
    let approvalId: string | undefined;
    if (verdict.type === "hold") {
      const r = await this.#resolveHold(verdict, what.text, what.params, hooks);
      decision = r.decision;
      approvalId = r.approvalId;
    } else decision = verdict;
    const failed = await this.#pipeline.audit({
      type: what.audit,
      sessionId: this.info.id,
      principal: this.#principal,
      connection: this.info.connection,
      protocol: this.info.protocol,
      decision: decision.type,
      statement: what.text,
      ...(decision.type === "deny" ? { code: decision.code, message: decision.message } : {}),
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      details: { ...what.details, ...(approvalId === undefined ? {} : { approvalId }) },
    });
    if (failed !== undefined) decision = failed;
    this.#o.metrics.statement(this.info.protocol, decision.type);
    this.#recorder.append({
      kind: "query",
      seq: what.seq,
      stage: what.stage,
      sql: what.text,
      ...(what.statementName === undefined ? {} : { statementName: what.statementName }),
      ...(what.params === undefined ? {} : { params: what.params.shown }),
      decision: decision.type,
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      ...(decision.type === "deny" ? { message: decision.message } : {}),
    });
    return decision;
  }

  /** Facts about an SSH channel worth keeping (sftp operations, forwarded bytes): recorded and audited as counts. */
  sshFact(seq: number, stage: string, text: string, details: Readonly<Record<string, string | number | boolean>>): void {
    // The details (sizes, SHA-256 hashes, byte counts) go into the recording as `k=v` pairs.
    const facts = Object.entries(details).map(([k, v]) => `${k}=${String(v)}`).join(" ");
    this.#recorder.append({ kind: "query", seq, stage, sql: text, decision: "allow", ...(facts === "" ? {} : { message: facts }) });
    void this.#pipeline.audit({
      type: "ssh.command",
      sessionId: this.info.id,
      principal: this.#principal,
      connection: this.info.connection,
      protocol: this.info.protocol,
      statement: text,
      details: { seq, kind: stage, ...details },
    });
  }

  /** A statement's result as the client received it: recorded, never audited by value. */
  result(event: DbResultEvent): void {
    this.#recorder.append({
      kind: "result",
      seq: event.seq,
      resultKind: event.kind,
      rowCount: event.rowCount,
      durationMs: event.durationMs,
      ...(event.params === undefined ? {} : { params: event.params }),
      ...(event.commandTag === undefined ? {} : { commandTag: event.commandTag }),
      ...(event.columns === undefined ? {} : { columns: event.columns }),
      ...(event.rows === undefined ? {} : { rows: event.rows }),
      ...(event.rowsTruncated === true ? { rowsTruncated: true } : {}),
      ...(event.error === undefined ? {} : { error: event.error }),
      ...(event.masked === undefined ? {} : { masked: event.masked }),
      ...(event.rowsSent === undefined ? {} : { rowsSent: event.rowsSent }),
    });
    if (event.masked !== undefined || event.rowsSent !== undefined) {
      // Counts per kind, never values. Not awaited: the result has already been delivered.
      const details: Record<string, number> = { seq: event.seq, rowCount: event.rowCount };
      for (const [k, n] of Object.entries(event.masked ?? {})) details[`masked.${k}`] = n;
      if (event.rowsSent !== undefined) details["rowsSent"] = event.rowsSent;
      void this.#pipeline.audit({
        type: "db.result",
        sessionId: this.info.id,
        principal: this.#principal,
        connection: this.info.connection,
        protocol: this.info.protocol,
        details,
      });
    }
  }

  /** End the session: audit, close the recording, update the store. Idempotent. */
  async end(reason: SessionEndReason, stats: SessionStats, detail?: string): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    if (this.#grantTimer !== undefined) clearTimeout(this.#grantTimer);
    this.#holds.abort("the client went away or the session ended");
    this.#unregister();
    this.#o.metrics.sessionClosed(this.info.protocol, reason);
    this.#o.metrics.bytes(this.info.protocol, "from_client", stats.bytesFromClient);
    this.#o.metrics.bytes(this.info.protocol, "to_client", stats.bytesToClient);
    this.#recorder.append({ kind: "end", reason, ...(detail === undefined ? {} : { detail }) });
    await this.#pipeline.audit({
      type: "session.end",
      sessionId: this.info.id,
      principal: this.#principal,
      connection: this.info.connection,
      protocol: this.info.protocol,
      details: {
        reason,
        statements: stats.statements,
        bytesFromClient: stats.bytesFromClient,
        bytesToClient: stats.bytesToClient,
        ...(detail === undefined ? {} : { detail }),
      },
    });
    await this.#recorder.close().catch((e: unknown) => this.#o.logger.error({ err: e }, "recording close failed"));
    await this.#stored;
    await this.#o.store
      .endSession(this.info.id, { endedAt: new Date(), reason, ...(detail === undefined ? {} : { detail }), ...stats })
      .catch((e: unknown) => this.#o.logger.error({ err: e, sessionId: this.info.id }, "could not store session end"));
  }
}

/** How a statement is audited and recorded (`#conclude`'s `what`). */
function statementWhat(event: DbQueryEvent): {
  readonly audit: "db.query";
  readonly text: string;
  readonly seq: number;
  readonly stage: string;
  readonly details: Readonly<Record<string, string | number>>;
  readonly statementName?: string;
} {
  return {
    audit: "db.query",
    text: event.sql,
    seq: event.seq,
    stage: event.stage,
    details: { seq: event.seq, stage: event.stage },
    ...(event.statementName === undefined ? {} : { statementName: event.statementName }),
  };
}

/** The text an SSH event is audited and recorded under. */
export function sshCommandText(event: SshCommandEvent): string {
  switch (event.type) {
    case "ssh.exec":
      return event.command;
    case "ssh.input":
      return event.line;
    case "ssh.channel":
      return event.channel === "shell" ? "(interactive shell)" : `(subsystem ${event.name ?? "?"})`;
    case "ssh.forward":
      return `(forward to ${event.host}:${event.port})`;
  }
}
