/**
 * MySQL/MariaDB column lineage through the target's views and stored functions, and the
 * session state that narrows HANDLER reads.
 *
 * A result field read through a view names the view as its origin (org_table), never the base
 * table; a stored function's value has no origin at all. So that column rules (mask and deny)
 * see the base columns, each statement's facts get, for every view it reads or writes and
 * every stored function it calls, the base columns behind them, from the definitions the target
 * stores (information_schema.VIEWS / ROUTINES, read by the engine's catalog on a gateway side
 * connection: src/protocols/mysql/catalog.ts):
 *
 * - a view's definition is classified like any statement: each view column gets the sources of
 *   its output (by name), views over views are followed (at most MAX_DEPTH deep; a cycle or a
 *   deeper chain reads "anything"), and the view is added to the statement's lineage as a
 *   derived relation (StatementLineage.derived) so the engine masks its columns by their sources;
 * - a stored function's body is classified as the body of a CREATE FUNCTION: everything it
 *   reads (and what the functions it calls read) is what its value may carry.
 *
 * Fail closed: a view or function whose definition cannot be read (no privilege: NULL), parsed,
 * or has effects the walk cannot see (dynamic SQL, CALL), or a catalog that cannot be asked,
 * reads ANY column: under a column mask rule its fields are masked whole; under a column deny
 * rule the statement is refused. A function name the catalog does not list is a built-in.
 */
import type { DerivedRelation, SourceColumn, StatementLineage } from "../../core/decision.js";
import type { Classification, ColumnAccess, QualifiedName, StatementFacts } from "../sql/facts.js";

/** Every column of every relation: what an unreadable view or function may carry. */
export const ANY_COLUMN: SourceColumn = { column: "*" };
/** Deepest chain of views over views (or functions calling functions) followed. */
export const MAX_DEPTH = 8;

/** The views and stored functions of some databases, as the target stores them. */
export interface MysqlObjects {
  /** `db.name` (lower case) → the view's SELECT (null: the definition cannot be read). */
  readonly views: ReadonlyMap<string, string | null>;
  /** `db.name` (lower case) → the stored function's body (null: cannot be read). */
  readonly functions: ReadonlyMap<string, string | null>;
}

/** The target's catalog (src/protocols/mysql/catalog.ts), per connection. */
export interface MysqlObjectSource {
  /** The views and stored functions of these databases (cached by the source). */
  objects(connection: string, databases: readonly string[]): MysqlObjects | Promise<MysqlObjects>;
  /** The session changed views or routines: later look-ups read the target again. */
  invalidate(connection: string): void;
}

type Classify = (sql: string) => Classification | Promise<Classification>;

interface Resolved {
  readonly columns: Readonly<Record<string, readonly SourceColumn[]>>;
  readonly all: readonly SourceColumn[];
}

const ANY: Resolved = { columns: {}, all: [ANY_COLUMN] };

/** Operations of statements that answer with metadata only. */
const METADATA = /^(show|show_.*|describe)$/;

/** Operations after which the catalog's views and routines may have changed. */
const CATALOG_CHANGES = /^(create|alter|drop)_(view|function|procedure|database|schema|table)$|^rename/;

function dedupe(s: readonly SourceColumn[]): SourceColumn[] {
  const seen = new Map<string, SourceColumn>();
  for (const c of s) seen.set(`${c.schema ?? ""}\u0000${c.relation ?? ""}\u0000${c.column}`, c);
  return [...seen.values()];
}

/** Resolves views and functions of one catalog snapshot; results are kept with the snapshot. */
class Resolver {
  readonly #views = new Map<string, Promise<Resolved>>();
  readonly #functions = new Map<string, Promise<readonly SourceColumn[]>>();

  constructor(
    readonly objects: MysqlObjects,
    readonly classify: Classify,
  ) {}

  /** `db.name` keys a (possibly unqualified) name may mean. */
  keys(r: { schema?: string; name: string }, databases: readonly string[]): string[] {
    const dbs = r.schema !== undefined ? [r.schema] : databases;
    return dbs.map((d) => `${d}.${r.name}`.toLowerCase());
  }

  view(key: string, trail: readonly string[] = []): Promise<Resolved> {
    if (trail.includes(key) || trail.length >= MAX_DEPTH) return Promise.resolve(ANY);
    let p = this.#views.get(key);
    if (p === undefined) {
      p = this.#resolveView(key, [...trail, key]).catch(() => ANY);
      // A chain cut by depth is cached only at the top (from elsewhere it may be shallower).
      if (trail.length === 0) this.#views.set(key, p);
    }
    return p;
  }

  fn(key: string, trail: readonly string[] = []): Promise<readonly SourceColumn[]> {
    if (trail.includes(key) || trail.length >= MAX_DEPTH) return Promise.resolve([ANY_COLUMN]);
    let p = this.#functions.get(key);
    if (p === undefined) {
      p = this.#resolveFunction(key, [...trail, key]).catch(() => [ANY_COLUMN]);
      if (trail.length === 0) this.#functions.set(key, p);
    }
    return p;
  }

