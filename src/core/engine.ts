import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Connection, ConnectionType } from "./connection.js";
import type { DenyDecision } from "./decision.js";
import type { GatewayError } from "./errors.js";
import type { SessionJudge } from "./judge.js";
import type { Principal } from "./principal.js";
import type { ClientProtocol } from "./session.js";

/**
 * A protocol engine translates one protocol's wire traffic into typed events and the
 * pipeline's decisions back into wire bytes. It never decides anything itself.
 * The generic listener code knows nothing of wire formats: it hands each accepted socket
 * to `handle`. Every engine follows one contract:
 *   accept → admit (the shared `Gatekeeper` step) → dial (through the `Dialer`) → serve,
 *   judging through the session's `Judge`; refusals rendered by the engine's one renderer of
 *   `Refusal`s; `close` drains.
 */
export interface ProtocolEngine {
  /** The wire protocol this engine speaks with clients. */
  readonly clientProtocol: ClientProtocol;
  /** Serve one accepted client socket until the session ends. Never rejects. */
  handle(socket: Socket): Promise<void>;
  /** Stop accepting work and end live sessions (drain), then resolve. */
  close(): Promise<void>;
}

/** Anything that reaches a client as a refusal: a pipeline deny or a gateway error. */
export type Refusal = DenyDecision | GatewayError;

/**
 * The client-facing text of a refusal, the same in every protocol: `airlock: <message>`, and
 * ` (rule: NAME)` where the protocol's error has no field of its own for the rule. Engines put
 * it into their native error (ErrorResponse, SSH stderr line, HTTP body, …); no engine formats
 * the prefix itself.
 */
export function refusalText(r: { readonly message: string; readonly rule?: string | undefined }, nameRule = false): string {
  return nameRule && r.rule !== undefined ? `airlock: ${r.message} (rule: ${r.rule})` : `airlock: ${r.message}`;
}

/** The same convention for anything the gateway itself tells a client (notices, hold messages). */
export function gatewayText(message: string): string {
  return `airlock: ${message}`;
}

export interface DialTarget {
  readonly host: string;
  readonly port: number;
  /** The agent group that reaches this target (a connection's `via`); absent = dial directly. */
  readonly via?: string;
  /**
   * Agent-side login (a connection's `credentialsOn: agent`): the agent resolves `password`
   * (an env:/file: reference, never a value) on its own host and answers the target's login
   * challenge; the stream it hands back is already authenticated.
   */
  readonly agentLogin?:
    | {
        readonly type: "postgres";
        readonly user: string;
        readonly password: string;
        readonly tls?: { readonly sslmode: "prefer" | "require" | "verify-ca" | "verify-full"; readonly ca?: string; readonly serverName: string };
      }
    | { readonly type: "redis"; readonly user?: string; readonly password: string };
}

/** Where a connection's target is dialed: its address, and the agent group that reaches it. */
export function dialTargetOf(c: { readonly host: string; readonly port: number; readonly via?: string | undefined }): DialTarget {
  return { host: c.host, port: c.port, ...(c.via === undefined ? {} : { via: c.via }) };
}

/**
 * How an engine reaches its target: directly, or through a network-resident agent (`via`).
 * Resolves to a connected byte stream, or rejects with GW_UPSTREAM_UNAVAILABLE (or
 * GW_AGENT_UNAVAILABLE when no agent of the group is connected).
 */
export interface Dialer {
  dial(target: DialTarget, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<Duplex>;
}

/** Where an authentication attempt came from, for its audit record. */
export interface AuthContext {
  readonly clientProtocol: ClientProtocol;
  /** The connection the client asked for, when known. */
  readonly connection?: string;
  readonly clientAddress: string;
  /** The user name the client claimed, if any. */
  readonly claimedUser?: string;
}

export interface AdmissionRequest {
  readonly clientProtocol: ClientProtocol;
  /** The connection name the client asked for. */
  readonly connection: string;
  readonly principal: Principal;
  readonly clientAddress: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** The configured connection of one type. */
export type ConnectionOf<T extends ConnectionType> = Extract<Connection, { readonly type: T }>;

export type Admission<T extends ConnectionType> =
  | { readonly ok: true; readonly session: SessionJudge; readonly connection: ConnectionOf<T> }
  | { readonly ok: false; readonly refusal: Refusal };

/**
 * The one admission step every engine takes: verify the credential, resolve the connection,
 * judge the session (access, grants), start its recording. Every failure is audited here
 * (an auth failure, or a session.start deny for an unknown or unreachable connection).
 */
export interface Gatekeeper {
  /** Verify a presented token (Airlock token or trusted JWT). A failure is audited, then thrown as a GatewayError. */
  authenticate(token: string, context: AuthContext): Promise<Principal>;
  /** Audit an authentication failure the engine found itself (TLS required, bad key signature). */
  authFailure(context: AuthContext, error: GatewayError): Promise<void>;
  /**
   * Admit a session to a connection of one of `targets` (the connection types this engine can
   * serve). A connection of another type is refused as unknown to this protocol.
   */
  admit<T extends ConnectionType>(request: AdmissionRequest, targets: readonly [T, ...T[]]): Promise<Admission<T>>;
}
