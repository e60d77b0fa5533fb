/**
 * A minimal SQL client with two adapters (embedded PGlite and node-postgres), so the store is
 * written once against plain PostgreSQL SQL. Rows arrive as `unknown` from either driver and
 * are parsed with a zod schema at this boundary: nothing above sees an unchecked row.
 *
 * The drivers decode types differently (node-postgres returns int8 as a string, PGlite as a
 * number; both decode timestamptz to Date and jsonb to values), so row schemas use the
 * tolerant helpers below instead of assuming one driver's representation.
 */
import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import type { Logger } from "pino";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";

export interface SqlClient {
  readonly kind: "pglite" | "postgres";
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

class PgliteTxClient implements SqlClient {
  readonly kind = "pglite" as const;
  constructor(private readonly q: PgliteQueryable) {}

  async query<R>(sql: string, params: readonly unknown[], row: z.ZodType<R>): Promise<R[]> {
    let rows: unknown[];
    try {
      rows = (await this.q.query(sql, paramList(params))).rows;
    } catch (e) {
      throw storeError(e, "query");
    }
    return parseRows(rows, row);
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<number> {
    try {
      return (await this.q.query(sql, paramList(params))).affectedRows ?? 0;
    } catch (e) {
      throw storeError(e, "statement");
    }
  }

  async script(sql: string): Promise<void> {
    try {
      await this.q.exec(sql);
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

/** Open (creating if missing) an embedded PGlite database in `dir`. */
export async function openPgliteClient(dir: string): Promise<SqlClient> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const db = await PGlite.create(dir);
    return new PgliteClient(db);
  } catch (e) {
    throw new GatewayError("GW_STORE", `cannot open the embedded store in ${dir}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// node-postgres

interface PgQueryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

class PgTxClient implements SqlClient {
  readonly kind = "postgres" as const;
  constructor(protected readonly q: PgQueryable) {}

  async query<R>(sql: string, params: readonly unknown[], row: z.ZodType<R>): Promise<R[]> {
    let rows: unknown[];
    try {
      rows = (await this.q.query(sql, paramList(params))).rows;
    } catch (e) {
      throw storeError(e, "query");
    }
    return parseRows(rows, row);
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<number> {
    try {
      return (await this.q.query(sql, paramList(params))).rowCount ?? 0;
    } catch (e) {
      throw storeError(e, "statement");
    }
  }

  async script(sql: string): Promise<void> {
    try {
      // Without parameters node-postgres uses the simple protocol, which allows several statements.
      await this.q.query(sql);
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

class PgPoolClient extends PgTxClient {
  private closing: Promise<void> | undefined;
  constructor(private readonly pool: pg.Pool) {
    super(pool);
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
    this.closing ??= this.pool.end();
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
  return new PgPoolClient(pool);
}
