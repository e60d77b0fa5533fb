/**
 * Correlation of the MCP server's loopback sessions (issue 16). Each tool call that reaches a
 * target opens a client session to the gateway's own listener (PostgreSQL wire, SSH, RESP); the
 * gateway admits it like any other client. Before the first byte is sent, the MCP server tells
 * this registry which local port the session comes from and what it belongs to (MCP session,
 * JSON-RPC request id, W3C traceparent, tool); admission (protocols/common/admission.ts) asks it
 * about the client address it accepted and records the answer on the session, with the client
 * protocol `mcp`.
 *
 * Only this process registers ports, and only ports of sockets it has itself connected to its own
 * listener, so a wire client cannot claim another's correlation; an entry also names the
 * principal it belongs to and applies only to a session of that principal.
 *
 * Holds: a wire protocol without an in-band notice (MySQL, HTTP and so Kubernetes) cannot tell
 * its client that a statement waits for approval. A loopback call that wants to know registers
 * a hold listener with its port; the session then carries a random `mcp.call` attribute, and the
 * approval path (runtime/gateway.ts) reports a wait-mode hold of that session here, so that the
 * tool answers `pending_approval` at once while the held call goes on waiting in its session.
 */
import { randomBytes } from "node:crypto";
import type { HoldNotice } from "../../core/judge.js";
import type { ClientProtocol, SessionInfo } from "../../core/session.js";

export interface Correlation {
  readonly mcpSession?: string;
  readonly requestId: string;
  readonly traceparent?: string;
  readonly tool: string;
}

interface Entry {
  readonly principalId: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** Most loopback sessions being admitted at once (entries are removed as soon as admitted or closed). */
const MAX_ENTRIES = 10_000;

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace id of a W3C traceparent (https://www.w3.org/TR/trace-context/#traceparent-header), or undefined when malformed. */
export function traceIdOf(traceparent: string): string | undefined {
  const m = TRACEPARENT.exec(traceparent.trim().toLowerCase());
  const id = m?.[1];
  return id === undefined || /^0+$/.test(id) ? undefined : id;
}

export function correlationAttributes(c: Correlation): Record<string, string> {
  const out: Record<string, string> = { via: "mcp", "mcp.tool": c.tool, "mcp.request": c.requestId.slice(0, 200) };
  if (c.mcpSession !== undefined) out["mcp.session"] = c.mcpSession.slice(0, 200);
  if (c.traceparent !== undefined) {
    const traceId = traceIdOf(c.traceparent);
    if (traceId !== undefined) {
      out["traceparent"] = c.traceparent.trim().toLowerCase();
      out["trace_id"] = traceId;
    }
  }
  return out;
}

/** The session attribute naming a loopback call that listens for holds. */
export const MCP_CALL_ATTRIBUTE = "mcp.call";

export class LoopbackCorrelations {
  readonly #byPort = new Map<number, Entry>();
  readonly #holdListeners = new Map<string, { readonly principalId: string; readonly onHold: (n: HoldNotice) => void }>();

  /** Register the local port of a loopback socket before it sends anything; returns the release. */
  expect(localPort: number, principalId: string, c: Correlation, onHold?: (n: HoldNotice) => void): () => void {
    if (this.#byPort.size >= MAX_ENTRIES) {
      const oldest = this.#byPort.keys().next();
      if (oldest.done !== true) this.#byPort.delete(oldest.value);
    }
    const callId = onHold === undefined ? undefined : randomBytes(16).toString("base64url");
    const attributes = correlationAttributes(c);
    if (callId !== undefined && onHold !== undefined) {
      attributes[MCP_CALL_ATTRIBUTE] = callId;
      if (this.#holdListeners.size >= MAX_ENTRIES) {
        const oldest = this.#holdListeners.keys().next();
        if (oldest.done !== true) this.#holdListeners.delete(oldest.value);
      }
      this.#holdListeners.set(callId, { principalId, onHold });
    }
    const entry: Entry = { principalId, attributes };
    this.#byPort.set(localPort, entry);
    return () => {
      if (this.#byPort.get(localPort) === entry) this.#byPort.delete(localPort);
      if (callId !== undefined) this.#holdListeners.delete(callId);
    };
  }

  /** The approval path: a statement of `session` now waits for approval (wait mode). Tells the loopback call, when it listens. */
  held(session: SessionInfo, notice: HoldNotice): void {
    if (session.clientProtocol !== "mcp") return;
    const callId = session.attributes[MCP_CALL_ATTRIBUTE];
    if (callId === undefined) return;
    const l = this.#holdListeners.get(callId);
    if (l === undefined || l.principalId !== session.principal.id) return;
    l.onHold(notice);
  }

  /** For admission: what a session from `clientAddress` of `principalId` is, when it is one of ours. */
  lookup(clientAddress: string, principalId: string): { readonly clientProtocol: ClientProtocol; readonly attributes: Readonly<Record<string, string>> } | undefined {
    const m = /^(?:127\.0\.0\.1|::1|::ffff:127\.0\.0\.1):(\d{1,5})$/.exec(clientAddress) ?? /^\[(?:::1|::ffff:127\.0\.0\.1)\]:(\d{1,5})$/.exec(clientAddress);
    const port = m?.[1] === undefined ? undefined : Number(m[1]);
    if (port === undefined) return undefined;
    const entry = this.#byPort.get(port);
    if (entry === undefined || entry.principalId !== principalId) return undefined;
    this.#byPort.delete(port);
    return { clientProtocol: "mcp", attributes: entry.attributes };
  }
}
