/** Merging the matches of several detectors, and the detector constructor. */
import { newFeatures, scanText, type Features } from "../prefilter.js";
import type { Detector, DetectorKind, Match } from "./base.js";

/**
 * Tie-break between matches of equal length: the more specific detector names the span (an
 * "012-34-5678" that is both a trunk-0 phone shape and an SSN is an SSN).
 */
const SPECIFICITY: Readonly<Record<DetectorKind, number>> = {
  private_key: 0,
  jwt: 1,
  aws_key: 2,
  api_key: 3,
  credit_card: 4,
  iban: 5,
  ssn: 6,
  email: 7,
  ipv4: 8,
  phone: 9,
  secret: 10,
};

/** By start, then longest first, then the most specific detector. */
function compareMatches(a: Match, b: Match): number {
  return a.start - b.start || b.end - a.end || SPECIFICITY[a.kind] - SPECIFICITY[b.kind];
}

/**
 * Sort by start and merge overlapping matches into one span each (their union), labelled by the
 * longest member; on equal lengths the earliest, then the most specific.
 */
export function resolveOverlaps(matches: readonly Match[]): Match[] {
  if (matches.length <= 1) return matches.slice();
  const sorted = matches.slice();
  if (sorted.length <= 8) {
    // A value rarely holds more than a few matches: an insertion sort (same order, stable) costs
    // far less than Array.prototype.sort with a comparator here, on the masking hot path.
    for (let i = 1; i < sorted.length; i++) {
      const m = sorted[i];
      if (m === undefined) continue;
      let j = i - 1;
      for (; j >= 0; j--) {
        const p = sorted[j];
        if (p === undefined || compareMatches(p, m) <= 0) break;
        sorted[j + 1] = p;
      }
      sorted[j + 1] = m;
    }
  } else sorted.sort(compareMatches);
  const out: Match[] = [];
  let cur = sorted[0];
  if (cur === undefined) return out;
  let curStart = cur.start;
  let curEnd = cur.end;
  let curKind = cur.kind;
  let bestLen = cur.end - cur.start;
  for (let i = 1; i < sorted.length; i++) {
    cur = sorted[i];
    if (cur === undefined) continue;
    if (cur.start < curEnd) {
      // Overlap: the union is masked as one value, so no part of either stays visible; it is
      // labelled by its longest member (the earliest on ties, since earlier members came first).
      if (cur.end - cur.start > bestLen) {
        bestLen = cur.end - cur.start;
        curKind = cur.kind;
      }
      if (cur.end > curEnd) curEnd = cur.end;
    } else {
      out.push({ start: curStart, end: curEnd, kind: curKind });
      curStart = cur.start;
      curEnd = cur.end;
      curKind = cur.kind;
      bestLen = cur.end - cur.start;
    }
  }
  out.push({ start: curStart, end: curEnd, kind: curKind });
  return out;
}

export function makeDetector(
  kind: DetectorKind,
  could: (f: Features) => boolean,
  collect: (text: string, out: Match[], f?: Features) => void,
): Detector {
  const scratch = newFeatures();
  return {
    kind,
    couldMatchFeatures: could,
    couldMatch: (text) => could(scanText(text, text.length, scratch)),
    find(text) {
      const out: Match[] = [];
      collect(text, out);
      return resolveOverlaps(out);
    },
    collect,
  };
}
