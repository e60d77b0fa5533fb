import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { isDigit, isUpper, isAlnum, isWord } from "./chars.js";
import { makeDetector } from "./overlaps.js";

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

export function couldSsn(f: Features): boolean {
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

export function couldIban(f: Features): boolean {
  return f.upper >= 2 && f.digits >= 2 && f.length >= 15 && f.tokenRun >= 4;
}
export const ibanDetector = makeDetector("iban", couldIban, collectIbans);
