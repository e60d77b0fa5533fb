/**
 * One MySQL parser (dt-sql-parser's MySQL grammar: ANTLR, plain JavaScript) in its own thread,
 * for a ParserPool (src/policy/sql/parser-pool.ts) created with this file as its workerUrl.
 *
 * Why a thread: an ANTLR parse of hostile text can cost seconds (adaptive prediction) or
 * overflow the stack; here that stalls only this thread, which the pool terminates and replaces.
 *
 * dt-sql-parser's ESM build imports directories and extension-less paths (it is built for
 * bundlers); dt-resolve-hook.mjs lets plain Node load it.
 *
 * Protocol (the pool's): after loading, `{ ready: true }`; each `{ id, sql }` gets one reply:
 *   `{ id, ok: true, json }`          the parse tree, compacted (see compact());
 *   `{ id, ok: false, message }`      the grammar rejected the text (a syntax error);
 *   `{ id, fault }`                   anything else (stack overflow, …): the pool replaces us.
 */
import { register } from "node:module";
import { URL } from "node:url";
import { parentPort } from "node:worker_threads";

if (parentPort === null) throw new Error("parser-worker.mjs must run as a worker thread");
const port = parentPort;

register(new URL("./dt-resolve-hook.mjs", import.meta.url));
const { parseMysqlTree } = await import("./tree.mjs");

// ANTLR's prediction caches (DFA states, shared by every parser of this thread) start empty: the
// first statement of each shape costs up to seconds, the same shape again milliseconds. Warm
// them on the shapes agents send before taking work, so the first statements are not the slow
// ones (bench/mysql-parser-results.md).
const WARM = [
  "SELECT a, b.c, COUNT(*), SUM(x) AS s FROM t AS b JOIN u ON u.id = b.id LEFT JOIN v USING (k) WHERE a = 1 AND b.c IN (1, 2) OR d LIKE 'x%' GROUP BY a HAVING s > 1 ORDER BY 1 DESC LIMIT 10 OFFSET 5",
  "SELECT CASE WHEN a THEN CASE WHEN b THEN 1 ELSE 2 END ELSE 3 END FROM t",
  "SELECT (SELECT (SELECT MAX(x) FROM u WHERE u.a = t.a) FROM v LIMIT 1) FROM t WHERE EXISTS (SELECT 1 FROM w WHERE w.id = t.id)",
  "SELECT ((((1 + 2) * 3) - 4) / 5), CONCAT('a', \"b\"), IF(a > 1, 'x', NULL), COALESCE(a, b), CAST(a AS CHAR), NOW() - INTERVAL 1 DAY FROM t",
  "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
  "SELECT a FROM t UNION SELECT b FROM u ORDER BY 1",
  "INSERT INTO db.t (a, b) VALUES (1, 'x'), (2, NULL) ON DUPLICATE KEY UPDATE a = VALUES(a)",
  "INSERT INTO t SELECT * FROM u WHERE x = 1",
  "REPLACE INTO t SET a = 1",
  "UPDATE t JOIN u ON t.id = u.id SET t.a = u.b, t.c = t.c + 1 WHERE u.d = 'x' LIMIT 5",
  "DELETE FROM t WHERE id IN (SELECT id FROM u) ORDER BY id LIMIT 1",
  "CREATE TABLE IF NOT EXISTS `t` (`id` int NOT NULL AUTO_INCREMENT, `a` varchar(10) DEFAULT NULL, PRIMARY KEY (`id`), KEY `k` (`a`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
  "ALTER TABLE t ADD COLUMN b INT, DROP COLUMN c, RENAME TO u",
  "DROP TABLE IF EXISTS a, b",
  "CREATE PROCEDURE p(IN x INT) BEGIN DECLARE i INT DEFAULT 0; WHILE i < x DO SET i = i + 1; END WHILE; SELECT i; END",
  "SET @a = 1, SESSION sql_mode = 'ANSI', @@global.x = 2",
  "SET NAMES utf8mb4",
  "SHOW CREATE TABLE t",
  "SHOW VARIABLES LIKE 'x%'",
  "EXPLAIN SELECT * FROM t",
  "PREPARE s FROM 'SELECT ?'",
  "EXECUTE s USING @a",
  "START TRANSACTION",
  "COMMIT",
  "LOCK TABLES t WRITE",
];
for (const sql of WARM) {
  try {
    parseMysqlTree(sql);
  } catch {
    // a warm-up failure is not fatal: the statement will be parsed cold
  }
}

port.on("message", (msg) => {
  const id = msg.id;
  let outcome;
  try {
    outcome = parseMysqlTree(msg.sql);
  } catch (e) {
    port.postMessage({ id, fault: e instanceof Error ? e.name : "unknown" });
    return;
  }
  if (outcome.ok) port.postMessage({ id, ok: true, json: JSON.stringify(outcome.tree) });
  else port.postMessage({ id, ok: false, message: outcome.message });
});

port.postMessage({ ready: true });
