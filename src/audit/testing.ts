/**
 * Test support: an in-memory Store that implements only the audit part faithfully (same
 * ON CONFLICT DO NOTHING semantics as SqlStore) and can be switched "down" to simulate an
 * outage. Token and session methods reject: audit tests must not depend on them.
 */
import { GatewayError } from "../core/errors.js";
import type { Store } from "../store/types.js";
import type { AuditRecord } from "./types.js";

export class MemoryAuditStore implements Store {
  readonly kind = "pglite" as const;
  /** While true every call rejects with GW_STORE. */
  down = false;
  readonly records = new Map<number, AuditRecord>();
  /** Sizes of the batches appendAudit received (including failed attempts). */
  readonly batchSizes: number[] = [];

  private downError(): GatewayError {
    return new GatewayError("GW_STORE", "store is down (test)");
  }
  /** Tokens and sessions are outside this audit-only test double: calls reject, by design. */
  private unsupported(): Promise<never> {
    return Promise.reject(new GatewayError("GW_INTERNAL", "MemoryAuditStore keeps audit records only"));
  }

  migrate(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  insertToken(): Promise<void> {
    return this.unsupported();
  }
  getToken(): Promise<undefined> {
    return this.unsupported();
  }
  revokeToken(): Promise<boolean> {
    return this.unsupported();
  }
  listRevokedTokens(): Promise<never> {
    return this.unsupported();
  }
  insertSession(): Promise<void> {
    return this.unsupported();
  }
  endSession(): Promise<void> {
    return this.unsupported();
  }
  getSession(): Promise<undefined> {
    return this.unsupported();
  }
  listSessions(): Promise<never> {
    return this.unsupported();
  }

  appendAudit(records: readonly AuditRecord[]): Promise<void> {
    this.batchSizes.push(records.length);
    if (this.down) return Promise.reject(this.downError());
    for (const r of records) if (!this.records.has(r.seq)) this.records.set(r.seq, structuredClone(r));
    return Promise.resolve();
  }

  lastAudit(): Promise<AuditRecord | undefined> {
    if (this.down) return Promise.reject(this.downError());
    let max: AuditRecord | undefined;
    for (const r of this.records.values()) if (max === undefined || r.seq > max.seq) max = r;
    return Promise.resolve(max);
  }

  readAudit(afterSeq: number, limit: number): Promise<readonly AuditRecord[]> {
    if (this.down) return Promise.reject(this.downError());
    const out = [...this.records.values()].filter((r) => r.seq > afterSeq).sort((a, b) => a.seq - b.seq);
    return Promise.resolve(out.slice(0, limit));
  }
}
