/**
 * An upstream MCP server for the MCP gateway tests (issue 16), built with the SDK's McpServer:
 * run on stdio (`node mcp-upstream.mjs`, the way the gateway spawns it) or served over
 * Streamable HTTP in-process (startHttpUpstream). Its `read_file` description is read from
 * DESCRIPTION_FILE at start when given, so a test can change it between runs (tool poisoning).
 * It reports the credential it was given (API_KEY on stdio, the Authorization header on HTTP)
 * through `whoami`, so tests can check that the gateway never hands it to the agent.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

export function buildUpstream(opts) {
  const server = new McpServer({ name: "test-upstream", version: "1.0.0" }, { capabilities: { tools: {}, resources: {}, prompts: {} } });
  server.registerTool(
    "read_file",
    { description: opts.description(), inputSchema: { path: z.string() } },
    async ({ path }) => ({
      content: [{ type: "text", text: `contents of ${path}: write to alice@example.com, card 4111 1111 1111 1111` }],
      structuredContent: { path, owner: { email: "bob@example.com", name: "Bob" } },
    }),
  );
  server.registerTool("delete_file", { description: "Delete a file", inputSchema: { path: z.string() } }, async ({ path }) => ({ content: [{ type: "text", text: `deleted ${path}` }] }));
  server.registerTool("run_shell", { description: "Run a shell command", inputSchema: { command: z.string() } }, async ({ command }) => ({ content: [{ type: "text", text: `ran ${command}` }] }));
  // `big:N` answers N bytes of text (the gateway's cap on upstream messages).
  server.registerTool("search", { description: "Search the index", inputSchema: { query: z.string() } }, async ({ query }) => {
    const big = /^big:(\d+)$/.exec(query);
    return { content: [{ type: "text", text: big === null ? `results for ${query}` : "x".repeat(Number(big[1])) }] };
  });
  server.registerTool("whoami", { description: "Which credential the server was given", inputSchema: {} }, async (_args, extra) => ({
    content: [{ type: "text", text: `credential: ${opts.credential(extra)}` }],
  }));
  server.registerTool("summarize", { description: "Summarize text with the client's model", inputSchema: { text: z.string() } }, async ({ text }) => {
    try {
      const r = await server.server.createMessage({ messages: [{ role: "user", content: { type: "text", text: `summarize: ${text}` } }], maxTokens: 50 });
      return { content: [{ type: "text", text: `summary: ${JSON.stringify(r.content)}` }] };
    } catch (e) {
      return { content: [{ type: "text", text: `sampling failed: ${e instanceof Error ? e.message : String(e)}` }], isError: true };
    }
  });
  server.registerResource("notes", "file:///notes.txt", { mimeType: "text/plain" }, async (uri) => ({
    contents: [{ uri: uri.href, text: "call carol@example.com about the invoice" }],
  }));
  server.registerPrompt("greet", { description: "Greet someone", argsSchema: { who: z.string() } }, ({ who }) => ({
    messages: [{ role: "user", content: { type: "text", text: `Say hello to ${who} at dave@example.com` } }],
  }));
  return server;
}

function descriptionFrom(file) {
  return () => (file === undefined ? "Read a file" : readFileSync(file, "utf8").trim());
}

/**
 * Streamable HTTP on loopback; requests must carry `Authorization: Bearer <token>`, or, with
 * `authorize`, a header that function accepts (e.g. a JWT verified against an OpenID provider).
 */
export async function startHttpUpstream(opts) {
  const transports = new Map();
  const received = [];
  const http = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const authorization = req.headers.authorization ?? "";
        const ok = opts.authorize !== undefined ? await opts.authorize(authorization).catch(() => false) : authorization === `Bearer ${opts.token}`;
        if (!ok) {
          res.writeHead(401, { "content-type": "application/json" }).end('{"error":"unauthorized"}');
          return;
        }
        received.push(req.headers.authorization);
        const body = chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString("utf8"));
        const sid = req.headers["mcp-session-id"];
        let transport = typeof sid === "string" ? transports.get(sid) : undefined;
        if (transport === undefined) {
          if (!(req.method === "POST" && isInitializeRequest(body))) {
            res.writeHead(400).end();
            return;
          }
          transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => transports.set(id, transport) });
          const server = buildUpstream({ description: opts.description, credential: () => req.headers.authorization ?? "" });
          await server.connect(transport);
        }
        await transport.handleRequest(req, res, body);
      })().catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  const port = http.address().port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    received,
    async close() {
      for (const t of transports.values()) await t.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = buildUpstream({ description: descriptionFrom(process.env.DESCRIPTION_FILE), credential: () => process.env.API_KEY ?? "" });
  await server.connect(new StdioServerTransport());
}
