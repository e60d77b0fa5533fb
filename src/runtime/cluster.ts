/**
 * Many gateways on one store (issue 18), the runtime side: this instance's registration and
 * heartbeat, closing the sessions of instances that died (`kill -9`, a lost machine) as `lost`,
 * and the store events (src/store/events.ts) that carry approvals, revocations and operator kills
 * to the gateway that holds the session. With an embedded store there is one gateway: the
 * registration and the lost-session check at start-up still run (a killed gateway's sessions are
 * closed when it restarts); events go nowhere.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { AuditLog } from "../audit/types.js";
import type { LostSession } from "../store/instances.js";
import { LocalStoreEvents, PgStoreEvents, type StoreEvent, type StoreEvents } from "../store/events.js";
import type { Store } from "../store/types.js";

export interface ClusterOptions {
  readonly store: Store;
  /** PostgreSQL URL of a shared store (resolved; never logged); absent for an embedded store. */
  readonly storeUrl?: string;
  readonly audit: Pick<AuditLog, "append" | "flush">;
  readonly logger: Logger;
  readonly heartbeatMs: number;
  readonly staleMs: number;
}

/** What store events act on, bound once the services exist. */
export interface ClusterTargets {
  /** A request decided elsewhere: release the client waiting here, update grants. */
  readonly approvalDecided: (approvalId: string) => Promise<void>;
  /** Revocations happened elsewhere: re-read them now. */
  readonly revocations: () => Promise<void>;
  /** End a session this gateway holds; returns how many ended. */
  readonly kill: (sessionId: string, by: string) => number;
  /** A PostgreSQL cancel (by key digest) for a session this gateway may hold; true when it held it. */
  readonly cancel: (keyDigest: string) => Promise<boolean>;
}

/** How long a gateway waits for the holder of a forwarded cancel to pass it on. */
export const CANCEL_FORWARD_WAIT_MS = 2_000;

export class Cluster {
  readonly instanceId: string;
  readonly events: StoreEvents;
  readonly #o: ClusterOptions;
  #timer: NodeJS.Timeout | undefined;
  #lastHeartbeatOk = 0;
  #ticking: Promise<void> | undefined;
  #closed = false;
  /** Cancels forwarded from here, waiting for the holder's "cancelled". */
  readonly #cancelWaits = new Map<string, () => void>();

  private constructor(options: ClusterOptions, instanceId: string, events: StoreEvents) {
    this.#o = options;
    this.instanceId = instanceId;
    this.events = events;
  }

