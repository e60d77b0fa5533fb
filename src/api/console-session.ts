/**
 * Browser sessions of the web console (web/).
 *
 * The console's cookie (`airlock_console`, HttpOnly, SameSite=Strict, Path=/) holds a random
 * session id; the server keeps what it stands for: the Airlock token the person logged in
 * with (re-verified on every request, so expiry, revocation and principal blocks apply at
 * once) or, for the demo's one-time login link, the admin principal until the session expires.
 *
 * Invariants:
 * - The token never reaches the browser's scripts: it stays server-side, keyed by the SHA-256
 *   of the cookie (a memory dump does not yield usable cookies).
 * - Every state-changing request (anything but GET/HEAD) carrying the cookie must also carry
 *   `X-Airlock-CSRF` equal to the session's CSRF token (handed to the page by
 *   GET /v1/console/session) and, when the browser sends them, an Origin of this server and
 *   `Sec-Fetch-Site: same-origin`. Bearer-token callers (CLI) are unaffected: they send no cookie.
 * - One-time login links: a random code, usable once, within its lifetime; only its hash is kept.
 * - Bounded: at most `maxSessions` sessions and `maxLinks` pending links (oldest dropped).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { GatewayError } from "../core/errors.js";
import { ADMIN_PRINCIPAL, type Principal } from "../core/principal.js";
import { readCookie } from "../identity/login-state.js";

export const CONSOLE_COOKIE = "airlock_console";
export const CSRF_HEADER = "x-airlock-csrf";
const COOKIE_SHAPE = /^[A-Za-z0-9_-]{43}$/u;

export type ConsoleCredential = { readonly kind: "token"; readonly token: string } | { readonly kind: "admin" };

interface ConsoleLogin {
  readonly credential: ConsoleCredential;
  readonly csrf: string;
  readonly expiresAt: number;
}

export interface ConsoleSessionsOptions {
  /** Verifies a token (the gateway's authenticator). */
  readonly authenticate: (token: string) => Promise<Principal>;
  /** Lifetime of a console session (default 12 h; a token login also ends with its token). */
  readonly ttlMs?: number;
  readonly maxSessions?: number;
  readonly maxLinks?: number;
  readonly now?: () => number;
}

function sha(s: string): string {
  return createHash("sha256").update(s).digest("base64url");
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleSessions {
  readonly #sessions = new Map<string, ConsoleLogin>();
  readonly #links = new Map<string, number>();
  readonly #o: ConsoleSessionsOptions;
  readonly #ttlMs: number;

  constructor(options: ConsoleSessionsOptions) {
    this.#o = options;
    this.#ttlMs = options.ttlMs ?? 12 * 3_600_000;
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  /** A one-time login code (admin), valid for `ttlMs` (default 15 min). */
  createLink(ttlMs = 15 * 60_000): string {
    const code = randomBytes(24).toString("base64url");
    this.#bound(this.#links, this.#o.maxLinks ?? 100);
    this.#links.set(sha(code), this.#now() + ttlMs);
    return code;
  }

  /** Use a one-time code: true exactly once, within its lifetime. */
  takeLink(code: string): boolean {
    const key = sha(code);
    const until = this.#links.get(key);
    if (until === undefined) return false;
    this.#links.delete(key);
    return until >= this.#now();
  }

  /** Open a session; returns the cookie value. */
  open(credential: ConsoleCredential, notAfter?: Date): string {
    this.#sweep();
    this.#bound(this.#sessions, this.#o.maxSessions ?? 10_000);
    const cookie = randomBytes(32).toString("base64url");
    const expiresAt = Math.min(this.#now() + this.#ttlMs, notAfter?.getTime() ?? Number.POSITIVE_INFINITY);
    this.#sessions.set(sha(cookie), { credential, csrf: randomBytes(24).toString("base64url"), expiresAt });
    return cookie;
  }

  close(cookie: string): void {
    this.#sessions.delete(sha(cookie));
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** The session behind a cookie value: its principal (verified now), CSRF token and expiry; undefined when none or no longer valid. */
  async resolve(cookie: string | undefined): Promise<{ principal: Principal; csrf: string; expiresAt: Date } | undefined> {
    if (cookie === undefined || !COOKIE_SHAPE.test(cookie)) return undefined;
    const key = sha(cookie);
    const s = this.#sessions.get(key);
    if (s === undefined) return undefined;
    if (s.expiresAt < this.#now()) {
      this.#sessions.delete(key);
      return undefined;
    }
    let principal: Principal;
    switch (s.credential.kind) {
      case "admin":
        principal = ADMIN_PRINCIPAL;
        break;
      case "token":
        try {
          principal = await this.#o.authenticate(s.credential.token);
        } catch {
          // Expired, revoked or blocked: the session ends with its token.
          this.#sessions.delete(key);
          return undefined;
        }
        break;
    }
    return { principal, csrf: s.csrf, expiresAt: new Date(s.expiresAt) };
  }

  /**
   * The caller of an API request that carries the console cookie and no Authorization header:
   * undefined when it carries no cookie; throws GW_AUTH_* for a cookie that does not resolve and
   * GW_FORBIDDEN for a state-changing request without the session's CSRF token or from another origin.
   */
  async authenticateRequest(request: FastifyRequest, origins: readonly string[]): Promise<Principal | undefined> {
    const cookie = readCookie(request.headers.cookie, CONSOLE_COOKIE);
    if (cookie === undefined || cookie === "") return undefined;
    const s = await this.resolve(cookie);
    if (s === undefined) throw new GatewayError("GW_AUTH_EXPIRED", "your console session has ended: sign in again");
    if (request.method !== "GET" && request.method !== "HEAD") {
      if (!sameOrigin(request, origins)) throw new GatewayError("GW_FORBIDDEN", "cross-site request refused");
      const given = request.headers[CSRF_HEADER];
      if (typeof given !== "string" || !safeEqual(given, s.csrf)) {
        throw new GatewayError("GW_FORBIDDEN", "missing or wrong CSRF token: reload the console");
      }
    }
    return s.principal;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, s] of this.#sessions) if (s.expiresAt < now) this.#sessions.delete(k);
    for (const [k, until] of this.#links) if (until < now) this.#links.delete(k);
  }

  #bound<V>(map: Map<string, V>, max: number): void {
    while (map.size >= max) {
      const oldest = map.keys().next();
      if (oldest.done === true) return;
      map.delete(oldest.value);
    }
  }
}

/**
 * The request comes from this server's own pages: Sec-Fetch-Site (when the browser sends it)
 * is same-origin, and the Origin (when sent) is one of `origins` or the request's own.
 */
export function sameOrigin(request: FastifyRequest, origins: readonly string[]): boolean {
  const site = request.headers["sec-fetch-site"];
  if (typeof site === "string" && site !== "same-origin") return false;
  const origin = request.headers.origin;
  if (origin === undefined) return typeof site === "string";
  const allowed = origins.length > 0 ? origins : [`${request.protocol}://${request.host}`];
  return allowed.includes(origin);
}

/** Set-Cookie value for a console session cookie. */
export function consoleCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${CONSOLE_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}${secure ? "; Secure" : ""}`;
}
