/**
 * Request targets (RFC 9112 §3.2 origin-form) split into the connection prefix and the path
 * after it, and that path normalized the way policies see it (RFC 3986 §5.2.4 dot segments,
 * §6.2.2 percent-decoding). The gateway forwards the path it judged, re-encoded from the
 * normalized segments, so what the target receives is what the policy matched: no `..`, no
 * `//`, no double encoding, no encoded `/`. Matrix parameters (`;x=y`, a Java servlet habit)
 * are dropped for matching and kept, re-encoded, in the forwarded segment.
 */

export interface SplitTarget {
  /** The first path segment, as sent (connection names need no encoding). */
  readonly connection: string;
  /** The raw path after the prefix, starting with `/`. */
  readonly rest: string;
  /** The raw query without `?`. */
  readonly rawQuery: string;
}

/** Longest request target accepted (bytes). */
export const MAX_TARGET_LENGTH = 16 * 1024;
/** Most path segments accepted. */
export const MAX_SEGMENTS = 256;

export function splitTarget(target: string, byPrefix: boolean): SplitTarget | undefined {
  if (!target.startsWith("/") || target.length > MAX_TARGET_LENGTH) return undefined;
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? "" : target.slice(q + 1);
  if (!byPrefix) return { connection: "", rest: path, rawQuery };
  const slash = path.indexOf("/", 1);
  const connection = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const rest = slash < 0 ? "/" : path.slice(slash);
  return { connection, rest, rawQuery };
}

export type NormalizedPath = { readonly ok: true; readonly normalized: string; readonly forward: string } | { readonly ok: false; readonly reason: string };

const HEX2 = /%[0-9a-fA-F]{2}/;

/** Characters kept literally in a forwarded segment (RFC 3986 pchar minus `;`, which separates params). */
function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/%(3A|40|2C|3D|2B|24|26|21|27|28|29|2A)/gi, (m) => decodeURIComponent(m));
}

function decode(s: string): string | undefined {
  if (!s.includes("%")) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

export function normalizePath(raw: string): NormalizedPath {
  if (!raw.startsWith("/")) return { ok: false, reason: "the path must start with /" };
  if (raw.includes("\\")) return { ok: false, reason: "backslashes are not allowed in the path" };
  const parts = raw.split("/");
  if (parts.length > MAX_SEGMENTS) return { ok: false, reason: "the path has too many segments" };
  const stack: { name: string; forward: string }[] = [];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] ?? "";
    if (part === "") continue;
    const semi = part.indexOf(";");
    const rawName = semi < 0 ? part : part.slice(0, semi);
    const rawParams = semi < 0 ? "" : part.slice(semi + 1);
    const name = decode(rawName);
    const params = decode(rawParams);
    if (name === undefined || params === undefined) return { ok: false, reason: "the path has an invalid percent-encoding" };
    for (const d of [name, params]) {
      if (/[/\\]/.test(d) || hasControl(d)) return { ok: false, reason: "the path has an encoded slash, backslash or control character" };
      if (HEX2.test(d)) return { ok: false, reason: "the path is percent-encoded twice" };
    }
    // `;` may itself arrive encoded in the name: it separates parameters for some servers.
    const semi2 = name.indexOf(";");
    const matchName = semi2 < 0 ? name : name.slice(0, semi2);
    if (matchName === "." || matchName === "") continue;
    if (matchName === "..") {
      if (stack.length === 0) return { ok: false, reason: "the path climbs above its root" };
      stack.pop();
      continue;
    }
    const paramPart = semi < 0 ? "" : `;${rawParams.split(";").map((p) => encodeSegment(decode(p) ?? "")).join(";")}`;
    stack.push({ name: matchName, forward: encodeSegment(name) + paramPart });
  }
  const trailing = raw.length > 1 && raw.endsWith("/") && stack.length > 0 ? "/" : "";
  return {
    ok: true,
    normalized: `/${stack.map((s) => s.name).join("/")}${trailing}`,
    forward: `/${stack.map((s) => s.forward).join("/")}${trailing}`,
  };
}

/** Decoded query pairs (application/x-www-form-urlencoded rules), bounded. */
export function parseQuery(raw: string): [string, string][] {
  if (raw === "") return [];
  const out: [string, string][] = [];
  for (const [k, v] of new URLSearchParams(raw)) {
    out.push([k, v]);
    if (out.length >= 1000) break;
  }
  return out;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
