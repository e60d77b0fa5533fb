/**
 * Functions by what they are (issue 12): a `functions` guard naming one member of a dangerous
 * family holds for every member — aliases such as pg_read_file_old, binary variants, one
 * function per directory, lock variants —, schema-qualified or not, quoted or not.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "./classify.js";
import { outcome, policySession } from "./evaluate.testing.js";
import { familiesOf, FUNCTION_FAMILIES } from "./function-families.js";
import { one } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("the family table", () => {
  it("names each family once, with lower-case members listed once", () => {
    const names = FUNCTION_FAMILIES.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const f of FUNCTION_FAMILIES) {
      expect(new Set(f.members).size, f.name).toBe(f.members.length);
      for (const m of f.members) expect(m, f.name).toBe(m.toLowerCase());
    }
  });

  it("puts the known aliases beside the names policies use", () => {
    const family = (fn: string): string[] => familiesOf(fn).map((f) => f.name);
    expect(family("pg_read_file_old")).toEqual(["server_file_read"]);
    expect(family("PG_READ_BINARY_FILE")).toEqual(["server_file_read"]);
    expect(family("lo_import")).toEqual(["server_file_read", "large_object_server_io"]);
    expect(family("pg_ls_waldir")).toEqual(["server_file_list"]);
    expect(family("pg_logfile_rotate")).toEqual(["backend_signal"]);
    expect(family("pg_sleep_until")).toEqual(["sleep"]);
    expect(family("lower")).toEqual([]);
  });
});

describe("facts", () => {
  it("carry the family and its other members, qualified as the call was", () => {
    const s = one(`SELECT "pg_catalog"."pg_read_file_old"('/etc/passwd', 0, 100)`);
    expect(s.functions).toEqual(["pg_catalog.pg_read_file_old"]);
    expect(s.facts.functionFamilies).toEqual(["server_file_read"]);
    expect(s.facts.equivalentFunctions).toContain("pg_catalog.pg_read_file");
    expect(s.facts.equivalentFunctions).toContain("pg_catalog.pg_read_binary_file");
    expect(s.facts.equivalentFunctions).not.toContain("pg_catalog.pg_read_file_old");
  });

  it("find members however they are called: FROM, attribute notation, DDL options, nested SQL", () => {
    for (const sql of [
      "SELECT * FROM pg_ls_logdir()",
      "SELECT ('/etc/passwd'::text).pg_read_binary_file",
      "CREATE OPERATOR ### (PROCEDURE = pg_read_file_old, RIGHTARG = text)",
      "SELECT query_to_xml('select pg_read_binary_file(''/etc/passwd'')', true, true, '')",
      "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT pg_read_file_old(''/etc/passwd'', 0, 10)'",
    ]) {
      const s = one(sql);
      expect(s.facts.functionFamilies ?? [], sql).toContain(sql.includes("ls_logdir") ? "server_file_list" : "server_file_read");
    }
  });

  it("leave ordinary functions alone", () => {
    const s = one("SELECT lower(name), count(*) FROM users GROUP BY 1");
    expect(s.facts.functionFamilies).toBeUndefined();
    expect(s.facts.equivalentFunctions).toBeUndefined();
  });
});

describe("a functions guard", () => {
  const judge = policySession([
    { name: "no-files", match: { functions: ["pg_read_file", "pg_ls_dir", "lo_export"] }, action: "deny" },
    { name: "no-sleep", match: { functions: ["pg_catalog.pg_sleep"] }, action: "deny" },
    { name: "no-locks", match: { functions: ["pg_advisory_lock"] }, action: "deny" },
    { name: "no-kill", match: { functions: ["pg_terminate_backend"] }, action: "deny" },
  ]);

  it.each([
    ["SELECT pg_read_file_old('/etc/passwd', 0, 100)", "no-files"],
    ["SELECT pg_catalog.pg_read_file_old('/etc/passwd', 0, 100)", "no-files"],
    [`SELECT "pg_read_file_old"('/etc/passwd', 0, 100)`, "no-files"],
    ["SELECT pg_read_binary_file('/etc/passwd')", "no-files"],
    ["SELECT convert_from(pg_catalog.pg_read_binary_file('/etc/passwd'), 'utf8')", "no-files"],
    ["SELECT lo_import('/etc/passwd')", "no-files"],
    ["SELECT * FROM pg_ls_waldir()", "no-files"],
    ["SELECT * FROM pg_catalog.pg_ls_tmpdir()", "no-files"],
    ["SELECT pg_stat_file('postgresql.conf')", "no-files"],
    ["SELECT pg_file_write('/tmp/x', 'y', false)", "no-files"],
    ["SELECT pg_sleep_for('1 minute')", "no-sleep"],
    ["SELECT pg_sleep_until(now() + interval '1 minute')", "no-sleep"],
    ["SELECT pg_try_advisory_xact_lock(1)", "no-locks"],
    ["SELECT pg_advisory_unlock_all()", "no-locks"],
    ["SELECT pg_cancel_backend(123)", "no-kill"],
    ["SELECT lower('x')", "allow"],
    ["SELECT * FROM pg_stat_activity", "allow"],
  ] as const)("%s → %s", (sql, expected) => {
    expect(outcome(judge(sql))).toBe(expected);
  });
});
