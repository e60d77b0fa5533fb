/**
 * The lexical half of the shell parser (./parse.ts): words with quote removal, and the
 * expansions inside them ($…, ${…}, $(…), `…`, $((…)), <(…)), whose commands the grammar half
 * parses. Shared types and bounds live here so that parse.ts depends on this file, never the
 * other way round.
 */

export const MAX_DEPTH = 24;

/** One shell word after quote removal. */
export interface Word {
  /** The text with quotes removed; dynamic parts are replaced by DYNAMIC_MARK. */
  readonly text: string;
  /** Some part is only known at run time ($x, $(…), `…`, ${…}, $((…))). */
  readonly dynamic: boolean;
  /** Unquoted glob characters or brace expansion: the shell may turn it into other words. */
  readonly expands: boolean;
  /** The word looked like NAME=value (an assignment when it comes before the command name). */
  readonly assignment: boolean;
}

export const DYNAMIC_MARK = "\u2026"; // "…": never produced by quote removal of plain input

export interface RawCommand {
  readonly words: readonly Word[];
  /** Standard input comes from a here-document or here-string. */
  readonly stdinFromHere: boolean;
  /** Files named by the command's redirections (`cat < /etc/shadow`): matched by refusing argument policies. */
  readonly redirects?: readonly string[];
}

export interface ParsedScript {
  readonly commands: RawCommand[];
  /** Reasons some part cannot be known before it runs (function definitions, …). */
  readonly unknowable: string[];
  /** Facts about values the shell may evaluate as arithmetic (see ArithmeticFacts). */
  readonly facts: ArithmeticFacts;
}

/**
 * Bash evaluates the *values* of variables named in arithmetic (`$((x))`, `((x))`, `[[ $x -eq
 * 1 ]]`, array subscripts, `${s:off}`, `let`, `declare -i`), and an array subscript inside such a
 * value runs command substitutions: `x='a[$(rm -rf ~)]'; echo $((x))` runs rm. The analysis
 * records whether arithmetic may see variables and whether some value may hide code.
 */
export interface ArithmeticFacts {
  /** Some arithmetic context names a variable or expands a parameter. */
  arithmetic: boolean;
  /** Some quoted or escaped text contains `$(`, `$[` or a backquote (code kept as data). */
  literalCode: boolean;
}

export class ShellParseError extends Error {
  override readonly name = "ShellParseError";
}

export const META = new Set([" ", "\t", "\n", ";", "&", "|", "(", ")", "<", ">"]);

export interface Ctx {
  readonly out: ParsedScript;
  depth: number;
}

/** Reads words and expansions from `src` at `pos`; the grammar (./parse.ts) supplies the rest. */
export abstract class WordReader {
  pos = 0;

  constructor(
    readonly src: string,
    readonly ctx: Ctx,
  ) {
    if (ctx.depth > MAX_DEPTH) throw new ShellParseError("nesting is too deep");
  }

  atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  peek(n = 0): string {
    return this.src.charAt(this.pos + n);
  }

