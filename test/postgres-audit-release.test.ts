/**
 * Issue 13: an allowed statement is forwarded with its audit record queued (no event-loop turn
 * waiting for the write), and the record is durable in the local log before the statement's
 * result reaches the client. Real PostgreSQL, real node-postgres (simple and extended protocol).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failAuditSettles, failAuditWrites } from "./harness/audit-failure.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
let token: string;

interface AuditRecord {
  readonly seq: number;
  readonly statement?: string;
  readonly decision?: string;
  readonly code?: string;
}

async function auditRecords(): Promise<AuditRecord[]> {
  await t.api("/v1/audit/verify"); // flushes the local log to the store
  return ((await t.api("/v1/audit?afterSeq=0&limit=1000")).body as { records: AuditRecord[] }).records;
}

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "rel", user: "agent", password: token });
  c.on("error", () => undefined); // the gateway may end the session; the test reads the query's error
  await c.connect();
  return c;
}

async function marked(tag: string): Promise<boolean> {
  return (await server.psql(`select count(*) from marks where tag = '${tag}'`, { database: "rel" })).trim() === "1";
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["rel"] });
  await server.psql(`create table marks(tag text); grant all on marks to app;`, { database: "rel" });
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ type: "postgres", name: "rel", host: "127.0.0.1", port: server.port, database: "rel", user: "app", password: "app-password", sslmode: "disable", groups: ["agents"] }],
    policies: [
      { name: "pii", connections: ["rel"], action: "mask", detectors: ["email"], strategy: "redact" },
      { name: "no-drop", connections: ["rel"], match: { operations: ["drop"] }, action: "deny", message: "no drops" },
    ],
  });
  token = await t.mint("agent");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("audit records are durable before results are released", () => {
  it("every statement of a burst (simple and extended) has its record, in order, and the chain verifies", async () => {
    const c = await client();
    try {
      const sent: string[] = [];
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const text = i % 2 === 0 ? `select ${i} as n` : `select $1::int + ${i} as n`;
          sent.push(text);
          return i % 2 === 0 ? c.query(text) : c.query(text, [1]);
        }),
      );
      expect(results.map((r) => (r.rows[0] as { n: number }).n)).toEqual(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? i : i + 1)));
      const records = await auditRecords();
      const mine = records.filter((r) => r.statement !== undefined && sent.includes(r.statement));
      expect(mine.map((r) => r.statement)).toEqual(sent);
      expect(mine.every((r) => r.decision === "allow")).toBe(true);
      expect((await t.api("/v1/audit/verify")).body).toMatchObject({ ok: true });
    } finally {
      await c.end().catch(() => undefined);
    }
  });

  it("when the write before release fails, the result is withheld and the session ends; the record is not lost", async () => {
    const c = await client();
    const failing = failAuditSettles(t.gw);
    let err: unknown;
    let rows: unknown;
    try {
      rows = (await c.query("insert into marks values ('settle-1') returning tag")).rows;
    } catch (e) {
      err = e;
    } finally {
      failing.restore();
      await c.end().catch(() => undefined);
    }
    expect(rows).toBeUndefined();
    expect(failing.attempts()).toBeGreaterThan(0);
    expect((err as Error | undefined)?.message ?? "").toMatch(/audit/);
    // The statement had been forwarded (what the issue allows); its record reached the log.
    expect(await marked("settle-1")).toBe(true);
    const records = await auditRecords();
    expect(records.some((r) => r.statement === "insert into marks values ('settle-1') returning tag" && r.decision === "allow")).toBe(true);
  });

  it("when the record cannot be queued, the statement is refused natively and never reaches the target (both protocols)", async () => {
    const c = await client();
    const failing = failAuditWrites(t.gw);
    const errors: unknown[] = [];
    try {
      await c.query("insert into marks values ('queue-1')").catch((e: unknown) => errors.push(e));
      await c.query("insert into marks values ($1)", ["queue-2"]).catch((e: unknown) => errors.push(e));
    } finally {
      failing.restore();
    }
    try {
      expect(failing.attempts()).toBeGreaterThan(0);
      expect(errors).toHaveLength(2);
      for (const e of errors) expect((e as Error).message).toMatch(/audit/);
      expect(await marked("queue-1")).toBe(false);
      expect(await marked("queue-2")).toBe(false);
      // The session goes on once the log works again.
      expect((await c.query("select 7 as n")).rows).toEqual([{ n: 7 }]);
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});
