/**
 * One masker per mask rule (built once per rule, cached), in the shape every engine uses:
 * content detection over text or a byte range, whole-value masking for column / JSON-path
 * rules, and the kind a value shows (so an email column reads `[EMAIL]`, else `[REDACTED]`).
 */
import type { MaskRule } from "../core/decision.js";
import { GatewayError } from "../core/errors.js";
import { MaskCounts, RecordSink } from "./counts.js";
import { detectorNameSchema, type DetectorName } from "./detectors.js";
import { ValueMasker } from "./masker.js";
import { WHOLE_VALUE_KIND } from "./strategies.js";

export interface RuleMasker {
  /** Content detection over a text value; undefined when nothing was found. */
  maskText(text: string): { readonly value: string | null; readonly counts: Readonly<Record<string, number>> } | undefined;
  /**
   * Content detection over the UTF-8 bytes `buf[start, end)`: undefined when nothing was found
   * (clean values are never decoded, nor sliced). Masked values are counted per kind into `counts`.
   */
  maskBytes(buf: Buffer, start: number, end: number, counts: Record<string, number>): Buffer | null | undefined;
  /** The kind a value shows (`email`, …), for labelling a whole-value mask; "column" when none. */
  kindOf(text: string): string;
  /** A column rule: the whole value, labelled `kind`. */
  maskWhole(text: string, kind: string): string | null;
  /** Whether maskWhole's output depends only on the kind (redact): then it is computed once per column. */
  readonly constantPerKind: boolean;
  /**
   * The detector kinds it runs. The JSON API reads it to mask the value of a secret-named key
   * (`"password": "…"`) as the secret detector would in the document's text.
   */
  readonly kinds?: readonly string[];
}

/**
 * A mask rule as the library reads it: the core rule plus, optionally, the regions whose
 * national phone formats the `phone` detector knows (ISO 3166 codes; default: PHONE_REGIONS).
 */
export type MaskingRule = MaskRule;

const KIND_SNIFFER_DETECTORS: readonly DetectorName[] = ["email", "credit_card", "phone", "ssn", "iban", "secret"];

export function detectorNames(rule: { readonly rule: string; readonly detectors: readonly string[] }): DetectorName[] {
  return rule.detectors.map((d) => {
    const r = detectorNameSchema.safeParse(d);
    if (!r.success) {
      throw new GatewayError("GW_CONFIG", `policy "${rule.rule}": unknown detector "${d}" (expected one of: ${detectorNameSchema.options.join(", ")})`);
    }
    return r.data;
  });
}

export function createMaskerFactory(key: Buffer): (rule: MaskingRule) => RuleMasker {
  const cache = new WeakMap<MaskRule, RuleMasker>();
  const sniffer = new ValueMasker({ detectors: KIND_SNIFFER_DETECTORS, strategy: "redact", key });
  const kindOf = (text: string): string => {
    const counts = new MaskCounts();
    if (sniffer.maskText(text, counts) === undefined) return WHOLE_VALUE_KIND;
    const kinds = Object.keys(counts.toJSON());
    return kinds.length === 1 && kinds[0] !== undefined ? kinds[0] : WHOLE_VALUE_KIND;
  };
  return (rule) => {
    let m = cache.get(rule);
    if (m !== undefined) return m;
    const masker = new ValueMasker({
      detectors: detectorNames(rule),
      strategy: rule.strategy,
      key,
      ...(rule.phoneRegions === undefined ? {} : { phoneRegions: rule.phoneRegions }),
    });
    const sink = new RecordSink();
    m = {
      maskText(text) {
        const r = masker.maskText(text);
        return r === undefined ? undefined : { value: r.value, counts: r.counts };
      },
      maskBytes(buf, start, end, counts) {
        sink.target = counts;
        return masker.maskRange(buf, start, end, sink);
      },
      kindOf,
      maskWhole(text, kind) {
        return masker.maskWhole(text, kind);
      },
      constantPerKind: rule.strategy === "redact" || rule.strategy === "null",
      kinds: masker.kinds,
    };
    cache.set(rule, m);
    return m;
  };
}
