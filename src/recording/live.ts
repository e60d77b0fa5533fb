/**
 * Live view of recordings as they are written (the console's "watch a running session").
 *
 * Every recording writer of this process (the JSON-lines session recorder, the asciicast
 * writer of SSH and kubectl exec) registers itself here by file path while it is open, counts
 * the lines it has accepted, and hands each line to the watchers, if any (nothing is done per
 * line when nobody watches).
 *
 * `followLines` gives a watcher every line of a recording exactly once, in order: the lines
 * already written (read back from the file once the writer has written everything it had
 * accepted when the watch began) and then each new line as it is accepted. The line index is
 * the seam: lines with an index below the count at the start come from the file, the others
 * from the tap. A writer that lost lines to a write error (best effort, like all recording)
 * yields fewer file lines; nothing is sent twice either way.
 */
import { readFile, stat } from "node:fs/promises";
import { GatewayError } from "../core/errors.js";

export interface LineSource {
  /** Lines accepted so far (the next line's index). */
  readonly count: number;
  /** Resolves once every line accepted so far is in the file. */
  settle(): Promise<void>;
  watch(listener: LineListener): () => void;
}

export interface LineListener {
  line(text: string, index: number): void;
  /** The writer closed: no more lines. */
  closed(): void;
}

/** One writer's watchers; the writer calls `emit` per accepted line and `close` at the end. */
export class LineTap {
  #count = 0;
  readonly #listeners = new Set<LineListener>();

  get count(): number {
    return this.#count;
  }

  /** Count a line the writer accepted (and will write); give it to the watchers. `line` excludes the "\n". */
  emit(line: string): void {
    const index = this.#count++;
    for (const l of this.#listeners) l.line(line, index);
  }

  watch(listener: LineListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    for (const l of this.#listeners) l.closed();
    this.#listeners.clear();
  }

  get watched(): boolean {
    return this.#listeners.size > 0;
  }
}

const open = new Map<string, LineSource>();
/** Told of every writer as it registers (store-mirror.ts copies recordings to the store this way). */
const observers = new Set<(path: string, source: LineSource) => void>();

/** Writers register their file while open (paths are absolute and unique per session). */
export const liveFiles = {
  register(path: string, source: LineSource): void {
    open.set(path, source);
    for (const o of observers) o(path, source);
  },
  /** Be told of each writer registering from now on (before it accepts its first line); returns the un-observe. */
  observe(observer: (path: string, source: LineSource) => void): () => void {
    observers.add(observer);
    return () => observers.delete(observer);
  },
  unregister(path: string, source: LineSource): void {
    if (open.get(path) === source) open.delete(path);
  },
  get(path: string): LineSource | undefined {
    return open.get(path);
  },
};

/** Largest backlog read from a file for a watcher (the same bound as a replay's read). */
export const MAX_FOLLOW_BACKLOG_BYTES = 512 * 1024 * 1024;

async function fileLines(path: string): Promise<string[]> {
  let text: string;
  try {
    if ((await stat(path)).size > MAX_FOLLOW_BACKLOG_BYTES) throw new GatewayError("GW_LIMIT", "the recording is too large to follow");
    text = await readFile(path, "utf8");
  } catch (e) {
    if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") return [];
    throw e;
  }
  const lines = text.split("\n");
  lines.pop(); // "" for a complete file, else a torn (still being written) line
  return lines.filter((l) => l !== "");
}

export interface Following {
  /** Whether a writer was open when the follow began (else the file was read whole and `ended` called). */
  readonly live: boolean;
  stop(): void;
}

/**
 * Give `onLine` every line of the recording at `path`, exactly once and in order, then each new
 * line while its writer is open; `onEnd` once the writer closed (at once when none is open).
 */
export async function followLines(path: string, onLine: (line: string) => void, onEnd: () => void): Promise<Following> {
  const source = liveFiles.get(path);
  if (source === undefined) {
    for (const l of await fileLines(path)) onLine(l);
    onEnd();
    return { live: false, stop: () => undefined };
  }
  const start = source.count;
  const queued: string[] = [];
  let ready = false;
  // An object: the flag changes in a callback while this function awaits.
  const state = { ended: false };
  let stopped = false;
  const unwatch = source.watch({
    line(text, index) {
      if (index < start || stopped) return;
      if (ready) onLine(text);
      else queued.push(text);
    },
    closed() {
      if (ready && !stopped) onEnd();
      else state.ended = true;
    },
  });
  try {
    await source.settle();
    const lines = await fileLines(path);
    for (const l of lines.slice(0, start)) onLine(l);
  } catch (e) {
    unwatch();
    throw e;
  }
  // (stop() is handed out below: nothing can have stopped the follow before this point.)
  for (const l of queued) onLine(l);
  ready = true;
  if (state.ended) onEnd();
  return {
    live: true,
    stop: () => {
      stopped = true;
      unwatch();
    },
  };
}
