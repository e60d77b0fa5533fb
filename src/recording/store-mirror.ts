/**
 * Copies this gateway's session recordings into a shared store (issue 18), so that any gateway
 * on the store can replay a session held by another one (and the console's live view of it shows
 * what has been copied so far).
 *
 * Off the data path: the recording writers already hand every accepted line to their watchers
 * (live.ts); the mirror watches every writer from its registration on and only buffers the line.
 * A timer (default every 2 s) writes what was buffered, for every recording at once, in one
 * transaction: per recording, chunks of whole lines of at most `chunkChars` (a longer line is a
 * chunk of its own; lines are already capped by the writers). A recording that closes is
 * written at once. Best effort like all recording: a failed write is logged once, counted, and
 * retried with the next flush; past `maxPendingChars` per recording, lines are dropped and
 * counted (a store down for long must not grow memory without bound).
 */
import { basename, sep } from "node:path";
import type { Logger } from "pino";
import type { RecordingChunk, RecordingChunkStore, RecordingKind } from "../store/recording-chunks.js";
import { liveFiles, type LineSource } from "./live.js";

const FILE_RE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(jsonl|cast)$/i;

export interface StoreMirrorOptions {
  readonly chunks: RecordingChunkStore;
  /** This gateway's recordings directory: only writers of files under it are copied. */
  readonly root: string;
  readonly logger?: Logger;
  /** Default 2000 ms. */
  readonly flushIntervalMs?: number;
  /** Default 256 Ki characters. */
  readonly chunkChars?: number;
  /** Default 16 Mi characters per recording. */
  readonly maxPendingChars?: number;
}

interface Mirrored {
  readonly sessionId: string;
  readonly kind: RecordingKind;
  nextSeq: number;
  lines: string[];
  chars: number;
  closed: boolean;
}

/** Which recording a writer's file is; undefined for anything else. */
export function recordingOfPath(path: string): { sessionId: string; kind: RecordingKind } | undefined {
  const m = FILE_RE.exec(basename(path));
  if (m?.[1] === undefined || m[2] === undefined) return undefined;
  return { sessionId: m[1].toLowerCase(), kind: m[2].toLowerCase() === "cast" ? "cast" : "jsonl" };
}

export class RecordingStoreMirror {
  readonly #chunks: RecordingChunkStore;
  readonly #root: string;
  readonly #logger: Logger | undefined;
  readonly #chunkChars: number;
  readonly #maxPending: number;
  readonly #recordings = new Set<Mirrored>();
  readonly #unobserve: () => void;
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();
  #errors = 0;
  #dropped = 0;
  #loggedError = false;
  #closed = false;

  constructor(options: StoreMirrorOptions) {
    this.#chunks = options.chunks;
    this.#root = options.root.endsWith(sep) ? options.root : options.root + sep;
    this.#logger = options.logger;
    this.#chunkChars = options.chunkChars ?? 256 * 1024;
    this.#maxPending = options.maxPendingChars ?? 16 * 1024 * 1024;
    this.#unobserve = liveFiles.observe((path, source) => this.#attach(path, source));
    this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 2000);
    this.#timer.unref();
  }

  /** Failed store writes since start. */
  get writeErrors(): number {
    return this.#errors;
  }

  /** Lines dropped over the pending bound. */
  get droppedLines(): number {
    return this.#dropped;
  }

  #attach(path: string, source: LineSource): void {
    if (this.#closed || !path.startsWith(this.#root)) return;
    const which = recordingOfPath(path);
    if (which === undefined) return;
    const m: Mirrored = { ...which, nextSeq: 0, lines: [], chars: 0, closed: false };
    this.#recordings.add(m);
    const unwatch = source.watch({
      line: (text) => {
        const n = text.length + 1;
        if (m.chars + n > this.#maxPending) {
          this.#dropped++;
          return;
        }
        m.lines.push(text);
        m.chars += n;
      },
      closed: () => {
        m.closed = true;
        unwatch();
        void this.flush();
      },
    });
  }

  /** Write everything buffered (queued behind a flush in flight; one writer, in order). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flushOnce());
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    const batch: RecordingChunk[] = [];
    const taken: { m: Mirrored; lines: string[]; chars: number; seq: number }[] = [];
    for (const m of this.#recordings) {
      if (m.lines.length === 0) {
        if (m.closed) this.#recordings.delete(m);
        continue;
      }
      const lines = m.lines;
      const chars = m.chars;
      taken.push({ m, lines, chars, seq: m.nextSeq });
      m.lines = [];
      m.chars = 0;
      let data = "";
      for (const l of lines) {
        if (data !== "" && data.length + l.length + 1 > this.#chunkChars) {
          batch.push({ sessionId: m.sessionId, kind: m.kind, seq: m.nextSeq++, data });
          data = "";
        }
        data += `${l}\n`;
      }
      if (data !== "") batch.push({ sessionId: m.sessionId, kind: m.kind, seq: m.nextSeq++, data });
    }
    if (batch.length === 0) return;
    try {
      await this.#chunks.append(batch);
      for (const t of taken) if (t.m.closed && t.m.lines.length === 0) this.#recordings.delete(t.m);
    } catch (e) {
      this.#errors++;
      if (!this.#loggedError) {
        this.#loggedError = true;
        this.#logger?.error({ err: e }, "copying recordings to the store failed; retried with the next flush (further errors are only counted)");
      }
      // Put the lines back in front of what arrived meanwhile, and their chunk numbers too.
      for (const t of taken) {
        t.m.lines = [...t.lines, ...t.m.lines];
        t.m.chars += t.chars;
        t.m.nextSeq = t.seq;
      }
    }
  }

  /** Stop watching new writers and write what is buffered (call after the recorders closed). */
  async close(): Promise<void> {
    if (this.#closed) return this.#flushing;
    this.#closed = true;
    this.#unobserve();
    clearInterval(this.#timer);
    await this.flush();
  }
}
