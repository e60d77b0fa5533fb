import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openPgliteClient, type SqlClient } from "../store/sql.js";
import { SqlStore } from "../store/sql-store.js";
import { makeChain } from "../store/store.suite.js";
import { computeHash } from "./chain.js";
import { AUDIT_FILE_NAME, LocalAuditLog } from "./log.js";
import { MemoryAuditStore } from "./testing.js";
import type { AuditRecord } from "./types.js";
import { verifyAudit, verifyAuditFile, verifyAuditStore } from "./verify.js";

const KEY = Buffer.alloc(32, 3);

describe("verify: local file and store anchored to each other", () => {
  let dir: string;
  let path: string;
  let store: MemoryAuditStore;
  let pristine: string;
  let pristineStore: Map<number, AuditRecord>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "airlock-verify-"));
    path = join(dir, AUDIT_FILE_NAME);
    store = new MemoryAuditStore();
    const log = await LocalAuditLog.open({ dir, key: KEY, store, fsync: false });
    for (let i = 1; i <= 20; i++) await log.append({ type: "db.query", sessionId: "s", statement: `SELECT ${i}`, decision: "allow" });
    await log.flush();
    await log.close();
    pristine = await readFile(path, "utf8");
    pristineStore = new Map(store.records);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await writeFile(path, pristine);
    store.records.clear();
    for (const [k, v] of pristineStore) store.records.set(k, v);
  });

  const lines = (): string[] => pristine.split("\n").filter((l) => l !== "");
  const write = (ls: readonly string[]): Promise<void> => writeFile(path, ls.map((l) => `${l}\n`).join(""));

  it("accepts the untouched copies", async () => {
    expect(await verifyAuditFile(path, KEY)).toEqual({ ok: true, records: 20, lastSeq: 20 });
    expect(await verifyAuditStore(store, KEY)).toEqual({ ok: true, records: 20, lastSeq: 20 });
    expect(await verifyAudit({ store, key: KEY, filePath: path })).toEqual({ ok: true, records: 20, lastSeq: 20 });
  });

  it("detects an edited field", async () => {
    const ls = lines();
    ls[4] = ls[4]!.replace("SELECT 5", "SELECT 6");
    await write(ls);
    expect(await verifyAuditFile(path, KEY)).toMatchObject({ ok: false, failedSeq: 5, reason: "hash_mismatch" });
    expect(await verifyAudit({ store, key: KEY, filePath: path })).toMatchObject({ ok: false, failedSeq: 5 });
  });

  it("detects a deleted record", async () => {
    const ls = lines();
    ls.splice(6, 1);
    await write(ls);
    expect(await verifyAuditFile(path, KEY)).toMatchObject({ ok: false, failedSeq: 7, reason: "sequence_gap" });
  });

  it("detects two swapped records", async () => {
    const ls = lines();
    [ls[2], ls[3]] = [ls[3]!, ls[2]!];
    await write(ls);
    expect(await verifyAuditFile(path, KEY)).toMatchObject({ ok: false, failedSeq: 3, reason: "sequence_gap" });
  });

  it("detects a record forged without the key", async () => {
    const ls = lines();
    const r9 = JSON.parse(ls[8]!) as AuditRecord;
    const base = { ...r9, statement: "SELECT 'nothing to see'" };
    const forged = { ...base, hash: computeHash(Buffer.alloc(32, 4), base.prevHash, base) };
    ls[8] = JSON.stringify(forged);
    await write(ls);
    expect(await verifyAuditFile(path, KEY)).toMatchObject({ ok: false, failedSeq: 9, reason: "hash_mismatch" });
  });

  it("detects a truncated tail of the local file only with the store as anchor", async () => {
    await write(lines().slice(0, 17));
    expect(await verifyAuditFile(path, KEY)).toMatchObject({ ok: true, lastSeq: 17 }); // invisible alone
    const r = await verifyAudit({ store, key: KEY, filePath: path });
    expect(r).toMatchObject({ ok: false, failedSeq: 18, reason: "sequence_gap" });
    expect(!r.ok && r.detail).toContain("local audit log ends at seq 17");
  });

  it("detects a truncated tail of the store only with the local file as anchor", async () => {
    for (const seq of [18, 19, 20]) store.records.delete(seq);
    expect(await verifyAuditStore(store, KEY)).toMatchObject({ ok: true, lastSeq: 17 }); // invisible alone
    const r = await verifyAudit({ store, key: KEY, filePath: path });
    expect(r).toMatchObject({ ok: false, failedSeq: 18, reason: "sequence_gap" });
    expect(!r.ok && r.detail).toContain("the store ends at seq 17");
  });

  it("reports a torn last line as malformed", async () => {
    await appendFile(path, '{"hash":"ab');
    expect(await verifyAuditFile(path, KEY)).toMatchObject({ ok: false, failedSeq: 21, reason: "malformed" });
    expect(await verifyAudit({ store, key: KEY, filePath: path })).toMatchObject({ ok: false, failedSeq: 21, reason: "malformed" });
  });

  it("treats a missing file as empty, but still anchors it to the store", async () => {
    await rm(path);
    expect(await verifyAuditFile(path, KEY)).toEqual({ ok: true, records: 0, lastSeq: 0 });
    expect(await verifyAuditFile(path, KEY, { anchor: { seq: 20, hash: pristineStore.get(20)!.hash } })).toMatchObject({ ok: false, failedSeq: 1 });
  });
});

