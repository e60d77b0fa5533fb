import { createHmac } from "node:crypto";
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { GatewayError } from "../core/errors.js";
import { MaskCounts } from "./counts.js";
import { ValueMasker } from "./masker.js";
import type { DetectorName } from "./detectors.js";
import type { MaskStrategy } from "./strategies.js";

const KEY = Buffer.alloc(32, 0x42);
const PII: DetectorName[] = ["email", "credit_card", "phone", "ssn", "iban", "ipv4", "secret"];
const STRATEGIES: readonly MaskStrategy[] = ["redact", "partial", "hash", "null"];
const j = (...parts: string[]): string => parts.join("");

function masker(strategy: MaskStrategy, detectors: DetectorName[] = PII, maxScanBytes?: number): ValueMasker {
  return new ValueMasker({ detectors, strategy, key: KEY, ...(maxScanBytes === undefined ? {} : { maxScanBytes }) });
}

function hmac16(kind: string, original: string): string {
  return "hash:" + createHmac("sha256", KEY).update(`${kind}:${original}`).digest("hex").slice(0, 16);
}

describe("fast path", () => {
  const m = masker("redact");
  it.each(["", "1", "12345", "alice", "hello world", "2024-01-15 10:30:00", "42.50", "550e8400-e29b-41d4-a716-446655440000", "Zürich"])(
    "leaves %j alone (undefined, no rewrite)",
    (text) => {
      expect(m.maskText(text)).toBeUndefined();
      expect(m.maskBytes(Buffer.from(text, "utf8"))).toBeUndefined();
    },
  );

  it("does not count anything for clean values", () => {
    const counts = new MaskCounts();
    m.maskBytes(Buffer.from("plain text"), counts);
    m.maskText("1234", counts);
    expect(counts.isEmpty()).toBe(true);
  });
});

describe("maskText", () => {
  it("replaces each detected value and counts per kind", () => {
    const m = masker("redact");
    const r = m.maskText("alice@example.com paid with 4111 1111 1111 1111 from 10.0.0.7, call 415-555-2671 or bob@example.org");
    expect(r).toEqual({
      value: "[EMAIL] paid with [CREDIT_CARD] from [IPV4], call [PHONE] or [EMAIL]",
      counts: { email: 2, credit_card: 1, ipv4: 1, phone: 1 },
    });
  });

  it("applies partial and hash per match", () => {
    expect(masker("partial").maskText("card 4111 1111 1111 1111 ssn 123-45-6789")?.value).toBe("card **** **** **** 1111 ssn ***-**-6789");
    expect(masker("hash").maskText("to alice@example.com.")?.value).toBe(`to ${hmac16("email", "alice@example.com")}.`);
  });

  it("makes the whole value NULL for strategy null, even for a match inside longer text", () => {
    expect(masker("null").maskText("note: call +44 20 7946 0958 tomorrow")).toEqual({ value: null, counts: { phone: 1 } });
  });

  it("only runs the detectors it was given", () => {
    const m = masker("redact", ["email"]);
    expect(m.maskText("4111 1111 1111 1111")).toBeUndefined();
    expect(m.maskText("x a@b.io 4111 1111 1111 1111")?.value).toBe("x [EMAIL] 4111 1111 1111 1111");
  });

  it("shows [SECRET] for every key of a .env file (cat .env)", () => {
    const env = [
      "APP_ENV=production",
      j("AWS_ACCESS_KEY_ID=AKIA", "IOSFODNN7EXAMPLE"),
      j("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY"),
      j("GITHUB_TOKEN=ghp", "_aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY2zA4"),
      j("SESSION_JWT=eyJhbGciOiJIUzI1NiJ9", ".eyJzdWIiOiIxIn0.c2lnbmF0dXJl"),
      "DATABASE_URL=postgres://app:Sup3r-Secret@db:5432/app",
      "DB_PASSWORD=hunter2",
      "PORT=8080",
    ].join("\n");
    const r = masker("redact", ["secret"]).maskText(env);
    expect(r?.value).toBe(
      [
        "APP_ENV=production",
        "AWS_ACCESS_KEY_ID=[SECRET]",
        "AWS_SECRET_ACCESS_KEY=[SECRET]",
        "GITHUB_TOKEN=[SECRET]",
        "SESSION_JWT=[SECRET]",
        "DATABASE_URL=postgres://app:[SECRET]@db:5432/app",
        "DB_PASSWORD=[SECRET]",
        "PORT=8080",
      ].join("\n"),
    );
    expect(Object.values(r?.counts ?? {}).reduce((a, b) => a + b, 0)).toBe(6);
  });

  it("masks a PEM private key inside a larger document", () => {
    const pem = j("-----BEGIN ", "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END ", "OPENSSH PRIVATE KEY-----");
    const r = masker("partial", ["secret"]).maskText(`id_ed25519:\n${pem}\nend`);
    expect(r).toEqual({ value: "id_ed25519:\n[SECRET]\nend", counts: { private_key: 1 } });
  });

  it("masks JSON passwords without touching the structure", () => {
    const r = masker("redact").maskText('{"user":"bob","password":"p@ss w0rd","email":"bob@example.com"}');
    expect(r?.value).toBe('{"user":"bob","password":"[SECRET]","email":"[EMAIL]"}');
  });
});

