/**
 * Identity routes of the control-plane API:
 *
 *  - `POST /v1/token/exchange` (public; RFC 8693): a trusted issuer's JWT → a short-lived
 *    Airlock token. Errors use the RFC 6749 §5.2 shape `{ error, error_description }` plus our
 *    stable `error_code` (GW_*).
 *  - `GET /v1/auth/oidc/login` → the issuer (authorization code + PKCE, state, nonce), and
 *    `GET /v1/auth/oidc/callback` → an HTML page showing the person's Airlock token.
 *  - `GET /v1/auth/whoami` (user): the caller's principal and roles.
 *  - `POST /v1/principals/:id/revoke` (admin): block a principal id and end its live sessions.
 *
 * SAML routes live in saml-routes.ts. Every success and refusal is audited.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import * as oidcClient from "openid-client";
import { z } from "zod";
import type { AuditEventInput, AuditLog } from "../audit/types.js";
import { GatewayError, isGatewayError, toGatewayError } from "../core/errors.js";
import type { Principal, PrincipalKind } from "../core/principal.js";
import type { SecretRef } from "../core/secret.js";
import type { Authenticator } from "../identity/authenticator.js";
import { issuerAlias } from "../identity/config-schema.js";
import type { LoginSettings, OidcIssuerSettings, RolesSettings, SamlSettings } from "../identity/config-schema.js";
import type { SamlServiceProvider } from "../identity/saml.js";

/** The SAML module, loaded by the caller only when SAML is configured (it costs ~15 MiB of RSS). */
export type SamlModule = { readonly SamlServiceProvider: typeof SamlServiceProvider };
import { LOGIN_COOKIE, LoginStates, readCookie } from "../identity/login-state.js";
import { cleanGroup, personName } from "../identity/issuers.js";
import type { PersonRechecks, RecheckAnswer } from "../identity/recheck.js";
import { rolesFor } from "../identity/roles.js";
import { MIN_TTL_MS } from "../identity/tokens.js";
import type { TokenService } from "../identity/tokens.js";
import type { LiveSessions } from "../policy/registry.js";
import { parseDuration } from "../runtime/duration.js";
import { callerOf } from "./auth.js";
import { completeWebLogin, safeReturnPath } from "./approval-page.js";
import { escapeHtml, resultPage } from "./pages.js";

export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const FORM_BODY_LIMIT = 256 * 1024;
/** Binds a SAML login to the browser that started it (see LoginStates). */
export const SAML_LOGIN_COOKIE = "airlock_saml";

export interface IdentityRoutesDeps {
  readonly tokens: TokenService;
  readonly authenticator: Authenticator;
  readonly oidc: readonly OidcIssuerSettings[];
  readonly login: LoginSettings;
  /** SAML service provider settings (`saml:`), if configured. */
  readonly saml?: SamlSettings;
  readonly roles: RolesSettings;
  readonly liveSessions: LiveSessions;
  /** Re-checks people's groups at their issuer after a browser login (src/identity/recheck.ts). */
  readonly rechecks?: PersonRechecks;
  readonly auditLog?: Pick<AuditLog, "append">;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly logger: Logger;
}

const exchangeForm = z.object({
  grant_type: z.string(),
  subject_token: z.string().min(1).max(20_000),
  subject_token_type: z.string(),
  requested_token_type: z.string().optional(),
  ttl: z.string().max(50).optional(),
  scope: z.string().max(1000).optional(),
  audience: z.string().max(1000).optional(),
  resource: z.string().max(1000).optional(),
  // Our extension for `airlock login`: the person's refresh token at their IdP (for the ID
  // token's client), so the gateway can re-check their groups (src/identity/recheck.ts).
  refresh_token: z.string().min(1).max(8192).optional(),
});

const revokeBody = z.strictObject({ until: z.iso.datetime().optional(), reason: z.string().max(500).optional() }).optional();
const principalIdParam = z.object({ id: z.string().min(1).max(600) });

