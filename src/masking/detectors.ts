/**
 * Content detectors: find sensitive values inside result text.
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
import { newFeatures, scanText, type Features } from "./prefilter.js";

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

// ---------------------------------------------------------------------------------------------
// Character helpers (ASCII)

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}
function isLower(c: number): boolean {
  return c >= 97 && c <= 122;
}
function isAlpha(c: number): boolean {
  return isUpper(c) || isLower(c);
}
function isAlnum(c: number): boolean {
  return isDigit(c) || isAlpha(c);
}
/** [A-Za-z0-9_] */
function isWord(c: number): boolean {
  return isAlnum(c) || c === 95;
}
/** [A-Za-z0-9_-]: the base64url alphabet. */
function isB64Url(c: number): boolean {
  return isWord(c) || c === 45;
}
function isSpaceOrTab(c: number): boolean {
  return c === 32 || c === 9;
}
function isWhitespace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
}

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

function makeDetector(
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

// ---------------------------------------------------------------------------------------------
// email — local@domain.tld; ASCII, plus non-ASCII local parts and IDN domains (RFC 6531).
//
// Anchored on each '@'. The local part is scanned leftwards and the domain rightwards; neither
// class contains '@', so the scans of successive '@'s cover disjoint stretches: linear overall.

/** Unicode spaces (and latin1 NBSP): never part of an address. */
function isUnicodeSpace(c: number): boolean {
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200b) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * RFC 5322 atext plus '.' ([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]) and, for internationalised
 * addresses (RFC 6531), any non-ASCII character except spaces.
 */
function isLocalChar(c: number): boolean {
  if (isAlnum(c)) return true;
  if (c >= 0x80) return !isUnicodeSpace(c);
  switch (c) {
    case 33: case 35: case 36: case 37: case 38: case 39: case 42: case 43: case 45: case 46:
    case 47: case 61: case 63: case 94: case 95: case 96: case 123: case 124: case 125: case 126:
      return true;
    default:
      return false;
  }
}
/** [A-Za-z0-9.-] and non-ASCII (IDN U-labels) except spaces. */
function isDomainChar(c: number): boolean {
  return isAlnum(c) || c === 45 || c === 46 || (c >= 0x80 && !isUnicodeSpace(c));
}

/** End of the valid domain in text[s, e) (trailing dots/dashes dropped), or -1. */
function domainEnd(text: string, s: number, e: number): number {
  while (e > s && (text.charCodeAt(e - 1) === 46 || text.charCodeAt(e - 1) === 45)) e--;
  let labelStart = s;
  let labels = 0;
  for (let i = s; i <= e; i++) {
    if (i === e || text.charCodeAt(i) === 46) {
      // no empty label ("a@.com", "a@b..com"), no label starting or ending with '-' (RFC 1035 §2.3.1)
      if (i === labelStart || text.charCodeAt(labelStart) === 45 || text.charCodeAt(i - 1) === 45) return -1;
      labels++;
      if (i < e) labelStart = i + 1;
    }
  }
  if (labels < 2) return -1;
  // Top-level domain: ASCII letters only (at least two), an IDN A-label (xn--…), or a U-label
  // (non-ASCII only).
  const tldLen = e - labelStart;
  if (tldLen < 2) return -1;
  if (text.startsWith("xn--", labelStart)) return e;
  const unicode = text.charCodeAt(labelStart) >= 0x80;
  for (let i = labelStart; i < e; i++) {
    const c = text.charCodeAt(i);
    if (unicode ? c < 0x80 : !isAlpha(c)) return -1;
  }
  return e;
}

function collectEmails(text: string, out: Match[]): void {
  const n = text.length;
  let from = 0;
  let floor = 0; // never start a match inside the previous one
  while (from < n) {
    const at = text.indexOf("@", from);
    if (at < 0) return;
    let s = at;
    while (s > floor && isLocalChar(text.charCodeAt(s - 1))) s--;
    // Leading punctuation (an opening quote, a '.') belongs to the surrounding text.
    while (s < at && !isWord(text.charCodeAt(s))) s++;
    let e = at + 1;
    while (e < n && isDomainChar(text.charCodeAt(e))) e++;
    const end = s < at ? domainEnd(text, at + 1, e) : -1;
    if (end > 0) {
      out.push({ start: s, end, kind: "email" });
      from = end;
      floor = end;
    } else {
      from = at + 1;
    }
  }
}

function couldEmail(f: Features): boolean {
  return f.at > 0 && f.dots > 0 && f.length >= 6;
}
export const emailDetector = makeDetector("email", couldEmail, collectEmails);

// ---------------------------------------------------------------------------------------------
// credit_card — 13–19 digits, optionally grouped by single spaces or dashes, Luhn-valid, with a
// known issuer prefix (IIN). A longer grouped sequence is searched for a card on group boundaries
// ("order 12 4111 1111 1111 1111"); a longer ungrouped number is never a card.

/** Luhn (ISO/IEC 7812-1 annex B) over the digits of text[s, e). */
function luhnValid(text: string, s: number, e: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = e - 1; i >= s; i--) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) continue;
    let d = c - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** First `count` digits of text[s, e) as a number. */
function leadingDigits(text: string, s: number, e: number, count: number): number {
  let v = 0;
  let k = 0;
  for (let i = s; i < e && k < count; i++) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) continue;
    v = v * 10 + (c - 48);
    k++;
  }
  return v;
}

/**
 * Known IIN ranges (issuer prefixes) and their lengths: Visa, Mastercard, American Express,
 * Discover, Diners Club, JCB, UnionPay, Maestro, Mir, RuPay. Others (e.g. UATP "1…") are not
 * recognised; the price of fewer false positives on arbitrary Luhn-valid numbers.
 */
function knownIin(text: string, s: number, e: number, len: number): boolean {
  switch (leadingDigits(text, s, e, 1)) {
    case 4: // Visa
      return len === 13 || len === 16 || len === 19;
    case 3: {
      const d2 = leadingDigits(text, s, e, 2);
      if (d2 === 34 || d2 === 37) return len === 15; // Amex
      const d3 = leadingDigits(text, s, e, 3);
      if ((d3 >= 300 && d3 <= 305) || d2 === 36 || d2 === 38 || d2 === 39) return len >= 14 && len <= 19; // Diners
      const d4 = leadingDigits(text, s, e, 4);
      return d4 >= 3528 && d4 <= 3589 && len >= 16 && len <= 19; // JCB
    }
    case 5: {
      const d2 = leadingDigits(text, s, e, 2);
      if (d2 >= 51 && d2 <= 55) return len === 16; // Mastercard
      return (d2 === 50 || (d2 >= 56 && d2 <= 58)) && len >= 13 && len <= 19; // Maestro
    }
    case 2: {
      const d4 = leadingDigits(text, s, e, 4);
      if (d4 >= 2221 && d4 <= 2720) return len === 16; // Mastercard 2-series
      return d4 >= 2200 && d4 <= 2204 && len >= 16 && len <= 19; // Mir
    }
    case 6: // Discover, UnionPay, Maestro, RuPay
      return len >= 13 && len <= 19;
    case 8: {
      const d2 = leadingDigits(text, s, e, 2);
      return (d2 === 81 || d2 === 82) && len === 16; // RuPay
    }
    default:
      return false;
  }
}

