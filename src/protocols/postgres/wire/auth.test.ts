import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../core/errors.js";
import { SCRAM_SHA_256, ScramClient, md5PasswordResponse, saslPrepPassword } from "./auth.js";

function errorOf(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

describe("md5PasswordResponse", () => {
  it("matches PostgreSQL's stored md5 hash for postgres/postgres, salted", () => {
    // pg_authid stores "md5" + md5(password || user); for postgres/postgres that is the
    // well-known md53175bce1d3201d16594cebf9d7eb3f9d. The response salts that inner hash.
    const salt = Buffer.from([0x01, 0x02, 0x03, 0x04]);
    const expected = "md5" + createHash("md5").update("3175bce1d3201d16594cebf9d7eb3f9d").update(salt).digest("hex");
    expect(md5PasswordResponse("postgres", "postgres", salt)).toBe(expected);
    expect(md5PasswordResponse("postgres", "postgres", Buffer.from([4, 3, 2, 1]))).not.toBe(expected);
  });

  it("refuses a salt that is not 4 bytes", () => {
    expect(errorOf(() => md5PasswordResponse("u", "p", Buffer.alloc(3))).code).toBe("GW_UPSTREAM_AUTH");
  });
});

// RFC 7677 section 3 test vector.
const RFC_NONCE = Buffer.from("rOprNGfwEbeRWgbNEkqO", "base64");
const RFC_SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

describe("ScramClient", () => {
  it("reproduces the RFC 7677 SCRAM-SHA-256 exchange", () => {
    const c = new ScramClient("pencil", RFC_NONCE, "user");
    expect(c.mechanism).toBe(SCRAM_SHA_256);
    expect(c.clientFirstMessage().toString()).toBe("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    expect(c.handleServerFirst(Buffer.from(RFC_SERVER_FIRST)).toString()).toBe(RFC_CLIENT_FINAL);
    expect(() => c.verifyServerFinal(Buffer.from(RFC_SERVER_FINAL))).not.toThrow();
  });

  it("reproduces the RFC 7677 exchange with PBKDF2 off the event loop", async () => {
    const c = new ScramClient("pencil", RFC_NONCE, "user");
    c.clientFirstMessage();
    expect((await c.handleServerFirstAsync(Buffer.from(RFC_SERVER_FIRST))).toString()).toBe(RFC_CLIENT_FINAL);
    c.verifyServerFinal(Buffer.from(RFC_SERVER_FINAL));
  });

  it("sends libpq's client-first (empty user, random nonce) and a proof a server would accept", () => {
    const password = "correct horse";
    const c = new ScramClient(password);
    const first = c.clientFirstMessage().toString();
    const m = /^n,,n=,r=([A-Za-z0-9+/=]{24})$/.exec(first);
    expect(m).not.toBeNull();
    const clientNonce = m![1]!;
    expect(new ScramClient(password).clientFirstMessage().toString()).not.toBe(first);

    // Play the server (RFC 5802 section 3) from a verifier, independently of the client code.
    const salt = Buffer.from("0123456789abcdef");
    const iterations = 4096;
    const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
    const storedKey = createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest();
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    const serverFirst = `r=${clientNonce}SERVERPART,s=${salt.toString("base64")},i=${iterations}`;
    const final = c.handleServerFirst(Buffer.from(serverFirst)).toString();
    const fm = /^(c=biws,r=([^,]+)),p=([A-Za-z0-9+/=]+)$/.exec(final);
    expect(fm).not.toBeNull();
    expect(fm![2]).toBe(`${clientNonce}SERVERPART`);
    const authMessage = `${first.slice(3)},${serverFirst},${fm![1]!}`;
    const clientSignature = createHmac("sha256", storedKey).update(authMessage).digest();
    const proof = Buffer.from(fm![3]!, "base64");
    const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSignature[i]!));
    expect(createHash("sha256").update(clientKey).digest().equals(storedKey)).toBe(true);

    const serverSignature = createHmac("sha256", serverKey).update(authMessage).digest("base64");
    c.verifyServerFinal(Buffer.from(`v=${serverSignature}`));
  });

  it("rejects a wrong server signature and a server error", () => {
    const c = new ScramClient("pencil", RFC_NONCE, "user");
    c.clientFirstMessage();
    c.handleServerFirst(Buffer.from(RFC_SERVER_FIRST));
    const wrong = RFC_SERVER_FINAL.replace("6rr", "7rr");
    const e = errorOf(() => c.verifyServerFinal(Buffer.from(wrong)));
    expect(e.code).toBe("GW_UPSTREAM_AUTH");
    // A failed exchange cannot be retried.
    expect(errorOf(() => c.verifyServerFinal(Buffer.from(RFC_SERVER_FINAL))).code).toBe("GW_UPSTREAM_AUTH");

    const d = new ScramClient("pencil", RFC_NONCE, "user");
    d.clientFirstMessage();
    d.handleServerFirst(Buffer.from(RFC_SERVER_FIRST));
    const err = errorOf(() => d.verifyServerFinal(Buffer.from("e=invalid-proof")));
    expect(err.code).toBe("GW_UPSTREAM_AUTH");
    expect(err.message).toContain("invalid-proof");

    for (const bad of ["", "v=", "v=!!!", "x=abc", RFC_SERVER_FINAL.slice(0, -4)]) {
      const s = new ScramClient("pencil", RFC_NONCE, "user");
      s.clientFirstMessage();
      s.handleServerFirst(Buffer.from(RFC_SERVER_FIRST));
      expect(errorOf(() => s.verifyServerFinal(Buffer.from(bad))).code).toBe("GW_UPSTREAM_AUTH");
    }
  });

  it("validates server-first-message", () => {
    const cases = [
      "r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // nonce does not extend ours
      "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // nonce not extended at all
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=not*base64,i=4096",
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096",
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
      "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,garbage",
    ];
    for (const serverFirst of cases) {
      const c = new ScramClient("pencil", RFC_NONCE, "user");
      c.clientFirstMessage();
      expect(errorOf(() => c.handleServerFirst(Buffer.from(serverFirst))).code).toBe("GW_UPSTREAM_AUTH");
    }
    // The upper bound itself and extensions after i= are accepted (checked without running 10M rounds).
    const ok = new ScramClient("pencil", RFC_NONCE, "user");
    ok.clientFirstMessage();
    expect(() => ok.handleServerFirst(Buffer.from("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1,x=ext"))).not.toThrow();
  });

  it("enforces the order of the exchange", () => {
    const c = new ScramClient("pencil");
    expect(errorOf(() => c.handleServerFirst(Buffer.from(RFC_SERVER_FIRST))).code).toBe("GW_INTERNAL");
    const d = new ScramClient("pencil");
    d.clientFirstMessage();
    expect(errorOf(() => d.clientFirstMessage()).code).toBe("GW_INTERNAL");
    const e = new ScramClient("pencil");
    e.clientFirstMessage();
    expect(errorOf(() => e.verifyServerFinal(Buffer.from(RFC_SERVER_FINAL))).code).toBe("GW_INTERNAL");
  });

  it("never puts the password into error text", () => {
    const password = "Sup3r-S3cret-pa55";
    const messages: string[] = [];
    const attempts: ((c: ScramClient) => void)[] = [
      (c) => {
        c.clientFirstMessage();
        c.handleServerFirst(Buffer.from(`r=x,s=${password},i=z`));
      },
      (c) => {
        c.clientFirstMessage();
        c.handleServerFirst(Buffer.from(RFC_SERVER_FIRST));
        c.verifyServerFinal(Buffer.from("v=AAAA"));
      },
      (c) => {
        c.clientFirstMessage();
        c.handleServerFirst(Buffer.from(RFC_SERVER_FIRST));
        c.verifyServerFinal(Buffer.from(`e=${password}`));
      },
      (c) => {
        c.clientFirstMessage();
        c.handleServerFirst(Buffer.from(RFC_SERVER_FIRST));
        c.verifyServerFinal(Buffer.from("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
      },
    ];
    for (const attempt of attempts) messages.push(errorOf(() => attempt(new ScramClient(password, RFC_NONCE, "user"))).message);
    expect(messages).toHaveLength(4);
    for (const m of messages) {
      expect(m).not.toContain(password);
      expect(m.toLowerCase()).not.toContain("s3cret");
    }
  });
});

describe("saslPrepPassword", () => {
  const prep = (s: string): string => saslPrepPassword(s).toString("utf8");

  it("leaves ASCII passwords alone, controls included (as PostgreSQL does)", () => {
    expect(prep("pencil")).toBe("pencil");
    expect(prep("a\u0007b")).toBe("a\u0007b");
  });

  it("maps, deletes and normalizes as RFC 4013 section 3's examples", () => {
    expect(prep("I\u00ADX")).toBe("IX"); // soft hyphen mapped to nothing
    expect(prep("\u00AA")).toBe("a"); // NFKC
    expect(prep("\u2168")).toBe("IX"); // NFKC
    expect(prep("a\u00A0b")).toBe("a b"); // non-ASCII space to space
    expect(prep("ｐａｓｓ")).toBe("pass"); // fullwidth forms
    expect(prep("\u0627\u0628")).toBe("\u0627\u0628"); // a valid right-to-left password
  });

  it("falls back to the raw bytes when SASLprep would fail", () => {
    expect(prep("\u00AA\u0007")).toBe("\u00AA\u0007"); // prohibited control character
    expect(prep("\u0627\u0031")).toBe("\u0627\u0031"); // bidi: must end with RandALCat
    expect(prep("\u0627a\u0628")).toBe("\u0627a\u0628"); // bidi: RandALCat mixed with LCat
    expect(prep("\u00AD")).toBe("\u00AD"); // empty after mapping
    expect(prep("\u00AA\uE000")).toBe("\u00AA\uE000"); // private use
    expect(prep("\u00AA\u0378")).toBe("\u00AA\u0378"); // unassigned
  });
});
