/**
 * Facts (src/policy/sql/facts.ts) of one MySQL/MariaDB statement, from dt-sql-parser's parse
 * tree (compacted by tree.mjs). The same fact vocabulary as PostgreSQL's, so the same policy
 * keys work; MySQL's own statements get their own operation tags (listed in README "MySQL").
 *
 * Over-approximates where it cannot be exact, never the reverse: an unqualified column is a
 * column of every table in scope (outer queries included, as a correlated reference may be); a
 * multi-table UPDATE writes every table it joins; a routine, trigger or event body counts as
 * part of the statement that defines it (its operations, relations, functions).
 *
 * What it cannot judge statically is reported as `unknownEffects` (the caller fails closed):
 * CALL, PREPARE from a user variable, BINLOG, loadable functions and plugins (shared
 * libraries), OS-command UDFs (sys_exec, …), tables of engines that reach files or other servers
 * (CONNECT, FEDERATED, SPIDER), and client character sets whose multi-byte characters can hide
 * a quote or backslash (gbk, big5, sjis, cp932, gb18030).
 *
 * Longer than ~500 lines on purpose: one walk over the parse tree whose statement families share
 * the scope stack (tables in scope, outer queries); split per family, every file would need it.
 */
import type { DerivedRelation, SourceColumn, StatementLineage } from "../../core/decision.js";
import type { ColumnAccess, QualifiedName, StatementFacts } from "../sql/facts.js";
import { find, isRule, kids, nameParts, ruleName, stringValue, tokens, unquote } from "./names.js";
import type { MysqlNode, MysqlRule } from "./tree.mjs";

/** A `PREPARE name FROM '…'`: its text, classified by the caller (it needs the parser). */
export interface EmbeddedStatement {
  readonly name: string;
  readonly sql: string;
}

export interface WalkedStatement {
  readonly facts: StatementFacts;
  readonly embedded?: EmbeddedStatement;
  /** Some fact came from a literal's value (SET values, PREPARE text, file names): not reusable for another text of the same shape. */
  readonly literalDependent: boolean;
}

/** Most nodes one classification visits (all statements of a text together). */
export const MAX_WALK_NODES = 4_000_000;
/** Deepest nesting the walk follows; deeper is refused (the parser has already bounded most). */
export const MAX_WALK_DEPTH = 2_000;

export class WalkLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WalkLimitError";
  }
}

/** MySQL's dangerous function families (like src/policy/sql/function-families.ts for PostgreSQL). */
export const MYSQL_FUNCTION_FAMILIES: readonly { readonly name: string; readonly members: readonly string[] }[] = [
  { name: "server_file_read", members: ["load_file"] },
  { name: "sleep", members: ["sleep", "benchmark"] },
  { name: "advisory_lock", members: ["get_lock", "release_lock", "release_all_locks", "is_free_lock", "is_used_lock"] },
  { name: "replication_wait", members: ["master_pos_wait", "master_gtid_wait", "source_pos_wait", "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids"] },
  { name: "os_command", members: ["sys_exec", "sys_eval", "sys_get", "sys_set", "lib_mysqludf_sys_info"] },
];

/** UDFs known to run operating-system commands (lib_mysqludf_sys): unknown effects. */
const OS_COMMAND_FUNCTIONS: ReadonlySet<string> = new Set(["sys_exec", "sys_eval"]);

/** Storage engines whose tables read files or reach other servers. */
const REACHING_ENGINES: ReadonlySet<string> = new Set(["connect", "federated", "federatedx", "spider"]);

/** Client character sets whose bytes, read as UTF-8 by the gateway, split exactly as the server splits them. */
const SAFE_CHARSETS: ReadonlySet<string> = new Set([
  "default", "utf8", "utf8mb3", "utf8mb4", "ascii", "binary", "latin1", "latin2", "latin5", "latin7", "cp1250", "cp1251",
  "cp1256", "cp1257", "cp850", "cp852", "cp866", "koi8r", "koi8u", "greek", "hebrew", "armscii8", "macroman", "macce",
  "swe7", "dec8", "hp8", "keybcs2", "geostd8", "tis620", "ujis", "eucjpms", "euckr",
]);

/** Session variables that set the client character set. */
const CHARSET_VARIABLES: ReadonlySet<string> = new Set(["character_set_client", "character_set_connection", "names"]);

