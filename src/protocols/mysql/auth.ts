/**
 * Authentication plugins, both sides (pure functions over bytes).
 *
 * - mysql_native_password (MySQL docs, page_protocol_connection_phase_authentication_methods_native_password_authentication):
 *   SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))).
 * - caching_sha2_password (page_caching_sha2_authentication_exchanges): fast path
 *   SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce); full authentication sends
 *   the password in the clear over TLS, or RSA-OAEP encrypted (password + NUL XOR nonce) with the
 *   server's public key, which the client asks for with 0x02. AuthMoreData 0x03 = fast auth
 *   succeeded, 0x04 = perform full authentication.
 * - mysql_clear_password: the password and a NUL.
 * - MariaDB client_ed25519 (MariaDB KB "Authentication Plugin - ed25519"; plugin/auth_ed25519
 *   ref10 `crypto_sign`): an Ed25519 signature of the 32-byte nonce whose secret scalar and
 *   nonce prefix come from SHA-512 of the password itself (not of a 32-byte seed), so
 *   Node's Ed25519 cannot be used: RFC 8032 §5.1 arithmetic below, over BigInt.
 */
import { constants, createHash, privateDecrypt, publicEncrypt, type KeyObject } from "node:crypto";

function sha1(...parts: Buffer[]): Buffer {
  const h = createHash("sha1");
  for (const p of parts) h.update(p);
  return h.digest();
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i % b.length] ?? 0);
  return out;
}

export function nativePasswordScramble(password: string, nonce: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const p1 = sha1(Buffer.from(password, "utf8"));
  return xor(p1, sha1(nonce.subarray(0, 20), sha1(p1)));
}

export function cachingSha2Scramble(password: string, nonce: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const p1 = sha256(Buffer.from(password, "utf8"));
  return xor(p1, sha256(sha256(p1), nonce.subarray(0, 20)));
}

/** The password + NUL, XORed with the nonce, RSA-OAEP (SHA-1) encrypted with the server's key. */
export function rsaEncryptPassword(password: string, nonce: Buffer, publicKeyPem: string | KeyObject): Buffer {
  const plain = xor(Buffer.concat([Buffer.from(password, "utf8"), Buffer.from([0])]), nonce.subarray(0, 20));
  return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING }, plain);
}

/** The server side of rsaEncryptPassword: the clear password (without its NUL). */
export function rsaDecryptPassword(cipher: Buffer, nonce: Buffer, privateKey: KeyObject): string {
  const plain = xor(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, cipher), nonce.subarray(0, 20));
  const end = plain.indexOf(0);
  return plain.subarray(0, end < 0 ? plain.length : end).toString("utf8");
}

/** A clear password as sent by mysql_clear_password or caching_sha2 full auth over TLS. */
export function clearPasswordOf(data: Buffer): string {
  const end = data.indexOf(0);
  return data.subarray(0, end < 0 ? data.length : end).toString("utf8");
}

// ---------------------------------------------------------------------------------------------
// Ed25519 (RFC 8032 §5.1) with MariaDB's password-derived key.

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function pow(b: bigint, e: bigint, m = P): bigint {
  let r = 1n;
  let x = mod(b, m);
  let k = e;
  while (k > 0n) {
    if (k & 1n) r = (r * x) % m;
    x = (x * x) % m;
    k >>= 1n;
  }
  return r;
}

function inv(a: bigint): bigint {
  return pow(a, P - 2n);
}

const D = mod(-121665n * inv(121666n));

type Point = readonly [bigint, bigint, bigint, bigint]; // extended coordinates X, Y, Z, T

function add(p: Point, q: Point): Point {
  const a = mod((p[1] - p[0]) * (q[1] - q[0]));
  const b = mod((p[1] + p[0]) * (q[1] + q[0]));
  const c = mod(p[3] * 2n * D * q[3]);
  const d = mod(p[2] * 2n * q[2]);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function scalarMult(s: bigint, p: Point): Point {
  let q: Point = [0n, 1n, 1n, 0n];
  let x = p;
  let k = s;
  while (k > 0n) {
    if (k & 1n) q = add(q, x);
    x = add(x, x);
    k >>= 1n;
  }
  return q;
}

const BASE: Point = (() => {
  const y = mod(4n * inv(5n));
  const x2 = mod((y * y - 1n) * inv(D * y * y + 1n));
  let x = pow(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = mod(x * pow(2n, (P - 1n) / 4n));
  if (x & 1n) x = P - x;
  return [x, y, 1n, mod(x * y)];
})();

function encodePoint(p: Point): Buffer {
  const zi = inv(p[2]);
  const x = mod(p[0] * zi);
  const y = mod(p[1] * zi);
  const v = y | ((x & 1n) << 255n);
  const out = Buffer.alloc(32);
  let k = v;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(k & 0xffn);
    k >>= 8n;
  }
  return out;
}

function leToBig(b: Buffer): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] ?? 0);
  return v;
}

function bigToLe32(v: bigint): Buffer {
  const out = Buffer.alloc(32);
  let k = v;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(k & 0xffn);
    k >>= 8n;
  }
  return out;
}

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Ed25519 from a 64-byte expanded secret (az): the public key and a signature of `message`. */
function signExpanded(az: Buffer, message: Buffer): { publicKey: Buffer; signature: Buffer } {
  const a = Buffer.from(az.subarray(0, 32));
  a[0] = (a[0] ?? 0) & 248;
  a[31] = ((a[31] ?? 0) & 63) | 64;
  const scalar = leToBig(a);
  const publicKey = encodePoint(scalarMult(scalar, BASE));
  const r = mod(leToBig(sha512(az.subarray(32, 64), message)), L);
  const R = encodePoint(scalarMult(r, BASE));
  const h = mod(leToBig(sha512(R, publicKey, message)), L);
  const S = mod(r + h * scalar, L);
  return { publicKey, signature: Buffer.concat([R, bigToLe32(S)]) };
}

/** MariaDB client_ed25519: the 64-byte signature of the server's nonce. */
export function ed25519Response(password: string, nonce: Buffer): Buffer {
  return signExpanded(sha512(Buffer.from(password, "utf8")), nonce).signature;
}

/** The public key MariaDB stores for a password (base64 without padding, as `PASSWORD()` of the plugin shows). */
export function ed25519PublicKey(password: string): Buffer {
  return signExpanded(sha512(Buffer.from(password, "utf8")), Buffer.alloc(0)).publicKey;
}

/** Standard Ed25519 over a 32-byte seed (for tests against Node's implementation). */
export function ed25519SignWithSeed(seed: Buffer, message: Buffer): Buffer {
  return signExpanded(sha512(seed), message).signature;
}
