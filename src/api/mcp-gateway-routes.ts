/**
 * The MCP gateway's endpoints on the API listener (issue 16, gateway half):
 * - `POST|GET|DELETE /mcp/CONNECTION`: an upstream MCP server through the gateway, by
 *   Streamable HTTP (MCP 2025-06-18), with the same bearer authorization as `/mcp` (an Airlock
 *   token or a trusted issuer's JWT; 401 names the protected resource metadata). Each MCP
 *   session is a gateway session of the principal that initialized it (protocols/mcp/gateway).
 * - `GET /v1/mcp/CONNECTION/pins` (admin): the upstream's tools and their pin states;
 *   `POST /v1/mcp/CONNECTION/pins` (admin), body `{ tools?: [names] }`: pin them as they are now
 *   (accepting changes), audited.
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { AuditLog } from "../audit/types.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { TokenService } from "../identity/tokens.js";
import { McpGatewayError, type GatewaySessionHandle, type McpGatewayService } from "../protocols/mcp/gateway/service.js";
import { openAggregate } from "../protocols/mcp/gateway/aggregate.js";
import { authenticate, callerOf } from "./auth.js";
import { auditApiAuthFailure } from "./identity-routes.js";
import { parseInput } from "./parse.js";

export interface McpGatewayRoutesDeps {
  readonly service: McpGatewayService;
  readonly publicUrl?: string;
  readonly adminToken: string;
  readonly tokens: Pick<TokenService, "verify">;
  readonly authenticate?: (token: string) => Promise<Principal>;
  readonly auditLog?: Pick<AuditLog, "append">;
  readonly logger: Logger;
}

interface Live {
  readonly transport: StreamableHTTPServerTransport;
  readonly handle: Pick<GatewaySessionHandle, "signal" | "close">;
  readonly principalId: string;
  readonly connection: string;
  lastUsed: number;
}

/** Every mcp connection of the caller behind one session, tools named CONNECTION__tool (protocols/mcp/gateway/aggregate.ts). */
export const AGGREGATE_PATH = "/mcp-gateway";
const MAX_SESSIONS = 1_000;
const MAX_SESSIONS_PER_PRINCIPAL = 50;
const IDLE_MS = 30 * 60_000;

const connectionParam = z.object({ connection: z.string().min(1).max(200) });
const pinBody = z.object({ tools: z.array(z.string().min(1).max(200)).max(5_000).optional() }).optional();