/** Can a card start with this digit? (issuers: 2, 3, 4, 5, 6, 8) */
function cardLead(c: number): boolean {
  return c === 50 || c === 51 || c === 52 || c === 53 || c === 54 || c === 56;
}

function isCard(text: string, s: number, e: number, digits: number): boolean {
  return digits >= 13 && digits <= 19 && knownIin(text, s, e, digits) && luhnValid(text, s, e);
}

// Group boundaries of the current digit sequence (cards) or number (phones). Bounded: a card
// window spans at most 19 groups, so long sequences are processed in chunks of GROUP_CHUNK.
const GROUP_CHUNK = 64;
const groupStart = new Int32Array(GROUP_CHUNK);
const groupEnd = new Int32Array(GROUP_CHUNK);

/**
 * Card windows starting at buffered groups [a, limit): whole groups with 13–19 digits; the
 * longest valid window from each start. `endOk` says whether the last buffered group may end a
 * window (false when it is glued to a following word character, or when more groups follow in
 * a later chunk: then `limit` keeps every window inside the buffer). Returns the next start.
 */
function cardWindows(text: string, a: number, limit: number, count: number, endOk: boolean, out: Match[]): number {
  while (a < limit) {
    if (!cardLead(text.charCodeAt(groupStart[a] ?? 0))) {
      a++;
      continue;
    }
    let digits = 0;
    let found = -1;
    for (let b = a; b < count; b++) {
      digits += (groupEnd[b] ?? 0) - (groupStart[b] ?? 0);
      if (digits > 19) break;
      if (digits >= 13 && (endOk || b < count - 1) && isCard(text, groupStart[a] ?? 0, groupEnd[b] ?? 0, digits)) found = b;
    }
    if (found >= 0) {
      out.push({ start: groupStart[a] ?? 0, end: groupEnd[found] ?? 0, kind: "credit_card" });
      a = found + 1;
    } else {
      a++;
    }
  }
  return a;
}

function collectCards(text: string, out: Match[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    // One digit sequence: digit runs joined by a single ' ' or '-'. Each character is consumed
    // once; the window search is bounded by 19 groups per start group.
    const start = i;
    const before = start > 0 ? text.charCodeAt(start - 1) : -1;
    // Glued to a larger token or number ("x4111…", "3.4111…"): no window may use that group.
    const startOk = !(isWord(before) || ((before === 46 || before === 44) && start > 1 && isDigit(text.charCodeAt(start - 2))));
    let a = startOk ? 0 : 1;
    let count = 0;
    let j = i;
    for (;;) {
      const gs = j;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      groupStart[count] = gs;
      groupEnd[count] = j;
      count++;
      const sep = text.charCodeAt(j);
      const more = (sep === 32 || sep === 45) && isDigit(text.charCodeAt(j + 1));
      if (!more) break;
      j++;
      if (count === GROUP_CHUNK) {
        // Settle the starts whose windows lie inside the buffer, then keep the rest.
        a = cardWindows(text, a, GROUP_CHUNK - 19, GROUP_CHUNK, false, out);
        const keep = a < GROUP_CHUNK ? a : GROUP_CHUNK;
        groupStart.copyWithin(0, keep, GROUP_CHUNK);
        groupEnd.copyWithin(0, keep, GROUP_CHUNK);
        count = GROUP_CHUNK - keep;
        a = 0;
      }
    }
    i = j;
    // "4111…x": the last group is glued to a word character and may not end a window.
    cardWindows(text, a, count, count, !isWord(text.charCodeAt(j)), out);
  }
}

function couldCard(f: Features): boolean {
  return f.digitRun >= 13;
}
export const creditCardDetector = makeDetector("credit_card", couldCard, collectCards);

// ---------------------------------------------------------------------------------------------
// phone — conservative on purpose: plain digit strings (ids, amounts, epoch times) are never
// phones. Accepted shapes (7–15 digits in all, E.164's maximum):
//   international  +CC…           '+', a digit 1–9, then digits with separators of at most two
//                                  characters from " -.()"; 7–15 digits. "+1 (415) 555-2671",
//                                  "+44 20 7946 0958", "+14155552671".
//   parenthesised  (AREA) …        '(' 1–5 digits ')', an optional ' ', '-' or '.', then groups
//                                  of 2–8 digits joined by single " -."; 9–13 digits.
//                                  "(415) 555-2671", "(020) 7946 0958", "(0)20 7946 0958".
//   NANP           NXX-NXX-XXXX    3-3-4 (optionally 1-3-3-4 with a leading 1) with one separator
//                                  kind among " -.", area and exchange starting with 2–9.
//   trunk-0        0…             a first group starting with 0 (2–5 digits), then groups of 2–8
//                                  digits joined by ' ' or '-' (or all '.'); 9–12 digits.
//                                  "020 7946 0958", "06 12 34 56 78", "030-12345678".
// Rejected: anything glued to a letter, digit, '_' or a continuing "-d"/".d"/"/d"; date shapes
// (yyyy-mm-dd, dd.mm.yyyy …) fail every shape above by digit counts or first digits; IPv4
// (four dot-separated groups of 1–3 digits) is rejected explicitly.

const PHONE_SEP = (c: number): boolean => c === 32 || c === 45 || c === 46 || c === 40 || c === 41;

/** Character before a national number may not glue it to something else. */
function phonePrevOk(text: string, i: number): boolean {
  if (i === 0) return true;
  const p = text.charCodeAt(i - 1);
  return !(isWord(p) || p === 45 || p === 46 || p === 43 || p === 47 || p === 64);
}

/** The number ending at `e` is not continued by a word character or "-d", ".d", "/d". */
function phoneNextOk(text: string, e: number): boolean {
  const c = text.charCodeAt(e);
  if (isWord(c)) return false;
  if ((c === 45 || c === 46 || c === 47 || c === 44) && isDigit(text.charCodeAt(e + 1))) return false;
  return true;
}