describe("maskBytes", () => {
  it("agrees with maskText on UTF-8 text", () => {
    const m = masker("partial");
    const text = "Grüße von jürgen@example.com — Karte 5500-0000-0000-0004 ✓";
    const fromText = m.maskText(text);
    expect(fromText?.value).toBe("Grüße von ******@******e.com — Karte ****-****-****-0004 ✓");
    expect(m.maskBytes(Buffer.from(text, "utf8"))?.toString("utf8")).toBe(fromText?.value);
  });

  it("returns the bytes outside matches exactly, even when they are not UTF-8", () => {
    const m = masker("redact");
    const latin1 = Buffer.concat([Buffer.from([0xe9, 0xff, 0x20]), Buffer.from("mail a@b.io "), Buffer.from([0xfe, 0x80])]);
    const out = m.maskBytes(latin1);
    expect(out).toEqual(Buffer.concat([Buffer.from([0xe9, 0xff, 0x20]), Buffer.from("mail [EMAIL] "), Buffer.from([0xfe, 0x80])]));
  });

  it("finds an address with a non-ASCII local part in latin1 bytes too", () => {
    const out = masker("redact").maskBytes(Buffer.from("an: jürgen@example.com.", "latin1"));
    expect(out).toEqual(Buffer.from("an: [EMAIL].", "latin1"));
  });

  it("returns null for strategy null and counts into the accumulator", () => {
    const counts = new MaskCounts();
    expect(masker("null").maskBytes(Buffer.from("ssn 123-45-6789"), counts)).toBeNull();
    expect(counts.toJSON()).toEqual({ ssn: 1 });
  });

  it("masks a range inside a larger buffer exactly as the value on its own (maskRange)", () => {
    const values = ["a@b.io", "4111 1111 1111 1111", "call +1 (415) 555-2671 now", "nothing", "ssn 123-45-6789 and x@y.org", "jürgen@example.com"];
    for (const strategy of ["redact", "partial", "hash", "null"] as const) {
      const m = masker(strategy);
      for (const v of values) {
        const own = Buffer.from(v, "utf8");
        const whole = Buffer.concat([Buffer.from("xx a@b.io "), own, Buffer.from(" 4111 1111 1111 1111")]);
        const start = 10;
        const a = new MaskCounts();
        const b = new MaskCounts();
        expect(m.maskRange(whole, start, start + own.length, a)).toEqual(m.maskBytes(own, b));
        expect(a.toJSON()).toEqual(b.toJSON());
      }
    }
  });

  it("gives a value that is one match its label, equal to rendering it (and counts it)", () => {
    const m = masker("redact");
    const counts = new MaskCounts();
    const first = m.maskBytes(Buffer.from("4111 1111 1111 1111"), counts);
    const second = m.maskBytes(Buffer.from("5500-0000-0000-0004"), counts);
    expect(first?.toString()).toBe(m.maskText("4111 1111 1111 1111")?.value);
    expect(second?.toString()).toBe("[CREDIT_CARD]");
    expect(counts.toJSON()).toEqual({ credit_card: 2 });
  });

  it("accepts a Uint8Array view that is not a Buffer", () => {
    const bytes = new TextEncoder().encode("xx a@b.io");
    const view = new Uint8Array(bytes.buffer, 3, bytes.length - 3);
    expect(masker("redact").maskBytes(view)?.toString()).toBe("[EMAIL]");
  });
});

