/**
 * Scopes: one per query level, holding its FROM-clause items (for column resolution) and the
 * CTE names its WITH clause makes visible.
 */
import { list, type Obj } from "./ast.js";
import type { QualifiedName } from "./facts.js";

export interface Entry {
  /** The name a column reference qualifies with: the alias, else the relation (or CTE) name. */
  readonly refname: string | undefined;
  /** An unaliased relation: `schema.rel.col` may name it (even when FROM wrote no schema). */
  readonly qualifiable: boolean;
  /** The schema written for a qualifiable relation, if any. */
  readonly schema: string | undefined;
  /** The base relations a column of this item may come from: [] for subqueries, CTEs and
   * functions, whose own facts were collected when their query was walked. */
  readonly relations: readonly QualifiedName[];
  /** The item renames its columns (`users AS u(a, b, c)`, `(… JOIN …) AS j(x, y)`): a column
   * reached through it may be any column of its relations, so it is reported as `*`. */
  readonly renamed?: true;
  /** A subquery whose rows are few and explicit (VALUES, a FROM-less SELECT without function
   * calls, a SELECT whose WHERE restricts its own rows): an upsert or MERGE fed by it does
   * not reach every row of its target. */
  bounded?: true;
}

export class Scope {
  readonly entries: Entry[] = [];
  ctes: Set<string> | undefined;
  /** The level's WHERE clause (SELECT levels): it may pin a column to a constant, which
   * set_config(name, …) FROM pg_settings WHERE name = '…' relies on. */
  where: unknown;
  constructor(readonly parent: Scope | undefined) {}

  isCte(name: string): boolean {
    if (this.ctes?.has(name) === true) return true;
    return this.parent?.isCte(name) ?? false;
  }
}

export function derived(refname: string | undefined, relations: readonly QualifiedName[], renamed = false): Entry {
  return renamed ? { refname, qualifiable: false, schema: undefined, relations, renamed: true } : { refname, qualifiable: false, schema: undefined, relations };
}

/** Whether an Alias node renames columns (`AS u(a, b, c)`). */
export function renamesColumns(alias: Obj | undefined): boolean {
  return alias !== undefined && list(alias, "colnames").length > 0;
}

export function self(r: QualifiedName, relations: readonly QualifiedName[]): Entry {
  return { refname: r.name, qualifiable: true, schema: r.schema, relations };
}

/** Finds the entries a qualifier names, innermost level first (PostgreSQL's rule). */
export function findQualified(qual: readonly string[], scope: Scope): readonly Entry[] {
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    const found = s.entries.filter((e) => {
      if (qual.length === 1) return e.refname === qual[0];
      // schema.rel or catalog.schema.rel: only an unaliased relation can be named so. When
      // FROM named it without a schema we can't tell which schema it resolved to: match.
      const n = qual.length;
      return e.qualifiable && e.refname === qual[n - 1] && (e.schema === undefined || e.schema === qual[n - 2]);
    });
    if (found.length > 0) return found;
  }
  return [];
}

/** Field-skip set for `Walker.visitFields` that skips nothing. */
export const SKIP_NONE: ReadonlySet<string> = new Set();
