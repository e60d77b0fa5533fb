/**
 * Short-lived Airlock access tokens: JWTs signed with EdDSA (Ed25519), RFC 9068-style
 * (`typ: at+jwt`). The data path calls `verify` on every client connect, so verification is
 * purely local: signature and claims (RFC 7519 §4.1), an in-memory revocation set kept fresh
 * by polling the store, and the *current* service-account configuration (groups are never
 * taken from the token, so removing an account or changing its groups takes effect at once).
 *
 * The token text is never stored, logged, or put in an error message; the store keeps only
 * metadata (TokenRow) keyed by the `jti`.
 *
 * Longer than ~500 lines on purpose: minting, verifying and revoking share one key set, one
 * revocation set and one claim layout; split, the token format would be spread over files that
 * must always change together.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { SignJWT, calculateJwkThumbprint, errors as joseErrors, exportJWK, jwtVerify } from "jose";
import type { JWK, JWTPayload } from "jose";
import type { Logger } from "pino";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { ServiceAccountConfig } from "../runtime/config.js";
import { formatDuration } from "../runtime/duration.js";
import type { Store } from "../store/types.js";
import { createFileAtomic, ensurePrivateDir } from "./files.js";

export const TOKEN_ISSUER = "airlock";
export const TOKEN_AUDIENCE = "airlock";
export const TOKEN_TYPE = "at+jwt";
export const SIGNING_KEY_FILE = "token-signing.pem";
/** Our tokens are ~400 bytes; anything far larger is not ours and is refused before parsing. */
export const MAX_TOKEN_LENGTH = 4096;
/** Clock skew tolerated between gateways and clients, in seconds. */
export const CLOCK_TOLERANCE_S = 5;
/** Shortest lifetime a token may be minted with (JWT times have one-second resolution). */
export const MIN_TTL_MS = 1000;
/**
 * Principal blocks live in the token table as revoked pseudo-tokens with this id prefix
 * (`block:<uuid>:<principal id>`), so they reach every gateway sharing the store through the
 * revocation poll that already exists, and expire like tokens (then the block lifts).
 */
export const BLOCK_ID_PREFIX = "block:";

/** Claims of a token minted for a person or workload (not a configured service account). */
const identityClaims = z.object({
  sub: z.string().regex(/^(user|wl):/),
  airlock_kind: z.enum(["person", "workload"]),
  name: z.string().min(1).max(500),
  groups: z.array(z.string().min(1).max(200)).max(500),
  email: z.string().max(500).optional(),
});

/** A principal a token can be minted for besides a configured service account. */
export interface IdentityForToken {
  readonly kind: "person" | "workload";
  readonly id: string;
  readonly name: string;
  readonly groups: readonly string[];
  readonly email?: string;
}

/** The principal id a block pseudo-token id names, if it is one. */
export function blockedPrincipalOf(id: string): string | undefined {
  if (!id.startsWith(BLOCK_ID_PREFIX)) return undefined;
  const rest = id.slice(BLOCK_ID_PREFIX.length);
  const colon = rest.indexOf(":");
  return colon < 0 ? undefined : rest.slice(colon + 1);
}

/** How many verified token signatures are remembered (a token is at most MAX_TOKEN_LENGTH). */
const VERIFIED_CACHE_SIZE = 10_000;

/** How far back an incremental revocation poll looks again: covers clock skew between gateways and slow commits. */
const POLL_OVERLAP_MS = 60_000;
/** A full re-read of the revocation list every so often forgets revocations of expired tokens. */
const FULL_RESYNC_MS = 5 * 60_000;

export interface TokenServiceOptions {
  readonly keyDir: string;
  readonly store: Store;
  readonly serviceAccounts: readonly ServiceAccountConfig[];
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
  readonly logger: Logger;
  /** How often revocations made by other gateways sharing the store are picked up. */
  readonly revocationPollMs?: number;
  /** Time source (tests). */
  readonly clock?: () => Date;
}

export interface MintedToken {
  readonly token: string;
  readonly id: string;
  readonly expiresAt: Date;
  readonly principal: Principal;
}

interface AccountView {
  readonly name: string;
  readonly groups: readonly string[];
}

export class TokenService {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #kid: string;
  readonly #store: Store;
  readonly #defaultTtlMs: number;
  readonly #maxTtlMs: number;
  readonly #logger: Logger;
  readonly #pollMs: number;
  readonly #clock: () => Date;
  #accounts = new Map<string, AccountView>();

