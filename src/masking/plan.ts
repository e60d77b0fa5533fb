/**
 * Plan application: which mask rule covers which field. A field is a result column (with the
 * relation and column it comes from, when known) or a leaf of a JSON document (its path).
 *
 * - Column rules: a rule's `columns` are `table.column` / `schema.table.column` globs
 *   (ColumnGlob). A field without an origin (an expression, an alias) matches by its name
 *   under any relation. A field is also covered when a column it derives from is (its
 *   `derivedFrom`: the columns a computed field's expression reads, the same column of the
 *   relations its relation shares it with through inheritance).
 * - JSON-path rules: `columns` entries that start with `$` are paths into JSON documents:
 *   `$.user.email`, `$.items[*].card`, `$.*.email` (one key of any name), `$..email` (at any
 *   depth). An entry without `$` that contains no relation part also applies to JSON leaves
 *   as a glob over the dotted path (`*.email`: an `email` key anywhere). Keys match
 *   case-insensitively, as column globs do (over-matching is the safe direction).
 * - Detector rules: every rule with detectors applies to every field no column rule covers.
 * The first rule whose columns cover a field wins (policy order).
 */
import type { MaskRule, SourceColumn } from "../core/decision.js";
import { ColumnGlob } from "../policy/glob.js";

export interface MaskField {
  /** The name the field is shown under (a result column's name or alias). */
  readonly name: string;
  readonly relation?: { readonly schema: string; readonly name: string };
  readonly column?: string;
  /**
   * Table columns the value derives from besides its own origin (column lineage of a computed
   * field, the relatives of its relation through inheritance): a column rule covering any of
   * them covers the field. A source without relation is a column of any relation; column `*`
   * is the whole row (any column of the relation).
   */
  readonly derivedFrom?: readonly SourceColumn[];
}

export type FieldRules =
  | { readonly kind: "keep" }
  /** A column rule covers the field: the whole value is masked under it. */
  | { readonly kind: "whole"; readonly rule: MaskRule }
  /** Content detection under each of these rules, in order. */
  | { readonly kind: "detect"; readonly rules: readonly MaskRule[] };

const KEEP: FieldRules = { kind: "keep" };

function isJsonPath(pattern: string): boolean {
  return pattern.startsWith("$");
}

const columnGlobs = new WeakMap<MaskRule, readonly ColumnGlob[]>();
function globsOf(rule: MaskRule): readonly ColumnGlob[] {
  let g = columnGlobs.get(rule);
  if (g === undefined) {
    g = rule.columns.filter((c) => !isJsonPath(c)).map((c) => new ColumnGlob(c));
    columnGlobs.set(rule, g);
  }
  return g;
}

/** Does `rule`'s column list cover this result field? */
export function columnRuleCovers(rule: MaskRule, f: MaskField): boolean {
  for (const g of globsOf(rule)) {
    if (f.relation !== undefined && f.column !== undefined) {
      const rel = f.relation;
      if ((g.relation.test(`${rel.schema}.${rel.name}`) || g.relation.test(rel.name)) && g.column.test(f.column)) return true;
    }
    // Expressions and aliases carry no origin: match the result column name under any relation.
    if (f.relation === undefined && g.column.test(f.name)) return true;
  }
  return false;
}

/** Does `rule`'s column list cover one source column of a field (see MaskField.derivedFrom)? */
export function columnRuleCoversSource(rule: MaskRule, s: SourceColumn): boolean {
  for (const g of globsOf(rule)) {
    const rel = s.relation;
    const relOk = rel === undefined || (s.schema !== undefined && g.relation.test(`${s.schema}.${rel}`)) || g.relation.test(rel);
    if (relOk && (s.column === "*" || g.column.test(s.column))) return true;
  }
  return false;
}

function covers(rule: MaskRule, f: MaskField): boolean {
  if (columnRuleCovers(rule, f)) return true;
  const from = f.derivedFrom;
  if (from !== undefined) for (const s of from) if (columnRuleCoversSource(rule, s)) return true;
  return false;
}

