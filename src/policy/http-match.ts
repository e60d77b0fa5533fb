/**
 * The pieces of an HTTP policy match (issue 15), compiled once at config load:
 * - `methods`: method names (globs, case-insensitive);
 * - `paths`: globs over the NORMALIZED path after the connection prefix (`*` crosses `/`;
 *   case-insensitive — over-matching a case-sensitive API is the safe direction; a trailing
 *   `/` is ignored on both sides);
 * - `query`: `name` (present) or `name=glob` (some value of it matches);
 * - `headers`: `name` (present) or `name: glob` / `name=glob`;
 * - `body`: predicates on a JSON body, `PATH OP VALUE` with PATH `$.a.b`, `$.items[0].x` or
 *   `$.items[*].x` (any element), OP one of `==`, `!=`, `>`, `>=`, `<`, `<=`, `in`, `=~`, VALUE a
 *   JSON literal (a bare word is a string), `in` a JSON array, `=~` a `/regex/flags`; a bare
 *   PATH means "present". Entries of one list are alternatives (any may hold), as in every
 *   other match list; the keys together must all hold.
 */
import type { HttpMatch } from "./match.js";
import { Glob, anyGlob } from "./glob.js";

/** A `[*]` / `.*` step: any element or member. */
export const ANY_STEP: unique symbol = Symbol("any");
export type Step = string | number | typeof ANY_STEP;

export type BodyOp = "==" | "!=" | ">" | ">=" | "<" | "<=" | "in" | "=~" | "exists";

export interface BodyPredicate {
  readonly source: string;
  readonly path: readonly Step[];
  readonly op: BodyOp;
  readonly value: unknown;
  readonly regex?: RegExp;
}

export interface CompiledHttpMatch {
  readonly methods?: readonly Glob[];
  readonly paths?: readonly Glob[];
  readonly query?: readonly NameValueMatcher[];
  readonly headers?: readonly NameValueMatcher[];
  readonly body?: readonly BodyPredicate[];
}

export interface NameValueMatcher {
  readonly name: string;
  readonly value?: Glob;
}

const MAX_PATH_STEPS = 32;

