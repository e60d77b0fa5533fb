/**
 * The Store over a SqlClient: the same parameterised SQL for PGlite and PostgreSQL.
 * Values never enter SQL text; everything goes through `$n` parameters. Timestamps are passed
 * as ISO-8601 strings and jsonb as JSON text, so both drivers serialise them identically.
 */
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { SessionEndReason } from "../core/session.js";
import { auditRecordSchema } from "../audit/chain.js";
import type { AuditRecord } from "../audit/types.js";
import { GroupCommit } from "./group-commit.js";
import { migrate } from "./migrations.js";
import { SqlApprovalStore, type ApprovalStore } from "./approvals.js";
import { SqlConsoleDocumentStore, type ConsoleDocumentStore } from "./console-documents.js";
import { SqlBudgetCounterStore, type BudgetCounterStore } from "./budgets.js";
import { SqlRecordingChunkStore, type RecordingChunkStore } from "./recording-chunks.js";
import { SqlMcpPinStore, type McpPinStore } from "./mcp-pins.js";
import { sqlDate, sqlInt, sqlJson, type SqlClient, type SqlKind } from "./sql.js";
import { DEFAULT_INSTANCE_ID, recordChainHead, SqlInstanceStore } from "./instances.js";
import type { AuditChainReader, SessionEnd, SessionRow, Store, TokenRow } from "./types.js";

const principalKind = z.enum(["service_account", "person", "workload", "admin"]);
const endReason = z.enum(["client_closed", "upstream_closed", "revoked", "expired", "terminated", "error", "shutdown", "lost"]) satisfies z.ZodType<SessionEndReason>;

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
  instance_id: z.string().nullable(),
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
    ...(r.instance_id === null ? {} : { instanceId: r.instance_id }),
  };
}


const SESSION_COLUMNS =
  "id, protocol, connection, principal_id, principal_kind, principal_name, groups, token_id, client_address, started_at, attributes, ended_at, end_reason, end_detail, statements, bytes_from_client, bytes_to_client";
/** The columns read back: the written ones plus the gateway instance that holds (held) the session. */
const SESSION_READ_COLUMNS = `${SESSION_COLUMNS}, instance_id`;
const TOKEN_COLUMNS = "id, principal_id, principal_kind, principal_name, created_at, expires_at, created_by, revoked_at, revoked_by";

const MAX_LIST_LIMIT = 10_000;

type SessionWrite = { readonly kind: "insert"; readonly row: SessionRow } | { readonly kind: "end"; readonly id: string; readonly end: SessionEnd };

function iso(d: Date): string {
  return d.toISOString();
}

export class SqlStore implements Store {
  readonly kind: SqlKind;

  /** Approval requests, votes and notification deliveries (src/store/approvals.ts). */
  readonly approvals: ApprovalStore;

  /** Connections and policies created in the web console (src/store/console-documents.ts). */
  readonly consoleDocuments: ConsoleDocumentStore;

  /** This gateway instance: the audit chain it writes and the sessions it holds (instances.ts). */
  readonly instanceId: string;

  /** Gateway instances sharing this store, their liveness and their chains (instances.ts). */
  readonly instances: SqlInstanceStore;

  /** Pinned tool fingerprints of upstream MCP servers (src/store/mcp-pins.ts). */
  readonly mcpPins: McpPinStore;

  /** Budget counters shared by the gateways on this store (src/store/budgets.ts). */
  readonly budgets: BudgetCounterStore;

  /** Session recordings kept in the store (src/store/recording-chunks.ts). */
  readonly recordingChunks: RecordingChunkStore;

  constructor(
    private readonly sql: SqlClient,
    options: { readonly instanceId?: string } = {},
  ) {
    this.kind = sql.kind;
    this.instanceId = options.instanceId ?? DEFAULT_INSTANCE_ID;
    this.approvals = new SqlApprovalStore(sql);
    this.consoleDocuments = new SqlConsoleDocumentStore(sql);
    this.instances = new SqlInstanceStore(sql, this.instanceId);
    this.mcpPins = new SqlMcpPinStore(sql);
    this.budgets = new SqlBudgetCounterStore(sql);
    this.recordingChunks = new SqlRecordingChunkStore(sql);
  }

  async migrate(): Promise<void> {
    await migrate(this.sql);
  }

