/**
 * The target's catalog, seen through the gateway's own side connection: which relation and
 * column a result field comes from (RowDescription carries only the table OID and attribute
 * number), and, for views, which base relations they read. One side connection per configured
 * connection, shared by its sessions; answers are cached for a short time, since OIDs are
 * stable while a table exists.
 */
import type { Logger } from "pino";
import type { PostgresConnection } from "../../core/connection.js";
import { GatewayError } from "../../core/errors.js";
import { connectUpstream, type UpstreamDeps, type UpstreamSession } from "./upstream.js";
import { decodeDataRow, decodeErrorOrNotice, encodeQuery, type Frame } from "./wire/index.js";

export interface RelationInfo {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** 'r' table, 'v' view, 'm' materialized view, 'p' partitioned table, 'f' foreign table. */
  readonly kind: string;
  /** attnum → column name. */
  readonly columns: ReadonlyMap<number, string>;
}

/** The base columns a view reads (through nested views), as `schema.table.column`. */
export interface ViewColumns {
  readonly view: { readonly schema: string; readonly name: string };
  readonly columns: readonly { readonly schema: string; readonly table: string; readonly column: string }[];
}

const TTL_MS = 60_000;
/** Views nested deeper than this are treated as unknown (fail closed by the caller). */
const MAX_VIEW_DEPTH = 8;
const MAX_ENTRIES = 50_000;

export class PgCatalog {
  readonly #conn: PostgresConnection;
  readonly #deps: UpstreamDeps;
  readonly #log: Logger;
  readonly #cache = new Map<number, { info: RelationInfo | undefined; at: number }>();
  /** `schema.name` → the view's base columns, or null when it is not a view. */
  readonly #views = new Map<string, { info: ViewColumns | null; at: number }>();
  #session: Promise<UpstreamSession> | undefined;
  /** Queries run one at a time on the side connection. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(conn: PostgresConnection, deps: UpstreamDeps, logger: Logger) {
    this.#conn = conn;
    this.#deps = deps;
    this.#log = logger;
  }

  /** Cached info, or undefined when it must be fetched (call `relations`). */
  cached(oid: number): RelationInfo | undefined | "missing" {
    const hit = this.#cache.get(oid);
    if (hit === undefined || Date.now() - hit.at > TTL_MS) return "missing";
    return hit.info;
  }

  /** Fetch the relations behind these OIDs (unknown OIDs map to undefined). */
  async relations(oids: readonly number[]): Promise<ReadonlyMap<number, RelationInfo | undefined>> {
    const want = [...new Set(oids.filter((o) => o > 0 && Number.isSafeInteger(o)))];
    const result = new Map<number, RelationInfo | undefined>();
    const missing: number[] = [];
    for (const oid of want) {
      const c = this.cached(oid);
      if (c === "missing") missing.push(oid);
      else result.set(oid, c);
    }
    if (missing.length === 0) return result;
    // OIDs are integers we validated above: safe to inline (the side connection speaks the simple protocol).
    const rows = await this.#query(
      `select c.oid::text, n.nspname, c.relname, c.relkind::text, a.attnum::text, a.attname
         from pg_catalog.pg_class c
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         left join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where c.oid = any('{${missing.join(",")}}'::oid[])`,
    );
    const built = new Map<number, { schema: string; name: string; kind: string; columns: Map<number, string> }>();
    for (const [oid, schema, name, kind, attnum, attname] of rows) {
      const o = Number(oid);
      let r = built.get(o);
      if (r === undefined) {
        r = { schema: schema ?? "", name: name ?? "", kind: kind ?? "r", columns: new Map() };
        built.set(o, r);
      }
      if (attnum !== null && attnum !== undefined && attname !== null && attname !== undefined) r.columns.set(Number(attnum), attname);
    }
    const now = Date.now();
    if (this.#cache.size > MAX_ENTRIES) this.#cache.clear();
    for (const oid of missing) {
      const b = built.get(oid);
      const info = b === undefined ? undefined : { oid, ...b };
      this.#cache.set(oid, { info, at: now });
      result.set(oid, info);
    }
    return result;
  }

  /** Cached view info for `schema.name`: the view's base columns, null (not a view), or "missing". */
  cachedView(schema: string, name: string): ViewColumns | null | "missing" {
    const hit = this.#views.get(`${schema}.${name}`);
    if (hit === undefined || Date.now() - hit.at > TTL_MS) return "missing";
    return hit.info;
  }