/** '+' at i: the end of an E.164-like number, or -1. */
function phoneInternational(text: string, i: number): number {
  const n = text.length;
  let j = i + 1;
  const first = text.charCodeAt(j);
  if (!isDigit(first) || first === 48) return -1;
  let digits = 0;
  let end = -1;
  while (j < n) {
    while (j < n && isDigit(text.charCodeAt(j))) {
      j++;
      digits++;
    }
    end = j;
    if (digits > 15) return -1;
    // separators: at most two characters, then a digit
    let k = j;
    while (k < n && k - j < 2 && PHONE_SEP(text.charCodeAt(k))) k++;
    if (k > j && isDigit(text.charCodeAt(k))) j = k;
    else break;
  }
  if (digits < 7 || end < 0) return -1;
  return phoneNextOk(text, end) ? end : -1;
}

/**
 * Digit groups from `j` joined by single separators, read into groupStart/groupEnd. Reads at
 * most `maxGroups` groups and `maxDigits` digits: a longer sequence sets `state.capped` (no
 * phone shape has more), which keeps the work per start position bounded.
 * `state.seps` receives a bitmask of the separators seen: 1 ' ', 2 '-', 4 '.'.
 */
function readGroups(text: string, j: number, maxGroups: number, maxDigits: number, state: PhoneState): number {
  const n = text.length;
  let groups = 0;
  let digits = 0;
  let seps = 0;
  state.capped = false;
  for (;;) {
    const gs = j;
    while (j < n && digits + (j - gs) <= maxDigits && isDigit(text.charCodeAt(j))) j++;
    digits += j - gs;
    groupStart[groups] = gs;
    groupEnd[groups] = j;
    groups++;
    if (digits > maxDigits) {
      state.capped = true;
      break;
    }
    const c = text.charCodeAt(j);
    const bit = c === 32 ? 1 : c === 45 ? 2 : c === 46 ? 4 : 0;
    if (bit !== 0 && isDigit(text.charCodeAt(j + 1))) {
      if (groups === maxGroups) {
        state.capped = true;
        break;
      }
      seps |= bit;
      j++;
      continue;
    }
    break;
  }
  state.end = j;
  state.digits = digits;
  state.seps = seps;
  return groups;
}

interface PhoneState {
  end: number;
  digits: number;
  seps: number;
  capped: boolean;
}

const phoneState: PhoneState = { end: 0, digits: 0, seps: 0, capped: false };

function groupLen(g: number): number {
  return (groupEnd[g] ?? 0) - (groupStart[g] ?? 0);
}

/** '(' at i: the end of a parenthesised-area number, or -1. */
function phoneParen(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length && j - i <= 6 && isDigit(text.charCodeAt(j))) j++;
  const areaDigits = j - i - 1;
  if (areaDigits < 1 || areaDigits > 5 || text.charCodeAt(j) !== 41) return -1;
  j++;
  const c = text.charCodeAt(j);
  if (c === 32 || c === 45 || c === 46) j++;
  if (!isDigit(text.charCodeAt(j))) return -1;
  const groups = readGroups(text, j, 6, 13, phoneState);
  if (phoneState.capped) return -1;
  const total = areaDigits + phoneState.digits;
  if (total < 9 || total > 13) return -1;
  for (let g = 0; g < groups; g++) {
    const len = groupLen(g);
    if (len < 2 || len > 8) return -1;
  }
  return phoneNextOk(text, phoneState.end) ? phoneState.end : -1;
}

/** A digit at i (start of a digit sequence): the end of a national number, or -1. */
function phoneNational(text: string, i: number): number {
  // Only two shapes start here: trunk-0 (a first group 0…, 2–5 digits) and NANP (a first group
  // of three digits 2–9…, or a lone leading 1). Decide from the first group before reading on.
  const lead = text.charCodeAt(i);
  let g = i + 1;
  while (g - i <= 5 && isDigit(text.charCodeAt(g))) g++;
  const firstLen = g - i;
  let groups: number;
  if (lead === 48) {
    if (firstLen < 2 || firstLen > 5) return -1;
    groups = readGroups(text, i, 7, 12, phoneState);
  } else if ((firstLen === 3 && lead >= 50) || (firstLen === 1 && lead === 49)) {
    groups = readGroups(text, i, 4, 11, phoneState);
  } else {
    return -1;
  }
  if (groups < 2 || phoneState.capped) return -1;
  const { end, digits, seps } = phoneState;
  if (!phoneNextOk(text, end)) return -1;
  const mixed = seps !== 1 && seps !== 2 && seps !== 4;
  // NANP: [1-]NXX-NXX-XXXX with one separator kind.
  if (!mixed) {
    const off = groups === 4 && groupLen(0) === 1 && text.charCodeAt(i) === 49 ? 1 : 0;
    if (groups - off === 3 && groupLen(off) === 3 && groupLen(off + 1) === 3 && groupLen(off + 2) === 4) {
      const area = text.charCodeAt(groupStart[off] ?? 0);
      const exchange = text.charCodeAt(groupStart[off + 1] ?? 0);
      if (area >= 50 && exchange >= 50) return end;
    }
  }
  // Trunk-0 national numbers.
  if (text.charCodeAt(i) !== 48) return -1;
  if (digits < 9 || digits > 12) return -1;
  if (groups === 3 && seps === 2 && groupLen(0) === 3 && groupLen(1) === 2 && groupLen(2) === 4) return -1; // SSN shape
  if ((seps & 4) !== 0 && seps !== 4) return -1; // dots only when all separators are dots
  const first = groupLen(0);
  if (first < 2 || first > 5) return -1;
  for (let g = 1; g < groups; g++) {
    const len = groupLen(g);
    if (len < 2 || len > 8) return -1;
  }
  // Four dot-separated groups of at most three digits: an IPv4 address, not a phone.
  if (seps === 4 && groups === 4 && groupLen(1) <= 3 && groupLen(2) <= 3 && groupLen(3) <= 3 && first <= 3) return -1;
  return end;
}

function collectPhones(text: string, out: Match[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    let end = -1;
    if (c === 43) {
      if (i === 0 || !isWord(text.charCodeAt(i - 1))) end = phoneInternational(text, i);
    } else if (c === 40) {
      if (phonePrevOk(text, i)) end = phoneParen(text, i);
    } else if (isDigit(c)) {
      if (phonePrevOk(text, i)) end = phoneNational(text, i);
      if (end < 0) {
        // Skip the rest of this digit run: a phone never starts inside one.
        let j = i + 1;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
        i = j;
        continue;
      }
    }
    if (end > i) {
      out.push({ start: i, end, kind: "phone" });
      i = end;
    } else {
      i++;
    }
  }
}

