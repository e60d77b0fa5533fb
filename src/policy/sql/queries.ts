/**
 * Queries: SELECT (set operations, SELECT … INTO), FROM-clause items and their scopes, WITH
 * clauses (CTE visibility), and the DML statements INSERT (… ON CONFLICT), UPDATE, DELETE and
 * MERGE with their targets, RETURNING lists and WHERE-clause reach (`noWhere`).
 */
import { asNode, bool, list, nodeOf, obj, str, stringValue, type Obj } from "./ast.js";
import type { QualifiedName } from "./facts.js";
import { derived, renamesColumns, Scope, type Entry } from "./scope.js";
import type { Probe, Walker } from "./walk.js";

const SKIP_SETOP: ReadonlySet<string> = new Set(["larg", "rarg", "withClause", "intoClause"]);
const SKIP_SELECT: ReadonlySet<string> = new Set(["fromClause", "withClause", "intoClause", "whereClause"]);
const SKIP_RELATION: ReadonlySet<string> = new Set(["relation"]);
const SKIP_ALIAS: ReadonlySet<string> = new Set(["alias"]);
const SKIP_SUBQUERY: ReadonlySet<string> = new Set(["alias", "subquery"]);

export function withClause(w: Walker, clause: Obj, level: Scope): void {
  const ctes = list(clause, "ctes");
  const recursive = bool(clause, "recursive");
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
    if (b !== undefined) w.visit(b.ctequery, level);
    const n = names[i];
    if (n !== undefined) level.ctes?.add(n);
  });
}

/**
 * Walks a SELECT (or set operation, or VALUES list) at a new query level. Returns whether its
 * rows are bounded: a VALUES list, a FROM-less SELECT that calls no function (so no
 * set-returning one), a SELECT whose FROM items are all bounded or whose WHERE refers to
 * them; a set operation when both sides are. Anything else may return every row of a table:
 * an upsert fed by it is a bulk update (see insert()).
 */
export function select(w: Walker, body: Obj, parent: Scope): boolean {
  w.enter();
  try {
    const level = new Scope(parent);
    const withc = obj(body, "withClause");
    if (withc !== undefined) withClause(w, withc, level);
    into(w, body);
    const op = str(body, "op");
    if (op !== undefined && op !== "SETOP_NONE") {
      const l = obj(body, "larg");
      const r = obj(body, "rarg");
      const lb = l === undefined || select(w, l, level);
      const rb = r === undefined || select(w, r, level);
      w.visitFields(body, level, SKIP_SETOP);
      return lb && rb;
    }
    const valuesOnly = list(body, "valuesLists").length > 0 && list(body, "targetList").length === 0;
    if (!valuesOnly) w.c.op("select");
    const from = list(body, "fromClause");
    for (const item of from) fromItem(w, item, level);
    level.where = body.whereClause;
    const calls = w.calls;
    const restricted = restricts(w, body.whereClause, level, level.entries);
    w.visitFields(body, level, SKIP_SELECT);
    if (valuesOnly) return true;
    if (from.length === 0) return w.calls === calls;
    return restricted || (level.entries.length > 0 && level.entries.every((e) => e.bounded === true));
  } finally {
    w.leave();
  }
}

/** SELECT … INTO creates a table. */
export function into(w: Walker, body: Obj): void {
  const into = obj(body, "intoClause");
  const rel = into === undefined ? undefined : obj(into, "rel");
  const r = rel === undefined ? undefined : w.relation(rel);
  if (r === undefined) return;
  w.c.op("create_table");
  w.c.writeRel(r);
  w.c.column(r, "*", "write");
}

