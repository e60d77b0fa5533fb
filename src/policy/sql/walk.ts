/**
 * The AST walker: turns one parsed statement into StatementFacts.
 *
 * Design: a generic recursive walk over every node of the tree (so that a node type we did not
 * think of is still searched for relations, columns, functions and nested statements), with
 * dedicated handlers only where the meaning depends on the position of a node: query levels
 * and their FROM-clause scopes (for column resolution), DML targets (written, not read), WITH
 * clauses (CTE names shadow relations, with PostgreSQL's visibility rules), and statements whose
 * facts come from non-node fields (DROP object lists, RENAME, COPY, SET, …).
 *
 * Conservative by construction: when a column reference could belong to several relations it
 * is reported for each; when a statement can run code or SQL the walker can't see, it says so
 * in `unknownEffects`.
 *
 * Bounds: depth and node count are capped (statement too complex → GW_LIMIT), so a hostile
 * statement can't exhaust the stack or the CPU.
 */
import { GatewayError } from "../../core/errors.js";
import {
  asNode,
  bool,
  constString,
  isIntegerConst,
  isObj,
  list,
  listItems,
  nodeOf,
  obj,
  splitIdentifiers,
  str,
  stringList,
  stringValue,
  truncateIdentifier,
  type Obj,
} from "./ast.js";
import type { AttributeRef, ColumnAccess, QualifiedName, StatementFacts } from "./facts.js";
import { parseEmbeddedSync } from "./limits.js";
import { objectKind, RELATION_OBJECT_TYPES, staticTags } from "./operations.js";

/** Nesting depth of the walk (objects and lists), beyond which a statement is refused. */
export const MAX_WALK_DEPTH = 1_000;
/** Objects and lists visited per top-level statement (including SQL text parsed from
 * constant arguments), beyond which a statement is refused. */
export const MAX_WALK_NODES = 2_000_000;

/** Raised inside the walk; classify() turns it into `ok: false`. */
export function tooComplex(): GatewayError {
  return new GatewayError("GW_LIMIT", "statement too complex");
}

// ---------------------------------------------------------------------------------------------
// Collected facts

function relKey(q: QualifiedName): string {
  return q.schema === undefined ? "\u0000" + q.name : q.schema + "\u0000" + q.name;
}

function qn(schema: string | undefined, name: string): QualifiedName {
  return schema === undefined ? { name } : { schema, name };
}

class Collector {
  readonly ops = new Set<string>();
  readonly read = new Map<string, QualifiedName>();
  readonly written = new Map<string, QualifiedName>();
  readonly columns = new Map<string, ColumnAccess>();
  readonly functions = new Set<string>();
  /** `t.x` references: a column of t, or the call x(t) (see StatementFacts.attributeRefs). */
  readonly attributeRefs = new Map<string, AttributeRef>();
  noWhere = false;
  unknownEffects: string | undefined;
  prepares: string | undefined;
  executes: string | undefined;
  setsSearchPath: readonly string[] | "default" | undefined;
  readonly settings = new Set<string>();
  /** Some fact was derived from a literal's value: the facts are not a function of the
   * statement's shape, so the classification must not be cached by shape. */
  literalDependent = false;

  op(tag: string): void {
    this.ops.add(tag);
    const i = tag.indexOf("_");
    if (i > 0) {
      const head = tag.slice(0, i);
      if (head === "create" || head === "alter" || head === "drop") this.ops.add(head);
    }
  }

  readRel(q: QualifiedName): void {
    this.read.set(relKey(q), q);
  }

  writeRel(q: QualifiedName): void {
    this.written.set(relKey(q), q);
  }

  column(relation: QualifiedName | undefined, column: string, access: "read" | "write"): void {
    const key = (relation === undefined ? "\u0001" : relKey(relation)) + "\u0002" + column + "\u0002" + access;
    if (this.columns.has(key)) return;
    this.columns.set(key, relation === undefined ? { column, access } : { relation, column, access });
    if (relation !== undefined) {
      if (access === "read") this.readRel(relation);
      else this.writeRel(relation);
    }
  }

  attributeRef(relation: QualifiedName, name: string): void {
    const key = relKey(relation) + "\u0002" + name;
    if (!this.attributeRefs.has(key)) this.attributeRefs.set(key, { relation, name });
  }

  unknown(reason: string): void {
    this.unknownEffects ??= reason;
  }

  /** Merges the facts of a nested statement. `planOnly`: it is only planned (plain EXPLAIN),
   * never executed: its relations and columns count as read, its operations don't count. */
  merge(o: Collector, planOnly: boolean): void {
    if (!planOnly) for (const t of o.ops) this.ops.add(t);
    for (const [k, v] of o.read) this.read.set(k, v);
    for (const [k, v] of o.written) (planOnly ? this.read : this.written).set(k, v);
    for (const c of o.columns.values()) this.column(c.relation, c.column, planOnly ? "read" : c.access);
    for (const f of o.functions) this.functions.add(f);
    for (const [k, v] of o.attributeRefs) this.attributeRefs.set(k, v);
    if (!planOnly && o.noWhere) this.noWhere = true;
    if (o.unknownEffects !== undefined) this.unknown(o.unknownEffects);
    this.prepares ??= o.prepares;
    this.executes ??= o.executes;
    if (!planOnly && o.setsSearchPath !== undefined) this.setsSearchPath = o.setsSearchPath;
    if (!planOnly) for (const s of o.settings) this.settings.add(s);
    if (o.literalDependent) this.literalDependent = true;
  }

