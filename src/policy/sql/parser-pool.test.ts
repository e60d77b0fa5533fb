import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { classify, classifyDetailedWith, initSqlParser } from "./classify.js";
import type { Classification } from "./facts.js";
import { MAX_SQL_DEPTH } from "./limits.js";
import { ClassificationCache } from "./normalize.js";
import { ParserPool } from "./parser-pool.js";

const plusChain = (n: number): string => "select 1" + "+1".repeat(n);
const tooDeep = `statement too deeply nested (limit ${MAX_SQL_DEPTH} levels of nesting or chained operators)`;

const pools: ParserPool[] = [];
function pool(options: ConstructorParameters<typeof ParserPool>[0] = {}): ParserPool {
  const p = new ParserPool(options);
  pools.push(p);
  return p;
}

let fakeDir: string;
/**
 * A stand-in worker speaking the pool's protocol: answers an empty tree, except for the
 * statements that make it misbehave the way a damaged parser thread would.
 */
function fakeWorker(): URL {
  const path = join(fakeDir, "fake-parser-worker.mjs");
  writeFileSync(
    path,
    `import { parentPort } from "node:worker_threads";
parentPort.on("message", ({ id, sql }) => {
  if (sql === "select 'exit'") process.exit(3);
  if (sql === "select 'throw'") throw new Error("boom");
  if (sql === "select 'hang'") for (;;) {}
  if (sql === "select 'garbage'") { parentPort.postMessage({ nonsense: true }); return; }
  parentPort.postMessage({ id, ok: true, json: '{"stmts":[]}' });
});
parentPort.postMessage({ ready: true });
`,
  );
  return pathToFileURL(path);
}

