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
 * Bounded work per value (`maxScanBytes`, default 1 MiB). Content detection scans at most the
 * first `maxScanBytes` bytes (string path: UTF-16 code units) of a value. A longer value FAILS
 * CLOSED: its unscanned tail is not forwarded. The output is the masked head, cut at a delimiter
 * at least `margin` (min(4 KiB, limit/4)) before the limit so that nothing straddling the limit
 * survives half-visible, followed by `[TRUNCATED]`, and the kind `truncated` is counted. A match
 * that spans the cut is masked whole. Column rules (`maskWhole*`) never scan: they replace a
 * value of any length whole (`partial` degrades to redaction beyond the limit; `hash` hashes all
 * of it).
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
  TRUNCATED_KIND,
  TRUNCATED_MARK,
  WHOLE_VALUE_KIND,
  type MaskStrategy,
} from "./strategies.js";

export const DEFAULT_MAX_SCAN_BYTES = 1 << 20;
export const MIN_MAX_SCAN_BYTES = 1024;
/** No detector matches fewer characters than this ("pwd=x" is the shortest). */
export const MIN_MATCH_LENGTH = 5;
const MAX_TRUNCATION_MARGIN = 4096;

export interface ValueMaskerOptions {
  /** Policy detector names; `secret` expands to the whole secret family. */
  readonly detectors: readonly DetectorName[];
  readonly strategy: MaskStrategy;
  /** HMAC key for `hash` (at least 16 bytes). Not retained: only derived pads, wiped by close(). */
  readonly key: Buffer;
  /** Bytes of a value scanned by content detectors (default 1 MiB, minimum 1 KiB). */
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

function isDelimiter(c: number): boolean {
  switch (c) {
    case 32: case 9: case 10: case 13: case 11: case 12: // whitespace
    case 44: case 59: case 34: case 39: case 96: case 60: case 62: // , ; " ' ` < >
    case 40: case 41: case 91: case 93: case 123: case 125: case 124: // ( ) [ ] { } |
      return true;
    default:
      return false;
  }
}

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
    if (n > this.maxScanBytes) {
      let limit = this.maxScanBytes;
      const last = text.charCodeAt(limit - 1);
      if (last >= 0xd800 && last <= 0xdbff) limit--; // never split a surrogate pair
      return this.truncate(text.slice(0, limit), "utf8", counts);
    }
    const candidates = this.candidates(scanText(text, n, this.features));
    if (candidates === 0) return undefined;
    const spans = this.find(text, candidates);
    if (spans === undefined) return undefined;
    return this.render(text, n, spans, "utf8", false, counts);
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
    let result: MaskTextResult | undefined;
    let encoding: Encoding;
    if (n > this.maxScanBytes) {
      let limit = start + this.maxScanBytes;
      // Back off to a UTF-8 character boundary (at most three continuation bytes).
      for (let k = 0; k < 3 && limit > start && ((buf[limit] ?? 0) & 0xc0) === 0x80; k++) limit--;
      const head = buf.subarray(start, limit);
      encoding = isUtf8(head) ? "utf8" : "latin1";
      result = this.truncate(head.toString(encoding), encoding, counts);
    } else {
      const f = scanBytes(buf, end, this.features, start);
      const candidates = this.candidates(f);
      if (candidates === 0) return undefined;
      // Valid UTF-8 is decoded as such (so results equal maskText's); anything else as latin1,
      // byte for byte, so that bytes outside the matches come back exactly.
      encoding = f.nonAscii && isUtf8(buf.subarray(start, end)) ? "utf8" : "latin1";
      const text = buf.toString(encoding, start, end);
      const spans = this.find(text, candidates);
      if (spans === undefined) return undefined;
      const only = spans.length === 1 ? spans[0] : undefined;
      if (only !== undefined && this.strategy === "redact" && only.start === 0 && only.end === text.length) {
        // The whole value is one match (a card-number or email column): its label, encoded once.
        counts?.add(only.kind);
        return this.labelBytes(only.kind);
      }
      result = this.render(text, text.length, spans, encoding, false, counts);
    }
    return result.value === null ? null : Buffer.from(result.value, encoding);
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

  /** `prefix` is the scanned head of an oversized value; the rest is never shown. */
  private truncate(prefix: string, encoding: Encoding, counts: CountSink | undefined): MaskTextResult {
    const limit = prefix.length;
    const candidates = this.candidates(scanText(prefix, limit, this.features));
    const spans = candidates === 0 ? [] : (this.find(prefix, candidates) ?? []);
    const margin = Math.min(MAX_TRUNCATION_MARGIN, limit >> 2);
    let cut = 0;
    for (let i = limit - margin - 1; i >= 0; i--) {
      if (isDelimiter(prefix.charCodeAt(i))) {
        cut = i + 1;
        break;
      }
    }
    const kept: Match[] = [];
    for (const s of spans) {
      if (s.start < cut && s.end > cut) cut = s.end; // spans are sorted and disjoint
      if (s.end <= cut) kept.push(s);
    }
    return this.render(prefix, cut, kept, encoding, true, counts);
  }

  private render(
    text: string,
    end: number,
    spans: readonly Match[],
    encoding: Encoding,
    truncated: boolean,
    acc: CountSink | undefined,
  ): MaskTextResult {
    const counts: Record<string, number> = {};
    for (const s of spans) {
      counts[s.kind] = (counts[s.kind] ?? 0) + 1;
      acc?.add(s.kind);
    }
    if (truncated) {
      counts[TRUNCATED_KIND] = 1;
      acc?.add(TRUNCATED_KIND);
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
    if (truncated) out += TRUNCATED_MARK;
    return { value: out, counts };
  }
}
