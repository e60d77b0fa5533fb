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
 *
 * Longer than ~500 lines on purpose: the Pipeline (session admission) and the SessionGate it
 * hands out (the engines' Judge: routing, hold resolution, audit, record, end) are one piece
 * whose order is the security property; evaluators and verdict merging live in their own files.
 */
import type { Logger } from "pino";
import { auditPrincipal, type AuditEventInput, type AuditLog, type AuditPrincipal } from "../audit/types.js";
import { deny, type CostDeferral, type Decision, type DenyDecision, type EvaluatorVerdict, type HoldDecision, type Verdict } from "../core/decision.js";
import { isGatewayError, type ErrorCode } from "../core/errors.js";
import type {
  AuthFailureEvent,
  BoundParams,
  DbExecuteEvent,
  DbQueryEvent,
  DbResultEvent,
  JudgedEvent,
  JudgedKind,
  ObservedEvent,
  SessionStartEvent,
  SshCommandEvent,
  TransferFactEvent,
} from "../core/events.js";
import type { HoldNotice, JudgeHooks, SessionJudge, StatementTimeoutLimit } from "../core/judge.js";
import type { ObjectBinding } from "../core/objects.js";
import type { GuardFactory, ResultWatch, SessionGuards } from "../core/result-watch.js";
import type { StatementPreview } from "../core/preview.js";
import type { SessionEndReason, SessionInfo, SessionStats, TerminationReason } from "../core/session.js";
import type { RecordingStore, SessionRecorder } from "../recording/types.js";
import { sessionRowFromInfo } from "../store/session-row.js";
import type { Store } from "../store/types.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { evaluateEvent, evaluateSession, settledVerdict } from "./verdicts.js";
import type { SessionRegistry } from "./registry.js";

export { evaluateEvent, evaluateSession, mergeAllows } from "./verdicts.js";
export type { BoundParams, DeferredHold } from "../core/events.js";
export type { HoldNotice, JudgeHooks } from "../core/judge.js";
export type { SessionStats } from "../core/session.js";

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
  /** Budgets, result scanning and canaries per session (src/scan/watch.ts). */
  readonly guards?: GuardFactory;
}

/** Turns holds into allow or deny, and grants into session admission (implemented by src/approvals). */
export interface HoldResolver {
  /** Session admission with access grants: may turn an access deny into an allow, or require a grant. */
  admit(session: SessionInfo, decision: Decision): { readonly decision: Decision; readonly grantUntil?: Date };
  /** `objects`: what the statement's names resolved to when it was released (allowed approvals bound to objects). */
  resolve(request: HoldRequest): Promise<{ readonly decision: Decision; readonly approvalId?: string; readonly objects?: ObjectBinding }>;
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
  /**
   * Resolves the objects the statement names on the target, now (engine-provided): called when
   * the request is made and again when the approved statement is released; the approval holds
   * only while both agree. Rejects when they cannot be resolved (the hold is refused).
   */
  readonly bindObjects?: () => Promise<ObjectBinding>;
  /** An execution of a prepared statement: what its names resolved to when it was prepared. */
  readonly preparedObjects?: ObjectBinding;
  /**
   * Runs the held statement in a rolled-back transaction on the target (holds with `preview`,
   * engine-provided): when the request is made and again when the approved statement is released.
   */
  readonly preview?: () => Promise<StatementPreview>;
}

/** Held SQL PREPAREs whose bindings a session keeps (the oldest is forgotten beyond it). */
const MAX_PREPARED_BINDINGS = 1_000;

