/**
 * The control-plane HTTP API (fastify). JSON in and out; bodies and query strings validated
 * with zod; every error answered as `{ "error": { "code", "message", "rule"? } }` with a status
 * derived from the GatewayError code. Unexpected exceptions are logged and answered with a
 * generic message: their text never reaches the client.
 */
import { parseInput } from "./parse.js";
import type { AddressInfo } from "node:net";
import { sessionRowFromInfo } from "../store/session-row.js";
import { fastify } from "fastify";
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import { auditPrincipal, type AuditLog, type AuditVerifyResult } from "../audit/types.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { ErrorCode } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { SessionInfo } from "../core/session.js";
import type { TokenService } from "../identity/tokens.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import type { LiveSessions } from "../policy/registry.js";
import type { RecordingStore } from "../recording/types.js";
import { parseDuration } from "../runtime/duration.js";
import type { SessionRow, Store, TokenRow } from "../store/types.js";
import { DEFAULT_ROUTE_ACCESS, authenticate, authorize, callerOf, rolesOf, setCaller } from "./auth.js";
import type { Caller, RouteAccess } from "./auth.js";
import type { RolesSettings } from "../identity/config-schema.js";
import { auditApiAuthFailure, registerIdentityRoutes } from "./identity-routes.js";
import { registerSshRoutes, type SshRoutesDeps } from "./ssh-routes.js";
import type { IdentityRoutesDeps } from "./identity-routes.js";
import { registerApprovalRoutes, type ApprovalRoutesDeps } from "./approvals-routes.js";
import { approvalPageDepsFrom, registerApprovalPage } from "./approval-page.js";
import { registerMcpRoutes, type McpRoutesDeps } from "./mcp-routes.js";
import { registerMcpGatewayRoutes, type McpGatewayRoutesDeps } from "./mcp-gateway-routes.js";
import { registerConsoleRoutes, type ConsoleRoutesDeps } from "./console-routes.js";
import { registerConsoleStatic } from "./console-static.js";
import { openApiDocument } from "./openapi.js";
import type { BudgetCounterView } from "../policy/budgets.js";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { AgentView } from "../agent/registry.js";

export interface ApiDeps {
  readonly store: Store;
  readonly tokens: TokenService;
  readonly recordings: RecordingStore;
  readonly audit: { verify(): Promise<AuditVerifyResult> };
  readonly liveSessions: LiveSessions;
  readonly adminToken: string;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /**
   * Optional: where token.create / token.revoke audit records go. When given, a token whose
   * creation cannot be audited is revoked again and the request fails (fail closed).
   */
  readonly auditLog?: Pick<AuditLog, "append">;
  /** The gateway's authenticator (Airlock tokens, then trusted issuers' JWTs); default: Airlock tokens only. */
  readonly authenticate?: (token: string) => Promise<Principal>;
  /** Group → control-plane role mapping (`roles:`). */
  readonly roles?: RolesSettings;
  /** Identity routes (token exchange, OIDC/SAML login, principal revocation): identity-routes.ts. */
  readonly identity?: IdentityRoutesDeps;
  /** Approvals and access requests (approvals-routes.ts). */
  readonly approvals?: ApprovalRoutesDeps;
  /** SSH terminal recordings (ssh-routes.ts). */
  readonly ssh?: SshRoutesDeps;
  /** MCP over Streamable HTTP at /mcp (mcp-routes.ts). */
  readonly mcp?: Pick<McpRoutesDeps, "service" | "issuers" | "publicUrl">;
  /** The MCP gateway at /mcp/CONNECTION and its pin routes (mcp-gateway-routes.ts). */
  readonly mcpGateway?: Pick<McpGatewayRoutesDeps, "service" | "publicUrl">;
  /** The web console (console-routes.ts): its routes, and its cookie accepted in place of a bearer token. */
  readonly console?: ConsoleRoutesDeps;
  /** Budget counters of the current windows (src/policy/budgets.ts). */
  readonly budgets?: { list(filter?: { readonly principalId?: string }): readonly BudgetCounterView[] };
  /** Many gateways on one store (runtime/cluster.ts): readiness, and ending sessions another gateway holds. */
  readonly cluster?: ClusterApiDeps;
  /** Connected network-resident agents (GET /v1/agents; issue 19). */
  readonly agents?: { list(): readonly AgentView[] };
}

