import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cachingSha2Scramble, ed25519SignWithSeed, nativePasswordScramble, rsaDecryptPassword, rsaEncryptPassword } from "./auth.js";

describe("MySQL authentication plugins", () => {
  const nonce = Buffer.from("0123456789abcdefghij");

  it("mysql_native_password and caching_sha2_password scrambles have their sizes, empty for no password", () => {
    expect(nativePasswordScramble("secret", nonce)).toHaveLength(20);
    expect(cachingSha2Scramble("secret", nonce)).toHaveLength(32);
    expect(nativePasswordScramble("", nonce)).toHaveLength(0);
    expect(nativePasswordScramble("secret", nonce).equals(nativePasswordScramble("secret", Buffer.from("x".repeat(20))))).toBe(false);
  });

  it("RSA-encrypted passwords round-trip (caching_sha2 full authentication without TLS)", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 4096 });
    const token = "eyJ" + "a".repeat(400);
    expect(rsaDecryptPassword(rsaEncryptPassword(token, nonce, publicKey), nonce, privateKey)).toBe(token);
  });

  it("Ed25519 matches Node's implementation when the password is a 32-byte seed (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 64 }), (seed, msg) => {
        const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seed)]);
        const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
        expect(ed25519SignWithSeed(Buffer.from(seed), Buffer.from(msg)).toString("hex")).toBe(sign(null, Buffer.from(msg), key).toString("hex"));
      }),
      { numRuns: 10 },
    );
  });
});
