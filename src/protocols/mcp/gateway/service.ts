/**
 * Airlock as an MCP gateway (issue 16, gateway half): an agent's MCP session at
 * `/mcp/CONNECTION` is a gateway session of its principal on an `mcp` connection, and the
 * gateway is an MCP client of the upstream server for it.
 *
 * - tools/list: the upstream's tools that are pinned as approved (pins.ts) and that no policy
 *   refuses outright, plus `airlock_wait_approval`;
 * - tools/call: judged as an `mcp.call` event by the one pipeline (policies on `tools` and
 *   `arguments`, call limits, approval holds), audited and recorded before it is forwarded;
 *   the upstream's answer masked (mask.ts) and recorded as the agent saw it. A denied or held
 *   call is a tool result with `isError: true` and the envelope of the server half (denied,
 *   pending_approval); `airlock_wait_approval` returns the held call's own result once decided;
 * - resources and prompts pass through, judged by name (`resource:URI`, `prompt:NAME`) and
 *   masked the same way;
 * - the upstream's sampling and elicitation requests are judged (refused unless a policy
 *   allows them) and, when allowed, relayed to the agent.
 *
 * The MCP layer only translates: every decision is the pipeline's.
 */
import type { Logger } from "pino";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type CallToolResult,
  type ServerCapabilities,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { Connection, McpConnection } from "../../../core/connection.js";
import type { Decision, MaskRule, Verdict } from "../../../core/decision.js";
import type { SessionInfo } from "../../../core/session.js";
import type { AdmissionRequest, Admission } from "../../../core/engine.js";
import { isGatewayError } from "../../../core/errors.js";
import type { JudgedEvent, McpCallEvent, McpCallMethod } from "../../../core/events.js";
import type { HoldNotice, SessionJudge } from "../../../core/judge.js";
import { mcpCallText } from "../../../core/mcp-call.js";
import type { Principal } from "../../../core/principal.js";
import type { RuleMasker } from "../../../masking/index.js";
import { fixFor, toToolResult, type Envelope } from "../envelope.js";
import { ContentMasker } from "./mask.js";
import type { McpPins, ToolPinView } from "./pins.js";
import { listAllTools, openUpstream, type Upstream, type UpstreamDeps } from "./upstream.js";

export const WAIT_TOOL = "airlock_wait_approval";
const MAX_WAIT_SECONDS = 60;
const MAX_PENDING = 1_000;
/** What a recording keeps of one answer (the agent saw all of it). */
const MAX_RECORDED_CHARS = 64 * 1024;

export interface ApprovalLookup {
  get(id: string): Promise<{ readonly approvers: readonly string[]; readonly expiresAt: Date; readonly status: string; readonly requesterId: string; readonly decisionReason?: string } | undefined>;
}

export interface McpGatewayDeps {
  readonly connection: (name: string) => Connection | undefined;
  /** Every connection (the aggregated endpoint lists the `mcp` ones a principal may use). */
  readonly connections: () => Iterable<Connection>;
  readonly admit: (request: AdmissionRequest) => Promise<Admission<"mcp">>;
  readonly upstream: UpstreamDeps;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  readonly pins: McpPins;
  readonly approvals: ApprovalLookup;
  /** The pipeline's dry run (Pipeline.preview): which tools policies refuse outright. */
  readonly preview: (session: SessionInfo, event: JudgedEvent) => Promise<Verdict>;
  readonly logger: Logger;
}

/** The agent-facing side of one gateway session. */
export interface GatewaySessionHandle {
  /** The agent-facing server (its low-level handlers proxy the upstream; no high-level tools are registered on it). */
  readonly mcp: McpServer;
  readonly sessionId: string;
  /** Aborts when the gateway ends the session (revocation, expiry, shutdown). */
  readonly signal: AbortSignal;
  close(): Promise<void>;
}

export type OpenResult = { readonly ok: true; readonly handle: GatewaySessionHandle } | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

export class McpGatewayService {
  readonly #d: McpGatewayDeps;

  constructor(deps: McpGatewayDeps) {
    this.#d = deps;
  }

  /** Is `name` an mcp connection (so `/mcp/name` is the gateway's)? */
  isGatewayConnection(name: string): boolean {
    return this.#d.connection(name)?.type === "mcp";
  }

