import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DestinationStream } from "pino";
import { parseConfig } from "../runtime/config.js";
import { startGateway, type RunningGateway } from "../runtime/gateway.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEventInput, AuditRecord, AuditVerifyResult } from "../audit/types.js";
import type { SessionInfo } from "../core/session.js";
import { writeAdminToken } from "../identity/admin.js";
import { TokenService } from "../identity/tokens.js";
import { Authenticator } from "../identity/authenticator.js";
import { TrustedIssuers } from "../identity/issuers.js";
import { resolveSecret } from "../secrets/resolve.js";
import { createLogger } from "../observability/logger.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { SessionRegistry } from "../policy/registry.js";
import { FileRecordingStore } from "../recording/file-store.js";
import type { RecordingEntry } from "../recording/types.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import { ApprovalService } from "../approvals/service.js";
import { createApiServer } from "./server.js";
import type { ApiDeps, ApiServer, RegisteredRoute } from "./server.js";

const logLines: string[] = [];
const logStream: DestinationStream = {
  write(msg: string) {
    logLines.push(msg);
  },
};

let root: string;
let store: Store;
let tokens: TokenService;
let api: ApiServer;
let adminToken: string;
let registry: SessionRegistry;
let metrics: GatewayMetrics;
let recordings: FileRecordingStore;
let auditResult: AuditVerifyResult = { ok: true, records: 0, lastSeq: 0 };
let auditThrows: Error | undefined;
const appended: AuditEventInput[] = [];
let appendFails = false;
const ROLE_GROUPS = { admin: ["platform"], approver: ["dba"], auditor: ["security"] };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-api-"));
  store = await openStore({ dataDir: join(root, "data") });
  recordings = new FileRecordingStore({ dataDir: join(root, "data") });
  const logger = createLogger({ level: "debug", destination: logStream });
  tokens = await TokenService.open({
    keyDir: join(root, "data"),
    store,
    serviceAccounts: [{ name: "ci-bot", groups: ["agents"], sshPublicKeys: [] }],
    defaultTtlMs: 15 * 60_000,
    maxTtlMs: 3_600_000,
    logger,
  });
  adminToken = await writeAdminToken(join(root, "data"));
  registry = new SessionRegistry();
  metrics = new GatewayMetrics();
  const authenticator = new Authenticator({ tokens, issuers: new TrustedIssuers({ issuers: [], logger }) });
  const appendAudit = (input: AuditEventInput): Promise<AuditRecord> => {
    if (appendFails) return Promise.reject(new Error("disk full"));
    appended.push(input);
    return Promise.resolve({ ...input, seq: appended.length, time: new Date().toISOString(), prevHash: "0".repeat(64), hash: "0".repeat(64) });
  };
  const approvalStore = store.approvals;
  if (approvalStore === undefined) throw new Error("the embedded store keeps approval requests");
  const approvals = new ApprovalService({
    store: approvalStore,
    audit: { append: appendAudit },
    notifier: { notify: () => undefined, idle: () => Promise.resolve() },
    logger,
    liveSessions: registry,
    connections: ["orders"],
  });
  const deps: ApiDeps = {
    approvals: { approvals },
    authenticate: authenticator.authenticate,
    roles: ROLE_GROUPS,
    identity: {
      tokens,
      authenticator,
      oidc: [],
      login: { tokenTtl: 3_600_000, exchangeTtl: 900_000 },
      roles: ROLE_GROUPS,
      liveSessions: registry,
      auditLog: { append: appendAudit },
      resolveSecret,
      logger,
    },
    store,
    tokens,
    recordings,
    audit: {
      verify: () => (auditThrows === undefined ? Promise.resolve(auditResult) : Promise.reject(auditThrows)),
    },
    liveSessions: registry,
    adminToken,
    metrics,
    logger,
    auditLog: {
      append: (input: AuditEventInput): Promise<AuditRecord> => {
        if (appendFails) return Promise.reject(new Error("disk full"));
        appended.push(input);
        return Promise.resolve({ ...input, seq: appended.length, time: new Date().toISOString(), prevHash: "0".repeat(64), hash: "0".repeat(64) });
      },
    },
  };
  api = await createApiServer(deps);
});

