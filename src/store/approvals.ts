/**
 * Persistence of approval requests (per-statement approvals and access-grant requests), the
 * approvers' votes, and notification delivery attempts. Same SQL for PGlite and PostgreSQL
 * (migration 2), and for SQLite after sqlite-dialect.ts's rewrite (one statement has a SQLite form). State changes are conditional updates (`WHERE status = 'pending'`,
 * `WHERE used_at IS NULL`), so a request is decided once and an approval is used once even if
 * two callers race.
 */
import { z } from "zod";
import type { ObjectBinding } from "../core/objects.js";
import type { StatementPreview } from "../core/preview.js";
import type { PrincipalKind } from "../core/principal.js";
import { sqlBool, sqlDate, sqlInt, sqlJson, type SqlClient } from "./sql.js";

export type ApprovalKind = "statement" | "grant";
/** `revoked`: an approved access grant that was ended before its time. */
export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "cancelled" | "revoked";
export type ApprovalMode = "wait" | "async";

export interface ApprovalRow {
  readonly id: string;
  readonly kind: ApprovalKind;
  readonly status: ApprovalStatus;
  readonly requesterId: string;
  readonly requesterKind: PrincipalKind;
  readonly requesterName: string;
  readonly connection: string;
  readonly protocol?: string;
  readonly sessionId?: string;
  /** The exact statement (or command) held. */
  readonly statement?: string;
  /** Bind parameters when known (text, `\x…` for binary). */
  readonly params?: readonly (string | null)[];
  /** sha256 binding for async re-sends (principal + connection + statement + params). */
  readonly statementHash?: string;
  /**
   * Classification shown to approvers; `objects`: what the statement's names resolved to on the
   * target when it was requested (the approval is bound to it; src/approvals/binding.ts).
   */
  readonly summary?: { readonly operations: readonly string[]; readonly relations: readonly string[]; readonly objects?: ObjectBinding; readonly preview?: StatementPreview };
  readonly rule?: string;
  readonly message?: string;
  /** The requester's reason (access requests). */
  readonly reason?: string;
  readonly approvers: readonly string[];
  readonly minApprovals: number;
  readonly mode?: ApprovalMode;
  /** Access requests: the grant's length once approved. */
  readonly durationMs?: number;
  readonly createdAt: Date;
  /** A pending request expires then. */
  readonly expiresAt: Date;
  readonly decidedAt?: Date;
  readonly decisionReason?: string;
  /** Approved statements: usable (once) until then. Grants: the grant ends then. */
  readonly usableUntil?: Date;
  readonly usedAt?: Date;
}

/** What an approval must have been given under to be used (see ApprovalStore.consume). */
export interface ApprovalRequirements {
  readonly rule: string;
  readonly approvers: readonly string[];
  readonly minApprovals: number;
}

export interface VoteRow {
  readonly requestId: string;
  readonly approverId: string;
  readonly approverKind: PrincipalKind;
  readonly approverName: string;
  readonly vote: "approve" | "deny";
  readonly reason?: string;
  readonly at: Date;
}

export interface DeliveryRow {
  readonly requestId: string;
  /** e.g. `webhook[0] hooks.example.com`, `email`: never a URL (it may hold a credential). */
  readonly channel: string;
  readonly event: string;
  readonly attempt: number;
  readonly ok: boolean;
  readonly httpStatus?: number;
  readonly error?: string;
  readonly at: Date;
}

