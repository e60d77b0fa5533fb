/**
 * The SQLite client (better-sqlite3 in a worker thread): the same transaction semantics as the
 * PGlite worker (sql.test.ts), the SQL rewrite on the way in, driver errors as GW_STORE with the
 * driver's code in `cause`, and its lifecycle. The Store behaviour is covered by store.suite.ts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { openSqliteClient, sqlBool, sqlDate, type SqlClient } from "./sql.js";

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

describe("SQLite in a worker thread", () => {
  let root: string;
  let c: SqlClient;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "airlock-sqlite-"));
    c = await openSqliteClient(join(root, "db"));
    await c.script("CREATE TABLE t (id bigint PRIMARY KEY, v text, ok boolean, at timestamptz, j jsonb); CREATE TABLE q (id integer)");
  });
  afterAll(async () => {
    await c.close();
    await rm(root, { recursive: true, force: true });
  });

  it("runs the store's PostgreSQL text: casts, now(), booleans, timestamps, JSON text, RETURNING", async () => {
    const rows = await c.query(
      "INSERT INTO t (id, v, ok, at, j) VALUES ($1::bigint, $2::text, $3, $4::timestamptz, $5::jsonb) RETURNING id, v, ok, at, j",
      [1, "x", true, new Date(0), JSON.stringify({ a: [1] })],
      z.object({ id: z.number(), v: z.string(), ok: sqlBool, at: sqlDate, j: z.string() }),
    );
    expect(rows).toEqual([{ id: 1, v: "x", ok: true, at: new Date(0), j: '{"a":[1]}' }]);
    const [later] = await c.query("SELECT count(*)::int AS n FROM t WHERE at < now() AND ($1::text IS NULL OR v = $1)", [null], countRow);
    expect(later).toEqual({ n: 1 });
    expect(await c.execute("INSERT INTO t (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", [1])).toBe(0);
    expect(await c.execute("UPDATE t SET v = $2 WHERE id = $1", [1, "y"])).toBe(1);
  });

  it("reports driver errors as GW_STORE with the driver's code in the cause, and keeps working", async () => {
    const err = await failure(c.execute("INSERT INTO t (id) VALUES ($1)", [1]));
    expect([err.code, err.message, causeOf(err).code]).toEqual(["GW_STORE", "store statement failed", "SQLITE_CONSTRAINT_PRIMARYKEY"]);
    const bad = await failure(c.query("SELECT $1 AS x", [{ an: "object" }], anyRow));
    expect(bad.code).toBe("GW_STORE");
    const refused = await failure(c.query("SELECT * FROM unnest($1::text[])", [[]], anyRow));
    expect(refused.code).toBe("GW_STORE");
    expect(await c.query("SELECT 1 AS n", [], countRow)).toEqual([{ n: 1 }]);
  });

  it("queues a statement issued outside an open transaction until it commits", async () => {
    const events: string[] = [];
    let outside: Promise<{ n: number }[]> | undefined;
    await c.transaction(async (tx) => {
      await tx.execute("INSERT INTO q (id) VALUES (1)");
      outside = c.query("SELECT count(*)::int AS n FROM q", [], countRow).then((r) => {
        events.push("outside");
        return r;
      });
      await sleep(50);
      expect(await tx.query("SELECT count(*)::int AS n FROM q", [], countRow)).toEqual([{ n: 1 }]);
      await tx.execute("INSERT INTO q (id) VALUES (2)");
      events.push("fn done");
    });
    expect(await outside).toEqual([{ n: 2 }]);
    expect(events).toEqual(["fn done", "outside"]);
  });

  it("rolls back when fn throws or a statement fails; a GatewayError passes through unchanged", async () => {
    const boom = new Error("boom");
    const err = await failure(
      c.transaction(async (tx) => {
        await tx.execute("INSERT INTO t (id, v) VALUES (10, 'x')");
        await tx.transaction((inner) => inner.execute("INSERT INTO t (id, v) VALUES (11, 'y')"));
        throw boom;
      }),
    );
    expect([err.code, err.message, err.cause]).toEqual(["GW_STORE", "store transaction failed", boom]);
    expect(await c.query("SELECT id FROM t WHERE id >= 10", [], anyRow)).toEqual([]);
    const own = new GatewayError("GW_CONFIG", "mine");
    expect(await failure(c.transaction(() => Promise.reject(own)))).toBe(own);
    const dup = await failure(
      c.transaction(async (tx) => {
        await tx.execute("INSERT INTO t (id, v) VALUES (12, 'z')");
        await tx.execute("INSERT INTO t (id, v) VALUES (12, 'dup')");
      }),
    );
    expect(dup.code).toBe("GW_STORE");
    expect(await c.query("SELECT id FROM t WHERE id = 12", [], anyRow)).toEqual([]);
  });

  it("a transaction client used after its end fails with GW_STORE", async () => {
    let leaked: SqlClient | undefined;
    expect(await c.transaction((tx) => ((leaked = tx), Promise.resolve("result")))).toBe("result");
    if (leaked === undefined) throw new Error("no transaction client");
    const err = await failure(leaked.query("SELECT 1", [], anyRow));
    expect([err.code, causeOf(err).message]).toEqual(["GW_STORE", "Transaction is closed"]);
  });

  it("serialises concurrent transactions (no lost updates)", async () => {
    await c.execute("INSERT INTO t (id, v) VALUES (30, '0')");
    const bump = (): Promise<void> =>
      c.transaction(async (tx) => {
        const [r] = await tx.query("SELECT v FROM t WHERE id = 30", [], z.object({ v: z.string() }));
        await sleep(2);
        await tx.execute("UPDATE t SET v = $1 WHERE id = 30", [String(Number(r?.v) + 1)]);
      });
    await Promise.all(Array.from({ length: 10 }, bump));
    expect(await c.query("SELECT v FROM t WHERE id = 30", [], anyRow)).toEqual([{ v: "10" }]);
  });
});

describe("SQLite worker lifecycle", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "airlock-sqlite-life-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("close() lets queued work finish, is idempotent, and later calls fail with GW_STORE", async () => {
    const c = await openSqliteClient(join(root, "close"));
    const inFlight = c.query("SELECT 42 AS n", [], countRow);
    const closed = c.close();
    expect(await inFlight).toEqual([{ n: 42 }]);
    await closed;
    await c.close();
    const err = await failure(c.execute("SELECT 1"));
    expect([err.code, err.message, causeOf(err).message]).toEqual(["GW_STORE", "store statement failed", "SQLite is closed"]);
    expect((await failure(c.transaction(() => Promise.resolve()))).code).toBe("GW_STORE");
    // Closed means unlocked: the store opens again.
    const again = await openSqliteClient(join(root, "close"));
    await again.close();
  });

  it("fails to open with GW_STORE when the directory cannot be used", async () => {
    const file = join(root, "a-file");
    await writeFile(file, "x");
    const err = await failure(openSqliteClient(join(file, "db")));
    expect(err.code).toBe("GW_STORE");
  });
});
