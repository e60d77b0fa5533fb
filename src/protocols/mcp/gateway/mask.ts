/**
 * Masking of what an upstream MCP server answers (issue 16, gateway half): tool results
 * (text content, structured content, embedded resources), resource contents and prompt
 * messages, by the plan the pipeline decided (column rules as JSON paths, detectors over every
 * string leaf and text). Text that parses as JSON is masked as a document (paths apply), other
 * text line by line. Content the gateway cannot read (images, audio, binary resources) is
 * withheld when any mask rule applies (fail closed). Before masking, every value of the
 * upstream's own credential is scrubbed, so an upstream that echoes its token never hands it
 * to the agent.
 */
import type { MaskRule } from "../../../core/decision.js";
import { jsonOrNull } from "../../../core/mcp-call.js";
import { MaskChain, type RuleMasker } from "../../../masking/index.js";

const WITHHELD = "[airlock: binary content withheld: a masking rule applies and it cannot be read]";
const SECRET_MARK = "[REDACTED]";
const MAX_DEPTH = 64;

export class ContentMasker {
  readonly counts: Record<string, number> = {};
  readonly #rules: readonly MaskRule[];
  readonly #maskerFor: (rule: MaskRule) => RuleMasker;
  readonly #chain: MaskChain;
  readonly #secrets: readonly string[];

  constructor(rules: readonly MaskRule[], maskerFor: (rule: MaskRule) => RuleMasker, secrets: readonly string[]) {
    this.#rules = rules;
    this.#maskerFor = maskerFor;
    this.#chain = new MaskChain(rules.filter((r) => r.detectors.length > 0).map(maskerFor));
    this.#secrets = secrets.filter((s) => s.length >= 6);
  }

  get active(): boolean {
    return this.#rules.length > 0;
  }

  #scrub(s: string): string {
    let out = s;
    for (const secret of this.#secrets) {
      if (out.includes(secret)) {
        out = out.split(secret).join(SECRET_MARK);
        this.counts["secret"] = (this.counts["secret"] ?? 0) + 1;
      }
    }
    return out;
  }

  /** A text value: a JSON document masked as one (paths and leaves), else line by line. */
  text(s: string): string {
    const clean = this.#scrub(s);
    if (!this.active) return clean;
    const t = clean.trimStart();
    if (t.startsWith("{") || t.startsWith("[")) {
      const r = this.#chain.json(clean, this.counts, this.#rules, this.#maskerFor);
      if (r.json) return r.text ?? clean;
    }
    return clean
      .split("\n")
      .map((line) => this.#chain.line(line, this.counts) ?? line)
      .join("\n");
  }

  /** A JSON value (structured content, arguments of messages): masked as one document. */
  json(value: unknown): unknown {
    const doc = this.#scrub(jsonOrNull(value));
    if (!this.active) return JSON.parse(doc) as unknown;
    const r = this.#chain.json(doc, this.counts, this.#rules, this.#maskerFor);
    return JSON.parse(r.text ?? doc) as unknown;
  }

  /** One content block of a tool result or prompt message (MCP 2025-06-18 ContentBlock). */
  content(block: unknown, depth = 0): unknown {
    if (typeof block !== "object" || block === null || depth > MAX_DEPTH) return { type: "text", text: WITHHELD };
    const b = block as Record<string, unknown>;
    switch (b["type"]) {
      case "text":
        return { ...b, text: this.text(typeof b["text"] === "string" ? b["text"] : "") };
      case "resource":
        return { ...b, resource: this.resourceContents(b["resource"]) };
      case "resource_link":
        return this.json(b);
      default:
        // image, audio, or a kind this gateway does not know: passed only when nothing is masked.
        return this.active ? { type: "text", text: WITHHELD } : this.json(b);
    }
  }

  /** One entry of a resource's contents: text masked, a blob withheld when a rule applies. */
  resourceContents(c: unknown): unknown {
    if (typeof c !== "object" || c === null) return c;
    const r = c as Record<string, unknown>;
    if (typeof r["text"] === "string") return { ...r, text: this.text(r["text"]) };
    if (typeof r["blob"] === "string" && this.active) {
      const { blob: _blob, ...rest } = r;
      return { ...rest, text: WITHHELD, mimeType: "text/plain" };
    }
    return this.json(r);
  }

  toolResult(result: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...result };
    if (Array.isArray(result["content"])) out["content"] = (result["content"] as unknown[]).map((b) => this.content(b));
    if (result["structuredContent"] !== undefined) out["structuredContent"] = this.json(result["structuredContent"]);
    return out;
  }

  readResource(result: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...result };
    if (Array.isArray(result["contents"])) out["contents"] = (result["contents"] as unknown[]).map((c) => this.resourceContents(c));
    return out;
  }

  getPrompt(result: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...result };
    if (typeof result["description"] === "string") out["description"] = this.text(result["description"]);
    if (Array.isArray(result["messages"])) {
      out["messages"] = (result["messages"] as unknown[]).map((m) => {
        if (typeof m !== "object" || m === null) return m;
        const msg = m as Record<string, unknown>;
        return { ...msg, content: this.content(msg["content"]) };
      });
    }
    return out;
  }
}
