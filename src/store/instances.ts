/**
 * Gateway instances sharing one store (issue 18): many gateways behind a load balancer on one
 * PostgreSQL store. Each instance
 * - writes its own audit chain (`audit_segments.chain` = its instance id) and registers the
 *   chain's head here with every shipped batch (`audit_seq`, `audit_hash`), which anchors the
 *   chain in the store: verification fails when a chain ends before its registered head, differs
 *   there, or is missing altogether;
 * - stamps its sessions with its id (`sessions.instance_id`);
 * - beats a heartbeat (`heartbeat_at`). An instance whose heartbeat is older than the stale
 *   limit and that never said it stopped was killed (or lost its store): a survivor closes its
 *   open sessions as `lost`, with the statement count its audit chain holds, and cancels the
 *   approvals its clients were waiting on. An instance restarting under the same id does the same
 *   for its own previous run before it accepts anything.
 *
 * Invariant: `stopped_at IS NOT NULL` means the instance's sessions were all ended (by itself at
 * shutdown, or by a reaper); a stopped instance is never reaped again.
 */
import { z } from "zod";
import { sqlDate, sqlInt, type SqlClient } from "./sql.js";

export { DEFAULT_INSTANCE_ID, writerLockKey } from "./sql.js";

/** What an instance id may look like: it names a chain, a lock and a file line. */
export const INSTANCE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Audit record types that count as a session's statements (judged requests). */
const STATEMENT_TYPES = ["db.query", "ssh.command", "k8s.request", "http.request"] as const;

export interface InstanceRow {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: Date;
  readonly heartbeatAt: Date;
  readonly stoppedAt?: Date;
  /** The head of the instance's audit chain as last shipped (0: nothing shipped). */
  readonly auditSeq: number;
  readonly auditHash?: string;
}

export interface LostSession {
  readonly id: string;
  readonly instanceId: string;
  readonly statements: number;
}

const instanceRow = z.object({
  id: z.string(),
  host: z.string(),
  pid: sqlInt,
  started_at: sqlDate,
  heartbeat_at: sqlDate,
  stopped_at: sqlDate.nullable(),
  audit_seq: sqlInt,
  audit_hash: z.string().nullable(),
});

function toInstance(r: z.output<typeof instanceRow>): InstanceRow {
  return {
    id: r.id,
    host: r.host,
    pid: r.pid,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    ...(r.stopped_at === null ? {} : { stoppedAt: r.stopped_at }),
    auditSeq: r.audit_seq,
    ...(r.audit_hash === null ? {} : { auditHash: r.audit_hash }),
  };
}

const iso = (d: Date): string => d.toISOString();

/**
 * Register (or advance) a chain's head: called inside the shipping transaction. The head never
 * moves backwards (a retried batch is a no-op); an instance row is created if missing.
 */
export async function recordChainHead(tx: SqlClient, chain: string, seq: number, hash: string): Promise<void> {
  const n = await tx.execute("UPDATE gateway_instances SET audit_seq = $2, audit_hash = $3 WHERE id = $1 AND audit_seq < $2", [chain, seq, hash]);
  if (n > 0) return;
  await tx.execute(
    `INSERT INTO gateway_instances (id, host, pid, started_at, heartbeat_at, audit_seq, audit_hash)
     SELECT $1, '', 0, now(), now(), $2, $3 WHERE NOT EXISTS (SELECT 1 FROM gateway_instances WHERE id = $1)`,
    [chain, seq, hash],
  );
}

export class SqlInstanceStore {
  constructor(
    private readonly sql: SqlClient,
    /** This gateway's instance id. */
    readonly self: string,
  ) {}

  /** Mark this instance running (a restart keeps its chain head). */
  async register(info: { readonly host: string; readonly pid: number; readonly now: Date }): Promise<void> {
    const n = await this.sql.execute("UPDATE gateway_instances SET host = $2, pid = $3, started_at = $4, heartbeat_at = $4, stopped_at = NULL WHERE id = $1", [
      this.self,
      info.host,
      info.pid,
      iso(info.now),
    ]);
    if (n > 0) return;
    await this.sql.execute("INSERT INTO gateway_instances (id, host, pid, started_at, heartbeat_at, audit_seq) VALUES ($1, $2, $3, $4, $4, 0)", [
      this.self,
      info.host,
      info.pid,
      iso(info.now),
    ]);
  }

  async heartbeat(now: Date): Promise<void> {
    await this.sql.execute("UPDATE gateway_instances SET heartbeat_at = $2 WHERE id = $1", [this.self, iso(now)]);
  }

  /** Clean shutdown: every session of this instance has ended (the caller drained them). */
  async stopped(now: Date): Promise<void> {
    await this.sql.execute("UPDATE gateway_instances SET stopped_at = $2, heartbeat_at = $2 WHERE id = $1", [this.self, iso(now)]);
  }

