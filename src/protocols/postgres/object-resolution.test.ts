import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { isGatewayError } from "../../core/errors.js";
import type { ObjectNames } from "../../core/objects.js";
import { initSqlParser } from "../../policy/sql/index.js";
import { bindingFromRows, resolutionQuery, resolveObjects, SearchPathTracker, SessionObjects } from "./object-resolution.js";

const QUIET = { simple: true, quiet: true };

// The tracker parses in-process (as the gateway does once started): the WASM parser must be loaded.
beforeAll(async () => {
  await initSqlParser();
});

describe("SearchPathTracker", () => {
  it("starts at the default, or at the search_path given at startup", () => {
    expect(new SearchPathTracker().state).toEqual({ kind: "default" });
    expect(new SearchPathTracker("app,public").state).toEqual({ kind: "set", value: "app,public" });
  });

  it("follows SET / SET SCHEMA / RESET / RESET ALL / DISCARD ALL sent alone while the session is quiet", () => {
    const t = new SearchPathTracker();
    t.sent("SET search_path = app, public", QUIET);
    expect(t.state).toEqual({ kind: "set", value: '"app", "public"' });
    t.sent(`set session search_path to "My S", '$user'`, QUIET);
    expect(t.state).toEqual({ kind: "set", value: '"My S", "$user"' });
    t.sent("RESET search_path", QUIET);
    expect(t.state).toEqual({ kind: "default" });
    t.sent("SET SCHEMA 'x\"y'", QUIET);
    expect(t.state).toEqual({ kind: "set", value: '"x""y"' });
    t.sent("SET search_path TO DEFAULT", QUIET);
    expect(t.state).toEqual({ kind: "default" });
    t.sent("set search_path = a", QUIET);
    t.sent("RESET ALL", QUIET);
    expect(t.state).toEqual({ kind: "default" });
    t.sent("set search_path = a", QUIET);
    t.sent("DISCARD ALL", QUIET);
    expect(t.state).toEqual({ kind: "default" });
  });

  it("ignores statements that cannot change it", () => {
    const t = new SearchPathTracker("a");
    for (const sql of ["select 1", "delete from orders", "set work_mem = '64MB'", "create schema s", "alter role app set search_path = evil", "discard plans", "create function f() returns int set search_path = evil language sql as 'select 1'"]) {
      t.sent(sql, QUIET);
      expect(t.state).toEqual({ kind: "set", value: "a" });
    }
  });

  it("becomes unknown where the change cannot be followed exactly, until the next exact one", () => {
    const cases: [string, { simple: boolean; quiet: boolean }][] = [
      ["SET LOCAL search_path = x", QUIET],
      ["select set_config('search_path', 'x', false)", QUIET],
      ["SELECT pg_catalog.SET_CONFIG('search_path', 'x', false)", QUIET],
      ["set role other", QUIET],
      ["set session authorization default", QUIET],
      ["set search_path = x", { simple: true, quiet: false }],
      ["set search_path = x", { simple: false, quiet: false }],
      ["set search_path = x; select 1", QUIET],
      ["begin; set search_path = x; rollback", QUIET],
      ["set search_path = ", QUIET],
    ];
    for (const [sql, how] of cases) {
      const t = new SearchPathTracker();
      t.sent(sql, how);
      expect(t.state.kind, sql).toBe("unknown");
      t.sent("set search_path = b", QUIET);
      expect(t.state, sql).toEqual({ kind: "set", value: '"b"' });
    }
  });
});

const names: ObjectNames = { relations: [{ name: "orders" }, { schema: "app", name: "it's" }], functions: ["lower", "pg_catalog.now"] };

