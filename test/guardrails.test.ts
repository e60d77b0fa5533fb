/**
 * Guardrails, masking and limits end to end: real PostgreSQL, the gateway with policies, and
 * real clients (psql and node-postgres).
 */
import { readFileSync } from "node:fs";
import pg from "pg";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { rawSession } from "./harness/raw-pg.js";

let server: PgServer;
let t: TestGateway;
let token: string;
let dbaToken: string;

const CARD = "4111 1111 1111 1111";

function client(database: string, password: string, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database, user: "agent", password, ...extra });
  c.on("error", () => undefined);
  return c;
}

async function withClient<T>(database: string, fn: (c: pg.Client) => Promise<T>, password = token): Promise<T> {
  const c = client(database, password);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function refused(c: pg.Client, sql: string, values?: unknown[]): Promise<{ code?: string; message: string }> {
  try {
    await c.query(sql, values);
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error(`not refused: ${sql}`);
}

/** Log in with the raw protocol (extra start-up parameters), run one simple query, return what came back. */
async function rawQuery(startup: Record<string, string>, sql: string): Promise<string> {
  const out = await rawSession({ port: t.pgPort, database: "shop", password: token, bytes: serialize.query(sql), startup });
  return out.toString("latin1");
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table users (id int primary key, name text, password text);
     insert into users values (1, 'ada', 'hunter2'), (2, 'bob', 'swordfish');
     create view user_names as select id, name from users;
     create view user_secrets as select id, password as pw from users;
     create view nested_secrets as select * from user_secrets;
     create table customers (id int primary key, name text, email text, card_number text, notes text, meta jsonb);
     insert into customers select g, 'customer ' || g, 'c' || g || '@example.com', '${CARD}',
       'call me at +1 (415) 555-0' || lpad(g::text, 3, '0') || ' or mail c' || g || '@example.org',
       jsonb_build_object('contact', 'c' || g || '@example.net')
       from generate_series(1, 300) g;
     create table orders (id int primary key, customer_id int, total int);
     insert into orders select g, g, g * 10 from generate_series(1, 300) g;
     create schema evil;
     alter table users owner to app; alter table customers owner to app; alter table orders owner to app;
     alter view user_names owner to app; alter view user_secrets owner to app; alter view nested_secrets owner to app;
     alter schema evil owner to app;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "dba-bot", groups: ["dba"] },
    ],
    connections: [
      { ...conn, name: "shop", groups: ["agents", "dba"] },
      { ...conn, name: "shop_ro", groups: ["agents"] },
      { ...conn, name: "shop_open", groups: ["agents"] },
    ],
    policies: [
      { name: "dba-may-drop", connections: ["shop"], groups: ["dba"], match: { operations: ["drop_table"] }, action: "allow" },
      { name: "no-destructive-ddl", connections: ["shop", "shop_ro"], match: { operations: ["drop", "truncate"] }, action: "deny", message: "DROP and TRUNCATE are not allowed here" },
      { name: "no-passwords", connections: ["shop"], match: { columns: ["users.password"] }, action: "deny" },
      { name: "no-bulk-delete", connections: ["shop"], match: { operations: ["delete", "update"], noWhere: true }, action: "deny" },
      { name: "no-sleep", connections: ["shop"], match: { functions: ["pg_sleep", "pg_read_file"] }, action: "deny" },
      { name: "no-secrets-table", connections: ["shop"], match: { relations: ["public.secrets*"] }, action: "deny" },
      { name: "regex-guard", connections: ["shop"], match: { statementRegex: "forbidden_marker" }, action: "deny" },
      { name: "no-evil-tables", connections: ["shop"], match: { operations: ["create_table"], relations: ["evil.*"] }, action: "deny" },
      { name: "orders-writes-need-approval", connections: ["shop"], match: { operations: ["insert"], relations: ["orders"] }, action: "require_approval", approvers: ["dba"], mode: "async" },
      { name: "hide-pii", connections: ["shop", "shop_ro"], action: "mask", columns: ["customers.email"], detectors: ["credit_card", "email", "phone"], strategy: "redact" },
      { name: "hide-totals", connections: ["shop"], action: "mask", columns: ["orders.total"], strategy: "redact" },
      { name: "cap-rows", connections: ["shop"], match: { relations: ["orders"] }, action: "allow", maxRows: 50 },
      { name: "read-only", connections: ["shop_ro"], action: "allow", readOnly: true, statementTimeout: "1s" },
    ],
  });
  token = await t.mint("agent");
  dbaToken = await t.mint("dba-bot");
});

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("deny policies", () => {
  it("refuses DROP with 42501 naming the rule, and the session stays usable", async () => {
    await withClient("shop", async (c) => {
      const e = await refused(c, "drop table customers");
      expect(e.code).toBe("42501");
      expect(e.message).toBe("airlock: DROP and TRUNCATE are not allowed here (rule: no-destructive-ddl)");
      const r = await c.query<{ n: string }>("select count(*)::text as n from customers");
      expect(r.rows[0]?.n).toBe("300");
    });
  });

  it("lets an earlier allow rule win for its group (ordered, first match)", async () => {
    await server.psql("create table scratch (x int); alter table scratch owner to app", { database: "shop" });
    await withClient("shop", async (c) => expect((await refused(c, "drop table scratch")).code).toBe("42501"));
    await withClient("shop", async (c) => c.query("drop table scratch"), dbaToken);
    expect((await server.psql("select to_regclass('scratch') is null", { database: "shop" })).trim()).toBe("t");
  });

  it("refuses reading a guarded column however it is reached", async () => {
    await withClient("shop", async (c) => {
      for (const sql of [
        "select password from users",
        "select * from users",
        "select u.* from users u",
        "select row_to_json(u) from users u",
        'select "password" from "users"',
        "select (select password from users limit 1)",
        "update users set name = name where id = 1 returning *",
        "with x as (select * from public.users) select 1 from x",
        "table users",
      ]) {
        const e = await refused(c, sql);
        expect(e.code, sql).toBe("42501");
        expect(e.message, sql).toContain("no-passwords");
      }
      const ok = await c.query<{ name: string }>("select name from users order by id");
      expect(ok.rows.map((r) => r.name)).toEqual(["ada", "bob"]);
      const view = await c.query<{ name: string }>("select name from user_names order by id");
      expect(view.rows).toHaveLength(2);
      // Views are resolved against the target's catalog, nested ones included.
      for (const sql of ["select pw from user_secrets", "select * from public.nested_secrets", "select count(*) from (select pw from nested_secrets) s"]) {
        const e = await refused(c, sql);
        expect(e.message, sql).toContain("no-passwords");
      }
    });
  });

  it("refuses DELETE and UPDATE without WHERE, allows them with one", async () => {
    await withClient("shop", async (c) => {
      expect((await refused(c, "delete from orders")).message).toContain("no-bulk-delete");
      expect((await refused(c, "update customers set notes = null")).message).toContain("no-bulk-delete");
      expect((await refused(c, "with d as (delete from orders returning *) select count(*) from d")).message).toContain("no-bulk-delete");
      const r = await c.query("delete from orders where id = 300");
      expect(r.rowCount).toBe(1);
    });
  });

  it("matches functions, relations (schema-qualified, search_path aware) and regexes", async () => {
    await withClient("shop", async (c) => {
      expect((await refused(c, "select pg_sleep(0)")).message).toContain("no-sleep");
      expect((await refused(c, "select pg_catalog.pg_sleep(0)")).message).toContain("no-sleep");
      expect((await refused(c, "select pg_read_file('/etc/passwd')")).message).toContain("no-sleep");
      expect((await refused(c, "create table secrets_v2 (x int)")).message).toContain("no-secrets-table");
      await c.query("set search_path = evil, public");
      expect((await refused(c, "create table secrets (x int)")).message).toContain("no-secrets-table");
      expect((await refused(c, "select 1 as forbidden_marker")).message).toContain("regex-guard");
    });
  });

  it("resolves names with a search_path sent as a start-up parameter", async () => {
    const text = await rawQuery({ search_path: "evil" }, "create table sneaky (x int)");
    expect(text).toContain("42501");
    expect(text).toContain("no-evil-tables");
    expect((await server.psql("select to_regclass('evil.sneaky') is null", { database: "shop" })).trim()).toBe("t");
  });

  it("fails closed on statements whose effects cannot be known, or that cannot be parsed", async () => {
    await withClient("shop", async (c) => {
      for (const sql of ["do $$ begin perform 1; end $$", "copy customers to program 'cat > /tmp/x'", "selec 1", "select * from"]) {
        const e = await refused(c, sql);
        expect(e.code, sql).toBe("42501");
        expect(e.message, sql).toMatch(/^airlock: .*fail closed/);
      }
    });
  });

  it("refuses an async require_approval statement at once, naming the approval request and its approvers", async () => {
    await withClient("shop", async (c) => {
      const e = await refused(c, "insert into orders values (1000, 1, 1)");
      expect(e.code).toBe("42501");
      expect(e.message).toMatch(/approval apr_[a-z0-9]+ requested from dba/);
    });
    expect((await server.psql("select count(*) from orders where id = 1000", { database: "shop" })).trim()).toBe("0");
  });

  it("judges extended-protocol Parse; a denied prepared statement cannot be executed later", async () => {
    await withClient("shop", async (c) => {
      const e = await refused(c, { name: "drop-it", text: "drop table customers" } as unknown as string);
      expect(e.code).toBe("42501");
      // Re-running it either re-sends Parse (denied again) or only Bind/Execute, which the
      // target refuses because the statement was never created there.
      const again = await refused(c, { name: "drop-it", text: "drop table customers" } as unknown as string);
      expect(["42501", "26000"]).toContain(again.code);
      expect((await server.psql("select to_regclass('customers') is not null", { database: "shop" })).trim()).toBe("t");
      const ok = await c.query<{ n: number }>({ name: "fine", text: "select $1::int as n", values: [3] });
      expect(ok.rows[0]?.n).toBe(3);
    });
  });

  it("denies a whole multi-statement query when one statement is denied (none of it runs)", async () => {
    const r = await t.psql("shop", token, ["-c", "insert into customers (id) values (9999); drop table orders"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("airlock:");
    expect((await server.psql("select count(*) from customers where id = 9999", { database: "shop" })).trim()).toBe("0");
  });

  it("aborts the surrounding transaction like any error", async () => {
    const r = await t.psql("shop", token, ["-v", "ON_ERROR_STOP=0", "-At"], {
      input: "begin;\nupdate customers set name = 'changed' where id = 1;\ndrop table orders;\nselect 1;\ncommit;\nselect name from customers where id = 1;\n",
    });
    expect(r.stderr).toContain("DROP and TRUNCATE are not allowed here");
    expect(r.stderr).toContain("current transaction is aborted");
    expect(r.stdout.trim().split("\n").pop()).toBe("customer 1");
  });

  it("resolves PREPARE/EXECUTE", async () => {
    await withClient("shop", async (c) => {
      expect((await refused(c, "prepare p1 as delete from orders")).code).toBe("42501");
      expect((await refused(c, "execute p1")).message).toContain("fail closed");
      await c.query("prepare p2 as select count(*) from orders where id < $1");
      const r = await c.query<{ count: string }>("execute p2(10)");
      expect(r.rows[0]?.count).toBe("9");
    });
  });
});

describe("masking", () => {
  it("masks by column and by content detector, in text results", async () => {
    await withClient("shop", async (c) => {
      const r = await c.query<{ email: string; card_number: string; notes: string; name: string }>(
        "select name, email, card_number, notes from customers where id = 7",
      );
      const row = r.rows[0];
      expect(row?.name).toBe("customer 7");
      expect(row?.email).toBe("[EMAIL]");
      expect(row?.card_number).toBe("[CREDIT_CARD]");
      expect(row?.notes).not.toContain("c7@example.org");
      expect(row?.notes).not.toContain("555-0007");
      expect(row?.notes).toContain("[EMAIL]");
    });
  });

  it("masks expressions and aliases too (content detectors), and json values stay valid JSON", async () => {
    await withClient("shop", async (c) => {
      const r = await c.query<{ e: string; m: { contact: string } }>("select upper(email) as e, meta as m from customers where id = 2");
      expect(r.rows[0]?.e).not.toContain("C2@EXAMPLE.COM");
      expect(r.rows[0]?.m.contact).toBe("[EMAIL]");
    });
  });

  it("masks binary-format results for text columns", async () => {
    await withClient(
      "shop",
      async (c) => {
        const r = await c.query<{ email: string }>({ text: "select email from customers where id = $1", values: [5], binary: true } as pg.QueryConfig);
        expect(r.rows[0]?.email).toBe("[EMAIL]");
      },
      token,
    );
  });

  it("masks non-text columns as NULL, in binary and text formats, so typed clients keep working", async () => {
    await withClient("shop", async (c) => {
      const bin = await c.query<{ total: number | null; id: number }>({ text: "select total, id from orders where id = $1", values: [3], binary: true } as pg.QueryConfig);
      expect(bin.rows[0]).toEqual({ total: null, id: 3 });
      const plain = await c.query<{ total: number | null }>("select total from orders where id = 3");
      expect(plain.rows[0]?.total).toBeNull();
      // An expression named like the column carries no origin: matched by name, and text.
      const text = await c.query<{ total: string; id: number }>("select total::text as total, id from orders where id = 3");
      expect(text.rows[0]).toEqual({ total: "[REDACTED]", id: 3 });
    });
  });

  it("streams large masked results and masks COPY TO STDOUT by detector", async () => {
    const r = await t.psql("shop", token, ["-At", "-c", "select card_number from customers"]);
    expect(r.stdout.split("\n").filter((l) => l === "[CREDIT_CARD]")).toHaveLength(300);
    const copy = await t.psql("shop_ro", token, ["-c", "copy (select id, notes from customers where id < 4) to stdout"]);
    expect(copy.stdout).not.toContain("@example.org");
    expect(copy.stdout.split("\n")[0]).toMatch(/^1\t.*\[EMAIL\]/);
  });

  it("masks COPY TO under column masking (its columns are resolved; see postgres-copy-masking.test.ts)", async () => {
    const copy = await t.psql("shop", token, ["-c", "copy customers to stdout"]);
    expect(copy.code).toBe(0);
    expect(copy.stdout).not.toContain("@example.");
    expect(copy.stdout.split("\n").filter((l) => l.startsWith("1\t"))[0]?.split("\t")[2]).toBe("[EMAIL]");
  });

  it("records what the agent saw (masked) and audits counts, never values", async () => {
    await withClient("shop", async (c) => c.query("select email from customers where id = 11"));
    await new Promise((r) => setTimeout(r, 400));
    const files = readFileSync(`${t.dataDir}/audit/audit.log`, "utf8");
    expect(files).not.toContain("c11@example.com");
    expect(files).toContain('"masked.column:hide-pii"');
    const sessions = (await t.api("/v1/sessions?limit=200")).body as { sessions: { id: string }[] };
    const texts = await Promise.all(sessions.sessions.map(async (s) => (await t.api(`/v1/sessions/${s.id}`)).text));
    const all = texts.join("\n");
    expect(all).toContain("[EMAIL]");
    expect(all).not.toContain("c11@example.com");
    expect(all).not.toContain(CARD);
  });
});

describe("limits", () => {
  it("cuts results at maxRows with a notice, and cancels the statement", async () => {
    await withClient("shop", async (c) => {
      const notices: string[] = [];
      c.on("notice", (n) => notices.push(n.message ?? ""));
      const r = await c.query("select * from orders");
      expect(r.rows).toHaveLength(50);
      expect(notices.join("\n")).toContain("cut at 50 rows (rule: cap-rows)");
      const after = await c.query<{ n: number }>("select 1 as n");
      expect(after.rows[0]?.n).toBe(1);
      const big = await c.query("select o.* from orders o, generate_series(1, 2000)");
      expect(big.rows).toHaveLength(50);
      // The cancel sent for a cut result must never hit the statement after it.
      for (let i = 0; i < 25; i++) {
        const cut = await c.query("select o.* from orders o, generate_series(1, 200)");
        expect(cut.rows).toHaveLength(50);
        const next = await c.query<{ n: number }>("select $1::int as n", [i]);
        expect(next.rows[0]?.n).toBe(i);
      }
    });
  });

  it("injects read-only, refuses turning it off, and times statements itself (statement_timeout is the session's)", async () => {
    await withClient("shop_ro", async (c) => {
      const settings = await c.query<{ ro: string; st: string }>("select current_setting('default_transaction_read_only') as ro, current_setting('statement_timeout') as st");
      expect(settings.rows[0]).toEqual({ ro: "on", st: "0" });
      expect((await refused(c, "insert into orders values (5000, 1, 1)")).message).toContain("read-only");
      for (const sql of ["set default_transaction_read_only = off", "reset all", "begin read write", "set session characteristics as transaction read write", "select set_config('default_transaction_read_only', 'off', false)"]) {
        expect((await refused(c, sql)).code, sql).toBe("42501");
      }
      // The client may set its own statement_timeout; the gateway's timer still applies.
      await c.query("set statement_timeout = 0");
      const slow = await refused(c, "select count(*) from generate_series(1, 100000000)");
      expect(slow.code).toBe("57014");
      expect(slow.message).toMatch(/^airlock: statement timeout \(1s\) exceeded/);
      const ok = await c.query<{ n: number }>("select 1 as n");
      expect(ok.rows[0]?.n).toBe(1);
    });
  });
});

describe("a connection with no guard policies", () => {
  it("passes statements that deny policies elsewhere would refuse", async () => {
    await withClient("shop_open", async (c) => {
      const r = await c.query<{ password: string }>("select password from users where id = 1");
      expect(r.rows[0]?.password).toBe("hunter2");
    });
  });
});
