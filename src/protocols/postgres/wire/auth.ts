import { isUtf8 } from "node:buffer";
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { GatewayError } from "../../../core/errors.js";

/**
 * The gateway answers the upstream server's password challenges itself (the real credential
 * never reaches the client). Nothing here ever puts the password, or anything derived from it,
 * into an error message.
 */

/**
 * protocol-flow "AuthenticationMD5Password": the response is
 * "md5" + md5hex(md5hex(password + user) + salt), sent in a PasswordMessage.
 */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  if (salt.length !== 4) throw new GatewayError("GW_UPSTREAM_AUTH", "MD5 salt from the server is not 4 bytes");
  const inner = createHash("md5").update(password, "utf8").update(user, "utf8").digest("hex");
  return "md5" + createHash("md5").update(inner, "latin1").update(salt).digest("hex");
}

// ---------------------------------------------------------------------------------------------
// SASLprep "lite" (RFC 4013 over RFC 3454), mirroring PostgreSQL's pg_saslprep
// (src/common/saslprep.c), which both the server and libpq use when a SCRAM verifier is built:
//
// - a pure-ASCII password is used unchanged;
// - otherwise: map non-ASCII spaces (RFC 3454 C.1.2) to U+0020 and delete "commonly mapped to
//   nothing" characters (B.1); if the result is empty, or contains a prohibited character
//   (C.1.2-C.9) or an unassigned code point, or breaks the bidi rule (section 6), fall back to
//   the raw UTF-8 bytes of the password (PostgreSQL tolerates non-conforming passwords the same
//   way); else NFKC-normalize (String.prototype.normalize).
//
// Approximations, documented because they can matter only for exotic passwords:
// - "unassigned" uses the running Node's Unicode database (\p{Cn}), not Unicode 3.2, so a code
//   point assigned after 3.2 is treated as assigned (PostgreSQL would fall back to raw bytes);
// - the bidi check uses RFC 3454 table D.1 for RandALCat exactly, and approximates LCat (D.2) as
//   "letter or spacing mark that is not RandALCat";
// - as in pg_saslprep, the prohibition and bidi checks apply to the mapped, not yet normalized
//   characters.

type Ranges = readonly (readonly [number, number])[];

function inRanges(cp: number, ranges: Ranges): boolean {
  for (const [lo, hi] of ranges) {
    if (cp < lo) return false;
    if (cp <= hi) return true;
  }
  return false;
}

/** RFC 3454 C.1.2 Non-ASCII space characters. */
const NON_ASCII_SPACE: Ranges = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/** RFC 3454 B.1 Commonly mapped to nothing. */
const MAPPED_TO_NOTHING: Ranges = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

/** RFC 4013 section 2.3: RFC 3454 C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9 (merged, sorted). */
const PROHIBITED: Ranges = [
  [0x0000, 0x001f],
  [0x007f, 0x00a0],
  [0x0340, 0x0341],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x1680, 0x1680],
  [0x180e, 0x180e],
  [0x2000, 0x200f],
  [0x2028, 0x202f],
  [0x205f, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0x3000, 0x3000],
  [0xd800, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xffff],
  [0x1d173, 0x1d17a],
  [0x1fffe, 0x1ffff],
  [0x2fffe, 0x2ffff],
  [0x3fffe, 0x3ffff],
  [0x4fffe, 0x4ffff],
  [0x5fffe, 0x5ffff],
  [0x6fffe, 0x6ffff],
  [0x7fffe, 0x7ffff],
  [0x8fffe, 0x8ffff],
  [0x9fffe, 0x9ffff],
  [0xafffe, 0xaffff],
  [0xbfffe, 0xbffff],
  [0xcfffe, 0xcffff],
  [0xdfffe, 0xdffff],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xefffe, 0x10ffff],
];

