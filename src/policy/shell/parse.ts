/**
 * A conservative parser for the bash command language, down to simple commands and their words.
 *
 * Why our own: `sh-syntax` (mvdan/sh compiled to WASM) is the authority on whether a string is
 * valid bash (./analyze.ts runs it first and refuses what it rejects), but its JSON AST carries
 * only positions for commands, not their words. This parser extracts every simple command with
 * its words, including those nested in pipelines, lists, subshells, groups, if/while/for/case,
 * command and process substitutions, here-document bodies and `[[ … ]]`. Whatever it does not
 * understand is reported as `unknowable` (the caller fails closed), never guessed.
 *
 * Invariants: bounded recursion (MAX_DEPTH), linear scanning, no regex with backtracking over
 * the input. Words keep their static text (quotes removed, escapes resolved) and whether any
 * part is only known at run time (parameters, substitutions, globs, brace expansion).
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

const META = new Set([" ", "\t", "\n", ";", "&", "|", "(", ")", "<", ">"]);
const RESERVED_END = new Set(["then", "elif", "else", "fi", "do", "done", "esac", "}", "in"]);

interface RedirectInfo {
  v: boolean;
  target?: string;
}

interface Ctx {
  readonly out: ParsedScript;
  depth: number;
}

interface PendingHeredoc {
  readonly delimiter: string;
  readonly quoted: boolean;
  readonly stripTabs: boolean;
}

/** Parse a whole script. Throws ShellParseError on what it cannot follow. */
export function parseScript(src: string, depth = 0): ParsedScript {
  const out: ParsedScript = { commands: [], unknowable: [], facts: { arithmetic: false, literalCode: false } };
  const p = new Parser(src, { out, depth });
  p.parseList(new Set(), undefined);
  p.skipBlanksAndNewlines();
  if (!p.atEnd()) throw new ShellParseError(`unexpected "${p.peek()}" at offset ${p.pos}`);
  return out;
}

class Parser {
  pos = 0;
  readonly #heredocs: PendingHeredoc[] = [];

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

