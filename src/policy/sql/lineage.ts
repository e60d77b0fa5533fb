/**
 * Column lineage: for each output column of a statement, the table columns its value may be
 * derived from (`lower(email)` → users.email, `(select password from users limit 1)` →
 * users.password, `select u from users u` → every column of users). A result field with no
 * table origin in its RowDescription (an expression) is masked under the column rules of its
 * sources (src/masking/plan.ts).
 *
 * Over-approximating is the safe direction: an unqualified reference is taken as a column of
 * every relation of its FROM level it may belong to; a subquery's value derives from every
 * column the subquery reads; a whole-row reference or `*` from every column of the relation.
 * Where the mapping from outputs to the result's fields is not known (a `*` in the output list,
 * a statement that is not a query), `outputs` is absent and the caller falls back to `reads`:
 * every column the statement reads anywhere. A walk over its bound reads "anything".
 *
 * Longer than ~500 lines on purpose: one recursive walk over PostgreSQL's query tree (FROM
 * levels, CTEs, subqueries, set operations, RETURNING); its cases share the scope it carries.
 */
import type { SourceColumn, StatementLineage } from "../../core/decision.js";
import { asNode, isObj, list, nodeOf, obj, str, stringValue, type Obj } from "./ast.js";
import type { StatementFacts } from "./facts.js";

export type { SourceColumn, StatementLineage } from "../../core/decision.js";

/** Nodes visited per statement before giving up (then: the statement reads "anything"). */
const MAX_NODES = 200_000;
const MAX_DEPTH = 400;
/** Every column of every relation: what a walk that gave up reports. */
export const ANY_COLUMN: SourceColumn = { column: "*" };

type Sources = SourceColumn[];

/** A FROM item of one query level. */
interface Item {
  /** The name a reference qualifies with (alias, else relation or CTE name). */
  readonly refname: string | undefined;
  /** A base relation (or a view: resolved as a relation by the caller). */
  readonly rel?: { readonly schema?: string; readonly name: string };
  /** A derived item (subquery, CTE, function, aliased join): its columns by name. */
  readonly columns?: ReadonlyMap<string, Sources>;
  /** Every source of a derived item (its whole row). */
  readonly all?: Sources;
}

class Level {
  readonly items: Item[] = [];
  ctes: Map<string, Query> | undefined;
  constructor(readonly parent: Level | undefined) {}

  cte(name: string): Query | undefined {
    return this.ctes?.get(name) ?? this.parent?.cte(name);
  }
}

/** One query's outputs: names (when known) and sources per column; `star` when `*` was used. */
interface Query {
  readonly names: (string | undefined)[];
  readonly outputs: Sources[];
  readonly star: boolean;
  /** Every column read anywhere in the query (WHERE, JOIN conditions… included). */
  readonly reads: Sources;
}

class GaveUp extends Error {}

class LineageWalker {
  #nodes = 0;
  #depth = 0;
  /** Every column referenced anywhere in the statement. */
  readonly reads: Sources = [];

  #tick(): void {
    if (++this.#nodes > MAX_NODES || this.#depth > MAX_DEPTH) throw new GaveUp();
  }

