import type { Features } from "../prefilter.js";
import type { Detector, Match } from "./base.js";
import { isDigit, isWord } from "./chars.js";
import { makeDetector } from "./overlaps.js";
import { DEFAULT_PHONE_REGIONS, phoneRegions, type PhoneRegions } from "./phone-regions.js";

/** Group boundaries of the number being read (bounded by the shapes' group counts). */
const groupStart = new Int32Array(8);
const groupEnd = new Int32Array(8);

// phone — a phone's shape first (cheap, no allocation), then the national formats of the
// policy's countries (libphonenumber metadata, phone-regions.ts). Plain digit strings (ids,
// amounts, epoch times) are phones only where noted. Accepted (7–15 digits in all, E.164's
// maximum):
//   international  +CC…           '+', a digit 1–9, then digits with separators of at most two
//                                  characters from " -.()"; 7–15 digits. "+1 (415) 555-2671",
//                                  "+44 20 7946 0958", "+14155552671".
//   parenthesised  (AREA) …        '(' 1–5 digits ')', an optional ' ', '-' or '.', then groups
//                                  of 2–10 digits joined by single " -./"; 9–14 digits.
//                                  "(415) 555-2671", "(020) 7946 0958", "(0)20 7946 0958".
//   NANP           NXX-NXX-XXXX    3-3-4 (optionally 1-3-3-4 with a leading 1) with one separator
//                                  kind among " -.", area and exchange starting with 2–9
//                                  (when a North American country is among the regions).
//   national       groups of digits joined by single " -./" (dots only when all are dots), the
//                  first of 2–5 digits (2–6 with a leading 0), the others 2–8 (inner ones
//                  of one digit too after a leading 0: "06843-3-2411"), at most six, 8–13 digits in all, that
//                  a region's national pattern accepts: after a trunk "0" ("020 7946 0958",
//                  "06 12 34 56 78", "030/12345678", "0360 869 943") or, in countries written
//                  without one, as they stand with 9–10 digits ("933 57 34 91", "946-636-925",
//                  "345 123 4567").
//   00-international "0044 20 7946 0958": the "00" access prefix glued to a country code digit
//                  1–9, then groups as above; 9–17 digits with the prefix.
//   compact        one run of digits: 10–11 starting with "0" and a non-zero digit, that a
//                  trunk-0 region accepts ("0786707330"); 9–10 digits without the 0 only when
//                  the policy names such a country itself (`phoneRegions`).
// Rejected: anything glued to a letter, digit, '_' or a continuing "-d"/".d"/"/d"; date shapes
// (yyyy-mm-dd, dd.mm.yyyy, dd/mm/yy …), the SSN shape and IPv4-like dotted quads explicitly;
// runs of 2-digit groups that do not start like a trunk-0 number or sit in a hex dump; decimal
// numbers (two dot-separated groups).

const PHONE_SEP = (c: number): boolean => c === 32 || c === 45 || c === 46 || c === 40 || c === 41 || c === 47;

/** Character before a national number may not glue it to something else. */
function phonePrevOk(text: string, i: number): boolean {
  if (i === 0) return true;
  const p = text.charCodeAt(i - 1);
  // Nor continue a time or a MAC address ("15:12:02.020.001230", "08002b:0102030405").
  return !(isWord(p) || p === 45 || p === 46 || p === 43 || p === 47 || p === 64 || p === 58);
}

