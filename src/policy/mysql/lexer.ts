/**
 * MySQL/MariaDB lexical pre-pass: turns query text into the text the server actually executes,
 * with the same length (offsets stay valid), before any parser sees it.
 *
 * - Executable comments `/*!` `/*!NNNNN` (MySQL and MariaDB) and `/*M!` `/*M!NNNNNN` (MariaDB)
 *   ARE executed by the server (mysqldump writes `/*!40101 SET … *\/`; an agent may write
 *   `/*!50000 DROP TABLE t *\/`): their markers are blanked and their content KEPT, whatever
 *   the version number (a version above the server's is skipped by that server: classifying
 *   it anyway only over-approximates).
 * - Ordinary comments are blanked: `/* … *\/`, `/*+ optimizer hints *\/`, `# …` to end of line,
 *   and `-- ` (two dashes followed by whitespace or a control character, or at the end of the
 *   text; `1--1` is one minus minus one, not a comment).
 * - Literals and quoted identifiers are kept and skipped over exactly as the server's lexer
 *   does, so that a `;`, `#` or `/*` inside one is never taken for a separator or comment:
 *   `'…'` with `''` and (unless NO_BACKSLASH_ESCAPES) backslash escapes; `"…"` the same as a
 *   string, or as an identifier (no backslash escapes) under ANSI_QUOTES; backtick identifiers
 *   with ``` `` ```.
 *
 * The two sql_mode flags change how the same bytes are read, so the caller classifies the
 * text under every mode the session may be in (see classify.ts, `lexModes`).
 *
 * Refused (fail closed, never guessed): an unterminated comment, literal or quoted identifier
 * (the server reports a syntax error; the text after it might otherwise be read two ways), a
 * comment opened inside an executable comment, and a NUL character.
 */

export interface LexMode {
  /** sql_mode ANSI_QUOTES: `"…"` quotes an identifier rather than a string. */
  readonly ansiQuotes: boolean;
  /** sql_mode NO_BACKSLASH_ESCAPES: `\` is an ordinary character in strings. */
  readonly noBackslashEscapes: boolean;
}

export const DEFAULT_LEX_MODE: LexMode = { ansiQuotes: false, noBackslashEscapes: false };

export type LexResult =
  | {
      readonly ok: true;
      /** The executed text: same length as the input, comments blanked, executable comments opened. */
      readonly text: string;
      /**
       * The same text as the parser (dt-sql-parser's grammar, which reads the default sql_mode)
       * must see it to read it as the server does under `mode`: under NO_BACKSLASH_ESCAPES each
       * backslash in a string is doubled; under ANSI_QUOTES a `"…"` identifier becomes a
       * backtick one. Equal to `text` in the default mode.
       */
      readonly parserText: string;
      /** `text` with the content of every literal and quoted identifier replaced by `x`
       * (quotes kept): for lexical estimates (nesting depth) that must not look inside them. */
      readonly skeleton: string;
      /** Whether the text had executable comments (`/*!…*\/`, `/*M!…*\/`). */
      readonly executableComments: boolean;
      /** Whether any `"…"` token or backslash inside a quoted token occurs: the sql_mode flags
       * could read this text differently. */
      readonly modeSensitive: boolean;
    }
  | { readonly ok: false; readonly error: string; /** 0-based offset */ readonly offset: number };

function isSpaceOrControl(c: number): boolean {
  return c <= 32;
}

/** Blank [from, to) of `out` (an array of char codes), keeping newlines. */
function blank(out: number[], s: string, from: number, to: number): void {
  for (let k = from; k < to; k++) out[k] = s.charCodeAt(k) === 10 ? 10 : 32;
}

