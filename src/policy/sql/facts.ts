/**
 * Facts about SQL statements, computed with the real PostgreSQL parser (see classify.ts) and
 * matched by guardrail policies (`match:` keys `operations`, `relations`, `columns`,
 * `functions`, `noWhere`). Everything here is plain, readonly and JSON-serialisable, and every
 * array is sorted and de-duplicated so that two classifications of equivalent statements compare
 * deep-equal (the classification cache and its property test rely on that).
 *
 * Names: PostgreSQL folds unquoted identifiers to lower case and keeps quoted ones as written;
 * the parser has already done that, so a name here is exactly the name PostgreSQL will look up
 * (`"Users"` and `users` are different relations). A name is never re-cased by Airlock.
 */

import type { StatementLineage } from "../../core/decision.js";

/** A relation (table, view, materialized view, sequence, index, foreign table) as written. */
export interface QualifiedName {
  /** Only when the statement wrote one, or `pg_temp` for a relation created TEMP. Unqualified
   * names resolve through the session's search_path, which the caller tracks (see
   * `setsSearchPath`); PostgreSQL searches pg_temp first for relations. */
  readonly schema?: string;
  /** The relation name; `"*"` means every relation of `schema` (DROP SCHEMA, GRANT … ON ALL
   * TABLES IN SCHEMA, IMPORT FOREIGN SCHEMA, schema_to_xml). */
  readonly name: string;
}

export interface ColumnAccess {
  /** The relation the column belongs to. Absent only when no relation in scope could own it
   * (e.g. a column of a function's result); a policy glob `*.col` should still match it. */
  readonly relation?: QualifiedName;
  /**
   * The column name, or `"*"` for the whole row: `SELECT *`, `t.*`, `RETURNING *`, a table
   * alias used as a value (`row_to_json(u)`, `SELECT u FROM users u`), `(u).*`, an INSERT
   * without a column list, a NATURAL join.
   */
  readonly column: string;
  readonly access: "read" | "write";
}

/**
 * Operation tags (lower case). A statement carries its own kind plus every kind hidden in its
 * nesting (CTEs, subqueries, rule actions, SQL-standard function bodies, EXPLAIN ANALYZE,
 * PREPARE, DECLARE, COPY (query), CREATE TABLE AS, CREATE SCHEMA elements).
 *
 * Data: select (any SELECT/TABLE query, including subqueries; a bare VALUES list is not tagged),
 *   insert, update, delete, merge (plus insert/update/delete for each MERGE action kind;
 *   INSERT … ON CONFLICT DO UPDATE adds update), lock_rows (SELECT … FOR UPDATE/SHARE),
 *   copy + copy_from (+ insert) | copy_to (+ select), program (COPY … PROGRAM), copy_file
 *   (COPY to/from a server-side file), truncate.
 * DDL: create, alter, drop, each with create_<kind> / alter_<kind> / drop_<kind>, where <kind>
 *   is one of: table, view, materialized_view, index, sequence, foreign_table, type, domain,
 *   function, procedure, routine, aggregate, operator, operator_class, operator_family,
 *   schema, database, role (+ create_user / create_group), extension, trigger, event_trigger,
 *   rule, policy, tablespace, server, foreign_data_wrapper, user_mapping, publication,
 *   subscription, cast, conversion, collation, language, statistics, access_method, transform,
 *   text_search_configuration / _dictionary / _parser / _template, large_object,
 *   default_privileges, constraint, column … (the ObjectType of the statement).
 *   SELECT … INTO and CREATE TABLE AS add create + create_table (create_materialized_view).
 *   Destructive ALTER TABLE / FOREIGN TABLE / TYPE / DOMAIN sub-commands add their own tag and
 *   drop (so `drop` matches them): drop_column, alter_column_type, drop_constraint,
 *   drop_default, drop_not_null, drop_expression, drop_identity, set_expression,
 *   detach_partition, no_inherit.
 *   rename (ALTER … RENAME), alter_owner (ALTER … OWNER TO), drop_owned, reassign_owned,
 *   import_foreign_schema (+ create_foreign_table), alter_system, refresh_materialized_view,
 *   comment, security_label.
 * Privileges: grant, revoke (+ grant_role / revoke_role for role membership;
 *   ALTER DEFAULT PRIVILEGES adds alter_default_privileges and grant or revoke).
 * Session: set, reset (+ set_role for SET ROLE / SET SESSION AUTHORIZATION), show,
 *   set_constraints, discard, listen, notify, unlisten, load.
 * Transactions: begin, commit, rollback, savepoint, release, rollback_to_savepoint,
 *   prepare_transaction, commit_prepared, rollback_prepared.
 * Code: do, call, create_function …
 * Prepared statements and cursors: prepare, execute, deallocate, declare, fetch, move, close.
 * Maintenance: vacuum, analyze, cluster, reindex, checkpoint, explain.
 * Anything else the parser returns gets a tag derived from its node name
 * (`AlterDefaultPrivilegesStmt` → `alter_default_privileges`), so no statement is untagged.
 */
export type OperationTag = string;

