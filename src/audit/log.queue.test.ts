/**
 * LocalAuditLog.queue / settle (issue 13): a statement is forwarded with its record queued,
 * and the record is written before the statement's result is released.
 */
import { openSync, writeSync, closeSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AUDIT_FILE_NAME, LocalAuditLog, type AuditWriter, type LocalAuditLogOptions } from "./log.js";
import { MemoryAuditStore } from "./testing.js";
import type { AuditEventInput } from "./types.js";
import { verifyAuditFile } from "./verify.js";

const KEY = Buffer.alloc(32, 7);
let dir: string;
const opened: LocalAuditLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-audit-q-"));
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close().catch(() => undefined)));
  await rm(dir, { recursive: true, force: true });
});

/** The real file, written synchronously; counts writes and can be made to fail. */
function syncWriter(): { open: (path: string) => Promise<AuditWriter>; writes: number[]; fail: { value: boolean } } {
  const writes: number[] = [];
  const fail = { value: false };
  return {
    writes,
    fail,
    open(path) {
      const fd = openSync(path, "a", 0o600);
      const put = (data: Buffer): void => {
        if (fail.value) throw Object.assign(new Error("ENOSPC: no space left on device (test)"), { code: "ENOSPC" });
        writes.push(data.length);
        writeSync(fd, data);
      };
      return Promise.resolve({
        write: (data: Buffer) => Promise.resolve(put(data)),
        writeSync: put,
        datasync: () => Promise.resolve(),
        close: () => Promise.resolve(closeSync(fd)),
      });
    },
  };
}

async function openLog(extra: Partial<LocalAuditLogOptions>): Promise<LocalAuditLog> {
  const log = await LocalAuditLog.open({ dir, key: KEY, store: new MemoryAuditStore(), fsync: false, retryMinMs: 5, retryMaxMs: 20, closeTimeoutMs: 200, ...extra });
  opened.push(log);
  return log;
}

const query = (i: number): AuditEventInput => ({ type: "db.query", sessionId: "s1", statement: `SELECT ${i}`, decision: "allow" });

async function fileLines(): Promise<string[]> {
  return (await readFile(join(dir, AUDIT_FILE_NAME), "utf8")).split("\n").filter((l) => l !== "");
}

describe("LocalAuditLog.queue and settle", () => {
  it("queued records are chained in call order with appended ones, and settle writes them all in one write", async () => {
    const w = syncWriter();
    const log = await openLog({ openWriter: w.open });
    const a = log.queue(query(1));
    const appended = log.append(query(2));
    const b = log.queue(query(3));
    expect([a?.seq, b?.seq]).toEqual([1, 3]);
    expect(w.writes).toHaveLength(0); // nothing written yet: queued only
    expect(log.settle()).toBe(true);
    expect(w.writes).toHaveLength(1);
    expect((await fileLines()).map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3]);
    expect((await appended).seq).toBe(2); // the appender is told too
    // Nothing queued since: settle is a no-op, and the event-loop turn's commit finds nothing.
    expect(log.settle()).toBe(true);
    await new Promise<void>((r) => setImmediate(r));
    expect(w.writes).toHaveLength(1);
    expect(await verifyAuditFile(join(dir, AUDIT_FILE_NAME), KEY)).toMatchObject({ ok: true, lastSeq: 3 });
  });

  it("settle(seq) writes only when a record up to seq is not yet durable", async () => {
    const w = syncWriter();
    const log = await openLog({ openWriter: w.open });
    const a = log.queue(query(1));
    await new Promise<void>((r) => setImmediate(r)); // the group commit writes record 1
    expect(w.writes).toHaveLength(1);
    log.queue(query(2));
    expect(log.settle(a?.seq)).toBe(true); // record 1 is durable already: no write
    expect(w.writes).toHaveLength(1);
    expect(log.settle(2)).toBe(true);
    expect(w.writes).toHaveLength(2);
    expect(await fileLines()).toHaveLength(2);
  });

  it("without settle, queued records are still committed on the next turn of the event loop", async () => {
    const w = syncWriter();
    const log = await openLog({ openWriter: w.open });
    for (let i = 0; i < 5; i++) log.queue(query(i));
    await new Promise<void>((r) => setImmediate(r));
    expect(w.writes).toHaveLength(1);
    expect(await fileLines()).toHaveLength(5);
    expect(log.settle()).toBe(true);
  });

  it("a failed write: settle returns false, and queue then throws GW_AUDIT_UNAVAILABLE", async () => {
    const w = syncWriter();
    const log = await openLog({ openWriter: w.open });
    log.queue(query(1));
    expect(log.settle()).toBe(true);
    log.queue(query(2));
    w.fail.value = true;
    expect(log.settle()).toBe(false);
    w.fail.value = false; // the log stays failed until restart
    expect(log.settle()).toBe(false);
    expect(() => log.queue(query(3))).toThrow(expect.objectContaining({ code: "GW_AUDIT_UNAVAILABLE" }) as Error);
    await expect(log.append(query(4))).rejects.toMatchObject({ code: "GW_AUDIT_UNAVAILABLE" });
    expect(await fileLines()).toHaveLength(1);
  });

  it("with fsync (writes through the thread pool) nothing is queued: the caller awaits append", async () => {
    const log = await openLog({ fsync: true });
    expect(log.queue(query(1))).toBeUndefined();
    const pending = log.append(query(2));
    expect(log.settle()).toBe(true); // nothing queued; the awaited append is not its business
    expect((await pending).seq).toBe(1);
  });

  it("a record that cannot be encoded is refused at queue time and not chained", async () => {
    const w = syncWriter();
    const log = await openLog({ openWriter: w.open });
    expect(() => log.queue({ type: "db.query", details: { n: Number.NaN } })).toThrow(expect.objectContaining({ code: "GW_AUDIT_UNAVAILABLE" }) as Error);
    expect(log.queue(query(1))?.seq).toBe(1);
    expect(log.settle()).toBe(true);
    expect(await verifyAuditFile(join(dir, AUDIT_FILE_NAME), KEY)).toMatchObject({ ok: true, lastSeq: 1 });
  });
});