type ExchangeErrorCode = "invalid_request" | "invalid_grant" | "unsupported_grant_type" | "invalid_target" | "server_error";

function oauthError(reply: FastifyReply, status: number, error: ExchangeErrorCode, description: string, code: string): FastifyReply {
  return reply
    .code(status)
    .header("cache-control", "no-store")
    .type("application/json; charset=utf-8")
    .send({ error, error_description: description, error_code: code });
}

function auditOf(p: Principal): { id: string; kind: PrincipalKind; name: string } {
  return { id: p.id, kind: p.kind, name: p.name };
}

/**
 * The kind a principal id names: sa:, user:, wl: or admin. It must accept every id the
 * identity mapping can produce (names may contain spaces, e.g. `wl:ci:build runner`), or such
 * a principal could never be revoked; only control and invisible characters are refused, as
 * they are by the mapping (issuers.ts cleanText).
 */
function kindOfId(id: string): PrincipalKind | undefined {
  if (id === "admin") return "admin";
  if (/^sa:[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(id)) return "service_account";
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(id)) return undefined;
  if (/^user:.{1,500}$/su.test(id)) return "person";
  if (/^wl:[^\s:]{1,63}:.{1,500}$/su.test(id)) return "workload";
  return undefined;
}

/** The canonical spelling of a principal id (person ids made from an email are lower-case). */
function canonicalId(id: string): string {
  return id.startsWith("user:") ? `user:${personName(id.slice(5))}` : id;
}

interface OidcPending {
  readonly issuer: string;
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly redirectUri: string;
  /** The approval page the login started from (approval-page.ts): back there, with a login cookie. */
  readonly returnTo?: string;
}

/**
 * Audit a refused API credential (called by the API's authentication hook). Never fails the
 * request differently: the refusal stands whether or not the record could be written.
 */
export async function auditApiAuthFailure(
  deps: { readonly auditLog?: Pick<AuditLog, "append">; readonly logger: Logger },
  request: FastifyRequest,
  e: unknown,
): Promise<void> {
  if (deps.auditLog === undefined || !isGatewayError(e) || !e.code.startsWith("GW_AUTH_")) return;
  await deps.auditLog
    .append({
      type: "auth.failure",
      protocol: "api",
      clientAddress: request.ip,
      code: e.code,
      message: e.message,
      decision: "deny",
      details: { route: `${request.method} ${request.routeOptions.url ?? ""}` },
    })
    .catch((err: unknown) => deps.logger.error({ err }, "could not audit an API authentication failure"));
}

function tokenPageBody(principal: Principal, minted: { readonly token: string; readonly expiresAt: Date }): string {
  return `<p>Signed in as <b>${escapeHtml(principal.name)}</b> (groups: <span id="groups">${escapeHtml(principal.groups.join(", ") || "none")}</span>).</p>
<p>Your Airlock token, valid until ${escapeHtml(minted.expiresAt.toISOString())}:</p>
<textarea id="token" readonly rows="6" cols="80">${escapeHtml(minted.token)}</textarea>
<p>Use it as <code>AIRLOCK_TOKEN</code> for the CLI, or as the password in psql.</p>`;
}

