/**
 * Response (and request) body transforms for the HTTP engine (issue 15), each a bounded
 * streaming Transform: nothing is buffered whole.
 * - `decoderFor`: gzip / deflate / br (RFC 9110 §8.4.1) decoded so the body can be inspected;
 * - `SecretScrubber`: the target's credential, wherever it appears in the bytes, becomes
 *   `[REDACTED]` (a target that echoes its request headers back must not hand it to the agent);
 * - `LineMasker`: text and Server-Sent Events masked line by line by content detectors, each
 *   line sent as soon as it is complete (an SSE event is never held back);
 * - `JsonMaskTransform`: JSON masked as it streams (json-stream.ts);
 * - `Tap`: counts bytes and keeps the first few for the recording.
 */
import { StringDecoder } from "node:string_decoder";
import { Transform, type TransformCallback } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate, type BrotliDecompress, type Gunzip, type Inflate } from "node:zlib";
import type { MaskChain } from "../../masking/index.js";
import { JsonStreamMasker, type JsonStreamOptions } from "./json-stream.js";

export type ContentEncoding = "gzip" | "deflate" | "br";

/** The one encoding a body carries (identity: undefined), or "unknown". */
export function contentEncodingOf(header: string | undefined): ContentEncoding | undefined | "unknown" {
  if (header === undefined) return undefined;
  const list = header.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "" && s !== "identity");
  if (list.length === 0) return undefined;
  if (list.length > 1) return "unknown";
  const e = list[0];
  if (e === "gzip" || e === "x-gzip") return "gzip";
  if (e === "deflate" || e === "br") return e;
  return "unknown";
}

export function decoderFor(e: ContentEncoding, maxOutputBytes: number): Gunzip | Inflate | BrotliDecompress {
  // maxOutputLength bounds one call's output (a decompression bomb in one chunk).
  const opts = { maxOutputLength: Math.max(maxOutputBytes, 1 << 20) };
  switch (e) {
    case "gzip":
      return createGunzip(opts);
    case "deflate":
      return createInflate(opts);
    case "br":
      return createBrotliDecompress(opts);
  }
}

export const SCRUBBED = "[REDACTED]";

/** Replaces every occurrence of the given secrets in a byte stream. */
export class SecretScrubber extends Transform {
  readonly #secrets: readonly string[];
  readonly #keep: number;
  #carry = "";
  found = 0;

  constructor(secrets: readonly string[]) {
    super();
    // Work on latin1 strings: one char per byte, so bytes that are not text pass unchanged.
    this.#secrets = secrets.map((s) => Buffer.from(s, "utf8").toString("latin1")).filter((s) => s.length > 0);
    this.#keep = Math.max(0, ...this.#secrets.map((s) => s.length - 1));
  }

  static scrubText(text: string, secrets: readonly string[]): string {
    let out = text;
    for (const s of secrets) if (s.length > 0 && out.includes(s)) out = out.split(s).join(SCRUBBED);
    return out;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let s = this.#carry + chunk.toString("latin1");
    for (const secret of this.#secrets) {
      if (s.includes(secret)) {
        const parts = s.split(secret);
        this.found += parts.length - 1;
        s = parts.join(SCRUBBED);
      }
    }
    // Hold back only what could begin a secret the next chunk completes: a streamed line (a watch
    // event, a `logs -f` line) must not wait for the next one to be let through.
    const cut = this.#holdFrom(s);
    this.#carry = s.slice(cut);
    if (cut > 0) this.push(Buffer.from(s.slice(0, cut), "latin1"));
    cb();
  }

