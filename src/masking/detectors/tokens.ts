import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { isDigit, isUpper, isB64Url } from "./chars.js";
import { makeDetector } from "./overlaps.js";

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
export function couldAws(f: Features): boolean {
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

export function couldJwt(f: Features): boolean {
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

export function couldPrivateKey(f: Features): boolean {
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
// "+/=" so that prose like "basic authentication" is left alone; Basic's must be base64 of
// mixed case).
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
    // Basic carries base64 (RFC 7617): no '.', '~' or '-', and mixed case, so that prose such
    // as "basic Statements43.5.1." or "basic language+country" is left alone.
    if (scheme === "basic" && (/[._~-]/.test(credential) || !/[a-z]/.test(credential) || !/[A-Z]/.test(credential))) continue;
    const end = m.index + m[0].length;
    out.push({ start: end - credential.length, end, kind: "api_key" });
  }
}

export function couldApiKey(f: Features): boolean {
  return f.tokenDotRun >= 15;
}
export const apiKeyDetector = makeDetector("api_key", couldApiKey, collectApiKeys);
