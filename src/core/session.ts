import type { ConnectionType } from "./connection.js";
import type { Principal } from "./principal.js";

export type SessionId = string;

/** A client session on the data path: one client connection to one configured connection. */
export interface SessionInfo {
  readonly id: SessionId;
  readonly protocol: ConnectionType;
  readonly connection: string;
  readonly principal: Principal;
  /** `ip:port` of the client as seen by the gateway. */
  readonly clientAddress: string;
  readonly startedAt: Date;
  /** Protocol-specific details (e.g. application_name, TLS) safe to display. */
  readonly attributes: Readonly<Record<string, string>>;
}

export type SessionEndReason =
  | "client_closed"
  | "upstream_closed"
  | "revoked"
  | "expired"
  | "terminated"
  | "error"
  | "shutdown";
