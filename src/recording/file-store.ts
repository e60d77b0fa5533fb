/**
 * Session recordings as JSON-lines files: `<dataDir>/recordings/<xx>/<sessionId>.jsonl`, where
 * `xx` is the first two hex digits of the session id (a UUID). The shard keeps directories small
 * and lets `read()` open a recording directly, without scanning.
 *
 * Recording is best effort, unlike audit: `append()` never blocks or throws on the data path.
 * Entries are buffered and written by a single writer per file, in order, at most 100 ms after
 * they were appended (or at once past 64 KiB). A write error is logged once, counted, and the
 * affected lines are dropped; recording carries on. A crash loses at most the unflushed buffer
 * and may leave a torn last line, which `read()` ignores.
 *
 * Session ids are validated before any path is built from them (no traversal). Every line is
 * capped (1 MiB by default): oversized string values are cut with a `…[truncated]` marker and,
 * if needed, rows are dropped (`rowsTruncated: true`).
 */
import { appendFile, mkdir, open, readFile, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { LineTap, liveFiles, type LineSource } from "./live.js";
import type { RecordingEntry, RecordingInput, RecordingStore, SessionRecorder } from "./types.js";

export const TRUNCATION_MARKER = "…[truncated]";
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Largest recording `read()` loads (the API returns it whole). */
const MAX_READ_BYTES = 512 * 1024 * 1024;

export interface FileRecordingStoreOptions {
  readonly dataDir: string;
  readonly logger?: Logger;
  /** Default 100 ms. */
  readonly flushIntervalMs?: number;
  /** Flush at once when a recorder buffers this much. Default 64 KiB. */
  readonly flushBytes?: number;
  /** Cap per line (per entry). Default 1 MiB. */
  readonly maxLineBytes?: number;
  /** Per recorder: beyond this much unwritten data (a stalled disk) new entries are dropped. Default 16 MiB. */
  readonly maxPendingBytes?: number;
}

// --- reading ----------------------------------------------------------------------------------

const decision = z.enum(["allow", "deny"]);
const cell = z.string().nullable();

/** Parses recording entries (also used by the CLI to read them back from the API). */
export const recordingEntrySchema = z.discriminatedUnion("kind", [
  z.object({
    t: z.number(),
    kind: z.literal("header"),
    sessionId: z.string(),
    protocol: z.string(),
    connection: z.string(),
    principal: z.string(),
    startedAt: z.string(),
    version: z.literal(1),
  }),
  z.object({
    t: z.number(),
    kind: z.literal("query"),
    seq: z.number(),
    stage: z.string(),
    sql: z.string(),
    statementName: z.string().exactOptional(),
    params: z.array(cell).exactOptional(),
    decision,
    rule: z.string().exactOptional(),
    message: z.string().exactOptional(),
  }),
  z.object({
    t: z.number(),
    kind: z.literal("result"),
    seq: z.number(),
    resultKind: z.enum(["simple", "execute"]),
    params: z.array(cell).exactOptional(),
    commandTag: z.string().exactOptional(),
    rowCount: z.number(),
    columns: z.array(z.string()).exactOptional(),
    rows: z.array(z.array(cell)).exactOptional(),
    rowsTruncated: z.boolean().exactOptional(),
    error: z.object({ sqlstate: z.string(), message: z.string() }).exactOptional(),
    durationMs: z.number(),
    masked: z.record(z.string(), z.number()).exactOptional(),
    rowsSent: z.number().exactOptional(),
  }),
  z.object({
    t: z.number(),
    kind: z.literal("end"),
    reason: z.string(),
    detail: z.string().exactOptional(),
  }),
]);

// Compile-time check: what the schema yields is a RecordingEntry (fails to compile otherwise).
type Extends<A, B> = [A] extends [B] ? true : false;
export const _recordingSchemaMatchesContract: Extends<z.output<typeof recordingEntrySchema>, RecordingEntry> = true;

/**
 * The entries of a recording's text (a file, or the chunks kept in the store). The text after
 * the last "\n" is empty for a complete recording, or a torn line from a crash (or a write still
 * in progress): ignored either way. A damaged line is GW_STORE.
 */
export function parseRecordingText(text: string): RecordingEntry[] {
  const lines = text.split("\n");
  lines.pop();
  const entries: RecordingEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === undefined || line === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new GatewayError("GW_STORE", `the recording is damaged at line ${i + 1}`, { cause: e });
    }
    const r = recordingEntrySchema.safeParse(json);
    if (!r.success) throw new GatewayError("GW_STORE", `the recording is damaged at line ${i + 1}`, { cause: r.error });
    entries.push(r.data);
  }
  return entries;
}

// --- writing ----------------------------------------------------------------------------------