/** Adds a FROM-clause item's entries to `level` and returns them. */
export function fromItem(w: Walker, item: unknown, level: Scope): readonly Entry[] {
  const n = asNode(item);
  if (n === undefined) {
    w.visit(item, level);
    return [];
  }
  const [type, body] = n;
  w.enter();
  try {
    switch (type) {
      case "RangeVar": {
        const r = w.relation(body);
        if (r === undefined) return [];
        const isCte = r.schema === undefined && level.isCte(r.name);
        if (!isCte) w.c.readRel(r);
        const e = w.entryFor(body, r, isCte ? [] : [r]);
        level.entries.push(e);
        return [e];
      }
      case "JoinExpr": {
        const left = fromItem(w, body.larg, level);
        const right = fromItem(w, body.rarg, level);
        const sides = [...left, ...right];
        const rels = sides.flatMap((e) => e.relations);
        for (const u of list(body, "usingClause")) {
          const col = stringValue(u);
          if (col !== undefined) w.columnOf(sides, col, "read");
        }
        if (bool(body, "isNatural")) w.columnOf(sides, "*", "read");
        w.visit(body.quals, level);
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
        const entries = fromItem(w, body.relation, level);
        w.visitFields(body, level, SKIP_RELATION);
        return entries;
      }
      default: {
        // RangeSubselect, RangeFunction, RangeTableFunc, JsonTable: derived items whose own
        // facts are collected by walking them (LATERAL or not, they see this level: harmless
        // over-approximation).
        const sub = type === "RangeSubselect" ? nodeOf(body.subquery, "SelectStmt") : undefined;
        let bounded = false;
        if (sub === undefined) w.visitFields(body, level, SKIP_ALIAS);
        else {
          w.visitFields(body, level, SKIP_SUBQUERY);
          bounded = select(w, sub, level);
        }
        const a = obj(body, "alias");
        const refname = a === undefined ? undefined : str(a, "aliasname");
        const e = derived(refname, []);
        if (bounded) e.bounded = true;
        level.entries.push(e);
        return [e];
      }
    }
  } finally {
    w.leave();
  }
}

/** RETURNING: sees the target as `old`/`new` (PostgreSQL 18) or their renamed aliases. */
export function returning(w: Walker, body: Obj, level: Scope, target: Entry): void {
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
  w.visit(list(rc, "exprs"), level);
}

export function dmlTarget(w: Walker, body: Obj): { target: Entry; r: QualifiedName } | undefined {
  const rv = obj(body, "relation");
  const r = rv === undefined ? undefined : w.relation(rv);
  if (rv === undefined || r === undefined) return undefined;
  // The target of INSERT/UPDATE/DELETE/MERGE is always a table: never a CTE of the same name.
  w.c.writeRel(r);
  const target = w.entryFor(rv, r, [r]);
  return { target, r };
}

/** A DML statement's query level (with its WITH clause), operation tag and written target. */
function dmlStart(w: Walker, body: Obj, parent: Scope, op: string): { level: Scope; t: { target: Entry; r: QualifiedName } | undefined } {
  const level = new Scope(parent);
  const withc = obj(body, "withClause");
  if (withc !== undefined) withClause(w, withc, level);
  w.c.op(op);
  return { level, t: dmlTarget(w, body) };
}

/** The columns an INSERT (or MERGE … INSERT) column list writes: all of them when absent. */
function insertColumns(w: Walker, r: QualifiedName, cols: readonly unknown[]): void {
  if (cols.length === 0) w.c.column(r, "*", "write");
  for (const col of cols) {
    const rt = nodeOf(col, "ResTarget");
    const name = rt === undefined ? undefined : str(rt, "name");
    if (name !== undefined) w.c.column(r, name, "write");
  }
}

/** Walks a WHERE clause (join condition, MERGE action condition), noting whether it ever
 * refers to the rows of one of `targets`. */
export function restricts(w: Walker, where: unknown, level: Scope, targets: readonly Entry[]): boolean {
  if (where === undefined) return false;
  const saved = w.probe;
  const probe: Probe = { targets: new Set(targets), hit: false, outer: saved };
  w.probe = probe;
  try {
    w.visit(where, level);
  } finally {
    w.probe = saved;
  }
  return probe.hit;
}

