/**
 * ValueMasker: one policy's detectors and strategy, applied to one value at a time on the hot
 * path (DataRow fields, COPY fields, later SSH output lines).
 *
 * Hot path: `maskBytes` runs one prefilter loop over the raw bytes (no decoding, no allocation)
 * and returns `undefined` ("forward the original bytes") unless some enabled detector could
 * match. Only then is the value decoded — as UTF-8 when it is valid UTF-8 (then the result
 * equals maskText's), otherwise as latin1, byte for byte, so that other ASCII-compatible client
 * encodings still work and untouched bytes come back exactly — scanned, and re-encoded.
 *
 * Values of any length, in bounded windows. A value longer than `maxScanBytes` (default 1 MiB;
 * string path: UTF-16 code units) is streamed through the detectors in windows of that size that
 * overlap by `overlap` (min(64 KiB, window/4)): in each window, the matches that start before
 * its last `overlap` characters are taken (whole, even when they run into the overlap) and the
 * next window starts after them, so a match up to `overlap` long that straddles a window
 * boundary is found and masked whole, exactly as in an unwindowed scan (each window after the
 * first also sees 128 units before its start, so that `password=` is seen before the secret it
 * precedes; a match that runs to a window's end makes the window grow). Nothing is cut: the
 * whole value comes back, masked (a json/jsonb document stays valid JSON). Memory beyond the
 * value itself and its masked copy is one window. Column rules (`maskWhole*`) never scan: they
 * replace a value of any length whole (`partial` degrades to redaction beyond the limit; `hash`
 * hashes all of it).
 *
 * Counts: every call can add to a MaskCounts accumulator (per kind, never values) for the audit.
 */
import { isUtf8 } from "node:buffer";
import { GatewayError } from "../core/errors.js";
import {
  candidateKinds,
  detectorNameSchema,
  expandDetectorNames,
  couldCompactPhone,
  phoneDetectorFor,
  resolveOverlaps,
  DETECTORS,
  KIND_BITS,
  type Detector,
  type DetectorKind,
  type DetectorName,
  type Match,
} from "./detectors.js";
import type { CountSink } from "./counts.js";
import { newFeatures, scanBytes, scanText, type Features } from "./prefilter.js";
import {
  KeyedHasher,
  maskStrategySchema,
  maskWithEncoding,
  partialMask,
  redactLabel,
  MIN_HASH_KEY_BYTES,
  WHOLE_VALUE_KIND,
  type MaskStrategy,
} from "./strategies.js";

export const DEFAULT_MAX_SCAN_BYTES = 1 << 20;
export const MIN_MAX_SCAN_BYTES = 1024;
/** No detector matches fewer characters than this ("pwd=x" is the shortest). */
export const MIN_MATCH_LENGTH = 5;
/** The most two windows of a long value overlap by (see the header). */
export const MAX_WINDOW_OVERLAP = 64 * 1024;
/** What a window after the first sees before its start (context for detectors such as `key=`). */
const LEFT_CONTEXT = 128;

export interface ValueMaskerOptions {
  /** Policy detector names; `secret` expands to the whole secret family. */
  readonly detectors: readonly DetectorName[];
  readonly strategy: MaskStrategy;
  /** HMAC key for `hash` (at least 16 bytes). Not retained: only derived pads, wiped by close(). */
  readonly key: Buffer;
  /**
   * Window size (bytes; UTF-16 code units on the string path) in which content detectors scan a
   * value; longer values are scanned window by window (default 1 MiB, minimum 1 KiB).
   */
  readonly maxScanBytes?: number;
  /**
   * The countries (ISO 3166 codes) whose national phone formats `phone` finds; default
   * DEFAULT_PHONE_REGIONS. Naming them also admits unseparated national numbers of countries
   * written without a trunk prefix (see detectors/phone.ts).
   */
  readonly phoneRegions?: readonly string[];
}

export interface MaskTextResult {
  /** The masked text, or null: SQL NULL (strategy `null`). */
  readonly value: string | null;
  /** Masked values per kind in this value. */
  readonly counts: Readonly<Record<string, number>>;
}

type Encoding = "utf8" | "latin1";