afterAll(async () => {
  await api.close();
  await tokens.close();
  await metrics.close();
  await recordings.close();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

function asAdmin(): Record<string, string> {
  return { authorization: `Bearer ${adminToken}` };
}

interface ErrorShape {
  error: { code: string; message: string; rule?: string };
}

function sessionInfo(id: string, tokenId: string): SessionInfo {
  return {
    id,
    clientProtocol: "postgres", targetType: "postgres",
    connection: "orders",
    principal: { kind: "service_account", id: "sa:ci-bot", name: "ci-bot", groups: ["agents"], tokenId },
    clientAddress: "127.0.0.1:50000",
    startedAt: new Date("2026-01-01T00:00:00Z"),
    attributes: {},
  };
}

describe("public routes", () => {
  it("GET /healthz answers without credentials", async () => {
    const res = await api.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("GET /metrics serves Prometheus text without secrets", async () => {
    metrics.statement("postgres", "deny");
    const res = await api.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toContain("text/plain");
    expect(res.body).toContain('airlock_statements_total{protocol="postgres",decision="deny"} 1');
    expect(res.body).not.toContain(adminToken);
  });

  it("unknown routes are 404 in the error shape", async () => {
    const res = await api.inject({ method: "GET", url: "/nope" });
    expect(res.statusCode).toBe(404);
    expect(res.json<ErrorShape>().error.code).toBe("GW_NOT_FOUND");
  });
});

/** The access each route needs. A route missing here is still checked against the access it declares. */
const EXPECTED_ACCESS: Readonly<Record<string, string>> = {
  "POST /v1/tokens": "admin",
  "GET /v1/tokens/:id": "user",
  "POST /v1/tokens/:id/revoke": "user",
  "GET /v1/budgets": "user",
  "GET /v1/sessions": "auditor",
  "GET /v1/sessions/:id": "auditor",
  "POST /v1/sessions/:id/terminate": "admin",
  "GET /v1/audit/verify": "auditor",
  "GET /v1/audit": "auditor",
  "GET /v1/agents": "auditor",
  "GET /v1/auth/whoami": "user",
  "POST /v1/principals/:id/revoke": "admin",
  "GET /v1/approvals": "user",
  "GET /v1/approvals/:id": "user",
  "POST /v1/approvals/:id/approve": "approver",
  "POST /v1/approvals/:id/deny": "approver",
};

/**
 * One route, every caller: 401 without credentials; with each caller's token, never 401, and a
 * 403 naming the route's role exactly when the caller lacks that role.
 */
async function expectRoleChecks(server: ApiServer, route: RegisteredRoute, callers: readonly { name: string; token: string; roles: readonly string[] }[]): Promise<void> {
  const url = route.url.replace(/:[A-Za-z]+/g, randomUUID());
  const method = route.method as "GET" | "POST" | "HEAD" | "DELETE" | "PUT" | "PATCH";
  const anon = await server.inject({ method, url });
  expect(anon.statusCode, `${route.method} ${route.url} without credentials`).toBe(401);
  if (method !== "HEAD") expect(anon.json<ErrorShape>().error.code).toBe("GW_AUTH_MISSING");
  for (const c of callers) {
    // A stream never ends for a caller it admits (the browser test reads it); refusals end at once.
    if (STREAMING_ROUTES.has(`${route.method === "HEAD" ? "GET" : route.method} ${route.url}`) && c.roles.includes(route.access)) continue;
    const res = await server.inject({ method, url, headers: { authorization: `Bearer ${c.token}` } });
    const what = `${route.method} ${route.url} as ${c.name}`;
    expect(res.statusCode, what).not.toBe(401);
    const roleRefusal = res.statusCode === 403 && (method === "HEAD" || res.json<ErrorShape>().error.message.includes(`needs role ${route.access}`));
    expect(roleRefusal, what).toBe(!c.roles.includes(route.access));
    if (roleRefusal && method !== "HEAD") expect(res.json<ErrorShape>().error.code).toBe("GW_FORBIDDEN");
  }
}

describe("every /v1 route checks the caller's role", () => {
  it("answers 401 without credentials, and 403 to every role that lacks the route's role, on every registered route", async () => {
    const sa = await tokens.mint("ci-bot", { createdBy: "test" });
    const person = async (groups: string[]): Promise<string> =>
      (await tokens.mintFor({ kind: "person", id: `user:${groups.join("-") || "plain"}@example.com`, name: "p", groups }, { ttlMs: 600_000, createdBy: "test" })).token;
    const callers: { name: string; token: string; roles: readonly string[] }[] = [
      { name: "service account", token: sa.token, roles: ["user"] },
      { name: "person", token: await person([]), roles: ["user"] },
      { name: "auditor", token: await person(["security"]), roles: ["auditor", "user"] },
      { name: "approver", token: await person(["dba"]), roles: ["approver", "user"] },
      { name: "admin group", token: await person(["platform"]), roles: ["admin", "approver", "auditor", "user"] },
      { name: "admin token", token: adminToken, roles: ["admin", "approver", "auditor", "user"] },
    ];
    const v1 = api.routes.filter((r) => r.url.startsWith("/v1") && r.access !== "public");
    // Guard against the enumeration silently finding nothing.
    expect(v1.length).toBeGreaterThanOrEqual(10);
    for (const route of v1) {
      const key = `${route.method === "HEAD" ? "GET" : route.method} ${route.url}`;
      const expected = EXPECTED_ACCESS[key];
      if (expected !== undefined) expect(route.access, `${key} declared access`).toBe(expected);
      await expectRoleChecks(api, route, callers);
    }
    // Only these routes are public; adding another public route must be a conscious change here.
    const publicRoutes = api.routes.filter((r) => r.access === "public").map((r) => `${r.method} ${r.url}`);
    expect(new Set(publicRoutes)).toEqual(
      new Set([
        "GET /healthz",
        "HEAD /healthz",
        "GET /readyz",
        "HEAD /readyz",
        "GET /metrics",
        "HEAD /metrics",
        "POST /v1/token/exchange",
        "GET /v1/auth/oidc/login",
        "HEAD /v1/auth/oidc/login",
        "GET /v1/auth/oidc/callback",
        "HEAD /v1/auth/oidc/callback",
        // The approval page authenticates by its login cookie, not a bearer token (approval-page.ts).
        "GET /approvals/:id",
        "HEAD /approvals/:id",
        "POST /approvals/:id",
        // The API's OpenAPI document (openapi.ts).
        "GET /openapi.json",
        "HEAD /openapi.json",
      ]),
    );
  });

  it("the approval page's public routes refuse without a browser login (and a bearer token is no login)", async () => {
    const url = "/approvals/apr_abcdefghijkmnpqr";
    for (const headers of [{}, asAdmin()]) {
      const get = await api.inject({ method: "GET", url, headers });
      // No browser login is configured here: a page saying so, never the request.
      expect(get.statusCode).toBe(401);
      expect(get.headers["content-type"]).toContain("text/html");
      expect(get.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      const post = await api.inject({
        method: "POST",
        url,
        headers: { ...headers, origin: "http://localhost:80", "content-type": "application/x-www-form-urlencoded" },
        payload: "vote=approve&csrf=x",
      });
      expect(post.statusCode).toBe(401);
      expect(post.headers["content-type"]).toContain("text/html");
    }
  });

  it("lets a user read and revoke its own token only", async () => {
    const own = await tokens.mintFor({ kind: "person", id: "user:owner@example.com", name: "owner@example.com", groups: [] }, { ttlMs: 600_000, createdBy: "test" });
    const other = await tokens.mint("ci-bot", { createdBy: "test" });
    const auth = { authorization: `Bearer ${own.token}` };
    expect((await api.inject({ method: "GET", url: `/v1/tokens/${own.id}`, headers: auth })).statusCode).toBe(200);
    expect((await api.inject({ method: "GET", url: `/v1/tokens/${other.id}`, headers: auth })).statusCode).toBe(404);
    expect((await api.inject({ method: "POST", url: `/v1/tokens/${other.id}/revoke`, headers: auth })).statusCode).toBe(404);
    await expect(tokens.verify(other.token)).resolves.toMatchObject({ id: "sa:ci-bot" });
    expect((await api.inject({ method: "POST", url: `/v1/tokens/${own.id}/revoke`, headers: auth })).json()).toMatchObject({ revoked: true });
    expect((await api.inject({ method: "GET", url: "/v1/auth/whoami", headers: auth })).statusCode).toBe(401);
  });

  it("audits refused API credentials without the credential", async () => {
    appended.length = 0;
    await api.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: "Bearer forged.credential.value" } });
    await api.inject({ method: "GET", url: "/v1/sessions" });
    expect(appended.map((a) => [a.type, a.protocol, a.code])).toEqual([
      ["auth.failure", "api", "GW_AUTH_INVALID"],
      ["auth.failure", "api", "GW_AUTH_MISSING"],
    ]);
    expect(JSON.stringify(appended)).not.toContain("forged.credential");
  });

  it("rejects a wrong admin token, a malformed header and an expired token", async () => {
    const wrong = await api.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: `Bearer ${adminToken}x` } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json<ErrorShape>().error.code).toBe("GW_AUTH_INVALID");
    expect(wrong.headers["www-authenticate"]).toContain("Bearer");
    const basic = await api.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: "Basic YWRtaW46YWRtaW4=" } });
    expect(basic.json<ErrorShape>().error.code).toBe("GW_AUTH_INVALID");
    const garbage = await api.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: "Bearer not.a.token" } });
    expect(garbage.statusCode).toBe(401);
    expect(garbage.body).not.toContain("not.a.token");

    // A token minted two hours ago with a one-minute lifetime, by a service sharing key and store.
    const past = await TokenService.open({
      keyDir: join(root, "data"),
      store,
      serviceAccounts: [{ name: "ci-bot", groups: ["agents"], sshPublicKeys: [] }],
      defaultTtlMs: 60_000,
      maxTtlMs: 3_600_000,
      logger: createLogger({ level: "silent" }),
      clock: () => new Date(Date.now() - 2 * 3_600_000),
    });
    try {
      const old = await past.mint("ci-bot", { createdBy: "test" });
      const expired = await api.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: `Bearer ${old.token}` } });
      expect(expired.statusCode).toBe(401);
      expect(expired.json<ErrorShape>().error).toEqual({ code: "GW_AUTH_EXPIRED", message: `token expired at ${old.expiresAt.toISOString()}` });
    } finally {
      await past.close();
    }
  });
});