  /** One statement's facts of a definition, or undefined when it cannot be judged. */
  async #facts(sql: string): Promise<StatementFacts | undefined> {
    const c = await this.classify(sql);
    if (!c.ok || c.statements.length !== 1) return undefined;
    const f = c.statements[0];
    return f === undefined || f.unknownEffects !== undefined ? undefined : f;
  }

  /** Sources with views replaced by their base columns, and stored functions' reads added. */
  async #expand(sources: readonly SourceColumn[], db: string, trail: readonly string[]): Promise<SourceColumn[]> {
    const out: SourceColumn[] = [];
    for (const s of sources) {
      if (s.relation === undefined) {
        out.push(s);
        continue;
      }
      const key = `${s.schema ?? db}.${s.relation}`.toLowerCase();
      if (!this.objects.views.has(key)) {
        out.push(s.schema === undefined ? { ...s, schema: db } : s);
        continue;
      }
      const v = await this.view(key, trail);
      const col = s.column.toLowerCase();
      out.push(...(col !== "*" && Object.hasOwn(v.columns, col) ? (v.columns[col] ?? v.all) : v.all));
    }
    return dedupe(out);
  }

  async #functionReads(f: StatementFacts, db: string, trail: readonly string[]): Promise<SourceColumn[]> {
    const out: SourceColumn[] = [];
    for (const name of f.functions) {
      const key = (name.includes(".") ? name : `${db}.${name}`).toLowerCase();
      if (this.objects.functions.has(key)) out.push(...(await this.fn(key, trail)));
    }
    return out;
  }

  async #resolveView(key: string, trail: readonly string[]): Promise<Resolved> {
    const definition = this.objects.views.get(key);
    if (definition === undefined || definition === null) return ANY;
    const db = key.slice(0, key.indexOf("."));
    const f = await this.#facts(definition);
    const lineage = f?.lineage;
    if (f === undefined || lineage === undefined) return ANY;
    const calls = await this.#functionReads(f, db, trail);
    const all = await this.#expand([...lineage.reads, ...calls], db, trail);
    const columns: Record<string, readonly SourceColumn[]> = {};
    const names = lineage.names ?? [];
    const outputs = lineage.outputs;
    if (outputs !== undefined) {
      for (let i = 0; i < outputs.length; i++) {
        const name = names[i];
        if (name === undefined || Object.hasOwn(columns, name)) continue;
        // A function called anywhere in the view may feed any of its columns.
        columns[name] = await this.#expand([...(outputs[i] ?? []), ...calls], db, trail);
      }
    }
    return { columns, all };
  }

  async #resolveFunction(key: string, trail: readonly string[]): Promise<readonly SourceColumn[]> {
    const body = this.objects.functions.get(key);
    if (body === undefined || body === null) return [ANY_COLUMN];
    const db = key.slice(0, key.indexOf("."));
    const f = await this.#facts(`CREATE FUNCTION airlock_lineage_probe() RETURNS TEXT ${body}`);
    if (f === undefined) return [ANY_COLUMN];
    const reads = f.columns.filter((c) => c.access === "read").map((c): SourceColumn => ({ ...(c.relation === undefined ? {} : { schema: c.relation.schema ?? db, relation: c.relation.name }), column: c.column }));
    return this.#expand([...reads, ...(await this.#functionReads(f, db, trail))], db, trail);
  }
}

const resolvers = new WeakMap<MysqlObjects, Resolver>();

function resolverFor(objects: MysqlObjects, classify: Classify): Resolver {
  let r = resolvers.get(objects);
  if (r === undefined) {
    r = new Resolver(objects, classify);
    resolvers.set(objects, r);
  }
  return r;
}

function accessOf(s: SourceColumn, access: "read" | "write"): ColumnAccess {
  if (s.relation === undefined) return { column: s.column, access };
  return { relation: s.schema === undefined ? { name: s.relation } : { schema: s.schema, name: s.relation }, column: s.column, access };
}

function relationOf(s: SourceColumn): QualifiedName[] {
  if (s.relation === undefined) return [];
  return [s.schema === undefined ? { name: s.relation } : { schema: s.schema, name: s.relation }];
}

/**
 * One MySQL session's view of the target's objects: adds to each statement's facts what its
 * views and stored functions read (see the header), and narrows HANDLER reads to the table a
 * name was opened on.
 */
export class MysqlSessionLineage {
  readonly #connection: string;
  readonly #source: MysqlObjectSource | undefined;
  readonly #classify: Classify;
  readonly #databases: Set<string>;
  /** Handler name (lower case) → the table this session opened it on. */
  readonly #handlers = new Map<string, QualifiedName>();
  /** A statement whose effects the walk cannot see ran (CALL, EXECUTE, …): it may have opened handlers. */
  #handlersUnknown = false;

  constructor(connection: string, database: string | undefined, classify: Classify, source: MysqlObjectSource | undefined) {
    this.#connection = connection;
    this.#source = source;
    this.#classify = classify;
    this.#databases = new Set(database === undefined || database === "" ? [] : [database]);
  }

