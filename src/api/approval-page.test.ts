import { describe, expect, it } from "vitest";
import type { ApprovalRow, VoteRow } from "../store/approvals.js";
import { renderApprovalPage, safeReturnPath } from "./approval-page.js";

const ROW: ApprovalRow = {
  id: "apr_abc",
  kind: "statement",
  status: "pending",
  requesterId: "sa:agent",
  requesterKind: "service_account",
  requesterName: "agent",
  connection: "orders",
  protocol: "postgres",
  sessionId: "s1",
  statement: "delete from items where id = 1",
  statementHash: "h",
  summary: { operations: ["delete"], relations: ["items"] },
  rule: "writes",
  message: "writes need approval",
  approvers: ["dba"],
  minApprovals: 2,
  mode: "wait",
  createdAt: new Date("2026-01-01T00:00:00Z"),
  expiresAt: new Date("2026-01-01T00:10:00Z"),
};
const VIEWER = { kind: "person" as const, id: "user:bob@example.com", name: "bob@example.com", groups: ["dba"] };
const NOW = new Date("2026-01-01T00:01:00Z");

describe("the approval page", () => {
  it("HTML-escapes every field a requester or approver controls", () => {
    const evil = `<script>alert(1)</script>"'\`<img src=x onerror=alert(2)>`;
    const vote: VoteRow = { requestId: "apr_abc", approverId: "user:e@example.com", approverKind: "person", approverName: evil, vote: "approve", reason: evil, at: NOW };
    const { body, title } = renderApprovalPage({
      view: { request: { ...ROW, statement: `select '${evil}'`, requesterName: evil, connection: evil, rule: evil, message: evil, approvers: [evil], summary: { operations: [evil], relations: [evil] } }, votes: [vote] },
      viewer: { ...VIEWER, name: evil },
      csrf: `"><script>x</script>`,
      now: NOW,
    });
    expect(title).toBe("Approval request apr_abc");
    expect(body).not.toContain("<script");
    expect(body).not.toContain("<img");
    expect(body).not.toMatch(/"'`/u);
    // The only tags are ours: every < in the page starts one of a known set of elements.
    const tags = new Set([...body.matchAll(/<\/?([a-z0-9]+)/gu)].map((m) => m[1]));
    expect([...tags].every((t) => ["h1", "h2", "span", "p", "b", "dl", "dt", "dd", "code", "pre", "table", "tr", "th", "td", "time", "form", "input", "label", "textarea", "div", "button", "footer", "i"].includes(t ?? ""))).toBe(true);
    expect(body).toContain("&#60;script&#62;alert(1)&#60;&#47;script&#62;");
  });

  it("shows what the statement acts on (its names as resolved on the target), escaped", () => {
    const objects = {
      searchPath: "app, public",
      objects: [
        { kind: "relation" as const, name: "orders", resolved: [{ oid: 1, qualified: "public.orders" }] },
        { kind: "function" as const, name: "f", resolved: [{ oid: 2, qualified: "app.f(<b>)" }] },
      ],
    };
    const { body } = renderApprovalPage({ view: { request: { ...ROW, summary: { operations: ["delete"], relations: ["orders"], objects } }, votes: [] }, viewer: VIEWER, now: NOW });
    expect(body).toContain('<dt>Acts on</dt><dd id="objects">orders → public.orders<br>f() → app.f(&#60;b&#62;)');
    expect(body).toContain("search_path app, public");
    expect(renderApprovalPage({ view: { request: ROW, votes: [] }, viewer: VIEWER, now: NOW }).body).not.toContain("Acts on");
  });

  it("shows invisible characters and redacts passwords in the statement, as notifications do", () => {
    const { body } = renderApprovalPage({
      view: { request: { ...ROW, statement: "alter role app password 'Hunter2!'; select 1 /* \u202e */ \u200b" }, votes: [] },
      viewer: VIEWER,
      now: NOW,
    });
    expect(body).not.toContain("Hunter2");
    expect(body).toContain("password &#39;[redacted]&#39;");
    expect(body).toContain("\\u202e");
    expect(body).toContain("\\u200b");
    expect(body).not.toMatch(/[\u202e\u200b]/u);
  });

  it("shows the request, the votes so far, the expiry, and the form only with a CSRF token", () => {
    const vote: VoteRow = { requestId: "apr_abc", approverId: "user:ann@example.com", approverKind: "person", approverName: "ann@example.com", vote: "approve", at: NOW };
    const withForm = renderApprovalPage({ view: { request: ROW, votes: [vote] }, viewer: VIEWER, csrf: "tok", now: NOW }).body;
    expect(withForm).toContain('<pre id="statement">delete from items where id &#61; 1</pre>');
    expect(withForm).toContain("dba — 1 of 2 approvals");
    expect(withForm).toContain("ann@example.com");
    expect(withForm).toContain("delete on items");
    expect(withForm).toContain("(in 9m 0s)");
    expect(withForm).toContain('name="csrf" value="tok"');
    expect(withForm).toContain('method="post" action="&#47;approvals&#47;apr_abc"');
    const without = renderApprovalPage({ view: { request: ROW, votes: [] }, viewer: VIEWER, cannotDecide: "no", now: NOW }).body;
    expect(without).not.toContain("<form");
    expect(without).toContain('id="cannot-decide"');
    const decided = renderApprovalPage({ view: { request: { ...ROW, status: "denied", decidedAt: NOW, decisionReason: "no" }, votes: [] }, viewer: VIEWER, now: NOW }).body;
    expect(decided).toContain("<dt>Deadline</dt>");
    expect(decided).not.toContain("(in ");
  });

  it("lists bind parameters, redacting token-shaped values", () => {
    const token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJzYTphZ2VudCJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
    const { body } = renderApprovalPage({ view: { request: { ...ROW, statement: "update t set a = $1 where id = $2", params: [token, null] }, votes: [] }, viewer: VIEWER, now: NOW });
    expect(body).toContain('id="params"');
    expect(body).not.toContain(token);
    expect(body).toContain("NULL");
  });

  it("takes back only to an approval page (no open redirect)", () => {
    expect(safeReturnPath("/approvals/apr_abc23")).toBe("/approvals/apr_abc23");
    for (const bad of ["//evil.example", "https://evil.example/approvals/apr_a", "/approvals/apr_a/../../v1/tokens", "/approvals/apr_a?x=1", "/approvals/", "/approvals/x", undefined, 3]) {
      expect(safeReturnPath(bad)).toBeUndefined();
    }
  });
});
