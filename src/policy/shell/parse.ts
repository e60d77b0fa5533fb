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
 *
 * The lexical half (words, quotes, expansions) is ./words.ts; this file is the grammar.
 */

import { DYNAMIC_MARK, META, ShellParseError, WordReader, type ParsedScript, type Word } from "./words.js";

export { DYNAMIC_MARK, MAX_DEPTH, ShellParseError } from "./words.js";
export type { ArithmeticFacts, ParsedScript, RawCommand, Word } from "./words.js";

const RESERVED_END = new Set(["then", "elif", "else", "fi", "do", "done", "esac", "}", "in"]);

interface RedirectInfo {
  v: boolean;
  target?: string;
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

class Parser extends WordReader {
  readonly #heredocs: PendingHeredoc[] = [];

  protected nested(): Parser {
    const p = new Parser(this.src, { out: this.ctx.out, depth: this.ctx.depth + 1 });
    p.pos = this.pos;
    return p;
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
        this.skipArithmetic("))");
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
          this.skipArithmetic("))");
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
      this.#heredocs.push({ delimiter: w.text, quoted: this.lastWordQuoted, stripTabs: op === "<<-" });
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

  protected subScript(inner: string): void {
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
