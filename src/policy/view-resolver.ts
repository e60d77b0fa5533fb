import type { ColumnAccess } from "./sql/index.js";

/**
 * Sees through views for column guards: the base-table columns that views among these
 * relations read (from the target's catalog). Synchronous when cached.
 */
export interface ViewResolver {
  resolve(connection: string, candidates: readonly { schema: string; name: string }[]): readonly ColumnAccess[] | Promise<readonly ColumnAccess[]>;
  /**
   * The columns of every relation with one of these names: name → schema → column names
   * (a name absent or mapped to nothing: no such relation is visible in the catalog). Tells
   * whether `t.x` is a column of t or the call x(t) (attribute notation). Synchronous when cached.
   */
  columns?(connection: string, names: readonly string[]): ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>> | Promise<ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>>;
  /** Every schema the search_path of a new target session may name (role, database and server
   * defaults; `$user` as written). Synchronous when cached. */
  searchPath?(connection: string): readonly string[] | Promise<readonly string[]>;
  /**
   * Relations sharing columns through inheritance or partitioning with every relation named
   * one of these: name → schema → relatives (`descendant`: its rows are read through it).
   * Synchronous when cached.
   */
  relatives?(connection: string, names: readonly string[]): Relatives | Promise<Relatives>;
  /**
   * Changes whenever an answer above may change other than by its cache entry's age (DDL seen
   * by the gateway invalidates the catalog): verdicts built from older answers are stale.
   */
  generation?(connection: string): number;
}

export type Relatives = ReadonlyMap<string, ReadonlyMap<string, readonly { readonly schema: string; readonly name: string; readonly descendant: boolean }[]>>;
