/**
 * The audit hash chain (pure: no I/O).
 *
 *   hash(n) = HMAC-SHA256(key, prevHash(n) + "\n" + canonical(record(n) without `hash`)), hex
 *   prevHash(1) = GENESIS_HASH, prevHash(n) = hash(n - 1), seq(n) = n
 *
 * Canonical JSON: object keys sorted by UTF-16 code unit order, no whitespace, properties whose
 * value is `undefined` omitted (as JSON.stringify does), numbers and strings as JSON.stringify
 * writes them. Because it is a pure function of the record's values, the same record hashes the
 * same after a round trip through the JSONL file or the store's jsonb column.
 *
 * What the chain detects on its own: an edited record (hash_mismatch), a removed or reordered
 * record (sequence_gap), a record inserted or re-linked without the key (hash_mismatch or
 * chain_broken). What it cannot detect on its own: removal of the LAST records, since the
 * shorter chain is still internally valid. verify.ts closes that gap by anchoring each copy
 * (local file, store) to the other's head.
 */
import { createHash, createHmac, hash as cryptoHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ERROR_CODES } from "../core/errors.js";
import { AUDIT_EVENT_TYPES, type AuditRecord, type AuditVerifyResult } from "./types.js";

export const GENESIS_HASH = "0".repeat(64);

const HASH_RE = /^[0-9a-f]{64}$/;

/** A record as stored: every field checked; unknown fields are refused (they would escape the hash). */
export const auditRecordSchema = z.strictObject({
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  time: z.string().min(1),
  prevHash: z.string().regex(HASH_RE),
  hash: z.string().regex(HASH_RE),
  type: z.enum(AUDIT_EVENT_TYPES),
  sessionId: z.string().exactOptional(),
  principal: z
    .strictObject({
      id: z.string(),
      kind: z.enum(["service_account", "person", "workload", "admin"]),
      name: z.string(),
    })
    .exactOptional(),
  connection: z.string().exactOptional(),
  protocol: z.string().exactOptional(),
  clientAddress: z.string().exactOptional(),
  decision: z.enum(["allow", "deny"]).exactOptional(),
  code: z.enum(ERROR_CODES).exactOptional(),
  rule: z.string().exactOptional(),
  message: z.string().exactOptional(),
  statement: z.string().exactOptional(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).exactOptional(),
});

// Compile-time check that the schema and the contract type agree in both directions.
type Extends<A, B> = [A] extends [B] ? true : false;
export const _auditSchemaMatchesContract: [Extends<z.output<typeof auditRecordSchema>, AuditRecord>, Extends<AuditRecord, z.input<typeof auditRecordSchema>>] = [
  true,
  true,
];

export type AuditRecordWithoutHash = Omit<AuditRecord, "hash">;

/** Canonical JSON (see the module comment). Throws on values JSON cannot represent. */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("canonicalJson: non-finite number");
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) {
        const items: unknown[] = value;
        return `[${items.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const parts: string[] = [];
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
      }
      return `{${parts.join(",")}}`;
    }
    case "bigint":
    case "function":
    case "symbol":
    case "undefined":
      throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`);
  }
  throw new TypeError("canonicalJson: unknown value type");
}

/** Canonical JSON of the record minus its `hash` field. */
export function canonicalRecord(record: AuditRecordWithoutHash | AuditRecord): string {
  const { hash: _hash, ...rest } = record as AuditRecord;
  return canonicalJson(rest);
}

export function computeHash(key: Buffer, prevHash: string, recordWithoutHash: AuditRecordWithoutHash | AuditRecord): string {
  return createHmac("sha256", key).update(prevHash).update("\n").update(canonicalRecord(recordWithoutHash)).digest("hex");
}

/** The record's possible keys (without `hash`), in canonical (sorted) order. */
export const RECORD_KEYS = [
  "clientAddress",
  "code",
  "connection",
  "decision",
  "details",
  "message",
  "prevHash",
  "principal",
  "protocol",
  "rule",
  "seq",
  "sessionId",
  "statement",
  "time",
  "type",
] as const satisfies readonly (keyof AuditRecordWithoutHash)[];

/**
 * canonicalRecord for a record known to hold only contract fields (the log builds it itself):
 * walks the fixed key order instead of sorting. Equal to canonicalRecord for such records (a
 * property test holds them together).
 */
export function canonicalKnownRecord(r: AuditRecordWithoutHash): string {
  let out = "{";
  for (const k of RECORD_KEYS) {
    const v = r[k];
    if (v === undefined) continue;
    if (out.length > 1) out += ",";
    out += `"${k}":`;
    if (typeof v === "string") out += JSON.stringify(v);
    else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new TypeError("canonicalJson: non-finite number");
      out += JSON.stringify(v);
    } else if (k === "principal" && typeof v === "object" && "kind" in v) {
      out += `{"id":${JSON.stringify(v.id)},"kind":${JSON.stringify(v.kind)},"name":${JSON.stringify(v.name)}}`;
    } else out += canonicalJson(v);
  }
  return `${out}}`;
}