export interface ClusterApiDeps {
  readonly instanceId: string;
  /** Ask the gateway holding the session to end it; its instance id, or undefined when no other live gateway holds it. */
  killElsewhere(sessionId: string, by: string): Promise<string | undefined>;
  /** Why this gateway is not ready (starting, draining, store down), or undefined when it is. */
  ready(): string | undefined;
}

export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly access: RouteAccess;
}

export interface ApiServer {
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
  inject: FastifyInstance["inject"];
  /** Every route registered on the server (collected by an onRoute hook), for audits and tests. */
  readonly routes: readonly RegisteredRoute[];
  /** Serve HTTP upgrades (agent tunnels): the handler returns false for a path it does not serve. */
  onUpgrade(handler: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean): void;
}

export const API_BODY_LIMIT = 64 * 1024;

/** HTTP status for a GatewayError code; anything not listed is a server-side failure. */
const CLIENT_ERROR_STATUS: Partial<Readonly<Record<ErrorCode, number>>> = {
  GW_AUTH_MISSING: 401,
  GW_AUTH_INVALID: 401,
  GW_AUTH_EXPIRED: 401,
  GW_AUTH_REVOKED: 401,
  GW_FORBIDDEN: 403,
  GW_ACCESS_DENIED: 403,
  GW_NOT_FOUND: 404,
  GW_BAD_REQUEST: 400,
  GW_CONFLICT: 409,
};

export function statusForCode(code: ErrorCode): number {
  return CLIENT_ERROR_STATUS[code] ?? 500;
}

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly rule?: string };
}

/** fastify's own client errors (bad JSON, body too large, …): our wording, their status. */
function fastifyClientError(e: unknown): { status: number; message: string } | undefined {
  if (typeof e !== "object" || e === null || !("statusCode" in e) || typeof e.statusCode !== "number") return undefined;
  const status = e.statusCode;
  if (status < 400 || status > 499) return undefined;
  // Never echo fastify's message: a JSON parse error quotes the body, which may hold a token.
  const message =
    status === 413 ? `request body too large (limit ${API_BODY_LIMIT} bytes)` : status === 415 ? "unsupported content type (send application/json)" : "invalid request";
  return { status, message };
}

const idParam = z.object({ id: z.string().min(1).max(200) });

const tokenCreateBody = z.strictObject({
  serviceAccount: z.string().min(1).max(200),
  ttl: z.union([z.string().min(1).max(50), z.number().int().positive()]).optional(),
});

const sessionsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).default(0),
  connection: z.string().min(1).max(200).optional(),
  /** W3C trace id (32 hex): sessions an MCP tool call with that trace context opened. */
  trace: z.string().regex(/^[0-9a-fA-F]{32}$/).optional(),
});

/** How many of the newest sessions a trace filter looks through. */
const TRACE_SCAN = 1000;

const auditQuery = z.object({
  afterSeq: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});




function tokenJson(row: TokenRow): Record<string, unknown> {
  return {
    id: row.id,
    principal: { id: row.principalId, kind: row.principalKind, name: row.principalName },
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
    createdBy: row.createdBy,
    revoked: row.revokedAt !== undefined,
    ...(row.revokedAt === undefined ? {} : { revokedAt: row.revokedAt.toISOString() }),
    ...(row.revokedBy === undefined ? {} : { revokedBy: row.revokedBy }),
  };
}

export function sessionJson(row: SessionRow, live: boolean): Record<string, unknown> {
  return {
    id: row.id,
    protocol: row.protocol,
    connection: row.connection,
    principal: { id: row.principalId, kind: row.principalKind, name: row.principalName },
    groups: row.groups,
    ...(row.tokenId === undefined ? {} : { tokenId: row.tokenId }),
    clientAddress: row.clientAddress,
    startedAt: row.startedAt.toISOString(),
    attributes: row.attributes,
    ...(row.endedAt === undefined ? {} : { endedAt: row.endedAt.toISOString() }),
    ...(row.endReason === undefined ? {} : { endReason: row.endReason }),
    ...(row.endDetail === undefined ? {} : { endDetail: row.endDetail }),
    ...(row.statements === undefined ? {} : { statements: row.statements }),
    ...(row.bytesFromClient === undefined ? {} : { bytesFromClient: row.bytesFromClient }),
    ...(row.bytesToClient === undefined ? {} : { bytesToClient: row.bytesToClient }),
    ...(row.instanceId === undefined ? {} : { gateway: row.instanceId }),
    live,
  };
}

