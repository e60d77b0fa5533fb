/**
 * Session recordings in the store (issue 18, migration 8), so that every gateway on a shared
 * store can read a recording made on another one. The gateway that holds a session appends the
 * lines of its recordings in chunks (src/recording/store-mirror.ts): `kind` names the recording
 * ("jsonl": the session's JSON-lines recording, "cast": its asciicast terminal recording), `seq`
 * numbers the chunks of one recording from 0, and every chunk holds whole lines, each ending in
 * "\n". Reading concatenates the chunks in order: the same text as the holding gateway's file.
 * Same SQL for every backend.
 */
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { SqlClient } from "./sql.js";

export type RecordingKind = "jsonl" | "cast";

export interface RecordingChunk {
  readonly sessionId: string;
  readonly kind: RecordingKind;
  readonly seq: number;
  readonly data: string;
}

export interface RecordingChunkStore {
  /** Append chunks (of any recordings) in one transaction. A chunk already stored is kept as it is. */
  append(chunks: readonly RecordingChunk[]): Promise<void>;
  /**
   * The chunks of one recording from `fromSeq` on, in order; at most `maxChars` characters of
   * data in all (GW_LIMIT beyond, or, with `partial`, the chunks that fit, at least one).
   */
  read(sessionId: string, kind: RecordingKind, options?: { readonly fromSeq?: number; readonly maxChars?: number; readonly partial?: boolean }): Promise<RecordingChunk[]>;
}

const count = z.union([z.number(), z.string(), z.bigint()]).transform(Number);
const chunkRow = z.object({ seq: count, data: z.string(), size: count });
/** Chunks per statement (5 parameters each). */
const BATCH = 200;
/** Default bound of one read: the bound of a file read (file-store.ts MAX_READ_BYTES). */
const MAX_READ_CHARS = 512 * 1024 * 1024;

export class SqlRecordingChunkStore implements RecordingChunkStore {
  readonly #sql: SqlClient;

  constructor(sql: SqlClient) {
    this.#sql = sql;
  }

  async append(chunks: readonly RecordingChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    const now = new Date().toISOString();
    await this.#sql.transaction(async (tx) => {
      for (let i = 0; i < chunks.length; i += BATCH) {
        const params: unknown[] = [];
        const values = chunks.slice(i, i + BATCH).map((c) => {
          const n = params.length;
          params.push(c.sessionId, c.kind, c.seq, c.data, now);
          return `($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5})`;
        });
        await tx.execute(
          `INSERT INTO recording_chunks (session_id, kind, seq, data, created_at) VALUES ${values.join(", ")}
           ON CONFLICT (session_id, kind, seq) DO NOTHING`,
          params,
        );
      }
    });
  }

  async read(sessionId: string, kind: RecordingKind, options: { readonly fromSeq?: number; readonly maxChars?: number; readonly partial?: boolean } = {}): Promise<RecordingChunk[]> {
    const max = options.maxChars ?? MAX_READ_CHARS;
    // Sizes first (cheap), so an oversized recording is refused before its data is loaded.
    const sizes = await this.#sql.query(
      "SELECT seq, '' AS data, length(data) AS size FROM recording_chunks WHERE session_id = $1 AND kind = $2 AND seq >= $3 ORDER BY seq",
      [sessionId, kind, options.fromSeq ?? 0],
      chunkRow,
    );
    let total = 0;
    let upTo = -1;
    for (const s of sizes) {
      if (total + s.size > max) {
        if (options.partial !== true) throw new GatewayError("GW_LIMIT", "the recording is too large to load at once");
        if (upTo >= 0) break;
      }
      total += s.size;
      upTo = s.seq;
    }
    if (upTo < 0) return [];
    const rows = await this.#sql.query(
      "SELECT seq, data, 0 AS size FROM recording_chunks WHERE session_id = $1 AND kind = $2 AND seq >= $3 AND seq <= $4 ORDER BY seq",
      [sessionId, kind, options.fromSeq ?? 0, upTo],
      chunkRow,
    );
    return rows.map((r) => ({ sessionId, kind, seq: r.seq, data: r.data }));
  }
}