function couldPhone(f: Features): boolean {
  return f.digitRun >= 7 && f.plus + f.parens + f.spaces + f.dashes + f.dots > 0;
}
export const phoneDetector = makeDetector("phone", couldPhone, collectPhones);

// ---------------------------------------------------------------------------------------------
// ssn — US Social Security numbers, AAA-GG-SSSS only (dashes required: a bare 9-digit number is
// an id far more often). Never issued: area 000, 666, 900–999; group 00; serial 0000.
// At most 12 characters examined per dash.

function isSsnDigits(text: string, s: number, n: number): boolean {
  for (let i = s; i < s + n; i++) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}

/** Anchored on each '-': the first dash of AAA-GG-SSSS sits at start + 3. */
function collectSsns(text: string, out: Match[]): void {
  let p = text.indexOf("-");
  while (p >= 0) {
    const s = p - 3;
    if (
      s >= 0 &&
      text.charCodeAt(p + 3) === 45 &&
      isSsnDigits(text, s, 3) &&
      isSsnDigits(text, p + 1, 2) &&
      isSsnDigits(text, p + 4, 4) &&
      !(s > 0 && (isWord(text.charCodeAt(s - 1)) || text.charCodeAt(s - 1) === 45)) &&
      !isWord(text.charCodeAt(s + 11)) &&
      !(text.charCodeAt(s + 11) === 45 && isDigit(text.charCodeAt(s + 12)))
    ) {
      const area = text.slice(s, s + 3);
      const bad = area === "000" || area === "666" || area.charCodeAt(0) === 57 || text.startsWith("00", p + 1) || text.startsWith("0000", p + 4);
      if (!bad) {
        out.push({ start: s, end: s + 11, kind: "ssn" });
        p = text.indexOf("-", s + 11);
        continue;
      }
    }
    p = text.indexOf("-", p + 1);
  }
}

function couldSsn(f: Features): boolean {
  return f.digitRun >= 9 && f.dashes >= 2;
}
export const ssnDetector = makeDetector("ssn", couldSsn, collectSsns);

// ---------------------------------------------------------------------------------------------
// iban — ISO 13616: two upper-case letters, two check digits, 11–30 upper-case alphanumerics;
// compact ("DE89370400440532013000") or printed in groups of four separated by single spaces
// ("GB82 WEST 1234 5698 7654 32"). Validated with the ISO 7064 mod-97-10 check (remainder 1) and,
// for the countries listed, the national length. Upper case only (lower case is not the printed
// form and would match far more random text).

const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22,
  GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IS: 26, IT: 27, JO: 30, KW: 30,
  KZ: 20, LB: 28, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31,
  MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SE: 24,
  SI: 19, SK: 24, SM: 27, TN: 24, TR: 26, UA: 29, VG: 24, XK: 20,
};

function isIbanChar(c: number): boolean {
  return isUpper(c) || isDigit(c);
}

/** mod-97 of the IBAN in text[s, e) (spaces skipped), rearranged: BBAN first, then CC and check. */
function ibanMod97(text: string, s: number, e: number): number {
  let rem = 0;
  const add = (c: number): void => {
    if (isDigit(c)) rem = (rem * 10 + (c - 48)) % 97;
    else rem = (rem * 100 + (c - 55)) % 97; // A=10 … Z=35
  };
  for (let i = s + 4; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32) add(c);
  }
  for (let i = s; i < s + 4; i++) add(text.charCodeAt(i));
  return rem;
}

function ibanValid(text: string, s: number, e: number, len: number): boolean {
  if (len < 15 || len > 34) return false;
  const expected = IBAN_LENGTHS[text.slice(s, s + 2)];
  if (expected !== undefined && expected !== len) return false;
  return ibanMod97(text, s, e) === 1;
}