/** Statement contexts and their operation tags (beyond the generic CreateX, AlterX, DropX rule). */
const TAGS: Readonly<Record<string, readonly string[]>> = {
  QuerySpecification: ["select"],
  QuerySpecificationNointo: ["select"],
  TableStatement: ["select"],
  InsertStatement: ["insert"],
  ReplaceStatement: ["replace", "insert", "delete"],
  UpdateStatement: ["update"],
  DeleteStatement: ["delete"],
  CallStatement: ["call"],
  DoStatement: ["do"],
  HandlerStatement: ["handler"],
  HandlerReadStatement: ["handler_read", "select"],
  HandlerReadIndexStatement: ["handler_read", "select"],
  HandlerOpenStatement: ["handler_open"],
  HandlerCloseStatement: ["handler_close"],
  LoadDataStatement: ["load_data", "copy_from", "insert"],
  LoadXmlStatement: ["load_xml", "copy_from", "insert"],
  ImportTableStatement: ["import_table", "create", "create_table"],
  CopyCreateTable: ["create", "create_table"],
  ColumnCreateTable: ["create", "create_table"],
  QueryCreateTable: ["create", "create_table"],
  CreateTableSpaceInnoDB: ["create", "create_tablespace"],
  CreateTableSpaceNDB: ["create", "create_tablespace"],
  CreateFunctionLoadable: ["create", "create_function", "load"],
  AlterUpgradeName: ["alter", "alter_database"],
  AlterSimpleDatabase: ["alter", "alter_database"],
  RenameTable: ["alter", "rename", "rename_table"],
  TruncateTable: ["truncate"],
  SetRole: ["set_role"],
  StartTransaction: ["begin", "start_transaction"],
  BeginWork: ["begin"],
  CommitWork: ["commit"],
  RollbackWork: ["rollback"],
  RollbackStatement: ["rollback_to_savepoint"],
  SavePointStatement: ["savepoint"],
  ReleaseStatement: ["release"],
  LockTables: ["lock"],
  UnlockTables: ["unlock"],
  SetAutocommitStatement: ["set"],
  SetTransactionStatement: ["set", "set_transaction"],
  ChangeMaster: ["change_master"],
  ChangeReplicationFilter: ["change_replication_filter"],
  ChangeReplicationSource: ["change_master"],
  PurgeBinaryLogs: ["purge_binary_logs"],
  StartSlaveOrReplica: ["start_replica"],
  StopSlaveOrReplica: ["stop_replica"],
  StartGroupReplication: ["start_group_replication"],
  StopGroupReplication: ["stop_group_replication"],
  XaStartTransaction: ["xa", "begin"],
  XaEndTransaction: ["xa"],
  XaPrepareStatement: ["xa", "prepare_transaction"],
  XaCommitWork: ["xa", "commit_prepared"],
  XaRollbackWork: ["xa", "rollback_prepared"],
  XaRecoverWork: ["xa"],
  PrepareStatement: ["prepare"],
  ExecuteStatement: ["execute"],
  DeallocatePrepare: ["deallocate"],
  DeclareCursor: ["declare"],
  AlterUser: ["alter", "alter_user", "alter_role"],
  CreateUser: ["create", "create_user", "create_role"],
  DropUser: ["drop", "drop_user", "drop_role"],
  GrantStatement: ["grant"],
  GrantProxy: ["grant"],
  RenameUser: ["alter", "rename", "rename_user"],
  DetailRevoke: ["revoke"],
  ShortRevoke: ["revoke"],
  ProxyAndRoleRevoke: ["revoke"],
  RevokeStatement: ["revoke"],
  SetPasswordStatement: ["set_password", "alter_user"],
  SetPassword: ["set_password", "alter_user"],
  AnalyzeTable: ["analyze"],
  CheckTable: ["check_table"],
  ChecksumTable: ["checksum_table"],
  OptimizeTable: ["optimize_table"],
  RepairTable: ["repair_table"],
  InstallComponent: ["install_plugin"],
  InstallPlugin: ["install_plugin"],
  UninstallComponent: ["uninstall_plugin"],
  UninstallPlugin: ["uninstall_plugin"],
  CloneStatement: ["clone"],
  SetVariable: ["set"],
  SetCharset: ["set"],
  SetNames: ["set"],
  SetTransaction: ["set", "set_transaction"],
  SetAutocommit: ["set"],
  SetNewValueInsideTrigger: ["set"],
  BinLogStatement: ["binlog"],
  CacheIndexStatement: ["cache_index"],
  FlushStatement: ["flush"],
  KillStatement: ["kill"],
  LoadIndexIntoCache: ["load_index"],
  ResetStatement: ["reset"],
  ResetPersist: ["reset", "alter_system"],
  ResetAllChannel: ["reset"],
  ReStartStatement: ["restart"],
  ShutdownStatement: ["shutdown"],
  SimpleDescribeStatement: ["describe"],
  FullDescribeStatement: ["explain"],
  AnalyzeDescribeStatement: ["explain", "analyze"],
  HelpStatement: ["help"],
  UseStatement: ["use"],
  SignalStatement: ["signal"],
  ResignalStatement: ["signal"],
  DiagnosticsStatement: ["get_diagnostics"],
  SelectIntoTextFile: ["into_outfile", "copy_to", "copy_file"],
  SelectIntoDumpFile: ["into_dumpfile", "copy_to", "copy_file"],
  SelectIntoVariables: ["set_user_variable"],
  AlterByDropColumn: ["drop_column", "drop"],
  AlterByDropPrimaryKey: ["drop_constraint", "drop"],
  AlterByDropIndex: ["drop_index", "drop"],
  AlterByDropForeignKey: ["drop_constraint", "drop"],
  AlterByDropConstraintCheck: ["drop_constraint", "drop"],
  AlterByDropPartition: ["drop_partition", "drop"],
  AlterByTruncatePartition: ["truncate_partition", "truncate"],
  AlterByDiscardPartition: ["discard_partition", "drop"],
  AlterByRemovePartitioning: ["remove_partitioning"],
  AlterByExchangePartition: ["exchange_partition"],
  AlterByModifyColumn: ["alter_column_type"],
  AlterByChangeColumn: ["alter_column_type", "rename"],
  AlterByRename: ["rename"],
  AlterByRenameColumn: ["rename"],
  AlterByRenameIndex: ["rename"],
  AlterByAlterColumnDefault: ["alter_column_default"],
  AlterKeys: ["alter_keys"],
};

/** Statement contexts that write the tables they name (DDL and the like; DML handles its own). */
const WRITING = /^(Create|Alter|Drop|CopyCreateTable|ColumnCreateTable|QueryCreateTable|RenameTable|TruncateTable|LoadDataStatement|LoadXmlStatement|LockTables|GrantStatement|DetailRevoke|ShortRevoke|RevokeStatement|OptimizeTable|RepairTable|ImportTableStatement|CacheIndexStatement|LoadIndexIntoCache)/;

/** Contexts that start a query block with its own FROM scope. */
const QUERY_BLOCKS: ReadonlySet<string> = new Set(["QuerySpecification", "QuerySpecificationNointo"]);
/** Contexts whose descendants are not part of the enclosing block's FROM (nested queries). */
const NESTED: ReadonlySet<string> = new Set(["QuerySpecification", "QuerySpecificationNointo", "SubqueryExpressionAtom", "ExistsExpressionAtom", "InPredicate"]);
/** Bodies of routines, triggers and events: their statements set their own roles and scopes. */
const BODIES: ReadonlySet<string> = new Set(["RoutineBody", "ProcedureSqlStatement", "BlockStatement"]);

/** Expression contexts that are (parts of) column references. */
const COLUMN_REFS: ReadonlySet<string> = new Set(["ColumnNameExpressionAtom", "FullColumnName"]);

