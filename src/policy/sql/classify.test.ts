import { beforeAll, describe, expect, it } from "vitest";
import { classify, classifyDetailed, initSqlParser, MAX_SQL_BYTES } from "./classify.js";
import { MAX_SQL_DEPTH } from "./limits.js";
import { genericTag, staticTags } from "./operations.js";
import { one, statementsOf } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("operation tags", () => {
  // [statement, exact operations]
  const cases: readonly (readonly [string, readonly string[]])[] = [
    ["SELECT 1", ["select"]],
    ["TABLE users", ["select"]],
    ["VALUES (1), (2)", []],
    ["INSERT INTO t VALUES (1)", ["insert"]],
    ["INSERT INTO t SELECT * FROM u", ["insert", "select"]],
    ["UPDATE t SET a = 1 WHERE id = 2", ["update"]],
    ["DELETE FROM t WHERE id = 2", ["delete"]],
    ["MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING", ["merge"]],
    ["COPY t TO STDOUT", ["copy", "copy_to", "select"]],
    ["COPY t FROM STDIN", ["copy", "copy_from", "insert"]],
    ["COPY t FROM '/tmp/x'", ["copy", "copy_file", "copy_from", "insert"]],
    ["COPY t TO PROGRAM 'gzip > /tmp/x'", ["copy", "copy_to", "program", "select"]],
    ["COPY (SELECT 1) TO STDOUT", ["copy", "copy_to", "select"]],
    ["TRUNCATE t", ["truncate"]],
    ["CREATE TABLE t (a int)", ["create", "create_table"]],
    ["CREATE TEMP TABLE t (a int)", ["create", "create_table"]],
    ["CREATE FOREIGN TABLE f (a int) SERVER s", ["create", "create_foreign_table"]],
    ["CREATE TABLE t AS SELECT 1", ["create", "create_table", "select"]],
    ["SELECT 1 INTO t", ["create", "create_table", "select"]],
    ["CREATE MATERIALIZED VIEW m AS SELECT 1", ["create", "create_materialized_view", "select"]],
    ["CREATE VIEW v AS SELECT 1", ["create", "create_view", "select"]],
    ["CREATE INDEX i ON t (a)", ["create", "create_index"]],
    ["CREATE SEQUENCE s", ["create", "create_sequence"]],
    ["CREATE SCHEMA s", ["create", "create_schema"]],
    ["CREATE DATABASE d", ["create", "create_database"]],
    ["CREATE ROLE r", ["create", "create_role"]],
    ["CREATE USER u", ["create", "create_role", "create_user"]],
    ["CREATE EXTENSION hstore", ["create", "create_extension"]],
    // A SQL body given as a string is parsed: its operations are the function's.
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", ["create", "create_function", "select"]],
    ["CREATE PROCEDURE p() LANGUAGE sql AS 'select 1'", ["create", "create_procedure", "select"]],
    ["CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", ["create", "create_trigger"]],
    ["CREATE RULE r AS ON INSERT TO t DO NOTHING", ["create", "create_rule"]],
    ["CREATE POLICY p ON t USING (true)", ["create", "create_policy"]],
    ["CREATE TYPE ty AS (a int)", ["create", "create_type"]],
    ["CREATE TYPE e AS ENUM ('a')", ["create", "create_type"]],
    ["CREATE DOMAIN d AS int", ["create", "create_domain"]],
    ["CREATE AGGREGATE agg (int) (sfunc = int4pl, stype = int)", ["create", "create_aggregate"]],
    ["CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION f()", ["create", "create_event_trigger"]],
    ["CREATE SERVER s FOREIGN DATA WRAPPER w", ["create", "create_server"]],
    ["CREATE PUBLICATION p FOR ALL TABLES", ["create", "create_publication"]],
    ["ALTER TABLE t ADD COLUMN b int", ["alter", "alter_table"]],
    ["ALTER INDEX i SET TABLESPACE x", ["alter", "alter_index"]],
    ["ALTER VIEW v OWNER TO r", ["alter", "alter_owner", "alter_view"]],
    ["ALTER FUNCTION f() OWNER TO r", ["alter", "alter_function", "alter_owner"]],
    ["ALTER ROLE r SUPERUSER", ["alter", "alter_role"]],
    ["ALTER ROLE r SET search_path = evil", ["alter", "alter_role", "set"]],
    ["ALTER DATABASE d SET work_mem = '1GB'", ["alter", "alter_database", "set"]],
    ["ALTER SEQUENCE s RESTART", ["alter", "alter_sequence"]],
    ["ALTER SYSTEM SET work_mem = '1GB'", ["alter", "alter_system"]],
    ["ALTER TABLE t RENAME TO u", ["alter", "alter_table", "rename"]],
    ["ALTER TABLE t RENAME COLUMN a TO b", ["alter", "alter_table", "rename"]],
    ["ALTER SCHEMA s RENAME TO t", ["alter", "alter_schema", "rename"]],
    ["ALTER TABLE t SET SCHEMA s", ["alter", "alter_table"]],
    ["ALTER TABLE t DISABLE TRIGGER ALL", ["alter", "alter_table", "disable_trigger"]],
    ["ALTER TABLE t DISABLE ROW LEVEL SECURITY", ["alter", "alter_table", "disable_row_security"]],
    ["ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r", ["alter", "alter_default_privileges", "grant"]],
    ["DROP TABLE t", ["drop", "drop_table"]],
    ["DROP VIEW v", ["drop", "drop_view"]],
    ["DROP MATERIALIZED VIEW m", ["drop", "drop_materialized_view"]],
    ["DROP INDEX i", ["drop", "drop_index"]],
    ["DROP SEQUENCE s", ["drop", "drop_sequence"]],
    ["DROP FUNCTION f()", ["drop", "drop_function"]],
    ["DROP SCHEMA s CASCADE", ["drop", "drop_schema", "drop_table"]],
    ["DROP DATABASE d", ["drop", "drop_database"]],
    ["DROP ROLE r", ["drop", "drop_role"]],
    ["DROP EXTENSION e", ["drop", "drop_extension"]],
    ["DROP TRIGGER tr ON t", ["drop", "drop_trigger"]],
    ["DROP OWNED BY r", ["drop", "drop_owned", "drop_table"]],
    ["REASSIGN OWNED BY r TO s", ["reassign_owned"]],
    ["GRANT SELECT ON t TO r", ["grant"]],
    ["REVOKE SELECT ON t FROM r", ["revoke"]],
    ["GRANT admin TO r", ["grant", "grant_role"]],
    ["REVOKE admin FROM r", ["revoke", "revoke_role"]],
    ["SET work_mem = '1GB'", ["set"]],
    ["SET ROLE admin", ["set", "set_role"]],
    ["SET SESSION AUTHORIZATION admin", ["set", "set_role"]],
    ["RESET work_mem", ["reset"]],
    ["RESET ALL", ["reset"]],
    ["SHOW work_mem", ["show"]],
    ["SET CONSTRAINTS ALL DEFERRED", ["set_constraints"]],
    ["DO $$ BEGIN END $$", ["do"]],
    ["CALL p(1)", ["call"]],
    ["PREPARE q AS SELECT 1", ["prepare", "select"]],
    ["EXECUTE q", ["execute"]],
    ["DEALLOCATE q", ["deallocate"]],
    ["DEALLOCATE ALL", ["deallocate"]],
    ["LISTEN c", ["listen"]],
    ["NOTIFY c, 'x'", ["notify"]],
    ["UNLISTEN *", ["unlisten"]],
    ["VACUUM t", ["vacuum"]],
    ["VACUUM (ANALYZE) t", ["analyze", "vacuum"]],
    ["VACUUM (ANALYZE false) t", ["vacuum"]],
    ["ANALYZE t", ["analyze"]],
    ["CLUSTER t USING i", ["cluster"]],
    ["REINDEX TABLE t", ["reindex"]],
    ["LOCK TABLE t IN ACCESS EXCLUSIVE MODE", ["lock"]],
    ["EXPLAIN SELECT 1", ["explain"]],
    ["BEGIN", ["begin"]],
    ["START TRANSACTION", ["begin"]],
    ["COMMIT", ["commit"]],
    ["ROLLBACK", ["rollback"]],
    ["SAVEPOINT a", ["savepoint"]],
    ["RELEASE a", ["release"]],
    ["ROLLBACK TO SAVEPOINT a", ["rollback_to_savepoint"]],
    ["PREPARE TRANSACTION 'x'", ["prepare_transaction"]],
    ["COMMIT PREPARED 'x'", ["commit_prepared"]],
    ["ROLLBACK PREPARED 'x'", ["rollback_prepared"]],
    ["DECLARE c CURSOR FOR SELECT 1", ["declare", "select"]],
    ["FETCH 5 FROM c", ["fetch"]],
    ["MOVE c", ["move"]],
    ["CLOSE c", ["close"]],
    ["DISCARD ALL", ["discard"]],
    ["CHECKPOINT", ["checkpoint"]],
    ["LOAD 'auto_explain'", ["load"]],
    ["SECURITY LABEL ON TABLE t IS 'x'", ["security_label"]],
    ["COMMENT ON TABLE t IS 'x'", ["comment"]],
    ["REFRESH MATERIALIZED VIEW m", ["refresh_materialized_view"]],
    ["IMPORT FOREIGN SCHEMA s FROM SERVER x INTO y", ["create", "create_foreign_table", "import_foreign_schema"]],
    ["SELECT 1 FROM t FOR UPDATE", ["lock_rows", "select"]],
    ["SELECT 1 FROM t FOR SHARE SKIP LOCKED", ["lock_rows", "select"]],
    ["CREATE STATISTICS st ON a, b FROM t", ["create", "create_statistics"]],
    ["CREATE OPERATOR === (leftarg = int, rightarg = int, procedure = int4eq)", ["create", "create_operator"]],
    ["CREATE TEXT SEARCH CONFIGURATION c (copy = english)", ["create", "create_text_search_configuration"]],
    ["ALTER TEXT SEARCH CONFIGURATION c OWNER TO r", ["alter", "alter_owner", "alter_text_search_configuration"]],
  ];
  it.each(cases)("%s", (sql, ops) => {
    expect(one(sql).ops).toEqual(ops);
  });

  it("tags statements nobody mapped with a name derived from the node", () => {
    // ReplicaIdentityStmt has no entry of its own: it reaches the generic path.
    expect(one("ALTER TABLE t REPLICA IDENTITY FULL").ops).toEqual(["alter", "alter_table", "replica_identity"]);
    // A statement type a future PostgreSQL might add:
    expect(staticTags("AlterQuantumFluxStmt", {})).toEqual(["alter_quantum_flux"]);
    expect(genericTag("CreateFooBarStmt")).toBe("create_foo_bar");
  });
});

