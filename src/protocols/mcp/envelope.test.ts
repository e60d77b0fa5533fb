import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { refusalText } from "../../core/engine.js";
import { approvalIdIn, parseRefusalText, toToolResult } from "./envelope.js";

describe("parseRefusalText", () => {
  it("reads back what refusalText writes, for any message and rule", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.option(fc.string({ minLength: 1, maxLength: 60 }).filter((r) => !/[()]/.test(r)), { nil: undefined }), (message, rule) => {
        const parsed = parseRefusalText(refusalText(rule === undefined ? { message } : { message, rule }, true));
        expect(parsed).toEqual(rule === undefined ? { message } : { message, rule });
      }),
    );
  });

  it("is not fooled by text that is not the gateway's", () => {
    expect(parseRefusalText("ERROR: permission denied for table x")).toBeUndefined();
    expect(parseRefusalText("")).toBeUndefined();
    fc.assert(fc.property(fc.string({ maxLength: 200 }).filter((s) => !s.startsWith("airlock: ")), (s) => parseRefusalText(s) === undefined));
  });
});

describe("approvalIdIn", () => {
  it("finds the id in the hold notice the approval service writes", () => {
    const text = "airlock: deletes need approval: waiting for approval apr_abcdefgh23456789 by dba (until 2026-12-07T16:00:00.000Z); approve with: airlock approvals approve apr_abcdefgh23456789";
    expect(approvalIdIn(text)).toBe("apr_abcdefgh23456789");
    expect(approvalIdIn("nothing here")).toBeUndefined();
  });
  it("never throws and stays bounded on any input", () => {
    fc.assert(fc.property(fc.string({ maxLength: 2000 }), (s) => approvalIdIn(s) === undefined || /^apr_[a-z0-9]{8,40}$/.test(approvalIdIn(s) ?? "")));
  });
});

describe("toToolResult", () => {
  it("marks every status but completed as an error, with the envelope as structured and text content", () => {
    const denied = toToolResult({ status: "denied", code: "GW_POLICY_DENIED", rule: "r", message: "m", fix: "f" });
    expect(denied.isError).toBe(true);
    expect(denied.structuredContent).toMatchObject({ status: "denied", rule: "r" });
    expect(JSON.parse((denied.content[0] as { text: string }).text)).toEqual(denied.structuredContent);
    expect(toToolResult({ status: "completed" }).isError).toBeUndefined();
    expect(toToolResult({ status: "failed", code: "42P01", message: "x" }).isError).toBe(true);
    expect(toToolResult({ status: "pending_approval", approvalId: "apr_x", approvers: [], message: "m", wait: { tool: "wait_approval", arguments: { id: "apr_x" } } }).isError).toBe(true);
  });
});
