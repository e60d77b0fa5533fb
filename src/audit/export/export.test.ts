import { describe, expect, it } from "vitest";
import type { AuditRecord } from "../types.js";
import { renderRecord, selects } from "./exporter.js";
import { syslogLine, webhookSignature } from "./sinks.js";

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
