/**
 * Utility statements with data effects: COPY (direction, PROGRAM, server files), EXPLAIN (only
 * ANALYZE executes) and VACUUM / ANALYZE.
 */
import { asNode, bool, list, nodeOf, obj, str, stringList, type Obj } from "./ast.js";
import { Collector, UNKNOWN } from "./collector.js";
import { Scope, self } from "./scope.js";
import { tags } from "./statements.js";
import type { Walker } from "./walk.js";

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

export function copy(w: Walker, body: Obj, scope: Scope): void {
  const c = w.c;
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
  const r = w.relationAt(body, "relation");
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
  w.visit(body.query, scope);
  w.visit(body.whereClause, level);
}

export function explain(w: Walker, body: Obj, scope: Scope): void {
  tags(w, "ExplainStmt", body);
  let analyze = false;
  for (const o of list(body, "options")) {
    const d = nodeOf(o, "DefElem");
    if (d === undefined || str(d, "defname") !== "analyze") continue;
    if (d.arg === undefined) analyze = true;
    else {
      w.c.literalDependent = true;
      analyze = !isFalseOption(d.arg);
    }
  }
  if (analyze) {
    // EXPLAIN ANALYZE executes the statement.
    w.visit(body.query, scope);
    return;
  }
  const outer = w.c;
  const inner = new Collector();
  w.c = inner;
  try {
    w.visit(body.query, scope);
  } finally {
    w.c = outer;
  }
  outer.merge(inner, true);
}

export function vacuum(w: Walker, body: Obj): void {
  const c = w.c;
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
    const r = rv === undefined ? undefined : w.relation(rv);
    if (r !== undefined) c.writeRel(r);
  }
}
