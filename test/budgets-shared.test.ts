/**
 * Budgets shared across gateways (issue 21): two gateways on one PostgreSQL store count one
 * group budget together (rows read through A leave less for B), and a restarted gateway starts
 * from the window's stored total, not from zero. A real PostgreSQL (target and store), two real
 * gateways in this process, node-postgres.
 */
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

let server: PgServer;
let a: TestGateway;
let b: TestGateway;
let dirB: string;
let token: string;
const open: pg.Client[] = [];

function config(id: string): Parameters<typeof startTestGateway>[0] {
  return {
    store: { url: server.url({ user: "app", password: "app-password", database: "store" }) },
    instance: { id, heartbeatInterval: "300ms", staleAfter: "5s", drainTimeout: "2s" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", groups: ["agents"], sslmode: "disable" }],
    budgets: [{ name: "team-rows", connections: ["shop"], groups: ["agents"], per: "group", window: "1h", rows: 30 }],
  };
}

async function client(gw: TestGateway): Promise<pg.Client> {
  const c = new pg.Client({ host: "127.0.0.1", port: gw.pgPort, database: "shop", user: "agent", password: token });
  c.on("error", () => undefined);
  c.on("notice", () => undefined);
  await c.connect();
  open.push(c);
  return c;
}

async function used(gw: TestGateway): Promise<number | undefined> {
  const r = await gw.api("/v1/budgets");
  return (r.body as { budgets: { budget: string; used: { rows: number } }[] }).budgets.find((x) => x.budget === "team-rows")?.used.rows;
}

/** The shared counter's rows as the store has them (a zero add reads it). */
async function stored(gw: TestGateway): Promise<number | undefined> {
  const hour = 3_600_000;
  const key = { budget: "team-rows", subject: "group:team-rows", connection: "shop", windowStart: Math.floor(Date.now() / hour) * hour };
  const rows = await gw.gw.store.budgets?.add([{ key, delta: { rows: 0, bytes: 0, statements: 0 } }]);
  return rows?.[0]?.rows;
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop", "store"] });
  await server.psql("create table numbers (n int primary key); insert into numbers select generate_series(1, 100); alter table numbers owner to app;", { database: "shop" });
  a = await startTestGateway(config("gw-a"));
  // B signs and verifies tokens with A's keys (as gateways sharing a store do).
  dirB = mkdtempSync(join(tmpdir(), "airlock-gw-b-"));
  cpSync(join(a.dataDir, "keys"), join(dirB, "keys"), { recursive: true });
  b = await startTestGateway(config("gw-b"), { dataDir: dirB });
  token = await a.mint("agent", "1h");
}, 300_000);

afterAll(async () => {
  for (const c of open) await c.end().catch(() => undefined);
  await a.stop();
  await b.stop();
  await server.stop();
});

describe("budgets shared through a PostgreSQL store", () => {
  it("rows read through A count on B: B's result is cut where the shared budget ends", async () => {
    const ca = await client(a);
    expect((await ca.query("select n from numbers where n <= 20 order by n")).rowCount).toBe(20);
    // A's flush (every 200 ms) reaches the store; B reads the total at its first statement.
    // (A's own view counts at once: wait for the store's row itself.)
    await until("A's counts in the store", async () => ((await stored(a)) === 20 ? true : undefined));
    const cb = await client(b);
    let rows = 0;
    const err = await new Promise<Error>((resolve) => {
      const q = cb.query(new pg.Query("select n from numbers where n <= 20 order by n"));
      q.on("row", () => rows++);
      q.on("error", resolve);
      q.on("end", () => resolve(new Error("not cut")));
    });
    expect(err.message).toContain("budget team-rows is spent: 30 rows per 1h");
    expect(rows).toBe(10);
    await until("B's view of the total", async () => ((await used(b)) === 30 ? true : undefined));
    await until("A learns B's counts", async () => ((await used(a)) === 30 ? true : undefined));
    // A too refuses the next statement now.
    await expect(ca.query("select 1")).rejects.toThrow(/budget team-rows is spent/);
  });

  it("a restarted gateway keeps the window's count (it does not reset to zero)", async () => {
    await b.stop();
    b = await startTestGateway(config("gw-b"), { dataDir: dirB });
    const cb = await client(b);
    await expect(cb.query("select 1")).rejects.toThrow(/budget team-rows is spent: 30 rows per 1h/);
  });
});