  /** The `mcp` connections `principal`'s groups may use (admission still decides each one). */
  connectionsFor(principal: Principal): string[] {
    const out: string[] = [];
    for (const c of this.#d.connections()) if (c.type === "mcp" && c.groups.some((g) => principal.groups.includes(g))) out.push(c.name);
    return out.sort();
  }

  /** Admit a session of `principal` to `connection`, and connect to its upstream. */
  async open(principal: Principal, connection: string, clientAddress: string, attributes: Readonly<Record<string, string>>): Promise<OpenResult> {
    const admission = await this.#d.admit({ clientProtocol: "mcp", connection, principal, clientAddress, attributes: { via: "mcp-gateway", ...attributes } });
    if (!admission.ok) {
      const r = admission.refusal;
      const code = r instanceof Error ? r.code : r.code;
      const status = code === "GW_UNKNOWN_CONNECTION" ? 404 : 403;
      return { ok: false, status, code, message: r.message };
    }
    const session = new GatewaySession(this.#d, admission.session, admission.connection);
    try {
      await session.start();
    } catch (e) {
      const message = isGatewayError(e) ? e.message : `the upstream MCP server of ${connection} could not be reached`;
      admission.session.observe({ type: "upstream.failure", session: admission.session.info, code: isGatewayError(e) ? e.code : "GW_UPSTREAM_UNAVAILABLE", message });
      await session.close("error", message);
      return { ok: false, status: 502, code: isGatewayError(e) ? e.code : "GW_UPSTREAM_UNAVAILABLE", message };
    }
    return { ok: true, handle: session };
  }

  /** The upstream's tools and their pin states (admin API). */
  async pinReport(connection: string): Promise<ToolPinView[]> {
    const c = this.#mcp(connection);
    const up = await openUpstream(c, this.#d.upstream, undefined);
    try {
      return await this.#d.pins.states({ ...c, pinning: "admin" }, await listAllTools(up.client, c.timeoutMs));
    } finally {
      await up.close();
    }
  }

  /** Pin the upstream's tools as they are now (all, or `only`), as `by` (admin API). */
  async pin(connection: string, by: string, only?: readonly string[]): Promise<ToolPinView[]> {
    const c = this.#mcp(connection);
    const up = await openUpstream(c, this.#d.upstream, undefined);
    try {
      return await this.#d.pins.pin(connection, await listAllTools(up.client, c.timeoutMs), by, only);
    } finally {
      await up.close();
    }
  }

  #mcp(name: string): McpConnection {
    const c = this.#d.connection(name);
    if (c?.type !== "mcp") throw new McpGatewayError(`"${name}" is not an mcp connection`);
    return c;
  }
}

export class McpGatewayError extends Error {}

interface PendingCall {
  readonly principalId: string;
  readonly expiresAt: number;
  readonly result?: Promise<CallToolResult>;
  readonly rerun?: () => Promise<CallToolResult>;
  delivered?: CallToolResult;
}

class GatewaySession implements GatewaySessionHandle {
  readonly mcp: McpServer;
  readonly #d: McpGatewayDeps;
  readonly #gate: SessionJudge;
  readonly #c: McpConnection;
  #upstream: Upstream | undefined;
  #seq = 0;
  #bytesFromClient = 0;
  #bytesToClient = 0;
  /** The upstream's tools as last listed in this session, with their pin states. */
  #tools = new Map<string, { readonly tool: Tool; readonly pin: ToolPinView }>();
  readonly #pending = new Map<string, PendingCall>();
  #closed = false;

  constructor(d: McpGatewayDeps, gate: SessionJudge, c: McpConnection) {
    this.#d = d;
    this.#gate = gate;
    this.#c = c;
    this.mcp = new McpServer({ name: `airlock:${c.name}`, version: d.upstream.version }, { capabilities: { tools: {}, resources: {}, prompts: {} } });
  }

  get sessionId(): string {
    return this.#gate.info.id;
  }

  get signal(): AbortSignal {
    return this.#gate.signal;
  }

  async start(): Promise<void> {
    this.#upstream = await openUpstream(this.#c, this.#d.upstream, {
      sampling: (params) => this.#relay("sampling/createMessage", params),
      elicitation: (params) => this.#relay("elicitation/create", params),
    });
    const caps: ServerCapabilities = this.#upstream.client.getServerCapabilities() ?? {};
    this.#register(caps);
  }

  async close(reason: "client_closed" | "error" = "client_closed", detail?: string): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#upstream?.close();
    await this.#gate.end(reason, { statements: this.#seq, bytesFromClient: this.#bytesFromClient, bytesToClient: this.#bytesToClient }, detail);
  }

