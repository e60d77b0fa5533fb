/**
 * The one admission step of every engine (core/engine.ts `Gatekeeper`): verify the credential,
 * resolve the connection, judge the session, and audit every failure on the way. Engines only
 * render the outcome in their protocol.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { connectionMap, type Connection, type ConnectionSource, type ConnectionType } from "../../core/connection.js";
import { deny } from "../../core/decision.js";
import type { Admission, AdmissionRequest, AuthContext, ConnectionOf, Gatekeeper } from "../../core/engine.js";
import { GatewayError, toGatewayError } from "../../core/errors.js";
import type { Principal } from "../../core/principal.js";
import type { ClientProtocol, SessionInfo } from "../../core/session.js";
import type { Pipeline } from "../../policy/pipeline.js";

export interface AdmissionOptions {
  readonly pipeline: Pipeline;
  readonly connections: ConnectionSource;
  /** Verifies a presented token; rejects with a GatewayError (GW_AUTH_*). */
  readonly authenticate: (token: string) => Promise<Principal>;
  /** Operators see every admitted session start at info (its end and refusals: the pipeline). */
  readonly logger?: Logger;
  /**
   * The MCP server's own loopback sessions (protocols/mcp/correlation.ts): their client protocol
   * is `mcp` and the MCP session, request and trace context are recorded on them.
   */
  readonly correlate?: (clientAddress: string, principalId: string) => { readonly clientProtocol: ClientProtocol; readonly attributes: Readonly<Record<string, string>> } | undefined;
}

export class SessionAdmission implements Gatekeeper {
  readonly #o: AdmissionOptions;
  readonly #connections: ReadonlyMap<string, Connection>;

  constructor(options: AdmissionOptions) {
    this.#o = options;
    this.#connections = connectionMap(options.connections);
  }

  async authenticate(token: string, context: AuthContext): Promise<Principal> {
    try {
      if (token.length === 0) throw new GatewayError("GW_AUTH_MISSING", "no token presented: use an Airlock access token as the password");
      return await this.#o.authenticate(token);
    } catch (e) {
      const ge = toGatewayError(e, "GW_AUTH_INVALID");
      // Never a stack or library text to the client: an unexpected failure is an invalid token.
      const error = ge.code === "GW_INTERNAL" ? new GatewayError("GW_AUTH_INVALID", "invalid token", { cause: ge.cause }) : ge;
      await this.authFailure(context, error);
      throw error;
    }
  }

  async authFailure(context: AuthContext, error: GatewayError): Promise<void> {
    await this.#o.pipeline.authFailure({
      type: "auth.failure",
      protocol: context.clientProtocol,
      clientAddress: context.clientAddress,
      code: error.code,
      reason: error.message,
      ...(context.connection === undefined ? {} : { connection: context.connection }),
      ...(context.claimedUser === undefined ? {} : { claimedUser: context.claimedUser }),
    });
  }

  async admit<T extends ConnectionType>(request: AdmissionRequest, targets: readonly [T, ...T[]]): Promise<Admission<T>> {
    const connection = this.#connections.get(request.connection);
    const servable = connection !== undefined && isOneOf(connection, targets) ? connection : undefined;
    const correlated = this.#o.correlate?.(request.clientAddress, request.principal.id);
    const info: SessionInfo = {
      id: randomUUID(),
      clientProtocol: correlated?.clientProtocol ?? request.clientProtocol,
      targetType: connection?.type ?? targets[0],
      connection: request.connection,
      principal: request.principal,
      clientAddress: request.clientAddress,
      startedAt: new Date(),
      attributes: correlated === undefined ? request.attributes : { ...request.attributes, ...correlated.attributes },
    };
    // An unknown connection, or one this client protocol cannot reach, is judged and audited
    // like any refused session (the client learns the same thing either way).
    const refusal =
      servable === undefined
        ? deny("GW_UNKNOWN_CONNECTION", connection === undefined ? `unknown connection "${request.connection}"` : `connection "${request.connection}" is not a ${targets.join(" or ")} connection`)
        : undefined;
    const { decision, gate } = await this.#o.pipeline.startSession(info, refusal);
    if (decision.type === "deny") return { ok: false, refusal: decision };
    if (gate === undefined || servable === undefined) return { ok: false, refusal: deny("GW_UNKNOWN_CONNECTION", `unknown connection "${request.connection}"`) };
    this.#o.logger?.info(
      { sessionId: info.id, protocol: info.clientProtocol, principal: info.principal.id, connection: info.connection, clientAddress: info.clientAddress },
      "session started",
    );
    return { ok: true, session: gate, connection: servable };
  }
}

function isOneOf<T extends ConnectionType>(c: Connection, targets: readonly T[]): c is ConnectionOf<T> {
  return (targets as readonly ConnectionType[]).includes(c.type);
}
