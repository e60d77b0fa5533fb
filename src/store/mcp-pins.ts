/**
 * The tool fingerprints pinned for upstream MCP servers (issue 16, migration 6): one row per
 * connection × tool, replaced when an admin accepts a change. Same SQL for every backend.
 */
import { z } from "zod";
import { sqlDate, type SqlClient } from "./sql.js";

export interface McpToolPin {
  readonly connection: string;
  readonly tool: string;
  /** sha256 (hex) over the tool's name, description and input schema (protocols/mcp/gateway/fingerprint.ts). */
  readonly fingerprint: string;
  readonly pinnedAt: Date;
  /** The principal id of the admin who pinned it (or `first-use`). */
  readonly pinnedBy: string;
}

export interface McpPinStore {
  list(connection: string): Promise<readonly McpToolPin[]>;
  /** Replace the connection's pins with these (tools absent from the list are unpinned). */
  replace(connection: string, pins: readonly McpToolPin[]): Promise<void>;
}

const row = z.object({ connection: z.string(), tool: z.string(), fingerprint: z.string(), pinned_at: sqlDate, pinned_by: z.string() });

export class SqlMcpPinStore implements McpPinStore {
  readonly #sql: SqlClient;

  constructor(sql: SqlClient) {
    this.#sql = sql;
  }

  async list(connection: string): Promise<readonly McpToolPin[]> {
    const rows = await this.#sql.query("SELECT connection, tool, fingerprint, pinned_at, pinned_by FROM mcp_tool_pins WHERE connection = $1 ORDER BY tool", [connection], row);
    return rows.map((r) => ({ connection: r.connection, tool: r.tool, fingerprint: r.fingerprint, pinnedAt: r.pinned_at, pinnedBy: r.pinned_by }));
  }

  async replace(connection: string, pins: readonly McpToolPin[]): Promise<void> {
    await this.#sql.transaction(async (tx) => {
      await tx.execute("DELETE FROM mcp_tool_pins WHERE connection = $1", [connection]);
      for (const p of pins) {
        await tx.execute("INSERT INTO mcp_tool_pins (connection, tool, fingerprint, pinned_at, pinned_by) VALUES ($1, $2, $3, $4, $5)", [
          connection,
          p.tool,
          p.fingerprint,
          p.pinnedAt.toISOString(),
          p.pinnedBy,
        ]);
      }
    });
  }
}
