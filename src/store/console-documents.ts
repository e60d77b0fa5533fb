/**
 * What the web console creates and edits at run time (connections, policies), kept in the store
 * so every gateway sharing it sees the same set. Each entry is one row per (kind, name) with its
 * body as JSON text; the meaning of the body belongs to its owner (runtime/live-connections.ts,
 * runtime/live-policies.ts), which validates it on every read.
 *
 * Invariant: bodies never hold secret values in clear, only references or sealed ciphertext.
 */
import { z } from "zod";
import { sqlDate, type SqlClient } from "./sql.js";

export type ConsoleDocumentKind = "connection" | "policy";

export interface ConsoleDocument {
  readonly kind: ConsoleDocumentKind;
  readonly name: string;
  /** JSON text. */
  readonly body: string;
  readonly updatedAt: Date;
  readonly updatedBy: string;
}

export interface ConsoleDocumentStore {
  /** Every document of a kind, by name. */
  list(kind: ConsoleDocumentKind): Promise<readonly ConsoleDocument[]>;
  /** Insert or replace. */
  put(doc: ConsoleDocument): Promise<void>;
  /** Returns false when there was none. */
  remove(kind: ConsoleDocumentKind, name: string): Promise<boolean>;
}

/** Longest body accepted (a connection or policy document is a few KB). */
export const MAX_CONSOLE_DOCUMENT_CHARS = 256 * 1024;

const row = z.object({ kind: z.enum(["connection", "policy"]), name: z.string(), body: z.string(), updated_at: sqlDate, updated_by: z.string() });

export class SqlConsoleDocumentStore implements ConsoleDocumentStore {
  constructor(private readonly sql: SqlClient) {}

  async list(kind: ConsoleDocumentKind): Promise<readonly ConsoleDocument[]> {
    const rows = await this.sql.query("SELECT kind, name, body, updated_at, updated_by FROM console_documents WHERE kind = $1 ORDER BY name", [kind], row);
    return rows.map((r) => ({ kind: r.kind, name: r.name, body: r.body, updatedAt: r.updated_at, updatedBy: r.updated_by }));
  }

  async put(doc: ConsoleDocument): Promise<void> {
    if (doc.body.length > MAX_CONSOLE_DOCUMENT_CHARS) throw new RangeError(`a console ${doc.kind} is larger than ${MAX_CONSOLE_DOCUMENT_CHARS} characters`);
    await this.sql.execute(
      `INSERT INTO console_documents (kind, name, body, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [doc.kind, doc.name, doc.body, doc.updatedAt.toISOString(), doc.updatedBy],
    );
  }

  async remove(kind: ConsoleDocumentKind, name: string): Promise<boolean> {
    return (await this.sql.execute("DELETE FROM console_documents WHERE kind = $1 AND name = $2", [kind, name])) > 0;
  }
}
