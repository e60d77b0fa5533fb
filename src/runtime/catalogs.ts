/**
 * The targets' catalogs, one side connection per PostgreSQL connection, shared by the engine
 * (column origins for masking) and the policy evaluator (views behind column guards).
 */
import type { Logger } from "pino";
import type { PostgresConnection } from "../core/connection.js";
import type { Dialer } from "../core/engine.js";
import type { SecretRef } from "../core/secret.js";
import type { ViewResolver } from "../policy/policies.js";
import type { ColumnAccess } from "../policy/sql/index.js";
import { PgCatalog } from "../protocols/postgres/catalog.js";

export class Catalogs {
  readonly #catalogs = new Map<string, PgCatalog>();
  readonly #connections: ReadonlyMap<string, PostgresConnection>;
  readonly #deps: { dialer: Dialer; resolveSecret: (ref: SecretRef) => Promise<string>; timeoutMs: number; maxMessageBytes: number };
  readonly #logger: Logger;

  constructor(
    connections: readonly PostgresConnection[],
    deps: { dialer: Dialer; resolveSecret: (ref: SecretRef) => Promise<string>; timeoutMs: number; maxMessageBytes: number },
    logger: Logger,
  ) {
    this.#connections = new Map(connections.map((c) => [c.name, c]));
    this.#deps = deps;
    this.#logger = logger;
  }

  for(connection: PostgresConnection): PgCatalog {
    let c = this.#catalogs.get(connection.name);
    if (c === undefined) {
      c = new PgCatalog(connection, this.#deps, this.#logger);
      this.#catalogs.set(connection.name, c);
    }
    return c;
  }

  /** Column guards through views, answered from each connection's catalog. */
  viewResolver(): ViewResolver {
    return {
      resolve: (connectionName, candidates) => {
        const conn = this.#connections.get(connectionName);
        if (conn === undefined) return [];
        const catalog = this.for(conn);
        const collect = (): ColumnAccess[] => {
          const out: ColumnAccess[] = [];
          for (const c of candidates) {
            const v = catalog.cachedView(c.schema, c.name);
            if (v === null || v === "missing") continue;
            for (const col of v.columns) out.push({ relation: { schema: col.schema, name: col.table }, column: col.column, access: "read" });
          }
          return out;
        };
        const missing = candidates.filter((c) => catalog.cachedView(c.schema, c.name) === "missing");
        if (missing.length === 0) return collect();
        return catalog.views(missing).then(collect);
      },
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#catalogs.values()].map((c) => c.close()));
  }
}
