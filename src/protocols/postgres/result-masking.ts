/**
 * Masking of result rows on the wire (pure: no I/O). For each result, the fields of its
 * RowDescription are resolved to relation.column (through the catalog) and planned once:
 * keep, mask whole (a column rule on a text column), null (a column rule on a non-text column),
 * or detect (content detectors on text values). Each
 * DataRow is then rewritten with recomputed lengths, one at a time (constant memory).
 * (protocol-message-formats: RowDescription, DataRow.)
 */
import type { MaskRule } from "../../core/decision.js";
import { ColumnGlob } from "../../policy/glob.js";
import { encodeDataRow, forEachDataRowValue } from "./wire/index.js";

export interface RuleMasker {
  /** Content detection over a text value; undefined when nothing was found. */
  maskText(text: string): { readonly value: string | null; readonly counts: Readonly<Record<string, number>> } | undefined;
  /**
   * Content detection over UTF-8 bytes: undefined when nothing was found (clean values are
   * never decoded). Masked values are counted per kind into `counts`.
   */
  maskBytes(bytes: Buffer, counts: Record<string, number>): Buffer | null | undefined;
  /** The kind a value shows (`email`, …), for labelling a whole-value mask; "column" when none. */
  kindOf(text: string): string;
  /** A column rule: the whole value, labelled `kind`. */
  maskWhole(text: string, kind: string): string | null;
  /** Whether maskWhole's output depends only on the kind (redact): then it is computed once per column. */
  readonly constantPerKind: boolean;
}

export interface ResolvedField {
  readonly name: string;
  readonly relation?: { readonly schema: string; readonly name: string };
  readonly column?: string;
  readonly typeOid: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}

export type FieldAction =
  | { readonly kind: "keep" }
  | {
      readonly kind: "whole";
      readonly masker: RuleMasker;
      readonly rule: string;
      readonly json: boolean;
      /**
       * Per result column: the label, taken from the first value (columns hold one kind of
       * data; labelling is cosmetic, the whole value is masked whatever it holds), and, when
       * the output depends only on the label, the encoded output itself.
       */
      readonly memo: { label?: string; bytes?: Buffer | null };
    }
  /** A column rule on a non-text type (integer, date, …): no masked text fits it, so it becomes NULL. */
  | { readonly kind: "null"; readonly rule: string }
  | { readonly kind: "detect"; readonly maskers: readonly RuleMasker[]; readonly json: boolean; readonly jsonbBinary: boolean };

/** Types whose binary form is their UTF-8 text (jsonb: a version byte, then text). */
const TEXT_TYPES = new Set([25 /* text */, 1043 /* varchar */, 1042 /* bpchar */, 19 /* name */, 114 /* json */, 3802 /* jsonb */, 142 /* xml */, 705 /* unknown */, 18 /* char */]);
const JSON_TYPES = new Set([114, 3802]);
const JSONB = 3802;
/** OIDs from here on are user-defined (domains, extensions such as citext): text in text format. */
const FIRST_USER_OID = 16384;

const columnGlobs = new WeakMap<MaskRule, readonly ColumnGlob[]>();
function globsOf(rule: MaskRule): readonly ColumnGlob[] {
  let g = columnGlobs.get(rule);
  if (g === undefined) {
    g = rule.columns.map((c) => new ColumnGlob(c));
    columnGlobs.set(rule, g);
  }
  return g;
}

function columnRuleMatches(rule: MaskRule, f: ResolvedField): boolean {
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

/** Decide, once per result, what happens to each field. */
export function planFields(fields: readonly ResolvedField[], rules: readonly MaskRule[], maskerFor: (rule: MaskRule) => RuleMasker): FieldAction[] {
  return fields.map((f): FieldAction => {
    const textual = TEXT_TYPES.has(f.typeOid) || (f.format === 0 && f.typeOid >= FIRST_USER_OID);
    const json = JSON_TYPES.has(f.typeOid);
    const whole = rules.find((r) => r.columns.length > 0 && columnRuleMatches(r, f));
    if (whole !== undefined) {
      // `[REDACTED]` in an integer or timestamp column would break every typed client (text
      // format) or cannot be encoded at all (binary): such values are masked as NULL.
      if (!textual || whole.strategy === "null") return { kind: "null", rule: whole.rule };
      return { kind: "whole", masker: maskerFor(whole), rule: whole.rule, json, memo: {} };
    }
    const detectors = rules.filter((r) => r.detectors.length > 0);
    if (detectors.length === 0 || !(textual || f.format === 0)) return { kind: "keep" };
    // Numbers, dates, booleans … in text format cannot hold an email or a key; skip them.
    if (!textual) return { kind: "keep" };
    return { kind: "detect", maskers: detectors.map(maskerFor), json, jsonbBinary: f.typeOid === JSONB && f.format === 1 };
  });
}

export function needsWork(actions: readonly FieldAction[]): boolean {
  return actions.some((a) => a.kind !== "keep");
}

/** A JSON string literal, so a masked json/jsonb value stays valid JSON for the client's parser. */
function jsonString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Rewrite one DataRow body. Returns the whole new message (type + length + body), or
 * undefined when nothing changed (the original bytes are forwarded). Adds masked counts per
 * kind to `counts`.
 */
export function rewriteDataRow(body: Buffer, actions: readonly FieldAction[], counts: Record<string, number>): Buffer | undefined {
  let values: (Buffer | null)[] | undefined;
  const ensure = (): (Buffer | null)[] => {
    if (values !== undefined) return values;
    const v: (Buffer | null)[] = [];
    forEachDataRowValue(body, (_i, start, length) => v.push(length < 0 ? null : body.subarray(start, start + length)));
    values = v;
    return v;
  };
  const state = { changed: false };
  forEachDataRowValue(body, (i, start, length) => {
    const action = actions[i];
    if (action === undefined || action.kind === "keep" || length < 0) return;
    if (action.kind === "null") {
      counts[`column:${action.rule}`] = (counts[`column:${action.rule}`] ?? 0) + 1;
      ensure()[i] = null;
      state.changed = true;
      return;
    }
    const raw = body.subarray(start, start + length);
    const offset = action.kind === "detect" && action.jsonbBinary ? 1 : 0;
    let out: Buffer | null;
    if (action.kind === "whole") {
      const memo = action.memo;
      if (memo.bytes !== undefined) out = memo.bytes;
      else {
        const text = raw.toString("utf8");
        memo.label ??= action.masker.kindOf(text);
        const masked = action.masker.maskWhole(text, memo.label);
        out = masked === null ? null : Buffer.from(action.json ? jsonString(masked) : masked, "utf8");
        if (action.masker.constantPerKind) memo.bytes = out;
      }
      counts[`column:${action.rule}`] = (counts[`column:${action.rule}`] ?? 0) + 1;
    } else {
      const original = offset === 1 ? raw.subarray(1) : raw;
      let current: Buffer | null = original;
      for (const m of action.maskers) {
        if (current === null) break;
        const r = m.maskBytes(current, counts);
        if (r === undefined) continue;
        current = r;
      }
      if (current === original) return;
      out = current === null ? null : offset === 1 ? Buffer.concat([raw.subarray(0, 1), current]) : current;
    }
    const v = ensure();
    v[i] = out;
    state.changed = true;
  });
  return state.changed && values !== undefined ? encodeDataRow(values) : undefined;
}
