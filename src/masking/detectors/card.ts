import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { isDigit, isWord } from "./chars.js";
import { makeDetector } from "./overlaps.js";

// credit_card — 13–19 digits, optionally grouped by single spaces or dashes as cards are printed
// (fours, or 4-6-5 / 4-6-4), Luhn-valid, with a known issuer prefix (IIN). A longer grouped
// sequence is searched for a card on group boundaries ("order 12 4111 1111 1111 1111"); a
// longer ungrouped number is never a card.

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

function glen(g: number): number {
  return (groupEnd[g] ?? 0) - (groupStart[g] ?? 0);
}

/**
 * Groups a..b are printed as a card is: one run, groups of four (the last one shorter:
 * 4-4-4-4-3, 4-4-4-1), or 4-6-5 / 4-6-4 (American Express, Diners Club). Rows of numbers in a
 * table ("1 4 8416 0 1499414498", "26 00 00 00 00 00 00 00") are not.
 */
function cardGrouping(a: number, b: number): boolean {
  if (a === b) return true;
  if (b - a === 2 && glen(a) === 4 && glen(a + 1) === 6 && (glen(b) === 5 || glen(b) === 4)) return true;
  for (let g = a; g < b; g++) if (glen(g) !== 4) return false;
  return glen(b) <= 4;
}

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
      if (digits >= 13 && (endOk || b < count - 1) && cardGrouping(a, b) && isCard(text, groupStart[a] ?? 0, groupEnd[b] ?? 0, digits)) found = b;
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
    // "+4947374606620" is an international phone number, not a card.
    const startOk = !(isWord(before) || before === 43 || ((before === 46 || before === 44) && start > 1 && isDigit(text.charCodeAt(start - 2))));
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

export function couldCard(f: Features): boolean {
  return f.digitRun >= 13;
}
export const creditCardDetector = makeDetector("credit_card", couldCard, collectCards);
