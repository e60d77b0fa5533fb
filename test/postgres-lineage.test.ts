/**
 * Column rules apply whatever way the column is read (issue 12): through a parent table
 * (inheritance, partitions; a rule on the parent covering the child), and through computed
 * result fields that carry no table origin (`lower(email)`, arrays, rows, casts, subqueries,
 * CTEs, derived tables, whole rows), for masking and for column denies, through node-postgres
 * against a real PostgreSQL: simple and extended protocol, cursors.
 */
import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresConnection } from "../src/core/connection.js";
import { PgCatalog } from "../src/protocols/postgres/catalog.js";
import { parseConfig } from "../src/runtime/config.js";
import { DirectDialer } from "../src/runtime/dialer.js";
import { resolveSecret } from "../src/secrets/resolve.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
let token: string;
const open: pg.Client[] = [];

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
  await c.connect();
  open.push(c);
  return c;
}

async function values(c: pg.Client, sql: string, params?: unknown[]): Promise<unknown[]> {
  const r: pg.QueryArrayResult = params === undefined ? await c.query({ text: sql, rowMode: "array" }) : await c.query({ text: sql, values: params, rowMode: "array" });
  return (r.rows as unknown[][]).flat();
}

async function refusal(c: pg.Client, sql: string): Promise<{ code?: string; message: string } | undefined> {
  try {
    await c.query(sql);
    return undefined;
  } catch (e) {
    return e as { code?: string; message: string };
  }
}

const SECRETS = /alice@example\.com|bob@example\.com|hunter2|s3cret|tok-[ab]\d|4111/i;

/** No clear secret in what the client got, and something came back (masked, or NULL). */
function expectMasked(got: readonly unknown[]): void {
  expect(got.length).toBeGreaterThan(0);
  expect(JSON.stringify(got)).not.toMatch(SECRETS);
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table users (id int primary key, name text, email text, password text);
     insert into users values (1, 'alice', 'alice@example.com', 'hunter2'), (2, 'bob', 'bob@example.com', 's3cret');
     create table par (id int, password text);
     create table par2 (id int, password text);
     create table par3 (id int, password text);
     create table users2 (id int, name text, password text);
     insert into users2 values (1, 'carol', 'hunter2');
     create table users3 (id int, name text, password text);
     insert into users3 values (1, 'dave', 's3cret');
     create table events (id int, kind text, token text) partition by list (kind);
     create table events_a (id int, kind text, token text);
     insert into events_a values (1, 'a', 'tok-a1');
     create table events_b (id int, kind text, token text);
     insert into events_b values (2, 'b', 'tok-b2');
     create table ppar (id int, secret text);
     create table kid (id int, secret text, note text) ;
     alter table kid inherit ppar;
     insert into kid values (1, 's3cret', 'plain');
     create table cards (id int, number text);
     insert into cards values (1, '4111111111111111');
     create table cardpar (id int, number text);
     create table cards2 (id int, number text);
     insert into cards2 values (1, '4111111111111111');
     create table cardpar2 (id int, number text);
     create table plain_t (id int, label text); insert into plain_t values (1, 'visible');
     create function leak(users) returns text language sql as 'select $1.password';
     create view users_v as select id, email from users;
     create view users_rv as select password as id, id as x, upper(name) as loud from users;
     create view users_vv as select * from users_rv;
     do $$ declare r record; begin for r in select relname from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p', 'v') loop
       execute format('alter table %I owner to app', r.relname); end loop; end $$;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ ...conn, name: "shop", groups: ["agents"] }],
    policies: [
      { name: "no-card-numbers", connections: ["shop"], match: { columns: ["cards.number", "cards2.number"] }, action: "deny" },
      { name: "hide-user-secrets", connections: ["shop"], action: "mask", columns: ["users.email", "users.password", "users2.password", "users3.password"], strategy: "redact" },
      { name: "hide-tokens", connections: ["shop"], action: "mask", columns: ["events_a.token", "public.events_b.token"], strategy: "redact" },
      { name: "hide-parent-secret", connections: ["shop"], action: "mask", columns: ["ppar.secret"], strategy: "redact" },
      { name: "hide-phones", connections: ["shop"], action: "mask", columns: ["*.phone"], strategy: "redact" },
    ],
  });
  token = await t.mint("agent");
}, 300_000);

afterAll(async () => {
  for (const c of open) await c.end().catch(() => undefined);
  await t.stop();
  await server.stop();
});

