/**
 * The permanent bypass regression list (src/policy/sql/bypass-cases.ts), run through the real
 * wire path: each trick that a policy of this suite covers is sent by node-postgres through the
 * gateway to a real PostgreSQL and must be refused with 42501 — and the target must be intact
 * afterwards. (The same list also runs against the classifier alone, in classify.bypass.test.ts.)
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BYPASS_CASES, type BypassCase } from "../src/policy/sql/bypass-cases.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

const DANGEROUS_OPS = new Set([
  "drop", "drop_table", "truncate", "alter", "rename", "alter_role", "alter_system", "grant", "revoke", "set_role",
  "create_rule", "create_trigger", "create_function", "disable_trigger", "do", "call", "program", "copy_file", "copy_from",
  "create_extension",
]);
const DENIED_FUNCTIONS = ["pg_read_file", "pg_sleep", "lo_import", "lo_export", "dblink*", "pg_terminate_backend", "drop_everything", "evil", "f"];
const WRITE_OPS = new Set(["insert", "update", "delete", "merge"]);

function bare(fn: string): string {
  return fn.slice(fn.lastIndexOf(".") + 1);
}

/** Whether this suite's policies must refuse the case (by what the case says its facts are). */
function mustRefuse(c: BypassCase): boolean {
  if (c.refused === true || c.unknown === true || c.noWhere === true || c.refusedOnWire !== undefined) return true;
  if (c.ops?.some((op) => DANGEROUS_OPS.has(op)) === true) return true;
  // users.password, reached by name, as the whole row, or as a column of any relation.
  if (c.columns?.some((col) => /^(?:(?:[^.]+\.)?users\.(?:password|\*)|[?*]\.(?:password|\*)):/.test(col)) === true) return true;
  if (c.functions?.some((f) => DENIED_FUNCTIONS.includes(bare(f))) === true) return true;
  if (c.matches?.some((f) => DENIED_FUNCTIONS.includes(bare(f))) === true) return true;
  const writesUsers = c.written?.some((r) => r === "users" || r === "public.users") === true;
  if (writesUsers && c.ops?.some((op) => WRITE_OPS.has(op)) === true) return true;
  return false;
}

const CASES = BYPASS_CASES.filter(mustRefuse);

/**
 * A second, narrow policy set on its own connection ("narrow", the same database): only DROP
 * TABLE / TRUNCATE, reads of users.password, four functions and SET ROLE are denied. The carrier
 * of a hidden effect (CREATE FUNCTION, ALTER ROLE, CREATE OPERATOR, DROP OWNED, RENAME …) is
 * allowed here, so a refusal proves the classifier revealed what it hides.
 */
const NARROW_OPS = ["drop_table", "truncate", "set_role"];
const NARROW_FUNCTIONS = ["pg_read_file", "lo_import", "lo_export", "pg_sleep"];

function mustRefuseNarrow(c: BypassCase): boolean {
  if (c.refused === true || c.unknown === true || c.refusedOnWire === true) return true;
  if (c.ops?.some((op) => NARROW_OPS.includes(op)) === true) return true;
  if (c.columns?.some((col) => /^(?:(?:[^.]+\.)?users\.(?:password|\*)|[?*]\.(?:password|\*)):/.test(col)) === true) return true;
  return c.functions?.some((f) => NARROW_FUNCTIONS.includes(bare(f))) === true;
}

const NARROW_CASES = BYPASS_CASES.filter(mustRefuseNarrow);