  /** Invariant: every revoked, unexpired token id known to the store is in here after a poll. */
  #revoked = new Set<string>();
  /** Principal ids blocked by a revoked `block:` pseudo-token in #revoked (derived, see #deriveBlocks). */
  #blocked = new Set<string>();
  /** Ids being revoked locally right now (kept across a full resync that races the store write). */
  readonly #pendingLocal = new Set<string>();
  readonly #listeners = new Set<(tokenId: string) => void>();
  /**
   * A person's current groups by token id, when a re-check at their identity provider found
   * they changed since login (see PersonRechecks). They replace the groups signed into the
   * token on this gateway until the token expires.
   */
  readonly #groupOverrides = new Map<string, { readonly groups: readonly string[]; readonly until: number }>();
  #lastSeenRevokedAt: number | undefined;
  #lastFullSyncAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #pollFailing = false;
  #closed = false;

  private constructor(
    options: TokenServiceOptions,
    keys: { readonly privateKey: KeyObject; readonly publicKey: KeyObject; readonly kid: string },
  ) {
    this.#privateKey = keys.privateKey;
    this.#publicKey = keys.publicKey;
    this.#kid = keys.kid;
    this.#store = options.store;
    this.#defaultTtlMs = options.defaultTtlMs;
    this.#maxTtlMs = options.maxTtlMs;
    this.#logger = options.logger;
    this.#pollMs = options.revocationPollMs ?? 2000;
    this.#clock = options.clock ?? (() => new Date());
    this.updateServiceAccounts(options.serviceAccounts);
  }

  static async open(options: TokenServiceOptions): Promise<TokenService> {
    if (options.defaultTtlMs > options.maxTtlMs) {
      throw new GatewayError("GW_CONFIG", "tokens.defaultTtl must not exceed tokens.maxTtl");
    }
    const keys = await loadOrCreateSigningKey(options.keyDir, options.logger);
    const service = new TokenService(options, keys);
    // The first load must succeed: starting with an empty revocation set would accept revoked tokens.
    await service.#poll(true);
    service.#schedule();
    return service;
  }

  /** The `kid` of the signing key (RFC 7638 thumbprint of the public JWK). */
  get keyId(): string {
    return this.#kid;
  }

  /** Replace the service-account list (config reload). Verification uses it immediately. */
  updateServiceAccounts(list: readonly ServiceAccountConfig[]): void {
    this.#accounts = new Map(list.map((a) => [a.name, { name: a.name, groups: [...a.groups] }]));
  }

  /** The configured service account of a name (current configuration), or undefined. */
  serviceAccount(name: string): { readonly name: string; readonly groups: readonly string[] } | undefined {
    const a = this.#accounts.get(name);
    return a === undefined ? undefined : { name: a.name, groups: [...a.groups] };
  }