interface ScopeTable {
  readonly relation?: QualifiedName;
  readonly alias?: string;
}

interface Scope {
  readonly tables: readonly ScopeTable[];
  readonly parent: Scope | undefined;
}

type Role = "read" | "write";

/** One output column of a query block: its name (lower case, when known) and what it reads. */
interface Output {
  readonly name: string | undefined;
  readonly sources: readonly ColumnAccess[];
}

/** A derived table or CTE of the statement: its columns' reads, and everything it reads. */
interface Derived {
  readonly columns: Map<string, ColumnAccess[]>;
  readonly all: readonly ColumnAccess[];
}

function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

function relKey(r: QualifiedName): string {
  return `${r.schema ?? ""}\u0000${r.name}`;
}

function relationOf(parts: readonly string[]): QualifiedName | undefined {
  const name = parts[parts.length - 1];
  if (name === undefined || name === "") return undefined;
  const schema = parts.length >= 2 ? parts[parts.length - 2] : undefined;
  return schema === undefined || schema === "" ? { name } : { schema, name };
}

function firstToken(n: MysqlNode): string | undefined {
  if (!isRule(n)) return n;
  for (const c of kids(n)) {
    const t = firstToken(c);
    if (t !== undefined) return t;
  }
  return undefined;
}

function hasToken(n: MysqlRule, word: string): boolean {
  return kids(n).some((c) => typeof c === "string" && c.toUpperCase() === word);
}

/** Accumulates the facts of one top-level statement. */
class Facts {
  readonly ops = new Set<string>();
  readonly read = new Map<string, QualifiedName>();
  readonly written = new Map<string, QualifiedName>();
  readonly columns = new Map<string, ColumnAccess>();
  readonly functions = new Set<string>();
  readonly settings = new Set<string>();
  noWhere = false;
  unknown: string | undefined;
  prepares: string | undefined;
  executes: string | undefined;
  switchesDatabase: string | undefined;
  embedded: EmbeddedStatement | undefined;
  literalDependent = false;
  handler: StatementFacts["handler"];
  /** Open collectors: each read column access is added to every one (lineage of an output, a derived table). */
  readonly collectors: ColumnAccess[][] = [];
  /** The outputs of each query block visited ("star": a `*` makes them unknown). */
  readonly outputs = new Map<MysqlRule, readonly Output[] | "star">();
  /** Derived tables and CTEs by name (lower case). */
  readonly derived = new Map<string, Derived>();
  nodes: { left: number };

  constructor(budget: { left: number }) {
    this.nodes = budget;
  }

  relation(r: QualifiedName, role: Role): void {
    const target = role === "write" ? this.written : this.read;
    target.set(relKey(r), r);
    // Case-insensitive servers (lower_case_table_names=1/2) fold names: report the folded name too.
    const lower: QualifiedName = r.schema === undefined ? { name: r.name.toLowerCase() } : { schema: r.schema.toLowerCase(), name: r.name.toLowerCase() };
    if (lower.name !== r.name || lower.schema !== r.schema) target.set(relKey(lower), lower);
  }

  column(relation: QualifiedName | undefined, column: string, access: Role): void {
    const c: ColumnAccess = relation === undefined ? { column, access } : { relation, column, access };
    if (access === "read") for (const sink of this.collectors) sink.push(c);
    this.columns.set(`${relation === undefined ? "" : relKey(relation)}\u0001${column}\u0001${access}`, c);
    // As for relations: the folded table name too (case-insensitive servers).
    if (relation !== undefined) {
      const lower: QualifiedName = relation.schema === undefined ? { name: relation.name.toLowerCase() } : { schema: relation.schema.toLowerCase(), name: relation.name.toLowerCase() };
      if (lower.name !== relation.name || lower.schema !== relation.schema) this.column(lower, column, access);
    }
  }

  unknownEffects(reason: string): void {
    this.unknown ??= reason;
  }
}

/** Walks one statement tree (a SingleStatement's content). */
export function walkMysqlStatement(stmt: MysqlRule, budget: { left: number }): WalkedStatement {
  const f = new Facts(budget);
  visit(stmt, f, "read", undefined, 0, "SingleStatement");
  const sortRel = (m: Map<string, QualifiedName>): QualifiedName[] => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, r]) => r);
  const functions = [...f.functions].sort();
  const families = new Set<string>();
  const equivalents = new Set<string>();
  for (const fn of functions) {
    const bare = fn.slice(fn.lastIndexOf(".") + 1);
    for (const fam of MYSQL_FUNCTION_FAMILIES) {
      if (!fam.members.includes(bare)) continue;
      families.add(fam.name);
      for (const m of fam.members) if (m !== bare) equivalents.add(m);
    }
    if (OS_COMMAND_FUNCTIONS.has(bare)) f.unknownEffects(`${bare}() runs an operating-system command on the database server`);
  }
  const facts: StatementFacts = {
    operations: [...f.ops].sort(),
    relationsRead: sortRel(f.read),
    relationsWritten: sortRel(f.written),
    columns: [...f.columns.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, c]) => c),
    functions,
    ...(families.size > 0 ? { functionFamilies: [...families].sort(), equivalentFunctions: [...equivalents].sort() } : {}),
    noWhere: f.noWhere,
    ...(f.unknown === undefined ? {} : { unknownEffects: f.unknown }),
    ...(f.prepares === undefined ? {} : { prepares: f.prepares }),
    ...(f.executes === undefined ? {} : { executes: f.executes }),
    ...(f.settings.size > 0 ? { settings: [...f.settings].sort() } : {}),
    ...(f.switchesDatabase === undefined ? {} : { switchesDatabase: f.switchesDatabase }),
    ...(f.handler === undefined ? {} : { handler: f.handler }),
    lineage: statementLineage(stmt, f),
  };
  return { facts, literalDependent: f.literalDependent || f.unknown !== undefined, ...(f.embedded === undefined ? {} : { embedded: f.embedded }) };
}

