/**
 * Trusted external issuers: verify a JWT presented by a workload (an IdP's client-credentials
 * token, a CI system's OIDC token, a Kubernetes service-account token) or a person, and map its
 * claims to a Principal by the issuer's configured rules.
 *
 * Order of checks (each refusal is GW_AUTH_*; none of them echoes the token):
 *  1. Shape, before any parsing cost: length cap, compact JWS with three parts (a JWE, five
 *     parts, is refused: we never decrypt), base64url only.
 *  2. Header: `alg` must be in the issuer's asymmetric allow-list (`none` and HS* can never be:
 *     RFC 8725 §3.1, §3.2), `crit` refused (RFC 7515 §4.1.11: we understand no extensions),
 *     `typ` when present must be a JWT type (RFC 8725 §3.11), `kid` printable and short.
 *     `jku`, `x5u`, `jwk`, `x5c` are never used to find a key: keys come only from the
 *     configured issuer's JWKS.
 *  3. `iss` must name a configured issuer — checked on the unverified payload so an untrusted
 *     token causes no network request at all.
 *  4. Signature against the issuer's JWKS (discovered via /.well-known/openid-configuration,
 *     cached; an unknown `kid` triggers one refetch per cooldown — jose's createRemoteJWKSet),
 *     then `aud`, `exp`/`nbf`/`iat` with the configured skew, `maxTokenAge`.
 *  5. Claim conditions (`claims:` globs) and the principal-name claim.
 */
import { errors as joseErrors, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import type { JWTPayload, JWTVerifyGetKey } from "jose";
import type { Logger } from "pino";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import { ASYMMETRIC_ALGORITHMS, issuerAlias } from "./config-schema.js";
import type { OidcIssuerSettings } from "./config-schema.js";

/** External JWTs (a Kubernetes token with many claims) can be large, but not unbounded. */
export const MAX_EXTERNAL_TOKEN_LENGTH = 16 * 1024;
const DISCOVERY_TIMEOUT_MS = 5000;
const DISCOVERY_MAX_BYTES = 256 * 1024;
/** After a failed discovery, don't hammer the issuer: retry at most this often. */
const DISCOVERY_RETRY_MS = 10_000;
const ACCEPTED_TYP = new Set(["jwt", "at+jwt", "application/jwt", "application/at+jwt"]);
const ALLOWED: ReadonlySet<string> = new Set(ASYMMETRIC_ALGORITHMS);
const SEGMENT = /^[A-Za-z0-9_-]+$/;

export interface VerifiedExternal {
  readonly principal: Principal;
  /** The issuer entry that accepted the token. */
  readonly issuer: OidcIssuerSettings;
  readonly claims: JWTPayload;
}

const discoveryDoc = z.looseObject({
  issuer: z.string(),
  jwks_uri: z.url(),
});

function invalid(message = "invalid token", cause?: unknown): GatewayError {
  return new GatewayError("GW_AUTH_INVALID", message, cause === undefined ? {} : { cause });
}

/** Shell-style glob with only `*` (any run) and `?` (one char), anchored, case-sensitive. */
export function globMatch(glob: string, value: string): boolean {
  const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "s");
  return re.test(value);
}

function claimValues(v: unknown): string[] | undefined {
  if (typeof v === "string") return [v];
  if (typeof v === "number" || typeof v === "boolean") return [String(v)];
  if (Array.isArray(v) && v.every((x): x is string => typeof x === "string")) return v;
  return undefined;
}