  /** The classification with HANDLER reads narrowed and views and stored functions seen through. */
  apply(c: Classification): Classification | Promise<Classification> {
    if (!c.ok) return c;
    const statements = c.statements.map((f) => this.#handler(f));
    for (const f of statements) if (f.switchesDatabase !== undefined) this.#databases.add(f.switchesDatabase);
    const source = this.#source;
    if (source === undefined) return { ok: true, statements };
    const changes = statements.some((f) => f.operations.some((op) => CATALOG_CHANGES.test(op)));
    const databases = new Set(this.#databases);
    for (const f of statements) for (const r of [...f.relationsRead, ...f.relationsWritten]) if (r.schema !== undefined) databases.add(r.schema);
    for (const f of statements) for (const fn of f.functions) if (fn.includes(".")) databases.add(fn.slice(0, fn.lastIndexOf(".")));
    const through = async (): Promise<Classification> => {
      let objects: MysqlObjects;
      try {
        objects = await source.objects(this.#connection, [...databases]);
      } catch {
        // The catalog cannot be asked: every view or function may read anything.
        return { ok: true, statements: statements.map((f) => (f.relationsRead.length + f.relationsWritten.length + f.functions.length === 0 ? f : withReads(f, [ANY_COLUMN], [ANY_COLUMN], []))) };
      }
      const resolver = resolverFor(objects, this.#classify);
      const out: StatementFacts[] = [];
      for (const f of statements) out.push(await this.#through(f, resolver));
      return { ok: true, statements: out };
    };
    const result = through();
    // Definitions this message changes are read again by the next one.
    if (changes) return result.finally(() => source.invalidate(this.#connection));
    return result;
  }

  async #through(f: StatementFacts, resolver: Resolver): Promise<StatementFacts> {
    // SHOW / DESCRIBE answer with metadata (SHOW CREATE VIEW of a view over a guarded column is
    // how mariadb-dump saves it), never the rows behind a view.
    if (f.operations.length > 0 && f.operations.every((op) => METADATA.test(op))) return f;
    const dbs = [...this.#databases];
    const derived: DerivedRelation[] = [];
    const reads: SourceColumn[] = [];
    const writes: SourceColumn[] = [];
    for (const [rels, sink] of [[f.relationsRead, reads], [f.relationsWritten, writes]] as const) {
      for (const r of rels) {
        if (r.name === "*") continue;
        for (const key of resolver.keys(r, dbs)) {
          if (!resolver.objects.views.has(key)) continue;
          const v = await resolver.view(key);
          sink.push(...v.all);
          const dot = key.indexOf(".");
          if (sink === reads) derived.push({ schema: key.slice(0, dot), name: key.slice(dot + 1), columns: v.columns, all: v.all });
        }
      }
    }
    for (const name of f.functions) {
      const keys = name.includes(".") ? [name.toLowerCase()] : dbs.map((d) => `${d}.${name}`.toLowerCase());
      for (const key of keys) if (resolver.objects.functions.has(key)) reads.push(...(await resolver.fn(key)));
    }
    if (reads.length === 0 && writes.length === 0) return f;
    return withReads(f, reads, reads, writes, derived);
  }

  /** HANDLER: remember what a name was opened on; narrow a read of a known name to its table. */
  #handler(f: StatementFacts): StatementFacts {
    if (f.unknownEffects !== undefined || f.executes !== undefined || f.prepares !== undefined) this.#handlersUnknown = true;
    const h = f.handler;
    if (h === undefined) return f;
    const name = h.name.toLowerCase();
    switch (h.action) {
      case "open":
        if (h.relation !== undefined) this.#handlers.set(name, h.relation);
        return f;
      case "close":
        this.#handlers.delete(name);
        return f;
      case "read": {
        const table = this.#handlers.get(name);
        if (this.#handlersUnknown || table === undefined) return f;
        // The walk reported the name as a table, and any table besides: it is this one.
        const columns = f.columns.filter((c) => c.relation !== undefined && c.relation.name.toLowerCase() !== name);
        const relationsRead = f.relationsRead.filter((r) => r.name.toLowerCase() !== name);
        columns.push({ relation: table, column: "*", access: "read" });
        relationsRead.push(table);
        return { ...f, columns, relationsRead };
      }
    }
  }
}

/** Facts with base columns added: read (facts and lineage), written, and views as derived relations. */
function withReads(f: StatementFacts, reads: readonly SourceColumn[], lineageReads: readonly SourceColumn[], writes: readonly SourceColumn[], derived: readonly DerivedRelation[] = []): StatementFacts {
  const lineage: StatementLineage = {
    ...(f.lineage ?? { reads: [] }),
    reads: dedupe([...(f.lineage?.reads ?? []), ...lineageReads]),
    ...(derived.length > 0 || f.lineage?.derived !== undefined ? { derived: [...(f.lineage?.derived ?? []), ...derived] } : {}),
  };
  return {
    ...f,
    columns: [...f.columns, ...reads.map((s) => accessOf(s, "read")), ...writes.map((s) => accessOf(s, "write"))],
    relationsRead: [...f.relationsRead, ...reads.flatMap(relationOf)],
    relationsWritten: [...f.relationsWritten, ...writes.flatMap(relationOf)],
    lineage,
  };
}
