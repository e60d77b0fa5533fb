/**
 * Terminal recordings in asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON
 * header line, then `[seconds, "o"|"i"|"r", data]` event lines. One file per SSH session, next
 * to the session's JSON-lines recording: `<dataDir>/recordings/<xx>/<sessionId>.cast`.
 *
 * It stores what the agent saw (output after masking) and what it typed. Best effort like the
 * other recordings: writes are buffered and never block or throw into the data path; past
 * `maxBytes` further events are dropped and a marker is written once.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { StringDecoder } from "node:string_decoder";
import { GatewayError } from "../core/errors.js";
import { LineTap, liveFiles, type LineSource } from "./live.js";

export interface CastHeader {
  readonly width: number;
  readonly height: number;
  readonly timestamp?: number;
  readonly title?: string;
  readonly env?: Readonly<Record<string, string>>;
}

export type CastEvent = readonly [number, "o" | "i" | "r" | "m", string];

export class AsciicastWriter {
  readonly path: string;
  #stream: WriteStream | undefined;
  #t0 = 0;
  #bytes = 0;
  #full = false;
  #closed: Promise<void> | undefined;
  readonly #maxBytes: number;
  readonly #decoders = { o: new StringDecoder("utf8"), i: new StringDecoder("utf8") };
  /** Watchers of the live view (live.ts); registered by path from start() to close(). */
  readonly #tap = new LineTap();
  readonly #source: LineSource;

  constructor(path: string, maxBytes = 256 * 1024 * 1024) {
    this.path = path;
    this.#maxBytes = maxBytes;
    const tap = this.#tap;
    this.#source = {
      get count() {
        return tap.count;
      },
      // Writes are in order: the callback of an empty write runs once everything before it is written.
      settle: () => new Promise<void>((resolve) => (this.#stream === undefined || this.#stream.destroyed ? resolve() : this.#stream.write("", () => resolve()))),
      watch: (l) => tap.watch(l),
    };
  }

  get started(): boolean {
    return this.#stream !== undefined;
  }

  /** Write the header (once); events before it are dropped. */
  start(header: CastHeader): void {
    if (this.#stream !== undefined || this.#closed !== undefined) return;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    } catch {
      return;
    }
    this.#stream = createWriteStream(this.path, { flags: "a", mode: 0o600 });
    this.#stream.on("error", () => {
      this.#full = true; // stop writing; recording is best effort
    });
    this.#t0 = performance.now();
    liveFiles.register(this.path, this.#source);
    this.#line(
      JSON.stringify({
        version: 2,
        width: header.width,
        height: header.height,
        timestamp: header.timestamp ?? Math.floor(Date.now() / 1000),
        ...(header.title === undefined ? {} : { title: header.title }),
        ...(header.env === undefined ? {} : { env: header.env }),
      }),
    );
  }

  output(data: Buffer): void {
    this.#event("o", this.#decoders.o.write(data));
  }

  input(data: Buffer): void {
    this.#event("i", this.#decoders.i.write(data));
  }

  resize(cols: number, rows: number): void {
    this.#event("r", `${cols}x${rows}`);
  }

  /** A marker (asciicast v2 "m" event), e.g. a refused line. */
  marker(label: string): void {
    this.#event("m", label);
  }

  #event(kind: "o" | "i" | "r" | "m", data: string): void {
    if (this.#stream === undefined || data === "") return;
    const t = Math.round(performance.now() - this.#t0) / 1000;
    this.#line(JSON.stringify([t, kind, data]));
  }

  #line(line: string): void {
    if (this.#full || this.#stream === undefined) return;
    const n = Buffer.byteLength(line) + 1;
    if (this.#bytes + n > this.#maxBytes) {
      this.#full = true;
      const t = Math.round(performance.now() - this.#t0) / 1000;
      const marker = JSON.stringify([t, "m", "recording size limit reached; the rest is not recorded"]);
      this.#stream.write(`${marker}\n`);
      this.#tap.emit(marker);
      return;
    }
    this.#bytes += n;
    this.#stream.write(`${line}\n`);
    this.#tap.emit(line);
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      const s = this.#stream;
      if (s === undefined) {
        resolve();
        return;
      }
      s.end(() => resolve());
      s.once("error", () => resolve());
    }).then(() => {
      liveFiles.unregister(this.path, this.#source);
      this.#tap.close();
    });
    return this.#closed;
  }
}

/** Largest cast the API serves at once. */
export const MAX_CAST_BYTES = 512 * 1024 * 1024;

/** Read a cast file; undefined when there is none. */
export async function readCast(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return undefined;
    if (st.size > MAX_CAST_BYTES) throw new GatewayError("GW_LIMIT", "the recording is too large to load at once");
    return await readFile(path, "utf8");
  } catch (e) {
    if (e instanceof GatewayError) throw e;
    if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") return undefined;
    throw new GatewayError("GW_STORE", "cannot read the recording", { cause: e });
  }
}

/** Parse a cast: header and events (torn last line ignored). */
export function parseCast(text: string): { header: CastHeader; events: CastEvent[] } {
  const lines = text.split("\n");
  const first = lines.shift();
  if (first === undefined || first === "") throw new GatewayError("GW_STORE", "the recording is empty");
  const header: unknown = JSON.parse(first);
  if (typeof header !== "object" || header === null || !("width" in header) || !("height" in header)) {
    throw new GatewayError("GW_STORE", "not an asciicast v2 recording");
  }
  const h = header;
  const events: CastEvent[] = [];
  for (const line of lines) {
    if (line === "") continue;
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      continue; // a torn last line
    }
    if (Array.isArray(e) && e.length === 3 && typeof e[0] === "number" && typeof e[2] === "string" && ["o", "i", "r", "m"].includes(e[1] as string)) {
      events.push([e[0], e[1] as CastEvent[1], e[2]]);
    }
  }
  return { header: { width: Number(h.width), height: Number(h.height) }, events };
}
