/**
 * What a held statement's names resolve to on the target, as the client's own session would
 * resolve them (core/objects.ts): relations through the session's search_path (`to_regclass`,
 * which follows the same lookup as the parser: pg_temp, pg_catalog, then the path), functions
 * as every function of that name the call may pick among (by OID). The approval is bound to
 * this resolution and compared again when the approved statement is released
 * (src/approvals/binding.ts); the lookups run on the catalog's side connection (same user and
 * database as the session), with the session's search_path set for the lookup only.
 *
 * The session's search_path is followed from what the client sends (SearchPathTracker). It is
 * known exactly only where that is certain: a `SET search_path` / `SET SCHEMA` / `RESET` /
 * `RESET ALL` / `DISCARD ALL` sent alone in a simple Query while the session is idle outside a
 * transaction (it commits by itself, so no ROLLBACK can undo it). Any other change — `SET
 * LOCAL`, a SET inside a transaction or with other statements, `set_config()`, `SET ROLE` /
 * `SESSION AUTHORIZATION` (they change what `$user` names), a SET through the extended
 * protocol — makes it unknown until the next exact one, and a held statement is then refused:
 * its objects cannot be resolved (fail closed).
 *
 * Limits (README "Approvals"): the session's own temporary relations are not visible to the
 * side connection; the session's default search_path is taken to be the side connection's own
 * (same user and database; a role/database default changed between the two logins is not
 * seen); a server-side function that changes search_path from inside its body is not
 * seen; between the last comparison and the target running the statement there is a window of
 * one round trip.
 */
import type { BoundObject, ObjectBinding, ObjectNames, ObjectResolver, ResolvedObject } from "../../core/objects.js";
import { GatewayError } from "../../core/errors.js";
import { asNode, bool, obj, str } from "../../policy/sql/ast.js";
import { MAX_SQL_DEPTH, parseSyncBounded, type ParseLimits } from "../../policy/sql/limits.js";

/** The side connection's query runner (PgCatalog.lookup). */
export interface CatalogLookup {
  lookup(sql: string): Promise<(string | null)[][]>;
}

export type SearchPathState =
  | { readonly kind: "default" }
  | { readonly kind: "set"; readonly value: string }
  | { readonly kind: "unknown"; readonly why: string };

/** Names of one statement beyond this are not resolved: the hold is refused (fail closed). */
export const MAX_BOUND_NAMES = 500;

/** Texts that may change the session's search_path (or what `$user` in it names). */
const PATH_KEYWORDS = /search_path|\bschema\b|\breset\b|\bdiscard\b|set_config|\brole\b|authorization/i;
const SET_CONFIG = /set_config/i;
const PARSE_LIMITS: ParseLimits = { maxBytes: 256 * 1024, maxDepth: MAX_SQL_DEPTH };

/** How a statement reached the target. */
export interface SentHow {
  /** A simple Query holding only this statement (extended-protocol text runs later, if at all). */
  readonly simple: boolean;
  /** Nothing else was in flight and no transaction was open when it was sent. */
  readonly quiet: boolean;
}

export class SearchPathTracker {
  #state: SearchPathState;

  /** `startup`: a search_path the client gave at startup (it is forwarded to the target). */
  constructor(startup?: string) {
    this.#state = startup === undefined ? { kind: "default" } : { kind: "set", value: startup };
  }

  get state(): SearchPathState {
    return this.#state;
  }

  /** A statement text forwarded to the target. */
  sent(sql: string, how: SentHow): void {
    if (!PATH_KEYWORDS.test(sql)) return;
    if (SET_CONFIG.test(sql)) {
      this.#state = { kind: "unknown", why: "set_config() may have changed it" };
      return;
    }
    let stmts: readonly unknown[];
    try {
      const tree = parseSyncBounded(sql, PARSE_LIMITS) as { stmts?: readonly { stmt?: unknown }[] };
      stmts = (tree.stmts ?? []).map((s) => s.stmt);
    } catch {
      this.#state = { kind: "unknown", why: "a statement that may change it could not be read" };
      return;
    }
    const exact = how.simple && how.quiet && stmts.length === 1;
    for (const stmt of stmts) {
      const next = pathEffect(stmt);
      if (next === undefined) continue;
      if (next.kind === "unknown" || exact) this.#state = next;
      else this.#state = { kind: "unknown", why: "it was changed inside a transaction, with other statements or through the extended protocol" };
    }
  }
}

