/**
 * Secrets the console stores (a connection's password entered as a value, not a reference),
 * encrypted at rest with envelope encryption (AES-256-GCM, NIST SP 800-38D, for both layers):
 *
 * - each value is sealed with its own random 256-bit data key (fresh 96-bit IV, 128-bit tag,
 *   the value's purpose, e.g. `connection:orders:password`, bound as additional authenticated
 *   data so a ciphertext cannot be moved to another field);
 * - the data key is wrapped by the key-encryption key (KEK), also with AES-256-GCM, the purpose
 *   bound again (`dek:<purpose>`), so a wrapped key cannot be moved to another value either.
 *
 * Sealed text: `v2.<kid>.<wrapped key>.<iv>.<tag>.<ciphertext>` (base64url; `kid` names the KEK by
 * a hash, never the key). Rotation re-wraps only the data keys (`rewrap`): the values themselves
 * are not re-encrypted. Values sealed by older gateways (`v1.<iv>.<tag>.<ciphertext>`, the value
 * under the key directly) still open with the current or a previous key, and `rewrap` turns
 * them into v2.
 *
 * The KEK: `secrets.storeKey` (a reference, e.g. env:NAME or file:PATH, to 32 bytes, base64 or
 * hex) when configured, else `AIRLOCK_SECRET_KEY`, else `<dataDir>/keys/secrets.key` (created
 * 0600 at first use). `secrets.previousStoreKeys` still open (during a rotation), never seal.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { GatewayError } from "../core/errors.js";

/** Sealed values are bounded (a PEM key fits with room to spare). */
export const MAX_SECRET_BYTES = 64 * 1024;

const UNREADABLE = "a stored secret cannot be decrypted (wrong key, or it was altered)";

/** A 32-byte key written as 64 hex digits or base64. */
export function parseStoreKey(text: string, what = "the secrets key"): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/u.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64");
  if (key.length !== 32) throw new GatewayError("GW_CONFIG", `${what} must be 32 bytes (AES-256), as 64 hex digits or base64`);
  return key;
}

/** The public name of a KEK: a hash prefix, enough to pick the key, useless to guess it. */
function keyId(key: Buffer): string {
  return createHash("sha256").update("airlock-kek-id\0").update(key).digest("base64url").slice(0, 11);
}

function gcmSeal(key: Buffer, data: Buffer, aad: string): [Buffer, Buffer, Buffer] {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const ct = Buffer.concat([cipher.update(data), cipher.final()]);
  return [iv, cipher.getAuthTag(), ct];
}

