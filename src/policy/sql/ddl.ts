/**
 * DDL whose facts come from fields the generic walk can't interpret: CREATE TABLE, rules and
 * triggers, CREATE FUNCTION (bodies parsed), DROP, RENAME, ALTER TABLE sub-commands, GRANT and
 * COMMENT / SECURITY LABEL.
 */
import { bool, list, listItems, nodeOf, obj, str, stringList, stringValue, type Obj } from "./ast.js";
import { qn, UNKNOWN } from "./collector.js";
import type { QualifiedName } from "./facts.js";
import { embeddedSql } from "./functions.js";
import { rowTypeRelation } from "./known-functions.js";
import { objectKind, RELATION_OBJECT_TYPES } from "./operations.js";
import { derived, Scope, self } from "./scope.js";
import { genericStatement, tags } from "./statements.js";
import type { Walker } from "./walk.js";

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

/**
 * ALTER TABLE / FOREIGN TABLE / TYPE sub-commands that destroy data or a definition: each gets
 * its own tag, and `drop` too, so that a policy on `drop` covers `ALTER TABLE … DROP COLUMN`
 * as it covers DROP TABLE. Every sub-command written DROP is here, plus the ones that rewrite
 * or remove stored values without saying DROP: a column type change (its USING expression, or
 * the cast, may lose any value), SET EXPRESSION (recomputes a stored generated column),
 * DETACH PARTITION and NO INHERIT (the rows leave the parent table). RENAME keeps the data and
 * has its own tag (`rename`).
 */
const DESTRUCTIVE_SUBCOMMANDS: Readonly<Record<string, string>> = {
  AT_DropColumn: "drop_column",
  AT_AlterColumnType: "alter_column_type",
  AT_DropConstraint: "drop_constraint",
  AT_DropNotNull: "drop_not_null",
  AT_DropExpression: "drop_expression",
  AT_DropIdentity: "drop_identity",
  AT_SetExpression: "set_expression",
  AT_DetachPartition: "detach_partition",
  AT_DetachPartitionFinalize: "detach_partition",
  AT_DropInherit: "no_inherit",
};

/** ALTER DOMAIN sub-commands (the parser's one-letter codes) that drop something. */
const DESTRUCTIVE_DOMAIN_SUBCOMMANDS: Readonly<Record<string, string>> = {
  X: "drop_constraint",
  N: "drop_not_null",
};

const SKIP_NAME: ReadonlySet<string> = new Set(["name"]);
const SKIP_CREATE_TABLE: ReadonlySet<string> = new Set(["relation", "inhRelations"]);

/** The relation a DDL statement changes (its `relation` field), written, and a query level
 * in which its columns can be named (CHECK, DEFAULT, index and partition expressions). */
function writtenTable(w: Walker, body: Obj, scope: Scope): { r: QualifiedName | undefined; level: Scope } {
  const r = w.relationAt(body, "relation");
  const level = new Scope(scope);
  if (r !== undefined) {
    w.c.writeRel(r);
    level.entries.push(self(r, [r]));
  }
  return { r, level };
}

export function createTable(w: Walker, body: Obj, scope: Scope, tag: string): void {
  const c = w.c;
  c.op(tag);
  const { level } = writtenTable(w, body, scope);
  // PARTITION OF attaches to (changes) the parent; INHERITS reads its definition.
  const partition = body.partbound !== undefined;
  for (const item of list(body, "inhRelations")) {
    const p = nodeOf(item, "RangeVar");
    const pr = p === undefined ? undefined : w.relation(p);
    if (pr === undefined) continue;
    if (partition) c.writeRel(pr);
    else c.readRel(pr);
  }
  w.visitFields(body, level, SKIP_CREATE_TABLE);
}

export function ruleOrTrigger(w: Walker, type: string, body: Obj, scope: Scope): void {
  const c = w.c;
  tags(w, type, body);
  const r = w.relationAt(body, "relation");
  const level = new Scope(scope);
  if (r !== undefined) {
    c.writeRel(r);
    // Rule actions, rule and trigger WHEN conditions see the rows as OLD and NEW.
    level.entries.push(derived("old", [r]), derived("new", [r]), self(r, [r]));
  }
  if (type === "CreateTrigStmt") {
    const fn = stringList(list(body, "funcname"));
    if (fn !== undefined && fn.length > 0) c.fn(fn.join("."));
    // A row trigger hands its function every changed row, whole (NEW / OLD): an existing
    // generic audit function would copy secrets somewhere readable.
    if (r !== undefined && bool(body, "row")) c.column(r, "*", "read");
    const constr = obj(body, "constrrel");
    const cr = constr === undefined ? undefined : w.relation(constr);
    if (cr !== undefined) c.readRel(cr);
    w.visit(body.whenClause, level);
    return;
  }
  w.visit(body.whereClause, level);
  w.visit(body.actions, level);
}

export function createFunction(w: Walker, body: Obj, scope: Scope): void {
  const c = w.c;
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
      else embeddedSql(w, text);
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
  w.visit(body.parameters, scope);
  w.visit(body.sql_body, scope);
}

