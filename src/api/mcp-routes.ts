/**
 * MCP over Streamable HTTP on the API listener (issue 16; MCP 2025-06-18 "Transports ›
 * Streamable HTTP" and "Authorization"):
 * - `POST|GET|DELETE /mcp`: Airlock's own tools (protocols/mcp/server.ts). Every request carries
 *   `Authorization: Bearer` — an Airlock token, or a JWT from a trusted issuer (the API's own
 *   authenticator). Without a valid one: 401 with `WWW-Authenticate: Bearer resource_metadata=…`
 *   (RFC 9728 §5.1), so an MCP client can discover the authorization server.
 * - `GET /.well-known/oauth-protected-resource[/mcp[/CONNECTION]]`: the protected resource metadata (RFC 9728
 *   §3), naming the configured OIDC issuers as authorization servers.
 *
 * An MCP session belongs to the principal that initialized it: a request of another principal
 * for that session id is refused. Sessions are capped and end after idling.
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { AuditLog } from "../audit/types.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { McpService } from "../protocols/mcp/server.js";
import { authenticate } from "./auth.js";
import type { TokenService } from "../identity/tokens.js";
import { auditApiAuthFailure } from "./identity-routes.js";
import { parseInput } from "./parse.js";
import { z } from "zod";

const connectionParam = z.object({ connection: z.string().min(1).max(200) });

export interface McpRoutesDeps {
  readonly service: McpService;
  /** Trusted issuers' URLs: the authorization servers of the protected resource metadata. */
  readonly issuers: readonly string[];
  /** The gateway's public base URL when configured (else from the request's Host). */
  readonly publicUrl?: string;
  readonly adminToken: string;
  readonly tokens: Pick<TokenService, "verify">;
  readonly authenticate?: (token: string) => Promise<Principal>;
  readonly auditLog?: Pick<AuditLog, "append">;
  readonly logger: Logger;
}

interface LiveMcpSession {
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  readonly principalId: string;
  /** The caller the tools act for; its bearer follows the newest request (a refreshed token). */
  readonly caller: { readonly principal: Principal; bearer: string; readonly only?: readonly string[] };
  lastUsed: number;
}

const MAX_SESSIONS = 1_000;
const MAX_SESSIONS_PER_PRINCIPAL = 50;
const IDLE_MS = 30 * 60_000;
const CONNECTIONS_HEADER = "x-airlock-connections";

function baseUrl(request: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl !== undefined) return publicUrl.replace(/\/+$/, "");
  return `${request.protocol}://${request.host}`;
}

function bearerOf(header: string | undefined): string {
  const m = header === undefined ? null : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return m?.[1] ?? "";
}

function onlyOf(request: FastifyRequest): readonly string[] | undefined {
  const h = request.headers[CONNECTIONS_HEADER];
  if (typeof h !== "string" || h.trim() === "") return undefined;
  return h
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && s.length <= 200)
    .slice(0, 200);
}

