import type { SessionEndReason, SessionInfo } from "../core/session.js";

/** A live session as the registry sees it: its facts and how to end it. */
export interface LiveSession {
  readonly info: SessionInfo;
  /** Aborted when the session must end (revocation, expiry, operator, shutdown). */
  readonly signal: AbortSignal;
}

export interface SessionFilter {
  readonly sessionId?: string;
  readonly tokenId?: string;
  readonly principalId?: string;
}

/** Read-and-terminate view of live sessions, used by the API and by revocation. */
export interface LiveSessions {
  list(): readonly SessionInfo[];
  /** End every live session matching the filter (all given fields must match). Returns how many. */
  terminate(filter: SessionFilter, reason: SessionEndReason, detail: string): number;
}

export interface TerminationReason {
  readonly reason: SessionEndReason;
  readonly detail: string;
}

/**
 * The registry of live data-path sessions. Engines register through the pipeline; ending a
 * session aborts its signal with a TerminationReason, and the engine closes its sockets.
 */
export class SessionRegistry implements LiveSessions {
  readonly #sessions = new Map<string, { info: SessionInfo; controller: AbortController }>();

  register(info: SessionInfo): LiveSession & { unregister(): void } {
    const controller = new AbortController();
    this.#sessions.set(info.id, { info, controller });
    return {
      info,
      signal: controller.signal,
      unregister: () => {
        this.#sessions.delete(info.id);
      },
    };
  }

  list(): readonly SessionInfo[] {
    return [...this.#sessions.values()].map((s) => s.info);
  }

  get size(): number {
    return this.#sessions.size;
  }

  terminate(filter: SessionFilter, reason: SessionEndReason, detail: string): number {
    let n = 0;
    for (const { info, controller } of this.#sessions.values()) {
      if (filter.sessionId !== undefined && info.id !== filter.sessionId) continue;
      if (filter.tokenId !== undefined && info.principal.tokenId !== filter.tokenId) continue;
      if (filter.principalId !== undefined && info.principal.id !== filter.principalId) continue;
      if (controller.signal.aborted) continue;
      const why: TerminationReason = { reason, detail };
      controller.abort(why);
      n++;
    }
    return n;
  }

  /** End every session (shutdown). */
  terminateAll(reason: SessionEndReason, detail: string): number {
    return this.terminate({}, reason, detail);
  }
}
