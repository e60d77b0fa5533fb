import { appendFile, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import { verifyChain } from "./chain.js";
import { AUDIT_FILE_NAME, LocalAuditLog, SHIP_BATCH, SHIP_MEMORY_RECORDS, type AuditWriter, type LocalAuditLogOptions } from "./log.js";
import { MemoryAuditStore } from "./testing.js";
import type { AuditEventInput } from "./types.js";
import { verifyAuditFile } from "./verify.js";

const KEY = Buffer.alloc(32, 3);
let dir: string;
const opened: LocalAuditLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-audit-"));
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
  await rm(dir, { recursive: true, force: true });
});

async function openLog(store: MemoryAuditStore, extra: Partial<LocalAuditLogOptions> = {}): Promise<LocalAuditLog> {
  const log = await LocalAuditLog.open({ dir, key: KEY, store, fsync: false, retryMinMs: 5, retryMaxMs: 20, closeTimeoutMs: 200, ...extra });
  opened.push(log);
  return log;
}

/** Wraps the real file so tests can count writes and make them fail. */
function countingWriter(): { open: (path: string) => Promise<AuditWriter>; writes: number[]; failNext: { value: boolean }; closeFd(): Promise<void> } {
  const writes: number[] = [];
  const failNext = { value: false };
  let fdClose: (() => Promise<void>) | undefined;
  return {
    writes,
    failNext,
    closeFd: () => fdClose?.() ?? Promise.resolve(),
    async open(path) {
      const fh = await open(path, "a", 0o600);
      fdClose = () => fh.close();
      return {
        async write(data) {
          if (failNext.value) throw Object.assign(new Error("ENOSPC: no space left on device (test)"), { code: "ENOSPC" });
          writes.push(data.length);
          await fh.write(data);
        },
        datasync: () => fh.datasync(),
        close: () => fh.close().catch(() => undefined),
      };
    },
  };
}

const query = (i: number): AuditEventInput => ({ type: "db.query", sessionId: "s1", statement: `SELECT ${i}`, decision: "allow" });

async function fileLines(): Promise<string[]> {
  const text = await readFile(join(dir, AUDIT_FILE_NAME), "utf8");
  return text.split("\n").filter((l) => l !== "");
}