describe("verifyAuditStore over a real (PGlite) store", () => {
  let dir: string;
  let client: SqlClient;
  let store: SqlStore;
  const N = 1_234; // more than one page

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "airlock-verify-store-"));
    client = await openPgliteClient(join(dir, "store"));
    store = new SqlStore(client);
    await store.migrate();
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("verifies page by page and pinpoints tampering done with SQL", async () => {
    // makeChain's key is the suite's; verify with the same bytes.
    const chainKey = Buffer.alloc(32, 7);
    await store.appendAudit(makeChain(Array.from({ length: N }, (_, i) => ({ type: "db.query" as const, statement: `SELECT ${i}` }))));
    expect(await verifyAuditStore(store, chainKey)).toEqual({ ok: true, records: N, lastSeq: N });

    // Tampering with SQL, on the stored segments' JSON lines.
    const edit = (from: string, to: string): Promise<number> =>
      client.execute("UPDATE audit_segments SET body = replace(body, $1, $2) WHERE strpos(body, $1) > 0", [from, to]);
    await edit('"statement":"SELECT 1099"', '"statement":"SELECT 0"');
    expect(await verifyAuditStore(store, chainKey)).toMatchObject({ ok: false, failedSeq: 1_100, reason: "hash_mismatch", records: 1_099 });

    await client.execute("UPDATE audit_segments SET body = regexp_replace(body, $1, '') WHERE strpos(body, $2) > 0", [
      '[^\\n]*"statement":"SELECT 899"[^\\n]*\\n',
      '"statement":"SELECT 899"',
    ]);
    expect(await verifyAuditStore(store, chainKey)).toMatchObject({ ok: false, failedSeq: 900, reason: "sequence_gap" });

    await edit('"statement":"SELECT 299"', '"statement":"SELECT 299","note":"x"');
    expect(await verifyAuditStore(store, chainKey)).toMatchObject({ ok: false, failedSeq: 300, reason: "malformed" });

    await client.execute("UPDATE audit_segments SET body = regexp_replace(body, $1, '\"not a record\"') WHERE strpos(body, $2) > 0", [
      '[^\\n]*"statement":"SELECT 9"[^\\n]*',
      '"statement":"SELECT 9"',
    ]);
    expect(await verifyAuditStore(store, chainKey)).toMatchObject({ ok: false, failedSeq: 10, reason: "malformed" });
    // (PGlite runs in this process: on a loaded machine the 1,234-record chain takes well over the default 30 s.)
  }, 120_000);
});