describe("tokens", () => {
  it("creates, reads and revokes a token, ending its live sessions", async () => {
    const created = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "ci-bot", ttl: "10m" } });
    expect(created.statusCode).toBe(201);
    const body = created.json<{ token: string; id: string; expiresAt: string; serviceAccount: string }>();
    expect(body.serviceAccount).toBe("ci-bot");
    const principal = await tokens.verify(body.token);
    expect(principal.tokenId).toBe(body.id);
    const ttl = new Date(body.expiresAt).getTime() - Date.now();
    expect(ttl).toBeGreaterThan(9 * 60_000);
    expect(ttl).toBeLessThanOrEqual(10 * 60_000 + 1000);

    const meta = await api.inject({ method: "GET", url: `/v1/tokens/${body.id}`, headers: asAdmin() });
    expect(meta.statusCode).toBe(200);
    expect(meta.json()).toMatchObject({ id: body.id, revoked: false, createdBy: "admin", principal: { id: "sa:ci-bot" } });
    expect(meta.body).not.toContain(body.token);

    const live = registry.register(sessionInfo(randomUUID(), body.id));
    const other = registry.register(sessionInfo(randomUUID(), "another-token"));
    const revoked = await api.inject({ method: "POST", url: `/v1/tokens/${body.id}/revoke`, headers: asAdmin() });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toEqual({ revoked: true, sessionsEnded: 1 });
    expect(live.signal.aborted).toBe(true);
    expect(other.signal.aborted).toBe(false);
    live.unregister();
    other.unregister();

    const after = await api.inject({ method: "GET", url: `/v1/tokens/${body.id}`, headers: asAdmin() });
    expect(after.json()).toMatchObject({ revoked: true, revokedBy: "admin" });
    await expect(tokens.verify(body.token)).rejects.toMatchObject({ code: "GW_AUTH_REVOKED" });

    // The revoked token now fails authentication on the API too.
    const used = await api.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: `Bearer ${body.token}` } });
    expect(used.json<ErrorShape>().error.code).toBe("GW_AUTH_REVOKED");
  });

  it("counts sessions ended by an onRevoke listener that runs inside revoke", async () => {
    const off = tokens.onRevoke((id) => registry.terminate({ tokenId: id }, "revoked", "token revoked"));
    try {
      const minted = await tokens.mint("ci-bot", { createdBy: "test" });
      const s = registry.register(sessionInfo(randomUUID(), minted.id));
      const res = await api.inject({ method: "POST", url: `/v1/tokens/${minted.id}/revoke`, headers: asAdmin() });
      expect(res.json()).toEqual({ revoked: true, sessionsEnded: 1 });
      expect(s.signal.aborted).toBe(true);
      s.unregister();
    } finally {
      off();
    }
  });

  it("audits token creation and revocation, and takes back a token it cannot audit", async () => {
    appended.length = 0;
    const created = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "ci-bot" } });
    const { id, token } = created.json<{ id: string; token: string }>();
    await api.inject({ method: "POST", url: `/v1/tokens/${id}/revoke`, headers: asAdmin() });
    expect(appended.map((a) => [a.type, a.principal?.id, a.details?.["tokenId"]])).toEqual([
      ["token.create", "admin", id],
      ["token.revoke", "admin", id],
    ]);
    expect(JSON.stringify(appended)).not.toContain(token);

    appendFails = true;
    try {
      const before = (await store.listRevokedTokens()).length;
      const failed = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "ci-bot" } });
      expect(failed.statusCode).toBe(500);
      expect(failed.json<ErrorShape>().error.code).toBe("GW_AUDIT_UNAVAILABLE");
      expect(failed.body).not.toContain("disk full");
      const revoked = await store.listRevokedTokens();
      expect(revoked.length).toBe(before + 1);
    } finally {
      appendFails = false;
    }
  });

  it("validates the request", async () => {
    const unknown = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "nobody" } });
    expect(unknown.statusCode).toBe(404);
    const tooLong = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "ci-bot", ttl: "2h" } });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json<ErrorShape>().error.message).toContain("1h");
    const badTtl = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "ci-bot", ttl: "soon" } });
    expect(badTtl.json<ErrorShape>().error.code).toBe("GW_BAD_REQUEST");
    const msTtl = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "ci-bot", ttl: 60_000 } });
    expect(msTtl.statusCode).toBe(201);
    const extra = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: { serviceAccount: "ci-bot", admin: true } });
    expect(extra.statusCode).toBe(400);
    const missing = await api.inject({ method: "POST", url: "/v1/tokens", headers: asAdmin(), payload: {} });
    expect(missing.json<ErrorShape>().error.message).toContain("serviceAccount");
    const revokeUnknown = await api.inject({ method: "POST", url: `/v1/tokens/${randomUUID()}/revoke`, headers: asAdmin() });
    expect(revokeUnknown.statusCode).toBe(404);
    const getUnknown = await api.inject({ method: "GET", url: `/v1/tokens/${randomUUID()}`, headers: asAdmin() });
    expect(getUnknown.statusCode).toBe(404);
  });

  it("never echoes a malformed body, and caps the body size", async () => {
    const secretish = "airlock_admin_leakcheck_value";
    const bad = await api.inject({
      method: "POST",
      url: "/v1/tokens",
      headers: { ...asAdmin(), "content-type": "application/json" },
      payload: `{"serviceAccount": ${secretish}`,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<ErrorShape>().error.code).toBe("GW_BAD_REQUEST");
    expect(bad.body).not.toContain("leakcheck");
    const big = await api.inject({
      method: "POST",
      url: "/v1/tokens",
      headers: asAdmin(),
      payload: { serviceAccount: "ci-bot", pad: "x".repeat(70 * 1024) },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json<ErrorShape>().error.code).toBe("GW_BAD_REQUEST");
  });
});