describe("maskWhole (column rules)", () => {
  it("replaces the whole value whatever it contains", () => {
    expect(masker("redact").maskWhole("anything at all")).toBe("[REDACTED]");
    expect(masker("redact").maskWhole("x", "email")).toBe("[EMAIL]");
    expect(masker("partial").maskWhole("4111111111111111")).toBe("************1111");
    expect(masker("partial").maskWhole("short")).toBe("[REDACTED]");
    expect(masker("null").maskWhole("x")).toBeNull();
    expect(masker("hash").maskWhole("alice@example.com")).toBe(hmac16("column", "alice@example.com"));
    expect(masker("hash").maskWhole("alice@example.com", "email")).toBe(hmac16("email", "alice@example.com"));
  });

  it("agrees between text and bytes, and counts the kind", () => {
    for (const strategy of STRATEGIES) {
      const m = masker(strategy);
      const counts = new MaskCounts();
      const text = "Jürgen Doe, 221B Bäker Street 4711 ✓";
      const fromText = m.maskWhole(text, "column", counts);
      const fromBytes = m.maskWholeBytes(Buffer.from(text), "column", counts);
      expect(fromBytes === null ? null : fromBytes.toString("utf8")).toBe(fromText);
      expect(counts.get("column")).toBe(2);
    }
  });

  it("hash joins: equal values give equal hashes, across maskers with the same key", () => {
    expect(masker("hash").maskWhole("bob@example.com", "email")).toBe(masker("hash").maskText("bob@example.com")?.value);
    const other = new ValueMasker({ detectors: [], strategy: "hash", key: Buffer.alloc(32, 1) });
    expect(other.maskWhole("bob@example.com", "email")).not.toBe(masker("hash").maskWhole("bob@example.com", "email"));
  });

  it("does not star a value beyond the scan limit: partial degrades to redaction", () => {
    const big = "a1".repeat(1000);
    expect(masker("partial", PII, 1024).maskWhole(big)).toBe("[REDACTED]");
    expect(masker("partial", PII, 1024).maskWholeBytes(Buffer.from(big))?.toString()).toBe("[REDACTED]");
  });
});