export function registerIdentityRoutes(app: FastifyInstance, deps: IdentityRoutesDeps, saml?: SamlModule): void {
  const audit = async (input: AuditEventInput): Promise<void> => {
    if (deps.auditLog === undefined) return;
    await deps.auditLog.append(input);
  };
  const auditFailure = async (request: FastifyRequest, route: string, e: GatewayError): Promise<void> => {
    await audit({
      type: "auth.failure",
      protocol: "api",
      clientAddress: request.ip,
      code: e.code,
      message: e.message,
      decision: "deny",
      details: { route },
    });
  };

  /** Issue an Airlock token for an external identity; audit first, take it back if that fails. */
  const issue = async (principal: Principal, ttlMs: number, via: string): Promise<{ token: string; expiresAt: Date; id: string }> => {
    if (principal.kind === "service_account") {
      // A trusted issuer's token mapped to a configured service account (principal.serviceAccount):
      // an ordinary service-account token, never outliving the subject token.
      const left = principal.expiresAt === undefined ? ttlMs : Math.min(ttlMs, principal.expiresAt.getTime() - Date.now());
      if (left < MIN_TTL_MS) throw new GatewayError("GW_AUTH_EXPIRED", "the presented credential expires too soon to issue a token");
      const minted = await deps.tokens.mint(principal.name, { ttlMs: left, createdBy: `${via}:${principal.id}` });
      try {
        await audit({ type: "token.create", principal: auditOf(principal), details: { tokenId: minted.id, via, expiresAt: minted.expiresAt.toISOString(), serviceAccount: principal.name } });
      } catch (e) {
        await deps.tokens.revoke(minted.id, "airlock:audit-failure").catch(() => undefined);
        throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable", { cause: e });
      }
      return { token: minted.token, expiresAt: minted.expiresAt, id: minted.id };
    }
    if (principal.kind !== "person" && principal.kind !== "workload") throw new GatewayError("GW_AUTH_INVALID", "invalid token");
    const minted = await deps.tokens.mintFor(
      { kind: principal.kind, id: principal.id, name: principal.name, groups: principal.groups },
      { ttlMs, ...(principal.expiresAt === undefined ? {} : { notAfter: principal.expiresAt }), createdBy: `${via}:${principal.id}` },
    );
    try {
      await audit({
        type: "token.create",
        principal: auditOf(principal),
        details: { tokenId: minted.id, via, expiresAt: minted.expiresAt.toISOString(), groups: principal.groups.join(",").slice(0, 1000) },
      });
    } catch (e) {
      await deps.tokens.revoke(minted.id, "airlock:audit-failure").catch(() => undefined);
      throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable", { cause: e });
    }
    return { token: minted.token, expiresAt: minted.expiresAt, id: minted.id };
  };

  const pub = { config: { airlockAccess: "public" as const } };

  // Form bodies (RFC 8693 §2.1 is application/x-www-form-urlencoded) only inside this scope.
  void app.register((child, _opts, done) => {
    child.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: FORM_BODY_LIMIT }, (_req, body, parsed) => {
      const params = new URLSearchParams(typeof body === "string" ? body : body.toString("utf8"));
      const out: Record<string, string> = {};
      for (const [k, v] of params) {
        // A repeated parameter is a malformed request (RFC 6749 §3.1).
        if (k in out) {
          parsed(new GatewayError("GW_BAD_REQUEST", `parameter ${k} given more than once`), undefined);
          return;
        }
        out[k] = v;
      }
      parsed(null, out);
    });

    child.post("/v1/token/exchange", pub, async (request, reply) => {
      const form = exchangeForm.safeParse(request.body ?? {});
      if (!form.success) {
        const issue0 = form.error.issues[0];
        return oauthError(reply, 400, "invalid_request", `${issue0?.path.join(".") ?? "body"}: ${issue0?.message ?? "invalid"}`, "GW_BAD_REQUEST");
      }
      const f = form.data;
      if (f.grant_type !== TOKEN_EXCHANGE_GRANT) return oauthError(reply, 400, "unsupported_grant_type", `grant_type must be ${TOKEN_EXCHANGE_GRANT}`, "GW_BAD_REQUEST");
      if (f.subject_token_type !== JWT_TOKEN_TYPE && f.subject_token_type !== ID_TOKEN_TYPE && f.subject_token_type !== ACCESS_TOKEN_TYPE) {
        return oauthError(reply, 400, "invalid_request", `subject_token_type must be ${JWT_TOKEN_TYPE}`, "GW_BAD_REQUEST");
      }
      if (f.requested_token_type !== undefined && f.requested_token_type !== ACCESS_TOKEN_TYPE && f.requested_token_type !== JWT_TOKEN_TYPE) {
        return oauthError(reply, 400, "invalid_target", `requested_token_type must be ${ACCESS_TOKEN_TYPE}`, "GW_BAD_REQUEST");
      }
      let ttlMs: number | undefined;
      if (f.ttl !== undefined) {
        try {
          ttlMs = /^\d+$/.test(f.ttl) ? Number(f.ttl) * 1000 : parseDuration(f.ttl);
        } catch {
          return oauthError(reply, 400, "invalid_request", "ttl: use e.g. 15m or seconds", "GW_BAD_REQUEST");
        }
      }
      let principal: Principal;
      let verified: Awaited<ReturnType<Authenticator["verifyExternal"]>>;
      try {
        verified = await deps.authenticator.verifyExternal(f.subject_token);
        principal = verified.principal;
      } catch (e) {
        const ge = toGatewayError(e, "GW_AUTH_INVALID");
        const safe = ge.code === "GW_INTERNAL" ? new GatewayError("GW_AUTH_INVALID", "invalid token") : ge;
        await auditFailure(request, "/v1/token/exchange", safe);
        return oauthError(reply, 400, "invalid_grant", safe.message, safe.code);
      }
      const defaultTtl = principal.kind === "person" ? deps.login.tokenTtl : deps.login.exchangeTtl;
      let minted: { token: string; expiresAt: Date; id: string };
      try {
        minted = await issue(principal, Math.min(ttlMs ?? defaultTtl, defaultTtl), "exchange");
      } catch (e) {
        const ge = toGatewayError(e);
        if (ge.code.startsWith("GW_AUTH_")) {
          await auditFailure(request, "/v1/token/exchange", ge);
          return oauthError(reply, 400, "invalid_grant", ge.message, ge.code);
        }
        deps.logger.error({ err: e }, "token exchange failed");
        return oauthError(reply, 500, "server_error", "internal gateway error", ge.code === "GW_AUDIT_UNAVAILABLE" ? ge.code : "GW_INTERNAL");
      }
      if (principal.kind === "person" && f.refresh_token !== undefined && f.subject_token_type === ID_TOKEN_TYPE) {
        // The ID token's client (azp, else its single audience) owns the refresh token.
        const aud = verified.claims.aud;
        const azp = verified.claims["azp"];
        const clientId = typeof azp === "string" ? azp : typeof aud === "string" ? aud : Array.isArray(aud) && aud.length === 1 ? aud[0] : undefined;
        const sub = verified.claims.sub;
        if (clientId !== undefined && sub !== undefined) {
          trackLogin(verified.issuer, principal, minted, f.refresh_token, sub, clientId);
        }
      }
      const expiresIn = Math.max(0, Math.floor((minted.expiresAt.getTime() - Date.now()) / 1000));
      return reply.header("cache-control", "no-store").send({
        access_token: minted.token,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: expiresIn,
        principal: { id: principal.id, kind: principal.kind, name: principal.name, groups: principal.groups },
      });
    });

    // --- people: SAML 2.0 (HTTP-Redirect out, HTTP-POST back) ---------------------------------
    const samlSettings = deps.saml;
    if (samlSettings !== undefined) {
      const acsUrl = samlSettings.callbackUrl ?? `${(deps.login.publicUrl ?? "").replace(/\/$/, "")}/v1/auth/saml/acs`;
      if (saml === undefined) throw new GatewayError("GW_CONFIG", "SAML is configured but its module was not loaded");
      const sp = new saml.SamlServiceProvider({ settings: samlSettings, defaultCallbackUrl: acsUrl, resolveSecret: deps.resolveSecret });
      // Login CSRF defence, as for OIDC: the response must come back (RelayState) to the browser
      // that started the login (cookie). The IdP posts cross-site, so on https the cookie is
      // SameSite=None; plain http is only allowed on loopback, where Lax reaches the ACS.
      const samlPending = new LoginStates<{ readonly requestId: string; readonly returnTo?: string }>();
      const samlCookieAttrs = acsUrl.startsWith("https:") ? "SameSite=None; Secure" : "SameSite=Lax";
      child.get("/v1/auth/saml/login", pub, async (request, reply) => {
        const returnTo = safeReturnPath(z.object({ return: z.string().max(200).optional() }).safeParse(request.query).data?.return);
        const relayState = randomBytes(24).toString("base64url");
        const { url, requestId } = await sp.loginUrl(relayState).catch((e: unknown) => {
          throw new GatewayError("GW_CONFIG", "SAML is misconfigured", { cause: e });
        });
        const cookie = samlPending.put(relayState, { requestId, ...(returnTo === undefined ? {} : { returnTo }) });
        return reply
          .header("set-cookie", `${SAML_LOGIN_COOKIE}=${cookie}; HttpOnly; Path=/v1/auth/saml; Max-Age=600; ${samlCookieAttrs}`)
          .header("cache-control", "no-store")
          .redirect(url, 302);
      });
      child.post("/v1/auth/saml/acs", pub, async (request, reply) => {
        const body = z.object({ SAMLResponse: z.string().min(1).max(FORM_BODY_LIMIT), RelayState: z.string().max(200).optional() }).safeParse(request.body ?? {});
        let principal: Principal;
        let returnTo: string | undefined;
        try {
          if (!body.success) throw new GatewayError("GW_AUTH_INVALID", "SAML login failed: no SAMLResponse");
          const relayState = body.data.RelayState;
          const started = relayState === undefined ? undefined : samlPending.take(relayState, readCookie(request.headers.cookie, SAML_LOGIN_COOKIE));
          if (started === undefined) {
            throw new GatewayError("GW_AUTH_INVALID", "SAML login failed: unknown or expired login attempt (finish the login in the browser that started it)");
          }
          const result = await sp.login(body.data.SAMLResponse);
          // The response must answer this browser's request, not another login's (a swapped response).
          if (result.inResponseTo !== started.requestId) throw new GatewayError("GW_AUTH_INVALID", "SAML login failed: the response answers another login attempt");
          principal = result.principal;
          returnTo = started.returnTo;
          if (deps.tokens.isBlocked(principal.id)) throw new GatewayError("GW_AUTH_REVOKED", "SAML login failed: this principal is blocked");
        } catch (e) {
          const ge = isGatewayError(e) ? e : new GatewayError("GW_AUTH_INVALID", "SAML login failed", { cause: e });
          deps.logger.info({ err: e }, "SAML login failed");
          await auditFailure(request, "/v1/auth/saml/acs", ge);
          return resultPage(reply, 401, "Login failed", `<p>${escapeHtml(ge.message)}</p>`);
        }
        // SAML has no back channel to ask the IdP again: groups are fixed until this token expires.
        const minted = await issue(principal, Math.min(samlSettings.tokenTtl, deps.login.tokenTtl), "saml");
        if (returnTo !== undefined) return completeWebLogin(reply, minted, returnTo, acsUrl.startsWith("https:"));
        return resultPage(reply, 200, "Signed in to Airlock", tokenPageBody(principal, minted));
      });
    }
    done();
  });

  // --- people: OIDC authorization code + PKCE ----------------------------------------------

  const pending = new LoginStates<OidcPending>();
  const clients = new Map<string, Promise<oidcClient.Configuration>>();
  const loginIssuers = deps.oidc.filter((o) => o.clientId !== undefined);

  /**
   * The OpenID client for an issuer entry: its confidential login client, or (clientId given
   * and different) a public client — the CLI's, whose refresh tokens `airlock login` hands over.
   */
  const clientFor = (entry: OidcIssuerSettings, publicClientId?: string): Promise<oidcClient.Configuration> => {
    const clientId = publicClientId ?? entry.clientId ?? "";
    const key = `${entry.issuer}\0${clientId}`;
    let c = clients.get(key);
    if (c === undefined) {
      c = (async () => {
        const secret = entry.clientSecret === undefined || clientId !== entry.clientId ? undefined : await deps.resolveSecret(entry.clientSecret);
        const insecure = new URL(entry.issuer).protocol === "http:";
        return oidcClient.discovery(
          new URL(entry.issuer),
          clientId,
          secret,
          secret === undefined ? oidcClient.None() : undefined,
          // Plain http is allowed by the config schema only for loopback issuers (tests, a local IdP).
          // eslint-disable-next-line @typescript-eslint/no-deprecated
          insecure ? { execute: [oidcClient.allowInsecureRequests], timeout: 10 } : { timeout: 10 },
        );
      })();
      clients.set(key, c);
      // A failed discovery is retried on the next login rather than cached forever.
      c.catch(() => clients.delete(key));
    }
    return c;
  };

  const redirectUriFor = (entry: OidcIssuerSettings, request: FastifyRequest): string => {
    if (entry.redirectUri !== undefined) return entry.redirectUri;
    const base = deps.login.publicUrl ?? `${request.protocol}://${request.host}`;
    return `${base.replace(/\/$/, "")}/v1/auth/oidc/callback`;
  };

  /** Ask the issuer for a person's current groups with their refresh token (see PersonRechecks). */
  const askAgain = async (entry: OidcIssuerSettings, subject: string, refreshToken: string, clientId?: string): Promise<RecheckAnswer> => {
    const config = await clientFor(entry, clientId);
    let tokens: Awaited<ReturnType<typeof oidcClient.refreshTokenGrant>>;
    try {
      tokens = await oidcClient.refreshTokenGrant(config, refreshToken);
    } catch (e) {
      // RFC 6749 §5.2: invalid_grant = the refresh token is revoked, expired, or its user is gone.
      if (e instanceof oidcClient.ResponseBodyError && e.error === "invalid_grant") {
        throw new GatewayError("GW_AUTH_REVOKED", "the identity provider refused the refresh grant");
      }
      throw e;
    }
    const claims = tokens.claims();
    if (claims !== undefined && claims.sub !== subject) throw new GatewayError("GW_AUTH_REVOKED", "the identity provider answered for another subject");
    let raw: unknown = claims?.[entry.groupsClaim];
    if (raw === undefined) {
      const info = await oidcClient.fetchUserInfo(config, tokens.access_token, subject);
      raw = info[entry.groupsClaim];
    }
    const groups = new Set(entry.groups);
    // The same hygiene as at login (no control or invisible characters, bounded).
    if (Array.isArray(raw)) {
      for (const g of raw.slice(0, 500)) {
        const clean = cleanGroup(g);
        if (clean !== undefined) groups.add(clean);
      }
    } else if (typeof raw === "string") {
      const clean = cleanGroup(raw);
      if (clean !== undefined) groups.add(clean);
    }
    return { groups: [...groups], ...(tokens.refresh_token === undefined ? {} : { refreshToken: tokens.refresh_token }) };
  };

  /** Start re-checking a person's groups (a no-op when re-checks are off for the issuer). */
  const trackLogin = (
    entry: OidcIssuerSettings,
    principal: Principal,
    minted: { readonly id: string; readonly expiresAt: Date },
    refreshToken: string,
    subject: string,
    clientId?: string,
  ): void => {
    if (deps.rechecks === undefined || entry.recheckInterval <= 0) return;
    deps.rechecks.track({
      tokenId: minted.id,
      principalId: principal.id,
      name: principal.name,
      groups: principal.groups,
      expiresAt: minted.expiresAt,
      refreshToken,
      intervalMs: entry.recheckInterval,
      graceMs: entry.recheckGrace,
      ask: (rt) => askAgain(entry, subject, rt, clientId),
    });
  };

  app.get("/v1/auth/oidc/login", pub, async (request, reply) => {
    const q = z.object({ issuer: z.string().max(500).optional(), return: z.string().max(200).optional() }).safeParse(request.query);
    const want = q.success ? q.data.issuer : undefined;
    const returnTo = safeReturnPath(q.data?.return);
    const entry = want === undefined ? loginIssuers[0] : loginIssuers.find((o) => o.issuer === want || issuerAlias(o) === want);
    if (entry === undefined) throw new GatewayError("GW_NOT_FOUND", "no OIDC issuer is configured for login (oidc[].clientId)");
    const config = await clientFor(entry).catch((e: unknown) => {
      throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the identity provider is unavailable", { cause: e });
    });
    const codeVerifier = oidcClient.randomPKCECodeVerifier();
    const state = oidcClient.randomState();
    const nonce = oidcClient.randomNonce();
    const redirectUri = redirectUriFor(entry, request);
    const url = oidcClient.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: entry.scopes.join(" "),
      code_challenge: await oidcClient.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    const cookie = pending.put(state, { issuer: entry.issuer, codeVerifier, nonce, redirectUri, ...(returnTo === undefined ? {} : { returnTo }) });
    const secure = redirectUri.startsWith("https:") ? "; Secure" : "";
    return reply
      .header("set-cookie", `${LOGIN_COOKIE}=${cookie}; HttpOnly; SameSite=Lax; Path=/v1/auth; Max-Age=600${secure}`)
      .header("cache-control", "no-store")
      .redirect(url.href, 302);
  });

  app.get("/v1/auth/oidc/callback", pub, async (request, reply) => {
    const q = z.looseObject({ state: z.string().min(1).max(200) }).safeParse(request.query);
    const fail = async (e: GatewayError): Promise<FastifyReply> => {
      await auditFailure(request, "/v1/auth/oidc/callback", e);
      return resultPage(reply, 401, "Login failed", `<p>${escapeHtml(e.message)}</p>`);
    };
    if (!q.success) return fail(new GatewayError("GW_AUTH_INVALID", "login failed: missing state"));
    const p = pending.take(q.data.state, readCookie(request.headers.cookie, LOGIN_COOKIE));
    if (p === undefined) return fail(new GatewayError("GW_AUTH_INVALID", "login failed: unknown or expired login attempt; start again"));
    const entry = loginIssuers.find((o) => o.issuer === p.issuer);
    if (entry === undefined) return fail(new GatewayError("GW_AUTH_INVALID", "login failed"));
    let principal: Principal;
    let refreshToken: string | undefined;
    let subject: string | undefined;
    try {
      const config = await clientFor(entry);
      // The URL the IdP redirected to: our redirect URI plus the query it added.
      const current = new URL(p.redirectUri);
      current.search = new URL(request.url, "http://x").search;
      const tokens = await oidcClient.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: p.codeVerifier,
        expectedState: q.data.state,
        expectedNonce: p.nonce,
        idTokenExpected: true,
      });
      const idToken = tokens.id_token;
      if (idToken === undefined) throw new GatewayError("GW_AUTH_INVALID", "login failed: no ID token");
      refreshToken = tokens.refresh_token;
      subject = tokens.claims()?.sub;
      // The same verification and claim mapping as every other JWT from this issuer.
      principal = (await deps.authenticator.verifyExternal(idToken)).principal;
      if (principal.kind !== "person") {
        throw new GatewayError("GW_AUTH_INVALID", "login failed: this issuer maps to workloads (set oidc[].principal.kind: person)");
      }
      if (principal.groups.length === entry.groups.length) {
        // Groups not in the ID token: ask the userinfo endpoint (its sub must match).
        const claims = tokens.claims();
        if (claims !== undefined) {
          const info = await oidcClient.fetchUserInfo(config, tokens.access_token, claims.sub);
          const extra = info[entry.groupsClaim];
          if (Array.isArray(extra)) {
            const groups = new Set(principal.groups);
            // The same hygiene as groups from a token (no control or invisible characters, bounded).
            for (const g of extra.slice(0, 500)) {
              const clean = cleanGroup(g);
              if (clean !== undefined) groups.add(clean);
            }
            principal = { ...principal, groups: [...groups] };
          }
        }
      }
    } catch (e) {
      deps.logger.info({ err: e }, "OIDC login failed");
      return fail(isGatewayError(e) && e.code.startsWith("GW_AUTH_") ? e : new GatewayError("GW_AUTH_INVALID", "login failed", { cause: e }));
    }
    const minted = await issue(principal, deps.login.tokenTtl, "oidc");
    if (deps.rechecks !== undefined && entry.recheckInterval > 0) {
      const sub = subject;
      if (refreshToken === undefined || sub === undefined) {
        deps.logger.warn({ issuer: entry.issuer, principalId: principal.id }, "the issuer gave no refresh token: this person's groups cannot be re-checked until the token expires (allow the refresh_token grant for the client)");
      } else {
        trackLogin(entry, principal, minted, refreshToken, sub);
      }
    }
    if (p.returnTo !== undefined) return completeWebLogin(reply, minted, p.returnTo, p.redirectUri.startsWith("https:"));
    return resultPage(reply, 200, "Signed in to Airlock", tokenPageBody(principal, minted));
  });

  // --- who am I, principal revocation -------------------------------------------------------

  app.get("/v1/auth/whoami", { config: { airlockAccess: "user" } }, (request) => {
    const { principal } = callerOf(request);
    return Promise.resolve({
      principal: {
        id: principal.id,
        kind: principal.kind,
        name: principal.name,
        groups: principal.groups,
        ...(principal.expiresAt === undefined ? {} : { expiresAt: principal.expiresAt.toISOString() }),
      },
      roles: rolesFor(principal, deps.roles),
    });
  });

  app.post("/v1/principals/:id/revoke", { config: { airlockAccess: "admin" } }, async (request) => {
    const id = canonicalId(principalIdParam.parse(request.params).id);
    const body = revokeBody.safeParse(request.body ?? undefined);
    if (!body.success) throw new GatewayError("GW_BAD_REQUEST", `body: ${body.error.issues[0]?.message ?? "invalid"}`);
    const kind = kindOfId(id);
    if (kind === undefined || kind === "admin") throw new GatewayError("GW_BAD_REQUEST", "id must be a principal id: sa:NAME, user:EMAIL or wl:ISSUER:NAME");
    const caller = callerOf(request);
    const until = body.data?.until === undefined ? undefined : new Date(body.data.until);
    if (until !== undefined && until.getTime() <= Date.now()) throw new GatewayError("GW_BAD_REQUEST", "until must be in the future");
    const name = id.slice(id.indexOf(":") + 1);
    const liveBefore = deps.liveSessions.list().filter((s) => s.principal.id === id).length;
    const block = await deps.tokens.blockPrincipal({ id, kind, name }, { by: caller.principal.id, ...(until === undefined ? {} : { until }) });
    // The runtime's onRevoke listener ends sessions too; this makes the answer exact either way.
    const sessionsEnded = Math.max(liveBefore, deps.liveSessions.terminate({ principalId: id }, "revoked", "principal revoked"));
    await audit({
      type: "token.revoke",
      principal: auditOf(caller.principal),
      details: { principalId: id, blockId: block.id, sessionsEnded, ...(until === undefined ? {} : { until: until.toISOString() }), reason: body.data?.reason ?? null },
    }).catch((e: unknown) => deps.logger.error({ err: e, principalId: id }, "could not audit a principal revocation"));
    return { revoked: true, principalId: id, blockId: block.id, sessionsEnded, ...(until === undefined ? {} : { until: until.toISOString() }) };
  });
}
