import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AsciicastWriter } from "./asciicast.js";
import { FileRecordingStore } from "./file-store.js";
import { followLines, liveFiles } from "./live.js";

function seqOf(line: string): number {
  return (JSON.parse(line) as { seq: number }).seq;
}

describe("followLines", () => {
  it("gives a watcher every line of a session recording exactly once, in order: written, buffered and later ones", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-live-"));
    const store = new FileRecordingStore({ dataDir: dir, flushIntervalMs: 20 });
    const id = randomUUID();
    const rec = store.open(id);
    const path = store.pathOf(id).file;
    for (let i = 0; i < 5; i++) rec.append({ kind: "query", seq: i, stage: "simple", sql: `select ${i}`, decision: "allow" });
    await new Promise((r) => setTimeout(r, 60)); // flushed to the file
    for (let i = 5; i < 8; i++) rec.append({ kind: "query", seq: i, stage: "simple", sql: `select ${i}`, decision: "allow" }); // still buffered
    const got: number[] = [];
    let ended = false;
    const following = followLines(path, (l) => got.push(seqOf(l)), () => (ended = true));
    // Appended while the backlog is being read.
    for (let i = 8; i < 10; i++) rec.append({ kind: "query", seq: i, stage: "simple", sql: `select ${i}`, decision: "allow" });
    const f = await following;
    expect(f.live).toBe(true);
    for (let i = 10; i < 12; i++) rec.append({ kind: "query", seq: i, stage: "simple", sql: `select ${i}`, decision: "allow" });
    expect(ended).toBe(false);
    await rec.close();
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(ended).toBe(true);
    expect(liveFiles.get(path)).toBeUndefined();
    // After the writer closed: the file, then the end at once.
    const again: number[] = [];
    let ended2 = false;
    const f2 = await followLines(path, (l) => again.push(seqOf(l)), () => (ended2 = true));
    expect(f2.live).toBe(false);
    expect(again).toEqual(got);
    expect(ended2).toBe(true);
    await store.close();
  });

  it("stops giving lines after stop()", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-live-"));
    const store = new FileRecordingStore({ dataDir: dir });
    const id = randomUUID();
    const rec = store.open(id);
    rec.append({ kind: "query", seq: 1, stage: "simple", sql: "select 1", decision: "allow" });
    const got: number[] = [];
    const f = await followLines(store.pathOf(id).file, (l) => got.push(seqOf(l)), () => undefined);
    f.stop();
    rec.append({ kind: "query", seq: 2, stage: "simple", sql: "select 2", decision: "allow" });
    await rec.close();
    expect(got).toEqual([1]);
    await store.close();
  });

  it("follows a terminal recording (asciicast) from its header on", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-live-"));
    const path = join(dir, "x", "s.cast");
    const w = new AsciicastWriter(path);
    w.start({ width: 80, height: 24 });
    w.output(Buffer.from("one "));
    const got: string[] = [];
    let ended = false;
    const f = await followLines(path, (l) => got.push(l), () => (ended = true));
    expect(f.live).toBe(true);
    w.output(Buffer.from("two"));
    w.input(Buffer.from("typed"));
    await w.close();
    expect(ended).toBe(true);
    expect(got).toHaveLength(4);
    expect(JSON.parse(got[0] ?? "{}")).toMatchObject({ version: 2, width: 80, height: 24 });
    expect(got.slice(1).map((l) => (JSON.parse(l) as unknown[]).slice(1))).toEqual([
      ["o", "one "],
      ["o", "two"],
      ["i", "typed"],
    ]);
  });
});
