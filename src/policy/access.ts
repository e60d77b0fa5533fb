import { ALLOW, deny, type Decision } from "../core/decision.js";
import { connectionMap, type Connection, type ConnectionSource } from "../core/connection.js";
import type { SessionStartEvent } from "../core/events.js";
import type { Evaluator } from "./evaluator.js";

/**
 * Access by groups: a principal may open a session on a connection when it shares at least
 * one group with the connection's `groups`. A connection with no groups admits nobody
 * (fail closed). Statements inside an admitted session are not this evaluator's business.
 */
export class AccessEvaluator implements Evaluator {
  readonly name = "access";
  /** Sessions only: statements inside an admitted session are not this evaluator's business. */
  readonly kinds = [] as const;
  readonly #connections: ReadonlyMap<string, Connection>;

  constructor(connections: ConnectionSource) {
    this.#connections = connectionMap(connections);
  }

  evaluateSession(event: SessionStartEvent): Decision | undefined {
    const { session } = event;
    const connection = this.#connections.get(session.connection);
    if (connection === undefined) {
      return deny("GW_UNKNOWN_CONNECTION", `unknown connection "${session.connection}"`);
    }
    const allowed = connection.groups.some((g) => session.principal.groups.includes(g));
    if (!allowed) {
      return deny(
        "GW_ACCESS_DENIED",
        `${session.principal.name} may not use connection "${connection.name}" (none of its groups is allowed)`,
        "connection-groups",
      );
    }
    return ALLOW;
  }
}
