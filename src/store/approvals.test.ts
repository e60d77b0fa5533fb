/**
 * SqlApprovalStore against every backend — embedded PGlite, embedded SQLite and a real
 * PostgreSQL 15 (test harness) — with the same assertions: conditional state changes (decided once, used once),
 * the async binding lookup, grants, expiry and the restart cancellation.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "../../test/harness/postgres.js";
import { SqlApprovalStore, type ApprovalRow } from "./approvals.js";
import { migrate } from "./migrations.js";
import { openPgliteClientInThread, openPostgresClient, openSqliteClient, type SqlClient } from "./sql.js";

let pgServer: PgServer;
let dir: string;
const clients: SqlClient[] = [];

beforeAll(async () => {
  pgServer = await startPostgres({ users: [{ name: "app", password: "secret", auth: "scram-sha-256" }], databases: ["approvals"] });
  dir = await mkdtemp(join(tmpdir(), "airlock-approvals-store-"));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await pgServer.stop();
  await rm(dir, { recursive: true, force: true });
});

const backends: [string, () => Promise<SqlClient>][] = [
  ["pglite", () => openPgliteClientInThread(join(dir, "pglite"))],
  ["sqlite", () => openSqliteClient(join(dir, "sqlite"))],
  ["postgres", () => Promise.resolve(openPostgresClient({ url: pgServer.url({ user: "app", password: "secret", database: "approvals" }) }))],
];

function row(over: Partial<ApprovalRow> & { id: string }): ApprovalRow {
  const now = Date.now();
  return {
    kind: "statement",
    status: "pending",
    requesterId: "sa:a",
    requesterKind: "service_account",
    requesterName: "a",
    connection: "c",
    statement: "delete from t where id = 1",
    params: ["1", null],
    statementHash: "h1",
    summary: { operations: ["delete"], relations: ["t"] },
    rule: "r",
    approvers: ["dba"],
    minApprovals: 1,
    mode: "async",
    createdAt: new Date(now),
    expiresAt: new Date(now + 60_000),
    ...over,
  };
}

describe.each(backends)("SqlApprovalStore (%s)", (_name, open) => {
  let store: SqlApprovalStore;
  beforeAll(async () => {
    const c = await open();
    clients.push(c);
    await migrate(c);
    store = new SqlApprovalStore(c);
  });

  it("round-trips a request and lists it newest first, filtered", async () => {
    const r1 = row({ id: "r1" });
    await store.insertRequest(r1);
    await store.insertRequest(row({ id: "r2", kind: "grant", durationMs: 1_800_000, reason: "why", createdAt: new Date(r1.createdAt.getTime() + 1) }));
    expect(await store.getRequest("r1")).toEqual(r1);
    expect(await store.getRequest("nope")).toBeUndefined();
    expect((await store.listRequests({ limit: 10 })).map((r) => r.id).slice(0, 2)).toEqual(["r2", "r1"]);
    expect((await store.listRequests({ kind: "grant", limit: 10 })).map((r) => r.id)).toEqual(["r2"]);
    expect((await store.listRequests({ status: "approved", limit: 10 })).map((r) => r.id)).toEqual([]);
  });

  it("decides once, counts each approver once, and lets an async approval be used once", async () => {
    const now = new Date();
    expect(await store.insertVote({ requestId: "r1", approverId: "sa:d", approverKind: "service_account", approverName: "d", vote: "approve", at: now })).toBe(true);
    expect(await store.insertVote({ requestId: "r1", approverId: "sa:d", approverKind: "service_account", approverName: "d", vote: "deny", at: now })).toBe(false);
    expect((await store.listVotes("r1")).map((v) => v.vote)).toEqual(["approve"]);
    expect(await store.findPending("sa:a", "c", "h1", now)).toMatchObject({ id: "r1" });
    const done = await store.finish("r1", "approved", now, { reason: "ok", usableUntil: new Date(now.getTime() + 60_000) });
    expect(done).toMatchObject({ status: "approved", decisionReason: "ok" });
    expect(await store.finish("r1", "denied", now)).toBeUndefined();
    expect(await store.consume("sa:other", "c", "h1", now)).toBeUndefined();
    expect(await store.consume("sa:a", "c", "other-hash", now)).toBeUndefined();
    expect(await store.consume("sa:a", "c", "h1", new Date(now.getTime() + 120_000))).toBeUndefined();
    // Only under the rule, approver groups and approval count it was given for.
    expect(await store.consume("sa:a", "c", "h1", now, { rule: "other", approvers: ["dba"], minApprovals: 1 })).toBeUndefined();
    expect(await store.consume("sa:a", "c", "h1", now, { rule: "r", approvers: ["dba", "security"], minApprovals: 1 })).toBeUndefined();
    expect(await store.consume("sa:a", "c", "h1", now, { rule: "r", approvers: ["dba"], minApprovals: 2 })).toBeUndefined();
    expect(await store.consume("sa:a", "c", "h1", now, { rule: "r", approvers: ["dba"], minApprovals: 1 })).toMatchObject({ id: "r1" });
    expect(await store.consume("sa:a", "c", "h1", now)).toBeUndefined();
    expect(await store.markUsed("r1", now)).toBe(false);
  });

  it("keeps active grants, expires overdue requests, cancels waiting ones, and records deliveries", async () => {
    const now = new Date();
    await store.finish("r2", "approved", now, { usableUntil: new Date(now.getTime() + 60_000) });
    expect((await store.activeGrants(now)).map((r) => r.id)).toEqual(["r2"]);
    expect(await store.activeGrants(new Date(now.getTime() + 120_000))).toEqual([]);
    await store.insertRequest(row({ id: "r3", statementHash: "h3", expiresAt: new Date(now.getTime() - 1) }));
    await store.insertRequest(row({ id: "r4", statementHash: "h4", mode: "wait" }));
    expect((await store.expireDue(now)).map((r) => r.id)).toEqual(["r3"]);
    expect((await store.cancelWaiting(now, "restart")).map((r) => r.id)).toEqual(["r4"]);
    expect(await store.getRequest("r4")).toMatchObject({ status: "cancelled", decisionReason: "restart" });
    await store.recordDelivery({ requestId: "r2", channel: "webhook[0] h", event: "approval.requested", attempt: 1, ok: false, httpStatus: 500, at: now });
    await store.recordDelivery({ requestId: "r2", channel: "email", event: "approval.requested", attempt: 1, ok: false, error: "ECONNREFUSED", at: now });
    expect(await store.listDeliveries("r2")).toEqual([
      { requestId: "r2", channel: "webhook[0] h", event: "approval.requested", attempt: 1, ok: false, httpStatus: 500, at: now },
      { requestId: "r2", channel: "email", event: "approval.requested", attempt: 1, ok: false, error: "ECONNREFUSED", at: now },
    ]);
  });
});