let server: PgServer;
let t: TestGateway;
let token: string;

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256", superuser: true }], databases: ["shop", "vaultdb"] });
  await server.psql(
    `create table users (id int primary key, name text, password text);
     insert into users values (1, 'ada', 'hunter2'), (2, 'bob', 'swordfish');
     create table orders (id int primary key, total int);
     insert into orders select g, g from generate_series(1, 10) g;
     alter table users owner to app; alter table orders owner to app;
     create view users_v as select * from users;
     create view users_v2 (a, b, c) as select id, name, password from users;
     create view users_v3 as select id, upper(password) as shout from users;
     create view nested_v as select * from users_v2;
     create materialized view users_mv as select * from users;
     create schema shadow; create view shadow.uv as select password from users;
     create view names_v as select id, name from users; alter view names_v owner to app;
     alter view users_v owner to app; alter view users_v2 owner to app; alter view users_v3 owner to app;
     alter view nested_v owner to app; alter materialized view users_mv owner to app; alter view shadow.uv owner to app;
     alter schema shadow owner to app;
     -- A function over the row type: u.users_pw is users_pw(u) (attribute notation).
     create function users_pw(users) returns text language sql as 'select $1.password';
     -- A legacy role default: the gateway must still pin standard_conforming_strings on.
     alter role app set standard_conforming_strings = off;`,
    { database: "shop" },
  );
  // A database whose search_path default (not known to the gateway's config) reaches a guarded schema.
  await server.psql(
    `create schema secret; create table secret.vault (x text); insert into secret.vault values ('gold');
     create table plain (x int); alter schema secret owner to app; alter table secret.vault owner to app; alter table plain owner to app;
     alter database vaultdb set search_path = "$user", public, secret;`,
    { database: "vaultdb" },
  );
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", groups: ["agents"], sslmode: "disable" },
      { name: "narrow", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", groups: ["agents"], sslmode: "disable" },
      { name: "vault", type: "postgres", host: "127.0.0.1", port: server.port, database: "vaultdb", user: "app", password: "app-password", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [
      { name: "no-ddl", connections: ["shop"], match: { operations: [...DANGEROUS_OPS] }, action: "deny" },
      { name: "no-user-writes", connections: ["shop"], match: { operations: [...WRITE_OPS, "copy_from"], relations: ["users", "*.users"] }, action: "deny" },
      { name: "no-passwords", connections: ["shop"], match: { columns: ["users.password"] }, action: "deny" },
      { name: "no-bulk", connections: ["shop"], match: { operations: ["update", "delete"], noWhere: true }, action: "deny" },
      { name: "no-functions", connections: ["shop"], match: { functions: DENIED_FUNCTIONS }, action: "deny" },
      { name: "narrow-drop", connections: ["narrow"], match: { operations: NARROW_OPS }, action: "deny" },
      { name: "narrow-passwords", connections: ["narrow"], match: { columns: ["users.password"] }, action: "deny" },
      { name: "narrow-functions", connections: ["narrow"], match: { functions: NARROW_FUNCTIONS }, action: "deny" },
      { name: "no-vault", connections: ["vault"], match: { relations: ["secret.vault"] }, action: "deny" },
    ],
  });
  token = await t.mint("agent", "1h");
}, 120_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

/** Sends a case through the gateway on `connection` and expects an Airlock refusal. */
async function expectRefused(connection: string, c: BypassCase): Promise<void> {
  const client = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: connection, user: "agent", password: token });
  client.on("error", () => undefined);
  await client.connect();
  try {
    for (const b of c.before ?? []) await client.query(b).catch(() => undefined);
    let error: { code?: string; message: string } | undefined;
    try {
      if (c.params === undefined) await client.query(c.sql);
      else await client.query(c.sql, [...c.params]);
    } catch (e) {
      error = e as { code?: string; message: string };
    }
    expect(error, `not refused: ${c.sql}`).toBeDefined();
    // A malformed message (a NUL inside the text) is refused as PostgreSQL does: 08P01.
    expect(["42501", "08P01"], `${c.sql} → ${error?.message ?? ""}`).toContain(error?.code);
    expect(error?.message).toMatch(/^airlock: /);
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe("bypass attempts through the wire are refused", () => {
  it("covers a meaningful part of the permanent list", () => {
    expect(CASES.length).toBeGreaterThan(60);
  });

  it.each(CASES.map((c) => [c.trick, c] as const))("%s", async (_trick, c) => {
    await expectRefused("shop", c);
  });
});

describe("hidden effects are refused under a narrow policy set that allows their carrier", () => {
  it("covers the hidden-effect cases", () => {
    expect(NARROW_CASES.length).toBeGreaterThan(60);
  });

  it.each(NARROW_CASES.map((c) => [c.trick, c] as const))("%s", async (_trick, c) => {
    await expectRefused("narrow", c);
  });
});

/** A gateway client on `connection`; closed by the caller. */
async function connect(connection: string): Promise<pg.Client> {
  const client = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: connection, user: "agent", password: token });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

async function refusal(client: pg.Client, sql: string): Promise<{ code?: string; message: string } | undefined> {
  try {
    await client.query(sql);
    return undefined;
  } catch (e) {
    return e as { code?: string; message: string };
  }
}

