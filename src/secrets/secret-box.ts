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
 * The KEK (kek.ts): `secrets.storeKey` when configured (a reference, e.g. env:NAME or file:PATH,
 * to 32 bytes, base64 or hex; or `vault-transit:NAME`, Vault's transit engine), else
 * `AIRLOCK_SECRET_KEY`, else `<dataDir>/keys/secrets.key` (created 0600 at first use).
 * `secrets.previousStoreKeys` still open (during a rotation), never seal. Opening and sealing are
 * asynchronous (a KEK may be remote).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { GatewayError } from "../core/errors.js";
import { LocalKek, decodeParts, gcmOpen, gcmSeal, unreadable, type KeyEncryptionKey } from "./kek.js";

/** Sealed values are bounded (a PEM key fits with room to spare). */
export const MAX_SECRET_BYTES = 64 * 1024;

/** A 32-byte key written as 64 hex digits or base64. */
export function parseStoreKey(text: string, what = "the secrets key"): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/u.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64");
  if (key.length !== 32) throw new GatewayError("GW_CONFIG", `${what} must be 32 bytes (AES-256), as 64 hex digits or base64`);
  return key;
}

/** A key text (local) or a KEK already built (remote). */
export type StoreKeySource = string | KeyEncryptionKey;

function toKek(k: Buffer | KeyEncryptionKey): KeyEncryptionKey {
  return Buffer.isBuffer(k) ? new LocalKek(k) : k;
}

export class SecretBox {
  readonly #current: KeyEncryptionKey;
  /** Every KEK that opens, by id (the current one first). */
  readonly #keys = new Map<string, KeyEncryptionKey>();

  constructor(key: Buffer | KeyEncryptionKey, previous: readonly (Buffer | KeyEncryptionKey)[] = []) {
    this.#current = toKek(key);
    for (const k of [this.#current, ...previous.map(toKek)]) if (!this.#keys.has(k.id)) this.#keys.set(k.id, k);
  }

  /**
   * The KEK from `storeKey` (resolved key text, or a remote KEK) when given, else
   * `AIRLOCK_SECRET_KEY`, else `keyFile` (created when missing); `previous` still open.
   */
  static open(keyFile: string, env: NodeJS.ProcessEnv = process.env, options: { readonly storeKey?: StoreKeySource; readonly previous?: readonly StoreKeySource[] } = {}): SecretBox {
    const previous = (options.previous ?? []).map((t, i) => (typeof t === "string" ? parseStoreKey(t, `secrets.previousStoreKeys[${i}]`) : t));
    const k = options.storeKey;
    if (k !== undefined) return new SecretBox(typeof k === "string" ? parseStoreKey(k, "secrets.storeKey") : k, previous);
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
    return this.#current.id;
  }

  async seal(plaintext: string, purpose: string): Promise<string> {
    const data = Buffer.from(plaintext, "utf8");
    if (data.length > MAX_SECRET_BYTES) throw new GatewayError("GW_BAD_REQUEST", `a secret is at most ${MAX_SECRET_BYTES} bytes`);
    const dek = randomBytes(32);
    try {
      const [iv, tag, ct] = gcmSeal(dek, data, purpose);
      return ["v2", this.#current.id, await this.#current.wrap(dek, purpose), ...[iv, tag, ct].map((b) => b.toString("base64url"))].join(".");
    } finally {
      dek.fill(0);
    }
  }

  /** Throws GW_SECRET_UNRESOLVED (never saying the value) when the text is not a sealed value of these keys and this purpose. */
  async open(sealed: string, purpose: string): Promise<string> {
    if (sealed.length > MAX_SECRET_BYTES * 2) throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
    const parts = sealed.split(".");
    if (parts[0] === "v2" && parts.length === 6) {
      const [, kid, wrapped, ...rest] = parts as [string, string, string, string, string, string];
      const [iv, tag, ct] = decodeParts(rest) as [Buffer, Buffer, Buffer];
      const dek = await this.#unwrap(kid, wrapped, purpose);
      try {
        return gcmOpen(dek, iv, tag, ct, purpose).toString("utf8");
      } finally {
        dek.fill(0);
      }
    }
    if (parts[0] === "v1" && parts.length === 4) {
      const [iv, tag, ct] = decodeParts(parts.slice(1)) as [Buffer, Buffer, Buffer];
      // v1 values carry no key id: each local key that opens is tried (a wrong key fails its tag).
      for (const key of this.#keys.values()) {
        if (!(key instanceof LocalKek)) continue;
        try {
          return key.openLegacy(iv, tag, ct, purpose).toString("utf8");
        } catch {
          // the next key
        }
      }
      throw unreadable();
    }
    throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
  }

  /**
   * The same value sealed with its data key wrapped by the current KEK (a v1 value is sealed
   * anew as v2). `changed` is false when it already was. Refused when no key of this box opens it.
   */
  async rewrap(sealed: string, purpose: string): Promise<{ sealed: string; changed: boolean }> {
    const parts = sealed.split(".");
    if (parts[0] === "v2" && parts.length === 6 && sealed.length <= MAX_SECRET_BYTES * 2) {
      const [, kid, wrapped, ...rest] = parts as [string, string, string, string, string, string];
      const [iv, tag, ct] = decodeParts(rest) as [Buffer, Buffer, Buffer];
      const dek = await this.#unwrap(kid, wrapped, purpose);
      try {
        // The value's own tag is checked too: a rotation never carries an altered value on.
        gcmOpen(dek, iv, tag, ct, purpose).fill(0);
        if (kid === this.#current.id) return { sealed, changed: false };
        return { sealed: ["v2", this.#current.id, await this.#current.wrap(dek, purpose), ...rest].join("."), changed: true };
      } finally {
        dek.fill(0);
      }
    }
    return { sealed: await this.seal(await this.open(sealed, purpose), purpose), changed: true };
  }

  #unwrap(kid: string, wrapped: string, purpose: string): Promise<Buffer> {
    const key = this.#keys.get(kid);
    if (key === undefined) {
      return Promise.reject(new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret cannot be decrypted (sealed under a key this gateway does not have: see secrets.previousStoreKeys)"));
    }
    return key.unwrap(wrapped, purpose);
  }
}
