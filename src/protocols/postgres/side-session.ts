/**
 * A gateway-owned connection to a PostgreSQL target, beside the clients' sessions: the catalog
 * (lookups of relations, views and types) and previews (held writes run and rolled back, EXPLAIN
 * estimates) each keep one. Work runs on it one piece at a time; it is opened on first use, and a
 * failure that may have left it out of sync replaces it on the next use.
 */
import type { PostgresConnection } from "../../core/connection.js";
import { GatewayError } from "../../core/errors.js";
import { connectUpstream, type UpstreamDeps, type UpstreamSession } from "./upstream.js";

export class SideSession {
  #session: Promise<UpstreamSession> | undefined;
  /** Work runs one piece at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(
    private readonly conn: PostgresConnection,
    private readonly deps: UpstreamDeps,
    /** `application_name` on the target, so that DBAs can tell these sessions apart. */
    private readonly applicationName: string,
  ) {}

  /**
   * Run `work` on the side connection once the work before it is done. A failure replaces the
   * connection on the next use, unless `refusalKeepsSession` is set and the target only refused
   * the request (GW_POLICY_DENIED: the connection is still in sync).
   */
  run<T>(work: (session: UpstreamSession) => Promise<T>, refusalKeepsSession: boolean): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed) throw new GatewayError("GW_SHUTTING_DOWN", `${this.applicationName} closed`);
      this.#session ??= connectUpstream(this.conn, new Map([["application_name", this.applicationName]]), this.deps);
      let session: UpstreamSession;
      try {
        session = await this.#session;
      } catch (e) {
        this.#session = undefined;
        throw e;
      }
      try {
        return await work(session);
      } catch (e) {
        if (refusalKeepsSession && e instanceof GatewayError && e.code === "GW_POLICY_DENIED") throw e;
        this.#session = undefined;
        session.socket.destroy();
        throw e;
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    this.#session = undefined;
    if (s !== undefined) (await s.catch(() => undefined))?.socket.destroy();
  }
}
