/**
 * Just-in-time approvals and time-boxed access grants: the request lifecycle
 * (pending → approved | denied | expired | cancelled), decisions by approvers, and the
 * HoldResolver the pipeline uses to turn a hold into allow or deny.
 *
 * Invariants:
 * - Nobody decides their own request (same principal id); only members of the request's
 *   approver groups (snapshotted when it was made) or the admin decide; `minApprovals` distinct
 *   approvers approve; any deny denies. Every vote is an audit record, written before it counts.
 * - A request is decided once (conditional update in the store); an approved statement runs
 *   once: wait mode runs the held statement itself; async mode lets the same principal run the
 *   identical statement (same hash: text, and the raw bind parameters of an extended-protocol
 *   execution) on the same connection once, until `usableUntil`.
 * - An approval is for what the statement acts on: a request carrying an object resolver
 *   (`bindObjects`, PostgreSQL) is bound to what the statement's names resolve to when it is
 *   made (`summary.objects`), and the approved statement is released only if they resolve the
 *   same when it runs (binding.ts objectDrift); a resolution that fails refuses (fail closed).
 * - Fail closed: a request that cannot be stored or audited is refused, never allowed.
 * - One gateway process owns its waiting clients; after a restart, pending wait-mode requests
 *   (whose clients are gone) are cancelled.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { auditPrincipal, type AuditEventInput, type AuditLog } from "../audit/types.js";
import { deny, type AllowDecision, type Decision, type DenyDecision, type HoldDecision } from "../core/decision.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { ObjectBinding } from "../core/objects.js";
import { DEFAULT_PREVIEW_TOLERANCE, previewDrift, type StatementPreview } from "../core/preview.js";
import type { Principal } from "../core/principal.js";
import type { SessionInfo } from "../core/session.js";
import { Glob, anyGlob } from "../policy/glob.js";
import type { HoldRequest, HoldResolver } from "../policy/pipeline.js";
import type { LiveSessions } from "../policy/registry.js";
import type { ApprovalRow, ApprovalStatus, ApprovalStore, VoteRow } from "../store/approvals.js";
import { objectDrift, statementHash } from "./binding.js";
import type { GrantsConfig } from "./config-schema.js";
import { approvalUrl, type Notifier } from "./notify.js";

export interface ApprovalServiceOptions {
  readonly store: ApprovalStore;
  readonly audit: Pick<AuditLog, "append">;
  readonly notifier: Notifier;
  readonly logger: Logger;
  readonly liveSessions: LiveSessions;
  /** Names of the configured connections (access requests must name one). */
  readonly connections: readonly string[];
  readonly grants?: GrantsConfig;
  /** How often pending async/access requests are checked for expiry. */
  readonly sweepIntervalMs?: number;
  /** Undecided requests one principal may have at once (default MAX_PENDING_PER_PRINCIPAL). */
  readonly maxPendingPerPrincipal?: number;
  /** approvals.publicUrl: the waiting client is told the approval page's address too. */
  readonly publicUrl?: string;
  /** Tell the other gateways sharing the store that a request was decided or ended (they call `wake`). */
  readonly announce?: (approvalId: string) => void;
  /** This gateway instance: at start-up only the waits of its own sessions are cancelled (others' clients still wait). */
  readonly instanceId?: string;
}

export interface RequestView {
  readonly request: ApprovalRow;
  readonly votes: readonly VoteRow[];
}

interface Waiter {
  readonly resolve: (row: ApprovalRow) => void;
}

interface ActiveGrant {
  readonly id: string;
  readonly principalId: string;
  readonly connection: string;
  readonly until: Date;
}

/** Session start-up parameter (or `options=-c airlock.approval=async`) that switches a session to async mode. */
export const APPROVAL_MODE_ATTRIBUTE = "airlock.approval";

const SWEEP_MS = 5_000;

/**
 * An agent in a loop must not bury approvers under requests (each one notifies people): beyond
 * this many undecided requests of one principal, new ones are refused until some are decided
 * or expire.
 */
export const MAX_PENDING_PER_PRINCIPAL = 20;

/** Short, unambiguous ids people can type: `apr_` + 16 base32 characters (80 bits). */
export function newApprovalId(): string {
  const alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
  const bytes = randomBytes(16);
  let out = "";
  for (const b of bytes) out += alphabet[b % 32] ?? "a";
  return `apr_${out}`;
}

