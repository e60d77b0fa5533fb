/**
 * The one-pass prefilter of the masking hot path.
 *
 * Almost every value a gateway sees is clean (ids, short words, numbers, timestamps). Instead of
 * running each detector over each value, one loop over the value's characters (or UTF-8 bytes,
 * without decoding) fills a small `Features` summary: counts of a few ASCII characters and the
 * longest runs of digit-like and token-like characters. Every detector states a *necessary*
 * condition on that summary (`couldMatchFeatures`); only when one holds does the value get
 * decoded and scanned. Soundness (a detector never finds a match in text whose features it
 * rejected) is checked by a property test in detectors.test.ts.
 *
 * Only ASCII is classified: every detector matches ASCII structure, so a UTF-16 string and its
 * UTF-8 bytes yield the same summary (bytes/units ≥ 0x80 only set `nonAscii` and break runs).
 */

const DIGIT = 1;
const UPPER = 2;
const LOWER = 4;
/** Base64 / base64url / hex alphabet: [A-Za-z0-9+/=_-]. */
const TOKEN = 8;
/** Characters that may sit between the digit groups of a card, phone, SSN or IPv4: " -.()/". */
const RUNSEP = 16;
/** TOKEN plus '.' and '~': JWTs and bearer tokens. */
const TOKDOT = 32;
/** Counted individually (see the switch below). */
const SPECIAL = 64;
/** Any byte or code unit ≥ 0x80 (string code units above 255 use entry 255). */
const NONASCII = 128;

const CLASS = new Uint8Array(256);
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT | TOKEN | TOKDOT;
for (let c = 65; c <= 90; c++) CLASS[c] = UPPER | TOKEN | TOKDOT;
for (let c = 97; c <= 122; c++) CLASS[c] = LOWER | TOKEN | TOKDOT;
for (let c = 128; c <= 255; c++) CLASS[c] = NONASCII;
for (const ch of "+/=_-") CLASS[ch.charCodeAt(0)] = TOKEN | TOKDOT;
for (const ch of ".~") CLASS[ch.charCodeAt(0)] = TOKDOT;
for (const ch of " -.()/") CLASS[ch.charCodeAt(0)] = (CLASS[ch.charCodeAt(0)] ?? 0) | RUNSEP;
for (const ch of "@.-+() \t=:'/") CLASS[ch.charCodeAt(0)] = (CLASS[ch.charCodeAt(0)] ?? 0) | SPECIAL;

/** A summary of one value, filled in place (one instance is reused per masker: no allocation). */
export interface Features {
  /** Characters (string path) or bytes (byte path) summarised. */
  length: number;
  digits: number;
  upper: number;
  lower: number;
  /**
   * Longest run of digits in which gaps of at most two characters from " -.()/" do not break
   * the run: "4111 1111 1111 1111" → 16, "+1 (415) 555-2671" → 11, "10.0.0.1" → 5. A digit
   * group glued to a letter on its left is not counted ("a716-4466" → 4).
   */
  digitRun: number;
  /** Longest run of [A-Za-z0-9+/=_-]. */
  tokenRun: number;
  /** Longest run of [A-Za-z0-9+/=_.~-]. */
  tokenDotRun: number;
  at: number;
  dots: number;
  dashes: number;
  plus: number;
  parens: number;
  /** Spaces and tabs. */
  spaces: number;
  /** '=' and ':' */
  assigns: number;
  /** Single quotes. */
  quotes: number;
  slashes: number;
  /**
   * Longest unbroken run of digits that starts with '0' (no separators): a compact national
   * phone number ("0786707330"); ids and epoch times rarely start with 0.
   */
  zeroRun: number;
  nonAscii: boolean;
}

export function newFeatures(): Features {
  return {
    length: 0,
    digits: 0,
    upper: 0,
    lower: 0,
    digitRun: 0,
    tokenRun: 0,
    tokenDotRun: 0,
    at: 0,
    dots: 0,
    dashes: 0,
    plus: 0,
    parens: 0,
    spaces: 0,
    assigns: 0,
    quotes: 0,
    slashes: 0,
    zeroRun: 0,
    nonAscii: false,
  };
}

// The two scanners below are the same loop over two element accessors. They are written out
// twice on purpose: a shared loop taking an accessor callback costs a call per character on the
// hottest path of the gateway.