export function drop(w: Walker, body: Obj): void {
  const c = w.c;
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
      const r = nameToRelation(w, listItems(o));
      if (r !== undefined) c.writeRel(r);
    } else if (removeType === "OBJECT_SCHEMA") {
      const s = stringValue(o);
      if (s !== undefined) c.writeRel(qn(s, "*"));
    } else if (removeType === "OBJECT_RULE" || removeType === "OBJECT_TRIGGER" || removeType === "OBJECT_POLICY") {
      // DROP RULE r ON t: [schema,] t, r
      const items = listItems(o);
      if (items !== undefined) {
        const r = nameToRelation(w, items.slice(0, -1));
        if (r !== undefined) c.writeRel(r);
      }
    }
  }
}

/** [catalog,] [schema,] name as a list of String nodes. */
export function nameToRelation(w: Walker, items: readonly unknown[] | undefined): QualifiedName | undefined {
  const names = items === undefined ? undefined : stringList(items);
  if (names === undefined || names.length === 0) return undefined;
  const name = names[names.length - 1] ?? "";
  return qn(names.length >= 2 ? names[names.length - 2] : undefined, name);
}

export function rename(w: Walker, body: Obj): void {
  const c = w.c;
  const renameType = str(body, "renameType");
  const sub = renameType === "OBJECT_COLUMN" || renameType === "OBJECT_TABCONSTRAINT" || renameType === "OBJECT_ATTRIBUTE";
  c.op("alter_" + objectKind(sub ? str(body, "relationType") : renameType));
  c.op("rename");
  w.visit(body.object, new Scope(undefined)); // ALTER FUNCTION f(…) RENAME: reports f
  const newname = str(body, "newname");
  const r = w.relationAt(body, "relation");
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

export function alterTable(w: Walker, body: Obj, scope: Scope): void {
  const c = w.c;
  tags(w, "AlterTableStmt", body);
  const { r, level } = writtenTable(w, body, scope);
  for (const item of list(body, "cmds")) {
    const cmd = nodeOf(item, "AlterTableCmd");
    if (cmd === undefined) {
      w.visit(item, level);
      continue;
    }
    const subtype = str(cmd, "subtype") ?? "";
    const name = str(cmd, "name");
    const extra = DISABLING_SUBCOMMANDS[subtype];
    if (extra !== undefined) c.op(extra);
    // SET DEFAULT and DROP DEFAULT share a sub-command: DROP has no expression.
    const destructive = subtype === "AT_ColumnDefault" && cmd.def === undefined ? "drop_default" : DESTRUCTIVE_SUBCOMMANDS[subtype];
    if (destructive !== undefined) {
      c.op(destructive);
      c.op("drop");
      // CASCADE also drops the views, indexes and constraints that use it, whatever their names.
      if (str(cmd, "behavior") === "DROP_CASCADE") c.writeRel(qn(undefined, "*"));
    }
    if (subtype === "AT_ChangeOwner") c.op("alter_owner");
    if (r !== undefined && name !== undefined && COLUMN_SUBCOMMANDS.has(subtype)) c.column(r, name, "write");
    const def = cmd.def;
    const colDef = nodeOf(def, "ColumnDef");
    const colName = colDef === undefined ? undefined : str(colDef, "colname");
    if (r !== undefined && subtype === "AT_AddColumn" && colName !== undefined) c.column(r, colName, "write");
    const part = nodeOf(def, "PartitionCmd");
    if (part !== undefined) {
      const prv = obj(part, "name");
      const pr = prv === undefined ? undefined : w.relation(prv);
      if (pr !== undefined) c.writeRel(pr);
      w.visitFields(part, level, SKIP_NAME);
      continue;
    }
    w.visit(def, level);
  }
}

/** ALTER DOMAIN: its tags, and a tag for a sub-command that drops (see DESTRUCTIVE_SUBCOMMANDS). */
export function alterDomain(w: Walker, body: Obj, scope: Scope): void {
  const subtype = str(body, "subtype") ?? "";
  const destructive = subtype === "T" && body.def === undefined ? "drop_default" : DESTRUCTIVE_DOMAIN_SUBCOMMANDS[subtype];
  if (destructive !== undefined) {
    w.c.op(destructive);
    w.c.op("drop");
  }
  genericStatement(w, "AlterDomainStmt", body, scope);
}

export function grant(w: Walker, body: Obj): void {
  const c = w.c;
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
    const r = rv === undefined ? undefined : w.relation(rv);
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

export function objectComment(w: Walker, body: Obj): void {
  const objtype = str(body, "objtype");
  const items = listItems(body.object);
  if (objtype !== undefined && RELATION_OBJECT_TYPES.has(objtype)) {
    const r = nameToRelation(w, items);
    if (r !== undefined) w.c.writeRel(r);
  } else if (objtype === "OBJECT_COLUMN" && items !== undefined) {
    const names = stringList(items);
    const col = names?.[names.length - 1];
    const r = nameToRelation(w, items.slice(0, -1));
    if (r !== undefined && col !== undefined) w.c.column(r, col, "write");
  }
}
