/**
 * The facts collected while walking one statement, kept in sets and maps keyed so that
 * duplicates merge, and turned into sorted, de-duplicated StatementFacts at the end (see
 * facts.ts for why the order matters). Also the reasons the walker gives for unknown effects.
 */
import { familiesOf } from "./function-families.js";
import type { AttributeRef, ColumnAccess, QualifiedName, StatementFacts } from "./facts.js";

export function relKey(q: QualifiedName): string {
  return q.schema === undefined ? "\u0000" + q.name : q.schema + "\u0000" + q.name;
}

export function qn(schema: string | undefined, name: string): QualifiedName {
  return schema === undefined ? { name } : { schema, name };
}

export class Collector {
  readonly ops = new Set<string>();
  readonly read = new Map<string, QualifiedName>();
  readonly written = new Map<string, QualifiedName>();
  readonly columns = new Map<string, ColumnAccess>();
  readonly functions = new Set<string>();
  /** Families (function-families.ts) of the functions called, and their other members. */
  readonly families = new Set<string>();
  readonly equivalents = new Set<string>();
  /** `t.x` references: a column of t, or the call x(t) (see StatementFacts.attributeRefs). */
  readonly attributeRefs = new Map<string, AttributeRef>();
  noWhere = false;
  unknownEffects: string | undefined;
  prepares: string | undefined;
  executes: string | undefined;
  setsSearchPath: readonly string[] | "default" | undefined;
  readonly settings = new Set<string>();
  /** Some fact was derived from a literal's value: the facts are not a function of the
   * statement's shape, so the classification must not be cached by shape. */
  literalDependent = false;

  op(tag: string): void {
    this.ops.add(tag);
    const i = tag.indexOf("_");
    if (i > 0) {
      const head = tag.slice(0, i);
      if (head === "create" || head === "alter" || head === "drop") this.ops.add(head);
    }
  }

  readRel(q: QualifiedName): void {
    this.read.set(relKey(q), q);
  }

  writeRel(q: QualifiedName): void {
    this.written.set(relKey(q), q);
  }

  column(relation: QualifiedName | undefined, column: string, access: "read" | "write"): void {
    const key = (relation === undefined ? "\u0001" : relKey(relation)) + "\u0002" + column + "\u0002" + access;
    if (this.columns.has(key)) return;
    this.columns.set(key, relation === undefined ? { column, access } : { relation, column, access });
    if (relation !== undefined) {
      if (access === "read") this.readRel(relation);
      else this.writeRel(relation);
    }
  }

  /**
   * A function called (or named by DDL), as written: `name` or `schema.name`. A member of a
   * dangerous family brings the family's name and every other member, qualified alike.
   */
  fn(name: string): void {
    this.functions.add(name);
    const dot = name.lastIndexOf(".");
    const families = familiesOf(name.slice(dot + 1));
    if (families.length === 0) return;
    const prefix = name.slice(0, dot + 1);
    for (const f of families) {
      this.families.add(f.name);
      for (const m of f.members) this.equivalents.add(prefix + m);
    }
  }

  attributeRef(relation: QualifiedName, name: string): void {
    const key = relKey(relation) + "\u0002" + name;
    if (!this.attributeRefs.has(key)) this.attributeRefs.set(key, { relation, name });
  }

  unknown(reason: string): void {
    this.unknownEffects ??= reason;
  }

  /** Merges the facts of a nested statement. `planOnly`: it is only planned (plain EXPLAIN),
   * never executed: its relations and columns count as read, its operations don't count. */
  merge(o: Collector, planOnly: boolean): void {
    if (!planOnly) for (const t of o.ops) this.ops.add(t);
    for (const [k, v] of o.read) this.read.set(k, v);
    for (const [k, v] of o.written) (planOnly ? this.read : this.written).set(k, v);
    for (const c of o.columns.values()) this.column(c.relation, c.column, planOnly ? "read" : c.access);
    for (const f of o.functions) this.functions.add(f);
    for (const f of o.families) this.families.add(f);
    for (const f of o.equivalents) this.equivalents.add(f);
    for (const [k, v] of o.attributeRefs) this.attributeRefs.set(k, v);
    if (!planOnly && o.noWhere) this.noWhere = true;
    if (o.unknownEffects !== undefined) this.unknown(o.unknownEffects);
    this.prepares ??= o.prepares;
    this.executes ??= o.executes;
    if (!planOnly && o.setsSearchPath !== undefined) this.setsSearchPath = o.setsSearchPath;
    if (!planOnly) for (const s of o.settings) this.settings.add(s);
    if (o.literalDependent) this.literalDependent = true;
  }

  toFacts(): StatementFacts {
    const sortedValues = <T>(m: ReadonlyMap<string, T>): T[] =>
      [...m.keys()].sort(compareStrings).map((k) => m.get(k) as T);
    const facts: {
      operations: string[];
      relationsRead: QualifiedName[];
      relationsWritten: QualifiedName[];
      columns: ColumnAccess[];
      functions: string[];
      functionFamilies?: readonly string[];
      equivalentFunctions?: readonly string[];
      noWhere: boolean;
      unknownEffects?: string;
      prepares?: string;
      executes?: string;
      setsSearchPath?: readonly string[] | "default";
      settings?: readonly string[];
      attributeRefs?: readonly AttributeRef[];
    } = {
      operations: [...this.ops].sort(compareStrings),
      relationsRead: sortedValues(this.read),
      relationsWritten: sortedValues(this.written),
      columns: sortedValues(this.columns),
      functions: [...this.functions].sort(compareStrings),
      noWhere: this.noWhere,
    };
    if (this.unknownEffects !== undefined) facts.unknownEffects = this.unknownEffects;
    if (this.prepares !== undefined) facts.prepares = this.prepares;
    if (this.executes !== undefined) facts.executes = this.executes;
    if (this.setsSearchPath !== undefined) facts.setsSearchPath = this.setsSearchPath;
    if (this.settings.size > 0) facts.settings = [...this.settings].sort(compareStrings);
    if (this.families.size > 0) {
      facts.functionFamilies = [...this.families].sort(compareStrings);
      facts.equivalentFunctions = [...this.equivalents].filter((f) => !this.functions.has(f)).sort(compareStrings);
    }
    if (this.attributeRefs.size > 0) facts.attributeRefs = sortedValues(this.attributeRefs);
    return facts;
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export const UNKNOWN = {
  do: "DO blocks run procedural code whose effects can't be known before it runs",
  program: "COPY … PROGRAM runs a shell command on the database server",
  load: "LOAD loads a shared library into the database server",
  cLanguage: "a C-language function loads a shared library into the database server",
  dblink: "dblink runs SQL over another database connection",
  background: "pg_background runs SQL in a background worker",
  cron: "pg_cron schedules SQL to run later",
  dynamicSql: "the statement runs SQL text that is not a constant",
  unparsableSql: "the statement runs SQL text that can't be parsed",
  dynamicTable: "the statement reads a table chosen at run time",
  database: "the statement reads every table in the database",
  dynamicSetting: "the statement changes a setting chosen at run time",
  searchPath: "the statement sets search_path to a value not known statically",
  settings: "writing to pg_settings changes session settings",
  scs: "turning standard_conforming_strings off would make the server read string literals differently from the gateway",
  encoding: "the gateway only judges UTF-8 traffic; changing client_encoding is refused",
  futureSettings: "the statement changes the search_path, role or parsing settings that later sessions start with",
  foreign: "a foreign server, user mapping or subscription lets later statements reach data through a connection the gateway can't check",
  unparsableBody: "the function body can't be parsed",
} as const;
