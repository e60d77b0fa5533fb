/**
 * The target's catalog, seen through the gateway's own side connection: which relation and
 * column a result field comes from (RowDescription carries only the table OID and attribute
 * number), for views, which base relations they read, and, for tables, which relations share
 * their columns through inheritance and partitioning. One side connection per configured
 * connection, shared by its sessions; answers are cached for a short time, since OIDs are
 * stable while a table exists.
 */
import type { Logger } from "pino";
import type { PostgresConnection } from "../../core/connection.js";
import type { SourceColumn } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import { splitIdentifiers } from "../../policy/sql/ast.js";
import { ANY_COLUMN, statementLineage } from "../../policy/sql/lineage.js";
import { MAX_SQL_DEPTH, parseSyncBounded, type ParseLimits } from "../../policy/sql/limits.js";
import { sideExchange, sideQuery, type UpstreamDeps, type UpstreamSession } from "./upstream.js";
import { SideSession } from "./side-session.js";
import {
  BackendType,
  decodeDataRow,
  decodeErrorOrNotice,
  decodeRowDescription,
  encodeDescribe,
  encodeParse,
  encodeSync,
  type RowDescriptionField,
} from "./wire/index.js";

/** The columns of one relation in attribute order (dropped ones left out), with their types. */
export interface TableColumns {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
  readonly columns: readonly { readonly name: string; readonly typeOid: number }[];
}

export interface RelationInfo {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** 'r' table, 'v' view, 'm' materialized view, 'p' partitioned table, 'f' foreign table. */
  readonly kind: string;
  /** attnum → column name. */
  readonly columns: ReadonlyMap<number, string>;
}

/**
 * Relations that share columns with one through inheritance or partitioning (pg_inherits):
 * its descendants (reading it returns their rows) and the ancestors of it and of each
 * descendant (a rule on a parent's column applies to the column its children inherit).
 */
export interface InheritanceInfo {
  readonly schema: string;
  readonly name: string;
  readonly relatives: readonly { readonly schema: string; readonly name: string; readonly descendant: boolean }[];
}

/**
 * Where each column of a view (or materialized view) comes from: its definition
 * (pg_get_viewdef) read by the lineage walker. `outputs` in column order; absent when the
 * definition could not be read (then every column may carry anything in `reads`).
 */
export interface ViewLineage {
  readonly schema: string;
  readonly name: string;
  readonly columns: readonly string[];
  readonly outputs?: readonly (readonly SourceColumn[])[];
  readonly reads: readonly SourceColumn[];
}

/** A function by OID (pg_proc): what a fastpath FunctionCall names. */
export interface FunctionInfo {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** pg_get_function_identity_arguments: `oid, integer`. */
  readonly identityArgs: string;
}

/** The base columns a view reads (through nested views), as `schema.table.column`. */
export interface ViewColumns {
  readonly view: { readonly schema: string; readonly name: string };
  readonly columns: readonly { readonly schema: string; readonly table: string; readonly column: string }[];
}

const TTL_MS = 60_000;
/** The role/database search_path default changes only by DDL (ALTER ROLE/DATABASE … SET),
 * which invalidates it; the short TTL covers changes made outside the gateway. */
const SEARCH_PATH_TTL_MS = 10_000;
/** Schemas learned from search_path defaults are kept (a pooled or long-lived target session
 * still runs with the default it logged in with); beyond this many, new ones are still added
 * to the answer but not remembered. */
const MAX_PATH_SCHEMAS = 1_000;
/** Views nested deeper than this are treated as unknown (fail closed by the caller). */
const MAX_VIEW_DEPTH = 8;
/** Inheritance chains deeper than this are cut (PostgreSQL itself allows any depth; a deeper
 * tree is absurd, and a cut one still gets every relative within this many levels). */
const MAX_INHERIT_DEPTH = 64;
const MAX_ENTRIES = 50_000;
/** A view definition is parsed in the event loop: bounded like the other in-process parses. */
const VIEW_PARSE_LIMITS: ParseLimits = { maxBytes: 256 * 1024, maxDepth: MAX_SQL_DEPTH };

