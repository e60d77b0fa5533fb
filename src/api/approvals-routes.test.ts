/**
 * The approvals routes on a real API server and store (PGlite): every route needs only the
 * `user` role, and what a caller may see and decide is checked per request — requester,
 * approver groups, admin/auditor roles, never one's own request.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEventInput, AuditRecord } from "../audit/types.js";
import { ApprovalService } from "../approvals/service.js";
import type { Notifier } from "../approvals/notify.js";
import { writeAdminToken } from "../identity/admin.js";
import { Authenticator } from "../identity/authenticator.js";
import { TrustedIssuers } from "../identity/issuers.js";
import { TokenService } from "../identity/tokens.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { SessionRegistry } from "../policy/registry.js";
import { FileRecordingStore } from "../recording/file-store.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import { createApiServer, type ApiServer } from "./server.js";

const ROLE_GROUPS = { admin: ["platform"], approver: ["dba"], auditor: ["security"] };

let root: string;
let store: Store;
let tokens: TokenService;
let api: ApiServer;
let service: ApprovalService;
let metrics: GatewayMetrics;
let recordings: FileRecordingStore;
const audited: AuditEventInput[] = [];
const notifier: Notifier = { notify: () => undefined, idle: () => Promise.resolve() };
const t: Record<string, string> = {};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-approvals-api-"));
  store = await openStore({ dataDir: join(root, "data") });
  recordings = new FileRecordingStore({ dataDir: join(root, "data") });
  const logger = pino({ level: "silent" });
  tokens = await TokenService.open({
    keyDir: join(root, "data"),
    store,
    serviceAccounts: [
      { name: "agent", groups: ["agents"], sshPublicKeys: [] },
      { name: "dba", groups: ["dba"], sshPublicKeys: [] },
      { name: "bystander", groups: ["agents"], sshPublicKeys: [] },
    ],
    defaultTtlMs: 15 * 60_000,
    maxTtlMs: 3_600_000,
    logger,
  });
  const adminToken = await writeAdminToken(join(root, "data"));
  metrics = new GatewayMetrics();
  const registry = new SessionRegistry();
  const approvalStore = store.approvals;
  if (approvalStore === undefined) throw new Error("no approval store");
  const audit = {
    append: (input: AuditEventInput): Promise<AuditRecord> => {
      audited.push(input);
      return Promise.resolve({ ...input, seq: audited.length, time: new Date().toISOString(), prevHash: "", hash: "" });
    },
  };
  service = new ApprovalService({ store: approvalStore, audit, notifier, logger, liveSessions: registry, connections: ["orders"], grants: { approvers: ["dba"], minApprovals: 1, maxDuration: 3_600_000, timeout: 3_600_000, required: [] } });
  await service.start();
  api = await createApiServer({
    authenticate: new Authenticator({ tokens, issuers: new TrustedIssuers({ issuers: [], logger }) }).authenticate,
    roles: ROLE_GROUPS,
    store,
    tokens,
    recordings,
    audit: { verify: () => Promise.resolve({ ok: true, records: 0, lastSeq: 0 }) },
    liveSessions: registry,
    adminToken,
    metrics,
    logger,
    approvals: { approvals: service, deliveries: (id) => approvalStore.listDeliveries(id) },
  });
  for (const sa of ["agent", "dba", "bystander"]) t[sa] = (await tokens.mint(sa, { createdBy: "test" })).token;
  t["admin"] = adminToken;
  t["platform"] = (await tokens.mintFor({ kind: "person", id: "user:ops@example.com", name: "ops", groups: ["platform"] }, { ttlMs: 600_000, createdBy: "test" })).token;
  t["auditor"] = (await tokens.mintFor({ kind: "person", id: "user:aud@example.com", name: "aud", groups: ["security"] }, { ttlMs: 600_000, createdBy: "test" })).token;
});

afterAll(async () => {
  await api.close();
  await service.close();
  await tokens.close();
  await metrics.close();
  await recordings.close();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

async function call(method: "GET" | "POST", url: string, as?: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await api.inject({
    method,
    url,
    headers: as === undefined ? {} : { authorization: `Bearer ${t[as] ?? ""}` },
    ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
  });
  return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
}

describe("approvals routes", () => {
  it("are declared for the user role (deciding: approver) and refuse anonymous callers", async () => {
    const mine = api.routes.filter((r) => r.url.startsWith("/v1/approvals") || r.url.startsWith("/v1/access"));
    expect(mine.length).toBeGreaterThanOrEqual(9);
    for (const r of mine) {
      expect(r.access, `${r.method} ${r.url}`).toBe(/\/(approve|deny)$/.test(r.url) ? "approver" : "user");
      if (r.method === "HEAD") continue;
      const res = await call(r.method as "GET" | "POST", r.url.replace(":id", "apr_x"));
      expect(res.status, `${r.method} ${r.url}`).toBe(401);
    }
  });

  it("show a request to its requester, its approvers, admins and auditors only; only approvers decide", async () => {
    const created = await call("POST", "/v1/access/requests", "agent", { connection: "orders", duration: "15m", reason: "debug" });
    expect(created.status).toBe(201);
    const id = (created.json["request"] as { id: string }).id;
    expect(audited.at(-1)).toMatchObject({ type: "approval.requested", details: { approvalId: id } });

    for (const who of ["agent", "dba", "admin", "auditor"]) expect((await call("GET", `/v1/approvals/${id}`, who)).status, who).toBe(200);
    expect((await call("GET", `/v1/approvals/${id}`, "bystander")).status).toBe(404);
    const listed = async (who: string) => ((await call("GET", "/v1/approvals", who)).json["requests"] as { id: string }[]).map((r) => r.id);
    expect(await listed("bystander")).not.toContain(id);
    expect(await listed("auditor")).toContain(id);

    const self = await call("POST", `/v1/access/requests/${id}/approve`, "agent", {});
    expect(self.status).toBe(403);
    const auditor = await call("POST", `/v1/approvals/${id}/approve`, "auditor", {});
    expect(auditor.status).toBe(403);
    const bad = await call("POST", `/v1/approvals/${id}/approve`, "dba", { reason: 5 });
    expect(bad.status).toBe(400);
    const ok = await call("POST", `/v1/approvals/${id}/approve`, "dba", { reason: "go" });
    expect(ok.status).toBe(200);
    expect(ok.json["request"]).toMatchObject({ status: "approved", approvals: 1, votes: [{ approver: { id: "sa:dba" }, vote: "approve", reason: "go" }] });
    expect(service.activeGrant("sa:agent", "orders")?.id).toBe(id);
    const again = await call("POST", `/v1/approvals/${id}/deny`, "admin", {});
    expect(again.status).toBe(409);
    expect(again.json).toEqual({ error: { code: "GW_CONFLICT", message: `request ${id} is already approved` } });
    // Admins also see delivery records (none here: no channels configured).
    expect((await call("GET", `/v1/approvals/${id}`, "admin")).json["deliveries"]).toEqual([]);
  });

  it("let a principal with the admin role decide any request", async () => {
    const created = await call("POST", "/v1/access/requests", "bystander", { connection: "orders", duration: "1m", reason: "x" });
    const id = (created.json["request"] as { id: string }).id;
    const r = await call("POST", `/v1/approvals/${id}/deny`, "platform", { reason: "not now" });
    expect(r.status).toBe(200);
    expect(r.json["request"]).toMatchObject({ status: "denied", decisionReason: "not now" });
  });

  it("validate access requests", async () => {
    expect((await call("POST", "/v1/access/requests", "agent", { connection: "orders", duration: "2h", reason: "x" })).status).toBe(400);
    expect((await call("POST", "/v1/access/requests", "agent", { connection: "orders", duration: "soon", reason: "x" })).status).toBe(400);
    expect((await call("POST", "/v1/access/requests", "agent", { connection: "nope", duration: "1m", reason: "x" })).status).toBe(404);
    expect((await call("POST", "/v1/access/requests", "admin", { connection: "orders", duration: "1m", reason: "x" })).status).toBe(400);
    expect((await call("GET", "/v1/approvals?status=maybe", "agent")).status).toBe(400);
  });
});
