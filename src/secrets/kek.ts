/**
 * Key-encryption keys (KEKs) of stored secrets (secret-box.ts): each wraps the per-value data keys.
 *
 * - local: 32 bytes from env/file (secrets.storeKey, AIRLOCK_SECRET_KEY, <dataDir>/keys/secrets.key);
 *   AES-256-GCM with the value's purpose as additional authenticated data.
 * - vault-transit:[MOUNT/]NAME: Vault's transit engine (developer.hashicorp.com/vault/api-docs/secret/transit)
 *   encrypts and decrypts the data key (`POST /v1/MOUNT/encrypt/NAME {plaintext}` →
 *   `{data: {ciphertext: "vault:v1:…"}}`, `POST /v1/MOUNT/decrypt/NAME {ciphertext}` →
 *   `{data: {plaintext}}`, base64); the key never leaves Vault. The purpose is bound by a SHA-256
 *   of it inside the encrypted plaintext (checked at decrypt), which needs no derived key.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { SecretHttpError } from "./http.js";
import type { VaultClient } from "./vault.js";

export const UNREADABLE = "a stored secret cannot be decrypted (wrong key, or it was altered)";

export interface KeyEncryptionKey {
  /** The public name of the key in sealed text (base64url, no dots): never the key itself. */
  readonly id: string;
  /** Wrap a 32-byte data key for `purpose`; the result is base64url. */
  wrap(dek: Buffer, purpose: string): Promise<string>;
  /** Throws GW_SECRET_UNRESOLVED when `wrapped` is not a data key wrapped by this key for `purpose`. */
  unwrap(wrapped: string, purpose: string): Promise<Buffer>;
}

/** A remote KEK could not be asked (unreachable, login refused, 5xx): worth trying again later, unlike a refusal. */
export class KekUnavailable extends GatewayError {
  constructor(message: string, cause?: unknown) {
    super("GW_SECRET_UNRESOLVED", message, cause === undefined ? {} : { cause });
  }
}

export function unreadable(cause?: unknown): GatewayError {
  return new GatewayError("GW_SECRET_UNRESOLVED", UNREADABLE, cause === undefined ? undefined : { cause });
}

/** Base64url parts, each in its one canonical spelling (an altered character is always refused). */
export function decodeParts(parts: readonly string[]): Buffer[] {
  const decoded = parts.map((text) => Buffer.from(text, "base64url"));
  if (decoded.some((buf, i) => buf.toString("base64url") !== parts[i])) throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
  return decoded;
}

export function gcmSeal(key: Buffer, data: Buffer, aad: string): [Buffer, Buffer, Buffer] {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const ct = Buffer.concat([cipher.update(data), cipher.final()]);
  return [iv, cipher.getAuthTag(), ct];
}

export function gcmOpen(key: Buffer, iv: Buffer, tag: Buffer, ct: Buffer, aad: string): Buffer {
  try {
    if (iv.length !== 12 || tag.length !== 16) throw new Error("bad sizes");
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch (e) {
    throw unreadable(e);
  }
}

/** A 32-byte local key, AES-256-GCM. */
export class LocalKek implements KeyEncryptionKey {
  readonly id: string;
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new GatewayError("GW_CONFIG", "the secrets key must be 32 bytes (AES-256)");
    this.#key = Buffer.from(key);
    this.id = createHash("sha256").update("airlock-kek-id\0").update(key).digest("base64url").slice(0, 11);
  }

  wrap(dek: Buffer, purpose: string): Promise<string> {
    return Promise.resolve(Buffer.concat(gcmSeal(this.#key, dek, `dek:${purpose}`)).toString("base64url"));
  }

  unwrap(wrapped: string, purpose: string): Promise<Buffer> {
    return Promise.resolve().then(() => {
      const [w] = decodeParts([wrapped]) as [Buffer];
      if (w.length !== 12 + 16 + 32) throw unreadable();
      return gcmOpen(this.#key, w.subarray(0, 12), w.subarray(12, 28), w.subarray(28), `dek:${purpose}`);
    });
  }

  /** A v1 value (sealed before envelope encryption): the value under this key directly. */
  openLegacy(iv: Buffer, tag: Buffer, ct: Buffer, purpose: string): Buffer {
    return gcmOpen(this.#key, iv, tag, ct, purpose);
  }
}

const transitAnswer = z.object({ data: z.object({ ciphertext: z.string().startsWith("vault:v") }) });
const transitPlain = z.object({ data: z.object({ plaintext: z.string() }) });

/** `vault-transit:[MOUNT/]NAME`: the data key encrypted by Vault's transit engine. */
export class VaultTransitKek implements KeyEncryptionKey {
  readonly id: string;
  readonly #vault: VaultClient;
  readonly #mount: string;
  readonly #name: string;

  constructor(vault: VaultClient, mount: string, name: string) {
    this.#vault = vault;
    this.#mount = mount;
    this.#name = name;
    // "vt-" + the reference, base64url: the id says which Vault key, as it is no secret.
    this.id = `vt-${Buffer.from(`${mount}/${name}`, "utf8").toString("base64url")}`;
  }

  async wrap(dek: Buffer, purpose: string): Promise<string> {
    const body = await this.#call("encrypt", { plaintext: Buffer.concat([dek, bind(purpose)]).toString("base64") });
    const r = transitAnswer.safeParse(body);
    if (!r.success) throw new GatewayError("GW_SECRET_UNRESOLVED", `Vault transit key ${this.#name}: the encrypt answer has no ciphertext`);
    return Buffer.from(r.data.data.ciphertext, "utf8").toString("base64url");
  }

  async unwrap(wrapped: string, purpose: string): Promise<Buffer> {
    const [w] = decodeParts([wrapped]) as [Buffer];
    const ciphertext = w.toString("utf8");
    if (!/^vault:v\d+:[A-Za-z0-9+/=]+$/u.test(ciphertext)) throw unreadable();
    const body = await this.#call("decrypt", { ciphertext });
    const r = transitPlain.safeParse(body);
    if (!r.success) throw unreadable();
    const plain = Buffer.from(r.data.data.plaintext, "base64");
    if (plain.length !== 64 || !timingSafeEqual(plain.subarray(32), bind(purpose))) throw unreadable();
    return Buffer.from(plain.subarray(0, 32));
  }

  async #call(op: "encrypt" | "decrypt", payload: Record<string, string>): Promise<unknown> {
    const describe = `vault-transit:${this.#mount}/${this.#name}`;
    const path = `/v1/${encodeURIComponent(this.#mount)}/${op}/${encodeURIComponent(this.#name)}`;
    for (let attempt = 0; ; attempt++) {
      let token: string;
      try {
        token = await this.#vault.token(describe);
      } catch (e) {
        throw new KekUnavailable(`${describe}: the Vault login failed`, e);
      }
      try {
        return await this.#vault.call("POST", path, payload, token);
      } catch (e) {
        if (e instanceof SecretHttpError) {
          if (e.status === 403 && attempt === 0) {
            this.#vault.dropToken();
            continue;
          }
          // Vault answers 400 to a ciphertext it cannot decrypt (altered, another key).
          if (op === "decrypt" && e.status === 400) throw unreadable();
          throw new KekUnavailable(`${describe}: Vault answered ${e.status}`);
        }
        if (e instanceof GatewayError) throw e;
        throw new KekUnavailable(`${describe}: Vault could not be reached`, e);
      }
    }
  }
}

function bind(purpose: string): Buffer {
  return createHash("sha256").update("airlock-dek-purpose\0").update(purpose, "utf8").digest();
}
