/**
 * Gateway instances on one store (SQLite here; test/multi-gateway.test.ts runs two gateway
 * processes on PostgreSQL): chains per instance, lost sessions closed with their statement
 * counts, verification of every chain, a missing chain reported.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeHash, GENESIS_HASH } from "../audit/chain.js";
import type { AuditEventInput, AuditRecord } from "../audit/types.js";
import { verifyAllAudit } from "../audit/verify.js";
import { openSqliteClient, type SqlClient } from "./sql.js";
import { SqlStore } from "./sql-store.js";

const key = Buffer.alloc(32, 7);
let dir: string;
let client: SqlClient;
let a: SqlStore;
let b: SqlStore;

function chainOf(inputs: readonly AuditEventInput[]): AuditRecord[] {
  let prev = GENESIS_HASH;
  return inputs.map((input, i) => {
    const base = { ...input, seq: i + 1, time: new Date(0).toISOString(), prevHash: prev };
    const r: AuditRecord = { ...base, hash: computeHash(key, prev, base) };
    prev = r.hash;
    return r;
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-instances-"));
  client = await openSqliteClient(dir);
  a = new SqlStore(client, { instanceId: "gw-a" });
  b = new SqlStore(client, { instanceId: "gw-b" });
  await a.migrate();
});

afterAll(async () => {
  await client.close();
  await rm(dir, { recursive: true, force: true });
});

describe("gateway instances sharing a store", () => {
  it("keeps a chain per instance, closes a silent instance's sessions as lost with their statement counts, and verifies every chain", async () => {
    const t0 = new Date("2026-01-01T00:00:00Z");
    await a.instances.register({ host: "h", pid: 1, now: t0 });
    await b.instances.register({ host: "h", pid: 2, now: t0 });
    const session = {
      id: "s1",
      protocol: "postgres",
      connection: "orders",
      principalId: "sa:agent",
      principalKind: "service_account" as const,
      principalName: "agent",
      groups: ["agents"],
      clientAddress: "127.0.0.1",
      startedAt: t0,
      attributes: {},
    };
    await a.insertSession(session);
    await a.appendAudit(
      chainOf([
        { type: "session.start", sessionId: "s1", decision: "allow" },
        { type: "db.query", sessionId: "s1", statement: "select 1", decision: "allow" },
        { type: "db.query", sessionId: "s1", statement: "select 2", decision: "allow" },
      ]),
    );
    await b.appendAudit(chainOf([{ type: "gateway.start" }]));
    expect((await a.lastAudit())?.seq).toBe(3);
    expect((await b.lastAudit())?.seq).toBe(1);
    expect((await a.getSession("s1"))?.instanceId).toBe("gw-a");

    // B keeps beating; A falls silent.
    const later = new Date(t0.getTime() + 20_000);
    await b.instances.heartbeat(later);
    expect(await a.instances.reapStale(later, 15_000)).toEqual([]); // A does not reap B, which beat recently
    const lost = await b.instances.reapStale(later, 15_000);
    expect(lost).toEqual([{ id: "s1", instanceId: "gw-a", statements: 2 }]);
    expect(await a.getSession("s1")).toMatchObject({ endReason: "lost", statements: 2 });
    expect(await b.instances.reapStale(later, 15_000)).toEqual([]); // once

    const ok = await verifyAllAudit({ store: b, key });
    expect(ok).toMatchObject({ ok: true, records: 4 });
    expect(ok.chains.map((c) => c.chain)).toEqual(["gw-a", "gw-b"]);
  });

  it("reports a chain that is missing although its instance registered records", async () => {
    await client.execute("DELETE FROM audit_segments WHERE chain = 'gw-a'");
    const r = await verifyAllAudit({ store: b, key });
    expect(r).toMatchObject({ ok: false, reason: "sequence_gap" });
    if (r.ok) throw new Error("unreachable");
    expect(r.detail).toContain("chain gw-a: the chain is missing");
  });
});
