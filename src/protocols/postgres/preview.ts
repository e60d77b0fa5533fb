/**
 * Previews and cost estimates on the gateway's own target session (issue 21; core/preview.ts).
 *
 * A preview runs a held write exactly as the agent sent it (its text through Parse, its raw
 * parameters through Bind) inside `BEGIN … ROLLBACK` on a side connection of the same user and
 * database, under a statement and lock timeout, with the session's search_path set for the
 * transaction only. What it reports:
 * - rows changed per table, from `pg_stat_xact_user_tables` (this transaction's own counters:
 *   foreign-key cascades and trigger writes are counted too);
 * - a few affected rows, masked like any result: the statement is wrapped as
 *   `WITH airlock_preview AS (<statement> RETURNING *) SELECT * FROM airlock_preview LIMIT n`
 *   (a data-modifying WITH runs to completion whatever the LIMIT): deleted rows as they were,
 *   inserted and updated rows as they would be;
 * - the plan (EXPLAIN, text).
 *
 * A statement is not run when a rollback would not undo it (core/preview.ts "unpreviewable"):
 * anything but one INSERT / UPDATE / DELETE; a call of a volatile function (nextval, dblink,
 * pg_notify, a user function: their effects may escape the transaction); a write to something
 * other than a plain or partitioned table (foreign tables, views); a table with user triggers or
 * rewrite rules; an INSERT into a table whose columns draw from sequences (serial, identity).
 * The target's error is reported by SQLSTATE only: its message may echo a value.
 *
 * Estimates: `EXPLAIN (FORMAT JSON)` of the statement in a read-only transaction, with the
 * session's search_path; cached per search_path and exact text for a short time (a cost that
 * depends on literal values must not be answered from another text's estimate). A statement
 * prepared with parameters is estimated at each Bind with that Bind's values, declared types and
 * format codes (text or binary: the side session parses the same text with the same types, so
 * it reads binary values as the target does); the planner takes bound values as constants.
 * Those estimates are cached by a SHA-256 of text, types, formats and values (never the values
 * themselves), in a smaller map: the same values again (a poller, a retry) skip the round trip,
 * other values are estimated anew, since the plan may differ per value.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { PostgresConnection } from "../../core/connection.js";
import type { MaskRule } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import type { CostEstimate, PreviewSample, PreviewStatement, PreviewTableCount, StatementPreview } from "../../core/preview.js";
import { clipText as clip, maskSampleRows } from "../../masking/sample.js";
import { asNode } from "../../policy/sql/ast.js";
import { MAX_SQL_DEPTH, parseSyncBounded, type ParseLimits } from "../../policy/sql/limits.js";
import type { SearchPathState } from "./object-resolution.js";
import type { RuleMasker } from "./result-masking.js";
import { sideExchange, type UpstreamDeps, type UpstreamSession } from "./upstream.js";
import { SideSession } from "./side-session.js";
import {
  BackendType,
  decodeCommandComplete,
  decodeDataRow,
  decodeErrorOrNotice,
  decodeRowDescription,
  encodeBind,
  encodeDescribe,
  encodeExecute,
  encodeParse,
  encodeSync,
  type RowDescriptionField,
} from "./wire/index.js";

/** How long the previewed statement (and each step) may run on the target. */
export const PREVIEW_STATEMENT_TIMEOUT_MS = 5_000;
/** How long it may wait for a lock (another session holding the rows). */
export const PREVIEW_LOCK_TIMEOUT_MS = 2_000;
export const PREVIEW_SAMPLE_ROWS = 5;
const MAX_PLAN_LINES = 40;
const MAX_LINE_CHARS = 300;
const MAX_TABLES = 50;
const ESTIMATE_TTL_MS = 60_000;
const MAX_ESTIMATES = 1_000;
/** Estimates with values: per value combination, so far fewer repeat; a small map. */
const MAX_VALUE_ESTIMATES = 256;
const MAX_EXPLAIN_JSON_CHARS = 1_048_576;
const PARSE_LIMITS: ParseLimits = { maxBytes: 256 * 1024, maxDepth: MAX_SQL_DEPTH };
/** What a preview may run: one plain write (its subqueries read). */
const PREVIEWABLE_OPERATIONS: ReadonlySet<string> = new Set(["insert", "update", "delete", "select"]);
const WRITE_NODES: ReadonlySet<string> = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt"]);

