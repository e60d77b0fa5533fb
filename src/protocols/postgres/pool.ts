/**
 * Idle target sessions kept for reuse (session pooling, as PgBouncer's session mode).
 *
 * Logging in to PostgreSQL costs a TCP connect, a backend fork and — with SCRAM — thousands of
 * PBKDF2 rounds on both sides: several milliseconds per client session. Agents often connect
 * once per task, so a session that ended cleanly hands its target connection back here, and the
 * next client session for the same connection and start-up parameters gets it instead of a new
 * login.
 *
 * Invariants:
 * - A connection enters the pool only after `DISCARD ALL` (PostgreSQL docs, "DISCARD": closes
 *   cursors, resets session authorization and every setting to its start-up value, deallocates
 *   prepared statements, UNLISTEN *, releases advisory locks, drops temporary tables) answered
 *   CommandComplete and ReadyForQuery 'I'. Anything else (an error, a timeout, stray bytes)
 *   destroys it. So no state of one client session is visible to the next, exactly like a
 *   fresh login; only the backend process (its pid) is shared.
 * - The key is the connection name plus the exact start-up parameters the gateway sends (which
 *   include policy limits such as default_transaction_read_only): sessions with different settings never
 *   share a target session.
 * - An idle connection that receives anything, closes or errors is dropped; idle connections
 *   expire after `idleTimeoutMs`; at most `maxIdle` are kept per key.
 */
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { sideQuery, type UpstreamSession } from "./upstream.js";
import { BackendType as B, encodeTerminate } from "./wire/index.js";
import { decodeParameterStatus } from "./wire/index.js";

export interface PoolOptions {
  readonly maxIdle: number;
  readonly idleTimeoutMs: number;
  /** How long the reset (DISCARD ALL) may take before the connection is dropped instead. */
  readonly resetTimeoutMs: number;
  readonly logger: Logger;
}

interface Idle {
  readonly session: UpstreamSession;
  readonly timer: NodeJS.Timeout;
  readonly drop: () => void;
}

export class UpstreamPool {
  readonly #o: PoolOptions;
  readonly #idle = new Map<string, Idle[]>();
  #closed = false;

  constructor(options: PoolOptions) {
    this.#o = options;
  }

  static key(connection: string, params: ReadonlyMap<string, string>): string {
    return JSON.stringify([connection, [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
  }

  /** Number of idle connections (all keys), for metrics and tests. */
  get size(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /** An idle target session for `key`, removed from the pool; undefined when there is none. */
  acquire(key: string): UpstreamSession | undefined {
    const list = this.#idle.get(key);
    while (list !== undefined && list.length > 0) {
      const idle = list.pop();
      if (idle === undefined) break;
      this.#detach(idle);
      if (list.length === 0) this.#idle.delete(key);
      const s = idle.session.socket;
      if (!s.destroyed && s.readable && s.writable) return idle.session;
    }
    return undefined;
  }

  /**
   * Reset a target session that a client session ended with cleanly and keep it for reuse.
   * Never rejects; a connection that cannot be reset is closed.
   */
  async release(key: string, session: UpstreamSession): Promise<void> {
    if (!this.#hasRoom(key)) {
      close(session.socket);
      return;
    }
    const reset = await resetSession(session, this.#o.resetTimeoutMs);
    if (reset === undefined) {
      close(session.socket);
      return;
    }
    // Checked again: the pool may have closed or filled while the reset ran.
    if (!this.#hasRoom(key)) {
      close(reset.socket);
      return;
    }
    const socket = reset.socket;
    const drop = (): void => {
      const list = this.#idle.get(key);
      const i = list?.indexOf(entry) ?? -1;
      if (list !== undefined && i >= 0) {
        list.splice(i, 1);
        if (list.length === 0) this.#idle.delete(key);
      }
      this.#detach(entry);
      close(socket);
    };
    const timer = setTimeout(drop, this.#o.idleTimeoutMs);
    timer.unref();
    const entry: Idle = { session: reset, timer, drop };
    // While idle nothing may arrive: a FATAL (idle_session_timeout, admin shutdown) or anything
    // else means the connection is no longer a clean idle session.
    socket.on("data", drop);
    socket.on("error", drop);
    socket.on("close", drop);
    socket.resume();
    const list = this.#idle.get(key) ?? [];
    list.push(entry);
    this.#idle.set(key, list);
  }

  /** Close every idle connection; later releases close theirs. */
  close(): void {
    this.#closed = true;
    for (const list of [...this.#idle.values()]) for (const idle of [...list]) idle.drop();
    this.#idle.clear();
  }

  #hasRoom(key: string): boolean {
    return !this.#closed && (this.#idle.get(key)?.length ?? 0) < this.#o.maxIdle;
  }

  #detach(idle: Idle): void {
    clearTimeout(idle.timer);
    const s = idle.session.socket;
    s.off("data", idle.drop);
    s.off("error", idle.drop);
    s.off("close", idle.drop);
    s.pause();
  }
}

function close(socket: Duplex): void {
  if (socket.destroyed) return;
  socket.on("error", () => undefined);
  socket.end(encodeTerminate());
  setTimeout(() => socket.destroy(), 2000).unref();
}

/**
 * Send DISCARD ALL and read until ReadyForQuery. Resolves to the session with its parameters
 * updated from any ParameterStatus the reset reported (e.g. application_name back to its
 * start-up value), or undefined when the reset failed.
 */
async function resetSession(session: UpstreamSession, timeoutMs: number): Promise<UpstreamSession | undefined> {
  const parameters = new Map(session.parameters);
  // Set from the callback: an object, so the checks below read what the frames said.
  const seen = { completed: false, unexpected: false };
  try {
    const ready = await sideQuery(session, "DISCARD ALL", timeoutMs, (f) => {
      if (f.type === B.CommandComplete) seen.completed = true;
      else if (f.type === B.ParameterStatus) {
        const p = decodeParameterStatus(f.body);
        parameters.set(p.name, p.value);
      } else if (f.type !== B.NoticeResponse) seen.unexpected = true; // an ErrorResponse, or anything else
    });
    const idle = ready.body.length === 1 && ready.body[0] === 0x49; /* 'I' */
    if (!seen.completed || seen.unexpected || !idle || session.reader.buffered !== 0) return undefined;
    return { ...session, parameters, txStatus: "I", notices: [] };
  } catch {
    return undefined;
  }
}
