import { readFileSync } from "node:fs";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AUDIT_EVENT_TYPES, type AuditRecord } from "../types.js";
import { OCSF_VERSION, ocsfHead, toOcsf } from "./ocsf.js";

/**
 * OCSF 1.8 JSON Schemas generated from the OCSF schema repository by scripts/ocsf-json-schema.mjs
 * (classes resolved through `extends`, dictionary types, required attributes, enums, and no
 * attribute the class does not define).
 */
interface SchemaFile {
  readonly ocsf_version: string;
  readonly classes: Record<string, { readonly class_uid: number; readonly schema: object }>;
  readonly $defs: Record<string, object>;
}
const file = JSON.parse(readFileSync(new URL("../../../test/fixtures/ocsf/schema-1.8.0.json", import.meta.url), "utf8")) as SchemaFile;
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validators = new Map<number, ValidateFunction>();
for (const c of Object.values(file.classes)) validators.set(c.class_uid, ajv.compile({ ...c.schema, $defs: file.$defs }));

function check(ev: Record<string, unknown>): void {
  const uid = ev["class_uid"];
  const v = typeof uid === "number" ? validators.get(uid) : undefined;
  if (v === undefined) throw new Error(`no schema for class ${String(uid)}`);
  if (!v(ev)) throw new Error(`${String(uid)}: ${JSON.stringify(v.errors?.slice(0, 5))}\n${JSON.stringify(ev)}`);
  expect(ev["type_uid"]).toBe((uid as number) * 100 + (ev["activity_id"] as number));
}

/** Fields to change; `undefined` removes one. */
type Patch = { readonly [K in keyof AuditRecord]?: AuditRecord[K] | undefined };

function merged(patch: Patch): AuditRecord {
  return Object.fromEntries(Object.entries({ ...base, ...patch }).filter(([, v]) => v !== undefined)) as unknown as AuditRecord;
}

const base: AuditRecord = {
  seq: 7,
  time: "2026-12-07T12:00:00.000Z",
  prevHash: "a".repeat(64),
  hash: "b".repeat(64),
  type: "db.query",
  sessionId: "s-1",
  principal: { id: "sa:ci-bot", kind: "service_account", name: "ci-bot" },
  connection: "orders",
  protocol: "postgres",
  clientAddress: "127.0.0.1:53122",
  decision: "deny",
  code: "GW_POLICY_DENIED",
  rule: "no-drop",
  message: "DROP is not allowed",
  statement: "DROP TABLE customers",
  details: { seq: 3, kind: "simple" },
};

