/**
 * The worker-backed PGlite client against the in-thread one: same decoded types, same errors
 * and causes, same transaction semantics; plus what only the worker has (a thread that can die,
 * structured-clone limits). The Store behaviour itself is covered by store.suite.ts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { AuditRecord } from "../audit/types.js";
import { openPgliteClient, openPgliteClientInThread, openPgliteWorkerClient, type SqlClient } from "./sql.js";
import { SqlStore } from "./sql-store.js";
import { makeChain } from "./store.suite.js";

const anyRow = z.record(z.string(), z.unknown());
const countRow = z.object({ n: z.number() });

async function failure(p: Promise<unknown>): Promise<GatewayError> {
  const e: unknown = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(e)}`);
  return e;
}

function causeOf(e: GatewayError): Record<string, unknown> & Error {
  if (!(e.cause instanceof Error)) throw new Error("expected an Error cause");
  return e.cause as Record<string, unknown> & Error;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("PGlite in a worker thread vs in the main thread", () => {
  let root: string;
  let worker: SqlClient;
  let inThread: SqlClient;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "airlock-sql-"));
    [worker, inThread] = await Promise.all([openPgliteClient(join(root, "worker")), openPgliteClientInThread(join(root, "in-thread"))]);
    for (const c of [worker, inThread]) await c.script("CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE q (id int)");
  });
  afterAll(async () => {
    await Promise.all([worker.close(), inThread.close()]);
    await rm(root, { recursive: true, force: true });
  });

  it("decodes every column type to the same JS values (structured clone keeps Date, bigint, bytes)", async () => {
    const sql = `SELECT 1::int8 AS i8, 9007199254740993::int8 AS big, 1.5::numeric AS num, 2.5::float8 AS f,
      '2026-01-02T03:04:05.678Z'::timestamptz AS ts, '{"a":[1,{"b":null}],"c":"\\u00e9"}'::jsonb AS j,
      '\\x00ff'::bytea AS bytes, ARRAY[1,2]::int8[] AS arr, NULL::text AS nothing, true AS yes, '1 day'::interval AS iv`;
    const [w] = await worker.query(sql, [], anyRow);
    const [t] = await inThread.query(sql, [], anyRow);
    expect(w).toEqual(t);
    expect(w?.ts).toBeInstanceOf(Date);
    expect((w?.ts as Date).toISOString()).toBe("2026-01-02T03:04:05.678Z");
    expect(w?.big).toBe(9007199254740993n);
    expect(w?.num).toBe("1.5");
    expect(w?.j).toEqual({ a: [1, { b: null }], c: "é" });
    expect(w?.bytes).toBeInstanceOf(Uint8Array);
    expect([...(w?.bytes as Uint8Array)]).toEqual([0, 255]);
  });

  it("passes parameters by structured clone (Date, bigint, bytes, arrays)", async () => {
    const sql = "SELECT $1::timestamptz AS t, $2::int8 AS b, $3::bytea AS y, $4::text[] AS a, $5::jsonb AS j";
    const params = [new Date(Date.UTC(2026, 5, 1)), 12345678901234n, new Uint8Array([1, 2, 3]), ["x", "y'z"], JSON.stringify({ k: 1 })];
    const [w] = await worker.query(sql, params, anyRow);
    expect(w).toEqual((await inThread.query(sql, params, anyRow))[0]);
    expect((w?.t as Date).getTime()).toBe(Date.UTC(2026, 5, 1));
    expect(w?.a).toEqual(["x", "y'z"]);
  });

  it("validates rows with the schema in the calling thread", async () => {
    const err = await failure(worker.query("SELECT 'not a number' AS n", [], countRow));
    expect(err.code).toBe("GW_STORE");
    expect(err.message).toBe("store returned a row of an unexpected shape");
    expect(err.cause).toBeInstanceOf(z.ZodError);
  });

  it("reports driver errors as the in-thread client does: same message, same cause fields", async () => {
    for (const c of [worker, inThread]) await c.execute("INSERT INTO t (id, v) VALUES (1, 'one')");
    const sql = "INSERT INTO t (id, v) VALUES ($1, $2)";
    const [w, t] = await Promise.all([failure(worker.execute(sql, [1, "hunter2"])), failure(inThread.execute(sql, [1, "hunter2"]))]);
    expect(w.code).toBe("GW_STORE");
    expect(w.message).toBe(t.message);
    expect(w.message).toBe("store statement failed");
    expect(w.message).not.toContain("hunter2");
    const [wc, tc] = [causeOf(w), causeOf(t)];
    for (const key of ["name", "message", "code", "severity", "detail", "constraint", "table", "query"]) {
      expect([key, wc[key]]).toEqual([key, tc[key]]);
    }
    expect(wc.code).toBe("23505");
    expect(wc.params).toEqual([1, "hunter2"]);

    const [wq, tq] = await Promise.all([failure(worker.query("SELECT 1/0", [], anyRow)), failure(inThread.query("SELECT 1/0", [], anyRow))]);
    expect([wq.message, causeOf(wq).message, causeOf(wq).code]).toEqual([tq.message, causeOf(tq).message, causeOf(tq).code]);
    const [ws, ts] = await Promise.all([failure(worker.script("SELEC 1")), failure(inThread.script("SELEC 1"))]);
    expect([ws.message, causeOf(ws).message]).toEqual([ts.message, causeOf(ts).message]);
  });

  it("fails a call whose parameters cannot cross the thread boundary, and keeps working", async () => {
    const err = await failure(worker.query("SELECT $1::text AS x", [() => "x"], anyRow));
    expect(err.code).toBe("GW_STORE");
    expect(err.message).toBe("store query failed");
    expect((err.cause as Error).name).toBe("DataCloneError");
    expect(await worker.query("SELECT 1 AS n", [], countRow)).toEqual([{ n: 1 }]);
  });

  it("queues a statement issued outside an open transaction until it commits", async () => {
    const events: string[] = [];
    let outside: Promise<{ n: number }[]> | undefined;
    await worker.transaction(async (tx) => {
      await tx.execute("INSERT INTO q (id) VALUES (1)");
      outside = worker.query("SELECT count(*)::int AS n FROM q", [], countRow).then((r) => {
        events.push("outside");
        return r;
      });
      await sleep(100);
      // Inside the transaction, statements still run while the outside one waits.
      expect(await tx.query("SELECT count(*)::int AS n FROM q", [], countRow)).toEqual([{ n: 1 }]);
      await tx.execute("INSERT INTO q (id) VALUES (2)");
      events.push("fn done");
    });
    // Had it interleaved, it would have run before "fn done" and seen at most one row.
    expect(await outside).toEqual([{ n: 2 }]);
    expect(events).toEqual(["fn done", "outside"]);
  });

  it("rolls back when fn throws, passing a GatewayError through unchanged", async () => {
    const boom = new Error("boom");
    for (const c of [worker, inThread]) {
      const err = await failure(
        c.transaction(async (tx) => {
          await tx.execute("INSERT INTO t (id, v) VALUES (10, 'x')");
          // Nested: the same transaction, so the outer rollback undoes this too.
          await tx.transaction((inner) => inner.execute("INSERT INTO t (id, v) VALUES (11, 'y')"));
          throw boom;
        }),
      );
      expect([err.code, err.message, err.cause]).toEqual(["GW_STORE", "store transaction failed", boom]);
      expect(await c.query("SELECT id FROM t WHERE id >= 10", [], anyRow)).toEqual([]);

      const own = new GatewayError("GW_CONFIG", "mine");
      expect(await failure(c.transaction(() => Promise.reject(own)))).toBe(own);
    }
    // A statement failing inside: its GW_STORE error propagates and the transaction is undone.
    const err = await failure(
      worker.transaction(async (tx) => {
        await tx.execute("INSERT INTO t (id, v) VALUES (12, 'z')");
        await tx.execute("INSERT INTO t (id, v) VALUES (12, 'dup')");
      }),
    );
    expect([err.code, err.message, causeOf(err).code]).toEqual(["GW_STORE", "store statement failed", "23505"]);
    expect(await worker.query("SELECT id FROM t WHERE id = 12", [], anyRow)).toEqual([]);
  });

  it("commits and returns fn's value; a transaction client used after the end fails like in-thread", async () => {
    const leaked: SqlClient[] = [];
    for (const c of [worker, inThread]) {
      const got = await c.transaction(async (tx) => {
        leaked.push(tx);
        await tx.execute("INSERT INTO t (id, v) VALUES (20, 'kept')");
        return "result";
      });
      expect(got).toBe("result");
      expect(await c.query("SELECT v FROM t WHERE id = 20", [], anyRow)).toEqual([{ v: "kept" }]);
    }
    const [w, t] = await Promise.all(leaked.map((tx) => failure(tx.query("SELECT 1", [], anyRow))));
    expect(w?.message).toBe("store query failed");
    expect([w?.message, w === undefined ? "" : causeOf(w).message]).toEqual([t?.message, t === undefined ? "" : causeOf(t).message]);
  });

  it("serialises concurrent transactions (no lost updates)", async () => {
    await worker.execute("INSERT INTO t (id, v) VALUES (30, '0')");
    const bump = (): Promise<void> =>
      worker.transaction(async (tx) => {
        const [r] = await tx.query("SELECT v FROM t WHERE id = 30", [], z.object({ v: z.string() }));
        await sleep(5);
        await tx.execute("UPDATE t SET v = $1 WHERE id = 30", [String(Number(r?.v) + 1)]);
      });
    await Promise.all(Array.from({ length: 10 }, bump));
    expect(await worker.query("SELECT v FROM t WHERE id = 30", [], anyRow)).toEqual([{ v: "10" }]);
  });
});

describe("PGlite worker lifecycle", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "airlock-sql-life-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("close() lets queued work finish, is idempotent, and later calls fail with GW_STORE", async () => {
    const c = await openPgliteClient(join(root, "close"));
    const inFlight = c.query("SELECT 42 AS n", [], countRow);
    const closed = c.close();
    expect(await inFlight).toEqual([{ n: 42 }]);
    await closed;
    await c.close();
    const err = await failure(c.execute("SELECT 1"));
    expect([err.code, err.message, (err.cause as Error).message]).toEqual(["GW_STORE", "store statement failed", "PGlite is closed"]);
    expect((await failure(c.transaction(() => Promise.resolve()))).code).toBe("GW_STORE");
  });

  it("fails to open with GW_STORE when the directory cannot be used", async () => {
    const file = join(root, "a-file");
    await writeFile(file, "x");
    const err = await failure(openPgliteClient(join(file, "store")));
    expect(err.code).toBe("GW_STORE");
    expect(err.message).toContain("cannot open the embedded store");
  });

  /** A stand-in worker that speaks the protocol and dies on request (no PGlite: fast). */
  async function fakeWorker(): Promise<URL> {
    const path = join(root, `fake-worker-${Math.random().toString(36).slice(2)}.mjs`);
    await writeFile(
      path,
      `import { parentPort } from "node:worker_threads";
parentPort.on("message", (m) => {
  if (m.op === "open" || m.op === "close") parentPort.postMessage({ id: m.id, ok: true, value: null });
  else if (m.sql === "exit") process.exit(3);
  else if (m.sql === "throw") throw new Error("boom in the store worker");
  else if (m.sql === "garbage") parentPort.postMessage({ id: m.id, nonsense: true });
  // anything else is never answered
});
`,
    );
    return pathToFileURL(path);
  }

  for (const [how, cause] of [
    ["exit", /exited \(code 3\)/],
    ["throw", /crashed/],
    ["garbage", /malformed message/],
  ] as const) {
    it(`rejects pending and later calls with GW_STORE when the worker dies (${how})`, async () => {
      const c = await openPgliteWorkerClient(join(root, `fake-${how}`), await fakeWorker());
      const hanging = failure(c.query("hang", [], anyRow));
      const dying = failure(c.execute(how));
      for (const [err, message] of [
        [await hanging, "store query failed"],
        [await dying, "store statement failed"],
      ] as const) {
        expect(err.code).toBe("GW_STORE");
        expect(err.message).toBe(message);
        expect((err.cause as Error).message).toMatch(cause);
      }
      const later = await failure(c.script("SELECT 1"));
      expect([later.code, later.message]).toEqual(["GW_STORE", "store script failed"]);
      expect((await failure(c.transaction(() => Promise.resolve()))).code).toBe("GW_STORE");
      await c.close(); // resolves: nothing left to close
    });
  }
});