/** RFC 3454 D.1 Characters with bidirectional property "R" or "AL". */
const RAND_AL_CAT: Ranges = [
  [0x05be, 0x05be],
  [0x05c0, 0x05c0],
  [0x05c3, 0x05c3],
  [0x05d0, 0x05ea],
  [0x05f0, 0x05f4],
  [0x061b, 0x061b],
  [0x061f, 0x061f],
  [0x0621, 0x063a],
  [0x0640, 0x064a],
  [0x066d, 0x066f],
  [0x0671, 0x06d5],
  [0x06dd, 0x06dd],
  [0x06e5, 0x06e6],
  [0x06fa, 0x06fe],
  [0x0700, 0x070d],
  [0x0710, 0x0710],
  [0x0712, 0x072c],
  [0x0780, 0x07a5],
  [0x07b1, 0x07b1],
  [0x200f, 0x200f],
  [0xfb1d, 0xfb1d],
  [0xfb1f, 0xfb28],
  [0xfb2a, 0xfb36],
  [0xfb38, 0xfb3c],
  [0xfb3e, 0xfb3e],
  [0xfb40, 0xfb41],
  [0xfb43, 0xfb44],
  [0xfb46, 0xfbb1],
  [0xfbd3, 0xfd3d],
  [0xfd50, 0xfd8f],
  [0xfd92, 0xfdc7],
  [0xfdf0, 0xfdfc],
  [0xfe70, 0xfe74],
  [0xfe76, 0xfefc],
];

const UNASSIGNED = /^\p{Cn}$/u;
const LETTER_OR_SPACING_MARK = /^[\p{L}\p{Mc}]$/u;

/**
 * The password bytes SCRAM hashes: SASLprep-normalized when it applies, otherwise raw UTF-8
 * (see the notes above). Returns a fresh buffer the caller may zero.
 */
export function saslPrepPassword(password: string): Buffer {
  const raw = Buffer.from(password, "utf8");
  // Every non-ASCII UTF-16 unit takes 2 or more UTF-8 bytes: equal lengths mean pure ASCII.
  if (raw.length === password.length) return raw;
  // A lone surrogate has no UTF-8 form: PostgreSQL would see invalid UTF-8 and use the bytes.
  if (!isUtf8(raw) || /\p{Cs}/u.test(password)) return raw;
  const mapped: number[] = [];
  for (const ch of password) {
    const cp = ch.codePointAt(0) ?? 0;
    if (inRanges(cp, NON_ASCII_SPACE)) mapped.push(0x20);
    else if (!inRanges(cp, MAPPED_TO_NOTHING)) mapped.push(cp);
  }
  if (mapped.length === 0) return raw;
  let hasRandAL = false;
  for (const cp of mapped) {
    if (inRanges(cp, PROHIBITED) || UNASSIGNED.test(String.fromCodePoint(cp))) return raw;
    if (inRanges(cp, RAND_AL_CAT)) hasRandAL = true;
  }
  if (hasRandAL) {
    const first = mapped[0] ?? 0;
    const last = mapped[mapped.length - 1] ?? 0;
    if (!inRanges(first, RAND_AL_CAT) || !inRanges(last, RAND_AL_CAT)) return raw;
    for (const cp of mapped) {
      if (!inRanges(cp, RAND_AL_CAT) && LETTER_OR_SPACING_MARK.test(String.fromCodePoint(cp))) return raw;
    }
  }
  raw.fill(0);
  return Buffer.from(String.fromCodePoint(...mapped).normalize("NFKC"), "utf8");
}

// ---------------------------------------------------------------------------------------------
// SCRAM-SHA-256 client (RFC 5802, RFC 7677; PostgreSQL sasl-scram-sha-256)

export const SCRAM_SHA_256 = "SCRAM-SHA-256";

/** Bounds on the server's iteration count: at least 1 (RFC 5802), at most what we will burn CPU on. */
export const SCRAM_MAX_ITERATIONS = 10_000_000;

/** libpq uses 18 random bytes (SCRAM_RAW_NONCE_LEN), base64-encoded, as the client nonce. */
const RAW_NONCE_BYTES = 18;

/** No channel binding: gs2-header "n,," (client does not support it); "biws" is its base64. */
const GS2_HEADER = "n,,";
const GS2_HEADER_BASE64 = "biws";

/** RFC 5802 section 7: printable = %x21-2B / %x2D-7E (no comma). */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const POSITIVE_INTEGER = /^[1-9][0-9]{0,7}$/;