const AUDIT_UNAVAILABLE = deny("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable, so nothing is forwarded");



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
      return AUDIT_UNAVAILABLE;
    }
  }

  /**
   * Queues an allowed statement's audit record when the log can make it durable on demand
   * (`settleAudit`, called by the engine before the result is released); otherwise appends it
   * as `audit` does. Returns the fail-closed deny on failure.
   */
  auditQueued(input: AuditEventInput): number | Decision | Promise<Decision | undefined> {
    const log = this.#o.audit;
    if (log.queue === undefined || log.settle === undefined) return this.audit(input);
    try {
      return log.queue(input)?.seq ?? this.audit(input);
    } catch (e) {
      this.#o.metrics.auditWriteError();
      this.#o.logger.error({ err: e, type: input.type }, "audit write failed; refusing");
      return AUDIT_UNAVAILABLE;
    }
  }

  /** Makes queued audit records up to `seq` durable; false when the log failed (see SessionJudge.settle). */
  settleAudit(seq: number): boolean {
    const log = this.#o.audit;
    if (log.settle === undefined || log.settle(seq)) return true;
    this.#o.metrics.auditWriteError();
    return false;
  }

  /**
   * Judge a new session. On allow, the session is registered (it can be terminated from now
   * on), its recording is opened and a gate for its statements is returned.
   */
  async startSession(session: SessionInfo, refusal?: DenyDecision): Promise<{ decision: Decision; gate?: SessionGate }> {
    const event: SessionStartEvent = { type: "session.start", session };
    // A refusal the admission step already knows (a connection this client protocol cannot
    // reach) is audited like any session decision; no grant stands in for it.
    let decision: Decision = refusal ?? evaluateSession(this.#o.evaluators, event);
    // Access grants: time-boxed access to a connection the groups do not give (or that needs a grant).
    const admitted = refusal === undefined ? this.#o.approvals?.admit(session, decision) : undefined;
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
      protocol: session.clientProtocol,
      clientAddress: session.clientAddress,
      decision: decision.type,
      ...(decision.type === "deny" ? { code: decision.code, message: decision.message } : {}),
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      details: {
        target: session.targetType,
        ...(session.principal.tokenId === undefined ? {} : { tokenId: session.principal.tokenId }),
        ...(grantUntil === undefined ? {} : { grantUntil: grantUntil.toISOString() }),
      },
    });
    if (failed !== undefined) decision = failed;
    if (decision.type === "deny") this.#o.metrics.sessionDenied(session.clientProtocol);
    else this.#o.metrics.sessionOpened(session.clientProtocol);
    if (decision.type === "deny") return { decision };
    const gate = new SessionGate(this, this.#o, session, grantUntil);
    return { decision, gate };
  }

  /**
   * A dry run of the live judgement (MCP `check_policy`): the session-level decision, then the
   * verdict of the same evaluators, opened for `session` as the live judge opens them, for
   * `event`. Nothing is audited, recorded, registered or held; a hold comes back as the hold
   * (who would approve, which rule). Access grants are not consulted (a grant-only access reads
   * as the groups' deny).
   */
  async preview(session: SessionInfo, event: JudgedEvent): Promise<Verdict> {
    const start = evaluateSession(this.#o.evaluators, { type: "session.start", session });
    if (start.type === "deny") return start;
    if (!this.#o.evaluators.some((e) => e.kinds.includes(event.type))) {
      return deny("GW_UNSUPPORTED", `no evaluator judges ${event.type} events, so it is refused (fail closed)`, "fail-closed");
    }
    const sessions = this.#o.evaluators.flatMap((e) => {
      const se = e.openSession?.(session);
      return se !== undefined && se.kinds.includes(event.type) ? [se] : [];
    });
    return sessions.length === 0 ? ALLOW_NO_OPINION : settledVerdict(await evaluateEvent(sessions, event));
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


/** How one judgement is audited and recorded. */
interface Judged {
  readonly audit: "db.query" | "ssh.command" | "protocol.request" | "http.request" | "k8s.request" | "mcp.tool_call";
  readonly text: string;
  readonly seq: number;
  readonly stage: string;
  readonly details: Readonly<Record<string, string | number>>;
  readonly statementName?: string;
  /** Execution values: go to the approval request and the recording, never to the audit log. */
  readonly params?: BoundParams;
  /** An execution of a held prepared statement: what its names resolved to when it was prepared. */
  readonly preparedObjects?: ObjectBinding;
}

/**
 * The pipeline's view of one admitted session (the engine's `SessionJudge`): judges its events,
 * records and audits its facts, and ends it. `signal` aborts (with a TerminationReason) when
 * the session must end.
 */
