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

/**
 * From now until `restore()`, every audit append rejects as a failed write does — whether the
 * pipeline awaits the write (`append`) or queues the record to settle before the result is
 * released (`queue`, issue 13).
 */
export function failAuditWrites(gw: RunningGateway): AuditFailure {
  let failures = 0;
  const refusal = (): GatewayError => {
    failures++;
    return new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log cannot be written; refusing further actions until restart");
  };
  const restore = shadow(gw, {
    append: () => Promise.reject(refusal()),
    queue: () => {
      throw refusal();
    },
  });
  return { attempts: () => failures, restore };
}

/**
 * From now until `restore()`, records are queued as usual but the write that makes them durable
 * before a result is released fails (`settle` reports the failure; the records themselves still
 * reach the real log on its own commit). A statement is then forwarded and its result withheld.
 */
export function failAuditSettles(gw: RunningGateway): AuditFailure {
  let failures = 0;
  const restore = shadow(gw, {
    settle: () => {
      failures++;
      return false;
    },
  });
  return { attempts: () => failures, restore };
}

/** Shadow methods on the live audit log instance (they normally live on the prototype); returns the undo. */
function shadow(gw: RunningGateway, methods: Record<string, (...args: never[]) => unknown>): () => void {
  const audit = gw.audit;
  const own = new Map<string, PropertyDescriptor | undefined>();
  for (const [name, value] of Object.entries(methods)) {
    own.set(name, Object.getOwnPropertyDescriptor(audit, name));
    Object.defineProperty(audit, name, { configurable: true, writable: true, value });
  }
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    for (const [name, d] of own) {
      if (d !== undefined) Object.defineProperty(audit, name, d);
      else Reflect.deleteProperty(audit, name);
    }
  };
}
