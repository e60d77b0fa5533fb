/**
 * The Store over a SqlClient: the same parameterised SQL for PGlite and PostgreSQL.
 * Values never enter SQL text; everything goes through `$n` parameters. Timestamps are passed
 * as ISO-8601 strings and jsonb as JSON text, so both drivers serialise them identically.
 */
import { z } from "zod";
import type { SessionEndReason } from "../core/session.js";
import { auditRecordSchema } from "../audit/chain.js";
import type { AuditRecord } from "../audit/types.js";
import { migrate } from "./migrations.js";
import { SqlApprovalStore, type ApprovalStore } from "./approvals.js";
import { sqlDate, sqlInt, sqlJson, type SqlClient } from "./sql.js";
import type { SessionEnd, SessionRow, Store, TokenRow } from "./types.js";

const principalKind = z.enum(["service_account", "person", "workload", "admin"]);
const endReason = z.enum(["client_closed", "upstream_closed", "revoked", "expired", "terminated", "error", "shutdown"]) satisfies z.ZodType<SessionEndReason>;

const tokenRow = z.object({
  id: z.string(),
  principal_id: z.string(),
  principal_kind: principalKind,
  principal_name: z.string(),
  created_at: sqlDate,
  expires_at: sqlDate,
  created_by: z.string(),
  revoked_at: sqlDate.nullable(),
  revoked_by: z.string().nullable(),
});

function toToken(r: z.output<typeof tokenRow>): TokenRow {
  return {
    id: r.id,
    principalId: r.principal_id,
    principalKind: r.principal_kind,
    principalName: r.principal_name,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    createdBy: r.created_by,
    ...(r.revoked_at === null ? {} : { revokedAt: r.revoked_at }),
    ...(r.revoked_by === null ? {} : { revokedBy: r.revoked_by }),
  };
}

const sessionRow = z.object({
  id: z.string(),
  protocol: z.string(),
  connection: z.string(),
  principal_id: z.string(),
  principal_kind: principalKind,
  principal_name: z.string(),
  groups: sqlJson.pipe(z.array(z.string())),
  token_id: z.string().nullable(),
  client_address: z.string(),
  started_at: sqlDate,
  attributes: sqlJson.pipe(z.record(z.string(), z.string())),
  ended_at: sqlDate.nullable(),
  end_reason: endReason.nullable(),
  end_detail: z.string().nullable(),
  statements: sqlInt.nullable(),
  bytes_from_client: sqlInt.nullable(),
  bytes_to_client: sqlInt.nullable(),
});

function toSession(r: z.output<typeof sessionRow>): SessionRow {
  return {
    id: r.id,
    protocol: r.protocol,
    connection: r.connection,
    principalId: r.principal_id,
    principalKind: r.principal_kind,
    principalName: r.principal_name,
    groups: r.groups,
    ...(r.token_id === null ? {} : { tokenId: r.token_id }),
    clientAddress: r.client_address,
    startedAt: r.started_at,
    attributes: r.attributes,
    ...(r.ended_at === null ? {} : { endedAt: r.ended_at }),
    ...(r.end_reason === null ? {} : { endReason: r.end_reason }),
    ...(r.end_detail === null ? {} : { endDetail: r.end_detail }),
    ...(r.statements === null ? {} : { statements: r.statements }),
    ...(r.bytes_from_client === null ? {} : { bytesFromClient: r.bytes_from_client }),
    ...(r.bytes_to_client === null ? {} : { bytesToClient: r.bytes_to_client }),
  };
}

const auditRow = z.object({ record: sqlJson.pipe(auditRecordSchema) });

const SESSION_COLUMNS =
  "id, protocol, connection, principal_id, principal_kind, principal_name, groups, token_id, client_address, started_at, attributes, ended_at, end_reason, end_detail, statements, bytes_from_client, bytes_to_client";
const TOKEN_COLUMNS = "id, principal_id, principal_kind, principal_name, created_at, expires_at, created_by, revoked_at, revoked_by";

const MAX_LIST_LIMIT = 10_000;

function iso(d: Date): string {
  return d.toISOString();
}

export class SqlStore implements Store {
  readonly kind: "pglite" | "postgres";

  /** Approval requests, votes and notification deliveries (src/store/approvals.ts). */
  readonly approvals: ApprovalStore;

  constructor(private readonly sql: SqlClient) {
    this.kind = sql.kind;
    this.approvals = new SqlApprovalStore(sql);
  }

