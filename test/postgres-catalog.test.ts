/**
 * The gateway's view of a target's catalog (src/protocols/postgres/catalog.ts) against a real
 * PostgreSQL: columns by relation name (attribute notation), search_path defaults (role,
 * database, role-in-database), and invalidation after DDL — including a lookup that was already
 * running when the catalog was invalidated, whose answer must not be cached.
 */
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresConnection } from "../src/core/connection.js";
import { PgCatalog, parseSearchPath } from "../src/protocols/postgres/catalog.js";
import { parseConfig } from "../src/runtime/config.js";
import { DirectDialer } from "../src/runtime/dialer.js";
import { resolveSecret } from "../src/secrets/resolve.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let server: PgServer;
let catalog: PgCatalog;

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table users (id int, name text, password text); alter table users owner to app;
     create schema archive; create table archive.users (id int);
     alter role app in database shop set search_path = "$user", public, "Odd ""Name""";
     alter database shop set search_path = public, dbwide;`,
    { database: "shop" },
  );
  const config = parseConfig({
    connections: [{ name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", groups: ["agents"], sslmode: "disable" }],
  });
  const conn = config.connections[0] as PostgresConnection;
  catalog = new PgCatalog(conn, { dialer: new DirectDialer(), resolveSecret, timeoutMs: 10_000, maxMessageBytes: 1 << 20 }, pino({ level: "silent" }));
}, 120_000);

afterAll(async () => {
  await catalog.close();
  await server.stop();
});

describe("PgCatalog", () => {
  it("lists the columns (system columns too) of every relation with a name, by schema", async () => {
    const cols = await catalog.columnsByName(["users", "nothing_here"]);
    const users = cols.get("users");
    expect([...(users?.get("public") ?? [])].sort()).toEqual(expect.arrayContaining(["ctid", "id", "name", "password", "xmin"]));
    expect([...(users?.get("archive") ?? [])]).toContain("id");
    expect(users?.get("archive")?.has("name")).toBe(false);
    expect(cols.get("nothing_here")?.size).toBe(0);
    expect(catalog.cachedColumns("users")).not.toBe("missing");
  });

  it("learns the search_path defaults that apply to the user and database", async () => {
    const path = await catalog.searchPath();
    expect(path).toEqual(expect.arrayContaining(["$user", "public", 'Odd "Name"', "dbwide"]));
    expect(catalog.cachedSearchPath()).not.toBe("missing");
  });

  it("forgets after invalidate(), and does not cache an answer from before it", async () => {
    await server.psql("create view v1 as select id from users; alter view v1 owner to app", { database: "shop" });
    const running = catalog.views([{ schema: "public", name: "v2" }]);
    catalog.invalidate();
    expect(catalog.cachedSearchPath()).toBe("missing");
    expect(catalog.cachedColumns("users")).toBe("missing");
    const answer = await running;
    expect(answer.get("public.v2")).toBeNull();
    // Started before the invalidation: used, not cached.
    expect(catalog.cachedView("public", "v2")).toBe("missing");
    const fresh = await catalog.views([{ schema: "public", name: "v1" }]);
    expect(fresh.get("public.v1")?.columns).toEqual([{ schema: "public", table: "users", column: "id" }]);
    expect(catalog.cachedView("public", "v1")).not.toBe("missing");
    // Learned search_path schemas are kept across invalidation (pooled sessions keep their default).
    expect(await catalog.searchPath()).toContain("dbwide");
  });
});

describe("parseSearchPath", () => {
  it("reads SHOW's format", () => {
    expect(parseSearchPath('"$user", public')).toEqual(["$user", "public"]);
    expect(parseSearchPath('Evil,  "My ""Schema""" , x')).toEqual(["evil", 'My "Schema"', "x"]);
    expect(parseSearchPath("")).toEqual([]);
    expect(parseSearchPath('"a,b", c')).toEqual(["a,b", "c"]);
  });
});