describe("sessions", () => {
  const ended = randomUUID();
  const running = randomUUID();

  beforeAll(async () => {
    await store.insertSession({
      id: ended,
      protocol: "postgres",
      connection: "orders",
      principalId: "sa:ci-bot",
      principalKind: "service_account",
      principalName: "ci-bot",
      groups: ["agents"],
      clientAddress: "127.0.0.1:1",
      startedAt: new Date("2026-01-01T00:00:00Z"),
      attributes: { application_name: "psql" },
    });
    await store.endSession(ended, {
      endedAt: new Date("2026-01-01T00:01:00Z"),
      reason: "client_closed",
      statements: 1,
      bytesFromClient: 10,
      bytesToClient: 20,
    });
    await store.insertSession({
      id: running,
      protocol: "postgres",
      connection: "billing",
      principalId: "sa:ci-bot",
      principalKind: "service_account",
      principalName: "ci-bot",
      groups: ["agents"],
      clientAddress: "127.0.0.1:2",
      startedAt: new Date("2026-01-02T00:00:00Z"),
      attributes: {},
    });
    const rec = recordings.open(ended);
    rec.append({ kind: "header", sessionId: ended, protocol: "postgres", connection: "orders", principal: "sa:ci-bot", startedAt: "2026-01-01T00:00:00.000Z", version: 1 });
    rec.append({ kind: "query", seq: 1, stage: "simple", sql: "select 1", decision: "allow" });
    rec.append({ kind: "result", seq: 1, resultKind: "simple", commandTag: "SELECT 1", rowCount: 1, columns: ["?column?"], rows: [["1"]], durationMs: 2 });
    await rec.close();
  });

  it("lists sessions newest first with live flags and filters by connection", async () => {
    const live = registry.register({ ...sessionInfo(running, "t"), connection: "billing" });
    try {
      const res = await api.inject({ method: "GET", url: "/v1/sessions?limit=10", headers: asAdmin() });
      expect(res.statusCode).toBe(200);
      const { sessions } = res.json<{ sessions: { id: string; live: boolean; endReason?: string }[] }>();
      const byId = new Map(sessions.map((s) => [s.id, s]));
      expect(byId.get(running)?.live).toBe(true);
      expect(byId.get(ended)).toMatchObject({ live: false, endReason: "client_closed" });
      expect(sessions.findIndex((s) => s.id === running)).toBeLessThan(sessions.findIndex((s) => s.id === ended));

      const filtered = await api.inject({ method: "GET", url: "/v1/sessions?connection=orders", headers: asAdmin() });
      expect(filtered.json<{ sessions: { id: string }[] }>().sessions.map((s) => s.id)).toEqual([ended]);
      const bad = await api.inject({ method: "GET", url: "/v1/sessions?limit=0", headers: asAdmin() });
      expect(bad.statusCode).toBe(400);
    } finally {
      live.unregister();
    }
  });

  it("shows a session with its recording, and 404s for unknown ids", async () => {
    const res = await api.inject({ method: "GET", url: `/v1/sessions/${ended}`, headers: asAdmin() });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ session: { id: string; attributes: Record<string, string> }; recording: RecordingEntry[] }>();
    expect(body.session.attributes).toEqual({ application_name: "psql" });
    expect(body.recording.map((e) => e.kind)).toEqual(["header", "query", "result"]);
    const none = await api.inject({ method: "GET", url: `/v1/sessions/${randomUUID()}`, headers: asAdmin() });
    expect(none.statusCode).toBe(404);
  });

  it("terminates a live session", async () => {
    const live = registry.register({ ...sessionInfo(running, "t"), connection: "billing" });
    try {
      const res = await api.inject({ method: "POST", url: `/v1/sessions/${running}/terminate`, headers: asAdmin() });
      expect(res.json()).toEqual({ terminated: 1 });
      expect(live.signal.aborted).toBe(true);
      const again = await api.inject({ method: "POST", url: `/v1/sessions/${ended}/terminate`, headers: asAdmin() });
      expect(again.json()).toEqual({ terminated: 0 });
      const unknown = await api.inject({ method: "POST", url: `/v1/sessions/${randomUUID()}/terminate`, headers: asAdmin() });
      expect(unknown.statusCode).toBe(404);
    } finally {
      live.unregister();
    }
  });
});