export class PgCatalog {
  readonly #conn: PostgresConnection;
  readonly #deps: UpstreamDeps;
  readonly #log: Logger;
  readonly #cache = new Map<number, { info: RelationInfo | undefined; at: number }>();
  /** `schema.name` → the view's base columns, or null when it is not a view. */
  readonly #views = new Map<string, { info: ViewColumns | null; at: number }>();
  /** Relation name → schema → its column names (system columns included). */
  readonly #byName = new Map<string, { info: ReadonlyMap<string, ReadonlySet<string>>; at: number }>();
  /** Relation name → the relations of that name (any schema) with their relatives. */
  readonly #inherit = new Map<string, { info: readonly InheritanceInfo[]; at: number }>();
  /** Relation name → the views of that name (any schema) with their column lineage. */
  readonly #viewLineage = new Map<string, { info: readonly ViewLineage[]; at: number }>();
  /** Function OID → the function (undefined: no such function). */
  readonly #functions = new Map<number, { info: FunctionInfo | undefined; at: number }>();
  /** Every schema named by a search_path default this connection's sessions may start with. */
  readonly #pathSchemas = new Set<string>();
  #pathAt = 0;
  /**
   * Bumped by `invalidate()` (after DDL): a lookup that started under an older generation may
   * have read the catalog before the change was visible, so its answer is used once but not
   * cached (it cannot re-poison the cache).
   */
  #generation = 0;
  /** Relation name → every relation of that name (any schema) with its typed columns. */
  readonly #tables = new Map<string, { info: readonly TableColumns[]; at: number }>();
  /** Queries run one at a time on the side connection. */
  readonly #side: SideSession;