function collectIbans(text: string, out: Match[]): void {
  const n = text.length;
  let i = 0;
  while (i + 15 <= n) {
    const c = text.charCodeAt(i);
    if (!isUpper(c)) {
      i++;
      continue;
    }
    if (
      !isUpper(text.charCodeAt(i + 1)) ||
      !isDigit(text.charCodeAt(i + 2)) ||
      !isDigit(text.charCodeAt(i + 3)) ||
      (i > 0 && isAlnum(text.charCodeAt(i - 1)))
    ) {
      i++;
      continue;
    }
    // Compact form: the maximal [A-Z0-9] run from i.
    let j = i + 4;
    while (j < n && isIbanChar(text.charCodeAt(j))) j++;
    if (!isAlnum(text.charCodeAt(j)) && ibanValid(text, i, j, j - i)) {
      out.push({ start: i, end: j, kind: "iban" });
      i = j;
      continue;
    }
    if (j === i + 4 && text.charCodeAt(j) === 32) {
      // Printed form: groups of four after single spaces; a shorter group is the last one.
      // Candidates end on group boundaries; the longest valid one wins (at most 8 checks).
      const ends: number[] = [];
      let k = j;
      let chars = 4;
      while (text.charCodeAt(k) === 32 && isIbanChar(text.charCodeAt(k + 1))) {
        let g = k + 1;
        while (g < n && g - k - 1 < 4 && isIbanChar(text.charCodeAt(g))) g++;
        if (isAlnum(text.charCodeAt(g))) break; // a group longer than four, or lower case
        const groupChars = g - k - 1;
        chars += groupChars;
        if (chars > 34) break;
        ends.push(g);
        k = g;
        if (groupChars < 4) break;
      }
      let matched = false;
      for (let t = ends.length - 1; t >= 0; t--) {
        const e = ends[t] ?? 0;
        let len = 0;
        for (let q = i; q < e; q++) if (text.charCodeAt(q) !== 32) len++;
        if (ibanValid(text, i, e, len)) {
          out.push({ start: i, end: e, kind: "iban" });
          i = e;
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    i = j > i + 1 ? j : i + 1;
  }
}

function couldIban(f: Features): boolean {
  return f.upper >= 2 && f.digits >= 2 && f.length >= 15 && f.tokenRun >= 4;
}
export const ibanDetector = makeDetector("iban", couldIban, collectIbans);

// ---------------------------------------------------------------------------------------------
// ipv4 — dotted quads with octets 0–255 (leading zeros allowed). Not part of a longer dotted
// sequence ("1.2.3.4.5" is a version, not an address) nor glued to a word ("v1.2.3.4").

const IPV4_RE = /(?<![A-Za-z0-9_.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![A-Za-z0-9_]|\.\d)/g;

function collectIpv4(text: string, out: Match[]): void {
  IPV4_RE.lastIndex = 0;
  for (let m = IPV4_RE.exec(text); m !== null; m = IPV4_RE.exec(text)) {
    if (Number(m[1]) > 255 || Number(m[2]) > 255 || Number(m[3]) > 255 || Number(m[4]) > 255) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: "ipv4" });
  }
}

function couldIpv4(f: Features): boolean {
  return f.dots >= 3 && f.digitRun >= 4 && f.length >= 7;
}
export const ipv4Detector = makeDetector("ipv4", couldIpv4, collectIpv4);

// ---------------------------------------------------------------------------------------------
// aws_key — access key ids (AKIA…, ASIA… and the other IAM unique-id prefixes, 20 characters)
// and secret access keys (40 characters of base64) assigned to a recognisable name
// (aws_secret_access_key=…, "SecretAccessKey": "…"). Only the secret's value is reported.
// Both expressions start with a literal and use bounded or class-disjoint quantifiers.

const AWS_ID_RE = /(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])/g;
const AWS_SECRET_RE =
  /(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)["'`]?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}["'`]?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/gi;

function collectAws(text: string, out: Match[]): void {
  AWS_ID_RE.lastIndex = 0;
  for (let m = AWS_ID_RE.exec(text); m !== null; m = AWS_ID_RE.exec(text)) {
    out.push({ start: m.index, end: m.index + m[0].length, kind: "aws_key" });
  }
  AWS_SECRET_RE.lastIndex = 0;
  for (let m = AWS_SECRET_RE.exec(text); m !== null; m = AWS_SECRET_RE.exec(text)) {
    const end = m.index + m[0].length;
    out.push({ start: end - 40, end, kind: "aws_key" });
  }
}

/** An access key id has four upper-case letters of prefix; a secret needs its '=' or ':'. */
function couldAws(f: Features): boolean {
  return f.tokenRun >= 20 && (f.upper >= 4 || f.assigns > 0);
}
export const awsKeyDetector = makeDetector("aws_key", couldAws, collectAws);

// ---------------------------------------------------------------------------------------------
// jwt — RFC 7519 compact serialisation (RFC 7515 §7.1 / RFC 7516 §7.1): 3 (JWS) to 5 (JWE)
// base64url segments joined by '.', whose first segment decodes to a JSON object with a string
// "alg" (RFC 7515 §4.1.1). The signature may be empty (unsecured JWT, RFC 7519 §6).
//
// Anchored on "ey" (base64 of '{' followed by '"', ' ' or a tab) at a base64url boundary; after
// a failed candidate the search resumes at the end of its first segment, because any "ey" inside
// that segment is preceded by a base64url character and fails the boundary test: linear.

const MAX_JWT_HEADER = 4096;

function jwtHeaderOk(segment: string): boolean {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    return false;
  }
  return typeof decoded === "object" && decoded !== null && typeof (decoded as { alg?: unknown }).alg === "string";
}

function collectJwts(text: string, out: Match[]): void {
  const n = text.length;
  let p = 0;
  while (p < n) {
    const idx = text.indexOf("ey", p);
    if (idx < 0) return;
    if (idx > 0 && isB64Url(text.charCodeAt(idx - 1))) {
      p = idx + 1;
      continue;
    }
    let h = idx;
    while (h < n && isB64Url(text.charCodeAt(h))) h++;
    p = h;
    if (text.charCodeAt(h) !== 46 || h - idx < 14 || h - idx > MAX_JWT_HEADER) continue;
    let j = h;
    let segments = 1;
    let body = 0;
    while (segments < 5 && text.charCodeAt(j) === 46) {
      const s = j + 1;
      let e = s;
      while (e < n && isB64Url(text.charCodeAt(e))) e++;
      body += e - s;
      segments++;
      j = e;
    }
    if (segments < 3 || body < 2) continue;
    // A trailing '.' after a complete token ends a sentence rather than starting a segment.
    if (segments > 3 && text.charCodeAt(j - 1) === 46) j--;
    if (isB64Url(text.charCodeAt(j)) || !jwtHeaderOk(text.slice(idx, h))) continue;
    out.push({ start: idx, end: j, kind: "jwt" });
    p = j;
  }
}

function couldJwt(f: Features): boolean {
  return f.dots >= 2 && f.tokenDotRun >= 14;
}
export const jwtDetector = makeDetector("jwt", couldJwt, collectJwts);

// ---------------------------------------------------------------------------------------------
// private_key — PEM-style private key blocks (RFC 7468 §2 framing; "RSA PRIVATE KEY",
// "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK", …)
// from the BEGIN line through the END line's closing dashes, or to the end of the text when the
// END line is missing (a truncated key is still a key). Certificates and public keys are left.

function collectPrivateKeys(text: string, out: Match[]): void {
  const n = text.length;
  let p = 0;
  for (;;) {
    const idx = text.indexOf("-----BEGIN ", p);
    if (idx < 0) return;
    let k = idx + 11;
    while (k < n && k - idx - 11 < 64 && (isUpper(text.charCodeAt(k)) || isDigit(text.charCodeAt(k)) || text.charCodeAt(k) === 32)) k++;
    const label = text.slice(idx + 11, k);
    if (!text.startsWith("-----", k) || !(label.endsWith("PRIVATE KEY") || label.endsWith("PRIVATE KEY BLOCK"))) {
      p = idx + 11;
      continue;
    }
    let end = n;
    const endLine = text.indexOf("-----END ", k + 5);
    if (endLine >= 0) {
      const close = text.indexOf("-----", endLine + 9);
      end = close < 0 ? n : close + 5;
    }
    out.push({ start: idx, end, kind: "private_key" });
    p = end;
  }
}

function couldPrivateKey(f: Features): boolean {
  return f.dashes >= 10 && f.length >= 27;
}
export const privateKeyDetector = makeDetector("private_key", couldPrivateKey, collectPrivateKeys);

// ---------------------------------------------------------------------------------------------
// api_key — well-known token shapes (each starts with a literal prefix at a base64url boundary):
//   GitHub ghp_/gho_/ghu_/ghs_/ghr_ + 36, github_pat_…; GitLab glpat-…; Slack xox[abprs]-…;
//   Stripe sk_/rk_ live/test and whsec_…; Google AIza + 35; OpenAI/Anthropic-style sk-… (≥ 20);
//   npm npm_ + 36; Hugging Face hf_ + 30; SendGrid SG.x.y;
// plus HTTP credentials after an auth scheme: "Bearer <token>", "Basic <base64>", "Token <t>"
// (the credential only, ≥ 16 characters; for Basic/Token it must contain a digit or one of
// "+/=" so that prose like "basic authentication" is left alone).
//
// Linear: every alternative's repeated class is a subset of the boundary class [A-Za-z0-9_-]
// (except SendGrid's bounded '.'), so a run scanned from one start cannot be rescanned from
// another start, which must follow a non-base64url character.

const API_KEY_RE = new RegExp(
  "(?<![A-Za-z0-9_-])(?:" +
    [
      "gh[pousr]_[A-Za-z0-9]{36,}",
      "github_pat_[A-Za-z0-9_]{22,}",
      "glpat-[A-Za-z0-9_-]{20,}",
      "xox[abprs]-[A-Za-z0-9-]{10,}",
      "(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",
      "whsec_[A-Za-z0-9]{20,}",
      "AIza[A-Za-z0-9_-]{35}",
      "sk-[A-Za-z0-9_-]{20,}",
      "npm_[A-Za-z0-9]{36,}",
      "hf_[A-Za-z0-9]{30,}",
      "SG\\.[A-Za-z0-9_-]{16,64}\\.[A-Za-z0-9_-]{16,64}",
    ].join("|") +
    ")(?![A-Za-z0-9_-])",
  "g",
);
const AUTH_SCHEME_RE = /\b(bearer|basic|token)[ \t]{1,8}([A-Za-z0-9._~+/-]{16,}=*)/gi;

function collectApiKeys(text: string, out: Match[]): void {
  API_KEY_RE.lastIndex = 0;
  for (let m = API_KEY_RE.exec(text); m !== null; m = API_KEY_RE.exec(text)) {
    out.push({ start: m.index, end: m.index + m[0].length, kind: "api_key" });
  }
  AUTH_SCHEME_RE.lastIndex = 0;
  for (let m = AUTH_SCHEME_RE.exec(text); m !== null; m = AUTH_SCHEME_RE.exec(text)) {
    const scheme = (m[1] ?? "").toLowerCase();
    const credential = m[2] ?? "";
    if (scheme !== "bearer" && !/[0-9+/=]/.test(credential)) continue;
    const end = m.index + m[0].length;
    out.push({ start: end - credential.length, end, kind: "api_key" });
  }
}

function couldApiKey(f: Features): boolean {
  return f.tokenDotRun >= 15;
}
export const apiKeyDetector = makeDetector("api_key", couldApiKey, collectApiKeys);

// ---------------------------------------------------------------------------------------------
// secret — generic secrets, reporting only the secret VALUE:
//
// 1. Assignments in env / shell / ini / YAML / JSON / query-string / SQL style whose key names a
//    credential (see isSecretKeyName): `DB_PASSWORD=…`, `export API_TOKEN="…"`,
//    `"password": "…"`, `client_secret: …`, `?token=…&`, `password = '…'`, `X-Api-Key: …`.
//    Quoted values run to the closing quote (backslash escapes and SQL '' honoured; an unclosed
//    quote runs to the end of the line). An unquoted value of a key that starts its line (after
//    optional "export ", "set ", "ENV ", "- ") runs to the end of the line (YAML and .env values
//    may contain spaces: fail closed); elsewhere it runs to whitespace or one of & ; , " ' ` < > ) ] }.
//    Values that are null/true/false/none/nil/undefined/~ or a nested object/array are left.
// 2. URL credentials: the password in scheme://user:PASSWORD@host.
// 3. SQL literals: PASSWORD '…' and IDENTIFIED BY '…'.
// 4. High-entropy tokens: maximal runs of [A-Za-z0-9+/_-] (plus up to two '=' of padding) of at
//    least 20 characters that mix upper case, lower case and digits, are not pure hex, and whose
//    Shannon entropy (bits per character, over the token's own character frequencies) reaches
//        threshold(n) = min(0.43 + 1.075 · ln n, 4.9)     (n = length without padding).
//    Justification: that curve is the 1st percentile of the entropy of uniformly random base62
//    tokens of length n (simulated: n=20 → 3.65, 32 → 4.21, 40 → 4.46, 64 → 4.90), so ~99% of
//    random tokens that pass the class test are caught (about 96% at n = 20, where 3% lack a
//    digit), while natural identifiers stay below it: "getUserAccountSettings2024" 3.83 < 3.93,
//    "/usr/lib/Postgresql/15/bin/Postgres" 3.76 < 4.25, "X509Certificate2Collection" 3.84 < 3.93.
//    Decisions: pure hex (digests, git SHAs, UUIDs, hex ids) is never flagged by entropy: in
//    query results it is overwhelmingly identifiers; hex secrets are caught when assigned to a
//    secret-named key. Tokens without all three of upper/lower/digit (base32 TOTP seeds,
//    lower-case base36) are likewise only caught by assignment. Random-looking identifiers
//    (nanoid, Stripe object ids like "pi_3Mtw…") ARE flagged: indistinguishable from tokens.

const KEYWORD_HINT = /pass|pwd|secret|token|key|credential|auth|cookie/;
const EXACT_KEYWORDS: ReadonlySet<string> = new Set([
  "password", "passwd", "pwd", "pass", "passphrase", "passcode", "secret", "token", "credential",
  "apikey", "auth", "authorization", "cookie", "privatekey", "secretkey", "accesskey", "authtoken",
  "accesstoken", "refreshtoken", "sessionkey", "apitoken",
]);
const SUFFIX_KEYWORDS = ["password", "passwd", "secret", "token", "apikey", "passphrase", "credential"];
const KEY_QUALIFIERS: ReadonlySet<string> = new Set([
  "api", "access", "private", "secret", "signing", "encryption", "master", "client", "ssh", "session",
  "app", "auth", "account", "service", "license", "hmac", "jwt",
]);
/** A key whose last word is one of these describes a secret rather than holding one. */
const NOT_SECRET_LAST: ReadonlySet<string> = new Set([
  "count", "length", "len", "policy", "name", "type", "file", "path", "url", "uri", "endpoint", "expiry",
  "expires", "expiration", "expire", "ttl", "lifetime", "timeout", "enabled", "required", "prefix",
  "header", "field", "label", "format", "algorithm", "algo", "method", "version", "min", "max", "at",
  "changed", "updated", "created", "strength", "rotation", "location", "ref", "env", "var",
]);

function isKeywordPart(p: string): boolean {
  if (EXACT_KEYWORDS.has(p)) return true;
  if (p.endsWith("s") && EXACT_KEYWORDS.has(p.slice(0, -1))) return true;
  for (const s of SUFFIX_KEYWORDS) if (p.length > s.length && (p.endsWith(s) || p.endsWith(s + "s"))) return true;
  return false;
}

/** Does this key (identifier) name a credential? Exported for tests. */
export function isSecretKeyName(key: string): boolean {
  if (!KEYWORD_HINT.test(key.toLowerCase())) return false;
  const parts = key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .split(/[_.-]+/)
    .filter((p) => p.length > 0);
  const last = parts[parts.length - 1];
  if (last === undefined) return false;
  let found = false;
  for (let i = 0; i < parts.length && !found; i++) {
    const p = parts[i] ?? "";
    if (isKeywordPart(p)) found = true;
    else if ((p === "key" || p === "keys") && i > 0 && KEY_QUALIFIERS.has(parts[i - 1] ?? "")) found = true;
  }
  if (!found) return false;
  return isKeywordPart(last) || !NOT_SECRET_LAST.has(last);
}

function isKeyChar(c: number): boolean {
  return isWord(c) || c === 45 || c === 46;
}
function isQuote(c: number): boolean {
  return c === 34 || c === 39 || c === 96;
}
function isInlineStop(c: number): boolean {
  if (isWhitespace(c)) return true;
  switch (c) {
    case 38: case 59: case 44: case 34: case 39: case 96: case 60: case 62: case 41: case 93: case 125:
      return true;
    default:
      return false;
  }
}

const LINE_PREFIX_WORDS: ReadonlySet<string> = new Set(["export", "set", "env", "-"]);

/** Is `pos` the first thing on its line (after indentation and an optional export/set/ENV/-)? */
function atLineStart(text: string, pos: number): boolean {
  let j = pos - 1;
  while (j >= 0 && isSpaceOrTab(text.charCodeAt(j))) j--;
  if (j < 0 || text.charCodeAt(j) === 10 || text.charCodeAt(j) === 13) return true;
  if (j === pos - 1) return false; // glued to something
  let w = j;
  while (w >= 0 && j - w < 7 && (isAlpha(text.charCodeAt(w)) || text.charCodeAt(w) === 45)) w--;
  if (!LINE_PREFIX_WORDS.has(text.slice(w + 1, j + 1).toLowerCase())) return false;
  while (w >= 0 && isSpaceOrTab(text.charCodeAt(w))) w--;
  return w < 0 || text.charCodeAt(w) === 10 || text.charCodeAt(w) === 13;
}

/** From the first character inside a quote: the index of the closing quote, or of the line end. */
function scanQuoted(text: string, from: number, quote: number): number {
  const n = text.length;
  let i = from;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 92) {
      // backslash escape: never let it hide a line end
      const next = text.charCodeAt(i + 1);
      if (next === 10 || next === 13) return i + 1;
      i += 2;
      continue;
    }
    if (c === quote) {
      if (quote === 39 && text.charCodeAt(i + 1) === 39) {
        i += 2; // SQL '' inside '…'
        continue;
      }
      return i;
    }
    if (c === 10 || c === 13) return i;
    i++;
  }
  return n;
}

