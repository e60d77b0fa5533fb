import { describe, expect, it } from "vitest";
import type { MaskRule } from "../core/decision.js";
import { MaskChain, NULL_IN_TEXT } from "./chain.js";
import { createMaskerFactory } from "./rules.js";

const maskerFor = createMaskerFactory(Buffer.alloc(32, 7));
const rule = (name: string, detectors: string[], strategy: MaskRule["strategy"] = "redact"): MaskRule => ({ rule: name, columns: [], detectors, strategy });
const emails = rule("emails", ["email"]);
const cards = rule("cards", ["credit_card"]);
const secrets = rule("secrets", ["secret"]);
const nulls = rule("nulls", ["ssn"], "null");

describe("MaskChain: one composition of maskers with per-kind counts", () => {
  const chain = new MaskChain([emails, cards, secrets].map(maskerFor));

  it("runs each rule over the previous one's output and sums the counts per kind", () => {
    const counts: Record<string, number> = { email: 1 };
    const out = chain.text("a@example.com, b@example.org, card 4111 1111 1111 1111, password=hunter22", counts);
    expect(out).toBe("[EMAIL], [EMAIL], card [CREDIT_CARD], password=[SECRET]");
    expect(counts).toEqual({ email: 3, credit_card: 1, secret: 1 });
  });

  it("leaves a clean value alone: undefined, and no counts", () => {
    const counts: Record<string, number> = {};
    expect(chain.text("nothing to see here", counts)).toBeUndefined();
    expect(chain.range(Buffer.from("nothing to see here"), 0, 19, counts)).toBeUndefined();
    expect(chain.line("nothing to see here", counts)).toBeUndefined();
    expect(counts).toEqual({});
  });

  it("stops at a null strategy: the value is null (text) or [REDACTED] (a terminal line)", () => {
    const withNull = new MaskChain([emails, nulls, cards].map(maskerFor));
    const counts: Record<string, number> = {};
    expect(withNull.text("x@example.com 078-05-1120 4111111111111111", counts)).toBeNull();
    expect(counts).toEqual({ email: 1, ssn: 1 });
    const lineCounts: Record<string, number> = {};
    expect(withNull.line("ssn 078-05-1120", lineCounts)).toBe(NULL_IN_TEXT);
    expect(lineCounts).toEqual({ ssn: 1 });
  });

  it("masks a byte range inside a larger buffer exactly as the text of that range", () => {
    const value = "mail me: ana@example.es or call";
    const buf = Buffer.concat([Buffer.from("HEADER"), Buffer.from(value), Buffer.from("TRAILER ana@example.es")]);
    const rangeCounts: Record<string, number> = {};
    const textCounts: Record<string, number> = {};
    const out = chain.range(buf, 6, 6 + Buffer.byteLength(value), rangeCounts);
    expect(out?.toString("utf8")).toBe(chain.text(value, textCounts));
    expect(rangeCounts).toEqual(textCounts);
    expect(rangeCounts).toEqual({ email: 1 });
  });

  it("masks a UTF-8 byte range with multi-byte characters around the match", () => {
    const value = "¿Correo? josé@example.es — ¡gracias!";
    const buf = Buffer.from(`«${value}»`, "utf8");
    const start = Buffer.byteLength("«");
    const counts: Record<string, number> = {};
    const out = chain.range(buf, start, start + Buffer.byteLength(value), counts);
    expect(out?.toString("utf8")).toBe("¿Correo? [EMAIL] — ¡gracias!");
    expect(counts).toEqual({ email: 1 });
  });

  it("an empty chain masks nothing", () => {
    const empty = new MaskChain([]);
    expect(empty.empty).toBe(true);
    expect(empty.text("a@example.com", {})).toBeUndefined();
  });
});
