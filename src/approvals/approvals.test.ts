/**
 * Unit tests for the pure parts of approvals: how holds combine with other evaluators'
 * verdicts, what an async approval is bound to, the webhook signature and payloads, the
 * session's approval-mode parameter, and the `approvals:` config block. End-to-end behaviour
 * (real PostgreSQL, psql, node-postgres, HTTP and SMTP receivers) lives in test/approvals*.test.ts
 * and test/grants.test.ts.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { HoldDecision, Verdict } from "../core/decision.js";
import type { DbQueryEvent } from "../core/events.js";
import type { SessionEvaluator } from "../policy/evaluator.js";
import { evaluateEvent } from "../policy/pipeline.js";
import { approvalModeFrom } from "../protocols/postgres/engine.js";
import { parseConfig } from "../runtime/config.js";
import type { ApprovalRow } from "../store/approvals.js";
import { normalizeStatement, statementHash, type ParamBinding } from "./binding.js";
import { emailText, noticePayload, sign, slackPayload } from "./notify.js";
import { ApprovalService, newApprovalId } from "./service.js";

const HOLD: HoldDecision = {
  type: "hold",
  need: "approval",
  rule: "writes",
  message: "needs approval",
  approvers: ["dba"],
  minApprovals: 1,
  timeoutMs: 600_000,
  mode: "wait",
  allow: { type: "allow", plan: { masks: [{ rule: "pii", columns: ["*.email"], detectors: [], strategy: "redact" }] } },
};

const EVENT = {
  type: "db.query",
  seq: 1,
  stage: "simple",
  sql: "delete from t where id = 1",
  session: {
    id: "s",
    clientProtocol: "postgres", targetType: "postgres",
    connection: "c",
    principal: { kind: "service_account", id: "sa:a", name: "a", groups: [] },
    clientAddress: "x",
    startedAt: new Date(0),
    attributes: {},
  },
} satisfies DbQueryEvent;

function evaluator(v: Verdict | undefined, async = false): SessionEvaluator {
  return { kinds: ["db.query"], evaluate: () => (async ? Promise.resolve(v) : v) };
}

const ROW: ApprovalRow = {
  id: "apr_abc",
  kind: "statement",
  status: "pending",
  requesterId: "sa:agent",
  requesterKind: "service_account",
  requesterName: "agent",
  connection: "orders",
  statement: "delete from items where id = 1",
  summary: { operations: ["delete"], relations: ["items"] },
  rule: "writes",
  approvers: ["dba"],
  minApprovals: 1,
  mode: "wait",
  createdAt: new Date("2026-01-01T00:00:00Z"),
  expiresAt: new Date("2026-01-01T00:10:00Z"),
};

describe("holds in statement judgement", () => {
  it("a later deny wins over a hold (nobody is asked about a refused statement)", () => {
    const deny: Verdict = { type: "deny", code: "GW_POLICY_DENIED", message: "no", rule: "r" };
    expect(evaluateEvent([evaluator(HOLD), evaluator(deny)], EVENT)).toEqual(deny);
  });

  it("keeps the first hold and merges other evaluators' allows into what it allows once approved", async () => {
    const limit: Verdict = { type: "allow", plan: { masks: [], maxRows: 10, maxRowsRule: "cap" } };
    const v = evaluateEvent([evaluator(limit), evaluator(HOLD), evaluator({ ...HOLD, rule: "second" })], EVENT);
    expect(v).toMatchObject({ type: "hold", rule: "writes", allow: { plan: { maxRows: 10, masks: [{ rule: "pii" }] } } });
    const asyncV = await evaluateEvent([evaluator(limit), evaluator(HOLD, true)], EVENT);
    expect(asyncV).toMatchObject({ type: "hold", rule: "writes", allow: { plan: { maxRows: 10 } } });
  });
});

function bound(values: readonly (string | null)[], formats: readonly number[] = [], types: readonly number[] = []): ParamBinding {
  return { values: values.map((v) => (v === null ? null : Buffer.from(v, "utf8"))), formats, types };
}

describe("approval binding", () => {
  it("ignores only surrounding whitespace and trailing semicolons", () => {
    expect(normalizeStatement("  delete from t;; \n")).toBe("delete from t");
    const h = statementHash("sa:a", "c", "delete from t");
    expect(statementHash("sa:a", "c", " delete from t ;")).toBe(h);
    expect(statementHash("sa:a", "c", "delete  from t")).not.toBe(h);
    expect(statementHash("sa:b", "c", "delete from t")).not.toBe(h);
    expect(statementHash("sa:a", "d", "delete from t")).not.toBe(h);
    expect(statementHash("sa:a", "c", "delete from t", bound(["1"]))).not.toBe(h);
    // Field boundaries cannot be shifted.
    expect(statementHash("sa:a", "cx", "y")).not.toBe(statementHash("sa:a", "c", "xy"));
  });

  it("binds the raw parameter bytes, formats and declared types, not their capped rendering", () => {
    const sql = "delete from t where note = $1";
    const long = "x".repeat(10_000);
    const h = statementHash("sa:a", "c", sql, bound([`${long}a`]));
    expect(statementHash("sa:a", "c", sql, bound([`${long}a`]))).toBe(h);
    // Differ only beyond any display cap.
    expect(statementHash("sa:a", "c", sql, bound([`${long}b`]))).not.toBe(h);
    // Same bytes, other format or other declared type: another value.
    expect(statementHash("sa:a", "c", sql, bound(["1"], [1]))).not.toBe(statementHash("sa:a", "c", sql, bound(["1"], [0])));
    expect(statementHash("sa:a", "c", sql, bound(["1"], [], [23]))).not.toBe(statementHash("sa:a", "c", sql, bound(["1"])));
    // One format for all values equals the same format given per value; unspecified type = 0.
    expect(statementHash("sa:a", "c", sql, bound(["1", "2"], [1]))).toBe(statementHash("sa:a", "c", sql, bound(["1", "2"], [1, 1])));
    expect(statementHash("sa:a", "c", sql, bound(["1"], [], [0]))).toBe(statementHash("sa:a", "c", sql, bound(["1"])));
    // NULL, the empty string, and value boundaries.
    expect(statementHash("sa:a", "c", sql, bound([null]))).not.toBe(statementHash("sa:a", "c", sql, bound([""])));
    expect(statementHash("sa:a", "c", sql, bound(["ab", "c"]))).not.toBe(statementHash("sa:a", "c", sql, bound(["a", "bc"])));
    // No values: the same statement as sent by the simple protocol.
    expect(statementHash("sa:a", "c", sql, bound([]))).toBe(statementHash("sa:a", "c", sql));
  });

  it("ids are short, typeable and unique", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newApprovalId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^apr_[a-km-z2-9]{16}$/);
  });
});

describe("deciders", () => {
  const p = (id: string, groups: string[], kind: "service_account" | "admin" = "service_account") => ({ kind, id, name: id, groups });
  it("members of the approver groups and the admin decide; never the requester", () => {
    expect(ApprovalService.mayDecide(p("sa:dba", ["dba"]), ROW)).toBe(true);
    expect(ApprovalService.mayDecide(p("admin", ["admin"], "admin"), ROW)).toBe(true);
    expect(ApprovalService.mayDecide(p("sa:other", ["agents"]), ROW)).toBe(false);
    expect(ApprovalService.mayDecide(p("sa:agent", ["dba"]), ROW)).toBe(false);
  });
});

describe("notifications", () => {
  it("sign the timestamp and the body with HMAC-SHA256", () => {
    const body = '{"a":1}';
    expect(sign("k", 1700000000, body)).toBe(`sha256=${createHmac("sha256", "k").update(`1700000000.${body}`).digest("hex")}`);
    expect(sign("k", 1700000001, body)).not.toBe(sign("k", 1700000000, body));
  });

  it("carry the request, a link and the commands to decide", () => {
    expect(noticePayload("approval.requested", ROW, "https://gw.example.com/")).toMatchObject({
      type: "approval.requested",
      request: { id: "apr_abc", statement: "delete from items where id = 1", approvers: ["dba"] },
      url: "https://gw.example.com/approvals/apr_abc",
      apiUrl: "https://gw.example.com/v1/approvals/apr_abc",
      commands: { approve: "airlock approvals approve apr_abc", deny: "airlock approvals deny apr_abc --reason TEXT" },
    });
    const slack = slackPayload("approval.requested", ROW, undefined) as { text: string; blocks: { type: string }[] };
    expect(slack.text).toBe("Airlock: agent needs approval to run a statement on orders (rule writes)");
    expect(slack.blocks.map((b) => b.type)).toEqual(["section", "section", "section", "context"]);
    const mail = emailText("approval.decided", { ...ROW, status: "denied", decisionReason: "no" }, undefined);
    expect(mail.subject).toBe("Airlock request apr_abc for agent on orders: denied (no)");
    expect(mail.text).toContain("delete from items where id = 1");
  });
});

describe("the session's approval mode", () => {
  it("comes from airlock.approval or from options (-c / --), and rejects other values", () => {
    expect(approvalModeFrom(new Map())).toBeUndefined();
    expect(approvalModeFrom(new Map([["airlock.approval", "async"]]))).toBe("async");
    expect(approvalModeFrom(new Map([["options", "-c airlock.approval=async"]]))).toBe("async");
    expect(approvalModeFrom(new Map([["options", "--search_path=x --airlock.approval=WAIT"]]))).toBe("wait");
    expect(approvalModeFrom(new Map([["airlock.approval", "yes"]]))).toBe("invalid");
  });
});

describe("configuration", () => {
  it("validates the approvals block and the require_approval settings", () => {
    const c = parseConfig({
      approvals: {
        publicUrl: "https://gw.example.com",
        webhooks: [{ url: "env:SLACK_URL", format: "slack" }],
        grants: { approvers: ["dba"], maxDuration: "4h" },
      },
      policies: [{ name: "w", match: { operations: ["delete"] }, action: "require_approval", approvers: ["dba"], minApprovals: 2, timeout: "30s", mode: "async" }],
    });
    expect(c.approvals.webhooks[0]).toMatchObject({ url: { kind: "env", name: "SLACK_URL" }, format: "slack", maxAttempts: 5, retryDelay: 1000 });
    expect(c.approvals.grants).toMatchObject({ approvers: ["dba"], maxDuration: 14_400_000, minApprovals: 1, required: [] });
    expect(c.policies[0]).toMatchObject({ minApprovals: 2, timeout: 30_000, mode: "async" });
    expect(() => parseConfig({ policies: [{ name: "g", action: "require_grant" }] })).toThrow(/require_grant needs approvals.grants/);
    expect(() => parseConfig({ policies: [{ name: "d", action: "deny", mode: "async" }] })).toThrow(/belong to require_approval/);
    expect(() => parseConfig({ approvals: { webhooks: [{ url: "https://x", format: "teams" }] } })).toThrow(/approvals.webhooks\[0\].format/);
  });
});
