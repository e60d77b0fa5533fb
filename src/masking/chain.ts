/**
 * One composition of maskers: the rules that apply to a value, run one after another over
 * the previous one's output, with their per-kind counts summed into the caller's record.
 * Every engine masks through this (DataRow fields, COPY lines, terminal lines, JSON bodies).
 *
 * The strategy `null` ends the chain: the value as a whole becomes null (SQL NULL, JSON null);
 * where no null exists (a terminal line) it shows as `[REDACTED]`.
 */
import type { MaskRule } from "../core/decision.js";
import { addCounts } from "./counts.js";
import { maskJson, type JsonMaskResult } from "./json.js";
import type { RuleMasker } from "./rules.js";
import { redactLabel, WHOLE_VALUE_KIND } from "./strategies.js";

/** What a terminal shows for a value whose strategy is `null`. */
export const NULL_IN_TEXT = redactLabel(WHOLE_VALUE_KIND);

/** The part of a masker that text masking needs (an SSH engine holds only this much). */
export type TextMasker = Pick<RuleMasker, "maskText">;

/** MaskChain#text over maskers that only mask text. */
export function chainText(maskers: readonly TextMasker[], value: string, counts: Record<string, number>): string | null | undefined {
  let current: string | undefined;
  for (const m of maskers) {
    const r = m.maskText(current ?? value);
    if (r === undefined) continue;
    addCounts(counts, r.counts);
    if (r.value === null) return null;
    current = r.value;
  }
  return current;
}

/** MaskChain#line over maskers that only mask text. */
export function chainLine(maskers: readonly TextMasker[], text: string, counts: Record<string, number>): string | undefined {
  const r = chainText(maskers, text, counts);
  return r === null ? NULL_IN_TEXT : r;
}

export class MaskChain {
  constructor(readonly maskers: readonly RuleMasker[]) {}

  get empty(): boolean {
    return this.maskers.length === 0;
  }

  /** A text value: the masked text, null (strategy `null`), or undefined when nothing was found. */
  text(value: string, counts: Record<string, number>): string | null | undefined {
    return chainText(this.maskers, value, counts);
  }

  /**
   * The UTF-8 bytes `buf[start, end)` (a field inside a larger message): the replacement
   * bytes, null, or undefined when nothing was found — a clean value is neither decoded nor
   * sliced, so the hot path allocates nothing for it.
   */
  range(buf: Buffer, start: number, end: number, counts: Record<string, number>): Buffer | null | undefined {
    let current: Buffer | undefined;
    for (const m of this.maskers) {
      const r = current === undefined ? m.maskBytes(buf, start, end, counts) : m.maskBytes(current, 0, current.length, counts);
      if (r === undefined) continue;
      if (r === null) return null;
      current = r;
    }
    return current;
  }

  /** A terminal line (or any text with no null): strategy `null` shows as `[REDACTED]`. */
  line(text: string, counts: Record<string, number>): string | undefined {
    return chainLine(this.maskers, text, counts);
  }

  /**
   * A JSON document: string (and number) leaves through this chain, leaves named by the JSON
   * paths of `rules` masked whole (see json.ts). Valid JSON in, valid JSON out.
   */
  json(doc: string, counts: Record<string, number>, rules?: readonly MaskRule[], maskerFor?: (rule: MaskRule) => RuleMasker): JsonMaskResult {
    return maskJson(doc, { chain: this, ...(rules === undefined ? {} : { rules }), ...(maskerFor === undefined ? {} : { maskerFor }) }, counts);
  }
}