describe("audit", () => {
  it("returns the verify result and records", async () => {
    auditResult = { ok: false, records: 3, failedSeq: 2, reason: "hash_mismatch", detail: "record 2 was edited" };
    const res = await api.inject({ method: "GET", url: "/v1/audit/verify", headers: asAdmin() });
    expect(res.json()).toEqual(auditResult);
    const recs = await api.inject({ method: "GET", url: "/v1/audit?afterSeq=0&limit=5", headers: asAdmin() });
    expect(recs.statusCode).toBe(200);
    expect(Array.isArray(recs.json<{ records: unknown[] }>().records)).toBe(true);
  });

  it("hides the text of unexpected exceptions", async () => {
    auditThrows = new Error("db password is hunter2hunter2");
    try {
      const res = await api.inject({ method: "GET", url: "/v1/audit/verify", headers: asAdmin() });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: "GW_INTERNAL", message: "internal gateway error" } });
    } finally {
      auditThrows = undefined;
    }
  });
});

describe("logging", () => {
  it("logs requests without headers or credentials", () => {
    const text = logLines.join("");
    expect(text).toContain('"msg":"api request"');
    expect(text).not.toContain(adminToken);
    expect(text.toLowerCase()).not.toContain("authorization");
  });
});

/**
 * The access every route of a fully configured gateway needs (identity with OIDC login and
 * SAML, approvals and access grants, the approval page, SSH recordings). The list is checked
 * against the routes fastify itself reports (its onRoute hook, for every plugin scope): a route
 * without an entry here fails, so a new route needs a conscious decision about who may use it.
 */