/** The grammar's statement categories: their children are statements. */
const CATEGORIES: ReadonlySet<string> = new Set([
  "SqlStatement", "DdlStatement", "DmlStatement", "TransactionStatement", "ReplicationStatement", "PreparedStatement",
  "CompoundStatement", "AdministrationStatement", "UtilityStatement", "ShowStatement",
]);

function tagsOf(name: string, parent: string | undefined): readonly string[] | undefined {
  const fixed = TAGS[name];
  if (fixed !== undefined) return fixed;
  // Generic tags only for statements (a category's children), never for their clauses.
  if (parent === undefined || !CATEGORIES.has(parent) || CATEGORIES.has(name)) return undefined;
  // Query wrappers (set operations, WITH, parentheses): their query blocks carry "select".
  if (/Select|Union|Query|With|Values|Parenthes|Lateral|InterSect/.test(name)) return undefined;
  if (name.startsWith("Show")) return ["show", snake(name)];
  const m = /^(Create|Alter|Drop)([A-Z][A-Za-z]*)$/.exec(name);
  if (m?.[1] !== undefined && m[2] !== undefined) {
    // CreateTrigger → create + create_trigger; DropTable → drop + drop_table; …
    const verb = m[1].toLowerCase();
    const kind = snake(m[2]).replace(/_statement$/, "");
    return [verb, `${verb}_${kind}`];
  }
  return [snake(name).replace(/_statement$/, "")];
}

/** Scope tables of a FROM clause / table-reference list, not entering nested queries. */
function scopeTables(n: MysqlNode, out: ScopeTable[]): void {
  if (!isRule(n)) return;
  const name = n[0];
  if (NESTED.has(name)) return;
  if (name === "AtomTableItem") {
    const t = find(n, "TableName");
    const relation = t === undefined ? undefined : relationOf(nameParts(t));
    const aliasNode = kids(n).find((c) => ruleName(c) === "Uid");
    const alias = aliasNode === undefined ? undefined : unquote(tokens(aliasNode).join(""));
    if (relation !== undefined) out.push(alias === undefined ? { relation } : { relation, alias });
    return;
  }
  if (name === "SubqueryTableItem" || name === "AtomSubQueryTableSource" || name === "TableJson") {
    const aliasNode = kids(n).find((c) => ruleName(c) === "Uid");
    if (aliasNode !== undefined) out.push({ alias: unquote(tokens(aliasNode).join("")) });
    return;
  }
  for (const c of kids(n)) scopeTables(c, out);
}

/** Every table of the scope chain, innermost first; for an unqualified column. */
function allScopeTables(scope: Scope | undefined): ScopeTable[] {
  const out: ScopeTable[] = [];
  for (let s = scope; s !== undefined; s = s.parent) out.push(...s.tables);
  return out;
}

function resolveQualifier(scope: Scope | undefined, parts: readonly string[]): { relation: QualifiedName | undefined } {
  if (parts.length >= 2) {
    return { relation: relationOf(parts) };
  }
  const q = parts[0] ?? "";
  for (let s = scope; s !== undefined; s = s.parent) {
    for (const t of s.tables) {
      if (t.alias !== undefined && t.alias.toLowerCase() === q.toLowerCase()) return { relation: t.relation };
      if (t.alias === undefined && t.relation?.name === q) return { relation: t.relation };
    }
  }
  return { relation: { name: q } };
}

/** A column reference's dotted parts → the accesses it stands for. */
function columnRef(f: Facts, scope: Scope | undefined, parts: readonly string[], access: Role): void {
  const col = (parts[parts.length - 1] ?? "").toLowerCase();
  if (col === "") return;
  if (parts.length === 1) {
    const tables = allScopeTables(scope);
    if (tables.length === 0) f.column(undefined, col, access);
    for (const t of tables) f.column(t.relation, col, access);
    return;
  }
  f.column(resolveQualifier(scope, parts.slice(0, -1)).relation, col, access);
}

function star(f: Facts, scope: Scope | undefined, access: Role): void {
  const tables = scope?.tables ?? [];
  if (tables.length === 0) f.column(undefined, "*", access);
  // A derived table's (or JSON_TABLE's) columns are what its query or expression read: recorded there.
  for (const t of tables) if (t.relation !== undefined) f.column(t.relation, "*", access);
}

/** A user/system variable assignment target: its scope and lower-case name. */
function variableTarget(n: MysqlRule): { scope: "user" | "global" | "session"; name: string } {
  const toks = tokens(n);
  const first = toks[0] ?? "";
  if (first.startsWith("@@")) {
    const m = /^@@(?:(global|session|local|persist|persist_only)\.)?(.*)$/i.exec(toks.join(""));
    const s = (m?.[1] ?? "session").toLowerCase();
    return { scope: s === "global" || s === "persist" || s === "persist_only" ? "global" : "session", name: unquote(m?.[2] ?? "").toLowerCase() };
  }
  if (first.startsWith("@")) return { scope: "user", name: toks.join("").slice(1).toLowerCase() };
  const kw = first.toUpperCase();
  if (["GLOBAL", "PERSIST", "PERSIST_ONLY"].includes(kw)) return { scope: "global", name: unquote(toks.slice(1).join("")).toLowerCase() };
  if (["SESSION", "LOCAL"].includes(kw)) return { scope: "session", name: unquote(toks.slice(1).join("")).toLowerCase() };
  return { scope: "session", name: unquote(toks.join("")).toLowerCase() };
}

function checkCharset(f: Facts, value: string | undefined, what: string): void {
  f.literalDependent = true;
  const v = value === undefined ? undefined : unquote(stringValue(value) ?? value).toLowerCase();
  if (v === undefined || !SAFE_CHARSETS.has(v)) {
    f.unknownEffects(`${what} ${value ?? "(an expression)"}: a client character set whose multi-byte characters can hide a quote or backslash from the gateway`);
  }
}

