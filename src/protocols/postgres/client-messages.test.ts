import { describe, expect, it } from "vitest";
import { fastpathCallSql } from "./client-messages.js";

describe("fastpathCallSql", () => {
  it("is the quoted, qualified call with one parameter per argument, and a comment naming the OID", () => {
    expect(fastpathCallSql({ oid: 954, schema: "pg_catalog", name: "loread", identityArgs: "integer, integer" }, 2)).toBe(
      'SELECT "pg_catalog"."loread"($1, $2) /* fastpath FunctionCall: oid 954, pg_catalog.loread(integer, integer) */',
    );
    expect(fastpathCallSql({ oid: 1, schema: "app", name: "now", identityArgs: "" }, 0)).toBe('SELECT "app"."now"() /* fastpath FunctionCall: oid 1, app.now() */');
  });

  it("keeps names whole (quotes doubled) and cannot end its comment early", () => {
    const sql = fastpathCallSql({ oid: 7, schema: 'we"ird', name: "Fn */ drop table x; /*", identityArgs: '"*/" text' }, 1);
    expect(sql.startsWith('SELECT "we""ird"."Fn */ drop table x; /*"($1) /* ')).toBe(true);
    const comment = sql.slice(sql.indexOf(") /* ") + 5);
    expect(comment.slice(0, -3)).not.toContain("*/");
    expect(comment.endsWith("*/")).toBe(true);
  });
});
