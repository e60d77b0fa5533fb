/**
 * The one pipeline that judges every event of every protocol, in one fixed order:
 * access → guardrails → approval → masking plan (evaluators) → audit → record → forward.
 * Engines translate wire traffic into events and render the decisions; they never decide.
 *
 * Invariants:
 * - An audit record is appended (to the local group-committed log) before the engine is told
 *   to forward. If the audit write fails, the decision becomes a deny (fail closed).
 * - The recording stores what the agent saw; audit stores decisions and counts, never values.
 */
import type { Logger } from "pino";
import type { AuditEventInput, AuditLog, AuditPrincipal } from "../audit/types.js";
import { ALLOW, deny, type AllowDecision, type Decision, type ResultPlan } from "../core/decision.js";
import { isGatewayError, type ErrorCode } from "../core/errors.js";
import type { AuthFailureEvent, DbQueryEvent, DbResultEvent, SessionStartEvent } from "../core/events.js";
import type { Principal } from "../core/principal.js";
import type { SessionEndReason, SessionInfo } from "../core/session.js";
import type { RecordingStore, SessionRecorder } from "../recording/types.js";
import { sessionRowFromInfo } from "../store/session-row.js";
import type { Store } from "../store/types.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import type { SessionRegistry, TerminationReason } from "./registry.js";

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
}

export interface SessionStats {
  readonly statements: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

/** Session admission: the first deny wins; otherwise the first explicit allow. */
export function evaluateSession(evaluators: readonly Evaluator[], event: SessionStartEvent): Decision {
  let decision: Decision | undefined;
  for (const evaluator of evaluators) {
    const d = evaluator.evaluateSession?.(event);
    if (d === undefined) continue;
    if (d.type === "deny") return d;
    decision ??= d;
  }
  return decision ?? ALLOW;
}

/**
 * The fastpath function-call interface calls a function by OID with arguments in binary: there
 * is no statement to inspect (e.g. lo_import), so it is refused whatever the policies say.
 */
const FASTPATH_DENIED = deny("GW_POLICY_DENIED", "the fastpath function-call interface is not allowed through the gateway", "no-fastpath");

/** Merge allow decisions: masks accumulate, the smallest row limit wins. */
export function mergeAllows(a: AllowDecision, b: AllowDecision): AllowDecision {
  if (b.plan === undefined) return a.rule === undefined && b.rule !== undefined ? { ...a, rule: b.rule } : a;
  if (a.plan === undefined) return a.rule === undefined ? b : { ...b, rule: a.rule };
  const limitFromB = b.plan.maxRows !== undefined && (a.plan.maxRows === undefined || b.plan.maxRows < a.plan.maxRows);
  const plan: ResultPlan = {
    masks: [...a.plan.masks, ...b.plan.masks],
    ...(limitFromB ? { maxRows: b.plan.maxRows, ...(b.plan.maxRowsRule === undefined ? {} : { maxRowsRule: b.plan.maxRowsRule }) } : {}),
    ...(!limitFromB && a.plan.maxRows !== undefined ? { maxRows: a.plan.maxRows, ...(a.plan.maxRowsRule === undefined ? {} : { maxRowsRule: a.plan.maxRowsRule }) } : {}),
  };
  return { type: "allow", plan, ...(a.rule ?? b.rule) === undefined ? {} : { rule: a.rule ?? b.rule } };
}

/**
 * Statement judgement over the session's evaluators, in order. Synchronous unless an
 * evaluator needs a lookup; the first deny wins, allows merge.
 */
export function evaluateStatement(evaluators: readonly SessionEvaluator[], event: DbQueryEvent): Decision | Promise<Decision> {
  if (event.stage === "function_call") return FASTPATH_DENIED;
  let acc: AllowDecision = ALLOW;
  for (let i = 0; i < evaluators.length; i++) {
    const d = evaluators[i]?.evaluate(event);
    if (d instanceof Promise) return finishAsync(evaluators, event, i, d, acc);
    if (d === undefined) continue;
    if (d.type === "deny") return d;
    acc = mergeAllows(acc, d);
  }
  return acc;
}

async function finishAsync(
  evaluators: readonly SessionEvaluator[],
  event: DbQueryEvent,
  index: number,
  pending: Promise<Decision | undefined>,
  acc: AllowDecision,
): Promise<Decision> {
  let current = acc;
  const first = await pending;
  if (first?.type === "deny") return first;
  if (first !== undefined) current = mergeAllows(current, first);
  for (let i = index + 1; i < evaluators.length; i++) {
    const d = await evaluators[i]?.evaluate(event);
    if (d === undefined) continue;
    if (d.type === "deny") return d;
    current = mergeAllows(current, d);
  }
  return current;
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
      ...(session.principal.tokenId === undefined ? {} : { details: { tokenId: session.principal.tokenId } }),
    });
    if (failed !== undefined) decision = failed;
    if (decision.type === "deny") this.#o.metrics.sessionDenied(session.protocol);
    else this.#o.metrics.sessionOpened(session.protocol);
    if (decision.type === "deny") return { decision };
    const gate = new SessionGate(this, this.#o, session);
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
  #ended = false;

  constructor(pipeline: Pipeline, o: PipelineOptions, info: SessionInfo) {
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
  }

  /** Why the session was terminated, once `signal` has aborted. */
  get termination(): TerminationReason | undefined {
    const r: unknown = this.signal.reason;
    if (typeof r === "object" && r !== null && "reason" in r && "detail" in r) return r as TerminationReason;
    return undefined;
  }

  /** Judge a statement: evaluators, then audit (before forward), then record. */
  async judge(event: DbQueryEvent): Promise<Decision> {
    const judged = evaluateStatement(this.#evaluators, event);
    let decision = judged instanceof Promise ? await judged : judged;
    const failed = await this.#pipeline.audit({
      type: "db.query",
      sessionId: this.info.id,
      principal: this.#principal,
      connection: this.info.connection,
      protocol: this.info.protocol,
      decision: decision.type,
      statement: event.sql,
      ...(decision.type === "deny" ? { code: decision.code, message: decision.message } : {}),
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      details: { seq: event.seq, stage: event.stage },
    });
    if (failed !== undefined) decision = failed;
    this.#o.metrics.statement(this.info.protocol, decision.type);
    this.#recorder.append({
      kind: "query",
      seq: event.seq,
      stage: event.stage,
      sql: event.sql,
      ...(event.statementName === undefined ? {} : { statementName: event.statementName }),
      decision: decision.type,
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      ...(decision.type === "deny" ? { message: decision.message } : {}),
    });
    return decision;
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