function setVariable(n: MysqlRule, f: Facts, scope: Scope | undefined, depth: number): void {
  const children = kids(n);
  for (let i = 0; i < children.length; i++) {
    const c = children[i];
    if (!isRule(c)) continue;
    if (c[0] === "VariableClause") {
      const target = variableTarget(c);
      if (target.scope === "user") f.ops.add("set_user_variable");
      else {
        f.settings.add(target.name);
        if (target.scope === "global") {
          f.ops.add("set_global");
          f.ops.add("alter_system");
        }
        if (target.name === "sql_log_bin") f.ops.add("set_sql_log_bin");
        if (CHARSET_VARIABLES.has(target.name)) {
          const value = children[i + 2];
          checkCharset(f, value === undefined ? undefined : isRule(value) && value[0] !== "PredicateExpression" ? tokens(value).join("") : simpleValue(value), `SET ${target.name} =`);
        }
      }
      continue;
    }
    visit(c, f, "read", scope, depth + 1);
  }
}

/** The text of a constant-only expression (a literal or a bare word), else undefined. */
function simpleValue(n: MysqlNode): string | undefined {
  const toks = tokens(n);
  return toks.length === 1 ? toks[0] : undefined;
}

function visit(n: MysqlNode, f: Facts, role: Role, scope: Scope | undefined, depth: number, parent?: string): void {
  if (!isRule(n)) return;
  if (--f.nodes.left < 0) throw new WalkLimitError("statement too complex");
  if (depth > MAX_WALK_DEPTH) throw new WalkLimitError("statement too deeply nested");
  const name = n[0];
  const tags = tagsOf(name, parent);
  if (tags !== undefined) for (const t of tags) f.ops.add(t);
  const next = (c: MysqlNode, r: Role = role, s: Scope | undefined = scope): void => visit(c, f, r, s, depth + 1, name);
  const all = (r: Role = role, s: Scope | undefined = scope): void => {
    for (const c of kids(n)) next(c, r, s);
  };
  // Statements that write what they name: their table names default to written.
  const writing = WRITING.test(name) && !name.startsWith("AlterBy");
  switch (name) {
    case "TableName":
    case "TableNameCreate":
    case "ViewName":
    case "ViewNameCreate": {
      const r = relationOf(nameParts(n));
      if (r !== undefined) f.relation(r, name.endsWith("Create") ? "write" : role);
      return;
    }
    case "TableNames":
      all();
      return;
    case "DatabaseName":
    case "DatabaseNameCreate": {
      // DROP/CREATE/ALTER DATABASE, SHOW … FROM db: every table of that database.
      const schema = nameParts(n).join(".");
      if (schema !== "") f.relation({ schema, name: "*" }, name.endsWith("Create") ? "write" : role);
      return;
    }
    case "DefiniteSchemaPrivLevel":
    case "DefiniteFullTablePrivLevel":
    case "DefiniteTablePrivLevel":
    case "GlobalPrivLevel":
    case "CurrentSchemaPriviLevel": {
      // GRANT/REVOKE … ON db.* / db.t / t / *.* / *
      const parts = nameParts(n);
      const r = relationOf(parts.map((p) => (p === "" ? "*" : p)));
      if (r !== undefined) f.relation(r.schema === "*" ? { name: "*" } : r, "write");
      return;
    }
    case "FullId":
      // A bare FullId outside the cases below names a routine, event, server, …: no relation.
      return;
    case "QuerySpecification":
    case "QuerySpecificationNointo": {
      const tables: ScopeTable[] = [];
      const from = kids(n).find((c) => ruleName(c) === "FromClause");
      if (from !== undefined) scopeTables(from, tables);
      const inner: Scope = { tables, parent: scope };
      for (const c of kids(n)) {
        if (ruleName(c) === "SelectElements") selectElements(c as MysqlRule, f, inner, depth + 1, n);
        else next(c, "read", inner);
      }
      return;
    }
    case "PureAllColumns":
      star(f, scope, "read");
      return;
    case "TableAllColumns": {
      const parts = nameParts(kids(n).find(isRule) ?? n);
      const rel = resolveQualifier(scope, parts.filter((p) => p !== "*")).relation;
      // `d.*` of a derived table: its query's reads are already recorded.
      if (rel !== undefined) f.column(rel, "*", "read");
      return;
    }
    case "ColumnNameExpressionAtom":
    case "FullColumnName":
      columnRef(f, scope, nameParts(n), "read");
      return;
    case "ColumnName":
      columnRef(f, scope, nameParts(n), role);
      return;
    case "ColumnNameCreate":
    case "IndexColumnName":
      return;
    case "InsertStatement":
    case "ReplaceStatement": {
      const target = kids(n).find((c) => ruleName(c) === "TableName");
      const rel = target === undefined ? undefined : relationOf(nameParts(target));
      const own: Scope = { tables: rel === undefined ? [] : [{ relation: rel }], parent: scope };
      let listed = false;
      for (const c of kids(n)) {
        const cn = ruleName(c);
        if (c === target) next(c, "write", own);
        else if (cn === "FullColumnNames" || cn === "ColumnNames") {
          listed = true;
          next(c, "write", own);
        } else if (cn === "UpdatedElement") {
          f.ops.add("update");
          updatedElement(c as MysqlRule, f, own, depth + 1);
        } else if (cn === "SetAssignmentList") {
          listed = true;
          for (const u of kids(c as MysqlRule)) if (ruleName(u) === "UpdatedElement") updatedElement(u as MysqlRule, f, own, depth + 1);
        } else next(c, "read", own);
      }
      if (!listed && rel !== undefined) f.column(rel, "*", "write");
      return;
    }
    case "SingleUpdateStatement":
    case "MultipleUpdateStatement":
    case "SingleDeleteStatement":
    case "MultipleDeleteStatement": {
      const tables: ScopeTable[] = [];
      for (const c of kids(n)) {
        const cn = ruleName(c);
        if (cn === "TableName") {
          const r = relationOf(nameParts(c));
          const alias = kids(n).find((x, i) => ruleName(x) === "Uid" && kids(n)[i - 1] === c);
          if (r !== undefined) tables.push(alias === undefined ? { relation: r } : { relation: r, alias: unquote(tokens(alias).join("")) });
        } else if (cn === "TableSources") scopeTables(c, tables);
      }
      const own: Scope = { tables, parent: scope };
      const multiDelete = name === "MultipleDeleteStatement";
      for (const c of kids(n)) {
        const cn = ruleName(c);
        if (cn === "TableName" && multiDelete) {
          // DELETE a, b FROM t AS a JOIN …: the targets may be aliases of the FROM tables.
          const parts = nameParts(c);
          const aliased = parts.length === 1 ? tables.find((t) => t.alias !== undefined && t.alias.toLowerCase() === (parts[0] ?? "").toLowerCase()) : undefined;
          if (aliased?.relation !== undefined) f.relation(aliased.relation, "write");
          else next(c, "write", own);
        } else if (cn === "TableName") next(c, "write", own);
        else if (cn === "TableSources") next(c, multiDelete ? "read" : name === "MultipleUpdateStatement" ? "write" : "read", own);
        else if (cn === "UpdatedElement") updatedElement(c as MysqlRule, f, own, depth + 1);
        else next(c, "read", own);
      }
      const where = kids(n).findIndex((c) => typeof c === "string" && c.toUpperCase() === "WHERE");
      const cond = where < 0 ? undefined : kids(n)[where + 1];
      if (cond === undefined || !referencesColumn(cond)) f.noWhere = true;
      return;
    }
    case "SetVariable":
      setVariable(n, f, scope, depth);
      return;
    case "SetNames":
    case "SetCharset": {
      f.settings.add("character_set_client");
      f.settings.add("character_set_connection");
      f.settings.add("character_set_results");
      const cs = kids(n).find((c) => ruleName(c) === "CharsetName");
      checkCharset(f, cs === undefined ? (hasToken(n, "DEFAULT") ? "default" : undefined) : tokens(cs).join(""), name === "SetNames" ? "SET NAMES" : "SET CHARACTER SET");
      return;
    }
    case "SetTransactionStatement":
    case "SetTransaction":
    case "StartTransaction": {
      const words = tokens(n).map((t) => t.toUpperCase());
      if (words.includes("READ")) f.settings.add("transaction_read_only");
      if (words.some((w, i) => w === "READ" && words[i + 1] === "WRITE")) f.ops.add("read_write");
      if (words.includes("ISOLATION")) f.settings.add("transaction_isolation");
      if (words.includes("GLOBAL")) {
        f.ops.add("set_global");
        f.ops.add("alter_system");
      }
      all("read");
      return;
    }
    case "SetAutocommitStatement":
    case "SetAutocommit":
      f.settings.add("autocommit");
      return;
    case "UseStatement": {
      const db = kids(n).find(isRule);
      if (db !== undefined) f.switchesDatabase = nameParts(db).join(".");
      return;
    }
    case "PrepareStatement": {
      const id = kids(n).find((c) => ruleName(c) === "Uid");
      const stmtName = id === undefined ? "" : unquote(tokens(id).join(""));
      const source = kids(n)[kids(n).length - 1];
      const text = source === undefined ? undefined : tokens(source).join("");
      const value = text === undefined ? undefined : stringValue(text);
      f.literalDependent = true;
      if (value === undefined) f.unknownEffects(`PREPARE ${stmtName} FROM ${text ?? "?"} prepares text the gateway cannot see`);
      else {
        f.prepares = stmtName;
        f.embedded = { name: stmtName, sql: value };
      }
      return;
    }
    case "ExecuteStatement": {
      const id = kids(n).find((c) => ruleName(c) === "Uid");
      if (id !== undefined) f.executes = unquote(tokens(id).join(""));
      return;
    }
    case "DeallocatePrepare":
      return;
    case "CallStatement": {
      const id = kids(n).find((c) => ruleName(c) === "FullId");
      const proc = id === undefined ? "?" : nameParts(id).join(".");
      f.functions.add(proc.toLowerCase());
      f.unknownEffects(`CALL ${proc} runs a stored procedure whose statements the gateway cannot see`);
      for (const c of kids(n)) if (c !== id) next(c, "read");
      return;
    }
    case "CreateFunctionLoadable":
    case "InstallPlugin":
    case "InstallComponent":
      f.unknownEffects("loading a shared library into the server");
      all();
      return;
    case "BinLogStatement":
      f.unknownEffects("BINLOG replays binary-log events (any row change)");
      return;
    case "CloneStatement":
      f.unknownEffects("CLONE replaces the server's data");
      return;
    case "TableOptionEngine": {
      const engine = tokens(n).slice(1).filter((t) => t !== "=").join("").toLowerCase();
      if (REACHING_ENGINES.has(unquote(engine))) f.unknownEffects(`ENGINE=${engine} tables read files or reach other servers`);
      return;
    }
    case "CopyCreateTable": {
      // CREATE TABLE new LIKE old: old is read.
      for (const c of kids(n)) next(c, ruleName(c) === "TableName" ? "read" : "write");
      return;
    }
    case "ReferenceDefinition":
      all("read");
      return;
    case "CreateTrigger": {
      const names = kids(n).filter((c) => ruleName(c) === "TableName" || ruleName(c) === "FullId");
      const table = kids(n).find((c) => ruleName(c) === "TableName");
      const rel = table === undefined ? undefined : relationOf(nameParts(table));
      // NEW.col and OLD.col are the trigger table's columns.
      const own: Scope | undefined = rel === undefined ? scope : { tables: [{ relation: rel, alias: "NEW" }, { relation: rel, alias: "OLD" }], parent: scope };
      for (const c of kids(n)) {
        if (c === table) next(c, "write");
        else if (names.includes(c)) continue;
        else next(c, "read", own);
      }
      return;
    }
    case "HandlerReadStatement":
    case "HandlerReadIndexStatement": {
      all("read");
      // A HANDLER read returns whole rows, of the table named or of the one an earlier
      // `HANDLER t OPEN AS name` bound to the name (session state the walk cannot see): every
      // column of it, and of any table.
      const target = kids(n).find((c) => ruleName(c) === "TableName");
      const rel = target === undefined ? undefined : relationOf(nameParts(target));
      if (rel !== undefined) {
        f.column(rel, "*", "read");
        f.handler = { action: "read", name: rel.name };
      }
      // Narrowed by the session when it knows what the name was opened on (StatementFacts.handler).
      f.column(undefined, "*", "read");
      return;
    }
    case "HandlerOpenStatement": {
      all("read");
      const table = kids(n).find((c) => ruleName(c) === "TableName");
      const rel = table === undefined ? undefined : relationOf(nameParts(table));
      const alias = kids(n).find((c) => ruleName(c) === "Uid");
      const handlerName = alias === undefined ? rel?.name : unquote(tokens(alias).join(""));
      if (handlerName !== undefined) f.handler = { action: "open", name: handlerName, ...(rel === undefined ? {} : { relation: rel }) };
      return;
    }
    case "HandlerCloseStatement": {
      const table = kids(n).find((c) => ruleName(c) === "TableName");
      const rel = table === undefined ? undefined : relationOf(nameParts(table));
      if (rel !== undefined) f.handler = { action: "close", name: rel.name };
      all("read");
      return;
    }
    case "SubqueryTableItem": {
      const alias = kids(n).find((c) => ruleName(c) === "Uid");
      derivedQuery(f, alias === undefined ? undefined : unquote(tokens(alias).join("")), kids(n).filter((c) => c !== alias), [], (c) => next(c, "read"));
      return;
    }
    case "CommonTableExpressions": {
      // name [(col, …)] AS (query) [, next CTE]
      const ks = kids(n);
      const as = ks.findIndex((c) => typeof c === "string" && c.toUpperCase() === "AS");
      const first = ks[0];
      const cteName = first !== undefined && ruleName(first) === "Uid" ? unquote(tokens(first).join("")) : undefined;
      const colnames = ks.slice(1, Math.max(as, 1)).filter((c) => ruleName(c) === "Uid").map((c) => unquote(tokens(c).join("")).toLowerCase());
      const body = ks.filter((c, i) => i > as && isRule(c) && c[0] !== "CommonTableExpressions");
      derivedQuery(f, cteName, body, colnames, (c) => next(c, "read"));
      for (const c of ks) if (ruleName(c) === "CommonTableExpressions") next(c, "read");
      return;
    }
    case "LoadDataStatement":
    case "LoadXmlStatement": {
      const local = hasToken(n, "LOCAL");
      f.ops.add(local ? "load_data_local" : "copy_file");
      const target = kids(n).find((c) => ruleName(c) === "TableName");
      const rel = target === undefined ? undefined : relationOf(nameParts(target));
      let listed = false;
      for (const c of kids(n)) {
        const cn = ruleName(c);
        if (c === target) next(c, "write");
        else if (cn === "AssignmentField") {
          listed = true;
          const parts = nameParts(c);
          if (!(parts[0] ?? "").startsWith("@")) f.column(rel, (parts[parts.length - 1] ?? "").toLowerCase(), "write");
        } else if (cn === "UpdatedElement") updatedElement(c as MysqlRule, f, { tables: rel === undefined ? [] : [{ relation: rel }], parent: scope }, depth + 1);
        else next(c, "read");
      }
      if (!listed && rel !== undefined) f.column(rel, "*", "write");
      return;
    }
    case "AssignmentField":
      return; // SELECT … INTO @v: a user variable
    case "KillStatement":
    case "ShutdownStatement":
      all("read");
      return;
    default:
      break;
  }
  if (name.endsWith("FunctionCall") || name === "AggregateWindowedFunction" || name === "NonAggregateWindowedFunction") functionCall(n, f);
  if (BODIES.has(name)) {
    all("read", undefined);
    return;
  }
  all(writing ? "write" : QUERY_BLOCKS.has(name) ? "read" : role);
}

