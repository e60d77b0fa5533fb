import { randomUUID } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileRecordingStore, serialiseEntry, TRUNCATION_MARKER } from "./file-store.js";
import type { RecordingEntry, RecordingInput } from "./types.js";

let dataDir: string;
let store: FileRecordingStore;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "airlock-rec-"));
  store = new FileRecordingStore({ dataDir });
});
afterEach(async () => {
  await store.close();
  await rm(dataDir, { recursive: true, force: true });
});

const header = (sessionId: string): RecordingInput => ({
  kind: "header",
  sessionId,
  protocol: "postgres",
  connection: "orders",
  principal: "sa:ci-bot",
  startedAt: new Date(0).toISOString(),
  version: 1,
});
const q = (seq: number, sql = `SELECT ${seq}`): RecordingInput => ({ kind: "query", seq, stage: "simple", sql, decision: "allow" });
const result = (seq: number, rows: (string | null)[][] = [["1", null]]): RecordingInput => ({
  kind: "result",
  seq,
  resultKind: "simple",
  commandTag: "SELECT 1",
  rowCount: rows.length,
  columns: ["a", "b"],
  rows,
  durationMs: 0.5,
});

/** Poll until `check` holds; the slack past the nominal deadline absorbs a loaded test machine. */
async function eventually(check: () => Promise<boolean>, ms = 2_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

function strip(entries: readonly RecordingEntry[] | undefined): unknown[] {
  return (entries ?? []).map(({ t: _t, ...rest }) => rest);
}

describe("FileRecordingStore", () => {
  it("writes short sessions in one append, 0600, and recreates a directory removed by hand", async () => {
    // Two ids in the same two-character directory.
    const a = `ab${randomUUID().slice(2)}`;
    const b = `ab${randomUUID().slice(2)}`;
    const r1 = store.open(a);
    r1.append(header(a));
    await r1.close();
    expect(strip(await store.read(a))).toEqual([header(a)]);
    const { dir, file } = store.pathOf(a);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await rm(dir, { recursive: true });
    const r2 = store.open(b);
    r2.append(header(b));
    r2.append(q(1));
    await r2.close();
    expect(strip(await store.read(b))).toEqual([header(b), q(1)]);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it("round-trips every entry kind in order, with monotonic t", async () => {
    const id = randomUUID();
    const rec = store.open(id);
    const inputs: RecordingInput[] = [
      header(id),
      q(1),
      { kind: "query", seq: 2, stage: "parse", sql: "SELECT $1", statementName: "s1", decision: "deny", rule: "r", message: "no" },
      result(1),
      { kind: "result", seq: 2, resultKind: "execute", params: ["x", null], rowCount: 0, error: { sqlstate: "42501", message: "denied" }, durationMs: 1 },
      { kind: "end", reason: "client_closed", detail: "bye" },
    ];
    for (const e of inputs) rec.append(e);
    await rec.close();
    await rec.close(); // idempotent
    const back = await store.read(id);
    expect(strip(back)).toEqual(inputs);
    const ts = (back ?? []).map((e) => e.t);
    expect(ts.every((t, i) => i === 0 || t >= ts[i - 1]!)).toBe(true);
    expect(ts[0]).toBeGreaterThanOrEqual(0);
  });

  it("stores under <dataDir>/recordings/<xx>/<id>.jsonl with private modes", async () => {
    const id = randomUUID();
    const rec = store.open(id);
    rec.append(header(id));
    await rec.close();
    const file = join(dataDir, "recordings", id.slice(0, 2), `${id}.jsonl`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o700);
    // Upper-case spelling of the same UUID finds the same recording.
    expect(strip(await store.read(id.toUpperCase()))).toEqual([header(id)]);
  });

  it("flushes within 200 ms without close (readable while open)", async () => {
    const id = randomUUID();
    const rec = store.open(id);
    rec.append(header(id));
    rec.append(q(1));
    expect(await store.read(id)).toBeUndefined(); // nothing written synchronously
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 200));
    expect(await eventually(async () => (await store.read(id))?.length === 2)).toBe(true);
    console.log(`recording visible ${Date.now() - t0} ms after append (flush timer 100 ms)`);
    expect(strip(await store.read(id))).toEqual([header(id), q(1)]);
    await rec.close();
  });

  it("flushes at once past the buffer threshold", async () => {
    const s = new FileRecordingStore({ dataDir, flushIntervalMs: 60_000, flushBytes: 1024 });
    const id = randomUUID();
    const rec = s.open(id);
    for (let i = 0; i < 40; i++) rec.append(q(i, `SELECT '${"x".repeat(50)}'`));
    await new Promise((r) => setTimeout(r, 50));
    expect((await s.read(id))?.length).toBeGreaterThanOrEqual(16);
    await s.close();
  });

  it("ignores a torn last line but refuses damage in the middle", async () => {
    const id = randomUUID();
    const rec = store.open(id);
    rec.append(header(id));
    rec.append(q(1));
    await rec.close();
    const file = store.pathOf(id).file;
    await appendFile(file, '{"t":12,"kind":"que');
    expect(strip(await store.read(id))).toEqual([header(id), q(1)]);

    const lines = (await readFile(file, "utf8")).split("\n");
    lines[0] = '{"t":0,"kind":"header"';
    await writeFile(file, lines.join("\n"));
    await expect(store.read(id)).rejects.toMatchObject({ code: "GW_STORE" });
  });

  it("refuses anything but a UUID before touching the filesystem", async () => {
    const outside = join(dataDir, "x.jsonl");
    await writeFile(outside, `${JSON.stringify({ t: 0, kind: "end", reason: "pwned" })}\n`);
    for (const bad of ["../x", "../../etc/passwd", "x/../../x", "/etc/passwd", "", "00000000-0000-0000-0000-00000000000g", `${randomUUID()}/..`, `${randomUUID()}\u0000`]) {
      expect(() => store.open(bad)).toThrow(expect.objectContaining({ code: "GW_BAD_REQUEST" }) as Error);
      await expect(store.read(bad)).rejects.toMatchObject({ code: "GW_BAD_REQUEST" });
    }
    expect(await readdir(dataDir)).toEqual(["x.jsonl"]);
    expect(await store.read(randomUUID())).toBeUndefined();
  });

  it("records many sessions concurrently, each complete and in order", async () => {
    const ids = Array.from({ length: 100 }, () => randomUUID());
    const recs = ids.map((id) => store.open(id));
    for (let i = 0; i < 30; i++) {
      recs.forEach((r, k) => r.append(q(i, `SELECT ${k}, ${i}`)));
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await store.close(); // closes every open recorder
    for (let k = 0; k < ids.length; k++) {
      const back = await store.read(ids[k]!);
      expect(back?.map((e) => (e.kind === "query" ? e.sql : "?"))).toEqual(Array.from({ length: 30 }, (_, i) => `SELECT ${k}, ${i}`));
    }
    expect(() => store.open(randomUUID())).toThrow(expect.objectContaining({ code: "GW_SHUTTING_DOWN" }) as Error);
  });

  it("counts a write error, keeps recording best effort afterwards, and never throws from append", async () => {
    const id = randomUUID();
    // A directory where the shard directory should be makes mkdir/open fail.
    const shard = join(dataDir, "recordings", id.slice(0, 2));
    await mkdir(dirname(shard), { recursive: true });
    await writeFile(shard, "not a directory");
    const rec = store.open(id);
    rec.append(header(id));
    expect(await eventually(() => Promise.resolve(store.writeErrors === 1))).toBe(true);
    // The disk "recovers": later entries are written, the failed ones are gone.
    await rm(shard);
    rec.append(q(1));
    await rec.close();
    expect(store.writeErrors).toBe(1);
    expect(strip(await store.read(id))).toEqual([q(1)]);
    rec.append(q(2)); // after close: dropped, not thrown
    expect(store.droppedEntries).toBe(1);
  });

  it("caps a line at the limit, truncating values with a marker and dropping rows if needed", async () => {
    const s = new FileRecordingStore({ dataDir, maxLineBytes: 4096 });
    const id = randomUUID();
    const rec = s.open(id);
    rec.append(q(1, `SELECT '${"é".repeat(10_000)}'`));
    rec.append(result(1, Array.from({ length: 5_000 }, (_, i) => [`row ${i}`, "v".repeat(100)])));
    rec.append(result(2, [["small", null]]));
    await s.close();
    const text = await readFile(s.pathOf(id).file, "utf8");
    for (const line of text.split("\n").filter((l) => l !== "")) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096);
    const back = (await s.read(id)) ?? [];
    expect(back).toHaveLength(3);
    const [query, big, small] = back;
    expect(query?.kind === "query" && query.sql.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(query?.kind === "query" && query.sql.startsWith("SELECT 'éé")).toBe(true);
    expect(big?.kind === "result" && big.rowsTruncated === true && big.rowCount === 5_000).toBe(true);
    expect(big?.kind === "result" && (big.rows?.length ?? 0) < 5_000 && big.rows?.[0]?.[0] === "row 0").toBe(true);
    expect(small?.kind === "result" && small.rows).toEqual([["small", null]]);
  });
});

describe("serialiseEntry", () => {
  it("leaves small entries untouched and never splits a surrogate pair", () => {
    const e: RecordingEntry = { t: 1, kind: "end", reason: "x" };
    expect(serialiseEntry(e, 1024)).toBe(JSON.stringify(e));
    const emoji: RecordingEntry = { t: 1, kind: "end", reason: "🚀".repeat(40_000) };
    const line = serialiseEntry(emoji, 1024);
    const parsed = JSON.parse(line) as { reason: string };
    expect(parsed.reason.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(parsed.reason.replace(TRUNCATION_MARKER, "")).toMatch(/^(🚀)+$/u);
  });
});
