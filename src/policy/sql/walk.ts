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
 * Files: this one holds the walk's state and its generic part (visiting nodes, relations and
 * column references); statements.ts dispatches statement nodes to queries.ts (SELECT and DML),
 * ddl.ts, utility.ts (COPY, EXPLAIN, VACUUM), session-settings.ts and functions.ts (calls and
 * casts, with the catalog of special functions in known-functions.ts); collector.ts gathers the
 * facts and scope.ts holds the query levels used to resolve columns.
 *
 * Bounds: depth and node count are capped (statement too complex → GW_LIMIT), so a hostile
 * statement can't exhaust the stack or the CPU.
 */
import { GatewayError } from "../../core/errors.js";
import { asNode, list, listItems, nodeOf, obj, str, stringList, stringValue, type Obj } from "./ast.js";
import { Collector, qn, UNKNOWN } from "./collector.js";
import type { QualifiedName, StatementFacts } from "./facts.js";
import { funcCall, typeCast } from "./functions.js";
import { FUNCTION_OPTIONS, ROW_READING_FUNCTIONS, STATISTICS_RELATIONS } from "./known-functions.js";
import { fromItem, withClause } from "./queries.js";
import { derived, findQualified, renamesColumns, Scope, self, SKIP_NONE, type Entry } from "./scope.js";
import { statement } from "./statements.js";

/** Nesting depth of the walk (objects and lists), beyond which a statement is refused. */
export const MAX_WALK_DEPTH = 1_000;
/** Objects and lists visited per top-level statement (including SQL text parsed from
 * constant arguments), beyond which a statement is refused. */
export const MAX_WALK_NODES = 2_000_000;

/** Raised inside the walk; classify() turns it into `ok: false`. */
export function tooComplex(): GatewayError {
  return new GatewayError("GW_LIMIT", "statement too complex");
}

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

/** Set while a WHERE clause (or join condition) is walked: whether it refers to the rows of
 * one of `targets` (queries.ts). Probes nest: a reference inside a subquery of the clause
 * (`WHERE EXISTS (… WHERE s.id = t.id)`) counts for every enclosing probe it names. */
export interface Probe {
  readonly targets: ReadonlySet<Entry>;
  hit: boolean;
  readonly outer: Probe | undefined;
}

/**
 * The walk's state and its generic part. The statement handlers live in the modules named in
 * the imports above (functions of the walker); the members they use are public.
 */
export class Walker {
  c = new Collector();
  private depth = 0;
  probe: Probe | undefined;
  /** Function calls walked so far (a FROM-less SELECT without any returns one row). */
  calls = 0;

  constructor(private readonly budget: { nodes: number }) {}

  topLevel(stmt: unknown): void {
    const n = asNode(stmt);
    if (n === undefined) return;
    statement(this, n[0], n[1], new Scope(undefined), true);
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

  enter(): void {
    this.budget.nodes--;
    if (++this.depth > MAX_WALK_DEPTH || this.budget.nodes < 0) throw tooComplex();
  }

  /** Pairs with enter(), in a finally. */
  leave(): void {
    this.depth--;
  }

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
      this.leave();
    }
  }

  visitFields(body: Obj, scope: Scope, skip: ReadonlySet<string>): void {
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
        funcCall(this, body, scope);
        return;
      case "TypeCast":
        typeCast(this, body, scope);
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
        fromItem(this, { [type]: body }, new Scope(scope));
        return;
      case "WithClause":
        withClause(this, body, new Scope(scope));
        return;
      case "DefElem": {
        const name = str(body, "defname");
        if (name !== undefined && FUNCTION_OPTIONS.has(name)) {
          const tn = nodeOf(body.arg, "TypeName");
          const fn = tn === undefined ? stringList(listItems(body.arg) ?? []) : stringList(list(tn, "names"));
          if (fn !== undefined && fn.length > 0) this.c.fn(fn.join("."));
        }
        this.visitFields(body, scope, SKIP_NONE);
        return;
      }
      case "ObjectWithArgs": {
        // A function named by a DDL statement (CREATE CAST … WITH FUNCTION, CREATE TRANSFORM,
        // CREATE OPERATOR CLASS … FUNCTION, ALTER FUNCTION): reported as if called.
        const fn = stringList(list(body, "objname"));
        if (fn !== undefined && fn.length > 0) this.c.fn(fn.join("."));
        this.visitFields(body, scope, SKIP_NONE);
        return;
      }
      default:
        if (type.endsWith("Stmt")) {
          statement(this, type, body, scope, false);
          return;
        }
        this.visitFields(body, scope, SKIP_NONE);
    }
  }

  relation(rv: Obj): QualifiedName | undefined {
    const name = str(rv, "relname");
    if (name === undefined) return undefined;
    const schema = str(rv, "schemaname");
    // CREATE TEMP …: the relation lives in pg_temp, first in every search_path for relations,
    // where it shadows the permanent relation of the same name.
    if (schema === undefined && str(rv, "relpersistence") === "t") return qn("pg_temp", name);
    return qn(schema, name);
  }

  /** The relation in field `key` of `body` (an inline RangeVar), if any. */
  relationAt(body: Obj, key: string): QualifiedName | undefined {
    const rv = obj(body, key);
    return rv === undefined ? undefined : this.relation(rv);
  }

  private rangeVarRead(rv: Obj, scope: Scope): void {
    const r = this.relation(rv);
    if (r === undefined) return;
    if (r.schema === undefined && scope.isCte(r.name)) return;
    this.c.readRel(r);
  }

  entryFor(rv: Obj, r: QualifiedName, relations: readonly QualifiedName[]): Entry {
    const alias = obj(rv, "alias");
    const aliasName = alias === undefined ? undefined : str(alias, "aliasname");
    return aliasName !== undefined ? derived(aliasName, relations, renamesColumns(alias)) : self(r, relations);
  }

  private hitProbe(entries: readonly Entry[]): void {
    // A Set, and probes already hit skipped: a reference costs O(entries) per open probe.
    for (let p = this.probe; p !== undefined; p = p.outer) if (!p.hit && entries.some((e) => p.targets.has(e))) p.hit = true;
  }

  columnOf(entries: readonly Entry[], column: string, access: "read" | "write"): void {
    this.hitProbe(entries);
    for (const e of entries) for (const r of e.relations) this.c.column(r, e.renamed === true ? "*" : column, access);
  }

  /** Entries an unqualified column may belong to: every item of every visible level. */
  unqualifiedColumn(name: string, scope: Scope, access: "read" | "write"): void {
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
    this.c.fn(field);
    this.columnOf(entries, "*", "read");
  }

  /** `(value).f`: a field selection on a value that is not a row of a FROM item may be the
   * call `f(value)` (`('/etc/passwd'::text).pg_read_file`): reported as a function. */
  private fieldSelections(fields: readonly unknown[]): void {
    for (const f of fields) {
      const name = typeof f === "string" ? f : stringValue(f);
      if (name !== undefined) this.c.fn(name);
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
}

const SKIP_LOCKED_RELS: ReadonlySet<string> = new Set(["lockedRels"]);
