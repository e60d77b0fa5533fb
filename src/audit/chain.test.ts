import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, canonicalKnownRecord, canonicalRecord, ChainHasher, computeHash, GENESIS_HASH, RECORD_KEYS, storableString, verifyChain } from "./chain.js";
import type { AuditEventInput, AuditRecord } from "./types.js";

const KEY = Buffer.from("k".repeat(32));

function chain(inputs: readonly AuditEventInput[], key = KEY, firstSeq = 1, firstPrev = GENESIS_HASH): AuditRecord[] {
  let prev = firstPrev;
  return inputs.map((input, i) => {
    const base = { ...input, seq: firstSeq + i, time: `2026-01-01T00:00:${String(i % 60).padStart(2, "0")}.000Z`, prevHash: prev };
    const hash = computeHash(key, prev, base);
    prev = hash;
    return { ...base, hash };
  });
}

const INPUTS: AuditEventInput[] = [
  { type: "gateway.start" },
  { type: "session.start", sessionId: "s1", decision: "allow", principal: { id: "sa:bot", kind: "service_account", name: "bot" } },
  { type: "db.query", sessionId: "s1", statement: "SELECT 1", decision: "allow" },
  { type: "db.query", sessionId: "s1", statement: "DROP TABLE t", decision: "deny", code: "GW_POLICY_DENIED", rule: "no-drop" },
  { type: "session.end", sessionId: "s1", details: { statements: 2 } },
];

describe("canonicalJson", () => {
  it("sorts keys at every level, omits undefined, keeps array order, no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1, { z: true, y: null }], c: "x" }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[3,1,{"y":null,"z":true}]},"b":1}',
    );
  });

  it("is independent of insertion order and equals JSON.parse round trips", () => {
    const record = fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true })));
    fc.assert(
      fc.property(record, (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        const c = canonicalJson(obj);
        expect(canonicalJson(reversed)).toBe(c);
        expect(canonicalJson(JSON.parse(c))).toBe(c);
      }),
    );
  });

  it("refuses values JSON cannot carry", () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
  });
});

describe("computeHash", () => {
  it("is HMAC-SHA256(key, prevHash + \\n + canonical record without hash)", () => {
    const rec = { type: "gateway.start" as const, seq: 1, time: "t", prevHash: GENESIS_HASH };
    const expected = createHmac("sha256", KEY).update(`${GENESIS_HASH}\n{"prevHash":"${GENESIS_HASH}","seq":1,"time":"t","type":"gateway.start"}`).digest("hex");
    expect(computeHash(KEY, GENESIS_HASH, rec)).toBe(expected);
    // The hash field itself is excluded, so hashing a finished record gives the same value.
    expect(computeHash(KEY, GENESIS_HASH, { ...rec, hash: "f".repeat(64) })).toBe(expected);
    expect(computeHash(Buffer.from("other-key".repeat(4)), GENESIS_HASH, rec)).not.toBe(expected);
  });
});

describe("hot-path equivalents", () => {
  const optStr = fc.option(fc.string(), { nil: undefined });
  const record = fc.record({
    type: fc.constantFrom("db.query" as const, "session.start" as const),
    seq: fc.integer({ min: 1, max: 1e9 }),
    time: fc.string(),
    prevHash: fc.constant(GENESIS_HASH),
    sessionId: optStr,
    connection: optStr,
    statement: optStr,
    rule: optStr,
    message: optStr,
    protocol: optStr,
    clientAddress: optStr,
    decision: fc.option(fc.constantFrom("allow" as const, "deny" as const), { nil: undefined }),
    code: fc.option(fc.constantFrom("GW_POLICY_DENIED" as const), { nil: undefined }),
    principal: fc.option(fc.record({ id: fc.string(), kind: fc.constant("person" as const), name: fc.string() }), { nil: undefined }),
    details: fc.option(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null))), { nil: undefined }),
  });

  it("RECORD_KEYS is in canonical order", () => {
    expect([...RECORD_KEYS]).toEqual([...RECORD_KEYS].sort());
  });

  it("canonicalKnownRecord equals canonicalRecord and ChainHasher equals computeHash", () => {
    const hasher = new ChainHasher(KEY);
    fc.assert(
      fc.property(record, (raw) => {
        const r = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)) as unknown as Parameters<typeof canonicalRecord>[0];
        const c = canonicalKnownRecord(r);
        expect(c).toBe(canonicalRecord(r));
        expect(hasher.hash(r.prevHash, c)).toBe(computeHash(KEY, r.prevHash, r));
      }),
    );
  });

  it("ChainHasher gives the same hashes before and after its scratch buffer grows (long, multi-byte statements)", () => {
    const hasher = new ChainHasher(KEY);
    const short = { type: "db.query" as const, seq: 1, time: "t", prevHash: GENESIS_HASH, statement: "select 1" };
    const long = { ...short, seq: 2, statement: `select '${"é😀x".repeat(5000)}'` };
    for (const r of [short, long, short, long]) expect(hasher.hash(r.prevHash, canonicalRecord(r))).toBe(computeHash(KEY, r.prevHash, r));
  });

  it("ChainHasher handles keys longer than a SHA-256 block", () => {
    const long = Buffer.alloc(100, 5);
    const r = { type: "gateway.start" as const, seq: 1, time: "t", prevHash: GENESIS_HASH };
    expect(new ChainHasher(long).hash(GENESIS_HASH, canonicalRecord(r))).toBe(computeHash(long, GENESIS_HASH, r));
  });
});

