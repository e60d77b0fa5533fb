/**
 * The reach of an upsert's update arm and of MERGE's MATCHED actions (issue 12): they rewrite
 * every target row a source row meets, so a source that may return a whole table, with no
 * condition of their own on the target, is a bulk write (`noWhere`).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "./classify.js";
import { one } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("INSERT … ON CONFLICT DO UPDATE", () => {
  it.each([
    ["INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["INSERT INTO t TABLE s ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["INSERT INTO t (id, v) SELECT id, v FROM s WHERE true ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["INSERT INTO t SELECT * FROM s LIMIT 100000 ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["INSERT INTO t SELECT g, 'a' FROM generate_series(1, 10) g ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["INSERT INTO t SELECT generate_series(1, 10), 'a' ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["WITH src AS (SELECT * FROM s) INSERT INTO t SELECT * FROM src ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["INSERT INTO t SELECT * FROM s UNION SELECT 1, 'x' ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["INSERT INTO t SELECT * FROM (SELECT * FROM s) q ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET v = 'x'", true],
    ["INSERT INTO t SELECT s.* FROM s JOIN u ON u.id = s.id ON CONFLICT (id) DO UPDATE SET v = excluded.v", true],
    ["WITH x AS (INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET v = 'x' RETURNING 1) SELECT * FROM x", true],
    // Bounded sources, or a WHERE of the update arm on the target.
    ["INSERT INTO t VALUES (1, 'a'), (2, 'b') ON CONFLICT (id) DO UPDATE SET v = excluded.v", false],
    ["INSERT INTO t VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = excluded.v", false],
    ["INSERT INTO t SELECT 1, 'a' ON CONFLICT (id) DO UPDATE SET v = excluded.v", false],
    ["INSERT INTO t SELECT * FROM s WHERE s.id = 1 ON CONFLICT (id) DO UPDATE SET v = excluded.v", false],
    ["INSERT INTO t SELECT * FROM (VALUES (1, 'a')) v(id, x) ON CONFLICT (id) DO UPDATE SET v = excluded.v", false],
    ["INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET v = excluded.v WHERE t.id = 3", false],
    ["INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO NOTHING", false],
    ["INSERT INTO t DEFAULT VALUES ON CONFLICT DO NOTHING", false],
  ] as const)("%s → noWhere %s", (sql, expected) => {
    const s = one(sql);
    expect(s.noWhere).toBe(expected);
    if (sql.includes("DO UPDATE")) expect(s.ops).toContain("update");
  });
});

describe("MERGE", () => {
  it.each([
    ["MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v", true],
    ["MERGE INTO t USING (SELECT * FROM s) q ON t.id = q.id WHEN MATCHED THEN DELETE", true],
    ["MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE", true],
    ["MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE", false],
    ["MERGE INTO t USING (SELECT * FROM s WHERE s.id = 7) q ON t.id = q.id WHEN MATCHED THEN DELETE", false],
    ["MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND t.v = 'old' THEN DELETE", false],
    ["MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)", false],
  ] as const)("%s → noWhere %s", (sql, expected) => {
    expect(one(sql).noWhere).toBe(expected);
  });
});

describe("WHERE clauses still count through nested subqueries", () => {
  it.each([
    ["UPDATE t SET v = 1 WHERE EXISTS (SELECT 1 FROM s WHERE s.id = t.id)", false],
    ["DELETE FROM t WHERE id IN (SELECT id FROM s WHERE s.flag)", false],
    ["DELETE FROM t WHERE EXISTS (SELECT 1 FROM s WHERE s.flag)", true],
  ] as const)("%s → noWhere %s", (sql, expected) => {
    expect(one(sql).noWhere).toBe(expected);
  });
});
