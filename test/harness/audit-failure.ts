/**
 * Makes a running gateway's audit log refuse writes, and undoes it.
 *
 * Why at the `append` boundary and not in the file: the real LocalAuditLog, once a write has
 * failed, stays failed until the process restarts (src/audit/log.ts, "Fail closed"), so a real
 * disk error would poison a gateway that a whole test file shares. Its own tests cover that
 * writer failures turn into GW_AUDIT_UNAVAILABLE rejections; this injects exactly that
 * rejection on the live instance the pipeline writes through, as the pipeline's unit test
 * does with a failing AuditLog.
 */
import { GatewayError } from "../../src/core/errors.js";
import type { RunningGateway } from "../../src/runtime/gateway.js";

export interface AuditFailure {
  /** Appends refused so far: 0 means the gateway no longer writes through this object, and the test proved nothing. */
  attempts(): number;
  /** Writes succeed again. Idempotent. */
  restore(): void;
}

/** From now until `restore()`, every audit append rejects as a failed write does. */
export function failAuditWrites(gw: RunningGateway): AuditFailure {
  const audit = gw.audit;
  // Normally `append` lives on the prototype: shadow it on the instance, then remove the shadow.
  const own = Object.getOwnPropertyDescriptor(audit, "append");
  let failures = 0;
  Object.defineProperty(audit, "append", {
    configurable: true,
    writable: true,
    value: () => {
      failures++;
      return Promise.reject(new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log cannot be written; refusing further actions until restart"));
    },
  });
  let restored = false;
  return {
    attempts: () => failures,
    restore() {
      if (restored) return;
      restored = true;
      if (own !== undefined) Object.defineProperty(audit, "append", own);
      else delete (audit as { append?: unknown }).append;
    },
  };
}