  startsWith(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  abstract skipBlanksAndNewlines(): void;
  /** See Parser.parseList. */
  abstract parseList(stops: ReadonlySet<string>, closer: string | undefined): string | undefined;
  /** A parser one level deeper over the same source, positioned here. */
  protected abstract nested(): WordReader;
  /** Parse `inner` (a backquoted command) as a script of its own, one level deeper. */
  protected abstract subScript(inner: string): void;

  /** Skip an arithmetic expression up to `end`; substitutions in it run, so parse them. */
  protected skipArithmetic(end: string): void {
    const from = this.pos;
    const noteNames = (): void => {
      if (/[A-Za-z_$]/.test(this.src.slice(from, this.pos))) this.ctx.out.facts.arithmetic = true;
    };
    let depth = 0;
    while (!this.atEnd()) {
      const c = this.peek();
      if (depth === 0 && this.startsWith(end)) {
        noteNames();
        this.pos += end.length;
        return;
      }
      if (c === "(") depth++;
      else if (c === ")") depth--;
      if (c === "$" || c === "`") {
        this.readDollarOrBacktick();
        continue;
      }
      if (c === "'" || c === '"') {
        this.readWord();
        continue;
      }
      this.pos++;
    }
    throw new ShellParseError("unclosed arithmetic expression");
  }

  protected lastWordQuoted = false;

  /** Read one word (quote removal, expansions parsed). */
  readWord(): Word {
    let text = "";
    let dynamic = false;
    let expands = false;
    let quoted = false;
    const start = this.pos;
    let braceOpen = 0;
    let braceComma = false;
    let bracketOpen = false;
    for (;;) {
      const c = this.peek();
      if (c === "") break;
      if (c === "(" && /^[A-Za-z_][A-Za-z0-9_]*\+?=$/.test(this.src.slice(start, this.pos))) {
        // NAME=( elements… ): an array assignment; its elements are words (substitutions run).
        this.pos++;
        const elements: Word[] = [];
        for (;;) {
          this.skipBlanksAndNewlines();
          if (this.peek() === ")") {
            this.pos++;
            break;
          }
          if (this.atEnd()) throw new ShellParseError("unclosed array assignment");
          elements.push(this.readWord());
        }
        text += `(${elements.map((e) => e.text).join(" ")})`;
        if (elements.some((e) => e.dynamic || e.expands)) dynamic = true;
        continue;
      }
      if (META.has(c)) {
        // <( … ) and >( … ) inside a word: process substitution.
        if ((c === "<" || c === ">") && this.peek(1) === "(") {
          this.pos += 2;
          const end = this.nested();
          if (end.parseList(new Set(), ")") !== ")") throw new ShellParseError("unclosed process substitution");
          this.pos = end.pos + 1;
          text += DYNAMIC_MARK;
          dynamic = true;
          continue;
        }
        break;
      }
      if (c === "\\") {
        const n = this.peek(1);
        if (n === "\n") {
          this.pos += 2;
          continue;
        }
        text += n;
        quoted = true;
        this.pos += 2;
        continue;
      }
      if (c === "'") {
        const close = this.src.indexOf("'", this.pos + 1);
        if (close < 0) throw new ShellParseError("unclosed single quote");
        text += this.src.slice(this.pos + 1, close);
        quoted = true;
        this.pos = close + 1;
        continue;
      }
      if (c === '"') {
        this.pos++;
        quoted = true;
        const r = this.#readDoubleQuoted();
        text += r.text;
        if (r.dynamic) dynamic = true;
        continue;
      }
      if (c === "$" && this.peek(1) === "'") {
        this.pos += 2;
        text += this.#readAnsiC();
        quoted = true;
        continue;
      }
      if (c === "$" && this.peek(1) === '"') {
        this.pos += 1;
        continue; // $"…" is "…" (locale translation)
      }
      if (c === "$" || c === "`") {
        const before = this.pos;
        const d = this.readDollarOrBacktick();
        if (d) {
          text += DYNAMIC_MARK;
          dynamic = true;
        } else {
          text += this.src.slice(before, this.pos);
        }
        continue;
      }
      if (c === "*" || c === "?") expands = true;
      if (c === "[") bracketOpen = true;
      if (c === "]" && bracketOpen) expands = true;
      if ((c === "@" || c === "+" || c === "!") && this.peek(1) === "(") throw new ShellParseError("extended globs are not supported");
      if (c === "{") braceOpen++;
      if (c === "," && braceOpen > 0) braceComma = true;
      if (c === "." && this.peek(1) === "." && braceOpen > 0) braceComma = true;
      if (c === "}" && braceOpen > 0) {
        braceOpen--;
        if (braceComma) expands = true;
      }
      text += c;
      this.pos++;
    }
    if (this.pos === start) throw new ShellParseError(`expected a word at offset ${this.pos}`);
    this.lastWordQuoted = quoted;
    const eq = /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/.test(this.src.slice(start, this.pos));
    if (quoted && /\$\(|\$\[|`/.test(text)) this.ctx.out.facts.literalCode = true;
    if (eq && this.src.slice(start, this.pos).includes("[")) this.ctx.out.facts.arithmetic = true;
    return { text, dynamic, expands, assignment: eq };
  }

  #readDoubleQuoted(): { text: string; dynamic: boolean } {
    let text = "";
    let dynamic = false;
    for (;;) {
      const c = this.peek();
      if (c === "") throw new ShellParseError("unclosed double quote");
      if (c === '"') {
        this.pos++;
        return { text, dynamic };
      }
      if (c === "\\") {
        const n = this.peek(1);
        if (n === "\n") {
          this.pos += 2;
          continue;
        }
        if (n === "$" || n === "`" || n === '"' || n === "\\") {
          text += n;
          this.pos += 2;
          continue;
        }
        text += c;
        this.pos++;
        continue;
      }
      if (c === "$" || c === "`") {
        const before = this.pos;
        if (this.readDollarOrBacktick()) {
          text += DYNAMIC_MARK;
          dynamic = true;
        } else text += this.src.slice(before, this.pos);
        continue;
      }
      text += c;
      this.pos++;
    }
  }

  /** $'…' with C escapes resolved. */
  #readAnsiC(): string {
    let text = "";
    for (;;) {
      const c = this.peek();
      if (c === "") throw new ShellParseError("unclosed $'");
      this.pos++;
      if (c === "'") return text;
      if (c !== "\\") {
        text += c;
        continue;
      }
      const e = this.peek();
      this.pos++;
      const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", a: "\x07", b: "\b", e: "\x1b", E: "\x1b", f: "\f", v: "\v", "\\": "\\", "'": "'", '"': '"', "?": "?" };
      const s = simple[e];
      if (s !== undefined) {
        text += s;
        continue;
      }
      if (e === "x") {
        const m = /^[0-9a-fA-F]{1,2}/.exec(this.src.slice(this.pos, this.pos + 2));
        if (m === null) {
          text += "\\x";
          continue;
        }
        text += String.fromCharCode(parseInt(m[0], 16));
        this.pos += m[0].length;
        continue;
      }
      if (e === "u" || e === "U") {
        const m = /^[0-9a-fA-F]{1,8}/.exec(this.src.slice(this.pos, this.pos + (e === "u" ? 4 : 8)));
        if (m === null) {
          text += `\\${e}`;
          continue;
        }
        const cp = parseInt(m[0], 16);
        text += cp <= 0x10ffff ? String.fromCodePoint(cp) : "\ufffd";
        this.pos += m[0].length;
        continue;
      }
      if (/[0-7]/.test(e)) {
        const m = /^[0-7]{1,2}/.exec(this.src.slice(this.pos, this.pos + 2));
        const digits = e + (m?.[0] ?? "");
        text += String.fromCharCode(parseInt(digits, 8) & 0xff);
        this.pos += m?.[0].length ?? 0;
        continue;
      }
      if (e === "c") {
        // \cX: a control character
        const x = this.peek();
        this.pos++;
        text += String.fromCharCode(x.charCodeAt(0) & 0x1f);
        continue;
      }
      text += `\\${e}`;
    }
  }

