/**
 * Control-plane routes for the web console (web/). Everything else the console does goes
 * through the ordinary API routes (approve/deny, terminate, tokens, audit verify), which accept
 * the console's cookie in place of a bearer token (console-session.ts; CSRF-checked).
 *
 *   GET  /v1/console/session                 public: who is signed in (+ CSRF token), or how to sign in
 *   POST /v1/console/login        {token}    public (same-origin only): sign in with an Airlock token
 *   GET  /v1/console/login/link/:code        public: the demo's one-time login link → admin session
 *   GET  /v1/console/login/oidc              public: → /v1/auth/oidc/login?return=/ (console session at the end)
 *   POST /v1/console/logout                  user
 *   GET  /v1/console/approvals               user: requests the caller may see, with canDecide
 *   GET  /v1/console/approvals/stream        user: the same, live (Server-Sent Events)
 *   GET  /v1/console/sessions                user: admins/auditors see every session, others their own
 *   GET  /v1/console/sessions/:id            user: one session and its recording (same visibility)
 *   GET  /v1/console/sessions/:id/cast       user: its terminal recording (asciicast v2)
 *   GET  /v1/console/sessions/:id/live       user: the session as it is recorded, live (SSE; console-live.ts)
 *   GET  /v1/console/audit                   auditor: search (principal, connection, decision, rule, type, time, text); json|jsonl|csv
 *   GET  /v1/console/identities              auditor: service accounts, role groups, tokens issued
 *   GET  /v1/console/connections             user: admins/auditors see all, others those their groups may use
 *   GET  /v1/console/connections/form        admin: JSON Schema per connection type (console-forms.ts)
 *   POST /v1/console/connections/validate    admin: field-by-field problems of a connection document
 *   GET  /v1/console/policies                auditor
 *   POST /v1/console/policies/try            auditor: decision, rule and masking for a statement (no execution)
 *   … and those of console-admin-routes.ts (policy editing, test connection, config, sessions stream).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import { ApprovalService } from "../approvals/service.js";
import { auditPrincipal, type AuditLog, type AuditRecord } from "../audit/types.js";
import type { Connection } from "../core/connection.js";
import { registerBody, type RegisterBody, type RotateKeyResult } from "../runtime/live-connections.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { RolesSettings } from "../identity/config-schema.js";
import { rolesFor } from "../identity/roles.js";
import type { LiveSessions } from "../policy/registry.js";
import type { RecordingStore } from "../recording/types.js";
import type { RecordingKind } from "../store/recording-chunks.js";
import type { ApprovalRow } from "../store/approvals.js";
import type { SessionRow, Store } from "../store/types.js";
import { sessionRowFromInfo } from "../store/session-row.js";
import { approvalJson, visibleTo } from "./approvals-routes.js";
import { callerOf, type Caller } from "./auth.js";
import { ConsoleSessions, CONSOLE_COOKIE, consoleCookie, sameOrigin } from "./console-session.js";
import * as S from "./console-schemas.js";
import { parseInput } from "./parse.js";
import { registerConsoleAdminRoutes, type ConsoleAdminDeps } from "./console-admin-routes.js";
import { registerConsoleLiveRoutes } from "./console-live.js";
import { registerConsoleFormRoutes } from "./console-forms.js";
import { readCookie } from "../identity/login-state.js";
import { CONSOLE_LOGIN_FINISH, WEB_SESSION_COOKIE } from "./approval-page.js";

export interface ConsoleRoutesDeps {
  readonly sessions: ConsoleSessions;
  readonly store: Store;
  readonly recordings: RecordingStore;
  readonly readCast?: (sessionId: string) => Promise<string | undefined>;
  /** Where a session's recordings are written (the live view taps them; console-live.ts). */
  readonly livePaths?: (sessionId: string) => { readonly recording: string; readonly cast: string };
  /** Recording lines of sessions held by other gateways, from the shared store (the live view polls them). */
  readonly storedLines?: (sessionId: string, kind: RecordingKind, fromSeq: number) => Promise<{ readonly lines: readonly string[]; readonly next: number }>;
  readonly liveSessions: LiveSessions;
  readonly approvals?: ApprovalService;
  /** Verifies an Airlock token (or a trusted issuer's JWT) for the token login. */
  readonly authenticate: (token: string) => Promise<Principal>;
  readonly roles?: RolesSettings;
  /** Origins the console is served from (login.publicUrl); none = the request's own. */
  readonly origins: readonly string[];
  /** Whether an OIDC browser login is configured. */
  readonly oidcLogin: boolean;
  readonly serviceAccounts: () => readonly { readonly name: string; readonly groups: readonly string[]; readonly description?: string | undefined }[];
  readonly connections: () => readonly S.ConnectionView[];
  readonly policies: () => readonly z.infer<typeof S.policyView>[];
  readonly tryIt?: (input: z.infer<typeof S.tryBody>) => Promise<S.TryResult>;
  /** Connections registered at run time (src/runtime/live-connections.ts); absent = read-only. */
  readonly liveConnections?: {
    register(body: RegisterBody, by: string): Promise<Connection>;
    setDisabled(name: string, disabled: boolean, by: string): Promise<void>;
    rotateKey(by: string): Promise<RotateKeyResult>;
  };
  /** Policy editing, "test connection", the effective configuration (console-admin-routes.ts). */
  readonly admin?: Omit<ConsoleAdminDeps, "sessionsFor" | "auditLog" | "logger">;
  /** Where connection changes are audited. */
  readonly auditLog?: Pick<AuditLog, "append">;
  /** Wait until the audit records written so far have reached the store (searches then see them). */
  readonly flushAudit?: () => Promise<void>;
  readonly logger: Logger;
}

