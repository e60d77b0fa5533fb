/**
 * Recordings readable from any gateway on a shared store (issue 18): this gateway's files first
 * (complete and current for the sessions it holds or held), else the copy in the store
 * (store-mirror.ts) that the gateway holding the session wrote. Without a chunk store (an
 * embedded store, one gateway) it is the file store alone.
 */
import { join } from "node:path";
import type { RecordingChunkStore, RecordingKind } from "../store/recording-chunks.js";
import { readCast } from "./asciicast.js";
import { parseRecordingText, type FileRecordingStore } from "./file-store.js";
import type { RecordingEntry, RecordingStore, SessionRecorder } from "./types.js";

export class SharedRecordingStore implements RecordingStore {
  readonly files: FileRecordingStore;
  readonly #chunks: RecordingChunkStore | undefined;

  constructor(files: FileRecordingStore, chunks: RecordingChunkStore | undefined) {
    this.files = files;
    this.#chunks = chunks;
  }

  /** Where this gateway writes a session's recordings (GW_BAD_REQUEST for anything but a UUID). */
  pathOf(sessionId: string): { dir: string; file: string; cast: string } {
    const p = this.files.pathOf(sessionId);
    return { ...p, cast: join(p.dir, `${sessionId.toLowerCase()}.cast`) };
  }

  open(sessionId: string): SessionRecorder {
    return this.files.open(sessionId);
  }

  async read(sessionId: string): Promise<readonly RecordingEntry[] | undefined> {
    const local = await this.files.read(sessionId);
    if (local !== undefined) return local;
    const text = await this.storedText(sessionId, "jsonl");
    return text === undefined ? undefined : parseRecordingText(text);
  }

  /** A session's asciicast text (SSH, kubectl exec); undefined when there is none. */
  async readCast(sessionId: string): Promise<string | undefined> {
    const local = await readCast(this.pathOf(sessionId).cast);
    if (local !== undefined) return local;
    return this.storedText(sessionId, "cast");
  }

  /** Whether recordings are also read from the store. */
  get shared(): boolean {
    return this.#chunks !== undefined;
  }

  /**
   * Lines of a recording kept in the store from chunk `fromSeq` on (the console's live view of a
   * session held by another gateway polls this). `next`: the chunk to ask for next time.
   */
  async storedLines(sessionId: string, kind: RecordingKind, fromSeq: number): Promise<{ lines: string[]; next: number }> {
    if (this.#chunks === undefined) return { lines: [], next: fromSeq };
    const chunks = await this.#chunks.read(sessionId.toLowerCase(), kind, { fromSeq, maxChars: 4 * 1024 * 1024, partial: true });
    const lines: string[] = [];
    for (const c of chunks) for (const l of c.data.split("\n")) if (l !== "") lines.push(l);
    const last = chunks[chunks.length - 1];
    return { lines, next: last === undefined ? fromSeq : last.seq + 1 };
  }

  async #storedTextOf(sessionId: string, kind: RecordingKind): Promise<string | undefined> {
    if (this.#chunks === undefined) return undefined;
    const chunks = await this.#chunks.read(sessionId.toLowerCase(), kind);
    return chunks.length === 0 ? undefined : chunks.map((c) => c.data).join("");
  }

  private storedText(sessionId: string, kind: RecordingKind): Promise<string | undefined> {
    this.files.pathOf(sessionId); // validates the id (GW_BAD_REQUEST)
    return this.#storedTextOf(sessionId, kind);
  }

  close(): Promise<void> {
    return this.files.close();
  }
}
