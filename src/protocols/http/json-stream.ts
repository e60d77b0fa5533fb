/**
 * A streaming JSON rewriter for response bodies (issue 15): text in chunks, masked text out
 * as soon as each token is complete, so a large array is never held whole. Only the token
 * being read is buffered (bounded by `maxTokenChars`), plus the container stack (bounded by
 * `maxDepth`). The grammar is checked as it goes (RFC 8259): a document that stops being JSON
 * throws `JsonStreamError`, and the engine aborts the response (fail closed) rather than send
 * what it could not attribute.
 *
 * Masking is the library's (src/masking): string leaves (and number leaves in which a
 * detector finds something) go through the MaskChain; a leaf whose path a JSON-path rule
 * names, or which sits inside a container it names, is masked whole by that rule. A masked
 * leaf becomes a JSON string (or `null`); everything else passes byte for byte.
 */
import type { MaskRule } from "../../core/decision.js";
import { jsonPathRuleFor, renderPath, type JsonPathRule, type MaskChain, type PathStep, type RuleMasker } from "../../masking/index.js";

export class JsonStreamError extends Error {}

export interface JsonStreamOptions {
  readonly chain: MaskChain;
  readonly pathRules: readonly JsonPathRule[];
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  readonly counts: Record<string, number>;
  readonly maxTokenChars?: number;
  readonly maxDepth?: number;
}

type Expect = "value" | "key" | "colon" | "comma-or-end" | "value-or-end" | "key-or-end" | "done";

interface Frame {
  readonly array: boolean;
  index: number;
  key: string | undefined;
  readonly covered: MaskRule | undefined;
}

const WS = new Set([" ", "\t", "\n", "\r"]);

export class JsonStreamMasker {
  readonly #o: JsonStreamOptions;
  readonly #maxToken: number;
  readonly #maxDepth: number;
  readonly #stack: Frame[] = [];
  #expect: Expect = "value";
  /** The token being read: a string (with its quotes), a number or a literal. */
  #token = "";
  #inString = false;
  #escape = false;
  #inBare = false;
  readonly #rulesEmpty: boolean;

  constructor(options: JsonStreamOptions) {
    this.#o = options;
    this.#maxToken = options.maxTokenChars ?? 8 * 1024 * 1024;
    this.#maxDepth = options.maxDepth ?? 512;
    this.#rulesEmpty = options.pathRules.length === 0;
  }