  async claimWriter(): Promise<void> {
    if (this.sql.claimWriter === undefined || (await this.sql.claimWriter(this.instanceId))) return;
    throw new GatewayError(
      "GW_CONFIG",
      `another Airlock gateway with instance id "${this.instanceId}" is writing to this store (two writers would fork its audit chain): ` +
        "give each gateway its own instance id (instanceId, AIRLOCK_INSTANCE_ID, or its own dataDir)",
    );
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

  /**
   * Session rows are written by group commit: a connection-per-task agent opens and ends
   * hundreds of sessions a second, and one multi-row statement per flush costs the embedded
   * store a fraction of one statement per row. An end that arrives in the same flush as its
   * start is written as one row.
   */
  readonly #sessionWrites = new GroupCommit<SessionWrite>((writes) => this.#writeSessions(writes));

  insertSession(row: SessionRow): Promise<void> {
    return this.#sessionWrites.submit({ kind: "insert", row });
  }

  endSession(id: string, end: SessionEnd): Promise<void> {
    return this.#sessionWrites.submit({ kind: "end", id, end });
  }

  async #writeSessions(writes: readonly SessionWrite[]): Promise<void> {
    const inserts = new Map<string, SessionRow>();
    const ends = new Map<string, SessionEnd>();
    for (const w of writes) {
      if (w.kind === "insert") {
        inserts.set(w.row.id, w.row);
        continue;
      }
      const row = inserts.get(w.id);
      if (row === undefined) {
        ends.set(w.id, w.end);
        continue;
      }
      inserts.set(w.id, {
        ...row,
        endedAt: w.end.endedAt,
        endReason: w.end.reason,
        ...(w.end.detail === undefined ? {} : { endDetail: w.end.detail }),
        statements: w.end.statements,
        bytesFromClient: w.end.bytesFromClient,
        bytesToClient: w.end.bytesToClient,
      });
    }
    const rows = [...inserts.values()];
    const ended = [...ends];
    // A transaction only when there are two statements (it costs two more store round trips).
    const run = rows.length > 0 && ended.length > 0 ? <T>(fn: (c: SqlClient) => Promise<T>) => this.sql.transaction(fn) : <T>(fn: (c: SqlClient) => Promise<T>) => fn(this.sql);
    if (this.sql.kind === "sqlite") {
      await run((tx) => writeSessionsSqlite(tx, rows, ended, this.instanceId));
      return;
    }
    await run(async (tx) => {
      if (rows.length > 0) {
        // One statement with one array parameter per column, whatever the number of rows.
        await tx.execute(
          `INSERT INTO sessions (${SESSION_COLUMNS}, instance_id)
           SELECT *, $18::text FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[],
                                $10::timestamptz[], $11::jsonb[], $12::timestamptz[], $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[])`,
          [
            rows.map((r) => r.id),
            rows.map((r) => r.protocol),
            rows.map((r) => r.connection),
            rows.map((r) => r.principalId),
            rows.map((r) => r.principalKind),
            rows.map((r) => r.principalName),
            rows.map((r) => JSON.stringify(r.groups)),
            rows.map((r) => r.tokenId ?? null),
            rows.map((r) => r.clientAddress),
            rows.map((r) => iso(r.startedAt)),
            rows.map((r) => JSON.stringify(r.attributes)),
            rows.map((r) => (r.endedAt === undefined ? null : iso(r.endedAt))),
            rows.map((r) => r.endReason ?? null),
            rows.map((r) => r.endDetail ?? null),
            rows.map((r) => r.statements ?? null),
            rows.map((r) => r.bytesFromClient ?? null),
            rows.map((r) => r.bytesToClient ?? null),
            this.instanceId,
          ],
        );
      }
      if (ended.length > 0) {
        await tx.execute(
          `UPDATE sessions AS s SET ended_at = u.ended_at, end_reason = u.end_reason, end_detail = u.end_detail,
                  statements = u.statements, bytes_from_client = u.bytes_from_client, bytes_to_client = u.bytes_to_client
           FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
                AS u(id, ended_at, end_reason, end_detail, statements, bytes_from_client, bytes_to_client)
           WHERE s.id = u.id`,
          [
            ended.map(([id]) => id),
            ended.map(([, e]) => iso(e.endedAt)),
            ended.map(([, e]) => e.reason),
            ended.map(([, e]) => e.detail ?? null),
            ended.map(([, e]) => e.statements),
            ended.map(([, e]) => e.bytesFromClient),
            ended.map(([, e]) => e.bytesToClient),
          ],
        );
      }
    });
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    const rows = await this.sql.query(`SELECT ${SESSION_READ_COLUMNS} FROM sessions WHERE id = $1`, [id], sessionRow);
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
            `SELECT ${SESSION_READ_COLUMNS} FROM sessions ORDER BY started_at DESC, id DESC LIMIT $1 OFFSET $2`,
            [limit, offset],
            sessionRow,
          )
        : await this.sql.query(
            `SELECT ${SESSION_READ_COLUMNS} FROM sessions WHERE connection = $3 ORDER BY started_at DESC, id DESC LIMIT $1 OFFSET $2`,
            [limit, offset, query.connection],
            sessionRow,
          );
    return rows.map(toSession);
  }

  // --- audit --------------------------------------------------------------------------------

  /**
   * Store a batch atomically as one segment (more when it is very large). Records already
   * present (seq at or below the stored head) are left alone: a retried batch is harmless, and a
   * DIFFERENT record at an existing seq keeps the stored one — that is tampering or a forked
   * chain, and verification reports it. The audit shipper is the only writer.
   */
  async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const chain = this.instanceId;
    await this.sql.transaction(async (tx) => {
      const head = (await tx.query("SELECT max(last_seq) AS seq FROM audit_segments WHERE chain = $1", [chain], headRow))[0]?.seq ?? 0;
      const fresh = records.filter((r) => r.seq > head);
      for (let i = 0; i < fresh.length; i += SEGMENT_RECORDS) {
        const part = fresh.slice(i, i + SEGMENT_RECORDS);
        const first = part[0];
        const last = part[part.length - 1];
        if (first === undefined || last === undefined) continue;
        await tx.execute("INSERT INTO audit_segments (chain, first_seq, last_seq, records, body) VALUES ($1, $2, $3, $4, $5)", [
          chain,
          first.seq,
          last.seq,
          part.length,
          part.map((r) => JSON.stringify(r)).join("\n"),
        ]);
      }
      // The chain's head as registered with its instance, in the same transaction: it anchors
      // the chain in the store (verification fails when the chain ends before it or differs there).
      const top = fresh[fresh.length - 1];
      if (top !== undefined) await recordChainHead(tx, chain, top.seq, top.hash);
    });
  }

  async lastAudit(): Promise<AuditRecord | undefined> {
    return lastChainAudit(this.sql, this.instanceId);
  }

  /**
   * Up to `limit` records with seq > afterSeq, in order. Segments are read a few at a time, and
   * a line is fully validated only when it is returned: a malformed record surfaces as a
   * GW_STORE error (cause: ZodError) exactly when the reader reaches it.
   */
  readAudit(afterSeq: number, limit: number): Promise<readonly AuditRecord[]> {
    return readChainAudit(this.sql, this.instanceId, afterSeq, limit);
  }

  /** Another chain of this store, read-only (verification of every gateway's chain). */
  chain(id: string): AuditChainReader {
    return {
      lastAudit: () => lastChainAudit(this.sql, id),
      readAudit: (afterSeq, limit) => readChainAudit(this.sql, id, afterSeq, limit),
    };
  }
}