  /**
   * Which of these relations are views (or materialized views), and which base-table columns
   * each reads, following nested views. From pg_depend: a view's rewrite rule depends on every
   * column it uses, which is what PostgreSQL itself checks before dropping a column.
   */
  async views(names: readonly { readonly schema: string; readonly name: string }[]): Promise<void> {
    const pending = names.filter((n) => this.cachedView(n.schema, n.name) === "missing");
    if (pending.length === 0) return;
    const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;
    const keys = pending.map((n) => `(${literal(n.schema)}, ${literal(n.name)})`).join(", ");
    const rows = await this.#query(
      `with recursive start(oid, schema, name) as (
         select c.oid, n.nspname::text, c.relname::text
           from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where (n.nspname::text, c.relname::text) in (${keys}) and c.relkind in ('v', 'm')
       ), deps(root, relid, attnum, depth) as (
         select s.oid, d.refobjid, d.refobjsubid, 1
           from start s
           join pg_catalog.pg_rewrite r on r.ev_class = s.oid
           join pg_catalog.pg_depend d on d.objid = r.oid and d.classid = 'pg_catalog.pg_rewrite'::regclass
                and d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid <> s.oid
         union
         select deps.root, d.refobjid, d.refobjsubid, deps.depth + 1
           from deps
           join pg_catalog.pg_class vc on vc.oid = deps.relid and vc.relkind in ('v', 'm')
           join pg_catalog.pg_rewrite r on r.ev_class = vc.oid
           join pg_catalog.pg_depend d on d.objid = r.oid and d.classid = 'pg_catalog.pg_rewrite'::regclass
                and d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid <> vc.oid
          where deps.depth < ${MAX_VIEW_DEPTH}
       )
       select s.schema, s.name, n.nspname::text, c.relname::text, coalesce(a.attname::text, '*'), c.relkind::text
         from start s
         left join deps on deps.root = s.oid
         left join pg_catalog.pg_class c on c.oid = deps.relid
         left join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         left join pg_catalog.pg_attribute a on a.attrelid = deps.relid and a.attnum = deps.attnum and deps.attnum > 0`,
    );
    const found = new Map<string, { schema: string; table: string; column: string }[]>();
    for (const [vs, vn, bs, bt, col, kind] of rows) {
      const key = `${vs ?? ""}.${vn ?? ""}`;
      let list = found.get(key);
      if (list === undefined) {
        list = [];
        found.set(key, list);
      }
      // Columns of intermediate views are covered by their own dependencies; keep base relations.
      if (bs !== null && bs !== undefined && bt !== null && bt !== undefined && kind !== "v") {
        list.push({ schema: bs, table: bt, column: col ?? "*" });
      }
    }
    const now = Date.now();
    for (const n of pending) {
      const key = `${n.schema}.${n.name}`;
      const cols = found.get(key);
      this.#views.set(key, { info: cols === undefined ? null : { view: n, columns: cols }, at: now });
    }
  }

  #query(sql: string): Promise<(string | null)[][]> {
    const run = async (): Promise<(string | null)[][]> => {
      if (this.#closed) throw new GatewayError("GW_SHUTTING_DOWN", "catalog closed");
      this.#session ??= connectUpstream(this.#conn, new Map([["application_name", "airlock-catalog"]]), this.#deps);
      let session: UpstreamSession;
      try {
        session = await this.#session;
      } catch (e) {
        this.#session = undefined;
        throw e;
      }
      try {
        return await simpleQuery(session, sql, this.#deps.timeoutMs);
      } catch (e) {
        // A broken side connection is replaced on the next lookup.
        this.#session = undefined;
        session.socket.destroy();
        this.#log.warn({ err: e, connection: this.#conn.name }, "catalog lookup failed");
        throw e;
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    this.#session = undefined;
    if (s !== undefined) {
      const session = await s.catch(() => undefined);
      session?.socket.destroy();
    }
  }
}

/** Run one simple-protocol query on an idle session and collect its rows as text. */
function simpleQuery(session: UpstreamSession, sql: string, timeoutMs: number): Promise<(string | null)[][]> {
  return new Promise((resolve, reject) => {
    const rows: (string | null)[][] = [];
    let failure: Error | undefined;
    const { socket, reader } = session;
    const timer = setTimeout(() => finish(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "catalog query timed out")), timeoutMs);
    const onFrame = (f: Frame): boolean => {
      switch (f.type) {
        case 0x44: // DataRow
          rows.push(decodeDataRow(f.body).map((v) => (v === null ? null : v.toString("utf8"))));
          return false;
        case 0x45: {
          const e = decodeErrorOrNotice(f.body);
          failure = new GatewayError("GW_UPSTREAM_UNAVAILABLE", "catalog query failed", { cause: new Error(`${e.code}: ${e.message}`) });
          return false;
        }
        case 0x5a: // ReadyForQuery
          return true;
        default:
          return false;
      }
    };
    const drain = (): void => {
      try {
        for (let f = reader.next(); f !== undefined; f = reader.next()) {
          if (onFrame(f)) {
            finish(failure);
            return;
          }
        }
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    };
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      drain();
    };
    const onClose = (): void => finish(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "catalog connection closed"));
    let done = false;
    const finish = (e: Error | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onClose);
      socket.pause();
      if (e === undefined) resolve(rows);
      else reject(e);
    };
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("error", onClose);
    socket.write(encodeQuery(sql));
    socket.resume();
  });
}
