/**
 * A minimal SQL client with two adapters (embedded PGlite and node-postgres), so the store is
 * written once against plain PostgreSQL SQL. Rows arrive as `unknown` from either driver and
 * are parsed with a zod schema at this boundary: nothing above sees an unchecked row.
 *
 * PGlite runs in a worker thread (pglite-worker.mjs): its WASM execution costs real CPU for
 * every audit batch, and on the main thread it stalled the data path. The in-thread adapter is
 * kept (`openPgliteClientInThread`) for comparison and tests.
 *
 * The drivers decode types differently (node-postgres returns int8 as a string, PGlite as a
 * number; both decode timestamptz to Date and jsonb to values), so row schemas use the
 * tolerant helpers below instead of assuming one driver's representation.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import type { Logger } from "pino";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { sqliteParams, toSqlite } from "./sqlite-dialect.js";

/** Which engine runs the SQL (the store's SQL is PostgreSQL's; SQLite gets it rewritten, sqlite-dialect.ts). */
export type SqlKind = "pglite" | "postgres" | "sqlite";

export interface SqlClient {
  readonly kind: SqlKind;
  /** One statement with `$n` parameters; every row is parsed with `row`. */
  query<R>(sql: string, params: readonly unknown[], row: z.ZodType<R>): Promise<R[]>;
  /** One statement without a result set; returns the number of affected rows. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Several statements, no parameters (migrations). */
  script(sql: string): Promise<void>;
  /**
   * Run `fn` in a transaction: committed when it resolves, rolled back when it throws. Inside,
   * `transaction` on the given client runs `fn` in the same transaction (no savepoints).
   */
  transaction<T>(fn: (c: SqlClient) => Promise<T>): Promise<T>;
  /**
   * Become the store's one writer of the audit chain for as long as this client is open: false
   * when another gateway holds it. PostgreSQL: a session advisory lock on a connection of its
   * own (released when the client closes or that connection ends); PGlite: always true (one
   * process owns its data directory); SQLite: always true (the worker holds the database file's
   * exclusive lock from open to close, so a second process cannot open it at all).
   */
  claimWriter?(instanceId: string): Promise<boolean>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Column decoders that accept either driver's representation.

/** int8/bigint/int4 → a safe JS integer. */
export const sqlInt = z
  .union([z.number(), z.string(), z.bigint()])
  .transform((v, ctx) => {
    const n = typeof v === "number" ? v : Number(v);
    if (!Number.isSafeInteger(n)) {
      ctx.addIssue({ code: "custom", message: `not a safe integer: ${String(v)}` });
      return z.NEVER;
    }
    return n;
  });

/** timestamptz → Date. */
export const sqlDate = z.union([z.date(), z.string()]).transform((v, ctx) => {
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: "custom", message: "not a timestamp" });
    return z.NEVER;
  }
  return d;
});

/** boolean → boolean (SQLite has no boolean type: it stores and returns 0/1). */
export const sqlBool = z.union([z.boolean(), z.literal(0), z.literal(1)]).transform((v) => v === true || v === 1);

/** jsonb → the decoded value (some setups hand back the text). */
export const sqlJson = z.unknown().transform((v): unknown => {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
});

// ---------------------------------------------------------------------------------------------

function storeError(e: unknown, what: string): GatewayError {
  if (e instanceof GatewayError) return e;
  // The driver's message can contain values from the statement; it stays in `cause` (logs).
  return new GatewayError("GW_STORE", `store ${what} failed`, { cause: e });
}

function parseRows<R>(rows: readonly unknown[], schema: z.ZodType<R>): R[] {
  const out: R[] = [];
  for (const row of rows) {
    const r = schema.safeParse(row);
    if (!r.success) {
      throw new GatewayError("GW_STORE", "store returned a row of an unexpected shape", { cause: r.error });
    }
    out.push(r.data);
  }
  return out;
}

/** Driver parameter lists are mutable `any[]`; we hand them a copy. */
function paramList(params: readonly unknown[] | undefined): unknown[] {
  return params === undefined ? [] : [...params];
}

// ---------------------------------------------------------------------------------------------
// PGlite

/** The part of PGlite's query surface we use; both PGlite and its Transaction have it. */
interface PgliteQueryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; affectedRows?: number }>;
  exec(sql: string): Promise<unknown>;
}

/**
 * The SqlClient surface over any driver that can run one statement (rows + affected count) and
 * a script: error wrapping, parameter copying and row validation live here once.
 */