describe("column rules through inheritance and partitions", () => {
  it("a child's column read through its parent is masked (ALTER TABLE … INHERIT)", async () => {
    const c = await client();
    await c.query("alter table users inherit par");
    expectMasked(await values(c, "select password from par"));
    expectMasked(await values(c, "select * from par"));
    // Extended protocol too.
    expectMasked(await values(c, "select * from par where id = $1", [1]));
  });

  it("a freshly attached child is seen by the same and by another session", async () => {
    const a = await client();
    const b = await client();
    // Both sessions look at the parent first: the catalog answer is cached before the change.
    expect(await values(a, "select count(*)::int from par2")).toEqual([0]);
    expect(await values(b, "select count(*)::int from par2")).toEqual([0]);
    await a.query("alter table users2 inherit par2");
    expectMasked(await values(a, "select password from par2"));
    expectMasked(await values(b, "select password from par2"));
    expectMasked(await values(b, "select lower(password) from par2"));
  });

  it("a child attached in the running transaction is masked before it commits", async () => {
    const c = await client();
    await c.query("begin");
    await c.query("alter table users3 inherit par3");
    expectMasked(await values(c, "select * from par3"));
    await c.query("rollback");
  });

  it("partitions attached through the gateway are masked when the partitioned table is read", async () => {
    const a = await client();
    const b = await client();
    await a.query("alter table events attach partition events_a for values in ('a')");
    await a.query("alter table events attach partition events_b for values in ('b')");
    for (const c of [a, b]) {
      expectMasked(await values(c, "select token from events"));
      expectMasked(await values(c, "select upper(token) from events"));
    }
    // Columns no rule names stay.
    expect((await values(b, "select kind from events order by id")).sort()).toEqual(["a", "b"]);
  });

  it("a rule on the parent's column covers the child's inherited column", async () => {
    const c = await client();
    expectMasked(await values(c, "select secret from kid"));
    expectMasked(await values(c, "select secret || '' from kid"));
    expect(await values(c, "select note from kid")).toEqual(["plain"]);
  });

  it("a column deny read through a parent is refused (catalog, another session, and in one transaction)", async () => {
    const a = await client();
    await a.query("alter table cards inherit cardpar");
    for (const sql of ["select number from cardpar", "select * from cardpar", "select lower(number) from cardpar"]) {
      expect((await refusal(a, sql))?.code, sql).toBe("42501");
    }
    const b = await client();
    expect((await refusal(b, "select number from cardpar"))?.code).toBe("42501");
    // Unrelated columns of the parent still read.
    expect(await values(b, "select id from cardpar")).toEqual([1]);
    await b.query("begin");
    await b.query("alter table cards2 inherit cardpar2");
    expect((await refusal(b, "select number from cardpar2"))?.code).toBe("42501");
    await b.query("rollback").catch(() => undefined);
  });
});

describe("column rules through views", () => {
  it("a covered column read through a view, renamed, or through a view of a view, is masked", async () => {
    const c = await client();
    expectMasked(await values(c, "select email from users_v"));
    expectMasked(await values(c, "select lower(email) from users_v"));
    expectMasked(await values(c, "select id from users_rv"));
    expectMasked(await values(c, "select id from users_vv"));
    expectMasked(await values(c, "select * from users_vv"));
  });

  it("view columns that read no covered column stay", async () => {
    const c = await client();
    expect((await values(c, "select x from users_rv order by x"))).toEqual([1, 2]);
    expect((await values(c, "select loud from users_vv order by 1"))).toEqual(["ALICE", "BOB"]);
    expect((await values(c, "select id from users_v order by 1"))).toEqual([1, 2]);
  });
});