describe("storableString", () => {
  it("replaces NUL and lone surrogates, keeps valid pairs", () => {
    expect(storableString("a\u0000b")).toBe("a\ufffdb");
    expect(storableString("x\ud800y")).toBe("x\ufffdy");
    expect(storableString("x\udc00")).toBe("x\ufffd");
    expect(storableString("🚀 ok")).toBe("🚀 ok");
  });
});

describe("verifyChain", () => {
  it("accepts an intact chain, sync or async", async () => {
    const c = chain(INPUTS);
    expect(await verifyChain(c, KEY)).toEqual({ ok: true, records: 5, lastSeq: 5 });
    async function* gen(): AsyncGenerator<AuditRecord> {
      for (const r of c) {
        await Promise.resolve();
        yield r;
      }
    }
    expect(await verifyChain(gen(), KEY)).toEqual({ ok: true, records: 5, lastSeq: 5 });
    expect(await verifyChain([], KEY)).toEqual({ ok: true, records: 0, lastSeq: 0 });
  });

  it("detects an edited field", async () => {
    const c = chain(INPUTS);
    c[3] = { ...c[3]!, decision: "allow" };
    expect(await verifyChain(c, KEY)).toMatchObject({ ok: false, failedSeq: 4, reason: "hash_mismatch", records: 3 });
  });

  it("detects a deleted record", async () => {
    const c = chain(INPUTS);
    c.splice(2, 1);
    expect(await verifyChain(c, KEY)).toMatchObject({ ok: false, failedSeq: 3, reason: "sequence_gap" });
  });

  it("detects two swapped records", async () => {
    const c = chain(INPUTS);
    [c[1], c[2]] = [c[2]!, c[1]!];
    expect(await verifyChain(c, KEY)).toMatchObject({ ok: false, failedSeq: 2, reason: "sequence_gap" });
  });

  it("detects a record forged without the key (inserted and the rest renumbered)", async () => {
    const good = chain(INPUTS);
    const forgedTail = chain([{ type: "db.query", statement: "harmless" }, ...INPUTS.slice(2)], Buffer.from("x".repeat(32)), 3, good[1]!.hash);
    const tampered = [...good.slice(0, 2), ...forgedTail];
    expect(await verifyChain(tampered, KEY)).toMatchObject({ ok: false, failedSeq: 3, reason: "hash_mismatch" });
  });

  it("detects a record that hashes correctly but links to the wrong predecessor", async () => {
    const c = chain(INPUTS);
    const other = chain(INPUTS.slice(0, 3), KEY, 1, "a".repeat(64));
    c[2] = other[2]!; // a valid record of a different chain (e.g. another gateway's)
    expect(await verifyChain(c, KEY)).toMatchObject({ ok: false, failedSeq: 3, reason: "chain_broken" });
  });

  it("rejects a different key", async () => {
    expect(await verifyChain(chain(INPUTS), Buffer.from("z".repeat(32)))).toMatchObject({ ok: false, failedSeq: 1, reason: "hash_mismatch" });
  });

  it("reports malformed records, including unknown fields that would escape the hash", async () => {
    const c: unknown[] = chain(INPUTS);
    c[1] = { ...(c[1] as AuditRecord), injected: "x" };
    expect(await verifyChain(c, KEY)).toMatchObject({ ok: false, failedSeq: 2, reason: "malformed" });
    expect(await verifyChain([42], KEY)).toMatchObject({ ok: false, failedSeq: 1, reason: "malformed" });
    const bad = chain(INPUTS);
    expect(await verifyChain([{ ...bad[0]!, hash: "nothex" }], KEY)).toMatchObject({ ok: false, reason: "malformed" });
  });

  it("cannot see a truncated tail on its own (documented; verify.ts anchors the head)", async () => {
    expect(await verifyChain(chain(INPUTS).slice(0, 3), KEY)).toEqual({ ok: true, records: 3, lastSeq: 3 });
  });

  it("starts at a given seq, checking the first link only when told", async () => {
    const c = chain(INPUTS);
    expect(await verifyChain(c.slice(2), KEY, { firstSeq: 3 })).toEqual({ ok: true, records: 3, lastSeq: 5 });
    expect(await verifyChain(c.slice(2), KEY, { firstSeq: 3, firstPrevHash: c[1]!.hash })).toMatchObject({ ok: true });
    expect(await verifyChain(c.slice(2), KEY, { firstSeq: 3, firstPrevHash: c[0]!.hash })).toMatchObject({ ok: false, reason: "chain_broken", failedSeq: 3 });
    expect(await verifyChain(c.slice(2), KEY)).toMatchObject({ ok: false, reason: "sequence_gap", failedSeq: 1 });
  });
});
