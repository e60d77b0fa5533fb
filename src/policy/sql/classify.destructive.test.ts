/**
 * Destructive ALTER sub-commands (issue 12): each is matchable by its own operation tag, and by
 * `drop`, so that a policy `operations: [drop]` denies ALTER TABLE … DROP COLUMN as it denies
 * DROP TABLE.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "./classify.js";
import { outcome, policySession } from "./evaluate.testing.js";
import { one } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("operation tags", () => {
  it.each([
    ["ALTER TABLE users DROP COLUMN password", "drop_column"],
    ["ALTER TABLE IF EXISTS ONLY public.users DROP COLUMN IF EXISTS password CASCADE", "drop_column"],
    ["ALTER TABLE users ALTER COLUMN password TYPE int USING 0", "alter_column_type"],
    ["ALTER TABLE users ALTER password SET DATA TYPE varchar(1)", "alter_column_type"],
    ["ALTER TABLE users DROP CONSTRAINT users_pkey", "drop_constraint"],
    ["ALTER TABLE users ALTER COLUMN name DROP DEFAULT", "drop_default"],
    ["ALTER TABLE users ALTER COLUMN name DROP NOT NULL", "drop_not_null"],
    ["ALTER TABLE users ALTER COLUMN total DROP EXPRESSION", "drop_expression"],
    ["ALTER TABLE users ALTER COLUMN id DROP IDENTITY IF EXISTS", "drop_identity"],
    ["ALTER TABLE users ALTER COLUMN total SET EXPRESSION AS (0)", "set_expression"],
    ["ALTER TABLE measurements DETACH PARTITION measurements_2024", "detach_partition"],
    ["ALTER TABLE users NO INHERIT people", "no_inherit"],
    ["ALTER FOREIGN TABLE remote_users DROP COLUMN password", "drop_column"],
    ["ALTER TYPE address DROP ATTRIBUTE street CASCADE", "drop_column"],
    ["ALTER DOMAIN email DROP CONSTRAINT email_check", "drop_constraint"],
    ["ALTER DOMAIN email DROP DEFAULT", "drop_default"],
    ["ALTER TABLE users ADD COLUMN x int, DROP COLUMN name", "drop_column"],
  ] as const)("%s → %s and drop", (sql, tag) => {
    const c = one(sql);
    expect(c.ops).toContain(tag);
    expect(c.ops).toContain("drop");
    expect(c.ops).toContain("alter");
  });

  it("leaves non-destructive sub-commands without drop", () => {
    for (const sql of [
      "ALTER TABLE users ADD COLUMN x int",
      "ALTER TABLE users ALTER COLUMN name SET DEFAULT 'x'",
      "ALTER TABLE users ALTER COLUMN name SET NOT NULL",
      "ALTER TABLE users RENAME COLUMN name TO full_name",
      "ALTER TABLE users OWNER TO someone",
      "ALTER DOMAIN email SET DEFAULT 'x'",
    ]) {
      expect(one(sql).ops, sql).not.toContain("drop");
    }
  });

  it("CASCADE reaches dependent objects of any name", () => {
    expect(one("ALTER TABLE users DROP COLUMN password CASCADE").written).toContain("*");
  });

  it("reports the column dropped or retyped as written", () => {
    expect(one("ALTER TABLE users DROP COLUMN password").columns).toContain("users.password:write");
    expect(one("ALTER TABLE users ALTER COLUMN password TYPE int USING 0").columns).toContain("users.password:write");
  });
});

describe("policies", () => {
  it("operations: [drop] denies destructive ALTERs, and a sub-command tag denies only its kind", () => {
    const judge = policySession([
      { name: "no-retype", match: { operations: ["alter_column_type"] }, action: "deny" },
      { name: "no-drop", match: { operations: ["drop"] }, action: "deny" },
    ]);
    expect(outcome(judge("ALTER TABLE users DROP COLUMN password"))).toBe("no-drop");
    expect(outcome(judge("ALTER TABLE users ALTER COLUMN password TYPE int USING 0"))).toBe("no-retype");
    expect(outcome(judge("ALTER TABLE users DROP CONSTRAINT users_pkey"))).toBe("no-drop");
    expect(outcome(judge("ALTER TABLE users ADD COLUMN x int"))).toBe("allow");
  });
});
