/**
 * One gateway per store: the audit chain has one writer. A second gateway pointed at a
 * PostgreSQL store another gateway is using refuses to start with a clear error (it would
 * otherwise continue the same chain from the store's head and fork it, and the store would
 * drop the records whose seq the other had taken). Real PostgreSQL (store and target), psql.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
const running: TestGateway[] = [];

function config(): Parameters<typeof startTestGateway>[0] {
  return {
    store: { url: pgServer.url({ user: "airlock", password: "store-pw-w1", database: "airlock_store" }) },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { type: "postgres", name: "orders", host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-w1", sslmode: "disable", groups: ["agents"] },
    ],
  };
}

beforeAll(async () => {
  pgServer = await startPostgres({
    users: [
      { name: "app", password: "app-pw-w1", auth: "scram-sha-256" },
      { name: "airlock", password: "store-pw-w1", auth: "scram-sha-256" },
    ],
    databases: ["orders", "airlock_store"],
  });
  await pgServer.psql("alter database airlock_store owner to airlock;");
});

afterAll(async () => {
  for (const g of running) await g.stop().catch(() => undefined);
  await pgServer.stop();
});

/** Whether the writer lock is free right now (taken and at once released by a plain client). */
async function writerLockFree(): Promise<boolean> {
  const c = new pg.Client({ connectionString: pgServer.url({ user: "airlock", password: "store-pw-w1", database: "airlock_store" }) });
  await c.connect();
  try {
    const r = await c.query<{ locked: boolean }>("select pg_try_advisory_lock(hashtext('airlock.audit-writer')) as locked");
    if (r.rows[0]?.locked === true) await c.query("select pg_advisory_unlock(hashtext('airlock.audit-writer'))");
    return r.rows[0]?.locked === true;
  } finally {
    await c.end();
  }
}

describe("one gateway per store", () => {
  it("refuses a second writer without touching the chain, and frees the store when the first stops", async () => {
    const a = await startTestGateway(config());
    running.push(a);
    const token = await a.mint("agent", "1h");
    const ok = await a.psql("orders", token, ["-Atc", "select 'via a'"]);
    expect(ok.stdout, ok.stderr).toContain("via a");
    expect(await writerLockFree()).toBe(false);

    // A second gateway on the same store, with a data directory of its own: refused at start.
    await expect(startTestGateway(config())).rejects.toThrow(/another Airlock gateway is writing to this store/);

    // The first goes on, and its chain is whole (the refused one wrote nothing to it).
    const again = await a.psql("orders", token, ["-Atc", "select 'still via a'"]);
    expect(again.stdout, again.stderr).toContain("still via a");
    const verify = await a.api("/v1/audit/verify");
    expect(verify.status, verify.text).toBe(200);
    expect(verify.text).toMatch(/"ok":true/);

    // Stopping the first releases the store for the next gateway.
    await a.stop();
    running.splice(running.indexOf(a), 1);
    expect(await writerLockFree()).toBe(true);
  });
});
