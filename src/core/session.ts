import type { ConnectionType } from "./connection.js";
import type { Principal } from "./principal.js";

export type SessionId = string;

/**
 * How a client speaks to the gateway. It is not the same thing as what the target is: an MCP
 * tool call may run SQL on a PostgreSQL connection, kubectl exec may open a shell. Sessions
 * carry both (`clientProtocol`, `targetType`); evaluators choose by the target, renderers by the
 * client protocol.
 */
export type ClientProtocol = "postgres" | "mysql" | "redis" | "ssh" | "http" | "kubernetes" | "mcp";

/** A client session on the data path: one client connection to one configured connection. */
export interface SessionInfo {
  readonly id: SessionId;
  /** The wire protocol the client speaks (how refusals are rendered). */
  readonly clientProtocol: ClientProtocol;
  /** The type of the configured connection the session reaches (how it is judged). */
  readonly targetType: ConnectionType;
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
  | "shutdown"
  /** Closed by another gateway (or the same one restarting) after the gateway holding it was killed. */
  | "lost";

/** Why a session was ended from outside (revocation, expiry, operator, shutdown). */
export interface TerminationReason {
  readonly reason: SessionEndReason;
  readonly detail: string;
}

export interface SessionStats {
  readonly statements: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}