describe("OCSF export", () => {
  it("the fixture is the schema of the version the mapping claims", () => {
    expect(file.ocsf_version).toBe(OCSF_VERSION);
  });

  it("maps each kind of record to its class, valid against the OCSF schema", () => {
    const cases: [Patch, number, number][] = [
      [{ type: "db.query", statement: "DROP TABLE customers" }, 6005, 7],
      [{ type: "db.query", statement: "select * from t", decision: "allow" }, 6005, 4],
      [{ type: "db.query", protocol: "redis", statement: "GET session:1", decision: "allow" }, 6005, 1],
      [{ type: "db.result", statement: undefined, details: { rowCount: 3, masked: 2 } }, 6005, 1],
      [{ type: "ssh.command", protocol: "ssh", statement: "rm -rf /" }, 4007, 99],
      [{ type: "session.start", decision: "allow" }, 3002, 1],
      [{ type: "session.end", decision: undefined }, 3002, 2],
      [{ type: "agent.connect", decision: "allow", connection: undefined, statement: undefined, details: { agentId: "a-1", group: "dc-east", version: "0.1.0" } }, 3002, 1],
      [{ type: "agent.connect", decision: "deny", principal: undefined, connection: undefined, statement: undefined, details: { group: "dc-east" } }, 3002, 1],
      [{ type: "agent.disconnect", decision: undefined, connection: undefined, statement: undefined, details: { agentId: "a-1", group: "dc-east", why: "closed" } }, 3002, 2],
      [{ type: "auth.failure", principal: undefined, decision: undefined, details: { claimedUser: "mallory" } }, 3002, 1],
      [{ type: "auth.failure", principal: undefined, decision: undefined, details: {}, clientAddress: "[::1]:4000" }, 3002, 1],
      [{ type: "approval.requested", decision: undefined }, 0, 99],
      [{ type: "gateway.start", principal: undefined, sessionId: undefined, clientAddress: undefined, connection: undefined }, 0, 99],
    ];
    for (const [patch, classUid, activityId] of cases) {
      const r = merged(patch);
      const ev = toOcsf(r, "1.2.3");
      check(ev);
      expect([r.type, ev["class_uid"], ev["activity_id"]]).toEqual([r.type, classUid, activityId]);
    }
  });

  it("an agent's tunnel is a logon to the agent service of its group, with the agent's address", () => {
    const ev = toOcsf(merged({ type: "agent.connect", decision: "allow", connection: undefined, statement: undefined, clientAddress: "10.0.0.2:40000", details: { agentId: "a-1", group: "dc-east", version: "0.1.0" } }), "1.2.3");
    check(ev);
    expect(ev).toMatchObject({ service: { name: "agent:dc-east" }, src_endpoint: { ip: "10.0.0.2", port: 40000 }, user: { uid: "sa:ci-bot" } });
    expect(ev["unmapped"]).toMatchObject({ airlock: { type: "agent.connect", details: { agentId: "a-1", group: "dc-east", version: "0.1.0" } } });
  });

  it("HTTP and Kubernetes requests map to HTTP Activity, by method", () => {
    const r = merged({ type: "http.request", protocol: "http", statement: "POST /payments?x=1" });
    const ev = toOcsf(r, "1.2.3");
    check(ev);
    expect(ev["class_uid"]).toBe(4002);
    expect(ev["activity_id"]).toBe(6);
    expect(ev["http_request"]).toEqual({ http_method: "POST", url: { path: "/payments", query_string: "x=1" } });
  });

  it("keeps the chain position and the decision: seq, hash, rule, disposition", () => {
    const ev = toOcsf(base, "1.2.3");
    expect(ev["metadata"]).toMatchObject({ sequence: 7, uid: "b".repeat(64), correlation_uid: "s-1", version: OCSF_VERSION, product: { name: "Airlock", version: "1.2.3" } });
    expect(ev).toMatchObject({ action_id: 2, disposition_id: 2, status_id: 2, policy: { name: "no-drop" }, status_code: "GW_POLICY_DENIED" });
    expect(ev["unmapped"]).toMatchObject({ airlock: { type: "db.query", seq: 7, prevHash: "a".repeat(64), decision: "deny" } });
    expect(ev["src_endpoint"]).toEqual({ ip: "127.0.0.1", port: 53122 });
  });

  it("the chain head is a valid Base Event", () => {
    check(ocsfHead({ seq: 9, hash: "c".repeat(64), recordTime: base.time }, "1.2.3", new Date()));
  });

  it("any record of any type maps to a valid event (property)", () => {
    const text = fc.string({ maxLength: 40 });
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom(...AUDIT_EVENT_TYPES),
          decision: fc.option(fc.constantFrom("allow" as const, "deny" as const), { nil: undefined }),
          statement: fc.option(text, { nil: undefined }),
          clientAddress: fc.option(fc.oneof(text, fc.ipV4(), fc.ipV6()), { nil: undefined }),
          principal: fc.option(fc.record({ id: text, kind: fc.constantFrom("service_account" as const, "person" as const, "workload" as const, "admin" as const), name: text }), { nil: undefined }),
          rule: fc.option(text, { nil: undefined }),
          message: fc.option(text, { nil: undefined }),
          details: fc.option(fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null))), { nil: undefined }),
        }),
        (patch) => {
          const r: AuditRecord = { seq: 1, time: base.time, prevHash: base.prevHash, hash: base.hash, type: patch.type };
          const full = Object.fromEntries(Object.entries({ ...r, ...patch }).filter(([, v]) => v !== undefined)) as unknown as AuditRecord;
          check(toOcsf(full, "0.0.0"));
        },
      ),
      { numRuns: 300 },
    );
  });
});
