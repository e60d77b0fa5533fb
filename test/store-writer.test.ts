/**
 * One writer per audit chain: each gateway instance writes its own chain (issue 18), so a second
 * gateway with an instance id of its own starts on a store another gateway uses, while a second
 * gateway with the SAME instance id is refused with a clear error (it would continue that chain
 * from the store's head and fork it). Real PostgreSQL (store and target), psql.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writerLockKey } from "../src/store/instances.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
const running: TestGateway[] = [];

function config(instanceId: string): Parameters<typeof startTestGateway>[0] {
  return {
    instance: { id: instanceId },
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

/** Whether an instance's writer lock is free right now (taken and at once released by a plain client). */
async function writerLockFree(instanceId: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: pgServer.url({ user: "airlock", password: "store-pw-w1", database: "airlock_store" }) });
  await c.connect();
  try {
    const key = writerLockKey(instanceId);
    const r = await c.query<{ locked: boolean }>("select pg_try_advisory_lock($1::bigint) as locked", [key]);
    if (r.rows[0]?.locked === true) await c.query("select pg_advisory_unlock($1::bigint)", [key]);
    return r.rows[0]?.locked === true;
  } finally {
    await c.end();
  }
}

describe("one writer per audit chain", () => {
  it("starts a second instance beside the first, refuses a second writer of the same chain without touching it, and frees the chain when its writer stops", async () => {
    const a = await startTestGateway(config("gw-a"));
    running.push(a);
    const token = await a.mint("agent", "1h");
    const ok = await a.psql("orders", token, ["-Atc", "select 'via a'"]);
    expect(ok.stdout, ok.stderr).toContain("via a");
    expect(await writerLockFree("gw-a")).toBe(false);
    expect(await writerLockFree("gw-b")).toBe(true);

    // Another instance (its own id and data directory) starts on the same store and serves.
    const b = await startTestGateway(config("gw-b"));
    running.push(b);
    const viaB = await b.psql("orders", await b.mint("agent", "1h"), ["-Atc", "select 'via b'"]);
    expect(viaB.stdout, viaB.stderr).toContain("via b");
    expect(await writerLockFree("gw-b")).toBe(false);

    // A second gateway claiming gw-a's chain: refused at start.
    await expect(startTestGateway(config("gw-a"))).rejects.toThrow(/another Airlock gateway with instance id "gw-a" is writing to this store/);

    // The first goes on, and every chain is whole (the refused one wrote nothing).
    const again = await a.psql("orders", token, ["-Atc", "select 'still via a'"]);
    expect(again.stdout, again.stderr).toContain("still via a");
    const verify = await a.api("/v1/audit/verify");
    expect(verify.status, verify.text).toBe(200);
    expect(verify.text).toMatch(/"ok":true/);

    // Stopping a writer releases its chain for the next gateway with that id.
    await a.stop();
    running.splice(running.indexOf(a), 1);
    expect(await writerLockFree("gw-a")).toBe(true);
    expect(await writerLockFree("gw-b")).toBe(false);
  });
});
