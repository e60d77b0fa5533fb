/**
 * One behavioural suite for every Store backend. Each backend's test file calls
 * `registerStoreSuite` with a factory; the same expectations then hold for PGlite and PostgreSQL.
 * The factory is called once per suite (opening PGlite costs seconds), so tests use distinct ids;
 * audit tests share one chain and run in order.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeHash, GENESIS_HASH, verifyChain } from "../audit/chain.js";
import type { AuditEventInput, AuditRecord } from "../audit/types.js";
import type { SessionRow, Store, TokenRow } from "./types.js";
import { BudgetLedger } from "../policy/budgets.js";

export interface StoreUnderTest {
  readonly store: Store;
  cleanup(): Promise<void>;
}

const KEY = Buffer.alloc(32, 7);

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no element ${i}`);
  return x;
}

/** Build a valid chain continuing after `prev` (or from genesis). */
export function makeChain(inputs: readonly AuditEventInput[], prev?: AuditRecord): AuditRecord[] {
  let seq = prev?.seq ?? 0;
  let prevHash = prev?.hash ?? GENESIS_HASH;
  return inputs.map((input) => {
    seq++;
    const base = { ...input, seq, time: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(), prevHash };
    const hash = computeHash(KEY, prevHash, base);
    prevHash = hash;
    return { ...base, hash };
  });
}

function token(overrides: Partial<TokenRow> = {}): TokenRow {
  const now = Date.now();
  return {
    id: randomUUID(),
    principalId: "sa:ci-bot",
    principalKind: "service_account",
    principalName: "ci-bot",
    createdAt: new Date(now - 1000),
    expiresAt: new Date(now + 3_600_000),
    createdBy: "admin",
    ...overrides,
  };
}

function session(overrides: Partial<SessionRow> = {}): SessionRow {
  return {
    id: randomUUID(),
    protocol: "postgres",
    connection: "orders",
    principalId: "sa:ci-bot",
    principalKind: "service_account",
    principalName: "ci-bot",
    groups: ["agents", "ops"],
    clientAddress: "127.0.0.1:50000",
    startedAt: new Date(),
    attributes: { application_name: "psql", tls: "off" },
    ...overrides,
  };
}