beforeAll(async () => {
  await initSqlParser();
  fakeDir = mkdtempSync(join(tmpdir(), "airlock-parser-pool-"));
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

afterAll(() => {
  rmSync(fakeDir, { recursive: true, force: true });
});

async function classifyWith(p: ParserPool, sql: string): Promise<Classification> {
  return (await classifyDetailedWith(p, sql)).classification;
}

describe("ParserPool", () => {
  it("classifies like the in-thread parser, syntax errors and positions included", async () => {
    const p = pool();
    await p.ready();
    for (const sql of ["SELECT a FROM t JOIN u ON t.id = u.id WHERE b = $1", "DELETE FROM x; DROP TABLE y", "SELEC 1", "SELECT 'é' FROM", "", "/* */"]) {
      expect(await classifyWith(p, sql)).toEqual(classify(sql));
    }
    expect(await classifyWith(p, "SELECT 1\u0000")).toEqual({ ok: false, error: "statement contains a NUL character" });
  });

  it("refuses beyond the limits without asking a worker", async () => {
    const p = pool({ workerUrl: fakeWorker() });
    expect(await p.parse(plusChain(MAX_SQL_DEPTH + 1))).toEqual({ ok: false, syntax: false, message: tooDeep });
    const small = pool({ workerUrl: fakeWorker(), limits: { maxBytes: 100, maxDepth: 10 } });
    expect(await small.parse("select '" + "x".repeat(100) + "'")).toEqual({ ok: false, syntax: false, message: "statement too long (limit 100 bytes)" });
    expect(p.stats().refusedLimits).toBe(1);
  });

  it("replaces a worker whose WASM stack overflowed, refusing that parse (fail closed), and parses on", async () => {
    // Limits off, so the 300 KB chain reaches the parser and overflows its stack in the worker.
    const p = pool({ size: 1, limits: { maxBytes: 1 << 20, maxDepth: Number.MAX_SAFE_INTEGER } });
    await p.ready();
    for (let k = 0; k < 5; k++) {
      expect(await p.parse(plusChain(150_000))).toEqual({ ok: false, syntax: false, message: "the SQL parser failed on this statement" });
      const after = await classifyWith(p, "SELECT name FROM users WHERE id = 1");
      expect(after.ok && after.statements[0]?.relationsRead).toEqual([{ name: "users" }]);
    }
    expect(p.stats()).toMatchObject({ faults: 5, replaced: 5, workers: 1 });
  });

  it("refuses the pending parse of a worker that exits, crashes or answers nonsense, and replaces it", async () => {
    const p = pool({ size: 1, workerUrl: fakeWorker() });
    await p.ready();
    for (const [sql, message] of [
      ["select 'exit'", "the SQL parser stopped while parsing this statement"],
      ["select 'throw'", "the SQL parser failed on this statement"],
      ["select 'garbage'", "the SQL parser's answer could not be read"],
    ] as const) {
      // a second statement queued behind it is parsed by the replacement
      const [bad, next] = await Promise.all([p.parse(sql), p.parse("select 2")]);
      expect(bad).toEqual({ ok: false, syntax: false, message });
      expect(next).toEqual({ ok: true, tree: { stmts: [] } }); // JSON text from the worker, parsed here
    }
    expect(p.stats().replaced).toBe(3);
  });

  it("terminates a worker that exceeds the time budget; the others keep answering", async () => {
    const p = pool({ size: 2, timeoutMs: 2_000, workerUrl: fakeWorker() });
    await p.ready();
    let hungSettled = false;
    const hung = p.parse("select 'hang'").then((o) => {
      hungSettled = true;
      return o;
    });
    // the other worker serves meanwhile
    for (let k = 0; k < 20; k++) expect((await p.parse("select 1")).ok).toBe(true);
    expect(hungSettled).toBe(false);
    expect(await hung).toEqual({ ok: false, syntax: false, message: "statement took too long to parse (limit 2000 ms)" });
    expect(p.stats()).toMatchObject({ timeouts: 1, replaced: 1 });
    expect((await p.parse("select 1")).ok).toBe(true);
  });

  it("bounds the queue: beyond it, and after waiting the whole budget, a statement is refused at once", async () => {
    const p = pool({ size: 1, maxQueue: 2, timeoutMs: 400, workerUrl: fakeWorker() });
    await p.ready();
    const hung = p.parse("select 'hang'");
    const waiting = [p.parse("select 1"), p.parse("select 2")];
    expect(await p.parse("select 3")).toEqual({ ok: false, syntax: false, message: "the SQL parser is busy (too many statements waiting)" });
    // the queued ones either waited out the budget, or ran once the hung worker was replaced
    expect((await hung).ok).toBe(false);
    for (const o of await Promise.all(waiting)) {
      if (!o.ok) expect(o.message).toBe("the SQL parser is busy (no parser free within 400 ms)");
    }
    expect(p.stats().refusedBusy).toBeGreaterThanOrEqual(1);
  });

  it("refuses what is pending on close, and everything after", async () => {
    const p = pool({ size: 1, workerUrl: fakeWorker() });
    await p.ready();
    const hung = p.parse("select 'hang'");
    const queued = p.parse("select 1");
    await p.close();
    expect(await hung).toEqual({ ok: false, syntax: false, message: "the SQL parser is shut down" });
    expect(await queued).toEqual({ ok: false, syntax: false, message: "the SQL parser is shut down" });
    expect(await p.parse("select 1")).toEqual({ ok: false, syntax: false, message: "the SQL parser is shut down" });
  });

  it("lazy: starts no thread until the first parse, which waits for them to load and then classifies", async () => {
    const p = pool({ lazy: true });
    expect(p.stats().workers).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.stats().workers).toBe(0);
    expect(await classifyWith(p, "DELETE FROM x")).toEqual(classify("DELETE FROM x"));
    expect(p.stats().workers).toBe(2);
    expect(await classifyWith(p, "SELEC 1")).toEqual(classify("SELEC 1"));
  });

  it("lazy: ready() starts the threads; close() before any parse is fine and refuses later parses", async () => {
    const p = pool({ lazy: true, size: 1 });
    await p.ready();
    expect(p.stats().workers).toBe(1);
    const q = pool({ lazy: true });
    await q.close();
    expect(await q.parse("select 1")).toEqual({ ok: false, syntax: false, message: "the SQL parser is shut down" });
    expect(q.stats().workers).toBe(0);
  });

  it("refuses (does not hang) when the worker script cannot load", async () => {
    const p = pool({ size: 1, timeoutMs: 2_000, workerUrl: pathToFileURL(join(fakeDir, "missing.mjs")) });
    const o = await p.parse("select 1");
    expect(o.ok).toBe(false);
  });
});

describe("ClassificationCache with a pool", () => {
  it("answers cached statements synchronously and parses misses in the pool", async () => {
    const p = pool();
    await p.ready();
    const cache = new ClassificationCache(100, 1 << 20, p);
    const miss = cache.classifyBounded("SELECT a FROM t WHERE id = 1");
    expect(miss).toBeInstanceOf(Promise);
    const first = await miss;
    const hit = cache.classifyBounded("select A from T where id = 42");
    expect(hit).not.toBeInstanceOf(Promise);
    expect(hit).toBe(first);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, entries: 1 });
    // refusals are not cached, and come back as classifications
    expect(await cache.classifyBounded(plusChain(150_000))).toEqual({ ok: false, error: tooDeep });
    expect(await cache.classifyBounded("SELEC 1")).toEqual({ ok: false, error: 'syntax error at or near "SELEC"', position: 1 });
  });

  it("survives the flood of issue 12: 50 × 300 KB `select 1+1+…` refused, then normal statements classify quickly", async () => {
    const p = pool();
    await p.ready();
    const cache = new ClassificationCache(1000, 1 << 20, p);
    const attack = plusChain(150_000);
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const refusals = await Promise.all(Array.from({ length: 50 }, () => Promise.resolve(cache.classifyBounded(attack))));
    for (const r of refusals) expect(r).toEqual({ ok: false, error: tooDeep });
    const floodMs = performance.now() - t0;
    const t1 = performance.now();
    for (let k = 0; k < 100; k++) {
      const c = await cache.classifyBounded(`SELECT name FROM users u${k} WHERE id = ${k}`); // distinct shapes: all misses
      expect(c.ok && c.statements[0]?.relationsRead).toEqual([{ name: "users" }]);
    }
    const perMiss = (performance.now() - t1) / 100;
    expect(perMiss).toBeLessThan(50);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(512 * 1024 * 1024);
    expect(p.stats()).toMatchObject({ refusedLimits: 50, faults: 0, replaced: 0 });
    console.log(`flood: 50 refusals in ${floodMs.toFixed(0)} ms; then ${perMiss.toFixed(2)} ms per uncached statement`);
  });
});