  /** Feed text; returns the text to send now. Throws JsonStreamError. */
  push(chunk: string): string {
    let out = "";
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#inString) {
        // Scan to the closing quote (or the chunk's end), handling escapes across chunks.
        let j = i;
        for (; j < n; j++) {
          const c = chunk.charCodeAt(j);
          if (this.#escape) this.#escape = false;
          else if (c === 92) this.#escape = true;
          else if (c === 34) break;
          else if (c < 32) throw new JsonStreamError("control character in a JSON string");
        }
        if (j === n) {
          this.#token += chunk.slice(i);
          this.#checkToken();
          return out;
        }
        this.#token += chunk.slice(i, j + 1);
        this.#inString = false;
        out += this.#endString();
        i = j + 1;
        continue;
      }
      if (this.#inBare) {
        let j = i;
        while (j < n && /[0-9A-Za-z+\-.]/.test(chunk[j] ?? "")) j++;
        this.#token += chunk.slice(i, j);
        this.#checkToken();
        if (j === n) return out;
        this.#inBare = false;
        out += this.#endBare();
        i = j;
        continue;
      }
      const ch = chunk[i] ?? "";
      if (WS.has(ch)) {
        out += ch;
        i++;
        continue;
      }
      switch (ch) {
        case '"':
          if (this.#expect !== "value" && this.#expect !== "value-or-end" && this.#expect !== "key" && this.#expect !== "key-or-end") throw new JsonStreamError("unexpected string");
          this.#inString = true;
          this.#escape = false;
          this.#token = '"';
          break;
        case "{":
        case "[":
          this.#valueStart();
          if (this.#stack.length >= this.#maxDepth) throw new JsonStreamError("JSON nested too deeply");
          this.#stack.push({ array: ch === "[", index: 0, key: undefined, covered: this.#coveredHere() });
          this.#expect = ch === "[" ? "value-or-end" : "key-or-end";
          out += ch;
          break;
        case "}":
        case "]": {
          const top = this.#stack.at(-1);
          const ok = top !== undefined && top.array === (ch === "]") && (this.#expect === "comma-or-end" || this.#expect === (top.array ? "value-or-end" : "key-or-end"));
          if (!ok) throw new JsonStreamError("unexpected end of container");
          this.#stack.pop();
          this.#afterValue();
          out += ch;
          break;
        }
        case ",": {
          const top = this.#stack.at(-1);
          if (top === undefined || this.#expect !== "comma-or-end") throw new JsonStreamError("unexpected comma");
          if (top.array) {
            top.index++;
            this.#expect = "value";
          } else this.#expect = "key";
          out += ch;
          break;
        }
        case ":":
          if (this.#expect !== "colon") throw new JsonStreamError("unexpected colon");
          this.#expect = "value";
          out += ch;
          break;
        default:
          if (!/[-0-9tfn]/.test(ch)) throw new JsonStreamError("unexpected character");
          this.#valueStart();
          this.#inBare = true;
          this.#token = "";
          continue;
      }
      i++;
    }
    return out;
  }

  /** The input ended: returns the last text. Throws when the document is incomplete. */
  end(): string {
    let out = "";
    if (this.#inBare) {
      this.#inBare = false;
      out += this.#endBare();
    }
    if (this.#inString || this.#stack.length > 0 || this.#expect !== "done") throw new JsonStreamError("the JSON document is incomplete");
    return out;
  }

  #checkToken(): void {
    if (this.#token.length > this.#maxToken) throw new JsonStreamError("a JSON token is longer than the masking limit");
  }

  #valueStart(): void {
    if (this.#expect !== "value" && this.#expect !== "value-or-end") throw new JsonStreamError("unexpected value");
  }

  #afterValue(): void {
    this.#expect = this.#stack.length === 0 ? "done" : "comma-or-end";
  }

  #path(): PathStep[] {
    const p: PathStep[] = [];
    for (const f of this.#stack) p.push(f.array ? f.index : (f.key ?? ""));
    return p;
  }

  /** The rule covering the value about to be read (its container's, or one naming its path). */
  #coveredHere(): MaskRule | undefined {
    const inherited = this.#stack.at(-1)?.covered;
    if (inherited !== undefined) return inherited;
    if (this.#rulesEmpty || this.#stack.length === 0) return undefined;
    return jsonPathRuleFor(this.#o.pathRules, renderPath(this.#path()));
  }

  #endString(): string {
    const raw = this.#token;
    this.#token = "";
    const top = this.#stack.at(-1);
    if (top !== undefined && !top.array && (this.#expect === "key" || this.#expect === "key-or-end")) {
      top.key = parseString(raw);
      this.#expect = "colon";
      return raw;
    }
    this.#valueStartCheck();
    const out = this.#leaf(raw, parseString(raw));
    this.#afterValue();
    return out;
  }

  #valueStartCheck(): void {
    if (this.#expect !== "value" && this.#expect !== "value-or-end") throw new JsonStreamError("unexpected value");
  }

  #endBare(): string {
    const raw = this.#token;
    this.#token = "";
    if (raw === "true" || raw === "false" || raw === "null") {
      const covered = this.#coveredHere();
      this.#afterValue();
      if (covered === undefined || raw === "null") return raw;
      return this.#whole(covered, raw);
    }
    if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(raw)) throw new JsonStreamError("invalid JSON number or literal");
    const out = this.#leaf(raw, raw);
    this.#afterValue();
    return out;
  }

  /** A leaf: masked whole by a path rule, or by content. */
  #leaf(raw: string, text: string): string {
    const covered = this.#coveredHere();
    if (covered !== undefined) return this.#whole(covered, text);
    if (this.#o.chain.empty) return raw;
    const m = this.#o.chain.text(text, this.#o.counts);
    if (m === undefined) return raw;
    return m === null ? "null" : JSON.stringify(m);
  }

  #whole(rule: MaskRule, text: string): string {
    const m = this.#o.maskerFor(rule);
    const kind = m.kindOf(text);
    const v = m.maskWhole(text, kind);
    this.#o.counts[kind] = (this.#o.counts[kind] ?? 0) + 1;
    return v === null ? "null" : JSON.stringify(v);
  }
}

function parseString(raw: string): string {
  try {
    return JSON.parse(raw) as string;
  } catch {
    throw new JsonStreamError("invalid JSON string");
  }
}