  #down<T>(f: () => T): T {
    this.#depth++;
    try {
      this.#tick();
      return f();
    } finally {
      this.#depth--;
    }
  }

  /** A SelectStmt body (or set operation, or VALUES list) in a new level under `parent`. */
  query(body: Obj, parent: Level | undefined): Query {
    return this.#down(() => {
      const level = new Level(parent);
      const withc = obj(body, "withClause");
      if (withc !== undefined) this.#with(withc, level);
      const op = str(body, "op");
      if (op !== undefined && op !== "SETOP_NONE") {
        const l = obj(body, "larg");
        const r = obj(body, "rarg");
        const lq = l === undefined ? undefined : this.query(l, level);
        const rq = r === undefined ? undefined : this.query(r, level);
        const n = Math.max(lq?.outputs.length ?? 0, rq?.outputs.length ?? 0);
        const outputs: Sources[] = [];
        for (let i = 0; i < n; i++) outputs.push([...(lq?.outputs[i] ?? []), ...(rq?.outputs[i] ?? [])]);
        // Column names of a set operation are the left side's.
        return {
          names: lq?.names ?? [],
          outputs,
          star: (lq?.star ?? false) || (rq?.star ?? false) || lq?.outputs.length !== rq?.outputs.length,
          reads: [...(lq?.reads ?? []), ...(rq?.reads ?? [])],
        };
      }
      const reads: Sources = [];
      for (const f of list(body, "fromClause")) this.#fromItem(f, level, reads);
      const values = list(body, "valuesLists");
      if (values.length > 0 && list(body, "targetList").length === 0) {
        const outputs: Sources[] = [];
        for (const row of values) {
          const items = nodeOf(row, "List");
          list(items ?? {}, "items").forEach((e, i) => {
            const s = this.expr(e, level);
            reads.push(...s);
            outputs[i] = [...(outputs[i] ?? []), ...s];
          });
        }
        return { names: outputs.map((_, i) => `column${i + 1}`), outputs, star: false, reads };
      }
      const { names, outputs, star } = this.#targets(list(body, "targetList"), level, reads);
      // Everything else the query refers to (WHERE, GROUP BY, HAVING, ORDER BY, windows…).
      for (const key of ["whereClause", "groupClause", "havingClause", "windowClause", "sortClause", "distinctClause", "limitCount", "limitOffset"]) {
        const v = body[key];
        if (v !== undefined) reads.push(...this.expr(v, level));
      }
      reads.push(...outputs.flat());
      return { names, outputs, star, reads };
    });
  }

  #targets(targets: readonly unknown[], level: Level, reads: Sources): { names: (string | undefined)[]; outputs: Sources[]; star: boolean } {
    const names: (string | undefined)[] = [];
    const outputs: Sources[] = [];
    let star = false;
    for (const t of targets) {
      const rt = nodeOf(t, "ResTarget");
      if (rt === undefined) {
        star = true;
        reads.push(...this.expr(t, level));
        continue;
      }
      const val = rt["val"];
      const ref = nodeOf(val, "ColumnRef");
      const fields = ref === undefined ? [] : list(ref, "fields");
      if (fields.some((f) => nodeOf(f, "A_Star") !== undefined)) star = true;
      const s = this.expr(val, level);
      outputs.push(s);
      names.push(str(rt, "name") ?? (fields.length > 0 ? stringValue(fields[fields.length - 1]) : undefined));
    }
    return { names, outputs, star };
  }

  #with(clause: Obj, level: Level): void {
    level.ctes ??= new Map();
    const recursive = clause["recursive"] === true;
    for (const c of list(clause, "ctes")) {
      const b = nodeOf(c, "CommonTableExpr");
      if (b === undefined) continue;
      const name = str(b, "ctename");
      const inner = asNode(b["ctequery"]);
      let q: Query | undefined;
      if (recursive && name !== undefined && inner !== undefined) {
        // A recursive CTE reads itself: a first pass with its self-references carrying
        // nothing tells what its body reads; every row it makes is built from that, so the
        // second pass lets each self-reference carry all of it (by any name).
        level.ctes.set(name, { names: [], outputs: [], star: true, reads: [] });
        const first = this.statement(inner[0], inner[1], level);
        level.ctes.set(name, { names: [], outputs: [], star: true, reads: [...first.reads, ...first.outputs.flat()] });
      }
      if (inner !== undefined) q = this.statement(inner[0], inner[1], level);
      const colnames = list(b, "aliascolnames").map(stringValue);
      if (name !== undefined && q !== undefined) {
        level.ctes.set(name, {
          names: q.names.map((n, i) => colnames[i] ?? n),
          outputs: q.outputs,
          star: q.star,
          reads: recursive ? [...q.reads, ...q.outputs.flat()] : q.reads,
        });
      }
    }
  }

  /** A FROM item: adds its items to the level. */
  #fromItem(v: unknown, level: Level, reads: Sources): void {
    this.#down(() => {
      const n = asNode(v);
      if (n === undefined) return;
      const [type, body] = n;
      const alias = obj(body, "alias");
      const aliasname = alias === undefined ? undefined : str(alias, "aliasname");
      const colnames = alias === undefined ? [] : list(alias, "colnames").map(stringValue);
      switch (type) {
        case "RangeVar": {
          const name = str(body, "relname") ?? "";
          const schema = str(body, "schemaname");
          const cte = schema === undefined ? level.cte(name) : undefined;
          if (cte !== undefined) {
            level.items.push(derivedItem(aliasname ?? name, cte, colnames));
            return;
          }
          // Columns renamed by an alias (`users u(a, b)`): any column of the relation.
          if (colnames.length > 0) {
            const all = [{ ...(schema === undefined ? {} : { schema }), relation: name, column: "*" }];
            level.items.push({ refname: aliasname, all, columns: new Map() });
            return;
          }
          level.items.push({ refname: aliasname ?? name, rel: schema === undefined ? { name } : { schema, name } });
          return;
        }
        case "RangeSubselect": {
          const inner = asNode(body["subquery"]);
          // LATERAL: the subquery sees this level's items; otherwise only outer levels (an
          // over-approximation to let it see them either way).
          const q = inner === undefined ? undefined : this.statement(inner[0], inner[1], level);
          if (q !== undefined) {
            reads.push(...q.reads);
            level.items.push(derivedItem(aliasname, q, colnames));
          }
          return;
        }
        case "RangeFunction":
        case "RangeTableFunc":
        case "RangeTableSample":
        case "JsonTable": {
          if (type === "RangeTableSample") this.#fromItem(body["relation"], level, reads);
          // A function's columns derive from every column its arguments read.
          const s: Sources = [];
          for (const [k, f] of Object.entries(body)) if (k !== "alias" && k !== "relation") s.push(...this.expr(f, level));
          reads.push(...s);
          level.items.push({ refname: aliasname, all: s, columns: new Map() });
          return;
        }
        case "JoinExpr": {
          const before = level.items.length;
          this.#fromItem(body["larg"], level, reads);
          this.#fromItem(body["rarg"], level, reads);
          const quals = body["quals"];
          if (quals !== undefined) reads.push(...this.expr(quals, level));
          if (aliasname !== undefined) {
            // `(a JOIN b) AS j`: j.x may be any column of either side.
            const all: Sources = [];
            for (const it of level.items.slice(before)) all.push(...wholeRow(it));
            level.items.push({ refname: aliasname, all, columns: new Map() });
          }
          return;
        }
        default: {
          // An item this walker does not know: anything it reads, under any name.
          const s = this.expr(body, level);
          reads.push(...s);
          level.items.push({ refname: aliasname, all: [ANY_COLUMN], columns: new Map() });
        }
      }
    });
  }

  /** Any statement: its query's outputs (RETURNING lists for DML), or reads only. */
  statement(type: string, body: Obj, parent: Level | undefined): Query {
    switch (type) {
      case "SelectStmt":
        return this.query(body, parent);
      case "InsertStmt":
      case "UpdateStmt":
      case "DeleteStmt":
      case "MergeStmt":
        return this.#dml(body, parent);
      default: {
        const reads = this.expr(body, parent ?? new Level(undefined));
        return { names: [], outputs: [], star: true, reads };
      }
    }
  }

  #dml(body: Obj, parent: Level | undefined): Query {
    return this.#down(() => {
      const level = new Level(parent);
      const withc = obj(body, "withClause");
      if (withc !== undefined) this.#with(withc, level);
      const reads: Sources = [];
      const rel = obj(body, "relation");
      if (rel !== undefined) this.#fromItem({ RangeVar: rel }, level, reads);
      for (const key of ["fromClause", "usingClause"]) for (const f of list(body, key)) this.#fromItem(f, level, reads);
      const src = body["sourceRelation"];
      if (src !== undefined) this.#fromItem(src, level, reads);
      for (const [k, v] of Object.entries(body)) {
        if (["relation", "fromClause", "usingClause", "sourceRelation", "withClause", "returningList", "returningClause"].includes(k)) continue;
        reads.push(...this.expr(v, level));
      }
      const returning = obj(body, "returningClause");
      const targets = returning !== undefined ? list(returning, "exprs") : list(body, "returningList");
      const { names, outputs, star } = this.#targets(targets, level, reads);
      reads.push(...outputs.flat());
      return { names, outputs, star, reads };
    });
  }

  /** The sources of an expression (every column it refers to, subqueries included). */
  expr(v: unknown, level: Level): Sources {
    const out: Sources = [];
    this.#collect(v, level, out);
    return out;
  }

  #collect(v: unknown, level: Level, out: Sources): void {
    this.#down(() => {
      if (Array.isArray(v)) {
        for (const x of v) this.#collect(x, level, out);
        return;
      }
      if (!isObj(v)) return;
      const n = asNode(v);
      if (n !== undefined) {
        const [type, body] = n;
        if (type === "ColumnRef") {
          const s = this.#columnRef(list(body, "fields"), level);
          out.push(...s);
          this.reads.push(...s);
          return;
        }
        if (type === "SubLink") {
          const inner = asNode(body["subselect"]);
          if (inner !== undefined) {
            const q = this.statement(inner[0], inner[1], level);
            // The value (or the existence) of a subquery may show anything it read.
            out.push(...q.reads);
          }
          this.#collect(body["testexpr"], level, out);
          return;
        }
        if (type === "SelectStmt" || type === "InsertStmt" || type === "UpdateStmt" || type === "DeleteStmt" || type === "MergeStmt") {
          out.push(...this.statement(type, body, level).reads);
          return;
        }
        if (type === "ParamRef") {
          // `$1` of a SQL function body or a rule: no column.
          return;
        }
        this.#collect(body, level, out);
        return;
      }
      for (const k in v) this.#collect(v[k], level, out);
    });
  }

  /** A column reference: `x`, `t.x`, `s.t.x`, `t.*`, `*`, or a whole-row `t`. */
  #columnRef(fields: readonly unknown[], level: Level): Sources {
    const names = fields.map((f) => (nodeOf(f, "A_Star") !== undefined ? "*" : stringValue(f)));
    if (names.some((n) => n === undefined)) return [ANY_COLUMN];
    const parts = names as string[];
    const last = parts[parts.length - 1] ?? "*";
    if (parts.length === 1) {
      // `*`: every item of the nearest level that has any. `x`: a column of any item of any
      // level (an unqualified reference in a subquery may be the outer query's column).
      const out: Sources = [];
      for (let l: Level | undefined = level; l !== undefined; l = l.parent) {
        if (l.items.length === 0) continue;
        for (const it of l.items) {
          if (last === "*") {
            out.push(...wholeRow(it));
            continue;
          }
          if (it.rel !== undefined) {
            out.push({ ...(it.rel.schema === undefined ? {} : { schema: it.rel.schema }), relation: it.rel.name, column: last });
          } else {
            const c = it.columns?.get(last);
            if (c !== undefined) out.push(...c);
            // A derived item whose column names are unknown may have it.
            else if (it.columns === undefined || it.columns.size === 0) out.push(...(it.all ?? []));
          }
          // A whole-row reference to the item itself (`select u from users u`).
          if (it.refname === last) out.push(...wholeRow(it));
        }
        if (last === "*") return out;
      }
      // Not a column of any FROM item: a column of something the walker cannot see (a
      // function's OUT parameter, a trigger's NEW): any column of that name.
      if (last !== "*" && out.length === 0) out.push({ column: last });
      return out;
    }
    // Qualified: the items the qualifier names, innermost level first.
    const qual = parts.slice(0, -1);
    const relname = qual[qual.length - 1];
    for (let l: Level | undefined = level; l !== undefined; l = l.parent) {
      const hits = l.items.filter((it) => it.refname === relname && (qual.length === 1 || it.rel === undefined || it.rel.schema === undefined || it.rel.schema === qual[qual.length - 2]));
      if (hits.length === 0) continue;
      const out: Sources = [];
      for (const it of hits) {
        if (last === "*") out.push(...wholeRow(it));
        else if (it.rel !== undefined) {
          // `t.x` may be the call x(t) (attribute notation) when t has no column x: the caller
          // checks the relation's columns (a source naming no column of it is its whole row).
          out.push({ ...(it.rel.schema === undefined ? {} : { schema: it.rel.schema }), relation: it.rel.name, column: last });
        } else out.push(...(it.columns?.get(last) ?? it.all ?? []));
      }
      return out;
    }
    // `rel.x` where rel is not in scope (a composite's field, e.g. `(row).x`): any `x`.
    return [{ ...(qual.length >= 2 ? { schema: qual[qual.length - 2] } : {}), ...(relname === undefined ? {} : { relation: relname }), column: last }, { column: last }];
  }
}

