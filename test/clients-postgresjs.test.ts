/**
 * postgres.js (the `postgres` npm package) through the gateway: extended protocol with named
 * prepared statements, pipelined queries on one connection, start-up parameters from its
 * `connection` option. Covers what issue 12 fixed that this driver meets — masked columns
 * across pipelined reuse of a named statement, a denied statement that leaves the connection
 * usable, start-up settings, a held DELETE, and the row limit.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_ROWS, TIMEOUT_MESSAGE, startClientsFixture, type ClientsFixture } from "./harness/clients.js";

let f: ClientsFixture;

beforeAll(async () => {
  f = await startClientsFixture();
}, 240_000);

afterAll(async () => {
  await f.stop();
});

function connect(extra: Partial<postgres.Options<Record<string, postgres.PostgresType>>> = {}): postgres.Sql {
  return postgres({ host: f.host, port: f.port, database: f.database, username: f.user, password: f.token, ssl: false, max: 1, onnotice: () => undefined, ...extra });
}

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error("expected an error");
}

describe("postgres.js through the gateway", () => {
  it("masks the masked columns across pipelined executions of named statements", async () => {
    const sql = connect();
    try {
      // 30 queries in flight at once on one connection: two named statements, reused.
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 2 === 0
            ? sql<{ id: number; email: string; score: number | null }[]>`select id, email, score from customers where id = ${i + 1}`
            : sql<{ id: number; name: string }[]>`select id, name from customers where id = ${i + 1}`,
        ),
      );
      results.forEach((rows, i) => {
        expect(rows).toHaveLength(1);
        const row = rows[0] as Record<string, unknown>;
        expect(row["id"]).toBe(i + 1);
        if (i % 2 === 0) {
          expect(String(row["email"])).not.toContain("@example.com");
          expect(row["score"]).toBeNull();
        } else expect(row["name"]).toBe(`name ${i + 1}`);
      });
    } finally {
      await sql.end();
    }
  });

  it("a denied statement gives a clear error naming its rule, and the connection goes on", async () => {
    const sql = connect();
    try {
      const drop = await failure(sql`drop table orders`);
      expect(drop.code).toBe("42501");
      expect(drop.message).toContain("airlock: DROP is not allowed here");
      const secrets = await failure(sql`select x from app.secrets where x <> ${"none"}`);
      expect(secrets.code).toBe("42501");
      expect(secrets.message).toContain("no-app-secrets");
      const [row] = await sql<{ n: string }[]>`select count(*) as n from orders`;
      expect(Number(row?.n)).toBeGreaterThanOrEqual(18);
      expect(await f.target("select count(*) > 0 from orders")).toBe("t");
    } finally {
      await sql.end();
    }
  });

  it("start-up settings: statement_timeout and search_path as parameters, options, and a protected setting refused by name", async () => {
    const sql = connect({ connection: { statement_timeout: 2345, options: "--search_path=app,public" } });
    try {
      const [t] = await sql<{ statement_timeout: string }[]>`show statement_timeout`;
      expect(t?.statement_timeout).toBe("2345ms");
      const [p] = await sql<{ search_path: string }[]>`show search_path`;
      expect(p?.search_path).toBe("app,public");
      const secrets = await failure(sql`select * from secrets`);
      expect(secrets.code).toBe("42501");
      expect(secrets.message).toContain("no-app-secrets");
    } finally {
      await sql.end();
    }
    const role = connect({ connection: { options: "-c role=postgres" } });
    try {
      const e = await failure(role`select 1`);
      expect(e.message).toContain("airlock: role is set by the gateway");
    } finally {
      await role.end();
    }
  });

  it("statement_timeout is the client's to set (start-up parameter); the policy's statementTimeout is still enforced by the gateway", async () => {
    const sql = connect({ connection: { statement_timeout: 60_000 } });
    try {
      const [t] = await sql<{ statement_timeout: string }[]>`show statement_timeout`;
      expect(t?.statement_timeout).toBe("1min");
      for (let i = 0; i < 2; i++) {
        const e = await failure(sql`select pg_sleep(${20})`);
        expect(e.code).toBe("57014");
        expect(e.message).toContain(TIMEOUT_MESSAGE);
      }
      const [row] = await sql<{ n: number }[]>`select 5 as n`;
      expect(row?.n).toBe(5);
    } finally {
      await sql.end();
    }
  }, 60_000);

  // query.cancel() is not covered here: with postgres.js 3.4.10 the query after a cancelled one
  // fails with ECONNREFUSED after a long wait even directly against PostgreSQL (the driver's
  // behaviour, not the gateway's); cancel is covered through libpq (psycopg2) and pgjdbc.

  it("a DELETE held for approval waits, and runs once a person approves it", async () => {
    const notices: string[] = [];
    const sql = connect({ onnotice: (n) => notices.push(String(n.message)) });
    try {
      const run = sql`delete from orders where id = ${18}`;
      const done = run.then((r) => r.count);
      const id = await f.pending("delete from orders where id =");
      expect(await f.target("select count(*) from orders where id = 18")).toBe("1");
      // Longer than the 2 s statementTimeout: time spent waiting for a person is not the
      // statement's (the target, had it been given statement_timeout, would count it from Parse).
      await new Promise((r) => setTimeout(r, 2500));
      await f.approve(id);
      expect(await done).toBe(1);
      expect(notices.join("\n")).toContain("waiting for approval");
      expect(await f.target("select count(*) from orders where id = 18")).toBe("0");
    } finally {
      await sql.end();
    }
  }, 60_000);

  it("the row limit holds for a reused named statement, and the connection goes on", async () => {
    const notices: string[] = [];
    const sql = connect({ onnotice: (n) => notices.push(String(n.message)) });
    try {
      for (let i = 0; i < 4; i++) {
        try {
          const rows = await sql<{ id: number; email: string }[]>`select id, email from customers where id > ${0} order by id`;
          expect(rows.length).toBe(MAX_ROWS);
          expect(rows.filter((r) => r.email.includes("@example.com"))).toEqual([]);
        } catch (e) {
          expect((e as { code?: string }).code).toBe("57014");
        }
        const [row] = await sql<{ n: number }[]>`select ${i}::int as n`;
        expect(row?.n).toBe(i);
      }
      expect(notices.join("\n")).toContain(`cut at ${MAX_ROWS} rows`);
    } finally {
      await sql.end();
    }
  }, 60_000);
});
