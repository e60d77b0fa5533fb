import { randomBytes } from "node:crypto";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SecretBox } from "./secret-box.js";

describe("SecretBox (AES-256-GCM)", () => {
  const box = new SecretBox(randomBytes(32));

  it("round-trips any text, and the sealed text never contains it", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4, maxLength: 500 }), fc.string({ maxLength: 50 }), (secret, purpose) => {
        const sealed = box.seal(secret, purpose);
        expect(box.open(sealed, purpose)).toBe(secret);
        if (/^[A-Za-z0-9]{4,}$/u.test(secret)) expect(sealed).not.toContain(secret);
      }),
    );
  });

  it("refuses a ciphertext altered anywhere, moved to another purpose, or opened with another key", () => {
    const sealed = box.seal("hunter2-canary", "connection:orders:password");
    for (let i = 3; i < sealed.length; i++) {
      if (sealed[i] === ".") continue;
      const altered = sealed.slice(0, i) + (sealed[i] === "A" ? "B" : "A") + sealed.slice(i + 1);
      expect(() => box.open(altered, "connection:orders:password")).toThrow(/cannot be decrypted|malformed/u);
    }
    expect(() => box.open(sealed, "connection:other:password")).toThrow(/cannot be decrypted/u);
    expect(() => new SecretBox(randomBytes(32)).open(sealed, "connection:orders:password")).toThrow(/cannot be decrypted/u);
    for (const bad of ["", "v1", "v2.a.b.c", "v1.a.b", "v1.a.b.c.d"]) expect(() => box.open(bad, "x")).toThrow(/malformed|cannot be decrypted/u);
  });

  it("uses a fresh IV for every value", () => {
    expect(box.seal("same", "p")).not.toBe(box.seal("same", "p"));
  });

  it("keeps its key in a 0600 file, or takes it from AIRLOCK_SECRET_KEY", () => {
    const dir = mkdtempSync(join(tmpdir(), "airlock-box-"));
    const file = join(dir, "keys", "secrets.key");
    const a = SecretBox.open(file, {});
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(SecretBox.open(file, {}).open(a.seal("x-secret", "p"), "p")).toBe("x-secret");
    const hex = randomBytes(32).toString("hex");
    const b = SecretBox.open(file, { AIRLOCK_SECRET_KEY: hex });
    expect(() => a.open(b.seal("y", "p"), "p")).toThrow();
    expect(() => SecretBox.open(file, { AIRLOCK_SECRET_KEY: "short" })).toThrow(/32 bytes/u);
  });
});
