import { gatewayText, refusalText, type Refusal } from "../../core/engine.js";
import type { ErrorCode } from "../../core/errors.js";
import { encodeErrorResponse, encodeNoticeResponse } from "./wire/index.js";

/**
 * The engine's one renderer of refusals: an ErrorResponse with the SQLSTATE of the code and the
 * `airlock:` message naming the rule (INTERFACE.md "What a refusal looks like"). FATAL ends
 * the session; ERROR leaves it usable.
 */
export function renderRefusal(r: Refusal, severity: "ERROR" | "FATAL" = "ERROR"): Buffer {
  // A statement's refusal names its rule; a FATAL (the session is refused or ended) says why in its message.
  return encodeErrorResponse({ severity, code: sqlstateFor(r.code), message: refusalText(r, severity === "ERROR") });
}

/** What the gateway itself tells a client between messages (a hold, a cut result): a NoticeResponse. */
export function renderNotice(message: string, severity: "NOTICE" | "WARNING" = "NOTICE"): Buffer {
  return encodeNoticeResponse({ severity, code: "01000", message: gatewayText(message) });
}

/**
 * SQLSTATE for each gateway error code (PostgreSQL Appendix A, "PostgreSQL Error Codes").
 * Contract (INTERFACE.md): 42501 for a policy or access deny, 28P01 for bad credentials,
 * 3D000 for an unknown connection.
 */
export function sqlstateFor(code: ErrorCode): string {
  switch (code) {
    case "GW_AUTH_MISSING":
    case "GW_AUTH_INVALID":
    case "GW_AUTH_EXPIRED":
    case "GW_AUTH_REVOKED":
      return "28P01"; // invalid_password
    case "GW_TLS_REQUIRED":
      return "28000"; // invalid_authorization_specification
    case "GW_UNKNOWN_CONNECTION":
      return "3D000"; // invalid_catalog_name
    case "GW_ACCESS_DENIED":
    case "GW_POLICY_DENIED":
    case "GW_FORBIDDEN":
      return "42501"; // insufficient_privilege
    case "GW_UPSTREAM_UNAVAILABLE":
    case "GW_UPSTREAM_TLS":
    case "GW_UPSTREAM_HOSTKEY":
    case "GW_AGENT_UNAVAILABLE":
    case "GW_AGENT_REFUSED":
      return "08001"; // sqlclient_unable_to_establish_sqlconnection
    case "GW_UPSTREAM_AUTH":
      return "08004"; // sqlserver_rejected_establishment_of_sqlconnection
    case "GW_PROTOCOL":
      return "08P01"; // protocol_violation
    case "GW_LIMIT":
      return "54000"; // program_limit_exceeded
    case "GW_UNSUPPORTED":
      return "0A000"; // feature_not_supported
    case "GW_AUDIT_UNAVAILABLE":
      return "58000"; // system_error: fail closed, not a permission problem
    case "GW_SESSION_TERMINATED":
    case "GW_SHUTTING_DOWN":
      return "57P01"; // admin_shutdown
    case "GW_NOT_FOUND":
    case "GW_BAD_REQUEST":
    case "GW_CONFLICT":
    case "GW_CONFIG":
    case "GW_SECRET_UNRESOLVED":
    case "GW_STORE":
    case "GW_INTERNAL":
      return "XX000"; // internal_error
  }
}

/**
 * No room for another connection (the pre-authentication caps): FATAL 53300
 * too_many_connections, the code PostgreSQL itself sends when it has no slot left.
 */
export function renderTooManyConnections(message: string): Buffer {
  return encodeErrorResponse({ severity: "FATAL", code: "53300", message: gatewayText(message) });
}
