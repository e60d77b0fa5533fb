/**
 * The targets' catalogs, one side connection per PostgreSQL connection, shared by the engine
 * (column origins for masking) and the policy evaluator (views behind column guards).
 */
import type { Logger } from "pino";
import { connectionMap, type Connection, type ConnectionSource, type MysqlConnection, type PostgresConnection } from "../core/connection.js";
import type { Dialer } from "../core/engine.js";
import type { LeaseDbCredentials, SecretRef } from "../core/secret.js";
import type { ViewResolver } from "../policy/policies.js";
import type { Relatives } from "../policy/view-resolver.js";
import type { ColumnAccess } from "../policy/sql/index.js";
import { PgCatalog, type InheritanceInfo, type ViewColumns } from "../protocols/postgres/catalog.js";
import { PgPreviewer } from "../protocols/postgres/preview.js";
import { MysqlPreviewer } from "../protocols/mysql/preview.js";
import type { TargetOptions as MysqlTargetOptions } from "../protocols/mysql/upstream.js";
import type { RuleMasker } from "../protocols/postgres/result-masking.js";
import type { MaskRule } from "../core/decision.js";
import type { MysqlObjectSource } from "../policy/mysql/lineage.js";
import { MysqlCatalog } from "../protocols/mysql/catalog.js";

export class Catalogs {
  readonly #catalogs = new Map<string, PgCatalog>();
  readonly #previewers = new Map<string, PgPreviewer>();
  readonly #mysql = new Map<string, MysqlCatalog>();
  readonly #mysqlPreviewers = new Map<string, MysqlPreviewer>();
  /** Every connection (a live map when the console registers some); PostgreSQL ones have catalogs. */
  readonly #connections: ReadonlyMap<string, Connection>;
  readonly #deps: { dialer: Dialer; resolveSecret: (ref: SecretRef) => Promise<string>; timeoutMs: number; maxMessageBytes: number; leaseCredentials?: LeaseDbCredentials };
  readonly #logger: Logger;

  constructor(
    connections: ConnectionSource,
    deps: { dialer: Dialer; resolveSecret: (ref: SecretRef) => Promise<string>; timeoutMs: number; maxMessageBytes: number; leaseCredentials?: LeaseDbCredentials },
    logger: Logger,
  ) {
    this.#connections = connectionMap(connections);
    this.#deps = deps;
    this.#logger = logger;
  }

  /** Previews of held writes and planner estimates (issue 21): their own side connection per connection. */
  previewer(connection: PostgresConnection, maskerFor: (rule: MaskRule) => RuleMasker): PgPreviewer {
    let p = this.#previewers.get(connection.name);
    if (p === undefined) {
      p = new PgPreviewer(connection, this.#deps, this.#logger, maskerFor);
      this.#previewers.set(connection.name, p);
    }
    return p;
  }

  /** MySQL previews and EXPLAIN estimates: their own side connection per connection. */
  mysqlPreviewer(connection: MysqlConnection, target: MysqlTargetOptions, maskerFor: (rule: MaskRule) => RuleMasker): MysqlPreviewer {
    let p = this.#mysqlPreviewers.get(connection.name);
    if (p === undefined) {
      p = new MysqlPreviewer(connection, target, this.#logger, maskerFor);
      this.#mysqlPreviewers.set(connection.name, p);
    }
    return p;
  }

  for(connection: PostgresConnection): PgCatalog {
    let c = this.#catalogs.get(connection.name);
    if (c === undefined) {
      c = new PgCatalog(connection, this.#deps, this.#logger);
      this.#catalogs.set(connection.name, c);
    }
    return c;
  }

  /** MySQL/MariaDB views and stored functions, for column rules through them (src/policy/mysql/lineage.ts). */
  mysqlObjects(): MysqlObjectSource {
    const catalogOf = (name: string): MysqlCatalog | undefined => {
      const conn = this.#connections.get(name);
      if (conn === undefined || conn.type !== "mysql") return undefined;
      let c = this.#mysql.get(name);
      if (c === undefined) {
        c = this.#mysqlCatalog(conn);
        this.#mysql.set(name, c);
      }
      return c;
    };
    return {
      objects: (connection, databases) => catalogOf(connection)?.objects(databases) ?? { views: new Map(), functions: new Map() },
      invalidate: (connection) => catalogOf(connection)?.invalidate(),
    };
  }

  #mysqlCatalog(connection: MysqlConnection): MysqlCatalog {
    const d = this.#deps;
    return new MysqlCatalog(connection, { dialer: d.dialer, resolveSecret: d.resolveSecret, timeoutMs: d.timeoutMs, limits: { maxPayload: Math.max(d.maxMessageBytes, 1 << 20) } });
  }

  /** Column guards through views, attribute notation and search_path defaults, answered from each connection's catalog. */
  viewResolver(): ViewResolver {
    const catalogOf = (name: string): PgCatalog | undefined => {
      const conn = this.#connections.get(name);
      return conn === undefined || conn.type !== "postgres" ? undefined : this.for(conn);
    };
    return {
      resolve: (connectionName, candidates) => {
        const catalog = catalogOf(connectionName);
        if (catalog === undefined) return [];
        const collect = (views: ReadonlyMap<string, ViewColumns | null>): ColumnAccess[] => {
          const out: ColumnAccess[] = [];
          for (const v of views.values()) {
            if (v === null) continue;
            for (const col of v.columns) out.push({ relation: { schema: col.schema, name: col.table }, column: col.column, access: "read" });
          }
          return out;
        };
        const cached = new Map<string, ViewColumns | null>();
        let missing = false;
        for (const c of candidates) {
          const v = catalog.cachedView(c.schema, c.name);
          if (v === "missing") {
            missing = true;
            break;
          }
          cached.set(`${c.schema}.${c.name}`, v);
        }
        // The lookup's own answer is used (it may be too new or too old to be cached).
        return missing ? catalog.views(candidates).then(collect) : collect(cached);
      },
      columns: (connectionName, names) => {
        const catalog = catalogOf(connectionName);
        if (catalog === undefined) return new Map();
        const cached = new Map<string, ReadonlyMap<string, ReadonlySet<string>>>();
        for (const n of names) {
          const c = catalog.cachedColumns(n);
          if (c === "missing") return catalog.columnsByName(names);
          cached.set(n, c);
        }
        return cached;
      },
      relatives: (connectionName, names) => {
        const catalog = catalogOf(connectionName);
        if (catalog === undefined) return new Map();
        const byName = (infos: ReadonlyMap<string, readonly InheritanceInfo[]>): Relatives =>
          new Map([...infos].map(([name, list]) => [name, new Map(list.map((i) => [i.schema, i.relatives]))]));
        const cached = new Map<string, readonly InheritanceInfo[]>();
        for (const n of names) {
          const c = catalog.cachedInheritance(n);
          if (c === "missing") return catalog.inheritance(names).then(byName);
          cached.set(n, c);
        }
        return byName(cached);
      },
      generation: (connectionName) => catalogOf(connectionName)?.generation ?? 0,
      searchPath: (connectionName) => {
        const catalog = catalogOf(connectionName);
        if (catalog === undefined) return [];
        const cached = catalog.cachedSearchPath();
        return cached === "missing" ? catalog.searchPath() : cached;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#catalogs.values(), ...this.#previewers.values(), ...this.#mysqlPreviewers.values()].map((c) => c.close()));
  }
}
