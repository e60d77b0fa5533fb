/**
 * The gateway's leg to an HTTP target (issue 15): base URL, TLS (CA, client certificate) and
 * the credential it injects — bearer, basic, a named header, a query parameter, or an OAuth2
 * client-credentials token it fetches and refreshes itself (RFC 6749 §4.4). Every credential
 * value is listed in `secrets` so the engine scrubs it from anything going back to the client.
 */
import type { HttpConnection } from "../../core/connection.js";
import { GatewayError } from "../../core/errors.js";
import type { HttpUpstream } from "../../core/http-kind.js";
import type { SecretRef } from "../../core/secret.js";

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/** Tokens fetched by client credentials, per connection; refreshed 30 s before they expire. */
export class OAuthTokens {
  readonly #cache = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<CachedToken>>();

  invalidate(connection: string): void {
    this.#cache.delete(connection);
  }

  async get(c: HttpConnection, secret: string, timeoutMs: number): Promise<string> {
    if (c.auth.type !== "oauth2ClientCredentials") throw new GatewayError("GW_INTERNAL", "not an OAuth2 connection");
    const cached = this.#cache.get(c.name);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached.token;
    let p = this.#inflight.get(c.name);
    if (p === undefined) {
      p = this.#fetch(c.auth, secret, timeoutMs).finally(() => this.#inflight.delete(c.name));
      this.#inflight.set(c.name, p);
    }
    const t = await p;
    this.#cache.set(c.name, t);
    return t.token;
  }

  async #fetch(auth: Extract<HttpConnection["auth"], { type: "oauth2ClientCredentials" }>, secret: string, timeoutMs: number): Promise<CachedToken> {
    const body = new URLSearchParams({ grant_type: "client_credentials" });
    if (auth.scopes.length > 0) body.set("scope", auth.scopes.join(" "));
    let res: Response;
    try {
      res = await fetch(auth.tokenUrl, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(auth.clientId)}:${encodeURIComponent(secret)}`).toString("base64")}`,
        },
        body,
        redirect: "error",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new GatewayError("GW_UPSTREAM_AUTH", "the OAuth2 token endpoint could not be reached", { cause: e });
    }
    const text = await res.text().catch(() => "");
    if (!res.ok) throw new GatewayError("GW_UPSTREAM_AUTH", `the OAuth2 token endpoint refused the gateway's client credentials (HTTP ${res.status})`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.slice(0, 65_536));
    } catch {
      throw new GatewayError("GW_UPSTREAM_AUTH", "the OAuth2 token endpoint answered something that is not JSON");
    }
    const o = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const token = o.access_token;
    if (typeof token !== "string" || token.length === 0) throw new GatewayError("GW_UPSTREAM_AUTH", "the OAuth2 token endpoint returned no access_token");
    const expiresIn = typeof o.expires_in === "number" && o.expires_in > 0 ? o.expires_in : 300;
    return { token, expiresAt: Date.now() + Math.max(1, expiresIn - 30) * 1000 };
  }
}

/** How to reach an http connection, with its credential resolved. */
export async function httpUpstream(c: HttpConnection, resolveSecret: (ref: SecretRef) => Promise<string>, oauth: OAuthTokens, timeoutMs: number): Promise<HttpUpstream> {
  const headers: Record<string, string> = {};
  const secrets: string[] = [];
  let query: [string, string][] | undefined;
  const auth = c.auth;
  switch (auth.type) {
    case "none":
      break;
    case "bearer": {
      const t = await resolveSecret(auth.token);
      headers.authorization = `Bearer ${t}`;
      secrets.push(t);
      break;
    }
    case "basic": {
      const p = await resolveSecret(auth.password);
      const b64 = Buffer.from(`${auth.username}:${p}`).toString("base64");
      headers.authorization = `Basic ${b64}`;
      secrets.push(p, b64);
      break;
    }
    case "header": {
      const v = await resolveSecret(auth.value);
      headers[auth.name.toLowerCase()] = v;
      secrets.push(v);
      break;
    }
    case "query": {
      const v = await resolveSecret(auth.value);
      query = [[auth.name, v]];
      secrets.push(v, encodeURIComponent(v));
      break;
    }
    case "oauth2ClientCredentials": {
      const s = await resolveSecret(auth.clientSecret);
      const t = await oauth.get(c, s, timeoutMs);
      headers.authorization = `Bearer ${t}`;
      secrets.push(s, t);
      break;
    }
  }
  const tls = {
    ...(c.tlsCa === undefined ? {} : { ca: await resolveSecret(c.tlsCa) }),
    ...(c.tlsCert === undefined ? {} : { cert: await resolveSecret(c.tlsCert) }),
    ...(c.tlsKey === undefined ? {} : { key: await resolveSecret(c.tlsKey) }),
    ...(c.tlsServerName === undefined ? {} : { servername: c.tlsServerName }),
  };
  return {
    baseUrl: new URL(c.baseUrl),
    headers,
    ...(query === undefined ? {} : { query }),
    tls,
    // Short values would scrub ordinary text; a credential that short is not worth the name.
    secrets: secrets.filter((s) => s.length >= 6),
  };
}