  skipBlanks(): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t") this.pos++;
      else if (c === "\\" && this.peek(1) === "\n") this.pos += 2;
      else if (c === "#" ) this.#skipComment();
      else return;
    }
  }

  #skipComment(): void {
    while (!this.atEnd() && this.peek() !== "\n") this.pos++;
  }

  skipBlanksAndNewlines(): void {
    for (;;) {
      this.skipBlanks();
      if (this.peek() === "\n") this.#newline();
      else return;
    }
  }

  /** Consume a newline, then the bodies of here-documents started on that line. */
  #newline(): void {
    this.pos++;
    while (this.#heredocs.length > 0) {
      const h = this.#heredocs.shift();
      if (h === undefined) break;
      this.#readHeredocBody(h);
    }
  }

  #readHeredocBody(h: PendingHeredoc): void {
    const bodyStart = this.pos;
    for (;;) {
      if (this.atEnd()) throw new ShellParseError(`here-document delimited by "${h.delimiter}" is not closed`);
      const nl = this.src.indexOf("\n", this.pos);
      const lineEnd = nl < 0 ? this.src.length : nl;
      let line = this.src.slice(this.pos, lineEnd);
      if (h.stripTabs) line = line.replace(/^\t+/, "");
      if (line === h.delimiter) {
        const body = this.src.slice(bodyStart, this.pos);
        this.pos = nl < 0 ? lineEnd : lineEnd + 1;
        if (!h.quoted) this.#scanExpansions(body);
        return;
      }
      this.pos = nl < 0 ? lineEnd : lineEnd + 1;
    }
  }

  /** Expansions in an unquoted here-document body run like those in double quotes. */
  #scanExpansions(body: string): void {
    const sub = new Parser(body, { out: this.ctx.out, depth: this.ctx.depth + 1 });
    while (!sub.atEnd()) {
      const c = sub.peek();
      if (c === "\\") sub.pos += 2;
      else if (c === "$" || c === "`") sub.readDollarOrBacktick();
      else sub.pos++;
    }
  }

  /**
   * list := and_or ((';' | '&' | newline) and_or)*; stops at a reserved word in `stops`,
   * at `closer` (")" for subshells and substitutions), or at the end.
   */
  parseList(stops: ReadonlySet<string>, closer: string | undefined): string | undefined {
    for (;;) {
      this.skipBlanksAndNewlines();
      if (this.atEnd()) return undefined;
      if (closer !== undefined && this.startsWith(closer)) return closer;
      const word = this.#peekReserved();
      if (word !== undefined && stops.has(word)) return word;
      if (this.startsWith(";;")) return ";;";
      this.#parseAndOr(stops, closer);
      this.skipBlanks();
      const c = this.peek();
      if (this.startsWith(";;")) return ";;";
      if (c === ";" || c === "&") {
        this.pos++;
        continue;
      }
      if (c === "\n") {
        this.#newline();
        continue;
      }
      if (this.atEnd()) return undefined;
      if (closer !== undefined && this.startsWith(closer)) return closer;
      const w = this.#peekReserved();
      if (w !== undefined && stops.has(w)) return w;
      throw new ShellParseError(`unexpected "${c}" at offset ${this.pos}`);
    }
  }

  #parseAndOr(stops: ReadonlySet<string>, closer: string | undefined): void {
    for (;;) {
      this.#parsePipeline(stops, closer);
      this.skipBlanks();
      if (this.startsWith("&&") || this.startsWith("||")) {
        this.pos += 2;
        this.skipBlanksAndNewlines();
        continue;
      }
      return;
    }
  }

  #parsePipeline(stops: ReadonlySet<string>, closer: string | undefined): void {
    this.skipBlanks();
    // `!` and `time [-p]` prefix a pipeline.
    for (;;) {
      const w = this.#peekReserved();
      if (w === "!") {
        this.pos++;
        this.skipBlanks();
      } else if (w === "time") {
        this.pos += 4;
        this.skipBlanks();
        if (this.startsWith("-p") && META.has(this.peek(2) || " ")) {
          this.pos += 2;
          this.skipBlanks();
        }
      } else break;
    }
    for (;;) {
      this.#parseCommand(stops, closer);
      this.skipBlanks();
      if (this.startsWith("||")) return;
      if (this.startsWith("|&")) {
        this.pos += 2;
      } else if (this.peek() === "|") {
        this.pos++;
      } else return;
      this.skipBlanksAndNewlines();
    }
  }

  /** A reserved word at the current position (followed by a metacharacter or the end). */
  #peekReserved(): string | undefined {
    const c = this.peek();
    if (c === "!" || c === "{" || c === "}") {
      const next = this.peek(1);
      return next === "" || META.has(next) ? c : undefined;
    }
    if (this.startsWith("[[") && (this.peek(2) === " " || this.peek(2) === "\t")) return "[[";
    let end = this.pos;
    while (end < this.src.length && /[a-z]/.test(this.src.charAt(end))) end++;
    if (end === this.pos) return undefined;
    const next = this.src.charAt(end);
    if (next !== "" && !META.has(next)) return undefined;
    const w = this.src.slice(this.pos, end);
    return RESERVED.has(w) ? w : undefined;
  }

  #expectReserved(w: string): void {
    this.skipBlanksAndNewlines();
    if (this.#peekReserved() !== w) throw new ShellParseError(`expected "${w}" at offset ${this.pos}`);
    this.pos += w.length;
  }

  #parseCommand(stops: ReadonlySet<string>, closer: string | undefined): void {
    this.skipBlanks();
    const r = this.#peekReserved();
    if (r !== undefined && !RESERVED_END.has(r)) {
      this.#parseCompound(r);
      this.#parseRedirectsAfterCompound();
      return;
    }
    if (r !== undefined && stops.has(r)) throw new ShellParseError(`unexpected "${r}" at offset ${this.pos}`);
    if (this.peek() === "(") {
      if (this.peek(1) === "(") {
        this.pos += 2;
        this.#skipArithmetic("))");
      } else {
        this.pos++;
        const end = this.parseList(new Set(), ")");
        if (end !== ")") throw new ShellParseError("unclosed subshell");
        this.pos++;
      }
      this.#parseRedirectsAfterCompound();
      return;
    }
    this.#parseSimple(closer);
  }

  #parseRedirectsAfterCompound(): void {
    for (;;) {
      this.skipBlanks();
      if (!this.#tryRedirect(undefined)) return;
    }
  }

  #parseCompound(word: string): void {
    switch (word) {
      case "{": {
        this.pos++;
        const end = this.parseList(new Set(["}"]), undefined);
        if (end !== "}") throw new ShellParseError("unclosed { group");
        this.pos++;
        return;
      }
      case "if": {
        this.pos += 2;
        for (;;) {
          this.parseList(new Set(["then"]), undefined);
          this.#expectReserved("then");
          const end = this.parseList(new Set(["elif", "else", "fi"]), undefined);
          if (end === "elif") {
            this.pos += 4;
            continue;
          }
          if (end === "else") {
            this.pos += 4;
            this.parseList(new Set(["fi"]), undefined);
          }
          this.#expectReserved("fi");
          return;
        }
      }
      case "while":
      case "until": {
        this.pos += word.length;
        this.parseList(new Set(["do"]), undefined);
        this.#doGroup();
        return;
      }
      case "for":
      case "select": {
        this.pos += word.length;
        this.skipBlanks();
        if (this.startsWith("((")) {
          this.pos += 2;
          this.#skipArithmetic("))");
        } else {
          this.readWord(); // the variable name
          this.skipBlanksAndNewlines();
          if (this.#peekReserved() === "in") {
            this.pos += 2;
            for (;;) {
              this.skipBlanks();
              const c = this.peek();
              if (c === ";" || c === "\n" || c === "") break;
              this.readWord();
            }
          }
        }
        this.skipBlanks();
        if (this.peek() === ";") this.pos++;
        this.#doGroup();
        return;
      }
      case "case": {
        this.pos += 4;
        this.skipBlanks();
        this.readWord();
        this.#expectReserved("in");
        for (;;) {
          this.skipBlanksAndNewlines();
          if (this.#peekReserved() === "esac") {
            this.pos += 4;
            return;
          }
          if (this.peek() === "(") this.pos++;
          // patterns: word ('|' word)* ')'
          for (;;) {
            this.skipBlanks();
            this.readWord();
            this.skipBlanks();
            if (this.peek() === "|") {
              this.pos++;
              continue;
            }
            if (this.peek() === ")") {
              this.pos++;
              break;
            }
            throw new ShellParseError(`bad case pattern at offset ${this.pos}`);
          }
          const end = this.parseList(new Set(["esac"]), undefined);
          if (end === ";;") {
            this.pos += 2;
            if (this.peek() === "&") this.pos++;
          } else if (end !== "esac") throw new ShellParseError("unclosed case");
        }
      }
      case "[[": {
        this.pos += 2;
        for (;;) {
          this.skipBlanksAndNewlines();
          if (this.atEnd()) throw new ShellParseError("unclosed [[");
          if (this.startsWith("]]") && (this.peek(2) === "" || META.has(this.peek(2)))) {
            this.pos += 2;
            return;
          }
          const c = this.peek();
          if (c === "(" || c === ")" || c === "<" || c === ">" || c === "!") {
            this.pos++;
            continue;
          }
          if (this.startsWith("&&") || this.startsWith("||")) {
            this.pos += 2;
            continue;
          }
          const w = this.readWord();
          // -v NAME[SUB] evaluates the subscript (second bypass corpus).
          if (/^-(eq|ne|lt|le|gt|ge|v)$/.test(w.text)) this.ctx.out.facts.arithmetic = true;
        }
      }
      case "function":
      case "coproc":
        this.ctx.out.unknowable.push(word === "function" ? "a function is defined in the command" : "coproc is not inspected");
        throw new ShellParseError(`${word} is not supported`);
      case "time":
      case "!":
        return;
      default:
        throw new ShellParseError(`unexpected "${word}" at offset ${this.pos}`);
    }
  }

  #doGroup(): void {
    this.#expectReserved("do");
    this.parseList(new Set(["done"]), undefined);
    this.#expectReserved("done");
  }

  /** Skip an arithmetic expression up to `end`; substitutions in it run, so parse them. */
  #skipArithmetic(end: string): void {
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

  #parseSimple(closer: string | undefined): void {
    const words: Word[] = [];
    const redirects: string[] = [];
    let stdinFromHere = false;
    for (;;) {
      this.skipBlanks();
      const c = this.peek();
      if (c === "" || c === "\n" || c === ";" || c === "&" || c === "|") break;
      if (c === ")") {
        if (closer === ")") break;
        throw new ShellParseError(`unexpected ")" at offset ${this.pos}`);
      }
      const here: RedirectInfo = { v: false };
      if (this.#tryRedirect(here)) {
        if (here.v) stdinFromHere = true;
        if (here.target !== undefined) redirects.push(here.target);
        continue;
      }
      if (c === "(") {
        // name() { … }: a function definition.
        if (words.length === 1 && this.peek(1) === ")") {
          this.ctx.out.unknowable.push("a function is defined in the command");
          throw new ShellParseError("function definitions are not supported");
        }
        throw new ShellParseError(`unexpected "(" at offset ${this.pos}`);
      }
      words.push(this.readWord());
    }
    if (words.length > 0 || stdinFromHere) this.ctx.out.commands.push({ words, stdinFromHere, ...(redirects.length > 0 ? { redirects } : {}) });
  }

  /** A redirection operator and its word, if one starts here. */
  #tryRedirect(here: RedirectInfo | undefined): boolean {
    const start = this.pos;
    let i = this.pos;
    while (/[0-9]/.test(this.src.charAt(i))) i++;
    if (this.src.charAt(i) === "{") {
      // {varname}>file
      const close = this.src.indexOf("}", i);
      if (close > i && /^[A-Za-z_][A-Za-z0-9_]*$/.test(this.src.slice(i + 1, close)) && "<>".includes(this.src.charAt(close + 1))) i = close + 1;
    }
    const rest = this.src.slice(i, i + 3);
    let op: string | undefined;
    for (const candidate of ["<<<", "<<-", "&>>", "<<", ">>", "<&", ">&", "<>", ">|", "&>", "<", ">"]) {
      if (rest.startsWith(candidate)) {
        op = candidate;
        break;
      }
    }
    if (op === undefined || (i > start && op.startsWith("&"))) {
      this.pos = start;
      return false;
    }
    // Process substitution <( … ) / >( … ) is a word, not a redirection.
    if ((op === "<" || op === ">") && this.src.charAt(i + 1) === "(" && i === start) return false;
    this.pos = i + op.length;
    this.skipBlanks();
    if (op === "<<" || op === "<<-") {
      const w = this.readWord();
      if (w.dynamic) throw new ShellParseError("here-document delimiter with expansions");
      this.#heredocs.push({ delimiter: w.text, quoted: this.#lastWordQuoted, stripTabs: op === "<<-" });
      if (here !== undefined) here.v = true;
      return true;
    }
    if (op === "<<<" && here !== undefined) here.v = true;
    if (this.atEnd() || META.has(this.peek())) {
      if (this.peek() === "<" || this.peek() === ">") {
        // <(…) / >(…) as the target of a redirection
        this.readWord();
        return true;
      }
      throw new ShellParseError(`redirection without a target at offset ${this.pos}`);
    }
    const target = this.readWord();
    if (here !== undefined && op !== "<<<") here.target = target.dynamic || target.expands ? DYNAMIC_MARK : target.text;
    return true;
  }

  #lastWordQuoted = false;

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
          const end = new Parser(this.src, { out: this.ctx.out, depth: this.ctx.depth + 1 });
          end.pos = this.pos;
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
    this.#lastWordQuoted = quoted;
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
      this.#subScript(inner);
      return true;
    }
    // c === "$"
    const n = this.peek(1);
    if (n === "(" && this.peek(2) === "(") {
      this.pos += 3;
      this.#skipArithmetic("))");
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
      this.#skipArithmetic("]");
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

  #subScript(inner: string): void {
    const sub = parseScript(inner, this.ctx.depth + 1);
    this.ctx.out.commands.push(...sub.commands);
    this.ctx.out.unknowable.push(...sub.unknowable);
    if (sub.facts.arithmetic) this.ctx.out.facts.arithmetic = true;
    if (sub.facts.literalCode) this.ctx.out.facts.literalCode = true;
  }
}

const RESERVED = new Set([
  "if", "then", "elif", "else", "fi", "while", "until", "for", "select", "do", "done", "case", "esac", "in",
  "function", "time", "coproc", "{", "}", "!", "[[",
]);