function requesterOf(r: ApprovalRow): { id: string; kind: Principal["kind"]; name: string } {
  return { id: r.requesterId, kind: r.requesterKind, name: r.requesterName };
}

export class ApprovalService implements HoldResolver {
  readonly #o: ApprovalServiceOptions;
  readonly #waiters = new Map<string, Waiter>();
  /** Active grants by `principalId\0connection`. */
  readonly #grants = new Map<string, ActiveGrant[]>();
  readonly #grantTimers = new Map<string, NodeJS.Timeout>();
  /** Sessions admitted because of a grant (they end with it), by grant id. */
  readonly #grantSessions = new Map<string, Set<string>>();
  readonly #required: readonly Glob[];
  /** Decisions on one request run one at a time (two approvers at once must not both count as "first"). */
  readonly #locks = new Map<string, Promise<unknown>>();
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ApprovalServiceOptions) {
    this.#o = options;
    this.#required = (options.grants?.required ?? []).map((g) => new Glob(g));
  }

  /** Startup: cancel requests whose waiting clients are gone, expire overdue ones, load active grants. */
  async start(): Promise<void> {
    const now = new Date();
    for (const r of await this.#o.store.cancelWaiting(now, "the gateway restarted while the client was waiting", this.#o.instanceId)) {
      await this.#auditQuietly({ type: "approval.cancelled", principal: requesterOf(r), connection: r.connection, details: { approvalId: r.id, reason: "gateway restart" } });
    }
    await this.#sweep();
    for (const g of await this.#o.store.activeGrants(now)) this.#addGrant(g);
    this.#sweeper = setInterval(() => void this.#sweep(), this.#o.sweepIntervalMs ?? SWEEP_MS);
    this.#sweeper.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    for (const t of this.#grantTimers.values()) clearTimeout(t);
    this.#grantTimers.clear();
    // Requests being ended (sessions drained at shutdown cancel their waits) reach the store first.
    await Promise.allSettled([...this.#locks.values()]);
    await this.#o.notifier.idle();
  }

  // ------------------------------------------------------------------ session admission

  admit(session: SessionInfo, decision: Decision): { decision: Decision; grantUntil?: Date } {
    if (this.#o.grants === undefined) return { decision };
    const grant = this.activeGrant(session.principal.id, session.connection);
    const required = anyGlob(this.#required, session.connection);
    if (decision.type === "deny") {
      // A grant is access to a connection the principal's groups do not give: it answers the
      // groups check (rule connection-groups) and nothing else.
      if (decision.code === "GW_ACCESS_DENIED" && decision.rule === "connection-groups" && grant !== undefined) {
        this.#underGrant(grant.id, session.id);
        return { decision: { type: "allow", rule: `grant:${grant.id}` }, grantUntil: grant.until };
      }
      return { decision };
    }
    if (!required) return { decision };
    if (grant === undefined) {
      return {
        decision: deny(
          "GW_ACCESS_DENIED",
          `connection "${session.connection}" needs an access grant: airlock access request ${session.connection} --duration 30m --reason TEXT`,
          "grant-required",
        ),
      };
    }
    this.#underGrant(grant.id, session.id);
    return { decision: { ...decision, rule: `grant:${grant.id}` }, grantUntil: grant.until };
  }

  #underGrant(grantId: string, sessionId: string): void {
    const set = this.#grantSessions.get(grantId) ?? new Set<string>();
    set.add(sessionId);
    this.#grantSessions.set(grantId, set);
  }

  #dropGrant(g: { id: string; principalId: string; connection: string }): void {
    const key = `${g.principalId}\u0000${g.connection}`;
    const rest = (this.#grants.get(key) ?? []).filter((x) => x.id !== g.id);
    if (rest.length === 0) this.#grants.delete(key);
    else this.#grants.set(key, rest);
    const timer = this.#grantTimers.get(g.id);
    if (timer !== undefined) clearTimeout(timer);
    this.#grantTimers.delete(g.id);
    this.#grantSessions.delete(g.id);
  }

  /**
   * End an approved grant now (its requester, an approver of it, or an admin): sessions admitted
   * because of it end, and its require_grant statements stop.
   */
  async revokeGrant(id: string, caller: Principal, isAdmin: boolean, reason?: string): Promise<RequestView> {
    return this.#serial(id, async () => {
      const r = await this.#o.store.getRequest(id);
      if (r === undefined) throw new GatewayError("GW_NOT_FOUND", `no approval request ${id}`);
      if (caller.id !== r.requesterId && !ApprovalService.mayDecide(caller, r, isAdmin)) {
        throw new GatewayError("GW_FORBIDDEN", `${caller.id} may not revoke grant ${id}`);
      }
      const now = new Date();
      if (r.kind !== "grant" || r.status !== "approved" || r.usableUntil === undefined || r.usableUntil <= now) {
        throw new GatewayError("GW_CONFLICT", `request ${id} is not an active access grant`);
      }
      const why = reason ?? `revoked by ${caller.id}`;
      await this.#auditOrThrow({ type: "grant.revoked", principal: auditPrincipal(caller), connection: r.connection, ...(reason === undefined ? {} : { message: reason }), details: { approvalId: id, requester: r.requesterId } });
      const revoked = await this.#o.store.revokeGrant(id, now, why);
      if (revoked === undefined) throw new GatewayError("GW_CONFLICT", `request ${id} is not an active access grant`);
      const sessions = [...(this.#grantSessions.get(id) ?? [])];
      this.#dropGrant({ id, principalId: r.requesterId, connection: r.connection });
      for (const sessionId of sessions) this.#o.liveSessions.terminate({ sessionId }, "revoked", "the access grant was revoked");
      this.#decided(revoked);
      return { request: revoked, votes: await this.#o.store.listVotes(id) };
    });
  }

  activeGrant(principalId: string, connection: string): ActiveGrant | undefined {
    const now = Date.now();
    const list = this.#grants.get(`${principalId}\u0000${connection}`) ?? [];
    let best: ActiveGrant | undefined;
    for (const g of list) if (g.until.getTime() > now && (best === undefined || g.until > best.until)) best = g;
    return best;
  }

  #addGrant(r: ApprovalRow): void {
    if (r.kind !== "grant" || r.usableUntil === undefined) return;
    const g: ActiveGrant = { id: r.id, principalId: r.requesterId, connection: r.connection, until: r.usableUntil };
    const key = `${g.principalId}\u0000${g.connection}`;
    this.#grants.set(key, [...(this.#grants.get(key) ?? []).filter((x) => x.id !== g.id), g]);
    const timer = setTimeout(
      () => {
        this.#dropGrant(g);
        void this.#auditQuietly({ type: "grant.expired", principal: requesterOf(r), connection: r.connection, details: { approvalId: r.id } });
      },
      Math.max(0, Math.min(g.until.getTime() - Date.now(), 2_147_000_000)),
    );
    timer.unref();
    this.#grantTimers.set(g.id, timer);
  }

  // ------------------------------------------------------------------ holds

  async resolve(req: HoldRequest): Promise<{ decision: Decision; approvalId?: string; objects?: ObjectBinding }> {
    if (req.hold.need === "grant") {
      const grant = this.activeGrant(req.session.principal.id, req.session.connection);
      if (grant !== undefined) return { decision: withRule(req.hold.allow, req.hold.rule), approvalId: grant.id };
      return {
        decision: deny(
          "GW_POLICY_DENIED",
          `${req.hold.message}: request one with airlock access request ${req.session.connection} --duration 30m --reason TEXT`,
          req.hold.rule,
        ),
      };
    }
    return this.#approval(req);
  }

  async #approval(req: HoldRequest): Promise<{ decision: Decision; approvalId?: string; objects?: ObjectBinding }> {
    const { session, hold } = req;
    const store = this.#o.store;
    const principal = session.principal;
    const override = session.attributes[APPROVAL_MODE_ATTRIBUTE];
    const mode = override === "async" || override === "wait" ? override : hold.mode;
    const hash = statementHash(principal.id, session.connection, req.text, req.params);
    const now = new Date();

    // What the statement acts on, as the target resolves its names now: the request is bound
    // to it, and an approval is used only while it still holds.
    let objects: ObjectBinding | undefined;
    if (req.bindObjects !== undefined) {
      const bound = await this.#bindObjects(req);
      if (bound.type === "deny") return { decision: bound };
      objects = bound.objects;
      // A prepared statement runs as the target analysed it when it was prepared (until
      // something invalidates that): its names must still resolve the same way.
      const drift = req.preparedObjects === undefined ? undefined : objectDrift(req.preparedObjects, objects);
      if (drift !== undefined) {
        return { decision: deny("GW_POLICY_DENIED", `the prepared statement no longer matches what it was prepared against: ${drift}; prepare it again`, hold.rule) };
      }
    }

    // What the statement would do, run in a rolled-back transaction (policies with preview):
    // shown to approvers, capped by maxAffectedRows, and compared again when it is released.
    let preview: StatementPreview | undefined;
    if (hold.preview !== undefined) {
      preview = await this.#preview(req);
      const over = overLimit(hold, preview);
      if (over !== undefined) return { decision: deny("GW_POLICY_DENIED", over, hold.rule) };
    }

    // An approved, unused approval of exactly this statement runs it once.
    const used = await store.consume(principal.id, session.connection, hash, now, { rule: hold.rule, approvers: hold.approvers, minApprovals: hold.minApprovals });
    if (used !== undefined) {
      const mismatch = bindingMismatch(used, objects) ?? previewMismatch(used, preview, hold);
      if (mismatch !== undefined) return { decision: deny("GW_POLICY_DENIED", mismatch, hold.rule), approvalId: used.id };
      const failed = await this.#audit({
        type: "approval.used",
        sessionId: session.id,
        principal: auditPrincipal(principal),
        connection: session.connection,
        rule: hold.rule,
        details: { approvalId: used.id },
      });
      if (failed) return { decision: deny("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable, so nothing is forwarded"), approvalId: used.id };
      return { decision: withRule(hold.allow, hold.rule), approvalId: used.id, ...(objects === undefined ? {} : { objects }) };
    }

    if (mode === "async") {
      const pending = await store.findPending(principal.id, session.connection, hash, now);
      if (pending !== undefined) return { decision: this.#asyncDenial(hold, pending), approvalId: pending.id };
    }
    const limit = this.#pendingLimit();
    if ((await store.countPending(principal.id, now)) >= limit) {
      return { decision: deny("GW_LIMIT", `${hold.message}: ${principal.name} already has ${limit} undecided approval requests; wait for decisions before asking again`, hold.rule) };
    }

    const row: ApprovalRow = {
      id: newApprovalId(),
      kind: "statement",
      status: "pending",
      requesterId: principal.id,
      requesterKind: principal.kind,
      requesterName: principal.name,
      connection: session.connection,
      protocol: session.clientProtocol,
      sessionId: session.id,
      statement: req.text,
      ...(req.params === undefined ? {} : { params: req.params.shown }),
      statementHash: hash,
      ...(hold.summary === undefined && objects === undefined && preview === undefined
        ? {}
        : {
            summary: {
              operations: hold.summary?.operations ?? [],
              relations: hold.summary?.relations ?? [],
              ...(objects === undefined ? {} : { objects }),
              ...(preview === undefined ? {} : { preview }),
            },
          }),
      rule: hold.rule,
      message: hold.message,
      approvers: hold.approvers,
      minApprovals: hold.minApprovals,
      mode,
      createdAt: now,
      expiresAt: new Date(now.getTime() + hold.timeoutMs),
    };
    await store.insertRequest(row);
    const failed = await this.#audit({
      type: "approval.requested",
      sessionId: session.id,
      principal: auditPrincipal(principal),
      connection: session.connection,
      protocol: session.clientProtocol,
      rule: hold.rule,
      statement: req.text,
      details: {
        approvalId: row.id,
        mode,
        approvers: hold.approvers.join(","),
        minApprovals: hold.minApprovals,
        expiresAt: row.expiresAt.toISOString(),
        ...(preview === undefined ? {} : { preview: preview.status, ...(preview.status === "previewed" ? { affectedRows: preview.affectedRows } : {}) }),
      },
    });
    if (failed) {
      await store.finish(row.id, "cancelled", new Date(), { reason: "the audit log is unavailable" });
      return { decision: deny("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable, so nothing is forwarded") };
    }
    this.#o.notifier.notify("approval.requested", row);

    if (mode === "async") return { decision: this.#asyncDenial(hold, row), approvalId: row.id };

    // Wait mode: tell the client, then wait for the decision, the timeout or the client leaving.
    req.onHold?.({
      approvalId: row.id,
      message:
        `${hold.message}: waiting for approval ${row.id} by ${hold.approvers.join(", ")} (until ${row.expiresAt.toISOString()}); approve with: airlock approvals approve ${row.id}` +
        (this.#o.publicUrl === undefined ? "" : ` or at ${approvalUrl(this.#o.publicUrl, row.id)}`),
    });
    const outcome = await this.#wait(row, req.signal);
    switch (outcome.status) {
      case "approved": {
        await store.markUsed(row.id, new Date());
        // Released now: it must still do what the approvers saw (its preview, repeated).
        if (preview !== undefined && hold.preview !== undefined) {
          const again = await this.#preview(req);
          const changed = overLimit(hold, again) ?? previewMismatch(row, again, hold);
          if (changed !== undefined) return { decision: deny("GW_POLICY_DENIED", changed, hold.rule), approvalId: row.id };
        }
        // Released now: the names must still resolve to what the approvers saw.
        if (req.bindObjects !== undefined) {
          const bound = await this.#bindObjects(req);
          if (bound.type === "deny") return { decision: bound, approvalId: row.id };
          const mismatch = bindingMismatch(row, bound.objects);
          if (mismatch !== undefined) return { decision: deny("GW_POLICY_DENIED", mismatch, hold.rule), approvalId: row.id };
          return { decision: withRule(hold.allow, hold.rule), approvalId: row.id, objects: bound.objects };
        }
        return { decision: withRule(hold.allow, hold.rule), approvalId: row.id };
      }
      case "denied":
        return {
          decision: deny("GW_POLICY_DENIED", `approval ${row.id} was denied${outcome.decisionReason === undefined ? "" : `: ${outcome.decisionReason}`}`, hold.rule),
          approvalId: row.id,
        };
      case "expired":
        return { decision: deny("GW_POLICY_DENIED", `approval ${row.id} expired: no decision within ${formatMs(hold.timeoutMs)}`, hold.rule), approvalId: row.id };
      case "cancelled":
      case "pending":
      case "revoked":
        return { decision: deny("GW_POLICY_DENIED", `approval ${row.id} was cancelled${outcome.decisionReason === undefined ? "" : `: ${outcome.decisionReason}`}`, hold.rule), approvalId: row.id };
    }
  }

  /** Resolve the statement's objects on the target now; a failure refuses (fail closed). */
  async #bindObjects(req: HoldRequest): Promise<{ readonly type: "bound"; readonly objects: ObjectBinding } | DenyDecision> {
    const bind = req.bindObjects;
    if (bind === undefined) throw new GatewayError("GW_INTERNAL", "no object resolver");
    try {
      return { type: "bound", objects: await bind() };
    } catch (e) {
      this.#o.logger.warn({ err: e, sessionId: req.session.id, rule: req.hold.rule }, "could not resolve the objects of a held statement; refusing");
      const why = isGatewayError(e) ? e.message : "the catalog lookup failed";
      return deny("GW_POLICY_DENIED", `${req.hold.message}: the objects it acts on could not be resolved on the target (${why}), so it cannot be approved or run (fail closed)`, req.hold.rule);
    }
  }

  /** Run the held statement's preview; never rejects (a failure is a preview that failed). */
  async #preview(req: HoldRequest): Promise<StatementPreview> {
    const run = req.preview;
    if (run === undefined) return { status: "unpreviewable", reason: "this connection's engine cannot run previews (PostgreSQL and MySQL connections only)" };
    try {
      return await run();
    } catch (e) {
      this.#o.logger.warn({ err: e, sessionId: req.session.id, rule: req.hold.rule }, "preview failed");
      return { status: "failed", reason: isGatewayError(e) ? e.message : "the preview could not be run" };
    }
  }

  #asyncDenial(hold: HoldDecision, r: ApprovalRow): Decision {
    const refusal = deny(
      "GW_POLICY_DENIED",
      `${hold.message}: approval ${r.id} requested from ${r.approvers.join(", ")}; once approved, send the identical statement${r.params !== undefined && r.params.length > 0 ? " with the same parameters" : ""} again (it runs once, until ${r.expiresAt.toISOString()} for a decision). Approve with: airlock approvals approve ${r.id}`,
      hold.rule,
    );
    return { ...refusal, pending: { approvalId: r.id, expiresAt: r.expiresAt } };
  }

  /** Resolves with the request's final row: decided, expired at its time, or cancelled by the signal. */
  #wait(row: ApprovalRow, signal: AbortSignal): Promise<ApprovalRow> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (r: ApprovalRow): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#waiters.delete(row.id);
        resolve(r);
      };
      // Ends the request unless someone decided it meanwhile; then that decision stands.
      const end = (to: "expired" | "cancelled", reason: string): void => {
        void this.#serial(row.id, async () => {
          const ended = await this.#o.store.finish(row.id, to, new Date(), { reason });
          if (ended !== undefined) {
            await this.#auditQuietly({
              type: to === "expired" ? "approval.expired" : "approval.cancelled",
              sessionId: row.sessionId,
              principal: requesterOf(row),
              connection: row.connection,
              ...(row.rule === undefined ? {} : { rule: row.rule }),
              details: { approvalId: row.id, reason },
            });
            this.#decided(ended);
            return ended;
          }
          return (await this.#o.store.getRequest(row.id)) ?? { ...row, status: to };
        }).then(settle, (e: unknown) => {
          this.#o.logger.error({ err: e, approvalId: row.id }, "could not end an approval request");
          settle({ ...row, status: to, decisionReason: reason });
        });
      };
      const onAbort = (): void => {
        const why: unknown = signal.reason;
        end("cancelled", typeof why === "string" ? why : "the client went away or the session ended");
      };
      const timer = setTimeout(() => end("expired", "no decision in time"), Math.max(0, Math.min(row.expiresAt.getTime() - Date.now(), 2_147_000_000)));
      this.#waiters.set(row.id, { resolve: settle });
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  // ------------------------------------------------------------------ access requests

  async requestGrant(principal: Principal, connection: string, durationMs: number, reason: string): Promise<ApprovalRow> {
    const grants = this.#o.grants;
    if (grants === undefined) throw new GatewayError("GW_BAD_REQUEST", "access grants are not enabled on this gateway (approvals.grants)");
    if (!this.#o.connections.includes(connection)) throw new GatewayError("GW_NOT_FOUND", `unknown connection "${connection}"`);
    if (durationMs <= 0 || durationMs > grants.maxDuration) {
      throw new GatewayError("GW_BAD_REQUEST", `duration must be more than 0 and at most ${formatMs(grants.maxDuration)}`);
    }
    if (principal.kind === "admin") throw new GatewayError("GW_BAD_REQUEST", "the admin credential does not open data sessions; request access as the principal that will use it");
    const now = new Date();
    const limit = this.#pendingLimit();
    if ((await this.#o.store.countPending(principal.id, now)) >= limit) {
      throw new GatewayError("GW_CONFLICT", `${principal.name} already has ${limit} undecided requests; wait for decisions before asking again`);
    }
    const row: ApprovalRow = {
      id: newApprovalId(),
      kind: "grant",
      status: "pending",
      requesterId: principal.id,
      requesterKind: principal.kind,
      requesterName: principal.name,
      connection,
      reason,
      approvers: grants.approvers,
      minApprovals: grants.minApprovals,
      durationMs,
      createdAt: now,
      expiresAt: new Date(now.getTime() + grants.timeout),
    };
    // Audit first: an unaudited request must not exist.
    await this.#auditOrThrow({
      type: "approval.requested",
      principal: auditPrincipal(principal),
      connection,
      message: reason,
      details: { approvalId: row.id, kind: "grant", durationMs, approvers: grants.approvers.join(","), expiresAt: row.expiresAt.toISOString() },
    });
    await this.#o.store.insertRequest(row);
    this.#o.notifier.notify("approval.requested", row);
    return row;
  }

  // ------------------------------------------------------------------ decisions

  /**
   * Whether this caller may decide the request: a member of its approver groups, or an admin
   * (the admin credential, or a principal with the admin role); never the requester.
   */
  static mayDecide(caller: Principal, r: ApprovalRow, isAdmin = caller.kind === "admin"): boolean {
    if (caller.id === r.requesterId) return false;
    return isAdmin || caller.groups.some((g) => r.approvers.includes(g));
  }

  async decide(id: string, caller: Principal, vote: "approve" | "deny", reason?: string, isAdmin = caller.kind === "admin"): Promise<RequestView> {
    return this.#serial(id, async () => {
      const store = this.#o.store;
      // Read together (one round trip's wait, not two, before the release: issue 18's latency).
      const [r, votes] = await Promise.all([store.getRequest(id), store.listVotes(id)]);
      if (r === undefined) throw new GatewayError("GW_NOT_FOUND", `no approval request ${id}`);
      if (caller.id === r.requesterId) throw new GatewayError("GW_FORBIDDEN", "nobody approves or denies their own request");
      if (!ApprovalService.mayDecide(caller, r, isAdmin)) {
        throw new GatewayError("GW_FORBIDDEN", `${caller.id} may not decide request ${id} (approvers: ${r.approvers.join(", ")})`);
      }
      if (r.status !== "pending") throw new GatewayError("GW_CONFLICT", `request ${id} is already ${r.status}`);
      const now = new Date();
      if (r.expiresAt <= now) {
        await this.#expire(r);
        throw new GatewayError("GW_CONFLICT", `request ${id} has expired`);
      }
      if (votes.some((v) => v.approverId === caller.id)) throw new GatewayError("GW_CONFLICT", `${caller.id} already decided request ${id}`);
      const approvals = votes.filter((v) => v.vote === "approve").length + (vote === "approve" ? 1 : 0);
      const final: ApprovalStatus = vote === "deny" ? "denied" : approvals >= r.minApprovals ? "approved" : "pending";
      // The vote counts only once it is audited.
      await this.#auditOrThrow({
        type: "approval.decided",
        ...(r.sessionId === undefined ? {} : { sessionId: r.sessionId }),
        principal: auditPrincipal(caller),
        connection: r.connection,
        decision: vote === "approve" ? "allow" : "deny",
        ...(r.rule === undefined ? {} : { rule: r.rule }),
        ...(reason === undefined ? {} : { message: reason }),
        details: { approvalId: id, kind: r.kind, requester: r.requesterId, vote, status: final, approvals, minApprovals: r.minApprovals },
      });
      const inserted = await store.insertVote({
        requestId: id,
        approverId: caller.id,
        approverKind: caller.kind,
        approverName: caller.name,
        vote,
        ...(reason === undefined ? {} : { reason }),
        at: now,
      });
      if (!inserted) throw new GatewayError("GW_CONFLICT", `${caller.id} already decided request ${id}`);
      let row = r;
      if (final !== "pending") {
        const usableUntil =
          final !== "approved" ? undefined : r.kind === "grant" ? new Date(now.getTime() + (r.durationMs ?? 0)) : r.mode === "async" ? new Date(now.getTime() + (r.expiresAt.getTime() - r.createdAt.getTime())) : undefined;
        const finished = await store.finish(id, final, now, {
          ...(reason === undefined ? {} : { reason }),
          ...(usableUntil === undefined ? {} : { usableUntil }),
        });
        if (finished === undefined) throw new GatewayError("GW_CONFLICT", `request ${id} was decided meanwhile`);
        row = finished;
        if (row.kind === "grant" && row.status === "approved") this.#addGrant(row);
        this.#waiters.get(id)?.resolve(row);
        this.#decided(row);
      }
      return { request: row, votes: await store.listVotes(id) };
    });
  }

  /**
   * A request was decided or ended elsewhere (another gateway sharing the store announced it):
   * if a client here waits on it and the store no longer has it pending, release the client.
   */
  async wake(id: string): Promise<void> {
    if (this.#closed) return;
    const r = await this.#o.store.getRequest(id);
    if (r === undefined || r.status === "pending") return;
    if (r.kind === "grant") {
      if (r.status === "approved" && r.usableUntil !== undefined && r.usableUntil > new Date()) this.#addGrant(r);
      else if (r.status === "revoked") {
        const sessions = [...(this.#grantSessions.get(id) ?? [])];
        this.#dropGrant({ id, principalId: r.requesterId, connection: r.connection });
        for (const sessionId of sessions) this.#o.liveSessions.terminate({ sessionId }, "revoked", "the access grant was revoked");
      }
    }
    this.#waiters.get(id)?.resolve(r);
  }

  async get(id: string): Promise<RequestView | undefined> {
    const r = await this.#o.store.getRequest(id);
    if (r === undefined) return undefined;
    return { request: r, votes: await this.#o.store.listVotes(id) };
  }

  async list(query: { readonly status?: ApprovalStatus; readonly kind?: "statement" | "grant"; readonly limit: number }): Promise<readonly ApprovalRow[]> {
    return this.#o.store.listRequests(query);
  }

  // ------------------------------------------------------------------ internals

  /** Tell the notifiers, and the other gateways sharing the store (their waiting clients, their grants). */
  #decided(r: ApprovalRow): void {
    this.#o.notifier.notify("approval.decided", r);
    try {
      this.#o.announce?.(r.id);
    } catch (e) {
      this.#o.logger.warn({ err: e, approvalId: r.id }, "could not announce a decision to the other gateways");
    }
  }

  #pendingLimit(): number {
    return this.#o.maxPendingPerPrincipal ?? MAX_PENDING_PER_PRINCIPAL;
  }

  async #expire(r: ApprovalRow): Promise<void> {
    const ended = await this.#o.store.finish(r.id, "expired", new Date(), { reason: "no decision in time" });
    if (ended !== undefined) await this.#expired(ended);
  }

  /** A request the store has just expired: audit it, wake its waiter, tell the notifiers. */
  async #expired(r: ApprovalRow): Promise<void> {
    await this.#auditQuietly({
      type: "approval.expired",
      ...(r.sessionId === undefined ? {} : { sessionId: r.sessionId }),
      principal: requesterOf(r),
      connection: r.connection,
      details: { approvalId: r.id },
    });
    this.#waiters.get(r.id)?.resolve(r);
    this.#decided(r);
  }

  /** Expire overdue pending requests that nobody waits on (async statements, access requests). */
  async #sweep(): Promise<void> {
    if (this.#closed) return;
    try {
      const expired = await this.#o.store.expireDue(new Date());
      for (const r of expired) await this.#expired(r);
    } catch (e) {
      this.#o.logger.error({ err: e }, "approval expiry sweep failed");
    }
  }

  #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(id) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#locks.set(id, tail);
    void tail.then(() => {
      if (this.#locks.get(id) === tail) this.#locks.delete(id);
    });
    return next;
  }

  /** Returns true when the record could not be written. */
  async #audit(input: AuditEventInput): Promise<boolean> {
    try {
      await this.#o.audit.append(input);
      return false;
    } catch (e) {
      this.#o.logger.error({ err: e, type: input.type }, "audit write failed");
      return true;
    }
  }

  async #auditOrThrow(input: AuditEventInput): Promise<void> {
    if (await this.#audit(input)) throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable");
  }

  /** For facts after the safe outcome already happened (expiry, cancellation): logged if it fails. */
  async #auditQuietly(input: Omit<AuditEventInput, "sessionId"> & { readonly sessionId?: string | undefined }): Promise<void> {
    const { sessionId, ...rest } = input;
    await this.#audit(sessionId === undefined ? rest : { ...rest, sessionId });
  }
}