interface StepResult {
  readonly fields: readonly RowDescriptionField[];
  readonly rows: readonly (readonly (string | null)[])[];
  readonly error?: { readonly code: string };
}

type Params = NonNullable<PreviewStatement["params"]>;

function lit(s: string): string {
  return `E'${s.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** The statement with `RETURNING *` (unless it has its own), wrapped to return a few rows; undefined when it is not one plain write. */
export function sampleQuery(sql: string, limit: number): string | undefined {
  const top = topStatement(sql);
  if (top === undefined || !WRITE_NODES.has(top.type)) return undefined;
  const body = sql.trim().replace(/[\s;]+$/u, "");
  // libpg-query 18 keeps it as returningClause.exprs (returningList before 18).
  const clause = top.body["returningClause"];
  const exprs = typeof clause === "object" && clause !== null ? (clause as Record<string, unknown>)["exprs"] : top.body["returningList"];
  const returning = Array.isArray(exprs) && exprs.length > 0;
  // A newline first: a trailing `-- comment` must not swallow what follows.
  const wrapped = `WITH airlock_preview AS (\n${body}\n${returning ? "" : "RETURNING *\n"}) SELECT * FROM airlock_preview LIMIT ${limit}`;
  // The text read back must be that one statement (no comment or quote swallowed the wrapper).
  const check = topStatement(wrapped);
  return check?.type === "SelectStmt" ? wrapped : undefined;
}

function topStatement(sql: string): { readonly type: string; readonly body: Record<string, unknown> } | undefined {
  try {
    const tree = parseSyncBounded(sql, PARSE_LIMITS) as { stmts?: readonly { stmt?: unknown }[] };
    const stmts = tree.stmts ?? [];
    if (stmts.length !== 1) return undefined;
    const node = asNode(stmts[0]?.stmt);
    if (node === undefined) return undefined;
    const [type, body] = node;
    return { type, body };
  } catch {
    return undefined;
  }
}

/** The top plan node's estimate from EXPLAIN (FORMAT JSON); a write's rows are those its input plan touches. */
export function estimateFromExplain(json: string): CostEstimate {
  if (json.length > MAX_EXPLAIN_JSON_CHARS) throw new GatewayError("GW_LIMIT", "the plan is too large to read");
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target's plan could not be read", { cause: e });
  }
  const plan = Array.isArray(doc) && typeof doc[0] === "object" && doc[0] !== null ? (doc[0] as Record<string, unknown>)["Plan"] : undefined;
  if (typeof plan !== "object" || plan === null) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target's plan has no top node");
  const top = plan as Record<string, unknown>;
  const num = (n: Record<string, unknown>, k: string): number => {
    const v = n[k];
    return typeof v === "number" && Number.isFinite(v) ? v : 0;
  };
  let rows = num(top, "Plan Rows");
  const children = top["Plans"];
  if (top["Node Type"] === "ModifyTable" && Array.isArray(children) && typeof children[0] === "object" && children[0] !== null) {
    rows = Math.max(rows, num(children[0] as Record<string, unknown>, "Plan Rows"));
  }
  return { cost: num(top, "Total Cost"), rows };
}

/** This backend's per-table counters of the current transaction (pending ones of earlier transactions included). */
const STATS_SQL = `select n.nspname::text || '.' || c.relname::text, s.n_tup_ins::text, s.n_tup_upd::text, s.n_tup_del::text
     from pg_catalog.pg_stat_xact_user_tables s
     join pg_catalog.pg_class c on c.oid = s.relid
     join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0
    order by 1 limit 1000`;

/** Rows changed per table between two readings of STATS_SQL (tables that changed, by name; capped). */
export function countsChanged(before: readonly (readonly (string | null)[])[], after: readonly (readonly (string | null)[])[]): PreviewTableCount[] {
  const num = (v: string | null | undefined): number => {
    const n = Number(v ?? 0);
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  };
  const base = new Map(before.map((r) => [r[0] ?? "?", r]));
  const out: PreviewTableCount[] = [];
  for (const r of after) {
    const relation = r[0] ?? "?";
    const b = base.get(relation);
    const c = {
      relation,
      inserted: Math.max(0, num(r[1]) - num(b?.[1])),
      updated: Math.max(0, num(r[2]) - num(b?.[2])),
      deleted: Math.max(0, num(r[3]) - num(b?.[3])),
    };
    if (c.inserted + c.updated + c.deleted > 0) out.push(c);
  }
  return out.slice(0, MAX_TABLES);
}

/** The cache key of an estimate with values: a hash, so no value is kept (nor its size). */
export function valuesKey(plain: string, params: Params): string {
  const h = createHash("sha256");
  const n = (x: number): void => {
    h.update(`${x},`);
  };
  h.update(plain);
  h.update("\u0000");
  params.types.forEach(n);
  h.update(";");
  params.formats.forEach(n);
  h.update(";");
  for (const v of params.values) {
    if (v === null) h.update("N");
    else {
      h.update(`V${v.byteLength}:`);
      h.update(v);
    }
  }
  return h.digest("base64");
}

export class PgPreviewer {
  readonly #conn: PostgresConnection;
  readonly #log: Logger;
  readonly #maskerFor: (rule: MaskRule) => RuleMasker;
  readonly #estimates = new Map<string, { readonly e: CostEstimate; readonly at: number }>();
  readonly #valueEstimates = new Map<string, { readonly e: CostEstimate; readonly at: number }>();
  readonly #side: SideSession;

  constructor(conn: PostgresConnection, deps: UpstreamDeps, logger: Logger, maskerFor: (rule: MaskRule) => RuleMasker) {
    this.#conn = conn;
    this.#log = logger;
    this.#maskerFor = maskerFor;
    this.#side = new SideSession(conn, deps, "airlock-preview");
  }

  /** Run a held write in a rolled-back transaction and report what it did. Never rejects. */
  async preview(stmt: PreviewStatement, path: SearchPathState): Promise<StatementPreview> {
    const refusal = this.#precheck(stmt, path);
    if (refusal !== undefined) return { status: "unpreviewable", reason: refusal };
    try {
      return await this.#run((s) => this.#previewOn(s, stmt, path));
    } catch (e) {
      this.#log.warn({ err: e, connection: this.#conn.name }, "preview failed");
      return { status: "failed", reason: e instanceof GatewayError ? e.message : "the preview could not be run" };
    }
  }

  /**
   * The planner's estimate of one statement; `params`: one execution's values (a Bind), which
   * the statement is planned with. Rejects when it cannot be had.
   */
  async estimate(sql: string, path: SearchPathState, params?: Params): Promise<CostEstimate> {
    if (path.kind === "unknown") throw new GatewayError("GW_POLICY_DENIED", `the session's search_path is not known to the gateway (${path.why})`);
    const plain = `${path.kind === "set" ? path.value : ""}\u0000${sql}`;
    const [cache, key, max] = params === undefined ? [this.#estimates, plain, MAX_ESTIMATES] : [this.#valueEstimates, valuesKey(plain, params), MAX_VALUE_ESTIMATES];
    const hit = cache.get(key);
    if (hit !== undefined && Date.now() - hit.at <= ESTIMATE_TTL_MS) return hit.e;
    const e = await this.#run((s) => this.#estimateOn(s, sql, path, params));
    if (cache.size >= max) cache.clear();
    cache.set(key, { e, at: Date.now() });
    return e;
  }

  #precheck(stmt: PreviewStatement, path: SearchPathState): string | undefined {
    const s = stmt.settings;
    if (s.statements !== 1) return "it holds several statements; a preview runs exactly one";
    const other = s.operations.filter((op) => !PREVIEWABLE_OPERATIONS.has(op));
    if (other.length > 0) return `${other.join(", ")} cannot be previewed safely (only one INSERT, UPDATE or DELETE is run in a rolled-back transaction; DDL and utility statements may have effects outside it)`;
    if (!s.operations.some((op) => op === "insert" || op === "update" || op === "delete")) return "it writes nothing to preview";
    if (path.kind === "unknown") return `the session's search_path is not known to the gateway (${path.why})`;
    if (sampleQuery(stmt.sql, PREVIEW_SAMPLE_ROWS) === undefined) return "it is not one plain INSERT, UPDATE or DELETE the gateway can wrap";
    return undefined;
  }

  async #previewOn(session: UpstreamSession, stmt: PreviewStatement, path: SearchPathState): Promise<StatementPreview> {
    const begun = await this.#step(session, "BEGIN READ WRITE");
    if (begun.error !== undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the preview transaction could not start (SQLSTATE ${begun.error.code})`);
    let result: StatementPreview;
    try {
      result = await this.#previewSteps(session, stmt, path);
    } finally {
      // Always undone, whatever happened (an aborted transaction included). A ROLLBACK the
      // target refuses leaves the side session in doubt: it is replaced (#run).
      await this.#step(session, "ROLLBACK").then((r) => {
        if (r.error !== undefined) session.socket.destroy();
      });
    }
    return result;
  }

  async #previewSteps(session: UpstreamSession, stmt: PreviewStatement, path: SearchPathState): Promise<StatementPreview> {
    const set = await this.#step(session, this.#settingsSql(path, true));
    if (set.error !== undefined) return { status: "failed", reason: `the preview's settings were refused (SQLSTATE ${set.error.code})` };
    // This backend's counters not yet flushed (earlier previews) show in the view too: what
    // the statement changed is the difference.
    const baseline = await this.#step(session, STATS_SQL);
    if (baseline.error !== undefined) return { status: "failed", reason: `the preview's row counts could not be read (SQLSTATE ${baseline.error.code})` };
    const unsafe = await this.#unsafe(session, stmt);
    if (unsafe !== undefined) return { status: "unpreviewable", reason: unsafe };
    const explain = await this.#step(session, `EXPLAIN ${stmt.sql}`, stmt.params);
    if (explain.error !== undefined) return { status: "failed", reason: `the target refused the statement (SQLSTATE ${explain.error.code})` };
    const plan = explain.rows.slice(0, MAX_PLAN_LINES).map((r) => clip(r[0] ?? "", MAX_LINE_CHARS));
    const sampleSql = sampleQuery(stmt.sql, PREVIEW_SAMPLE_ROWS + 1);
    if (sampleSql === undefined) return { status: "unpreviewable", reason: "it is not one plain INSERT, UPDATE or DELETE the gateway can wrap" };
    const ran = await this.#step(session, sampleSql, stmt.params);
    if (ran.error !== undefined) return { status: "failed", reason: `the target refused the statement (SQLSTATE ${ran.error.code}${ran.error.code === "57014" ? ": it ran longer than the preview's time limit" : ran.error.code === "55P03" ? ": rows it needs are locked by another session" : ""})` };
    const stats = await this.#step(session, STATS_SQL);
    if (stats.error !== undefined) return { status: "failed", reason: `the preview's row counts could not be read (SQLSTATE ${stats.error.code})` };
    const tables = countsChanged(baseline.rows, stats.rows);
    const affectedRows = tables.reduce((n, t) => n + t.inserted + t.updated + t.deleted, 0);
    const columns = ran.fields.map((f) => f.name);
    const image: PreviewSample["image"] = stmt.settings.operations.includes("delete") ? "before" : "after";
    const sample: PreviewSample = {
      image,
      columns,
      rows: maskSampleRows(columns, ran.rows.slice(0, PREVIEW_SAMPLE_ROWS), stmt.masks, this.#maskerFor),
      truncated: ran.rows.length > PREVIEW_SAMPLE_ROWS,
    };
    return { status: "previewed", affectedRows, tables, sample, plan };
  }

  async #estimateOn(session: UpstreamSession, sql: string, path: SearchPathState, params?: Params): Promise<CostEstimate> {
    const r = await this.#explainJson(session, `EXPLAIN (FORMAT JSON) ${sql}`, path, params);
    if (r.error !== undefined) {
      // A statement with parameters and no values (a simple Query cannot bind any): the Bind
      // without values is refused (08P01) or the parameter is unknown (42P02). Not guessed: refused.
      const missing = params === undefined && (r.error.code === "42P02" || r.error.code === "08P01");
      const why = missing
        ? "its parameters have no values, so the planner cannot estimate it before it runs"
        : params !== undefined && (r.error.code === "08P01" || r.error.code === "22P03")
          ? `EXPLAIN with its values failed with SQLSTATE ${r.error.code}: the target could not read its parameters (their count, format codes or binary values)`
          : `EXPLAIN failed with SQLSTATE ${r.error.code}`;
      throw new GatewayError("GW_POLICY_DENIED", why);
    }
    return estimateFromExplain(r.rows.map((row) => row[0] ?? "").join("\n"));
  }

  /**
   * EXPLAIN in a read-only transaction (nothing the planner does can write), with the session's
   * settings, in one round trip: the settings (transaction-local, read-only first) and the
   * EXPLAIN go before one Sync, so they run in one implicit transaction, which ends at the Sync;
   * a failed setting skips the EXPLAIN (the target ignores the rest until Sync).
   */
  async #explainJson(session: UpstreamSession, explain: string, path: SearchPathState, params?: Params): Promise<StepResult> {
    let fields: RowDescriptionField[] = [];
    const rows: (string | null)[][] = [];
    let error: { code: string; during: "settings" | "explain" } | undefined;
    let completed = 0;
    const messages = Buffer.concat([
      encodeParse("", this.#settingsSql(path, true, true), []),
      encodeBind({ params: [], paramFormats: [] }),
      encodeExecute("", 0),
      ...this.#statementMessages(explain, params),
      encodeSync(),
    ]);
    const ready = await sideExchange(session, messages, PREVIEW_STATEMENT_TIMEOUT_MS + 5_000, (f) => {
      if (f.type === BackendType.CommandComplete) completed++;
      else if (f.type === BackendType.ErrorResponse) error = { code: decodeErrorOrNotice(f.body).code, during: completed === 0 ? "settings" : "explain" };
      else if (completed === 0) return;
      else if (f.type === BackendType.RowDescription) fields = decodeRowDescription(f.body);
      else if (f.type === BackendType.DataRow) rows.push(decodeDataRow(f.body).map((v) => (v === null ? null : v.toString("utf8"))));
    });
    // The implicit transaction ended at the Sync; anything else leaves the side session in doubt.
    if (ready.body[0] !== 0x49 /* I */) session.socket.destroy();
    if (error?.during === "settings") throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `EXPLAIN's settings were refused (SQLSTATE ${error.code})`);
    return error === undefined ? { fields, rows } : { fields, rows, error: { code: error.code } };
  }

  /** Parse/Bind/Describe/Execute of one statement with its parameters (no Sync). */
  #statementMessages(sql: string, params?: Params): Buffer[] {
    return [
      encodeParse("", sql, params?.types ?? []),
      encodeBind({
        params: (params?.values ?? []).map((v) => (v === null ? null : Buffer.from(v.buffer, v.byteOffset, v.byteLength))),
        paramFormats: params?.formats ?? [],
      }),
      encodeDescribe("P", ""),
      encodeExecute("", 0),
    ];
  }

  /** Transaction-local settings: time limits, the session's search_path, and (`readOnly`) a read-only transaction. */
  #settingsSql(path: SearchPathState, local: boolean, readOnly = false): string {
    const l = local ? "true" : "false";
    const parts = [
      // Going read-only is allowed at any point of a transaction (read-write is not).
      ...(readOnly ? ["pg_catalog.set_config('transaction_read_only', 'on', true)"] : []),
      `pg_catalog.set_config('statement_timeout', '${PREVIEW_STATEMENT_TIMEOUT_MS}', ${l})`,
      `pg_catalog.set_config('lock_timeout', '${PREVIEW_LOCK_TIMEOUT_MS}', ${l})`,
    ];
    if (path.kind === "set") parts.push(`pg_catalog.set_config('search_path', ${lit(path.value)}, ${l})`);
    return `select ${parts.join(", ")}`;
  }

  /** Why running the statement could have effects a rollback does not undo, or undefined. */
  async #unsafe(session: UpstreamSession, stmt: PreviewStatement): Promise<string | undefined> {
    const s = stmt.settings;
    const fnNames = [...new Set(s.functions.map((f) => f.slice(f.lastIndexOf(".") + 1)))];
    const parts: string[] = [];
    if (fnNames.length > 0) {
      parts.push(
        `select 'f', p.proname::text, null, null, null, null from pg_catalog.pg_proc p
          where p.provolatile = 'v' and p.proname::text = any(array[${fnNames.map(lit).join(", ")}]::text[])`,
      );
    }
    if (s.writes.length > 0) {
      const values = s.writes.map((w) => `(${w.schema === undefined ? "null::text" : lit(w.schema)}, ${lit(w.name)})`).join(", ");
      parts.push(
        `select 'r', coalesce(c.oid::regclass::text, t.r), coalesce(c.relkind::text, '?'),
                (exists (select 1 from pg_catalog.pg_trigger g where g.tgrelid = c.oid and not g.tgisinternal and g.tgenabled <> 'D'))::text,
                (exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attidentity <> '')
                 or exists (select 1 from pg_catalog.pg_attrdef d where d.adrelid = c.oid and pg_catalog.pg_get_expr(d.adbin, d.adrelid) ~* 'nextval'))::text,
                (exists (select 1 from pg_catalog.pg_rewrite w where w.ev_class = c.oid and w.rulename <> '_RETURN'))::text
           from (values ${values}) t(s, r)
           left join pg_catalog.pg_class c on c.oid = (case when t.s is null then pg_catalog.to_regclass(pg_catalog.quote_ident(t.r))
                                                            else pg_catalog.to_regclass(pg_catalog.quote_ident(t.s) || '.' || pg_catalog.quote_ident(t.r)) end)`,
      );
    }
    if (parts.length === 0) return undefined;
    const r = await this.#step(session, parts.join("\nunion all\n"));
    if (r.error !== undefined) return `what it writes could not be checked (SQLSTATE ${r.error.code})`;
    const inserts = s.operations.includes("insert");
    for (const row of r.rows) {
      const [tag, name, kind, triggers, sequences, rules] = row;
      if (tag === "f") return `it calls ${name ?? "?"}(), a volatile function: its effects (sequences, messages, other systems) are not undone by a rollback`;
      if (tag !== "r") continue;
      if (kind === "?") return `${name ?? "?"} does not exist (or is not visible) on the target`;
      if (kind !== "r" && kind !== "p") return `${name ?? "?"} is not a plain table (relkind ${kind ?? "?"}): writing to it may reach outside the transaction`;
      if (triggers === "true") return `${name ?? "?"} has triggers, which may have effects outside the transaction`;
      if (rules === "true") return `${name ?? "?"} has rewrite rules, which may do other things than the statement says`;
      if (inserts && sequences === "true") return `inserting into ${name ?? "?"} draws values from a sequence, which a rollback does not give back`;
    }
    return undefined;
  }

  /** One statement through Parse/Bind/Describe/Execute/Sync on the side session (the session stays in sync on an error). */
  async #step(session: UpstreamSession, sql: string, params?: Params): Promise<StepResult> {
    let fields: RowDescriptionField[] = [];
    const rows: (string | null)[][] = [];
    let error: { code: string } | undefined;
    const messages = Buffer.concat([...this.#statementMessages(sql, params), encodeSync()]);
    await sideExchange(session, messages, PREVIEW_STATEMENT_TIMEOUT_MS + 5_000, (f) => {
      if (f.type === BackendType.RowDescription) fields = decodeRowDescription(f.body);
      else if (f.type === BackendType.DataRow) rows.push(decodeDataRow(f.body).map((v) => (v === null ? null : v.toString("utf8"))));
      else if (f.type === BackendType.ErrorResponse) error = { code: decodeErrorOrNotice(f.body).code };
      else if (f.type === BackendType.CommandComplete) decodeCommandComplete(f.body);
    });
    return error === undefined ? { fields, rows } : { fields, rows, error };
  }

  /** Run `work` on the side connection (SideSession); a refusal by the target keeps it. */
  #run<T>(work: (session: UpstreamSession) => Promise<T>): Promise<T> {
    return this.#side.run(work, true);
  }

  close(): Promise<void> {
    return this.#side.close();
  }
}
