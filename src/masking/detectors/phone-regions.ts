/**
 * The countries whose national phone formats the `phone` detector knows, from the metadata of
 * libphonenumber-js (Google's libphonenumber data): per country, the pattern a national
 * (significant) number matches. A policy may name its countries (`phoneRegions`); the default
 * is DEFAULT_PHONE_REGIONS. Built once per distinct list; the hot path only runs the compiled
 * patterns, and only on candidates that already have a phone's shape (phone.ts): the library's
 * own parser costs ~20–30 µs per call and country here, too slow for every DataRow value.
 */
import { Metadata, getCountryCallingCode, isSupportedCountry, type CountryCode } from "libphonenumber-js/max";
import { GatewayError } from "../../core/errors.js";

/** The national formats known when a policy names none: the countries the benchmark measures, and Canada and Australia. */
export const DEFAULT_PHONE_REGIONS: readonly string[] = ["US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "JP", "BR", "IN", "AU"];

/**
 * Countries whose numbers are written without a trunk prefix (the leading digits are part of
 * the number): "933 57 34 91" (ES), "06 1234 5678" (IT keeps its 0), "912 345 678" (PT).
 * libphonenumber's typed API does not expose the national prefix, hence this list. (Indian
 * mobiles are often written "98765 43210", but India's national pattern admits almost any ten
 * digits, so India stays a trunk-0 country here: such numbers are found with +91 or a 0.)
 */
const WRITTEN_WITHOUT_TRUNK_PREFIX: ReadonlySet<string> = new Set([
  "ES", "IT", "PT", "DK", "NO", "GR", "PL", "CZ", "SK", "LU", "IS", "MT", "CY", "EE", "LV", "SG", "HK", "MO", "QA", "BH", "KW", "SM", "VA", "MC",
]);

export interface PhoneRegions {
  /** Some region of the North American Numbering Plan (calling code 1): NXX-NXX-XXXX shapes. */
  readonly nanp: boolean;
  /** National significant numbers of regions dialled with a trunk prefix (tested after its "0"). */
  readonly trunk: readonly RegExp[];
  /** Whole national numbers of regions written without a trunk prefix. */
  readonly direct: readonly RegExp[];
  /**
   * Unseparated numbers without a leading 0 ("933573491") count only when the policy named the
   * regions itself: by default such digit runs are ids far more often than phones.
   */
  readonly compactDirect: boolean;
}

interface PlanWithPattern {
  possibleLengths(): number[];
  nationalNumberPattern?: unknown;
}

function nationalPattern(region: CountryCode): RegExp {
  const md = new Metadata();
  md.selectNumberingPlan(region);
  const plan = md.numberingPlan as PlanWithPattern | undefined;
  if (plan === undefined) throw new GatewayError("GW_CONFIG", `unknown phone region "${region}"`);
  // nationalNumberPattern() is present in the `max` metadata but not in the typed interface;
  // without it, the possible lengths alone.
  const fn = plan.nationalNumberPattern;
  const pattern = typeof fn === "function" ? (fn.call(plan) as unknown) : undefined;
  if (typeof pattern === "string" && pattern.length > 0) return new RegExp(`^(?:${pattern})$`);
  return new RegExp(`^\\d{${Math.min(...plan.possibleLengths())},${Math.max(...plan.possibleLengths())}}$`);
}

function isCountryCode(r: string): r is CountryCode {
  return isSupportedCountry(r);
}

const cache = new Map<string, PhoneRegions>();

/** Whether `code` names a region the phone detector knows (an ISO 3166 code libphonenumber has metadata for). */
export function isPhoneRegion(code: string): boolean {
  return isCountryCode(code.toUpperCase());
}

/** The compiled region set for a list of ISO 3166 codes (`explicit`: a policy named them). */
export function phoneRegions(codes: readonly string[], explicit: boolean): PhoneRegions {
  const key = `${explicit ? "!" : ""}${[...codes].map((c) => c.toUpperCase()).sort().join(",")}`;
  let r = cache.get(key);
  if (r !== undefined) return r;
  let nanp = false;
  const trunk: RegExp[] = [];
  const direct: RegExp[] = [];
  for (const raw of codes) {
    const code = raw.toUpperCase();
    if (!isCountryCode(code)) throw new GatewayError("GW_CONFIG", `unknown phone region "${raw}" (expected an ISO 3166 country code such as "DE")`);
    if (getCountryCallingCode(code) === "1") {
      nanp = true;
      continue;
    }
    const re = nationalPattern(code);
    if (WRITTEN_WITHOUT_TRUNK_PREFIX.has(code)) direct.push(re);
    else trunk.push(re);
  }
  r = { nanp, trunk, direct, compactDirect: explicit };
  cache.set(key, r);
  return r;
}
