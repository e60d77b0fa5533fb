import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { isGatewayError } from "../../core/errors.js";
import { classify, initSqlParser } from "./classify.js";
import { checkParseLimits, DEFAULT_PARSE_LIMITS, EMBEDDED_PARSE_LIMITS, estimateDepth, MAX_SQL_BYTES, MAX_SQL_DEPTH, parseSyncBounded } from "./limits.js";

beforeAll(async () => {
  await initSqlParser();
});

const plusChain = (n: number): string => "select 1" + "+1".repeat(n);

describe("estimateDepth", () => {
  it("counts bracket levels, CASE levels and chained operators", () => {
    expect(estimateDepth("select 1")).toBe(0);
    expect(estimateDepth("select 1+1+1")).toBe(2);
    expect(estimateDepth(plusChain(500))).toBe(500);
    expect(estimateDepth("select " + "(".repeat(300) + "1" + ")".repeat(300))).toBe(300);
    expect(estimateDepth("select " + "f(".repeat(300) + "1" + ")".repeat(300))).toBe(300);
    expect(estimateDepth("select " + "array[".repeat(50) + "1" + "]".repeat(50))).toBe(50);
    expect(estimateDepth("select " + "case when true then ".repeat(40) + "1" + " end".repeat(40))).toBe(40);
    expect(estimateDepth("select " + "not ".repeat(70) + "true")).toBe(70);
    expect(estimateDepth("select 1" + "::int".repeat(30))).toBe(30);
    expect(estimateDepth("select 1" + " union select 1".repeat(80))).toBe(80);
    expect(estimateDepth("select * from a" + " join b using (x)".repeat(60))).toBe(62);
    // operators inside parentheses add to the depth of their level
    expect(estimateDepth("select (1+1+1) + (1+(1+1+1))")).toBe(6);
    // OPERATOR(…) chains are chains too
    expect(estimateDepth("select 1" + " operator(pg_catalog.+) 1".repeat(25))).toBe(27);
  });

  it("resets at list separators: commas, AND/OR, CASE branches, statements", () => {
    expect(estimateDepth("select " + Array.from({ length: 5000 }, (_, i) => `${i}+1`).join(", "))).toBe(1);
    expect(estimateDepth("select * from t where " + Array.from({ length: 5000 }, (_, i) => `a${i} = ${i}`).join(" and "))).toBe(2); // `*` and one `=`
    expect(estimateDepth("select * from t where " + Array.from({ length: 5000 }, (_, i) => `a = ${i}`).join(" OR "))).toBe(2);
    const bulkUpdate = "update t set v = case " + Array.from({ length: 3000 }, (_, i) => `when id = ${i} then 'v${i}'`).join(" ") + " else v end where id in (" + Array.from({ length: 3000 }, (_, i) => i).join(",") + ")";
    expect(estimateDepth(bulkUpdate)).toBe(3); // `=`, CASE, `=` of one branch
    expect(estimateDepth("select 1+1+1; select 1+1")).toBe(2);
  });

  it("skips literals, quoted identifiers and comments", () => {
    const noise = "'((((+++' E'\\'((((' \"a((((+\" $$ ((((+++ $$ $f$ (((( $f$ -- ((((+++\n /* (((( /* ++++ */ (((( */";
    expect(estimateDepth(`select ${noise}`)).toBe(0);
    expect(estimateDepth(`select ${noise} + 1`)).toBe(1);
    // unterminated literals and comments end the scan (the parser rejects them)
    expect(estimateDepth("select '((((")).toBe(0);
    expect(estimateDepth("select $a$ ((((")).toBe(0);
  });

  it("stays below the limit on the SQL PostgreSQL itself ships (views, functions, extensions)", () => {
    const dir = "/usr/share/postgresql/15";
    if (!existsSync(dir)) return;
    const files = [
      ...readdirSync(dir).filter((f) => f.endsWith(".sql")).map((f) => join(dir, f)),
      ...readdirSync(join(dir, "extension")).filter((f) => f.endsWith(".sql")).map((f) => join(dir, "extension", f)),
    ];
    expect(files.length).toBeGreaterThan(50);
    let deepest = 0;
    for (const f of files) deepest = Math.max(deepest, estimateDepth(readFileSync(f, "utf8")));
    // information_schema.sql and system_views.sql are the deepest, far below the limit
    expect(deepest).toBeGreaterThan(5);
    expect(deepest).toBeLessThan(MAX_SQL_DEPTH / 10);
  });

  it("stops as soon as the estimate passes the limit", () => {
    // (Its cost is measured in bench/parser-pool.ts: timing assertions don't belong in tests.)
    expect(estimateDepth("select " + "(1+".repeat(250_000), 1000)).toBe(1001);
    expect(estimateDepth("select " + "(1+".repeat(250_000))).toBe(500_000);
  });
});