describe("values longer than maxScanBytes are streamed in windows, never cut", () => {
  const LIMIT = 1024;
  /** A masker whose window is larger than any value below: the unwindowed reference. */
  const reference = (strategy: MaskStrategy, detectors: DetectorName[] = PII): ValueMasker => masker(strategy, detectors, 1 << 24);

  it("masks every match of a long value and keeps all of the rest", () => {
    const parts: string[] = [];
    for (let i = 0; i < 300; i++) parts.push(`lorem ipsum user${i}@example.com dolor`);
    const text = parts.join(" ");
    expect(text.length).toBeGreaterThan(8 * LIMIT);
    const r = masker("redact", PII, LIMIT).maskText(text);
    expect(r?.value).toBe(text.replace(/user\d+@example\.com/g, "[EMAIL]"));
    expect(r?.counts).toEqual({ email: 300 });
    const bytes = masker("redact", PII, LIMIT).maskBytes(Buffer.from(text, "utf8"));
    expect(bytes?.toString("utf8")).toBe(r?.value);
  });

  it("masks a match straddling a window boundary whole, at every offset", () => {
    for (let offset = -40; offset <= 40; offset++) {
      const local = "verylonglocalpartname";
      const email = `${local}@example.com`;
      const head = "w ".repeat(600).slice(0, LIMIT + offset);
      const text = `${head} ${email} tail ${"z ".repeat(2000)}`;
      for (const strategy of STRATEGIES) {
        const r = masker(strategy, PII, LIMIT).maskText(text);
        const b = masker(strategy, PII, LIMIT).maskBytes(Buffer.from(text, "utf8"));
        expect(r?.counts).toEqual({ email: 1 });
        if (strategy === "null") {
          expect(r?.value).toBeNull();
          expect(b).toBeNull();
        } else {
          expect(r?.value?.includes("name"), `${strategy} at ${offset}`).toBe(false);
          expect(r?.value).toBe(reference(strategy).maskText(text)?.value);
          expect(r?.value?.endsWith("z ".repeat(2000))).toBe(true);
          expect(b?.toString("utf8")).toBe(r?.value);
        }
      }
    }
  });

  it("equals an unwindowed scan for any arrangement of values and filler (text and bytes)", () => {
    const token = fc.oneof(
      fc.constantFrom("alice@example.com", "4111 1111 1111 1111", "123-45-6789", "DE89370400440532013000", "password=hunter2xyz"),
      fc.constantFrom("lorem", "ipsum", "é", "日本語", "42", "x", "foo-bar", "2024-05-01"),
      fc.stringMatching(/^[a-z]{1,12}$/),
    );
    fc.assert(
      fc.property(fc.array(token, { minLength: 50, maxLength: 250 }), fc.constantFrom(...STRATEGIES), (tokens, strategy) => {
        const text = tokens.join(" ");
        const want = reference(strategy).maskText(text);
        const got = masker(strategy, PII, LIMIT).maskText(text);
        expect(got?.value).toEqual(want?.value);
        expect(got?.counts ?? {}).toEqual(want?.counts ?? {});
        const bytes = masker(strategy, PII, LIMIT).maskBytes(Buffer.from(text, "utf8"));
        const wantBytes = reference(strategy).maskBytes(Buffer.from(text, "utf8"));
        expect(bytes === undefined || bytes === null ? bytes : bytes.toString("utf8")).toEqual(
          wantBytes === undefined || wantBytes === null ? wantBytes : wantBytes.toString("utf8"),
        );
      }),
      { numRuns: 15 },
    );
  });

  it("masks a match that runs on past a window's end as long as it is (password=… to the end of the line)", () => {
    for (const at of [LIMIT - 300, LIMIT - 20, 10]) {
      const text = "w ".repeat(at >> 1) + "password=" + "correct horse battery staple ".repeat(100) + "\nnext line";
      const want = reference("redact").maskText(text)?.value;
      expect(want).toBeDefined();
      expect(masker("redact", PII, LIMIT).maskText(text)?.value).toBe(want);
      expect(masker("redact", PII, LIMIT).maskBytes(Buffer.from(text))?.toString()).toBe(want);
    }
    // Back-to-back run-on matches: the window grows instead of advancing a few characters a time.
    const runOn = "password=".repeat(2000);
    expect(masker("redact", PII, LIMIT).maskText(runOn)?.value).toBe(reference("redact").maskText(runOn)?.value);
    expect(masker("redact", PII, LIMIT).maskBytes(Buffer.from(runOn))?.toString()).toBe(reference("redact").maskText(runOn)?.value);
  });

  it("masks a private key that straddles a window boundary whole", () => {
    const pem = j("-----BEGIN ", "RSA PRIVATE KEY-----\n") + "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyu\n".repeat(60) + j("-----END ", "RSA PRIVATE KEY-----");
    const window = 16 * 1024; // overlap 4 KiB > the key
    for (const at of [window - 4000, window - 1000, window - 10]) {
      const text = "x ".repeat(at >> 1) + pem + " after" + " y".repeat(window);
      const r = masker("redact", ["secret"], window).maskText(text);
      expect(r?.value?.includes("MIIEpAIB")).toBe(false);
      expect(r?.counts).toEqual({ private_key: 1 });
      expect(r?.value?.endsWith(" after" + " y".repeat(window))).toBe(true);
    }
  });

  it("windows bytes on UTF-8 character boundaries and keeps non-UTF-8 bytes exactly", () => {
    const text = "é ".repeat(2000) + "bob@example.com " + "日本 ".repeat(1000);
    const out = masker("redact", PII, LIMIT).maskBytes(Buffer.from(text, "utf8"));
    expect(out?.toString("utf8")).toBe(text.replace("bob@example.com", "[EMAIL]"));
    const latin = Buffer.concat([Buffer.alloc(3000, 0xe9), Buffer.from(" bob@example.com "), Buffer.alloc(3000, 0xff)]);
    const masked = masker("redact", PII, LIMIT).maskBytes(latin);
    expect(masked).toEqual(Buffer.concat([Buffer.alloc(3000, 0xe9), Buffer.from(" [EMAIL] "), Buffer.alloc(3000, 0xff)]));
  });

  it("returns undefined for a long clean value (the original is forwarded)", () => {
    const text = "nothing to see here ".repeat(1000);
    expect(masker("redact", PII, LIMIT).maskText(text)).toBeUndefined();
    expect(masker("redact", PII, LIMIT).maskBytes(Buffer.from(text))).toBeUndefined();
  });

  it("a value exactly at the limit is scanned normally", () => {
    const text = "a@b.io " + "x".repeat(LIMIT - 7);
    expect(text.length).toBe(LIMIT);
    expect(masker("redact", PII, LIMIT).maskText(text)?.value).toBe("[EMAIL] " + "x".repeat(LIMIT - 7));
  });
});

