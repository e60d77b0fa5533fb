/**
 * One error type for the whole gateway. Every refusal, failure and protocol fault is a
 * GatewayError with a stable `code` (users and code match on the code, never on the message),
 * a message safe to show to the client (it must never contain a secret), and an optional cause
 * kept for logs only.
 */
export const ERROR_CODES = [
  // Identity
  "GW_AUTH_MISSING", // no credential presented
  "GW_AUTH_INVALID", // malformed, badly signed, or unknown token
  "GW_AUTH_EXPIRED", // token past its expiry
  "GW_AUTH_REVOKED", // token (or its service account) revoked
  "GW_TLS_REQUIRED", // the client must use TLS and did not
  // Authorization and policy
  "GW_UNKNOWN_CONNECTION", // the client asked for a connection that is not configured
  "GW_ACCESS_DENIED", // the principal's groups may not use this connection
  "GW_POLICY_DENIED", // a policy rule denied the statement/command
  "GW_FORBIDDEN", // control-plane: the caller's role may not use this route
  // Data path
  "GW_UPSTREAM_UNAVAILABLE", // could not reach the target
  "GW_UPSTREAM_AUTH", // the target refused the gateway's own credential
  "GW_UPSTREAM_TLS", // TLS to the target failed or was required and refused
  "GW_UPSTREAM_HOSTKEY", // the target's SSH host key is not the pinned one
  "GW_AGENT_UNAVAILABLE", // the connection is reached through an agent group with no agent connected
  "GW_AGENT_REFUSED", // the agent refused to dial the connection's target: it is not in the agent's allowlist
  "GW_PROTOCOL", // the client sent something the protocol does not allow
  "GW_LIMIT", // a bound was exceeded (message size, buffer, rate)
  "GW_UNSUPPORTED", // a valid protocol feature the gateway refuses (e.g. GSSAPI, replication)
  "GW_AUDIT_UNAVAILABLE", // the audit record could not be written: fail closed
  "GW_SESSION_TERMINATED", // an operator or a revocation ended the session
  "GW_SHUTTING_DOWN",
  // Control plane and configuration
  "GW_NOT_FOUND",
  "GW_BAD_REQUEST",
  "GW_CONFLICT", // control-plane: the request conflicts with the current state (e.g. already decided)
  "GW_CONFIG",
  "GW_SECRET_UNRESOLVED", // a secret reference could not be resolved (never says the value)
  "GW_STORE", // the store failed
  "GW_INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface GatewayErrorOptions {
  /** The policy rule (name) that caused a refusal, if any. */
  readonly rule?: string;
  /** The underlying error, for logs only; never shown to clients. */
  readonly cause?: unknown;
}

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  readonly code: ErrorCode;
  readonly rule: string | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.rule = options.rule;
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}

/** Wrap anything thrown into a GatewayError without leaking its text to clients. */
export function toGatewayError(e: unknown, fallback: ErrorCode = "GW_INTERNAL"): GatewayError {
  if (e instanceof GatewayError) return e;
  return new GatewayError(fallback, "internal gateway error", { cause: e });
}
