/**
 * Secrets the console stores (a connection's password entered as a value, not a reference),
 * encrypted at rest with AES-256-GCM (NIST SP 800-38D): a fresh 96-bit IV per value, the
 * 128-bit tag checked on every open, and the value's purpose (e.g. `connection:orders:password`)
 * bound as additional authenticated data so a ciphertext cannot be moved to another field.
 *
 * The key: `AIRLOCK_SECRET_KEY` (32 bytes, base64 or hex) when set, else `<dataDir>/keys/secrets.key`
 * (created 0600 at first use). Sealed text: `v1.<iv>.<tag>.<ciphertext>` (base64url).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { GatewayError } from "../core/errors.js";

const VERSION = "v1";
/** Sealed values are bounded (a PEM key fits with room to spare). */
export const MAX_SECRET_BYTES = 64 * 1024;

export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new GatewayError("GW_CONFIG", "the secrets key must be 32 bytes (AES-256)");
    this.#key = Buffer.from(key);
  }

  /** The key from `AIRLOCK_SECRET_KEY`, else from `keyFile` (created when missing). */
  static open(keyFile: string, env: NodeJS.ProcessEnv = process.env): SecretBox {
    const fromEnv = env["AIRLOCK_SECRET_KEY"];
    if (fromEnv !== undefined && fromEnv !== "") {
      const key = /^[0-9a-fA-F]{64}$/u.test(fromEnv) ? Buffer.from(fromEnv, "hex") : Buffer.from(fromEnv, "base64");
      return new SecretBox(key);
    }
    if (!existsSync(keyFile)) {
      mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
      writeFileSync(keyFile, randomBytes(32).toString("base64"), { mode: 0o600, flag: "wx" });
    }
    return new SecretBox(Buffer.from(readFileSync(keyFile, "utf8").trim(), "base64"));
  }

  seal(plaintext: string, purpose: string): string {
    const data = Buffer.from(plaintext, "utf8");
    if (data.length > MAX_SECRET_BYTES) throw new GatewayError("GW_BAD_REQUEST", `a secret is at most ${MAX_SECRET_BYTES} bytes`);
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(purpose, "utf8"));
    const ct = Buffer.concat([cipher.update(data), cipher.final()]);
    return [VERSION, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ct.toString("base64url")].join(".");
  }

  /** Throws GW_SECRET_UNRESOLVED (never saying the value) when the text is not a sealed value of this key and purpose. */
  open(sealed: string, purpose: string): string {
    const parts = sealed.split(".");
    const [v, ivText, tagText, ctText] = parts;
    if (parts.length !== 4 || v !== VERSION || ivText === undefined || tagText === undefined || ctText === undefined || sealed.length > MAX_SECRET_BYTES * 2) {
      throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
    }
    // Only the canonical base64url spelling of each part is accepted: a sealed value has exactly
    // one text form, so an altered character is always refused, even in the trailing bits.
    const decoded = [ivText, tagText, ctText].map((text) => Buffer.from(text, "base64url"));
    if (decoded.some((buf, i) => buf.toString("base64url") !== [ivText, tagText, ctText][i])) {
      throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret is malformed");
    }
    const [iv, tag, ct] = decoded as [Buffer, Buffer, Buffer];
    try {
      if (iv.length !== 12 || tag.length !== 16) throw new Error("bad sizes");
      const decipher = createDecipheriv("aes-256-gcm", this.#key, iv);
      decipher.setAAD(Buffer.from(purpose, "utf8"));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ct), decipher.final()]).toString("utf8");
    } catch (e) {
      throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret cannot be decrypted (wrong key, or it was altered)", { cause: e });
    }
  }
}