describe("what only the target's catalog can tell", () => {
  it("refuses attribute notation that hands the row to an existing function (u.users_pw is users_pw(u))", async () => {
    for (const connection of ["shop", "narrow"]) {
      const client = await connect(connection);
      try {
        for (const sql of ["SELECT u.users_pw FROM users u", "SELECT (u).users_pw FROM users u", "SELECT 1 FROM users u WHERE u.users_pw LIKE 'h%'"]) {
          const e = await refusal(client, sql);
          expect(e?.code, `${connection}: ${sql}`).toBe("42501");
          expect(e?.message).toMatch(/^airlock: /);
        }
        // Real columns stay precise.
        const ok = await client.query<{ name: string }>("SELECT u.name FROM users u ORDER BY u.id");
        expect(ok.rows.map((r) => r.name)).toEqual(["ada", "bob"]);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  });

  it("sees a view created by another session right after it was looked up as a table (no stale cache)", async () => {
    const a = await connect("shop");
    const b = await connect("shop");
    try {
      // Looked up (and cached) as "not a view" …
      expect((await refusal(a, "SELECT * FROM v10"))?.code).toBe("42P01");
      expect((await refusal(b, "SELECT * FROM v10"))?.code).toBe("42P01");
      // … then created by one session, and written through by another at once.
      await a.query("CREATE VIEW v10 AS SELECT id, name FROM users");
      const e = await refusal(b, "INSERT INTO v10 VALUES (3, 'eve')");
      expect(e?.code).toBe("42501");
      expect(e?.message).toMatch(/^airlock: /);
    } finally {
      await a.end().catch(() => undefined);
      await b.end().catch(() => undefined);
      await server.psql("drop view if exists v10", { database: "shop" });
    }
  });

  it("sees a view created earlier in the same message or the same open transaction", async () => {
    const client = await connect("shop");
    try {
      expect((await refusal(client, "CREATE VIEW v11 AS SELECT id, name FROM users; INSERT INTO v11 VALUES (3, 'eve')"))?.code).toBe("42501");
      await client.query("BEGIN");
      await client.query("CREATE VIEW v12 AS SELECT id, name FROM users");
      expect((await refusal(client, "INSERT INTO v12 VALUES (3, 'eve')"))?.code).toBe("42501");
      await client.query("ROLLBACK");
    } finally {
      await client.end().catch(() => undefined);
    }
  });

  it("resolves bare names through the database's search_path default", async () => {
    // The target really does resolve the bare name there.
    expect((await server.psql("select x from vault", { database: "vaultdb" })).trim()).toBe("gold");
    const client = await connect("vault");
    try {
      const e = await refusal(client, "SELECT x FROM vault");
      expect(e?.code).toBe("42501");
      expect(e?.message).toMatch(/^airlock: /);
      expect((await client.query("SELECT x FROM plain")).rows).toEqual([]);
    } finally {
      await client.end().catch(() => undefined);
    }
  });
});

describe("the target reads statements as the gateway does", () => {
  it("pins standard_conforming_strings on although the role's default is off", async () => {
    const client = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
    client.on("error", () => undefined);
    await client.connect();
    try {
      const show = await client.query<{ standard_conforming_strings: string }>("SHOW standard_conforming_strings");
      expect(show.rows[0]?.standard_conforming_strings).toBe("on");
      // With it off, the server would read a backslash-quote as an escaped quote and run the DROP.
      const r = await client.query<{ s: string }>("SELECT 'a\\'\n'; DROP TABLE users; --' AS s");
      expect(r.rows[0]?.s).toBe("a\\; DROP TABLE users; --");
      await client.query("RESET standard_conforming_strings");
      const again = await client.query<{ standard_conforming_strings: string }>("SHOW standard_conforming_strings");
      expect(again.rows[0]?.standard_conforming_strings).toBe("on");
    } finally {
      await client.end().catch(() => undefined);
    }
  });

  it("left the target intact", async () => {
    const users = await server.psql("select string_agg(name || ':' || password, ',' order by id) from users", { database: "shop" });
    expect(users.trim()).toBe("ada:hunter2,bob:swordfish");
    expect((await server.psql("select count(*) from orders", { database: "shop" })).trim()).toBe("10");
  });
});
