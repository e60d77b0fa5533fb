/**
 * The connections an engine is serving, and the one drain every engine shares: once closing,
 * new sockets are refused; live ones get a grace period to end (sessions are terminated
 * through the registry by the runtime first), then whatever is left is cut.
 */
import type { Duplex } from "node:stream";

/** How long close() waits for sessions to end by themselves before cutting their sockets. */
const DRAIN_GRACE_MS = 5000;

export class LiveConnections {
  readonly #live = new Set<Promise<void>>();
  readonly #sockets = new Set<Duplex>();
  #closing = false;

  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Serve one accepted socket with `serve` (which must not reject; a rejection is passed to
   * `onError` and the socket destroyed). Refused at once while closing.
   */
  serve(socket: Duplex, serve: () => Promise<void>, onError: (e: unknown) => void): Promise<void> {
    if (this.#closing) {
      socket.destroy();
      return Promise.resolve();
    }
    const untrack = this.track(socket);
    const p = serve()
      .catch((e: unknown) => {
        onError(e);
        socket.destroy();
      })
      .finally(untrack);
    this.#live.add(p);
    void p.finally(() => this.#live.delete(p));
    return p;
  }

  /** A socket to cut when the drain's grace runs out (an upgraded TLS socket, the target's leg). Returns its untrack. */
  track(socket: Duplex): () => void {
    this.#sockets.add(socket);
    return () => {
      this.#sockets.delete(socket);
    };
  }

  /** Stop accepting, wait for live connections (cutting them after the grace period). */
  async drain(): Promise<void> {
    this.#closing = true;
    const deadline = setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, DRAIN_GRACE_MS);
    deadline.unref();
    await Promise.allSettled([...this.#live]);
    clearTimeout(deadline);
  }
}

/** Caps on connections that have not authenticated yet (config `limits`). */
export interface PreAuthLimits {
  /** Unauthenticated connections in total, across every source address. */
  readonly maxTotal: number;
  /** Unauthenticated connections from one source address. */
  readonly maxPerAddress: number;
  /** One deadline from accept to authenticated; nothing the client sends restarts it. */
  readonly timeoutMs: number;
}

/** A connection's place among the unauthenticated ones: its deadline, and the slot it holds. */
export interface PreAuthSlot {
  /** Milliseconds left until the deadline (never below 1, so a read still fails by timing out). */
  remainingMs(): number;
  /** Authenticated (or gone): free the slot and stop the deadline. Idempotent. */
  release(): void;
}

/**
 * Admission of unauthenticated connections, shared by every engine. Anyone who can reach the
 * listener can open connections without a credential; without a cap, held connections exhaust
 * the gateway's descriptors and lock everyone out. Each connection gets one deadline from
 * accept (TLS handshake, SSLRequest/GSSENCRequest answers, the password exchange and the token
 * check all count against it), and the number of connections in that state is capped in total
 * and per source address, so one flooding address cannot starve the others.
 */
export class PreAuthGate {
  readonly #limits: PreAuthLimits;
  readonly #byAddress = new Map<string, number>();
  #total = 0;

  constructor(limits: PreAuthLimits) {
    this.#limits = limits;
  }

  /** Unauthenticated connections held now (for tests and metrics). */
  get size(): number {
    return this.#total;
  }

  /**
   * A slot for a new connection from `address`, or undefined when a cap is reached (refuse the
   * connection at once). `onExpire` runs when the deadline passes before `release()`: it must
   * close the connection.
   */
  acquire(address: string | undefined, onExpire: () => void): PreAuthSlot | undefined {
    const key = sourceKey(address);
    const count = this.#byAddress.get(key) ?? 0;
    if (this.#total >= this.#limits.maxTotal || count >= this.#limits.maxPerAddress) return undefined;
    this.#total += 1;
    this.#byAddress.set(key, count + 1);
    const deadline = Date.now() + this.#limits.timeoutMs;
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      this.#total -= 1;
      const n = (this.#byAddress.get(key) ?? 1) - 1;
      if (n <= 0) this.#byAddress.delete(key);
      else this.#byAddress.set(key, n);
    };
    const timer = setTimeout(() => {
      release();
      onExpire();
    }, this.#limits.timeoutMs);
    timer.unref();
    return { remainingMs: () => Math.max(1, deadline - Date.now()), release };
  }
}

/** The per-address key: an IPv4-mapped IPv6 address counts as its IPv4 address. */
function sourceKey(address: string | undefined): string {
  if (address === undefined) return "?";
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
