import { createHmac } from "node:crypto";
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { KeyedHasher, hashValue, maskMatch, maskStrategySchema, maskWithEncoding, partialMask, redactLabel } from "./strategies.js";

const KEY = Buffer.alloc(32, 0x5a);
const OTHER_KEY = Buffer.alloc(32, 0xa5);

describe("redact", () => {
  it("shows the kind", () => {
    expect(maskMatch("a@b.io", "email", "redact", KEY)).toBe("[EMAIL]");
    expect(maskMatch("4111111111111111", "credit_card", "redact", KEY)).toBe("[CREDIT_CARD]");
    expect(maskMatch("+14155552671", "phone", "redact", KEY)).toBe("[PHONE]");
    expect(maskMatch("123-45-6789", "ssn", "redact", KEY)).toBe("[SSN]");
    expect(maskMatch("DE89370400440532013000", "iban", "redact", KEY)).toBe("[IBAN]");
    expect(maskMatch("10.0.0.1", "ipv4", "redact", KEY)).toBe("[IPV4]");
  });

  it("shows every credential kind as [SECRET], column rules and unknown kinds as [REDACTED]", () => {
    for (const kind of ["aws_key", "jwt", "private_key", "api_key", "secret"]) expect(redactLabel(kind)).toBe("[SECRET]");
    expect(redactLabel("column")).toBe("[REDACTED]");
    expect(redactLabel("whatever")).toBe("[REDACTED]");
    expect(redactLabel("truncated")).toBe("[TRUNCATED]");
  });
});

describe("partial", () => {
  it.each([
    ["4111 1111 1111 1111", "credit_card", "**** **** **** 1111"],
    ["5500-0000-0000-0004", "credit_card", "****-****-****-0004"],
    ["123-45-6789", "ssn", "***-**-6789"],
    ["+1 (415) 555-2671", "phone", "+* (***) ***-2671"],
    ["john.doe@example.com", "email", "****.***@******e.com"],
    ["GB82 WEST 1234 5698 7654 32", "iban", "**** **** **** **** **54 32"],
  ])("%s (%s) → %s", (original, kind, expected) => {
    expect(partialMask(original, kind)).toBe(expected);
    expect(maskMatch(original, kind, "partial", KEY)).toBe(expected);
  });

  it("degrades to redaction below 8 letters/digits", () => {
    expect(partialMask("10.0.0.1", "ipv4")).toBe("[IPV4]"); // 5 digits
    expect(partialMask("a@b.io", "email")).toBe("[EMAIL]");
    expect(partialMask("1234567", "column")).toBe("[REDACTED]");
    expect(partialMask("12345678", "column")).toBe("****5678");
  });

  it("never shows any part of a credential", () => {
    for (const kind of ["aws_key", "jwt", "private_key", "api_key", "secret"]) {
      expect(partialMask("hunter2-correct-horse-battery", kind)).toBe("[SECRET]");
    }
  });

  it("stars non-ASCII characters and never keeps them", () => {
    expect(partialMask("Jürgen Müller 1234", "column")).toBe("****** ****** 1234");
    expect(partialMask("ab€€€€€€", "column")).toBe("********");
  });

  it("keeps at most the last four letters/digits, each in place", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-ascii", minLength: 0, maxLength: 40 }), (s) => {
        const out = partialMask(s, "column");
        if (out === "[REDACTED]") return;
        expect(out.length).toBe(s.length);
        const alnum = (x: string): string => x.replace(/[^A-Za-z0-9]/g, "");
        expect(alnum(out)).toBe(alnum(s).slice(-4));
        for (let i = 0; i < s.length; i++) {
          if (!/[A-Za-z0-9]/.test(s[i]!)) expect(out[i]).toBe(s[i]);
        }
      }),
    );
  });
});

