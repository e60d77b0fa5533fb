/**
 * Unit tests for the fixes that came with the second bypass corpus (bypass-cases-2.ts): what
 * the new facts are, that they stay precise for ordinary statements, and that the cache never
 * answers one of these statements with the facts of a same-shaped harmless twin.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { classify, classifyDetailed, initSqlParser } from "./classify.js";
import type { StatementFacts } from "./facts.js";
import { ClassificationCache } from "./normalize.js";
import { one } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("attribute notation", () => {
  it("reads the whole row when a row-serialising function is written as a field", () => {
    expect(one("SELECT u.row_to_json FROM users u").columns).toContain("users.*:read");
    expect(one("SELECT (u).to_jsonb FROM users u").columns).toContain("users.*:read");
    expect(one("SELECT u.int4_out FROM users u").columns).toContain("users.*:read");
  });

  it("reports a field selection on a value as a possible call", () => {
    expect(one("SELECT ('/etc/passwd'::text).pg_read_file").functions).toEqual(["pg_read_file"]);
    expect(one("SELECT (u.name).lower FROM users u").functions).toEqual(["lower"]);
  });

  it("leaves ordinary qualified columns alone", () => {
    const s = one("SELECT u.name, users.id FROM users u, users");
    expect(s.columns).toEqual(["users.id:read", "users.name:read"]);
    expect(s.functions).toEqual([]);
  });
});

describe("column aliases", () => {
  it("report a renamed relation's columns as the whole row", () => {
    expect(one("SELECT c FROM users u(a, b, c)").columns).toEqual(["users.*:read"]);
    expect(one("SELECT j.d FROM (users JOIN orders USING (id)) AS j(a, b, c, d)").columns).toContain("users.*:read");
  });

  it("keep column names when only the table is aliased", () => {
    expect(one("SELECT u.name FROM users AS u").columns).toEqual(["users.name:read"]);
  });
});

describe("function bodies and definitions", () => {
  it("parses a SQL body given as a string", () => {
    const s = one("CREATE FUNCTION h() RETURNS void LANGUAGE sql AS $$ DROP TABLE users $$");
    expect(s.ops).toContain("drop_table");
    expect(s.written).toEqual(["users"]);
    expect(s.unknown).toBe(false);
  });

  it("fails closed on bodies in other languages, and on SQL bodies that don't parse", () => {
    expect(one("CREATE FUNCTION h() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 1; END'").facts.unknownEffects).toMatch(/plpgsql/);
    expect(one("CREATE FUNCTION h(text) RETURNS text LANGUAGE internal AS 'pg_read_file_all'").unknown).toBe(true);
    expect(one("CREATE FUNCTION h() RETURNS int LANGUAGE sql AS 'SELEC 1'").unknown).toBe(true);
  });

  it("reports functions named in CREATE OPERATOR / AGGREGATE / CAST and ALTER FUNCTION", () => {
    expect(one("CREATE OPERATOR ### (PROCEDURE = pg_read_file, RIGHTARG = text)").functions).toEqual(["pg_read_file"]);
    expect(one("CREATE AGGREGATE a(text) (SFUNC = textcat, STYPE = text)").functions).toEqual(["textcat"]);
    expect(one("CREATE CAST (text AS int) WITH FUNCTION f(text)").functions).toEqual(["f"]);
    expect(one("ALTER FUNCTION f(int) RENAME TO g").functions).toEqual(["f"]);
  });

  it("treats a parameter of a table's row type as a read of the whole row", () => {
    expect(one("CREATE FUNCTION h(u users, n int, t text) RETURNS int LANGUAGE sql AS 'SELECT 1'").columns).toEqual(["users.*:read"]);
    expect(one("CREATE FUNCTION h(n integer, t varchar, x jsonb) RETURNS int LANGUAGE sql AS 'SELECT 1'").columns).toEqual([]);
  });
});

describe("session and future-session settings", () => {
  it("treats set_config of role or session_authorization as SET ROLE", () => {
    expect(one("SELECT set_config('role', 'x', false)").ops).toContain("set_role");
    expect(one("SELECT set_config('session_authorization', 'x', false)").ops).toContain("set_role");
    expect(one("SELECT set_config('work_mem', '1MB', false)").ops).not.toContain("set_role");
  });

  it("fails closed on ALTER ROLE / DATABASE / SYSTEM … SET of settings the gateway relies on", () => {
    expect(one("ALTER ROLE r SET search_path = evil").unknown).toBe(true);
    expect(one("ALTER DATABASE d SET standard_conforming_strings = off").unknown).toBe(true);
    expect(one("ALTER DATABASE d SET standard_conforming_strings = on").unknown).toBe(false);
    expect(one("ALTER ROLE r SET client_encoding = 'UTF8'").unknown).toBe(false);
    expect(one("ALTER ROLE r SET work_mem = '1MB'").unknown).toBe(false);
    expect(one("ALTER ROLE r RESET search_path").unknown).toBe(false);
  });
});

describe("bulk destruction and data in the catalog", () => {
  it("reports DROP OWNED, CASCADE and TRUNCATE CASCADE as touching any relation", () => {
    expect(one("DROP OWNED BY r").written).toEqual(["*"]);
    expect(one("DROP TYPE t CASCADE").columns).toEqual(["*.*:write"]);
    expect(one("TRUNCATE a CASCADE").written).toEqual(["*", "a"]);
    expect(one("TRUNCATE a").written).toEqual(["a"]);
    expect(one("DROP TYPE t").written).toEqual([]);
  });

  it("reports a rename or schema move of a table as a write of all its columns", () => {
    expect(one("ALTER TABLE users RENAME TO people").columns).toEqual(["users.*:write"]);
    expect(one("ALTER TABLE users SET SCHEMA archive").columns).toEqual(["users.*:write"]);
  });

  it("reports reads of column statistics as reads of any column", () => {
    expect(one("SELECT most_common_vals FROM pg_catalog.pg_stats").columns).toContain("?.*:read");
    expect(one("SELECT * FROM other.pg_stats").columns).not.toContain("?.*:read");
  });

  it("fails closed on other connections and change streams", () => {
    expect(one("CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw").unknown).toBe(true);
    expect(one("SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)").unknown).toBe(true);
  });
});

describe("the cache never reuses these facts for a same-shaped statement", () => {
  const twins: readonly (readonly [string, string])[] = [
    ["CREATE FUNCTION h() RETURNS void LANGUAGE sql AS $$ SELECT 1 $$", "CREATE FUNCTION h() RETURNS void LANGUAGE sql AS $$ DROP TABLE users $$"],
    ["CREATE FUNCTION h() RETURNS void LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION h() RETURNS void LANGUAGE sql AS 'DELETE FROM users'"],
    ["ALTER ROLE r SET search_path = 'public'", "ALTER ROLE r SET search_path = 'evil'"],
    ["ALTER ROLE r SET standard_conforming_strings = 'on'", "ALTER ROLE r SET standard_conforming_strings = 'off'"],
    ["SELECT set_config('work_mem', '1MB', false)", "SELECT set_config('role', 'postgres', false)"],
  ];

  it.each(twins)("%s / %s", (harmless, harmful) => {
    expect(classifyDetailed(harmful).cacheable).toBe(false);
    const cache = new ClassificationCache(100);
    cache.classify(harmless);
    expect(cache.classify(harmful)).toEqual(classify(harmful));
    expect(cache.stats().hits).toBe(0);
  });
});

describe("views created in the same message", () => {
  it("report a later write through the new view as a write of its base relations", () => {
    const [create, insert] = statementsOfMessage("CREATE VIEW v AS SELECT id, name FROM users; INSERT INTO v VALUES (1, 'x')");
    expect(create?.relationsWritten).toEqual([{ name: "v" }]);
    expect(insert?.relationsWritten).toEqual([{ name: "v" }, { name: "users" }]);
    expect(insert?.columns).toContainEqual({ relation: { name: "users" }, column: "*", access: "write" });
  });

  it("leave statements before the view, and reads of it, alone", () => {
    const [before, , read] = statementsOfMessage("INSERT INTO v VALUES (1); CREATE VIEW v AS SELECT id FROM users; SELECT * FROM v");
    expect(before?.relationsWritten).toEqual([{ name: "v" }]);
    expect(read?.relationsWritten).toEqual([]);
  });
});

function statementsOfMessage(sql: string): readonly StatementFacts[] {
  const c = classify(sql);
  if (!c.ok) throw new Error(c.error);
  return c.statements;
}