  async migrate(): Promise<void> {
    await migrate(this.sql);
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  // --- tokens -------------------------------------------------------------------------------

  async insertToken(row: TokenRow): Promise<void> {
    await this.sql.execute(
      `INSERT INTO tokens (${TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        row.id,
        row.principalId,
        row.principalKind,
        row.principalName,
        iso(row.createdAt),
        iso(row.expiresAt),
        row.createdBy,
        row.revokedAt === undefined ? null : iso(row.revokedAt),
        row.revokedBy ?? null,
      ],
    );
  }

  async getToken(id: string): Promise<TokenRow | undefined> {
    const rows = await this.sql.query(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = $1`, [id], tokenRow);
    const r = rows[0];
    return r === undefined ? undefined : toToken(r);
  }

  async revokeToken(id: string, revokedAt: Date, revokedBy: string): Promise<boolean> {
    // The first revocation wins: revoking again keeps the original time and actor.
    const rows = await this.sql.query(
      "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2), revoked_by = COALESCE(revoked_by, $3) WHERE id = $1 RETURNING id",
      [id, iso(revokedAt), revokedBy],
      z.object({ id: z.string() }),
    );
    return rows.length > 0;
  }

  async listRevokedTokens(since?: Date): Promise<readonly { id: string; revokedAt: Date }[]> {
    const row = z.object({ id: z.string(), revoked_at: sqlDate });
    const rows =
      since === undefined
        ? await this.sql.query(
            "SELECT id, revoked_at FROM tokens WHERE revoked_at IS NOT NULL AND expires_at > now() ORDER BY revoked_at, id",
            [],
            row,
          )
        : await this.sql.query(
            "SELECT id, revoked_at FROM tokens WHERE revoked_at IS NOT NULL AND revoked_at > $1 AND expires_at > now() ORDER BY revoked_at, id",
            [iso(since)],
            row,
          );
    return rows.map((r) => ({ id: r.id, revokedAt: r.revoked_at }));
  }

  // --- sessions -----------------------------------------------------------------------------

  async insertSession(row: SessionRow): Promise<void> {
    await this.sql.execute(
      `INSERT INTO sessions (${SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11::jsonb, $12, $13, $14, $15, $16, $17)`,
      [
        row.id,
        row.protocol,
        row.connection,
        row.principalId,
        row.principalKind,
        row.principalName,
        JSON.stringify(row.groups),
        row.tokenId ?? null,
        row.clientAddress,
        iso(row.startedAt),
        JSON.stringify(row.attributes),
        row.endedAt === undefined ? null : iso(row.endedAt),
        row.endReason ?? null,
        row.endDetail ?? null,
        row.statements ?? null,
        row.bytesFromClient ?? null,
        row.bytesToClient ?? null,
      ],
    );
  }

  async endSession(id: string, end: SessionEnd): Promise<void> {
    await this.sql.execute(
      "UPDATE sessions SET ended_at = $2, end_reason = $3, end_detail = $4, statements = $5, bytes_from_client = $6, bytes_to_client = $7 WHERE id = $1",
      [id, iso(end.endedAt), end.reason, end.detail ?? null, end.statements, end.bytesFromClient, end.bytesToClient],
    );
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    const rows = await this.sql.query(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = $1`, [id], sessionRow);
    const r = rows[0];
    return r === undefined ? undefined : toSession(r);
  }

  async listSessions(query: { readonly limit: number; readonly offset?: number; readonly connection?: string }): Promise<readonly SessionRow[]> {
    const limit = Math.max(0, Math.min(MAX_LIST_LIMIT, Math.floor(query.limit)));
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    // `id` breaks ties so paging is stable when sessions start in the same millisecond.
    const rows =
      query.connection === undefined
        ? await this.sql.query(
            `SELECT ${SESSION_COLUMNS} FROM sessions ORDER BY started_at DESC, id DESC LIMIT $1 OFFSET $2`,
            [limit, offset],
            sessionRow,
          )
        : await this.sql.query(
            `SELECT ${SESSION_COLUMNS} FROM sessions WHERE connection = $3 ORDER BY started_at DESC, id DESC LIMIT $1 OFFSET $2`,
            [limit, offset, query.connection],
            sessionRow,
          );
    return rows.map(toSession);
  }

  // --- audit --------------------------------------------------------------------------------

  /**
   * Insert a batch atomically. Records already present (same seq) are left alone: a retried
   * batch is harmless, and a DIFFERENT record at an existing seq keeps the stored one — that
   * is tampering or a forked chain, and verification reports it.
   */
  async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    // One statement per batch with array parameters: seven parameters in all, whatever the
    // batch size, so the store parses and plans once per batch, not once per record.
    await this.sql.execute(
      `INSERT INTO audit (seq, time, type, session_id, record, hash, prev_hash)
       SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[])
       ON CONFLICT (seq) DO NOTHING`,
      [
        records.map((r) => r.seq),
        records.map((r) => r.time),
        records.map((r) => r.type),
        records.map((r) => r.sessionId ?? null),
        records.map((r) => JSON.stringify(r)),
        records.map((r) => r.hash),
        records.map((r) => r.prevHash),
      ],
    );
  }

  async lastAudit(): Promise<AuditRecord | undefined> {
    const rows = await this.sql.query("SELECT record FROM audit ORDER BY seq DESC LIMIT 1", [], auditRow);
    return rows[0]?.record;
  }

  async readAudit(afterSeq: number, limit: number): Promise<readonly AuditRecord[]> {
    const n = Math.max(0, Math.min(MAX_LIST_LIMIT, Math.floor(limit)));
    const rows = await this.sql.query("SELECT record FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", [Math.floor(afterSeq), n], auditRow);
    return rows.map((r) => r.record);
  }
}