const PLACEHOLDER_VALUES: ReadonlySet<string> = new Set(["null", "true", "false", "none", "nil", "undefined", "~"]);

/** A separator (':' or '=') at s: if a secret-named key precedes it, report the value. Returns where to resume. */
function tryAssignment(text: string, s: number, out: Match[]): number {
  const n = text.length;
  const sep = text.charCodeAt(s);
  if (sep === 58 && text.charCodeAt(s + 1) === 47 && text.charCodeAt(s + 2) === 47) return s + 1; // "://"
  if (sep === 61 && s > 0) {
    const p = text.charCodeAt(s - 1);
    if (p === 33 || p === 60 || p === 62 || p === 61 || p === 58) return s + 1; // second char of != <= >= == :=
  }
  // The key, right to left: up to 4 blanks, an optional closing quote, up to 128 key characters.
  let k = s - 1;
  let blanks = 0;
  while (k >= 0 && blanks < 4 && isSpaceOrTab(text.charCodeAt(k))) {
    k--;
    blanks++;
  }
  let keyQuoted = false;
  if (k >= 0 && isQuote(text.charCodeAt(k))) {
    keyQuoted = true;
    k--;
  }
  const keyEnd = k + 1;
  while (k >= 0 && keyEnd - k <= 128 && isKeyChar(text.charCodeAt(k))) k--;
  const keyStart = k + 1;
  if (keyStart === keyEnd || (k >= 0 && isKeyChar(text.charCodeAt(k)))) return s + 1;
  if (!isSecretKeyName(text.slice(keyStart, keyEnd))) return s + 1;
  // The value.
  let v = s + 1;
  const after = text.charCodeAt(v);
  if ((sep === 58 && after === 61) || (sep === 61 && (after === 62 || after === 61))) v++; // := => ==
  while (v < n && isSpaceOrTab(text.charCodeAt(v))) v++;
  if (v >= n) return v;
  const q = text.charCodeAt(v);
  if (q === 123 || q === 91) return v; // a nested object or array: its own keys are judged
  let vs: number;
  let ve: number;
  let resume: number;
  if (isQuote(q)) {
    vs = v + 1;
    ve = scanQuoted(text, vs, q);
    resume = ve < n && text.charCodeAt(ve) === q ? ve + 1 : ve;
  } else if (atLineStart(text, keyQuoted && keyStart > 0 ? keyStart - 1 : keyStart)) {
    vs = v;
    ve = v;
    while (ve < n && text.charCodeAt(ve) !== 10 && text.charCodeAt(ve) !== 13) ve++;
    resume = ve;
    while (ve > vs && isSpaceOrTab(text.charCodeAt(ve - 1))) ve--;
  } else {
    vs = v;
    ve = v;
    while (ve < n && !isInlineStop(text.charCodeAt(ve))) ve++;
    resume = ve;
  }
  if (ve > vs && !(ve - vs <= 9 && PLACEHOLDER_VALUES.has(text.slice(vs, ve).toLowerCase()))) {
    out.push({ start: vs, end: ve, kind: "secret" });
  }
  return resume > s ? resume : s + 1;
}