  async mint(serviceAccount: string, options: { readonly ttlMs?: number; readonly createdBy: string }): Promise<MintedToken> {
    const account = this.#accounts.get(serviceAccount);
    if (account === undefined) {
      throw new GatewayError("GW_NOT_FOUND", `unknown service account "${serviceAccount}"`);
    }
    const ttlMs = options.ttlMs ?? this.#defaultTtlMs;
    if (!Number.isFinite(ttlMs) || ttlMs < MIN_TTL_MS) {
      throw new GatewayError("GW_BAD_REQUEST", `ttl must be at least ${formatDuration(MIN_TTL_MS)}`);
    }
    if (ttlMs > this.#maxTtlMs) {
      throw new GatewayError("GW_BAD_REQUEST", `ttl exceeds the maximum of ${formatDuration(this.#maxTtlMs)} (tokens.maxTtl)`);
    }
    const now = this.#clock();
    const iat = Math.floor(now.getTime() / 1000);
    const exp = iat + Math.ceil(ttlMs / 1000);
    const id = randomUUID();
    const subject = `sa:${account.name}`;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "EdDSA", typ: TOKEN_TYPE, kid: this.#kid })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(subject)
      .setJti(id)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.#privateKey);
    const expiresAt = new Date(exp * 1000);
    await this.#store.insertToken({
      id,
      principalId: subject,
      principalKind: "service_account",
      principalName: account.name,
      createdAt: now,
      expiresAt,
      createdBy: options.createdBy,
    });
    this.#logger.info({ tokenId: id, serviceAccount: account.name, expiresAt: expiresAt.toISOString(), createdBy: options.createdBy }, "token minted");
    return { token, id, expiresAt, principal: principalFor(account, id, expiresAt) };
  }

  /**
   * Mint a token for a person (OIDC/SAML login) or a workload (token exchange). Its groups are
   * carried in the token (they came from the identity provider); it expires at
   * min(now + ttl, notAfter), so it never outlives the credential it was exchanged for.
   */
  async mintFor(
    identity: IdentityForToken,
    options: { readonly ttlMs: number; readonly notAfter?: Date; readonly createdBy: string },
  ): Promise<MintedToken> {
    if (!/^(user|wl):/.test(identity.id)) throw new GatewayError("GW_INTERNAL", "identity ids start with user: or wl:");
    const ttlMs = Math.min(options.ttlMs, this.#maxTtlMs);
    const now = this.#clock();
    const iat = Math.floor(now.getTime() / 1000);
    let exp = iat + Math.ceil(ttlMs / 1000);
    if (options.notAfter !== undefined) exp = Math.min(exp, Math.floor(options.notAfter.getTime() / 1000));
    if (exp - iat < MIN_TTL_MS / 1000) throw new GatewayError("GW_AUTH_EXPIRED", "the presented credential expires too soon to issue a token");
    if (this.#blocked.has(identity.id)) throw new GatewayError("GW_AUTH_REVOKED", "this principal is blocked");
    const id = randomUUID();
    const token = await new SignJWT({
      airlock_kind: identity.kind,
      name: identity.name,
      groups: [...identity.groups],
      ...(identity.email === undefined ? {} : { email: identity.email }),
    })
      .setProtectedHeader({ alg: "EdDSA", typ: TOKEN_TYPE, kid: this.#kid })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(identity.id)
      .setJti(id)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.#privateKey);
    if (token.length > MAX_TOKEN_LENGTH) throw new GatewayError("GW_LIMIT", "too many groups to fit in a token");
    const expiresAt = new Date(exp * 1000);
    await this.#store.insertToken({
      id,
      principalId: identity.id,
      principalKind: identity.kind,
      principalName: identity.name,
      createdAt: now,
      expiresAt,
      createdBy: options.createdBy,
    });
    this.#logger.info({ tokenId: id, principal: identity.id, expiresAt: expiresAt.toISOString(), createdBy: options.createdBy }, "token minted");
    const principal: Principal = { kind: identity.kind, id: identity.id, name: identity.name, groups: [...identity.groups], tokenId: id, expiresAt };
    return { token, id, expiresAt, principal };
  }

  /**
   * Replace the groups of a person's or workload's token (its signed claims stay as minted):
   * used when the identity provider reports changed groups. Without `groups`, forget the override.
   */
  setGroups(tokenId: string, groups: readonly string[] | undefined, until: Date): void {
    const now = this.#clock().getTime();
    for (const [id, o] of this.#groupOverrides) if (o.until <= now) this.#groupOverrides.delete(id);
    if (groups === undefined) this.#groupOverrides.delete(tokenId);
    else this.#groupOverrides.set(tokenId, { groups: [...groups], until: until.getTime() });
  }

  /** True while a principal id is blocked (see blockPrincipal). */
  isBlocked(principalId: string): boolean {
    return this.#blocked.has(principalId);
  }

  /**
   * Block a principal id: every token and credential of it is refused from now on, on every
   * gateway sharing the store, and onRevoke listeners fire with the block's id (use
   * blockedPrincipalOf to map it back) so live sessions end. `until` lifts the block.
   */
  async blockPrincipal(
    principal: { readonly id: string; readonly kind: Principal["kind"]; readonly name: string },
    options: { readonly by: string; readonly until?: Date },
  ): Promise<{ readonly id: string; readonly alreadyBlocked: boolean }> {
    const alreadyBlocked = this.#blocked.has(principal.id);
    const id = `${BLOCK_ID_PREFIX}${randomUUID()}:${principal.id}`;
    const now = this.#clock();
    await this.#store.insertToken({
      id,
      principalId: principal.id,
      principalKind: principal.kind,
      principalName: principal.name,
      createdAt: now,
      // Far future unless given: a block stays until it is explicitly time-boxed.
      expiresAt: options.until ?? new Date(Date.UTC(9999, 0, 1)),
      createdBy: options.by,
    });
    await this.revoke(id, options.by);
    return { id, alreadyBlocked };
  }

  /** Verify a presented token and return its principal. Never includes the token in errors. */
  /**
   * Tokens whose signature verified, by their exact text (insertion-ordered, oldest evicted).
   * Agents present the same token on every connection; verifying its EdDSA signature again
   * each time (WebCrypto, on the libuv thread pool) cost milliseconds of latency per login.
   */
  readonly #verified = new Map<string, { readonly payload: JWTPayload; readonly kid: string | undefined }>();

  #remember(token: string, payload: JWTPayload, kid: string | undefined): void {
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = this.#verified.keys().next();
      if (oldest.done !== true) this.#verified.delete(oldest.value);
    }
    this.#verified.set(token, { payload, kid });
  }

  /** Full JWS and claims verification with jose; remembered on success. */
  async #verifySignature(token: string, now: Date): Promise<{ readonly payload: JWTPayload; readonly kid: string | undefined }> {
    try {
      const result = await jwtVerify(token, this.#publicKey, {
        // The allow-list is what defeats `alg: none` and HS256-with-the-public-key confusion.
        algorithms: ["EdDSA"],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        typ: TOKEN_TYPE,
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: now,
        requiredClaims: ["jti", "sub", "iat", "exp"],
      });
      this.#remember(token, result.payload, result.protectedHeader.kid);
      return { payload: result.payload, kid: result.protectedHeader.kid };
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired && typeof e.payload.exp === "number") {
        throw new GatewayError("GW_AUTH_EXPIRED", `token expired at ${new Date(e.payload.exp * 1000).toISOString()}`);
      }
      throw invalid(e);
    }
  }

  async verify(token: string): Promise<Principal> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid();
    const now = this.#clock();
    const cached = this.#verified.get(token);
    const { payload, kid } = cached ?? (await this.#verifySignature(token, now));
    if (cached !== undefined) {
      // The signature, issuer, audience and type of this exact string were verified before;
      // the time-based claims are checked again now (revocation and the account below, too).
      const nowS = now.getTime() / 1000;
      if (typeof payload.exp === "number" && payload.exp + CLOCK_TOLERANCE_S <= nowS) {
        this.#verified.delete(token);
        throw new GatewayError("GW_AUTH_EXPIRED", `token expired at ${new Date(payload.exp * 1000).toISOString()}`);
      }
      if (typeof payload.nbf === "number" && payload.nbf - CLOCK_TOLERANCE_S > nowS) throw invalid();
    }
    const { jti, sub, iat, exp } = payload;
    if (kid !== this.#kid || typeof jti !== "string" || typeof sub !== "string" || iat === undefined || exp === undefined) {
      throw invalid();
    }
    // jose checks iat only with maxTokenAge: a token issued in the future is not valid yet.
    if (iat > Math.floor(now.getTime() / 1000) + CLOCK_TOLERANCE_S) throw invalid();
    if (this.#revoked.has(jti)) throw new GatewayError("GW_AUTH_REVOKED", "token revoked");
    if (this.#blocked.has(sub)) throw new GatewayError("GW_AUTH_REVOKED", "token revoked: its principal is blocked");
    if (!sub.startsWith("sa:")) {
      // A person or workload: who it is was fixed at login/exchange time; its groups too,
      // unless a re-check at the identity provider has found them changed since.
      const claims = identityClaims.safeParse(payload);
      if (!claims.success) throw invalid();
      const c = claims.data;
      const override = this.#groupOverrides.get(jti);
      return {
        kind: c.airlock_kind,
        id: c.sub,
        name: c.name,
        groups: [...(override?.groups ?? c.groups)],
        tokenId: jti,
        expiresAt: new Date(exp * 1000),
      };
    }
    const account = this.#accounts.get(sub.slice(3));
    if (account === undefined) {
      throw new GatewayError("GW_AUTH_REVOKED", "token revoked: its service account no longer exists");
    }
    return principalFor(account, jti, new Date(exp * 1000));
  }

  /**
   * Revoke a token by id. Returns false when the id is unknown. The revocation is effective
   * locally before the store write completes (fail closed), and listeners fire once.
   */
  async revoke(id: string, by: string): Promise<boolean> {
    const had = this.#revoked.has(id);
    this.#revoked.add(id);
    this.#deriveBlocks();
    this.#pendingLocal.add(id);
    let known: boolean;
    try {
      known = await this.#store.revokeToken(id, this.#clock(), by);
    } finally {
      this.#pendingLocal.delete(id);
    }
    if (!known) {
      if (!had) this.#revoked.delete(id);
      this.#deriveBlocks();
      return false;
    }
    this.#logger.info({ tokenId: id, revokedBy: by }, "token revoked");
    if (!had) this.#fire(id);
    return true;
  }

  /** Called for every newly known revocation: local ones and those found by polling. */
  onRevoke(listener: (tokenId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Look for revocations now instead of at the next poll: another gateway sharing the store
   * announced one (store events, issue 18). Joins a poll already running.
   */
  async pollNow(): Promise<void> {
    if (this.#closed) return;
    if (this.#polling !== undefined) {
      await this.#polling;
      return;
    }
    const p = this.#poll(false).catch((e: unknown) => {
      this.#logger.warn({ err: e }, "revocation poll failed; the regular poll retries");
    });
    this.#polling = p;
    try {
      await p;
    } finally {
      if (this.#polling === p) this.#polling = undefined;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#polling;
    this.#listeners.clear();
  }

  #fire(id: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(id);
      } catch (e) {
        this.#logger.error({ err: e, tokenId: id }, "revocation listener failed");
      }
    }
  }

  #deriveBlocks(): void {
    const blocked = new Set<string>();
    for (const id of this.#revoked) {
      const p = blockedPrincipalOf(id);
      if (p !== undefined) blocked.add(p);
    }
    this.#blocked = blocked;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#polling = this.#poll(false)
        .catch((e: unknown) => {
          // Keep polling: the store may come back. Log once per failure streak.
          if (!this.#pollFailing) this.#logger.warn({ err: e }, "revocation poll failed; retrying");
          this.#pollFailing = true;
        })
        .finally(() => {
          this.#polling = undefined;
          this.#schedule();
        });
    }, this.#pollMs);
    // The poller alone must not keep the process alive.
    this.#timer.unref();
  }

  async #poll(initial: boolean): Promise<void> {
    const nowMs = Date.now();
    const lastSeen = this.#lastSeenRevokedAt;
    const since =
      initial || lastSeen === undefined || nowMs - this.#lastFullSyncAt >= FULL_RESYNC_MS ? undefined : new Date(lastSeen - POLL_OVERLAP_MS);
    const full = since === undefined;
    const rows = await this.#store.listRevokedTokens(since);
    if (this.#closed && !initial) return;
    const fresh: string[] = [];
    for (const row of rows) {
      if (!this.#revoked.has(row.id)) fresh.push(row.id);
      const t = row.revokedAt.getTime();
      if (this.#lastSeenRevokedAt === undefined || t > this.#lastSeenRevokedAt) this.#lastSeenRevokedAt = t;
    }
    if (full) {
      // Rebuild: drops revocations of tokens that have expired meanwhile (the store omits them).
      const next = new Set(rows.map((r) => r.id));
      for (const id of this.#pendingLocal) next.add(id);
      this.#revoked = next;
      this.#lastFullSyncAt = nowMs;
      this.#lastSeenRevokedAt ??= nowMs;
    } else {
      for (const id of fresh) this.#revoked.add(id);
    }
    this.#deriveBlocks();
    this.#pollFailing = false;
    if (!initial) for (const id of fresh) this.#fire(id);
  }
}

function principalFor(account: AccountView, tokenId: string, expiresAt: Date): Principal {
  return {
    kind: "service_account",
    id: `sa:${account.name}`,
    name: account.name,
    groups: [...account.groups],
    tokenId,
    expiresAt,
  };
}

function invalid(cause?: unknown): GatewayError {
  return new GatewayError("GW_AUTH_INVALID", "invalid token", cause === undefined ? {} : { cause });
}

/**
 * Load `<keyDir>/token-signing.pem` (PKCS8), or create it on first start. Creation is atomic
 * and exclusive, so two gateways starting together on a shared keyDir end up with one key.
 */
async function loadOrCreateSigningKey(
  keyDir: string,
  logger: Logger,
): Promise<{ privateKey: KeyObject; publicKey: KeyObject; kid: string }> {
  const path = join(keyDir, SIGNING_KEY_FILE);
  await ensurePrivateDir(keyDir);
  let pem: string | undefined = await readFile(path, "utf8").catch((e: unknown) => {
    if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") return undefined;
    throw new GatewayError("GW_CONFIG", `cannot read the token signing key ${path}`, { cause: e });
  });
  if (pem === undefined) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const created = await createFileAtomic(path, privateKey.export({ type: "pkcs8", format: "pem" }).toString());
    pem = await readFile(path, "utf8");
    if (created) logger.info({ path }, "generated a new token signing key");
  } else {
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) logger.warn({ path, mode: mode.toString(8) }, "token signing key is readable by other users; chmod 600 it");
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: "pem" });
  } catch (e) {
    throw new GatewayError("GW_CONFIG", `${path} is not a PKCS8 PEM private key`, { cause: e });
  }
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new GatewayError("GW_CONFIG", `${path} must hold an Ed25519 key`);
  }
  const publicKey = createPublicKey(privateKey);
  const jwk: JWK = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, "sha256");
  return { privateKey, publicKey, kid };
}