  async list(): Promise<readonly InstanceRow[]> {
    const rows = await this.sql.query(
      "SELECT id, host, pid, started_at, heartbeat_at, stopped_at, audit_seq, audit_hash FROM gateway_instances ORDER BY id",
      [],
      instanceRow,
    );
    return rows.map(toInstance);
  }

  /** Every chain the store knows of: registered instances and chains with records (a chain without an instance row is reported too). */
  async chainIds(): Promise<readonly string[]> {
    const rows = await this.sql.query(
      "SELECT id FROM gateway_instances UNION SELECT DISTINCT chain AS id FROM audit_segments ORDER BY id",
      [],
      z.object({ id: z.string() }),
    );
    return rows.map((r) => r.id);
  }

  /**
   * Close the open sessions of this instance's previous run (it was killed): called at start-up,
   * before anything is accepted, after the local audit log has shipped what the last run wrote.
   */
  async closeOwnLost(now: Date): Promise<readonly LostSession[]> {
    const closed = await this.#closeLost(this.self, now, `the gateway instance ${this.self} stopped without ending this session (killed or crashed); closed when it restarted`);
    // Sessions a survivor closed as lost were counted from what the store held then; records
    // this instance had not shipped when it died are shipped now: count again (the last day's).
    const recent = await this.sql.query(
      "SELECT id FROM sessions WHERE instance_id = $1 AND end_reason = 'lost' AND ended_at > $2",
      [this.self, iso(new Date(now.getTime() - 86_400_000))],
      z.object({ id: z.string() }),
    );
    for (const { id } of recent) await this.sql.execute("UPDATE sessions SET statements = $2 WHERE id = $1", [id, await this.#statements(this.self, id)]);
    return closed;
  }

  async #statements(instanceId: string, sessionId: string): Promise<number> {
    const counted = await this.sql.query(
      `SELECT count(*) AS n FROM audit WHERE chain = $1 AND session_id = $2 AND type IN (${STATEMENT_TYPES.map((t) => `'${t}'`).join(", ")})`,
      [instanceId, sessionId],
      z.object({ n: sqlInt }),
    );
    return counted[0]?.n ?? 0;
  }

  /**
   * Close the sessions of other instances whose heartbeat is older than `staleMs` and that never
   * said they stopped, then mark those instances stopped. Returns what was closed.
   */
  async reapStale(now: Date, staleMs: number): Promise<readonly LostSession[]> {
    const cutoff = new Date(now.getTime() - staleMs);
    const stale = await this.sql.query(
      "SELECT id, heartbeat_at FROM gateway_instances WHERE stopped_at IS NULL AND id <> $1 AND heartbeat_at < $2",
      [this.self, iso(cutoff)],
      z.object({ id: z.string(), heartbeat_at: sqlDate }),
    );
    const out: LostSession[] = [];
    for (const s of stale) {
      // Claim the instance first: of two survivors reaping together, one wins; a restart of it
      // meanwhile (heartbeat moved) is left alone.
      const claimed = await this.sql.execute("UPDATE gateway_instances SET stopped_at = $2 WHERE id = $1 AND stopped_at IS NULL AND heartbeat_at < $3", [
        s.id,
        iso(now),
        iso(cutoff),
      ]);
      if (claimed === 0) continue;
      out.push(
        ...(await this.#closeLost(
          s.id,
          now,
          `the gateway instance ${s.id} stopped answering (last heartbeat ${iso(s.heartbeat_at)}): killed, crashed or cut off from the store`,
        )),
      );
    }
    return out;
  }

  async #closeLost(instanceId: string, now: Date, detail: string): Promise<readonly LostSession[]> {
    const open = await this.sql.query("SELECT id FROM sessions WHERE instance_id = $1 AND ended_at IS NULL", [instanceId], z.object({ id: z.string() }));
    const out: LostSession[] = [];
    for (const { id } of open) {
      // The statements the session ran are the ones its instance audited (written before each
      // was forwarded) and shipped; the instance recounts when it restarts (closeOwnLost).
      const statements = await this.#statements(instanceId, id);
      const n = await this.sql.execute(
        "UPDATE sessions SET ended_at = $2, end_reason = 'lost', end_detail = $3, statements = $4 WHERE id = $1 AND ended_at IS NULL",
        [id, iso(now), detail, statements],
      );
      if (n === 0) continue;
      out.push({ id, instanceId, statements });
      await this.sql.execute(
        "UPDATE approval_requests SET status = 'cancelled', decided_at = $2, decision_reason = $3 WHERE session_id = $1 AND status = 'pending' AND kind = 'statement' AND mode = 'wait'",
        [id, iso(now), "the gateway holding the waiting client was lost"],
      );
    }
    return out;
  }
}