  constructor(conn: PostgresConnection, deps: UpstreamDeps, logger: Logger) {
    this.#conn = conn;
    this.#deps = deps;
    this.#log = logger;
    this.#side = new SideSession(conn, deps, "airlock-catalog");
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
    const generation = this.#generation;
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
    // From an older generation: kept just long enough for the waiting result to read it.
    const now = generation === this.#generation ? Date.now() : Date.now() - TTL_MS + 1_000;
    if (this.#cache.size > MAX_ENTRIES) this.#cache.clear();
    for (const oid of missing) {
      const b = built.get(oid);
      const info = b === undefined ? undefined : { oid, ...b };
      this.#cache.set(oid, { info, at: now });
      result.set(oid, info);
    }
    return result;
  }

  /**
   * The function behind an OID (a fastpath FunctionCall names its function only so), or
   * undefined when pg_proc has none. Cached per OID (an OID names one function while it
   * exists; ALTER FUNCTION … RENAME/SET SCHEMA invalidates through DDL, see invalidate()).
   */
  async functionByOid(oid: number): Promise<FunctionInfo | undefined> {
    if (!Number.isSafeInteger(oid) || oid <= 0 || oid > 0xffff_ffff) return undefined;
    const hit = this.#functions.get(oid);
    if (hit !== undefined && Date.now() - hit.at <= TTL_MS) return hit.info;
    const generation = this.#generation;
    // The OID is an integer checked above: safe to inline.
    const rows = await this.#query(
      `select n.nspname::text, p.proname::text, pg_catalog.pg_get_function_identity_arguments(p.oid)
         from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where p.oid = ${oid}::oid`,
    );
    const [schema, name, args] = rows[0] ?? [];
    const info = schema === null || schema === undefined || name === null || name === undefined ? undefined : { oid, schema, name, identityArgs: args ?? "" };
    if (generation === this.#generation) {
      if (this.#functions.size > MAX_ENTRIES) this.#functions.clear();
      this.#functions.set(oid, { info, at: Date.now() });
    }
    return info;
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
  async views(names: readonly { readonly schema: string; readonly name: string }[]): Promise<ReadonlyMap<string, ViewColumns | null>> {
    const result = new Map<string, ViewColumns | null>();
    const pending: { readonly schema: string; readonly name: string }[] = [];
    for (const n of names) {
      const c = this.cachedView(n.schema, n.name);
      if (c === "missing") pending.push(n);
      else result.set(`${n.schema}.${n.name}`, c);
    }
    if (pending.length === 0) return result;
    const generation = this.#generation;
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
    const cache = generation === this.#generation;
    if (cache && this.#views.size > MAX_ENTRIES) this.#views.clear();
    for (const n of pending) {
      const key = `${n.schema}.${n.name}`;
      const cols = found.get(key);
      const info = cols === undefined ? null : { view: n, columns: cols };
      if (cache) this.#views.set(key, { info, at: now });
      result.set(key, info);
    }
    return result;
  }

  /** Cached columns of every relation named `name`, by schema, or "missing". */
  cachedColumns(name: string): ReadonlyMap<string, ReadonlySet<string>> | "missing" {
    const hit = this.#byName.get(name);
    if (hit === undefined || Date.now() - hit.at > TTL_MS) return "missing";
    return hit.info;
  }

  /**
   * The columns (system columns included) of every relation (table, view, materialized view,
   * partitioned or foreign table, sequence) with one of these names, in any schema: whether
   * `t.x` is a column of t or the call x(t) (attribute notation).
   */
  async columnsByName(names: readonly string[]): Promise<ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>> {
    const result = new Map<string, ReadonlyMap<string, ReadonlySet<string>>>();
    const pending: string[] = [];
    for (const n of new Set(names)) {
      const c = this.cachedColumns(n);
      if (c === "missing") pending.push(n);
      else result.set(n, c);
    }
    if (pending.length === 0) return result;
    const generation = this.#generation;
    const rows = await this.#query(
      `select n.nspname::text, c.relname::text, a.attname::text
         from pg_catalog.pg_class c
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         left join pg_catalog.pg_attribute a on a.attrelid = c.oid and not a.attisdropped
        where c.relname::text in (${pending.map(literal).join(", ")}) and c.relkind in ('r', 'v', 'm', 'p', 'f', 'S')`,
    );
    const built = new Map<string, Map<string, Set<string>>>();
    for (const [schema, name, column] of rows) {
      if (schema === null || schema === undefined || name === null || name === undefined) continue;
      let bySchema = built.get(name);
      if (bySchema === undefined) {
        bySchema = new Map();
        built.set(name, bySchema);
      }
      let cols = bySchema.get(schema);
      if (cols === undefined) {
        cols = new Set();
        bySchema.set(schema, cols);
      }
      if (column !== null && column !== undefined) cols.add(column);
    }
    const now = Date.now();
    const cache = generation === this.#generation;
    if (cache && this.#byName.size > MAX_ENTRIES) this.#byName.clear();
    for (const n of pending) {
      const info: ReadonlyMap<string, ReadonlySet<string>> = built.get(n) ?? new Map<string, ReadonlySet<string>>();
      if (cache) this.#byName.set(n, { info, at: now });
      result.set(n, info);
    }
    return result;
  }

  /** Cached inheritance of every relation named `name` (any schema), or "missing". */
  cachedInheritance(name: string): readonly InheritanceInfo[] | "missing" {
    const hit = this.#inherit.get(name);
    if (hit === undefined || Date.now() - hit.at > TTL_MS) return "missing";
    return hit.info;
  }

  /**
   * For every relation with one of these names, in any schema: its relatives through
   * inheritance and partitioning (see InheritanceInfo). A name no relation has maps to [].
   */
  async inheritance(names: readonly string[]): Promise<ReadonlyMap<string, readonly InheritanceInfo[]>> {
    const result = new Map<string, readonly InheritanceInfo[]>();
    const pending: string[] = [];
    for (const n of new Set(names)) {
      const c = this.cachedInheritance(n);
      if (c === "missing") pending.push(n);
      else result.set(n, c);
    }
    if (pending.length === 0) return result;
    const generation = this.#generation;
    const rows = await this.#query(
      `with recursive start as (
         select c.oid from pg_catalog.pg_class c
          where c.relname::text in (${pending.map(literal).join(", ")}) and c.relkind in ('r', 'p', 'f', 'v', 'm')
       ), down(root, oid, depth) as (
         select oid, oid, 0 from start
         union
         select d.root, i.inhrelid, d.depth + 1 from down d join pg_catalog.pg_inherits i on i.inhparent = d.oid
          where d.depth < ${MAX_INHERIT_DEPTH}
       ), up(root, oid, depth, descendant) as (
         select root, oid, 0, depth > 0 from down
         union
         select u.root, i.inhparent, u.depth + 1, false from up u join pg_catalog.pg_inherits i on i.inhrelid = u.oid
          where u.depth < ${MAX_INHERIT_DEPTH}
       )
       select rn.nspname::text, r.relname::text, n.nspname::text, c.relname::text, bool_or(up.descendant)::text
         from start s
         join pg_catalog.pg_class r on r.oid = s.oid
         join pg_catalog.pg_namespace rn on rn.oid = r.relnamespace
         left join up on up.root = s.oid and up.oid <> s.oid
         left join pg_catalog.pg_class c on c.oid = up.oid
         left join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        group by 1, 2, 3, 4`,
    );
    const built = new Map<string, Map<string, { schema: string; name: string; descendant: boolean }[]>>();
    for (const [schema, name, rs, rn, descendant] of rows) {
      if (schema === null || schema === undefined || name === null || name === undefined) continue;
      let bySchema = built.get(name);
      if (bySchema === undefined) {
        bySchema = new Map();
        built.set(name, bySchema);
      }
      let relatives = bySchema.get(schema);
      if (relatives === undefined) {
        relatives = [];
        bySchema.set(schema, relatives);
      }
      if (rs !== null && rs !== undefined && rn !== null && rn !== undefined) relatives.push({ schema: rs, name: rn, descendant: descendant === "true" });
    }
    // From an older generation: kept just long enough for the waiting result to read it.
    const now = generation === this.#generation ? Date.now() : Date.now() - TTL_MS + 1_000;
    if (this.#inherit.size > MAX_ENTRIES) this.#inherit.clear();
    for (const n of pending) {
      const info: InheritanceInfo[] = [...(built.get(n) ?? [])].map(([schema, relatives]) => ({ schema, name: n, relatives }));
      this.#inherit.set(n, { info, at: now });
      result.set(n, info);
    }
    return result;
  }

  /** Cached column lineage of every view named `name` (any schema; [] when none is), or "missing". */
  cachedViewLineage(name: string): readonly ViewLineage[] | "missing" {
    const hit = this.#viewLineage.get(name);
    if (hit === undefined || Date.now() - hit.at > TTL_MS) return "missing";
    return hit.info;
  }

  /**
   * For every view or materialized view with one of these names, in any schema: where each
   * of its columns comes from, read from its definition. Definitions the parser refuses (or
   * beyond its bounds) give no outputs and read anything (fail closed).
   */
  async viewLineage(names: readonly string[]): Promise<ReadonlyMap<string, readonly ViewLineage[]>> {
    const result = new Map<string, readonly ViewLineage[]>();
    const pending: string[] = [];
    for (const n of new Set(names)) {
      const c = this.cachedViewLineage(n);
      if (c === "missing") pending.push(n);
      else result.set(n, c);
    }
    if (pending.length === 0) return result;
    const generation = this.#generation;
    const rows = await this.#query(
      `select n.nspname::text, c.relname::text, pg_catalog.pg_get_viewdef(c.oid),
              (select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ',' order by a.attnum)
                 from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)
         from pg_catalog.pg_class c
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relname::text in (${pending.map(literal).join(", ")}) and c.relkind in ('v', 'm')`,
    );
    const built = new Map<string, ViewLineage[]>();
    for (const [schema, name, def, cols] of rows) {
      if (schema === null || schema === undefined || name === null || name === undefined) continue;
      const columns = cols === null || cols === undefined ? [] : (splitIdentifiers(cols, ",") ?? []);
      let entry: ViewLineage = { schema, name, columns, reads: [ANY_COLUMN] };
      if (def !== null && def !== undefined) {
        try {
          const tree = parseSyncBounded(def, VIEW_PARSE_LIMITS) as { stmts?: readonly { stmt?: unknown }[] };
          const stmts = tree.stmts ?? [];
          const l = stmts.length === 1 ? statementLineage(stmts[0]?.stmt) : undefined;
          if (l !== undefined) entry = { schema, name, columns, reads: l.reads, ...(l.outputs !== undefined && l.outputs.length === columns.length ? { outputs: l.outputs } : {}) };
        } catch {
          // Unreadable definition: every column may carry anything (fail closed).
        }
      }
      const list = built.get(name) ?? [];
      list.push(entry);
      built.set(name, list);
    }
    const now = generation === this.#generation ? Date.now() : Date.now() - TTL_MS + 1_000;
    if (this.#viewLineage.size > MAX_ENTRIES) this.#viewLineage.clear();
    for (const n of pending) {
      const info = built.get(n) ?? [];
      this.#viewLineage.set(n, { info, at: now });
      result.set(n, info);
    }
    return result;
  }

  /** The schemas of the search_path defaults, when known and fresh. */
  cachedSearchPath(): readonly string[] | "missing" {
    if (this.#pathAt === 0 || Date.now() - this.#pathAt > SEARCH_PATH_TTL_MS) return "missing";
    return [...this.#pathSchemas];
  }

  /**
   * Every schema the search_path of a new target session may name (`$user` stays as written):
   * the role's and database's defaults (ALTER ROLE / DATABASE … SET search_path, in every
   * combination that applies to this user and database) and the server's, as this side
   * connection (same user, same database) sees it. Schemas learned earlier are kept: a pooled
   * target session resets (DISCARD ALL) to the default it logged in with.
   */
  async searchPath(): Promise<readonly string[]> {
    const cached = this.cachedSearchPath();
    if (cached !== "missing") return cached;
    const generation = this.#generation;
    const rows = await this.#query(
      `select current_setting('search_path')
       union all
       select substr(s, 13)
         from pg_catalog.pg_db_role_setting d, unnest(d.setconfig) s
        where d.setdatabase in (0, (select oid from pg_catalog.pg_database where datname = current_database()))
          and d.setrole in (0, (select oid from pg_catalog.pg_roles where rolname = session_user))
          and s like 'search\\_path=%'`,
    );
    const found = new Set<string>();
    for (const [value] of rows) if (value !== null && value !== undefined) for (const s of parseSearchPath(value)) found.add(s);
    for (const s of found) if (this.#pathSchemas.size < MAX_PATH_SCHEMAS) this.#pathSchemas.add(s);
    if (generation === this.#generation) this.#pathAt = Date.now();
    return [...new Set([...this.#pathSchemas, ...found])];
  }

  /**
   * Every relation named `name`, in any schema, with its columns in attribute order and their
   * types: what `COPY name TO STDOUT` may read, whatever the session's search_path (the caller
   * treats every candidate as possible, so a search_path the gateway does not know cannot move
   * a COPY off a masked table).
   */
  async tablesNamed(name: string): Promise<readonly TableColumns[]> {
    const hit = this.#tables.get(name);
    if (hit !== undefined && Date.now() - hit.at <= TTL_MS) return hit.info;
    const generation = this.#generation;
    const rows = await this.#query(
      `select c.oid::text, n.nspname::text, c.relname::text, c.relkind::text, a.attname::text, a.atttypid::text
         from pg_catalog.pg_class c
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         left join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where c.relname::text = ${literal(name)}
        order by c.oid, a.attnum`,
    );
    const built = new Map<number, { oid: number; schema: string; name: string; kind: string; columns: { name: string; typeOid: number }[] }>();
    for (const [oid, schema, rel, kind, att, type] of rows) {
      const o = Number(oid);
      let t = built.get(o);
      if (t === undefined) {
        t = { oid: o, schema: schema ?? "", name: rel ?? "", kind: kind ?? "r", columns: [] };
        built.set(o, t);
      }
      if (att !== null && att !== undefined) t.columns.push({ name: att, typeOid: Number(type) });
    }
    const info = [...built.values()];
    if (generation === this.#generation) {
      if (this.#tables.size > MAX_ENTRIES) this.#tables.clear();
      this.#tables.set(name, { info, at: Date.now() });
    }
    return info;
  }

  /**
   * The result fields of a query, as a RowDescription gives them (table OID and attribute
   * number per field), without running it: Parse and Describe of the unnamed statement on the
   * side connection. Throws when the target refuses the query there.
   */
  async describeQuery(sql: string): Promise<readonly RowDescriptionField[]> {
    return this.#run(async (session) => {
      let fields: RowDescriptionField[] = [];
      let failure: Error | undefined;
      const messages = Buffer.concat([encodeParse("", sql), encodeDescribe("S", ""), encodeSync()]);
      await sideExchange(session, messages, this.#deps.timeoutMs, (f) => {
        if (f.type === BackendType.RowDescription) fields = decodeRowDescription(f.body);
        else if (f.type === BackendType.ErrorResponse) {
          const e = decodeErrorOrNotice(f.body);
          failure = new GatewayError("GW_POLICY_DENIED", "the gateway could not describe the query of this COPY", { cause: new Error(`${e.code}: ${e.message}`) });
        }
      });
      if (failure !== undefined) throw failure;
      return fields;
    }, true);
  }

  /**
   * Forget what the catalog said (after DDL on this connection, from any session): views,
   * relations, columns and the search_path defaults are looked up again, and answers of
   * lookups already running are not cached.
   */
  /** Bumped by invalidate(): what was answered before may have changed. */
  get generation(): number {
    return this.#generation;
  }

  invalidate(): void {
    this.#generation++;
    this.#cache.clear();
    this.#views.clear();
    this.#byName.clear();
    this.#inherit.clear();
    this.#viewLineage.clear();
    this.#tables.clear();
    this.#functions.clear();
    this.#pathAt = 0;
  }

  /**
   * One uncached query on the side connection, in turn with the others (object-resolution.ts:
   * what a held statement's names resolve to). Rows as text.
   */
  lookup(sql: string): Promise<(string | null)[][]> {
    return this.#query(sql);
  }

  #query(sql: string): Promise<(string | null)[][]> {
    return this.#run((session) => simpleQuery(session, sql, this.#deps.timeoutMs), false);
  }

  /** Run `work` on the side connection (SideSession); a failed lookup is logged. */
  async #run<T>(work: (session: UpstreamSession) => Promise<T>, refusalKeepsSession: boolean): Promise<T> {
    try {
      return await this.#side.run(work, refusalKeepsSession);
    } catch (e) {
      if (!(refusalKeepsSession && e instanceof GatewayError && e.code === "GW_POLICY_DENIED")) this.#log.warn({ err: e, connection: this.#conn.name }, "catalog lookup failed");
      throw e;
    }
  }

  close(): Promise<void> {
    return this.#side.close();
  }
}

/** A string literal for the side connection (standard_conforming_strings is on by default there;
 * backslashes are doubled anyway, and an E'' literal makes that reading certain). */
function literal(s: string): string {
  return `E'${s.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/**
 * The schema names of a search_path value as SHOW prints it (`"$user", public, "My Schema"`):
 * quoted names as written (`""` is a quote), unquoted ones folded to lower case.
 */
export function parseSearchPath(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (i < n && (value[i] === " " || value[i] === "\t" || value[i] === ",")) i++;
    if (i >= n) break;
    let name = "";
    if (value[i] === '"') {
      i++;
      while (i < n) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += value.charAt(i);
        i++;
      }
      while (i < n && value[i] !== ",") i++;
    } else {
      const start = i;
      while (i < n && value[i] !== ",") i++;
      name = value.slice(start, i).trim().toLowerCase();
    }
    if (name !== "") out.push(name);
  }
  return out;
}

/** Run one simple-protocol query on an idle session and collect its rows as text. */
async function simpleQuery(session: UpstreamSession, sql: string, timeoutMs: number): Promise<(string | null)[][]> {
  const rows: (string | null)[][] = [];
  let failure: Error | undefined;
  await sideQuery(session, sql, timeoutMs, (f) => {
    if (f.type === 0x44 /* DataRow */) rows.push(decodeDataRow(f.body).map((v) => (v === null ? null : v.toString("utf8"))));
    else if (f.type === 0x45 /* ErrorResponse */) {
      const e = decodeErrorOrNotice(f.body);
      failure = new GatewayError("GW_UPSTREAM_UNAVAILABLE", "catalog query failed", { cause: new Error(`${e.code}: ${e.message}`) });
    }
  });
  if (failure !== undefined) throw failure;
  return rows;
}
