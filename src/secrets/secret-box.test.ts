import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SecretBox } from "./secret-box.js";

describe("SecretBox (AES-256-GCM)", () => {
  const box = new SecretBox(randomBytes(32));

  it("round-trips any text, and the sealed text never contains it", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 4, maxLength: 500 }), fc.string({ maxLength: 50 }), async (secret, purpose) => {
        const sealed = await box.seal(secret, purpose);
        expect(await box.open(sealed, purpose)).toBe(secret);
        if (/^[A-Za-z0-9]{4,}$/u.test(secret)) expect(sealed).not.toContain(secret);
      }),
    );
  });

  it("refuses a ciphertext altered anywhere, moved to another purpose, or opened with another key", async () => {
    const sealed = await box.seal("hunter2-canary", "connection:orders:password");
    for (let i = 3; i < sealed.length; i++) {
      if (sealed[i] === ".") continue;
      const altered = sealed.slice(0, i) + (sealed[i] === "A" ? "B" : "A") + sealed.slice(i + 1);
      await expect((async () => box.open(altered, "connection:orders:password"))()).rejects.toThrow(/cannot be decrypted|malformed/u);
    }
    await expect((async () => box.open(sealed, "connection:other:password"))()).rejects.toThrow(/cannot be decrypted/u);
    await expect((async () => new SecretBox(randomBytes(32)).open(sealed, "connection:orders:password"))()).rejects.toThrow(/cannot be decrypted/u);
    for (const bad of ["", "v1", "v2.a.b.c", "v1.a.b", "v1.a.b.c.d"]) await expect((async () => box.open(bad, "x"))()).rejects.toThrow(/malformed|cannot be decrypted/u);
  });

  it("uses a fresh IV for every value", async () => {
    expect(await box.seal("same", "p")).not.toBe(await box.seal("same", "p"));
  });

  it("keeps its key in a 0600 file, or takes it from AIRLOCK_SECRET_KEY", async () => {
    const dir = mkdtempSync(join(tmpdir(), "airlock-box-"));
    const file = join(dir, "keys", "secrets.key");
    const a = SecretBox.open(file, {});
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await SecretBox.open(file, {}).open(await a.seal("x-secret", "p"), "p")).toBe("x-secret");
    const hex = randomBytes(32).toString("hex");
    const b = SecretBox.open(file, { AIRLOCK_SECRET_KEY: hex });
    await expect((async () => a.open(await b.seal("y", "p"), "p"))()).rejects.toThrow();
    expect(() => SecretBox.open(file, { AIRLOCK_SECRET_KEY: "short" })).toThrow(/32 bytes/u);
  });
});

describe("SecretBox envelope encryption and key rotation", () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const purpose = "connection:orders:password";

  /** A value sealed the way gateways before envelope encryption did (v1: the value under the key itself). */
  function sealV1(key: Buffer, text: string, aad: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(text, "utf8"), c.final()]);
    return ["v1", iv.toString("base64url"), c.getAuthTag().toString("base64url"), ct.toString("base64url")].join(".");
  }

  it("seals each value with its own data key wrapped by the KEK, named by id", async () => {
    const box = new SecretBox(oldKey);
    const a = (await box.seal("same", purpose)).split(".");
    const b = (await box.seal("same", purpose)).split(".");
    expect(a[0]).toBe("v2");
    expect(a[1]).toBe(box.keyId);
    expect(a[2]).not.toBe(b[2]);
    expect(Buffer.from(a[2] ?? "", "base64url")).toHaveLength(60);
    expect(box.keyId).not.toContain(oldKey.toString("base64url").slice(0, 8));
  });

  it("rotation: the previous key still opens, rewrap moves data keys to the new key, then the old key alone fails", async () => {
    const sealedOld = await new SecretBox(oldKey).seal("hunter2-canary", purpose);
    const rotating = new SecretBox(newKey, [oldKey]);
    expect(await rotating.open(sealedOld, purpose)).toBe("hunter2-canary");
    await expect((async () => new SecretBox(newKey).open(sealedOld, purpose))()).rejects.toThrow(/does not have/u);
    const { sealed, changed } = await rotating.rewrap(sealedOld, purpose);
    expect(changed).toBe(true);
    // Only the wrapped key changed: the value's IV, tag and ciphertext are the same bytes.
    expect(sealed.split(".").slice(3)).toEqual(sealedOld.split(".").slice(3));
    expect(await new SecretBox(newKey).open(sealed, purpose)).toBe("hunter2-canary");
    await expect((async () => new SecretBox(oldKey).open(sealed, purpose))()).rejects.toThrow(/cannot be decrypted/u);
    expect(await rotating.rewrap(sealed, purpose)).toEqual({ sealed, changed: false });
  });

  it("opens v1 values (today's format) with the current or a previous key, and rewrap turns them into v2", async () => {
    const v1 = sealV1(oldKey, "legacy-secret", purpose);
    expect(await new SecretBox(oldKey).open(v1, purpose)).toBe("legacy-secret");
    expect(await new SecretBox(newKey, [oldKey]).open(v1, purpose)).toBe("legacy-secret");
    await expect((async () => new SecretBox(newKey).open(v1, purpose))()).rejects.toThrow(/cannot be decrypted/u);
    const { sealed } = await new SecretBox(newKey, [oldKey]).rewrap(v1, purpose);
    expect(sealed.startsWith("v2.")).toBe(true);
    expect(await new SecretBox(newKey).open(sealed, purpose)).toBe("legacy-secret");
  });

  it("refuses a tampered wrapped key, a wrapped key moved to another value, and a tampered value at rewrap", async () => {
    const box = new SecretBox(newKey, [oldKey]);
    const s = (await box.seal("hunter2-canary", purpose)).split(".");
    const w = Buffer.from(s[2] ?? "", "base64url");
    for (const at of [0, 13, 40, 59]) {
      const t = Buffer.from(w);
      t[at] = (t[at] ?? 0) ^ 1;
      const tampered = [s[0], s[1], t.toString("base64url"), ...s.slice(3)].join(".");
      await expect((async () => box.open(tampered, purpose))()).rejects.toThrow(/cannot be decrypted/u);
      await expect((async () => box.rewrap(tampered, purpose))()).rejects.toThrow(/cannot be decrypted/u);
    }
    const other = (await box.seal("other", "connection:billing:password")).split(".");
    await expect((async () => box.open([s[0], s[1], other[2], ...s.slice(3)].join("."), purpose))()).rejects.toThrow(/cannot be decrypted/u);
    const ct = Buffer.from(s[5] ?? "", "base64url");
    ct[0] = (ct[0] ?? 0) ^ 1;
    await expect((async () => box.rewrap([...s.slice(0, 5), ct.toString("base64url")].join("."), purpose))()).rejects.toThrow(/cannot be decrypted/u);
  });

  it("takes secrets.storeKey before AIRLOCK_SECRET_KEY, and checks every key's size", () => {
    const file = join(mkdtempSync(join(tmpdir(), "airlock-box-")), "secrets.key");
    const box = SecretBox.open(file, { AIRLOCK_SECRET_KEY: oldKey.toString("hex") }, { storeKey: newKey.toString("base64"), previous: [oldKey.toString("hex")] });
    expect(box.keyId).toBe(new SecretBox(newKey).keyId);
    expect(() => SecretBox.open(file, {}, { storeKey: "c2hvcnQ=" })).toThrow(/secrets.storeKey must be 32 bytes/u);
    expect(() => SecretBox.open(file, {}, { previous: ["short"] })).toThrow(/previousStoreKeys\[0\] must be 32 bytes/u);
  });
});