describe("resolutionQuery", () => {
  it("sets the session's search_path for the lookup only, and quotes every name as a literal", () => {
    const q = resolutionQuery({ kind: "set", value: '"a\'b", public' }, names);
    expect(q.startsWith(`select pg_catalog.set_config('search_path', E'"a''b", public', true);`)).toBe(true);
    expect(q).toContain("(1, E'app', E'it''s')");
    expect(q).toContain("(0, null::text, E'orders')");
    expect(q).toContain("(1, E'pg_catalog', E'now')");
    expect(resolutionQuery({ kind: "default" }, names)).not.toContain("set_config");
    expect(resolutionQuery({ kind: "default" }, { relations: [], functions: [] })).toBe("select 'p', pg_catalog.current_setting('search_path'), null, null, null");
    // Backslashes stay literal inside E'' strings.
    expect(resolutionQuery({ kind: "default" }, { relations: [{ name: "a\\'" }], functions: [] })).toContain("E'a\\\\''");
  });
});

describe("bindingFromRows", () => {
  it("builds the binding from the lookup's rows", () => {
    const rows = [
      ["app, public"],
      ["p", "app, public", null, null, null],
      ["r", "0", "16384", "public", "orders"],
      ["r", "1", null, null, null],
      ["f", "0", "871", "pg_catalog", "lower(anyrange)"],
      ["f", "0", "870", "pg_catalog", "lower(text)"],
      ["f", "1", "1299", "pg_catalog", "now()"],
    ];
    expect(bindingFromRows(names, rows)).toEqual({
      searchPath: "app, public",
      objects: [
        { kind: "relation", name: "orders", resolved: [{ oid: 16384, qualified: "public.orders" }] },
        { kind: "relation", name: "app.it's", resolved: [] },
        { kind: "function", name: "lower", resolved: [{ oid: 870, qualified: "pg_catalog.lower(text)" }, { oid: 871, qualified: "pg_catalog.lower(anyrange)" }] },
        { kind: "function", name: "pg_catalog.now", resolved: [{ oid: 1299, qualified: "pg_catalog.now()" }] },
      ],
    });
  });

  it("random or corrupt rows give a binding or a typed error, never another throw", () => {
    const cell = fc.option(fc.oneof(fc.constantFrom("p", "r", "f", "0", "1", "-1", "99"), fc.string({ maxLength: 8 })), { nil: null });
    fc.assert(
      fc.property(fc.array(fc.array(cell, { maxLength: 6 }), { maxLength: 20 }), (rows) => {
        try {
          const b = bindingFromRows(names, rows);
          expect(b.objects).toHaveLength(4);
        } catch (e) {
          expect(isGatewayError(e)).toBe(true);
        }
      }),
    );
  });
});

describe("resolveObjects", () => {
  it("refuses (fail closed) when the session's search_path is unknown, without a lookup", async () => {
    let asked = 0;
    const catalog = { lookup: () => Promise.resolve((asked++, [])) };
    await expect(resolveObjects(catalog, { kind: "unknown", why: "set_config() may have changed it" }, names)).rejects.toThrow(/search_path is not known to the gateway \(set_config/);
    expect(asked).toBe(0);
  });

  it("propagates a failed lookup, and refuses a statement naming too many objects", async () => {
    const failing = { lookup: () => Promise.reject(new Error("down")) };
    await expect(resolveObjects(failing, { kind: "default" }, names)).rejects.toThrow("down");
    const many: ObjectNames = { relations: Array.from({ length: 501 }, (_, i) => ({ name: `t${i}` })), functions: [] };
    await expect(resolveObjects({ lookup: () => Promise.resolve([]) }, { kind: "default" }, many)).rejects.toThrow(/more than 500/);
  });

  it("a session resolves under the path it set", async () => {
    const seen: string[] = [];
    const s = new SessionObjects({ lookup: (sql) => (seen.push(sql), Promise.resolve([["p", "x", null, null, null]])) });
    s.sent("set search_path = x", QUIET);
    await s.resolve({ relations: [], functions: [] });
    expect(seen[0]).toContain(`set_config('search_path', E'"x"', true)`);
  });
});
