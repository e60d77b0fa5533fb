import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  DETECTOR_KINDS,
  DETECTORS,
  detect,
  detectorNameSchema,
  entropyThreshold,
  expandDetectorNames,
  isSecretKeyName,
  resolveOverlaps,
  shannonEntropy,
  type DetectorKind,
  type Match,
} from "./detectors.js";

/** The substrings a detector reports. */
function found(kind: DetectorKind, text: string): string[] {
  return DETECTORS[kind].find(text).map((m) => text.slice(m.start, m.end));
}

// Tokens are assembled at run time so that no secret-shaped literal sits in the source (secret
// scanners on the repository would flag them).
const j = (...parts: string[]): string => parts.join("");
const PEM_BEGIN = (label: string): string => j("-----BEGIN ", label, "-----");
const PEM_END = (label: string): string => j("-----END ", label, "-----");
const JWT_HS256 = j(
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
  ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
  ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
);
const AWS_SECRET = j("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY");
const AWS_ID = j("AKIA", "IOSFODNN7EXAMPLE");
const HIGH_ENTROPY = j("Xk9fQ2pLm7Rt", "Z4vBn8WcJ3yHd6sA"); // 28 random-looking base62 characters

describe("detector names", () => {
  it("validates policy names with the zod enum", () => {
    expect(detectorNameSchema.parse("credit_card")).toBe("credit_card");
    expect(detectorNameSchema.safeParse("creditcard").success).toBe(false);
    expect(detectorNameSchema.safeParse("").success).toBe(false);
  });

  it("expands `secret` to the whole secret family, deduplicated, in canonical order", () => {
    expect(expandDetectorNames(["secret"])).toEqual(["aws_key", "jwt", "private_key", "api_key", "secret"]);
    expect(expandDetectorNames(["phone", "email", "email", "jwt", "secret"])).toEqual([
      "email",
      "phone",
      "aws_key",
      "jwt",
      "private_key",
      "api_key",
      "secret",
    ]);
    expect(expandDetectorNames(["jwt"])).toEqual(["jwt"]);
  });
});

describe("email", () => {
  it.each([
    ["contact john.doe@example.com now", "john.doe@example.com"],
    ["a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk"],
    ["<x_y@example.org>", "x_y@example.org"],
    ['{"email":"alice@example.com"}', "alice@example.com"],
    ["'bob@example.com'", "bob@example.com"],
    ["write to bob@example.com.", "bob@example.com"],
    ["ivan@xn--e1afmkfd.xn--p1ai", "ivan@xn--e1afmkfd.xn--p1ai"],
  ])("finds the address in %j", (text, expected) => {
    expect(found("email", text)).toEqual([expected]);
  });

  it("finds several addresses and never overlaps them", () => {
    expect(found("email", "a@x.io, b@y.io;c@z.io")).toEqual(["a@x.io", "b@y.io", "c@z.io"]);
    expect(found("email", "a@b.com@c.org")).toEqual(["a@b.com"]);
  });

  it.each(["user@localhost", "a@b.c", "@example.com", "foo@", "x@1.2.3.4", "name@@example.com", "a@-.com", "no at sign.com"])(
    "does not match %j",
    (text) => {
      expect(found("email", text)).toEqual([]);
    },
  );
});

