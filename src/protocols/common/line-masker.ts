/**
 * Output masking for terminals and exec streams (SSH, Kubernetes exec/attach), line by line: bytes are held until a
 * newline (or `maxLineBytes`, or `flushMs` without one, so prompts still appear), then masked
 * with the session's detectors and written. Lines nothing was found in are written as the
 * original bytes (never re-encoded).
 *
 * Best effort by design: a secret split across a timed flush of a partial line (a program that
 * pauses mid-line) is masked per piece, so part of it could pass; binary output is masked as
 * text would be (scp and sftp data are not masked at all).
 *
 * The masking itself is the masking library's (one chain of the session's rule maskers, the
 * `null` strategy shown as `[REDACTED]`): `lineMaskFn` builds the function from the maskers.
 */
import { addCounts, chainLine, type TextMasker } from "../../masking/index.js";

export type LineMaskFn = (text: string) => { readonly text: string; readonly counts: Readonly<Record<string, number>> } | undefined;

/** The LineMaskFn of a session's rule maskers (in policy order), or undefined when there are none. */
export function lineMaskFn(maskers: readonly TextMasker[]): LineMaskFn | undefined {
  if (maskers.length === 0) return undefined;
  return (text) => {
    const counts: Record<string, number> = {};
    const masked = chainLine(maskers, text, counts);
    return masked === undefined ? undefined : { text: masked, counts };
  };
}

export interface LineMaskerOptions {
  readonly mask: LineMaskFn;
  readonly write: (chunk: Buffer) => void;
  readonly maxLineBytes?: number;
  readonly flushMs?: number;
}

export class LineMasker {
  readonly #o: Required<LineMaskerOptions>;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Values masked so far, per kind. */
  readonly counts: Record<string, number> = {};

  constructor(options: LineMaskerOptions) {
    this.#o = { maxLineBytes: 64 * 1024, flushMs: 40, ...options };
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.#pending.push(chunk.subarray(start, nl + 1));
      this.#pendingBytes += nl + 1 - start;
      this.#emit();
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.#pending.push(chunk.subarray(start));
      this.#pendingBytes += chunk.length - start;
      if (this.#pendingBytes >= this.#o.maxLineBytes) this.#emit();
      else this.#arm();
    }
  }

  /** Write whatever is held (end of stream). */
  flush(): void {
    if (this.#pendingBytes > 0) this.#emit();
  }

  close(): void {
    this.flush();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, this.#o.flushMs);
    this.#timer.unref();
  }

  #emit(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const bytes = this.#pending.length === 1 && this.#pending[0] !== undefined ? this.#pending[0] : Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    const r = this.#o.mask(bytes.toString("utf8"));
    if (r === undefined) {
      this.#o.write(bytes);
      return;
    }
    addCounts(this.counts, r.counts);
    this.#o.write(Buffer.from(r.text, "utf8"));
  }
}