function wholeRow(it: Item): Sources {
  if (it.rel !== undefined) return [{ ...(it.rel.schema === undefined ? {} : { schema: it.rel.schema }), relation: it.rel.name, column: "*" }];
  return it.all ?? [...(it.columns?.values() ?? [])].flat();
}

function derivedItem(refname: string | undefined, q: Query, colnames: readonly (string | undefined)[]): Item {
  const columns = new Map<string, Sources>();
  const all: Sources = [...q.outputs.flat()];
  if (q.star) all.push(...q.reads);
  q.outputs.forEach((s, i) => {
    const name = colnames[i] ?? q.names[i];
    if (name !== undefined) columns.set(name, [...(columns.get(name) ?? []), ...s]);
  });
  // A `*` inside: column names are not known, so any name may be any of its columns.
  return q.star ? { refname, all, columns: new Map() } : { refname, all, columns };
}

function dedupe(s: readonly SourceColumn[]): SourceColumn[] {
  const seen = new Map<string, SourceColumn>();
  for (const c of s) seen.set(`${c.schema ?? ""}\u0000${c.relation ?? ""}\u0000${c.column}`, c);
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, c]) => c);
}

/**
 * The lineage of one parsed statement (`stmts[i].stmt` of libpg-query's tree). `facts` (the
 * walker's column facts of the same statement) widen what it reads. Never throws.
 */