export class ValueMasker {
  readonly strategy: MaskStrategy;
  /** The detector kinds that run (policy names expanded). */
  readonly kinds: readonly DetectorKind[];
  readonly maxScanBytes: number;
  private readonly hasher: KeyedHasher;
  private readonly detectors: readonly Detector[];
  /** KIND_BITS of `detectors`, index for index, and their union. */
  private readonly bits: readonly number[];
  private readonly enabled: number;
  /** A policy named its phone regions: unseparated numbers are phone candidates too. */
  private readonly compactPhones: boolean;
  private readonly features: Features = newFeatures();
  private readonly labels = new Map<string, Buffer>();
  private closed = false;

  constructor(options: ValueMaskerOptions) {
    const names = detectorNameSchema.array().safeParse(options.detectors);
    if (!names.success) {
      throw new GatewayError("GW_CONFIG", `unknown masking detector; expected one of: ${detectorNameSchema.options.join(", ")}`);
    }
    const strategy = maskStrategySchema.safeParse(options.strategy);
    if (!strategy.success) {
      throw new GatewayError("GW_CONFIG", `unknown masking strategy; expected one of: ${maskStrategySchema.options.join(", ")}`);
    }
    if (options.key.length < MIN_HASH_KEY_BYTES) {
      throw new GatewayError("GW_CONFIG", `the masking key must be at least ${MIN_HASH_KEY_BYTES} bytes`);
    }
    const maxScan = options.maxScanBytes ?? DEFAULT_MAX_SCAN_BYTES;
    if (!Number.isSafeInteger(maxScan) || maxScan < MIN_MAX_SCAN_BYTES) {
      throw new GatewayError("GW_CONFIG", `maxScanBytes must be an integer of at least ${MIN_MAX_SCAN_BYTES}`);
    }
    this.strategy = strategy.data;
    this.kinds = expandDetectorNames(names.data);
    const regions = options.phoneRegions;
    this.detectors = this.kinds.map((k) => (k === "phone" && regions !== undefined ? phoneDetectorFor(regions) : DETECTORS[k]));
    this.compactPhones = regions !== undefined && this.kinds.includes("phone");
    this.bits = this.kinds.map((k) => KIND_BITS[k]);
    this.enabled = this.bits.reduce((a, b) => a | b, 0);
    this.maxScanBytes = maxScan;
    this.hasher = new KeyedHasher(options.key); // derived pads only; close() wipes them
  }

  /**
   * Content detection over a string. `undefined` = nothing to mask (nothing allocated);
   * otherwise the masked text (null for strategy `null`) and the counts per kind.
   */
  maskText(text: string, counts?: CountSink): MaskTextResult | undefined {
    this.assertOpen();
    const n = text.length;
    if (n < MIN_MATCH_LENGTH) return undefined;
    if (n > this.maxScanBytes) return this.windowedText(text, counts);
    const candidates = this.candidates(scanText(text, n, this.features));
    if (candidates === 0) return undefined;
    const spans = this.find(text, candidates);
    if (spans === undefined) return undefined;
    return this.render(text, n, spans, "utf8", counts);
  }

  /**
   * Content detection over the bytes of one value (UTF-8 or any ASCII-compatible encoding).
   * `undefined` = forward the original bytes; `null` = send SQL NULL; else the replacement.
   */
  maskBytes(buf: Uint8Array, counts?: CountSink): Buffer | null | undefined {
    const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    return this.maskRange(b, 0, b.length, counts);
  }

  /**
   * maskBytes over `buf[start, end)` — a value inside a larger message (a DataRow field), so
   * that a clean value is judged without even a view of it being allocated.
   */
  maskRange(buf: Buffer, start: number, end: number, counts?: CountSink): Buffer | null | undefined {
    this.assertOpen();
    const n = end - start;
    if (n < MIN_MATCH_LENGTH) return undefined;
    if (n > this.maxScanBytes) return this.windowedRange(buf, start, end, counts);
    const f = scanBytes(buf, end, this.features, start);
    const candidates = this.candidates(f);
    if (candidates === 0) return undefined;
    // Valid UTF-8 is decoded as such (so results equal maskText's); anything else as latin1,
    // byte for byte, so that bytes outside the matches come back exactly.
    const encoding: Encoding = f.nonAscii && isUtf8(buf.subarray(start, end)) ? "utf8" : "latin1";
    const text = buf.toString(encoding, start, end);
    const spans = this.find(text, candidates);
    if (spans === undefined) return undefined;
    const only = spans.length === 1 ? spans[0] : undefined;
    if (only !== undefined && this.strategy === "redact" && only.start === 0 && only.end === text.length) {
      // The whole value is one match (a card-number or email column): its label, encoded once.
      counts?.add(only.kind);
      return this.labelBytes(only.kind);
    }
    const result = this.render(text, text.length, spans, encoding, counts);
    return result.value === null ? null : Buffer.from(result.value, encoding);
  }