describe("credit_card", () => {
  it.each([
    ["4111 1111 1111 1111", "4111 1111 1111 1111"],
    ["card: 5500-0000-0000-0004.", "5500-0000-0000-0004"],
    ["4111111111111111", "4111111111111111"],
    ["amex 378282246310005", "378282246310005"],
    ["amex 3782 822463 10005", "3782 822463 10005"],
    ["discover 6011111111111117", "6011111111111117"],
    ["jcb 3530111333300000", "3530111333300000"],
    ["diners 30569309025904", "30569309025904"],
    ["mc2 2223003122003222", "2223003122003222"],
    ["order 12 4111 1111 1111 1111 paid", "4111 1111 1111 1111"],
  ])("finds the card in %j", (text, expected) => {
    expect(found("credit_card", text)).toEqual([expected]);
  });

  it("finds cards anywhere in a long space-separated list of numbers", () => {
    for (let before = 0; before <= 140; before += 7) {
      const text = `${"7 ".repeat(before)}4111 1111 1111 1111 ${"7 ".repeat(30)}5500 0000 0000 0004 7`;
      expect(found("credit_card", text), `after ${before} groups`).toEqual(["4111 1111 1111 1111", "5500 0000 0000 0004"]);
    }
  });

  it.each([
    "4111 1111 1111 1112", // Luhn fails
    "4111111111111112",
    "1234567812345670", // Luhn-valid, unknown issuer
    "41111111111111110000", // 20 digits
    "x4111111111111111",
    "4111111111111111x",
    "3.4111111111111111",
    "1700000000000", // epoch milliseconds
    "2024-01-15 10:30:00",
    "4111 1111 1111", // 12 digits
  ])("does not match %j", (text) => {
    expect(found("credit_card", text)).toEqual([]);
  });
});

describe("phone", () => {
  it.each([
    ["call +1 (415) 555-2671 today", "+1 (415) 555-2671"],
    ["+14155552671", "+14155552671"],
    ["+44 20 7946 0958", "+44 20 7946 0958"],
    ["+44 (0)20 7946 0958", "+44 (0)20 7946 0958"],
    ["Tel: +49-30-1234567", "+49-30-1234567"],
    ["(415) 555-2671", "(415) 555-2671"],
    ["(020) 7946 0958", "(020) 7946 0958"],
    ["415-555-2671", "415-555-2671"],
    ["415.555.2671", "415.555.2671"],
    ["415 555 2671", "415 555 2671"],
    ["1-800-555-1234", "1-800-555-1234"],
    ["020 7946 0958", "020 7946 0958"],
    ["06 12 34 56 78", "06 12 34 56 78"],
    ["030-12345678", "030-12345678"],
    ["date 2024-01-15 020 7946 0958", "020 7946 0958"],
  ])("finds the phone number in %j", (text, expected) => {
    expect(found("phone", text)).toEqual([expected]);
  });

  it.each([
    "4155552671", // a plain number: ids and amounts look like this
    "order 1234567890",
    "2024-01-15",
    "2024-01-15 10:30:00",
    "15/01/2024 10:30",
    "01.02.2024",
    "2024.01.15",
    "192.168.1.10",
    "10.0.0.1",
    "010.123.45.67",
    "123-45-6789", // SSN shape
    "012-34-5678", // SSN shape with a leading 0
    "123-456-7890", // NANP area codes never start with 1
    "ORD-2024-000123",
    "order 1234-5678",
    "+123",
    "+0123456789",
    "12:30:45",
    "3.14159265",
    "v1.2.3",
    "1 2 3 4 5 6 7 8",
    "(2024) 10 15",
    "x+14155552671",
    "415-555-2671-99",
    "id 1700000000000",
  ])("does not match %j", (text) => {
    expect(found("phone", text)).toEqual([]);
  });
});

describe("ssn", () => {
  it.each([
    ["123-45-6789", "123-45-6789"],
    ["SSN: 078-05-1120.", "078-05-1120"],
  ])("finds the SSN in %j", (text, expected) => {
    expect(found("ssn", text)).toEqual([expected]);
  });

  it.each(["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000", "123456789", "1123-45-6789", "123-45-67890", "123-45-6789-1", "a123-45-6789"])(
    "does not match %j",
    (text) => {
      expect(found("ssn", text)).toEqual([]);
    },
  );
});

describe("iban", () => {
  it.each([
    ["GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32"],
    ["DE89370400440532013000", "DE89370400440532013000"],
    ["IBAN: DE89 3704 0044 0532 0130 00, thanks", "DE89 3704 0044 0532 0130 00"],
    ["FR1420041010050500013M02606", "FR1420041010050500013M02606"],
    ["NL91ABNA0417164300", "NL91ABNA0417164300"],
    ["BE68 5390 0754 7034 2024", "BE68 5390 0754 7034"], // a following group that does not belong
    ["pay GB82WEST12345698765432.", "GB82WEST12345698765432"],
  ])("finds the IBAN in %j", (text, expected) => {
    expect(found("iban", text)).toEqual([expected]);
  });

  it.each([
    "DE89370400440532013001", // check digits wrong
    "GB82 WEST 1234 5698 7654 3", // too short for GB
    "gb82west12345698765432", // lower case
    "XGB82WEST12345698765432",
    "GB82WEST12345698765432abc",
    "DE8937040044053201300", // 21 characters: DE has 22
    "AB12 CDEF GHIJ KLMN OP", // shape only
  ])("does not match %j", (text) => {
    expect(found("iban", text)).toEqual([]);
  });
});