describe("relations", () => {
  it("reports schema-qualified and quoted names as PostgreSQL folds them", () => {
    const s = one('SELECT * FROM public.users, "Public"."Users", USERS, "users"');
    // sorted: unqualified names first, then by schema and name (code-unit order)
    expect(s.read).toEqual(["users", "Public.Users", "public.users"]);
  });

  it("separates reads from writes", () => {
    const s = one("INSERT INTO archive SELECT * FROM orders WHERE id IN (SELECT order_id FROM refunds)");
    expect(s.written).toEqual(["archive"]);
    expect(s.read).toEqual(["orders", "refunds"]);
  });

  it("does not report CTE names as relations, but a CTE's own body reads the real table", () => {
    expect(one("WITH users AS (SELECT 1 AS x) SELECT * FROM users").read).toEqual([]);
    expect(one("WITH users AS (SELECT * FROM users) SELECT * FROM users").read).toEqual(["users"]);
    // In WITH RECURSIVE the name refers to the CTE itself everywhere.
    expect(one("WITH RECURSIVE users AS (SELECT * FROM users) SELECT * FROM users").read).toEqual([]);
    // A schema-qualified name is never a CTE.
    expect(one("WITH users AS (SELECT 1) SELECT * FROM public.users").read).toEqual(["public.users"]);
    // A CTE in a subquery does not shadow a table outside it.
    expect(one("SELECT * FROM (WITH users AS (SELECT 1) SELECT * FROM users) s, users").read).toEqual(["users"]);
    // Later CTEs see earlier ones, earlier ones don't see later ones.
    expect(one("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b").read).toEqual(["b"]);
  });

  it("never treats a DML target as a CTE", () => {
    expect(one("WITH users AS (SELECT 1) DELETE FROM users").written).toEqual(["users"]);
    expect(one("WITH users AS (SELECT 1) UPDATE users SET a = 1").written).toEqual(["users"]);
    expect(one("WITH users AS (SELECT 1) INSERT INTO users VALUES (1)").written).toEqual(["users"]);
  });

  it("reports both names of a rename and the target schema of SET SCHEMA", () => {
    expect(one("ALTER TABLE public.users RENAME TO x").written).toEqual(["public.users", "public.x"]);
    expect(one("ALTER TABLE users SET SCHEMA archive").written).toEqual(["users", "archive.users"]);
    expect(one("ALTER SCHEMA app RENAME TO old").written).toEqual(["app.*", "old.*"]);
  });

  it("reports DROP, TRUNCATE, GRANT and maintenance targets as written, LOCK as read", () => {
    expect(one("DROP TABLE a, s.b").written).toEqual(["a", "s.b"]);
    expect(one("DROP RULE r ON s.t").written).toEqual(["s.t"]);
    expect(one("DROP SCHEMA app CASCADE").written).toEqual(["app.*"]);
    expect(one("TRUNCATE a, b").written).toEqual(["a", "b"]);
    expect(one("GRANT SELECT ON a, s.b TO r").written).toEqual(["a", "s.b"]);
    expect(one("GRANT ALL ON ALL TABLES IN SCHEMA app TO r").written).toEqual(["app.*"]);
    expect(one("GRANT USAGE ON SCHEMA app TO r").written).toEqual([]);
    expect(one("VACUUM a, b").written).toEqual(["a", "b"]);
    expect(one("REFRESH MATERIALIZED VIEW m").written).toEqual(["m"]);
    expect(one("LOCK a").read).toEqual(["a"]);
    expect(one("COMMENT ON TABLE s.t IS 'x'").written).toEqual(["s.t"]);
  });

  it("reports relations behind DDL: FK references, LIKE, INHERITS, PARTITION OF", () => {
    const s = one("CREATE TABLE t (a int REFERENCES users(id), LIKE tmpl) INHERITS (base)");
    expect(s.written).toEqual(["t"]);
    expect(s.read).toEqual(["base", "tmpl", "users"]);
    expect(one("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)").written).toEqual(["p", "p1"]);
    expect(one("ALTER TABLE p ATTACH PARTITION p2 FOR VALUES IN (2)").written).toEqual(["p", "p2"]);
  });

  it("reports regclass literals and sequence functions", () => {
    expect(one("SELECT 'users'::regclass, 'S.\"T\"'::pg_catalog.regclass").read).toEqual(["users", "s.T"]);
    expect(one("SELECT 16384::regclass").read).toEqual([]);
    expect(one("SELECT regclass('users'), to_regclass('public.orders')").read).toEqual(["users", "public.orders"]);
    const s = one("SELECT nextval('s1'), setval('s2', 1), currval('s3')");
    expect(s.written).toEqual(["s1", "s2"]);
    expect(s.read).toEqual(["s3"]);
  });

  it("places relations created TEMP in pg_temp", () => {
    expect(one("CREATE TEMP TABLE users (a int)").written).toEqual(["pg_temp.users"]);
    expect(one("CREATE TEMPORARY VIEW users AS SELECT * FROM secrets").written).toEqual(["pg_temp.users"]);
    expect(one("SELECT * INTO TEMP t FROM users").written).toEqual(["pg_temp.t"]);
    expect(one("CREATE TABLE users (a int)").written).toEqual(["users"]);
  });

  it("reports a view as a relation (the caller resolves views)", () => {
    const s = one("CREATE VIEW v AS SELECT password FROM users");
    expect(s.written).toEqual(["v"]);
    expect(s.read).toEqual(["users"]);
    expect(one("SELECT * FROM v").read).toEqual(["v"]);
  });
});

