/**
 * The pipeline's side of approvals: a hold becomes the final allow or deny through the
 * HoldResolver (fail closed without one, or when it fails), a grant can only stand in for the
 * groups check at session admission, and sessions admitted under a grant end with it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryAuditStore } from "../audit/testing.js";
import type { AuditEventInput, AuditLog, AuditRecord } from "../audit/types.js";
import { deny, type CostDeferral, type Decision, type HoldDecision, type Verdict } from "../core/decision.js";
import type { CostEstimate } from "../core/preview.js";
import { GatewayError } from "../core/errors.js";
import type { ObjectBinding } from "../core/objects.js";
import type { SessionInfo } from "../core/session.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { FileRecordingStore } from "../recording/file-store.js";
import { AccessEvaluator } from "./access.js";
import type { Evaluator } from "./evaluator.js";
import { Pipeline, type HoldRequest, type HoldResolver } from "./pipeline.js";
import { SessionRegistry } from "./registry.js";

class FakeAudit implements AuditLog {
  readonly records: AuditEventInput[] = [];
  append(input: AuditEventInput): Promise<AuditRecord> {
    this.records.push(input);
    return Promise.resolve({ ...input, seq: this.records.length, time: new Date().toISOString(), prevHash: "", hash: "" });
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const connections = [{ type: "postgres" as const, name: "orders", host: "h", port: 5432, database: "d", user: "u", groups: ["agents"], sslmode: "disable" as const }];

function session(groups: string[]): SessionInfo {
  return {
    id: crypto.randomUUID(),
    clientProtocol: "postgres", targetType: "postgres",
    connection: "orders",
    principal: { kind: "service_account", id: "sa:bot", name: "bot", groups },
    clientAddress: "127.0.0.1:1",
    startedAt: new Date(),
    attributes: {},
  };
}

let allowedCalls = 0;
const hold: HoldDecision = {
  type: "hold",
  need: "approval",
  rule: "writes",
  message: "needs approval",
  approvers: ["dba"],
  minApprovals: 1,
  timeoutMs: 1000,
  mode: "wait",
  allow: { type: "allow" },
  onAllowed: () => {
    allowedCalls++;
  },
};

/** Holds every statement. */
const holding: Evaluator = { name: "holding", kinds: ["db.query"], openSession: () => ({ kinds: ["db.query"], evaluate: () => hold }) };

class FakeResolver implements HoldResolver {
  grantUntil: Date | undefined;
  answer: ((r: HoldRequest) => Promise<{ decision: Decision; approvalId?: string }>) | undefined;
  admit(_s: SessionInfo, d: Decision): { decision: Decision; grantUntil?: Date } {
    if (d.type === "deny" && this.grantUntil !== undefined) return { decision: { type: "allow", rule: "grant:g1" }, grantUntil: this.grantUntil };
    return { decision: d };
  }
  resolve(r: HoldRequest): Promise<{ decision: Decision; approvalId?: string }> {
    if (this.answer === undefined) return Promise.reject(new Error("store down"));
    return this.answer(r);
  }
}