describe("ipv4", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["from 192.168.1.254.", "192.168.1.254"],
    ["host=172.16.0.5:5432", "172.16.0.5"],
    ["0.0.0.0/0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
  ])("finds the address in %j", (text, expected) => {
    expect(found("ipv4", text)).toEqual([expected]);
  });

  it.each(["256.1.1.1", "1.2.3", "1.2.3.4.5", "v1.2.3.4", "1.2.3.4a", "2024.01.15", "1234.1.1.1"])("does not match %j", (text) => {
    expect(found("ipv4", text)).toEqual([]);
  });
});

describe("aws_key", () => {
  it("finds access key ids", () => {
    expect(found("aws_key", `id=${AWS_ID};`)).toEqual([AWS_ID]);
    const sts = j("ASIA", "Y34FZKBOKMUTVV7A");
    expect(found("aws_key", `"AccessKeyId": "${sts}"`)).toEqual([sts]);
  });

  it("finds the secret access key's value only", () => {
    expect(found("aws_key", `aws_secret_access_key = ${AWS_SECRET}`)).toEqual([AWS_SECRET]);
    expect(found("aws_key", `AWS_SECRET_ACCESS_KEY=${AWS_SECRET}\n`)).toEqual([AWS_SECRET]);
    expect(found("aws_key", `{"SecretAccessKey": "${AWS_SECRET}"}`)).toEqual([AWS_SECRET]);
  });

  it.each([AWS_ID.slice(0, 19), "X" + AWS_ID, AWS_ID.toLowerCase(), AWS_ID + "Z", `aws_secret_access_key = ${AWS_SECRET.slice(0, 39)}`])(
    "does not match %j",
    (text) => {
      expect(found("aws_key", text)).toEqual([]);
    },
  );
});

describe("jwt", () => {
  it("finds a signed JWT, alone or after Bearer", () => {
    expect(found("jwt", JWT_HS256)).toEqual([JWT_HS256]);
    expect(found("jwt", `Authorization: Bearer ${JWT_HS256}\r\n`)).toEqual([JWT_HS256]);
    expect(found("jwt", `token=${JWT_HS256}.`)).toEqual([JWT_HS256]);
  });

  it("finds an unsecured JWT (empty signature) and a five-part JWE", () => {
    const header = Buffer.from('{"alg":"none"}').toString("base64url");
    const payload = Buffer.from('{"sub":"1"}').toString("base64url");
    expect(found("jwt", `${header}.${payload}.`)).toEqual([`${header}.${payload}.`]);
    const jweHeader = Buffer.from('{"alg":"dir","enc":"A256GCM"}').toString("base64url");
    const jwe = `${jweHeader}..iv_123.cipher_text-abc.tag_xyz`;
    expect(found("jwt", `x ${jwe} y`)).toEqual([jwe]);
  });

  it("requires a header that decodes to JSON with alg", () => {
    const noAlg = Buffer.from('{"foo":"bar"}').toString("base64url");
    expect(found("jwt", `${noAlg}.eyJzdWIiOiIxIn0.c2ln`)).toEqual([]);
    expect(found("jwt", "eyJhbGciOiJIUzI1NiJ9")).toEqual([]); // one segment
    expect(found("jwt", "key.they.obey money.eyes.eyeing")).toEqual([]);
    expect(found("jwt", "x" + JWT_HS256)).toEqual([]);
  });
});

