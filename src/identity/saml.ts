/**
 * SAML 2.0 service provider (people's login) on @node-saml/node-saml.
 *
 *  - AuthnRequest over HTTP-Redirect; the Response comes back over HTTP-POST to the ACS.
 *  - Signed assertions are required (wantAssertionsSigned), verified against the configured
 *    IdP certificate(s) only; the Response's InResponseTo must name a request we issued and
 *    have not seen answered (validateInResponseTo: always, one use), audience and time
 *    conditions are checked with the configured skew.
 *  - On top: the assertion's Issuer must be the configured IdP entity id, and each assertion
 *    ID is accepted once (replay cache until it could no longer be valid).
 *
 * The outcome is the same as an OIDC login: a person principal (user:<email>) with groups
 * from the configured attribute, plus static groups.
 */
import { inflateRawSync } from "node:zlib";
import { SAML, ValidateInResponseTo } from "@node-saml/node-saml";
import type { Profile } from "@node-saml/node-saml";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { SecretRef } from "../core/secret.js";
import type { SamlSettings } from "./config-schema.js";
import { cleanGroup, cleanText, personName } from "./issuers.js";
import { SeenIds } from "./login-state.js";

export interface SamlServiceProviderOptions {
  readonly settings: SamlSettings;
  /** The ACS URL when the settings give none (derived from login.publicUrl). */
  readonly defaultCallbackUrl: string;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
}

const assertionShape = z.object({ Assertion: z.object({ $: z.object({ ID: z.string().min(1).max(200) }) }) });

function fail(message: string, cause?: unknown): GatewayError {
  return new GatewayError("GW_AUTH_INVALID", `SAML login failed: ${message}`, cause === undefined ? {} : { cause });
}

function attributeValues(v: unknown): string[] {
  if (typeof v === "string") return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return [];
}

export class SamlServiceProvider {
  readonly #settings: SamlSettings;
  readonly #saml: Promise<SAML>;
  readonly #seen = new SeenIds();

  constructor(options: SamlServiceProviderOptions) {
    this.#settings = options.settings;
    const s = options.settings;
    this.#saml = (async () => {
      const certs = await Promise.all(
        (typeof s.idpCert === "string" ? [s.idpCert] : s.idpCert).map((c) => (c.startsWith("file:") ? options.resolveSecret({ kind: "file", path: c.slice(5) }) : Promise.resolve(c))),
      );
      return new SAML({
        entryPoint: s.entryPoint,
        issuer: s.issuer,
        callbackUrl: s.callbackUrl ?? options.defaultCallbackUrl,
        idpCert: certs,
        idpIssuer: s.idpIssuer,
        audience: s.audience ?? s.issuer,
        wantAssertionsSigned: true,
        wantAuthnResponseSigned: false,
        acceptedClockSkewMs: s.clockSkew,
        maxAssertionAgeMs: s.maxAssertionAge,
        validateInResponseTo: ValidateInResponseTo.always,
        requestIdExpirationPeriodMs: 10 * 60_000,
        disableRequestedAuthnContext: true,
        signatureAlgorithm: "sha256",
        digestAlgorithm: "sha256",
      });
    })();
  }

  /**
   * The IdP URL to send the browser to (AuthnRequest, HTTP-Redirect binding) and the
   * request's ID, which the response must answer (InResponseTo): callers bind it to the browser.
   */
  async loginUrl(relayState: string): Promise<{ readonly url: string; readonly requestId: string }> {
    const saml = await this.#saml;
    const url = await saml.getAuthorizeUrlAsync(relayState, undefined, {});
    const request = new URL(url).searchParams.get("SAMLRequest");
    const id = request === null ? undefined : /\bID="([^"]{1,200})"/.exec(inflateRawSync(Buffer.from(request, "base64")).toString("utf8"))?.[1];
    if (id === undefined) throw new Error("the AuthnRequest has no ID");
    return { url, requestId: id };
  }

  /** Validate a posted SAMLResponse and map it to a person; `inResponseTo` is the request it answers (validated by node-saml). */
  async login(samlResponse: string): Promise<{ readonly principal: Principal; readonly inResponseTo: string | undefined }> {
    const saml = await this.#saml;
    let profile: Profile | null;
    try {
      const result = await saml.validatePostResponseAsync({ SAMLResponse: samlResponse });
      profile = result.profile;
    } catch (e) {
      throw fail("the response was refused", e);
    }
    const principal = this.#principalOf(profile);
    const irt = profile?.inResponseTo;
    return { principal, inResponseTo: typeof irt === "string" ? irt : undefined };
  }

  /** Validate a posted SAMLResponse and map it to a person. */
  async principalFrom(samlResponse: string): Promise<Principal> {
    return (await this.login(samlResponse)).principal;
  }

  #principalOf(profile: Profile | null): Principal {
    if (profile === null) throw fail("no assertion");
    if (profile.issuer !== this.#settings.idpIssuer) throw fail("unexpected issuer");
    const parsed = assertionShape.safeParse(profile.getAssertion?.());
    if (!parsed.success) throw fail("assertion without an ID");
    // Accepted at most once while it could still be valid (max age plus skew).
    if (!this.#seen.add(parsed.data.Assertion.$.ID, Date.now() + this.#settings.maxAssertionAge + 2 * this.#settings.clockSkew + 10 * 60_000)) {
      throw fail("assertion replayed");
    }
    const rawEmail = attributeValues(profile[this.#settings.emailAttribute])[0] ?? profile.email ?? profile.mail ?? profile.nameID;
    const clean = typeof rawEmail === "string" && !/\s/.test(rawEmail) ? cleanText(rawEmail, 300) : undefined;
    if (clean === undefined) throw fail("no usable email or NameID");
    // One principal per address whatever its spelling (the same rule as OIDC people).
    const email = personName(clean);
    const groups = new Set(this.#settings.groups);
    for (const g of attributeValues(profile[this.#settings.groupsAttribute]).slice(0, 500)) {
      const cg = cleanGroup(g);
      if (cg !== undefined) groups.add(cg);
    }
    return { kind: "person", id: `user:${email}`, name: email, groups: [...groups] };
  }
}
