/**
 * Opening the store: PostgreSQL when a URL is configured, else embedded PGlite under
 * `<dataDir>/store`. Migrations run before the store is handed out.
 */
import { join } from "node:path";
import type { Logger } from "pino";
import { openPgliteClient, openPostgresClient, type SqlClient } from "./sql.js";
import { SqlStore } from "./sql-store.js";
import type { Store } from "./types.js";

export interface OpenStoreOptions {
  readonly dataDir: string;
  /** PostgreSQL URL (already resolved from its secret reference). Never logged. */
  readonly url?: string;
  readonly logger?: Logger;
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const client: SqlClient =
    options.url === undefined
      ? await openPgliteClient(join(options.dataDir, "store"))
      : openPostgresClient({ url: options.url, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  const store = new SqlStore(client);
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
