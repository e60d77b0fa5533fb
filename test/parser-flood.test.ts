/**
 * Issue 12, "the parser must not be a way to stop the gateway", end to end: a real PostgreSQL,
 * the gateway with a deny policy (so unparseable statements are refused, fail closed), one
 * node-postgres client flooding statements built to break or occupy the parser, and another
 * client whose ordinary statements must keep being answered meanwhile.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_SQL_DEPTH } from "../src/policy/sql/limits.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let server: PgServer;
let t: TestGateway;
let token: string;

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
  c.on("error", () => undefined);
  await c.connect();
  return c;
}

async function refusal(c: pg.Client, sql: string): Promise<{ code?: string; message: string }> {
  try {
    await c.query(sql);
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error("not refused");
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table orders (id int primary key, total int);
     insert into orders select g, g * 10 from generate_series(1, 100) g;
     alter table orders owner to app;`,
    { database: "shop" },
  );
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ type: "postgres", name: "shop", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable", groups: ["agents"] }],
    policies: [{ name: "no-drop", match: { operations: ["drop"] }, action: "deny" }],
  });
  token = await t.mint("agent");
}, 300_000); // a PostgreSQL and a gateway: slow on a loaded 2-core machine

afterAll(async () => {
  await t.stop();
  await server.stop();
});

/** Ordinary statements, each of a new shape (never cached): every one parses in a parser thread. */
async function ordinaryTraffic(c: pg.Client, until: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  let k = 0;
  do {
    k++;
    const started = performance.now();
    const r = await c.query<{ total: number }>(`select total as t${k} from orders where id = ${(k % 100) + 1}`);
    latencies.push(performance.now() - started);
    expect(r.rows[0]).toEqual({ [`t${k}`]: ((k % 100) + 1) * 10 });
  } while (!until() || k < 20);
  return latencies;
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
}

describe("a client flooding the parser", () => {
  it("gets 50 × 300 KB `select 1+1+…` refused with the limit named, while another client is answered", async () => {
    const attacker = await connect();
    const victim = await connect();
    try {
      const rss0 = process.memoryUsage().rss;
      const attack = "select 1" + "+1".repeat(150_000);
      let flooding = true;
      const flood = (async () => {
        for (let k = 0; k < 50; k++) {
          const e = await refusal(attacker, attack);
          expect(e.code).toBe("42501");
          expect(e.message).toContain(`statement too deeply nested (limit ${MAX_SQL_DEPTH} levels`);
        }
        flooding = false;
      })();
      const latencies = await ordinaryTraffic(victim, () => !flooding);
      await flood;
      // the attacker's own session is still usable, and the process did not balloon
      expect((await attacker.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      expect(process.memoryUsage().rss - rss0).toBeLessThan(512 * 1024 * 1024);
      console.log(`select 1+1+… flood: ${latencies.length} ordinary statements answered meanwhile, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`);
      expect(percentile(latencies, 99)).toBeLessThan(2_000);
    } finally {
      await attacker.end();
      await victim.end();
    }
  }, 120_000);

  it("keeps answering others while statements that are legal but costly to parse occupy a parser thread", async () => {
    const attacker = await connect();
    const victim = await connect();
    try {
      // 30,000-item IN lists (170 KB): within the limits, each tens of ms of parser CPU.
      const heavy = (k: number): string => `select count(*) from orders where id in (${Array.from({ length: 30_000 }, (_, i) => i + k).join(",")})`;
      let flooding = true;
      const flood = (async () => {
        for (let k = 0; k < 8; k++) {
          const r = await attacker.query<{ count: string }>(heavy(k));
          expect(r.rows[0]?.count).toBe(String(k <= 1 ? 100 : 101 - k)); // ids k … k+29999 of 1 … 100
        }
        flooding = false;
      })();
      const latencies = await ordinaryTraffic(victim, () => !flooding);
      await flood;
      console.log(`IN-list flood: ${latencies.length} ordinary statements answered meanwhile, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`);
      expect(percentile(latencies, 50)).toBeLessThan(500);
    } finally {
      await attacker.end();
      await victim.end();
    }
  }, 120_000);

  it("still refuses what it cannot parse and answers with PostgreSQL's syntax error position through psql", async () => {
    const r = await t.psql("shop", token, ["-c", "selec 1"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('syntax error at or near "selec"');
    const ok = await t.psql("shop", token, ["-At", "-c", "select count(*) from orders"]);
    expect(ok.stdout.trim()).toBe("100");
  });
});