/**
 * HMAC-SHA256 (RFC 2104: H((K^opad) || H((K^ipad) || m))) with the padded keys built once and
 * each of the two hashes done by the one-shot `crypto.hash` over a reused scratch buffer: no
 * Hash object is created per record (creating and copying them was most of the hot path's hash
 * cost). Same output as computeHash (a property test holds them together).
 */
export class ChainHasher {
  /** K^ipad, then room for the message (grown on demand). */
  private scratch: Buffer;
  /** K^opad followed by the inner digest (32 bytes). */
  private readonly outer: Buffer;

  constructor(key: Buffer) {
    const block = key.length > 64 ? createHash("sha256").update(key).digest() : key;
    this.scratch = Buffer.alloc(4096, 0x36);
    this.outer = Buffer.alloc(96, 0x5c);
    for (let i = 0; i < block.length; i++) {
      this.scratch[i] = (this.scratch[i] ?? 0) ^ (block[i] ?? 0);
      this.outer[i] = (this.outer[i] ?? 0) ^ (block[i] ?? 0);
    }
  }

  /** HMAC(key, prevHash + "\n" + canonical). */
  hash(prevHash: string, canonical: string): string {
    const need = 64 + Buffer.byteLength(prevHash, "utf8") + 1 + Buffer.byteLength(canonical, "utf8");
    if (need > this.scratch.length) {
      const grown = Buffer.alloc(Math.max(need, this.scratch.length * 2));
      this.scratch.copy(grown, 0, 0, 64);
      this.scratch.fill(0);
      this.scratch = grown;
    }
    const b = this.scratch;
    let at = 64 + b.write(prevHash, 64, "utf8");
    b[at++] = 0x0a;
    at += b.write(canonical, at, "utf8");
    hashInto(b.subarray(0, at), this.outer);
    return cryptoHash("sha256", this.outer, "hex");
  }
}

/** Write SHA-256(data) into the last 32 bytes of `out`. */
function hashInto(data: Buffer, out: Buffer): void {
  cryptoHash("sha256", data, "buffer").copy(out, out.length - 32);
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

// Lone UTF-16 surrogates and NUL cannot survive the store (jsonb rejects \u0000 and unpaired
// surrogates; UTF-8 encoding replaces them), which would change the hash or wedge shipping.
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Replace characters that cannot round-trip through PostgreSQL text/jsonb with U+FFFD. */
export function storableString(s: string): string {
  UNSTORABLE.lastIndex = 0;
  return UNSTORABLE.test(s) ? s.replace(UNSTORABLE, "\ufffd") : s;
}

export interface VerifyChainOptions {
  /** The seq the first record must have (default 1). */
  readonly firstSeq?: number;
  /**
   * The prevHash the first record must have. Default: GENESIS_HASH when firstSeq is 1; when
   * starting later and not given, the first link is accepted as is (it cannot be checked).
   */
  readonly firstPrevHash?: string;
}

/**
 * Check a sequence of records (each `unknown`: shapes are verified too). Stops at the first
 * failure. Memory is constant: only the previous hash is kept.
 */
export async function verifyChain(
  records: Iterable<unknown> | AsyncIterable<unknown>,
  key: Buffer,
  options: VerifyChainOptions = {},
): Promise<AuditVerifyResult> {
  const firstSeq = options.firstSeq ?? 1;
  let expectedPrev: string | undefined = options.firstPrevHash ?? (firstSeq === 1 ? GENESIS_HASH : undefined);
  let expectedSeq = firstSeq;
  let count = 0;
  for await (const raw of records) {
    const parsed = auditRecordSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue === undefined ? "" : `${issue.path.join(".") || "(record)"}: ${issue.message}`;
      return { ok: false, records: count, failedSeq: expectedSeq, reason: "malformed", detail: `record ${expectedSeq} is malformed: ${where}` };
    }
    const r = parsed.data;
    if (r.seq !== expectedSeq) {
      const detail =
        r.seq > expectedSeq
          ? `record ${expectedSeq} is missing (next record has seq ${r.seq})`
          : `record with seq ${r.seq} appears where ${expectedSeq} was expected (reordered or duplicated)`;
      return { ok: false, records: count, failedSeq: expectedSeq, reason: "sequence_gap", detail };
    }
    let hash: string;
    try {
      hash = computeHash(key, r.prevHash, r);
    } catch {
      return { ok: false, records: count, failedSeq: r.seq, reason: "malformed", detail: `record ${r.seq} cannot be encoded` };
    }
    if (!sameHex(hash, r.hash)) {
      return { ok: false, records: count, failedSeq: r.seq, reason: "hash_mismatch", detail: `record ${r.seq} was altered (its hash does not match its content)` };
    }
    if (expectedPrev !== undefined && !sameHex(expectedPrev, r.prevHash)) {
      return {
        ok: false,
        records: count,
        failedSeq: r.seq,
        reason: "chain_broken",
        detail: `record ${r.seq} does not link to record ${r.seq - 1} (prevHash differs)`,
      };
    }
    expectedPrev = r.hash;
    expectedSeq++;
    count++;
  }
  return { ok: true, records: count, lastSeq: expectedSeq - 1 };
}