export function statementLineage(stmt: unknown, facts?: StatementFacts): StatementLineage {
  const fromFacts: SourceColumn[] = [];
  for (const c of facts?.columns ?? []) {
    if (c.access !== "read") continue;
    fromFacts.push({ ...(c.relation?.schema === undefined ? {} : { schema: c.relation.schema }), ...(c.relation === undefined ? {} : { relation: c.relation.name }), column: c.column });
  }
  const n = asNode(stmt);
  if (n === undefined) return { reads: [ANY_COLUMN] };
  const w = new LineageWalker();
  try {
    let [type, body] = n;
    // Statements whose rows are those of an inner query.
    for (;;) {
      const inner = type === "DeclareCursorStmt" || type === "PrepareStmt" ? asNode(body["query"]) : undefined;
      if (inner === undefined) break;
      [type, body] = inner;
    }
    if (type === "ExplainStmt") {
      // A plan's text shows expressions and constants of the statement, never table values.
      return { outputs: [[]], reads: [] };
    }
    const q = w.statement(type, body, undefined);
    const reads = dedupe([...q.reads, ...w.reads, ...fromFacts]);
    const rows = type === "SelectStmt" || q.outputs.length > 0;
    if (q.star || !rows) return { reads };
    return { outputs: q.outputs.map(dedupe), reads };
  } catch (e) {
    if (e instanceof GaveUp || e instanceof RangeError) return { reads: [ANY_COLUMN] };
    throw e;
  }
}