describe("Pipeline holds and grants", () => {
  let dir: string;
  let audit: FakeAudit;
  let registry: SessionRegistry;
  let recordings: FileRecordingStore;

  const make = (evaluators: Evaluator[], approvals?: HoldResolver): Pipeline =>
    new Pipeline({
      evaluators,
      audit,
      recordings,
      store: new MemoryAuditStore(),
      registry,
      metrics: new GatewayMetrics(),
      logger: pino({ level: "silent" }),
      endSessionsAtExpiry: true,
      ...(approvals === undefined ? {} : { approvals }),
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "airlock-hold-"));
    audit = new FakeAudit();
    registry = new SessionRegistry();
    recordings = new FileRecordingStore({ dataDir: dir });
    allowedCalls = 0;
  });
  afterEach(async () => {
    await recordings.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const judge = async (p: Pipeline) => {
    const { gate } = await p.startSession(session(["agents"]));
    if (gate === undefined) throw new Error("not admitted");
    return gate.judge({ type: "db.query", session: gate.info, seq: 1, stage: "simple", sql: "delete from t" });
  };

  it("refuses holds when approvals are not configured", async () => {
    const d = await judge(make([new AccessEvaluator(connections), holding]));
    expect(d).toEqual(deny("GW_POLICY_DENIED", "needs approval (approval by dba is required; approvals are not enabled on this gateway)", "writes"));
    expect(allowedCalls).toBe(0);
  });

  it("fails closed when the resolver fails", async () => {
    const d = await judge(make([new AccessEvaluator(connections), holding], new FakeResolver()));
    expect(d).toMatchObject({ type: "deny", rule: "writes", message: "needs approval: approvals are unavailable right now, so it is refused (fail closed)" });
    expect(audit.records.at(-1)).toMatchObject({ type: "db.query", decision: "deny" });
  });

  it("forwards the resolver's allow, audits it with the approval id, and lets the evaluator record what the statement defines", async () => {
    const r = new FakeResolver();
    r.answer = (req) => {
      req.onHold?.({ approvalId: "apr_x", message: "waiting" });
      return Promise.resolve({ decision: { type: "allow", rule: "writes" }, approvalId: "apr_x" });
    };
    const d = await judge(make([new AccessEvaluator(connections), holding], r));
    expect(d).toEqual({ type: "allow", rule: "writes" });
    expect(allowedCalls).toBe(1);
    expect(audit.records.at(-1)).toMatchObject({ type: "db.query", decision: "allow", details: { approvalId: "apr_x" } });
  });

  it("defers a held Parse unaudited, then decides, audits and records each Bind with its parameters", async () => {
    const r = new FakeResolver();
    const asked: HoldRequest[] = [];
    r.answer = (req) => {
      asked.push(req);
      return Promise.resolve(
        req.params?.shown[0] === "1" ? { decision: { type: "allow", rule: "writes" }, approvalId: `apr_${asked.length}` } : { decision: deny("GW_POLICY_DENIED", "denied", "writes"), approvalId: `apr_${asked.length}` },
      );
    };
    const { gate } = await make([new AccessEvaluator(connections), holding], r).startSession(session(["agents"]));
    if (gate === undefined) throw new Error("not admitted");
    const before = audit.records.length;
    const prepared = await gate.judge({ type: "db.query", session: gate.info, seq: 1, stage: "prepare", sql: "delete from t where id = $1", statementName: "s1" });
    const parsed = prepared.type === "allow" ? prepared.deferred : undefined;
    if (parsed === undefined) throw new Error(`expected a deferred hold, got ${prepared.type}`);
    // Nothing asked, nothing audited yet; the statement is defined for later ones (it exists on the target).
    expect(asked).toHaveLength(0);
    expect(audit.records).toHaveLength(before);
    expect(allowedCalls).toBe(1);
    const raw = (v: string): { shown: string[]; values: Buffer[]; formats: number[]; types: number[] } => ({ shown: [v], values: [Buffer.from(v)], formats: [], types: [] });
    expect(await gate.judge({ type: "db.execute", session: gate.info, deferred: parsed, seq: 2, params: raw("1") })).toEqual({ type: "allow", rule: "writes" });
    expect(await gate.judge({ type: "db.execute", session: gate.info, deferred: parsed, seq: 3, params: raw("2") })).toMatchObject({ type: "deny", rule: "writes" });
    // Each Bind was its own request, with its own values.
    expect(asked.map((q) => [q.text, q.params?.shown])).toEqual([
      ["delete from t where id = $1", ["1"]],
      ["delete from t where id = $1", ["2"]],
    ]);
    expect(allowedCalls).toBe(1);
    const records = audit.records.slice(before);
    expect(records).toMatchObject([
      { type: "db.query", decision: "allow", statement: "delete from t where id = $1", details: { seq: 2, stage: "execute", approvalId: "apr_1" } },
      { type: "db.query", decision: "deny", details: { seq: 3, stage: "execute", approvalId: "apr_2" } },
    ]);
    // Values go to the recording, never to the audit log.
    expect(JSON.stringify(records)).not.toMatch(/"1"|"2"/);
    await gate.end("client_closed", { statements: 3, bytesFromClient: 0, bytesToClient: 0 });
    const entries = (await recordings.read(gate.info.id)) ?? [];
    const queries = entries.flatMap((e) => (e.kind === "query" ? [[e.seq, e.stage, e.statementName, e.params, e.decision]] : []));
    expect(queries).toEqual([
      [2, "execute", "s1", ["1"], "allow"],
      [3, "execute", "s1", ["2"], "deny"],
    ]);
  });

  describe("approvals bound to objects", () => {
    const objectsHold: HoldDecision = { ...hold, objects: { relations: [{ name: "t" }], functions: [] } };
    const objectsHolding: Evaluator = { name: "holding", kinds: ["db.query"], openSession: () => ({ kinds: ["db.query"], evaluate: () => objectsHold }) };
    const binding = (qualified: string, oid: number): ObjectBinding => ({ searchPath: "public", objects: [{ kind: "relation", name: "t", resolved: [{ oid, qualified }] }] });

    it("refuses a held statement on a PostgreSQL connection when the engine gave no resolver (fail closed)", async () => {
      const r = new FakeResolver();
      r.answer = () => Promise.resolve({ decision: { type: "allow", rule: "writes" } });
      const d = await judge(make([new AccessEvaluator(connections), objectsHolding], r));
      expect(d).toMatchObject({ type: "deny", rule: "writes", message: "needs approval: the objects it acts on cannot be resolved here, so it cannot be approved (fail closed)" });
      expect(audit.records.at(-1)).toMatchObject({ type: "db.query", decision: "deny", rule: "writes" });
    });

    it("hands the engine's resolver to the approval service; a Parse keeps what its names resolved to, and each Bind carries it", async () => {
      const r = new FakeResolver();
      const asked: HoldRequest[] = [];
      r.answer = (req) => {
        asked.push(req);
        return Promise.resolve({ decision: { type: "allow", rule: "writes" }, approvalId: "apr_1" });
      };
      let now = binding("public.t", 1);
      const resolveObjects = (): Promise<ObjectBinding> => Promise.resolve(now);
      const { gate } = await make([new AccessEvaluator(connections), objectsHolding], r).startSession(session(["agents"]));
      if (gate === undefined) throw new Error("not admitted");
      const prepared = await gate.judge({ type: "db.query", session: gate.info, seq: 1, stage: "prepare", sql: "delete from t where id = $1", statementName: "s1" }, { resolveObjects });
      const parsed = prepared.type === "allow" ? prepared.deferred : undefined;
      expect(parsed?.objects).toEqual(binding("public.t", 1));
      if (parsed === undefined) throw new Error("expected a deferred hold");
      now = binding("app.t", 2);
      const params = { shown: ["1"], values: [Buffer.from("1")], formats: [], types: [] };
      await gate.judge({ type: "db.execute", session: gate.info, deferred: parsed, seq: 2, params }, { resolveObjects });
      expect(asked[0]?.preparedObjects).toEqual(binding("public.t", 1));
      expect(await asked[0]?.bindObjects?.()).toEqual(binding("app.t", 2));
    });

    it("refuses a held Parse whose objects cannot be resolved", async () => {
      const { gate } = await make([new AccessEvaluator(connections), objectsHolding], new FakeResolver()).startSession(session(["agents"]));
      if (gate === undefined) throw new Error("not admitted");
      const d = await gate.judge(
        { type: "db.query", session: gate.info, seq: 1, stage: "prepare", sql: "delete from t", statementName: "s1" },
        { resolveObjects: () => Promise.reject(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "catalog query failed")) },
      );
      expect(d).toMatchObject({ type: "deny", rule: "writes", message: "needs approval: the objects it acts on could not be resolved on the target (catalog query failed), so it is refused (fail closed)" });
    });
  });

  it("lets a grant stand in for the groups check only, and ends the session when the grant ends", async () => {
    const r = new FakeResolver();
    r.grantUntil = new Date(Date.now() + 50);
    const admitted = await make([new AccessEvaluator(connections)], r).startSession(session(["other"]));
    expect(admitted.decision).toEqual({ type: "allow", rule: "grant:g1" });
    expect(audit.records.at(-1)).toMatchObject({ type: "session.start", decision: "allow", rule: "grant:g1" });
    await new Promise((res) => setTimeout(res, 120));
    expect(admitted.gate?.termination).toEqual({ reason: "expired", detail: "the access grant expired" });

    const refusing: Evaluator = { name: "other", kinds: [], evaluateSession: () => deny("GW_ACCESS_DENIED", "blocked", "blocked") };
    const blocked = await make([new AccessEvaluator(connections), refusing], r).startSession(session(["other"]));
    expect(blocked.decision).toMatchObject({ type: "deny", rule: "blocked" });
    expect(blocked.gate).toBeUndefined();
  });
  it("a cost deferral: the Parse is allowed unaudited; each Bind is decided with its own estimate, audited, and a hold is resolved with its values", async () => {
    const r = new FakeResolver();
    const asked: HoldRequest[] = [];
    r.answer = (req) => {
      asked.push(req);
      return Promise.resolve({ decision: { type: "allow", rule: "costly" }, approvalId: "apr_c" });
    };
    const decide = async (estimate: (() => Promise<CostEstimate>) | undefined): Promise<Verdict> => {
      if (estimate === undefined) return deny("GW_POLICY_DENIED", "no estimate", "costly");
      const e = await estimate();
      if (e.rows > 1000) return deny("GW_POLICY_DENIED", "too many rows", "costly");
      return e.rows > 100 ? { ...hold, rule: "costly", onAllowed: () => undefined } : { type: "allow" };
    };
    const deferral: CostDeferral = { type: "defer", rule: "costly", message: "too costly", decide };
    const costly: Evaluator = { name: "costly", kinds: ["db.query"], openSession: () => ({ kinds: ["db.query"], evaluate: () => deferral }) };
    const { gate } = await make([new AccessEvaluator(connections), costly], r).startSession(session(["agents"]));
    if (gate === undefined) throw new Error("not admitted");
    const before = audit.records.length;
    const prepared = await gate.judge({ type: "db.query", session: gate.info, seq: 1, stage: "prepare", sql: "select * from t where id > $1", statementName: "" });
    const parsed = prepared.type === "allow" ? prepared.deferred : undefined;
    if (parsed === undefined) throw new Error(`expected a deferral, got ${prepared.type}`);
    expect(audit.records).toHaveLength(before);
    const raw = (v: string): { shown: string[]; values: Buffer[]; formats: number[]; types: number[] } => ({ shown: [v], values: [Buffer.from(v)], formats: [], types: [] });
    const rows = (n: number) => (): Promise<CostEstimate> => Promise.resolve({ cost: n, rows: n });
    expect(await gate.judge({ type: "db.execute", session: gate.info, deferred: parsed, seq: 2, params: raw("990"), estimate: rows(10) })).toEqual({ type: "allow" });
    expect(await gate.judge({ type: "db.execute", session: gate.info, deferred: parsed, seq: 3, params: raw("0"), estimate: rows(1e6) })).toMatchObject({ type: "deny", rule: "costly", message: "too many rows" });
    expect(await gate.judge({ type: "db.execute", session: gate.info, deferred: parsed, seq: 4, params: raw("500"), estimate: rows(500) })).toEqual({ type: "allow", rule: "costly" });
    expect(asked.map((q) => [q.text, q.params?.shown])).toEqual([["select * from t where id > $1", ["500"]]]);
    // No estimator (an engine that cannot estimate): refused, fail closed.
    expect(await gate.judge({ type: "db.execute", session: gate.info, deferred: parsed, seq: 5, params: raw("1") })).toMatchObject({ type: "deny", message: "no estimate" });
    expect(audit.records.slice(before)).toMatchObject([
      { type: "db.query", decision: "allow", details: { seq: 2, stage: "execute" } },
      { type: "db.query", decision: "deny", rule: "costly", details: { seq: 3, stage: "execute" } },
      { type: "db.query", decision: "allow", details: { seq: 4, stage: "execute", approvalId: "apr_c" } },
      { type: "db.query", decision: "deny", details: { seq: 5, stage: "execute" } },
    ]);
    // A simple query with a deferral (never made by the SQL evaluator) is refused, not allowed.
    expect(await gate.judge({ type: "db.query", session: gate.info, seq: 6, stage: "simple", sql: "select 1" })).toMatchObject({ type: "deny", message: "no estimate" });
  });
});