  /**
   * Register this instance and close what its previous run left open (after the audit log has
   * shipped that run's records, so statement counts are complete). Before listeners open.
   */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const { store, logger } = options;
    const instanceId = store.instanceId ?? "default";
    const events: StoreEvents =
      options.storeUrl === undefined ? new LocalStoreEvents() : new PgStoreEvents({ url: options.storeUrl, instanceId, logger });
    const cluster = new Cluster(options, instanceId, events);
    const instances = store.instances;
    if (instances !== undefined) {
      await instances.register({ host: hostname(), pid: process.pid, now: new Date() });
      cluster.#lastHeartbeatOk = Date.now();
      // Bounded: a store that stops answering must not hold the start-up (counts are redone at the next restart).
      const shipped = await Promise.race([
        options.audit.flush().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref()),
      ]);
      if (!shipped) logger.warn("the audit log could not ship before the lost-session check; statement counts may be short");
      await cluster.#report(await instances.closeOwnLost(new Date()));
      cluster.#timer = setInterval(() => cluster.#tick(), options.heartbeatMs);
      cluster.#timer.unref();
    }
    // Not awaited for ever: a store without LISTEN still serves (polls cover it), said in the log.
    await Promise.race([events.ready(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    return cluster;
  }

  /** Whether the store answered a heartbeat recently (readiness). Embedded stores: always. */
  storeHealthy(): boolean {
    if (this.#o.store.instances === undefined) return true;
    return Date.now() - this.#lastHeartbeatOk < Math.max(3 * this.#o.heartbeatMs, 5_000);
  }

  bind(targets: ClusterTargets): void {
    this.events.subscribe((e: StoreEvent) => {
      switch (e.t) {
        case "approval":
          void targets.approvalDecided(e.id).catch((err: unknown) => this.#o.logger.warn({ err, approvalId: e.id }, "could not act on a decision made on another gateway"));
          return;
        case "revoke":
          void targets.revocations();
          return;
        case "kill": {
          const n = targets.kill(e.sessionId, e.by);
          if (n > 0) this.#o.logger.info({ sessionId: e.sessionId, by: e.by }, "ended a session on request of another gateway");
          return;
        }
        case "cancel":
          void targets.cancel(e.key).then(
            (held) => {
              if (!held) return;
              this.#o.logger.info({ from: e.from }, "passed on a cancel request that reached another gateway");
              this.announce({ t: "cancelled", from: this.instanceId, id: e.id });
            },
            (err: unknown) => this.#o.logger.warn({ err }, "could not act on a cancel request from another gateway"),
          );
          return;
        case "cancelled":
          this.#cancelWaits.get(e.id)?.();
          return;
      }
    });
  }

  /** Announce to the other gateways; failures are logged (the regular polls still cover it). */
  announce(event: StoreEvent): void {
    void this.events.publish(event).catch((err: unknown) => this.#o.logger.warn({ err: { message: err instanceof Error ? err.message : String(err) }, event: event.t }, "could not announce to the other gateways"));
  }

  /**
   * Ask the gateway holding `sessionId` to end it. Returns its instance id, or undefined when the
   * store knows no open session of another live instance by that id.
   */
  async killElsewhere(sessionId: string, by: string): Promise<string | undefined> {
    const row = await this.#o.store.getSession(sessionId);
    if (row === undefined || row.endedAt !== undefined || row.instanceId === undefined || row.instanceId === this.instanceId) return undefined;
    await this.events.publish({ t: "kill", from: this.instanceId, sessionId, by });
    return row.instanceId;
  }

  /**
   * A PostgreSQL cancel whose key this gateway does not hold: the gateway holding it passes it on.
   * Resolves when it says so, or after CANCEL_FORWARD_WAIT_MS (nobody held it, or the store is slow).
   */
  async cancelElsewhere(keyDigest: string): Promise<void> {
    if (this.#closed || this.events instanceof LocalStoreEvents) return;
    const id = randomUUID();
    const answered = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CANCEL_FORWARD_WAIT_MS);
      timer.unref();
      this.#cancelWaits.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    try {
      await this.events.publish({ t: "cancel", from: this.instanceId, id, key: keyDigest });
      this.#o.logger.info("forwarded a cancel request to the gateway holding the session");
      await answered;
    } catch (err) {
      this.#o.logger.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, "could not forward a cancel request to the other gateways");
    } finally {
      this.#cancelWaits.delete(id);
    }
  }

  #tick(): void {
    if (this.#ticking !== undefined || this.#closed) return;
    this.#ticking = (async () => {
      const instances = this.#o.store.instances;
      if (instances === undefined) return;
      try {
        await instances.heartbeat(new Date());
        this.#lastHeartbeatOk = Date.now();
      } catch (e) {
        this.#o.logger.warn({ err: e }, "store heartbeat failed");
        return;
      }
      try {
        await this.#report(await instances.reapStale(new Date(), this.#o.staleMs));
      } catch (e) {
        this.#o.logger.warn({ err: e }, "lost-session check failed");
      }
    })().finally(() => {
      this.#ticking = undefined;
    });
  }

  async #report(lost: readonly LostSession[]): Promise<void> {
    for (const s of lost) {
      this.#o.logger.warn({ sessionId: s.id, instance: s.instanceId, statements: s.statements }, "closed a session of a lost gateway instance");
      await this.#o.audit
        .append({ type: "session.end", sessionId: s.id, details: { reason: "lost", instance: s.instanceId, statements: s.statements, closedBy: this.instanceId } })
        .catch((e: unknown) => this.#o.logger.error({ err: e, sessionId: s.id }, "could not audit the end of a lost session"));
    }
  }

  /** After this gateway's sessions have ended: say so in the store (nobody reaps a stopped instance). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#ticking;
    await this.#o.store.instances?.stopped(new Date()).catch((e: unknown) => this.#o.logger.warn({ err: e }, "could not mark this gateway instance stopped"));
    await this.events.close();
  }
}
