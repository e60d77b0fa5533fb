/**
 * Group commit: callers submit items one at a time; at most one flush runs at a time, and what
 * arrives while it runs goes into the next flush together. Under no load an item is flushed at
 * once (no added latency); under load the number of store round trips stays at one per flush
 * instead of one per item. Each caller's promise settles with its own flush.
 */
export class GroupCommit<T> {
  readonly #flush: (items: readonly T[]) => Promise<void>;
  #queue: { item: T; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #running = false;

  constructor(flush: (items: readonly T[]) => Promise<void>) {
    this.#flush = flush;
  }

  submit(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        try {
          await this.#flush(batch.map((b) => b.item));
          for (const b of batch) b.resolve();
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