function authError(reason: string): GatewayError {
  return new GatewayError("GW_UPSTREAM_AUTH", `SCRAM authentication with the target failed: ${reason}`);
}

/** RFC 5802 saslname: "=" and "," escaped as "=3D" and "=2C". */
function saslName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

type ScramState =
  | { readonly step: "initial" }
  | { readonly step: "first_sent" }
  | { readonly step: "deriving" }
  | { readonly step: "final_sent"; readonly serverSignature: Buffer }
  | { readonly step: "done" }
  | { readonly step: "failed" };

interface ServerFirst {
  readonly nonce: string;
  readonly salt: Buffer;
  readonly iterations: number;
  readonly text: string;
}

/**
 * One SCRAM-SHA-256 exchange, client side, without channel binding. Flow (sasl-scram-sha-256):
 * SASLInitialResponse(mechanism, clientFirstMessage()) → AuthenticationSASLContinue(data) →
 * SASLResponse(handleServerFirst(data)) → AuthenticationSASLFinal(data) → verifyServerFinal(data)
 * → AuthenticationOk.
 *
 * The user name in client-first is empty, as libpq sends it: PostgreSQL uses the name from the
 * startup packet and ignores this one. Methods must be called in order; each may be called
 * once. Any failure leaves the client unusable.
 */
export class ScramClient {
  readonly mechanism = SCRAM_SHA_256;
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private password: Buffer;
  private state: ScramState = { step: "initial" };

  /**
   * @param nonce raw nonce bytes (for tests); the wire nonce is their base64. Default: 18 random bytes.
   * @param username for test vectors only; PostgreSQL ignores it (default "").
   */
  constructor(password: string, nonce?: Buffer, username = "") {
    this.password = saslPrepPassword(password);
    this.clientNonce = (nonce ?? randomBytes(RAW_NONCE_BYTES)).toString("base64");
    if (!PRINTABLE.test(this.clientNonce)) throw new GatewayError("GW_INTERNAL", "SCRAM nonce must not be empty");
    this.clientFirstBare = `n=${saslName(username)},r=${this.clientNonce}`;
  }

  /** client-first-message: gs2-header + client-first-message-bare. */
  clientFirstMessage(): Buffer {
    if (this.state.step !== "initial") this.outOfOrder("initial");
    this.state = { step: "first_sent" };
    return Buffer.from(GS2_HEADER + this.clientFirstBare, "utf8");
  }

  /** Answer server-first-message (AuthenticationSASLContinue data) with client-final-message. */
  handleServerFirst(data: Buffer): Buffer {
    if (this.state.step !== "first_sent") this.outOfOrder("first_sent");
    const first = this.parseServerFirst(data);
    return this.finish(first, pbkdf2Sync(this.password, first.salt, first.iterations, 32, "sha256"));
  }

  /**
   * As handleServerFirst, but runs PBKDF2 (thousands of HMAC rounds: milliseconds at 4096
   * iterations, seconds at the upper bound) on the libuv thread pool instead of the event loop.
   */
  async handleServerFirstAsync(data: Buffer): Promise<Buffer> {
    if (this.state.step !== "first_sent") this.outOfOrder("first_sent");
    const first = this.parseServerFirst(data);
    const salted = await new Promise<Buffer>((resolve, reject) => {
      pbkdf2(this.password, first.salt, first.iterations, 32, "sha256", (err, key) => {
        if (err === null) resolve(key);
        else {
          this.state = { step: "failed" };
          reject(new GatewayError("GW_INTERNAL", "key derivation failed", { cause: err }));
        }
      });
    });
    return this.finish(first, salted);
  }

