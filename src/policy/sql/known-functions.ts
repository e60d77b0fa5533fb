/**
 * What the walker knows about particular built-in functions and types: the functions whose
 * arguments change a statement's facts (row-reading, sequence, table/schema/database-reading,
 * SQL-text-running, literal-sensitive), the regclass-like types, the DDL options whose value
 * is a function, and the built-in type names that are never a table's row type.
 */
import { bool, list, stringList, type Obj } from "./ast.js";
import { qn } from "./collector.js";
import type { QualifiedName } from "./facts.js";

/** Functions that return their (row) argument's content, so that attribute notation `u.f`
 * reads the whole row (see Walker.rowAttribute; `*_out`/`*_send` are matched too). */
export const ROW_READING_FUNCTIONS: ReadonlySet<string> = new Set([
  "row_to_json", "to_json", "to_jsonb", "json_build_array", "jsonb_build_array", "json_build_object", "jsonb_build_object",
  "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "array_agg", "string_agg", "xmlagg", "concat", "concat_ws",
  "format", "quote_literal", "quote_nullable", "quote_ident", "hstore", "hstore_to_json", "hstore_to_jsonb", "to_tsvector",
  "textin", "text", "mode", "min", "max", "first_value", "last_value", "lag", "lead", "nth_value", "array_to_json",
  "array_to_string", "json_strip_nulls", "jsonb_strip_nulls", "jsonb_pretty", "row_to_jsonb", "coalesce", "greatest", "least",
]);

/** Sequence functions: the argument names a sequence (text or regclass). */
export const SEQUENCE_FUNCTIONS: Readonly<Record<string, "read" | "write">> = {
  nextval: "write",
  setval: "write",
  currval: "read",
};

/** Functions that read a whole table named by their first argument. */
export const TABLE_READING_FUNCTIONS: ReadonlySet<string> = new Set([
  "table_to_xml",
  "table_to_xmlschema",
  "table_to_xml_and_xmlschema",
  "connectby", // tablefunc
]);

/** Functions that read every table of the schema named by their first argument. */
export const SCHEMA_READING_FUNCTIONS: ReadonlySet<string> = new Set([
  "schema_to_xml",
  "schema_to_xmlschema",
  "schema_to_xml_and_xmlschema",
]);

export const DATABASE_READING_FUNCTIONS: ReadonlySet<string> = new Set([
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
export const SQL_TEXT_FUNCTIONS: Readonly<Record<string, readonly number[]>> = {
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
export const LITERAL_SENSITIVE_FUNCTIONS: ReadonlySet<string> = new Set([
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

export const REG_TYPES: ReadonlySet<string> = new Set([
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

/** Options of CREATE OPERATOR / AGGREGATE / TYPE / TEXT SEARCH … / FOREIGN DATA WRAPPER whose
 * value is a function the object will call (`CREATE OPERATOR ### (PROCEDURE = pg_read_file)`). */
export const FUNCTION_OPTIONS: ReadonlySet<string> = new Set([
  "procedure", "function", "restrict", "join", "sfunc", "finalfunc", "combinefunc", "serialfunc", "deserialfunc",
  "msfunc", "minvfunc", "mfinalfunc", "input", "output", "receive", "send", "typmod_in", "typmod_out", "analyze",
  "subscript", "canonical", "subtype_diff", "handler", "validator", "inline", "start", "gettoken", "end", "lextypes",
  "headline", "init", "lexize",
]);

/** Type names (unqualified, as the parser leaves them) that are never a table's row type. The
 * SQL-standard names (int, varchar, …) come back as pg_catalog.*, which is skipped too. */
export const BUILTIN_TYPE_NAMES: ReadonlySet<string> = new Set([
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
export function rowTypeRelation(t: Obj | undefined): QualifiedName | undefined {
  if (t === undefined || bool(t, "pct_type")) return undefined;
  const names = stringList(list(t, "names"));
  if (names === undefined || names.length === 0 || names.length > 3) return undefined;
  const name = names[names.length - 1] ?? "";
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  if (schema === "pg_catalog" || (schema === undefined && BUILTIN_TYPE_NAMES.has(name))) return undefined;
  return qn(schema, name);
}

/** Catalogs holding column statistics: most common values and histograms are table data. */
export const STATISTICS_RELATIONS: ReadonlySet<string> = new Set([
  "pg_stats", "pg_statistic", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic_ext_data",
]);
