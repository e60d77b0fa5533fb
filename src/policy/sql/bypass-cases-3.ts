/**
 * The third PERMANENT list of bypass attempts: the guardrail families of issue 12, each found
 * against a real PostgreSQL 15 with the effect checked on the target. Appended to BYPASS_CASES
 * (bypass-cases.ts), so the classifier, cache and wire suites run them. Add; never delete.
 *
 * - upserts and MERGE whose update reaches every row a table-wide source matches (`noWhere`);
 * - destructive ALTER sub-commands, matchable as `drop` (`ops`);
 * - aliases and equivalents of dangerous built-in functions (`matches`: a `functions` guard
 *   naming that function must hold, see function-families.ts);
 * - set_config() whose setting can't be known (`unknown`).
 */
import type { BypassCase } from "./bypass-cases.js";

export const BYPASS_CASES_3: readonly BypassCase[] = [
  // --- an upsert's update arm reaches what its source returns --------------------------------
  { trick: "INSERT … SELECT * FROM users ON CONFLICT DO UPDATE rewrites every row", sql: "INSERT INTO users SELECT * FROM users ON CONFLICT (id) DO UPDATE SET password = 'x'", ops: ["update"], noWhere: true },
  { trick: "upsert fed by TABLE", sql: "INSERT INTO users TABLE users ON CONFLICT (id) DO UPDATE SET name = excluded.name", ops: ["update"], noWhere: true },
  { trick: "upsert fed by a CTE", sql: "WITH src AS (SELECT * FROM users) INSERT INTO users SELECT * FROM src ON CONFLICT (id) DO UPDATE SET name = 'x'", noWhere: true },
  { trick: "upsert fed by WHERE true", sql: "INSERT INTO users SELECT * FROM users WHERE true ON CONFLICT (id) DO UPDATE SET name = 'x'", noWhere: true },
  { trick: "upsert fed by generate_series", sql: "INSERT INTO orders SELECT g, 0 FROM generate_series(1, 1000) g ON CONFLICT (id) DO UPDATE SET total = 0", noWhere: true },
  { trick: "upsert fed by a set-returning function in the target list", sql: "INSERT INTO orders SELECT generate_series(1, 1000), 0 ON CONFLICT (id) DO UPDATE SET total = 0", noWhere: true },
  { trick: "upsert fed by a UNION", sql: "INSERT INTO orders SELECT * FROM orders UNION SELECT 1, 0 ON CONFLICT (id) DO UPDATE SET total = 0", noWhere: true },
  { trick: "upsert with ON CONSTRAINT fed by a subquery", sql: "INSERT INTO orders SELECT * FROM (SELECT * FROM orders) q ON CONFLICT ON CONSTRAINT orders_pkey DO UPDATE SET total = 0", noWhere: true },
  { trick: "upsert inside a CTE", sql: "WITH x AS (INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET total = 0 RETURNING 1) SELECT count(*) FROM x", noWhere: true },
  { trick: "upsert fed by a LIMIT that covers the table", sql: "INSERT INTO orders SELECT * FROM orders LIMIT 1000000 ON CONFLICT (id) DO UPDATE SET total = 0", noWhere: true },
  { trick: "MERGE from a whole table", sql: "MERGE INTO orders o USING orders s ON o.id = s.id WHEN MATCHED THEN UPDATE SET total = 0", ops: ["update"], noWhere: true },
  { trick: "MERGE … WHEN NOT MATCHED BY SOURCE THEN DELETE", sql: "MERGE INTO orders o USING (SELECT 1 AS id) s ON o.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE", ops: ["delete"], noWhere: true },
  // --- destructive ALTER sub-commands are drops ----------------------------------------------
  { trick: "ALTER TABLE … DROP COLUMN is a drop", sql: "ALTER TABLE users DROP COLUMN password", ops: ["drop", "drop_column"], columns: ["users.password:write"] },
  { trick: "DROP COLUMN hidden after a harmless sub-command", sql: "ALTER TABLE orders ADD COLUMN note text, DROP COLUMN total", ops: ["drop", "drop_column"] },
  { trick: "ALTER COLUMN … TYPE … USING 0 overwrites every value", sql: "ALTER TABLE orders ALTER COLUMN total TYPE int USING 0", ops: ["drop", "alter_column_type"] },
  { trick: "SET DATA TYPE truncates", sql: "ALTER TABLE users ALTER name SET DATA TYPE varchar(1) USING left(name, 1)", ops: ["drop", "alter_column_type"] },
  { trick: "DROP CONSTRAINT", sql: "ALTER TABLE orders DROP CONSTRAINT orders_pkey", ops: ["drop", "drop_constraint"] },
  { trick: "ALTER DOMAIN … DROP CONSTRAINT", sql: "ALTER DOMAIN positive DROP CONSTRAINT positive_check", ops: ["drop", "drop_constraint"] },
  { trick: "DETACH PARTITION takes the rows out of the parent", sql: "ALTER TABLE orders DETACH PARTITION orders_2024", ops: ["drop", "detach_partition"] },
  { trick: "NO INHERIT takes the rows out of the parent", sql: "ALTER TABLE orders NO INHERIT old_orders", ops: ["drop", "no_inherit"] },
  { trick: "ALTER TYPE … DROP ATTRIBUTE CASCADE", sql: "ALTER TYPE address DROP ATTRIBUTE street CASCADE", ops: ["drop", "drop_column"] },
  // --- dangerous functions by what they are -------------------------------------------------
  { trick: "pg_read_file_old, an alias of pg_read_file", sql: "SELECT pg_read_file_old('/etc/passwd', 0, 200)", matches: ["pg_read_file"], refusedOnWire: true },
  { trick: "quoted, schema-qualified pg_read_file_old", sql: `SELECT "pg_catalog"."pg_read_file_old"('/etc/passwd', 0, 200)`, matches: ["pg_catalog.pg_read_file"], refusedOnWire: true },
  { trick: "pg_read_binary_file under a pg_read_file deny", sql: "SELECT convert_from(pg_read_binary_file('/etc/passwd'), 'UTF8')", matches: ["pg_read_file"], refusedOnWire: true },
  { trick: "pg_read_file_old as an operator's procedure", sql: "CREATE OPERATOR !!! (PROCEDURE = pg_read_file_old, LEFTARG = text, RIGHTARG = bigint)", matches: ["pg_read_file"], refusedOnWire: true },
  { trick: "pg_read_binary_file in attribute notation", sql: "SELECT ('/etc/passwd'::text).pg_read_binary_file", matches: ["pg_read_file"], refusedOnWire: true },
  { trick: "lo_export under a lo_import deny", sql: "SELECT lo_export(12345, '/tmp/x')", matches: ["lo_import"], refusedOnWire: true },
  { trick: "pg_sleep_for under a pg_sleep deny", sql: "SELECT pg_sleep_for('1 second')", matches: ["pg_sleep"], refusedOnWire: true },
  { trick: "pg_sleep_until under a pg_catalog.pg_sleep deny", sql: "SELECT pg_catalog.pg_sleep_until(now() + interval '1 second')", matches: ["pg_catalog.pg_sleep"], refusedOnWire: true },
  { trick: "pg_cancel_backend under a pg_terminate_backend deny", sql: "SELECT pg_cancel_backend(pg_backend_pid())", matches: ["pg_terminate_backend"], refusedOnWire: "main" },
  { trick: "dblink_exec under a dblink deny", sql: "SELECT dblink_exec('dbname=shop', 'DROP TABLE users')", matches: ["dblink"], unknown: true },
  // --- set_config whose setting can't be known -----------------------------------------------
  { trick: "set_config(name) over every setting", sql: "SELECT set_config(name, '0', false) FROM pg_settings", unknown: true },
  { trick: "set_config(name) with a LIKE pattern", sql: "SELECT set_config(name, '0', false) FROM pg_settings WHERE name LIKE 'statement%'", unknown: true },
  { trick: "set_config(name) with an OR", sql: "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem' OR name = 'search_path'", unknown: true },
  { trick: "set_config(name) from a CTE named pg_settings", sql: "WITH pg_settings AS (SELECT 'search_path' AS name) SELECT set_config(name, 'evil', false) FROM pg_settings WHERE name = 'search_path' OR true", unknown: true },
  { trick: "set_config(name) of a joined table's column", sql: "SELECT set_config(u.name, 'x', false) FROM pg_settings s, users u WHERE s.name = 'work_mem'", unknown: true },
  { trick: "set_config of standard_conforming_strings through pg_settings", sql: "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'standard_conforming_strings'", unknown: true },
];