export interface StatementFacts {
  /** Operation tags, lower case: the statement's own kind plus the kinds hidden in nesting. */
  readonly operations: readonly OperationTag[];
  /** Relations whose rows are read (FROM, JOIN, subqueries, MERGE source, COPY TO, relations
   * of every column read, regclass literals, nextval/currval sequences, …). */
  readonly relationsRead: readonly QualifiedName[];
  /** Relations whose rows, definition, privileges or existence the statement changes (DML
   * targets, COPY FROM, TRUNCATE, DDL targets including both names of a rename, …). */
  readonly relationsWritten: readonly QualifiedName[];
  readonly columns: readonly ColumnAccess[];
  /** Functions and procedures called (including trigger and event-trigger functions and
   * functions in DEFAULTs, CHECKs and index expressions), as written: schema-qualified when
   * written so (`pg_catalog.pg_sleep`), names as PostgreSQL folds them. */
  readonly functions: readonly string[];
  /** The dangerous families (function-families.ts) of the functions called, e.g.
   * `server_file_read`. Absent when none. */
  readonly functionFamilies?: readonly string[];
  /** The other members of those families, qualified as the call was (`pg_read_file_old`
   * brings `pg_read_file`, `pg_read_binary_file`, …): a `functions` guard naming any member
   * matches the call. Present with functionFamilies. */
  readonly equivalentFunctions?: readonly string[];
  /** An UPDATE or DELETE (anywhere, including CTEs) without a WHERE clause, or whose WHERE
   * never refers to the target's columns (`WHERE true`, `WHERE 1 = 1`); a MERGE whose UPDATE or
   * DELETE action is not restricted by a condition on the target, or whose source may return a
   * whole table (WHEN NOT MATCHED BY SOURCE: always, unless its own condition restricts it);
   * an INSERT … ON CONFLICT DO UPDATE without a WHERE on the target whose source may return a
   * whole table (anything but VALUES, a FROM-less SELECT without function calls, or a SELECT
   * whose WHERE restricts its own FROM items): the update arm's reach is the source's. */
  readonly noWhere: boolean;
  /** Set when the statement's effects cannot be known statically (DO blocks, COPY … PROGRAM,
   * LOAD, dynamic SQL through functions such as dblink or query_to_xml with a non-constant
   * query, …): the reason, for the refusal message. Fail closed on it. */
  readonly unknownEffects?: string;
  /** PREPARE name AS …: the name (its facts are the inner statement's, plus "prepare"). */
  readonly prepares?: string;
  /** EXECUTE name (also EXPLAIN EXECUTE, CREATE TABLE … AS EXECUTE): the prepared statement it
   * runs; the caller resolves it from session state. */
  readonly executes?: string;
  /** SET/RESET of search_path (also RESET ALL, DISCARD ALL, set_config('search_path', …)):
   * the new value (list of schema names) or "default". The caller tracks the session's
   * search_path. */
  readonly setsSearchPath?: readonly string[] | "default";
  /** Run-time settings this statement changes for the session or transaction, lower case:
   * SET/RESET names (`statement_timeout`, `role`, …), `all` for RESET ALL / DISCARD ALL,
   * set_config names, and SET TRANSACTION / SET SESSION CHARACTERISTICS / BEGIN options
   * (`transaction_read_only`, `default_transaction_read_only`, `transaction_isolation`, …).
   * Lets the limits feature refuse an agent undoing `statementTimeout` or `readOnly`. */
  readonly settings?: readonly string[];
  /**
   * Qualified column references `t.x` / `(t).x` of a relation's row: PostgreSQL's attribute
   * notation makes such a reference the call `x(t)` — the whole row handed to a function —
   * when relation t has no column x. Only the target's catalog can tell, so the caller checks
   * these names when a column or function guard applies (absent when there are none).
   */
  readonly attributeRefs?: readonly AttributeRef[];
  /** Where the statement's output columns come from (lineage.ts): lets column mask rules
   * cover computed result fields. Absent on facts not built by classify(). */
  readonly lineage?: StatementLineage;
  /** Inheritance links the statement makes (ALTER TABLE … INHERIT / ATTACH PARTITION, CREATE
   * TABLE … INHERITS / PARTITION OF): column guards follow them before the catalog shows them. */
  readonly inherits?: readonly { readonly parent: QualifiedName; readonly child: QualifiedName }[];
  /** MySQL `USE db`: the database unqualified names resolve to from now on (src/policy/mysql). */
  readonly switchesDatabase?: string;
  /**
   * MySQL HANDLER statements: the name a handler is opened under (`HANDLER t OPEN AS h`: h, of
   * table t), read or closed. A read of a name the session did not open is a read of any
   * table (the caller tracks names, src/policy/sql-session.ts).
   */
  readonly handler?: { readonly action: "open" | "read" | "close"; readonly name: string; readonly relation?: QualifiedName };
}

/** A qualified reference `t.x` that is a column of t, or else the call `x(t)`. */
export interface AttributeRef {
  readonly relation: QualifiedName;
  readonly name: string;
}

export type Classification =
  | { readonly ok: true; readonly statements: readonly StatementFacts[] }
  | {
      readonly ok: false;
      /** Safe to show to the client (the parser's message, or a limit that was exceeded). */
      readonly error: string;
      /** 1-based character position of the error in the statement text, as PostgreSQL's
       * ErrorResponse `P` field counts it; absent when the error has no position. */
      readonly position?: number;
    };
