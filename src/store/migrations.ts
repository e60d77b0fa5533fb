/**
 * Schema migrations: ordered, append-only, identical SQL for PGlite and PostgreSQL; SQLite runs
 * the same text rewritten (sqlite-dialect.ts), or a migration's own `sqlite` form.
 *
 * Invariants:
 * - A migration is never edited once released; changes are new migrations with higher ids.
 * - Each migration runs in its own transaction together with its `schema_migrations` row, so
 *   it is applied completely or not at all.
 * - Every step takes `pg_advisory_xact_lock(MIGRATION_LOCK)` first (PostgreSQL backend), so two
 *   gateways starting against the same database serialise instead of racing on DDL (concurrent
 *   `CREATE TABLE IF NOT EXISTS` can still fail on the catalog's unique index). The lock is
 *   released with the transaction. PGlite is single-process and needs no lock.
 */
import { z } from "zod";
import type { SqlClient } from "./sql.js";

export interface Migration {
  readonly id: number;
  readonly name: string;
  /** PostgreSQL (and PGlite); SQLite runs it rewritten by sqlite-dialect.ts unless `sqlite` is given. */
  readonly sql: string;
  /** The SQLite form, when the PostgreSQL text uses what the rewrite cannot carry over. */
  readonly sqlite?: string;
}