describe("columns", () => {
  it("resolves qualified and unqualified columns through aliases", () => {
    const s = one("SELECT u.email, name FROM users u WHERE u.id = 1");
    expect(s.columns).toEqual(["users.email:read", "users.id:read", "users.name:read"]);
  });

  it("reports an unqualified column for every candidate relation", () => {
    const s = one("SELECT password FROM users, orders");
    expect(s.columns).toEqual(["orders.password:read", "users.password:read"]);
  });

  it("resolves correlated references through outer levels", () => {
    const s = one("SELECT (SELECT max(o.total) FROM orders o WHERE o.user_id = u.id) FROM users u");
    expect(s.columns).toEqual(["orders.total:read", "orders.user_id:read", "users.id:read"]);
    // unqualified inside the subquery: could be either level
    expect(one("SELECT 1 FROM users u WHERE EXISTS (SELECT 1 FROM orders WHERE secret = 1)").columns).toEqual([
      "orders.secret:read",
      "users.secret:read",
    ]);
  });

  it("accepts schema.table.column even when FROM named the table without schema", () => {
    expect(one("SELECT public.users.password FROM users").columns).toEqual(["users.password:read"]);
    expect(one("SELECT public.users.password FROM public.users").columns).toEqual(["public.users.password:read"]);
  });

  it("reports * for star, qualified star, whole-row references and (t).*", () => {
    expect(one("SELECT * FROM users").columns).toEqual(["users.*:read"]);
    expect(one("SELECT u.* FROM users u, orders o").columns).toEqual(["users.*:read"]);
    expect(one("SELECT * FROM users u, orders o").columns).toEqual(["orders.*:read", "users.*:read"]);
    expect(one("SELECT row_to_json(u) FROM users u").columns).toContain("users.*:read");
    expect(one("SELECT u FROM users u").columns).toContain("users.*:read");
    expect(one("SELECT (u).* FROM users u").columns).toContain("users.*:read");
    expect(one("SELECT to_jsonb(users) FROM users").columns).toContain("users.*:read");
  });

  it("narrows (alias).field to that column", () => {
    const s = one("SELECT (u).email FROM users u");
    expect(s.columns).toContain("users.email:read");
    expect(s.columns).not.toContain("users.*:read");
  });

  it("sees through subqueries and CTEs to the base columns", () => {
    expect(one("SELECT x.p FROM (SELECT password AS p FROM users) x").columns).toEqual(["users.password:read"]);
    expect(one("WITH c AS (SELECT * FROM users) SELECT email FROM c").columns).toEqual(["users.*:read"]);
  });

  it("reports INSERT columns as writes, and * without a column list", () => {
    expect(one("INSERT INTO users (email, name) VALUES ('a', 'b')").columns).toEqual([
      "users.email:write",
      "users.name:write",
    ]);
    expect(one("INSERT INTO users VALUES (1)").columns).toEqual(["users.*:write"]);
    expect(one("INSERT INTO users DEFAULT VALUES").columns).toEqual(["users.*:write"]);
  });

  it("reports UPDATE SET targets as writes and the expressions as reads", () => {
    const s = one("UPDATE users SET password = lower(email), (a, b) = (SELECT 1, 2) WHERE id = 1");
    expect(s.columns).toEqual([
      "users.a:write",
      "users.b:write",
      "users.email:read",
      "users.id:read",
      "users.password:write",
    ]);
  });

  it("reports RETURNING * and RETURNING columns as reads", () => {
    expect(one("DELETE FROM users WHERE id = 1 RETURNING *").columns).toEqual(["users.*:read", "users.id:read"]);
    expect(one("UPDATE users SET a = 1 WHERE id = 1 RETURNING password").columns).toContain("users.password:read");
    expect(one("INSERT INTO users (a) VALUES (1) RETURNING password").columns).toEqual([
      "users.a:write",
      "users.password:read",
    ]);
    expect(one("DELETE FROM users WHERE id = 1 RETURNING old.password").columns).toContain("users.password:read");
  });

  it("reports MERGE writes on the target and reads on the source", () => {
    const s = one(
      "MERGE INTO users u USING staging s ON u.id = s.id " +
        "WHEN MATCHED THEN UPDATE SET email = s.email " +
        "WHEN NOT MATCHED THEN INSERT (id, email) VALUES (s.id, s.email)",
    );
    expect(s.ops).toEqual(["insert", "merge", "update"]);
    expect(s.written).toEqual(["users"]);
    expect(s.read).toEqual(["staging", "users"]);
    expect(s.columns).toEqual([
      "staging.email:read",
      "staging.id:read",
      "users.email:write",
      "users.id:read",
      "users.id:write",
    ]);
  });

  it("reports USING and NATURAL join columns", () => {
    expect(one("SELECT 1 FROM a JOIN b USING (k)").columns).toEqual(["a.k:read", "b.k:read"]);
    expect(one("SELECT 1 FROM a NATURAL JOIN b").columns).toEqual(["a.*:read", "b.*:read"]);
  });

  it("reports COPY column lists, ON CONFLICT targets, DDL column changes", () => {
    expect(one("COPY users (email) TO STDOUT").columns).toEqual(["users.email:read"]);
    expect(one("COPY users FROM STDIN").columns).toEqual(["users.*:write"]);
    expect(one("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b").columns).toEqual([
      "t.a:read",
      "t.a:write",
      "t.b:read",
      "t.b:write",
    ]);
    expect(one("ALTER TABLE users DROP COLUMN password").columns).toEqual(["users.password:write"]);
    expect(one("ALTER TABLE users RENAME COLUMN password TO p").columns).toEqual([
      "users.p:write",
      "users.password:write",
    ]);
    expect(one("CREATE INDEX ON users (lower(email))").columns).toEqual(["users.email:read"]);
    expect(one("GRANT SELECT (email) ON users TO r").columns).toEqual(["users.email:write"]);
  });

  it("reports a column it can't attribute without a relation", () => {
    expect(one("SELECT password").columns).toEqual(["?.password:read"]);
  });
});