describe("MaskCounts", () => {
  it("accumulates per kind", () => {
    const c = new MaskCounts();
    c.add("email");
    c.add("email", 2);
    c.addAll({ phone: 1, email: 1 });
    expect(c.get("email")).toBe(4);
    expect(c.total).toBe(5);
    expect(c.toJSON()).toEqual({ email: 4, phone: 1 });
    expect(Object.keys(c.toJSON())).toEqual(["email", "phone"]);
    c.clear();
    expect(c.isEmpty()).toBe(true);
  });
});

describe("configuration and lifecycle", () => {
  it("rejects unknown detectors, short keys and tiny scan limits with GW_CONFIG", () => {
    const bad = (f: () => unknown): void => {
      expect(f).toThrow(GatewayError);
      try {
        f();
      } catch (e) {
        expect((e as GatewayError).code).toBe("GW_CONFIG");
      }
    };
    bad(() => new ValueMasker({ detectors: ["emails" as DetectorName], strategy: "redact", key: KEY }));
    bad(() => new ValueMasker({ detectors: ["email"], strategy: "drop" as MaskStrategy, key: KEY }));
    bad(() => new ValueMasker({ detectors: ["email"], strategy: "hash", key: Buffer.alloc(8) }));
    bad(() => new ValueMasker({ detectors: ["email"], strategy: "redact", key: KEY, maxScanBytes: 10 }));
    bad(() => new ValueMasker({ detectors: ["email"], strategy: "redact", key: KEY, maxScanBytes: 2000.5 }));
  });

  it("expands `secret` and reports its kinds", () => {
    expect(masker("redact", ["ssn", "secret"]).kinds).toEqual(["ssn", "aws_key", "jwt", "private_key", "api_key", "secret"]);
  });

  it("close() wipes its own key copy (not the caller's) and refuses further work", async () => {
    const key = Buffer.alloc(32, 7);
    const m = new ValueMasker({ detectors: ["email"], strategy: "hash", key });
    expect(m.maskText("a@b.io")?.value).toMatch(/^hash:/);
    await m.close();
    await m.close();
    expect(key.equals(Buffer.alloc(32, 7))).toBe(true);
    expect(() => m.maskText("a@b.io")).toThrow(GatewayError);
    expect(() => m.maskBytes(Buffer.from("a@b.io"))).toThrow(GatewayError);
    expect(() => m.maskWhole("x")).toThrow(GatewayError);
  });
});

