/**
 * Previews and cost estimates on a MySQL/MariaDB target (issue 21; core/preview.ts is the shared
 * logic: drift, tolerance, maxAffectedRows, description).
 *
 * A preview runs a held write inside `START TRANSACTION … ROLLBACK` on a gateway-owned side
 * session of the same account and database (side.ts), under `max_statement_time` and
 * `innodb_lock_wait_timeout`. What it reports:
 * - rows changed: the rows `… RETURNING *` gives back (DELETE, INSERT, REPLACE: MariaDB 10.5+),
 *   else the OK packet's affected rows (UPDATE: rows actually changed, as MariaDB counts them);
 * - a few affected rows, masked like any result: deleted rows as they were (before), inserted
 *   rows as they would be (after); MariaDB has no UPDATE … RETURNING, so an UPDATE has none;
 * - the plan: `EXPLAIN FORMAT=JSON`, one line per entry.
 * A held prepared statement's execution runs with its own values (PREPARE … EXECUTE USING on
 * the side session, the values as hex literals: nothing in them is read as SQL).
 *
 * A statement is not run when a rollback would not undo it: anything but one INSERT / REPLACE /
 * UPDATE / DELETE; a call of a stored function or of a builtin with effects outside the
 * transaction (sequences, locks, SLEEP, files); a table that is not an InnoDB base table
 * (MyISAM, Aria, MEMORY are not transactional; views); a table with triggers; an INSERT into a
 * table with an AUTO_INCREMENT column (a rollback does not give the values back).
 *
 * Estimates: `EXPLAIN FORMAT=JSON` in a read-only transaction, cached per text for a minute. A
 * statement prepared with `?` is estimated at each execution with that execution's values
 * (PREPARE of the EXPLAIN, EXECUTE USING the values as literals), cached per SHA-256 of text and
 * values (never the values themselves): the plan may differ per value.
 * MariaDB 10.x gives rows per table and no cost; MariaDB 11 adds `query_block.cost`, MySQL 8
 * `query_block.cost_info.query_cost`. What is absent is absent: a cost rule then refuses.
 */
import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { MysqlConnection } from "../../core/connection.js";
import type { MaskRule } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import type { CostEstimate, PreviewStatement, StatementPreview } from "../../core/preview.js";
import { clipText, maskSampleRows } from "../../masking/sample.js";
import type { RuleMasker } from "../../masking/index.js";
import { DEFAULT_LEX_MODE, lexMysql } from "../../policy/mysql/index.js";
import { MysqlSideSession, type SideResult } from "./side.js";
import type { TargetOptions } from "./upstream.js";
import { TYPE, binaryValueText, isBinaryStringType, type BinaryValue } from "./wire/protocol.js";

export const MYSQL_PREVIEW_STATEMENT_TIMEOUT_S = 5;
export const MYSQL_PREVIEW_LOCK_TIMEOUT_S = 2;
export const MYSQL_PREVIEW_SAMPLE_ROWS = 5;
const MAX_PLAN_LINES = 40;
const MAX_LINE_CHARS = 300;
const ESTIMATE_TTL_MS = 60_000;
const MAX_ESTIMATES = 1_000;
/** Estimates with values: per value combination, so far fewer repeat; a small map. */
const MAX_VALUE_ESTIMATES = 256;
const MAX_EXPLAIN_JSON_CHARS = 1_048_576;
const MAX_PLAN_DEPTH = 64;
const PREVIEWABLE_OPERATIONS: ReadonlySet<string> = new Set(["insert", "replace", "update", "delete", "select"]);
/** Builtins whose effects a rollback does not undo (or that stall the side session). */
const UNSAFE_BUILTINS: ReadonlySet<string> = new Set([
  "nextval", "setval", "lastval", "get_lock", "release_lock", "release_all_locks", "sleep", "benchmark",
  "load_file", "master_pos_wait", "master_gtid_wait", "sys_exec", "sys_eval", "last_insert_id",
]);
const NUMERIC_TYPES: ReadonlySet<number> = new Set([TYPE.TINY, TYPE.SHORT, TYPE.LONG, TYPE.LONGLONG, TYPE.INT24, TYPE.FLOAT, TYPE.DOUBLE, TYPE.DECIMAL, TYPE.NEWDECIMAL, TYPE.YEAR]);

