/**
 * Masking on the channels that are not result rows, against a real PostgreSQL through the
 * gateway with node-postgres: errors that echo a value (`select email::int …`), NOTICE text
 * (RAISE in a DO block and in a function), NOTIFY payloads (`NOTIFY` and `pg_notify`), and an
 * error that echoes a value of a column under a column rule that no detector would find
 * (`select password::int from users`). The gateway's own refusals keep their text.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
let token: string;
const open: pg.Client[] = [];

async function client(database = "shop"): Promise<pg.Client> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database, user: "agent", password: token });
  c.on("error", () => undefined);
  await c.connect();
  open.push(c);
  return c;
}

/** The error a statement fails with (all its fields, as node-postgres exposes them). */
async function failure(c: pg.Client, sql: string): Promise<pg.DatabaseError> {
  try {
    await c.query(sql);
  } catch (e) {
    if (e instanceof pg.DatabaseError) return e;
    throw e;
  }
  throw new Error(`expected ${sql} to fail`);
}

function fieldsText(e: pg.DatabaseError): string {
  return [e.message, e.detail, e.hint, e.where, e.internalQuery].filter((x) => x !== undefined).join(" | ");
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table customers (id int primary key, name text, email text);
     insert into customers values (1, 'Ann', 'ann.lee@example.com'), (2, 'Bob', 'bob.kay@example.org');
     create table users (id int primary key, login text, password text);
     insert into users values (1, 'ann', 'hunter2');
     create function shout(i int) returns int language plpgsql as $$
       begin raise notice 'customer mail: %', (select email from customers where id = i); return i; end $$;
     alter table customers owner to app; alter table users owner to app; alter function shout(int) owner to app;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    // Any deny policy refuses DO blocks (fail closed): the refusal test uses a second connection.
    connections: [
      { ...conn, name: "shop", groups: ["agents"] },
      { ...conn, name: "shop-guarded", groups: ["agents"] },
    ],
    policies: [
      { name: "pii", connections: ["shop", "shop-guarded"], action: "mask", detectors: ["email"], strategy: "redact" },
      { name: "hide-password", connections: ["shop", "shop-guarded"], action: "mask", columns: ["users.password"], strategy: "redact" },
      { name: "no-truncate", connections: ["shop-guarded"], match: { operations: ["truncate"] }, action: "deny", message: "truncate is not allowed here" },
    ],
  });
  token = await t.mint("agent");
}, 300_000);

afterAll(async () => {
  for (const c of open) await c.end().catch(() => undefined);
  await t.stop();
  await server.stop();
});