describe("checkParseLimits", () => {
  it("names the limit a statement exceeds", () => {
    expect(checkParseLimits("select 1")).toBeUndefined();
    expect(checkParseLimits(plusChain(MAX_SQL_DEPTH))).toBeUndefined();
    expect(checkParseLimits(plusChain(MAX_SQL_DEPTH + 1))).toEqual({
      limit: "depth",
      message: `statement too deeply nested (limit ${MAX_SQL_DEPTH} levels of nesting or chained operators)`,
    });
    expect(checkParseLimits("select '" + "x".repeat(MAX_SQL_BYTES) + "'")).toEqual({ limit: "bytes", message: `statement too long (limit ${MAX_SQL_BYTES} bytes)` });
    // bytes, not characters
    expect(checkParseLimits("select '" + "é".repeat(MAX_SQL_BYTES / 2) + "'")?.limit).toBe("bytes");
    expect(checkParseLimits("select 1+1+1", { maxBytes: 100, maxDepth: 1 })?.message).toBe("statement too deeply nested (limit 1 levels of nesting or chained operators)");
    expect(DEFAULT_PARSE_LIMITS).toEqual({ maxBytes: MAX_SQL_BYTES, maxDepth: MAX_SQL_DEPTH });
  });

  it("passes what real workloads send: IN lists of thousands, multi-row VALUES, long AND lists", () => {
    const inList = "select * from orders where id in (" + Array.from({ length: 20_000 }, (_, i) => i).join(", ") + ")";
    const values = "insert into t (a, b) values " + Array.from({ length: 5_000 }, (_, i) => `(${i}, 'name ${i}')`).join(", ");
    const filters = "select * from t where " + Array.from({ length: 2_000 }, (_, i) => `(c${i} is null or c${i} = $${i + 1})`).join(" and ");
    for (const sql of [inList, values, filters]) {
      expect(checkParseLimits(sql)).toBeUndefined();
      expect(classify(sql).ok).toBe(true);
    }
  });
});

describe("parseSyncBounded", () => {
  it("refuses with GW_LIMIT before the parser sees the text, and parses otherwise", () => {
    expect(parseSyncBounded("select 1")).toHaveProperty("stmts");
    let caught: unknown;
    try {
      parseSyncBounded(plusChain(300), EMBEDDED_PARSE_LIMITS);
    } catch (e) {
      caught = e;
    }
    expect(isGatewayError(caught) && caught.code === "GW_LIMIT").toBe(true);
  });
});

describe("SQL text inside a statement (query_to_xml, SQL function bodies)", () => {
  const embedded = (sql: string): string => `SELECT query_to_xml('${sql.replaceAll("'", "''")}', true, false, '')`;
  const effects = (sql: string): readonly (string | undefined)[] => {
    const c = classify(sql);
    if (!c.ok) throw new Error(c.error);
    return c.statements.map((f) => f.unknownEffects);
  };
  const unparsable = "the statement runs SQL text that can't be parsed";

  it("is parsed in this thread only within its own, tighter limits (fail closed beyond)", () => {
    expect(effects(embedded("select password from users"))).toEqual([undefined]);
    expect(effects(embedded(plusChain(EMBEDDED_PARSE_LIMITS.maxDepth)))).toEqual([undefined]);
    expect(effects(embedded(plusChain(EMBEDDED_PARSE_LIMITS.maxDepth + 1)))).toEqual([unparsable]);
    const big = "select 1 where 1 in (" + "1,".repeat(EMBEDDED_PARSE_LIMITS.maxBytes / 2) + "1)";
    expect(effects(embedded(big))).toEqual([unparsable]);
  });

  it("shares one budget per classification, so many constants can't add up to a stall", () => {
    const piece = "select 1 where 1 in (" + "1,".repeat(EMBEDDED_PARSE_LIMITS.maxBytes / 8) + "1)"; // a quarter of the budget
    const four = Array.from({ length: 4 }, () => `query_to_xml('${piece}', true, false, '')`);
    expect(effects(`SELECT ${four.slice(0, 3).join(", ")}`)).toEqual([undefined]);
    expect(effects(`SELECT ${four.join(", ")}`)).toEqual([unparsable]);
    // the budget is per classification: the next statement has all of it again
    expect(effects(`SELECT ${four.slice(0, 3).join(", ")}`)).toEqual([undefined]);
  });
});

describe("classify() under the flood of issue 12", () => {
  it("refuses 50 statements of 300 KB `select 1+1+…` with the depth message, then still classifies quickly", () => {
    const attack = plusChain(150_000); // 300 KB
    expect(attack.length).toBeGreaterThan(300_000);
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    for (let k = 0; k < 50; k++) {
      expect(classify(attack)).toEqual({ ok: false, error: `statement too deeply nested (limit ${MAX_SQL_DEPTH} levels of nesting or chained operators)` });
    }
    const perAttack = (performance.now() - t0) / 50;
    expect(perAttack).toBeLessThan(50); // refused by the scan, not by the parser
    const rssGrowth = process.memoryUsage().rss - rss0;
    expect(rssGrowth).toBeLessThan(256 * 1024 * 1024);
    // ordinary statements: correct, and at ordinary speed
    const t1 = performance.now();
    for (let k = 0; k < 200; k++) {
      const c = classify(`SELECT name FROM users WHERE id = ${k}`);
      expect(c.ok && c.statements[0]?.relationsRead).toEqual([{ name: "users" }]);
    }
    expect((performance.now() - t1) / 200).toBeLessThan(5);
  });
});