export interface ApprovalStore {
  insertRequest(row: ApprovalRow): Promise<void>;
  getRequest(id: string): Promise<ApprovalRow | undefined>;
  /** Newest first. */
  listRequests(query: { readonly status?: ApprovalStatus; readonly kind?: ApprovalKind; readonly limit: number }): Promise<readonly ApprovalRow[]>;
  /** pending → `to`, once. Returns the updated row, or undefined when it was not pending. */
  finish(id: string, to: Exclude<ApprovalStatus, "pending">, at: Date, fields?: { readonly reason?: string; readonly usableUntil?: Date }): Promise<ApprovalRow | undefined>;
  /** Returns false when this approver already voted on the request. */
  insertVote(vote: VoteRow): Promise<boolean>;
  listVotes(requestId: string): Promise<readonly VoteRow[]>;
  /**
   * Use an approved, unused, unexpired statement approval bound to this principal, connection
   * and hash: at most once. With `under`, only one given under that rule, by the same approver
   * groups, with at least that many approvals (a configuration that got stricter meanwhile is
   * not satisfied by an approval given under the old one).
   */
  consume(requesterId: string, connection: string, statementHash: string, now: Date, under?: ApprovalRequirements): Promise<ApprovalRow | undefined>;
  /** Mark an approved request used (wait mode: the held statement ran). False if it already was. */
  markUsed(id: string, at: Date): Promise<boolean>;
  /** How many undecided, unexpired requests (statements and access) this principal has. */
  countPending(requesterId: string, now: Date): Promise<number>;
  /** A pending statement request with the same binding (async re-sends before the decision). */
  findPending(requesterId: string, connection: string, statementHash: string, now: Date): Promise<ApprovalRow | undefined>;
  /** approved grant → revoked, ending now. Undefined when it is not an active grant. */
  revokeGrant(id: string, at: Date, reason: string): Promise<ApprovalRow | undefined>;
  /** Approved grants that have not ended. */
  activeGrants(now: Date): Promise<readonly ApprovalRow[]>;
  /** Pending requests whose time is up → expired. Returns them. */
  expireDue(now: Date): Promise<readonly ApprovalRow[]>;
  /** Pending wait-mode statement requests (their waiting client is gone after a restart) → cancelled. */
  /**
   * Cancel statement requests a client waits on (the gateway restarted, so nobody waits any more).
   * With `instanceId`, only those of sessions that instance holds (or of sessions not in the
   * store): other gateways' clients still wait.
   */
  cancelWaiting(now: Date, reason: string, instanceId?: string): Promise<readonly ApprovalRow[]>;
  recordDelivery(row: DeliveryRow): Promise<void>;
  listDeliveries(requestId: string): Promise<readonly DeliveryRow[]>;
}

const principalKind = z.enum(["service_account", "person", "workload", "admin"]);
const stringArray = sqlJson.pipe(z.array(z.string()));

const resolvedObject = z.object({ oid: z.number().int(), qualified: z.string() });
const objectBinding = z.object({
  searchPath: z.string(),
  objects: z.array(z.object({ kind: z.enum(["relation", "function"]), name: z.string(), resolved: z.array(resolvedObject) })),
});

/** A stored preview (core/preview.ts), bounded: the gateway wrote it, but the store is outside. */
const previewSchema = z.discriminatedUnion("status", [
  z.object({
    status: z.literal("previewed"),
    affectedRows: z.number().int().min(0),
    tables: z.array(z.object({ relation: z.string(), inserted: z.number().int(), updated: z.number().int(), deleted: z.number().int() })).max(100),
    sample: z.object({ image: z.enum(["before", "after"]), columns: z.array(z.string()).max(1600), rows: z.array(z.array(z.string().nullable())).max(100), truncated: z.boolean() }).optional(),
    plan: z.array(z.string()).max(200),
  }),
  z.object({ status: z.literal("unpreviewable"), reason: z.string() }),
  z.object({ status: z.literal("failed"), reason: z.string() }),
]);

function previewOf(p: z.output<typeof previewSchema>): StatementPreview {
  if (p.status !== "previewed") return p;
  const { sample, ...rest } = p;
  return sample === undefined ? rest : { ...rest, sample };
}

const requestRow = z.object({
  id: z.string(),
  kind: z.enum(["statement", "grant"]),
  status: z.enum(["pending", "approved", "denied", "expired", "cancelled", "revoked"]),
  requester_id: z.string(),
  requester_kind: principalKind,
  requester_name: z.string(),
  connection: z.string(),
  protocol: z.string().nullable(),
  session_id: z.string().nullable(),
  statement: z.string().nullable(),
  params: sqlJson.pipe(z.array(z.string().nullable()).nullable()),
  statement_hash: z.string().nullable(),
  summary: sqlJson.pipe(z.object({ operations: z.array(z.string()), relations: z.array(z.string()), objects: objectBinding.optional(), preview: previewSchema.optional() }).nullable()),
  rule: z.string().nullable(),
  message: z.string().nullable(),
  reason: z.string().nullable(),
  approvers: stringArray,
  min_approvals: sqlInt,
  mode: z.enum(["wait", "async"]).nullable(),
  duration_ms: sqlInt.nullable(),
  created_at: sqlDate,
  expires_at: sqlDate,
  decided_at: sqlDate.nullable(),
  decision_reason: z.string().nullable(),
  usable_until: sqlDate.nullable(),
  used_at: sqlDate.nullable(),
});

