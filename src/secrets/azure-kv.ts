/**
 * Azure Key Vault for `azure-kv:VAULT/SECRET[/VERSION][#FIELD]` references: `GET
 * https://VAULT.vault.azure.net/secrets/SECRET[/VERSION]?api-version=7.4` (learn.microsoft.com/
 * rest/api/keyvault/secrets/get-secret) with a bearer token from Microsoft Entra ID's client
 * credentials flow (`POST AUTHORITY/TENANT/oauth2/v2.0/token`, scope
 * `https://vault.azure.net/.default`).
 */
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { BearerToken, formTokenRequest } from "./bearer.js";
import { SecretCache, pickField, secretUnresolved, type SecretDocument } from "./cache.js";
import { SecretHttpError, secretHttp } from "./http.js";

export interface AzureSecretsOptions {
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: () => Promise<string>;
  /** default https://login.microsoftonline.com */
  readonly authorityHost?: string;
  /** The vault's URL with {vault} for its name; default https://{vault}.vault.azure.net */
  readonly vaultUrl?: string;
  readonly timeoutMs: number;
  readonly refreshMs: number;
  readonly onValue?: (value: string) => void;
}

export const AZURE_KV_API_VERSION = "7.4";
const secretAnswer = z.object({ value: z.string() });

export class AzureKeyVault {
  readonly #o: AzureSecretsOptions;
  readonly #cache: SecretCache;
  readonly #token: BearerToken;

  constructor(o: AzureSecretsOptions) {
    this.#o = o;
    this.#cache = new SecretCache(o.refreshMs);
    this.#token = new BearerToken(() => this.#login(), o.onValue);
  }

  async read(ref: { readonly vault: string; readonly secret: string; readonly version?: string; readonly field?: string }, describe: string): Promise<string> {
    const doc = await this.#cache.get(`${ref.vault}/${ref.secret}/${ref.version ?? ""}`, () => this.#fetch(ref, describe));
    return pickField(doc, ref.field, describe);
  }

  async #login(): Promise<{ token: string; expiresInS: number }> {
    const url = new URL(`/${encodeURIComponent(this.#o.tenantId)}/oauth2/v2.0/token`, this.#o.authorityHost ?? "https://login.microsoftonline.com");
    let t;
    try {
      const secret = await this.#o.clientSecret();
      this.#o.onValue?.(secret);
      t = await formTokenRequest(url, { grant_type: "client_credentials", client_id: this.#o.clientId, client_secret: secret, scope: "https://vault.azure.net/.default" }, this.#o.timeoutMs);
    } catch (e) {
      if (e instanceof SecretHttpError) throw new LoginProblem(`Microsoft Entra ID refused the client credentials (${e.status}${e.code === undefined ? "" : ` ${e.code}`})`);
      if (e instanceof GatewayError) throw e;
      throw new LoginProblem("Microsoft Entra ID could not be reached", e);
    }
    if (t === undefined) throw new LoginProblem("Microsoft Entra ID answered without an access token");
    return t;
  }

  async #fetch(ref: { readonly vault: string; readonly secret: string; readonly version?: string }, describe: string): Promise<SecretDocument> {
    const base = (this.#o.vaultUrl ?? "https://{vault}.vault.azure.net").replace("{vault}", ref.vault).replace(/\/+$/, "");
    const url = new URL(`${base}/secrets/${ref.secret}${ref.version === undefined ? "" : `/${ref.version}`}`);
    url.searchParams.set("api-version", AZURE_KV_API_VERSION);
    for (let attempt = 0; ; attempt++) {
      let raw: unknown;
      try {
        const token = await this.#token.get();
        raw = await secretHttp({ method: "GET", url, headers: { authorization: `Bearer ${token}` }, timeoutMs: this.#o.timeoutMs });
      } catch (e) {
        if (e instanceof LoginProblem) throw secretUnresolved(describe, e.message, e.cause);
        if (e instanceof SecretHttpError) {
          if (e.status === 401 && attempt === 0) {
            this.#token.drop();
            continue;
          }
          throw secretUnresolved(describe, `Azure Key Vault answered ${e.status}${e.code === undefined ? "" : ` (${e.code})`}`);
        }
        if (e instanceof GatewayError) throw e;
        throw secretUnresolved(describe, "Azure Key Vault could not be reached", e);
      }
      const parsed = secretAnswer.safeParse(raw);
      if (!parsed.success) throw secretUnresolved(describe, "Azure Key Vault's answer has no secret value");
      this.#o.onValue?.(parsed.data.value);
      return parsed.data.value;
    }
  }

  close(): void {
    this.#cache.clear();
  }
}

/** A login step that failed, with the reason to show (never a credential). */
class LoginProblem extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
