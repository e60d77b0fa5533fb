/**
 * Masking of preview samples (issue 21, core/preview.ts): a few rows a held write would change,
 * shown to approvers, masked like a result field of the same name. Shared by every engine that
 * previews (PostgreSQL, MySQL). Column rules match by name only here (no origin is known):
 * over-masking is the safe side.
 */
import type { MaskRule } from "../core/decision.js";
import { rulesForField } from "./plan.js";
import type { RuleMasker } from "./rules.js";

/** The longest value a sample shows. */
export const MAX_SAMPLE_VALUE_CHARS = 200;

export function clipText(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`;
}

/** One sample value, masked like a result field named `column`, clipped. */
export function maskSampleValue(v: string | null, column: string, masks: readonly MaskRule[], maskerFor: (rule: MaskRule) => RuleMasker): string | null {
  if (v === null) return null;
  const rules = rulesForField({ name: column }, masks);
  let out: string | null = v;
  switch (rules.kind) {
    case "keep":
      break;
    case "whole": {
      const m = maskerFor(rules.rule);
      out = m.maskWhole(v, m.kindOf(v));
      break;
    }
    case "detect":
      for (const rule of rules.rules) {
        if (out === null) break;
        const r = maskerFor(rule).maskText(out);
        if (r !== undefined) out = r.value;
      }
      break;
  }
  return out === null ? null : clipText(out, MAX_SAMPLE_VALUE_CHARS);
}

/** Rows of a sample, each value masked by its column's name. */
export function maskSampleRows(
  columns: readonly string[],
  rows: readonly (readonly (string | null)[])[],
  masks: readonly MaskRule[],
  maskerFor: (rule: MaskRule) => RuleMasker,
): (string | null)[][] {
  return rows.map((r) => r.map((v, i) => maskSampleValue(v, columns[i] ?? "", masks, maskerFor)));
}