/** A live session the store does not know (yet): shown from the registry's facts. */
function rowFromLive(info: SessionInfo): SessionRow {
  return sessionRowFromInfo(info);
}

export async function createApiServer(deps: ApiDeps): Promise<ApiServer> {
  const app = fastify({
    logger: false,
    bodyLimit: API_BODY_LIMIT,
    return503OnClosing: true,
    forceCloseConnections: "idle",
  });
  const routes: RegisteredRoute[] = [];
  app.addHook("onRoute", (opts) => {
    const methods: readonly HTTPMethods[] = Array.isArray(opts.method) ? opts.method : [opts.method];
    for (const method of methods) {
      routes.push({ method, url: opts.url, access: opts.config?.airlockAccess ?? DEFAULT_ROUTE_ACCESS });
    }
  });

  app.addHook("onRequest", async (request) => {
    if (request.is404) return; // answered by the not-found handler; reveals nothing
    const access = request.routeOptions.config.airlockAccess ?? DEFAULT_ROUTE_ACCESS;
    if (access === "public") return;
    let principal: Principal;
    try {
      // The web console's cookie (CSRF-checked for writes), when no bearer credential is sent.
      const fromConsole =
        request.headers.authorization === undefined && deps.console !== undefined ? await deps.console.sessions.authenticateRequest(request, deps.console.origins) : undefined;
      principal = fromConsole ?? (await authenticate(request.headers.authorization, deps));
    } catch (e) {
      await auditApiAuthFailure(deps, request, e);
      throw e;
    }
    const caller = { principal, roles: rolesOf(principal, deps.roles) };
    authorize(caller, access);
    setCaller(request, caller);
  });

  app.addHook("onResponse", async (request, reply) => {
    // Debug only, and never headers: they carry the bearer credential.
    deps.logger.debug(
      { method: request.method, route: request.routeOptions.url ?? "(none)", status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      "api request",
    );
  });

  app.setErrorHandler(async (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    let body: ErrorBody;
    let status: number;
    const clientError = isGatewayError(error) ? undefined : fastifyClientError(error);
    if (isGatewayError(error)) {
      status = statusForCode(error.code);
      if (status === 500) {
        deps.logger.error({ err: error, method: request.method, route: request.routeOptions.url }, "api request failed");
        body = { error: { code: error.code, message: "internal gateway error" } };
      } else {
        body = { error: { code: error.code, message: error.message, ...(error.rule === undefined ? {} : { rule: error.rule }) } };
      }
    } else if (clientError !== undefined) {
      status = clientError.status;
      body = { error: { code: "GW_BAD_REQUEST", message: clientError.message } };
    } else {
      status = 500;
      deps.logger.error({ err: error, method: request.method, route: request.routeOptions.url }, "api request failed");
      body = { error: { code: "GW_INTERNAL", message: "internal gateway error" } };
    }
    if (status === 401) void reply.header("www-authenticate", 'Bearer realm="airlock"');
    return reply.code(status).type("application/json; charset=utf-8").send(body);
  });

  app.setNotFoundHandler(async (request, reply) => {
    return reply.code(404).send({ error: { code: "GW_NOT_FOUND", message: `no route ${request.method} ${request.url.split("?")[0] ?? ""}` } });
  });

  registerRoutes(app, deps);
  // SAML is loaded only when configured (~15 MiB of RSS a gateway without it need not pay).
  if (deps.identity !== undefined) registerIdentityRoutes(app, deps.identity, deps.identity.saml === undefined ? undefined : await import("../identity/saml.js"));
  if (deps.approvals !== undefined) {
    registerApprovalRoutes(app, deps.approvals);
    // The page people reach from notifications (browser login cookie, CSRF-protected form).
    registerApprovalPage(app, approvalPageDepsFrom(deps, deps.approvals.approvals, deps.approvals.publicUrl));
  }
  if (deps.ssh !== undefined) registerSshRoutes(app, deps.ssh);
  const mcp =
    deps.mcp === undefined
      ? undefined
      : registerMcpRoutes(app, {
          ...deps.mcp,
          adminToken: deps.adminToken,
          tokens: deps.tokens,
          ...(deps.authenticate === undefined ? {} : { authenticate: deps.authenticate }),
          ...(deps.auditLog === undefined ? {} : { auditLog: deps.auditLog }),
          logger: deps.logger,
        });
  const mcpGateway =
    deps.mcpGateway === undefined
      ? undefined
      : registerMcpGatewayRoutes(app, {
          ...deps.mcpGateway,
          adminToken: deps.adminToken,
          tokens: deps.tokens,
          ...(deps.authenticate === undefined ? {} : { authenticate: deps.authenticate }),
          ...(deps.auditLog === undefined ? {} : { auditLog: deps.auditLog }),
          logger: deps.logger,
        });
  if (deps.console !== undefined) {
    registerConsoleRoutes(app, deps.console);
    registerConsoleStatic(app);
  }
  app.get("/openapi.json", { config: { airlockAccess: "public" } }, () => Promise.resolve(openApiDocument(routes, "1")));
  await app.ready();

  return {
    routes,
    inject: app.inject.bind(app),
    onUpgrade(handler) {
      app.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!handler(req, socket, head)) socket.destroy();
      });
    },
    async listen(host: string, port: number) {
      await app.listen({ host, port });
      const addr = app.server.address() as AddressInfo;
      return { host: addr.address, port: addr.port };
    },
    async close() {
      await mcp?.close();
      await mcpGateway?.close();
      await app.close();
    },
  };
}

function registerRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const pub = { config: { airlockAccess: "public" as const } };
  const admin = { config: { airlockAccess: "admin" as const } };
  const auditor = { config: { airlockAccess: "auditor" as const } };
  const user = { config: { airlockAccess: "user" as const } };
  /** Admins and auditors see every token; anyone else only their own (others are "not found"). */
  const mayReadToken = (caller: Caller, row: TokenRow, write: boolean): boolean =>
    caller.roles.includes("admin") || (!write && caller.roles.includes("auditor")) || row.principalId === caller.principal.id;

  app.get("/healthz", pub, () => Promise.resolve({ status: "ok" }));
  // Readiness for orchestrators and load balancers: 503 while starting, draining or cut off from the store.
  app.get("/readyz", pub, async (_request, reply) => {
    const why = deps.cluster?.ready();
    if (why === undefined) return { status: "ready", ...(deps.cluster === undefined ? {} : { instance: deps.cluster.instanceId }) };
    return reply.code(503).send({ status: "not_ready", reason: why });
  });

  app.get("/metrics", pub, async (_request, reply) => {
    const text = await deps.metrics.render();
    return reply.type(deps.metrics.contentType).send(text);
  });

  // --- tokens -------------------------------------------------------------------------------

  app.post("/v1/tokens", admin, async (request, reply) => {
    const body = parseInput(tokenCreateBody, request.body, "body");
    const ttlMs = body.ttl === undefined ? undefined : typeof body.ttl === "number" ? body.ttl : parseDuration(body.ttl);
    const caller = callerOf(request);
    const minted = await deps.tokens.mint(body.serviceAccount, { ...(ttlMs === undefined ? {} : { ttlMs }), createdBy: caller.principal.id });
    if (deps.auditLog !== undefined) {
      try {
        await deps.auditLog.append({
          type: "token.create",
          principal: auditPrincipal(caller.principal),
          details: { tokenId: minted.id, serviceAccount: minted.principal.name, expiresAt: minted.expiresAt.toISOString() },
        });
      } catch (e) {
        // An unaudited credential must not exist: take it back before failing.
        await deps.tokens.revoke(minted.id, "airlock:audit-failure").catch((e2: unknown) => {
          deps.logger.error({ err: e2, tokenId: minted.id }, "could not revoke an unaudited token");
        });
        throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log is unavailable", { cause: e });
      }
    }
    return reply.code(201).send({
      token: minted.token,
      id: minted.id,
      expiresAt: minted.expiresAt.toISOString(),
      serviceAccount: minted.principal.name,
    });
  });

  app.get("/v1/tokens/:id", user, async (request) => {
    const { id } = parseInput(idParam, request.params, "id");
    const row = await deps.store.getToken(id);
    if (row === undefined || !mayReadToken(callerOf(request), row, false)) throw new GatewayError("GW_NOT_FOUND", `no token ${id}`);
    return tokenJson(row);
  });

  app.post("/v1/tokens/:id/revoke", user, async (request) => {
    const { id } = parseInput(idParam, request.params, "id");
    const caller = callerOf(request);
    if (!caller.roles.includes("admin")) {
      // Anyone may revoke their own token (e.g. at logout); nobody else's.
      const row = await deps.store.getToken(id);
      if (row === undefined || !mayReadToken(caller, row, true)) throw new GatewayError("GW_NOT_FOUND", `no token ${id}`);
    }
    // The runtime's onRevoke listener may end the sessions inside revoke(); count them first
    // so the answer reports them either way.
    const liveBefore = deps.liveSessions.list().filter((s) => s.principal.tokenId === id).length;
    const known = await deps.tokens.revoke(id, caller.principal.id);
    if (!known) throw new GatewayError("GW_NOT_FOUND", `no token ${id}`);
    const ended = deps.liveSessions.terminate({ tokenId: id }, "revoked", "token revoked");
    const sessionsEnded = Math.max(liveBefore, ended);
    // The revocation already took effect (the safe direction): an audit failure is logged, not answered.
    await deps.auditLog
      ?.append({ type: "token.revoke", principal: auditPrincipal(caller.principal), details: { tokenId: id, sessionsEnded } })
      .catch((e: unknown) => {
        deps.logger.error({ err: e, tokenId: id }, "could not audit a token revocation");
      });
    return { revoked: true, sessionsEnded };
  });

  // --- budgets ------------------------------------------------------------------------------

  // Admins and auditors see every counter; anyone else only their own principal's.
  app.get("/v1/budgets", user, (request) => {
    const caller = callerOf(request);
    const all = caller.roles.includes("admin") || caller.roles.includes("auditor");
    return Promise.resolve({ budgets: deps.budgets?.list(all ? {} : { principalId: caller.principal.id }) ?? [] });
  });

  // --- sessions -----------------------------------------------------------------------------

  app.get("/v1/sessions", auditor, async (request) => {
    const q = parseInput(sessionsQuery, request.query, "query");
    const trace = q.trace?.toLowerCase();
    const listed = await deps.store.listSessions({
      limit: trace === undefined ? q.limit : TRACE_SCAN,
      offset: trace === undefined ? q.offset : 0,
      ...(q.connection === undefined ? {} : { connection: q.connection }),
    });
    const rows = trace === undefined ? listed : listed.filter((r) => r.attributes["trace_id"] === trace).slice(q.offset, q.offset + q.limit);
    const live = new Set(deps.liveSessions.list().map((s) => s.id));
    // A session another gateway holds is live while it has no end (a lost gateway's are closed by a survivor).
    const self = deps.cluster?.instanceId;
    const elsewhere = (r: SessionRow): boolean => r.endedAt === undefined && r.instanceId !== undefined && self !== undefined && r.instanceId !== self;
    return { sessions: rows.map((r) => sessionJson(r, live.has(r.id) || elsewhere(r))) };
  });

  app.get("/v1/sessions/:id", auditor, async (request) => {
    const { id } = parseInput(idParam, request.params, "id");
    const liveInfo = deps.liveSessions.list().find((s) => s.id === id);
    const row = (await deps.store.getSession(id)) ?? (liveInfo === undefined ? undefined : rowFromLive(liveInfo));
    if (row === undefined) throw new GatewayError("GW_NOT_FOUND", `no session ${id}`);
    const recording = (await deps.recordings.read(id)) ?? [];
    return { session: sessionJson(row, liveInfo !== undefined), recording };
  });

  app.post("/v1/sessions/:id/terminate", admin, async (request) => {
    const { id } = parseInput(idParam, request.params, "id");
    const caller = callerOf(request);
    const isLive = deps.liveSessions.list().some((s) => s.id === id);
    if (!isLive && (await deps.store.getSession(id)) === undefined) throw new GatewayError("GW_NOT_FOUND", `no session ${id}`);
    const terminated = deps.liveSessions.terminate({ sessionId: id }, "terminated", `terminated by ${caller.principal.id}`);
    if (terminated === 0 && deps.cluster !== undefined) {
      // Held by another gateway sharing the store: it ends it on this request (store events).
      const holder = await deps.cluster.killElsewhere(id, caller.principal.id);
      if (holder !== undefined) return { terminated: 0, forwardedTo: holder };
    }
    return { terminated };
  });

  // --- agents (issue 19) ---------------------------------------------------------------------

  app.get("/v1/agents", auditor, () => Promise.resolve({ agents: deps.agents?.list() ?? [] }));

  // --- audit --------------------------------------------------------------------------------

  app.get("/v1/audit/verify", auditor, async () => deps.audit.verify());

  app.get("/v1/audit", auditor, async (request) => {
    const q = parseInput(auditQuery, request.query, "query");
    return { records: await deps.store.readAudit(q.afterSeq, q.limit) };
  });
}
