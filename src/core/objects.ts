/**
 * What a held statement acts on, as the target resolves it: an approval is for what the
 * statement does when it runs, not for its text. The guardrails name the objects a statement
 * touches (as written); the engine resolves them on the target (schema-qualified relations and
 * functions, with their OIDs); the approval service binds the request to that resolution and
 * compares it again when the approved statement is released (src/approvals/binding.ts).
 */

/** The objects a statement names, as written (from the real PostgreSQL parser). */
export interface ObjectNames {
  readonly relations: readonly { readonly schema?: string | undefined; readonly name: string }[];
  /** Functions called, as written: `name` or `schema.name`. */
  readonly functions: readonly string[];
}

/** One catalog object a name resolves to. */
export interface ResolvedObject {
  readonly oid: number;
  /** Schema-qualified: `public.orders`, `pg_catalog.lower(text)`. */
  readonly qualified: string;
}

export interface BoundObject {
  readonly kind: "relation" | "function";
  /** As written in the statement: `orders`, `app.orders`, `lower`. */
  readonly name: string;
  /**
   * What it resolves to, by OID order. A relation: the one relation (empty: none exists). A
   * function: every function of that name the call may pick among (overloads are chosen by
   * argument types at run time), so a new overload or a shadowing function is a change too.
   */
  readonly resolved: readonly ResolvedObject[];
}

export interface ObjectBinding {
  /** The session's search_path the names were resolved under, as the target prints it. */
  readonly searchPath: string;
  readonly objects: readonly BoundObject[];
}

/** Resolves names on the target as the client's session would (implemented by the engine). */
export type ObjectResolver = (names: ObjectNames) => Promise<ObjectBinding>;
