/**
 * What every detector shares: the kinds, the policy's detector names, a match, a detector.
 *
 * Every detector is linear in the length of its input. None uses a regular expression whose
 * search can backtrack over an unbounded run more than once: scanners anchor on a literal
 * (`@`, `://`, `-----BEGIN `, `ey`, a key prefix) or a token boundary, and each input character is
 * visited a bounded number of times (arguments next to each scanner). The adversarial-input tests
 * in detectors.test.ts run 100 KB pathological inputs through every detector.
 *
 * Detectors report `Match`es (half-open UTF-16 ranges). The masker merges the matches of all
 * enabled detectors; `find` returns one detector's matches, sorted and non-overlapping.
 *
 * Structure is matched in ASCII (digits, key prefixes, separators); only email addresses admit
 * non-ASCII characters (RFC 6531 local parts, IDN domains), as "any code unit ≥ 0x80 except
 * spaces". So a value decoded from UTF-8 and the same bytes decoded as latin1 (the byte path's
 * fallback for other encodings) yield the same matches over the same bytes.
 */
import { z } from "zod";
import type { Features } from "../prefilter.js";

/** What a detector reports. */
export const DETECTOR_KINDS = [
  "email",
  "credit_card",
  "phone",
  "ssn",
  "iban",
  "ipv4",
  "aws_key",
  "jwt",
  "private_key",
  "api_key",
  "secret",
] as const;

export type DetectorKind = (typeof DETECTOR_KINDS)[number];

/**
 * The names accepted in a policy's `detectors:` list. They are the kinds, except that `secret`
 * in a policy means the whole secret family (see SECRET_FAMILY), while a match of kind `secret`
 * is a generic secret (an assignment, URL credentials or a high-entropy token).
 */
export const detectorNameSchema = z.enum(DETECTOR_KINDS);
export type DetectorName = z.infer<typeof detectorNameSchema>;

/** Kinds that are credentials. `redact` shows them all as `[SECRET]`. */
export const SECRET_FAMILY: readonly DetectorKind[] = ["aws_key", "jwt", "private_key", "api_key", "secret"];

const SECRET_KINDS: ReadonlySet<string> = new Set(SECRET_FAMILY);

export function isSecretKind(kind: string): boolean {
  return SECRET_KINDS.has(kind);
}

/** Policy detector names → the detector kinds to run (deduplicated, in DETECTOR_KINDS order). */
export function expandDetectorNames(names: readonly DetectorName[]): DetectorKind[] {
  const wanted = new Set<DetectorKind>();
  for (const name of names) {
    if (name === "secret") for (const k of SECRET_FAMILY) wanted.add(k);
    else wanted.add(name);
  }
  return DETECTOR_KINDS.filter((k) => wanted.has(k));
}

export interface Match {
  /** UTF-16 offset of the first character. */
  readonly start: number;
  /** UTF-16 offset after the last character. */
  readonly end: number;
  readonly kind: DetectorKind;
}

export interface Detector {
  readonly kind: DetectorKind;
  /**
   * A cheap necessary condition: false means `find` returns nothing for any text with these
   * features. Never false when a match exists.
   */
  couldMatchFeatures(f: Features): boolean;
  /** `couldMatchFeatures` of the text's summary. */
  couldMatch(text: string): boolean;
  /** Matches in `text`, sorted by start, non-overlapping. */
  find(text: string): Match[];
  /**
   * Append matches to `out` (may overlap each other; the masker merges). No prefilter; `f`, the
   * text's summary when the caller has it, lets a detector skip sub-scanners that cannot match.
   */
  collect(text: string, out: Match[], f?: Features): void;
}