function collectAssignments(text: string, out: Match[]): void {
  let colon = text.indexOf(":");
  let eq = text.indexOf("=");
  let from = 0;
  // Each separator costs O(1) amortised (bounded left scan of ≤ 132 characters, value scans that
  // move `from` forward); the two indexOf cursors only move forward.
  for (;;) {
    if (colon !== -1 && colon < from) colon = text.indexOf(":", from);
    if (eq !== -1 && eq < from) eq = text.indexOf("=", from);
    let s: number;
    if (colon === -1) {
      if (eq === -1) return;
      s = eq;
    } else {
      s = eq === -1 || colon < eq ? colon : eq;
    }
    from = tryAssignment(text, s, out);
  }
}

function isAuthorityStop(c: number): boolean {
  return isWhitespace(c) || c === 47 || c === 63 || c === 35 || isQuote(c) || c === 60 || c === 62;
}

function collectUrlCredentials(text: string, out: Match[]): void {
  const n = text.length;
  let p = 0;
  for (;;) {
    const idx = text.indexOf("://", p);
    if (idx < 0) return;
    const a = idx + 3;
    let e = a;
    let firstColon = -1;
    let lastAt = -1;
    while (e < n) {
      const c = text.charCodeAt(e);
      if (isAuthorityStop(c)) break;
      if (c === 58 && firstColon < 0) firstColon = e;
      else if (c === 64) lastAt = e;
      e++;
    }
    if (lastAt > 0 && firstColon >= 0 && firstColon + 1 < lastAt) {
      out.push({ start: firstColon + 1, end: lastAt, kind: "secret" });
    }
    p = e > a ? e : a;
  }
}

