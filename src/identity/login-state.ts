/**
 * Short-lived server-side state for browser logins (OIDC state/nonce/PKCE verifier, SAML
 * request ids). Bounded in size and time; every entry is usable exactly once. The browser is
 * bound to its entry by a random cookie whose SHA-256 is kept here (login CSRF defence: a
 * callback URL replayed in another browser has no matching cookie).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const LOGIN_COOKIE = "airlock_login";

export interface PendingLogin<T> {
  readonly data: T;
  readonly cookieHash: Buffer;
  readonly expiresAt: number;
}

export class LoginStates<T> {
  readonly #entries = new Map<string, PendingLogin<T>>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(options: { readonly ttlMs?: number; readonly max?: number } = {}) {
    this.#ttlMs = options.ttlMs ?? 10 * 60_000;
    this.#max = options.max ?? 10_000;
  }

  /** Store `data` under `key`; returns the cookie value to bind the browser. */
  put(key: string, data: T): string {
    this.#sweep();
    if (this.#entries.size >= this.#max) {
      // Drop the oldest: a flood of abandoned logins must not grow memory without bound.
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    const cookie = randomBytes(24).toString("base64url");
    this.#entries.set(key, { data, cookieHash: sha256(cookie), expiresAt: Date.now() + this.#ttlMs });
    return cookie;
  }

  /** Take (and forget) the entry for `key` if it exists, has not expired, and the cookie matches. */
  take(key: string, cookie: string | undefined): T | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    this.#entries.delete(key);
    if (e.expiresAt < Date.now()) return undefined;
    if (cookie === undefined || !timingSafeEqual(sha256(cookie), e.cookieHash)) return undefined;
    return e.data;
  }

  get size(): number {
    return this.#entries.size;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.#entries) {
      if (e.expiresAt < now) this.#entries.delete(k);
    }
  }
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** The value of one cookie from a Cookie header (RFC 6265 §5.4), or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A replay cache of ids seen (SAML assertion ids), each remembered until it could no longer be valid. */
export class SeenIds {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  constructor(max = 100_000) {
    this.#max = max;
  }
  /** Returns false if `id` was seen and has not expired; otherwise remembers it until `until`. */
  add(id: string, until: number): boolean {
    const now = Date.now();
    const prev = this.#seen.get(id);
    if (prev !== undefined && prev >= now) return false;
    if (this.#seen.size >= this.#max) {
      for (const [k, t] of this.#seen) if (t < now) this.#seen.delete(k);
      // Still full of live ids: refuse rather than forget one (fail closed).
      if (this.#seen.size >= this.#max) return false;
    }
    this.#seen.set(id, until);
    return true;
  }
}