/** A function call node: record its name (lower case; qualified as written). */
function functionCall(n: MysqlRule, f: Facts): void {
  switch (n[0]) {
    case "FunctionCallExpressionAtom":
    case "SpecificFunctionCall":
    case "AggregateFunctionCall":
    case "NonAggregateFunctionCall":
      return;
    case "UdfFunctionCall": {
      const fn = kids(n).find((c) => ruleName(c) === "FunctionName" || ruleName(c) === "FullId");
      if (fn !== undefined) f.functions.add(nameParts(fn).join(".").toLowerCase());
      return;
    }
    case "ScalarFunctionCall": {
      const fn = kids(n).find((c) => ruleName(c) === "ScalarFunctionName");
      if (fn !== undefined) f.functions.add(tokens(fn).join("").toLowerCase());
      return;
    }
    default: {
      const t = firstToken(n);
      if (t !== undefined && /^[A-Za-z_][A-Za-z0-9_$]*$/.test(t)) f.functions.add(t.toLowerCase());
    }
  }
}

/** The select list of query block `spec`: visited element by element, each one's reads collected as its output's lineage. */
function selectElements(n: MysqlRule, f: Facts, scope: Scope, depth: number, spec: MysqlRule): void {
  const outs: Output[] = [];
  let star = false;
  for (const c of kids(n)) {
    if (!isRule(c)) continue;
    if (c[0] === "PureAllColumns" || c[0] === "SelectElement_star") star = true;
    const sink: ColumnAccess[] = [];
    f.collectors.push(sink);
    try {
      visit(c, f, "read", scope, depth + 1, "SelectElements");
    } finally {
      f.collectors.pop();
    }
    outs.push({ name: elementName(c), sources: sink });
  }
  f.outputs.set(spec, star ? "star" : outs);
}

