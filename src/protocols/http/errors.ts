/**
 * The HTTP engine's one renderer of refusals (INTERFACE.md): a status and a JSON body
 * `{ "error": { "code", "message", "rule" } }`; 401 carries `WWW-Authenticate: Bearer`
 * (RFC 6750 §3), an async approval 202 with the approval id and `Retry-After`, a spent budget
 * 429 with `Retry-After` at the end of its window. Every refusal
 * carries `x-airlock-refusal: GW_…` (its code), so a client tells the gateway's answer from the
 * target's own JSON error of the same status.
 */
import { refusalText, type Refusal } from "../../core/engine.js";
import { GatewayError, type ErrorCode } from "../../core/errors.js";

export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case "GW_AUTH_MISSING":
    case "GW_AUTH_INVALID":
    case "GW_AUTH_EXPIRED":
    case "GW_AUTH_REVOKED":
      return 401;
    case "GW_TLS_REQUIRED":
      return 426;
    case "GW_UNKNOWN_CONNECTION":
    case "GW_NOT_FOUND":
      return 404;
    case "GW_ACCESS_DENIED":
    case "GW_POLICY_DENIED":
    case "GW_FORBIDDEN":
    case "GW_UNSUPPORTED":
    case "GW_SESSION_TERMINATED":
      return 403;
    case "GW_PROTOCOL":
    case "GW_BAD_REQUEST":
      return 400;
    case "GW_LIMIT":
      return 413;
    case "GW_CONFLICT":
      return 409;
    case "GW_UPSTREAM_UNAVAILABLE":
    case "GW_UPSTREAM_AUTH":
    case "GW_UPSTREAM_TLS":
    case "GW_UPSTREAM_HOSTKEY":
    case "GW_AGENT_REFUSED":
      return 502;
    case "GW_AGENT_UNAVAILABLE":
      return 503;
    case "GW_AUDIT_UNAVAILABLE":
    case "GW_SHUTTING_DOWN":
    case "GW_STORE":
      return 503;
    case "GW_CONFIG":
    case "GW_SECRET_UNRESOLVED":
    case "GW_INTERNAL":
      return 500;
  }
}

/** The header naming a gateway refusal's code; a target's answer never carries it (the engine drops it from responses). */
export const REFUSAL_HEADER = "x-airlock-refusal";

export interface RenderedRefusal {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export function renderRefusal(r: Refusal, statusOf?: number): RenderedRefusal {
  const pending = r instanceof GatewayError ? undefined : r.pending;
  // A refusal that lasts until a known time (a spent budget): 429 Too Many Requests (RFC 6585 §4) with Retry-After then.
  const retryAt = r instanceof GatewayError ? undefined : r.retryAt;
  const status = statusOf ?? (retryAt !== undefined ? 429 : httpStatusOf(r.code));
  const error = { code: r.code, message: refusalText(r), ...(r.rule === undefined ? {} : { rule: r.rule }) };
  if (pending !== undefined) {
    return {
      status: 202,
      headers: { "content-type": "application/json", "retry-after": "5", "x-airlock-approval": pending.approvalId, [REFUSAL_HEADER]: r.code },
      body: `${JSON.stringify({ approval: { id: pending.approvalId, status: "pending", expiresAt: pending.expiresAt.toISOString() }, error })}\n`,
    };
  }
  const headers: Record<string, string> = { "content-type": "application/json", [REFUSAL_HEADER]: r.code };
  if (retryAt !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil((retryAt.getTime() - Date.now()) / 1000)));
  if (status === 401) headers["www-authenticate"] = `Bearer realm="airlock"${r.code === "GW_AUTH_MISSING" ? "" : ', error="invalid_token"'}`;
  return { status, headers, body: `${JSON.stringify({ error })}\n` };
}
