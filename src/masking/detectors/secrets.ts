import type { Features } from "../prefilter.js";
import type { Match } from "./base.js";
import { isDigit, isUpper, isLower, isAlpha, isWord, isB64Url, isSpaceOrTab, isWhitespace } from "./chars.js";
import { makeDetector } from "./overlaps.js";

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
  // settings about authentication rather than credentials: auth_delay.milliseconds, --auth-host
  "milliseconds", "seconds", "ms", "delay", "host", "local", "port", "mode", "level", "methods",
  "retries", "attempts", "limit", "size", "interval", "provider", "providers", "mechanism", "encryption",
  "callback", "handler", "option", "options", "flag", "strategy", "store", "storage",
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

/** A plain word: letters, '-' and '_' only ("authmethod", "scram-sha-256" is not: it has digits). */
const PLAIN_WORD = /^[A-Za-z][A-Za-z_-]{0,39}$/;
/** `ident(.ident)*(…)` with an optional trailing ',' or ';'. */
const CODE_CALL = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\([^)]{0,64}\)[,;]?$/;
/** Key words that hold a credential even as a command-line flag: `--password=…`, `--token=…`. */
const FLAG_CREDENTIAL = /pass|pwd|secret|token|key|cookie|credential/i;

/**
 * Values that only look assigned to a secret: `--auth-host=authmethod`, `-auth=trust` (a
 * command-line flag whose unquoted value is a plain word names a setting, as usage text does;
 * `--password=…` and `--token=…` stay secrets whatever their value), and an unquoted function
 * call in code (`password: getPassword(),`).
 */
function flagWord(text: string, keyStart: number, keyEnd: number, vs: number, ve: number, quoted: boolean): boolean {
  if (quoted) return false;
  // An unquoted call in code (`password: faker.internet.password(),`) refers to a value.
  if (CODE_CALL.test(text.slice(vs, ve))) return true;
  // Key characters include '-': a flag's key starts with it ("--auth-host"), or holds "--"
  // where usage text runs into it ("authmethod--auth").
  const key = text.slice(keyStart, keyEnd);
  if (key.charCodeAt(0) !== 45 && !key.includes("--")) return false;
  if (FLAG_CREDENTIAL.test(key)) return false;
  return PLAIN_WORD.test(text.slice(vs, ve));
}

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
  if (ve > vs && !(ve - vs <= 9 && PLACEHOLDER_VALUES.has(text.slice(vs, ve).toLowerCase())) && !flagWord(text, keyStart, keyEnd, vs, ve, isQuote(q))) {
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
    // A token right before '@' is an address's local part ("Ana_GarciaLeal49@…"): email's, not a secret.
    if (j - i >= ENTROPY_MIN_LENGTH && text.charCodeAt(j) !== 64) {
      if (hasSlash(text, i, j) && (text.charCodeAt(i) === 47 || inUrl(text, i))) urlSegments(text, i, j, out);
      else if (looksLikeSecretToken(text, i, j)) out.push({ start: i, end: e, kind: "secret" });
    }
    i = e;
  }
}

function hasSlash(text: string, i: number, j: number): boolean {
  for (let k = i; k < j; k++) if (text.charCodeAt(k) === 47) return true;
  return false;
}

/** Is `i` inside a URL: does "://" occur in the same word before it (looking back 256 characters)? */
function inUrl(text: string, i: number): boolean {
  for (let k = i - 1; k >= 2 && i - k <= 256; k--) {
    const c = text.charCodeAt(k);
    if (isWhitespace(c) || c === 34 || c === 39 || c === 40 || c === 60) return false;
    if (c === 47 && text.charCodeAt(k - 1) === 47 && text.charCodeAt(k - 2) === 58) return true;
  }
  return false;
}

/**
 * A token in a URL's path ("shields.io/badge/license-Apache_2.0") or an absolute file path
 * ("/usr/share/postgresql/fix-CVE-2024-4317"): each '/'-separated segment is judged on its own, so that a path of words is not one "random" token, while a random segment
 * (a capability id, a webhook secret) still is.
 */
function urlSegments(text: string, i: number, j: number, out: Match[]): void {
  let s = i;
  while (s < j) {
    let e = s;
    while (e < j && text.charCodeAt(e) !== 47) e++;
    if (e - s >= ENTROPY_MIN_LENGTH && looksLikeSecretToken(text, s, e)) out.push({ start: s, end: e, kind: "secret" });
    s = e + 1;
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

export function couldSecret(f: Features): boolean {
  return f.assigns > 0 || f.quotes > 0 || f.tokenRun >= ENTROPY_MIN_LENGTH;
}
export const secretDetector = makeDetector("secret", couldSecret, collectGenericSecrets);
