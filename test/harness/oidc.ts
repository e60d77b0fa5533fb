/**
 * A real OpenID provider (the `oidc-provider` package) on a loopback port, for identity tests:
 * discovery, JWKS, authorization code + PKCE with its built-in dev login/consent pages,
 * device authorization grant, client credentials (JWT access tokens for the `airlock`
 * audience), and ID tokens carrying `email` and `groups`.
 *
 * Accounts: any login name works on the dev login page (password ignored); the account's
 * email is `<login>@example.com` unless the login already contains an `@`, and its groups come
 * from `groupsOf` (mutable, so a test can remove a person's group). An account in `deleted`
 * no longer exists: its refresh tokens are refused (invalid_grant), as when a person leaves.
 * Clients allowed the `refresh_token` grant get a refresh token at every code exchange.
 *
 * The harness also exposes the provider's signing key so attack tests can forge tokens that
 * are validly signed but wrong in every other way.
 */
import { KeyObject, sign as cryptoSign } from "node:crypto";
import type { EventEmitter } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import type { CryptoKey, JWK, JWTPayload } from "jose";
import Provider from "oidc-provider";

export const AIRLOCK_AUDIENCE = "airlock";

export interface TestOidcProvider {
  readonly issuer: string;
  readonly port: number;
  /** Groups per account id (login name); default ["engineers"]. */
  readonly groupsOf: Map<string, string[]>;
  /** Listen to the provider's own events (e.g. `refresh_token.saved` with the token model). */
  onEvent(name: string, listener: (model: { readonly jti?: string }) => void): void;
  /** Account ids (login names) that no longer exist at the provider. */
  readonly deleted: Set<string>;
  /** Groups put into client-credentials access tokens, per client id. */
  readonly clientGroups: Map<string, string[]>;
  /** The provider's private signing key and its kid (RS256). */
  readonly privateKey: CryptoKey;
  readonly kid: string;
  /** Sign arbitrary claims with the provider's real key (attack tests). */
  sign(payload: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  /** A client-credentials access token (JWT, aud `airlock`) for a confidential client. */
  /** Sign any header (even ones jose refuses to produce, e.g. unknown `crit`) with RS256 and the real key. */
  signRaw(header: Record<string, unknown>, payload: Record<string, unknown>): string;
  clientCredentials(clientId: string, clientSecret: string): Promise<string>;
  close(): Promise<void>;
}

export interface OidcClientSpec {
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly redirectUris?: readonly string[];
  readonly grantTypes: readonly string[];
  readonly native?: boolean;
}

export interface OidcProviderOptions {
  /** Offer the device authorization grant (RFC 8628); default true. */
  readonly deviceFlow?: boolean;
}

export async function startOidcProvider(clients: readonly OidcClientSpec[], options: OidcProviderOptions = {}): Promise<TestOidcProvider> {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk: JWK = await exportJWK(privateKey);
  const kid = `test-${Math.random().toString(36).slice(2, 10)}`;
  const groupsOf = new Map<string, string[]>();
  const clientGroups = new Map<string, string[]>();
  const deleted = new Set<string>();

  // Listen first so the issuer URL carries the real port.
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.clientId,
      ...(c.clientSecret === undefined ? { token_endpoint_auth_method: "none" } : { client_secret: c.clientSecret }),
      redirect_uris: [...(c.redirectUris ?? [])],
      grant_types: [...c.grantTypes],
      response_types: c.grantTypes.includes("authorization_code") ? ["code"] : [],
      ...(c.native === true ? { application_type: "native" } : {}),
    })),
    jwks: { keys: [{ ...jwk, kid, alg: "RS256", use: "sig" }] },
    cookies: { keys: ["test-cookie-key-0123456789abcdef"] },
    pkce: { required: () => true },
    conformIdTokenClaims: false,
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
    scopes: ["openid", "email", "profile", "groups", "offline_access"],
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed("refresh_token"),
    findAccount: (_ctx: unknown, id: string) =>
      deleted.has(id)
        ? undefined
        : {
            accountId: id,
            claims: () => ({
              sub: id,
              email: id.includes("@") ? id : `${id}@example.com`,
              email_verified: true,
              name: id,
              groups: groupsOf.get(id) ?? ["engineers"],
            }),
          },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: options.deviceFlow ?? true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => `urn:${AIRLOCK_AUDIENCE}`,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "",
          audience: AIRLOCK_AUDIENCE,
          accessTokenFormat: "jwt",
          accessTokenTTL: 600,
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string; kind?: string }) => {
      if (token.kind === "ClientCredentials" && token.clientId !== undefined) {
        return { groups: clientGroups.get(token.clientId) ?? [] };
      }
      return undefined;
    },
    ttl: { AccessToken: 600, ClientCredentials: 600, IdToken: 600, DeviceCode: 300, Interaction: 600, Session: 3600, Grant: 3600 },
    // Never render the provider's own error details with stack traces into test output.
    renderError: (ctx: { type: string; body: string }, out: Record<string, string>) => {
      ctx.type = "html";
      ctx.body = `<!doctype html><title>oidc error</title><pre>${String(out["error"])}: ${String(out["error_description"])}</pre>`;
    },
  });
  server.on("request", provider.callback());

  const sign: TestOidcProvider["sign"] = (payload, header = {}) =>
    new SignJWT(payload).setProtectedHeader({ alg: "RS256", kid, ...header }).sign(privateKey);

  return {
    issuer,
    port,
    groupsOf,
    deleted,
    onEvent(name, listener) {
      // The provider is a Koa application, hence an EventEmitter; its typings omit that.
      (provider as unknown as EventEmitter).on(name, listener);
    },
    clientGroups,
    privateKey,
    kid,
    sign,
    signRaw(header, payload) {
      const input = `${Buffer.from(JSON.stringify({ alg: "RS256", kid, ...header })).toString("base64url")}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
      const sig = cryptoSign("sha256", Buffer.from(input), KeyObject.from(privateKey));
      return `${input}.${sig.toString("base64url")}`;
    },
    async clientCredentials(clientId, clientSecret) {
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
        },
        body: new URLSearchParams({ grant_type: "client_credentials", resource: `urn:${AIRLOCK_AUDIENCE}` }).toString(),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || body.access_token === undefined) throw new Error(`client_credentials failed: ${res.status} ${body.error ?? ""} ${body.error_description ?? ""}`);
      return body.access_token;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
