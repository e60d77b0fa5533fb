/**
 * Google Secret Manager for `gcp-sm:projects/P/secrets/S/versions/V[#FIELD]` references:
 * `GET https://secretmanager.googleapis.com/v1/NAME:access` with an OAuth2 access token from the
 * service-account JWT bearer flow (RFC 7523; developers.google.com/identity/protocols/oauth2/
 * service-account#httprest): a JWT signed RS256 with the key file's private key (iss = the
 * service account, scope cloud-platform, aud = the token URI) is exchanged at the token URI for
 * an access token. The payload's CRC32C (`dataCrc32c`) is checked when Google sends it.
 */
import { SignJWT, importPKCS8 } from "jose";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { BearerToken, formTokenRequest } from "./bearer.js";
import { SecretCache, pickField, secretUnresolved, type SecretDocument } from "./cache.js";
import { SecretHttpError, secretHttp } from "./http.js";

export interface GcpSecretsOptions {
  /** The service-account key file's JSON text (a resolved reference). */
  readonly credentials: () => Promise<string>;
  /** default https://secretmanager.googleapis.com */
  readonly endpoint?: string;
  /** Overrides the key file's token_uri (tests, private endpoints). */
  readonly tokenUri?: string;
  readonly timeoutMs: number;
  readonly refreshMs: number;
  readonly onValue?: (value: string) => void;
}

const keyFile = z.object({
  type: z.literal("service_account"),
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  private_key_id: z.string().optional(),
  token_uri: z.string().optional(),
});
const accessAnswer = z.object({ payload: z.object({ data: z.string(), dataCrc32c: z.string().optional() }) });

const SCOPE = "https://www.googleapis.com/auth/cloud-platform";

export class GcpSecretManager {
  readonly #o: GcpSecretsOptions;
  readonly #cache: SecretCache;
  readonly #token: BearerToken;

  constructor(o: GcpSecretsOptions) {
    this.#o = o;
    this.#cache = new SecretCache(o.refreshMs);
    this.#token = new BearerToken(() => this.#login(), o.onValue);
  }

  async read(ref: { readonly name: string; readonly field?: string }, describe: string): Promise<string> {
    const doc = await this.#cache.get(ref.name, () => this.#fetch(ref.name, describe));
    return pickField(doc, ref.field, describe);
  }

  async #login(): Promise<{ token: string; expiresInS: number }> {
    const text = await this.#o.credentials();
    let key: z.infer<typeof keyFile>;
    try {
      key = keyFile.parse(JSON.parse(text));
    } catch (e) {
      throw new LoginProblem("the service-account key is not a Google service_account JSON key", e);
    }
    this.#o.onValue?.(key.private_key);
    const tokenUri = this.#o.tokenUri ?? key.token_uri ?? "https://oauth2.googleapis.com/token";
    let assertion: string;
    try {
      const pk = await importPKCS8(key.private_key, "RS256");
      assertion = await new SignJWT({ scope: SCOPE })
        .setProtectedHeader({ alg: "RS256", typ: "JWT", ...(key.private_key_id === undefined ? {} : { kid: key.private_key_id }) })
        .setIssuer(key.client_email)
        .setAudience(tokenUri)
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(pk);
    } catch (e) {
      throw new LoginProblem("the service-account private key cannot sign (not an RSA PKCS#8 key)", e);
    }
    let t;
    try {
      t = await formTokenRequest(new URL(tokenUri), { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }, this.#o.timeoutMs);
    } catch (e) {
      if (e instanceof SecretHttpError) throw new LoginProblem(`Google's token endpoint refused the service account (${e.status}${e.code === undefined ? "" : ` ${e.code}`})`);
      throw new LoginProblem("Google's token endpoint could not be reached", e);
    }
    if (t === undefined) throw new LoginProblem("Google's token endpoint answered without an access token");
    return t;
  }

  async #fetch(name: string, describe: string): Promise<SecretDocument> {
    const url = new URL(`/v1/${name}:access`, this.#o.endpoint ?? "https://secretmanager.googleapis.com");
    for (let attempt = 0; ; attempt++) {
      let raw: unknown;
      try {
        const token = await this.#token.get();
        raw = await secretHttp({ method: "GET", url, headers: { authorization: `Bearer ${token}` }, timeoutMs: this.#o.timeoutMs });
      } catch (e) {
        if (e instanceof LoginProblem) throw secretUnresolved(describe, e.message, e.cause);
        if (e instanceof GatewayError) throw e;
        if (e instanceof SecretHttpError) {
          if (e.status === 401 && attempt === 0) {
            this.#token.drop();
            continue;
          }
          throw secretUnresolved(describe, `Google Secret Manager answered ${e.status}${e.code === undefined ? "" : ` (${e.code})`}`);
        }
        throw secretUnresolved(describe, "Google Secret Manager could not be reached", e);
      }
      const parsed = accessAnswer.safeParse(raw);
      if (!parsed.success) throw secretUnresolved(describe, "Google Secret Manager's answer has no payload");
      const data = Buffer.from(parsed.data.payload.data, "base64");
      const crc = parsed.data.payload.dataCrc32c;
      if (crc !== undefined && BigInt(crc32c(data)) !== BigInt(crc)) throw secretUnresolved(describe, "the payload's CRC32C does not match (corrupted in transit)");
      const text = data.toString("utf8");
      this.#o.onValue?.(text);
      return text;
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

let table: Uint32Array | undefined;
/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Secret Manager's dataCrc32c. */
export function crc32c(data: Uint8Array): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      table[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of data) crc = (table[(crc ^ b) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