describe("functions", () => {
  it("reports calls anywhere, as written", () => {
    const s = one("SELECT lower(a), pg_catalog.pg_sleep(1), \"MyFn\"() FROM t WHERE f(g(a)) ORDER BY h(a)");
    expect(s.functions).toEqual(["MyFn", "f", "g", "h", "lower", "pg_catalog.pg_sleep"]);
  });

  it("reports functions in FROM, aggregates, window functions, CALL", () => {
    expect(one("SELECT count(*), sum(x) OVER (PARTITION BY y) FROM generate_series(1, 3) x").functions).toEqual([
      "count",
      "generate_series",
      "sum",
    ]);
    expect(one("CALL app.do_it(1)").functions).toEqual(["app.do_it"]);
  });

  it("reports functions in DEFAULTs, CHECKs, index expressions, trigger and event-trigger functions", () => {
    expect(one("CREATE TABLE t (a int DEFAULT f(), b int CHECK (g(b)), c int GENERATED ALWAYS AS (h(a)) STORED)").functions).toEqual(
      ["f", "g", "h"],
    );
    expect(one("CREATE INDEX ON t (lower(a)) WHERE active(b)").functions).toEqual(["active", "lower"]);
    expect(one("CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION audit.log()").functions).toEqual([
      "audit.log",
    ]);
    expect(one("CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION stop()").functions).toEqual(["stop"]);
    expect(one("ALTER TABLE t ALTER COLUMN a SET DEFAULT f()").functions).toEqual(["f"]);
  });

  it("does not report the function being created or dropped as called", () => {
    expect(one("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'").functions).toEqual([]);
    expect(one("DROP FUNCTION f()").functions).toEqual([]);
  });
});