/** The rules that apply to one result field, decided once per result. */
export function rulesForField(f: MaskField, rules: readonly MaskRule[]): FieldRules {
  const whole = rules.find((r) => r.columns.length > 0 && covers(r, f));
  if (whole !== undefined) return { kind: "whole", rule: whole };
  const detect = rules.filter((r) => r.detectors.length > 0);
  return detect.length === 0 ? KEEP : { kind: "detect", rules: detect };
}

// ---------------------------------------------------------------------------------------------
// JSON paths. A leaf's path is rendered as `$` followed by `.key` per object member and `[i]`
// per array element: `$.items[0].card`.

/** One step of a leaf's path: an object key or an array index. */
export type PathStep = string | number;

export function renderPath(path: readonly PathStep[]): string {
  let s = "$";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : `.${p}`;
  return s;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A compiled JSON path pattern (see the header). */
export class JsonPathPattern {
  readonly source: string;
  readonly #re: RegExp;

  constructor(pattern: string) {
    this.source = pattern;
    if (isJsonPath(pattern)) {
      let re = "^\\$";
      let i = 1;
      const n = pattern.length;
      while (i < n) {
        if (pattern.startsWith("..", i)) {
          re += "(?:\\.[^.[]*|\\[\\d+\\])*?";
          i += 1; // the second '.' starts the next key
          continue;
        }
        const c = pattern[i];
        if (c === "[") {
          const close = pattern.indexOf("]", i);
          const inner = close < 0 ? pattern.slice(i + 1) : pattern.slice(i + 1, close);
          re += inner === "*" ? "\\[\\d+\\]" : `\\[${escapeRe(inner)}\\]`;
          i = close < 0 ? n : close + 1;
          continue;
        }
        if (c === ".") {
          let j = i + 1;
          while (j < n && pattern[j] !== "." && pattern[j] !== "[") j++;
          const key = pattern.slice(i + 1, j);
          re += key === "*" ? "\\.[^.[]*" : `\\.${escapeRe(key)}`;
          i = j;
          continue;
        }
        // A key glued to `$` ("$user"): read it as "$.user".
        let j = i;
        while (j < n && pattern[j] !== "." && pattern[j] !== "[") j++;
        re += `\\.${escapeRe(pattern.slice(i, j))}`;
        i = j;
      }
      this.#re = new RegExp(`${re}$`, "i");
    } else {
      // A glob over the dotted path, `*` any run (dots included): "*.email", "user.email"; a
      // bare key ("email", as a column rule names a column of any table) at any depth.
      const glob = pattern.includes(".") ? pattern : `*.${pattern}`;
      const body = escapeRe(glob.toLowerCase()).replace(/\\\*/g, ".*").replace(/\\\?/g, ".");
      this.#re = new RegExp(`^(?:\\$\\.)?${body}$`, "is");
    }
  }

  /** Does this pattern name the leaf (or container) at `rendered` (renderPath's form)? */
  test(rendered: string): boolean {
    return this.#re.test(rendered) || (!isJsonPath(this.source) && this.#re.test(rendered.replace(/\[(\d+)\]/g, ".$1")));
  }
}

export interface JsonPathRule {
  readonly rule: MaskRule;
  readonly patterns: readonly JsonPathPattern[];
}

const jsonPatterns = new WeakMap<MaskRule, readonly JsonPathPattern[]>();

/**
 * The rules whose columns name JSON paths, compiled once per rule: entries starting with `$`,
 * and relation-less globs (`email`, `*.email`) that read as a path as well.
 */
export function jsonPathRules(rules: readonly MaskRule[]): JsonPathRule[] {
  const out: JsonPathRule[] = [];
  for (const rule of rules) {
    let p = jsonPatterns.get(rule);
    if (p === undefined) {
      p = rule.columns.filter((c) => isJsonPath(c) || c.startsWith("*.") || !c.includes(".")).map((c) => new JsonPathPattern(c));
      jsonPatterns.set(rule, p);
    }
    if (p.length > 0) out.push({ rule, patterns: p });
  }
  return out;
}

/** The first rule whose JSON paths name `rendered`, or undefined. */
export function jsonPathRuleFor(rules: readonly JsonPathRule[], rendered: string): MaskRule | undefined {
  for (const r of rules) for (const p of r.patterns) if (p.test(rendered)) return r.rule;
  return undefined;
}
