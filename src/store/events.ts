/**
 * Store events: prompt fan-out between gateways sharing one PostgreSQL store (issue 18), over
 * PostgreSQL LISTEN/NOTIFY on one channel. The store stays the source of truth: an event only
 * says "look again" (an approval was decided, a token revoked) or asks the holder of a session to
 * end it; a receiver re-reads the store before it acts, so a forged or replayed event can at most
 * cause a read. A lost event (the listening connection dropped) is covered by the regular polls
 * (revocations every 2 s, approval expiry sweeps), and the listener reconnects with backoff.
 *
 * Embedded stores serve one gateway process: there is nobody to tell, and `publish` is a no-op.
 *
 * Payloads are small JSON objects, parsed with a schema and bounded (NOTIFY payloads are < 8000
 * bytes by PostgreSQL's own limit); they carry ids only, never a token or a statement.
 */
import pg from "pg";
import type { Logger } from "pino";
import { z } from "zod";

export const EVENTS_CHANNEL = "airlock_events";

export const storeEventSchema = z.discriminatedUnion("t", [
  /** An approval request was decided, expired, cancelled or revoked: waiting clients and grants re-read it. */
  z.strictObject({ t: z.literal("approval"), from: z.string().max(64), id: z.string().min(1).max(64) }),
  /** A token or principal was revoked: re-read revocations now. */
  z.strictObject({ t: z.literal("revoke"), from: z.string().max(64) }),
  /** An operator ended a session: the gateway holding it ends it. */
  z.strictObject({ t: z.literal("kill"), from: z.string().max(64), sessionId: z.string().min(1).max(128), by: z.string().max(256) }),
  /**
   * A PostgreSQL CancelRequest reached a gateway (or worker) that does not hold the session: the
   * holder cancels. `key` is a digest of the cancel key (engine's cancelKeyDigest), never the key.
   */
  z.strictObject({ t: z.literal("cancel"), from: z.string().max(64), id: z.string().min(1).max(64), key: z.string().regex(/^[0-9a-f]{32}$/) }),
  /** The holder has passed the cancel `id` on (the asker may now close the client's cancel connection). */
  z.strictObject({ t: z.literal("cancelled"), from: z.string().max(64), id: z.string().min(1).max(64) }),
]);
export type StoreEvent = z.infer<typeof storeEventSchema>;

export interface StoreEvents {
  publish(event: StoreEvent): Promise<void>;
  /** Events published by OTHER instances (own events are dropped). */
  subscribe(handler: (event: StoreEvent) => void): void;
  /** Resolves once listening (PostgreSQL), at once otherwise. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** One gateway process, embedded store: nothing to fan out to. */
export class LocalStoreEvents implements StoreEvents {
  publish(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(): void {}
  ready(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const MAX_PAYLOAD = 7_900;

export interface PgStoreEventsOptions {
  /** PostgreSQL URL (a credential: never logged). */
  readonly url: string;
  readonly instanceId: string;
  readonly logger?: Logger;
  /** Reconnect backoff (ms): first and cap. Defaults 200 and 10 000. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export class PgStoreEvents implements StoreEvents {
  readonly #o: PgStoreEventsOptions;
  readonly #handlers: ((e: StoreEvent) => void)[] = [];
  #listener: pg.Client | undefined;
  #publisher: pg.Client | undefined;
  #publisherConnecting: Promise<pg.Client> | undefined;
  #closed = false;
  #retryMs: number;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #firstReady: Promise<void>;
  #resolveReady!: () => void;

  constructor(options: PgStoreEventsOptions) {
    this.#o = options;
    this.#retryMs = options.retryMinMs ?? 200;
    this.#firstReady = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
    void this.#connect();
  }

  ready(): Promise<void> {
    return this.#firstReady;
  }

  subscribe(handler: (event: StoreEvent) => void): void {
    this.#handlers.push(handler);
  }

  async publish(event: StoreEvent): Promise<void> {
    if (this.#closed) return;
    const payload = JSON.stringify(event);
    if (payload.length > MAX_PAYLOAD) throw new Error("store event too large");
    try {
      await (await this.#publisherClient()).query("SELECT pg_notify($1, $2)", [EVENTS_CHANNEL, payload]);
    } catch {
      // One retry on a fresh connection (the publisher's may have dropped while idle).
      this.#dropPublisher();
      await (await this.#publisherClient()).query("SELECT pg_notify($1, $2)", [EVENTS_CHANNEL, payload]);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    const l = this.#listener;
    this.#listener = undefined;
    this.#resolveReady();
    this.#dropPublisher();
    await l?.end().catch(() => undefined);
  }

  #publisherClient(): Promise<pg.Client> {
    if (this.#publisher !== undefined) return Promise.resolve(this.#publisher);
    this.#publisherConnecting ??= (async () => {
      const c = new pg.Client({ connectionString: this.#o.url, connectionTimeoutMillis: 5_000 });
      c.on("error", () => this.#dropPublisher());
      try {
        await c.connect();
      } catch (e) {
        await c.end().catch(() => undefined);
        throw e;
      }
      this.#publisher = c;
      return c;
    })().finally(() => {
      this.#publisherConnecting = undefined;
    });
    return this.#publisherConnecting;
  }

  #dropPublisher(): void {
    const c = this.#publisher;
    this.#publisher = undefined;
    void c?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const c = new pg.Client({ connectionString: this.#o.url, connectionTimeoutMillis: 5_000 });
    c.on("error", (err) => {
      this.#o.logger?.warn({ err: { message: err.message } }, "store events connection lost; reconnecting");
      this.#retry(c);
    });
    c.on("end", () => this.#retry(c));
    c.on("notification", (n) => {
      if (n.channel !== EVENTS_CHANNEL || n.payload === undefined) return;
      this.#deliver(n.payload);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (e) {
      this.#o.logger?.warn({ err: { message: e instanceof Error ? e.message : String(e) } }, "cannot listen for store events; retrying");
      await c.end().catch(() => undefined);
      this.#retry(c);
      return;
    }
    // close() may have run during the awaits above.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (this.#closed) {
      await c.end().catch(() => undefined);
      return;
    }
    this.#listener = c;
    this.#retryMs = this.#o.retryMinMs ?? 200;
    this.#resolveReady();
  }

  #retry(c: pg.Client): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    if (this.#listener !== undefined && this.#listener !== c) return;
    this.#listener = undefined;
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#o.retryMaxMs ?? 10_000);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }

  #deliver(payload: string): void {
    if (payload.length > MAX_PAYLOAD) return;
    let json: unknown;
    try {
      json = JSON.parse(payload);
    } catch {
      return;
    }
    const parsed = storeEventSchema.safeParse(json);
    if (!parsed.success) {
      this.#o.logger?.warn("ignored a malformed store event");
      return;
    }
    if (parsed.data.from === this.#o.instanceId) return;
    for (const h of this.#handlers) {
      try {
        h(parsed.data);
      } catch (e) {
        this.#o.logger?.error({ err: e }, "store event handler failed");
      }
    }
  }
}