  /** Where the longest tail of `s` that is the beginning of a secret starts (`s.length`: none). */
  #holdFrom(s: string): number {
    for (let start = Math.max(0, s.length - this.#keep); start < s.length; start++) {
      const tail = s.slice(start);
      if (this.#secrets.some((secret) => secret.startsWith(tail))) return start;
    }
    return s.length;
  }

  override _flush(cb: TransformCallback): void {
    if (this.#carry.length > 0) this.push(Buffer.from(this.#carry, "latin1"));
    cb();
  }
}

/** Text masked line by line (a line longer than maxLineChars is masked in pieces). */
export class LineMasker extends Transform {
  readonly #chain: MaskChain;
  readonly #counts: Record<string, number>;
  readonly #max: number;
  readonly #decoder = new StringDecoder("utf8");
  readonly #rewrite: ((line: string) => string) | undefined;
  #pending = "";

  constructor(chain: MaskChain, counts: Record<string, number>, maxLineChars = 64 * 1024, rewrite?: (line: string) => string) {
    super();
    this.#chain = chain;
    this.#counts = counts;
    this.#max = maxLineChars;
    this.#rewrite = rewrite;
  }

  #mask(line: string): string {
    if (this.#rewrite !== undefined) return this.#rewrite(line);
    return this.#chain.empty ? line : (this.#chain.line(line, this.#counts) ?? line);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let s = this.#pending + this.#decoder.write(chunk);
    let out = "";
    for (;;) {
      const nl = s.indexOf("\n");
      if (nl < 0) break;
      const line = s.slice(0, nl);
      const cr = line.endsWith("\r");
      out += `${this.#mask(cr ? line.slice(0, -1) : line)}${cr ? "\r\n" : "\n"}`;
      s = s.slice(nl + 1);
    }
    while (s.length > this.#max) {
      out += this.#mask(s.slice(0, this.#max));
      s = s.slice(this.#max);
    }
    this.#pending = s;
    if (out.length > 0) this.push(out, "utf8");
    cb();
  }

  override _flush(cb: TransformCallback): void {
    const s = this.#pending + this.#decoder.end();
    if (s.length > 0) this.push(this.#mask(s), "utf8");
    cb();
  }
}

/** JSON masked as it streams; an error (not JSON, too deep, too long a token) fails the stream. */
export class JsonMaskTransform extends Transform {
  readonly #masker: JsonStreamMasker;
  readonly #decoder = new StringDecoder("utf8");

  constructor(options: JsonStreamOptions) {
    super();
    this.#masker = new JsonStreamMasker(options);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      const out = this.#masker.push(this.#decoder.write(chunk));
      if (out.length > 0) this.push(out, "utf8");
      cb();
    } catch (e) {
      cb(e instanceof Error ? e : new Error(String(e)));
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      const out = this.#masker.push(this.#decoder.end()) + this.#masker.end();
      if (out.length > 0) this.push(out, "utf8");
      cb();
    } catch (e) {
      cb(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

/** Buffers the whole body (up to max) and rewrites it once (a kind's `json` transform). */
export class WholeBodyTransform extends Transform {
  readonly #max: number;
  readonly #rewrite: (body: string) => string;
  readonly #chunks: Buffer[] = [];
  #size = 0;

  constructor(max: number, rewrite: (body: string) => string) {
    super();
    this.#max = max;
    this.#rewrite = rewrite;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length;
    if (this.#size > this.#max) {
      cb(new Error("the response body is larger than the masking limit"));
      return;
    }
    this.#chunks.push(chunk);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.push(this.#rewrite(Buffer.concat(this.#chunks).toString("utf8")), "utf8");
      cb();
    } catch (e) {
      cb(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

/** Counts bytes and keeps the first `keep` for the recording. */
export class Tap extends Transform {
  bytes = 0;
  readonly #keep: number;
  readonly #head: Buffer[] = [];
  #kept = 0;

  constructor(keep: number) {
    super();
    this.#keep = keep;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.#kept < this.#keep) {
      const part = chunk.subarray(0, this.#keep - this.#kept);
      this.#head.push(Buffer.from(part));
      this.#kept += part.length;
    }
    cb(null, chunk);
  }

  /** The kept bytes as text (a cut UTF-8 sequence at the end shows as U+FFFD). */
  head(): string {
    return Buffer.concat(this.#head).toString("utf8");
  }

  get truncated(): boolean {
    return this.bytes > this.#keep;
  }
}