describe("PGlite worker vs in-thread: cost to the main thread (printed, not asserted)", () => {
  // Batches of 2000, the audit shipper's batch size. 10 in the everyday suite (a few seconds);
  // AIRLOCK_STORE_BENCH_BATCHES=50 for the figures quoted when PGlite moved to a worker.
  const BATCHES = Number(process.env.AIRLOCK_STORE_BENCH_BATCHES ?? 10);
  const SIZE = 2000;
  let root: string;
  let batches: AuditRecord[][];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "airlock-sql-bench-"));
    const records = makeChain(
      Array.from({ length: BATCHES * SIZE }, (_, i) => ({
        type: "db.query" as const,
        sessionId: `s-${i % 17}`,
        principal: { id: "sa:ci-bot", kind: "service_account" as const, name: "ci-bot" },
        connection: "orders",
        protocol: "postgres",
        decision: "allow" as const,
        statement: `SELECT abalance FROM pgbench_accounts WHERE aid = ${i}`,
        details: { rows: 1 },
      })),
    );
    batches = Array.from({ length: BATCHES }, (_, b) => records.slice(b * SIZE, (b + 1) * SIZE));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it(`ships ${BATCHES} audit batches of ${SIZE}`, { timeout: 600_000 }, async () => {
    const lines: string[] = [];
    for (const [name, open] of [
      ["worker", openPgliteClient],
      ["in-thread", openPgliteClientInThread],
    ] as const) {
      const store = new SqlStore(await open(join(root, name)));
      try {
        await store.migrate();
        const delay = monitorEventLoopDelay({ resolution: 1 });
        const elu0 = performance.eventLoopUtilization();
        const t0 = performance.now();
        delay.enable();
        for (const b of batches) {
          await store.appendAudit(b);
          // The shipper waits for a timer between batches; without a turn of the event loop here
          // the in-thread run would be one blocked stretch and the delay histogram would get no sample.
          await new Promise((r) => setImmediate(r));
        }
        delay.disable();
        const ms = performance.now() - t0;
        const elu = performance.eventLoopUtilization(elu0);
        const lastSeq = (await store.lastAudit())?.seq;
        expect(lastSeq).toBe(BATCHES * SIZE);
        const p = (q: number): string => (delay.percentile(q) / 1e6).toFixed(1);
        lines.push(
          `${name.padEnd(9)}: ${ms.toFixed(0)} ms (${((BATCHES * SIZE) / (ms / 1000)).toFixed(0)} records/s); ` +
            `main thread busy ${(elu.utilization * 100).toFixed(1)}% (${elu.active.toFixed(0)} ms); ` +
            `event-loop delay p50 ${p(50)} ms, p99 ${p(99)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`,
        );
      } finally {
        await store.close();
      }
    }
    process.stdout.write(`store: ${BATCHES} batches of ${SIZE} audit records\n${lines.join("\n")}\n`);
  });
});
