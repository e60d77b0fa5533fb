/**
 * set_config() with a knowable setting (issue 12): pg_dump sends
 * `SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = …`; a
 * setting named by a constant, or pinned by the WHERE of pg_settings, is known; anything else
 * is an unknown effect, and protected settings stay protected under session limits.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "./classify.js";
import { outcome, policySession } from "./evaluate.testing.js";
import { one } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

const PG_DUMP = "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'";

describe("facts", () => {
  it.each([
    [PG_DUMP, ["restrict_nonsystem_relation_kind"]],
    ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE 'work_mem' = name", ["work_mem"]],
    ["SELECT set_config(s.name, 'x', false) FROM pg_catalog.pg_settings s WHERE s.name IN ('a', 'b') AND s.context = 'user'", ["a", "b"]],
    ["SELECT (SELECT set_config(name, '1MB', false)) FROM pg_settings WHERE name = 'work_mem'", ["work_mem"]],
    ["SELECT set_config('Work_Mem', '1MB', true)", ["work_mem"]],
  ] as const)("%s → %j", (sql, settings) => {
    const s = one(sql);
    expect(s.unknown).toBe(false);
    expect(s.facts.settings).toEqual(settings);
  });

  it("tracks search_path set through pg_settings like a constant one", () => {
    expect(one("SELECT set_config(name, 'evil, public', false) FROM pg_settings WHERE name = 'search_path'").facts.setsSearchPath).toEqual(["evil", "public"]);
    expect(one("SELECT set_config(name, current_user, false) FROM pg_settings WHERE name = 'search_path'").unknown).toBe(true);
  });

  it.each([
    "SELECT set_config(name, 'x', false) FROM pg_settings",
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name LIKE 'search%'",
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem' OR true",
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE NOT name = 'work_mem'",
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name <> 'work_mem'",
    "SELECT set_config(name, 'x', false) FROM pg_settings, users WHERE name = 'work_mem'",
    "SELECT set_config(setting, 'x', false) FROM pg_settings WHERE name = 'work_mem'",
    "SELECT set_config(name || '', 'x', false) FROM pg_settings WHERE name = 'work_mem'",
    "SELECT set_config(u.name, 'x', false) FROM pg_settings s, users u WHERE s.name = 'work_mem'",
    "WITH pg_settings AS (SELECT 'search_path' AS name) SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem'",
    "SELECT set_config(name, 'x', false) FROM evil.pg_settings WHERE name = 'work_mem'",
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name OPERATOR(evil.=) 'work_mem'",
    "SELECT set_config(current_setting('x.y'), 'x', false)",
    "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'standard_conforming_strings'",
  ])("%s is an unknown effect", (sql) => {
    expect(one(sql).unknown).toBe(true);
  });
});

describe("policies", () => {
  it("a deny policy lets pg_dump's set_config through, and refuses an unknowable one", () => {
    const judge = policySession([{ name: "no-drop", match: { operations: ["drop"] }, action: "deny" }]);
    expect(outcome(judge(PG_DUMP))).toBe("allow");
    expect(outcome(judge("SELECT pg_catalog.set_config('search_path', '', false)"))).toBe("allow");
    expect(outcome(judge("SELECT set_config(name, 'x', false) FROM pg_settings WHERE name LIKE 'r%'"))).toBe("fail-closed");
  });

  it("session limits allow unprotected settings and refuse protected ones", () => {
    const judge = policySession([{ name: "limits", action: "allow", statementTimeout: "30s", readOnly: true }]);
    expect(outcome(judge(PG_DUMP))).toBe("allow");
    expect(outcome(judge("SELECT set_config('work_mem', '64kB', false)"))).toBe("allow");
    for (const setting of ["default_transaction_read_only", "transaction_read_only", "search_path", "role", "session_authorization"]) {
      expect(outcome(judge(`SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = '${setting}'`)), setting).toBe("limits");
      expect(outcome(judge(`SELECT set_config('${setting}', 'x', false)`)), setting).toBe("limits");
    }
    // The engine times a statementTimeout itself: statement_timeout is the session's to set.
    expect(outcome(judge("SELECT set_config('statement_timeout', '0', false)"))).toBe("allow");
  });

  it("a statementTimeout alone refuses no setting: pg_dump's and pg_restore's preamble passes", () => {
    const judge = policySession([{ name: "limits", action: "allow", statementTimeout: "30s" }]);
    for (const sql of [PG_DUMP, "SET statement_timeout = 0", "SELECT pg_catalog.set_config('search_path', '', false)", "RESET ALL", "SELECT set_config('statement_timeout', '0', false)"]) {
      expect(outcome(judge(sql)), sql).toBe("allow");
    }
  });
});