export class SessionGate implements SessionJudge {
  readonly info: SessionInfo;
  readonly signal: AbortSignal;
  readonly #pipeline: Pipeline;
  readonly #o: PipelineOptions;
  readonly #recorder: SessionRecorder;
  /** The last audit seq queued for this session's statements (0: none): what settle() makes durable. */
  #queuedAuditSeq = 0;
  readonly #unregister: () => void;
  readonly #stored: Promise<void>;
  readonly #principal: AuditPrincipal;
  /** The session's evaluators that opted in to each kind, in pipeline order. */
  readonly #routes = new Map<JudgedKind, SessionEvaluator[]>();
  /** Kinds some evaluator of the pipeline judges; any other kind is refused (fail closed). */
  readonly #known: ReadonlySet<JudgedKind>;
  /** Settings to inject into the target session at connect (limits from policies). */
  readonly settings: Readonly<Record<string, string>>;
  readonly statementTimeout?: StatementTimeoutLimit;
  /** Budgets and result scanning (absent: none apply to this session). */
  readonly #guards: SessionGuards | undefined;
  readonly results?: ResultWatch;
  #expiryTimer: NodeJS.Timeout | undefined;
  #grantTimer: NodeJS.Timeout | undefined;
  /** Aborted when the session ends: statements waiting for approval are cancelled. */
  readonly #holds = new AbortController();
  /**
   * What held statements made by SQL PREPARE were prepared against, by name (the target analyses
   * them then): each EXECUTE of one is approved only while its names still resolve the same.
   */
  readonly #preparedObjects = new Map<string, ObjectBinding>();
  #ended = false;