/**
 * Why an approval (its row) does not cover the statement as its names resolve now, or undefined.
 * An approval bound to objects needs a resolution to compare with; one made without objects
 * (an approval from before bindings existed) covers only a statement with none.
 */
function bindingMismatch(r: ApprovalRow, now: ObjectBinding | undefined): string | undefined {
  const approved = r.summary?.objects;
  if (approved === undefined && now === undefined) return undefined;
  if (approved === undefined || now === undefined) {
    return `approval no longer matches: approval ${r.id} was not bound to the objects the statement acts on; request it again`;
  }
  const drift = objectDrift(approved, now);
  return drift === undefined ? undefined : `approval no longer matches: ${drift} (approval ${r.id} is used up; request it again)`;
}

/** A preview that changes more rows than the policy's maxAffectedRows: the refusal, or undefined. */
function overLimit(hold: HoldDecision, p: StatementPreview): string | undefined {
  const max = hold.preview?.maxAffectedRows;
  if (max === undefined || p.status !== "previewed" || p.affectedRows <= max) return undefined;
  const tables = p.tables.map((t) => `${t.relation}: ${t.inserted + t.updated + t.deleted}`).join(", ");
  return `${hold.message}: its preview would change ${p.affectedRows} rows (${tables}), more than maxAffectedRows ${max} of rule ${hold.preview?.rule ?? hold.rule}`;
}

/**
 * Why an approval (its row) no longer covers the statement as its preview shows it now, or
 * undefined. An approval made with a preview needs one to compare with.
 */
function previewMismatch(r: ApprovalRow, now: StatementPreview | undefined, hold: HoldDecision): string | undefined {
  const approved = r.summary?.preview;
  if (approved === undefined) return undefined;
  if (now === undefined) return `approval no longer matches: approval ${r.id} was bound to a preview that cannot be repeated here; request it again`;
  const drift = previewDrift(approved, now, hold.preview?.tolerance ?? DEFAULT_PREVIEW_TOLERANCE);
  return drift === undefined ? undefined : `approval no longer matches what the statement would do now: ${drift} (approval ${r.id} is used up; request it again)`;
}

function withRule(allow: AllowDecision, rule: string): AllowDecision {
  return { ...allow, rule };
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
