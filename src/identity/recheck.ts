/**
 * Group re-checks for people signed in through OpenID Connect: removing a person's group at
 * the identity provider must end their live sessions, not wait for their Airlock token to
 * expire.
 *
 * At a browser login the gateway keeps the person's refresh token (RFC 6749 §6) — in this
 * process's memory only: never in the store, a log line, an API answer or the page shown to
 * the person — and every `recheckInterval` asks the issuer again (a refresh grant, then the
 * ID token's or the userinfo endpoint's groups claim; see the `ask` function built by the
 * login route). Then:
 *
 *  - groups unchanged: nothing happens;
 *  - groups changed: the token's groups are replaced on this gateway (TokenService.setGroups),
 *    and each live session of the token the new groups no longer admit ends (the `admits`
 *    callback; the gateway uses stillAdmitted below);
 *  - the issuer refuses the grant (invalid_grant: revoked, the account is gone, a different
 *    subject): every session of the token ends and the token is revoked;
 *  - the issuer cannot be reached: sessions go on until `recheckGrace` has passed since the
 *    last successful check, then they end and the token is revoked (fail closed).
 *
 * Checks stop when the token expires or is revoked (untrack).
 */
import type { Logger } from "pino";
import type { AuditEventInput } from "../audit/types.js";
import { isGatewayError } from "../core/errors.js";
import type { SessionInfo } from "../core/session.js";
import type { LiveSessions } from "../policy/registry.js";

/** What a re-check learned from the issuer. */
export interface RecheckAnswer {
  readonly groups: readonly string[];
  /** A rotated refresh token (RFC 6749 §6: the issuer may issue a new one and retire the old). */
  readonly refreshToken?: string;
}

/**
 * Ask the issuer again with a refresh token. Throws a GatewayError with code GW_AUTH_REVOKED
 * (or another GW_AUTH_* code) when the issuer refuses the grant; anything else counts as "the
 * issuer is unreachable" and is tolerated for the grace period.
 */
export type RecheckAsk = (refreshToken: string) => Promise<RecheckAnswer>;

export interface TrackedLogin {
  readonly tokenId: string;
  readonly principalId: string;
  readonly name: string;
  readonly groups: readonly string[];
  readonly expiresAt: Date;
  /** A secret: held here only. */
  readonly refreshToken: string;
  readonly intervalMs: number;
  readonly graceMs: number;
  readonly ask: RecheckAsk;
}

export interface PersonRechecksOptions {
  readonly liveSessions: LiveSessions;
  /** Whether a connection admits a principal with these groups (the access rule, plus active grants). */
  readonly admits: (session: SessionInfo, groups: readonly string[]) => boolean;
  readonly tokens: {
    setGroups(tokenId: string, groups: readonly string[] | undefined, until: Date): void;
    revoke(tokenId: string, by: string): Promise<boolean>;
  };
  readonly audit?: (input: AuditEventInput) => Promise<unknown>;
  readonly logger: Logger;
  readonly clock?: () => number;
}

interface Entry {
  readonly login: TrackedLogin;
  refreshToken: string;
  groups: readonly string[];
  lastOkAt: number;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  ended: boolean;
}

export const RECHECK_BY = "airlock:idp-recheck";