/** What one statement does to the search_path, or undefined when nothing. */
function pathEffect(stmt: unknown): SearchPathState | undefined {
  const node = asNode(stmt);
  if (node === undefined) return undefined;
  const [type, body] = node;
  if (type === "DiscardStmt") return str(body, "target") === "DISCARD_ALL" ? { kind: "default" } : undefined;
  if (type !== "VariableSetStmt") return undefined;
  const kind = str(body, "kind");
  const name = str(body, "name");
  if (kind === "VAR_RESET_ALL") return { kind: "default" };
  if (name === "role" || name === "session_authorization") return { kind: "unknown", why: "SET ROLE / SESSION AUTHORIZATION changes what $user names" };
  if (name !== "search_path") return undefined;
  if (bool(body, "is_local")) return { kind: "unknown", why: "SET LOCAL search_path lasts until the transaction ends" };
  if (kind === "VAR_SET_DEFAULT" || kind === "VAR_RESET") return { kind: "default" };
  if (kind !== "VAR_SET_VALUE") return { kind: "unknown", why: "an unusual SET search_path" };
  const args = body["args"];
  if (!Array.isArray(args) || args.length === 0) return { kind: "unknown", why: "an unusual SET search_path" };
  const names: string[] = [];
  for (const a of args as unknown[]) {
    // SET's values are string constants (`app` and 'app' alike): A_Const { sval: { sval } }.
    const c = asNode(a);
    const sval = c?.[0] === "A_Const" ? obj(c[1], "sval") : undefined;
    const v = sval === undefined ? undefined : str(sval, "sval");
    if (v === undefined) return { kind: "unknown", why: "an unusual SET search_path" };
    names.push(v);
  }
  // As PostgreSQL flattens a GUC_LIST_QUOTE list: each element an identifier.
  return { kind: "set", value: names.map(quoteIdent).join(", ") };
}

function quoteIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