  /**
   * Check server-final-message (AuthenticationSASLFinal data): "v=" + base64 ServerSignature,
   * compared in constant time. "e=…" (a server-error) or a wrong signature: GW_UPSTREAM_AUTH.
   * The signature proves the server knows the verifier: without this check an impostor
   * upstream could accept any proof.
   */
  verifyServerFinal(data: Buffer): void {
    const state = this.state;
    if (state.step !== "final_sent") this.outOfOrder("final_sent");
    const expected = state.serverSignature;
    this.state = { step: "failed" };
    const text = isUtf8(data) ? data.toString("utf8") : "";
    const attrs = text.split(",");
    const head = attrs[0] ?? "";
    if (head.startsWith("e=")) {
      // server-error-value is a short token such as "invalid-proof"; keep only token characters.
      const value = head.slice(2).replace(/[^a-z0-9-]/g, "").slice(0, 64);
      throw authError(`the server reported "${value}"`);
    }
    if (!head.startsWith("v=") || !BASE64.test(head.slice(2))) throw authError("malformed server-final-message");
    for (const ext of attrs.slice(1)) {
      if (!/^[a-zA-Z]=/.test(ext)) throw authError("malformed server-final-message");
    }
    const got = Buffer.from(head.slice(2), "base64");
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw authError("the server's signature is wrong (it does not know the password)");
    }
    this.state = { step: "done" };
  }

  private outOfOrder(expected: ScramState["step"]): never {
    const failed = this.state.step === "failed";
    this.state = { step: "failed" };
    throw failed
      ? authError("the exchange already failed")
      : new GatewayError("GW_INTERNAL", `SCRAM step out of order (expected ${expected})`);
  }

  /**
   * RFC 5802 section 7: server-first-message = [reserved-mext ","] nonce "," salt ","
   * iteration-count ["," extensions]. A mandatory extension (m=) cannot be honoured: refuse.
   */
  private parseServerFirst(data: Buffer): ServerFirst {
    this.state = { step: "failed" };
    if (!isUtf8(data)) throw authError("server-first-message is not UTF-8");
    const text = data.toString("utf8");
    const attrs = text.split(",");
    const [r, s, i] = attrs;
    if (r === undefined || s === undefined || i === undefined) throw authError("malformed server-first-message");
    if (r.startsWith("m=")) throw authError("the server requires an unsupported SCRAM extension");
    if (!r.startsWith("r=") || !s.startsWith("s=") || !i.startsWith("i=")) throw authError("malformed server-first-message");
    for (const ext of attrs.slice(3)) {
      if (!/^[a-zA-Z]=/.test(ext)) throw authError("malformed server-first-message");
    }
    const nonce = r.slice(2);
    // The server must extend our nonce, never replace it (RFC 5802 section 5.1).
    if (!PRINTABLE.test(nonce) || nonce.length <= this.clientNonce.length || !nonce.startsWith(this.clientNonce)) {
      throw authError("the server's nonce does not extend the client nonce");
    }
    const saltText = s.slice(2);
    if (saltText === "" || !BASE64.test(saltText)) throw authError("the salt is not valid base64");
    const iterText = i.slice(2);
    const iterations = POSITIVE_INTEGER.test(iterText) ? Number(iterText) : 0;
    if (iterations < 1 || iterations > SCRAM_MAX_ITERATIONS) {
      throw authError(`the iteration count must be between 1 and ${SCRAM_MAX_ITERATIONS}`);
    }
    this.state = { step: "deriving" };
    return { nonce, salt: Buffer.from(saltText, "base64"), iterations, text };
  }

  /** RFC 5802 section 3: ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage). */
  private finish(first: ServerFirst, salted: Buffer): Buffer {
    const withoutProof = `c=${GS2_HEADER_BASE64},r=${first.nonce}`;
    const authMessage = `${this.clientFirstBare},${first.text},${withoutProof}`;
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    const clientSignature = createHmac("sha256", storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(clientKey.length);
    for (let k = 0; k < proof.length; k++) proof[k] = (clientKey[k] ?? 0) ^ (clientSignature[k] ?? 0);
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    const serverSignature = createHmac("sha256", serverKey).update(authMessage).digest();
    const message = Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8");
    // Password-equivalent material is no longer needed once the proof exists.
    for (const b of [salted, clientKey, storedKey, clientSignature, serverKey, proof, this.password]) b.fill(0);
    this.password = Buffer.alloc(0);
    this.state = { step: "final_sent", serverSignature };
    return message;
  }
}