/** The cache key of an estimate with values: a SHA-256 of text and literals, so no value is kept. */
export function valuesKey(sql: string, literals: readonly string[]): string {
  const h = createHash("sha256");
  h.update(sql);
  for (const l of literals) {
    h.update(`\u0000${l.length}:`);
    h.update(l);
  }
  return h.digest("base64");
}

/** A string as an SQL literal nothing in it can escape: utf8mb4 hex. */
export function hexLiteral(s: string): string {
  return `_utf8mb4 X'${Buffer.from(s, "utf8").toString("hex")}'`;
}

/** A bound value (its text, as the binary protocol carried it) as an SQL literal for a preview. */
export function paramLiteral(text: string | null, type: number): string {
  if (text === null) return "NULL";
  if (NUMERIC_TYPES.has(type) && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(text)) return text;
  return hexLiteral(text);
}

/**
 * One bound value of a COM_STMT_EXECUTE as an SQL literal for a preview or an estimate: numbers
 * as numbers, strings and blobs from their bytes as sent (utf8mb4 when they are UTF-8, else a
 * binary string: a blob's bytes are not decoded and re-encoded), dates and times as their text.
 */
export function boundLiteral(payload: Buffer, type: number, flags: number, v: BinaryValue | null): string {
  if (v === null) return "NULL";
  if (!NUMERIC_TYPES.has(type) && isBinaryStringType(type)) {
    const b = payload.subarray(v.start, v.end);
    return `${isUtf8(b) ? "_utf8mb4" : "_binary"} X'${b.toString("hex")}'`;
  }
  return paramLiteral(binaryValueText(payload, type, flags, v), type);
}

/**
 * Why the plan of this text with these values could not be read safely, if so. MariaDB prints
 * the statement's conditions, literals and values included, into EXPLAIN FORMAT=JSON's strings
 * (`attached_condition`) without JSON escaping: a `"` or `\` there (in the text, or in a value)
 * could end the string early and add keys (a second `"rows"` wins in JSON.parse) or whole plan
 * nodes, so the estimate would be the statement's author's. Such input is refused (fail closed)
 * rather than read.
 */
export function unreadablePlanInput(sql: string, literals: readonly string[]): string | undefined {
  if (/["\\]/.test(sql)) return "its text has a double quote or backslash, which the target prints unescaped into its plan (EXPLAIN FORMAT=JSON), so the plan cannot be read safely";
  for (const l of literals) {
    // A value that is not UTF-8 (boundLiteral gives those as binary strings) is printed with
    // backslash escapes JSON does not have: the plan would not parse.
    if (l.startsWith("_binary ")) return "a value is not UTF-8 text, which the target prints into its plan (EXPLAIN FORMAT=JSON) in a form JSON cannot read";
    const hex = /^_utf8mb4 X'([0-9a-f]*)'$/.exec(l)?.[1];
    if (hex === undefined) continue;
    const b = Buffer.from(hex, "hex");
    if (b.includes(0x22) || b.includes(0x5c)) return "a value has a double quote or backslash, which the target prints unescaped into its plan (EXPLAIN FORMAT=JSON), so the plan cannot be read safely";
  }
  return undefined;
}

function num(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v)) return Number(v);
  return undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Rows a `table` node yields: rows × filtered%, or undefined when it gives no rows. */
function tableRows(t: Record<string, unknown>): number | undefined {
  const rows = num(t["rows"]);
  if (rows === undefined) return undefined;
  const filtered = num(t["filtered"]) ?? 100;
  return (rows * filtered) / 100;
}

/**
 * Rows a plan node yields: a `table` its rows, a `nested_loop` the product of its members', a
 * UNION the sum of its branches'; wrappers (filesort, temporary_table, block-nl-join,
 * read_sorted_file, duplicates_removal, …) what they wrap. Undefined when no member gives rows.
 */
function nodeRows(node: Record<string, unknown>, depth: number): number | undefined {
  if (depth > MAX_PLAN_DEPTH) throw new GatewayError("GW_LIMIT", "the plan is too deeply nested to read");
  const table = obj(node["table"]);
  if (table !== undefined) return tableRows(table);
  const loop = node["nested_loop"];
  if (Array.isArray(loop)) {
    let product: number | undefined;
    for (const m of loop) {
      const o = obj(m);
      const r = o === undefined ? undefined : nodeRows(o, depth + 1);
      if (r === undefined) return undefined;
      product = (product ?? 1) * r;
    }
    return product;
  }
  const union = obj(node["union_result"]);
  const specs = union?.["query_specifications"];
  if (Array.isArray(specs)) {
    let sum = 0;
    for (const s of specs) {
      const block = obj(obj(s)?.["query_block"]);
      const r = block === undefined ? undefined : nodeRows(block, depth + 1);
      if (r === undefined) return undefined;
      sum += r;
    }
    return sum;
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "subqueries" || k === "attached_subqueries" || k === "expression_cache") continue;
    const o = obj(v);
    if (o === undefined) continue;
    const r = nodeRows(o, depth + 1);
    if (r !== undefined) return r;
  }
  return undefined;
}