function gcmOpen(key: Buffer, iv: Buffer, tag: Buffer, ct: Buffer, aad: string): Buffer {
  try {
    if (iv.length !== 12 || tag.length !== 16) throw new Error("bad sizes");
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch (e) {
    throw new GatewayError("GW_SECRET_UNRESOLVED", UNREADABLE, { cause: e });
  }
}

/** Base64url parts, each in its one canonical spelling (an altered character is always refused). */
function decodeParts(parts: readonly string[]): Buffer[] {
  const decoded = parts.map((text) => Buffer.from(text, "base64url"));
  if (decoded.some((buf, i) => buf.toString("base64url") !== parts[i])) throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
  return decoded;
}

export interface StoreKeys {
  /** The KEK that seals (and opens). */
  readonly current: Buffer;
  /** Older KEKs that still open, during a rotation. */
  readonly previous?: readonly Buffer[];
}

export class SecretBox {
  readonly #current: Buffer;
  readonly #currentId: string;
  /** Every KEK that opens, by id (the current one first). */
  readonly #keys = new Map<string, Buffer>();

  constructor(key: Buffer, previous: readonly Buffer[] = []) {
    for (const k of [key, ...previous]) if (k.length !== 32) throw new GatewayError("GW_CONFIG", "the secrets key must be 32 bytes (AES-256)");
    this.#current = Buffer.from(key);
    this.#currentId = keyId(this.#current);
    for (const k of [key, ...previous]) if (!this.#keys.has(keyId(k))) this.#keys.set(keyId(k), Buffer.from(k));
  }

  /**
   * The KEK from `storeKey` (already resolved text) when given, else `AIRLOCK_SECRET_KEY`, else
   * `keyFile` (created when missing); `previous` (resolved texts) still open.
   */
  static open(keyFile: string, env: NodeJS.ProcessEnv = process.env, options: { readonly storeKey?: string; readonly previous?: readonly string[] } = {}): SecretBox {
    const previous = (options.previous ?? []).map((t, i) => parseStoreKey(t, `secrets.previousStoreKeys[${i}]`));
    if (options.storeKey !== undefined) return new SecretBox(parseStoreKey(options.storeKey, "secrets.storeKey"), previous);
    const fromEnv = env["AIRLOCK_SECRET_KEY"];
    if (fromEnv !== undefined && fromEnv !== "") return new SecretBox(parseStoreKey(fromEnv, "AIRLOCK_SECRET_KEY"), previous);
    if (!existsSync(keyFile)) {
      mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
      writeFileSync(keyFile, randomBytes(32).toString("base64"), { mode: 0o600, flag: "wx" });
    }
    return new SecretBox(parseStoreKey(readFileSync(keyFile, "utf8"), keyFile), previous);
  }

  /** The public id of the sealing KEK (shown by rotate-key; not secret). */
  get keyId(): string {
    return this.#currentId;
  }

  seal(plaintext: string, purpose: string): string {
    const data = Buffer.from(plaintext, "utf8");
    if (data.length > MAX_SECRET_BYTES) throw new GatewayError("GW_BAD_REQUEST", `a secret is at most ${MAX_SECRET_BYTES} bytes`);
    const dek = randomBytes(32);
    try {
      const [iv, tag, ct] = gcmSeal(dek, data, purpose);
      return ["v2", this.#currentId, this.#wrap(dek, purpose), ...[iv, tag, ct].map((b) => b.toString("base64url"))].join(".");
    } finally {
      dek.fill(0);
    }
  }

  /** Throws GW_SECRET_UNRESOLVED (never saying the value) when the text is not a sealed value of these keys and this purpose. */
  open(sealed: string, purpose: string): string {
    if (sealed.length > MAX_SECRET_BYTES * 2) throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
    const parts = sealed.split(".");
    if (parts[0] === "v2" && parts.length === 6) {
      const [, kid, wrapped, ...rest] = parts as [string, string, string, string, string, string];
      const [iv, tag, ct] = decodeParts(rest) as [Buffer, Buffer, Buffer];
      const dek = this.#unwrap(kid, wrapped, purpose);
      try {
        return gcmOpen(dek, iv, tag, ct, purpose).toString("utf8");
      } finally {
        dek.fill(0);
      }
    }
    if (parts[0] === "v1" && parts.length === 4) {
      const [iv, tag, ct] = decodeParts(parts.slice(1)) as [Buffer, Buffer, Buffer];
      // v1 values carry no key id: each key that opens is tried (a wrong key fails its tag).
      for (const key of this.#keys.values()) {
        try {
          return gcmOpen(key, iv, tag, ct, purpose).toString("utf8");
        } catch {
          // the next key
        }
      }
      throw new GatewayError("GW_SECRET_UNRESOLVED", UNREADABLE);
    }
    throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
  }

  /**
   * The same value sealed with its data key wrapped by the current KEK (a v1 value is sealed
   * anew as v2). `changed` is false when it already was. Refused when no key of this box opens it.
   */
  rewrap(sealed: string, purpose: string): { sealed: string; changed: boolean } {
    const parts = sealed.split(".");
    if (parts[0] === "v2" && parts.length === 6 && sealed.length <= MAX_SECRET_BYTES * 2) {
      const [, kid, wrapped, ...rest] = parts as [string, string, string, string, string, string];
      const dek = this.#unwrap(kid, wrapped, purpose);
      try {
        // The value's own tag is checked too: a rotation never carries an altered value on.
        const [iv, tag, ct] = decodeParts(rest) as [Buffer, Buffer, Buffer];
        gcmOpen(dek, iv, tag, ct, purpose).fill(0);
        if (kid === this.#currentId) return { sealed, changed: false };
        return { sealed: ["v2", this.#currentId, this.#wrap(dek, purpose), ...rest].join("."), changed: true };
      } finally {
        dek.fill(0);
      }
    }
    return { sealed: this.seal(this.open(sealed, purpose), purpose), changed: true };
  }

  #wrap(dek: Buffer, purpose: string): string {
    return Buffer.concat(gcmSeal(this.#current, dek, `dek:${purpose}`)).toString("base64url");
  }

  #unwrap(kid: string, wrapped: string, purpose: string): Buffer {
    const key = this.#keys.get(kid);
    if (key === undefined) throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret cannot be decrypted (sealed under a key this gateway does not have: see secrets.previousStoreKeys)");
    const [w] = decodeParts([wrapped]) as [Buffer];
    if (w.length !== 12 + 16 + 32) throw new GatewayError("GW_SECRET_UNRESOLVED", UNREADABLE);
    return gcmOpen(key, w.subarray(0, 12), w.subarray(12, 28), w.subarray(28), `dek:${purpose}`);
  }
}
