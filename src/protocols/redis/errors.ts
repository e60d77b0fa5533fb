/**
 * The Redis engine's one renderer of refusals (INTERFACE.md): an error reply whose first word is
 * the code clients test for — `NOPERM` for a policy or access deny, `WRONGPASS` for a bad or
 * unknown credential (and an unknown connection: the user name names it), `NOAUTH` when none
 * was given, `ERR` for the rest — then `airlock: …`.
 */
import { refusalText, type Refusal } from "../../core/engine.js";
import type { ErrorCode } from "../../core/errors.js";
import { encodeError } from "./wire/resp.js";

const FIRST_WORD: Partial<Record<ErrorCode, string>> = {
  GW_POLICY_DENIED: "NOPERM",
  GW_ACCESS_DENIED: "NOPERM",
  GW_UNSUPPORTED: "NOPERM",
  GW_AUTH_INVALID: "WRONGPASS",
  GW_AUTH_EXPIRED: "WRONGPASS",
  GW_AUTH_REVOKED: "WRONGPASS",
  GW_UNKNOWN_CONNECTION: "WRONGPASS",
  GW_AUTH_MISSING: "NOAUTH",
};

export function redisErrorCode(code: ErrorCode): string {
  return FIRST_WORD[code] ?? "ERR";
}

export function renderRefusal(r: Refusal): Buffer {
  return encodeError(`${redisErrorCode(r.code)} ${refusalText(r, true)}`);
}