describe("private_key", () => {
  const body = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE/Wm/Rr500P\n";
  it.each(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"])(
    "finds a %s block through its END line",
    (label) => {
      const block = `${PEM_BEGIN(label)}\n${body}${PEM_END(label)}`;
      expect(found("private_key", `key:\n${block}\nafter`)).toEqual([block]);
    },
  );

  it("masks to the end of the text when the END line is missing", () => {
    const text = `${PEM_BEGIN("RSA PRIVATE KEY")}\n${body}`;
    expect(found("private_key", "x " + text)).toEqual([text]);
  });

  it("leaves certificates and public keys", () => {
    expect(found("private_key", `${PEM_BEGIN("CERTIFICATE")}\n${body}${PEM_END("CERTIFICATE")}`)).toEqual([]);
    expect(found("private_key", `${PEM_BEGIN("PUBLIC KEY")}\n${body}${PEM_END("PUBLIC KEY")}`)).toEqual([]);
  });
});

describe("api_key", () => {
  const alnum36 = "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY2zA4";
  it.each([
    j("ghp", "_", alnum36),
    j("gho", "_", alnum36),
    j("github", "_pat_", "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
    j("glpat", "-", "abcdefghij0123456789"),
    j("xoxb", "-", "1234567890-abcdefghij"),
    j("sk", "_live_", "4eC39HqLyjWDarjtT1zdp7dc"),
    j("rk", "_live_", "4eC39HqLyjWDarjtT1zdp7dc"),
    j("AIza", "SyA-1234567890abcdefghijklmnopqrstu"),
    j("sk", "-proj-", "abcdefghijklmnopqrstuvwxyz012345"),
    j("sk", "-ant-api03-", "abcdefghijklmnopqrstuvwxyz_012345-AA"),
    j("npm", "_", alnum36),
  ])("finds %s", (token) => {
    expect(found("api_key", `key: ${token}\n`)).toEqual([token]);
  });

  it("finds the credential after an HTTP auth scheme", () => {
    expect(found("api_key", "Authorization: Bearer abc.def-ghi_jkl~mno123")).toEqual(["abc.def-ghi_jkl~mno123"]);
    expect(found("api_key", "Authorization: Basic dXNlcjpwYXNzd29yZA==")).toEqual(["dXNlcjpwYXNzd29yZA=="]);
    expect(found("api_key", "Authorization: token 0123456789abcdef0123")).toEqual(["0123456789abcdef0123"]);
  });

  it.each([
    j("ghp", "_short"),
    "task-force-alpha-bravo-charlie",
    "Basic authentication is enabled",
    "basic internationalization",
    j("pk", "_live_", "4eC39HqLyjWDarjtT1zdp7dc"),
    j("mysk", "-abcdefghijklmnopqrstuvwxyz"),
    "Bearer short",
  ])("does not match %j", (text) => {
    expect(found("api_key", text)).toEqual([]);
  });
});

describe("secret (generic)", () => {
  it("masks every secret value of a .env file and nothing else", () => {
    const env = [
      "# database",
      "DB_HOST=localhost",
      "DB_PASSWORD=hunter2-correct",
      'export API_TOKEN="abc def ghi"',
      "STRIPE_SECRET_KEY='xyz'",
      "PGPASSWORD=pg-pass",
      "PORT=5432",
      "SECRET_KEY_BASE=0123abcd",
      "  client_secret = s3cr3t value  ",
      "",
    ].join("\n");
    expect(found("secret", env)).toEqual(["hunter2-correct", "abc def ghi", "xyz", "pg-pass", "0123abcd", "s3cr3t value"]);
  });

  it("masks JSON values, leaving null and non-secret keys", () => {
    const json = '{"user":"bob","password":"p@ss w\\"0rd","token":null,"apiKey":12345,"nested":{"pass":"x"}}';
    expect(found("secret", json)).toEqual(['p@ss w\\"0rd', "12345", "x"]);
  });

  it("masks YAML values to the end of the line", () => {
    const yaml = "db:\n  user: app\n  password: correct horse battery staple  \n  - secret: a b\n";
    expect(found("secret", yaml)).toEqual(["correct horse battery staple", "a b"]);
  });

  it("masks query-string, header, URL and SQL credentials", () => {
    expect(found("secret", "GET /cb?code=1&access_token=abc123&state=z")).toEqual(["abc123"]);
    expect(found("secret", "X-Api-Key: k-123\r\nHost: x")).toEqual(["k-123"]);
    expect(found("secret", "postgres://app:s3cr3t@db:5432/orders")).toEqual(["s3cr3t"]);
    expect(found("secret", "redis://:onlypass@cache:6379")).toEqual(["onlypass"]);
    expect(found("secret", "ALTER ROLE x WITH PASSWORD 'it''s'")).toEqual(["it''s"]);
    expect(found("secret", "CREATE USER u IDENTIFIED BY 'pw1';")).toEqual(["pw1"]);
    expect(found("secret", "WHERE password = 'x1' AND")).toEqual(["x1"]);
    expect(found("secret", "conn := {password => 'q'}")).toEqual(["q"]);
  });

  it.each([
    "author: Jane",
    "token_count: 5",
    "password_policy: strict",
    "passwordless: true",
    "password: null",
    "keyboard: qwerty",
    "primary_key: id",
    "bypass=1",
    "https://example.com/path?q=1",
    "postgres://db:5432/orders",
    "time 12:30:45",
  ])("does not match %j", (text) => {
    expect(found("secret", text)).toEqual([]);
  });

  it("flags high-entropy tokens, not identifiers, hashes or UUIDs", () => {
    expect(found("secret", `id ${HIGH_ENTROPY} end`)).toEqual([HIGH_ENTROPY]);
    expect(found("secret", `blob ${AWS_SECRET}`)).toEqual([AWS_SECRET]);
    const b64 = Buffer.from("0123456789abcdef0123456789abcdef0123456789abcdef", "hex").toString("base64");
    expect(b64.endsWith("=")).toBe(false);
    const padded = Buffer.from("Z9x8W7v6U5t4S3r2Q1p0O9n8M7l6K5j4", "utf8").toString("base64");
    expect(found("secret", padded)).toEqual([padded]);
    for (const clean of [
      "getUserAccountSettings2024",
      "X509Certificate2Collection",
      "/usr/lib/Postgresql/15/bin/Postgres",
      "HelloWorldFromTheOtherSide99",
      "3f786850e387550fdab836ed7e6dc881de23001b",
      "550e8400-e29b-41d4-a716-446655440000",
      "550E8400-E29B-41D4-A716-446655440000",
      "internationalization20",
      "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ]) {
      expect(found("secret", `x ${clean} y`), clean).toEqual([]);
    }
  });

  it("uses a threshold at the low tail of random base62 tokens", () => {
    expect(entropyThreshold(20)).toBeCloseTo(3.65, 1);
    expect(entropyThreshold(40)).toBeCloseTo(4.4, 1);
    expect(entropyThreshold(10_000)).toBe(4.9);
    expect(shannonEntropy("aaaa", 0, 4)).toBe(0);
    expect(shannonEntropy("abcd", 0, 4)).toBe(2);
    expect(shannonEntropy("xaabbx", 1, 5)).toBe(1);
  });
});

describe("isSecretKeyName", () => {
  it.each([
    "password", "PASSWORD", "db_password", "DB_PASS", "PGPASSWORD", "passwd", "pwd", "passphrase", "secret",
    "client_secret", "clientSecret", "AWS_SECRET_ACCESS_KEY", "api_key", "apiKey", "x-api-key", "X-Auth-Token",
    "access_token", "refreshToken", "GITHUB_TOKEN", "tokens", "private_key", "secret_key_base", "Authorization",
    "Set-Cookie", "credentials", "password_hash", "ssh_key",
  ])("%s names a credential", (key) => {
    expect(isSecretKeyName(key)).toBe(true);
  });

  it.each([
    "author", "token_count", "password_policy", "secret_name", "token_type", "password_file", "token_url", "keyboard",
    "primary_key", "key", "monkey", "bypass", "passthrough", "tokenizer", "user", "host", "password_changed_at",
  ])("%s does not", (key) => {
    expect(isSecretKeyName(key)).toBe(false);
  });
});

describe("resolveOverlaps", () => {
  const m = (start: number, end: number, kind: DetectorKind): Match => ({ start, end, kind });
  it("merges partial overlaps into their union, labelled by the longest member", () => {
    expect(resolveOverlaps([m(5, 20, "secret"), m(0, 10, "email")])).toEqual([m(0, 20, "secret")]);
    expect(resolveOverlaps([m(0, 12, "email"), m(8, 14, "secret")])).toEqual([m(0, 14, "email")]);
  });

  it("keeps the earliest on equal lengths and the outer one on containment", () => {
    expect(resolveOverlaps([m(3, 8, "phone"), m(0, 5, "ssn")])).toEqual([m(0, 8, "ssn")]);
    expect(resolveOverlaps([m(2, 4, "ipv4"), m(0, 10, "jwt")])).toEqual([m(0, 10, "jwt")]);
  });

  it("names a span of equal length and start by the more specific detector", () => {
    expect(resolveOverlaps([m(0, 11, "phone"), m(0, 11, "ssn")])).toEqual([m(0, 11, "ssn")]);
    expect(resolveOverlaps([m(0, 16, "secret"), m(0, 16, "credit_card")])).toEqual([m(0, 16, "credit_card")]);
  });

  it("does not depend on the order matches were found in, whatever their number (small and large sorts agree)", () => {
    const match = fc.tuple(fc.nat(40), fc.integer({ min: 1, max: 12 }), fc.constantFrom(...DETECTOR_KINDS)).map(([s, len, kind]) => m(s, s + len, kind));
    fc.assert(
      fc.property(fc.array(match, { maxLength: 20 }), fc.nat(), (ms, seed) => {
        const shuffled = ms.map((x, i) => ({ x, k: (i * 7919 + seed) % 10007 })).sort((a, b) => a.k - b.k).map((e) => e.x);
        const out = resolveOverlaps(shuffled);
        expect(out).toEqual(resolveOverlaps(ms));
        // Disjoint, in order, and covering exactly the union of the input spans.
        for (let i = 1; i < out.length; i++) expect((out[i]?.start ?? 0) >= (out[i - 1]?.end ?? 0)).toBe(true);
        const covered = (spans: readonly Match[], at: number): boolean => spans.some((x) => x.start <= at && at < x.end);
        for (let at = 0; at < 60; at++) expect(covered(out, at)).toBe(covered(ms, at));
      }),
    );
  });

  it("keeps disjoint and adjacent matches apart, sorted", () => {
    expect(resolveOverlaps([m(10, 12, "ssn"), m(0, 5, "email"), m(5, 7, "phone")])).toEqual([
      m(0, 5, "email"),
      m(5, 7, "phone"),
      m(10, 12, "ssn"),
    ]);
  });
});

describe("detect (all detectors)", () => {
  it("reports non-overlapping matches in order", () => {
    const text = `mail a@b.io card 4111111111111111 ip 10.1.2.3 ${JWT_HS256} pwd=x`;
    const got = detect(text, DETECTOR_KINDS);
    expect(got.map((x) => x.kind)).toEqual(["email", "credit_card", "ipv4", "jwt", "secret"]);
    for (let i = 1; i < got.length; i++) expect(got[i]!.start).toBeGreaterThanOrEqual(got[i - 1]!.end);
  });
});

describe("prefilter soundness", () => {
  // Fragments that build near-misses and hits of every detector.
  const fragments = [
    "a", "Z", "0", "1", "4", "9", " ", "  ", "-", ".", "@", "+", "(", ")", ":", "=", "'", '"', "_", "/", "\n", "é",
    "4111", "1111", "5500", "0004", "415", "555", "2671", "020", "7946", "123-45-6789", "GB82", "WEST", "DE89",
    "3704", "0044", "eyJ", "ey", JWT_HS256.slice(0, 36), "eyJzdWIiOiIxIn0", "-----BEGIN ", "PRIVATE KEY-----",
    "AKIA", "IOSFODNN7EXAMPLE", "ghp_", "xoxb-", "sk-", "Bearer ", "password", "token", "://", "user", "ex.com",
    HIGH_ENTROPY.slice(0, 14), "10.0.0.1", "+1 ", "PASSWORD '",
  ];
  const text = fc.array(fc.constantFrom(...fragments), { maxLength: 40 }).map((parts) => parts.join(""));

  it("a detector that finds something never had its prefilter say no", () => {
    fc.assert(
      fc.property(text, (t) => {
        for (const kind of DETECTOR_KINDS) {
          const d = DETECTORS[kind];
          if (d.find(t).length > 0) expect(d.couldMatch(t), `${kind} on ${JSON.stringify(t)}`).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("holds on every positive example above", () => {
    const samples = [
      "john.doe@example.com", "4111 1111 1111 1111", "+1 (415) 555-2671", "(0)20 7946 0958", "123-45-6789",
      "GB82 WEST 1234 5698 7654 32", "10.0.0.1", AWS_ID, JWT_HS256, PEM_BEGIN("PRIVATE KEY"), "pwd=x",
      "Bearer abcdefghijklmnop", HIGH_ENTROPY, "PASSWORD 'x",
    ];
    for (const s of samples) {
      const hits = DETECTOR_KINDS.filter((k) => DETECTORS[k].find(s).length > 0);
      expect(hits.length, s).toBeGreaterThan(0);
      for (const k of hits) expect(DETECTORS[k].couldMatch(s), `${k} on ${s}`).toBe(true);
    }
  });

  it("nothing matches text shorter than 5 characters", () => {
    const short = fc.array(fc.constantFrom("a", "1", "=", ":", "@", ".", "p", "w", "d", "'", " ", "-"), { maxLength: 4 }).map((p) => p.join(""));
    fc.assert(
      fc.property(short, (t) => {
        expect(detect(t, DETECTOR_KINDS)).toEqual([]);
      }),
    );
    expect(detect("pwd=x", DETECTOR_KINDS).length).toBe(1);
  });
});

describe("adversarial inputs finish (linear scanners)", () => {
  const size = 100_000;
  const rep = (s: string): string => s.repeat(Math.ceil(size / s.length)).slice(0, size);
  const inputs: Record<string, string> = {
    "a@": rep("a@"),
    "a.a@": rep("a.a@"),
    "long local part": "x".repeat(size) + "@example.com",
    "long domain": "a@" + "b".repeat(size),
    digits: rep("1"),
    "digit space": rep("1 "),
    "digit dash": rep("1-"),
    "digit dot": rep("1."),
    "+1 ": rep("+1 "),
    "(1) ": rep("(1) "),
    "4111 ": rep("4111 "),
    "123-45-": rep("123-45-"),
    eyJ: rep("eyJ"),
    "jwt-ish": rep("eyJhbGciOiJub25lIn0."),
    "BEGIN ": rep("-----BEGIN "),
    "BEGIN PRIVATE": rep(PEM_BEGIN("RSA PRIVATE KEY")),
    dashes: rep("-"),
    "ghp_": rep("ghp_"),
    "sk-": rep("sk-"),
    "xoxb-": rep("xoxb-"),
    AKIA: rep("AKIA"),
    "SG.": rep("SG."),
    "password=": rep("password="),
    "password:": rep("password:"),
    "a=": rep("a="),
    "=": rep("="),
    ":": rep(":"),
    "://": rep("://"),
    "a://b:c": rep("a://b:c"),
    "Bearer ": rep("Bearer "),
    "password '": rep("password '"),
    quotes: rep("'"),
    "password='": rep("password='"),
    "GB82 ": rep("GB82 "),
    GB82: rep("GB82"),
    "1.1.1.1.": rep("1.1.1.1."),
    "A1b2": rep("A1b2"),
    "base64ish": rep("Xk9fQ2pLm7RtZ4vB/+"),
    "spaces then =": "a" + " ".repeat(size) + "=",
    "key chars then =": "password" + "_".repeat(size) + "=x",
  };
  it.each(Object.keys(inputs))("%s", (name) => {
    const input = inputs[name]!;
    const matches = detect(input, DETECTOR_KINDS);
    expect(Array.isArray(matches)).toBe(true);
    for (let i = 1; i < matches.length; i++) expect(matches[i]!.start).toBeGreaterThanOrEqual(matches[i - 1]!.end);
  });
});
