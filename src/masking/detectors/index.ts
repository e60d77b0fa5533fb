/**
 * The content detectors, one file per family, and what the masker needs of them all: the
 * table of detectors, one bit per kind, and the combined prefilter.
 */
import type { Features } from "../prefilter.js";
import type { Detector, DetectorKind, Match } from "./base.js";
import { resolveOverlaps } from "./overlaps.js";
import { couldCard, creditCardDetector } from "./card.js";
import { couldEmail, emailDetector } from "./email.js";
import { couldIban, couldSsn, ibanDetector, ssnDetector } from "./national-ids.js";
import { couldIpv4, ipv4Detector } from "./network.js";
import { couldCompactPhone, couldPhone, phoneDetector, phoneDetectorFor } from "./phone.js";
import { DEFAULT_PHONE_REGIONS } from "./phone-regions.js";
import { couldSecret, entropyThreshold, isSecretKeyName, secretDetector, shannonEntropy } from "./secrets.js";
import { apiKeyDetector, awsKeyDetector, couldApiKey, couldAws, couldJwt, couldPrivateKey, jwtDetector, privateKeyDetector } from "./tokens.js";

export {
  DETECTOR_KINDS,
  SECRET_FAMILY,
  detectorNameSchema,
  expandDetectorNames,
  isSecretKind,
  type Detector,
  type DetectorKind,
  type DetectorName,
  type Match,
} from "./base.js";
export { resolveOverlaps } from "./overlaps.js";
export {
  DEFAULT_PHONE_REGIONS,
  apiKeyDetector,
  awsKeyDetector,
  couldCompactPhone,
  creditCardDetector,
  emailDetector,
  entropyThreshold,
  ibanDetector,
  ipv4Detector,
  isSecretKeyName,
  jwtDetector,
  phoneDetector,
  phoneDetectorFor,
  privateKeyDetector,
  secretDetector,
  shannonEntropy,
  ssnDetector,
};

export const DETECTORS: Readonly<Record<DetectorKind, Detector>> = {
  email: emailDetector,
  credit_card: creditCardDetector,
  phone: phoneDetector,
  ssn: ssnDetector,
  iban: ibanDetector,
  ipv4: ipv4Detector,
  aws_key: awsKeyDetector,
  jwt: jwtDetector,
  private_key: privateKeyDetector,
  api_key: apiKeyDetector,
  secret: secretDetector,
};

/** One bit per kind, in DETECTOR_KINDS order. */
export const KIND_BITS: Readonly<Record<DetectorKind, number>> = {
  email: 1 << 0,
  credit_card: 1 << 1,
  phone: 1 << 2,
  ssn: 1 << 3,
  iban: 1 << 4,
  ipv4: 1 << 5,
  aws_key: 1 << 6,
  jwt: 1 << 7,
  private_key: 1 << 8,
  api_key: 1 << 9,
  secret: 1 << 10,
};

/**
 * The kinds whose prefilter passes, as a bitmask (KIND_BITS). One monomorphic call instead of a
 * call per detector: this runs for every value on the hot path.
 */
export function candidateKinds(f: Features): number {
  let m = 0;
  if (couldEmail(f)) m |= 1 << 0;
  if (couldCard(f)) m |= 1 << 1;
  if (couldPhone(f)) m |= 1 << 2;
  if (couldSsn(f)) m |= 1 << 3;
  if (couldIban(f)) m |= 1 << 4;
  if (couldIpv4(f)) m |= 1 << 5;
  if (couldAws(f)) m |= 1 << 6;
  if (couldJwt(f)) m |= 1 << 7;
  if (couldPrivateKey(f)) m |= 1 << 8;
  if (couldApiKey(f)) m |= 1 << 9;
  if (couldSecret(f)) m |= 1 << 10;
  return m;
}

/** All matches of the given detectors in `text`, merged (sorted, non-overlapping). */
export function detect(text: string, kinds: readonly DetectorKind[]): Match[] {
  const out: Match[] = [];
  for (const k of kinds) DETECTORS[k].collect(text, out);
  return resolveOverlaps(out);
}