  #register(caps: ServerCapabilities): void {
    const s = this.mcp.server;
    s.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [...(await this.#visibleTools()), WAIT_TOOL_DEF] }));
    s.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      const args = req.params.arguments ?? {};
      if (req.params.name === WAIT_TOOL) return this.#wait(args, extra.signal);
      return this.#callTool(req.params.name, args, extra.signal);
    });
    const client = (): Upstream => {
      if (this.#upstream === undefined) throw new McpError(ErrorCode.InternalError, "airlock: the upstream is not connected");
      return this.#upstream;
    };
    const t = { timeout: this.#c.timeoutMs };
    if (caps.resources !== undefined) {
      s.setRequestHandler(ListResourcesRequestSchema, async (req) => client().client.listResources(req.params, t));
      s.setRequestHandler(ListResourceTemplatesRequestSchema, async (req) => client().client.listResourceTemplates(req.params, t));
      s.setRequestHandler(ReadResourceRequestSchema, async (req) => {
        const masker = await this.#judgeOrThrow("resources/read", `resource:${req.params.uri}`, { uri: req.params.uri });
        const r = await client().client.readResource(req.params, t);
        return this.#deliver(masker, masker.readResource(r));
      });
    } else {
      s.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: [] }));
    }
    if (caps.prompts !== undefined) {
      s.setRequestHandler(ListPromptsRequestSchema, async (req) => client().client.listPrompts(req.params, t));
      s.setRequestHandler(GetPromptRequestSchema, async (req) => {
        const masker = await this.#judgeOrThrow("prompts/get", `prompt:${req.params.name}`, { name: req.params.name, arguments: req.params.arguments ?? {} });
        const r = await client().client.getPrompt(req.params, t);
        return this.#deliver(masker, masker.getPrompt(r));
      });
    } else {
      s.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: [] }));
    }
  }

  #event(method: McpCallMethod, tool: string, args: Readonly<Record<string, unknown>>): McpCallEvent {
    const text = method === "tools/call" ? mcpCallText(tool, args) : `${method} ${mcpCallText(tool, args)}`;
    this.#bytesFromClient += text.length;
    return { type: "mcp.call", session: this.#gate.info, seq: ++this.#seq, method, tool, arguments: args, text };
  }

  #masker(decision: Decision): ContentMasker {
    const rules = decision.type === "allow" ? (decision.plan?.masks ?? []) : [];
    return new ContentMasker(rules, this.#d.maskerFor, this.#upstream?.secrets ?? []);
  }

  /** Record what the agent received (masked), with counts; never values in the audit log. */
  #deliver<T extends Record<string, unknown>>(masker: ContentMasker, result: T, started = Date.now()): T {
    const text = JSON.stringify(result);
    this.#bytesToClient += text.length;
    this.#gate.observe({
      type: "db.result",
      session: this.#gate.info,
      seq: this.#seq,
      kind: "simple",
      rowCount: 1,
      columns: ["result"],
      rows: [[text.length > MAX_RECORDED_CHARS ? text.slice(0, MAX_RECORDED_CHARS) : text]],
      ...(text.length > MAX_RECORDED_CHARS ? { rowsTruncated: true } : {}),
      durationMs: Date.now() - started,
      ...(Object.keys(masker.counts).length === 0 ? {} : { masked: masker.counts }),
    });
    return result;
  }

  /** Resources and prompts: judged; a refusal is a protocol error (they have no tool result to carry it). */
  async #judgeOrThrow(method: "resources/read" | "prompts/get", name: string, args: Readonly<Record<string, unknown>>): Promise<ContentMasker> {
    const d = await this.#gate.judge(this.#event(method, name, args));
    if (d.type === "deny") throw new McpError(ErrorCode.InvalidRequest, `airlock: ${d.message}`);
    return this.#masker(d);
  }

  async #visibleTools(): Promise<Tool[]> {
    const up = this.#upstream;
    if (up === undefined) return [];
    const tools = await listAllTools(up.client, this.#c.timeoutMs);
    const states = await this.#d.pins.states(this.#c, tools);
    const next = new Map<string, { tool: Tool; pin: ToolPinView }>();
    tools.forEach((tool, i) => {
      const pin = states[i];
      if (pin !== undefined) next.set(tool.name, { tool, pin });
    });
    this.#tools = next;
    const out: Tool[] = [];
    for (const { tool, pin } of next.values()) {
      if (pin.state !== "pinned" || tool.name === WAIT_TOOL) continue;
      // A tool every call of which a policy refuses (a `tools` match without argument
      // predicates) is not shown: the model would only be refused.
      const v = await this.#preview(tool.name);
      if (v) out.push(tool);
    }
    return out;
  }

  /** Would a call with no arguments be refused outright? (a dry run: no limits spent, nothing audited) */
  async #preview(tool: string): Promise<boolean> {
    const v = await this.#d.preview(this.#gate.info, { type: "mcp.call", session: this.#gate.info, seq: 0, method: "tools/call", tool, arguments: {}, text: mcpCallText(tool, {}), preview: true, listing: true });
    return !(v.type === "deny" && v.code !== "GW_LIMIT");
  }

  async #pinState(name: string): Promise<ToolPinView | undefined> {
    if (!this.#tools.has(name)) await this.#visibleTools();
    const known = this.#tools.get(name);
    if (known === undefined) return undefined;
    // The pins may have been accepted since this session listed: ask again for this tool.
    if (known.pin.state !== "pinned") {
      const [fresh] = await this.#d.pins.states(this.#c, [known.tool]);
      return fresh;
    }
    return known.pin;
  }

  async #callTool(name: string, args: Readonly<Record<string, unknown>>, signal: AbortSignal): Promise<CallToolResult> {
    const pin = await this.#pinState(name);
    const unpinned = pin === undefined ? ("unknown" as const) : pin.state === "pinned" ? undefined : pin.state;
    // A tool that is not as approved is refused by the policy evaluator (judged, audited, recorded).
    const event = { ...this.#event("tools/call", name, args), ...(unpinned === undefined ? {} : { unpinned }) };
    let noticed: (n: HoldNotice) => void = () => undefined;
    const held = new Promise<HoldNotice>((r) => (noticed = r));
    const decided = this.#gate.judge(event, { onHold: (n) => noticed(n) });
    const first = await Promise.race([decided.then((d) => ({ kind: "decided" as const, d })), held.then((n) => ({ kind: "held" as const, n }))]);
    if (first.kind === "held") {
      const result = decided.then((d) => (d.type === "allow" ? this.#forward(name, args, d) : toToolResult(this.#denied(d))));
      result.catch(() => undefined);
      return toToolResult(await this.#pendingEnvelope(first.n.approvalId, { result }));
    }
    const d = first.d;
    if (d.type === "deny") {
      if (d.pending !== undefined) {
        // Async approval: refused now; the identical call, once approved, runs once.
        return toToolResult(await this.#pendingEnvelope(d.pending.approvalId, { rerun: () => this.#callTool(name, args, new AbortController().signal) }));
      }
      return toToolResult(this.#denied(d));
    }
    return this.#forward(name, args, d, signal);
  }

  async #forward(name: string, args: Readonly<Record<string, unknown>>, d: Decision, signal?: AbortSignal): Promise<CallToolResult> {
    const masker = this.#masker(d);
    const started = Date.now();
    const up = this.#upstream;
    if (up === undefined) return toToolResult({ status: "failed", connection: this.#c.name, code: "GW_UPSTREAM_UNAVAILABLE", message: "the upstream is not connected" });
    const guard = up.guard();
    try {
      const both = signal === undefined ? guard.signal : AbortSignal.any([signal, guard.signal]);
      const r = await up.client.callTool({ name, arguments: { ...args } }, undefined, { timeout: this.#c.timeoutMs, signal: both });
      return this.#deliver(masker, masker.toolResult(r as Record<string, unknown>), started) as CallToolResult;
    } catch (e) {
      // An answer over the connection's maxMessageBytes: refused unread (upstream.ts), said plainly.
      const limit: unknown = guard.signal.aborted ? guard.signal.reason : undefined;
      if (isGatewayError(limit)) {
        return this.#deliver(masker, toToolResult({ status: "failed", connection: this.#c.name, code: limit.code, message: limit.message }), started);
      }
      // The upstream's protocol error, masked: a failed envelope (a tool result, not an error).
      const raw = e instanceof McpError ? e.message : "the upstream MCP server failed to answer";
      const envelope: Envelope = { status: "failed", connection: this.#c.name, code: e instanceof McpError ? `MCP_${e.code}` : "GW_UPSTREAM_UNAVAILABLE", message: masker.text(raw) };
      return this.#deliver(masker, toToolResult(envelope), started);
    } finally {
      guard.release();
    }
  }

  #denied(d: Extract<Decision, { type: "deny" }>): Envelope {
    const fix =
      d.code === "GW_LIMIT"
        ? "wait until the window has room again, or ask an admin to raise the connection's rateLimits"
        : d.rule === "tool-pinning"
          ? "use another tool, or ask an admin to review and accept the tool (airlock mcp pin)"
          : fixFor(d.code, d.rule);
    return { status: "denied", connection: this.#c.name, code: d.code, ...(d.rule === undefined ? {} : { rule: d.rule }), message: d.message, fix };
  }

  async #pendingEnvelope(approvalId: string, entry: { result?: Promise<CallToolResult>; rerun?: () => Promise<CallToolResult> }): Promise<Envelope> {
    const info = await this.#d.approvals.get(approvalId).catch(() => undefined);
    if (this.#pending.size >= MAX_PENDING) {
      const oldest = this.#pending.keys().next();
      if (oldest.done !== true) this.#pending.delete(oldest.value);
    }
    this.#pending.set(approvalId, { principalId: this.#gate.info.principal.id, expiresAt: (info?.expiresAt.getTime() ?? Date.now() + 3_600_000) + 600_000, ...entry });
    return {
      status: "pending_approval",
      connection: this.#c.name,
      approvalId,
      approvers: info?.approvers ?? [],
      ...(info === undefined ? {} : { expiresAt: info.expiresAt.toISOString() }),
      message: `the call waits for approval (${approvalId}): call ${WAIT_TOOL} with this id`,
      wait: { tool: WAIT_TOOL, arguments: { id: approvalId } },
    };
  }

  async #wait(args: Readonly<Record<string, unknown>>, signal: AbortSignal): Promise<CallToolResult> {
    const id = typeof args["id"] === "string" ? args["id"] : "";
    const secs = typeof args["timeoutSeconds"] === "number" && Number.isFinite(args["timeoutSeconds"]) ? Math.min(Math.max(1, Math.floor(args["timeoutSeconds"])), MAX_WAIT_SECONDS) : 30;
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.principalId !== this.#gate.info.principal.id || pending.expiresAt < Date.now()) {
      return toToolResult({ status: "failed", code: "GW_NOT_FOUND", message: `no held call ${id} in this session` });
    }
    if (pending.delivered !== undefined) return pending.delivered;
    const still = async (): Promise<CallToolResult> => toToolResult({ ...(await this.#pendingEnvelope(id, pending)), message: `still pending: call ${WAIT_TOOL} again` });
    const deadline = Date.now() + secs * 1000;
    if (pending.result !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), secs * 1000);
        signal.addEventListener("abort", () => r(undefined), { once: true });
      });
      const r = await Promise.race([pending.result, timeout]);
      clearTimeout(timer);
      if (r === undefined) return still();
      pending.delivered = r;
      return r;
    }
    for (;;) {
      const info = await this.#d.approvals.get(id);
      if (info === undefined) return toToolResult({ status: "failed", code: "GW_NOT_FOUND", message: `no approval request ${id}` });
      if (info.status === "approved" && pending.rerun !== undefined) {
        const r = await pending.rerun();
        pending.delivered = r;
        return r;
      }
      if (info.status !== "pending") {
        return toToolResult({ status: "denied", connection: this.#c.name, code: "GW_POLICY_DENIED", message: `approval ${id} was ${info.status}${info.decisionReason === undefined ? "" : `: ${info.decisionReason}`}`, fix: "change the call, or ask an approver" });
      }
      if (Date.now() >= deadline || signal.aborted) return still();
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
    }
  }

  /** The upstream asks the agent's side for sampling or elicitation: judged, then relayed or refused. */
  async #relay(method: "sampling/createMessage" | "elicitation/create", params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const d = await this.#gate.judge(this.#event(method, method, params));
    if (d.type === "deny") throw new McpError(ErrorCode.InvalidRequest, `airlock: ${d.message}`);
    const agent = this.mcp.server;
    const caps = agent.getClientCapabilities();
    if (method === "sampling/createMessage") {
      if (caps?.sampling === undefined) throw new McpError(ErrorCode.InvalidRequest, "airlock: the agent's client does not support sampling");
      return await agent.createMessage(params as never, { timeout: this.#c.timeoutMs });
    }
    if (caps?.elicitation === undefined) throw new McpError(ErrorCode.InvalidRequest, "airlock: the agent's client does not support elicitation");
    return await agent.elicitInput(params as never, { timeout: this.#c.timeoutMs });
  }
}

const WAIT_TOOL_DEF: Tool = {
  name: WAIT_TOOL,
  description: `Airlock: wait (at most timeoutSeconds, default 30, max ${MAX_WAIT_SECONDS}) for a person to decide a held tool call; once approved, returns the call's own result.`,
  inputSchema: {
    type: "object",
    properties: { id: { type: "string", maxLength: 100 }, timeoutSeconds: { type: "integer", minimum: 1, maximum: MAX_WAIT_SECONDS } },
    required: ["id"],
  },
};

