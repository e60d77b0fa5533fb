import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { isDigit, isWord } from "./chars.js";
import { makeDetector } from "./overlaps.js";

/** Group boundaries of the number being read (bounded by the shapes' group counts). */
const groupStart = new Int32Array(8);
const groupEnd = new Int32Array(8);

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

export function couldPhone(f: Features): boolean {
  return f.digitRun >= 7 && f.plus + f.parens + f.spaces + f.dashes + f.dots > 0;
}
export const phoneDetector = makeDetector("phone", couldPhone, collectPhones);
