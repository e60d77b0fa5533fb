/**
 * The statement dispatcher: every statement node (top level or nested) comes here and goes to
 * its handler in queries.ts, ddl.ts, utility.ts, session-settings.ts or functions.ts; the many
 * small statements are handled inline, and any other statement generically (its tags and its
 * direct relation fields).
 */
import { bool, isObj, list, nodeOf, obj, str, stringList, type Obj } from "./ast.js";
import { qn, UNKNOWN } from "./collector.js";
import { alterDomain, alterTable, createFunction, createTable, drop, grant, objectComment, rename, ruleOrTrigger } from "./ddl.js";
import type { QualifiedName } from "./facts.js";
import { funcCall } from "./functions.js";
import { staticTags } from "./operations.js";
import { deleteStmt, insert, merge, select, update } from "./queries.js";
import { Scope, self, SKIP_NONE } from "./scope.js";
import { futureSetting, variableSet } from "./session-settings.js";
import { copy, explain, vacuum } from "./utility.js";
import type { Walker } from "./walk.js";

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

export function tags(w: Walker, type: string, body: Obj): void {
  for (const t of staticTags(type, body)) w.c.op(t);
}

/** A statement node anywhere: top level, CTE body, rule action, function body, … */
export function statement(w: Walker, type: string, body: Obj, scope: Scope, top: boolean): void {
  w.enter();
  try {
    statementInner(w, type, body, scope, top);
  } finally {
    w.leave();
  }
}

export function statementInner(w: Walker, type: string, body: Obj, scope: Scope, top: boolean): void {
  const c = w.c;
  switch (type) {
    case "SelectStmt":
      select(w, body, scope);
      return;
    case "InsertStmt":
      insert(w, body, scope);
      return;
    case "UpdateStmt":
      update(w, body, scope);
      return;
    case "DeleteStmt":
      deleteStmt(w, body, scope);
      return;
    case "MergeStmt":
      merge(w, body, scope);
      return;
    case "CopyStmt":
      copy(w, body, scope);
      return;
    case "ExplainStmt":
      explain(w, body, scope);
      return;
    case "VariableSetStmt":
      // Only a statement of its own is a session SET; nested ones are function SET clauses
      // or ALTER SYSTEM/ROLE/DATABASE values, which don't change this session.
      if (top) variableSet(w, body);
      return;
    case "DiscardStmt":
      tags(w, type, body);
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
      tags(w, type, body);
      c.unknown(UNKNOWN.do);
      return;
    case "LoadStmt":
      tags(w, type, body);
      c.unknown(UNKNOWN.load);
      c.literalDependent = true;
      return;
    case "CallStmt": {
      tags(w, type, body);
      const fc = obj(body, "funccall");
      if (fc !== undefined) funcCall(w, fc, scope);
      return;
    }
    case "PrepareStmt":
      tags(w, type, body);
      c.prepares = str(body, "name") ?? "";
      w.visit(body.query, scope);
      return;
    case "ExecuteStmt":
      tags(w, type, body);
      c.executes = str(body, "name") ?? "";
      w.visit(body.params, scope);
      return;
    case "DeclareCursorStmt":
      tags(w, type, body);
      w.visit(body.query, scope);
      return;
    case "FetchStmt":
      c.op(bool(body, "ismove") ? "move" : "fetch");
      return;
    case "CreateTableAsStmt": {
      c.op(str(body, "objtype") === "OBJECT_MATVIEW" ? "create_materialized_view" : "create_table");
      const into = obj(body, "into");
      const rel = into === undefined ? undefined : obj(into, "rel");
      const r = rel === undefined ? undefined : w.relation(rel);
      if (r !== undefined) {
        c.writeRel(r);
        c.column(r, "*", "write");
      }
      w.visit(body.query, scope);
      return;
    }
    case "ViewStmt": {
      tags(w, type, body);
      const v = obj(body, "view");
      const r = v === undefined ? undefined : w.relation(v);
      if (r !== undefined) c.writeRel(r);
      w.visit(body.query, scope);
      return;
    }
    case "CreateStmt":
      createTable(w, body, scope, "create_table");
      return;
    case "CreateForeignTableStmt": {
      const base = obj(body, "base");
      if (base !== undefined) createTable(w, base, scope, "create_foreign_table");
      return;
    }
    case "RuleStmt":
    case "CreateTrigStmt":
      ruleOrTrigger(w, type, body, scope);
      return;
    case "CreateEventTrigStmt": {
      tags(w, type, body);
      const fn = stringList(list(body, "funcname"));
      if (fn !== undefined && fn.length > 0) c.fn(fn.join("."));
      w.visit(body.whenclause, scope);
      return;
    }
    case "CreateFunctionStmt":
      createFunction(w, body, scope);
      return;
    case "AlterSystemStmt":
    case "AlterRoleSetStmt":
    case "AlterDatabaseSetStmt":
      tags(w, type, body);
      futureSetting(w, obj(body, "setstmt"));
      return;
    case "ConstraintsSetStmt": // its constraint names are parsed as RangeVars
      tags(w, type, body);
      return;
    case "CreateForeignServerStmt":
    case "AlterForeignServerStmt":
    case "CreateUserMappingStmt":
    case "AlterUserMappingStmt":
    case "CreateSubscriptionStmt":
    case "AlterSubscriptionStmt":
      tags(w, type, body);
      c.unknown(UNKNOWN.foreign);
      return;
    case "DropOwnedStmt":
      // Drops every object the roles own: any table, with all its columns.
      tags(w, type, body);
      c.op("drop_table");
      c.column(qn(undefined, "*"), "*", "write");
      return;
    case "TruncateStmt":
      genericStatement(w, type, body, scope);
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
      drop(w, body);
      return;
    case "RenameStmt":
      rename(w, body);
      return;
    case "AlterObjectSchemaStmt": {
      tags(w, type, body);
      const r = w.relationAt(body, "relation");
      const newSchema = str(body, "newschema");
      if (r !== undefined) {
        c.writeRel(r);
        if (newSchema !== undefined) c.writeRel(qn(newSchema, r.name));
        c.column(r, "*", "write"); // its columns move out of reach of guards on the old name
      }
      w.visit(body.object, scope); // ALTER FUNCTION f(…) SET SCHEMA: reports f
      return;
    }
    case "AlterTableStmt":
      alterTable(w, body, scope);
      return;
    case "AlterDomainStmt":
      alterDomain(w, body, scope);
      return;
    case "GrantStmt":
      grant(w, body);
      return;
    case "GrantRoleStmt": {
      const g = bool(body, "is_grant");
      c.op(g ? "grant" : "revoke");
      c.op(g ? "grant_role" : "revoke_role");
      return;
    }
    case "AlterDefaultPrivilegesStmt": {
      tags(w, type, body);
      const action = obj(body, "action");
      c.op(action !== undefined && bool(action, "is_grant") ? "grant" : "revoke");
      return;
    }
    case "VacuumStmt":
      vacuum(w, body);
      return;
    case "LockStmt":
      tags(w, type, body);
      for (const item of list(body, "relations")) {
        const rv = nodeOf(item, "RangeVar");
        const r = rv === undefined ? undefined : w.relation(rv);
        if (r !== undefined) c.readRel(r);
      }
      return;
    case "CommentStmt":
    case "SecLabelStmt":
      tags(w, type, body);
      objectComment(w, body);
      return;
    case "ImportForeignSchemaStmt": {
      tags(w, type, body);
      const local = str(body, "local_schema");
      if (local !== undefined) c.writeRel(qn(local, "*"));
      return;
    }
    case "ReturnStmt":
    case "PLAssignStmt":
      // Parts of SQL-standard function bodies / PL/pgSQL, not statements of their own.
      w.visitFields(body, scope, SKIP_NONE);
      return;
    default:
      genericStatement(w, type, body, scope);
  }
}