export function registerStoreSuite(name: string, factory: () => Promise<StoreUnderTest>): void {
  describe(`Store (${name})`, () => {
    let sut: StoreUnderTest;
    let store: Store;

    beforeAll(async () => {
      sut = await factory();
      store = sut.store;
    });
    afterAll(async () => {
      await sut.cleanup();
    });

    it("reports its kind and migrates idempotently", async () => {
      expect(store.kind).toBe(name);
      await store.migrate();
      await store.migrate();
      expect(await store.lastAudit()).toBeUndefined();
    });

    describe("console documents", () => {
      it("inserts, replaces, lists by kind and name, and removes", async () => {
        const docs = store.consoleDocuments;
        expect(docs).toBeDefined();
        if (docs === undefined) return;
        const at1 = new Date(Date.UTC(2026, 0, 1));
        await docs.put({ kind: "connection", name: "zeta", body: JSON.stringify({ n: 1 }), updatedAt: at1, updatedBy: "admin" });
        await docs.put({ kind: "connection", name: "alpha", body: "{}", updatedAt: at1, updatedBy: "admin" });
        await docs.put({ kind: "policy", name: "alpha", body: '{"p":true}', updatedAt: at1, updatedBy: "admin" });
        const at2 = new Date(Date.UTC(2026, 0, 2));
        await docs.put({ kind: "connection", name: "zeta", body: JSON.stringify({ n: 2, s: "it's \"quoted\"" }), updatedAt: at2, updatedBy: "sa:ops" });
        const conns = await docs.list("connection");
        expect(conns.map((d) => d.name)).toEqual(["alpha", "zeta"]);
        expect(conns[1]).toEqual({ kind: "connection", name: "zeta", body: JSON.stringify({ n: 2, s: "it's \"quoted\"" }), updatedAt: at2, updatedBy: "sa:ops" });
        expect((await docs.list("policy")).map((d) => d.body)).toEqual(['{"p":true}']);
        expect(await docs.remove("connection", "alpha")).toBe(true);
        expect(await docs.remove("connection", "alpha")).toBe(false);
        expect((await docs.list("connection")).map((d) => d.name)).toEqual(["zeta"]);
        await expect(docs.put({ kind: "policy", name: "big", body: "x".repeat(300 * 1024), updatedAt: at1, updatedBy: "admin" })).rejects.toThrow(/larger than/);
      });
    });

    describe("mcp tool pins", () => {
      it("replaces a connection's pins as a whole, keeping other connections' and hostile names as data", async () => {
        const pins = store.mcpPins;
        expect(pins).toBeDefined();
        if (pins === undefined) return;
        const at = new Date("2026-01-02T03:04:05.000Z");
        const pin = (connection: string, tool: string, fingerprint: string) => ({ connection, tool, fingerprint, pinnedAt: at, pinnedBy: "admin" });
        await pins.replace("a", [pin("a", "read", "f1"), pin("a", "x'); DROP TABLE mcp_tool_pins; --", "f2")]);
        await pins.replace("b", [pin("b", "read", "f3")]);
        expect(await pins.list("a")).toEqual([pin("a", "read", "f1"), pin("a", "x'); DROP TABLE mcp_tool_pins; --", "f2")]);
        await pins.replace("a", [pin("a", "read", "f9")]);
        expect(await pins.list("a")).toEqual([pin("a", "read", "f9")]);
        expect(await pins.list("b")).toEqual([pin("b", "read", "f3")]);
        expect(await pins.list("none")).toEqual([]);
      });
    });

    describe("budget counters", () => {
      it("adds counts and reads totals back per window; two ledgers on the store share a budget, and a new one starts from the stored total", async () => {
        const counters = store.budgets;
        expect(counters).toBeDefined();
        if (counters === undefined) return;
        // Windows of now (windows that ended more than 32 days ago are pruned).
        const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
        const key = { budget: `b-${randomUUID()}`, subject: "sa:x", connection: "shop", windowStart: hour };
        expect(await counters.add([{ key, delta: { rows: 5, bytes: 50, statements: 1 } }])).toEqual([{ ...key, rows: 5, bytes: 50, statements: 1 }]);
        expect(await counters.add([{ key, delta: { rows: 2, bytes: 0, statements: 0 } }, { key: { ...key, windowStart: hour + 3_600_000 }, delta: { rows: 1, bytes: 1, statements: 1 } }])).toEqual([
          { ...key, rows: 7, bytes: 50, statements: 1 },
          { ...key, windowStart: hour + 3_600_000, rows: 1, bytes: 1, statements: 1 },
        ]);
        // Two gateways' ledgers (flushing by hand) on one store: 10 rows per hour, shared.
        const budget = { name: `shared-${randomUUID()}`, connections: ["*"], per: "group" as const, window: 3_600_000, rows: 10, warnAt: 1 };
        const info = { id: "s1", clientProtocol: "postgres" as const, targetType: "postgres" as const, connection: "shop", principal: { kind: "service_account" as const, id: "sa:a", name: "a", groups: [] }, clientAddress: "127.0.0.1:1", startedAt: new Date(), attributes: {} };
        const a = new BudgetLedger([budget], { store: counters, flushMs: 3_600_000 });
        const b = new BudgetLedger([budget], { store: counters, flushMs: 3_600_000 });
        try {
          const sa = a.open(info);
          expect(await sa?.statement()).toBeUndefined();
          for (let i = 0; i < 6; i++) expect(sa?.row(1).refusal).toBeUndefined();
          await a.flush();
          const sb = b.open(info);
          expect(await sb?.statement()).toBeUndefined();
          // B learned A's 6 rows: 4 more fit, the fifth is cut.
          for (let i = 0; i < 4; i++) expect(sb?.row(1).refusal).toBeUndefined();
          expect(sb?.row(1).refusal?.message).toContain(`budget ${budget.name} is spent: 10 rows per 1h`);
          await b.flush();
          await a.flush();
          expect(a.list()[0]?.used.rows).toBe(10);
          // A third ledger (a restarted gateway) refuses at once.
          const c = new BudgetLedger([budget], { store: counters, flushMs: 3_600_000 });
          expect((await c.open(info)?.statement())?.message).toContain("is spent");
          await c.close();
        } finally {
          await a.close();
          await b.close();
        }
      });
    });

    describe("tokens", () => {
      it("round-trips a token without revocation fields", async () => {
        const t = token();
        await store.insertToken(t);
        const got = await store.getToken(t.id);
        expect(got).toEqual(t);
        expect(got !== undefined && "revokedAt" in got).toBe(false);
        expect(await store.getToken(randomUUID())).toBeUndefined();
      });

      it("revokes once; a second revocation keeps the first time and actor", async () => {
        const t = token();
        await store.insertToken(t);
        const first = new Date(Date.now() - 500);
        expect(await store.revokeToken(t.id, first, "alice")).toBe(true);
        expect(await store.revokeToken(t.id, new Date(), "bob")).toBe(true);
        const got = await store.getToken(t.id);
        expect(got?.revokedAt?.getTime()).toBe(first.getTime());
        expect(got?.revokedBy).toBe("alice");
        expect(await store.revokeToken("no-such-token", new Date(), "alice")).toBe(false);
      });

      it("lists revoked tokens that have not expired, optionally since a time", async () => {
        const live = token();
        const expired = token({ expiresAt: new Date(Date.now() - 1000) });
        const later = token();
        const untouched = token();
        for (const t of [live, expired, later, untouched]) await store.insertToken(t);
        const t0 = new Date(Date.now() - 10_000);
        const t1 = new Date(Date.now() - 5_000);
        await store.revokeToken(live.id, t0, "admin");
        await store.revokeToken(expired.id, t0, "admin");
        await store.revokeToken(later.id, new Date(), "admin");

        const all = (await store.listRevokedTokens()).map((r) => r.id);
        expect(all).toContain(live.id);
        expect(all).toContain(later.id);
        expect(all).not.toContain(expired.id);
        expect(all).not.toContain(untouched.id);

        const since = await store.listRevokedTokens(t1);
        expect(since.map((r) => r.id)).toContain(later.id);
        expect(since.map((r) => r.id)).not.toContain(live.id);
        expect(since.find((r) => r.id === later.id)?.revokedAt).toBeInstanceOf(Date);
      });

      it("refuses a duplicate token id", async () => {
        const t = token();
        await store.insertToken(t);
        await expect(store.insertToken(t)).rejects.toMatchObject({ code: "GW_STORE" });
      });
    });

    describe("sessions", () => {
      it("round-trips a session and its end", async () => {
        const s = session({ tokenId: "jti-1" });
        await store.insertSession(s);
        // The row says which gateway instance holds the session (issue 18).
        expect(await store.getSession(s.id)).toEqual({ ...s, instanceId: store.instanceId });
        const endedAt = new Date(s.startedAt.getTime() + 1234);
        await store.endSession(s.id, {
          endedAt,
          reason: "client_closed",
          detail: "bye",
          statements: 12,
          bytesFromClient: 5_000_000_000,
          bytesToClient: 42,
        });
        expect(await store.getSession(s.id)).toEqual({
          ...s,
          instanceId: store.instanceId,
          endedAt,
          endReason: "client_closed",
          endDetail: "bye",
          statements: 12,
          bytesFromClient: 5_000_000_000,
          bytesToClient: 42,
        });
        expect(await store.getSession(randomUUID())).toBeUndefined();
      });

      it("keeps hostile strings as data (parameterised SQL)", async () => {
        const evil = "x'); DROP TABLE sessions; --";
        const s = session({ connection: evil, attributes: { [evil]: evil, quote: '"\\' }, groups: [evil] });
        await store.insertSession(s);
        // The row says which gateway instance holds the session (issue 18).
        expect(await store.getSession(s.id)).toEqual({ ...s, instanceId: store.instanceId });
        expect((await store.listSessions({ limit: 5, connection: evil })).map((r) => r.id)).toEqual([s.id]);
      });

      it("lists newest first with limit, offset and connection filter", async () => {
        const conn = `list-${randomUUID()}`;
        const base = Date.now() + 86_400_000; // in the future, so these are the newest overall
        const rows = [0, 1, 2, 3, 4].map((i) => session({ connection: conn, startedAt: new Date(base + i * 1000) }));
        const other = session({ connection: `other-${randomUUID()}`, startedAt: new Date(base + 10_000) });
        for (const r of [at(rows, 2), at(rows, 0), at(rows, 4), other, at(rows, 1), at(rows, 3)]) await store.insertSession(r);

        const page1 = await store.listSessions({ limit: 2, connection: conn });
        expect(page1.map((r) => r.id)).toEqual([at(rows, 4).id, at(rows, 3).id]);
        const page2 = await store.listSessions({ limit: 2, offset: 2, connection: conn });
        expect(page2.map((r) => r.id)).toEqual([at(rows, 2).id, at(rows, 1).id]);
        const all = await store.listSessions({ limit: 3 });
        expect(all.map((r) => r.id)).toEqual([other.id, at(rows, 4).id, at(rows, 3).id]);
      });
    });

    describe("audit", () => {
      it("appends, reads in pages, and round-trips records exactly (hashes still verify)", async () => {
        const inputs: AuditEventInput[] = [
          { type: "gateway.start" },
          {
            type: "db.query",
            sessionId: randomUUID(),
            principal: { id: "sa:ci-bot", kind: "service_account", name: "ci-bot" },
            connection: "orders",
            protocol: "postgres",
            decision: "deny",
            code: "GW_POLICY_DENIED",
            rule: "no-drop",
            statement: "DROP TABLE \"ünïcödé\" -- 🚀 'quoted'",
            details: { rows: 3, ratio: 0.1, big: 12345678901234, flag: true, none: null, text: "a\nb" },
          },
          { type: "session.end", sessionId: "s-2", details: { statements: 0 } },
        ];
        const chain = makeChain(inputs);
        await store.appendAudit(chain);
        expect(await store.lastAudit()).toEqual(chain[2]);
        expect(await store.readAudit(0, 2)).toEqual(chain.slice(0, 2));
        expect(await store.readAudit(2, 10)).toEqual(chain.slice(2));
        expect(await store.readAudit(3, 10)).toEqual([]);
        const back = await store.readAudit(0, 10);
        expect(await verifyChain(back, KEY)).toEqual({ ok: true, records: 3, lastSeq: 3 });
      });

      it("is idempotent for records already present and keeps the stored one on conflict", async () => {
        const prefix = await store.readAudit(0, 100);
        const last = at(prefix, prefix.length - 1);
        const next = makeChain([{ type: "token.create", details: { n: 1 } }, { type: "token.revoke" }], last);
        await store.appendAudit(next);
        await store.appendAudit(next); // retried batch: no error, no duplicates
        const forged = { ...at(next, 0), message: "forged" };
        await store.appendAudit([forged, ...next.slice(1)]);
        const all = await store.readAudit(0, 100);
        expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(all[3]).toEqual(next[0]);
        expect(await verifyChain(all, KEY)).toMatchObject({ ok: true, lastSeq: 5 });
      });

      it("inserts a large batch atomically across statement chunks", async () => {
        const last = await store.lastAudit();
        const big = makeChain(
          Array.from({ length: 1_203 }, (_, i) => ({ type: "db.query" as const, sessionId: `s-${i % 7}`, statement: `SELECT ${i}` })),
          last,
        );
        await store.appendAudit(big);
        expect((await store.lastAudit())?.seq).toBe(5 + 1_203);
        const pages: AuditRecord[] = [];
        let after = 0;
        for (;;) {
          const page = await store.readAudit(after, 400);
          if (page.length === 0) break;
          pages.push(...page);
          after = at(page, page.length - 1).seq;
        }
        expect(pages.length).toBe(5 + 1_203);
        expect(await verifyChain(pages, KEY)).toMatchObject({ ok: true, lastSeq: 1_208 });
      });

      it("round-trips what jsonb could not hold (NUL) and batches larger than one segment", async () => {
        const last = await store.lastAudit();
        const batch = makeChain(
          Array.from({ length: 5_007 }, (_, i) => ({ type: "db.query" as const, statement: i === 3 ? "a\u0000b" : `SELECT ${i}` })),
          last,
        );
        await store.appendAudit(batch);
        const from = last?.seq ?? 0;
        expect((await store.readAudit(from + 3, 1))[0]?.statement).toBe("a\u0000b");
        expect(await store.lastAudit()).toEqual(batch[batch.length - 1]);
        // Read across the segment boundary in odd-sized pages.
        const pages: AuditRecord[] = [];
        let after = from;
        for (;;) {
          const page = await store.readAudit(after, 777);
          if (page.length === 0) break;
          pages.push(...page);
          after = at(page, page.length - 1).seq;
        }
        expect(pages).toEqual(batch);
      });

      it("keeps records already stored when a retried batch overlaps the head", async () => {
        const last = await store.lastAudit();
        const next = makeChain([{ type: "db.query" }, { type: "db.query" }, { type: "db.query" }], last);
        await store.appendAudit(next.slice(0, 2));
        await store.appendAudit([{ ...at(next, 1), message: "forged" }, at(next, 2)]);
        const back = await store.readAudit(last?.seq ?? 0, 10);
        expect(back).toEqual(next);
      });
    });
  });
}