/** Parse `$.a.b[0][*].c` into steps; undefined when malformed. */
export function parseJsonPath(text: string): Step[] | undefined {
  if (!text.startsWith("$")) return undefined;
  const steps: Step[] = [];
  let i = 1;
  while (i < text.length) {
    const c = text[i];
    if (c === ".") {
      let j = i + 1;
      while (j < text.length && text[j] !== "." && text[j] !== "[") j++;
      const key = text.slice(i + 1, j);
      if (key.length === 0) return undefined;
      steps.push(key === "*" ? ANY_STEP : key);
      i = j;
    } else if (c === "[") {
      const close = text.indexOf("]", i);
      if (close < 0) return undefined;
      const inner = text.slice(i + 1, close).trim();
      if (inner === "*") steps.push(ANY_STEP);
      else if (/^\d{1,9}$/.test(inner)) steps.push(Number(inner));
      else if (/^(['"]).*\1$/.test(inner)) steps.push(inner.slice(1, -1));
      else return undefined;
      i = close + 1;
    } else return undefined;
    if (steps.length > MAX_PATH_STEPS) return undefined;
  }
  return steps;
}

function parseLiteral(text: string): unknown {
  const t = text.trim();
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return t;
  }
}

const OPS: readonly BodyOp[] = [">=", "<=", "==", "!=", "=~", ">", "<"];

/** Parse one body predicate; throws Error with a message naming the problem. */
export function parseBodyPredicate(source: string): BodyPredicate {
  const s = source.trim();
  const pathEnd = s.search(/\s|[<>=!]/);
  const pathText = pathEnd < 0 ? s : s.slice(0, pathEnd);
  const path = parseJsonPath(pathText);
  if (path === undefined) throw new Error(`"${source}": expected a JSON path such as $.amount or $.items[*].price first`);
  const rest = pathEnd < 0 ? "" : s.slice(pathEnd).trim();
  if (rest === "") return { source, path, op: "exists", value: undefined };
  if (/^in\s/i.test(rest)) {
    const value = parseLiteral(rest.slice(2));
    if (!Array.isArray(value)) throw new Error(`"${source}": "in" needs a JSON array, e.g. $.currency in ["USD", "EUR"]`);
    return { source, path, op: "in", value };
  }
  const op = OPS.find((o) => rest.startsWith(o));
  if (op === undefined) throw new Error(`"${source}": expected an operator (==, !=, >, >=, <, <=, in, =~) after the path`);
  const valueText = rest.slice(op.length).trim();
  if (op === "=~") {
    const m = /^\/(.*)\/([imsu]*)$/s.exec(valueText);
    if (m === null) throw new Error(`"${source}": =~ needs a /regex/`);
    let regex: RegExp;
    try {
      regex = new RegExp(m[1] ?? "", m[2]);
    } catch {
      throw new Error(`"${source}": invalid regular expression`);
    }
    return { source, path, op, value: valueText, regex };
  }
  if (valueText === "") throw new Error(`"${source}": a value must follow ${op}`);
  const value = parseLiteral(valueText);
  if ((op === ">" || op === ">=" || op === "<" || op === "<=") && typeof value !== "number") {
    throw new Error(`"${source}": ${op} compares numbers`);
  }
  return { source, path, op, value };
}

function parseNameValue(text: string, sep: RegExp): NameValueMatcher {
  const m = sep.exec(text);
  if (m === null) return { name: text.trim().toLowerCase() };
  return { name: text.slice(0, m.index).trim().toLowerCase(), value: new Glob(text.slice(m.index + m[0].length).trim()) };
}

export function compileHttpMatch(m: HttpMatch): CompiledHttpMatch {
  return {
    ...(m.methods === undefined ? {} : { methods: m.methods.map((g) => new Glob(g)) }),
    ...(m.paths === undefined ? {} : { paths: m.paths.map((g) => new Glob(stripTrailingSlash(g))) }),
    ...(m.query === undefined ? {} : { query: m.query.map((q) => parseNameValue(q, /=/)) }),
    ...(m.headers === undefined ? {} : { headers: m.headers.map((h) => parseNameValue(h, /\s*[:=]\s*/)) }),
    ...(m.body === undefined ? {} : { body: m.body.map(parseBodyPredicate) }),
  };
}

/** Problems of an http match, for config validation (each names its key). */
export function httpMatchProblems(m: unknown): string[] {
  const problems: string[] = [];
  if (typeof m !== "object" || m === null || !("body" in m) || !Array.isArray(m.body)) return problems;
  m.body.forEach((b: unknown, j) => {
    if (typeof b !== "string") return;
    try {
      parseBodyPredicate(b);
    } catch (e) {
      problems.push(`body[${j}]: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  return problems;
}

export function stripTrailingSlash(p: string): string {
  return p.length > 1 && p.endsWith("/") ? p.replace(/\/+$/, "") || "/" : p;
}

/** Values at a path (a `*` step fans out); bounded by the document. */
export function valuesAt(doc: unknown, path: readonly Step[]): unknown[] {
  let current: unknown[] = [doc];
  for (const step of path) {
    const next: unknown[] = [];
    for (const v of current) {
      if (step === ANY_STEP) {
        if (Array.isArray(v)) for (const x of v as unknown[]) next.push(x);
        else if (typeof v === "object" && v !== null) for (const x of Object.values(v as Record<string, unknown>)) next.push(x);
      } else if (typeof step === "number") {
        if (Array.isArray(v) && step < v.length) next.push(v[step]);
      } else if (typeof v === "object" && v !== null && !Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, step)) {
        next.push((v as Record<string, unknown>)[step]);
      }
      if (next.length > 100_000) break;
    }
    current = next;
  }
  return current;
}

function looseEquals(a: unknown, b: unknown): boolean {
  if (typeof a === "string" && typeof b === "string") return a === b;
  if (typeof a === "number" && typeof b === "number") return a === b;
  // A number written as a string (or the reverse) still equals: "1000" and 1000 alike.
  if ((typeof a === "number" && typeof b === "string") || (typeof a === "string" && typeof b === "number")) return String(a) === String(b) && String(a).trim() !== "";
  return JSON.stringify(a) === JSON.stringify(b);
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

/** Does the predicate hold for the document? (Any value at the path satisfying it suffices.) */
export function bodyPredicateHolds(p: BodyPredicate, doc: unknown): boolean {
  const values = valuesAt(doc, p.path);
  if (p.op === "exists") return values.length > 0;
  if (p.op === "!=") return values.length > 0 && values.some((v) => !looseEquals(v, p.value));
  return values.some((v) => {
    switch (p.op) {
      case "exists":
      case "!=":
        return false; // handled above
      case "==":
        return looseEquals(v, p.value);
      case "in":
        return Array.isArray(p.value) && (p.value as unknown[]).some((x) => looseEquals(v, x));
      case "=~":
        return typeof v === "string" || typeof v === "number" ? (p.regex?.test(String(v)) ?? false) : false;
      case ">":
      case ">=":
      case "<":
      case "<=": {
        const n = asNumber(v);
        const limit = p.value as number;
        if (n === undefined) return false;
        return p.op === ">" ? n > limit : p.op === ">=" ? n >= limit : p.op === "<" ? n < limit : n <= limit;
      }
    }
  });
}

export function nameValueHolds(m: NameValueMatcher, pairs: readonly (readonly [string, string])[]): boolean {
  return pairs.some(([k, v]) => k.toLowerCase() === m.name && (m.value === undefined || m.value.test(v)));
}

export { anyGlob };
