/**
 * Shutdown drains: stopping the gateway ends live sessions (idle, inside a transaction, and one
 * waiting for a person's approval) with a clear error in the client, and completes, instead of
 * waiting for clients that nothing would ever end. A real PostgreSQL and node-postgres.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["orders"] });
  await server.psql("create table items (id int primary key); insert into items values (1), (2); alter table items owner to app;", { database: "orders" });
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [{ name: "deletes-need-approval", match: { operations: ["delete"] }, action: "require_approval", approvers: ["dba"] }],
  });
});

afterAll(async () => {
  await t.stop().catch(() => undefined);
  await server.stop();
});

function client(token: string): { c: pg.Client; errors: Error[] } {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "agent", password: token });
  const errors: Error[] = [];
  c.on("error", (e) => errors.push(e));
  return { c, errors };
}

describe("gateway shutdown", () => {
  it("ends idle, in-transaction and held sessions and completes", async () => {
    const token = await t.mint("agent", "1h");
    const idle = client(token);
    const inTx = client(token);
    const held = client(token);
    await Promise.all([idle.c.connect(), inTx.c.connect(), held.c.connect()]);
    await inTx.c.query("begin");
    await inTx.c.query("select * from items for update");
    const notices: string[] = [];
    held.c.on("notice", (n) => notices.push(n.message ?? ""));
    const waiting = held.c.query("delete from items where id = 2").then(
      () => "ran",
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    const deadline = Date.now() + 10_000;
    while (!notices.some((n) => n.includes("waiting for approval")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(notices.some((n) => n.includes("waiting for approval"))).toBe(true);

    const started = Date.now();
    const stopped = await Promise.race([t.gw.close().then(() => "closed"), new Promise((r) => setTimeout(() => r("still open after 10 s"), 10_000))]);
    expect(stopped).toBe("closed");
    expect(Date.now() - started).toBeLessThan(10_000);

    // The held statement did not run, and its client was told why.
    expect(await waiting).not.toBe("ran");
    await expect(idle.c.query("select 1")).rejects.toThrow();
    await expect(inTx.c.query("select 1")).rejects.toThrow();
    // The target is unharmed: the row whose DELETE was held is still there, and no lock is left.
    expect((await server.psql("select count(*) from items", { database: "orders" })).trim()).toContain("2");
  });
});