/**
 * Any other statement: its tags, its direct relation fields (`relation`, `relations`,
 * `table`, … at the top of the node) are what it changes; everything else is walked.
 */
export function genericStatement(w: Walker, type: string, body: Obj, scope: Scope): void {
  tags(w, type, body);
  const inner = new Scope(scope);
  const rest: unknown[] = [];
  for (const k in body) {
    const v = body[k];
    const direct = directRelations(w, v);
    if (direct === undefined) {
      rest.push(v);
      continue;
    }
    for (const r of direct) {
      w.c.writeRel(r);
      inner.entries.push(self(r, [r]));
    }
  }
  for (const v of rest) w.visit(v, inner);
}

/** The relations a field holds when it is a RangeVar (inline or wrapped) or a list of them. */
export function directRelations(w: Walker, v: unknown): QualifiedName[] | undefined {
  if (isObj(v) && typeof v.relname === "string") {
    const r = w.relation(v);
    return r === undefined ? [] : [r];
  }
  const wrapped = nodeOf(v, "RangeVar");
  if (wrapped !== undefined) {
    const r = w.relation(wrapped);
    return r === undefined ? [] : [r];
  }
  if (Array.isArray(v) && v.length > 0) {
    const out: QualifiedName[] = [];
    for (const item of v as readonly unknown[]) {
      const rv = nodeOf(item, "RangeVar");
      if (rv === undefined) return undefined;
      const r = w.relation(rv);
      if (r !== undefined) out.push(r);
    }
    return out;
  }
  return undefined;
}
