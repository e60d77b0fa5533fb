/**
 * SQL tools over the gateway's own PostgreSQL listener (node-postgres, the caller's bearer as the
 * password, the connection as the database name): the statement is judged, held, masked,
 * row-limited, recorded and audited by the PostgreSQL engine exactly as psql's would be.
 *
 * Every value is read as text (the wire's text format, after masking), so a masked value is
 * the gateway's replacement whatever the column type.
 */
import pg from "pg";
import { approvalIdIn, parseRefusalText } from "../envelope.js";
import type { Held, LoopbackCaller, LoopbackEndpoint, Refused, TargetError } from "./types.js";

export interface SqlColumn {
  readonly name: string;
  readonly typeId: number;
  /** The type's name when the engine gives it (MySQL); else from typeId (PostgreSQL OIDs). */
  readonly typeName?: string;
}

export interface SqlRows {
  readonly type: "rows";
  readonly command: string;
  readonly rowCount: number | null;
  readonly columns: readonly SqlColumn[];
  readonly rows: readonly (readonly (string | null)[])[];
  /** More rows came than the call keeps (`maxRows`): the session was ended there. */
  readonly truncated: boolean;
  /** What the gateway (or the target) said along the way: row limits, masking notices. */
  readonly notices: readonly string[];
}

export type SqlOutcome = SqlRows | Refused | Held<SqlRows> | TargetError;

export interface SqlCall {
  readonly connection: string;
  readonly sql: string;
  readonly params?: readonly (string | number | boolean | null)[];
  /** Rows kept at most (more: truncated, the session ends). */
  readonly maxRows: number;
  /** Bytes of values kept at most. */
  readonly maxBytes: number;
}

const TEXT_ONLY = { getTypeParser: () => (v: string) => v };
/** A stalled loopback connect is an internal failure, not a wait for a person. */
const CONNECT_TIMEOUT_MS = 15_000;

function refusedOrError(e: unknown): Refused | TargetError | { readonly type: "held-async"; readonly approvalId: string; readonly message: string } {
  const code = typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : "";
  const message = e instanceof Error ? e.message : "the gateway closed the connection";
  const refusal = parseRefusalText(message);
  if (refusal !== undefined) {
    const approvalId = approvalIdIn(refusal.message);
    // Async-mode approvals (policy mode: async): refused now, the identical re-send runs once approved.
    if (code === "42501" && approvalId !== undefined && /waiting for approval|approval .*pending|approve with/.test(refusal.message)) {
      return { type: "held-async", approvalId, message: refusal.message };
    }
    const gw =
      code === "28P01" || code === "28000" ? "GW_AUTH_INVALID" : code === "3D000" ? "GW_UNKNOWN_CONNECTION" : code === "42501" ? "GW_POLICY_DENIED" : code === "54000" ? "GW_LIMIT" : `SQLSTATE_${code || "unknown"}`;
    return { type: "refused", code: gw, ...(refusal.rule === undefined ? {} : { rule: refusal.rule }), message: refusal.message };
  }
  // A client-side failure (connect refused, socket closed): never library internals to the agent.
  if (code === "" || !/^[0-9A-Z]{5}$/.test(code)) return { type: "error", code: "GW_UPSTREAM", message: "the gateway's PostgreSQL listener could not be reached" };
  return { type: "error", code, message };
}

/**
 * Run one statement in a session of its own. Resolves as soon as there is an answer for the
 * agent: the rows, a refusal, an error, or a hold (with the statement still waiting in its
 * session; `result` settles when a person decides).
 */
export function runSql(endpoint: LoopbackEndpoint & { readonly tls: boolean }, caller: LoopbackCaller, call: SqlCall): Promise<SqlOutcome> {
  const client = new pg.Client({
    host: endpoint.host,
    port: endpoint.port,
    database: call.connection,
    user: "mcp",
    password: caller.bearer,
    application_name: "airlock-mcp",
    // Loopback to this gateway's own listener (the certificate is its own, often self-signed).
    ssl: endpoint.tls ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    types: TEXT_ONLY,
  });
  // The socket exists from construction; register its port before the startup message goes.
  const stream = (client as unknown as { connection: { stream: NodeJS.EventEmitter & { localPort?: number } } }).connection.stream;
  let release: (() => void) | undefined;
  stream.once("connect", () => {
    if (stream.localPort !== undefined) release = caller.expect(stream.localPort);
  });
  client.on("error", () => undefined);

  let announceHold: ((h: Held<SqlRows>) => void) | undefined;
  const notices: string[] = [];
  client.on("notice", (n) => {
    const text = n.message ?? "";
    const approvalId = approvalIdIn(text);
    if (approvalId !== undefined && announceHold !== undefined && text.includes("waiting for approval")) {
      announceHold({ type: "held", approvalId, message: parseRefusalText(text)?.message ?? text, result: execution });
      announceHold = undefined;
    } else if (notices.length < 20) notices.push(text.slice(0, 1000));
  });

  const execution: Promise<SqlRows | Refused | TargetError> = (async () => {
    try {
      await client.connect();
    } catch (e) {
      const r = refusedOrError(e);
      return r.type === "held-async" ? { type: "refused", code: "GW_POLICY_DENIED", message: r.message } : r;
    } finally {
      release?.();
    }
    try {
      return await collect(client, call, notices);
    } catch (e) {
      const r = refusedOrError(e);
      if (r.type === "held-async") throw new AsyncHold(r.approvalId, r.message);
      return r;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();

  return new Promise<SqlOutcome>((resolve) => {
    announceHold = resolve;
    execution.then(
      (r) => resolve(r),
      (e: unknown) => {
        if (e instanceof AsyncHold) resolve({ type: "held", approvalId: e.approvalId, message: e.message });
        else resolve({ type: "error", code: "GW_INTERNAL", message: "the statement could not be run" });
      },
    );
  });
}

class AsyncHold extends Error {
  constructor(
    readonly approvalId: string,
    message: string,
  ) {
    super(message);
  }
}

function collect(client: pg.Client, call: SqlCall, notices: string[]): Promise<SqlRows> {
  return new Promise((resolve, reject) => {
    const rows: (string | null)[][] = [];
    let bytes = 0;
    let truncated = false;
    let columns: SqlColumn[] = [];
    // rowMode "array": columns of the same name stay apart (QueryConfig's typing omits it).
    const config: pg.QueryConfig & { rowMode: "array" } = { text: call.sql, values: call.params === undefined ? [] : [...call.params], rowMode: "array" };
    const query = new pg.Query(config);
    query.on("row", (row: (string | null)[], result?: pg.QueryResult) => {
      if (columns.length === 0 && result !== undefined) columns = result.fields.map((f) => ({ name: f.name, typeId: f.dataTypeID }));
      if (truncated) return;
      const size = row.reduce((n, v) => n + (v === null ? 0 : v.length), 0);
      if (rows.length >= call.maxRows || bytes + size > call.maxBytes) {
        // Enough for the agent: end the session (the gateway records what was sent so far).
        truncated = true;
        resolve({ type: "rows", command: "SELECT", rowCount: null, columns, rows, truncated, notices });
        (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        return;
      }
      bytes += size;
      rows.push(row);
    });
    query.on("end", (result: pg.QueryResult) => {
      if (truncated) return;
      if (columns.length === 0) columns = result.fields.map((f) => ({ name: f.name, typeId: f.dataTypeID }));
      resolve({ type: "rows", command: result.command, rowCount: result.rowCount, columns, rows, truncated, notices });
    });
    query.on("error", (e: Error) => {
      if (!truncated) reject(e);
    });
    void client.query(query);
  });
}
