/**
 * SQL tools on `mysql` connections over the gateway's own MySQL listener (mysql2, the caller's
 * bearer as the password, the connection as the database name; README "MySQL / MariaDB"): the
 * statement is judged, held, masked, row-limited, recorded and audited by the MySQL engine as
 * the mariadb CLI's would be. Values are read as text (after masking); rows are streamed and
 * the session is ended once the kept rows or bytes are reached.
 *
 * Parameters are bound client-side (mysql2's escaping), so the gateway judges the statement
 * with its literal values.
 */
import { connect as netConnect, type Socket } from "node:net";
import mysql from "mysql2";
import { approvalIdIn, parseRefusalText } from "../envelope.js";
import type { SqlCall, SqlColumn, SqlRows } from "./postgres.js";
import type { HoldNotice } from "../../../core/judge.js";
import type { Held, LoopbackCaller, LoopbackEndpoint, Refused, TargetError } from "./types.js";

export type MysqlOutcome = SqlRows | Refused | Held<SqlRows> | TargetError;

const CONNECT_TIMEOUT_MS = 15_000;

/** MySQL column type numbers (mysql2's Types) → their names. */
const TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(mysql.Types).map(([name, id]) => [Number(id), name.toLowerCase()]));

function outcomeOf(e: unknown): Refused | TargetError | Held<SqlRows> {
  const errno = typeof e === "object" && e !== null && "errno" in e && typeof e.errno === "number" ? e.errno : undefined;
  const sqlState = typeof e === "object" && e !== null && "sqlState" in e && typeof e.sqlState === "string" ? e.sqlState : undefined;
  const message = typeof e === "object" && e !== null && "sqlMessage" in e && typeof e.sqlMessage === "string" ? e.sqlMessage : undefined;
  if (errno === undefined || message === undefined) return { type: "error", code: "GW_UPSTREAM", message: "the gateway's MySQL listener could not be reached" };
  const refusal = parseRefusalText(message);
  if (refusal !== undefined) {
    const approvalId = approvalIdIn(refusal.message);
    // Async-mode approvals: refused now, the identical re-send runs once approved.
    if (approvalId !== undefined && /approve with|waiting for approval|approval .*pending/.test(refusal.message)) return { type: "held", approvalId, message: refusal.message };
    const code = errno === 1045 ? "GW_AUTH_INVALID" : errno === 1049 ? "GW_UNKNOWN_CONNECTION" : errno === 1142 ? "GW_POLICY_DENIED" : `MYSQL_${errno}`;
    return { type: "refused", code, ...(refusal.rule === undefined ? {} : { rule: refusal.rule }), message: refusal.message };
  }
  return { type: "error", code: sqlState === undefined ? `MYSQL_${errno}` : `MYSQL_${errno}_${sqlState}`, message };
}

function connectSocket(endpoint: LoopbackEndpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: endpoint.host, port: endpoint.port }, () => resolve(s));
    s.once("error", reject);
    s.setTimeout(CONNECT_TIMEOUT_MS, () => s.destroy(new Error("timeout")));
  });
}

/** Run one statement in a session of its own. */
export async function runMysql(endpoint: LoopbackEndpoint & { readonly tls: boolean }, caller: LoopbackCaller, call: SqlCall): Promise<MysqlOutcome> {
  let sock: Socket;
  try {
    sock = await connectSocket(endpoint);
  } catch {
    return { type: "error", code: "GW_UPSTREAM", message: "the gateway's MySQL listener could not be reached" };
  }
  sock.setTimeout(0);
  // Wait mode: MySQL has no in-band notice; the approval path tells us (correlation.ts), and the
  // call answers `held` at once while the statement waits on in its session.
  let announce: ((n: HoldNotice) => void) | undefined;
  const release = caller.expect(sock.localPort ?? 0, (n) => announce?.(n));
  const conn = mysql.createConnection({
    stream: sock,
    user: "mcp",
    password: caller.bearer,
    database: call.connection,
    // Loopback to this gateway's own listener (its certificate is its own, often self-signed).
    ...(endpoint.tls ? { ssl: { rejectUnauthorized: false } } : { allowPublicKeyRetrieval: true }),
    connectTimeout: CONNECT_TIMEOUT_MS,
    rowsAsArray: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    typeCast: (field, next) => (field.type === "BLOB" || field.type === "VAR_STRING" || field.type === "STRING" ? field.string() : next()),
  });
  let onFatal: ((e: unknown) => void) | undefined;
  conn.on("error", (e: unknown) => {
    onFatal?.(e);
  });
  const final = new Promise<MysqlOutcome>((resolve) => {
    let done = false;
    const finish = (o: MysqlOutcome): void => {
      if (done) return;
      done = true;
      resolve(o);
      release();
      try {
        conn.destroy();
      } catch {
        // already closed
      }
      sock.destroy();
    };
    const rows: (string | null)[][] = [];
    let columns: SqlColumn[] = [];
    let bytes = 0;
    let affected: number | null = null;
    const q = conn.query({ sql: call.sql, values: call.params === undefined ? [] : [...call.params], rowsAsArray: true });
    // A fatal connection error (the socket closed, a packet mysql2 could not read) ends the call: never a hang.
    onFatal = (e) => finish(outcomeOf(e));
    q.on("error", (e: unknown) => finish(outcomeOf(e)));
    q.on("fields", (fields: readonly { name: string; columnType?: number; type?: number }[] | undefined) => {
      if (columns.length === 0 && fields !== undefined) columns = fields.map((f) => ({ name: f.name, typeId: 0, typeName: TYPE_NAMES.get(f.columnType ?? f.type ?? -1) ?? "unknown" }));
    });
    q.on("result", (row: unknown) => {
      if (!Array.isArray(row)) {
        if (typeof row === "object" && row !== null && "affectedRows" in row && typeof row.affectedRows === "number") affected = row.affectedRows;
        return;
      }
      const values = row.map((v: unknown) => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString("utf8") : typeof v === "string" ? v : JSON.stringify(v)));
      const size = values.reduce((n, v) => n + (v === null ? 0 : v.length), 0);
      if (rows.length >= call.maxRows || bytes + size > call.maxBytes) {
        // Enough for the agent: end the session (the gateway records what was sent so far).
        finish({ type: "rows", command: "SELECT", rowCount: null, columns, rows, truncated: true, notices: [] });
        return;
      }
      bytes += size;
      rows.push(values);
    });
    q.on("end", () => {
      const select = columns.length > 0;
      finish({ type: "rows", command: select ? "SELECT" : (/^\s*(\w+)/.exec(call.sql)?.[1] ?? "").toUpperCase(), rowCount: select ? rows.length : affected, columns, rows, truncated: false, notices: [] });
    });
  });
  return new Promise<MysqlOutcome>((resolve) => {
    announce = (n) => {
      const result: Promise<SqlRows | Refused | TargetError> = final.then((o) => (o.type === "held" ? { type: "error", code: "GW_INTERNAL", message: "the approved statement was held again" } : o));
      resolve({ type: "held", approvalId: n.approvalId, message: n.message, result });
    };
    void final.then(resolve);
  });
}