/** Arbitrary constant naming the migration lock ("airlock" in ASCII, fits int8). */
export const MIGRATION_LOCK = 0x6169726c6f636bn;

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: "tokens, sessions, audit",
    sql: `
CREATE TABLE tokens (
  id             text PRIMARY KEY,
  principal_id   text NOT NULL,
  principal_kind text NOT NULL,
  principal_name text NOT NULL,
  created_at     timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  created_by     text NOT NULL,
  revoked_at     timestamptz,
  revoked_by     text
);
CREATE INDEX tokens_revoked_idx ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE sessions (
  id                text PRIMARY KEY,
  protocol          text NOT NULL,
  connection        text NOT NULL,
  principal_id      text NOT NULL,
  principal_kind    text NOT NULL,
  principal_name    text NOT NULL,
  groups            jsonb NOT NULL,
  token_id          text,
  client_address    text NOT NULL,
  started_at        timestamptz NOT NULL,
  attributes        jsonb NOT NULL,
  ended_at          timestamptz,
  end_reason        text,
  end_detail        text,
  statements        bigint,
  bytes_from_client bigint,
  bytes_to_client   bigint
);
CREATE INDEX sessions_started_at_idx ON sessions (started_at DESC);
CREATE INDEX sessions_connection_started_at_idx ON sessions (connection, started_at DESC);

CREATE TABLE audit (
  seq        bigint PRIMARY KEY,
  time       timestamptz NOT NULL,
  type       text NOT NULL,
  session_id text,
  record     jsonb NOT NULL,
  hash       text NOT NULL,
  prev_hash  text NOT NULL
);
CREATE INDEX audit_session_id_idx ON audit (session_id);
CREATE INDEX audit_type_idx ON audit (type);
`,
  },
  {
    id: 2,
    name: "approval requests, votes, notification deliveries",
    sql: `
CREATE TABLE approval_requests (
  id              text PRIMARY KEY,
  kind            text NOT NULL,
  status          text NOT NULL,
  requester_id    text NOT NULL,
  requester_kind  text NOT NULL,
  requester_name  text NOT NULL,
  connection      text NOT NULL,
  protocol        text,
  session_id      text,
  statement       text,
  params          jsonb,
  statement_hash  text,
  summary         jsonb,
  rule            text,
  message         text,
  reason          text,
  approvers       jsonb NOT NULL,
  min_approvals   integer NOT NULL,
  mode            text,
  duration_ms     bigint,
  created_at      timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  decided_at      timestamptz,
  decision_reason text,
  usable_until    timestamptz,
  used_at         timestamptz
);
CREATE INDEX approval_requests_created_idx ON approval_requests (created_at DESC);
CREATE INDEX approval_requests_pending_idx ON approval_requests (status) WHERE status = 'pending';
CREATE INDEX approval_requests_binding_idx ON approval_requests (requester_id, connection, statement_hash);

CREATE TABLE approval_votes (
  request_id    text NOT NULL REFERENCES approval_requests (id),
  approver_id   text NOT NULL,
  approver_kind text NOT NULL,
  approver_name text NOT NULL,
  vote          text NOT NULL,
  reason        text,
  at            timestamptz NOT NULL,
  PRIMARY KEY (request_id, approver_id)
);

CREATE TABLE approval_deliveries (
  id          bigserial PRIMARY KEY,
  request_id  text NOT NULL,
  channel     text NOT NULL,
  event       text NOT NULL,
  attempt     integer NOT NULL,
  ok          boolean NOT NULL,
  http_status integer,
  error       text,
  at          timestamptz NOT NULL
);
CREATE INDEX approval_deliveries_request_idx ON approval_deliveries (request_id, id);
`,
  },
  {
    // Audit records are stored in segments: one row per shipped batch holding its records as
    // JSON lines. Storing a record as its own row (three indexes, a jsonb parse) cost the
    // embedded store about 40 µs of CPU per record, as much as the data path itself; a segment
    // costs a few µs per record. The `audit` view keeps one row per record for SQL readers.
    id: 3,
    name: "audit segments",
    sql: `
CREATE TABLE audit_segments (
  first_seq bigint PRIMARY KEY,
  last_seq  bigint NOT NULL UNIQUE,
  records   integer NOT NULL,
  body      text NOT NULL
);
INSERT INTO audit_segments (first_seq, last_seq, records, body)
  SELECT min(seq), max(seq), count(*), string_agg(record::text, E'\n' ORDER BY seq)
  FROM audit GROUP BY (seq - 1) / 1000;
DROP TABLE audit;
CREATE VIEW audit AS
  SELECT (r ->> 'seq')::bigint AS seq, (r ->> 'time')::timestamptz AS time, r ->> 'type' AS type,
         r ->> 'sessionId' AS session_id, r AS record, r ->> 'hash' AS hash, r ->> 'prevHash' AS prev_hash
  FROM audit_segments s, LATERAL (SELECT l::jsonb AS r FROM regexp_split_to_table(s.body, E'\n') AS l) x;
`,
    // The same in SQLite: a segment's lines are JSON objects (JSON.stringify never emits a raw
    // newline), so joining them with commas inside [] makes one JSON array for json_each.
    sqlite: `
CREATE TABLE audit_segments (
  first_seq INTEGER PRIMARY KEY,
  last_seq  INTEGER NOT NULL UNIQUE,
  records   INTEGER NOT NULL,
  body      TEXT NOT NULL
);
INSERT INTO audit_segments (first_seq, last_seq, records, body)
  SELECT min(seq), max(seq), count(*), string_agg(record, char(10) ORDER BY seq)
  FROM audit GROUP BY (seq - 1) / 1000;
DROP TABLE audit;
CREATE VIEW audit AS
  SELECT json_extract(x.value, '$.seq') AS seq, json_extract(x.value, '$.time') AS time, json_extract(x.value, '$.type') AS type,
         json_extract(x.value, '$.sessionId') AS session_id, x.value AS record, json_extract(x.value, '$.hash') AS hash,
         json_extract(x.value, '$.prevHash') AS prev_hash
  FROM audit_segments s, json_each('[' || replace(s.body, char(10), ',') || ']') x;
`,
  },
  {
    // What the web console creates (connections, policies): shared by every gateway on the
    // store. `body` is the entry as JSON (store/console-documents.ts); sealed secrets inside it
    // are AES-GCM ciphertext, never values.
    id: 4,
    name: "console documents",
    sql: `
CREATE TABLE console_documents (
  kind       text NOT NULL,
  name       text NOT NULL,
  body       text NOT NULL,
  updated_at timestamptz NOT NULL,
  updated_by text NOT NULL,
  PRIMARY KEY (kind, name)
);
`,
  },
  {
    // Many gateways, one store (issue 18): each gateway instance writes its own audit chain
    // (`chain` = its instance id; the chain written before this migration is "default"), its
    // sessions carry its instance id, and `gateway_instances` holds each instance's liveness
    // (heartbeat) and the head of its chain as last shipped, which anchors the chain in the store:
    // a chain that ends before its registered head, or differs there, fails verification.
    id: 5,
    name: "audit chain per gateway instance, gateway instances",
    sql: `
DROP VIEW audit;
ALTER TABLE audit_segments ADD COLUMN chain text NOT NULL DEFAULT 'default';
ALTER TABLE audit_segments DROP CONSTRAINT audit_segments_pkey;
ALTER TABLE audit_segments DROP CONSTRAINT audit_segments_last_seq_key;
ALTER TABLE audit_segments ADD CONSTRAINT audit_segments_pkey PRIMARY KEY (chain, first_seq);
ALTER TABLE audit_segments ADD CONSTRAINT audit_segments_chain_last_seq_key UNIQUE (chain, last_seq);
CREATE VIEW audit AS
  SELECT s.chain AS chain, (r ->> 'seq')::bigint AS seq, (r ->> 'time')::timestamptz AS time, r ->> 'type' AS type,
         r ->> 'sessionId' AS session_id, r AS record, r ->> 'hash' AS hash, r ->> 'prevHash' AS prev_hash
  FROM audit_segments s, LATERAL (SELECT l::jsonb AS r FROM regexp_split_to_table(s.body, E'\n') AS l) x;
ALTER TABLE sessions ADD COLUMN instance_id text;
CREATE INDEX sessions_open_instance_idx ON sessions (instance_id) WHERE ended_at IS NULL;
CREATE TABLE gateway_instances (
  id           text PRIMARY KEY,
  host         text NOT NULL,
  pid          integer NOT NULL,
  started_at   timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  stopped_at   timestamptz,
  audit_seq    bigint NOT NULL DEFAULT 0,
  audit_hash   text
);
`,
    sqlite: `
DROP VIEW audit;
CREATE TABLE audit_segments_v4 (
  chain     TEXT NOT NULL DEFAULT 'default',
  first_seq INTEGER NOT NULL,
  last_seq  INTEGER NOT NULL,
  records   INTEGER NOT NULL,
  body      TEXT NOT NULL,
  PRIMARY KEY (chain, first_seq),
  UNIQUE (chain, last_seq)
);
INSERT INTO audit_segments_v4 (chain, first_seq, last_seq, records, body) SELECT 'default', first_seq, last_seq, records, body FROM audit_segments;
DROP TABLE audit_segments;
ALTER TABLE audit_segments_v4 RENAME TO audit_segments;
CREATE VIEW audit AS
  SELECT s.chain AS chain, json_extract(x.value, '$.seq') AS seq, json_extract(x.value, '$.time') AS time, json_extract(x.value, '$.type') AS type,
         json_extract(x.value, '$.sessionId') AS session_id, x.value AS record, json_extract(x.value, '$.hash') AS hash,
         json_extract(x.value, '$.prevHash') AS prev_hash
  FROM audit_segments s, json_each('[' || replace(s.body, char(10), ',') || ']') x;
ALTER TABLE sessions ADD COLUMN instance_id TEXT;
CREATE INDEX sessions_open_instance_idx ON sessions (instance_id) WHERE ended_at IS NULL;
CREATE TABLE gateway_instances (
  id           TEXT PRIMARY KEY,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  started_at   TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL,
  stopped_at   TEXT,
  audit_seq    INTEGER NOT NULL DEFAULT 0,
  audit_hash   TEXT
);
`,
  },
  {
    // Issue 16 (MCP gateway): the fingerprints an admin pinned for each upstream MCP server's
    // tools.
    id: 6,
    name: "mcp tool pins",
    sql: `
CREATE TABLE mcp_tool_pins (
  connection  text NOT NULL,
  tool        text NOT NULL,
  fingerprint text NOT NULL,
  pinned_at   timestamptz NOT NULL,
  pinned_by   text NOT NULL,
  PRIMARY KEY (connection, tool)
);
`,
  },
  {
    // Issue 21 (budgets shared across gateways): windowed counters per budget, subject and
    // connection; gateways add what they counted and read the totals back (src/store/budgets.ts).
    id: 7,
    name: "budget counters",
    sql: `
CREATE TABLE budget_counters (
  budget       text NOT NULL,
  subject      text NOT NULL,
  connection   text NOT NULL,
  window_start bigint NOT NULL,
  rows         bigint NOT NULL DEFAULT 0,
  bytes        bigint NOT NULL DEFAULT 0,
  statements   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (budget, subject, connection, window_start)
);
`,
  },
  {
    // Issue 18 (recordings readable from any gateway): the lines of each session's recordings
    // (JSON lines, asciicast) in chunks, appended by the gateway that holds the session while it
    // runs (src/recording/store-mirror.ts), read back by any gateway (src/store/recording-chunks.ts).
    id: 8,
    name: "recording chunks",
    sql: `
CREATE TABLE recording_chunks (
  session_id text NOT NULL,
  kind       text NOT NULL,
  seq        integer NOT NULL,
  data       text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (session_id, kind, seq)
);
CREATE INDEX recording_chunks_created_idx ON recording_chunks (created_at);
`,
  },
];

