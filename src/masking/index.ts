/**
 * The masking library every engine calls: content detectors (detectors/), masking strategies,
 * the per-rule ValueMasker and RuleMasker, plan application (which rule covers which field:
 * column globs, JSON paths, detector sets), one composition of maskers with per-kind counts
 * (MaskChain), and the value APIs: a text value, a byte range, a JSON document, a terminal
 * line. Pure and synchronous; the wire framing (DataRow, COPY, SSH channels) stays in the engines.
 */
export {
  DEFAULT_PHONE_REGIONS,
  phoneDetectorFor,
  DETECTOR_KINDS,
  DETECTORS,
  SECRET_FAMILY,
  detect,
  detectorNameSchema,
  entropyThreshold,
  expandDetectorNames,
  isSecretKeyName,
  isSecretKind,
  resolveOverlaps,
  shannonEntropy,
  type Detector,
  type DetectorKind,
  type DetectorName,
  type Match,
} from "./detectors.js";
export { newFeatures, scanBytes, scanText, type Features } from "./prefilter.js";
export {
  MASK_STRATEGIES,
  MIN_HASH_KEY_BYTES,
  PARTIAL_KEEP,
  PARTIAL_MIN_CONTENT,
  TRUNCATED_KIND,
  TRUNCATED_MARK,
  WHOLE_VALUE_KIND,
  KeyedHasher,
  hashValue,
  maskMatch,
  maskStrategySchema,
  maskWithEncoding,
  partialMask,
  redactLabel,
  type MaskStrategy,
} from "./strategies.js";
export {
  DEFAULT_MAX_SCAN_BYTES,
  MIN_MATCH_LENGTH,
  MIN_MAX_SCAN_BYTES,
  ValueMasker,
  type MaskTextResult,
  type ValueMaskerOptions,
} from "./masker.js";
export { MaskCounts, RecordSink, addCounts, type CountSink } from "./counts.js";
export { createMaskerFactory, detectorNames, type MaskingRule, type RuleMasker } from "./rules.js";
export { MaskChain, NULL_IN_TEXT, chainLine, chainText, type TextMasker } from "./chain.js";
export { MAX_JSON_DEPTH, maskJson, type JsonMaskOptions, type JsonMaskResult } from "./json.js";
export {
  JsonPathPattern,
  columnRuleCovers,
  jsonPathRuleFor,
  jsonPathRules,
  renderPath,
  rulesForField,
  type FieldRules,
  type JsonPathRule,
  type MaskField,
  type PathStep,
} from "./plan.js";