/** Summarise `text[0, end)` into `f`. */
export function scanText(text: string, end: number, f: Features): Features {
  let digits = 0, upper = 0, lower = 0, at = 0, dots = 0, dashes = 0, plus = 0, parens = 0;
  let spaces = 0, assigns = 0, quotes = 0, slashes = 0, nonAscii = 0;
  let plain = 0, plainZero = false, maxZero = 0;
  let run = 0, gap = 0, maxRun = 0, tok = 0, maxTok = 0, td = 0, maxTd = 0;
  let prev = 0, glued = false;
  for (let i = 0; i < end; i++) {
    const u = text.charCodeAt(i);
    const c = u > 255 ? 255 : u;
    const k = CLASS[c] ?? 0;
    if ((k & DIGIT) !== 0) {
      digits++;
      if (plain++ === 0) plainZero = c === 48;
      if (plainZero && plain > maxZero) maxZero = plain;
      // A digit group glued to a letter on its left ("a716", "x4111") starts no card, phone,
      // SSN or IPv4: it does not count, and the run restarts after it.
      if (glued || (run === 0 && (prev & (UPPER | LOWER)) !== 0)) glued = true;
      else {
        gap = 0;
        if (++run > maxRun) maxRun = run;
      }
    } else {
      plain = 0;
      glued = false;
      if ((k & RUNSEP) !== 0 && run > 0 && gap < 2) {
        gap++;
      } else {
        run = 0;
        gap = 0;
      }
    }
    prev = k;
    if ((k & TOKEN) !== 0) {
      if (++tok > maxTok) maxTok = tok;
    } else tok = 0;
    if ((k & TOKDOT) !== 0) {
      if (++td > maxTd) maxTd = td;
    } else td = 0;
    if ((k & UPPER) !== 0) upper++;
    else if ((k & LOWER) !== 0) lower++;
    else if ((k & SPECIAL) !== 0) {
      switch (c) {
        case 64: at++; break; // @
        case 46: dots++; break; // .
        case 45: dashes++; break; // -
        case 43: plus++; break; // +
        case 40: case 41: parens++; break; // ( )
        case 32: case 9: spaces++; break; // space, tab
        case 61: case 58: assigns++; break; // = :
        case 39: quotes++; break; // '
        case 47: slashes++; break; // /
      }
    } else if (k === NONASCII) nonAscii++;
  }
  f.length = end;
  f.digits = digits;
  f.upper = upper;
  f.lower = lower;
  f.digitRun = maxRun;
  f.tokenRun = maxTok;
  f.tokenDotRun = maxTd;
  f.at = at;
  f.dots = dots;
  f.dashes = dashes;
  f.plus = plus;
  f.parens = parens;
  f.spaces = spaces;
  f.assigns = assigns;
  f.quotes = quotes;
  f.slashes = slashes;
  f.zeroRun = maxZero;
  f.nonAscii = nonAscii > 0;
  return f;
}

/**
 * Summarise `buf[start, end)` (UTF-8 or any ASCII-compatible encoding) into `f`.
 * A deliberate hot-path twin of scanText: one loop over string code units, one over bytes,
 * because a shared loop taking an accessor costs a call per character on every value of every
 * row. A property test (prefilter.test.ts) keeps the two equal.
 */
export function scanBytes(buf: Uint8Array, end: number, f: Features, start = 0): Features {
  let digits = 0, upper = 0, lower = 0, at = 0, dots = 0, dashes = 0, plus = 0, parens = 0;
  let spaces = 0, assigns = 0, quotes = 0, slashes = 0, nonAscii = 0;
  let plain = 0, plainZero = false, maxZero = 0;
  let run = 0, gap = 0, maxRun = 0, tok = 0, maxTok = 0, td = 0, maxTd = 0;
  let prev = 0, glued = false;
  for (let i = start; i < end; i++) {
    const c = buf[i] ?? 0;
    const k = CLASS[c] ?? 0;
    if ((k & DIGIT) !== 0) {
      digits++;
      if (plain++ === 0) plainZero = c === 48;
      if (plainZero && plain > maxZero) maxZero = plain;
      // A digit group glued to a letter on its left ("a716", "x4111") starts no card, phone,
      // SSN or IPv4: it does not count, and the run restarts after it.
      if (glued || (run === 0 && (prev & (UPPER | LOWER)) !== 0)) glued = true;
      else {
        gap = 0;
        if (++run > maxRun) maxRun = run;
      }
    } else {
      plain = 0;
      glued = false;
      if ((k & RUNSEP) !== 0 && run > 0 && gap < 2) {
        gap++;
      } else {
        run = 0;
        gap = 0;
      }
    }
    prev = k;
    if ((k & TOKEN) !== 0) {
      if (++tok > maxTok) maxTok = tok;
    } else tok = 0;
    if ((k & TOKDOT) !== 0) {
      if (++td > maxTd) maxTd = td;
    } else td = 0;
    if ((k & UPPER) !== 0) upper++;
    else if ((k & LOWER) !== 0) lower++;
    else if ((k & SPECIAL) !== 0) {
      switch (c) {
        case 64: at++; break; // @
        case 46: dots++; break; // .
        case 45: dashes++; break; // -
        case 43: plus++; break; // +
        case 40: case 41: parens++; break; // ( )
        case 32: case 9: spaces++; break; // space, tab
        case 61: case 58: assigns++; break; // = :
        case 39: quotes++; break; // '
        case 47: slashes++; break; // /
      }
    } else if (k === NONASCII) nonAscii++;
  }
  f.length = end - start;
  f.digits = digits;
  f.upper = upper;
  f.lower = lower;
  f.digitRun = maxRun;
  f.tokenRun = maxTok;
  f.tokenDotRun = maxTd;
  f.at = at;
  f.dots = dots;
  f.dashes = dashes;
  f.plus = plus;
  f.parens = parens;
  f.spaces = spaces;
  f.assigns = assigns;
  f.quotes = quotes;
  f.slashes = slashes;
  f.zeroRun = maxZero;
  f.nonAscii = nonAscii > 0;
  return f;
}