const COLUMNS =
  "id, kind, status, requester_id, requester_kind, requester_name, connection, protocol, session_id, statement, params, statement_hash, summary, rule, message, reason, approvers, min_approvals, mode, duration_ms, created_at, expires_at, decided_at, decision_reason, usable_until, used_at";

function summaryOf(s: NonNullable<z.output<typeof requestRow>["summary"]>): NonNullable<ApprovalRow["summary"]> {
  const { objects, preview, ...rest } = s;
  return { ...rest, ...(objects === undefined ? {} : { objects }), ...(preview === undefined ? {} : { preview: previewOf(preview) }) };
}

function toRow(r: z.output<typeof requestRow>): ApprovalRow {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    requesterId: r.requester_id,
    requesterKind: r.requester_kind,
    requesterName: r.requester_name,
    connection: r.connection,
    ...(r.protocol === null ? {} : { protocol: r.protocol }),
    ...(r.session_id === null ? {} : { sessionId: r.session_id }),
    ...(r.statement === null ? {} : { statement: r.statement }),
    ...(r.params === null ? {} : { params: r.params }),
    ...(r.statement_hash === null ? {} : { statementHash: r.statement_hash }),
    ...(r.summary === null ? {} : { summary: summaryOf(r.summary) }),
    ...(r.rule === null ? {} : { rule: r.rule }),
    ...(r.message === null ? {} : { message: r.message }),
    ...(r.reason === null ? {} : { reason: r.reason }),
    approvers: r.approvers,
    minApprovals: r.min_approvals,
    ...(r.mode === null ? {} : { mode: r.mode }),
    ...(r.duration_ms === null ? {} : { durationMs: r.duration_ms }),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    ...(r.decided_at === null ? {} : { decidedAt: r.decided_at }),
    ...(r.decision_reason === null ? {} : { decisionReason: r.decision_reason }),
    ...(r.usable_until === null ? {} : { usableUntil: r.usable_until }),
    ...(r.used_at === null ? {} : { usedAt: r.used_at }),
  };
}

const voteRow = z.object({
  request_id: z.string(),
  approver_id: z.string(),
  approver_kind: principalKind,
  approver_name: z.string(),
  vote: z.enum(["approve", "deny"]),
  reason: z.string().nullable(),
  at: sqlDate,
});

const deliveryRow = z.object({
  request_id: z.string(),
  channel: z.string(),
  event: z.string(),
  attempt: sqlInt,
  ok: sqlBool,
  http_status: sqlInt.nullable(),
  error: z.string().nullable(),
  at: sqlDate,
});

const MAX_LIST = 1000;
const iso = (d: Date): string => d.toISOString();

export class SqlApprovalStore implements ApprovalStore {
  readonly #sql: SqlClient;

  constructor(sql: SqlClient) {
    this.#sql = sql;
  }