  /** The overlap of two windows (see the header). */
  get overlap(): number {
    return Math.min(MAX_WINDOW_OVERLAP, this.maxScanBytes >> 2);
  }

  /**
   * One window of a long value: the matches taken from it and where the next window starts
   * (code units into `text`). The last window takes every match; any other takes the matches
   * that start before its last `overlap` units, and the next one starts after them. A match
   * that runs to the window's end may go on beyond it (`password=…` to the end of the line): the
   * caller then retries from the same place with a window twice as large (`grow`), so that such
   * a match is found as long as it is (at worst the window grows to the rest of the value).
   */
  private windowSpans(text: string, last: boolean, skip: number): { spans: readonly Match[]; cut: number; grow?: true } {
    const n = text.length;
    const candidates = this.candidates(scanText(text, n, this.features));
    let found = candidates === 0 ? undefined : this.find(text, candidates);
    if (found !== undefined && skip > 0) {
      // The first `skip` units are context already written out: matches there were taken by
      // the previous window; one that reaches past it is masked from there on.
      found = found.filter((m) => m.end > skip).map((m) => (m.start < skip ? { ...m, start: skip } : m));
      if (found.length === 0) found = undefined;
    }
    if (last) return { spans: found ?? [], cut: n };
    let cut = n - this.overlap;
    const c = text.charCodeAt(cut - 1);
    if (c >= 0xd800 && c <= 0xdbff) cut--; // never split a surrogate pair
    if (found === undefined) return { spans: [], cut };
    const spans: Match[] = [];
    for (const s of found) {
      if (s.start >= cut) break; // spans are sorted and disjoint
      spans.push(s);
    }
    const lastSpan = spans[spans.length - 1];
    if (lastSpan !== undefined && lastSpan.end >= n) return { spans: [], cut: 0, grow: true };
    if (lastSpan !== undefined && lastSpan.end > cut) cut = lastSpan.end;
    return { spans, cut };
  }

  /** maskText over a string longer than one window: window by window, nothing cut. */
  private windowedText(text: string, counts: CountSink | undefined, encoding: Encoding = "utf8"): MaskTextResult | undefined {
    const n = text.length;
    let window = this.maxScanBytes;
    const all: Record<string, number> = {};
    const out: string[] = [];
    let changed = false;
    let nulled = false; // strategy null: the value is NULL; the rest is still scanned, for the counts
    let pos = 0;
    while (pos < n) {
      // Each window after the first starts LEFT_CONTEXT units early, so that a detector that needs
      // what precedes a value (`password=` before the secret) still sees it.
      let from = Math.max(0, pos - LEFT_CONTEXT);
      const f = text.charCodeAt(from);
      if (from > 0 && f >= 0xdc00 && f <= 0xdfff) from--;
      const skip = pos - from;
      let wEnd = Math.min(n, from + window);
      const c = text.charCodeAt(wEnd - 1);
      if (wEnd < n && c >= 0xd800 && c <= 0xdbff) wEnd--;
      const ctx = text.slice(from, wEnd);
      const { spans, cut, grow } = this.windowSpans(ctx, wEnd === n, skip);
      if (grow === true) {
        window *= 2;
        continue;
      }
      window = this.maxScanBytes;
      const win = ctx.slice(skip);
      const end = cut - skip;
      if (spans.length === 0) {
        out.push(end === win.length ? win : win.slice(0, end));
      } else {
        changed = true;
        const shifted = skip === 0 ? spans : spans.map((m) => ({ ...m, start: m.start - skip, end: m.end - skip }));
        const r = this.render(win, end, shifted, encoding, counts);
        for (const k in r.counts) all[k] = (all[k] ?? 0) + (r.counts[k] ?? 0);
        if (r.value === null) nulled = true;
        else if (!nulled) out.push(r.value);
      }
      pos += end;
    }
    if (!changed) return undefined;
    return { value: nulled ? null : out.join(""), counts: all };
  }

