/**
 * Configuration sub-schemas for identity: trusted OIDC issuers (`oidc:`), the SAML service
 * provider (`saml:`), control-plane roles (`roles:`) and people's login (`login:`). Hooked into
 * the configuration file's strict schema by src/runtime/config.ts; unknown keys are refused.
 */
import { z } from "zod";
import { durationSchema as duration, secretRefSchema as secretRef } from "../runtime/schema-parts.js";

/**
 * Asymmetric JWS algorithms we accept from external issuers (RFC 7518 §3.1, RFC 8037).
 * `none` and the HMAC family (HS256/384/512) are not representable: an HMAC "verified" with
 * the issuer's public key is the classic algorithm-confusion attack.
 */
export const ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export const DEFAULT_ALGORITHMS: readonly AsymmetricAlgorithm[] = ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"];

/** The largest clock skew we tolerate: more would keep expired credentials alive (RFC 7519 §4.1.4: "a few minutes"). */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
const clockSkew = duration.refine((v) => v <= MAX_CLOCK_SKEW_MS, "at most 5m: a larger skew keeps expired credentials valid").default(30_000);


function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** https everywhere, plain http only on loopback (tests, a local IdP). */
const secureUrl = z.url().refine((u) => {
  const url = new URL(u);
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}, "must be an https URL (plain http only on loopback)");

const group = z.string().min(1).max(200);
const claimName = z.string().min(1).max(200);

const alias = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "use letters, digits, '_', '.', '-'");

export const oidcIssuerSchema = z.strictObject({
  issuer: secureUrl.describe("the issuer URL, exactly as in its tokens' iss claim"),
  alias: alias.optional().describe("short name used in workload principal ids (wl:<alias>:<name>); default: the issuer's host"),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe("accepted aud value(s)"),
  groupsClaim: claimName.default("groups"),
  algorithms: z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1).default([...DEFAULT_ALGORITHMS]).describe("accepted JWS algorithms (asymmetric only)"),
  clockSkew: clockSkew.describe("tolerated clock skew for exp/nbf/iat (at most 5m)"),
  jwksUri: secureUrl.optional().describe("JWKS URL; default: discovered from /.well-known/openid-configuration"),
  principal: z
    .union([
      z.strictObject({
        kind: z.enum(["workload", "person"]).default("workload"),
        name: claimName.default("sub").describe("claim naming the principal: sub, email, client_id, …"),
        prefix: z.string().max(100).default(""),
      }),
      z.strictObject({
        serviceAccount: z
          .strictObject({
            claim: claimName.default("sub").describe("claim naming a configured service account (with `prefix` prepended)"),
            prefix: z.string().max(100).default(""),
          })
          .describe("map the token to the configured service account it names: sa:<name> with that account's groups; refused when there is none"),
      }),
    ])
    .default({ kind: "workload", name: "sub", prefix: "" }),
  groups: z.array(group).default([]).describe("groups added to every principal from this issuer"),
  claims: z
    .record(claimName, z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]))
    .optional()
    .describe("conditions: each claim must match one of the globs (e.g. repository: org/*)"),
  maxTokenAge: duration.optional().describe("refuse tokens issued (iat) longer ago than this"),
  // People's login (authorization code + PKCE, device flow): the Airlock side's OIDC client.
  clientId: z.string().min(1).optional(),
  clientSecret: secretRef.optional(),
  redirectUri: secureUrl.optional().describe("default: <login.publicUrl>/v1/auth/oidc/callback"),
  scopes: z.array(z.string().min(1)).default(["openid", "email", "profile"]),
  recheckInterval: duration
    .default(60_000)
    .describe("how often a person's groups are asked again at the issuer (refresh grant) after a browser login; 0 turns re-checks off"),
  recheckGrace: duration
    .default(5 * 60_000)
    .describe("how long a person's sessions outlive an unreachable issuer before they end (fail closed)"),
});

export const samlSchema = z.strictObject({
  entryPoint: secureUrl.describe("the IdP's SSO URL (HTTP-Redirect binding)"),
  idpIssuer: z.string().min(1).describe("the IdP's entity id; assertions from any other issuer are refused"),
  idpCert: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe("IdP signing certificate(s): PEM text, or file:PATH"),
  issuer: z.string().min(1).default("airlock").describe("our SP entity id"),
  audience: z.string().min(1).optional().describe("expected Audience; default: issuer"),
  callbackUrl: secureUrl.optional().describe("ACS URL; default: <login.publicUrl>/v1/auth/saml/acs"),
  groupsAttribute: z.string().min(1).default("groups"),
  emailAttribute: z.string().min(1).default("email"),
  groups: z.array(group).default([]).describe("groups added to every person logging in through SAML"),
  clockSkew: clockSkew.describe("tolerated clock skew for the assertion's time conditions (at most 5m)"),
  maxAssertionAge: duration.default(5 * 60_000),
  tokenTtl: duration
    .default(15 * 60_000)
    .describe("lifetime of an Airlock token issued at a SAML login: SAML has no back channel, so groups are fixed until it expires"),
});

export const rolesSchema = z
  .strictObject({
    admin: z.array(group).default([]),
    approver: z.array(group).default([]),
    auditor: z.array(group).default([]),
  })
  .default({ admin: [], approver: [], auditor: [] })
  .describe("control-plane roles by group; every authenticated principal is also a user");

export const loginSchema = z
  .strictObject({
    publicUrl: secureUrl.optional().describe("the API's URL as browsers reach it (redirect URIs are derived from it)"),
    tokenTtl: duration.default(3_600_000).describe("lifetime of an Airlock token issued to a person at login"),
    exchangeTtl: duration.default(15 * 60_000).describe("default lifetime of a token issued by token exchange"),
  })
  .default({ tokenTtl: 3_600_000, exchangeTtl: 15 * 60_000 });

export type OidcIssuerSettings = z.output<typeof oidcIssuerSchema>;
export type PrincipalRule = OidcIssuerSettings["principal"];
/** The rule's kind of principal: a person, a workload (wl:<alias>:<name>) or a configured service account. */
export function ruleKind(rule: PrincipalRule): "person" | "workload" | "service_account" {
  return "serviceAccount" in rule ? "service_account" : rule.kind;
}
export type SamlSettings = z.output<typeof samlSchema>;
export type RolesSettings = z.output<typeof rolesSchema>;
export type LoginSettings = z.output<typeof loginSchema>;

/** Cross-field checks (called by parseConfig); returns problem lines naming the key. */
export function identityProblems(config: { readonly oidc: readonly OidcIssuerSettings[]; readonly saml?: SamlSettings | undefined; readonly login: LoginSettings }): string[] {
  const { oidc } = config;
  const problems: string[] = [];
  if (config.saml !== undefined && config.saml.callbackUrl === undefined && config.login.publicUrl === undefined) {
    problems.push("saml.callbackUrl: set it, or login.publicUrl (the ACS URL is derived from it)");
  }
  const aliases = new Map<string, string>();
  oidc.forEach((o, i) => {
    const a = issuerAlias(o);
    const other = aliases.get(a);
    if (other !== undefined && other !== o.issuer) problems.push(`oidc[${i}].alias: "${a}" is already used by ${other}; set a distinct alias`);
    aliases.set(a, o.issuer);
    if (o.clientSecret !== undefined && o.clientId === undefined) problems.push(`oidc[${i}].clientSecret: needs clientId`);
  });
  return problems;
}

export function issuerAlias(o: Pick<OidcIssuerSettings, "issuer" | "alias">): string {
  return o.alias ?? new URL(o.issuer).host.replace(/:/g, "_");
}