// ---------------------------------------------------------------------------------------------
// The contract: a masked value never contains the original.

const digit = fc.integer({ min: 0, max: 9 }).map(String);
const digits = (n: number): fc.Arbitrary<string> => fc.array(digit, { minLength: n, maxLength: n }).map((a) => a.join(""));
const lead = fc.integer({ min: 2, max: 9 }).map(String);

function luhnComplete(body: string): string {
  let sum = 0;
  let double = true; // the check digit will sit to the right
  for (let i = body.length - 1; i >= 0; i--) {
    let d = Number(body[i]);
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return body + String((10 - (sum % 10)) % 10);
}

function group(num: string, sep: string): string {
  return sep === "" ? num : (num.match(/.{1,4}/g) ?? []).join(sep);
}

const cardArb = fc
  .constantFrom(
    { prefix: "4", len: 16 },
    { prefix: "4", len: 13 },
    { prefix: "51", len: 16 },
    { prefix: "55", len: 16 },
    { prefix: "37", len: 15 },
    { prefix: "6011", len: 16 },
    { prefix: "3530", len: 16 },
  )
  .chain(({ prefix, len }) => digits(len - prefix.length - 1).map((mid) => luhnComplete(prefix + mid)))
  .chain((num) => fc.constantFrom("", " ", "-").map((sep) => group(num, sep)));

const lowerAlnum = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789".split(""));
const word = (min: number, max: number): fc.Arbitrary<string> =>
  fc.array(lowerAlnum, { minLength: min, maxLength: max }).map((a) => a.join(""));
const emailArb = fc
  .tuple(
    word(1, 10),
    fc.constantFrom("", ".", "_", "+", "-"),
    word(1, 8),
    fc.array(word(1, 8), { minLength: 1, maxLength: 3 }),
    fc.array(fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz".split("")), { minLength: 2, maxLength: 6 }),
  )
  .map(([a, sep, b, labels, tld]) => `${a}${sep}${sep === "" ? "" : b}@${labels.join(".")}.${tld.join("")}`);

const phoneArb = fc.oneof(
  fc.tuple(lead, digits(2), lead, digits(2), digits(4)).map(([a, b, c, d, e]) => `+1 (${a}${b}) ${c}${d}-${e}`),
  fc.tuple(digits(4), digits(4)).map(([a, b]) => `+44 20 ${a} ${b}`),
  fc.tuple(fc.integer({ min: 1, max: 9 }), digits(9)).map(([cc, rest]) => `+${cc}${rest}`),
  fc.tuple(digits(2), digits(4), digits(4)).map(([a, b, c]) => `(0${a}) ${b} ${c}`),
  fc.tuple(lead, digits(2), lead, digits(2), digits(4), fc.constantFrom("-", ".", " ")).map(
    ([a, b, c, d, e, s]) => `${a}${b}${s}${c}${d}${s}${e}`,
  ),
  // Trunk-0 national numbers: a 0, then a non-zero digit ("00" starts an international call).
  fc.tuple(fc.integer({ min: 1, max: 9 }), digits(1), digits(4), digits(4)).map(([a, b, c, d]) => `0${a}${b} ${c} ${d}`),
);

const pad = (n: number, w: number): string => String(n).padStart(w, "0");
const ssnArb = fc
  .tuple(fc.integer({ min: 1, max: 899 }).filter((a) => a !== 666), fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 9999 }))
  .map(([a, g, s]) => `${pad(a, 3)}-${pad(g, 2)}-${pad(s, 4)}`);

