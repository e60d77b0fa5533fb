/**
 * HashiCorp Vault / OpenBao client for `vault:MOUNT/PATH#FIELD` secret references (issue 20):
 * KV version 2 reads (`GET /v1/MOUNT/data/PATH`), authenticated with a token, AppRole
 * (`POST /v1/auth/MOUNT/login` with role_id and secret_id) or Kubernetes
 * (`POST /v1/auth/MOUNT/login` with the pod's service-account JWT and a role).
 *
 * Values are cached per reference for `refreshMs` (rotation without restart: a value read after
 * that is fetched again, so the next target login uses a rotated secret while live sessions
 * continue on the connection they have). A login token is reused until Vault refuses it (403)
 * or its lease runs out, then the client logs in again once. Nothing read from Vault, nor the
 * client's own token, is ever put into an error or a log line: errors name the reference and
 * Vault's HTTP status only.
 */
import type { Agent } from "node:https";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { SecretCache, pickField, secretUnresolved as unresolved, type SecretDocument } from "./cache.js";
import { SecretHttpError, secretHttp, secretStoreAgent } from "./http.js";

export type VaultAuth =
  | { readonly method: "token"; readonly token: () => Promise<string> }
  | { readonly method: "approle"; readonly mount: string; readonly roleId: () => Promise<string>; readonly secretId: () => Promise<string> }
  | { readonly method: "kubernetes"; readonly mount: string; readonly role: string; readonly jwt: () => Promise<string> };

export interface VaultOptions {
  /** e.g. https://vault.internal:8200 */
  readonly address: string;
  /** Vault Enterprise / OpenBao namespace (X-Vault-Namespace). */
  readonly namespace?: string;
  /** PEM CA bundle for an https address. */
  readonly ca?: string;
  readonly auth: VaultAuth;
  readonly timeoutMs: number;
  /** How long a value read is used before it is read again. */
  readonly refreshMs: number;
  /** Called with every value read, so that the log scrubber knows it. */
  readonly onValue?: (value: string) => void;
}

const loginAnswer = z.object({ auth: z.object({ client_token: z.string().min(1), lease_duration: z.number().int().nonnegative().optional() }) });
const kvAnswer = z.object({ data: z.object({ data: z.record(z.string(), z.unknown()).nullable() }) });

export class VaultClient {
  readonly #o: VaultOptions;
  readonly #agent: Agent | undefined;
  #token: { readonly value: string; readonly until: number } | undefined;
  #login: Promise<string> | undefined;
  /** Per KV path (mount + path), so that two fields of one secret are one read. */
  readonly #cache: SecretCache;

  constructor(o: VaultOptions) {
    this.#o = o;
    const url = new URL(o.address);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new GatewayError("GW_CONFIG", "secrets.vault.address must be an http(s) URL");
    this.#agent = secretStoreAgent(url, o.ca);
    this.#cache = new SecretCache(o.refreshMs);
  }

  /** The value of FIELD in the KV v2 secret MOUNT/PATH. */
  async read(ref: { readonly mount: string; readonly path: string; readonly field: string }, describe: string): Promise<string> {
    const doc = await this.#cache.get(`${ref.mount}\u0000${ref.path}`, () => this.#fetch(ref.mount, ref.path, describe));
    return pickField(doc, ref.field, describe);
  }

  async #fetch(mount: string, path: string, describe: string): Promise<SecretDocument> {
    const apiPath = `/v1/${encodeURIComponent(mount)}/data/${path.split("/").map(encodeURIComponent).join("/")}`;
    for (let attempt = 0; ; attempt++) {
      const token = await this.#currentToken(describe);
      try {
        const body = await this.call("GET", apiPath, undefined, token);
        const parsed = kvAnswer.safeParse(body);
        if (!parsed.success || parsed.data.data.data === null) throw unresolved(describe, "Vault's answer is not a KV v2 secret (or the secret version is deleted)");
        const data = parsed.data.data.data;
        for (const v of Object.values(data)) if (typeof v === "string" && v !== "") this.#o.onValue?.(v);
        return data;
      } catch (e) {
        if (e instanceof SecretHttpError) {
          // A token Vault no longer accepts (revoked, expired): log in again, once (for a static
          // token: read its reference again, e.g. a file Vault Agent rewrites).
          if (e.status === 403 && attempt === 0) {
            this.#token = undefined;
            continue;
          }
          throw unresolved(describe, e.status === 404 ? "no such secret in Vault" : e.status === 403 ? "Vault refused access (403)" : `Vault answered ${e.status}`);
        }
        if (e instanceof GatewayError) throw e;
        throw unresolved(describe, "Vault could not be reached", e);
      }
    }
  }

  /** The current login token (logging in when there is none or it ran out). */
  token(describe: string): Promise<string> {
    return this.#currentToken(describe);
  }

  /** Forget the login token (Vault answered 403 with it). */
  dropToken(): void {
    this.#token = undefined;
  }

  async #currentToken(describe: string): Promise<string> {
    const t = this.#token;
    if (t !== undefined && Date.now() < t.until) return t.value;
    this.#login ??= this.#doLogin(describe).finally(() => (this.#login = undefined));
    return this.#login;
  }

  async #doLogin(describe: string): Promise<string> {
    const auth = this.#o.auth;
    let value: string;
    let leaseMs = Number.POSITIVE_INFINITY;
    try {
      switch (auth.method) {
        case "token":
          value = await auth.token();
          break;
        case "approle":
        case "kubernetes": {
          const payload =
            auth.method === "approle" ? { role_id: await auth.roleId(), secret_id: await auth.secretId() } : { role: auth.role, jwt: await auth.jwt() };
          const answer = loginAnswer.safeParse(await this.call("POST", `/v1/auth/${encodeURIComponent(auth.mount)}/login`, payload, undefined));
          if (!answer.success) throw unresolved(describe, `Vault's ${auth.method} login answer has no client token`);
          value = answer.data.auth.client_token;
          const lease = answer.data.auth.lease_duration;
          // Renew by logging in again a little before the lease ends (0 = no expiry).
          if (lease !== undefined && lease > 0) leaseMs = Math.max(1_000, lease * 1000 * 0.9);
          break;
        }
      }
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      if (e instanceof SecretHttpError) throw unresolved(describe, `the Vault ${auth.method} login was refused (${e.status})`);
      throw unresolved(describe, "Vault could not be reached for login", e);
    }
    this.#o.onValue?.(value);
    this.#token = { value, until: Date.now() + leaseMs };
    return value;
  }

  /** One Vault API call (the token header when given); non-2xx is a SecretHttpError. */
  call(method: "GET" | "POST" | "PUT", path: string, payload: unknown, token: string | undefined): Promise<unknown> {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers["x-vault-token"] = token;
    if (this.#o.namespace !== undefined) headers["x-vault-namespace"] = this.#o.namespace;
    if (payload !== undefined) headers["content-type"] = "application/json";
    return secretHttp({
      method,
      url: new URL(path, this.#o.address),
      headers,
      timeoutMs: this.#o.timeoutMs,
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      ...(this.#agent === undefined ? {} : { agent: this.#agent }),
    });
  }

  close(): void {
    this.#agent?.destroy();
    this.#cache.clear();
  }
}