  constructor(pipeline: Pipeline, o: PipelineOptions, info: SessionInfo, grantUntil?: Date) {
    this.#pipeline = pipeline;
    this.#o = o;
    this.info = info;
    this.#principal = auditPrincipal(info.principal);
    const settings: Record<string, string> = {};
    let timeout: StatementTimeoutLimit | undefined;
    this.#known = new Set(o.evaluators.flatMap((e) => e.kinds));
    for (const e of o.evaluators) {
      const se = e.openSession?.(info);
      if (se === undefined) continue;
      for (const kind of se.kinds) {
        let list = this.#routes.get(kind);
        if (list === undefined) this.#routes.set(kind, (list = []));
        list.push(se);
      }
      Object.assign(settings, se.settings);
      if (se.statementTimeout !== undefined && (timeout === undefined || se.statementTimeout.ms < timeout.ms)) timeout = se.statementTimeout;
    }
    this.settings = settings;
    if (timeout !== undefined) this.statementTimeout = timeout;
    this.#guards = o.guards?.open(info);
    if (this.#guards?.watch !== undefined) this.results = this.#guards.watch;
    const live = o.registry.register(info);
    this.signal = live.signal;
    this.#unregister = () => {
      live.unregister();
    };
    this.#recorder = o.recordings.open(info.id);
    this.#recorder.append({
      kind: "header",
      sessionId: info.id,
      protocol: info.clientProtocol,
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
      this.#expiryTimer = endAt(expiresAt, () => o.registry.terminate({ sessionId: info.id }, "expired", "the access token expired"));
    }
    if (grantUntil !== undefined) {
      // Admitted under an access grant: the session ends with the grant.
      this.#grantTimer = endAt(grantUntil, () => o.registry.terminate({ sessionId: info.id }, "expired", "the access grant expired"));
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
   * Judge an event: the evaluators that opted in to its kind, then approval, then audit (before
   * the engine forwards anything; a failed write denies), then record.
   *
   * Prepared statements (`db.query` at stage `prepare` or `execute`): a hold is not resolved
   * now. Preparing runs nothing, and the approval request must show what will run, which the
   * values of each execution complete: the answer is an allow carrying the hold (`deferred`),
   * and each execution is decided on its own as a `db.execute` event. Nothing is audited or
   * recorded for a deferred hold until then. The statement is defined for later ones at once
   * (an SQL EXECUTE of it is judged with its facts): the target now has it.
   *
   * A cost deferral (a cost rule on a statement prepared with parameters) is deferred the same
   * way: each execution is decided by the evaluator with that execution's estimate (the
   * engine's `estimate`, EXPLAIN with its values), and the verdict (allow, deny or a hold,
   * resolved now with the execution's values) is audited and recorded as any.
   */
  judge(event: JudgedEvent, hooks: JudgeHooks = {}): Promise<Decision> {
    try {
      const d = this.judgeNow(event, hooks);
      return d instanceof Promise ? d : Promise.resolve(d);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /**
   * `judge`, answered synchronously when nothing has to be waited for: a synchronous (cached)
   * verdict, no hold, and an allow whose audit record is queued (`settlesBeforeRelease`) — the
   * hot path of a statement, with no promise or microtask hop. Everything else (holds, denies,
   * whose record is written before the refusal goes out, asynchronous evaluators) returns the
   * promise `judge` would. The order of the steps is the same either way.
   */
  judgeNow(event: JudgedEvent, hooks: JudgeHooks = {}): Decision | Promise<Decision> {
    if (event.type === "db.execute") return this.#judgeExecution(event, hooks);
    // Most verdicts are synchronous (cached): no await, so no microtask hop, for those.
    const evaluated = this.#evaluate(event);
    if (evaluated instanceof Promise) return evaluated.then((verdict) => this.#judged(event, verdict, hooks));
    return this.#judged(event, evaluated, hooks);
  }

  /** One execution of a prepared statement whose hold or cost rule was deferred: decided now, with its values. */
  async #judgeExecution(event: DbExecuteEvent, hooks: JudgeHooks): Promise<Decision> {
    const { deferred } = event;
    const verdict = deferred.hold.type === "defer" ? await deferred.hold.decide(event.estimate) : deferred.hold;
    return this.#conclude(verdict, hooks, {
      ...(deferred.objects === undefined ? {} : { preparedObjects: deferred.objects }),
      audit: "db.query",
      text: deferred.sql,
      seq: event.seq,
      stage: "execute",
      details: { seq: event.seq, stage: "execute" },
      params: event.params,
      ...(deferred.statementName === undefined ? {} : { statementName: deferred.statementName }),
    });
  }

  #judged(event: Exclude<JudgedEvent, { readonly type: "db.execute" }>, verdict: EvaluatorVerdict, hooks: JudgeHooks): Decision | Promise<Decision> {
    if ((verdict.type === "hold" || verdict.type === "defer") && event.type === "db.query" && event.stage !== "simple") return this.#deferHold(event, verdict, hooks);
    // A cost deferral is only ever decided per execution: anywhere else it is refused (fail closed).
    if (verdict.type === "defer") {
      const decided = verdict.decide(undefined);
      return decided instanceof Promise ? decided.then((v) => this.#conclude(v, hooks, judgedWhat(event))) : this.#conclude(decided, hooks, judgedWhat(event));
    }
    return this.#conclude(verdict, hooks, judgedWhat(event));
  }

  /** A hold or cost deferral on a prepared statement: decided at each execution (see judge). */
  async #deferHold(event: DbQueryEvent, verdict: HoldDecision | CostDeferral, hooks: JudgeHooks): Promise<Decision> {
    // The target analyses a prepared statement now: what its names resolve to is kept, and
    // each execution is approved only while they still resolve the same.
    let objects: ObjectBinding | undefined;
    const binding = bindingOf(verdict);
    if (event.stage === "prepare" && binding !== undefined) {
      const bound = await this.#bindAtPrepare(binding, hooks);
      if (bound.type === "deny") return this.#conclude(bound, hooks, judgedWhat(event));
      objects = bound.objects;
    } else if (verdict.type === "hold" && verdict.executes !== undefined) objects = this.#preparedObjects.get(verdict.executes);
    if (verdict.type === "hold") verdict.onAllowed?.();
    return {
      type: "allow",
      deferred: {
        type: "deferred",
        hold: verdict,
        sql: event.sql,
        ...(event.statementName === undefined ? {} : { statementName: event.statementName }),
        ...(objects === undefined ? {} : { objects }),
      },
    };
  }