async function lastChainAudit(sql: SqlClient, chain: string): Promise<AuditRecord | undefined> {
  const rows = await sql.query("SELECT body FROM audit_segments WHERE chain = $1 ORDER BY last_seq DESC LIMIT 1", [chain], segmentRow);
  const body = rows[0]?.body;
  if (body === undefined) return undefined;
  return toAuditRecord(jsonOf(body.slice(body.lastIndexOf("\n") + 1)));
}

/**
 * Up to `limit` records of `chain` with seq > afterSeq, in order. Segments are read a few at a
 * time, and a line is fully validated only when it is returned: a malformed record surfaces as a
 * GW_STORE error (cause: ZodError) exactly when the reader reaches it.
 */
async function readChainAudit(sql: SqlClient, chain: string, afterSeq: number, limit: number): Promise<readonly AuditRecord[]> {
  const n = Math.max(0, Math.min(MAX_LIST_LIMIT, Math.floor(limit)));
  const out: AuditRecord[] = [];
  let cursor = Math.floor(afterSeq);
  let segmentCursor = Number.MIN_SAFE_INTEGER;
  while (out.length < n) {
    const segments = await sql.query(
      "SELECT first_seq, body FROM audit_segments WHERE chain = $3 AND last_seq > $1 AND first_seq > $2 ORDER BY first_seq LIMIT 4",
      [cursor, segmentCursor, chain],
      segmentPageRow,
    );
    if (segments.length === 0) break;
    for (const seg of segments) {
      segmentCursor = seg.first_seq;
      for (const line of seg.body.split("\n")) {
        if (out.length >= n) break;
        const value = jsonOf(line);
        if (seqOf(value) <= cursor) continue;
        const record = toAuditRecord(value);
        out.push(record);
        cursor = Math.max(cursor, record.seq);
      }
      if (out.length >= n) break;
    }
  }
  return out;
}