abstract class DriverClient implements SqlClient {
  abstract readonly kind: "pglite" | "postgres";
  protected abstract run(sql: string, params: unknown[]): Promise<{ rows: unknown[]; affected: number }>;
  protected abstract runScript(sql: string): Promise<void>;

  async query<R>(sql: string, params: readonly unknown[], row: z.ZodType<R>): Promise<R[]> {
    let rows: unknown[];
    try {
      rows = (await this.run(sql, paramList(params))).rows;
    } catch (e) {
      throw storeError(e, "query");
    }
    return parseRows(rows, row);
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<number> {
    try {
      return (await this.run(sql, paramList(params))).affected;
    } catch (e) {
      throw storeError(e, "statement");
    }
  }

  async script(sql: string): Promise<void> {
    try {
      await this.runScript(sql);
    } catch (e) {
      throw storeError(e, "script");
    }
  }

  transaction<T>(fn: (c: SqlClient) => Promise<T>): Promise<T> {
    return fn(this);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class PgliteTxClient extends DriverClient {
  readonly kind = "pglite" as const;
  constructor(private readonly q: PgliteQueryable) {
    super();
  }

  protected async run(sql: string, params: unknown[]): Promise<{ rows: unknown[]; affected: number }> {
    const r = await this.q.query(sql, params);
    return { rows: r.rows, affected: r.affectedRows ?? 0 };
  }

  protected async runScript(sql: string): Promise<void> {
    await this.q.exec(sql);
  }
}

class PgliteClient extends PgliteTxClient {
  private closing: Promise<void> | undefined;
  constructor(private readonly db: PGlite) {
    super(db);
  }

  override async transaction<T>(fn: (c: SqlClient) => Promise<T>): Promise<T> {
    // PGlite runs one statement at a time; its transaction() holds the connection for the
    // whole callback, so other callers queue behind it rather than interleaving.
    try {
      return await this.db.transaction((tx) => fn(new PgliteTxClient(tx)));
    } catch (e) {
      throw storeError(e, "transaction");
    }
  }

  override close(): Promise<void> {
    this.closing ??= this.db.closed ? Promise.resolve() : this.db.close();
    return this.closing;
  }
}

/** Open (creating if missing) an embedded PGlite database in `dir`, running in a worker thread. */
export function openPgliteClient(dir: string): Promise<SqlClient> {
  return openPgliteWorkerClient(dir);
}

/**
 * The same database run on the calling thread: every statement's WASM execution blocks this
 * event loop. Not used in production; kept for comparison and tests.
 */
export async function openPgliteClientInThread(dir: string): Promise<SqlClient> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const db = await PGlite.create(dir);
    return new PgliteClient(db);
  } catch (e) {
    throw new GatewayError("GW_STORE", `cannot open the embedded store in ${dir}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// PGlite in a worker thread (the worker's side and the message protocol: pglite-worker.mjs)

type WorkerRequest =
  | { readonly op: "open"; readonly dir: string }
  | { readonly op: "query" | "execute"; readonly sql: string; readonly params: readonly unknown[]; readonly tx: number | null }
  | { readonly op: "script"; readonly sql: string; readonly tx: number | null }
  | { readonly op: "begin" }
  | { readonly op: "commit" | "rollback"; readonly tx: number }
  | { readonly op: "close" };

/** An Error as the worker flattens it (structured clone alone would drop PGlite's fields). */
interface WorkerError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string | undefined;
  readonly props: Record<string, unknown>;
  readonly cause?: WorkerError | undefined;
}

const workerError: z.ZodType<WorkerError> = z.object({
  name: z.string(),
  message: z.string(),
  stack: z.string().optional(),
  props: z.record(z.string(), z.unknown()),
  get cause() {
    return workerError.optional();
  },
});

const workerReply = z.discriminatedUnion("ok", [
  z.object({ id: z.number(), ok: z.literal(true), value: z.unknown() }),
  z.object({ id: z.number(), ok: z.literal(false), error: workerError }),
]);

/** Rebuild the driver's error in this thread: same name, message, stack and fields (logs only). */
function reviveError(w: WorkerError): Error {
  const e = new Error(w.message, w.cause === undefined ? undefined : { cause: reviveError(w.cause) });
  Object.assign(e, w.props);
  e.name = w.name;
  if (w.stack !== undefined) e.stack = w.stack;
  return e;
}

interface PendingCall {
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: GatewayError) => void;
  /** The GW_STORE message this call fails with (the same as the in-thread adapter's). */
  readonly failure: string;
}

/** The default worker script: beside this module, in src/ (vitest) and in dist/ (copied by the build). */
function defaultWorkerUrl(): URL {
  return new URL("./pglite-worker.mjs", import.meta.url);
}

/**
 * The main thread's end of the worker: request ids, pending replies, and the worker's death.
 *
 * Invariants:
 * - every call settles exactly once: by its reply, or with GW_STORE when the worker stops
 *   (crash, exit, close) before replying; once stopped, every later call fails at once;
 * - the worker keeps the process alive only while a call is pending (like a socket with a
 *   request in flight); an idle store does not hold the gateway open.
 */
class PgliteWorkerConnection {
  readonly #worker: Worker;
  /** What a call after close() fails with (the driver's own words: "PGlite is closed", …). */
  readonly #closedMessage: string;
  readonly #pending = new Map<number, PendingCall>();
  #nextId = 1;
  /** Why the worker is gone; set once, never cleared. */
  #stopped: Error | undefined;
  /** close() was called: statements outside a transaction are refused from now on. */
  closeRequested = false;

  constructor(url: URL, closedMessage = "PGlite is closed") {
    this.#closedMessage = closedMessage;
    this.#worker = new Worker(url);
    this.#worker.unref();
    this.#worker.on("message", (m: unknown) => {
      this.#onMessage(m);
    });
    this.#worker.on("error", (err: Error) => {
      this.#stop(new Error("the store worker crashed", { cause: err }));
    });
    this.#worker.on("messageerror", (err: Error) => {
      // A reply that cannot be decoded cannot be matched to its call: fail everything.
      this.#stop(new Error("undecodable message from the store worker", { cause: err }));
      void this.#worker.terminate();
    });
    this.#worker.on("exit", (code: number) => {
      this.#stop(new Error(this.closeRequested ? this.#closedMessage : `the store worker exited (code ${code})`));
    });
  }

  call(request: WorkerRequest, failure: string): Promise<unknown> {
    if (this.#stopped !== undefined) {
      return Promise.reject(new GatewayError("GW_STORE", failure, { cause: this.#stopped }));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.#worker.postMessage({ id, ...request });
      } catch (e) {
        // DataCloneError: a parameter structured clone cannot carry (a function, a symbol).
        reject(new GatewayError("GW_STORE", failure, { cause: e }));
        return;
      }
      this.#pending.set(id, { resolve, reject, failure });
      if (this.#pending.size === 1) this.#worker.ref();
    });
  }

  /** Close PGlite in the worker (after everything queued before), then end the thread. */
  async close(): Promise<void> {
    this.closeRequested = true;
    try {
      if (this.#stopped === undefined) await this.call({ op: "close" }, "store close failed");
    } finally {
      await this.#worker.terminate();
    }
  }

  #onMessage(m: unknown): void {
    const r = workerReply.safeParse(m);
    if (!r.success) {
      this.#stop(new Error("malformed message from the store worker", { cause: r.error }));
      void this.#worker.terminate();
      return;
    }
    const reply = r.data;
    const call = this.#pending.get(reply.id);
    if (call === undefined) return;
    this.#settled(reply.id);
    if (reply.ok) call.resolve(reply.value);
    else call.reject(new GatewayError("GW_STORE", call.failure, { cause: reviveError(reply.error) }));
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker.unref();
  }

  #stop(why: Error): void {
    this.#stopped ??= why;
    const calls = [...this.#pending.entries()];
    this.#pending.clear();
    this.#worker.unref();
    for (const [, call] of calls) call.reject(new GatewayError("GW_STORE", call.failure, { cause: this.#stopped }));
  }
}

function rowsOf(value: unknown): readonly unknown[] {
  if (!Array.isArray(value)) throw new GatewayError("GW_STORE", "store returned a result of an unexpected shape");
  return value;
}

/**
 * What differs between the engines behind a store worker: the SQL each one runs (PGlite the
 * store's PostgreSQL text as is, SQLite a rewrite of it), the parameters it can bind, and its
 * own words for "closed".
 */
interface WorkerDialect {
  readonly kind: "pglite" | "sqlite";
  readonly closedMessage: string;
  statement(sql: string): string;
  script(sql: string): string;
  params(params: readonly unknown[]): readonly unknown[];
}

const PGLITE_DIALECT: WorkerDialect = {
  kind: "pglite",
  closedMessage: "PGlite is closed",
  statement: (sql) => sql,
  script: (sql) => sql,
  params: (params) => params,
};

const SQLITE_DIALECT: WorkerDialect = {
  kind: "sqlite",
  closedMessage: "SQLite is closed",
  statement: (sql) => toSqlite(sql),
  // Scripts are migrations: column types are rewritten too.
  script: (sql) => toSqlite(sql, { ddl: true }),
  params: sqliteParams,
};

class PgliteWorkerTxClient implements SqlClient {
  readonly kind: "pglite" | "sqlite";
  constructor(
    protected readonly conn: PgliteWorkerConnection,
    /** The worker's transaction id; null for the top-level client. */
    private readonly tx: number | null,
    protected readonly dialect: WorkerDialect = PGLITE_DIALECT,
  ) {
    this.kind = dialect.kind;
  }

  /** Outside a transaction, nothing new is sent once close() has begun (as PGlite refuses it). */
  protected refuseIfClosing(failure: string): void {
    if (this.tx === null && this.conn.closeRequested) {
      throw new GatewayError("GW_STORE", failure, { cause: new Error(this.dialect.closedMessage) });
    }
  }

  async query<R>(sql: string, params: readonly unknown[], row: z.ZodType<R>): Promise<R[]> {
    this.refuseIfClosing("store query failed");
    const value = await this.conn.call(
      { op: "query", sql: this.dialect.statement(sql), params: this.dialect.params(params), tx: this.tx },
      "store query failed",
    );
    return parseRows(rowsOf(value), row);
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<number> {
    this.refuseIfClosing("store statement failed");
    const value = await this.conn.call(
      { op: "execute", sql: this.dialect.statement(sql), params: this.dialect.params(params ?? []), tx: this.tx },
      "store statement failed",
    );
    if (typeof value !== "number") throw new GatewayError("GW_STORE", "store returned a result of an unexpected shape");
    return value;
  }

  async script(sql: string): Promise<void> {
    this.refuseIfClosing("store script failed");
    await this.conn.call({ op: "script", sql: this.dialect.script(sql), tx: this.tx }, "store script failed");
  }

  transaction<T>(fn: (c: SqlClient) => Promise<T>): Promise<T> {
    return fn(this);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class PgliteWorkerClient extends PgliteWorkerTxClient {
  private closing: Promise<void> | undefined;

  constructor(conn: PgliteWorkerConnection, dialect: WorkerDialect = PGLITE_DIALECT) {
    super(conn, null, dialect);
  }

  /**
   * Same semantics as the in-thread adapter (PGlite's transaction()): the worker holds PGlite's
   * single connection from BEGIN until COMMIT/ROLLBACK, so statements from other callers queue
   * behind the transaction; `fn` throwing rolls back and rethrows (a GatewayError unchanged).
   */
  override async transaction<T>(fn: (c: SqlClient) => Promise<T>): Promise<T> {
    this.refuseIfClosing("store transaction failed");
    const id = await this.conn.call({ op: "begin" }, "store transaction failed");
    if (typeof id !== "number") throw new GatewayError("GW_STORE", "store returned a result of an unexpected shape");
    let result: T;
    try {
      result = await fn(new PgliteWorkerTxClient(this.conn, id, this.dialect));
    } catch (e) {
      // A failing ROLLBACK is what PGlite itself would report in place of fn's error.
      await this.conn.call({ op: "rollback", tx: id }, "store transaction failed");
      throw storeError(e, "transaction");
    }
    await this.conn.call({ op: "commit", tx: id }, "store transaction failed");
    return result;
  }

  override close(): Promise<void> {
    this.closing ??= this.conn.close();
    return this.closing;
  }
}

/**
 * `openPgliteClient` with an explicit worker script (tests use one that can crash on request).
 * The directory is created here; PGlite opens it in the worker.
 */
export function openPgliteWorkerClient(dir: string, workerUrl: URL = defaultWorkerUrl()): Promise<SqlClient> {
  return openWorkerClient(dir, workerUrl, PGLITE_DIALECT);
}

/**
 * Open (creating if missing) the embedded SQLite store in `dir` (file `airlock.sqlite`), run
 * by better-sqlite3 in its own worker thread (sqlite-worker.mjs: why a thread, why
 * synchronous=FULL). Fails with GW_STORE when another process has the store open.
 */
export function openSqliteClient(dir: string, workerUrl: URL = new URL("./sqlite-worker.mjs", import.meta.url)): Promise<SqlClient> {
  return openWorkerClient(dir, workerUrl, SQLITE_DIALECT);
}

async function openWorkerClient(dir: string, workerUrl: URL, dialect: WorkerDialect): Promise<SqlClient> {
  let conn: PgliteWorkerConnection | undefined;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    conn = new PgliteWorkerConnection(workerUrl, dialect.closedMessage);
    await conn.call({ op: "open", dir }, `cannot open the embedded store in ${dir}`);
    return new PgliteWorkerClient(conn, dialect);
  } catch (e) {
    await conn?.close().catch(() => undefined);
    if (e instanceof GatewayError && dialect.kind === "sqlite" && driverCode(e.cause) === "SQLITE_BUSY") {
      throw new GatewayError("GW_STORE", `the embedded store in ${dir} is in use by another process (another gateway on this dataDir?)`, { cause: e.cause });
    }
    if (e instanceof GatewayError) throw e;
    throw new GatewayError("GW_STORE", `cannot open the embedded store in ${dir}`, { cause: e });
  }
}

/** The driver's error code (SQLITE_BUSY, …) of a revived worker error, if any. */
function driverCode(cause: unknown): string | undefined {
  if (!(cause instanceof Error) || !("code" in cause)) return undefined;
  return typeof cause.code === "string" ? cause.code : undefined;
}

// ---------------------------------------------------------------------------------------------
// node-postgres

interface PgQueryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

class PgTxClient extends DriverClient {
  readonly kind = "postgres" as const;
  constructor(protected readonly q: PgQueryable) {
    super();
  }

  protected async run(sql: string, params: unknown[]): Promise<{ rows: unknown[]; affected: number }> {
    const r = await this.q.query(sql, params);
    return { rows: r.rows, affected: r.rowCount ?? 0 };
  }

  protected async runScript(sql: string): Promise<void> {
    // Without parameters node-postgres uses the simple protocol, which allows several statements.
    await this.q.query(sql);
  }
}

/** The chain (and instance) written before instances existed (instances.ts), and a lone gateway's id when an upgraded dataDir has no other. */
export const DEFAULT_INSTANCE_ID = "default";

/** The advisory lock key of an instance's audit chain writer (64 bits of SHA-256: no practical collisions). */
export function writerLockKey(instanceId: string): string {
  const label = instanceId === DEFAULT_INSTANCE_ID ? "airlock.audit-writer" : `airlock.audit-writer:${instanceId}`;
  return createHash("sha256").update(label).digest().readBigInt64BE(0).toString();
}

/** The advisory lock of one instance's audit chain writer (key: writerLockKey). */
const WRITER_LOCK_SQL = "SELECT pg_try_advisory_lock($1::bigint) AS locked";

class PgPoolClient extends PgTxClient {
  private closing: Promise<void> | undefined;
  /** The connection holding the writer lock (outside the pool, so no query ever releases it). */
  private writer: pg.Client | undefined;
  constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresClientOptions,
  ) {
    super(pool);
  }

  async claimWriter(instanceId: string): Promise<boolean> {
    if (this.writer !== undefined) return true;
    const c = new pg.Client({ connectionString: this.options.url, connectionTimeoutMillis: 10_000 });
    c.on("error", (err) => {
      // Losing this connection releases the lock: another gateway could then start writing the
      // same chain. Said loudly; the operator's fix is to restart this gateway.
      this.options.logger?.error({ err: { message: err.message } }, "the store connection holding the audit writer lock was lost");
    });
    try {
      await c.connect();
      const r = await c.query<{ locked: boolean }>(WRITER_LOCK_SQL, [writerLockKey(instanceId)]);
      if (r.rows[0]?.locked !== true) {
        await c.end().catch(() => undefined);
        return false;
      }
    } catch (e) {
      await c.end().catch(() => undefined);
      throw storeError(e, "connection");
    }
    this.writer = c;
    return true;
  }

  override async transaction<T>(fn: (c: SqlClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw storeError(e, "connection");
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const result = await fn(new PgTxClient(client));
      await client.query("COMMIT");
      return result;
    } catch (e) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true; // the connection is unusable; release(true) discards it
      }
      throw storeError(e, "transaction");
    } finally {
      client.release(broken);
    }
  }

  override close(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    this.closing ??= Promise.all([this.pool.end(), writer?.end().catch(() => undefined)]).then(() => undefined);
    return this.closing;
  }
}

export interface PostgresClientOptions {
  readonly url: string;
  readonly max?: number;
  readonly logger?: Logger;
}

/** A pooled node-postgres client. The URL carries a credential: it is never logged. */
export function openPostgresClient(options: PostgresClientOptions): SqlClient {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 4,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client's connection dropping emits 'error' on the pool; without a listener Node
  // would crash the gateway. The next query reconnects.
  pool.on("error", (err) => {
    options.logger?.warn({ err: { message: err.message } }, "store connection lost");
  });
  return new PgPoolClient(pool, options);
}
