/**
 * The aggregated MCP gateway endpoint (issue 16): every `mcp` connection the caller may use behind
 * one MCP session, tool names prefixed `CONNECTION__tool` (MCP clients accept tool names matching
 * `^[a-zA-Z0-9_-]{1,64}$`). Each connection is a gateway session of its own, opened by
 * McpGatewayService.open and linked in memory, so judging, pinning, masking, recording and rate
 * limits are exactly those of `/mcp/CONNECTION`; this file only routes tools/list and tools/call.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type Tool } from "@modelcontextprotocol/sdk/types.js";
import type { Principal } from "../../../core/principal.js";
import { toToolResult } from "../envelope.js";
import type { McpGatewayService } from "./service.js";

export const TOOL_SEPARATOR = "__";
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** A call waits at most this long for its member (wait_approval's own bound is shorter). */
const CALL_TIMEOUT_MS = 10 * 60_000;

interface Member {
  readonly connection: string;
  readonly client: Client;
  close(): Promise<void>;
}

export interface AggregateHandle {
  readonly server: McpServer;
  /** Aborts when the gateway ends any member session (revocation, expiry, shutdown). */
  readonly signal: AbortSignal;
  /** Connections that could not be opened, and why (listed in the server's instructions). */
  readonly skipped: readonly { readonly connection: string; readonly message: string }[];
  close(): Promise<void>;
}

/** The prefixed name, or undefined when it would not be a valid MCP tool name. */
export function prefixed(connection: string, tool: string): string | undefined {
  const name = `${connection}${TOOL_SEPARATOR}${tool}`;
  return TOOL_NAME.test(name) ? name : undefined;
}

export async function openAggregate(service: McpGatewayService, principal: Principal, clientAddress: string, version: string): Promise<AggregateHandle> {
  const members: Member[] = [];
  const skipped: { connection: string; message: string }[] = [];
  const ended = new AbortController();
  for (const connection of service.connectionsFor(principal)) {
    const opened = await service.open(principal, connection, clientAddress, { "mcp.aggregate": "true" });
    if (!opened.ok) {
      skipped.push({ connection, message: opened.message });
      continue;
    }
    const h = opened.handle;
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await h.mcp.connect(serverSide);
    const client = new Client({ name: "airlock-aggregate", version });
    await client.connect(clientSide);
    h.signal.addEventListener("abort", () => ended.abort(h.signal.reason), { once: true });
    members.push({ connection, client, close: async () => { await client.close().catch(() => undefined); await h.close(); } });
  }
  // Longest connection name first: `a__b` is tried before `a` for `a__b__tool`.
  const byPrefix = [...members].sort((x, y) => y.connection.length - x.connection.length);
  const route = (name: string): { member: Member; tool: string } | undefined => {
    for (const m of byPrefix) if (name.startsWith(`${m.connection}${TOOL_SEPARATOR}`)) return { member: m, tool: name.slice(m.connection.length + TOOL_SEPARATOR.length) };
    return undefined;
  };

  const instructions =
    `Airlock: the MCP servers you may use through this gateway, tools named CONNECTION${TOOL_SEPARATOR}TOOL: ${members.map((m) => m.connection).join(", ") || "none"}.` +
    (skipped.length === 0 ? "" : ` Not available now: ${skipped.map((s) => `${s.connection} (${s.message})`).join("; ")}.`);
  const server = new McpServer({ name: "airlock-gateway", version }, { capabilities: { tools: {} }, instructions });
  // Low-level handlers: the tool list is the members', renamed, not tools registered here.
  server.server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools: Tool[] = [];
    for (const m of members) {
      const listed = await m.client.listTools().catch(() => ({ tools: [] as Tool[] }));
      for (const t of listed.tools) {
        const name = prefixed(m.connection, t.name);
        if (name !== undefined) tools.push({ ...t, name, description: `[${m.connection}] ${t.description ?? ""}`.trimEnd() });
      }
    }
    return { tools };
  });
  server.server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const r = route(req.params.name);
    if (r === undefined) {
      return toToolResult({ status: "failed", code: "GW_NOT_FOUND", message: `unknown tool "${req.params.name.slice(0, 100)}": tools are named CONNECTION${TOOL_SEPARATOR}TOOL (tools/list)` });
    }
    return (await r.member.client.callTool({ name: r.tool, arguments: req.params.arguments ?? {} }, undefined, { timeout: CALL_TIMEOUT_MS, signal: extra.signal })) as CallToolResult;
  });
  return {
    server,
    signal: ended.signal,
    skipped,
    close: async () => {
      await server.close().catch(() => undefined);
      await Promise.all(members.map((m) => m.close()));
    },
  };
}