export function insert(w: Walker, body: Obj, parent: Scope): void {
  const { level, t } = dmlStart(w, body, parent, "insert");
  if (t !== undefined) insertColumns(w, t.r, list(body, "cols"));
  // The source query can't see the target; it sees the WITH clause. DEFAULT VALUES (no
  // source) is one row.
  const source = nodeOf(body.selectStmt, "SelectStmt");
  let bounded = true;
  if (source === undefined) w.visit(body.selectStmt, level);
  else {
    w.enter();
    try {
      bounded = select(w, source, level);
    } finally {
      w.leave();
    }
  }
  if (t === undefined) return;
  level.entries.push(t.target, derived("excluded", [t.r]));
  const oc = obj(body, "onConflictClause");
  if (oc !== undefined) {
    w.visit(oc.infer, level);
    if (str(oc, "action") === "ONCONFLICT_UPDATE") {
      w.c.op("update");
      setTargets(w, list(oc, "targetList"), t.r, level);
      // The update arm rewrites every target row that conflicts with a source row: its reach
      // is the source's. Without a WHERE of its own on the target, an upsert fed by a query
      // that may return a whole table is a bulk update.
      if (!restricts(w, oc.whereClause, level, [t.target]) && !bounded) w.c.noWhere = true;
    } else w.visit(oc.whereClause, level);
  }
  returning(w, body, level, t.target);
}

/** UPDATE … SET / ON CONFLICT DO UPDATE SET / MERGE … UPDATE SET targets. */
export function setTargets(w: Walker, targets: readonly unknown[], r: QualifiedName, level: Scope): void {
  for (const item of targets) {
    const rt = nodeOf(item, "ResTarget");
    if (rt === undefined) {
      w.visit(item, level);
      continue;
    }
    const name = str(rt, "name");
    if (name !== undefined) w.c.column(r, name, "write");
    w.visit(rt.indirection, level);
    w.visit(rt.val, level);
  }
}

export function update(w: Walker, body: Obj, parent: Scope): void {
  const { level, t } = dmlStart(w, body, parent, "update");
  if (t === undefined) return;
  level.entries.push(t.target);
  for (const item of list(body, "fromClause")) fromItem(w, item, level);
  setTargets(w, list(body, "targetList"), t.r, level);
  if (!restricts(w, body.whereClause, level, [t.target])) w.c.noWhere = true;
  returning(w, body, level, t.target);
}

export function deleteStmt(w: Walker, body: Obj, parent: Scope): void {
  const { level, t } = dmlStart(w, body, parent, "delete");
  if (t === undefined) return;
  level.entries.push(t.target);
  for (const item of list(body, "usingClause")) fromItem(w, item, level);
  if (!restricts(w, body.whereClause, level, [t.target])) w.c.noWhere = true;
  returning(w, body, level, t.target);
}

export function merge(w: Walker, body: Obj, parent: Scope): void {
  const { level, t } = dmlStart(w, body, parent, "merge");
  if (t === undefined) return;
  level.entries.push(t.target);
  // Like an upsert's update arm, a MATCHED action reaches every target row the source
  // matches: the join restricts it only when it names the target and the source is bounded.
  const source = fromItem(w, body.sourceRelation, level);
  const sourceBounded = source.length > 0 && source.every((e) => e.bounded === true);
  const joinRestricts = restricts(w, body.joinCondition, level, [t.target]) && sourceBounded;
  for (const item of list(body, "mergeWhenClauses")) {
    const wc = nodeOf(item, "MergeWhenClause");
    if (wc === undefined) {
      w.visit(item, level);
      continue;
    }
    const condRestricts = restricts(w, wc.condition, level, [t.target]);
    const cmd = str(wc, "commandType");
    if (cmd === "CMD_UPDATE" || cmd === "CMD_DELETE") {
      w.c.op(cmd === "CMD_UPDATE" ? "update" : "delete");
      // WHEN NOT MATCHED BY SOURCE acts on the target rows the join did not match: only its
      // own condition restricts it.
      const bySource = str(wc, "matchKind") === "MERGE_WHEN_NOT_MATCHED_BY_SOURCE";
      if ((bySource || !joinRestricts) && !condRestricts) w.c.noWhere = true;
      setTargets(w, list(wc, "targetList"), t.r, level);
    } else if (cmd === "CMD_INSERT") {
      w.c.op("insert");
      insertColumns(w, t.r, list(wc, "targetList"));
      w.visit(wc.values, level);
    }
  }
  returning(w, body, level, t.target);
}
