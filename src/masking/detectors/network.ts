import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { makeDetector } from "./overlaps.js";

// ---------------------------------------------------------------------------------------------
// ipv4 — dotted quads with octets 0–255, written without leading zeros ("010.1.1.1" is not how
// an address is printed; "0" alone is). Not part of a longer dotted sequence ("1.2.3.4.5" is a
// version, not an address) nor glued to a word ("v1.2.3.4"), and not a section or version
// number: "Section 55.2.2.1", "§ 4.1.2.7", "Sections 9.7.1.2 and 9.7.1.3", "version 1.2.3.4",
// or a numbered heading ("24.2.2.1. Standard Collations" starting a line).

const IPV4_RE = /(?<![A-Za-z0-9_.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![A-Za-z0-9_]|\.\d)/g;

/**
 * Words that make the dotted number after them a section, version or release number, possibly
 * after a list of such numbers ("Sections 1.2.3.4, 1.2.3.5 and …"). Applied to at most the 64
 * characters before a candidate, so its repetition is bounded.
 */
const NUMBERING_CONTEXT =
  /(?:\b(?:sections?|sect|sec|chapters?|ch|tables?|figures?|figs?|examples?|appendix|appendices|parts?|steps?|versions?|releases?|ver|rev|revisions?|clauses?|items?|paragraphs?|para|rules?)\.?|§§?)\s*(?:\d+(?:\.\d+)*\.?\s*(?:,|and|or|to|&|-|–)\s*)*\(?\s*$/i;

function octet(s: string | undefined): boolean {
  if (s === undefined || (s.length > 1 && s.charCodeAt(0) === 48)) return false;
  return Number(s) <= 255;
}

/** A numbered heading: "24.2.2.1. Standard Collations" at the start of a line. */
function headingNumber(text: string, start: number, end: number): boolean {
  if (text.charCodeAt(end) !== 46 || !/^\s+[A-Za-z]/.test(text.slice(end + 1, end + 8))) return false;
  for (let k = start - 1; k >= 0; k--) {
    const c = text.charCodeAt(k);
    if (c === 10 || c === 13) return true;
    if (c !== 32 && c !== 9 && c !== 0xa0) return false;
  }
  return true;
}

function collectIpv4(text: string, out: Match[]): void {
  IPV4_RE.lastIndex = 0;
  for (let m = IPV4_RE.exec(text); m !== null; m = IPV4_RE.exec(text)) {
    if (!octet(m[1]) || !octet(m[2]) || !octet(m[3]) || !octet(m[4])) continue;
    if (m.index > 0 && NUMBERING_CONTEXT.test(text.slice(Math.max(0, m.index - 64), m.index))) continue;
    if (headingNumber(text, m.index, m.index + m[0].length)) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: "ipv4" });
  }
}

export function couldIpv4(f: Features): boolean {
  return f.dots >= 3 && f.digitRun >= 4 && f.length >= 7;
}
export const ipv4Detector = makeDetector("ipv4", couldIpv4, collectIpv4);