/** The name a select element's column gets: its alias, else a column reference's column (lower case). */
function elementName(n: MysqlRule): string | undefined {
  // SelectElement_x → [inner, ["AS"], alias Uid]
  const own = kids(n);
  const last = own[own.length - 1];
  if (own.length > 1 && ruleName(last) === "Uid" && last !== undefined) return unquote(tokens(last).join("")).toLowerCase();
  const inner = own.find(isRule);
  if (inner === undefined) return undefined;
  if (inner[0] === "SelectLiteralColumnName") {
    const col = kids(inner).find((c) => ruleName(c) === "ColumnName");
    const parts = col === undefined ? [] : nameParts(col);
    return parts[parts.length - 1]?.toLowerCase();
  }
  return undefined;
}

/** Where a query's own blocks end: nested queries whose outputs are not the query's. */
const SPEC_STOPS: ReadonlySet<string> = new Set(["SubqueryTableItem", "SubqueryExpressionAtom", "ExistsExpressionAtom", "InPredicate", "WithClause", "CommonTableExpressions", "TableJson"]);

/** The query blocks whose rows a query returns (one, or the branches of a UNION / INTERSECT / EXCEPT). */
function topSpecs(n: MysqlNode, out: MysqlRule[] = []): MysqlRule[] {
  if (!isRule(n) || SPEC_STOPS.has(n[0])) return out;
  if (QUERY_BLOCKS.has(n[0])) out.push(n);
  for (const c of kids(n)) topSpecs(c, out);
  return out;
}

