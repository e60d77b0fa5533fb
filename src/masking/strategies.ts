/**
 * Masking strategies: what a detected (or column-ruled) value is replaced with.
 *
 * Invariant: a masked value never contains the original (INTERFACE.md). Per strategy:
 *   redact   `[KIND]`: `[EMAIL]`, `[CREDIT_CARD]`, `[PHONE]`, `[SSN]`, `[IBAN]`, `[IPV4]`; every
 *            credential kind (aws_key, jwt, private_key, api_key, secret) shows `[SECRET]` so that
 *            `cat .env` reads `KEY=[SECRET]` whichever detector fired; a column rule without a kind
 *            shows `[REDACTED]`. Counts keep the precise kind.
 *   partial  keeps the LAST FOUR alphanumerics and replaces every other letter, digit and
 *            non-ASCII character with '*'; ASCII separators keep their places, so the shape stays
 *            readable: "4111 1111 1111 1111" → "**** **** **** 1111", "123-45-6789" →
 *            "***-**-6789", "john.doe@example.com" → "****.***@******e.com". No special case for
 *            emails: keeping the domain (or a first letter) would show more than the last four.
 *            Degrades to redact when the value has fewer than 8 such characters (four would be
 *            half or more of it) and for every credential kind: for a password the last four
 *            characters can be most of what matters, and a base64 key's punctuation positions
 *            leak bits.
 *   hash     `hash:` + the first 16 hex digits (64 bits) of HMAC-SHA256(key, kind + ":" + value):
 *            stable for one gateway key, so equal values still join and group; unlinkable
 *            without the key. The kind is part of the input, so the same digits seen as a phone
 *            and as a card hash differently.
 *   null     SQL NULL (the caller makes the whole value NULL, even for a match inside it).
 */
import { createHash, createHmac, hash } from "node:crypto";
import { z } from "zod";
import { isSecretKind } from "./detectors.js";

export const MASK_STRATEGIES = ["redact", "partial", "hash", "null"] as const;
export type MaskStrategy = (typeof MASK_STRATEGIES)[number];
export const maskStrategySchema = z.enum(MASK_STRATEGIES);

/** The kind of a value masked whole by a column rule that names no kind: `[REDACTED]`. */
export const WHOLE_VALUE_KIND = "column";
/** The kind counted when the unscanned tail of an oversized value is dropped. */
export const TRUNCATED_KIND = "truncated";
export const TRUNCATED_MARK = "[TRUNCATED]";

/** Minimum HMAC key length in bytes (the key is the only thing keeping hashes unlinkable). */
export const MIN_HASH_KEY_BYTES = 16;

const LABELS: Readonly<Record<string, string>> = {
  email: "[EMAIL]",
  credit_card: "[CREDIT_CARD]",
  phone: "[PHONE]",
  ssn: "[SSN]",
  iban: "[IBAN]",
  ipv4: "[IPV4]",
  truncated: TRUNCATED_MARK,
};

/** The `redact` replacement for a kind. */
export function redactLabel(kind: string): string {
  return LABELS[kind] ?? (isSecretKind(kind) ? "[SECRET]" : "[REDACTED]");
}

/**
 * `hash:` + 16 hex digits of HMAC-SHA256(key, kind ":" original). `original` is hashed as the
 * bytes the client would have seen: UTF-8 for a JS string, or as-is for bytes / latin1 text.
 */
export function hashValue(kind: string, original: string | Uint8Array, key: Buffer, encoding: "utf8" | "latin1" = "utf8"): string {
  const h = createHmac("sha256", key);
  h.update(kind, "latin1");
  h.update(":", "latin1");
  if (typeof original === "string") h.update(original, encoding);
  else h.update(original);
  return "hash:" + h.digest().toString("hex", 0, 8);
}

/** Messages up to this many bytes are hashed from a preallocated buffer (the hot path). */
const HASH_SCRATCH_BYTES = 4096;

/**
 * HMAC-SHA256 (RFC 2104) for one key, producing hashValue's output 3–4× faster than createHmac
 * on short values: the key's inner and outer padded blocks are prepared once, and each value
 * costs two one-shot `crypto.hash` calls over preallocated buffers (createHmac allocates a
 * keyed context per call). Equality with hashValue is tested. Holds key material: wipe() it.
 */
