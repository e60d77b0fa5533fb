/**
 * Masking a JSON document (an HTTP or MCP body, a json/jsonb value): string leaves (and number
 * leaves, when a detector finds something in their digits) are masked through a MaskChain, and
 * leaves a JSON-path rule names (or that sit inside a container it names) are masked whole.
 * The output is always valid JSON when the input is: a masked leaf becomes a JSON string
 * (JSON.stringify of the masked text) or `null` (strategy `null`). Everything else — keys,
 * whitespace, number spelling, untouched leaves — is kept byte for byte, so a clean document
 * comes back unchanged and big integers keep their digits (no JSON.parse round trip).
 *
 * Keys are not masked (a path rule names them; masking them could merge members).
 * Text that is not JSON is masked as plain text (`json: false` in the result): fail closed.
 */
import type { MaskRule } from "../core/decision.js";
import type { MaskChain } from "./chain.js";
import { jsonPathRuleFor, jsonPathRules, renderPath, type JsonPathRule, type PathStep } from "./plan.js";
import type { RuleMasker } from "./rules.js";
import { isSecretKeyName } from "./detectors.js";

/** Values of a secret-named key that hold nothing (as the secret detector leaves them). */
const PLACEHOLDERS: ReadonlySet<string> = new Set(["null", "true", "false", "none", "nil", "undefined", "~"]);

export interface JsonMaskOptions {
  /** Content detection for every leaf no path rule covers. */
  readonly chain: MaskChain;
  /** Rules whose `columns` name JSON paths (others are ignored); with the masker for each. */
  readonly rules?: readonly MaskRule[];
  readonly maskerFor?: (rule: MaskRule) => RuleMasker;
}

export interface JsonMaskResult {
  /** The masked document, or undefined when nothing changed. */
  readonly text: string | undefined;
  /** Whether the input parsed as JSON (false: it was masked as plain text). */
  readonly json: boolean;
}

/** Nesting beyond this is refused as JSON (masked as text instead): bounded work and stack. */
export const MAX_JSON_DEPTH = 512;

class NotJson extends Error {}

interface Frame {
  readonly array: boolean;
  /** Members or elements read so far. */
  count: number;
  /** A path rule covering this container (and so every leaf below it). */
  readonly covered: MaskRule | undefined;
}

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/** The end of the string token starting at the quote `s`. */
function stringEnd(doc: string, s: number): number {
  let i = s + 1;
  const n = doc.length;
  while (i < n) {
    const c = doc.charCodeAt(i);
    if (c === 34) return i + 1;
    if (c === 92) {
      const e = doc.charCodeAt(i + 1);
      if (e === 117) {
        if (!/^[0-9a-fA-F]{4}$/.test(doc.slice(i + 2, i + 6))) throw new NotJson();
        i += 6;
      } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) {
        i += 2;
      } else {
        throw new NotJson();
      }
      continue;
    }
    if (c < 0x20) throw new NotJson();
    i++;
  }
  throw new NotJson();
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function numberEnd(doc: string, s: number): number {
  NUMBER_RE.lastIndex = s;
  if (!NUMBER_RE.test(doc)) throw new NotJson();
  return NUMBER_RE.lastIndex;
}

function stringValue(doc: string, s: number, e: number): string {
  const raw = doc.slice(s + 1, e - 1);
  return raw.includes("\\") ? (JSON.parse(doc.slice(s, e)) as string) : raw;
}

/**
 * Mask a JSON document. Counts per kind go to `counts` (path rules count as `column:<rule>`).
 */