/** The outputs of a query (its blocks' outputs by position; names from the first), undefined when unknown. */
function queryOutputs(f: Facts, n: MysqlNode): Output[] | undefined {
  const specs = topSpecs(n).map((s) => f.outputs.get(s));
  const first = specs[0];
  if (first === undefined || first === "star") return undefined;
  const out = first.map((o) => ({ name: o.name, sources: [...o.sources] }));
  for (const s of specs.slice(1)) {
    if (s === undefined || s === "star" || s.length !== out.length) return undefined;
    s.forEach((o, i) => out[i]?.sources.push(...o.sources));
  }
  return out;
}

/** Visits a derived table's or CTE's query, collecting what it reads, and registers it under `name`. */
function derivedQuery(f: Facts, name: string | undefined, body: readonly MysqlNode[], colnames: readonly string[], walk: (c: MysqlNode) => void): void {
  const sink: ColumnAccess[] = [];
  f.collectors.push(sink);
  try {
    for (const c of body) walk(c);
  } finally {
    f.collectors.pop();
  }
  if (name === undefined) return;
  const columns = new Map<string, ColumnAccess[]>();
  const outs = body.map((b) => queryOutputs(f, b)).find((o) => o !== undefined);
  outs?.forEach((o, i) => {
    const col = colnames[i] ?? o.name;
    if (col !== undefined) columns.set(col, [...(columns.get(col) ?? []), ...o.sources]);
  });
  const key = name.toLowerCase();
  const prior = f.derived.get(key);
  f.derived.set(key, prior === undefined ? { columns, all: sink } : { columns: new Map(), all: [...prior.all, ...sink] });
}

function sourceOf(c: ColumnAccess): SourceColumn {
  const r = c.relation;
  if (r === undefined) return { column: c.column };
  return r.schema === undefined ? { relation: r.name, column: c.column } : { schema: r.schema, relation: r.name, column: c.column };
}

function dedupeSources(s: readonly SourceColumn[]): SourceColumn[] {
  const seen = new Map<string, SourceColumn>();
  for (const c of s) seen.set(`${c.schema ?? ""}\u0000${c.relation ?? ""}\u0000${c.column}`, c);
  return [...seen.values()];
}

/** Most rounds spent replacing a derived relation's references to other derived relations (CTEs over CTEs, recursion). */
const DERIVED_ROUNDS = 8;

/**
 * Sources behind one derived relation's columns: a source naming another derived relation of
 * the statement (a CTE read by a later one, a recursive CTE reading itself) is replaced by
 * that relation's sources, a few rounds deep; what is left is kept as well (over-approximation).
 */
function expandDerived(derived: ReadonlyMap<string, Derived>): DerivedRelation[] {
  const table = new Map<string, { columns: Map<string, SourceColumn[]>; all: SourceColumn[] }>();
  for (const [name, d] of derived) {
    table.set(name, { columns: new Map([...d.columns].map(([k, v]) => [k, v.map(sourceOf)])), all: d.all.map(sourceOf) });
  }
  const expand = (s: readonly SourceColumn[]): SourceColumn[] => {
    const out: SourceColumn[] = [...s];
    for (const c of s) {
      if (c.schema !== undefined || c.relation === undefined) continue;
      const d = table.get(c.relation.toLowerCase());
      if (d === undefined) continue;
      out.push(...(c.column === "*" ? d.all : (d.columns.get(c.column) ?? d.all)));
    }
    return dedupeSources(out);
  };
  for (let round = 0; round < DERIVED_ROUNDS; round++) {
    for (const d of table.values()) {
      for (const [k, v] of d.columns) d.columns.set(k, expand(v));
      d.all = expand(d.all);
    }
  }
  return [...table].map(([name, d]) => ({ name, columns: Object.fromEntries(d.columns), all: d.all }));
}

/** The statement's lineage: what it reads, its outputs when known, and its derived tables and CTEs. */
function statementLineage(stmt: MysqlRule, f: Facts): StatementLineage {
  const reads = dedupeSources([...f.columns.values()].filter((c) => c.access === "read").map(sourceOf));
  const outs = queryOutputs(f, stmt);
  const derived = f.derived.size === 0 ? undefined : expandDerived(f.derived);
  return {
    reads,
    ...(outs === undefined ? {} : { outputs: outs.map((o) => dedupeSources(o.sources.map(sourceOf))), names: outs.map((o) => o.name) }),
    ...(derived === undefined ? {} : { derived }),
  };
}

function updatedElement(n: MysqlRule, f: Facts, scope: Scope, depth: number): void {
  const children = kids(n);
  const target = children[0];
  if (target !== undefined && isRule(target)) columnRef(f, scope, nameParts(target), "write");
  for (const c of children.slice(1)) visit(c, f, "read", scope, depth + 1);
}

/** Whether an expression refers to any column outside nested queries. */
function referencesColumn(n: MysqlNode): boolean {
  if (!isRule(n)) return false;
  if (COLUMN_REFS.has(n[0])) return true;
  if (NESTED.has(n[0])) return false;
  return kids(n).some(referencesColumn);
}
