import { describe, expect, it } from "vitest";
import type { AuditRecord } from "../types.js";
import { renderRecord, selects } from "./exporter.js";
import { otlpRequest, otlpValue, syslogLine, webhookSignature } from "./sinks.js";

const record: AuditRecord = {
  seq: 7,
  time: "2026-12-07T10:00:00.000Z",
  prevHash: "0".repeat(64),
  hash: "a".repeat(64),
  type: "db.query",
  connection: "prod-orders",
  decision: "deny",
  rule: "no-drop",
  statement: "drop table x",
};

describe("audit export pieces", () => {
  it("filters by type, decision and connection glob (all given must hold)", () => {
    expect(selects({}, record)).toBe(true);
    expect(selects({ types: ["db.query"], decisions: ["deny"], connections: ["prod-*"] }, record)).toBe(true);
    expect(selects({ types: ["auth.failure"] }, record)).toBe(false);
    expect(selects({ decisions: ["allow"] }, record)).toBe(false);
    expect(selects({ connections: ["dev-*"] }, record)).toBe(false);
    const { connection: _none, ...noConnection } = record;
    expect(selects({ connections: ["*"] }, noConnection)).toBe(false);
  });

  it("renders RFC 5424 lines: PRI from facility and severity, MSGID the event type, the record as JSON", () => {
    const line = syslogLine(renderRecord(record), { facility: 13, appName: "airlock" }, "gw-host");
    expect(line).toBe(`<108>1 2026-12-07T10:00:00.000Z gw-host airlock ${process.pid} db.query - \uFEFF${JSON.stringify(record)}`);
    expect(syslogLine(renderRecord({ ...record, decision: "allow" }), { facility: 13, appName: "air lock\n" }, "")).toMatch(/^<110>1 \S+ - airlock \d+ db\.query - /);
  });

  it("signs webhook bodies over timestamp and body", () => {
    const a = webhookSignature("k", "1700000000", '{"records":[]}');
    expect(a).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(webhookSignature("k", "1700000001", '{"records":[]}')).not.toBe(a);
    expect(webhookSignature("other", "1700000000", '{"records":[]}')).not.toBe(a);
  });
});

describe("OTLP encoding", () => {
  it("maps JSON to AnyValue: int64 as strings, doubles, nested lists and maps, null as empty", () => {
    expect(otlpValue({ a: 1, b: 1.5, c: "x", d: true, e: null, f: [1, { g: "h" }] })).toEqual({
      kvlistValue: {
        values: [
          { key: "a", value: { intValue: "1" } },
          { key: "b", value: { doubleValue: 1.5 } },
          { key: "c", value: { stringValue: "x" } },
          { key: "d", value: { boolValue: true } },
          { key: "e", value: {} },
          { key: "f", value: { arrayValue: { values: [{ intValue: "1" }, { kvlistValue: { values: [{ key: "g", value: { stringValue: "h" } }] } }] } } },
        ],
      },
    });
  });

  it("bounds nesting", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(JSON.stringify(otlpValue(deep))).toContain("[too deep]");
  });

  it("one request per batch: resource, scope, and per record its time in ns, severity and event name", () => {
    const req = otlpRequest([renderRecord(record)], { serviceName: "airlock", serviceVersion: "9.9.9" }, "gw") as {
      resourceLogs: { resource: { attributes: unknown[] }; scopeLogs: { logRecords: Record<string, unknown>[] }[] }[];
    };
    const lr = req.resourceLogs[0]?.scopeLogs[0]?.logRecords[0];
    expect(req.resourceLogs[0]?.resource.attributes).toContainEqual({ key: "service.version", value: { stringValue: "9.9.9" } });
    expect(lr).toMatchObject({ timeUnixNano: `${Date.parse(record.time)}000000`, severityNumber: 13, severityText: "WARN", eventName: "airlock.db.query" });
    expect(lr?.["attributes"]).toContainEqual({ key: "airlock.seq", value: { intValue: String(record.seq) } });
  });
});