export function maskJson(doc: string, options: JsonMaskOptions, counts: Record<string, number>): JsonMaskResult {
  const pathRules: readonly JsonPathRule[] = options.rules === undefined ? [] : jsonPathRules(options.rules);
  const { chain } = options;
  const out: string[] = [];
  let copied = 0;
  const stack: Frame[] = [];
  const path: PathStep[] = [];

  const ruleAt = (covered: MaskRule | undefined): MaskRule | undefined => {
    if (covered !== undefined || pathRules.length === 0) return covered;
    return jsonPathRuleFor(pathRules, renderPath(path));
  };
  const replace = (s: number, e: number, text: string): void => {
    out.push(doc.slice(copied, s), text);
    copied = e;
  };
  /** A leaf doc[s, e) of the given type: mask it if a rule says so. */
  const leaf = (s: number, e: number, type: "string" | "number" | "literal", covered: MaskRule | undefined): void => {
    const rule = ruleAt(covered);
    if (rule !== undefined) {
      if (type === "literal" && doc.startsWith("null", s)) return; // null shows nothing
      const key = `column:${rule.rule}`;
      counts[key] = (counts[key] ?? 0) + 1;
      if (rule.strategy === "null" || options.maskerFor === undefined) {
        replace(s, e, "null");
        return;
      }
      const m = options.maskerFor(rule);
      const text = type === "string" ? stringValue(doc, s, e) : doc.slice(s, e);
      const masked = m.maskWhole(text, m.kindOf(text));
      replace(s, e, masked === null ? "null" : JSON.stringify(masked));
      return;
    }
    if (type === "literal" || chain.empty) return;
    const text = type === "string" ? stringValue(doc, s, e) : doc.slice(s, e);
    const key = path[path.length - 1];
    if (typeof key === "string" && text.length > 0 && isSecretKeyName(key) && !PLACEHOLDERS.has(text.toLowerCase())) {
      // The value of a secret-named member: what the secret detector finds in `"key": "value"`
      // text, found here with the key the leaf alone no longer carries.
      const m = chain.maskers.find((x) => x.kinds?.includes("secret") === true);
      if (m !== undefined) {
        counts.secret = (counts.secret ?? 0) + 1;
        const masked = m.maskWhole(text, "secret");
        replace(s, e, masked === null ? "null" : JSON.stringify(masked));
        return;
      }
    }
    const masked = chain.text(text, counts);
    if (masked === undefined) return;
    replace(s, e, masked === null ? "null" : JSON.stringify(masked));
  };

  try {
    const n = doc.length;
    let i = 0;
    const skipWs = (): void => {
      while (i < n && isWs(doc.charCodeAt(i))) i++;
    };
    // A value starts at i; containers push a frame and return.
    const value = (covered: MaskRule | undefined): void => {
      skipWs();
      const c = doc.charCodeAt(i);
      if (c === 123 || c === 91) {
        if (stack.length >= MAX_JSON_DEPTH) throw new NotJson();
        stack.push({ array: c === 91, count: 0, covered: ruleAt(covered) });
        i++;
        return;
      }
      const s = i;
      if (c === 34) {
        i = stringEnd(doc, i);
        leaf(s, i, "string", covered);
      } else if (c === 45 || (c >= 48 && c <= 57)) {
        i = numberEnd(doc, i);
        leaf(s, i, "number", covered);
      } else if (doc.startsWith("true", i) || doc.startsWith("null", i)) {
        i += 4;
        leaf(s, i, "literal", covered);
      } else if (doc.startsWith("false", i)) {
        i += 5;
        leaf(s, i, "literal", covered);
      } else {
        throw new NotJson();
      }
    };

    value(undefined);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as Frame;
      skipWs();
      const c = doc.charCodeAt(i);
      const close = top.array ? 93 : 125;
      if (top.count > 0) {
        path.pop(); // the member just read
        if (c !== close && c !== 44) throw new NotJson();
        i++;
        if (c === close) {
          stack.pop();
          continue;
        }
        skipWs();
      } else if (c === close) {
        i++;
        stack.pop();
        continue;
      }
      if (top.array) {
        path.push(top.count);
      } else {
        if (doc.charCodeAt(i) !== 34) throw new NotJson();
        const ks = i;
        i = stringEnd(doc, i);
        path.push(stringValue(doc, ks, i));
        skipWs();
        if (doc.charCodeAt(i) !== 58) throw new NotJson();
        i++;
      }
      top.count++;
      value(top.covered);
    }
    skipWs();
    if (i !== n) throw new NotJson();
  } catch (e) {
    if (!(e instanceof NotJson)) throw e;
    const masked = chain.text(doc, counts);
    return { text: masked === null ? "null" : masked, json: false };
  }
  if (out.length === 0) return { text: undefined, json: true };
  out.push(doc.slice(copied));
  return { text: out.join(""), json: true };
}
