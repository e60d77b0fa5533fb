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