export function registerMcpRoutes(app: FastifyInstance, deps: McpRoutesDeps): { close(): Promise<void> } {
  const pub = { config: { airlockAccess: "public" as const } };
  const sessions = new Map<string, LiveMcpSession>();

  const metadataUrl = (request: FastifyRequest): string => `${baseUrl(request, deps.publicUrl)}/.well-known/oauth-protected-resource/mcp`;
  const metadata = (request: FastifyRequest): Record<string, unknown> => ({
    resource: `${baseUrl(request, deps.publicUrl)}/mcp`,
    authorization_servers: deps.issuers,
    bearer_methods_supported: ["header"],
    resource_name: "Airlock",
    resource_documentation: "https://github.com/airlock (README: MCP)",
  });
  app.get("/.well-known/oauth-protected-resource", pub, (request) => Promise.resolve(metadata(request)));
  app.get("/.well-known/oauth-protected-resource/mcp", pub, (request) => Promise.resolve(metadata(request)));
  // RFC 9728 §3.1: the metadata of the resource `/mcp/CONNECTION` (an upstream MCP server through
  // the gateway, mcp-gateway-routes.ts) at the well-known path suffixed with the resource's path.
  app.get("/.well-known/oauth-protected-resource/mcp/:connection", pub, (request) => {
    const { connection } = parseInput(connectionParam, request.params, "connection");
    return Promise.resolve({ ...metadata(request), resource: `${baseUrl(request, deps.publicUrl)}/mcp/${encodeURIComponent(connection)}` });
  });

  const refuse = (request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string): FastifyReply => {
    if (status === 401) void reply.header("www-authenticate", `Bearer resource_metadata="${metadataUrl(request)}"`);
    return reply.code(status).type("application/json; charset=utf-8").send({ error: { code, message } });
  };

  const sweep = (): void => {
    const now = Date.now();
    for (const [id, s] of sessions) {
      if (now - s.lastUsed > IDLE_MS) {
        sessions.delete(id);
        void s.transport.close().catch(() => undefined);
      }
    }
  };
  const timer = setInterval(sweep, 60_000);
  timer.unref();

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    let principal: Principal;
    try {
      principal = await authenticate(request.headers.authorization, deps);
    } catch (e) {
      await auditApiAuthFailure(deps, request, e);
      const ge = isGatewayError(e) ? e : new GatewayError("GW_AUTH_INVALID", "invalid token");
      return refuse(request, reply, 401, ge.code.startsWith("GW_AUTH_") ? ge.code : "GW_AUTH_INVALID", ge.code.startsWith("GW_AUTH_") ? ge.message : "invalid token");
    }
    if (principal.kind === "admin") {
      // The admin credential configures the gateway; it has no groups and reaches no connection.
      return refuse(request, reply, 403, "GW_FORBIDDEN", "the admin credential cannot use MCP tools: use a service account's token or a login");
    }
    const bearer = bearerOf(request.headers.authorization);
    const sid = request.headers["mcp-session-id"];
    let live: LiveMcpSession | undefined;
    if (typeof sid === "string") {
      live = sessions.get(sid);
      // MCP 2025-06-18 Streamable HTTP, Session Management: an unknown session id is answered 404.
      if (live === undefined || live.principalId !== principal.id) return refuse(request, reply, 404, "GW_NOT_FOUND", "unknown MCP session: initialize a new one");
      live.caller.bearer = bearer;
      live.lastUsed = Date.now();
    } else if (request.method === "POST" && isInitializeRequest(request.body)) {
      sweep();
      const mine = [...sessions.values()].filter((s) => s.principalId === principal.id).length;
      if (sessions.size >= MAX_SESSIONS || mine >= MAX_SESSIONS_PER_PRINCIPAL) {
        return refuse(request, reply, 429, "GW_LIMIT", "too many MCP sessions: close some (DELETE /mcp) or wait for idle ones to end");
      }
      const only = onlyOf(request);
      const caller = { principal, bearer, ...(only === undefined ? {} : { only }) };
      const server = deps.service.serverFor(caller);
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, server, principalId: principal.id, caller, lastUsed: Date.now() });
        },
      });
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      live = { transport, server, principalId: principal.id, caller, lastUsed: Date.now() };
    } else {
      return refuse(request, reply, 400, "GW_BAD_REQUEST", "no MCP session: send an initialize request first (without Mcp-Session-Id)");
    }
    reply.hijack();
    try {
      await live.transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (e) {
      deps.logger.error({ err: e }, "MCP request failed");
      if (!reply.raw.headersSent) reply.raw.writeHead(500, { "content-type": "application/json" }).end('{"error":{"code":"GW_INTERNAL","message":"internal gateway error"}}');
    }
    return undefined;
  };
  app.post("/mcp", pub, handle);
  app.get("/mcp", pub, handle);
  app.delete("/mcp", pub, handle);

  return {
    async close() {
      clearInterval(timer);
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map((s) => s.transport.close().catch(() => undefined)));
    },
  };
}