  async insertRequest(r: ApprovalRow): Promise<void> {
    await this.#sql.execute(
      `INSERT INTO approval_requests (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13::jsonb, $14, $15, $16, $17::jsonb, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
      [
        r.id,
        r.kind,
        r.status,
        r.requesterId,
        r.requesterKind,
        r.requesterName,
        r.connection,
        r.protocol ?? null,
        r.sessionId ?? null,
        r.statement ?? null,
        r.params === undefined ? null : JSON.stringify(r.params),
        r.statementHash ?? null,
        r.summary === undefined ? null : JSON.stringify(r.summary),
        r.rule ?? null,
        r.message ?? null,
        r.reason ?? null,
        JSON.stringify(r.approvers),
        r.minApprovals,
        r.mode ?? null,
        r.durationMs ?? null,
        iso(r.createdAt),
        iso(r.expiresAt),
        r.decidedAt === undefined ? null : iso(r.decidedAt),
        r.decisionReason ?? null,
        r.usableUntil === undefined ? null : iso(r.usableUntil),
        r.usedAt === undefined ? null : iso(r.usedAt),
      ],
    );
  }

  async getRequest(id: string): Promise<ApprovalRow | undefined> {
    const rows = await this.#sql.query(`SELECT ${COLUMNS} FROM approval_requests WHERE id = $1`, [id], requestRow);
    const r = rows[0];
    return r === undefined ? undefined : toRow(r);
  }

  async listRequests(q: { readonly status?: ApprovalStatus; readonly kind?: ApprovalKind; readonly limit: number }): Promise<readonly ApprovalRow[]> {
    const limit = Math.max(1, Math.min(MAX_LIST, Math.floor(q.limit)));
    const rows = await this.#sql.query(
      `SELECT ${COLUMNS} FROM approval_requests WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2) ORDER BY created_at DESC, id DESC LIMIT $3`,
      [q.status ?? null, q.kind ?? null, limit],
      requestRow,
    );
    return rows.map(toRow);
  }

  async finish(
    id: string,
    to: Exclude<ApprovalStatus, "pending">,
    at: Date,
    fields: { readonly reason?: string; readonly usableUntil?: Date } = {},
  ): Promise<ApprovalRow | undefined> {
    const rows = await this.#sql.query(
      `UPDATE approval_requests SET status = $2, decided_at = $3, decision_reason = $4, usable_until = $5 WHERE id = $1 AND status = 'pending' RETURNING ${COLUMNS}`,
      [id, to, iso(at), fields.reason ?? null, fields.usableUntil === undefined ? null : iso(fields.usableUntil)],
      requestRow,
    );
    const r = rows[0];
    return r === undefined ? undefined : toRow(r);
  }

  async insertVote(v: VoteRow): Promise<boolean> {
    const n = await this.#sql.execute(
      `INSERT INTO approval_votes (request_id, approver_id, approver_kind, approver_name, vote, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (request_id, approver_id) DO NOTHING`,
      [v.requestId, v.approverId, v.approverKind, v.approverName, v.vote, v.reason ?? null, iso(v.at)],
    );
    return n > 0;
  }

  async listVotes(requestId: string): Promise<readonly VoteRow[]> {
    const rows = await this.#sql.query(
      "SELECT request_id, approver_id, approver_kind, approver_name, vote, reason, at FROM approval_votes WHERE request_id = $1 ORDER BY at, approver_id",
      [requestId],
      voteRow,
    );
    return rows.map((r) => ({
      requestId: r.request_id,
      approverId: r.approver_id,
      approverKind: r.approver_kind,
      approverName: r.approver_name,
      vote: r.vote,
      ...(r.reason === null ? {} : { reason: r.reason }),
      at: r.at,
    }));
  }

  async consume(requesterId: string, connection: string, statementHash: string, now: Date, under?: ApprovalRequirements): Promise<ApprovalRow | undefined> {
    // The approver groups must be the same SET as required: jsonb containment both ways in
    // PostgreSQL; in SQLite (no jsonb operators) no element of either array missing from the other.
    const sameApprovers =
      this.#sql.kind === "sqlite"
        ? `NOT EXISTS (SELECT 1 FROM json_each(approvers) a WHERE a.value NOT IN (SELECT b.value FROM json_each($6) b))
           AND NOT EXISTS (SELECT 1 FROM json_each($6) b WHERE b.value NOT IN (SELECT a.value FROM json_each(approvers) a))`
        : "approvers @> $6::jsonb AND approvers <@ $6::jsonb";
    const rows = await this.#sql.query(
      `UPDATE approval_requests SET used_at = $4
       WHERE id = (
         SELECT id FROM approval_requests
         WHERE kind = 'statement' AND status = 'approved' AND used_at IS NULL
           AND requester_id = $1 AND connection = $2 AND statement_hash = $3 AND usable_until > $4
           AND ($5::text IS NULL OR (rule = $5 AND ${sameApprovers} AND min_approvals >= $7))
         ORDER BY decided_at LIMIT 1
       ) AND used_at IS NULL
       RETURNING ${COLUMNS}`,
      [requesterId, connection, statementHash, iso(now), under?.rule ?? null, JSON.stringify(under?.approvers ?? []), under?.minApprovals ?? 0],
      requestRow,
    );
    const r = rows[0];
    return r === undefined ? undefined : toRow(r);
  }

  async markUsed(id: string, at: Date): Promise<boolean> {
    const n = await this.#sql.execute("UPDATE approval_requests SET used_at = $2 WHERE id = $1 AND status = 'approved' AND used_at IS NULL", [id, iso(at)]);
    return n > 0;
  }

  async countPending(requesterId: string, now: Date): Promise<number> {
    const rows = await this.#sql.query(
      "SELECT count(*)::int AS n FROM approval_requests WHERE status = 'pending' AND requester_id = $1 AND expires_at > $2",
      [requesterId, iso(now)],
      z.object({ n: sqlInt }),
    );
    return rows[0]?.n ?? 0;
  }

  async findPending(requesterId: string, connection: string, statementHash: string, now: Date): Promise<ApprovalRow | undefined> {
    const rows = await this.#sql.query(
      `SELECT ${COLUMNS} FROM approval_requests
       WHERE kind = 'statement' AND status = 'pending' AND requester_id = $1 AND connection = $2 AND statement_hash = $3 AND expires_at > $4
       ORDER BY created_at DESC LIMIT 1`,
      [requesterId, connection, statementHash, iso(now)],
      requestRow,
    );
    const r = rows[0];
    return r === undefined ? undefined : toRow(r);
  }

  async revokeGrant(id: string, at: Date, reason: string): Promise<ApprovalRow | undefined> {
    const rows = await this.#sql.query(
      `UPDATE approval_requests SET status = 'revoked', usable_until = $2, decision_reason = $3
       WHERE id = $1 AND kind = 'grant' AND status = 'approved' AND usable_until > $2 RETURNING ${COLUMNS}`,
      [id, iso(at), reason],
      requestRow,
    );
    const r = rows[0];
    return r === undefined ? undefined : toRow(r);
  }

  async activeGrants(now: Date): Promise<readonly ApprovalRow[]> {
    const rows = await this.#sql.query(
      `SELECT ${COLUMNS} FROM approval_requests WHERE kind = 'grant' AND status = 'approved' AND usable_until > $1 ORDER BY usable_until`,
      [iso(now)],
      requestRow,
    );
    return rows.map(toRow);
  }

  async expireDue(now: Date): Promise<readonly ApprovalRow[]> {
    const rows = await this.#sql.query(
      `UPDATE approval_requests SET status = 'expired', decided_at = $1, decision_reason = 'no decision in time'
       WHERE status = 'pending' AND expires_at <= $1 RETURNING ${COLUMNS}`,
      [iso(now)],
      requestRow,
    );
    return rows.map(toRow);
  }

  async cancelWaiting(now: Date, reason: string, instanceId?: string): Promise<readonly ApprovalRow[]> {
    const rows =
      instanceId === undefined
        ? await this.#sql.query(
            `UPDATE approval_requests SET status = 'cancelled', decided_at = $1, decision_reason = $2
             WHERE status = 'pending' AND kind = 'statement' AND mode = 'wait' RETURNING ${COLUMNS}`,
            [iso(now), reason],
            requestRow,
          )
        : await this.#sql.query(
            `UPDATE approval_requests SET status = 'cancelled', decided_at = $1, decision_reason = $2
             WHERE status = 'pending' AND kind = 'statement' AND mode = 'wait'
               AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = approval_requests.session_id AND s.instance_id <> $3)
             RETURNING ${COLUMNS}`,
            [iso(now), reason, instanceId],
            requestRow,
          );
    return rows.map(toRow);
  }

  async recordDelivery(d: DeliveryRow): Promise<void> {
    await this.#sql.execute(
      "INSERT INTO approval_deliveries (request_id, channel, event, attempt, ok, http_status, error, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      [d.requestId, d.channel, d.event, d.attempt, d.ok, d.httpStatus ?? null, d.error ?? null, iso(d.at)],
    );
  }

  async listDeliveries(requestId: string): Promise<readonly DeliveryRow[]> {
    const rows = await this.#sql.query(
      "SELECT request_id, channel, event, attempt, ok, http_status, error, at FROM approval_deliveries WHERE request_id = $1 ORDER BY id",
      [requestId],
      deliveryRow,
    );
    return rows.map((r) => ({
      requestId: r.request_id,
      channel: r.channel,
      event: r.event,
      attempt: r.attempt,
      ok: r.ok,
      ...(r.http_status === null ? {} : { httpStatus: r.http_status }),
      ...(r.error === null ? {} : { error: r.error }),
      at: r.at,
    }));
  }
}