/**
 * The SQLite form of the two session statements above (SQLite has no arrays or unnest): the rows
 * travel as ONE parameter, a JSON array of row arrays, expanded with json_each. Still one
 * statement per flush whatever the number of rows.
 */
async function writeSessionsSqlite(tx: SqlClient, rows: readonly SessionRow[], ended: readonly (readonly [string, SessionEnd])[], instanceId: string): Promise<void> {
  const col = (i: number): string => `json_extract(value, '$[${i}]')`;
  if (rows.length > 0) {
    await tx.execute(
      `INSERT INTO sessions (${SESSION_COLUMNS}, instance_id) SELECT ${Array.from({ length: 17 }, (_, i) => col(i)).join(", ")}, $2 FROM json_each($1) ORDER BY key`,
      [
        JSON.stringify(
          rows.map((r) => [
            r.id,
            r.protocol,
            r.connection,
            r.principalId,
            r.principalKind,
            r.principalName,
            JSON.stringify(r.groups),
            r.tokenId ?? null,
            r.clientAddress,
            iso(r.startedAt),
            JSON.stringify(r.attributes),
            r.endedAt === undefined ? null : iso(r.endedAt),
            r.endReason ?? null,
            r.endDetail ?? null,
            r.statements ?? null,
            r.bytesFromClient ?? null,
            r.bytesToClient ?? null,
          ]),
        ),
        instanceId,
      ],
    );
  }
  if (ended.length > 0) {
    await tx.execute(
      `UPDATE sessions SET ended_at = u.ended_at, end_reason = u.end_reason, end_detail = u.end_detail,
              statements = u.statements, bytes_from_client = u.bytes_from_client, bytes_to_client = u.bytes_to_client
       FROM (SELECT ${col(0)} AS id, ${col(1)} AS ended_at, ${col(2)} AS end_reason, ${col(3)} AS end_detail,
                    ${col(4)} AS statements, ${col(5)} AS bytes_from_client, ${col(6)} AS bytes_to_client FROM json_each($1)) AS u
       WHERE sessions.id = u.id`,
      [JSON.stringify(ended.map(([id, e]) => [id, iso(e.endedAt), e.reason, e.detail ?? null, e.statements, e.bytesFromClient, e.bytesToClient]))],
    );
  }
}

/** Records per stored segment row (a shipped batch is at most this big in practice). */
const SEGMENT_RECORDS = 5_000;

const headRow = z.object({ seq: z.union([z.null(), sqlInt]).transform((v) => v ?? undefined) });
const segmentRow = z.object({ body: z.string() });
const segmentPageRow = z.object({ first_seq: sqlInt, body: z.string() });

/** A stored line parsed as JSON; the line itself when it is not JSON (the schema then rejects it). */
function jsonOf(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return line;
  }
}

/** A stored value as a record; a malformed one is a GW_STORE error whose cause is the ZodError. */
function toAuditRecord(value: unknown): AuditRecord {
  const r = auditRecordSchema.safeParse(value);
  if (r.success) return r.data;
  throw new GatewayError("GW_STORE", "the store holds a malformed audit record", { cause: r.error });
}

/**
 * The seq a stored value claims, without validating the rest (for skipping records already
 * read); Infinity when it has none, so that a malformed record is never silently skipped.
 */
function seqOf(value: unknown): number {
  if (typeof value !== "object" || value === null || !("seq" in value)) return Number.POSITIVE_INFINITY;
  return typeof value.seq === "number" && Number.isSafeInteger(value.seq) ? value.seq : Number.POSITIVE_INFINITY;
}
