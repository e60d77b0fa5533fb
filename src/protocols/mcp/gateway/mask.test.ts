import { describe, expect, it } from "vitest";
import type { MaskRule } from "../../../core/decision.js";
import { createMaskerFactory } from "../../../masking/index.js";
import { ContentMasker } from "./mask.js";

const maskerFor = createMaskerFactory(Buffer.alloc(32, 7));
const rules: MaskRule[] = [{ rule: "pii", columns: ["$.owner.name"], detectors: ["email"], strategy: "redact" }];

describe("ContentMasker", () => {
  it("masks text content, JSON text by path and detectors, structured content, and counts by kind", () => {
    const m = new ContentMasker(rules, maskerFor, []);
    const r = m.toolResult({
      content: [
        { type: "text", text: "mail a@example.com\nand b@example.org" },
        { type: "text", text: '{"owner":{"name":"Bob","email":"bob@example.com"}}' },
      ],
      structuredContent: { owner: { name: "Bob", email: "bob@example.com" }, n: 1 },
    });
    const content = r["content"] as { text: string }[];
    expect(content[0]?.text).toBe("mail [EMAIL]\nand [EMAIL]");
    expect(content[1]?.text).not.toContain("Bob");
    expect(content[1]?.text).not.toContain("bob@example.com");
    expect(JSON.parse(content[1]?.text ?? "")).toMatchObject({ owner: { email: "[EMAIL]" } });
    expect(r["structuredContent"]).toMatchObject({ owner: { email: "[EMAIL]" }, n: 1 });
    expect(JSON.stringify(r["structuredContent"])).not.toContain("Bob");
    expect(m.counts["email"]).toBeGreaterThanOrEqual(4);
  });

  it("withholds content it cannot read when a rule applies, and passes it when none does", () => {
    const image = { type: "image", data: "aGVsbG8=", mimeType: "image/png" };
    expect(new ContentMasker(rules, maskerFor, []).content(image)).toMatchObject({ type: "text", text: expect.stringContaining("withheld") as string });
    expect(new ContentMasker([], maskerFor, []).content(image)).toEqual(image);
    expect(new ContentMasker(rules, maskerFor, []).resourceContents({ uri: "x", blob: "aGk=" })).toMatchObject({ uri: "x", text: expect.stringContaining("withheld") as string });
  });

  it("scrubs the upstream's own credential everywhere, masks or not", () => {
    const m = new ContentMasker([], maskerFor, ["upstream-token-123456"]);
    const r = m.toolResult({ content: [{ type: "text", text: "token=upstream-token-123456" }], structuredContent: { t: "Bearer upstream-token-123456" } });
    expect(JSON.stringify(r)).not.toContain("upstream-token-123456");
    expect((r["content"] as { text: string }[])[0]?.text).toBe("token=[REDACTED]");
  });

  it("masks resources and prompt messages", () => {
    const m = new ContentMasker(rules, maskerFor, []);
    expect(m.readResource({ contents: [{ uri: "file:///a", text: "c@example.com" }] })).toEqual({ contents: [{ uri: "file:///a", text: "[EMAIL]" }] });
    expect(m.getPrompt({ messages: [{ role: "user", content: { type: "text", text: "hi d@example.com" } }] })).toEqual({ messages: [{ role: "user", content: { type: "text", text: "hi [EMAIL]" } }] });
  });
});
