/**
 * Opening the store: PostgreSQL when a URL is configured, else an embedded one under `dataDir`.
 * Migrations run before the store is handed out.
 *
 * The embedded store is SQLite (`<dataDir>/sqlite/airlock.sqlite`) unless PGlite is asked for
 * (`store.embedded: pglite`) or the dataDir already holds a PGlite store (`<dataDir>/store`, the
 * layout before SQLite became the default): that one keeps being used, so an upgrade never
 * starts from an empty store (token revocations, approvals and the audit chain's head live
 * there). Asking for SQLite explicitly over an existing PGlite store is refused rather than
 * silently starting empty. Why SQLite: bench/store-results.md (PGlite's WASM heap alone is
 * 190–350 MB resident; SQLite's a few MB).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { GatewayError } from "../core/errors.js";
import { openPgliteClient, openPostgresClient, openSqliteClient, type SqlClient } from "./sql.js";
import { SqlStore } from "./sql-store.js";
import type { Store } from "./types.js";

export type EmbeddedStoreKind = "sqlite" | "pglite";

export interface OpenStoreOptions {
  readonly dataDir: string;
  /** PostgreSQL URL (already resolved from its secret reference). Never logged. */
  readonly url?: string;
  /** Which embedded store (ignored with `url`); default: see `embeddedStoreKind`. */
  readonly embedded?: EmbeddedStoreKind;
  readonly logger?: Logger;
  /** This gateway instance's id: the audit chain it writes, the sessions it holds (default "default"). */
  readonly instanceId?: string;
}

/** Where each embedded store lives under the dataDir. */
export function embeddedStoreDir(dataDir: string, kind: EmbeddedStoreKind): string {
  switch (kind) {
    case "sqlite":
      return join(dataDir, "sqlite");
    case "pglite":
      return join(dataDir, "store");
  }
}

/** True when `<dataDir>/store` holds a PGlite (PostgreSQL) data directory. */
export function hasPgliteStore(dataDir: string): boolean {
  return existsSync(join(embeddedStoreDir(dataDir, "pglite"), "PG_VERSION"));
}

/** The embedded store a dataDir uses: the one asked for, else an existing PGlite store, else SQLite. */
export function embeddedStoreKind(dataDir: string, requested?: EmbeddedStoreKind): EmbeddedStoreKind {
  const pglite = hasPgliteStore(dataDir);
  if (requested === "sqlite" && pglite && !existsSync(embeddedStoreDir(dataDir, "sqlite"))) {
    throw new GatewayError(
      "GW_CONFIG",
      `store.embedded is sqlite but ${embeddedStoreDir(dataDir, "pglite")} holds this gateway's PGlite store (tokens, approvals, audit chain); ` +
        "Airlock does not convert it: remove store.embedded (an existing PGlite store keeps being used) or set it to pglite",
    );
  }
  return requested ?? (pglite ? "pglite" : "sqlite");
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  let client: SqlClient;
  if (options.url !== undefined) {
    client = openPostgresClient({ url: options.url, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  } else {
    const kind = embeddedStoreKind(options.dataDir, options.embedded);
    const dir = embeddedStoreDir(options.dataDir, kind);
    switch (kind) {
      case "sqlite":
        client = await openSqliteClient(dir);
        break;
      case "pglite":
        client = await openPgliteClient(dir);
        break;
    }
  }
  const store = new SqlStore(client, options.instanceId === undefined ? {} : { instanceId: options.instanceId });
  try {
    await store.migrate();
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return store;
}

export { SqlStore } from "./sql-store.js";
export { migrate, MIGRATIONS, type Migration } from "./migrations.js";
export type { SqlClient } from "./sql.js";
export { DEFAULT_INSTANCE_ID, INSTANCE_ID_RE, SqlInstanceStore, type InstanceRow, type LostSession } from "./instances.js";