describe("noWhere", () => {
  it.each([
    ["UPDATE t SET a = 1", true],
    ["DELETE FROM t", true],
    ["UPDATE t SET a = 1 WHERE id = 1", false],
    ["DELETE FROM t WHERE id = 1", false],
    ["DELETE FROM t x WHERE x.id = 1", false],
    ["DELETE FROM t WHERE true", true],
    ["DELETE FROM t WHERE 1 = 1", true],
    ["DELETE FROM t WHERE random() < 0.5", true],
    ["DELETE FROM t WHERE CURRENT OF c", false],
    ["DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)", false],
    ["DELETE FROM t USING u WHERE u.flag", true],
    ["UPDATE t SET a = 1 FROM u WHERE u.x = 1", true],
    ["UPDATE t SET a = 1 FROM u WHERE u.id = t.id", false],
    ["WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", true],
    ["WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d", false],
    ["SELECT * FROM t", false],
    ["INSERT INTO t VALUES (1)", false],
    ["MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", true],
    // The join reaches every row of t that some row of the table s matches (issue 12): bulk.
    ["MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", true],
    ["MERGE INTO t USING (VALUES (1)) s (id) ON t.id = s.id WHEN MATCHED THEN DELETE", false],
    ["MERGE INTO t USING s ON s.x WHEN MATCHED AND t.y THEN UPDATE SET a = 1", false],
    ["EXPLAIN DELETE FROM t", false],
    ["EXPLAIN ANALYZE DELETE FROM t", true],
  ] as const)("%s → %s", (sql, expected) => {
    expect(one(sql).noWhere).toBe(expected);
  });
});

