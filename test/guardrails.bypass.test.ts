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
]);
const DENIED_FUNCTIONS = ["pg_read_file", "pg_sleep", "lo_import", "lo_export", "dblink*", "pg_terminate_backend", "drop_everything", "evil", "f"];
const WRITE_OPS = new Set(["insert", "update", "delete", "merge"]);

function bare(fn: string): string {
  return fn.slice(fn.lastIndexOf(".") + 1);
}

/** Whether this suite's policies must refuse the case (by what the case says its facts are). */
function mustRefuse(c: BypassCase): boolean {
  if (c.refused === true || c.unknown === true || c.noWhere === true) return true;
  if (c.ops?.some((op) => DANGEROUS_OPS.has(op)) === true) return true;
  if (c.columns?.some((col) => col.startsWith("users.password:") || col.startsWith("public.users.password:")) === true) return true;
  if (c.functions?.some((f) => DENIED_FUNCTIONS.includes(bare(f))) === true) return true;
  const writesUsers = c.written?.some((r) => r === "users" || r === "public.users") === true;
  if (writesUsers && c.ops?.some((op) => WRITE_OPS.has(op)) === true) return true;
  return false;
}

const CASES = BYPASS_CASES.filter(mustRefuse);

let server: PgServer;
let t: TestGateway;
let token: string;

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256", superuser: true }], databases: ["shop"] });
  await server.psql(
    `create table users (id int primary key, name text, password text);
     insert into users values (1, 'ada', 'hunter2'), (2, 'bob', 'swordfish');
     create table orders (id int primary key, total int);
     insert into orders select g, g from generate_series(1, 10) g;
     alter table users owner to app; alter table orders owner to app;`,
    { database: "shop" },
  );
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", groups: ["agents"], sslmode: "disable" }],
    policies: [
      { name: "no-ddl", match: { operations: [...DANGEROUS_OPS] }, action: "deny" },
      { name: "no-user-writes", match: { operations: [...WRITE_OPS, "copy_from"], relations: ["users", "*.users"] }, action: "deny" },
      { name: "no-passwords", match: { columns: ["users.password"] }, action: "deny" },
      { name: "no-bulk", match: { operations: ["update", "delete"], noWhere: true }, action: "deny" },
      { name: "no-functions", match: { functions: DENIED_FUNCTIONS }, action: "deny" },
    ],
  });
  token = await t.mint("agent", "1h");
}, 120_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("bypass attempts through the wire are refused", () => {
  it("covers a meaningful part of the permanent list", () => {
    expect(CASES.length).toBeGreaterThan(60);
  });

  it.each(CASES.map((c) => [c.trick, c] as const))("%s", async (_trick, c) => {
    const client = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
    client.on("error", () => undefined);
    await client.connect();
    try {
      let error: { code?: string; message: string } | undefined;
      try {
        await client.query(c.sql);
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
  });

  it("left the target intact", async () => {
    const users = await server.psql("select string_agg(name || ':' || password, ',' order by id) from users", { database: "shop" });
    expect(users.trim()).toBe("ada:hunter2,bob:swordfish");
    expect((await server.psql("select count(*) from orders", { database: "shop" })).trim()).toBe("10");
  });
});
