import type { ErrorCode } from "../core/errors.js";
import type { PrincipalKind } from "../core/principal.js";

/** Stable audit event types: a schema someone can still query a year later. */
export const AUDIT_EVENT_TYPES = [
  "session.start", // access decision for a new session (allow or deny)
  "session.end",
  "db.query", // a statement's decision, written before it is forwarded
  "ssh.command", // an SSH exec, shell line, channel or forward and its decision, written before it is forwarded
  "protocol.request", // a protocol feature that is not a statement or command (SSH env/x11/agent/global request, a malformed message) and its decision
  "k8s.request", // a Kubernetes API request (verb, resource, namespace, name) and its decision, written before it is forwarded
  "mcp.tool_call", // an MCP tool call (or an upstream's sampling/elicitation request) through the gateway and its decision, written before it is forwarded
  "mcp.pin", // an upstream MCP server's tool fingerprints pinned or accepted by an admin (or at first contact), or a changed tool hidden
  "http.request", // an HTTP request to an http connection and its decision, written before it is forwarded
  "db.result", // facts about a result worth auditing: masked value counts, row limits (never values)
  "auth.failure",
  "token.create",
  "token.revoke",
  "gateway.start",
  "gateway.stop",
  "approval.requested", // a statement was held, or access was requested (src/approvals)
  "approval.decided", // one approver's vote (approve or deny), with the request's resulting status
  "approval.expired", // no decision in time
  "approval.cancelled", // the waiting client went away, or the gateway restarted
  "approval.used", // an approved async statement ran (single use)
  "grant.expired", // an access grant ended; sessions opened under it end too
  "grant.revoked", // an access grant was ended early; sessions opened under it end too
  "connection.change", // a connection registered, changed, disabled or enabled at run time (web console)
  "result.flagged", // a result carried text aimed at an AI agent (prompt injection): kinds and columns, never values
  "canary.tripped", // a planted canary value appeared in a result (src/scan/canaries.ts)
  "policy.change", // a policy saved or deleted at run time (web console)
  "connection.test", // a "test connection" from the web console: the target dialled with the held credential
  "agent.connect", // a network-resident agent's tunnel admitted (allow) or refused (deny): agent id, group, name, version, address
  "agent.disconnect", // a network-resident agent's tunnel ended: agent id, group, why, streams it carried
  "secrets.rotate", // stored secrets' data keys re-wrapped under the current key-encryption key (airlock secrets rotate-key)
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export interface AuditPrincipal {
  readonly id: string;
  readonly kind: PrincipalKind;
  readonly name: string;
}

/** Who acted, as the audit log keeps it: id, kind and name, nothing else (no groups, no token). */
export function auditPrincipal(p: AuditPrincipal): AuditPrincipal {
  return { id: p.id, kind: p.kind, name: p.name };
}

/** What a caller hands to the audit log. Never contains result values or secrets. */
export interface AuditEventInput {
  readonly type: AuditEventType;
  readonly sessionId?: string;
  readonly principal?: AuditPrincipal;
  readonly connection?: string;
  readonly protocol?: string;
  readonly clientAddress?: string;
  readonly decision?: "allow" | "deny";
  readonly code?: ErrorCode;
  readonly rule?: string;
  readonly message?: string;
  /** The statement or command judged (as the client sent it). */
  readonly statement?: string;
  /** Small structured facts: counts, reasons, token ids. JSON-serialisable. */
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
}

/**
 * A record in the hash chain. `hash = HMAC-SHA256(key, prevHash + "\n" + canonical(record
 * without hash))`, hex. The first record's prevHash is 64 zeros. `seq` starts at 1 and has no
 * gaps, so an edited, removed, inserted or reordered record breaks verification.
 */
export interface AuditRecord extends AuditEventInput {
  readonly seq: number;
  /** ISO-8601 time the gateway wrote the record. */
  readonly time: string;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditLog {
  /**
   * Append a record. Resolves once the record is in the local log (group-committed with
   * other appends in the same tick), before the action it describes is forwarded.
   * Rejects with GatewayError GW_AUDIT_UNAVAILABLE if it cannot be written: callers fail closed.
   */
  append(input: AuditEventInput): Promise<AuditRecord>;
  /**
   * Queue a record without waiting for its write (seq and hash are assigned now, in call
   * order): for a caller that forwards the action at once and calls `settle()` before anything
   * the action produced is released (issue 13: the record is durable in the local log before
   * the result reaches the client). Returns undefined when this log cannot offer that (writes
   * that need fsync go through the thread pool): the caller then awaits `append`. Throws
   * GatewayError GW_AUDIT_UNAVAILABLE when the log has failed or the record cannot be encoded.
   */
  queue?(input: AuditEventInput): AuditRecord | undefined;
  /**
   * Make the queued records up to `seq` (default: all of them) durable now: nothing to do when
   * the group commit already wrote them, else one synchronous write of everything queued.
   * Returns false when the log has failed: what those records describe must not be released.
   */
  settle?(seq?: number): boolean;
  /** Wait until everything appended so far has been shipped to the store. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export type AuditVerifyResult =
  | { readonly ok: true; readonly records: number; readonly lastSeq: number }
  | {
      readonly ok: false;
      readonly records: number;
      /** The first record that fails (or the seq where one is missing). */
      readonly failedSeq: number;
      readonly reason: "hash_mismatch" | "chain_broken" | "sequence_gap" | "malformed";
      readonly detail: string;
    };