const entityArb = fc.oneof(
  emailArb.map((v) => ["email", v] as const),
  cardArb.map((v) => ["credit_card", v] as const),
  phoneArb.map((v) => ["phone", v] as const),
  ssnArb.map((v) => ["ssn", v] as const),
);

// Surrounding text that no detector can fire on: lower-case words and punctuation, no digits.
const filler = fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz ,;!?".split("")), maxLength: 30 });

const LABEL: Readonly<Record<string, string>> = { email: "[EMAIL]", credit_card: "[CREDIT_CARD]", phone: "[PHONE]", ssn: "[SSN]" };
const alnum = (s: string): string => s.replace(/[^A-Za-z0-9]/g, "");

describe("a masked value never contains the original", () => {
  const maskers = Object.fromEntries(STRATEGIES.map((s) => [s, masker(s)])) as Record<MaskStrategy, ValueMasker>;

  it("for emails, cards, phones and SSNs embedded in text, under every strategy", () => {
    fc.assert(
      fc.property(filler, entityArb, filler, fc.constantFrom(...STRATEGIES), (pre, [kind, entity], post, strategy) => {
        const text = `${pre} ${entity} ${post}`;
        const m = maskers[strategy];
        const r = m.maskText(text);
        expect(r, text).toBeDefined();
        expect(r!.counts).toEqual({ [kind]: 1 });
        const bytes = m.maskBytes(Buffer.from(text, "utf8"));
        if (strategy === "null") {
          expect(r!.value).toBeNull();
          expect(bytes).toBeNull();
          return;
        }
        const value = r!.value!;
        expect(bytes?.toString("utf8")).toBe(value);
        expect(value.includes(entity)).toBe(false);
        expect(value.startsWith(`${pre} `) && value.endsWith(` ${post}`)).toBe(true);
        const masked = value.slice(pre.length + 1, value.length - post.length - 1);
        switch (strategy) {
          case "redact":
            expect(masked).toBe(LABEL[kind]);
            break;
          case "hash":
            expect(masked).toBe(hmac16(kind, entity));
            break;
          case "partial":
            if (alnum(entity).length < 8) {
              expect(masked).toBe(LABEL[kind]);
            } else {
              // At most the last four letters/digits survive, in place; separators stay.
              expect(masked.length).toBe(entity.length);
              expect(alnum(masked)).toBe(alnum(entity).slice(-4));
              for (let i = 0; i < entity.length; i++) if (!/[A-Za-z0-9]/.test(entity[i]!)) expect(masked[i]).toBe(entity[i]);
            }
            break;
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("text and bytes agree on arbitrary Unicode around the values", () => {
    const m = masker("hash", ["email", "credit_card", "phone", "ssn", "iban", "ipv4", "secret"]);
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 30 }), entityArb, fc.string({ unit: "grapheme", maxLength: 30 }), (pre, [, entity], post) => {
        const text = `${pre} ${entity} ${post}`;
        const r = m.maskText(text);
        const bytes = m.maskBytes(Buffer.from(text, "utf8"));
        if (r === undefined) expect(bytes).toBeUndefined();
        else expect(bytes?.toString("utf8")).toBe(r.value);
        if (r?.value != null) expect(r.value.includes(entity)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});

describe("adversarial values finish through the masker", () => {
  const m = masker("redact", [...PII, "jwt", "private_key", "api_key", "aws_key"], 1 << 20);
  const big = (s: string): string => s.repeat(Math.ceil(1_200_000 / s.length));
  it.each([
    ["a@", big("a@")],
    ["digits and spaces", big("1 ")],
    ["eyJ.", big("eyJ.")],
    ["password=", big("password=")],
  ])("%s (above the scan limit: scanned whole, nothing cut)", (_name, input) => {
    const r = m.maskText(input);
    expect(r?.counts.truncated).toBeUndefined();
    if (r?.value != null) expect(r.value.includes("[TRUNCATED]")).toBe(false);
    const b = m.maskBytes(Buffer.from(input));
    if (b != null) expect(b.includes("[TRUNCATED]")).toBe(false);
  });
});
