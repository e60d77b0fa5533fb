/**
 * Attacks through what notifications show (issue 5 review): the statement and the other
 * request fields are chosen by the requester (an agent), and they land in Slack, email and
 * webhook receivers that people trust.
 */
import { describe, expect, it } from "vitest";
import { PLACEHOLDER_NOTE as CLI_PLACEHOLDER_NOTE, requestDetail } from "../cli/approvals.js";
import type { ApprovalRow } from "../store/approvals.js";
import { emailText, noticePayload, noticeStatement, PLACEHOLDER_NOTE, slackPayload } from "./notify.js";

const ROW: ApprovalRow = {
  id: "apr_abc",
  kind: "statement",
  status: "pending",
  requesterId: "sa:agent",
  requesterKind: "service_account",
  requesterName: "agent",
  connection: "orders",
  statement: "delete from items where id = 1",
  rule: "writes",
  approvers: ["dba"],
  minApprovals: 1,
  mode: "wait",
  createdAt: new Date("2026-01-01T00:00:00Z"),
  expiresAt: new Date("2026-01-01T00:10:00Z"),
};

interface SlackBlock {
  readonly type: string;
  readonly text?: { readonly text: string };
  readonly fields?: readonly { readonly text: string }[];
  readonly elements?: readonly { readonly text: string }[];
}

function slackTexts(r: ApprovalRow, publicUrl?: string): { text: string; blocks: string[] } {
  const p = slackPayload("approval.requested", r, publicUrl) as { text: string; blocks: SlackBlock[] };
  const blocks = p.blocks.flatMap((b) => [b.text?.text ?? "", ...(b.fields ?? []).map((f) => f.text), ...(b.elements ?? []).map((e) => e.text)]);
  return { text: p.text, blocks };
}

describe("Slack payloads", () => {
  it("cannot be given links, mentions or a closed code block by the statement", () => {
    const statement = "delete from t where note = '```\n<https://evil.example/approve|Approve here> <!channel> &amp;'";
    const { text, blocks } = slackTexts({ ...ROW, statement });
    const all = [text, ...blocks].join("\n");
    expect(all).not.toContain("<https://evil");
    expect(all).not.toContain("<!channel>");
    expect(all).toContain("&lt;https://evil.example/approve|Approve here&gt; &lt;!channel&gt; &amp;amp;");
    const code = blocks.find((b) => b.startsWith("```")) ?? "";
    // One code block: it opens at the start and closes at the end, never in between.
    expect(code.endsWith("```")).toBe(true);
    expect(code.slice(3, -3)).not.toContain("```");
  });

  it("escape the requester's reason and name, but keep Airlock's own link", () => {
    const { blocks } = slackTexts({ ...ROW, kind: "grant", reason: "<!here> please <https://evil.example|approve>", requesterName: "<@U123>" }, "https://gw.example.com");
    const all = blocks.join("\n");
    expect(all).not.toMatch(/<!here>|<https:\/\/evil|<@U123>/);
    expect(all).toContain("<https://gw.example.com/approvals/apr_abc|Approve or deny in the browser>");
  });

  it("stay within Slack's 3000-character text limit even when every character needs escaping", () => {
    const { blocks } = slackTexts({ ...ROW, statement: `select '${"<".repeat(5000)}'` });
    for (const b of blocks) expect(b.length).toBeLessThanOrEqual(3000);
  });
});

describe("email", () => {
  it("subjects carry no line breaks from request fields", () => {
    const mail = emailText("approval.decided", { ...ROW, status: "denied", decisionReason: "no\r\nBcc: victim@example.com" }, undefined);
    expect(mail.subject).not.toMatch(/[\r\n]/);
    expect(mail.subject).toContain("no Bcc: victim@example.com");
  });

  it("bodies set the statement apart so it cannot pose as Airlock's own instructions", () => {
    const statement = "delete from t\n\nApprove: airlock approvals approve apr_other\nDetails: https://evil.example";
    const mail = emailText("approval.requested", { ...ROW, statement }, undefined);
    expect(mail.text.split("\n").filter((l) => l.startsWith("Approve:"))).toEqual(["Approve: airlock approvals approve apr_abc"]);
    expect(mail.text).toContain("    Approve: airlock approvals approve apr_other");
  });
});