const idParam = z.object({ id: z.string().min(1).max(200) });
const codeParam = z.object({ code: z.string().min(1).max(100) });
/** Audit records scanned per search at most (newest first). */
export const AUDIT_SCAN_LIMIT = 200_000;
const SSE_INTERVAL_MS = 1000;

function seesAll(caller: Caller): boolean {
  return caller.roles.includes("admin") || caller.roles.includes("auditor");
}

function sessionView(row: SessionRow, live: boolean): S.SessionView {
  return {
    id: row.id,
    protocol: row.protocol,
    connection: row.connection,
    principal: { id: row.principalId, kind: row.principalKind, name: row.principalName },
    groups: [...row.groups],
    clientAddress: row.clientAddress,
    startedAt: row.startedAt.toISOString(),
    ...(row.endedAt === undefined ? {} : { endedAt: row.endedAt.toISOString() }),
    ...(row.endReason === undefined ? {} : { endReason: row.endReason }),
    ...(row.statements === undefined ? {} : { statements: row.statements }),
    live,
  };
}

/** CSV field (RFC 4180), with formula-injection guard for spreadsheet users. */
export function csvField(v: unknown): string {
  let s = v === undefined || v === null ? "" : typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : JSON.stringify(v);
  if (/^[=+\-@\t\r]/u.test(s)) s = `'${s}`;
  return /[",\r\n]/u.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const AUDIT_CSV_COLUMNS = ["seq", "time", "type", "principal", "connection", "protocol", "decision", "code", "rule", "message", "statement", "sessionId", "hash"] as const;

export function auditCsv(records: readonly AuditRecord[]): string {
  const lines = [AUDIT_CSV_COLUMNS.join(",")];
  for (const r of records) {
    lines.push(
      [r.seq, r.time, r.type, r.principal?.id, r.connection, r.protocol, r.decision, r.code, r.rule, r.message, r.statement, r.sessionId, r.hash].map(csvField).join(","),
    );
  }
  return `${lines.join("\r\n")}\r\n`;
}

/** Whether an audit record matches a console search. */
export function auditMatches(r: AuditRecord, q: z.infer<typeof S.auditQuery>): boolean {
  if (q.principal !== undefined && r.principal?.id !== q.principal && r.principal?.name !== q.principal) return false;
  if (q.connection !== undefined && r.connection !== q.connection) return false;
  if (q.decision !== undefined && r.decision !== q.decision) return false;
  if (q.rule !== undefined && r.rule !== q.rule) return false;
  if (q.type !== undefined && r.type !== q.type) return false;
  if (q.from !== undefined && r.time < new Date(q.from).toISOString()) return false;
  if (q.to !== undefined && r.time > new Date(q.to).toISOString()) return false;
  if (q.text !== undefined && !(r.statement ?? "").toLowerCase().includes(q.text.toLowerCase()) && !(r.message ?? "").toLowerCase().includes(q.text.toLowerCase())) return false;
  return true;
}

export function registerConsoleRoutes(app: FastifyInstance, deps: ConsoleRoutesDeps): void {
  const pub = { config: { airlockAccess: "public" as const } };
  const user = { config: { airlockAccess: "user" as const } };
  const auditor = { config: { airlockAccess: "auditor" as const } };
  const secure = (request: FastifyRequest): boolean => request.protocol === "https";

  const decidable = (caller: Caller, view: { request: ApprovalRow; votes: readonly { approverId: string }[] }): boolean => {
    const r = view.request;
    return (
      r.status === "pending" &&
      r.requesterId !== caller.principal.id &&
      caller.roles.includes("approver") &&
      ApprovalService.mayDecide(caller.principal, r, caller.roles.includes("admin")) &&
      !view.votes.some((v) => v.approverId === caller.principal.id)
    );
  };

  const approvalsFor = async (caller: Caller, status?: "pending"): Promise<S.ApprovalView[]> => {
    const service = deps.approvals;
    if (service === undefined) return [];
    const rows = await service.list({ ...(status === undefined ? {} : { status }), limit: 200 });
    const out: S.ApprovalView[] = [];
    for (const r of rows.filter((row) => visibleTo(caller, row))) {
      const view = await service.get(r.id);
      if (view === undefined) continue;
      out.push(S.approvalView.parse({ ...approvalJson(view.request, view.votes), canDecide: decidable(caller, view) }));
    }
    return out;
  };

  // --- sign-in ------------------------------------------------------------------------------

  app.get("/v1/console/session", pub, async (request, reply) => {
    void reply.header("cache-control", "no-store");
    const s = await deps.sessions.resolve(readCookie(request.headers.cookie, CONSOLE_COOKIE));
    if (s === undefined) return { signedIn: false, oidc: deps.oidcLogin } satisfies S.ConsoleSession;
    const p = s.principal;
    return {
      signedIn: true,
      principal: { id: p.id, kind: p.kind, name: p.name, groups: [...p.groups] },
      roles: [...rolesFor(p, deps.roles)],
      csrf: s.csrf,
      expiresAt: s.expiresAt.toISOString(),
    } satisfies S.ConsoleSession;
  });

  app.post("/v1/console/login", pub, async (request, reply) => {
    // Login CSRF: a form on another site must not sign this browser in as someone else.
    if (!sameOrigin(request, deps.origins)) throw new GatewayError("GW_FORBIDDEN", "cross-site request refused");
    const { token } = parseInput(S.loginBody, request.body, "body");
    let principal: Principal;
    try {
      principal = await deps.authenticate(token.trim());
    } catch (e) {
      if (isGatewayError(e) && e.code.startsWith("GW_AUTH_")) throw e;
      throw new GatewayError("GW_AUTH_INVALID", "invalid token", { cause: e });
    }
    const cookie = deps.sessions.open({ kind: "token", token: token.trim() }, principal.expiresAt);
    const s = await deps.sessions.resolve(cookie);
    const maxAge = s === undefined ? 0 : (s.expiresAt.getTime() - Date.now()) / 1000;
    return reply.header("set-cookie", consoleCookie(cookie, maxAge, secure(request))).header("cache-control", "no-store").send({ signedIn: true });
  });

  app.get("/v1/console/login/link/:code", pub, async (request, reply) => {
    const p = codeParam.safeParse(request.params);
    if (!p.success || !deps.sessions.takeLink(p.data.code)) {
      throw new GatewayError("GW_AUTH_INVALID", "this login link is unknown, used or expired: restart the demo for a new one");
    }
    const cookie = deps.sessions.open({ kind: "admin" });
    const s = await deps.sessions.resolve(cookie);
    const maxAge = s === undefined ? 0 : (s.expiresAt.getTime() - Date.now()) / 1000;
    return reply
      .header("set-cookie", consoleCookie(cookie, maxAge, secure(request)))
      .header("cache-control", "no-store")
      .header("referrer-policy", "no-referrer")
      .redirect("/", 303);
  });

  app.get("/v1/console/login/oidc", pub, async (_request, reply) => reply.redirect("/v1/auth/oidc/login?return=/", 302));

  // The end of an OIDC login started by the console (approval-page.ts completeWebLogin): the
  // token waits in a one-path cookie; it becomes a console session and the cookie is cleared.
  app.get(CONSOLE_LOGIN_FINISH, pub, async (request, reply) => {
    const token = readCookie(request.headers.cookie, WEB_SESSION_COOKIE);
    const clear = `${WEB_SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=${CONSOLE_LOGIN_FINISH}; Max-Age=0`;
    let principal: Principal | undefined;
    if (token !== undefined && token !== "") principal = await deps.authenticate(token).catch(() => undefined);
    if (token === undefined || principal === undefined) {
      return reply.header("set-cookie", clear).header("cache-control", "no-store").redirect("/#/login-failed", 303);
    }
    const cookie = deps.sessions.open({ kind: "token", token }, principal.expiresAt);
    const s = await deps.sessions.resolve(cookie);
    const maxAge = s === undefined ? 0 : (s.expiresAt.getTime() - Date.now()) / 1000;
    return reply
      .header("set-cookie", [clear, consoleCookie(cookie, maxAge, secure(request))])
      .header("cache-control", "no-store")
      .header("referrer-policy", "no-referrer")
      .redirect("/", 303);
  });

  app.post("/v1/console/logout", user, async (request, reply) => {
    const cookie = readCookie(request.headers.cookie, CONSOLE_COOKIE);
    if (cookie !== undefined) deps.sessions.close(cookie);
    return reply.header("set-cookie", consoleCookie("", 0, secure(request))).send({ signedIn: false });
  });

  // --- approvals ----------------------------------------------------------------------------

  app.get("/v1/console/approvals", user, async (request) => {
    const q = parseInput(z.object({ status: z.enum(["pending", "all"]).default("pending") }), request.query, "query");
    return { requests: await approvalsFor(callerOf(request), q.status === "pending" ? "pending" : undefined) };
  });

  app.get("/v1/console/approvals/stream", user, async (request, reply) => {
    const caller = callerOf(request);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", connection: "keep-alive" });
    let last = "";
    const state = { stopped: false };
    // Read through a function: the flag changes while `tick` awaits (the client went away).
    const stopped = (): boolean => state.stopped;
    let ticks = 0;
    const tick = async (): Promise<void> => {
      if (stopped()) return;
      try {
        const data = JSON.stringify({ requests: await approvalsFor(caller, "pending") });
        if (data !== last) {
          last = data;
          res.write(`event: approvals\ndata: ${data}\n\n`);
        } else if (++ticks % 15 === 0) {
          res.write(": keep-alive\n\n");
        }
      } catch (e) {
        deps.logger.warn({ err: e }, "console: approvals stream update failed");
      }
      if (!stopped()) timer = setTimeout(() => void tick(), SSE_INTERVAL_MS);
    };
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      state.stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
    request.raw.once("close", stop);
    res.once("close", stop);
    await tick();
  });

  // --- sessions -----------------------------------------------------------------------------

  const visibleSession = async (caller: Caller, id: string): Promise<{ row: SessionRow; live: boolean }> => {
    const liveInfo = deps.liveSessions.list().find((s) => s.id === id);
    const row = (await deps.store.getSession(id)) ?? (liveInfo === undefined ? undefined : sessionRowFromInfo(liveInfo));
    // Not visible = not found: other people's session ids are not confirmed.
    if (row === undefined || (!seesAll(caller) && row.principalId !== caller.principal.id)) throw new GatewayError("GW_NOT_FOUND", `no session ${id}`);
    return { row, live: liveInfo !== undefined };
  };

  const sessionsFor = async (caller: Caller, q: z.infer<typeof S.sessionsQuery>): Promise<{ sessions: S.SessionView[] }> => {
    const liveInfos = deps.liveSessions.list();
    const live = new Set(liveInfos.map((s) => s.id));
    const all = seesAll(caller);
    const out: S.SessionView[] = [];
    const seen = new Set<string>();
    // Live sessions the store has not written yet come first.
    for (const info of liveInfos) {
      const row = sessionRowFromInfo(info);
      if ((!all && row.principalId !== caller.principal.id) || (q.connection !== undefined && row.connection !== q.connection)) continue;
      seen.add(row.id);
      out.push(sessionView(row, true));
    }
    // Others' sessions are filtered out, so read further than `limit` (bounded) for a user.
    for (let offset = 0; out.length < q.limit && offset < 5000; offset += 500) {
      const rows = await deps.store.listSessions({ limit: 500, offset, ...(q.connection === undefined ? {} : { connection: q.connection }) });
      for (const r of rows) {
        if (seen.has(r.id) || (!all && r.principalId !== caller.principal.id)) continue;
        seen.add(r.id);
        out.push(sessionView(r, live.has(r.id)));
        if (out.length >= q.limit) break;
      }
      if (rows.length < 500 || all) break;
    }
    return { sessions: out };
  };

  app.get("/v1/console/sessions", user, async (request) => sessionsFor(callerOf(request), parseInput(S.sessionsQuery, request.query, "query")));

  app.get("/v1/console/sessions/:id", user, async (request) => {
    const { id } = parseInput(idParam, request.params, "id");
    const { row, live } = await visibleSession(callerOf(request), id);
    const recording = (await deps.recordings.read(id)) ?? [];
    // SSH sessions and kubectl exec (on an HTTP or Kubernetes session) record a terminal.
    const hasCast = deps.readCast === undefined ? false : (await deps.readCast(id).catch(() => undefined)) !== undefined;
    return { session: sessionView(row, live), recording: recording.map((e) => S.recordingEntry.parse(e)), hasCast };
  });

  const livePaths = deps.livePaths;
  if (livePaths !== undefined) {
    registerConsoleLiveRoutes(app, {
      visibleSession,
      isLive: (id) => deps.liveSessions.list().some((s) => s.id === id),
      paths: livePaths,
      logger: deps.logger,
      ...(deps.storedLines === undefined
        ? {}
        : { elsewhere: { lines: deps.storedLines, running: async (id: string) => (await deps.store.getSession(id))?.endedAt === undefined } }),
    });
  }

  app.get("/v1/console/sessions/:id/cast", user, async (request, reply) => {
    const { id } = parseInput(idParam, request.params, "id");
    await visibleSession(callerOf(request), id);
    const cast = deps.readCast === undefined ? undefined : await deps.readCast(id);
    if (cast === undefined) throw new GatewayError("GW_NOT_FOUND", `no terminal recording for session ${id}`);
    return reply.type("application/x-asciicast; charset=utf-8").header("cache-control", "no-store").send(cast);
  });

  // --- audit --------------------------------------------------------------------------------

  app.get("/v1/console/audit", auditor, async (request, reply) => {
    const q = parseInput(S.auditQuery, request.query, "query");
    await deps.flushAudit?.();
    const matches: AuditRecord[] = [];
    let scanned = 0;
    let after = 0;
    // Ascending pages; keep the newest `limit` matches.
    while (scanned < AUDIT_SCAN_LIMIT) {
      const page = await deps.store.readAudit(after, 1000);
      if (page.length === 0) break;
      for (const r of page) {
        if (auditMatches(r, q)) {
          matches.push(r);
          if (matches.length > q.limit) matches.shift();
        }
      }
      scanned += page.length;
      after = page[page.length - 1]?.seq ?? after;
      if (page.length < 1000) break;
    }
    const truncated = scanned >= AUDIT_SCAN_LIMIT;
    void reply.header("cache-control", "no-store");
    switch (q.format) {
      case "json":
        return { records: matches.reverse(), scanned, truncated };
      case "jsonl":
        return reply
          .type("application/x-ndjson; charset=utf-8")
          .header("content-disposition", 'attachment; filename="airlock-audit.jsonl"')
          .send(matches.map((r) => JSON.stringify(r)).join("\n") + (matches.length === 0 ? "" : "\n"));
      case "csv":
        return reply.type("text/csv; charset=utf-8").header("content-disposition", 'attachment; filename="airlock-audit.csv"').send(auditCsv(matches));
    }
  });

  // --- identities ---------------------------------------------------------------------------

  app.get("/v1/console/identities", auditor, async () => {
    await deps.flushAudit?.();
    // Tokens issued, from the audit log's token.create records (the store keeps no index by creation).
    const created: { id: string; serviceAccount: string }[] = [];
    for (let after = 0, n = 0; n < AUDIT_SCAN_LIMIT; n += 1000) {
      const page = await deps.store.readAudit(after, 1000);
      for (const r of page) {
        const tokenId = r.details?.["tokenId"];
        const sa = r.details?.["serviceAccount"];
        if (r.type === "token.create" && typeof tokenId === "string" && typeof sa === "string") created.push({ id: tokenId, serviceAccount: sa });
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]?.seq ?? after;
    }
    const tokens: z.infer<typeof S.tokenView>[] = [];
    for (const c of created.slice(-200).reverse()) {
      const row = await deps.store.getToken(c.id);
      if (row === undefined) continue;
      tokens.push({
        id: row.id,
        serviceAccount: c.serviceAccount,
        createdAt: row.createdAt.toISOString(),
        expiresAt: row.expiresAt.toISOString(),
        createdBy: row.createdBy,
        revoked: row.revokedAt !== undefined,
      });
    }
    const roles = deps.roles ?? { admin: [], approver: [], auditor: [] };
    return {
      serviceAccounts: deps.serviceAccounts().map((s) => ({ name: s.name, groups: [...s.groups], ...(s.description === undefined ? {} : { description: s.description }) })),
      roles: { admin: [...roles.admin], approver: [...roles.approver], auditor: [...roles.auditor] },
      tokens,
    };
  });

  // --- connections and policies -------------------------------------------------------------

  app.get("/v1/console/connections", user, (request) => {
    const caller = callerOf(request);
    const all = deps.connections();
    const groups = new Set(caller.principal.groups);
    return Promise.resolve({ connections: seesAll(caller) ? all : all.filter((c) => c.groups.some((g) => groups.has(g))) });
  });

  const admin = { config: { airlockAccess: "admin" as const } };
  const live = (): NonNullable<ConsoleRoutesDeps["liveConnections"]> => {
    if (deps.liveConnections === undefined) throw new GatewayError("GW_UNSUPPORTED", "connections cannot be registered on this gateway");
    return deps.liveConnections;
  };
  const auditChange = async (request: FastifyRequest, details: Record<string, string | boolean>): Promise<void> => {
    await deps.auditLog
      ?.append({ type: "connection.change", principal: auditPrincipal(callerOf(request).principal), ...(typeof details["name"] === "string" ? { connection: details["name"] } : {}), details })
      .catch((e: unknown) => deps.logger.error({ err: e }, "could not audit a connection change"));
  };

  registerConsoleFormRoutes(app);

  app.post("/v1/console/connections", admin, async (request, reply) => {
    const body = parseInput(registerBody, request.body, "body");
    const c = await live().register(body, callerOf(request).principal.id);
    await auditChange(request, { action: "register", name: c.name, type: c.type, secrets: Object.keys(body.secrets).join(",") });
    return reply.code(201).send({ connection: deps.connections().find((v) => v.name === c.name) });
  });

  for (const [action, disabled] of [["disable", true], ["enable", false]] as const) {
    app.post(`/v1/console/connections/:name/${action}`, admin, async (request) => {
      const { name } = parseInput(z.object({ name: z.string().min(1).max(200) }), request.params, "name");
      await live().setDisabled(name, disabled, callerOf(request).principal.id);
      await auditChange(request, { action, name });
      return { connection: deps.connections().find((v) => v.name === name) };
    });
  }

  // Re-wrap every stored secret's data key under the current key-encryption key (secrets.storeKey).
  app.post("/v1/secrets/rotate-key", admin, async (request) => {
    const result = await live().rotateKey(callerOf(request).principal.id);
    await deps.auditLog
      ?.append({
        type: "secrets.rotate",
        principal: auditPrincipal(callerOf(request).principal),
        details: { keyId: result.keyId, connections: result.connections, rewrapped: result.rewrapped, unchanged: result.unchanged, failed: result.failed.join(",") },
      })
      .catch((e: unknown) => deps.logger.error({ err: e }, "could not audit a key rotation"));
    return result;
  });

  registerConsoleAdminRoutes(app, {
    ...deps.admin,
    sessionsFor: (caller) => sessionsFor(caller, S.sessionsQuery.parse({})),
    ...(deps.auditLog === undefined ? {} : { auditLog: deps.auditLog }),
    logger: deps.logger,
  });

  app.get("/v1/console/policies", auditor, () => Promise.resolve({ policies: deps.policies() }));

  app.post("/v1/console/policies/try", auditor, async (request) => {
    const body = parseInput(S.tryBody, request.body, "body");
    if (deps.tryIt === undefined) throw new GatewayError("GW_UNSUPPORTED", "policy evaluation is not available on this gateway");
    return deps.tryIt(body);
  });
}