function cut(s: string, cap: number): string {
  if (s.length <= cap) return s;
  let end = cap;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // do not split a surrogate pair
  return s.slice(0, end) + TRUNCATION_MARKER;
}

/** Every string value (not key) longer than `cap` cut to `cap`. */
function capStrings(value: unknown, cap: number): unknown {
  if (typeof value === "string") return cut(value, cap);
  if (Array.isArray(value)) return value.map((v: unknown) => capStrings(v, cap));
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = capStrings(v, cap);
    return out;
  }
  return value;
}

function fits(line: string, max: number): boolean {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most lines are decided without encoding them.
  return line.length * 3 <= max || Buffer.byteLength(line, "utf8") <= max;
}

/**
 * Serialise an entry to one JSON line (without "\n") of at most `max` bytes. Invariant: the
 * result always parses as the same kind of entry; only values are shortened or rows dropped.
 */
export function serialiseEntry(entry: RecordingEntry, max: number): string {
  const line = JSON.stringify(entry);
  if (fits(line, max)) return line;
  let capped: Record<string, unknown> = { ...entry };
  for (const cap of [65_536, 8_192, 1_024, 128, 16]) {
    capped = capStrings(entry, cap) as Record<string, unknown>;
    const l = JSON.stringify(capped);
    if (fits(l, max)) return l;
  }
  // Still too big: a result with very many rows, parameters or columns.
  if (entry.kind === "result") {
    let rows = Array.isArray(capped.rows) ? (capped.rows as unknown[]) : [];
    while (rows.length > 0) {
      rows = rows.slice(0, Math.floor(rows.length / 2));
      const l = JSON.stringify({ ...capped, rows, rowsTruncated: true });
      if (fits(l, max)) return l;
    }
    const minimal: RecordingEntry = {
      t: entry.t,
      kind: "result",
      seq: entry.seq,
      resultKind: entry.resultKind,
      rowCount: entry.rowCount,
      durationMs: entry.durationMs,
      rowsTruncated: true,
      ...(entry.commandTag === undefined ? {} : { commandTag: cut(entry.commandTag, 16) }),
    };
    return JSON.stringify(minimal);
  }
  return JSON.stringify(capped);
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined;
}

interface StoreCallbacks {
  readonly logger: Logger | undefined;
  readonly flushIntervalMs: number;
  readonly flushBytes: number;
  readonly maxLineBytes: number;
  readonly maxPendingBytes: number;
  writeError(e: unknown, path: string): void;
  dropped(n: number): void;
  closed(r: FileSessionRecorder): void;
  /** Recording directories known to exist (created once, not once per session). */
  readonly knownDirs: Set<string>;
}

class FileSessionRecorder implements SessionRecorder {
  private readonly t0 = performance.now();
  private chunks: string[] = [];
  private bufferedBytes = 0;
  /** Buffered plus being written: what the pending cap applies to. */
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private fh: FileHandle | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** Watchers of the live view (live.ts); the recorder is registered by path while open. */
  private readonly tap = new LineTap();
  private readonly source: LineSource;

  constructor(
    readonly path: string,
    private readonly dir: string,
    private readonly cb: StoreCallbacks,
  ) {
    const tap = this.tap;
    this.source = { get count() { return tap.count; }, settle: () => this.flush(), watch: (l) => tap.watch(l) };
    liveFiles.register(path, this.source);
  }

  append(input: RecordingInput): void {
    if (this.closing !== undefined) {
      this.cb.dropped(1);
      return;
    }
    const t = Math.round((performance.now() - this.t0) * 1000) / 1000;
    let line: string;
    try {
      line = `${serialiseEntry({ t, ...input }, this.cb.maxLineBytes)}\n`;
    } catch (e) {
      // Never throw into the data path; an unserialisable entry is a bug worth a log line.
      this.cb.logger?.warn({ err: e, path: this.path }, "recording entry could not be serialised");
      this.cb.dropped(1);
      return;
    }
    const size = line.length; // UTF-16 units: a cheap, close estimate for buffering decisions
    if (this.pendingBytes + size > this.cb.maxPendingBytes) {
      this.cb.dropped(1);
      return;
    }
    this.chunks.push(line);
    this.tap.emit(line.slice(0, -1));
    this.bufferedBytes += size;
    this.pendingBytes += size;
    if (this.bufferedBytes >= this.cb.flushBytes) {
      this.flushSoon(0);
    } else if (this.timer === undefined) {
      this.flushSoon(this.cb.flushIntervalMs);
    }
  }