const FULL_GATEWAY_ACCESS: Readonly<Record<string, string>> = {
  "GET /healthz": "public",
  "GET /readyz": "public",
  "GET /metrics": "public",
  // MCP authenticates each request itself (bearer → 401 with resource_metadata; admin → 403):
  // test/mcp.test.ts "authorization" covers it.
  "POST /mcp": "public",
  "GET /mcp": "public",
  "DELETE /mcp": "public",
  // The MCP gateway (/mcp/CONNECTION) authenticates each request the same way:
  // test/mcp-gateway.test.ts "admission" covers it.
  "POST /mcp/:connection": "public",
  "GET /mcp/:connection": "public",
  "DELETE /mcp/:connection": "public",
  "POST /mcp-gateway": "public",
  "GET /mcp-gateway": "public",
  "DELETE /mcp-gateway": "public",
  "GET /v1/mcp/:connection/pins": "admin",
  "POST /v1/mcp/:connection/pins": "admin",
  "GET /.well-known/oauth-protected-resource": "public",
  "GET /.well-known/oauth-protected-resource/mcp": "public",
  "GET /.well-known/oauth-protected-resource/mcp/:connection": "public",
  "POST /v1/token/exchange": "public",
  "GET /v1/auth/oidc/login": "public",
  "GET /v1/auth/oidc/callback": "public",
  "GET /v1/auth/saml/login": "public",
  "POST /v1/auth/saml/acs": "public",
  // The approval page authenticates by its own login cookie (approval-page.ts and its tests).
  "GET /approvals/:id": "public",
  "POST /approvals/:id": "public",
  "POST /v1/tokens": "admin",
  "GET /v1/tokens/:id": "user",
  "POST /v1/tokens/:id/revoke": "user",
  "GET /v1/budgets": "user",
  "GET /v1/sessions": "auditor",
  "GET /v1/sessions/:id": "auditor",
  "GET /v1/sessions/:id/cast": "auditor",
  "POST /v1/sessions/:id/terminate": "admin",
  "GET /v1/audit/verify": "auditor",
  "GET /v1/audit": "auditor",
  "GET /v1/agents": "auditor",
  "GET /v1/auth/whoami": "user",
  "POST /v1/principals/:id/revoke": "admin",
  "GET /v1/approvals": "user",
  "GET /v1/approvals/:id": "user",
  "POST /v1/approvals/:id/approve": "approver",
  "POST /v1/approvals/:id/deny": "approver",
  "POST /v1/access/requests": "user",
  "GET /v1/access/requests": "user",
  "GET /v1/access/requests/:id": "user",
  "POST /v1/access/requests/:id/approve": "approver",
  "POST /v1/access/requests/:id/deny": "approver",
  "POST /v1/access/requests/:id/revoke": "user",
  "GET /openapi.json": "public",
  // The web console (console-routes.ts, console-static.ts): its page and sign-in are public; the
  // rest authenticates by bearer token or the console cookie, like every other route.
  "GET /": "public",
  "GET /assets/*": "public",
  "GET /favicon.svg": "public",
  "GET /v1/console/session": "public",
  "POST /v1/console/login": "public",
  "GET /v1/console/login/link/:code": "public",
  "GET /v1/console/login/oidc": "public",
  "GET /v1/console/login/oidc/finish": "public",
  "POST /v1/console/logout": "user",
  "GET /v1/console/approvals": "user",
  "GET /v1/console/approvals/stream": "user",
  "GET /v1/console/sessions": "user",
  "GET /v1/console/sessions/:id": "user",
  "GET /v1/console/sessions/:id/cast": "user",
  "GET /v1/console/sessions/:id/live": "user",
  "GET /v1/console/audit": "auditor",
  "GET /v1/console/identities": "auditor",
  "GET /v1/console/connections": "user",
  "POST /v1/console/connections": "admin",
  "GET /v1/console/connections/form": "admin",
  "POST /v1/console/connections/validate": "admin",
  "POST /v1/console/connections/:name/disable": "admin",
  "POST /v1/secrets/rotate-key": "admin",
  "POST /v1/console/connections/:name/enable": "admin",
  "GET /v1/console/policies": "auditor",
  "POST /v1/console/policies/try": "auditor",
  "GET /v1/console/config": "auditor",
  "POST /v1/console/policies": "admin",
  "POST /v1/console/policies/:name/delete": "admin",
  "POST /v1/console/policies/order": "admin",
  "POST /v1/console/connections/:name/test": "admin",
  "GET /v1/console/sessions/stream": "user",
};