describe("secrets in statements", () => {
  const token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJzYTphZ2VudCJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
  const statement = `alter role app password 'Hunter2-Secret!'; create user mapping for app server s options (user 'x', password 'o''brien-pw'); select dblink_connect('host=h password=dbl1nkPw'); select '${token}'`;

  it("are redacted in every notification (webhook, Slack, email) but kept for approvers in the API", () => {
    const shown = noticeStatement(statement);
    for (const secret of ["Hunter2-Secret!", "o''brien-pw", "brien-pw", "dbl1nkPw", token]) expect(shown).not.toContain(secret);
    expect(shown).toContain("alter role app password '[redacted]'");
    const r = { ...ROW, statement, params: [token, "plain"] };
    const outputs = [
      JSON.stringify(noticePayload("approval.requested", r, undefined)),
      JSON.stringify(slackPayload("approval.requested", r, undefined)),
      emailText("approval.requested", r, undefined).text,
    ];
    for (const out of outputs) {
      for (const secret of ["Hunter2-Secret!", "brien-pw", "dbl1nkPw", token]) expect(out).not.toContain(secret);
    }
    expect(JSON.stringify(noticePayload("approval.requested", r, undefined))).toContain('"plain"');
  });

  it("leave ordinary statements untouched", () => {
    expect(noticeStatement("update accounts set password_changed_at = now() where id = 1")).toBe("update accounts set password_changed_at = now() where id = 1");
  });
});

describe("what approvers read", () => {
  it("shows bidi overrides, zero-width characters and escape sequences instead of rendering them", () => {
    // Rendered, U+202E would show the tail reversed; U+200B hides inside a word; ESC starts terminal sequences.
    const statement = "delete from users where id = 1 /*\u202e 1 = di erehw */ or true\u200b;\u001b[2K";
    const reason = "routine\u202e fix";
    const r = { ...ROW, statement, reason };
    // People read Slack and email: there the requester's name is shown safely too.
    const named = { ...r, requesterName: "agent\u202e" };
    const outputs = [
      JSON.stringify(noticePayload("approval.requested", r, undefined)),
      JSON.stringify(slackPayload("approval.requested", named, undefined)),
      JSON.stringify(emailText("approval.requested", named, undefined)),
    ];
    for (const out of outputs) {
      for (const c of ["\u202e", "\u200b", "\u001b"]) expect(out).not.toContain(c);
      expect(out).toContain("\\\\u202e");
    }
    expect(noticeStatement(statement)).toBe("delete from users where id = 1 /*\\u202e 1 = di erehw */ or true\\u200b;\\u001b[2K");
  });
});

describe("statements with bind parameters (extended protocol)", () => {
  it("show the values when the request has them, and otherwise say that each execution is approved on its own", () => {
    const r = { ...ROW, statement: "prepare d (int) as delete from items where id = $1" };
    expect(noticePayload("approval.requested", r, undefined)).toMatchObject({ request: { parameters: "filled at each execution, which is approved on its own" } });
    expect(emailText("approval.requested", r, undefined).text).toContain(PLACEHOLDER_NOTE);
    expect(JSON.stringify(slackPayload("approval.requested", r, undefined))).toContain("each execution is held for approval on its own");
    expect(noticePayload("approval.requested", ROW, undefined)).not.toHaveProperty("request.parameters");
    // A Bind held for approval carries its values: no note, the params themselves.
    const bound = { ...ROW, statement: "delete from items where id = $1", params: ["7"] };
    expect(noticePayload("approval.requested", bound, undefined)).toMatchObject({ request: { params: ["7"] } });
    expect(noticePayload("approval.requested", bound, undefined)).not.toHaveProperty("request.parameters");
    expect(emailText("approval.requested", bound, undefined).text).not.toContain(PLACEHOLDER_NOTE);
  });
});

describe("airlock approvals show", () => {
  it("says the same about $n placeholders, and shows control characters escaped", () => {
    const base = { id: "apr_abc", kind: "statement" as const, status: "pending", requester: { id: "sa:agent", kind: "service_account", name: "agent" }, connection: "orders", approvers: ["dba"], minApprovals: 1, createdAt: "t", expiresAt: "t" };
    expect(requestDetail({ ...base, statement: "delete from items where id = $1" })).toContain(CLI_PLACEHOLDER_NOTE);
    expect(requestDetail({ ...base, statement: "delete from items where id = 1" })).not.toContain(CLI_PLACEHOLDER_NOTE);
    expect(requestDetail({ ...base, statement: "delete from t\u001b[2K\r select 1" }).join("\n")).toContain("delete from t\\x1b[2K\\x0d select 1");
  });
});
