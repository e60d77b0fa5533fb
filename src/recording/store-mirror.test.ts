import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../store/index.js";
import type { RecordingChunkStore } from "../store/recording-chunks.js";
import type { Store } from "../store/types.js";
import { AsciicastWriter } from "./asciicast.js";
import { FileRecordingStore } from "./file-store.js";
import { SharedRecordingStore } from "./shared-store.js";
import { RecordingStoreMirror } from "./store-mirror.js";

// Two "gateways": A writes recordings under its dataDir and copies them to the store; B has
// another dataDir and reads them from the store. The store is a real (SQLite) store.
let dir: string;
let store: Store;
let chunks: RecordingChunkStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-recmirror-"));
  store = await openStore({ dataDir: join(dir, "store"), embedded: "sqlite" });
  const c = store.recordingChunks;
  if (c === undefined) throw new Error("no chunk store");
  chunks = c;
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const ID = "0b6c3f1e-2f55-4f0e-9d7a-3c7e8a9b1c2d";

describe("RecordingStoreMirror + SharedRecordingStore", () => {
  it("a recording written on A reads the same on B, in chunks of bounded size, flushed on the timer and at close", async () => {
    const filesA = new FileRecordingStore({ dataDir: join(dir, "a") });
    const mirror = new RecordingStoreMirror({ chunks, root: filesA.root, flushIntervalMs: 50, chunkChars: 300 });
    const a = new SharedRecordingStore(filesA, chunks);
    const b = new SharedRecordingStore(new FileRecordingStore({ dataDir: join(dir, "b") }), chunks);
    const r = a.open(ID);
    r.append({ kind: "header", sessionId: ID, protocol: "postgres", connection: "db", principal: "agent", startedAt: new Date().toISOString(), version: 1 });
    for (let i = 0; i < 10; i++) r.append({ kind: "query", seq: i, stage: "simple", sql: `SELECT ${i}, 'some padding to make the line longer'`, decision: "allow" });
    // Before the end: the timer flush makes the lines so far readable on B.
    await expect.poll(async () => (await b.read(ID))?.length, { timeout: 5000 }).toBe(11);
    r.append({ kind: "end", reason: "client" });
    await r.close();
    await mirror.flush();
    const onB = await b.read(ID);
    expect(onB).toEqual(await filesA.read(ID));
    expect(onB?.at(-1)?.kind).toBe("end");
    const stored = await chunks.read(ID, "jsonl");
    expect(stored.length).toBeGreaterThan(2);
    expect(stored.map((c) => c.seq)).toEqual(stored.map((_, i) => i));
    for (const c of stored) {
      expect(c.data.endsWith("\n")).toBe(true);
      // Whole lines, each chunk at most the bound unless it is a single longer line.
      if (c.data.length > 300) expect(c.data.indexOf("\n")).toBe(c.data.length - 1);
    }
    // The live view's incremental read: from a chunk on.
    const tail = await b.storedLines(ID, "jsonl", stored.length - 1);
    expect(tail.next).toBe(stored.length);
    expect(tail.lines.at(-1)).toContain('"kind":"end"');
    await mirror.close();
    await a.close();
    await b.close();
  });

  it("copies asciicast recordings too; B replays them; nothing else is copied", async () => {
    const filesA = new FileRecordingStore({ dataDir: join(dir, "a") });
    const mirror = new RecordingStoreMirror({ chunks, root: filesA.root, flushIntervalMs: 60_000 });
    const a = new SharedRecordingStore(filesA, chunks);
    const b = new SharedRecordingStore(new FileRecordingStore({ dataDir: join(dir, "b") }), chunks);
    const w = new AsciicastWriter(a.pathOf(ID).cast);
    w.start({ width: 80, height: 24 });
    w.output(Buffer.from("hello\r\n"));
    await w.close();
    // A writer outside A's recordings directory (another gateway in the same process) is not A's to copy.
    const other = new AsciicastWriter(join(dir, "elsewhere", `${ID.replace(/^0/, "1")}.cast`));
    other.start({ width: 80, height: 24 });
    await other.close();
    await mirror.close();
    const cast = await b.readCast(ID);
    expect(cast).toBeDefined();
    expect(cast).toBe(await a.readCast(ID));
    expect(cast).toContain("hello");
    expect(await b.readCast(ID.replace(/^0/, "1"))).toBeUndefined();
    expect(await b.read(ID)).toBeUndefined();
    await a.close();
    await b.close();
  });

  it("a failed store write is retried with the next flush, chunk numbers kept", async () => {
    let fail = true;
    const flaky: RecordingChunkStore = {
      append: (c) => (fail ? Promise.reject(new Error("store down")) : chunks.append(c)),
      read: (...args) => chunks.read(...args),
    };
    const filesA = new FileRecordingStore({ dataDir: join(dir, "a") });
    const mirror = new RecordingStoreMirror({ chunks: flaky, root: filesA.root, flushIntervalMs: 60_000 });
    const r = filesA.open(ID);
    r.append({ kind: "end", reason: "client" });
    await r.close();
    await mirror.flush();
    expect(mirror.writeErrors).toBeGreaterThan(0); // the flush at close, and this one
    expect(await chunks.read(ID, "jsonl")).toEqual([]);
    fail = false;
    await mirror.close();
    const stored = await chunks.read(ID, "jsonl");
    expect(stored.map((c) => c.seq)).toEqual([0]);
    expect(stored[0]?.data).toContain('"kind":"end"');
    await filesA.close();
  });

  it("a recording larger than the read bound is refused (GW_LIMIT), or read in part when asked", async () => {
    await chunks.append([0, 1, 2].map((seq) => ({ sessionId: ID, kind: "jsonl" as const, seq, data: `${"x".repeat(99)}\n` })));
    await expect(chunks.read(ID, "jsonl", { maxChars: 250 })).rejects.toMatchObject({ code: "GW_LIMIT" });
    expect((await chunks.read(ID, "jsonl", { maxChars: 250, partial: true })).map((c) => c.seq)).toEqual([0, 1]);
    expect((await chunks.read(ID, "jsonl", { fromSeq: 2 })).map((c) => c.seq)).toEqual([2]);
  });
});