  /**
   * At `$` or a backtick: read the expansion, parsing any commands it runs. Returns whether it
   * was an expansion (dynamic) or a literal `$`.
   */
  readDollarOrBacktick(): boolean {
    const c = this.peek();
    if (c === "`") {
      this.pos++;
      let inner = "";
      for (;;) {
        const d = this.peek();
        if (d === "") throw new ShellParseError("unclosed backquote");
        this.pos++;
        if (d === "`") break;
        if (d === "\\" && (this.peek() === "`" || this.peek() === "\\" || this.peek() === "$")) {
          inner += this.peek();
          this.pos++;
          continue;
        }
        inner += d;
      }
      this.subScript(inner);
      return true;
    }
    // c === "$"
    const n = this.peek(1);
    if (n === "(" && this.peek(2) === "(") {
      this.pos += 3;
      this.skipArithmetic("))");
      return true;
    }
    if (n === "(") {
      this.pos += 2;
      const end = this.parseList(new Set(), ")");
      if (end !== ")") throw new ShellParseError("unclosed $(");
      this.pos++;
      return true;
    }
    if (n === "[") {
      this.pos += 2;
      this.skipArithmetic("]");
      return true;
    }
    if (n === "{") {
      this.pos += 2;
      // ${…}: parameter expansion; operators like ${x:-word} may hold quotes and substitutions.
      // Subscripts (${a[i]}) and offsets (${s:i:n}) are arithmetic.
      const from = this.pos;
      let depth = 1;
      while (depth > 0) {
        const d = this.peek();
        if (d === "") throw new ShellParseError("unclosed ${");
        if (d === "}") {
          depth--;
          this.pos++;
          continue;
        }
        if (d === "{") depth++;
        if (d === "\\") {
          this.pos += 2;
          continue;
        }
        if (d === "'") {
          const close = this.src.indexOf("'", this.pos + 1);
          if (close < 0) throw new ShellParseError("unclosed single quote");
          this.pos = close + 1;
          continue;
        }
        if (d === '"') {
          this.pos++;
          this.#readDoubleQuoted();
          continue;
        }
        if (d === "$" || d === "`") {
          this.readDollarOrBacktick();
          continue;
        }
        this.pos++;
      }
      const inner = this.src.slice(from, this.pos);
      if (/\[[^\]]*[A-Za-z_$]/.test(inner) || /:(?![-=+?])[^}]*[A-Za-z_$]/.test(inner)) this.ctx.out.facts.arithmetic = true;
      // ${!ref} resolves a name held in a value (its subscript is evaluated); ${x@P} expands a
      // value like a prompt, running the substitutions in it (second bypass corpus).
      if (inner.startsWith("!")) this.ctx.out.facts.arithmetic = true;
      if (/@P\}$/.test(inner)) this.ctx.out.unknowable.push("${…@P} runs substitutions held in a variable's value");
      return true;
    }
    if (/[A-Za-z_]/.test(n)) {
      this.pos++;
      while (/[A-Za-z0-9_]/.test(this.peek())) this.pos++;
      return true;
    }
    if (/[0-9@*#?$!-]/.test(n) && n !== "") {
      this.pos += 2;
      return true;
    }
    this.pos++;
    return false;
  }
}
