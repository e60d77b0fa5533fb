/**
 * Builds the masker for each mask rule (once per rule) on top of the masking library, in the
 * shape the protocol engines use. Column rules label the value with the kind its content shows
 * (`[EMAIL]` for an email column), else `[REDACTED]`.
 */
import type { MaskRule } from "../core/decision.js";
import { GatewayError } from "../core/errors.js";
import { MaskCounts, ValueMasker, WHOLE_VALUE_KIND, detectorNameSchema, type CountSink, type DetectorName } from "../masking/index.js";
import type { RuleMasker } from "../protocols/postgres/result-masking.js";

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

/**
 * Adds a masker's counts straight into the record the engine passes for the current value: one
 * instance per masker, retargeted per call, so a clean value costs no allocation and no clearing
 * (clearing a Map per value showed as the largest item in profiles of masked streams).
 */
class RecordSink implements CountSink {
  target: Record<string, number> = {};
  add(kind: string, n = 1): void {
    this.target[kind] = (this.target[kind] ?? 0) + n;
  }
}

export function createMaskerFactory(key: Buffer): (rule: MaskRule) => RuleMasker {
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
    const masker = new ValueMasker({ detectors: detectorNames(rule), strategy: rule.strategy, key });
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
    };
    cache.set(rule, m);
    return m;
  };
}