export function registerMcpGatewayRoutes(app: FastifyInstance, deps: McpGatewayRoutesDeps): { close(): Promise<void> } {
  const pub = { config: { airlockAccess: "public" as const } };
  const admin = { config: { airlockAccess: "admin" as const } };
  const sessions = new Map<string, Live>();

  const base = (request: FastifyRequest): string => (deps.publicUrl !== undefined ? deps.publicUrl.replace(/\/+$/, "") : `${request.protocol}://${request.host}`);
  const refuse = (request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string, connection?: string): FastifyReply => {
    // RFC 9728 §5.1: the metadata of this very resource (/mcp/CONNECTION), path-suffixed (mcp-routes.ts).
    const resource = connection === undefined ? "/mcp" : `/mcp/${encodeURIComponent(connection)}`;
    if (status === 401) void reply.header("www-authenticate", `Bearer resource_metadata="${base(request)}/.well-known/oauth-protected-resource${resource}"`);
    return reply.code(status).type("application/json; charset=utf-8").send({ error: { code, message } });
  };
  const end = (id: string): void => {
    const s = sessions.get(id);
    if (s === undefined) return;
    sessions.delete(id);
    void s.transport.close().catch(() => undefined);
    void s.handle.close().catch((e: unknown) => deps.logger.error({ err: e }, "could not end an MCP gateway session"));
  };
  const sweep = (): void => {
    const now = Date.now();
    for (const [id, s] of sessions) if (now - s.lastUsed > IDLE_MS || s.handle.signal.aborted) end(id);
  };
  const timer = setInterval(sweep, 60_000);
  timer.unref();

  const handle = (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const { connection } = parseInput(connectionParam, request.params, "connection");
    return serve(request, reply, connection);
  };
  /** `connection` undefined: the aggregated endpoint (every mcp connection of the caller, aggregate.ts). */
  const serve = async (request: FastifyRequest, reply: FastifyReply, connection: string | undefined): Promise<FastifyReply | undefined> => {
    const path = connection === undefined ? AGGREGATE_PATH : `/mcp/${connection}`;
    const key = connection ?? "";
    let principal: Principal;
    try {
      principal = await authenticate(request.headers.authorization, deps);
    } catch (e) {
      await auditApiAuthFailure(deps, request, e);
      const ge = isGatewayError(e) ? e : new GatewayError("GW_AUTH_INVALID", "invalid token");
      return refuse(request, reply, 401, ge.code.startsWith("GW_AUTH_") ? ge.code : "GW_AUTH_INVALID", ge.code.startsWith("GW_AUTH_") ? ge.message : "invalid token", connection);
    }
    if (principal.kind === "admin") return refuse(request, reply, 403, "GW_FORBIDDEN", "the admin credential cannot use MCP tools: use a service account's token or a login");
    const sid = request.headers["mcp-session-id"];
    let live: Live | undefined;
    if (typeof sid === "string") {
      live = sessions.get(sid);
      if (live !== undefined && live.handle.signal.aborted) {
        end(sid);
        live = undefined;
      }
      if (live === undefined || live.principalId !== principal.id || live.connection !== key) return refuse(request, reply, 404, "GW_NOT_FOUND", "unknown MCP session: initialize a new one");
      live.lastUsed = Date.now();
    } else if (request.method === "POST" && isInitializeRequest(request.body)) {
      if (connection !== undefined && !deps.service.isGatewayConnection(connection)) return refuse(request, reply, 404, "GW_UNKNOWN_CONNECTION", `unknown MCP connection "${connection}"`);
      sweep();
      const mine = [...sessions.values()].filter((s) => s.principalId === principal.id).length;
      if (sessions.size >= MAX_SESSIONS || mine >= MAX_SESSIONS_PER_PRINCIPAL) {
        return refuse(request, reply, 429, "GW_LIMIT", `too many MCP sessions: close some (DELETE ${path}) or wait for idle ones to end`);
      }
      const address = `${request.ip}:${request.socket.remotePort ?? 0}`;
      let h: Pick<GatewaySessionHandle, "signal" | "close">;
      let server: { connect(t: StreamableHTTPServerTransport): Promise<void> };
      if (connection === undefined) {
        const agg = await openAggregate(deps.service, principal, address, "0.1.0");
        h = agg;
        server = agg.server;
      } else {
        const opened = await deps.service.open(principal, connection, address, {});
        if (!opened.ok) return refuse(request, reply, opened.status, opened.code, opened.message);
        h = opened.handle;
        server = opened.handle.mcp;
      }
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, handle: h, principalId: principal.id, connection: key, lastUsed: Date.now() });
        },
      });
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
        void h.close().catch(() => undefined);
      };
      // The gateway ended the session (revocation, expiry, shutdown): the MCP session ends too.
      h.signal.addEventListener("abort", () => void transport.close().catch(() => undefined), { once: true });
      await server.connect(transport);
      live = { transport, handle: h, principalId: principal.id, connection: key, lastUsed: Date.now() };
    } else {
      return refuse(request, reply, 400, "GW_BAD_REQUEST", `no MCP session: send an initialize request to ${path} first (without Mcp-Session-Id)`);
    }
    reply.hijack();
    try {
      await live.transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (e) {
      deps.logger.error({ err: e }, "MCP gateway request failed");
      if (!reply.raw.headersSent) reply.raw.writeHead(500, { "content-type": "application/json" }).end('{"error":{"code":"GW_INTERNAL","message":"internal gateway error"}}');
    }
    return undefined;
  };
  app.post("/mcp/:connection", pub, handle);
  app.get("/mcp/:connection", pub, handle);
  app.delete("/mcp/:connection", pub, handle);
  const aggregate = (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => serve(request, reply, undefined);
  app.post(AGGREGATE_PATH, pub, aggregate);
  app.get(AGGREGATE_PATH, pub, aggregate);
  app.delete(AGGREGATE_PATH, pub, aggregate);

  const pinError = (e: unknown): never => {
    if (e instanceof McpGatewayError) throw new GatewayError("GW_NOT_FOUND", e.message);
    if (isGatewayError(e)) throw e;
    throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the upstream MCP server could not be reached", { cause: e });
  };
  app.get("/v1/mcp/:connection/pins", admin, async (request) => {
    const { connection } = parseInput(connectionParam, request.params, "connection");
    const tools = await deps.service.pinReport(connection).catch(pinError);
    return { connection, tools };
  });
  app.post("/v1/mcp/:connection/pins", admin, async (request) => {
    const { connection } = parseInput(connectionParam, request.params, "connection");
    const body = parseInput(pinBody, request.body, "body");
    const tools = await deps.service.pin(connection, callerOf(request).principal.id, body?.tools).catch(pinError);
    return { connection, tools };
  });

  return {
    close() {
      clearInterval(timer);
      for (const id of [...sessions.keys()]) end(id);
      return Promise.resolve();
    },
  };
}