  private flushSoon(ms: number): void {
    if (this.timer !== undefined) {
      if (ms > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
    this.timer.unref();
  }

  /**
   * Queue the buffered lines behind any write in flight (single writer, in order). `last`: the
   * recorder is closing; a recording that never opened its file (a short session) is then
   * written with one append instead of open + write + close.
   */
  flush(last = false): Promise<void> {
    if (this.chunks.length === 0) return this.writing;
    const data = this.chunks.join("");
    const size = this.bufferedBytes;
    this.chunks = [];
    this.bufferedBytes = 0;
    this.writing = this.writing.then(async () => {
      try {
        if (this.fh === undefined) {
          try {
            await this.openOrAppend(data, last);
          } catch (e) {
            // The directory went away (recordings cleaned up by hand): create it again, once.
            if (errnoCode(e) !== "ENOENT") throw e;
            this.cb.knownDirs.delete(this.dir);
            await this.openOrAppend(data, last);
          }
          return;
        }
        await this.fh.write(data);
      } catch (e) {
        this.cb.writeError(e, this.path);
      } finally {
        this.pendingBytes -= size;
      }
    });
    return this.writing;
  }

  /** First write of a recording: the whole of it when `last`, else open the file for appending. */
  private async openOrAppend(data: string, last: boolean): Promise<void> {
    if (!this.cb.knownDirs.has(this.dir)) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.cb.knownDirs.add(this.dir);
    }
    if (last) {
      await appendFile(this.path, data, { mode: 0o600 });
      return;
    }
    this.fh = await open(this.path, "a", 0o600);
    await this.fh.write(data);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      await this.flush(true);
      const fh = this.fh;
      this.fh = undefined;
      if (fh !== undefined) {
        try {
          await fh.close();
        } catch (e) {
          this.cb.writeError(e, this.path);
        }
      }
      liveFiles.unregister(this.path, this.source);
      this.tap.close();
      this.cb.closed(this);
    })();
    return this.closing;
  }
}

export class FileRecordingStore implements RecordingStore {
  readonly root: string;
  private readonly logger: Logger | undefined;
  private readonly callbacks: StoreCallbacks;
  private readonly openRecorders = new Set<FileSessionRecorder>();
  private errors = 0;
  private droppedCount = 0;
  private loggedError = false;
  private closing: Promise<void> | undefined;

  constructor(options: FileRecordingStoreOptions) {
    this.root = join(options.dataDir, "recordings");
    this.logger = options.logger;
    this.callbacks = {
      logger: options.logger,
      flushIntervalMs: options.flushIntervalMs ?? 100,
      flushBytes: options.flushBytes ?? 64 * 1024,
      maxLineBytes: options.maxLineBytes ?? 1024 * 1024,
      maxPendingBytes: options.maxPendingBytes ?? 16 * 1024 * 1024,
      knownDirs: new Set<string>(),
      writeError: (e, path) => {
        this.errors++;
        if (!this.loggedError) {
          this.loggedError = true;
          this.logger?.error({ err: e, path }, "recording write failed; recordings continue best effort (further errors are only counted)");
        }
      },
      dropped: (n) => {
        this.droppedCount += n;
      },
      closed: (r) => this.openRecorders.delete(r),
    };
  }

  /** Write errors since start (each failed flush or close counts once). */
  get writeErrors(): number {
    return this.errors;
  }

  /** Entries dropped: appended after close, unserialisable, or over the pending cap. */
  get droppedEntries(): number {
    return this.droppedCount;
  }

  /** Where a session's recording lives. Throws GW_BAD_REQUEST for anything but a UUID. */
  pathOf(sessionId: string): { dir: string; file: string } {
    if (!UUID_RE.test(sessionId)) throw new GatewayError("GW_BAD_REQUEST", "invalid session id (expected a UUID)");
    const id = sessionId.toLowerCase();
    const dir = join(this.root, id.slice(0, 2));
    return { dir, file: join(dir, `${id}.jsonl`) };
  }

  open(sessionId: string): SessionRecorder {
    if (this.closing !== undefined) throw new GatewayError("GW_SHUTTING_DOWN", "the recording store is closed");
    const { dir, file } = this.pathOf(sessionId);
    const r = new FileSessionRecorder(file, dir, this.callbacks);
    this.openRecorders.add(r);
    return r;
  }

  async read(sessionId: string): Promise<readonly RecordingEntry[] | undefined> {
    const { file } = this.pathOf(sessionId);
    let text: string;
    try {
      const st = await stat(file);
      if (!st.isFile()) return undefined;
      if (st.size > MAX_READ_BYTES) throw new GatewayError("GW_LIMIT", "the recording is too large to load at once");
      text = await readFile(file, "utf8");
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return undefined;
      if (e instanceof GatewayError) throw e;
      throw new GatewayError("GW_STORE", "cannot read the recording", { cause: e });
    }
    return parseRecordingText(text);
  }

  /** Flush and close every open recorder. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all([...this.openRecorders].map((r) => r.close())).then(() => undefined);
    return this.closing;
  }
}