/** A parent and a child that share columns (inheritance or partitioning), as written. */
export interface InheritanceLink {
  readonly parent: { readonly schema?: string; readonly name: string };
  readonly child: { readonly schema?: string; readonly name: string };
}

function rangeVarName(v: unknown): { schema?: string; name: string } | undefined {
  const b = isObj(v) ? (nodeOf(v, "RangeVar") ?? v) : undefined;
  const name = b === undefined ? undefined : str(b, "relname");
  if (b === undefined || name === undefined) return undefined;
  const schema = str(b, "schemaname");
  return schema === undefined ? { name } : { schema, name };
}

/**
 * The inheritance links a statement makes: `ALTER TABLE c INHERIT p`, `ALTER TABLE p ATTACH
 * PARTITION c`, `CREATE TABLE c … INHERITS (p)` / `PARTITION OF p`. Until it commits the
 * gateway's catalog connection cannot see them; the session remembers them meanwhile.
 */
export function inheritanceLinks(stmt: unknown): InheritanceLink[] {
  const out: InheritanceLink[] = [];
  const alter = nodeOf(stmt, "AlterTableStmt");
  if (alter !== undefined) {
    const rel = rangeVarName(obj(alter, "relation"));
    if (rel === undefined) return out;
    for (const c of list(alter, "cmds")) {
      const cmd = nodeOf(c, "AlterTableCmd");
      if (cmd === undefined) continue;
      const subtype = str(cmd, "subtype");
      if (subtype === "AT_AddInherit") {
        const parent = rangeVarName(cmd["def"]);
        if (parent !== undefined) out.push({ parent, child: rel });
      } else if (subtype === "AT_AttachPartition") {
        const part = nodeOf(cmd["def"], "PartitionCmd");
        const child = part === undefined ? undefined : rangeVarName(obj(part, "name"));
        if (child !== undefined) out.push({ parent: rel, child });
      }
    }
    return out;
  }
  const create = nodeOf(stmt, "CreateStmt") ?? nodeOf(stmt, "CreateForeignTableStmt");
  const base = create === undefined ? undefined : (obj(create, "base") ?? create);
  if (base !== undefined) {
    const child = rangeVarName(obj(base, "relation"));
    if (child === undefined) return out;
    for (const p of list(base, "inhRelations")) {
      const parent = rangeVarName(p);
      if (parent !== undefined) out.push({ parent, child });
    }
  }
  return out;
}
