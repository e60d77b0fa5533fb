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
const SKIP_SELECT: ReadonlySet<string> = new Set(["fromClause", "withClause", "intoClause"]);
const SKIP_RELATION: ReadonlySet<string> = new Set(["relation"]);
const SKIP_ALIAS: ReadonlySet<string> = new Set(["alias"]);

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

export function select(w: Walker, body: Obj, parent: Scope): void {
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
      if (l !== undefined) select(w, l, level);
      if (r !== undefined) select(w, r, level);
      w.visitFields(body, level, SKIP_SETOP);
      return;
    }
    const valuesOnly = list(body, "valuesLists").length > 0 && list(body, "targetList").length === 0;
    if (!valuesOnly) w.c.op("select");
    for (const item of list(body, "fromClause")) fromItem(w, item, level);
    w.visitFields(body, level, SKIP_SELECT);
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
        w.visitFields(body, level, SKIP_ALIAS);
        const a = obj(body, "alias");
        const refname = a === undefined ? undefined : str(a, "aliasname");
        const e = derived(refname, []);
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

/** Walks a WHERE clause, noting whether it ever refers to the target's rows. */
export function restricts(w: Walker, where: unknown, level: Scope, target: Entry): boolean {
  if (where === undefined) return false;
  const saved = w.probe;
  const probe: Probe = { target, hit: false };
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
  // The source query can't see the target; it sees the WITH clause.
  w.visit(body.selectStmt, level);
  if (t === undefined) return;
  level.entries.push(t.target, derived("excluded", [t.r]));
  const oc = obj(body, "onConflictClause");
  if (oc !== undefined) {
    if (str(oc, "action") === "ONCONFLICT_UPDATE") {
      w.c.op("update");
      setTargets(w, list(oc, "targetList"), t.r, level);
    }
    w.visit(oc.infer, level);
    w.visit(oc.whereClause, level);
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
  if (!restricts(w, body.whereClause, level, t.target)) w.c.noWhere = true;
  returning(w, body, level, t.target);
}

export function deleteStmt(w: Walker, body: Obj, parent: Scope): void {
  const { level, t } = dmlStart(w, body, parent, "delete");
  if (t === undefined) return;
  level.entries.push(t.target);
  for (const item of list(body, "usingClause")) fromItem(w, item, level);
  if (!restricts(w, body.whereClause, level, t.target)) w.c.noWhere = true;
  returning(w, body, level, t.target);
}

export function merge(w: Walker, body: Obj, parent: Scope): void {
  const { level, t } = dmlStart(w, body, parent, "merge");
  if (t === undefined) return;
  level.entries.push(t.target);
  fromItem(w, body.sourceRelation, level);
  const joinRestricts = restricts(w, body.joinCondition, level, t.target);
  for (const item of list(body, "mergeWhenClauses")) {
    const wc = nodeOf(item, "MergeWhenClause");
    if (wc === undefined) {
      w.visit(item, level);
      continue;
    }
    const condRestricts = restricts(w, wc.condition, level, t.target);
    const cmd = str(wc, "commandType");
    if (cmd === "CMD_UPDATE" || cmd === "CMD_DELETE") {
      w.c.op(cmd === "CMD_UPDATE" ? "update" : "delete");
      if (!joinRestricts && !condRestricts) w.c.noWhere = true;
      setTargets(w, list(wc, "targetList"), t.r, level);
    } else if (cmd === "CMD_INSERT") {
      w.c.op("insert");
      insertColumns(w, t.r, list(wc, "targetList"));
      w.visit(wc.values, level);
    }
  }
  returning(w, body, level, t.target);
}