  toFacts(): StatementFacts {
    const sortedValues = <T>(m: ReadonlyMap<string, T>): T[] =>
      [...m.keys()].sort(compareStrings).map((k) => m.get(k) as T);
    const facts: {
      operations: string[];
      relationsRead: QualifiedName[];
      relationsWritten: QualifiedName[];
      columns: ColumnAccess[];
      functions: string[];
      noWhere: boolean;
      unknownEffects?: string;
      prepares?: string;
      executes?: string;
      setsSearchPath?: readonly string[] | "default";
      settings?: readonly string[];
      attributeRefs?: readonly AttributeRef[];
    } = {
      operations: [...this.ops].sort(compareStrings),
      relationsRead: sortedValues(this.read),
      relationsWritten: sortedValues(this.written),
      columns: sortedValues(this.columns),
      functions: [...this.functions].sort(compareStrings),
      noWhere: this.noWhere,
    };
    if (this.unknownEffects !== undefined) facts.unknownEffects = this.unknownEffects;
    if (this.prepares !== undefined) facts.prepares = this.prepares;
    if (this.executes !== undefined) facts.executes = this.executes;
    if (this.setsSearchPath !== undefined) facts.setsSearchPath = this.setsSearchPath;
    if (this.settings.size > 0) facts.settings = [...this.settings].sort(compareStrings);
    if (this.attributeRefs.size > 0) facts.attributeRefs = sortedValues(this.attributeRefs);
    return facts;
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Scopes: one per query level, holding its FROM-clause items (for column resolution) and the
// CTE names its WITH clause makes visible.

interface Entry {
  /** The name a column reference qualifies with: the alias, else the relation (or CTE) name. */
  readonly refname: string | undefined;
  /** An unaliased relation: `schema.rel.col` may name it (even when FROM wrote no schema). */
  readonly qualifiable: boolean;
  /** The schema written for a qualifiable relation, if any. */
  readonly schema: string | undefined;
  /** The base relations a column of this item may come from: [] for subqueries, CTEs and
   * functions, whose own facts were collected when their query was walked. */
  readonly relations: readonly QualifiedName[];
  /** The item renames its columns (`users AS u(a, b, c)`, `(… JOIN …) AS j(x, y)`): a column
   * reached through it may be any column of its relations, so it is reported as `*`. */
  readonly renamed?: true;
}

class Scope {
  readonly entries: Entry[] = [];
  ctes: Set<string> | undefined;
  constructor(readonly parent: Scope | undefined) {}

  isCte(name: string): boolean {
    if (this.ctes?.has(name) === true) return true;
    return this.parent?.isCte(name) ?? false;
  }
}

function derived(refname: string | undefined, relations: readonly QualifiedName[], renamed = false): Entry {
  return renamed ? { refname, qualifiable: false, schema: undefined, relations, renamed: true } : { refname, qualifiable: false, schema: undefined, relations };
}

/** Whether an Alias node renames columns (`AS u(a, b, c)`). */
function renamesColumns(alias: Obj | undefined): boolean {
  return alias !== undefined && list(alias, "colnames").length > 0;
}

function self(r: QualifiedName, relations: readonly QualifiedName[]): Entry {
  return { refname: r.name, qualifiable: true, schema: r.schema, relations };
}

/** Finds the entries a qualifier names, innermost level first (PostgreSQL's rule). */
function findQualified(qual: readonly string[], scope: Scope): readonly Entry[] {
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    const found = s.entries.filter((e) => {
      if (qual.length === 1) return e.refname === qual[0];
      // schema.rel or catalog.schema.rel: only an unaliased relation can be named so. When
      // FROM named it without a schema we can't tell which schema it resolved to: match.
      const n = qual.length;
      return e.qualifiable && e.refname === qual[n - 1] && (e.schema === undefined || e.schema === qual[n - 2]);
    });
    if (found.length > 0) return found;
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Functions whose arguments change the facts

/** Functions that return their (row) argument's content, so that attribute notation `u.f`
 * reads the whole row (see Walker.rowAttribute; `*_out`/`*_send` are matched too). */
const ROW_READING_FUNCTIONS: ReadonlySet<string> = new Set([
  "row_to_json", "to_json", "to_jsonb", "json_build_array", "jsonb_build_array", "json_build_object", "jsonb_build_object",
  "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "array_agg", "string_agg", "xmlagg", "concat", "concat_ws",
  "format", "quote_literal", "quote_nullable", "quote_ident", "hstore", "hstore_to_json", "hstore_to_jsonb", "to_tsvector",
  "textin", "text", "mode", "min", "max", "first_value", "last_value", "lag", "lead", "nth_value", "array_to_json",
  "array_to_string", "json_strip_nulls", "jsonb_strip_nulls", "jsonb_pretty", "row_to_jsonb", "coalesce", "greatest", "least",
]);

/** Sequence functions: the argument names a sequence (text or regclass). */
const SEQUENCE_FUNCTIONS: Readonly<Record<string, "read" | "write">> = {
  nextval: "write",
  setval: "write",
  currval: "read",
};

/** Functions that read a whole table named by their first argument. */
const TABLE_READING_FUNCTIONS: ReadonlySet<string> = new Set([
  "table_to_xml",
  "table_to_xmlschema",
  "table_to_xml_and_xmlschema",
  "connectby", // tablefunc
]);

/** Functions that read every table of the schema named by their first argument. */
const SCHEMA_READING_FUNCTIONS: ReadonlySet<string> = new Set([
  "schema_to_xml",
  "schema_to_xmlschema",
  "schema_to_xml_and_xmlschema",
]);

const DATABASE_READING_FUNCTIONS: ReadonlySet<string> = new Set([
  // Logical decoding returns the changed rows of every table.
  "pg_logical_slot_get_changes",
  "pg_logical_slot_peek_changes",
  "pg_logical_slot_get_binary_changes",
  "pg_logical_slot_peek_binary_changes",
  "database_to_xml",
  "database_to_xmlschema",
  "database_to_xml_and_xmlschema",
]);

/** Functions that execute SQL text given as an argument (argument indexes). A constant text is
 * parsed and its facts merged; anything else is an unknown effect. */
const SQL_TEXT_FUNCTIONS: Readonly<Record<string, readonly number[]>> = {
  query_to_xml: [0],
  query_to_xmlschema: [0],
  query_to_xml_and_xmlschema: [0],
  ts_stat: [0],
  ts_rewrite: [1], // only the two-argument form ts_rewrite(tsquery, text)
  crosstab: [0, 1], // tablefunc; crosstab(text, integer) has no second query
  crosstab2: [0],
  crosstab3: [0],
  crosstab4: [0],
};

/** Functions whose facts don't change with their arguments but that take object names or file
 * paths as text: statements calling them are not cached by shape (a policy may look at them). */
const LITERAL_SENSITIVE_FUNCTIONS: ReadonlySet<string> = new Set([
  "to_regclass",
  "to_regproc",
  "to_regprocedure",
  "to_regoper",
  "to_regoperator",
  "to_regtype",
  "to_regtypemod",
  "to_regnamespace",
  "to_regrole",
  "to_regcollation",
  "pg_read_file",
  "pg_read_binary_file",
  "pg_stat_file",
  "pg_ls_dir",
  "lo_import",
  "lo_export",
  "pg_file_write",
  "pg_file_rename",
  "pg_file_unlink",
  "current_setting",
]);

const REG_TYPES: ReadonlySet<string> = new Set([
  "regclass",
  "regproc",
  "regprocedure",
  "regoper",
  "regoperator",
  "regtype",
  "regnamespace",
  "regrole",
  "regconfig",
  "regdictionary",
  "regcollation",
]);

/** ALTER TABLE sub-commands whose `name` is a column. */
const COLUMN_SUBCOMMANDS: ReadonlySet<string> = new Set([
  "AT_ColumnDefault",
  "AT_CookedColumnDefault",
  "AT_DropNotNull",
  "AT_SetNotNull",
  "AT_SetExpression",
  "AT_DropExpression",
  "AT_SetStatistics",
  "AT_SetOptions",
  "AT_ResetOptions",
  "AT_SetStorage",
  "AT_SetCompression",
  "AT_DropColumn",
  "AT_AlterColumnType",
  "AT_AlterColumnGenericOptions",
  "AT_AddIdentity",
  "AT_SetIdentity",
  "AT_DropIdentity",
]);

/** ALTER TABLE sub-commands that switch off a safety mechanism: extra tags for policies. */
const DISABLING_SUBCOMMANDS: Readonly<Record<string, string>> = {
  AT_DisableTrig: "disable_trigger",
  AT_DisableTrigAll: "disable_trigger",
  AT_DisableTrigUser: "disable_trigger",
  AT_DisableRule: "disable_rule",
  AT_DisableRowSecurity: "disable_row_security",
  AT_NoForceRowSecurity: "disable_row_security",
};

const UNKNOWN = {
  do: "DO blocks run procedural code whose effects can't be known before it runs",
  program: "COPY … PROGRAM runs a shell command on the database server",
  load: "LOAD loads a shared library into the database server",
  cLanguage: "a C-language function loads a shared library into the database server",
  dblink: "dblink runs SQL over another database connection",
  background: "pg_background runs SQL in a background worker",
  cron: "pg_cron schedules SQL to run later",
  dynamicSql: "the statement runs SQL text that is not a constant",
  unparsableSql: "the statement runs SQL text that can't be parsed",
  dynamicTable: "the statement reads a table chosen at run time",
  database: "the statement reads every table in the database",
  dynamicSetting: "the statement changes a setting chosen at run time",
  searchPath: "the statement sets search_path to a value not known statically",
  settings: "writing to pg_settings changes session settings",
  scs: "turning standard_conforming_strings off would make the server read string literals differently from the gateway",
  encoding: "the gateway only judges UTF-8 traffic; changing client_encoding is refused",
  futureSettings: "the statement changes the search_path, role or parsing settings that later sessions start with",
  foreign: "a foreign server, user mapping or subscription lets later statements reach data through a connection the gateway can't check",
  unparsableBody: "the function body can't be parsed",
} as const;

/** Options of CREATE OPERATOR / AGGREGATE / TYPE / TEXT SEARCH … / FOREIGN DATA WRAPPER whose
 * value is a function the object will call (`CREATE OPERATOR ### (PROCEDURE = pg_read_file)`). */
const FUNCTION_OPTIONS: ReadonlySet<string> = new Set([
  "procedure", "function", "restrict", "join", "sfunc", "finalfunc", "combinefunc", "serialfunc", "deserialfunc",
  "msfunc", "minvfunc", "mfinalfunc", "input", "output", "receive", "send", "typmod_in", "typmod_out", "analyze",
  "subscript", "canonical", "subtype_diff", "handler", "validator", "inline", "start", "gettoken", "end", "lextypes",
  "headline", "init", "lexize",
]);

/** Type names (unqualified, as the parser leaves them) that are never a table's row type. The
 * SQL-standard names (int, varchar, …) come back as pg_catalog.*, which is skipped too. */
const BUILTIN_TYPE_NAMES: ReadonlySet<string> = new Set([
  "text", "name", "char", "bpchar", "varchar", "int2", "int4", "int8", "float4", "float8", "numeric", "bool", "date",
  "time", "timetz", "timestamp", "timestamptz", "interval", "json", "jsonb", "jsonpath", "xml", "bytea", "uuid", "oid",
  "inet", "cidr", "macaddr", "macaddr8", "money", "tsvector", "tsquery", "point", "line", "lseg", "box", "path",
  "polygon", "circle", "bit", "varbit", "record", "void", "trigger", "event_trigger", "cstring", "internal",
  "anyelement", "anyarray", "anynonarray", "anyenum", "anyrange", "anymultirange", "anycompatible",
  "anycompatiblearray", "anycompatiblenonarray", "anycompatiblerange", "anycompatiblemultirange", "refcursor",
  "regclass", "regproc", "regprocedure", "regoper", "regoperator", "regtype", "regnamespace", "regrole",
  "regconfig", "regdictionary", "regcollation", "int4range", "int8range", "numrange", "tsrange", "tstzrange",
  "daterange", "language_handler", "fdw_handler", "index_am_handler", "tsm_handler", "table_am_handler", "xid", "xid8",
  "cid", "tid", "pg_lsn", "txid_snapshot", "pg_snapshot", "hstore", "citext", "ltree", "vector", "geometry", "geography",
]);

/** The relation whose row type a TypeName may be (`users`, `public.users`, `users[]`). */
function rowTypeRelation(t: Obj | undefined): QualifiedName | undefined {
  if (t === undefined || bool(t, "pct_type")) return undefined;
  const names = stringList(list(t, "names"));
  if (names === undefined || names.length === 0 || names.length > 3) return undefined;
  const name = names[names.length - 1] ?? "";
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  if (schema === "pg_catalog" || (schema === undefined && BUILTIN_TYPE_NAMES.has(name))) return undefined;
  return qn(schema, name);
}

/** Catalogs holding column statistics: most common values and histograms are table data. */
const STATISTICS_RELATIONS: ReadonlySet<string> = new Set([
  "pg_stats", "pg_statistic", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic_ext_data",
]);

/** Settings that, changed for later sessions (ALTER ROLE / DATABASE / SYSTEM … SET), would make
 * the gateway read their statements differently from the server. */
const FUTURE_SESSION_SETTINGS: ReadonlySet<string> = new Set([
  "search_path", "role", "session_authorization", "standard_conforming_strings", "client_encoding",
]);

function isFalseOption(arg: unknown): boolean {
  // defGetBoolean (src/backend/commands/define.c): false is 0, FALSE/OFF (any case)
  const n = asNode(arg);
  if (n === undefined) return false;
  const [type, body] = n;
  if (type === "Integer") return (body.ival ?? 0) === 0;
  if (type === "Boolean") return body.boolval !== true;
  if (type === "String") {
    const s = (str(body, "sval") ?? "").toLowerCase();
    return s === "false" || s === "off";
  }
  return false;
}

function isOnValue(v: string): boolean {
  // parse_bool (src/backend/utils/adt/bool.c): unique prefixes of true/yes/on, and 1
  const s = v.trim().toLowerCase();
  if (s === "") return false;
  return "true".startsWith(s) || "yes".startsWith(s) || s === "on" || s === "1";
}

function isUtf8Name(v: string): boolean {
  const s = v.trim().toLowerCase().replace(/[-_]/g, "");
  return s === "utf8" || s === "unicode";
}

// ---------------------------------------------------------------------------------------------

export interface WalkResult {
  readonly facts: StatementFacts;
  readonly literalDependent: boolean;
}

/** Walks one statement (the `stmt` of a RawStmt). Throws GatewayError GW_LIMIT when too big. */
export function walkStatement(stmt: unknown, budget: { nodes: number }): WalkResult {
  const w = new Walker(budget);
  w.topLevel(stmt);
  return { facts: w.c.toFacts(), literalDependent: w.c.literalDependent };
}

interface Probe {
  readonly target: Entry;
  hit: boolean;
}

class Walker {
  c = new Collector();
  private depth = 0;
  private probe: Probe | undefined;

  constructor(private readonly budget: { nodes: number }) {}

  topLevel(stmt: unknown): void {
    const n = asNode(stmt);
    if (n === undefined) return;
    this.statement(n[0], n[1], new Scope(undefined), true);
    // Writing pg_settings is set_config in disguise.
    for (const r of this.c.written.values()) {
      if (r.name === "pg_settings" && (r.schema === undefined || r.schema === "pg_catalog")) {
        this.c.unknown(UNKNOWN.settings);
      }
    }
    // Statistics hold sample values of every analysed column: a read of any column, of any table.
    for (const r of [...this.c.read.values()]) {
      if (STATISTICS_RELATIONS.has(r.name) && (r.schema === undefined || r.schema === "pg_catalog")) {
        this.c.column(undefined, "*", "read");
      }
    }
  }

  private enter(): void {
    this.budget.nodes--;
    if (++this.depth > MAX_WALK_DEPTH || this.budget.nodes < 0) throw tooComplex();
  }

  // -------------------------------------------------------------------------------------------
  // Generic walk

  visit(v: unknown, scope: Scope): void {
    if (typeof v !== "object" || v === null) return;
    this.enter();
    try {
      if (Array.isArray(v)) {
        for (const item of v as readonly unknown[]) this.visit(item, scope);
        return;
      }
      const n = asNode(v);
      if (n !== undefined) {
        this.node(n[0], n[1], scope);
        return;
      }
      const o = v as Obj;
      // An inline struct. The only inline struct with `relname` is a RangeVar.
      if (typeof o.relname === "string") {
        this.rangeVarRead(o, scope);
        return;
      }
      // An inline ObjectWithArgs (CREATE CAST … WITH FUNCTION, CREATE TRANSFORM).
      if (Array.isArray(o.objname)) {
        this.node("ObjectWithArgs", o, scope);
        return;
      }
      for (const k in o) this.visit(o[k], scope);
    } finally {
      this.depth--;
    }
  }

  private visitFields(body: Obj, scope: Scope, skip: ReadonlySet<string>): void {
    for (const k in body) if (!skip.has(k)) this.visit(body[k], scope);
  }

  private node(type: string, body: Obj, scope: Scope): void {
    switch (type) {
      case "String":
      case "Integer":
      case "Float":
      case "Boolean":
      case "BitString":
      case "A_Const":
      case "A_Star":
      case "ParamRef":
      case "TypeName":
      case "RoleSpec":
      case "SQLValueFunction":
        return;
      case "ColumnRef":
        this.columnRef(body, scope);
        return;
      case "A_Indirection":
        this.indirection(body, scope);
        return;
      case "FuncCall":
        this.funcCall(body, scope);
        return;
      case "TypeCast":
        this.typeCast(body, scope);
        return;
      case "RangeVar":
        this.rangeVarRead(body, scope);
        return;
      case "CurrentOfExpr":
        if (this.probe !== undefined) this.probe.hit = true; // WHERE CURRENT OF: one row
        return;
      case "LockingClause":
        this.c.op("lock_rows");
        this.visitFields(body, scope, SKIP_LOCKED_RELS);
        return;
      case "IndexElem": {
        const name = str(body, "name");
        if (name !== undefined) this.unqualifiedColumn(name, scope, "read");
        this.visitFields(body, scope, SKIP_NONE);
        return;
      }
      case "RangeSubselect":
      case "RangeFunction":
      case "JoinExpr":
      case "RangeTableSample":
      case "RangeTableFunc":
      case "JsonTable":
        // Only FROM clauses hold these; walked through fromItem() there. Elsewhere: a scope
        // of their own.
        this.fromItem({ [type]: body }, new Scope(scope));
        return;
      case "WithClause":
        this.withClause(body, new Scope(scope));
        return;
      case "DefElem": {
        const name = str(body, "defname");
        if (name !== undefined && FUNCTION_OPTIONS.has(name)) {
          const tn = nodeOf(body.arg, "TypeName");
          const fn = tn === undefined ? stringList(listItems(body.arg) ?? []) : stringList(list(tn, "names"));
          if (fn !== undefined && fn.length > 0) this.c.functions.add(fn.join("."));
        }
        this.visitFields(body, scope, SKIP_NONE);
        return;
      }
      case "ObjectWithArgs": {
        // A function named by a DDL statement (CREATE CAST … WITH FUNCTION, CREATE TRANSFORM,
        // CREATE OPERATOR CLASS … FUNCTION, ALTER FUNCTION): reported as if called.
        const fn = stringList(list(body, "objname"));
        if (fn !== undefined && fn.length > 0) this.c.functions.add(fn.join("."));
        this.visitFields(body, scope, SKIP_NONE);
        return;
      }
      default:
        if (type.endsWith("Stmt")) {
          this.statement(type, body, scope, false);
          return;
        }
        this.visitFields(body, scope, SKIP_NONE);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Relations and columns

  private relation(rv: Obj): QualifiedName | undefined {
    const name = str(rv, "relname");
    if (name === undefined) return undefined;
    const schema = str(rv, "schemaname");
    // CREATE TEMP …: the relation lives in pg_temp, first in every search_path for relations,
    // where it shadows the permanent relation of the same name.
    if (schema === undefined && str(rv, "relpersistence") === "t") return qn("pg_temp", name);
    return qn(schema, name);
  }

  private rangeVarRead(rv: Obj, scope: Scope): void {
    const r = this.relation(rv);
    if (r === undefined) return;
    if (r.schema === undefined && scope.isCte(r.name)) return;
    this.c.readRel(r);
  }

  private entryFor(rv: Obj, r: QualifiedName, relations: readonly QualifiedName[]): Entry {
    const alias = obj(rv, "alias");
    const aliasName = alias === undefined ? undefined : str(alias, "aliasname");
    return aliasName !== undefined ? derived(aliasName, relations, renamesColumns(alias)) : self(r, relations);
  }

  private hitProbe(entries: readonly Entry[]): void {
    const p = this.probe;
    if (p !== undefined && entries.includes(p.target)) p.hit = true;
  }

  private columnOf(entries: readonly Entry[], column: string, access: "read" | "write"): void {
    this.hitProbe(entries);
    for (const e of entries) for (const r of e.relations) this.c.column(r, e.renamed === true ? "*" : column, access);
  }

  /** Entries an unqualified column may belong to: every item of every visible level. */
  private unqualifiedColumn(name: string, scope: Scope, access: "read" | "write"): void {
    let any = false;
    for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
      if (s.entries.length === 0) continue;
      this.hitProbe(s.entries);
      for (const e of s.entries) {
        for (const r of e.relations) {
          this.c.column(r, e.renamed === true ? "*" : name, access);
          any = true;
        }
      }
    }
    if (!any && !this.anyEntry(scope)) this.c.column(undefined, name, access);
  }

  private anyEntry(scope: Scope): boolean {
    for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) if (s.entries.length > 0) return true;
    return false;
  }

  private columnRef(body: Obj, scope: Scope): void {
    const fields = list(body, "fields");
    const names: string[] = [];
    let star = false;
    for (const f of fields) {
      const s = stringValue(f);
      if (s !== undefined) names.push(s);
      else if (nodeOf(f, "A_Star") !== undefined) star = true;
    }
    if (star) {
      if (names.length === 0) {
        // SELECT * / RETURNING *: every item of this level
        this.columnOf(scope.entries, "*", "read");
        return;
      }
      const entries = findQualified(names, scope);
      if (entries.length > 0) this.columnOf(entries, "*", "read");
      else this.unqualifiedColumn(names[0] ?? "*", scope, "read");
      return;
    }
    if (names.length === 0) return;
    this.namedColumn(names, scope);
  }

  /** A column reference `a`, `t.a`, `s.t.a`, `c.s.t.a`, or `t.a.field…` / `a.field…`. */
  private namedColumn(names: readonly string[], scope: Scope): void {
    const n = names.length;
    // Try the longest qualifier first: c.s.t.col, s.t.col, t.col (PostgreSQL's transformColumnRef)
    for (let k = Math.min(n - 1, 3); k >= 1; k--) {
      const entries = findQualified(names.slice(0, k), scope);
      if (entries.length > 0) {
        const field = names[k] ?? "*";
        this.columnOf(entries, field, "read");
        this.rowAttribute(entries, field);
        this.fieldSelections(names.slice(k + 1));
        return;
      }
    }
    const first = names[0] ?? "";
    if (n === 1) {
      // A bare name may be a table alias used as a whole-row value (`row_to_json(u)`).
      const whole = findQualified([first], scope);
      if (whole.length > 0) this.columnOf(whole, "*", "read");
    }
    // Otherwise (or also) a column, possibly of composite type with `.field` selections.
    this.unqualifiedColumn(first, scope, "read");
    this.fieldSelections(names.slice(1));
  }

  /**
   * PostgreSQL's attribute notation: `t.f` and `(t).f` call `f(t)` when t has no column f. A
   * function that serialises its argument (`u.row_to_json`, `u.record_out`) reads the row.
   */
  private rowAttribute(entries: readonly Entry[], field: string): void {
    // Whether t has a column `field` is for the caller to check against the catalog.
    for (const e of entries) if (e.renamed !== true) for (const r of e.relations) this.c.attributeRef(r, field);
    if (!ROW_READING_FUNCTIONS.has(field) && !/_(out|send)$/.test(field)) return;
    this.c.functions.add(field);
    this.columnOf(entries, "*", "read");
  }

  /** `(value).f`: a field selection on a value that is not a row of a FROM item may be the
   * call `f(value)` (`('/etc/passwd'::text).pg_read_file`): reported as a function. */
  private fieldSelections(fields: readonly unknown[]): void {
    for (const f of fields) {
      const name = typeof f === "string" ? f : stringValue(f);
      if (name !== undefined) this.c.functions.add(name);
    }
  }

  /** `(u).password`, `(u).*`: a field of a whole-row reference names the column. */
  private indirection(body: Obj, scope: Scope): void {
    const argRef = nodeOf(body.arg, "ColumnRef");
    const ind = list(body, "indirection");
    if (argRef !== undefined) {
      const fields = list(argRef, "fields");
      const only = fields.length === 1 ? stringValue(fields[0]) : undefined;
      if (only !== undefined) {
        const entries = findQualified([only], scope);
        if (entries.length > 0) {
          const firstField = ind[0];
          const fieldName = stringValue(firstField);
          this.columnOf(entries, fieldName ?? "*", "read");
          if (fieldName !== undefined) this.rowAttribute(entries, fieldName);
          this.unqualifiedColumn(only, scope, "read"); // or a composite column named so
          this.fieldSelections(ind.slice(1));
          this.visit(ind, scope);
          return;
        }
      }
    }
    this.visit(body.arg, scope);
    this.fieldSelections(ind);
    this.visit(ind, scope);
  }

  // -------------------------------------------------------------------------------------------
  // Functions and casts

  private funcCall(body: Obj, scope: Scope): void {
    const names = stringList(list(body, "funcname")) ?? [];
    if (names.length > 0) {
      this.c.functions.add(names.join("."));
      this.specialFunction(names, list(body, "args"));
    }
    this.visitFields(body, scope, SKIP_FUNCNAME);
  }

  private specialFunction(names: readonly string[], args: readonly unknown[]): void {
    const last = names[names.length - 1] ?? "";
    const schema = names.length > 1 ? names[names.length - 2] : undefined;
    const c = this.c;
    if (last.startsWith("dblink")) {
      c.unknown(UNKNOWN.dblink);
      c.literalDependent = true;
      return;
    }
    if (last.startsWith("pg_background")) {
      c.unknown(UNKNOWN.background);
      c.literalDependent = true;
      return;
    }
    if (schema === "cron" || last === "schedule_in_database" || last === "alter_job" || (last === "schedule" && (args.length === 2 || args.length === 3))) {
      c.unknown(UNKNOWN.cron);
      c.literalDependent = true;
      return;
    }
    if (REG_TYPES.has(last) || last === "to_regclass") {
      // regclass('users') is a cast written as a call; to_regclass('users') looks it up.
      c.literalDependent = true;
      if (last === "regclass" || last === "to_regclass") {
        const r = this.relationFromText(constString(args[0]));
        if (r !== undefined) c.readRel(r);
      }
      return;
    }
    const seq = SEQUENCE_FUNCTIONS[last];
    if (seq !== undefined) {
      c.literalDependent = true;
      const r = this.relationFromText(constString(args[0]));
      if (r !== undefined) {
        if (seq === "read") c.readRel(r);
        else c.writeRel(r);
      }
      return;
    }
    if (TABLE_READING_FUNCTIONS.has(last)) {
      c.literalDependent = true;
      const r = this.relationFromText(constString(args[0]));
      if (r === undefined) c.unknown(UNKNOWN.dynamicTable);
      else c.column(r, "*", "read");
      return;
    }
    if (SCHEMA_READING_FUNCTIONS.has(last)) {
      c.literalDependent = true;
      const text = constString(args[0]);
      const parts = text === undefined ? undefined : splitIdentifiers(text, ".");
      const s = parts?.length === 1 ? parts[0] : undefined;
      if (s === undefined) c.unknown(UNKNOWN.dynamicTable);
      else c.column(qn(s, "*"), "*", "read");
      return;
    }
    if (DATABASE_READING_FUNCTIONS.has(last)) {
      c.unknown(UNKNOWN.database);
      return;
    }
    const sqlArgs = SQL_TEXT_FUNCTIONS[last];
    if (sqlArgs !== undefined) {
      c.literalDependent = true;
      if (last === "ts_rewrite" && args.length !== 2) return;
      for (const i of sqlArgs) {
        const arg = args[i];
        if (arg === undefined) continue;
        if (last === "crosstab" && i === 1 && isIntegerConst(arg)) continue;
        this.embeddedSql(constString(arg));
      }
      return;
    }
    if (last === "set_config") {
      this.setConfig(args);
      return;
    }
    if (LITERAL_SENSITIVE_FUNCTIONS.has(last)) c.literalDependent = true;
  }

  /** Relation named by a text constant (regclass input syntax); undefined for OIDs/garbage. */
  private relationFromText(text: string | undefined): QualifiedName | undefined {
    if (text === undefined || /^\s*\d+\s*$/.test(text)) return undefined;
    const parts = splitIdentifiers(text, ".");
    if (parts === undefined || parts.length === 0 || parts.length > 3) return undefined;
    const name = parts[parts.length - 1] ?? "";
    return qn(parts.length >= 2 ? parts[parts.length - 2] : undefined, name);
  }

  /** SQL text run by a function: parsed and its facts merged, or an unknown effect. */
  private embeddedSql(text: string | undefined): void {
    if (text === undefined) {
      this.c.unknown(UNKNOWN.dynamicSql);
      return;
    }
    let stmts: readonly unknown[];
    try {
      const parsed: unknown = parseEmbeddedSync(text);
      stmts = isObj(parsed) ? list(parsed, "stmts") : [];
    } catch {
      this.c.unknown(UNKNOWN.unparsableSql);
      return;
    }
    for (const raw of stmts) {
      const s = isObj(raw) ? asNode(raw.stmt) : undefined;
      if (s !== undefined) this.statement(s[0], s[1], new Scope(undefined), false);
    }
  }

  private setConfig(args: readonly unknown[]): void {
    const c = this.c;
    c.op("set");
    c.literalDependent = true;
    const name = constString(args[0]);
    if (name === undefined) {
      c.unknown(UNKNOWN.dynamicSetting);
      return;
    }
    const value = constString(args[1]);
    const setting = name.trim().toLowerCase();
    c.settings.add(setting);
    if (setting === "role" || setting === "session_authorization") c.op("set_role");
    if (setting === "search_path") {
      const path = value === undefined ? undefined : splitIdentifiers(value, ",");
      if (path === undefined) c.unknown(UNKNOWN.searchPath);
      else c.setsSearchPath = path;
      return;
    }
    this.checkSessionSetting(setting, value === undefined ? undefined : [value]);
  }

  /** Settings that would make the gateway's reading of later traffic disagree with the
   * server's. `values` undefined: not known statically. */
  private checkSessionSetting(setting: string, values: readonly string[] | undefined): void {
    if (setting === "standard_conforming_strings") {
      if (values === undefined || values.length !== 1 || !isOnValue(values[0] ?? "")) this.c.unknown(UNKNOWN.scs);
    } else if (setting === "client_encoding") {
      if (values === undefined || values.length !== 1 || !isUtf8Name(values[0] ?? "")) this.c.unknown(UNKNOWN.encoding);
    }
  }

  private typeCast(body: Obj, scope: Scope): void {
    const typeName = obj(body, "typeName");
    const names = typeName === undefined ? undefined : stringList(list(typeName, "names"));
    const last = names === undefined ? undefined : names[names.length - 1];
    if (last !== undefined && REG_TYPES.has(last)) {
      this.c.literalDependent = true;
      if (last === "regclass" && typeName !== undefined && list(typeName, "arrayBounds").length === 0) {
        const r = this.relationFromText(constString(body.arg));
        if (r !== undefined) this.c.readRel(r);
      }
    }
    this.visit(body.arg, scope);
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  private withClause(w: Obj, level: Scope): void {
    const ctes = list(w, "ctes");
    const recursive = bool(w, "recursive");
    level.ctes ??= new Set();
    const names = ctes.map((c) => {
      const b = nodeOf(c, "CommonTableExpr");
      return b === undefined ? undefined : str(b, "ctename");
    });
    // WITH RECURSIVE: every CTE of the list is visible in every body; otherwise only the
    // earlier ones are (a CTE named like a table reads the table inside its own body).
    if (recursive) for (const n of names) if (n !== undefined) level.ctes.add(n);
    ctes.forEach((cte, i) => {
      const b = nodeOf(cte, "CommonTableExpr");
      if (b !== undefined) this.visit(b.ctequery, level);
      const n = names[i];
      if (n !== undefined) level.ctes?.add(n);
    });
  }

  private select(body: Obj, parent: Scope): void {
    this.enter();
    try {
      const level = new Scope(parent);
      const w = obj(body, "withClause");
      if (w !== undefined) this.withClause(w, level);
      this.into(body);
      const op = str(body, "op");
      if (op !== undefined && op !== "SETOP_NONE") {
        const l = obj(body, "larg");
        const r = obj(body, "rarg");
        if (l !== undefined) this.select(l, level);
        if (r !== undefined) this.select(r, level);
        this.visitFields(body, level, SKIP_SETOP);
        return;
      }
      const valuesOnly = list(body, "valuesLists").length > 0 && list(body, "targetList").length === 0;
      if (!valuesOnly) this.c.op("select");
      for (const item of list(body, "fromClause")) this.fromItem(item, level);
      this.visitFields(body, level, SKIP_SELECT);
    } finally {
      this.depth--;
    }
  }

  /** SELECT … INTO creates a table. */
  private into(body: Obj): void {
    const into = obj(body, "intoClause");
    const rel = into === undefined ? undefined : obj(into, "rel");
    const r = rel === undefined ? undefined : this.relation(rel);
    if (r === undefined) return;
    this.c.op("create_table");
    this.c.writeRel(r);
    this.c.column(r, "*", "write");
  }

  /** Adds a FROM-clause item's entries to `level` and returns them. */
  private fromItem(item: unknown, level: Scope): readonly Entry[] {
    const n = asNode(item);
    if (n === undefined) {
      this.visit(item, level);
      return [];
    }
    const [type, body] = n;
    this.enter();
    try {
      switch (type) {
        case "RangeVar": {
          const r = this.relation(body);
          if (r === undefined) return [];
          const isCte = r.schema === undefined && level.isCte(r.name);
          if (!isCte) this.c.readRel(r);
          const e = this.entryFor(body, r, isCte ? [] : [r]);
          level.entries.push(e);
          return [e];
        }
        case "JoinExpr": {
          const left = this.fromItem(body.larg, level);
          const right = this.fromItem(body.rarg, level);
          const sides = [...left, ...right];
          const rels = sides.flatMap((e) => e.relations);
          for (const u of list(body, "usingClause")) {
            const col = stringValue(u);
            if (col !== undefined) this.columnOf(sides, col, "read");
          }
          if (bool(body, "isNatural")) this.columnOf(sides, "*", "read");
          this.visit(body.quals, level);
          const out = [...sides];
          for (const key of ["alias", "join_using_alias"]) {
            const a = obj(body, key);
            const refname = a === undefined ? undefined : str(a, "aliasname");
            if (refname !== undefined) {
              const e = derived(refname, rels, key === "alias" && renamesColumns(a));
              level.entries.push(e);
              out.push(e);
            }
          }
          return out;
        }
        case "RangeTableSample": {
          const entries = this.fromItem(body.relation, level);
          this.visitFields(body, level, SKIP_RELATION);
          return entries;
        }
        default: {
          // RangeSubselect, RangeFunction, RangeTableFunc, JsonTable: derived items whose own
          // facts are collected by walking them (LATERAL or not, they see this level: harmless
          // over-approximation).
          this.visitFields(body, level, SKIP_ALIAS);
          const a = obj(body, "alias");
          const refname = a === undefined ? undefined : str(a, "aliasname");
          const e = derived(refname, []);
          level.entries.push(e);
          return [e];
        }
      }
    } finally {
      this.depth--;
    }
  }

  /** RETURNING: sees the target as `old`/`new` (PostgreSQL 18) or their renamed aliases. */
  private returning(body: Obj, level: Scope, target: Entry): void {
    const rc = obj(body, "returningClause");
    if (rc === undefined) return;
    const aliases = new Set(["old", "new"]);
    for (const o of list(rc, "options")) {
      const opt = nodeOf(o, "ReturningOption");
      const v = opt === undefined ? undefined : str(opt, "value");
      if (v !== undefined) aliases.add(v);
    }
    for (const refname of aliases) {
      if (!level.entries.some((e) => e.refname === refname)) {
        level.entries.push(derived(refname, target.relations));
      }
    }
    this.visit(list(rc, "exprs"), level);
  }

  private dmlTarget(body: Obj): { target: Entry; r: QualifiedName } | undefined {
    const rv = obj(body, "relation");
    const r = rv === undefined ? undefined : this.relation(rv);
    if (rv === undefined || r === undefined) return undefined;
    // The target of INSERT/UPDATE/DELETE/MERGE is always a table: never a CTE of the same name.
    this.c.writeRel(r);
    const target = this.entryFor(rv, r, [r]);
    return { target, r };
  }

  /** Walks a WHERE clause, noting whether it ever refers to the target's rows. */
  private restricts(where: unknown, level: Scope, target: Entry): boolean {
    if (where === undefined) return false;
    const saved = this.probe;
    const probe: Probe = { target, hit: false };
    this.probe = probe;
    try {
      this.visit(where, level);
    } finally {
      this.probe = saved;
    }
    return probe.hit;
  }

  private insert(body: Obj, parent: Scope): void {
    const level = new Scope(parent);
    const w = obj(body, "withClause");
    if (w !== undefined) this.withClause(w, level);
    this.c.op("insert");
    const t = this.dmlTarget(body);
    const cols = list(body, "cols");
    if (t !== undefined) {
      if (cols.length === 0) this.c.column(t.r, "*", "write");
      for (const col of cols) {
        const rt = nodeOf(col, "ResTarget");
        const name = rt === undefined ? undefined : str(rt, "name");
        if (name !== undefined) this.c.column(t.r, name, "write");
      }
    }
    // The source query can't see the target; it sees the WITH clause.
    this.visit(body.selectStmt, level);
    if (t === undefined) return;
    level.entries.push(t.target, derived("excluded", [t.r]));
    const oc = obj(body, "onConflictClause");
    if (oc !== undefined) {
      if (str(oc, "action") === "ONCONFLICT_UPDATE") {
        this.c.op("update");
        this.setTargets(list(oc, "targetList"), t.r, level);
      }
      this.visit(oc.infer, level);
      this.visit(oc.whereClause, level);
    }
    this.returning(body, level, t.target);
  }

  /** UPDATE … SET / ON CONFLICT DO UPDATE SET / MERGE … UPDATE SET targets. */
  private setTargets(targets: readonly unknown[], r: QualifiedName, level: Scope): void {
    for (const item of targets) {
      const rt = nodeOf(item, "ResTarget");
      if (rt === undefined) {
        this.visit(item, level);
        continue;
      }
      const name = str(rt, "name");
      if (name !== undefined) this.c.column(r, name, "write");
      this.visit(rt.indirection, level);
      this.visit(rt.val, level);
    }
  }

  private update(body: Obj, parent: Scope): void {
    const level = new Scope(parent);
    const w = obj(body, "withClause");
    if (w !== undefined) this.withClause(w, level);
    this.c.op("update");
    const t = this.dmlTarget(body);
    if (t === undefined) return;
    level.entries.push(t.target);
    for (const item of list(body, "fromClause")) this.fromItem(item, level);
    this.setTargets(list(body, "targetList"), t.r, level);
    if (!this.restricts(body.whereClause, level, t.target)) this.c.noWhere = true;
    this.returning(body, level, t.target);
  }

  private delete(body: Obj, parent: Scope): void {
    const level = new Scope(parent);
    const w = obj(body, "withClause");
    if (w !== undefined) this.withClause(w, level);
    this.c.op("delete");
    const t = this.dmlTarget(body);
    if (t === undefined) return;
    level.entries.push(t.target);
    for (const item of list(body, "usingClause")) this.fromItem(item, level);
    if (!this.restricts(body.whereClause, level, t.target)) this.c.noWhere = true;
    this.returning(body, level, t.target);
  }

  private merge(body: Obj, parent: Scope): void {
    const level = new Scope(parent);
    const w = obj(body, "withClause");
    if (w !== undefined) this.withClause(w, level);
    this.c.op("merge");
    const t = this.dmlTarget(body);
    if (t === undefined) return;
    level.entries.push(t.target);
    this.fromItem(body.sourceRelation, level);
    const joinRestricts = this.restricts(body.joinCondition, level, t.target);
    for (const item of list(body, "mergeWhenClauses")) {
      const wc = nodeOf(item, "MergeWhenClause");
      if (wc === undefined) {
        this.visit(item, level);
        continue;
      }
      const condRestricts = this.restricts(wc.condition, level, t.target);
      const cmd = str(wc, "commandType");
      if (cmd === "CMD_UPDATE" || cmd === "CMD_DELETE") {
        this.c.op(cmd === "CMD_UPDATE" ? "update" : "delete");
        if (!joinRestricts && !condRestricts) this.c.noWhere = true;
        this.setTargets(list(wc, "targetList"), t.r, level);
      } else if (cmd === "CMD_INSERT") {
        this.c.op("insert");
        const targets = list(wc, "targetList");
        if (targets.length === 0) this.c.column(t.r, "*", "write");
        for (const item2 of targets) {
          const rt = nodeOf(item2, "ResTarget");
          const name = rt === undefined ? undefined : str(rt, "name");
          if (name !== undefined) this.c.column(t.r, name, "write");
        }
        this.visit(wc.values, level);
      }
    }
    this.returning(body, level, t.target);
  }

  // -------------------------------------------------------------------------------------------
  // Statements

  private tags(type: string, body: Obj): void {
    for (const t of staticTags(type, body)) this.c.op(t);
  }

  /** A statement node anywhere: top level, CTE body, rule action, function body, … */
  private statement(type: string, body: Obj, scope: Scope, top: boolean): void {
    this.enter();
    try {
      this.statementInner(type, body, scope, top);
    } finally {
      this.depth--;
    }
  }

  private statementInner(type: string, body: Obj, scope: Scope, top: boolean): void {
    const c = this.c;
    switch (type) {
      case "SelectStmt":
        this.select(body, scope);
        return;
      case "InsertStmt":
        this.insert(body, scope);
        return;
      case "UpdateStmt":
        this.update(body, scope);
        return;
      case "DeleteStmt":
        this.delete(body, scope);
        return;
      case "MergeStmt":
        this.merge(body, scope);
        return;
      case "CopyStmt":
        this.copy(body, scope);
        return;
      case "ExplainStmt":
        this.explain(body, scope);
        return;
      case "VariableSetStmt":
        // Only a statement of its own is a session SET; nested ones are function SET clauses
        // or ALTER SYSTEM/ROLE/DATABASE values, which don't change this session.
        if (top) this.variableSet(body);
        return;
      case "DiscardStmt":
        this.tags(type, body);
        // DISCARD ALL includes RESET ALL. (Enum zero values may be omitted from the JSON.)
        if ((str(body, "target") ?? "DISCARD_ALL") === "DISCARD_ALL") {
          c.setsSearchPath = "default";
          c.settings.add("all");
        }
        return;
      case "TransactionStmt":
        c.op(TRANSACTION_TAGS[str(body, "kind") ?? "TRANS_STMT_BEGIN"] ?? "transaction");
        // BEGIN READ WRITE / ISOLATION LEVEL …: transaction_read_only, transaction_isolation, …
        for (const o of list(body, "options")) {
          const d = nodeOf(o, "DefElem");
          const name = d === undefined ? undefined : str(d, "defname");
          if (name !== undefined) c.settings.add(name.toLowerCase());
        }
        return;
      case "DoStmt":
        this.tags(type, body);
        c.unknown(UNKNOWN.do);
        return;
      case "LoadStmt":
        this.tags(type, body);
        c.unknown(UNKNOWN.load);
        c.literalDependent = true;
        return;
      case "CallStmt": {
        this.tags(type, body);
        const fc = obj(body, "funccall");
        if (fc !== undefined) this.funcCall(fc, scope);
        return;
      }
      case "PrepareStmt":
        this.tags(type, body);
        c.prepares = str(body, "name") ?? "";
        this.visit(body.query, scope);
        return;
      case "ExecuteStmt":
        this.tags(type, body);
        c.executes = str(body, "name") ?? "";
        this.visit(body.params, scope);
        return;
      case "DeclareCursorStmt":
        this.tags(type, body);
        this.visit(body.query, scope);
        return;
      case "FetchStmt":
        c.op(bool(body, "ismove") ? "move" : "fetch");
        return;
      case "CreateTableAsStmt": {
        c.op(str(body, "objtype") === "OBJECT_MATVIEW" ? "create_materialized_view" : "create_table");
        const into = obj(body, "into");
        const rel = into === undefined ? undefined : obj(into, "rel");
        const r = rel === undefined ? undefined : this.relation(rel);
        if (r !== undefined) {
          c.writeRel(r);
          c.column(r, "*", "write");
        }
        this.visit(body.query, scope);
        return;
      }
      case "ViewStmt": {
        this.tags(type, body);
        const v = obj(body, "view");
        const r = v === undefined ? undefined : this.relation(v);
        if (r !== undefined) c.writeRel(r);
        this.visit(body.query, scope);
        return;
      }
      case "CreateStmt":
        this.createTable(body, scope, "create_table");
        return;
      case "CreateForeignTableStmt": {
        const base = obj(body, "base");
        if (base !== undefined) this.createTable(base, scope, "create_foreign_table");
        return;
      }
      case "RuleStmt":
      case "CreateTrigStmt":
        this.ruleOrTrigger(type, body, scope);
        return;
      case "CreateEventTrigStmt": {
        this.tags(type, body);
        const fn = stringList(list(body, "funcname"));
        if (fn !== undefined && fn.length > 0) c.functions.add(fn.join("."));
        this.visit(body.whenclause, scope);
        return;
      }
      case "CreateFunctionStmt":
        this.createFunction(body, scope);
        return;
      case "AlterSystemStmt":
      case "AlterRoleSetStmt":
      case "AlterDatabaseSetStmt":
        this.tags(type, body);
        this.futureSetting(obj(body, "setstmt"));
        return;
      case "ConstraintsSetStmt": // its constraint names are parsed as RangeVars
        this.tags(type, body);
        return;
      case "CreateForeignServerStmt":
      case "AlterForeignServerStmt":
      case "CreateUserMappingStmt":
      case "AlterUserMappingStmt":
      case "CreateSubscriptionStmt":
      case "AlterSubscriptionStmt":
        this.tags(type, body);
        c.unknown(UNKNOWN.foreign);
        return;
      case "DropOwnedStmt":
        // Drops every object the roles own: any table, with all its columns.
        this.tags(type, body);
        c.op("drop_table");
        c.column(qn(undefined, "*"), "*", "write");
        return;
      case "TruncateStmt":
        this.genericStatement(type, body, scope);
        // CASCADE also empties every table that references these ones, whatever its name.
        if (str(body, "behavior") === "DROP_CASCADE") c.column(qn(undefined, "*"), "*", "write");
        return;
      case "CreateRoleStmt": {
        const kind = str(body, "stmt_type");
        c.op("create_role");
        if (kind === "ROLESTMT_USER") c.op("create_user");
        if (kind === "ROLESTMT_GROUP") c.op("create_group");
        return;
      }
      case "DropStmt":
        this.drop(body);
        return;
      case "RenameStmt":
        this.rename(body);
        return;
      case "AlterObjectSchemaStmt": {
        this.tags(type, body);
        const rv = obj(body, "relation");
        const r = rv === undefined ? undefined : this.relation(rv);
        const newSchema = str(body, "newschema");
        if (r !== undefined) {
          c.writeRel(r);
          if (newSchema !== undefined) c.writeRel(qn(newSchema, r.name));
          c.column(r, "*", "write"); // its columns move out of reach of guards on the old name
        }
        this.visit(body.object, scope); // ALTER FUNCTION f(…) SET SCHEMA: reports f
        return;
      }
      case "AlterTableStmt":
        this.alterTable(body, scope);
        return;
      case "GrantStmt":
        this.grant(body);
        return;
      case "GrantRoleStmt": {
        const g = bool(body, "is_grant");
        c.op(g ? "grant" : "revoke");
        c.op(g ? "grant_role" : "revoke_role");
        return;
      }
      case "AlterDefaultPrivilegesStmt": {
        this.tags(type, body);
        const action = obj(body, "action");
        c.op(action !== undefined && bool(action, "is_grant") ? "grant" : "revoke");
        return;
      }
      case "VacuumStmt":
        this.vacuum(body);
        return;
      case "LockStmt":
        this.tags(type, body);
        for (const item of list(body, "relations")) {
          const rv = nodeOf(item, "RangeVar");
          const r = rv === undefined ? undefined : this.relation(rv);
          if (r !== undefined) c.readRel(r);
        }
        return;
      case "CommentStmt":
      case "SecLabelStmt":
        this.tags(type, body);
        this.objectComment(body);
        return;
      case "ImportForeignSchemaStmt": {
        this.tags(type, body);
        const local = str(body, "local_schema");
        if (local !== undefined) c.writeRel(qn(local, "*"));
        return;
      }
      case "ReturnStmt":
      case "PLAssignStmt":
        // Parts of SQL-standard function bodies / PL/pgSQL, not statements of their own.
        this.visitFields(body, scope, SKIP_NONE);
        return;
      default:
        this.genericStatement(type, body, scope);
    }
  }

  /**
   * Any other statement: its tags, its direct relation fields (`relation`, `relations`,
   * `table`, … at the top of the node) are what it changes; everything else is walked.
   */
  private genericStatement(type: string, body: Obj, scope: Scope): void {
    this.tags(type, body);
    const inner = new Scope(scope);
    const rest: unknown[] = [];
    for (const k in body) {
      const v = body[k];
      const direct = this.directRelations(v);
      if (direct === undefined) {
        rest.push(v);
        continue;
      }
      for (const r of direct) {
        this.c.writeRel(r);
        inner.entries.push(self(r, [r]));
      }
    }
    for (const v of rest) this.visit(v, inner);
  }

  /** The relations a field holds when it is a RangeVar (inline or wrapped) or a list of them. */
  private directRelations(v: unknown): QualifiedName[] | undefined {
    if (isObj(v) && typeof v.relname === "string") {
      const r = this.relation(v);
      return r === undefined ? [] : [r];
    }
    const wrapped = nodeOf(v, "RangeVar");
    if (wrapped !== undefined) {
      const r = this.relation(wrapped);
      return r === undefined ? [] : [r];
    }
    if (Array.isArray(v) && v.length > 0) {
      const out: QualifiedName[] = [];
      for (const item of v as readonly unknown[]) {
        const rv = nodeOf(item, "RangeVar");
        if (rv === undefined) return undefined;
        const r = this.relation(rv);
        if (r !== undefined) out.push(r);
      }
      return out;
    }
    return undefined;
  }

  private variableSet(body: Obj): void {
    const c = this.c;
    const kind = str(body, "kind") ?? "VAR_SET_VALUE";
    const name = (str(body, "name") ?? "").toLowerCase();
    c.literalDependent = true;
    c.op(kind === "VAR_RESET" || kind === "VAR_RESET_ALL" ? "reset" : "set");
    if (name === "role" || name === "session_authorization") c.op("set_role");
    if (kind === "VAR_RESET_ALL") {
      c.setsSearchPath = "default";
      c.settings.add("all");
      return;
    }
    if (kind === "VAR_SET_MULTI") {
      // SET TRANSACTION … / SET SESSION CHARACTERISTICS AS TRANSACTION …
      const prefix = name === "session characteristics" ? "default_" : "";
      for (const a of list(body, "args")) {
        const d = nodeOf(a, "DefElem");
        const opt = d === undefined ? undefined : str(d, "defname");
        if (opt !== undefined) c.settings.add(prefix + opt.toLowerCase());
      }
      return;
    }
    c.settings.add(name);
    if (name === "search_path") {
      if (kind === "VAR_SET_VALUE") {
        const values: string[] = [];
        for (const a of list(body, "args")) {
          const s = constString(a);
          if (s === undefined) {
            c.unknown(UNKNOWN.searchPath);
            return;
          }
          values.push(truncateIdentifier(s));
        }
        c.setsSearchPath = values;
      } else if (kind === "VAR_SET_DEFAULT" || kind === "VAR_RESET") {
        c.setsSearchPath = "default";
      }
      return;
    }
    if (kind === "VAR_SET_VALUE") {
      const values: string[] = [];
      for (const a of list(body, "args")) {
        const s = constString(a);
        if (s === undefined) {
          this.checkSessionSetting(name, undefined);
          return;
        }
        values.push(s);
      }
      this.checkSessionSetting(name, values);
    }
  }

  private copy(body: Obj, scope: Scope): void {
    const c = this.c;
    const from = bool(body, "is_from");
    // libpg_query's JSON omits empty strings: COPY t TO '' reads like COPY t TO STDOUT, so the
    // facts depend on a literal. COPY is rare enough never to be cached.
    c.literalDependent = true;
    c.op("copy");
    c.op(from ? "copy_from" : "copy_to");
    if (bool(body, "is_program")) {
      c.op("program");
      c.unknown(UNKNOWN.program);
      c.literalDependent = true;
    } else if (str(body, "filename") !== undefined) {
      c.op("copy_file");
    }
    const rv = obj(body, "relation");
    const r = rv === undefined ? undefined : this.relation(rv);
    const level = new Scope(scope);
    if (r !== undefined) {
      const access = from ? "write" : "read";
      c.op(from ? "insert" : "select");
      if (from) c.writeRel(r);
      else c.readRel(r);
      const cols = stringList(list(body, "attlist")) ?? [];
      if (cols.length === 0) c.column(r, "*", access);
      for (const col of cols) c.column(r, col, access);
      level.entries.push(self(r, [r]));
    }
    this.visit(body.query, scope);
    this.visit(body.whereClause, level);
  }

  private explain(body: Obj, scope: Scope): void {
    this.tags("ExplainStmt", body);
    let analyze = false;
    for (const o of list(body, "options")) {
      const d = nodeOf(o, "DefElem");
      if (d === undefined || str(d, "defname") !== "analyze") continue;
      if (d.arg === undefined) analyze = true;
      else {
        this.c.literalDependent = true;
        analyze = !isFalseOption(d.arg);
      }
    }
    if (analyze) {
      // EXPLAIN ANALYZE executes the statement.
      this.visit(body.query, scope);
      return;
    }
    const outer = this.c;
    const inner = new Collector();
    this.c = inner;
    try {
      this.visit(body.query, scope);
    } finally {
      this.c = outer;
    }
    outer.merge(inner, true);
  }

  private vacuum(body: Obj): void {
    const c = this.c;
    if (bool(body, "is_vacuumcmd")) {
      c.op("vacuum");
      for (const o of list(body, "options")) {
        const d = nodeOf(o, "DefElem");
        if (d === undefined || str(d, "defname") !== "analyze") continue;
        if (d.arg !== undefined) c.literalDependent = true;
        if (d.arg === undefined || !isFalseOption(d.arg)) c.op("analyze");
      }
    } else {
      c.op("analyze");
    }
    for (const item of list(body, "rels")) {
      const vr = nodeOf(item, "VacuumRelation");
      const rv = vr === undefined ? undefined : obj(vr, "relation");
      const r = rv === undefined ? undefined : this.relation(rv);
      if (r !== undefined) c.writeRel(r);
    }
  }

  private createTable(body: Obj, scope: Scope, tag: string): void {
    const c = this.c;
    c.op(tag);
    const rv = obj(body, "relation");
    const r = rv === undefined ? undefined : this.relation(rv);
    const level = new Scope(scope);
    if (r !== undefined) {
      c.writeRel(r);
      level.entries.push(self(r, [r]));
    }
    // PARTITION OF attaches to (changes) the parent; INHERITS reads its definition.
    const partition = body.partbound !== undefined;
    for (const item of list(body, "inhRelations")) {
      const p = nodeOf(item, "RangeVar");
      const pr = p === undefined ? undefined : this.relation(p);
      if (pr === undefined) continue;
      if (partition) c.writeRel(pr);
      else c.readRel(pr);
    }
    this.visitFields(body, level, SKIP_CREATE_TABLE);
  }

  private ruleOrTrigger(type: string, body: Obj, scope: Scope): void {
    const c = this.c;
    this.tags(type, body);
    const rv = obj(body, "relation");
    const r = rv === undefined ? undefined : this.relation(rv);
    const level = new Scope(scope);
    if (r !== undefined) {
      c.writeRel(r);
      // Rule actions, rule and trigger WHEN conditions see the rows as OLD and NEW.
      level.entries.push(derived("old", [r]), derived("new", [r]), self(r, [r]));
    }
    if (type === "CreateTrigStmt") {
      const fn = stringList(list(body, "funcname"));
      if (fn !== undefined && fn.length > 0) c.functions.add(fn.join("."));
      // A row trigger hands its function every changed row, whole (NEW / OLD): an existing
      // generic audit function would copy secrets somewhere readable.
      if (r !== undefined && bool(body, "row")) c.column(r, "*", "read");
      const constr = obj(body, "constrrel");
      const cr = constr === undefined ? undefined : this.relation(constr);
      if (cr !== undefined) c.readRel(cr);
      this.visit(body.whenClause, level);
      return;
    }
    this.visit(body.whereClause, level);
    this.visit(body.actions, level);
  }

  private createFunction(body: Obj, scope: Scope): void {
    const c = this.c;
    c.op(bool(body, "is_procedure") ? "create_procedure" : "create_function");
    const options: Obj[] = [];
    for (const o of list(body, "options")) {
      const d = nodeOf(o, "DefElem");
      if (d !== undefined) options.push(d);
    }
    let language: string | undefined;
    for (const d of options) {
      if (str(d, "defname") !== "language") continue;
      // LANGUAGE c and LANGUAGE 'c' parse alike: the fact may come from a literal.
      c.literalDependent = true;
      language = stringValue(d.arg)?.toLowerCase();
      if (language === "c") c.unknown(UNKNOWN.cLanguage);
    }
    // The body runs whenever the function is called (by name, or hidden in a trigger, a
    // default, an operator, a cast …): what it does is reported at CREATE, where it can be
    // refused. A SQL body given as a string is parsed like one written inline; a body in any
    // other language can't be checked (fail closed). The facts depend on the literal.
    const as = options.find((o) => str(o, "defname") === "as");
    if (as !== undefined) {
      c.literalDependent = true;
      const items = listItems(as.arg) ?? [];
      const text = items.length === 1 ? stringValue(items[0]) : undefined;
      if (language === "sql") {
        if (text === undefined) c.unknown(UNKNOWN.unparsableBody);
        else this.embeddedSql(text);
      } else if (language !== "c") {
        c.unknown(`the body of a LANGUAGE ${language ?? "(none)"} function can't be checked before it runs`);
      }
    }
    // A parameter of a table's row type hands the function whole rows: called in attribute
    // notation (`u.f` for `f(u)`), nothing else in the calling statement shows it.
    for (const p of list(body, "parameters")) {
      const fp = nodeOf(p, "FunctionParameter");
      const r = fp === undefined ? undefined : rowTypeRelation(obj(fp, "argType"));
      if (r !== undefined) c.column(r, "*", "read");
    }
    // Parameter defaults and a SQL-standard body (BEGIN ATOMIC … END / RETURN …) are parsed
    // SQL: report what they do.
    this.visit(body.parameters, scope);
    this.visit(body.sql_body, scope);
  }

  /** ALTER ROLE / DATABASE / SYSTEM … SET: settings of later sessions (never this one's). */
  private futureSetting(setstmt: Obj | undefined): void {
    if (setstmt === undefined) return;
    const name = (str(setstmt, "name") ?? "").toLowerCase();
    const kind = str(setstmt, "kind") ?? "VAR_SET_VALUE";
    this.c.literalDependent = true;
    if (kind === "VAR_RESET_ALL" || kind === "VAR_RESET" || kind === "VAR_SET_DEFAULT" || !FUTURE_SESSION_SETTINGS.has(name)) return;
    const values = list(setstmt, "args").map((a) => constString(a));
    const one = values.length === 1 ? values[0] : undefined;
    if (name === "standard_conforming_strings" && one !== undefined && isOnValue(one)) return;
    if (name === "client_encoding" && one !== undefined && isUtf8Name(one)) return;
    this.c.unknown(UNKNOWN.futureSettings);
  }

  private drop(body: Obj): void {
    const c = this.c;
    const removeType = str(body, "removeType");
    c.op("drop_" + objectKind(removeType));
    if (str(body, "behavior") === "DROP_CASCADE") {
      // CASCADE drops whatever depends on the objects: views of any name, and for types,
      // domains, functions, collations, extensions … the columns, defaults and indexes using
      // them. A schema takes its own tables with it (written as `schema.*` below).
      if (removeType === "OBJECT_SCHEMA" || removeType === "OBJECT_EXTENSION") c.op("drop_table");
      if (removeType !== "OBJECT_SCHEMA") {
        c.writeRel(qn(undefined, "*"));
        if (removeType === undefined || !RELATION_OBJECT_TYPES.has(removeType)) c.column(qn(undefined, "*"), "*", "write");
      }
    }
    for (const o of list(body, "objects")) {
      if (removeType !== undefined && RELATION_OBJECT_TYPES.has(removeType)) {
        const r = this.nameToRelation(listItems(o));
        if (r !== undefined) c.writeRel(r);
      } else if (removeType === "OBJECT_SCHEMA") {
        const s = stringValue(o);
        if (s !== undefined) c.writeRel(qn(s, "*"));
      } else if (removeType === "OBJECT_RULE" || removeType === "OBJECT_TRIGGER" || removeType === "OBJECT_POLICY") {
        // DROP RULE r ON t: [schema,] t, r
        const items = listItems(o);
        if (items !== undefined) {
          const r = this.nameToRelation(items.slice(0, -1));
          if (r !== undefined) c.writeRel(r);
        }
      }
    }
  }

  /** [catalog,] [schema,] name as a list of String nodes. */
  private nameToRelation(items: readonly unknown[] | undefined): QualifiedName | undefined {
    const names = items === undefined ? undefined : stringList(items);
    if (names === undefined || names.length === 0) return undefined;
    const name = names[names.length - 1] ?? "";
    return qn(names.length >= 2 ? names[names.length - 2] : undefined, name);
  }

  private rename(body: Obj): void {
    const c = this.c;
    const renameType = str(body, "renameType");
    const sub = renameType === "OBJECT_COLUMN" || renameType === "OBJECT_TABCONSTRAINT" || renameType === "OBJECT_ATTRIBUTE";
    c.op("alter_" + objectKind(sub ? str(body, "relationType") : renameType));
    c.op("rename");
    this.visit(body.object, new Scope(undefined)); // ALTER FUNCTION f(…) RENAME: reports f
    const newname = str(body, "newname");
    const rv = obj(body, "relation");
    const r = rv === undefined ? undefined : this.relation(rv);
    if (r !== undefined) {
      c.writeRel(r);
      if (renameType !== undefined && RELATION_OBJECT_TYPES.has(renameType) && newname !== undefined) {
        c.writeRel(qn(r.schema, newname));
        // Its columns now live under another name, out of reach of guards on the old one.
        c.column(r, "*", "write");
      }
      if (renameType === "OBJECT_COLUMN" || renameType === "OBJECT_ATTRIBUTE") {
        const old = str(body, "subname");
        if (old !== undefined) c.column(r, old, "write");
        if (newname !== undefined) c.column(r, newname, "write");
      }
    }
    if (renameType === "OBJECT_SCHEMA") {
      const old = str(body, "subname");
      if (old !== undefined) c.writeRel(qn(old, "*"));
      if (newname !== undefined) c.writeRel(qn(newname, "*"));
    }
  }

  private alterTable(body: Obj, scope: Scope): void {
    const c = this.c;
    this.tags("AlterTableStmt", body);
    const rv = obj(body, "relation");
    const r = rv === undefined ? undefined : this.relation(rv);
    const level = new Scope(scope);
    if (r !== undefined) {
      c.writeRel(r);
      level.entries.push(self(r, [r]));
    }
    for (const item of list(body, "cmds")) {
      const cmd = nodeOf(item, "AlterTableCmd");
      if (cmd === undefined) {
        this.visit(item, level);
        continue;
      }
      const subtype = str(cmd, "subtype") ?? "";
      const name = str(cmd, "name");
      const extra = DISABLING_SUBCOMMANDS[subtype];
      if (extra !== undefined) c.op(extra);
      if (subtype === "AT_ChangeOwner") c.op("alter_owner");
      if (r !== undefined && name !== undefined && COLUMN_SUBCOMMANDS.has(subtype)) c.column(r, name, "write");
      const def = cmd.def;
      const colDef = nodeOf(def, "ColumnDef");
      const colName = colDef === undefined ? undefined : str(colDef, "colname");
      if (r !== undefined && subtype === "AT_AddColumn" && colName !== undefined) c.column(r, colName, "write");
      const part = nodeOf(def, "PartitionCmd");
      if (part !== undefined) {
        const prv = obj(part, "name");
        const pr = prv === undefined ? undefined : this.relation(prv);
        if (pr !== undefined) c.writeRel(pr);
        this.visitFields(part, level, SKIP_NAME);
        continue;
      }
      this.visit(def, level);
    }
  }

  private grant(body: Obj): void {
    const c = this.c;
    c.op(bool(body, "is_grant") ? "grant" : "revoke");
    const objtype = str(body, "objtype");
    const relational = objtype !== undefined && RELATION_OBJECT_TYPES.has(objtype);
    const targtype = str(body, "targtype");
    const rels: QualifiedName[] = [];
    for (const o of list(body, "objects")) {
      if (targtype === "ACL_TARGET_ALL_IN_SCHEMA") {
        const s = stringValue(o);
        if (s !== undefined && relational) rels.push(qn(s, "*"));
        continue;
      }
      const rv = nodeOf(o, "RangeVar");
      const r = rv === undefined ? undefined : this.relation(rv);
      if (r !== undefined) rels.push(r);
    }
    for (const r of rels) c.writeRel(r);
    // Column privileges: GRANT SELECT (password) ON users
    for (const p of list(body, "privileges")) {
      const ap = nodeOf(p, "AccessPriv");
      const cols = ap === undefined ? undefined : stringList(list(ap, "cols"));
      if (cols === undefined) continue;
      for (const r of rels) for (const col of cols) c.column(r, col, "write");
    }
  }

  private objectComment(body: Obj): void {
    const objtype = str(body, "objtype");
    const items = listItems(body.object);
    if (objtype !== undefined && RELATION_OBJECT_TYPES.has(objtype)) {
      const r = this.nameToRelation(items);
      if (r !== undefined) this.c.writeRel(r);
    } else if (objtype === "OBJECT_COLUMN" && items !== undefined) {
      const names = stringList(items);
      const col = names?.[names.length - 1];
      const r = this.nameToRelation(items.slice(0, -1));
      if (r !== undefined && col !== undefined) this.c.column(r, col, "write");
    }
  }
}

const TRANSACTION_TAGS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: "begin",
  TRANS_STMT_START: "begin",
  TRANS_STMT_COMMIT: "commit",
  TRANS_STMT_ROLLBACK: "rollback",
  TRANS_STMT_SAVEPOINT: "savepoint",
  TRANS_STMT_RELEASE: "release",
  TRANS_STMT_ROLLBACK_TO: "rollback_to_savepoint",
  TRANS_STMT_PREPARE: "prepare_transaction",
  TRANS_STMT_COMMIT_PREPARED: "commit_prepared",
  TRANS_STMT_ROLLBACK_PREPARED: "rollback_prepared",
};

const SKIP_NONE: ReadonlySet<string> = new Set();
const SKIP_LOCKED_RELS: ReadonlySet<string> = new Set(["lockedRels"]);
const SKIP_FUNCNAME: ReadonlySet<string> = new Set(["funcname"]);
const SKIP_SETOP: ReadonlySet<string> = new Set(["larg", "rarg", "withClause", "intoClause"]);
const SKIP_SELECT: ReadonlySet<string> = new Set(["fromClause", "withClause", "intoClause"]);
const SKIP_RELATION: ReadonlySet<string> = new Set(["relation"]);
const SKIP_ALIAS: ReadonlySet<string> = new Set(["alias"]);
const SKIP_NAME: ReadonlySet<string> = new Set(["name"]);
const SKIP_CREATE_TABLE: ReadonlySet<string> = new Set(["relation", "inhRelations"]);