/** A string literal for the side connection (E'' so backslashes read the same whatever the settings). */
function lit(s: string): string {
  return `E'${s.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

function litOrNull(s: string | undefined): string {
  return s === undefined ? "null::text" : lit(s);
}

function splitFunction(fn: string): { schema?: string; name: string } {
  const dot = fn.lastIndexOf(".");
  return dot < 0 ? { name: fn } : { schema: fn.slice(0, dot), name: fn.slice(dot + 1) };
}

/**
 * The lookup, one simple Query on the side connection (an implicit transaction, so the
 * `set_config(…, true)` lasts for it only). Rows: `p` the search_path in effect; `r` one per
 * relation name (its OID, schema and name, or nulls); `f` one per function a name may call.
 */
export function resolutionQuery(path: SearchPathState, names: ObjectNames): string {
  const parts: string[] = [];
  if (path.kind === "set") parts.push(`select pg_catalog.set_config('search_path', ${lit(path.value)}, true)`);
  parts.push(`select 'p', pg_catalog.current_setting('search_path'), null, null, null`);
  if (names.relations.length > 0) {
    const values = names.relations.map((r, i) => `(${i}, ${litOrNull(r.schema)}, ${lit(r.name)})`).join(", ");
    parts.push(
      `select 'r', t.i::text, c.oid::text, n.nspname::text, c.relname::text
         from (values ${values}) t(i, s, r)
         left join pg_catalog.pg_class c on c.oid = (
           case when t.s is null then pg_catalog.to_regclass(pg_catalog.quote_ident(t.r))
                when t.s = 'pg_temp' or exists (select 1 from pg_catalog.pg_namespace x where x.nspname = t.s)
                  then pg_catalog.to_regclass(pg_catalog.quote_ident(t.s) || '.' || pg_catalog.quote_ident(t.r)) end)
         left join pg_catalog.pg_namespace n on n.oid = c.relnamespace`,
    );
  }
  if (names.functions.length > 0) {
    const values = names.functions
      .map((f, i) => {
        const { schema, name } = splitFunction(f);
        return `(${i}, ${litOrNull(schema)}, ${lit(name)})`;
      })
      .join(", ");
    parts.push(
      `select 'f', t.i::text, p.oid::text, n.nspname::text, p.proname::text || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
         from (values ${values}) t(i, s, f)
         join pg_catalog.pg_proc p on p.proname::text = t.f
         join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where case when t.s is null then n.nspname = any(pg_catalog.current_schemas(true))
                   when t.s = 'pg_temp' then n.oid = pg_catalog.pg_my_temp_schema()
                   else n.nspname::text = t.s end`,
    );
  }
  return parts.join(";\n");
}

/** The binding from the lookup's rows (pure; rows of other shapes are ignored). */
export function bindingFromRows(names: ObjectNames, rows: readonly (readonly (string | null)[])[]): ObjectBinding {
  let searchPath: string | undefined;
  const relations: (ResolvedObject | undefined)[] = names.relations.map(() => undefined);
  const functions: ResolvedObject[][] = names.functions.map(() => []);
  const index = (v: string | null | undefined, n: number): number | undefined => {
    const i = Number(v);
    return Number.isSafeInteger(i) && i >= 0 && i < n ? i : undefined;
  };
  for (const row of rows) {
    if (row.length !== 5) continue;
    const [tag, a, oid, schema, name] = row;
    if (tag === "p") searchPath = a ?? "";
    else if (tag === "r") {
      const i = index(a, relations.length);
      if (i !== undefined && oid !== null && oid !== undefined && schema != null && name != null) relations[i] = { oid: Number(oid), qualified: `${schema}.${name}` };
    } else if (tag === "f") {
      const i = index(a, functions.length);
      if (i !== undefined && oid != null && schema != null && name != null) functions[i]?.push({ oid: Number(oid), qualified: `${schema}.${name}` });
    }
  }
  if (searchPath === undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the catalog lookup returned no search_path");
  const objects: BoundObject[] = [
    ...names.relations.map((r, i): BoundObject => {
      const hit = relations[i];
      return { kind: "relation", name: r.schema === undefined ? r.name : `${r.schema}.${r.name}`, resolved: hit === undefined ? [] : [hit] };
    }),
    ...names.functions.map((f, i): BoundObject => ({ kind: "function", name: f, resolved: [...(functions[i] ?? [])].sort((x, y) => x.oid - y.oid) })),
  ];
  return { searchPath, objects };
}

/** Resolve a held statement's names as the session would now. Rejects when that cannot be known. */
export async function resolveObjects(catalog: CatalogLookup, path: SearchPathState, names: ObjectNames): Promise<ObjectBinding> {
  if (path.kind === "unknown") {
    throw new GatewayError("GW_POLICY_DENIED", `the session's search_path is not known to the gateway (${path.why}); set it again with SET search_path, or use a new session`);
  }
  if (names.relations.length + names.functions.length > MAX_BOUND_NAMES) {
    throw new GatewayError("GW_LIMIT", `the statement names more than ${MAX_BOUND_NAMES} relations and functions`);
  }
  const rows = await catalog.lookup(resolutionQuery(path, names));
  return bindingFromRows(names, rows);
}

/** One session's resolver: its search_path as followed from what it sent, resolved on the side connection. */
export class SessionObjects {
  readonly #catalog: CatalogLookup;
  readonly #path: SearchPathTracker;
  readonly resolve: ObjectResolver;

  constructor(catalog: CatalogLookup, startupSearchPath?: string) {
    this.#catalog = catalog;
    this.#path = new SearchPathTracker(startupSearchPath);
    this.resolve = (names) => resolveObjects(this.#catalog, this.#path.state, names);
  }

  /** The session's search_path as followed from what it sent (previews and estimates run under it). */
  get searchPath(): SearchPathState {
    return this.#path.state;
  }

  /** A statement text forwarded to the target (see SearchPathTracker). */
  sent(sql: string, how: SentHow): void {
    this.#path.sent(sql, how);
  }
}