describe("nesting", () => {
  it("finds writes inside CTEs, nested CTEs and subqueries", () => {
    const s = one("WITH a AS (WITH b AS (UPDATE accounts SET x = 1 RETURNING id) SELECT * FROM b) SELECT * FROM a");
    expect(s.ops).toEqual(["select", "update"]);
    expect(s.written).toEqual(["accounts"]);
  });

  it("plain EXPLAIN only plans: relations count as read, operations don't", () => {
    const s = one("EXPLAIN DELETE FROM users WHERE id = 1");
    expect(s.ops).toEqual(["explain"]);
    expect(s.read).toEqual(["users"]);
    expect(s.written).toEqual([]);
  });

  it("EXPLAIN ANALYZE executes: the inner statement's facts count in full", () => {
    for (const sql of ["EXPLAIN ANALYZE DELETE FROM users", "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM users", "EXPLAIN (ANALYZE true) DELETE FROM users"]) {
      const s = one(sql);
      expect(s.ops).toEqual(["delete", "explain"]);
      expect(s.written).toEqual(["users"]);
    }
    expect(one("EXPLAIN (ANALYZE off) DELETE FROM users").ops).toEqual(["explain"]);
    expect(one("EXPLAIN (ANALYZE 0) DELETE FROM users").ops).toEqual(["explain"]);
    expect(one("EXPLAIN (ANALYZE 1) DELETE FROM users").ops).toEqual(["delete", "explain"]);
  });

  it("PREPARE carries the inner facts; EXECUTE names the statement", () => {
    const p = one("PREPARE del(int) AS DELETE FROM users WHERE id = $1");
    expect(p.ops).toEqual(["delete", "prepare"]);
    expect(p.facts.prepares).toBe("del");
    expect(one("EXECUTE del(1)").facts.executes).toBe("del");
    expect(one("EXPLAIN EXECUTE del(1)").facts.executes).toBe("del");
    expect(one("CREATE TABLE t AS EXECUTE del(1)").facts.executes).toBe("del");
  });

  it("DECLARE carries the cursor query's facts", () => {
    const s = one("DECLARE c CURSOR WITH HOLD FOR SELECT password FROM users");
    expect(s.ops).toEqual(["declare", "select"]);
    expect(s.columns).toEqual(["users.password:read"]);
  });

  it("rule actions, SQL-standard function bodies and CREATE SCHEMA elements are walked", () => {
    const r = one("CREATE RULE r AS ON INSERT TO a DO ALSO DELETE FROM b WHERE b.id = new.id");
    expect(r.ops).toEqual(["create", "create_rule", "delete"]);
    expect(r.written).toEqual(["a", "b"]);
    expect(r.columns).toEqual(["a.id:read", "b.id:read"]);
    const f = one("CREATE FUNCTION f() RETURNS void BEGIN ATOMIC DELETE FROM audit; END");
    expect(f.ops).toEqual(["create", "create_function", "delete"]);
    expect(f.written).toEqual(["audit"]);
    const sc = one("CREATE SCHEMA s CREATE TABLE t (a int) CREATE VIEW v AS SELECT * FROM x");
    expect(sc.ops).toEqual(["create", "create_schema", "create_table", "create_view", "select"]);
    expect(sc.read).toEqual(["x"]);
  });

  it("parses constant SQL text given to query-running functions", () => {
    const s = one("SELECT query_to_xml('SELECT password FROM users', true, false, '')");
    expect(s.columns).toEqual(["users.password:read"]);
    expect(one("SELECT * FROM ts_stat('SELECT body FROM docs')").read).toEqual(["docs"]);
    expect(one("SELECT query_to_xml(q, true, false, '') FROM queries").unknown).toBe(true);
    expect(one("SELECT query_to_xml('not sql at all', true, false, '')").unknown).toBe(true);
  });
});