  /**
   * maskRange over a value longer than one window: decoded once (UTF-8 when valid, else latin1,
   * byte for byte), scanned window by window as a string (windowedText), encoded again. The
   * masked copy is the value's size; the detectors work on one window at a time.
   */
  private windowedRange(buf: Buffer, start: number, end: number, counts: CountSink | undefined): Buffer | null | undefined {
    const value = buf.subarray(start, end);
    const encoding: Encoding = isUtf8(value) ? "utf8" : "latin1";
    const r = this.windowedText(value.toString(encoding), counts, encoding);
    if (r === undefined) return undefined;
    return r.value === null ? null : Buffer.from(r.value, encoding);
  }

  /** `[KIND]` as bytes, built once per kind. Callers copy it and never write into it. */
  private labelBytes(kind: string): Buffer {
    let b = this.labels.get(kind);
    if (b === undefined) {
      b = Buffer.from(redactLabel(kind), "latin1");
      this.labels.set(kind, b);
    }
    return b;
  }

  /** A column rule: the whole value, whatever it contains. `kind` defaults to "column" (`[REDACTED]`). */
  maskWhole(text: string, kind: string = WHOLE_VALUE_KIND, counts?: CountSink): string | null {
    this.assertOpen();
    counts?.add(kind);
    if (this.strategy === "partial" && text.length > this.maxScanBytes) return redactLabel(kind);
    return maskWithEncoding(text, kind, this.strategy, this.hasher, "utf8");
  }

  /** maskWhole over raw bytes: `hash` hashes the bytes as they are (equal to maskWhole for UTF-8). */
  maskWholeBytes(buf: Uint8Array, kind: string = WHOLE_VALUE_KIND, counts?: CountSink): Buffer | null {
    this.assertOpen();
    counts?.add(kind);
    switch (this.strategy) {
      case "null":
        return null;
      case "redact":
        return Buffer.from(redactLabel(kind), "latin1");
      case "hash":
        return Buffer.from(this.hasher.hash(kind, buf), "latin1");
      case "partial": {
        if (buf.length > this.maxScanBytes) return Buffer.from(redactLabel(kind), "latin1");
        const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
        const encoding: Encoding = isUtf8(b) ? "utf8" : "latin1"; // as maskBytes: equal to maskWhole for UTF-8
        return Buffer.from(partialMask(b.toString(encoding), kind), encoding);
      }
    }
  }

  /** Wipe the key material. Further calls throw. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.hasher.wipe();
    }
    return Promise.resolve();
  }

  private assertOpen(): void {
    if (this.closed) throw new GatewayError("GW_INTERNAL", "masking is no longer available (masker closed)");
  }

  /** The enabled kinds whose prefilter passes (KIND_BITS). */
  private candidates(f: Features): number {
    let c = candidateKinds(f);
    if (this.compactPhones && couldCompactPhone(f)) c |= KIND_BITS.phone;
    return c & this.enabled;
  }

  /** Merged matches of the candidate detectors (a KIND_BITS mask) over `text`, or undefined. */
  private find(text: string, candidates: number): Match[] | undefined {
    const out: Match[] = [];
    const { detectors, bits, features } = this;
    for (let i = 0; i < detectors.length; i++) {
      if (((bits[i] ?? 0) & candidates) !== 0) detectors[i]?.collect(text, out, features);
    }
    return out.length === 0 ? undefined : resolveOverlaps(out);
  }

  private render(
    text: string,
    end: number,
    spans: readonly Match[],
    encoding: Encoding,
    acc: CountSink | undefined,
  ): MaskTextResult {
    const counts: Record<string, number> = {};
    for (const s of spans) {
      counts[s.kind] = (counts[s.kind] ?? 0) + 1;
      acc?.add(s.kind);
    }
    if (this.strategy === "null") return { value: null, counts };
    let out = "";
    let pos = 0;
    for (const s of spans) {
      out += text.slice(pos, s.start);
      out += maskWithEncoding(text.slice(s.start, s.end), s.kind, this.strategy, this.hasher, encoding) ?? "";
      pos = s.end;
    }
    out += text.slice(pos, end);
    return { value: out, counts };
  }
}
