import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ConnectionType } from "./connection.js";

/**
 * A protocol engine translates one protocol's wire traffic into typed events and the
 * pipeline's decisions back into wire bytes. It never decides anything itself.
 * The generic listener code knows nothing of wire formats: it hands each accepted socket
 * to `handle`.
 */
export interface ProtocolEngine {
  readonly protocol: ConnectionType;
  /** Serve one accepted client socket until the session ends. Never rejects. */
  handle(socket: Socket): Promise<void>;
  /** Stop accepting work and end live sessions (drain), then resolve. */
  close(): Promise<void>;
}

export interface DialTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * How an engine reaches its target: directly, or (later) through a network-resident agent.
 * Resolves to a connected byte stream, or rejects with GW_UPSTREAM_UNAVAILABLE.
 */
export interface Dialer {
  dial(target: DialTarget, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<Duplex>;
}
