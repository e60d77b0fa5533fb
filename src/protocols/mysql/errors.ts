/**
 * The MySQL engine's one renderer of refusals (INTERFACE.md): an ERR packet with the error
 * number and SQLSTATE clients test for — 1142/42000 for a policy or access deny, 1045/28000 for
 * a bad or missing token, 1049/42000 for an unknown connection — and `airlock: … (rule: NAME)`.
 */
import { refusalText, type Refusal } from "../../core/engine.js";
import type { ErrorCode } from "../../core/errors.js";
import { encodeErr, type ErrPacket } from "./wire/protocol.js";

const ERRORS: { readonly [C in ErrorCode]?: readonly [number, string] } = {
  GW_POLICY_DENIED: [1142, "42000"],
  GW_ACCESS_DENIED: [1142, "42000"],
  GW_UNSUPPORTED: [1142, "42000"],
  GW_AUTH_MISSING: [1045, "28000"],
  GW_AUTH_INVALID: [1045, "28000"],
  GW_AUTH_EXPIRED: [1045, "28000"],
  GW_AUTH_REVOKED: [1045, "28000"],
  GW_TLS_REQUIRED: [1045, "28000"],
  GW_UNKNOWN_CONNECTION: [1049, "42000"],
  GW_SESSION_TERMINATED: [1927, "70100"],
  GW_LIMIT: [1153, "08S01"],
  GW_PROTOCOL: [1047, "08S01"],
};

export function errOf(r: Refusal): ErrPacket {
  const [code, sqlstate] = ERRORS[r.code] ?? [1105, "HY000"];
  return { code, sqlstate, message: refusalText(r, true) };
}

/** The ERR payload for a refusal. */
export function renderRefusal(r: Refusal): Buffer {
  return encodeErr(errOf(r));
}