/** Read a claim by name; a dotted name walks nested objects (e.g. `kubernetes.io.namespace` is tried literally first). */
function readClaim(payload: JWTPayload, name: string): unknown {
  if (name in payload) return payload[name];
  let cur: unknown = payload;
  for (const part of name.split(".")) {
    if (typeof cur !== "object" || cur === null || !(part in cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Characters refused in principal names and groups taken from tokens: control characters
 * (Cc), invisible format characters (Cf: zero-width spaces and joiners, bidi overrides — the
 * stuff of lookalike names in audit trails) and line/paragraph separators (Zl, Zp).
 */
const UNSAFE_TEXT = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

export function cleanText(v: string, max: number): string | undefined {
  if (v.length === 0 || v.length > max) return undefined;
  if (UNSAFE_TEXT.test(v)) return undefined;
  return v;
}

/** A group name from an identity provider (token claim, userinfo, SAML attribute), or undefined if unusable. */
export function cleanGroup(v: unknown): string | undefined {
  return typeof v === "string" ? cleanText(v, 200) : undefined;
}

/** Text that looks like an email address: person ids made from one are lower-cased (see personName). */
const EMAIL_SHAPE = /^[^@\s]+@[^@\s]+$/;

/**
 * The name part of a person's principal id (`user:<name>`). Email addresses are compared
 * case-insensitively by every identity provider, so `Frank@Corp.test` and `frank@corp.test`
 * must be one principal: otherwise a block (or a grant) on one spelling misses the other.
 */
export function personName(v: string): string {
  return EMAIL_SHAPE.test(v) ? v.toLowerCase() : v;
}

/** The latest expiry we represent (RFC 3339 year 9999); beyond it a Date is invalid or absurd. */
const MAX_NUMERIC_DATE_S = 253_402_300_799;

interface IssuerKeys {
  getKey: JWTVerifyGetKey | undefined;
  pending: Promise<JWTVerifyGetKey> | undefined;
  failedAt: number;
}

export interface TrustedIssuersOptions {
  readonly issuers: readonly OidcIssuerSettings[];
  readonly logger: Logger;
  /** Time source (tests). */
  readonly clock?: () => Date;
  /** After a JWKS fetch, an unknown `kid` triggers no new fetch for this long (default 30 s). */
  readonly jwksCooldownMs?: number;
  /** The configured service account of a name, for `principal: { serviceAccount: … }` rules (read at every verification). */
  readonly serviceAccount?: (name: string) => { readonly name: string; readonly groups: readonly string[] } | undefined;
}

export class TrustedIssuers {
  readonly #byIssuer = new Map<string, OidcIssuerSettings[]>();
  readonly #keys = new Map<string, IssuerKeys>();
  readonly #logger: Logger;
  readonly #clock: () => Date;
  readonly #cooldownMs: number;
  readonly #serviceAccount: NonNullable<TrustedIssuersOptions["serviceAccount"]>;

  constructor(options: TrustedIssuersOptions) {
    this.#cooldownMs = options.jwksCooldownMs ?? 30_000;
    this.#serviceAccount = options.serviceAccount ?? (() => undefined);
    for (const o of options.issuers) {
      const list = this.#byIssuer.get(o.issuer) ?? [];
      list.push(o);
      this.#byIssuer.set(o.issuer, list);
    }
    this.#logger = options.logger;
    this.#clock = options.clock ?? (() => new Date());
  }

  get size(): number {
    return this.#byIssuer.size;
  }

  /** Whether `iss` names a configured issuer. */
  trusts(iss: string): boolean {
    return this.#byIssuer.has(iss);
  }

  /** The unverified `iss` of a compact JWS, or undefined if it is not one. Cheap; for routing only. */
  static peekIssuer(token: string): string | undefined {
    try {
      const iss = decodeJwt(token).iss;
      return typeof iss === "string" ? iss : undefined;
    } catch {
      return undefined;
    }
  }

  async verify(token: string): Promise<VerifiedExternal> {
    if (token.length === 0) throw new GatewayError("GW_AUTH_MISSING", "no token presented");
    if (token.length > MAX_EXTERNAL_TOKEN_LENGTH) throw invalid("invalid token: too large");
    const parts = token.split(".");
    if (parts.length === 5) throw invalid("invalid token: encrypted tokens (JWE) are not accepted");
    if (parts.length !== 3 || !parts.every((p, i) => SEGMENT.test(p) || (i === 2 && p === ""))) throw invalid();
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (e) {
      throw invalid("invalid token", e);
    }
    const alg = header.alg;
    if (typeof alg !== "string" || !ALLOWED.has(alg)) throw invalid(`invalid token: algorithm ${typeof alg === "string" ? JSON.stringify(alg.slice(0, 20)) : "(none)"} is not accepted`);
    if (header.crit !== undefined) throw invalid("invalid token: critical header extensions are not supported");
    if (header.typ !== undefined && (typeof header.typ !== "string" || !ACCEPTED_TYP.has(header.typ.toLowerCase()))) {
      throw invalid("invalid token: unexpected token type");
    }
    if (header.kid !== undefined && (typeof header.kid !== "string" || !/^[\x21-\x7e]{1,256}$/.test(header.kid))) {
      throw invalid("invalid token: malformed key id");
    }
    const iss = unverified.iss;
    const candidates = typeof iss === "string" ? this.#byIssuer.get(iss) : undefined;
    if (candidates === undefined || typeof iss !== "string") throw invalid("invalid token: untrusted issuer");

    let lastError: GatewayError = invalid();
    for (const entry of candidates) {
      if (!entry.algorithms.includes(alg as (typeof entry.algorithms)[number])) {
        lastError = invalid(`invalid token: algorithm ${alg} is not accepted for this issuer`);
        continue;
      }
      const getKey = await this.#keySet(entry);
      let payload: JWTPayload;
      try {
        const result = await jwtVerify(token, getKey, {
          algorithms: entry.algorithms,
          issuer: entry.issuer,
          audience: entry.audience,
          clockTolerance: Math.ceil(entry.clockSkew / 1000),
          currentDate: this.#clock(),
          requiredClaims: ["exp", "sub"],
          ...(entry.maxTokenAge === undefined ? {} : { maxTokenAge: Math.ceil(entry.maxTokenAge / 1000) }),
        });
        payload = result.payload;
      } catch (e) {
        lastError = this.#mapJoseError(e);
        // A bad signature or unknown key fails the same way for every entry of this issuer.
        if (lastError.code !== "GW_AUTH_INVALID" || e instanceof joseErrors.JWSSignatureVerificationFailed || e instanceof joseErrors.JWKSNoMatchingKey) {
          throw lastError;
        }
        continue;
      }
      const nowS = Math.floor(this.#clock().getTime() / 1000);
      const skewS = Math.ceil(entry.clockSkew / 1000);
      if (typeof payload.iat === "number" && payload.iat > nowS + skewS) {
        lastError = invalid("invalid token: issued in the future");
        continue;
      }
      if (typeof payload.exp !== "number" || !Number.isFinite(payload.exp) || payload.exp > MAX_NUMERIC_DATE_S) {
        lastError = invalid("invalid token: claim exp out of range");
        continue;
      }
      const mapped = this.#mapPrincipal(entry, payload);
      if (mapped instanceof GatewayError) {
        lastError = mapped;
        continue;
      }
      return { principal: mapped, issuer: entry, claims: payload };
    }
    throw lastError;
  }

  #mapJoseError(e: unknown): GatewayError {
    if (e instanceof GatewayError) return e;
    if (e instanceof joseErrors.JWTExpired) {
      const exp = e.payload.exp;
      return new GatewayError("GW_AUTH_EXPIRED", typeof exp === "number" ? `token expired at ${new Date(exp * 1000).toISOString()}` : "token expired", { cause: e });
    }
    if (e instanceof joseErrors.JWTClaimValidationFailed) {
      const what = e.claim === "aud" ? "wrong audience" : e.claim === "iss" ? "wrong issuer" : e.claim === "nbf" ? "not valid yet" : `claim ${e.claim} invalid`;
      return invalid(`invalid token: ${what}`, e);
    }
    if (e instanceof joseErrors.JWKSNoMatchingKey) return invalid("invalid token: unknown signing key", e);
    if (e instanceof joseErrors.JWKSTimeout || e instanceof joseErrors.JWKSInvalid) {
      return new GatewayError("GW_AUTH_INVALID", "invalid token: the issuer's keys are unavailable", { cause: e });
    }
    return invalid("invalid token", e);
  }

  #mapPrincipal(entry: OidcIssuerSettings, payload: JWTPayload): Principal | GatewayError {
    for (const [claim, want] of Object.entries(entry.claims ?? {})) {
      const values = claimValues(readClaim(payload, claim));
      const globs = typeof want === "string" ? [want] : want;
      if (values === undefined || !values.some((v) => globs.some((g) => globMatch(g, v)))) {
        return invalid(`invalid token: claim ${claim} does not match this issuer's rules`);
      }
    }
    const rule = entry.principal;
    const exp = typeof payload.exp === "number" ? new Date(payload.exp * 1000) : undefined;
    if ("serviceAccount" in rule) {
      // The token names a configured service account: it becomes sa:<name> with that account's
      // configured groups (never the token's: an issuer must not widen a service account).
      const raw = readClaim(payload, rule.serviceAccount.claim);
      const value = typeof raw === "string" ? cleanText(raw, 300) : undefined;
      if (value === undefined) return invalid(`invalid token: claim ${rule.serviceAccount.claim} missing or not a string`);
      const account = this.#serviceAccount(`${rule.serviceAccount.prefix}${value}`);
      if (account === undefined) return invalid(`invalid token: claim ${rule.serviceAccount.claim} names no configured service account`);
      return { kind: "service_account", id: `sa:${account.name}`, name: account.name, groups: [...account.groups], ...(exp === undefined ? {} : { expiresAt: exp }) };
    }
    const rawName = readClaim(payload, rule.name);
    const nameValue = typeof rawName === "string" ? cleanText(rawName, 300) : undefined;
    if (nameValue === undefined) return invalid(`invalid token: claim ${rule.name} missing or not a string`);
    // OpenID Connect Core §5.1: an address the provider has not verified is anybody's claim
    // (the "nOAuth" impersonation). A token naming its principal by email must not say it is unverified.
    if (rule.name === "email" && (payload["email_verified"] === false || payload["email_verified"] === "false")) {
      return invalid("invalid token: the email address is not verified");
    }
    const kind = rule.kind;
    const name = kind === "person" ? personName(`${rule.prefix}${nameValue}`) : `${rule.prefix}${nameValue}`;
    const groupValues = claimValues(readClaim(payload, entry.groupsClaim)) ?? [];
    const groups = new Set<string>(entry.groups);
    for (const g of groupValues.slice(0, 500)) {
      const clean = cleanGroup(g);
      if (clean !== undefined) groups.add(clean);
    }
    const id = kind === "person" ? `user:${name}` : `wl:${issuerAlias(entry)}:${name}`;
    return { kind, id, name, groups: [...groups], ...(exp === undefined ? {} : { expiresAt: exp }) };
  }

  async #keySet(entry: OidcIssuerSettings): Promise<JWTVerifyGetKey> {
    let k = this.#keys.get(entry.issuer);
    if (k === undefined) {
      k = { getKey: undefined, pending: undefined, failedAt: 0 };
      this.#keys.set(entry.issuer, k);
    }
    if (k.getKey !== undefined) return k.getKey;
    if (k.pending !== undefined) return k.pending;
    if (Date.now() - k.failedAt < DISCOVERY_RETRY_MS) throw new GatewayError("GW_AUTH_INVALID", "invalid token: the issuer's keys are unavailable");
    const state = k;
    state.pending = (async () => {
      const jwksUri = entry.jwksUri ?? (await this.#discover(entry.issuer));
      const getKey = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: DISCOVERY_TIMEOUT_MS, cooldownDuration: this.#cooldownMs, cacheMaxAge: 10 * 60_000 });
      state.getKey = getKey;
      return getKey;
    })();
    try {
      return await state.pending;
    } catch (e) {
      state.failedAt = Date.now();
      this.#logger.warn({ err: e, issuer: entry.issuer }, "could not discover an issuer's keys");
      throw new GatewayError("GW_AUTH_INVALID", "invalid token: the issuer's keys are unavailable", { cause: e });
    } finally {
      state.pending = undefined;
    }
  }

  /** OpenID Connect Discovery 1.0 §4: the document's issuer must equal the configured one. */
  async #discover(issuer: string): Promise<string> {
    const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const res = await fetch(url, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS), redirect: "error", headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`discovery answered ${res.status}`);
    const text = await res.text();
    if (text.length > DISCOVERY_MAX_BYTES) throw new Error("discovery document too large");
    const doc = discoveryDoc.parse(JSON.parse(text));
    if (doc.issuer !== issuer) throw new Error(`discovery issuer ${doc.issuer} does not match ${issuer}`);
    const jwks = new URL(doc.jwks_uri);
    const iss = new URL(issuer);
    if (jwks.protocol !== "https:" && !(jwks.protocol === "http:" && jwks.hostname === iss.hostname)) {
      throw new Error("jwks_uri must be https");
    }
    return doc.jwks_uri;
  }
}