const SQL_PASSWORD_RE = /\b(?:password|identified[ \t]+by)[ \t]+'/gi;

function collectSqlPasswords(text: string, out: Match[]): void {
  SQL_PASSWORD_RE.lastIndex = 0;
  for (let m = SQL_PASSWORD_RE.exec(text); m !== null; m = SQL_PASSWORD_RE.exec(text)) {
    const vs = m.index + m[0].length;
    const ve = scanQuoted(text, vs, 39);
    if (ve > vs) out.push({ start: vs, end: ve, kind: "secret" });
    SQL_PASSWORD_RE.lastIndex = ve > vs ? ve : vs;
  }
}

/** [A-Za-z0-9+/_-] */
function isEntropyChar(c: number): boolean {
  return isB64Url(c) || c === 43 || c === 47;
}

const ENTROPY_MIN_LENGTH = 20;
const charCounts = new Int32Array(128);

/** Entropy threshold in bits/character for a token of n characters (see the block comment). */
export function entropyThreshold(n: number): number {
  return Math.min(0.43 + 1.075 * Math.log(n), 4.9);
}

/** Shannon entropy (bits per character) of text[s, e), ASCII only. */
export function shannonEntropy(text: string, s: number, e: number): number {
  const n = e - s;
  if (n <= 0) return 0;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i) & 127;
    charCounts[c] = (charCounts[c] ?? 0) + 1;
  }
  let sum = 0;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i) & 127;
    const k = charCounts[c] ?? 0;
    if (k > 0) {
      sum += k * Math.log2(k);
      charCounts[c] = 0; // each symbol once; leaves the table clean
    }
  }
  return Math.log2(n) - sum / n;
}

function looksLikeSecretToken(text: string, s: number, e: number): boolean {
  let upper = false;
  let lower = false;
  let digit = false;
  let hexOnly = true;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) digit = true;
    else if (isUpper(c)) {
      upper = true;
      if (c > 70) hexOnly = false;
    } else if (isLower(c)) {
      lower = true;
      if (c > 102) hexOnly = false;
    } else if (c !== 45) hexOnly = false;
  }
  if (!(upper && lower && digit) || hexOnly) return false;
  return shannonEntropy(text, s, e) >= entropyThreshold(e - s);
}

function collectHighEntropy(text: string, out: Match[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isEntropyChar(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && isEntropyChar(text.charCodeAt(j))) j++;
    let e = j;
    while (e < n && e - j < 2 && text.charCodeAt(e) === 61) e++; // base64 padding
    if (j - i >= ENTROPY_MIN_LENGTH && looksLikeSecretToken(text, i, j)) out.push({ start: i, end: e, kind: "secret" });
    i = e;
  }
}

/**
 * Every assignment key, URL and SQL form above contains one of these (case-insensitive):
 * the key hint, "identified" or "://". One regex test spares the three scanners on the many
 * values that merely contain ':' or '=' (times, URLs without credentials, ratios).
 */
const SECRET_HINT = /pass|pwd|secret|token|key|credential|auth|cookie|identified|:\/\//i;

function collectGenericSecrets(text: string, out: Match[], f?: Features): void {
  if (SECRET_HINT.test(text)) {
    collectAssignments(text, out);
    collectUrlCredentials(text, out);
    collectSqlPasswords(text, out);
  }
  if (f === undefined || f.tokenRun >= ENTROPY_MIN_LENGTH) collectHighEntropy(text, out);
}

function couldSecret(f: Features): boolean {
  return f.assigns > 0 || f.quotes > 0 || f.tokenRun >= ENTROPY_MIN_LENGTH;
}
export const secretDetector = makeDetector("secret", couldSecret, collectGenericSecrets);

// ---------------------------------------------------------------------------------------------

export const DETECTORS: Readonly<Record<DetectorKind, Detector>> = {
  email: emailDetector,
  credit_card: creditCardDetector,
  phone: phoneDetector,
  ssn: ssnDetector,
  iban: ibanDetector,
  ipv4: ipv4Detector,
  aws_key: awsKeyDetector,
  jwt: jwtDetector,
  private_key: privateKeyDetector,
  api_key: apiKeyDetector,
  secret: secretDetector,
};

/** One bit per kind, in DETECTOR_KINDS order. */
export const KIND_BITS: Readonly<Record<DetectorKind, number>> = {
  email: 1 << 0,
  credit_card: 1 << 1,
  phone: 1 << 2,
  ssn: 1 << 3,
  iban: 1 << 4,
  ipv4: 1 << 5,
  aws_key: 1 << 6,
  jwt: 1 << 7,
  private_key: 1 << 8,
  api_key: 1 << 9,
  secret: 1 << 10,
};

/**
 * The kinds whose prefilter passes, as a bitmask (KIND_BITS). One monomorphic call instead of a
 * call per detector: this runs for every value on the hot path.
 */
export function candidateKinds(f: Features): number {
  let m = 0;
  if (couldEmail(f)) m |= 1 << 0;
  if (couldCard(f)) m |= 1 << 1;
  if (couldPhone(f)) m |= 1 << 2;
  if (couldSsn(f)) m |= 1 << 3;
  if (couldIban(f)) m |= 1 << 4;
  if (couldIpv4(f)) m |= 1 << 5;
  if (couldAws(f)) m |= 1 << 6;
  if (couldJwt(f)) m |= 1 << 7;
  if (couldPrivateKey(f)) m |= 1 << 8;
  if (couldApiKey(f)) m |= 1 << 9;
  if (couldSecret(f)) m |= 1 << 10;
  return m;
}

/** All matches of the given detectors in `text`, merged (sorted, non-overlapping). */
export function detect(text: string, kinds: readonly DetectorKind[]): Match[] {
  const out: Match[] = [];
  for (const k of kinds) DETECTORS[k].collect(text, out);
  return resolveOverlaps(out);
}
