import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { makeDetector } from "./overlaps.js";

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

export function couldIpv4(f: Features): boolean {
  return f.dots >= 3 && f.digitRun >= 4 && f.length >= 7;
}
export const ipv4Detector = makeDetector("ipv4", couldIpv4, collectIpv4);
