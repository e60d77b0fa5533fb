/**
 * Tool results as machine-actionable envelopes (issue 16). Every Airlock tool answers with one
 * of four statuses; a denied, held or failed call is a tool result with `isError: true` (MCP
 * 2025-06-18 "Tools › Error Handling": tool execution errors are reported in the result so the
 * model can see them and correct itself), never a JSON-RPC protocol error.
 *
 * The same envelope is in `structuredContent` and, serialized, in the text content (clients
 * that ignore structured content still see it).
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

export interface CompletedEnvelope {
  readonly status: "completed";
  readonly connection?: string;
  readonly [key: string]: unknown;
}

export interface DeniedEnvelope {
  readonly status: "denied";
  readonly connection?: string;
  /** Stable gateway error code (GW_POLICY_DENIED, GW_ACCESS_DENIED, …) or the target's SQLSTATE-derived code. */
  readonly code: string;
  readonly rule?: string;
  readonly message: string;
  /** What the agent can change to succeed (check_policy first, request_approval, other connection, …). */
  readonly fix: string;
}

export interface PendingEnvelope {
  readonly status: "pending_approval";
  readonly connection?: string;
  readonly approvalId: string;
  readonly rule?: string;
  readonly approvers: readonly string[];
  readonly expiresAt?: string;
  readonly message: string;
  /** The exact next call that waits for the decision (and returns the result once approved). */
  readonly wait: { readonly tool: "wait_approval" | "airlock_wait_approval"; readonly arguments: { readonly id: string } };
}

export interface FailedEnvelope {
  readonly status: "failed";
  readonly connection?: string;
  /** The target's own error code when it has one (SQLSTATE, exit status), else a gateway code. */
  readonly code: string;
  /** The target's message, already masked by the gateway on the way back. */
  readonly message: string;
}

export type Envelope = CompletedEnvelope | DeniedEnvelope | PendingEnvelope | FailedEnvelope;

export function toToolResult(e: Envelope): CallToolResult {
  const structured: Record<string, unknown> = { ...e };
  switch (e.status) {
    case "completed":
      return { content: [{ type: "text", text: JSON.stringify(structured) }], structuredContent: structured };
    case "denied":
    case "pending_approval":
    case "failed":
      return { content: [{ type: "text", text: JSON.stringify(structured) }], structuredContent: structured, isError: true };
  }
}

const RULE_SUFFIX = /^(?<message>[\s\S]*) \(rule: (?<rule>[^()]+)\)$/;
const APPROVAL_ID = /\b(apr_[a-z0-9]{8,40})\b/;

/**
 * The inverse of core/engine.ts `refusalText`: `airlock: MESSAGE (rule: RULE)` → its parts. The
 * gateway's refusals reach a wire client only as text; this is that documented convention
 * (INTERFACE "What a refusal looks like"), read back. Undefined: not a gateway refusal.
 */
export function parseRefusalText(text: string): { readonly message: string; readonly rule?: string } | undefined {
  if (!text.startsWith("airlock: ")) return undefined;
  const body = text.slice("airlock: ".length);
  const m = RULE_SUFFIX.exec(body);
  const rule = m?.groups?.["rule"];
  const message = m?.groups?.["message"];
  return rule !== undefined && message !== undefined ? { message, rule } : { message: body };
}

/** The approval id a hold notice (or an async-mode refusal) names. */
export function approvalIdIn(text: string): string | undefined {
  return APPROVAL_ID.exec(text)?.[1];
}

/** Advice for a denial, by what the agent can do about it. */
export function fixFor(code: string, rule: string | undefined): string {
  if (code === "GW_ACCESS_DENIED" || code === "GW_UNKNOWN_CONNECTION") {
    return "use list_connections to see the connections your groups may use, or ask for an access grant";
  }
  if (code === "GW_AUTH_INVALID" || code === "GW_AUTH_EXPIRED" || code === "GW_AUTH_REVOKED" || code === "GW_AUTH_MISSING") {
    return "get a fresh token (airlock token create / airlock login) and reconnect";
  }
  if (code === "GW_LIMIT") return "wait for pending approvals to be decided, or narrow the request";
  return rule === undefined
    ? "change the statement or command; check_policy tells you whether a variant would be allowed without running it"
    : `the statement matches policy "${rule}": change it so that the rule no longer matches (check_policy tells you without running it), or ask an admin to change the policy`;
}