describe("LocalAuditLog", () => {
  it("appends a verifiable chain to <dir>/audit.log (mode 0600) and ships it", async () => {
    const store = new MemoryAuditStore();
    const log = await openLog(store);
    const r1 = await log.append({ type: "gateway.start" });
    const r2 = await log.append(query(1));
    expect([r1.seq, r2.seq]).toEqual([1, 2]);
    expect(r2.prevHash).toBe(r1.hash);
    expect((await stat(join(dir, AUDIT_FILE_NAME))).mode & 0o777).toBe(0o600);
    expect(await verifyAuditFile(join(dir, AUDIT_FILE_NAME), KEY)).toEqual({ ok: true, records: 2, lastSeq: 2 });
    await log.flush();
    expect([...store.records.keys()]).toEqual([1, 2]);
    expect(store.records.get(2)).toEqual(r2);
  });

  it("keeps only the contract's fields and makes strings storable", async () => {
    const store = new MemoryAuditStore();
    const log = await openLog(store);
    const wide = { ...query(1), statement: "SELECT '\u0000'", password: "hunter2" } as AuditEventInput;
    const r = await log.append(wide);
    expect("password" in r).toBe(false);
    expect(r.statement).toBe("SELECT '\ufffd'");
    expect((await readFile(join(dir, AUDIT_FILE_NAME), "utf8")).includes("hunter2")).toBe(false);
    await expect(log.append({ type: "db.query", details: { n: Number.POSITIVE_INFINITY } })).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
    // The refused record consumed no seq.
    expect((await log.append(query(2))).seq).toBe(2);
  });

  it("group-commits: appends in the same tick share one write; appends during a write form the next", async () => {
    const w = countingWriter();
    const log = await openLog(new MemoryAuditStore(), { openWriter: w.open });
    const first = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(query(i))));
    expect(first.map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(w.writes.length).toBe(1);

    // A second wave starts while... nothing is in flight: one more write. Then, while that write
    // is in flight, a third wave queues and goes out as exactly one further write.
    const wave2 = Array.from({ length: 50 }, (_, i) => log.append(query(1000 + i)));
    await new Promise<void>((r) => setImmediate(r)); // the wave-2 write has started
    const wave3 = Array.from({ length: 50 }, (_, i) => log.append(query(2000 + i)));
    await Promise.all([...wave2, ...wave3]);
    expect(w.writes.length).toBe(3);
    expect((await fileLines()).length).toBe(300);
    expect(await verifyAuditFile(join(dir, AUDIT_FILE_NAME), KEY)).toMatchObject({ ok: true, lastSeq: 300 });
  });

  it("fails closed when a write fails: that batch and every later append reject", async () => {
    const w = countingWriter();
    const log = await openLog(new MemoryAuditStore(), { openWriter: w.open });
    await log.append(query(1));
    w.failNext.value = true;
    const batch = [log.append(query(2)), log.append(query(3))];
    for (const p of batch) await expect(p).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
    w.failNext.value = false; // even if the disk recovers, the log stays failed until restart
    const later = await log.append(query(4)).catch((e: unknown) => e);
    expect(later).toBeInstanceOf(GatewayError);
    expect(later).toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
    await expect(log.flush()).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
  });

  it("fails closed when the file descriptor is closed under it", async () => {
    const w = countingWriter();
    const log = await openLog(new MemoryAuditStore(), { openWriter: w.open });
    await log.append(query(1));
    await w.closeFd();
    await expect(log.append(query(2))).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
    await expect(log.append(query(3))).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
    expect(await fileLines()).toHaveLength(1);
  });

  it("continues the chain after a restart (and with fsync on)", async () => {
    const store = new MemoryAuditStore();
    const log1 = await openLog(store, { fsync: true });
    for (let i = 0; i < 3; i++) await log1.append(query(i));
    await log1.close();
    const log2 = await openLog(store, { fsync: true });
    const r = await log2.append(query(3));
    expect(r.seq).toBe(4);
    await log2.flush();
    expect(await verifyAuditFile(join(dir, AUDIT_FILE_NAME), KEY, { firstSeq: 1 })).toEqual({ ok: true, records: 4, lastSeq: 4 });
    expect(await verifyChain([...store.records.values()].sort((a, b) => a.seq - b.seq), KEY)).toEqual({ ok: true, records: 4, lastSeq: 4 });
  });

  it("refuses to start on a torn last line, a corrupt last record, or a different key", async () => {
    const store = new MemoryAuditStore();
    const log = await openLog(store);
    await log.append(query(1));
    await log.close();
    const path = join(dir, AUDIT_FILE_NAME);
    const good = await readFile(path, "utf8");

    await appendFile(path, '{"seq":2,"ti');
    await expect(LocalAuditLog.open({ dir, key: KEY, store, fsync: false })).rejects.toMatchObject({
      code: "GW_AUDIT_UNAVAILABLE",
      message: expect.stringContaining("partially written") as unknown,
    });

    await writeFile(path, `${good}not json\n`);
    await expect(LocalAuditLog.open({ dir, key: KEY, store, fsync: false })).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });

    await writeFile(path, good);
    await expect(LocalAuditLog.open({ dir, key: Buffer.alloc(32, 9), store, fsync: false })).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
  });

  it("continues from the store when the local file is missing", async () => {
    const store = new MemoryAuditStore();
    const log1 = await openLog(store);
    for (let i = 0; i < 3; i++) await log1.append(query(i));
    await log1.close();
    await rm(join(dir, AUDIT_FILE_NAME));
    const log2 = await openLog(store);
    const r = await log2.append(query(9));
    expect(r.seq).toBe(4);
    expect(r.prevHash).toBe(store.records.get(3)?.hash);
    await log2.flush();
    expect(await verifyChain([...store.records.values()].sort((a, b) => a.seq - b.seq), KEY)).toMatchObject({ ok: true, lastSeq: 4 });
  });

  it("refuses to fork the chain when the store is ahead of the local file", async () => {
    const store = new MemoryAuditStore();
    const log1 = await openLog(store);
    await log1.append(query(1));
    const snapshot = await readFile(join(dir, AUDIT_FILE_NAME));
    await log1.append(query(2));
    await log1.close();
    await writeFile(join(dir, AUDIT_FILE_NAME), snapshot); // a restored backup, say
    await expect(LocalAuditLog.open({ dir, key: KEY, store, fsync: false })).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
  });

  it("does not block appends while the store is down, and catches up in batches afterwards", async () => {
    const store = new MemoryAuditStore();
    const log = await openLog(store);
    store.down = true;
    const n = SHIP_BATCH * 2 + 37;
    const records = await Promise.all(Array.from({ length: n }, (_, i) => log.append(query(i))));
    expect(records).toHaveLength(n);
    expect(store.records.size).toBe(0);
    let flushed = false;
    const flushing = log.flush().then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(flushed).toBe(false);
    store.down = false;
    await flushing;
    expect(store.records.size).toBe(n);
    expect(Math.max(...store.batchSizes)).toBeLessThanOrEqual(SHIP_BATCH);
    expect(await verifyChain([...store.records.values()].sort((a, b) => a.seq - b.seq), KEY)).toMatchObject({ ok: true, lastSeq: n });
  });

  it("on open, ships local records the store lacks", async () => {
    const store = new MemoryAuditStore();
    const log1 = await openLog(store);
    store.down = true;
    for (let i = 0; i < 5; i++) await log1.append(query(i));
    await log1.close(); // gives up shipping after closeTimeoutMs; records stay in the file
    expect(store.records.size).toBe(0);
    const partial = new MemoryAuditStore();
    // A store that already holds the first two records: only 3..5 must be sent.
    for (const r of (await fileLines()).slice(0, 2).map((l) => JSON.parse(l) as import("./types.js").AuditRecord)) partial.records.set(r.seq, r);
    const log2 = await openLog(partial);
    await log2.flush();
    expect([...partial.records.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(partial.batchSizes).toEqual([3]);
  });

  it("ships what it wrote from memory: the store gets exactly the file's records, each once, in order", async () => {
    const store = new MemoryAuditStore();
    const log = await openLog(store);
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 7 }, (_, i) => log.append(query(round * 10 + i))));
    }
    await log.flush();
    const fromFile = (await fileLines()).map((l) => JSON.parse(l) as import("./types.js").AuditRecord);
    expect([...store.records.values()].sort((a, b) => a.seq - b.seq)).toEqual(fromFile);
    expect(store.batchSizes.reduce((a, b) => a + b, 0)).toBe(35);
  });

  it("after a restart, ships the file's unshipped records and then the new ones, each once", async () => {
    const store = new MemoryAuditStore();
    const log1 = await openLog(store);
    store.down = true;
    for (let i = 0; i < 5; i++) await log1.append(query(i));
    await log1.close();
    store.down = false;
    store.batchSizes.length = 0;
    const log2 = await openLog(store);
    for (let i = 5; i < 8; i++) await log2.append(query(i));
    await log2.flush();
    expect([...store.records.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(store.batchSizes.reduce((a, b) => a + b, 0)).toBe(8);
    expect(await verifyChain([...store.records.values()].sort((a, b) => a.seq - b.seq), KEY)).toMatchObject({ ok: true, lastSeq: 8 });
  });

  it("a store far behind: memory is dropped beyond its bound and the file is read instead; nothing is lost", async () => {
    const store = new MemoryAuditStore();
    const log = await openLog(store);
    store.down = true;
    const n = SHIP_MEMORY_RECORDS + 1_500;
    for (let i = 0; i < n; i += 500) await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => log.append(query(i + j))));
    store.down = false;
    await log.flush();
    expect(store.records.size).toBe(n);
    expect(Math.max(...store.batchSizes)).toBeLessThanOrEqual(SHIP_BATCH);
    expect(await verifyChain([...store.records.values()].sort((a, b) => a.seq - b.seq), KEY)).toMatchObject({ ok: true, lastSeq: n });
  });

  it("refuses to start with an empty local file while the store cannot be read (the head is unknown)", async () => {
    const store = new MemoryAuditStore();
    store.down = true;
    await expect(LocalAuditLog.open({ dir, key: KEY, store, fsync: false })).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
  });

  it("starts from a non-empty local file while the store is down, and ships once it is back", async () => {
    const store = new MemoryAuditStore();
    const log1 = await openLog(store);
    await log1.append(query(1));
    await log1.close();
    store.down = true;
    const log2 = await openLog(store);
    expect((await log2.append(query(2))).seq).toBe(2);
    store.down = false;
    await log2.flush();
    expect([...store.records.keys()].sort()).toEqual([1, 2]);
  });

  it("close is idempotent; append and flush after close reject", async () => {
    const log = await openLog(new MemoryAuditStore());
    await log.append(query(1));
    await Promise.all([log.close(), log.close()]);
    await expect(log.append(query(2))).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
    await expect(log.flush()).resolves.toBeUndefined(); // everything was shipped before closing
  });

  it("measures the amortised cost of an append (printed, not asserted)", async () => {
    const log = await openLog(new MemoryAuditStore());
    const total = 50_000;
    const wave = 1_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < total; i += wave) {
      const ps: Promise<unknown>[] = [];
      for (let j = 0; j < wave; j++) ps.push(log.append(query(i + j)));
      await Promise.all(ps);
    }
    const us = Number(process.hrtime.bigint() - t0) / 1000 / total;
    console.log(`audit append: ${us.toFixed(2)} µs per append amortised (${total} appends in waves of ${wave})`);
    expect((await fileLines()).length).toBe(total);
  });
});
