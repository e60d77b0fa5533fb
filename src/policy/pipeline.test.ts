import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryAuditStore } from "../audit/testing.js";
import type { AuditEventInput, AuditLog, AuditRecord } from "../audit/types.js";
import { GatewayError } from "../core/errors.js";
import type { SessionInfo } from "../core/session.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { FileRecordingStore } from "../recording/file-store.js";
import { AccessEvaluator } from "./access.js";
import type { Evaluator } from "./evaluator.js";
import { Pipeline } from "./pipeline.js";
import { SessionRegistry } from "./registry.js";

class FakeAudit implements AuditLog {
  readonly records: AuditEventInput[] = [];
  failing = false;
  append(input: AuditEventInput): Promise<AuditRecord> {
    if (this.failing) return Promise.reject(new GatewayError("GW_AUDIT_UNAVAILABLE", "disk full"));
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

const connections = [
  { type: "postgres" as const, name: "orders", host: "h", port: 5432, database: "d", user: "u", groups: ["agents"], sslmode: "disable" as const },
  { type: "postgres" as const, name: "closed", host: "h", port: 5432, database: "d", user: "u", groups: [], sslmode: "disable" as const },
];

function session(connection: string, groups: string[], extra: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: crypto.randomUUID(),
    clientProtocol: "postgres", targetType: "postgres",
    connection,
    principal: { kind: "service_account", id: "sa:bot", name: "bot", groups, tokenId: "tok-1" },
    clientAddress: "127.0.0.1:1",
    startedAt: new Date(),
    attributes: {},
    ...extra,
  };
}

describe("Pipeline", () => {
  let dir: string;
  let audit: FakeAudit;
  let registry: SessionRegistry;
  let recordings: FileRecordingStore;
  let pipeline: Pipeline;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "airlock-pipeline-"));
    audit = new FakeAudit();
    registry = new SessionRegistry();
    recordings = new FileRecordingStore({ dataDir: dir });
    pipeline = new Pipeline({
      evaluators: [new AccessEvaluator(connections)],
      audit,
      recordings,
      store: new MemoryAuditStore(),
      registry,
      metrics: new GatewayMetrics(),
      logger: pino({ level: "silent" }),
      endSessionsAtExpiry: true,
    });
  });
  afterEach(async () => {
    await recordings.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("admits by shared group, audits the decision before returning, and registers the session", async () => {
    const { decision, gate } = await pipeline.startSession(session("orders", ["agents"]));
    expect(decision.type).toBe("allow");
    expect(audit.records.map((r) => [r.type, r.decision])).toEqual([["session.start", "allow"]]);
    expect(registry.list()).toHaveLength(1);
    await gate?.end("client_closed", { statements: 0, bytesFromClient: 0, bytesToClient: 0 });
    expect(registry.list()).toHaveLength(0);
    expect(audit.records.at(-1)?.type).toBe("session.end");
  });

  it("denies other groups, connections with no groups, and unknown connections — each audited", async () => {
    for (const [conn, groups, code] of [
      ["orders", ["other"], "GW_ACCESS_DENIED"],
      ["closed", ["agents"], "GW_ACCESS_DENIED"],
      ["nope", ["agents"], "GW_UNKNOWN_CONNECTION"],
    ] as const) {
      const { decision, gate } = await pipeline.startSession(session(conn, [...groups]));
      expect(gate).toBeUndefined();
      expect(decision).toMatchObject({ type: "deny", code });
    }
    expect(audit.records.filter((r) => r.decision === "deny")).toHaveLength(3);
    expect(registry.list()).toHaveLength(0);
  });

  it("fails closed: when the audit write fails, the session and statements are refused", async () => {
    const { gate } = await pipeline.startSession(session("orders", ["agents"]));
    audit.failing = true;
    const d = await gate?.judge({ type: "db.query", session: gate.info, seq: 1, stage: "simple", sql: "select 1" });
    expect(d).toMatchObject({ type: "deny", code: "GW_AUDIT_UNAVAILABLE" });
    const second = await pipeline.startSession(session("orders", ["agents"]));
    expect(second.decision).toMatchObject({ type: "deny", code: "GW_AUDIT_UNAVAILABLE" });
    expect(second.gate).toBeUndefined();
  });

  it("judgeNow: an allow whose record is queued is decided synchronously; otherwise the record is written first (a promise)", async () => {
    const queued: AuditEventInput[] = [];
    let settled = 0;
    let queueFails = false;
    // The local log's queue/settle (src/audit/log.ts), as far as the pipeline sees them.
    const queueing = Object.assign(audit, {
      queue(input: AuditEventInput): AuditRecord {
        if (queueFails) throw new GatewayError("GW_AUDIT_UNAVAILABLE", "disk full");
        queued.push(input);
        return { ...input, seq: 100 + queued.length, time: new Date().toISOString(), prevHash: "", hash: "" };
      },
      settle(seq?: number): boolean {
        settled = seq ?? 0;
        return true;
      },
    });
    // Statements are allowed by a synchronous verdict (as the SQL policies' verdict cache answers).
    const statements: Evaluator = { name: "statements", kinds: ["db.query"], openSession: () => ({ kinds: ["db.query"], evaluate: () => ({ type: "allow" }) }) };
    const p = new Pipeline({ evaluators: [new AccessEvaluator(connections), statements], audit: queueing, recordings, store: new MemoryAuditStore(), registry, metrics: new GatewayMetrics(), logger: pino({ level: "silent" }), endSessionsAtExpiry: true });
    const { gate } = await p.startSession(session("orders", ["agents"]));
    if (gate === undefined) throw new Error("no gate");
    const event = (seq: number, sql: string) => ({ type: "db.query" as const, session: gate.info, seq, stage: "simple" as const, sql });

    const now = gate.judgeNow(event(1, "select 1"), { settlesBeforeRelease: true });
    expect(now).not.toBeInstanceOf(Promise);
    expect(now).toMatchObject({ type: "allow" });
    expect(queued.map((r) => r.statement)).toEqual(["select 1"]);
    expect(gate.settle()).toBe(true);
    expect(settled).toBe(101);

    // Not settled by the engine before release: appended (awaited) first, as judge() does.
    const appended = audit.records.length;
    const later = gate.judgeNow(event(2, "select 2"), {});
    expect(later).toBeInstanceOf(Promise);
    expect(await later).toMatchObject({ type: "allow" });
    expect(audit.records.slice(appended).map((r) => r.statement)).toEqual(["select 2"]);

    // The queue fails: refused at once (fail closed), nothing queued.
    queueFails = true;
    expect(gate.judgeNow(event(3, "select 3"), { settlesBeforeRelease: true })).toMatchObject({ type: "deny", code: "GW_AUDIT_UNAVAILABLE" });
    expect(queued).toHaveLength(1);
    await gate.end("client_closed", { statements: 3, bytesFromClient: 0, bytesToClient: 0 });
  });

  it("ends sessions when the token expires and when it is revoked", async () => {
    const soon = session("orders", ["agents"], {
      principal: { kind: "service_account", id: "sa:bot", name: "bot", groups: ["agents"], tokenId: "tok-2", expiresAt: new Date(Date.now() + 50) },
    });
    const a = await pipeline.startSession(soon);
    const b = await pipeline.startSession(session("orders", ["agents"]));
    await new Promise((r) => setTimeout(r, 120));
    expect(a.gate?.signal.aborted).toBe(true);
    expect(a.gate?.termination?.reason).toBe("expired");
    expect(b.gate?.signal.aborted).toBe(false);
    expect(registry.terminate({ tokenId: "tok-1" }, "revoked", "token revoked")).toBe(1);
    expect(b.gate?.termination).toEqual({ reason: "revoked", detail: "token revoked" });
  });
});