/** Routes that answer with an endless stream (SSE): only their refusals can be checked by inject. */
const STREAMING_ROUTES = new Set(["GET /v1/console/approvals/stream", "GET /v1/console/sessions/stream", "GET /v1/console/sessions/:id/live"]);

const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBfTCCASOgAwIBAgIUJ1cRs5pGvOZ3H7xC0Yv1l0fQ9ZswCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJdGVzdC1zYW1sMB4XDTI2MDEwMTAwMDAwMFoXDTM2MDEwMTAw
MDAwMFowFDESMBAGA1UEAwwJdGVzdC1zYW1sMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAE
-----END CERTIFICATE-----`;

describe("every route of a fully configured gateway checks the caller's role", () => {
  let gw: RunningGateway;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "airlock-api-full-"));
    const config = parseConfig({
      dataDir,
      listen: { api: "127.0.0.1:0" },
      serviceAccounts: [{ name: "ci-bot", groups: ["agents"] }],
      roles: { admin: ["platform"], auditor: ["security"] },
      login: { publicUrl: "http://127.0.0.1:8780" },
      oidc: [{ issuer: "http://127.0.0.1:9", audience: "airlock-web", clientId: "airlock-web", principal: { kind: "person", name: "email" } }],
      saml: { entryPoint: "http://127.0.0.1:9/sso", idpIssuer: "http://127.0.0.1:9/entity", idpCert: TEST_CERT },
      approvals: { publicUrl: "http://127.0.0.1:8780", grants: { approvers: ["dba"] } },
      connections: [{ type: "postgres", name: "orders", host: "127.0.0.1", port: 9, database: "orders", user: "app", password: "x", groups: ["agents"] }],
      // `oncall` is an approver group only through this policy: it must confer the approver role.
      policies: [{ name: "writes-need-approval", match: { operations: ["update"] }, action: "require_approval", approvers: ["oncall"] }],
    });
    gw = await startGateway(config, { logger: createLogger({ level: "silent" }) });
  });

  afterAll(async () => {
    await gw.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("lists every route with its access, and answers 401 without credentials and 403 to every role below the route's", async () => {
    const full = gw.api;
    if (full === undefined) throw new Error("the API is not listening");
    const routes = full.routes;
    const keys = new Set(routes.map((r) => `${r.method} ${r.url}`));
    // Guard against an enumeration that silently misses whole route families.
    for (const k of ["POST /v1/auth/saml/acs", "GET /v1/sessions/:id/cast", "POST /v1/approvals/:id/approve", "POST /v1/access/requests/:id/deny", "POST /v1/principals/:id/revoke"]) {
      expect(keys.has(k), k).toBe(true);
    }
    const person = async (groups: string[]): Promise<string> =>
      (await gw.tokens.mintFor({ kind: "person", id: `user:${groups.join("-") || "plain"}@example.com`, name: "p", groups }, { ttlMs: 600_000, createdBy: "test" })).token;
    const callers: { name: string; token: string; roles: readonly string[] }[] = [
      { name: "service account", token: (await gw.tokens.mint("ci-bot", { createdBy: "test" })).token, roles: ["user"] },
      { name: "person", token: await person([]), roles: ["user"] },
      { name: "auditor", token: await person(["security"]), roles: ["auditor", "user"] },
      { name: "policy approver", token: await person(["oncall"]), roles: ["approver", "user"] },
      { name: "grant approver", token: await person(["dba"]), roles: ["approver", "user"] },
      { name: "admin group", token: await person(["platform"]), roles: ["admin", "approver", "auditor", "user"] },
      { name: "admin token", token: gw.adminToken, roles: ["admin", "approver", "auditor", "user"] },
    ];
    for (const c of callers) {
      const who = await full.inject({ method: "GET", url: "/v1/auth/whoami", headers: { authorization: `Bearer ${c.token}` } });
      expect(who.json<{ roles: string[] }>().roles, c.name).toEqual(c.roles);
    }
    let checked = 0;
    for (const route of routes) {
      const key = `${route.method === "HEAD" ? "GET" : route.method} ${route.url}`;
      const expected = FULL_GATEWAY_ACCESS[key];
      expect(expected, `${route.method} ${route.url} has no entry in FULL_GATEWAY_ACCESS: decide who may use it`).toBeDefined();
      expect(route.access, `${key} declared access`).toBe(expected);
      if (route.access === "public") continue;
      await expectRoleChecks(full, route, callers);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(20);
  });
});
