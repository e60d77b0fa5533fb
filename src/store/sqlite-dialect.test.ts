import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import { MIGRATIONS } from "./migrations.js";
import { MAX_SQL_CHARS, sqliteParams, toSqlite } from "./sqlite-dialect.js";

const NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))";

function refusal(f: () => unknown): GatewayError {
  try {
    f();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("toSqlite", () => {
  it("drops casts, rewrites now(), keeps $n placeholders", () => {
    expect(toSqlite("SELECT count(*)::int AS n FROM t WHERE ($1::text IS NULL OR s = $1) AND a = $2::text[] AND e > now()")).toBe(
      `SELECT count(*) AS n FROM t WHERE ($1 IS NULL OR s = $1) AND a = $2 AND e > ${NOW}`,
    );
  });

  it("leaves string literals, quoted identifiers and comments alone", () => {
    const sql = `SELECT 'a::text now()' AS "x::int", 'it''s $1::jsonb' -- now()::int\n, 1::int /* x::y */`;
    expect(toSqlite(sql)).toBe(`SELECT 'a::text now()' AS "x::int", 'it''s $1::jsonb' -- now()::int\n, 1 /* x::y */`);
  });

  it("rewrites column types in DDL only", () => {
    const ddl = "CREATE TABLE d (id bigserial PRIMARY KEY, at timestamptz NOT NULL, j jsonb, n bigint, ok boolean NOT NULL, t text DEFAULT now())";
    expect(toSqlite(ddl, { ddl: true })).toBe(
      `CREATE TABLE d (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, j TEXT, n INTEGER, ok INTEGER NOT NULL, t text DEFAULT ${NOW})`,
    );
    expect(toSqlite("SELECT bigint FROM x")).toBe("SELECT bigint FROM x");
  });

  it("refuses PostgreSQL-only constructs instead of running them with another meaning", () => {
    for (const sql of [
      "SELECT * FROM unnest($1::text[])",
      "SELECT 1 WHERE a @> $1",
      "SELECT 1 WHERE a <@ $1",
      "SELECT * FROM a, LATERAL (SELECT 1) x",
      "SELECT pg_advisory_xact_lock(1)",
      "SELECT E'\\n'",
      "SELECT 'unterminated",
      "SELECT 1 /* open",
    ]) {
      expect(refusal(() => toSqlite(sql)).code).toBe("GW_STORE");
    }
  });

  it("bounds its input", () => {
    expect(refusal(() => toSqlite("x".repeat(MAX_SQL_CHARS + 1))).code).toBe("GW_STORE");
  });

  it("carries every released migration (or the migration has a SQLite form)", () => {
    for (const m of MIGRATIONS) expect(() => toSqlite(m.sqlite ?? m.sql, { ddl: true })).not.toThrow();
  });

  it("never throws anything but GW_STORE, and is the identity on cast-free, literal-free text without now()", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          toSqlite(s);
        } catch (e) {
          expect(e).toBeInstanceOf(GatewayError);
        }
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9_ ,()=$.*<>+-]{0,120}$/), (s) => {
        fc.pre(!/::|now\s*\(|unnest|lateral|pg_|<@|@>|ilike|--|\/\*/i.test(s));
        expect(toSqlite(s)).toBe(s);
      }),
    );
  });
});

describe("sqliteParams", () => {
  it("binds booleans as 0/1 and Dates as ISO text; refuses what SQLite cannot hold", () => {
    expect(sqliteParams([true, false, null, undefined, 1, 2n, "x", new Date(0)])).toEqual([1, 0, null, null, 1, 2n, "x", "1970-01-01T00:00:00.000Z"]);
    expect(Buffer.isBuffer(sqliteParams([new Uint8Array([1, 2])])[0])).toBe(true);
    expect(refusal(() => sqliteParams([{ a: 1 }])).code).toBe("GW_STORE");
    expect(refusal(() => sqliteParams([() => 1])).code).toBe("GW_STORE");
  });
});