export class KeyedHasher {
  /** (K0 ⊕ ipad) then room for the message. */
  private readonly inner = Buffer.alloc(64 + HASH_SCRATCH_BYTES);
  /** (K0 ⊕ opad) then the 32-byte inner digest. */
  private readonly outer = Buffer.alloc(96);

  constructor(key: Uint8Array) {
    // K0: the key zero-padded to the block size, or its digest when longer (RFC 2104 §2).
    const k0 = Buffer.alloc(64);
    if (key.length > 64) createHash("sha256").update(key).digest().copy(k0);
    else k0.set(key);
    for (let i = 0; i < 64; i++) {
      const b = k0[i] ?? 0;
      this.inner[i] = b ^ 0x36;
      this.outer[i] = b ^ 0x5c;
    }
    k0.fill(0);
  }

  /** `hash:` + 16 hex digits of HMAC-SHA256(key, kind ":" original), as hashValue. */
  hash(kind: string, original: string | Uint8Array, encoding: "utf8" | "latin1" = "utf8"): string {
    const bound =
      kind.length + 1 + (typeof original !== "string" ? original.length : encoding === "latin1" ? original.length : original.length * 3);
    let innerDigest: string;
    if (bound <= HASH_SCRATCH_BYTES) {
      const buf = this.inner;
      let n = 64;
      n += buf.write(kind, n, "latin1");
      buf[n++] = 58; // ':'
      if (typeof original === "string") n += buf.write(original, n, encoding);
      else {
        buf.set(original, n);
        n += original.length;
      }
      innerDigest = hash("sha256", buf.subarray(0, n), "binary"); // "binary" = latin1: one char per byte
      buf.fill(0, 64, n); // do not keep the value around
    } else {
      const h = createHash("sha256").update(this.inner.subarray(0, 64)).update(kind, "latin1").update(":", "latin1");
      if (typeof original === "string") h.update(original, encoding);
      else h.update(original);
      innerDigest = h.digest("binary");
    }
    this.outer.write(innerDigest, 64, "latin1");
    return "hash:" + hash("sha256", this.outer, "hex").slice(0, 16);
  }

  wipe(): void {
    this.inner.fill(0);
    this.outer.fill(0);
  }
}

/** Letters and digits (ASCII) and every non-ASCII code unit count as content; the rest are separators. */
function isContent(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c >= 128;
}

export const PARTIAL_KEEP = 4;
export const PARTIAL_MIN_CONTENT = 8;

/** The `partial` replacement (see the module comment); falls back to `redactLabel(kind)`. */
export function partialMask(original: string, kind: string): string {
  if (isSecretKind(kind) || kind === TRUNCATED_KIND) return redactLabel(kind);
  const n = original.length;
  let content = 0;
  for (let i = 0; i < n; i++) if (isContent(original.charCodeAt(i))) content++;
  if (content < PARTIAL_MIN_CONTENT) return redactLabel(kind);
  const keepFrom = content - PARTIAL_KEEP; // content index from which characters may be kept
  const out: string[] = new Array<string>(n);
  let seen = 0;
  for (let i = 0; i < n; i++) {
    const c = original.charCodeAt(i);
    if (isContent(c)) {
      // Only ASCII is ever kept: a kept non-ASCII unit could be half of a character.
      out[i] = seen >= keepFrom && c < 128 ? String.fromCharCode(c) : "*";
      seen++;
    } else {
      out[i] = String.fromCharCode(c);
    }
  }
  return out.join("");
}

/**
 * Mask one matched value. `original` is the matched text; `kind` a detector kind, "column" or
 * another column-rule kind. Returns null for the `null` strategy (SQL NULL).
 */
export function maskMatch(original: string, kind: string, strategy: MaskStrategy, key: Buffer): string | null {
  return maskWithEncoding(original, kind, strategy, key, "utf8");
}

/**
 * maskMatch with a prepared hasher, for text that may be latin1-decoded bytes (the byte path's
 * fallback): `encoding` says how `original` maps back to the bytes the client would have seen.
 */
export function maskWithEncoding(
  original: string,
  kind: string,
  strategy: MaskStrategy,
  key: Buffer | KeyedHasher,
  encoding: "utf8" | "latin1",
): string | null {
  switch (strategy) {
    case "null":
      return null;
    case "redact":
      return redactLabel(kind);
    case "hash":
      return key instanceof KeyedHasher ? key.hash(kind, original, encoding) : hashValue(kind, original, key, encoding);
    case "partial":
      return partialMask(original, kind);
  }
}