describe("errors", () => {
  it("an error that echoes a value (email::int) has the value masked", async () => {
    const c = await client();
    const e = await failure(c, "select email::int from customers where id = 1");
    expect(e.code).toBe("22P02");
    expect(e.message).toContain("invalid input syntax for type integer");
    expect(fieldsText(e)).not.toContain("ann.lee@example.com");
    // The session goes on.
    expect((await c.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
  });

  it("a value of a column under a column rule is redacted from the error even though no detector knows it", async () => {
    const c = await client();
    const e = await failure(c, "select password::int from users");
    expect(e.code).toBe("22P02");
    expect(e.message).toMatch(/^invalid input syntax for type integer: "\[REDACTED\]"$/);
    expect(fieldsText(e)).not.toContain("hunter2");
    const j = await failure(c, "select u.password::json from users u");
    expect(fieldsText(j)).not.toContain("hunter2");
    // The extended protocol (a parameterized query): the plan is the prepared statement's.
    let x: unknown;
    try {
      await c.query("select password::int from users where id = $1", [1]);
    } catch (e) {
      x = e;
    }
    expect(x).toBeInstanceOf(pg.DatabaseError);
    if (x instanceof pg.DatabaseError) {
      expect(x.code).toBe("22P02");
      expect(fieldsText(x)).not.toContain("hunter2");
    }
  });

  it("the echo family: casts, lookups, constraint details and WHERE clauses that echo a covered column's value", async () => {
    const c = await client();
    await c.query("create temp table uniq (v text unique, w text check (length(w) < 3))");
    const statements = [
      "select password::date from users",
      "select password::regclass from users",
      "select password::int4range from users",
      "select password::uuid from users",
      "select password::inet from users",
      "select password::bit(3) from users",
      "select lower(password)::numeric from users",
      "select 1 from users where password::int = 1",
      "select password::jsonb from users",
      "select to_date(password, 'YYYY') from users",
      "insert into uniq (v) select password from users union all select password from users",
      "insert into uniq (v, w) select 'x', password from users",
    ];
    for (const sql of statements) {
      const e = await failure(c, sql);
      expect(e.code, sql).toMatch(/^[0-9A-Z]{5}$/);
      expect(fieldsText(e), sql).not.toContain("hunter2");
    }
  });

  it("an error of a statement that reads no covered column keeps its text; the gateway's refusal keeps its own", async () => {
    const c = await client("shop-guarded");
    const e = await failure(c, "select * from no_such_table");
    expect(e.message).toBe('relation "no_such_table" does not exist');
    const r = await failure(c, "truncate customers");
    expect(e.code).toBe("42P01");
    expect(r.code).toBe("42501");
    expect(r.message).toBe("airlock: truncate is not allowed here (rule: no-truncate)");
  });
});

describe("notices", () => {
  it("RAISE NOTICE of a value in a DO block is masked", async () => {
    const c = await client();
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(`${n.message ?? ""} ${n.where ?? ""}`));
    await c.query("do $$ begin raise notice 'mail is %', (select email from customers where id = 1); end $$");
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain("mail is ");
    expect(notices[0]).not.toContain("ann.lee@example.com");
  });

  it("RAISE NOTICE in a function called by a query is masked, and its rows too", async () => {
    const c = await client();
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(n.message ?? ""));
    const r = await c.query("select shout(2) as s");
    expect(r.rows).toEqual([{ s: 2 }]);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain("customer mail: ");
    expect(notices[0]).not.toContain("bob.kay@example.org");
  });
});

describe("notifications", () => {
  it("a NOTIFY payload with an e-mail address (NOTIFY and pg_notify) is masked", async () => {
    const listener = await client();
    await listener.query("listen shop_events");
    const payloads: string[] = [];
    const two = new Promise<void>((resolve) =>
      listener.on("notification", (n) => {
        payloads.push(n.payload ?? "");
        if (payloads.length === 2) resolve();
      }),
    );
    const notifier = await client();
    await notifier.query("notify shop_events, 'signup: carol.ng@example.net'");
    await notifier.query("select pg_notify('shop_events', 'changed ' || email) from customers where id = 1");
    await two;
    expect(payloads[0]).toMatch(/^signup: /);
    expect(payloads[1]).toMatch(/^changed /);
    expect(payloads.join(" ")).not.toMatch(/carol\.ng@example\.net|ann\.lee@example\.com/);
  });

  it("a clean payload is delivered as sent", async () => {
    const listener = await client();
    await listener.query("listen plain_events");
    const got = new Promise<string | undefined>((resolve) => listener.on("notification", (n) => resolve(n.payload)));
    const notifier = await client();
    await notifier.query("select pg_notify('plain_events', 'order 42 shipped')");
    await expect(got).resolves.toBe("order 42 shipped");
  });
});

describe("what the gateway keeps", () => {
  it("recordings and logs hold no value the channels masked", async () => {
    for (const c of open.splice(0)) await c.end().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    const list = (await t.api("/v1/sessions?limit=100")).body as { sessions: { id: string }[] };
    expect(list.sessions.length).toBeGreaterThan(3);
    let recorded = "";
    for (const s of list.sessions) recorded += (await t.api(`/v1/sessions/${s.id}`)).text;
    expect(recorded).toContain("invalid input syntax for type integer");
    for (const v of ["hunter2", "ann.lee@example.com", "bob.kay@example.org"]) {
      expect(recorded).not.toContain(v);
      expect(t.logs()).not.toContain(v);
    }
  });
});