describe("hash", () => {
  it("is hash: + 16 hex digits of HMAC-SHA256(key, kind:original)", () => {
    const expected = createHmac("sha256", KEY).update("email:alice@example.com").digest("hex").slice(0, 16);
    expect(maskMatch("alice@example.com", "email", "hash", KEY)).toBe(`hash:${expected}`);
  });

  it("is stable for the same input and key, so joins still match", () => {
    const a = maskMatch("4111111111111111", "credit_card", "hash", KEY);
    const b = maskMatch("4111111111111111", "credit_card", "hash", Buffer.from(KEY));
    expect(a).toMatch(/^hash:[0-9a-f]{16}$/);
    expect(b).toBe(a);
  });

  it("depends on the key, the kind and the value", () => {
    const base = maskMatch("4111111111111111", "credit_card", "hash", KEY);
    expect(maskMatch("4111111111111111", "credit_card", "hash", OTHER_KEY)).not.toBe(base);
    expect(maskMatch("4111111111111111", "phone", "hash", KEY)).not.toBe(base);
    expect(maskMatch("4111111111111112", "credit_card", "hash", KEY)).not.toBe(base);
  });

  it("hashes the UTF-8 bytes: string, bytes and latin1-decoded bytes agree", () => {
    const text = "pässwörd €";
    const bytes = Buffer.from(text, "utf8");
    const fromString = hashValue("secret", text, KEY);
    expect(hashValue("secret", bytes, KEY)).toBe(fromString);
    expect(hashValue("secret", bytes.toString("latin1"), KEY, "latin1")).toBe(fromString);
  });
});

describe("KeyedHasher (prepared HMAC pads)", () => {
  it("equals createHmac for any key length and any value, short or long", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 100 }),
        fc.constantFrom("email", "secret", "column"),
        fc.oneof(fc.string({ unit: "grapheme", maxLength: 50 }), fc.string({ minLength: 4000, maxLength: 5000 })),
        (key, kind, value) => {
          const k = Buffer.from(key);
          const h = new KeyedHasher(k);
          expect(h.hash(kind, value)).toBe(hashValue(kind, value, k));
          expect(h.hash(kind, Buffer.from(value, "utf8"))).toBe(hashValue(kind, value, k));
          const latin1 = Buffer.from(value, "utf8").toString("latin1");
          expect(h.hash(kind, latin1, "latin1")).toBe(hashValue(kind, value, k));
          // the same hasher again: no state left over from the previous value
          expect(h.hash(kind, "x")).toBe(hashValue(kind, "x", k));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("is what maskWithEncoding uses, and wipe() destroys the key", () => {
    const h = new KeyedHasher(KEY);
    expect(maskWithEncoding("a@b.io", "email", "hash", h, "utf8")).toBe(maskMatch("a@b.io", "email", "hash", KEY));
    h.wipe();
    expect(h.hash("email", "a@b.io")).not.toBe(maskMatch("a@b.io", "email", "hash", KEY));
  });
});

describe("null", () => {
  it("is SQL NULL", () => {
    expect(maskMatch("a@b.io", "email", "null", KEY)).toBeNull();
  });
});

describe("maskStrategySchema", () => {
  it("accepts the four strategies only", () => {
    for (const s of ["redact", "partial", "hash", "null"]) expect(maskStrategySchema.parse(s)).toBe(s);
    expect(maskStrategySchema.safeParse("drop").success).toBe(false);
  });
});

describe("no strategy returns the original", () => {
  it("for any value of 8+ characters and any kind", () => {
    const kinds = ["email", "credit_card", "phone", "ssn", "iban", "ipv4", "secret", "jwt", "column"];
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-ascii", minLength: 8, maxLength: 60 }), fc.constantFrom(...kinds), (original, kind) => {
        for (const strategy of ["redact", "partial", "hash", "null"] as const) {
          const out = maskMatch(original, kind, strategy, KEY);
          if (out !== null) expect(out.includes(original)).toBe(false);
        }
      }),
    );
  });
});
