import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { isAlpha, isAlnum, isWord } from "./chars.js";
import { makeDetector } from "./overlaps.js";

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

export function couldEmail(f: Features): boolean {
  return f.at > 0 && f.dots > 0 && f.length >= 6;
}
export const emailDetector = makeDetector("email", couldEmail, collectEmails);
