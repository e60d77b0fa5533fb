import { beforeAll, describe, expect, it } from "vitest";
import { initSqlParser } from "../../policy/sql/index.js";
import type { CopyOutSpec } from "./copy-spec.js";
import { sqlEffects } from "./sql-effects.js";

beforeAll(async () => {
  await initSqlParser();
});

/** The COPY spec of each statement of `sql` (undefined for statements that are not COPY … TO STDOUT). */
function specs(sql: string): (CopyOutSpec | undefined)[] {
  return sqlEffects(sql).map((e) => (e.kind === "copy_out" ? e.spec : undefined));
}

function spec(sql: string): CopyOutSpec {
  const s = specs(sql)[0];
  if (s === undefined) throw new Error(`no COPY spec for ${sql}`);
  return s;
}

describe("COPY … TO STDOUT specs from the parse tree", () => {
  it("a table with or without a column list and schema; text defaults", () => {
    expect(spec("COPY public.customers (id, \"Email\") TO STDOUT")).toEqual({
      relation: { schema: "public", name: "customers" },
      columns: ["id", "Email"],
      format: { kind: "text", delimiter: 0x09, null: Buffer.from("\\N"), header: false },
    });
    expect(spec("copy customers to stdout").relation).toEqual({ name: "customers" });
  });

  it("the inner query's text, cut by tokens (parentheses inside strings and comments do not count)", () => {
    expect(spec("/* lead */ copy ( select ')' as x, $$(($$ from t /* ) */ where (a) = 1 ) to stdout").query).toBe(
      " select ')' as x, $$(($$ from t /* ) */ where (a) = 1 ",
    );
    const [a, b] = specs("select 1; copy (select 'é' ) to stdout; copy (table t) to stdout with csv");
    expect(a).toBeUndefined();
    expect(b?.query).toBe("select 'é' ");
    expect(specs("select 1; copy (select 'é' ) to stdout; copy (table t) to stdout with csv")[2]?.query).toBe("table t");
  });

  it("CSV, binary and their options, old and new syntax", () => {
    expect(spec("copy t to stdout with (format csv, header, delimiter ';', null 'NULL', quote '''', escape '\\', force_quote *)").format).toEqual({
      kind: "csv",
      delimiter: 0x3b,
      quote: 0x27,
      escape: 0x5c,
      null: Buffer.from("NULL"),
      header: true,
    });
    expect(spec("copy t to stdout csv header").format).toMatchObject({ kind: "csv", delimiter: 0x2c, quote: 0x22, escape: 0x22, header: true });
    expect(spec("copy t to stdout with (format csv, header false, null '')").format).toMatchObject({ header: false, null: Buffer.alloc(0) });
    expect(spec("copy t to stdout (format binary)").format).toEqual({ kind: "binary" });
    expect(spec("copy binary t to stdout").format).toEqual({ kind: "binary" });
    expect(spec("copy t to stdout with (format text, delimiter '|', header on)").format).toMatchObject({ kind: "text", delimiter: 0x7c, header: true });
    expect(spec("copy t to stdout with (encoding 'UTF-8')").format).toMatchObject({ kind: "text" });
  });

  it("options the gateway cannot tell leave the format unknown (the result stage refuses a masked COPY)", () => {
    for (const sql of [
      "copy t to stdout with (encoding 'LATIN1')",
      "copy t to stdout with (delimiter 'é')",
      "copy t to stdout with (format xml)",
      "copy t to stdout with (some_future_option 1)",
      "copy t to stdout with (header 'match')",
    ]) {
      expect(spec(sql).format, sql).toHaveProperty("unknown");
    }
  });

  it("COPY FROM, to a file and to a program have no output spec", () => {
    expect(specs("copy t from stdin; copy t to '/tmp/x'; copy t to program 'cat'")).toEqual([undefined, undefined, undefined]);
  });
});
