/**
 * `airlock mcp [--connection NAME…]`: an MCP server on stdio for agents that spawn their tools.
 * It is a thin bridge: every JSON-RPC message from stdin goes to the gateway's Streamable HTTP
 * endpoint (`/mcp`) with the caller's bearer (AIRLOCK_TOKEN, or the token `airlock login`
 * saved), and every answer comes back on stdout. It holds no target secret and decides nothing:
 * tools, judging, holds and masking are the gateway's. `--connection` narrows the tools to those
 * connections (the gateway never widens it beyond the caller's groups).
 */
import type { Readable, Writable } from "node:stream";
import type { Command } from "commander";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { isInitializeRequest, isJSONRPCRequest, isJSONRPCResultResponse, type JSONRPCMessage, type JSONRPCRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { ApiClient } from "./client.js";
import { sanitizeInline, table } from "./format.js";
import { CliError } from "./errors.js";
import { ADMIN_TOKEN_PREFIX } from "../identity/admin.js";

export interface McpCommandIo {
  readonly stdin?: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** Run the bridge until stdin ends or the gateway session is gone. */
export async function runMcpBridge(client: ApiClient, connections: readonly string[], io: McpCommandIo): Promise<void> {
  const token = await client.credential();
  if (token.startsWith(ADMIN_TOKEN_PREFIX)) throw new CliError("airlock mcp needs an access token (AIRLOCK_TOKEN or airlock login), not the admin credential", 2);
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (connections.length > 0) headers["x-airlock-connections"] = connections.join(",");
  const upstream = new StreamableHTTPClientTransport(new URL("mcp", client.baseUrl), { requestInit: { headers } });
  const local = new StdioServerTransport(io.stdin ?? process.stdin, io.stdout);
  const initIds = new Set<string | number>();
  const say = (line: string): void => void io.stderr.write(`airlock mcp: ${line}\n`);

  await new Promise<void>((resolve) => {
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      void upstream.close().catch(() => undefined);
      void local.close().catch(() => undefined);
      resolve();
    };
    local.onmessage = (m: JSONRPCMessage) => {
      if (isInitializeRequest(m)) initIds.add((m as JSONRPCRequest).id);
      upstream.send(m).catch((e: unknown) => {
        // The gateway refused (401, 404 …) or is unreachable: answer the request on stdio, so the
        // agent's client shows the reason instead of hanging.
        const why = e instanceof Error ? e.message.replace(/Bearer [^\s"]+/g, "Bearer …") : "the gateway could not be reached";
        say(why);
        if (isJSONRPCRequest(m)) void local.send({ jsonrpc: "2.0", id: m.id, error: { code: -32001, message: `airlock: ${why}` } });
      });
    };
    upstream.onmessage = (m: JSONRPCMessage) => {
      if (isJSONRPCResultResponse(m) && initIds.has(m.id)) {
        initIds.delete(m.id);
        const v = m.result["protocolVersion"];
        if (typeof v === "string") upstream.setProtocolVersion(v);
      }
      void local.send(m);
    };
    upstream.onerror = (e: Error) => say(e.message.replace(/Bearer [^\s"]+/g, "Bearer …"));
    local.onclose = close;
    upstream.onclose = close;
    void upstream.start().then(() => local.start());
  });
}

const pinAnswer = z.object({
  connection: z.string(),
  tools: z.array(z.object({ name: z.string(), fingerprint: z.string(), state: z.enum(["pinned", "changed", "new"]) })),
});

/** The upstream's tools and their pin states, one per line (`state name fingerprint`). */
function pinLines(a: z.infer<typeof pinAnswer>): string {
  const rows = a.tools.map((t) => [t.state, sanitizeInline(t.name), t.fingerprint.slice(0, 16)]);
  return [...table(["STATE", "TOOL", "FINGERPRINT"], rows), ""].join("\n");
}

export function registerMcpCommand(program: Command, connectFor: (opts: { api?: string; config?: string }) => ApiClient, io: McpCommandIo): void {
  const mcp = program.command("mcp");
  const apiOptions = (c: Command): Command =>
    c
      .option("--api <url>", "gateway API address (default: AIRLOCK_API, listen.api of the config, http://127.0.0.1:8780)")
      .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml)")
      .option("--json", "print JSON");
  // Tool pinning of an upstream MCP server (type: mcp connections), as admin.
  apiOptions(mcp.command("pins").description("an upstream MCP server's tools and their pin states (pinned, changed, new)").argument("<connection>", "an mcp connection")).action(
    async (connection: string, _opts: unknown, command: Command) => {
      // `--api`/`--config` are the parent's options too (the bridge's): read them from either.
      const opts = command.optsWithGlobals<{ api?: string; config?: string; json?: boolean }>();
      const a = await connectFor(opts).request("GET", `/v1/mcp/${encodeURIComponent(connection)}/pins`, pinAnswer);
      io.stdout.write(opts.json === true ? `${JSON.stringify(a, null, 2)}\n` : pinLines(a));
    },
  );
  apiOptions(
    mcp
      .command("pin")
      .description("approve an upstream MCP server's tools as they are now (first approval, or accepting changed tools)")
      .argument("<connection>", "an mcp connection")
      .option("--tool <name...>", "only these tools (default: all)"),
  ).action(async (connection: string, _opts: unknown, command: Command) => {
    const opts = command.optsWithGlobals<{ api?: string; config?: string; json?: boolean; tool?: string[] }>();
    const a = await connectFor(opts).request("POST", `/v1/mcp/${encodeURIComponent(connection)}/pins`, pinAnswer, opts.tool === undefined ? {} : { tools: opts.tool });
    io.stdout.write(opts.json === true ? `${JSON.stringify(a, null, 2)}\n` : pinLines(a));
  });
  mcp
    .description("an MCP server on stdio, talking to a running gateway's /mcp (needs AIRLOCK_TOKEN or airlock login)")
    .option("--connection <name...>", "only these connections' tools (repeatable)")
    .option("--api <url>", "gateway API address (default: AIRLOCK_API, listen.api of the config, http://127.0.0.1:8780)")
    .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml)")
    .action(async (opts: { connection?: string[]; api?: string; config?: string }) => {
      await runMcpBridge(connectFor(opts), opts.connection ?? [], io);
    });
}