describe("session state", () => {
  it("reports search_path changes", () => {
    expect(one("SET search_path = evil, public").facts.setsSearchPath).toEqual(["evil", "public"]);
    expect(one('SET search_path TO "Evil", \'$user\'').facts.setsSearchPath).toEqual(["Evil", "$user"]);
    expect(one("SET LOCAL search_path = x").facts.setsSearchPath).toEqual(["x"]);
    expect(one("SET SCHEMA 'x'").facts.setsSearchPath).toEqual(["x"]);
    expect(one("SET search_path TO DEFAULT").facts.setsSearchPath).toBe("default");
    expect(one("RESET search_path").facts.setsSearchPath).toBe("default");
    expect(one("RESET ALL").facts.setsSearchPath).toBe("default");
    expect(one("DISCARD ALL").facts.setsSearchPath).toBe("default");
    expect(one("SET work_mem = '1GB'").facts.setsSearchPath).toBeUndefined();
    expect(one("SELECT set_config('search_path', 'a, \"B\"', false)").facts.setsSearchPath).toEqual(["a", "B"]);
    expect(one("SELECT pg_catalog.set_config('search_path', '', false)").facts.setsSearchPath).toEqual([]);
    // not this session's search_path:
    expect(one("ALTER ROLE r SET search_path = evil").facts.setsSearchPath).toBeUndefined();
    expect(one("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = evil AS 'select 1'").facts.setsSearchPath).toBeUndefined();
  });

  it("names the settings a statement changes", () => {
    const settings = (sql: string): readonly string[] | undefined => one(sql).facts.settings;
    expect(settings("SET statement_timeout = 0")).toEqual(["statement_timeout"]);
    expect(settings("SET LOCAL Statement_Timeout TO 0")).toEqual(["statement_timeout"]);
    expect(settings("RESET statement_timeout")).toEqual(["statement_timeout"]);
    expect(settings("RESET ALL")).toEqual(["all"]);
    expect(settings("DISCARD ALL")).toEqual(["all"]);
    expect(settings("SET ROLE admin")).toEqual(["role"]);
    expect(settings("SET TRANSACTION READ WRITE")).toEqual(["transaction_read_only"]);
    expect(settings("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")).toEqual(["default_transaction_read_only"]);
    expect(settings("BEGIN READ WRITE, ISOLATION LEVEL SERIALIZABLE")).toEqual(["transaction_isolation", "transaction_read_only"]);
    expect(settings("SELECT set_config('Statement_Timeout', '0', false)")).toEqual(["statement_timeout"]);
    expect(settings("SET search_path = a")).toEqual(["search_path"]);
    expect(settings("BEGIN")).toBeUndefined();
    expect(settings("SELECT 1")).toBeUndefined();
    expect(settings("ALTER ROLE r SET statement_timeout = 0")).toBeUndefined();
  });

  it("truncates names given as text to 63 bytes, like PostgreSQL and its parser", () => {
    const long = "a".repeat(70);
    expect(one(`SELECT * FROM ${long}`).read).toEqual(["a".repeat(63)]);
    expect(one(`SELECT '${long}'::regclass`).read).toEqual(["a".repeat(63)]);
    expect(one(`SET search_path = '${long}'`).facts.setsSearchPath).toEqual(["a".repeat(63)]);
    // never splits a character: 31 × 2 bytes
    expect(one(`SELECT '${"é".repeat(40)}'::regclass`).read).toEqual(["é".repeat(31)]);
  });

  it("refuses to guess settings chosen at run time or that change how text is read", () => {
    expect(one("SELECT set_config(name, 'x', false) FROM t").unknown).toBe(true);
    expect(one("SELECT set_config('search_path', current_user, false)").unknown).toBe(true);
    expect(one("SET standard_conforming_strings = off").unknown).toBe(true);
    expect(one("SET standard_conforming_strings = on").unknown).toBe(false);
    expect(one("SELECT set_config('standard_conforming_strings', 'off', false)").unknown).toBe(true);
    expect(one("SET client_encoding = 'SJIS'").unknown).toBe(true);
    expect(one("SET NAMES 'UTF8'").unknown).toBe(false);
    expect(one("UPDATE pg_settings SET setting = 'evil' WHERE name = 'search_path'").unknown).toBe(true);
  });
});

describe("unknown effects", () => {
  it.each([
    "DO $$ BEGIN PERFORM 1; END $$",
    "COPY t FROM PROGRAM 'curl evil'",
    "COPY t TO PROGRAM 'cat'",
    "LOAD 'plugin'",
    "CREATE FUNCTION f() RETURNS int LANGUAGE C AS 'lib', 'sym'",
    "SELECT dblink_exec('dbname=x', 'DROP TABLE users')",
    "SELECT * FROM dblink('dbname=x', 'SELECT 1') AS t(a int)",
    "SELECT cron.schedule('* * * * *', 'DELETE FROM users')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT table_to_xml(t, true, false, '') FROM names",
  ])("%s", (sql) => {
    const s = one(sql);
    expect(s.unknown).toBe(true);
    expect(s.facts.unknownEffects).toMatch(/\w/);
  });

  it("known statements have none", () => {
    for (const sql of ["SELECT 1", "ALTER SYSTEM SET work_mem = '1GB'", "CREATE EXTENSION dblink", "COPY t TO STDOUT"]) {
      expect(one(sql).unknown).toBe(false);
    }
  });
});