describe("computed result fields get the rules of the columns they derive from", () => {
  it.each([
    "select lower(email) from users",
    "select email || '' from users",
    "select array_agg(email) from users",
    "select row(email) from users",
    "select email::refcursor as r from users",
    "select coalesce(password, '') from users",
    "select (select password from users limit 1) as x",
    "with c as (select lower(password) as p from users) select p from c",
    "select d.m from (select email || '' as m from users) d",
    "select * from (select upper(email) as m from users) d",
    "select json_agg(u) from users u",
    "select u from users u",
    "select row_to_json(u) from users u",
    "select x from unnest(array(select email from users)) x",
    // Attribute notation: u.leak is the call leak(u), handed the whole row.
    "select u.leak from users u",
  ])("%s", async (sql) => {
    const c = await client();
    expectMasked(await values(c, sql));
  });

  it("extended protocol and cursors carry the lineage", async () => {
    const c = await client();
    expectMasked(await values(c, "select lower(email) from users where id = $1", [1]));
    await c.query("begin");
    await c.query("declare cur cursor for select lower(email), email || '' from users");
    expectMasked(await values(c, "fetch 2 from cur"));
    await c.query("commit");
    await c.query("prepare p1 as select upper(password) from users");
    expectMasked(await values(c, "execute p1"));
    // Several statements in one message: each result under its own statement's lineage.
    const r = (await c.query("select lower(name) from users where id = 1; select lower(email) from users where id = 1")) as unknown as pg.QueryResult[];
    expect(r[0]?.rows).toEqual([{ lower: "alice" }]);
    expect(JSON.stringify(r[1]?.rows)).not.toMatch(SECRETS);
  });

  it("computed fields that read no covered column are not masked", async () => {
    const c = await client();
    expect(await values(c, "select 1 + 1")).toEqual([2]);
    expect(await values(c, "select count(*)::int from users")).toEqual([2]);
    expect(await values(c, "select count(*)::int from users where password = 'hunter2'")).toEqual([1]);
    expect((await values(c, "select lower(name) from users")).sort()).toEqual(["alice", "bob"]);
    expect(await values(c, "select upper(name), id from users where id = $1", [1])).toEqual(["ALICE", 1]);
    expect(await values(c, "select upper(u.name) || '!' from users u where u.id = 1")).toEqual(["ALICE!"]);
    // A whole row of a table none of whose columns a rule covers (`*.phone` names no column of it).
    expect(await values(c, "select row_to_json(p)::text from plain_t p")).toEqual(['{"id":1,"label":"visible"}']);
  });
});

describe("PgCatalog: inheritance and view lineage", () => {
  let catalog: PgCatalog;
  beforeAll(async () => {
    await server.psql(
      `create table g1 (a int, s text); create table g2 (b int) inherits (g1); create table g3 () inherits (g2);
       create table other_parent (s text); alter table g3 inherit other_parent;
       create table lone (x int);
       create view gv as select s as renamed, a from g2; create view gvv as select renamed || '' as r from gv;`,
      { database: "shop" },
    );
    const config = parseConfig({
      connections: [{ name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", groups: ["agents"], sslmode: "disable" }],
    });
    catalog = new PgCatalog(config.connections[0] as PostgresConnection, { dialer: new DirectDialer(), resolveSecret, timeoutMs: 10_000, maxMessageBytes: 1 << 20 }, pino({ level: "silent" }));
  }, 60_000);
  afterAll(async () => {
    await catalog.close();
  });

  it("finds descendants (transitively), their other ancestors, and the ancestors of a child", async () => {
    const r = await catalog.inheritance(["g1", "g3", "lone", "nothing_here"]);
    const names = (n: string): string[] => (r.get(n)?.[0]?.relatives ?? []).map((x) => `${x.name}${x.descendant ? "↓" : "↑"}`).sort();
    expect(names("g1")).toEqual(["g2↓", "g3↓", "other_parent↑"]);
    expect(names("g3")).toEqual(["g1↑", "g2↑", "other_parent↑"]);
    expect(r.get("lone")?.[0]?.relatives).toEqual([]);
    expect(r.get("nothing_here")).toEqual([]);
    expect(catalog.cachedInheritance("g1")).not.toBe("missing");
  });

  it("is looked up again after invalidate() (a child attached since)", async () => {
    await catalog.inheritance(["lone"]);
    await server.psql("create table lone_child (x int); alter table lone_child inherit lone", { database: "shop" });
    expect(catalog.cachedInheritance("lone")).not.toBe("missing");
    catalog.invalidate();
    expect(catalog.cachedInheritance("lone")).toBe("missing");
    const r = await catalog.inheritance(["lone"]);
    expect(r.get("lone")?.[0]?.relatives.map((x) => x.name)).toEqual(["lone_child"]);
  });

  it("reads each view column's sources from the view's definition", async () => {
    const r = await catalog.viewLineage(["gv", "gvv", "g1"]);
    const gv = r.get("gv")?.[0];
    expect(gv?.columns).toEqual(["renamed", "a"]);
    expect(gv?.outputs?.map((o) => o.map((c) => `${c.relation ?? "?"}.${c.column}`))).toEqual([["g2.s"], ["g2.a"]]);
    expect(r.get("gvv")?.[0]?.outputs?.map((o) => o.map((c) => `${c.relation ?? "?"}.${c.column}`))).toEqual([["gv.renamed"]]);
    expect(r.get("g1")).toEqual([]);
  });
});