/** The number ending at `e` is not continued by a word character or "-d", ".d", "/d", ",d", ":d". */
function phoneNextOk(text: string, e: number): boolean {
  const c = text.charCodeAt(e);
  if (isWord(c)) return false;
  if ((c === 45 || c === 46 || c === 47 || c === 44 || c === 58) && isDigit(text.charCodeAt(e + 1))) return false;
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
 * `state.seps` receives a bitmask of the separators seen: 1 ' ', 2 '-', 4 '.', 8 '/'.
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
    const bit = c === 32 ? 1 : c === 45 ? 2 : c === 46 ? 4 : c === 47 ? 8 : 0;
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
  if (c === 32 || c === 45 || c === 46 || c === 47) j++;
  if (!isDigit(text.charCodeAt(j))) return -1;
  const groups = readGroups(text, j, 6, 14, phoneState);
  if (phoneState.capped) return -1;
  const total = areaDigits + phoneState.digits;
  if (total < 9 || total > 14) return -1;
  for (let g = 0; g < groups; g++) {
    const len = groupLen(g);
    if (len < 2 || len > 10) return -1;
  }
  return phoneNextOk(text, phoneState.end) ? phoneState.end : -1;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/** A byte of a hex dump next to `[s, e)`: " 0a " before it or after it ("0a 02 82 01 01 00 b6"). */
function hexNeighbour(text: string, s: number, e: number): boolean {
  const before = s >= 3 && text.charCodeAt(s - 1) === 32 && isHex(text.charCodeAt(s - 2)) && isHex(text.charCodeAt(s - 3)) && (s === 3 || !isHex(text.charCodeAt(s - 4)));
  const after = text.charCodeAt(e) === 32 && isHex(text.charCodeAt(e + 1)) && isHex(text.charCodeAt(e + 2)) && !isHex(text.charCodeAt(e + 3));
  return before || after;
}

/**
 * "0044 20 7946 0958", "0033-1-44-63-41-29": an international number dialled with the "00"
 * access prefix, as "+" is written: a country code digit 1–9 glued to the 00 ("0044", not
 * "00 44"), 9–17 digits in all with the prefix, not a row of 2-digit groups.
 */
function idd(text: string, i: number, groups: number, digits: number): boolean {
  const third = text.charCodeAt(i + 2);
  if (third < 49 || third > 57 || groupLen(0) < 3 || digits < 9 || digits > 17) return false;
  if (groups === 3 && groupLen(0) === 3 && groupLen(1) === 2 && groupLen(2) === 4) return false; // SSN shape
  for (let g = 1; g < groups; g++) if (groupLen(g) > 10) return false;
  return !hexNeighbour(text, i, phoneState.end);
}

/** The digits of the groups read, as one string (only for candidates that have a phone's shape). */
function groupDigits(text: string, groups: number): string {
  let d = "";
  for (let g = 0; g < groups; g++) d += text.slice(groupStart[g] ?? 0, groupEnd[g] ?? 0);
  return d;
}

function anyMatch(res: readonly RegExp[], s: string): boolean {
  for (const re of res) if (re.test(s)) return true;
  return false;
}

/**
 * The groups start with a date: yyyy-mm-dd, dd.mm.yyyy, dd/mm/yy … (the first two separators
 * alike, one of "-./"), as in "2024-01-15 10:30" or "15/01/2024 10".
 */
function dateShape(text: string, groups: number): boolean {
  if (groups < 3) return false;
  const s1 = text.charCodeAt(groupEnd[0] ?? 0);
  if (s1 !== text.charCodeAt(groupEnd[1] ?? 0) || (s1 !== 45 && s1 !== 46 && s1 !== 47)) return false;
  const a = groupLen(0);
  const b = groupLen(1);
  const c = groupLen(2);
  return (a === 4 && b <= 2 && c <= 2) || (a <= 2 && b <= 2 && (c === 4 || c === 2));
}

/** A digit at i (start of a digit sequence): the end of a national number, or -1. */
function phoneNational(text: string, i: number, regions: PhoneRegions): number {
  const groups = readGroups(text, i, 6, 17, phoneState);
  if (phoneState.capped) return -1;
  const { end, digits, seps } = phoneState;
  if (digits < 8 || !phoneNextOk(text, end)) return -1;
  const lead = text.charCodeAt(i);
  const second = text.charCodeAt(i + 1);
  if (lead === 48 && second === 48) return idd(text, i, groups, digits) ? end : -1;
  if (digits > 13) return -1;
  if (groups === 1) {
    if (lead === 48) {
      if (digits < 10 || digits > 11 || second === 48) return -1;
      return anyMatch(regions.trunk, text.slice(i + 1, end)) ? end : -1;
    }
    if (!regions.compactDirect || digits < 9 || digits > 10 || lead === 49) return -1;
    return anyMatch(regions.direct, text.slice(i, end)) ? end : -1;
  }
  const mixed = seps !== 1 && seps !== 2 && seps !== 4 && seps !== 8;
  // NANP: [1-]NXX-NXX-XXXX with one separator kind.
  if (regions.nanp && !mixed && (seps & 8) === 0) {
    const off = groups === 4 && groupLen(0) === 1 && lead === 49 ? 1 : 0;
    if (groups - off === 3 && groupLen(off) === 3 && groupLen(off + 1) === 3 && groupLen(off + 2) === 4) {
      const area = text.charCodeAt(groupStart[off] ?? 0);
      const exchange = text.charCodeAt(groupStart[off + 1] ?? 0);
      if (area >= 50 && exchange >= 50) return end;
    }
  }
  if (groups === 3 && seps === 2 && groupLen(0) === 3 && groupLen(1) === 2 && groupLen(2) === 4) return -1; // SSN shape
  if ((seps & 4) !== 0 && seps !== 4) return -1; // dots only when all separators are dots
  if (dateShape(text, groups)) return -1;
  const first = groupLen(0);
  if (first < 2 || first > (lead === 48 ? 6 : 5)) return -1;
  let twos = first === 2 ? 1 : 0;
  for (let g = 1; g < groups; g++) {
    const len = groupLen(g);
    // A one-digit group only inside a 0-led number (Japanese "06843-3-2411").
    if (len > 8 || (len < 2 && (lead !== 48 || g === groups - 1))) return -1;
    if (len === 2) twos++;
  }
  // Four dot-separated groups of at most three digits: an IPv4 address, not a phone.
  if (seps === 4 && groups === 4 && first <= 3 && groupLen(1) <= 3 && groupLen(2) <= 3 && groupLen(3) <= 3) return -1;
  // Two dot-separated groups are a decimal number ("tps = 896.967014"); '/' separates only
  // 0-led numbers ("030/12345678"), elsewhere it is a fraction or a date ("6317/10000").
  if (seps === 4 && groups === 2) return -1;
  if ((seps & 8) !== 0 && lead !== 48) return -1;
  if (twos === groups && hexNeighbour(text, i, end)) return -1;
  const d = groupDigits(text, groups);
  if (lead === 48) {
    // "06 12 34 56 78" is a phone; "00 00 00 00 00" and "01 00 00 00 00" are not.
    if (second === 48) return -1;
    if (twos === groups && groups >= 5 && d.slice(2).replace(/0/g, "") === "") return -1;
    return anyMatch(regions.trunk, d.slice(1)) || anyMatch(regions.direct, d) ? end : -1;
  }
  // Written without a trunk prefix: 9–10 digits, not starting with 1 (service numbers at most),
  // and not a row of 2-digit or 4-digit numbers.
  if (digits > 10 || digits < 9 || lead === 49 || twos === groups) return -1;
  let fours = 0;
  for (let g = 0; g < groups; g++) if (groupLen(g) === 4) fours++;
  if (fours === groups) return -1;
  return anyMatch(regions.direct, d) ? end : -1;
}

function collectPhones(text: string, out: Match[], regions: PhoneRegions): void {
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
      if (phonePrevOk(text, i)) end = phoneNational(text, i, regions);
      if (end < 0) {
        // Skip the rest of this digit run: a phone never starts inside one; nor inside a longer
        // sequence of groups joined by one separator kind ("LU19 5656 0531 5971 0194" holds no
        // "0531 5971 0194"). Mixed separators restart at the next group ("2024-01-15 020 …").
        let j = i + 1;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
        const sep = text.charCodeAt(j);
        if (sep === 32 || sep === 45 || sep === 46 || sep === 47) {
          while (text.charCodeAt(j) === sep && isDigit(text.charCodeAt(j + 1))) {
            j++;
            while (j < n && isDigit(text.charCodeAt(j))) j++;
          }
        }
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

/**
 * Seven digits with a separator (every separated shape), or a compact 0-led run of seven (the
 * shortest national number the country patterns accept; "004437049" is one)
 * (unseparated numbers without a 0 only count for a policy's own regions: the masker checks
 * `couldCompactPhone` for those). Plain ids and epoch times pass neither.
 */
export function couldPhone(f: Features): boolean {
  return (f.digitRun >= 7 && f.plus + f.parens + f.spaces + f.dashes + f.dots + f.slashes > 0) || f.zeroRun >= 7;
}

/** couldPhone for a detector that also finds unseparated numbers without a leading 0. */
export function couldCompactPhone(f: Features): boolean {
  return f.digitRun >= 9;
}

/**
 * The phone detector for a list of countries (ISO 3166 codes). `explicit`: the policy named
 * them (then unseparated numbers without a leading 0 count too, see the header).
 */
export function phoneDetectorFor(regions: readonly string[], explicit = true): Detector {
  const r = phoneRegions(regions, explicit);
  return makeDetector("phone", explicit ? (f) => couldPhone(f) || couldCompactPhone(f) : couldPhone, (text, out) => collectPhones(text, out, r));
}

export const phoneDetector = phoneDetectorFor(DEFAULT_PHONE_REGIONS, false);