/** The executed text of `sql` under `mode` (see the module comment). Linear in the text's length. */
export function lexMysql(sql: string, mode: LexMode = DEFAULT_LEX_MODE): LexResult {
  const n = sql.length;
  const out: number[] = new Array<number>(n);
  for (let k = 0; k < n; k++) out[k] = sql.charCodeAt(k);
  let inExecutable = false;
  let executableStart = -1;
  let executableComments = false;
  let modeSensitive = false;
  /** Quoted tokens: [start, end) including quotes, and whether it is an identifier. */
  const quoted: { start: number; end: number; identifier: boolean; quote: number }[] = [];
  /** Offsets between the two dashes of a `--` that is not a comment (see parserText). */
  const dashes: number[] = [];
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = i + 1 < n ? sql.charCodeAt(i + 1) : -1;
    if (c === 0) return { ok: false, error: "statement contains a NUL character", offset: i };
    if (c === 39 || c === 34 || c === 96) {
      // '…', "…", `…`
      const identifier = c === 96 || (c === 34 && mode.ansiQuotes);
      const escapes = !identifier && !mode.noBackslashEscapes;
      if (c === 34) modeSensitive = true;
      let j = i + 1;
      let closed = false;
      while (j < n) {
        const d = sql.charCodeAt(j);
        if (d === 0) return { ok: false, error: "statement contains a NUL character", offset: j };
        if (d === 92 && c !== 96) {
          modeSensitive = true;
          if (escapes) {
            j += 2;
            continue;
          }
        }
        if (d === c) {
          if (j + 1 < n && sql.charCodeAt(j + 1) === c) {
            j += 2;
            continue;
          }
          closed = true;
          j++;
          break;
        }
        j++;
      }
      if (!closed) return { ok: false, error: `unterminated ${identifier ? "quoted identifier" : "string literal"}`, offset: i };
      quoted.push({ start: i, end: j, identifier, quote: c });
      i = j;
    } else if (c === 47 && next === 42) {
      // /* … */, /*! … */, /*M! … */, /*+ … */
      const bang = i + 2 < n && sql.charCodeAt(i + 2) === 33;
      const mBang = i + 3 < n && (sql.charCodeAt(i + 2) === 77 || sql.charCodeAt(i + 2) === 109) && sql.charCodeAt(i + 3) === 33;
      if (inExecutable) return { ok: false, error: "comment inside an executable comment", offset: i };
      if (bang || mBang) {
        let j = i + (bang ? 3 : 4);
        // MySQL: exactly 5 digits; MariaDB also 6 (/*M!100100). Any run of digits is the version.
        while (j < n && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 57) j++;
        blank(out, sql, i, j);
        inExecutable = true;
        executableStart = i;
        executableComments = true;
        i = j;
      } else {
        const end = sql.indexOf("*/", i + 2);
        if (end < 0) return { ok: false, error: "unterminated comment", offset: i };
        blank(out, sql, i, end + 2);
        i = end + 2;
      }
    } else if (c === 42 && next === 47 && inExecutable) {
      blank(out, sql, i, i + 2);
      inExecutable = false;
      i += 2;
    } else if (c === 45 && next === 45 && !(i + 2 >= n || isSpaceOrControl(sql.charCodeAt(i + 2)))) {
      // `--1` is minus minus one for the server; the grammar's lexer would read a comment.
      dashes.push(i + 1);
      i += 2;
    } else if (c === 35 || (c === 45 && next === 45 && (i + 2 >= n || isSpaceOrControl(sql.charCodeAt(i + 2))))) {
      // # … and -- … to the end of the line. Inside an executable comment the server's lexer
      // reads them the same way (the rest of the line, possibly including the closing marker,
      // is a comment): refuse rather than guess which.
      const nl = sql.indexOf("\n", i);
      const end = nl < 0 ? n : nl;
      if (inExecutable && sql.slice(i, end).includes("*/")) return { ok: false, error: "line comment across the end of an executable comment", offset: i };
      blank(out, sql, i, end);
      i = end;
    } else {
      i++;
    }
  }
  if (inExecutable) return { ok: false, error: "unterminated executable comment", offset: executableStart };
  const text = fromCodes(out);
  const skel = out.slice();
  for (const q of quoted) for (let k = q.start + 1; k < q.end - 1; k++) skel[k] = 120;
  return { ok: true, text, parserText: parserText(text, quoted, dashes, mode), skeleton: fromCodes(skel), executableComments, modeSensitive };
}

/** See LexResult.parserText. */
function parserText(text: string, quoted: readonly { start: number; end: number; identifier: boolean; quote: number }[], dashes: readonly number[], mode: LexMode): string {
  if (!mode.ansiQuotes && !mode.noBackslashEscapes && dashes.length === 0) return text;
  const edits: { start: number; end: number; text: string }[] = dashes.map((d) => ({ start: d, end: d, text: " " }));
  for (const q of quoted) {
    const body = text.slice(q.start + 1, q.end - 1);
    let rewritten: string | undefined;
    if (q.quote === 34 && q.identifier) {
      // "a""b" → `a"b`, with backticks doubled.
      rewritten = "`" + body.split('""').join('"').split("`").join("``") + "`";
    } else if (!q.identifier && mode.noBackslashEscapes && body.includes("\\")) {
      rewritten = String.fromCharCode(q.quote) + body.split("\\").join("\\\\") + String.fromCharCode(q.quote);
    }
    if (rewritten !== undefined) edits.push({ start: q.start, end: q.end, text: rewritten });
  }
  edits.sort((a, b) => a.start - b.start);
  const parts: string[] = [];
  let at = 0;
  for (const e of edits) {
    parts.push(text.slice(at, e.start), e.text);
    at = e.end;
  }
  parts.push(text.slice(at));
  return parts.join("");
}

/** String.fromCharCode with a spread is bounded by the engine's argument limit: build in pieces. */
function fromCodes(codes: readonly number[]): string {
  let s = "";
  for (let k = 0; k < codes.length; k += 8192) s += String.fromCharCode(...codes.slice(k, k + 8192));
  return s;
}