export class PersonRechecks {
  readonly #o: PersonRechecksOptions;
  readonly #clock: () => number;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(options: PersonRechecksOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
  }

  /** How many logins are being re-checked (tests, metrics). */
  get size(): number {
    return this.#entries.size;
  }

  track(login: TrackedLogin): void {
    if (this.#closed || login.intervalMs <= 0) return;
    this.untrack(login.tokenId);
    const entry: Entry = { login, refreshToken: login.refreshToken, groups: [...login.groups], lastOkAt: this.#clock(), timer: undefined, running: undefined, ended: false };
    this.#entries.set(login.tokenId, entry);
    this.#schedule(entry);
  }

  /** Stop re-checking a token (revoked elsewhere, expired). Forgets its refresh token. */
  untrack(tokenId: string): void {
    const e = this.#entries.get(tokenId);
    if (e === undefined) return;
    e.ended = true;
    if (e.timer !== undefined) clearTimeout(e.timer);
    this.#entries.delete(tokenId);
  }

  /** Run one check of a token now (tests; the timer does the same). */
  async checkNow(tokenId: string): Promise<void> {
    const e = this.#entries.get(tokenId);
    if (e === undefined) return;
    await (e.running ?? this.#check(e));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const running = [...this.#entries.values()].flatMap((e) => (e.running === undefined ? [] : [e.running]));
    for (const id of [...this.#entries.keys()]) this.untrack(id);
    await Promise.all(running);
  }

  #schedule(e: Entry): void {
    if (e.ended || this.#closed) return;
    const untilExpiry = e.login.expiresAt.getTime() - this.#clock();
    if (untilExpiry <= 0) {
      this.untrack(e.login.tokenId);
      return;
    }
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (e.login.expiresAt.getTime() <= this.#clock()) {
        this.untrack(e.login.tokenId);
        return;
      }
      // Never two asks at once: a rotated refresh token used twice looks like theft to the IdP.
      void (e.running ?? this.#check(e)).finally(() => this.#schedule(e));
    }, Math.min(e.login.intervalMs, untilExpiry));
    // Re-checks alone must not keep the process alive.
    e.timer.unref();
  }

  #check(e: Entry): Promise<void> {
    const run = this.#checkOnce(e)
      .catch((err: unknown) => this.#o.logger.error({ err: safeErr(err), principalId: e.login.principalId }, "group re-check failed"))
      .finally(() => {
        e.running = undefined;
      });
    e.running = run;
    return run;
  }

  async #checkOnce(e: Entry): Promise<void> {
    const { login } = e;
    let answer: RecheckAnswer;
    try {
      answer = await login.ask(e.refreshToken);
    } catch (err) {
      if (e.ended) return;
      if (isGatewayError(err) && err.code.startsWith("GW_AUTH_")) {
        await this.#end(e, "the identity provider no longer accepts the sign-in", "idp-refused");
        return;
      }
      const down = this.#clock() - e.lastOkAt;
      if (down >= login.graceMs) {
        await this.#end(e, "the identity provider could not be reached to confirm the sign-in", "idp-unreachable");
        return;
      }
      this.#o.logger.warn({ err: safeErr(err), principalId: login.principalId, unreachableForMs: down, graceMs: login.graceMs }, "identity provider unreachable for a group re-check; sessions continue within the grace period");
      return;
    }
    if (e.ended) return;
    e.lastOkAt = this.#clock();
    if (answer.refreshToken !== undefined && answer.refreshToken !== "") e.refreshToken = answer.refreshToken;
    if (sameSet(answer.groups, e.groups)) return;
    const before = e.groups;
    e.groups = [...answer.groups];
    this.#o.tokens.setGroups(login.tokenId, e.groups, login.expiresAt);
    let ended = 0;
    for (const s of this.#o.liveSessions.list()) {
      if (s.principal.tokenId !== login.tokenId || this.#o.admits(s, e.groups)) continue;
      ended += this.#o.liveSessions.terminate(
        { sessionId: s.id },
        "revoked",
        `${login.name}'s groups changed at the identity provider; this session on connection "${s.connection}" is not admitted under them (sign in again)`,
      );
    }
    this.#o.logger.info({ principalId: login.principalId, tokenId: login.tokenId, before, after: e.groups, sessionsEnded: ended }, "a person's groups changed at the identity provider");
  }

  async #end(e: Entry, why: string, code: string): Promise<void> {
    const { login } = e;
    this.untrack(login.tokenId);
    const ended = this.#o.liveSessions.terminate({ tokenId: login.tokenId }, "revoked", why);
    // Revocation reaches every gateway sharing the store; its listener ends sessions too.
    await this.#o.tokens.revoke(login.tokenId, RECHECK_BY).catch((err: unknown) => this.#o.logger.error({ err: safeErr(err), tokenId: login.tokenId }, "could not revoke a token after a failed re-check"));
    this.#o.logger.info({ principalId: login.principalId, tokenId: login.tokenId, reason: code, sessionsEnded: ended }, "ended a person's sessions: " + why);
    await this.#o
      .audit?.({ type: "token.revoke", principal: { id: RECHECK_BY, kind: "admin", name: RECHECK_BY }, message: why, details: { tokenId: login.tokenId, principalId: login.principalId, reason: code, sessionsEnded: ended } })
      .catch((err: unknown) => this.#o.logger.error({ err: safeErr(err), tokenId: login.tokenId }, "could not audit a re-check revocation"));
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/**
 * An error reduced to what is safe to log: a library's error from a token endpoint may carry
 * the request it failed on (with the refresh token in its body), so only name, code and message.
 */
function safeErr(err: unknown): { name: string; code?: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, ...(typeof code === "string" ? { code } : {}), message: err.message.slice(0, 300) };
  }
  return { name: "unknown", message: "non-error thrown" };
}

/**
 * The access rule for a live session after a person's groups changed: its connection must still
 * admit one of the new groups (or an access grant covers it), and no group that decides which
 * policies apply (a policy's `groups:`) may have come or gone — the session's guardrails were
 * chosen by the groups it started with, so it must start again under the new ones.
 */
export function stillAdmitted(
  session: Pick<SessionInfo, "connection" | "principal">,
  groups: readonly string[],
  rules: { readonly connectionGroups: (connection: string) => readonly string[]; readonly policyGroups: ReadonlySet<string>; readonly hasGrant: (principalId: string, connection: string) => boolean },
): boolean {
  const now = new Set(groups);
  const before = new Set(session.principal.groups);
  for (const g of rules.policyGroups) if (now.has(g) !== before.has(g)) return false;
  return rules.connectionGroups(session.connection).some((g) => now.has(g)) || rules.hasGrant(session.principal.id, session.connection);
}