/**
 * The estimate of `EXPLAIN FORMAT=JSON` (MariaDB or MySQL): rows as the top block's tables
 * multiply out, and the cost when the target gives one. Throws when the plan has no row estimate
 * (a rule on it then refuses: fail closed).
 */
export function estimateFromMysqlExplain(json: string): CostEstimate {
  if (json.length > MAX_EXPLAIN_JSON_CHARS) throw new GatewayError("GW_LIMIT", "the plan is too large to read");
  let doc: unknown;
  try {
    // Raw control characters (a value's newline printed into a condition) are not JSON; as
    // spaces they change no structure.
    // eslint-disable-next-line no-control-regex -- control characters are what is replaced
    doc = JSON.parse(json.replace(/[\u0000-\u001f]/g, " "));
  } catch (e) {
    throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target's plan could not be read", { cause: e });
  }
  const block = obj(obj(doc)?.["query_block"]);
  if (block === undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target's plan has no query_block");
  const rows = nodeRows(block, 0);
  if (rows === undefined) throw new GatewayError("GW_POLICY_DENIED", "the target's plan gives no row estimate for it");
  // MariaDB 11: query_block.cost; MySQL 8: query_block.cost_info.query_cost (a string).
  const cost = num(block["cost"]) ?? num(obj(block["cost_info"])?.["query_cost"]);
  return cost === undefined ? { rows } : { rows, cost };
}

/** `EXPLAIN FORMAT=JSON`'s document as plan lines (capped). */
function planLines(json: string): string[] {
  let text = json;
  try {
    text = JSON.stringify(JSON.parse(json), null, 1);
  } catch {
    // kept as the target sent it
  }
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(0, MAX_PLAN_LINES)
    .map((l) => clipText(l, MAX_LINE_CHARS));
}

export class MysqlPreviewer {
  readonly #conn: MysqlConnection;
  readonly #log: Logger;
  readonly #maskerFor: (rule: MaskRule) => RuleMasker;
  readonly #side: MysqlSideSession;
  readonly #estimates = new Map<string, { readonly e: CostEstimate; readonly at: number }>();
  readonly #valueEstimates = new Map<string, { readonly e: CostEstimate; readonly at: number }>();

  constructor(conn: MysqlConnection, o: TargetOptions, logger: Logger, maskerFor: (rule: MaskRule) => RuleMasker) {
    this.#conn = conn;
    this.#log = logger;
    this.#maskerFor = maskerFor;
    this.#side = new MysqlSideSession(conn, o, "airlock-preview");
  }

  /**
   * Run a held write in a rolled-back transaction and report what it did. `literals`: the SQL
   * literals of a prepared statement's values, one per `?`. Never rejects.
   */
  async preview(stmt: PreviewStatement, literals?: readonly string[]): Promise<StatementPreview> {
    const refusal = this.#precheck(stmt);
    if (refusal !== undefined) return { status: "unpreviewable", reason: refusal };
    try {
      return await this.#side.run((q) => this.#previewOn(q, stmt, literals));
    } catch (e) {
      this.#log.warn({ err: e, connection: this.#conn.name }, "preview failed");
      return { status: "failed", reason: e instanceof GatewayError ? e.message : "the preview could not be run" };
    }
  }

  /**
   * The planner's estimate of one statement. `literals`: one execution's values (a
   * COM_STMT_EXECUTE of a statement prepared with `?`), as SQL literals (paramLiteral), one per
   * `?`: EXPLAIN is prepared on the side session and executed USING them, so the planner plans
   * with those values as constants and nothing in a value is read as SQL. Without values a `?`
   * makes EXPLAIN fail. Rejects when it cannot be had.
   */
  async estimate(sql: string, literals?: readonly string[]): Promise<CostEstimate> {
    const withValues = literals !== undefined && literals.length > 0;
    const unsafe = unreadablePlanInput(sql, literals ?? []);
    if (unsafe !== undefined) throw new GatewayError("GW_POLICY_DENIED", unsafe);
    const [cache, key, max] = withValues ? [this.#valueEstimates, valuesKey(sql, literals), MAX_VALUE_ESTIMATES] : [this.#estimates, sql, MAX_ESTIMATES];
    const hit = cache.get(key);
    if (hit !== undefined && Date.now() - hit.at <= ESTIMATE_TTL_MS) return hit.e;
    const e = await this.#side.run(async (q) => {
      await this.#limits(q);
      const begun = await q("START TRANSACTION READ ONLY");
      if (begun.error !== undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `EXPLAIN could not start (error ${begun.error.code})`);
      const body = sql.trim().replace(/[\s;]+$/u, "");
      // A throw here leaves the transaction open: MysqlSideSession.run drops the side session.
      const r = await this.#exec(q, `EXPLAIN FORMAT=JSON ${body}`, withValues ? literals : undefined, 1);
      const done = await q("ROLLBACK");
      if (done.error !== undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the side session's read-only transaction did not end");
      if (r.error !== undefined) {
        const why =
          !withValues && r.error.code === 1064 && sql.includes("?")
            ? "its parameters have no values, so the planner cannot estimate it before it runs"
            : withValues && r.error.code === 1210
              ? `EXPLAIN with its values failed with error ${r.error.code} (SQLSTATE ${r.error.sqlstate}): the values do not fit its parameters`
              : `EXPLAIN failed with error ${r.error.code} (SQLSTATE ${r.error.sqlstate})`;
        throw new GatewayError("GW_POLICY_DENIED", why);
      }
      return estimateFromMysqlExplain(r.rows.map((row) => row[0] ?? "").join("\n"));
    });
    if (cache.size >= max) cache.clear();
    cache.set(key, { e, at: Date.now() });
    return e;
  }

  #precheck(stmt: PreviewStatement): string | undefined {
    const s = stmt.settings;
    if (s.statements !== 1) return "it holds several statements; a preview runs exactly one";
    const other = s.operations.filter((op) => !PREVIEWABLE_OPERATIONS.has(op));
    if (other.length > 0) return `${other.join(", ")} cannot be previewed safely (only one INSERT, REPLACE, UPDATE or DELETE is run in a rolled-back transaction; DDL commits on its own in MySQL)`;
    if (!s.operations.some((op) => op === "insert" || op === "update" || op === "delete")) return "it writes nothing to preview";
    const unsafe = s.functions.find((f) => UNSAFE_BUILTINS.has(f.toLowerCase()));
    if (unsafe !== undefined) return `it calls ${unsafe}(), whose effects (sequences, locks, files, waits) a rollback does not undo`;
    const lex = lexMysql(stmt.sql, DEFAULT_LEX_MODE);
    if (!lex.ok || lex.skeleton.replace(/[\s;]+$/u, "").includes(";")) return "it is not one statement the gateway can read";
    return undefined;
  }

  async #limits(q: (sql: string, keep?: number) => Promise<SideResult>): Promise<void> {
    const r = await q(`SET SESSION max_statement_time = ${MYSQL_PREVIEW_STATEMENT_TIMEOUT_S}, SESSION innodb_lock_wait_timeout = ${MYSQL_PREVIEW_LOCK_TIMEOUT_S}`);
    if (r.error !== undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the preview's time limits were refused (error ${r.error.code})`);
  }

  async #previewOn(q: (sql: string, keep?: number) => Promise<SideResult>, stmt: PreviewStatement, literals: readonly string[] | undefined): Promise<StatementPreview> {
    await this.#limits(q);
    const unsafe = await this.#unsafe(q, stmt);
    if (!("cascades" in unsafe)) return { status: "unpreviewable", reason: unsafe.reason };
    const begun = await q("START TRANSACTION READ WRITE");
    if (begun.error !== undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the preview transaction could not start (error ${begun.error.code})`);
    let result: StatementPreview | undefined;
    let failure: unknown;
    try {
      result = await this.#steps(q, stmt, literals, unsafe.cascades);
    } catch (e) {
      failure = e ?? new Error("preview step failed");
    }
    // Always undone. A ROLLBACK the target refuses leaves the side session in doubt: dropped
    // (MysqlSideSession.run drops it on a throw).
    const done = await q("ROLLBACK");
    if (done.error !== undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the preview transaction could not be rolled back");
    if (failure !== undefined || result === undefined) throw failure;
    return result;
  }

  /** One statement, as text or (with values) through PREPARE … EXECUTE USING. */
  async #exec(q: (sql: string, keep?: number) => Promise<SideResult>, sql: string, literals: readonly string[] | undefined, keep: number): Promise<SideResult> {
    if (literals === undefined || literals.length === 0) return q(sql, keep);
    const prepared = await q(`PREPARE airlock_preview FROM ${hexLiteral(sql)}`);
    if (prepared.error !== undefined) return prepared;
    try {
      const vars = literals.map((_, i) => `@airlock_p${i}`);
      const set = await q(`SET ${literals.map((l, i) => `${vars[i] ?? ""} = ${l}`).join(", ")}`);
      if (set.error !== undefined) return set;
      return await q(`EXECUTE airlock_preview USING ${vars.join(", ")}`, keep);
    } finally {
      await q("DEALLOCATE PREPARE airlock_preview");
    }
  }

  async #steps(q: (sql: string, keep?: number) => Promise<SideResult>, stmt: PreviewStatement, literals: readonly string[] | undefined, cascades: readonly string[]): Promise<StatementPreview> {
    const body = stmt.sql.trim().replace(/[\s;]+$/u, "");
    const explain = await this.#exec(q, `EXPLAIN FORMAT=JSON ${body}`, literals, 1);
    if (explain.error !== undefined) return { status: "failed", reason: `the target refused the statement (error ${explain.error.code}, SQLSTATE ${explain.error.sqlstate})` };
    const plan = planLines(explain.rows.map((r) => r[0] ?? "").join("\n"));
    const ops = stmt.settings.operations;
    const update = ops.includes("update") && !ops.includes("insert");
    const lex = lexMysql(body, DEFAULT_LEX_MODE);
    const returns = !update && lex.ok && !/\breturning\b/i.test(lex.skeleton);
    let ran = returns ? await this.#exec(q, `${body}\nRETURNING *`, literals, MYSQL_PREVIEW_SAMPLE_ROWS + 1) : undefined;
    // A multi-table DELETE has no RETURNING (a syntax error changes nothing): run it as it is.
    if (ran?.error?.code === 1064) ran = undefined;
    ran ??= await this.#exec(q, body, literals, MYSQL_PREVIEW_SAMPLE_ROWS + 1);
    if (ran.error !== undefined) {
      const why = ran.error.code === 1969 || ran.error.code === 3024 ? ": it ran longer than the preview's time limit" : ran.error.code === 1205 ? ": rows it needs are locked by another session" : "";
      return { status: "failed", reason: `the target refused the statement (error ${ran.error.code}, SQLSTATE ${ran.error.sqlstate}${why})` };
    }
    const affectedRows = ran.columns.length > 0 ? ran.rowCount : ran.affectedRows;
    const relation = stmt.settings.writes.map((w) => `${w.schema ?? this.#conn.database}.${w.name}`).join(", ") || this.#conn.database;
    const tables = [
      {
        relation,
        inserted: ops.includes("insert") ? affectedRows : 0,
        updated: update ? affectedRows : 0,
        deleted: ops.includes("delete") && !ops.includes("insert") ? affectedRows : 0,
      },
    ].filter((t) => t.inserted + t.updated + t.deleted > 0);
    const notes = [
      ...(update ? ["(MariaDB has no UPDATE … RETURNING: no sample rows; the count is of rows actually changed)"] : []),
      ...(cascades.length > 0 ? [`(foreign keys of ${cascades.join(", ")} cascade from it: cascaded rows are not counted)`] : []),
    ];
    if (ran.columns.length === 0) return { status: "previewed", affectedRows, tables, plan: [...notes, ...plan] };
    return {
      status: "previewed",
      affectedRows,
      tables,
      sample: {
        image: ops.includes("delete") && !ops.includes("insert") ? "before" : "after",
        columns: ran.columns,
        rows: maskSampleRows(ran.columns, ran.rows.slice(0, MYSQL_PREVIEW_SAMPLE_ROWS), stmt.masks, this.#maskerFor),
        truncated: ran.rowCount > MYSQL_PREVIEW_SAMPLE_ROWS,
      },
      plan: [...notes, ...plan],
    };
  }

  /** Why running the statement could have effects a rollback does not undo (or what cascades from it). */
  async #unsafe(q: (sql: string, keep?: number) => Promise<SideResult>, stmt: PreviewStatement): Promise<{ readonly reason: string } | { readonly cascades: readonly string[] }> {
    const s = stmt.settings;
    const fns = [...new Set(s.functions.map((f) => f.slice(f.lastIndexOf(".") + 1).toLowerCase()))];
    if (fns.length > 0) {
      const r = await q(`SELECT routine_name FROM information_schema.routines WHERE routine_type = 'FUNCTION' AND LOWER(routine_name) IN (${fns.map(hexLiteral).join(", ")}) LIMIT 1`);
      if (r.error !== undefined) return { reason: `what it calls could not be checked (error ${r.error.code})` };
      const f = r.rows[0]?.[0];
      if (f !== undefined) return { reason: `it calls ${f ?? "?"}(), a stored function: its effects (non-transactional tables, other systems) are not undone by a rollback` };
    }
    if (s.writes.length === 0) return { reason: "what it writes is not known to the gateway" };
    const pairs = s.writes.map((w) => `(${hexLiteral(w.schema ?? this.#conn.database)}, ${hexLiteral(w.name)})`).join(", ");
    const r = await q(
      `SELECT t.table_schema, t.table_name, IFNULL(t.engine, ''), t.table_type,
              (SELECT COUNT(*) FROM information_schema.triggers g WHERE g.event_object_schema = t.table_schema AND g.event_object_table = t.table_name),
              (SELECT COUNT(*) FROM information_schema.columns c WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.extra LIKE '%auto_increment%'),
              (SELECT GROUP_CONCAT(DISTINCT r.table_name) FROM information_schema.referential_constraints r
                WHERE r.unique_constraint_schema = t.table_schema AND r.referenced_table_name = t.table_name
                  AND (r.delete_rule IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR r.update_rule IN ('CASCADE', 'SET NULL', 'SET DEFAULT')))
         FROM information_schema.tables t WHERE (t.table_schema, t.table_name) IN (${pairs})`,
      100,
    );
    if (r.error !== undefined) return { reason: `what it writes could not be checked (error ${r.error.code})` };
    const inserts = s.operations.includes("insert");
    const cascades: string[] = [];
    for (const w of s.writes) {
      const schema = w.schema ?? this.#conn.database;
      const row = r.rows.find((x) => x[0] === schema && x[1] === w.name);
      const name = `${schema}.${w.name}`;
      if (row === undefined) return { reason: `${name} does not exist (or is not visible) on the target` };
      const [, , engine, type, triggers, autoinc, cascading] = row;
      if (type !== "BASE TABLE") return { reason: `${name} is not a base table (${type ?? "?"}): writing to it may reach outside the transaction` };
      if ((engine ?? "").toLowerCase() !== "innodb") return { reason: `${name} uses the ${engine ?? "?"} engine, which is not transactional: a rollback would not undo the write` };
      if (Number(triggers ?? 0) > 0) return { reason: `${name} has triggers, which may have effects outside the transaction` };
      if (inserts && Number(autoinc ?? 0) > 0) return { reason: `inserting into ${name} draws AUTO_INCREMENT values, which a rollback does not give back` };
      if (cascading !== null && cascading !== undefined && cascading !== "") cascades.push(...cascading.split(",").map((t) => `${schema}.${t}`));
    }
    return { cascades };
  }

  close(): Promise<void> {
    return this.#side.close();
  }
}