const appliedRow = z.object({ id: z.union([z.number(), z.string()]).transform(Number) });

async function lock(c: SqlClient): Promise<void> {
  if (c.kind === "postgres") {
    await c.query("SELECT pg_advisory_xact_lock($1::bigint) AS locked", [MIGRATION_LOCK.toString()], z.unknown());
  }
}

/**
 * Apply pending migrations in id order. Idempotent: safe at every start and concurrently from
 * several processes. Returns the ids applied by this call.
 */
export async function migrate(client: SqlClient, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const ordered = [...migrations].sort((a, b) => a.id - b.id);
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i]?.id === ordered[i - 1]?.id) throw new Error(`duplicate migration id ${ordered[i]?.id}`);
  }
  await client.transaction(async (tx) => {
    await lock(tx);
    await tx.script(
      "CREATE TABLE IF NOT EXISTS schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
  });
  const applied: number[] = [];
  for (const m of ordered) {
    const done = await client.transaction(async (tx) => {
      await lock(tx);
      // Re-checked under the lock: another process may have applied it since we last looked.
      const rows = await tx.query("SELECT id FROM schema_migrations WHERE id = $1", [m.id], appliedRow);
      if (rows.length > 0) return false;
      await tx.script(tx.kind === "sqlite" ? (m.sqlite ?? m.sql) : m.sql);
      await tx.execute("INSERT INTO schema_migrations (id, name) VALUES ($1, $2)", [m.id, m.name]);
      return true;
    });
    if (done) applied.push(m.id);
  }
  return applied;
}
