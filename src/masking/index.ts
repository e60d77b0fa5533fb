/**
 * The masking library: content detectors, masking strategies and the per-policy ValueMasker.
 * Pure and synchronous; the wire integration (DataRow / COPY rewriting) lives in the engines.
 */
export {
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
  MaskCounts,
  type CountSink,
  ValueMasker,
  type MaskTextResult,
  type ValueMaskerOptions,
} from "./masker.js";
