import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_LEX_MODE, lexMysql } from "./lexer.js";

describe("lexMysql", () => {
  it("opens executable comments and blanks ordinary ones, keeping offsets", () => {
    const r = lexMysql("/*!50000 DROP TABLE t */ /* x */ # y\nSELECT 1 -- z");
    if (!r.ok) throw new Error(r.error);
    expect(r.text.length).toBe("/*!50000 DROP TABLE t */ /* x */ # y\nSELECT 1 -- z".length);
    expect(r.text.replace(/\s+/g, " ").trim()).toBe("DROP TABLE t SELECT 1");
    expect(r.executableComments).toBe(true);
  });

  it("keeps `--` without a space as operators for the grammar", () => {
    const r = lexMysql("SELECT 1--1");
    if (!r.ok) throw new Error(r.error);
    expect(r.parserText).toBe("SELECT 1- -1");
  });

  it("reads quotes per sql_mode", () => {
    const nbe = lexMysql("SELECT 'a\\'; DROP TABLE t; -- '", { ansiQuotes: false, noBackslashEscapes: true });
    if (!nbe.ok) throw new Error(nbe.error);
    expect(nbe.parserText).toContain("DROP TABLE t");
    expect(nbe.parserText).toContain("'a\\\\'");
    const ansi = lexMysql('SELECT "pass""word"', { ansiQuotes: true, noBackslashEscapes: false });
    if (!ansi.ok) throw new Error(ansi.error);
    expect(ansi.parserText).toBe('SELECT `pass"word`');
  });

  it("refuses what the server would read another way or not at all", () => {
    for (const s of ["SELECT 'x", "SELECT `x", "/* x", "/*!5 SELECT 1", "SELECT 1\u0000", "/*!50000 SELECT /* */ 1 */", "/*!50000 SELECT 1 # */ x\n*/"]) {
      expect(lexMysql(s).ok, s).toBe(false);
    }
  });

  it("never throws; in the default mode the text keeps its length and quoted tokens are untouched", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("'", '"', "`", "\\", "/", "*", "!", "#", "-", " ", "\n", ";", "a", "M", "5") , maxLength: 60 }), (s) => {
        const r = lexMysql(s, DEFAULT_LEX_MODE);
        if (r.ok) {
          expect(r.text.length).toBe(s.length);
          expect(r.skeleton.length).toBe(s.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