  #evaluate(event: JudgedEvent): EvaluatorVerdict | Promise<EvaluatorVerdict> {
    if (!this.#known.has(event.type)) {
      return deny("GW_UNSUPPORTED", `no evaluator judges ${event.type} events, so it is refused (fail closed)`, "fail-closed");
    }
    // Budgets: a statement or command is refused once a budget of the session is spent.
    if (this.#guards !== undefined && counted(event)) {
      const spent = this.#guards.statement();
      if (spent instanceof Promise) return spent.then((d) => d ?? this.#route(event));
      if (spent !== undefined) return spent;
    }
    return this.#route(event);
  }

  #route(event: JudgedEvent): EvaluatorVerdict | Promise<EvaluatorVerdict> {
    const evaluators = this.#routes.get(event.type);
    return evaluators === undefined ? ALLOW_NO_OPINION : evaluateEvent(evaluators, event);
  }

  /** Record and audit a fact. Never refuses; the audit write is not awaited (the data has passed). */
  observe(event: ObservedEvent): void {
    switch (event.type) {
      case "db.result":
        this.#result(event);
        return;
      case "transfer.fact":
        this.#transfer(event);
        return;
      case "upstream.failure":
        void this.#pipeline.audit({
          type: "protocol.request",
          sessionId: this.info.id,
          principal: this.#principal,
          connection: this.info.connection,
          protocol: this.info.clientProtocol,
          decision: "deny",
          code: event.code,
          message: event.message,
          details: { feature: "upstream" },
        });
        this.#o.logger.warn({ sessionId: this.info.id, connection: this.info.connection, code: event.code }, "the target session could not be opened");
        return;
    }
  }

  /**
   * The objects a held statement names, resolved by the engine's resolver (JudgeHooks). A
   * statement on a PostgreSQL connection whose engine gave no resolver is refused: its approval
   * could not be bound to what it acts on (fail closed).
   */
  #objectBinder(hold: ObjectsToBind, hooks: JudgeHooks): { readonly bind?: () => Promise<ObjectBinding> } | DenyDecision {
    const names = hold.objects;
    if (names === undefined || hold.need !== "approval") return {};
    const resolve = hooks.resolveObjects;
    if (resolve === undefined) {
      if (this.info.targetType !== "postgres") return {};
      return deny("GW_POLICY_DENIED", `${hold.message}: the objects it acts on cannot be resolved here, so it cannot be approved (fail closed)`, hold.rule);
    }
    return { bind: () => resolve(names) };
  }

  /** A held SQL PREPARE was allowed: what it was prepared against, for its EXECUTEs (bounded). */
  #rememberPrepared(name: string, objects: ObjectBinding | undefined): void {
    this.#preparedObjects.delete(name);
    if (objects === undefined) return;
    if (this.#preparedObjects.size >= MAX_PREPARED_BINDINGS) {
      const oldest = this.#preparedObjects.keys().next();
      if (oldest.done !== true) this.#preparedObjects.delete(oldest.value);
    }
    this.#preparedObjects.set(name, objects);
  }

  /** A held statement being prepared: its names resolved as the target analyses them now. */
  async #bindAtPrepare(hold: ObjectsToBind, hooks: JudgeHooks): Promise<{ readonly type: "bound"; readonly objects?: ObjectBinding } | DenyDecision> {
    const binder = this.#objectBinder(hold, hooks);
    if ("type" in binder) return binder;
    if (binder.bind === undefined) return { type: "bound" };
    try {
      return { type: "bound", objects: await binder.bind() };
    } catch (e) {
      this.#o.logger.warn({ err: e, sessionId: this.info.id, rule: hold.rule }, "could not resolve the objects of a held statement; refusing");
      return deny("GW_POLICY_DENIED", `${hold.message}: the objects it acts on could not be resolved on the target (${reasonOf(e)}), so it is refused (fail closed)`, hold.rule);
    }
  }

  /**
   * Turn a hold into the final decision: approvals (wait or async) and grants are resolved by
   * the HoldResolver. Fails closed.
   */
  async #resolveHold(hold: HoldDecision, what: Judged, hooks: JudgeHooks): Promise<{ decision: Decision; approvalId?: string }> {
    const { text, params } = what;
    const resolver = this.#o.approvals;
    if (resolver === undefined) {
      const what = hold.need === "approval" ? `approval by ${hold.approvers.join(", ")} is required` : "an access grant is required";
      return { decision: deny("GW_POLICY_DENIED", `${hold.message} (${what}; approvals are not enabled on this gateway)`, hold.rule) };
    }
    const binder = this.#objectBinder(hold, hooks);
    if ("type" in binder) return { decision: binder };
    // An EXECUTE of a statement made by SQL PREPARE: compared with what it was prepared against.
    const prepared = what.preparedObjects ?? (hold.executes === undefined ? undefined : this.#preparedObjects.get(hold.executes));
    const signal = hooks.signal === undefined ? this.#holds.signal : AbortSignal.any([this.#holds.signal, hooks.signal]);
    try {
      const r = await resolver.resolve({
        session: this.info,
        hold,
        text,
        ...(params === undefined ? {} : { params }),
        signal,
        ...(hooks.onHold === undefined ? {} : { onHold: hooks.onHold }),
        ...(binder.bind === undefined ? {} : { bindObjects: binder.bind }),
        ...(prepared === undefined ? {} : { preparedObjects: prepared }),
        ...previewOf(hold, hooks, text, params),
      });
      if (r.decision.type === "allow" && hold.prepares !== undefined) this.#rememberPrepared(hold.prepares, r.objects);
      // A deferred hold's statement was defined when its prepare went through (judge).
      if (r.decision.type === "allow" && params === undefined) hold.onAllowed?.();
      return r;
    } catch (e) {
      this.#o.logger.error({ err: e, sessionId: this.info.id, rule: hold.rule }, "approval could not be resolved; refusing");
      return { decision: deny("GW_POLICY_DENIED", `${hold.message}: approvals are unavailable right now, so it is refused (fail closed)`, hold.rule) };
    }
  }

  /** The common tail of every judgement: resolve a hold, audit (fail closed), count, record, log a refusal. */
  #conclude(verdict: Verdict, hooks: JudgeHooks, what: Judged): Decision | Promise<Decision> {
    if (verdict.type === "hold") return this.#resolveHold(verdict, what, hooks).then((r) => this.#decided(r.decision, r.approvalId, hooks, what));
    return this.#decided(verdict, undefined, hooks, what);
  }

  /** Audit (fail closed), then count, record and log: synchronous for a queued allow. */
  #decided(decision: Decision, approvalId: string | undefined, hooks: JudgeHooks, what: Judged): Decision | Promise<Decision> {
    const record: AuditEventInput = {
      type: what.audit,
      sessionId: this.info.id,
      principal: this.#principal,
      connection: this.info.connection,
      protocol: this.info.clientProtocol,
      decision: decision.type,
      statement: what.text,
      ...(decision.type === "deny" ? { code: decision.code, message: decision.message } : {}),
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      details: approvalId === undefined ? what.details : { ...what.details, approvalId },
    };
    // An allow the engine settles before releasing its result is forwarded without waiting
    // for the write (no event-loop turn per statement); the engine's settle() makes the record
    // durable before anything the statement produced reaches the client. A deny is written
    // before the refusal is sent, as before.
    if (decision.type === "allow" && hooks.settlesBeforeRelease === true) {
      const queued = this.#pipeline.auditQueued(record);
      if (typeof queued === "number") {
        this.#queuedAuditSeq = queued;
        return this.#concluded(decision, what);
      }
      if (queued instanceof Promise) return queued.then((failed) => this.#concluded(failed ?? decision, what));
      return this.#concluded(queued, what);
    }
    return this.#pipeline.audit(record).then((failed) => this.#concluded(failed ?? decision, what));
  }

  /** The decision is audited: count it, record it, log a refusal. */
  #concluded(decision: Decision, what: Judged): Decision {
    this.#o.metrics.statement(this.info.clientProtocol, decision.type);
    if (decision.type === "deny") {
      // Operators see every refusal at info level: rule, code, principal, connection; never values.
      this.#o.logger.info(
        { sessionId: this.info.id, principal: this.info.principal.id, connection: this.info.connection, code: decision.code, rule: decision.rule, event: what.audit, seq: what.seq },
        "refused",
      );
    }
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

  /** Facts about data that passed whole (sftp operations, forwarded bytes, raw transfers): recorded and audited as counts. */
  #transfer(event: TransferFactEvent): void {
    // The details (sizes, SHA-256 hashes, byte counts) go into the recording as `k=v` pairs.
    const facts = Object.entries(event.details).map(([k, v]) => `${k}=${String(v)}`).join(" ");
    this.#recorder.append({ kind: "query", seq: event.seq, stage: event.stage, sql: event.text, decision: "allow", ...(facts === "" ? {} : { message: facts }) });
    void this.#pipeline.audit({
      type: "ssh.command",
      sessionId: this.info.id,
      principal: this.#principal,
      connection: this.info.connection,
      protocol: this.info.clientProtocol,
      statement: event.text,
      details: { seq: event.seq, kind: event.stage, ...event.details },
    });
  }

  /** A statement's result as the client received it: recorded, never audited by value. */
  #result(event: DbResultEvent): void {
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
    if (event.masked !== undefined || event.rowsSent !== undefined || event.refusedBy !== undefined) {
      // Counts per kind, never values. Not awaited: the result has already been delivered.
      const details: Record<string, string | number> = { seq: event.seq, rowCount: event.rowCount };
      for (const [k, n] of Object.entries(event.masked ?? {})) details[`masked.${k}`] = n;
      if (event.rowsSent !== undefined) details["rowsSent"] = event.rowsSent;
      if (event.refusedBy !== undefined) details["refusedBy"] = event.refusedBy;
      // A result its plan refused is a deny like any other (its message is the gateway's own).
      const refused = event.refusedBy === undefined ? {} : { decision: "deny" as const, code: "GW_POLICY_DENIED" as const, rule: event.refusedBy, ...(event.error === undefined ? {} : { message: event.error.message }) };
      void this.#pipeline.audit({
        type: "db.result",
        sessionId: this.info.id,
        principal: this.#principal,
        connection: this.info.connection,
        protocol: this.info.clientProtocol,
        ...refused,
        details,
      });
    }
  }

  /** See SessionJudge.settle: the audit records queued for this gateway's allowed statements, made durable. */
  settle(): boolean {
    // Only this session's records: those of other sessions are theirs to settle (usually the
    // group commit at the end of the event-loop turn has written them all already).
    return this.#queuedAuditSeq === 0 || this.#pipeline.settleAudit(this.#queuedAuditSeq);
  }

  /** End the session: audit, close the recording, update the store. Idempotent. */
  async end(reason: SessionEndReason, stats: SessionStats, detail?: string): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    if (this.#grantTimer !== undefined) clearTimeout(this.#grantTimer);
    this.#holds.abort("the client went away or the session ended");
    this.#unregister();
    const protocol = this.info.clientProtocol;
    this.#o.metrics.sessionClosed(protocol, reason);
    this.#o.metrics.bytes(protocol, "from_client", stats.bytesFromClient);
    this.#o.metrics.bytes(protocol, "to_client", stats.bytesToClient);
    this.#o.logger.info({ sessionId: this.info.id, principal: this.info.principal.id, connection: this.info.connection, reason, statements: stats.statements }, "session ended");
    this.#recorder.append({ kind: "end", reason, ...(detail === undefined ? {} : { detail }) });
    await this.#pipeline.audit({
      type: "session.end",
      sessionId: this.info.id,
      principal: this.#principal,
      connection: this.info.connection,
      protocol,
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

function reasonOf(e: unknown): string {
  return isGatewayError(e) ? e.message : "the catalog lookup failed";
}

/** The judged kinds a `statements` budget counts: statements and commands, not protocol features. */
const COUNTED: ReadonlySet<JudgedKind> = new Set<JudgedKind>(["db.query", "db.function_call", "ssh.exec", "ssh.input", "redis.command", "http.request", "k8s.request"]);

/**
 * Whether a `statements` budget counts the event: a statement or command, or an MCP request
 * the agent makes (a tool call, a resource read, a prompt), not one the upstream server sends
 * back (sampling, elicitation).
 */
function counted(event: JudgedEvent): boolean {
  if (event.type === "mcp.call") return event.method === "tools/call" || event.method === "resources/read" || event.method === "prompts/get";
  return COUNTED.has(event.type);
}

/** The held statement's preview, when its policy asks for one and the engine can run it. */
function previewOf(hold: HoldDecision, hooks: JudgeHooks, sql: string, params: BoundParams | undefined): { readonly preview?: () => Promise<StatementPreview> } {
  const settings = hold.preview;
  const run = hooks.preview;
  if (settings === undefined || run === undefined) return {};
  const masks = hold.allow.plan?.masks ?? [];
  return { preview: () => run({ sql, ...(params === undefined ? {} : { params }), settings, masks }) };
}

/** What an approval is bound to (a hold, or a cost deferral whose executions may be held). */
type ObjectsToBind = Pick<HoldDecision, "need" | "objects" | "message" | "rule">;

/**
 * What a prepared statement's pending verdict binds at the prepare: a hold for approval, or a
 * cost deferral whose executions may be held for approval (it then names the objects).
 */
function bindingOf(v: HoldDecision | CostDeferral): ObjectsToBind | undefined {
  if (v.type === "hold") return v.need === "approval" ? v : undefined;
  return v.objects === undefined ? undefined : { need: "approval", objects: v.objects, message: v.message, rule: v.rule };
}

/** No evaluator of this session has an opinion on the event: allowed, with no result plan. */
const ALLOW_NO_OPINION: Decision = Object.freeze({ type: "allow" });

/** A timer that runs `end` at `at` (setTimeout caps at ~24.8 days; credentials are far shorter-lived). */
function endAt(at: Date, end: () => void): NodeJS.Timeout {
  const t = setTimeout(end, Math.max(0, Math.min(at.getTime() - Date.now(), 2_147_000_000)));
  t.unref();
  return t;
}

/** How a judged event is audited and recorded (`#conclude`'s `what`). */
function judgedWhat(event: Exclude<JudgedEvent, { readonly type: "db.execute" }>): Judged {
  switch (event.type) {
    case "db.query":
      return {
        audit: "db.query",
        text: event.sql,
        seq: event.seq,
        stage: event.stage,
        details: { seq: event.seq, stage: event.stage },
        ...(event.statementName === undefined ? {} : { statementName: event.statementName }),
      };
    case "db.function_call":
      return {
        audit: "db.query",
        text: `<function call: oid ${event.functionOid}, ${event.argumentCount} argument(s)>`,
        seq: event.seq,
        stage: "function_call",
        details: { seq: event.seq, stage: "function_call", functionOid: event.functionOid },
      };
    case "protocol.request":
      return { audit: "protocol.request", text: event.detail, seq: event.seq, stage: event.feature, details: { seq: event.seq, feature: event.feature } };
    case "ssh.exec":
    case "ssh.input":
    case "ssh.channel":
    case "ssh.forward":
      return { audit: "ssh.command", text: sshCommandText(event), seq: event.seq, stage: event.type, details: { seq: event.seq, kind: event.type } };
    case "redis.command":
      return { audit: "db.query", text: event.text, seq: event.seq, stage: "redis", details: { seq: event.seq, stage: "redis", command: event.command } };
    case "k8s.request":
      return { audit: "k8s.request", text: event.text, seq: event.seq, stage: event.verb, details: { seq: event.seq, verb: event.verb, resource: event.resource, namespace: event.namespace } };
    case "http.request":
      return { audit: "http.request", text: event.text, seq: event.seq, stage: "http", details: { seq: event.seq, stage: "http", method: event.method, path: event.path } };
    case "mcp.call":
      return { audit: "mcp.tool_call", text: event.text, seq: event.seq, stage: event.method, details: { seq: event.seq, method: event.method, tool: event.tool } };
  }
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
