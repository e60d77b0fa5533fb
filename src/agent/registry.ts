/**
 * The gateway's registry of connected agents (issue 19), by agent group. Several agents of one
 * group share the load (a new stream goes to the agent with the fewest open streams) and take
 * over from each other: when one drops, the next stream goes to another.
 */
import { randomUUID } from "node:crypto";
import type { Tunnel } from "./tunnel.js";

export interface AgentView {
  readonly id: string;
  readonly group: string;
  /** The principal the agent authenticated as. */
  readonly principal: string;
  readonly name: string;
  readonly version: string;
  readonly address: string;
  readonly connectedAt: string;
  readonly lastSeen: string;
  readonly streams: number;
  readonly streamsOpened: number;
}

interface Entry {
  readonly id: string;
  readonly group: string;
  readonly principal: string;
  readonly name: string;
  readonly version: string;
  readonly address: string;
  readonly connectedAt: Date;
  readonly tunnel: Tunnel;
}

export class AgentRegistry {
  readonly #byId = new Map<string, Entry>();
  #turn = 0;

  add(info: Omit<Entry, "id" | "connectedAt">): string {
    const id = randomUUID();
    this.#byId.set(id, { ...info, id, connectedAt: new Date() });
    return id;
  }

  remove(id: string): void {
    this.#byId.delete(id);
  }

  /** A live tunnel of `group`, least loaded first (ties taken in turn), or undefined. */
  pick(group: string, exclude: ReadonlySet<Tunnel> = new Set()): Tunnel | undefined {
    const live = [...this.#byId.values()].filter((e) => e.group === group && !e.tunnel.closed && !exclude.has(e.tunnel));
    if (live.length === 0) return undefined;
    const least = Math.min(...live.map((e) => e.tunnel.streamCount));
    const candidates = live.filter((e) => e.tunnel.streamCount === least);
    this.#turn = (this.#turn + 1) % 1_000_000;
    return candidates[this.#turn % candidates.length]?.tunnel;
  }

  list(): AgentView[] {
    return [...this.#byId.values()].map((e) => ({
      id: e.id,
      group: e.group,
      principal: e.principal,
      name: e.name,
      version: e.version,
      address: e.address,
      connectedAt: e.connectedAt.toISOString(),
      lastSeen: e.tunnel.lastSeen.toISOString(),
      streams: e.tunnel.streamCount,
      streamsOpened: e.tunnel.opened,
    }));
  }

  closeAll(why: string): void {
    for (const e of this.#byId.values()) e.tunnel.close(why);
    this.#byId.clear();
  }
}