describe("multi-statement strings and errors", () => {
  it("returns one facts object per statement, in order", () => {
    const all = statementsOf("BEGIN; DELETE FROM a WHERE id = 1; SELECT ';DROP TABLE x'; COMMIT;");
    expect(all.map((s) => s.ops)).toEqual([["begin"], ["delete"], ["select"], ["commit"]]);
    expect(all[2]?.written).toEqual([]);
  });

  it("returns no statements for empty input and comments", () => {
    for (const sql of ["", "  ", "-- nothing", "/* nothing */;"]) {
      expect(classify(sql)).toEqual({ ok: true, statements: [] });
    }
  });

  it("reports parse errors with PostgreSQL's message and a 1-based position", () => {
    expect(classify("SELEC 1")).toEqual({ ok: false, error: 'syntax error at or near "SELEC"', position: 1 });
    expect(classify("SELECT 1; SELEC 2")).toEqual({ ok: false, error: 'syntax error at or near "SELEC"', position: 11 });
    const r = classify("SELECT 'é' FROM");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.position).toBe(16); // characters, not bytes
  });

  it("refuses statements over the size bound", () => {
    const r = classify("SELECT '" + "x".repeat(MAX_SQL_BYTES) + "'");
    expect(r).toEqual({ ok: false, error: `statement too long (limit ${MAX_SQL_BYTES} bytes)` });
    // multi-byte characters count as bytes
    expect(classify("SELECT '" + "é".repeat(MAX_SQL_BYTES / 2) + "'").ok).toBe(false);
  });

  it("refuses statements nested beyond the depth bound, and still classifies afterwards", () => {
    // beyond the parser's bound (limits.ts): refused before the parser sees it
    const tooDeep = { ok: false, error: `statement too deeply nested (limit ${MAX_SQL_DEPTH} levels of nesting or chained operators)` };
    const deep = "SELECT " + Array.from({ length: 3000 }, () => "a").join(" + ");
    expect(classify(deep)).toEqual(tooDeep);
    const calls = "SELECT " + "f(".repeat(1500) + "1" + ")".repeat(1500);
    expect(classify(calls)).toEqual(tooDeep);
    // within it, but beyond the walker's own bound
    const walked = "SELECT " + "f(".repeat(600) + "1" + ")".repeat(600);
    expect(classify(walked)).toEqual({ ok: false, error: "statement too complex" });
    expect(one("SELECT " + Array.from({ length: 200 }, () => "a").join(" + ") + " FROM t").columns).toEqual(["t.a:read"]);
  });
});

describe("determinism and caching hints", () => {
  it("sorts and de-duplicates every list", () => {
    const a = one("SELECT b.y, a.x, a.x FROM zz a, yy b WHERE f(1) AND e(2) AND f(3)");
    const b = one("SELECT a.x, b.y FROM zz a, yy b WHERE e(2) AND f(3)");
    // The output columns' lineage is in output order (it differs here, by design).
    expect({ ...a.facts, lineage: undefined }).toEqual({ ...b.facts, lineage: undefined });
    expect(a.read).toEqual(["yy", "zz"]);
    expect(a.functions).toEqual(["e", "f"]);
  });

  it("marks classifications that depend on literal values as not cacheable", () => {
    const cacheable = (sql: string): boolean => classifyDetailed(sql).cacheable;
    expect(cacheable("SELECT * FROM users WHERE id = 1")).toBe(true);
    expect(cacheable("INSERT INTO t (a) VALUES ('x')")).toBe(true);
    expect(cacheable("SET search_path = a")).toBe(false);
    expect(cacheable("SET work_mem = '1GB'")).toBe(false);
    expect(cacheable("SELECT 'users'::regclass")).toBe(false);
    expect(cacheable("SELECT nextval('s')")).toBe(false);
    expect(cacheable("SELECT pg_read_file('/etc/passwd')")).toBe(false);
    expect(cacheable("SELECT to_regclass('users')")).toBe(false);
    expect(cacheable("EXPLAIN (ANALYZE 0) DELETE FROM t")).toBe(false);
    expect(cacheable("EXPLAIN ANALYZE DELETE FROM t")).toBe(true);
    expect(cacheable("COPY t TO PROGRAM 'x'")).toBe(false);
    // COPY t TO '' parses like COPY t TO STDOUT (the JSON omits empty strings): never cached
    expect(cacheable("COPY t TO STDOUT")).toBe(false);
    expect(cacheable("DO $$ BEGIN END $$")).toBe(false);
    expect(cacheable("SELECT query_to_xml('select 1', true, false, '')")).toBe(false);
    expect(cacheable("SELEC 1")).toBe(false);
    // LANGUAGE 'c' is a string literal: the unknown effect depends on its value
    expect(cacheable("CREATE FUNCTION f() RETURNS int LANGUAGE 'sql' AS 'select 1'")).toBe(false);
    expect(cacheable("SELECT regclass('users')")).toBe(false);
  });

  it("produces plain JSON", () => {
    const c = classify("SELECT a FROM t; DELETE FROM u");
    expect(JSON.parse(JSON.stringify(c))).toEqual(c);
  });
});
