import fc from "fast-check";
import { fingerprintSync, parseSync, scanSync } from "libpg-query";
import { beforeAll, describe, expect, it } from "vitest";
import { BYPASS_CASES } from "./bypass-cases.js";
import { classify, classifyDetailed, initSqlParser } from "./classify.js";
import { ClassificationCache, MAX_NORMALIZE_CHARS, normalize } from "./normalize.js";

beforeAll(async () => {
  await initSqlParser();
});

const N = "\u0001#"; // number placeholder
const S = "\u0001'"; // string placeholder

describe("normalize", () => {
  it("folds unquoted words, collapses whitespace and comments, keeps quoted identifiers", () => {
    expect(normalize('  SELECT  "Name", id\n\tFROM   Public.Users -- trailing\n')).toBe('select "Name", id from public.users');
    expect(normalize("SELECT/* a /* nested */ comment */1")).toBe(`select ${N}`);
    expect(normalize("DR/**/OP TABLE x")).toBe("dr op table x");
    expect(normalize("a<>b")).toBe("a<>b");
    expect(normalize("a < > b")).toBe("a < > b");
    expect(normalize("x::regclass")).toBe("x::regclass");
    expect(normalize("ÄBC")).toBe("Äbc"); // only ASCII folds, like PostgreSQL
    expect(normalize("-- only a comment")).toBe("");
  });

  it("replaces every kind of literal with a placeholder of its class", () => {
    for (const num of ["1", "42", "3.14", ".5", "1.", "1e10", "2E-3", "1.5e+7", "0x1F", "0O17", "0b101", "1_000_000", "0x_FF"]) {
      expect(normalize(`SELECT ${num} FROM t`), num).toBe(`select ${N} from t`);
    }
    const strings = [
      "''",
      "'it''s'",
      "'; DROP TABLE users; --'",
      "'é😀'",
      "E'a\\nb'",
      "e'\\''",
      "E'it''s'",
      "E'\\\\'",
      "E'\\x41\\101\\u00e9\\U0001F600'",
      "$$x$$",
      "$$;DROP TABLE t;$$",
      "$tag$ $$ $tag$",
      "$T_1$x$T_1$",
      "U&'\\0041\\+01F600'",
      "u&'d!0061t!+000061' UESCAPE '!'",
      "U&'x' /* c */ uescape '#'",
    ];
    for (const str of strings) expect(normalize(`SELECT ${str} FROM t`), str).toBe(`select ${S} from t`);
    for (const bits of ["B'0101'", "b''", "X'1F'", "x'ff'"]) expect(normalize(`SELECT ${bits}`), bits).toBe("select \u0001b");
    expect(normalize("SELECT N'x'")).toBe("select \u0001n");
  });

  it("keeps parameters, identifiers that look like literals, and $ inside identifiers", () => {
    expect(normalize("SELECT $1, $23 FROM t")).toBe("select $1, $23 from t");
    expect(normalize("SELECT a$b$, t1, _x FROM t")).toBe("select a$b$, t1, _x from t");
    expect(normalize("SELECT abce'x'")).toBe(`select abce${S}`);
    expect(normalize("SELECT e 'x'")).toBe(`select e ${S}`);
    expect(normalize("SELECT u &'x'")).toBe(`select u &${S}`);
  });

  it("gives equal keys to statements that differ only in literals, comments, spacing and case", () => {
    const a = normalize("select * from users where id = 1 and name = 'bob' -- x");
    const b = normalize("SELECT *\n  FROM USERS /* y */ WHERE id = 99 AND name = $$alice$$");
    expect(a).toBeDefined();
    expect(a).toBe(b);
  });

  it("gives different keys to different statements", () => {
    const keys = [
      "select * from users",
      'select * from "Users"',
      "select * from users2",
      "select * from public.users",
      "select a from users",
      "select * from users where a = 1",
      "select * from users where a = $1",
      "select * from users where a <= 1",
      "select * from users where a < = 1",
      "select * from users where a = '1'",
      "select * from users where a = B'1'",
      "drop table users",
      "dr op table users",
    ].map(normalize);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it.each([
    ["unterminated string", "SELECT 'abc"],
    ["unterminated E-string", "SELECT E'abc\\'"],
    ["unterminated dollar quote", "SELECT $x$abc$y$"],
    ["unterminated quoted identifier", 'SELECT "abc'],
    ["unterminated block comment", "SELECT 1 /* /* */"],
    ["backslash in a standard string", "SELECT 'a\\b'"],
    ["backslash in a national string", "SELECT N'a\\b'"],
    ["E-string byte escape above ASCII", "SELECT E'\\xC3\\xA9'"],
    ["E-string NUL escape", "SELECT E'\\0'"],
    ["E-string octal escape above ASCII", "SELECT E'\\351'"],
    ["E-string short unicode escape", "SELECT E'\\u12'"],
    ["E-string surrogate escape", "SELECT E'\\uD800'"],
    ["U& bad escape", "SELECT U&'\\zzzz'"],
    ["U& surrogate", "SELECT U&'\\D800'"],
    ["U& invalid UESCAPE character", "SELECT U&'x' UESCAPE '+'"],
    ["U& UESCAPE without a string", "SELECT U&'x' UESCAPE"],
    ["U& UESCAPE string continued", "SELECT U&'x' UESCAPE '!'\n''"],
    ["U& identifier", 'SELECT * FROM U&"t"'],
    ["junk after a number", "SELECT 1abc"],
    ["exponent without digits", "SELECT 1e"],
    ["radix prefix without digits", "SELECT 0x"],
    ["junk after a hex number", "SELECT 0x1G"],
    ["trailing underscore", "SELECT 1_"],
    ["two dots", "SELECT 1..2"],
    ["junk after a parameter", "SELECT $1abc"],
    ["stray dollar", "SELECT $ 1"],
    ["adjacent strings (continuation)", "SELECT 'a'\n'b'"],
    ["adjacent strings (syntax error)", "SELECT 'a' 'b'"],
    ["adjacent strings across a comment", "SELECT 'a' -- c\n'b'"],
    ["placeholder character in input", "SELECT \u0001'"],
    ["NUL in input", "SELECT 1\u0000"],
    ["unpaired surrogate", "SELECT '\uD800'"],
    ["unterminated bit string", "SELECT B'01"],
  ])("declines when unsure: %s", (_name, sql) => {
    expect(normalize(sql)).toBeUndefined();
  });

  it("declines inputs longer than the bound", () => {
    const sql = "SELECT " + "a,".repeat(MAX_NORMALIZE_CHARS / 2) + "a";
    expect(normalize(sql)).toBeUndefined();
    expect(normalize(sql.slice(0, MAX_NORMALIZE_CHARS))).toBeDefined();
  });

  it("never throws, whatever the input", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
        const k = normalize(s);
        expect(k === undefined || typeof k === "string").toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

// -------------------------------------------------------------------------------------------
// Property tests: the cache key is sound.

interface Tok {
  readonly text: string;
  /** How a twin may replace this token without changing the statement's shape. */
  readonly kind: "num" | "str" | "bits" | "ws" | "word" | "fixed";
}

const NUMS = ["0", "1", "42", "3.14", ".5", "1e10", "2E-3", "0x1F", "0o17", "0b101", "1_000", "99999999999999999999"];
const STRS = [
  "''",
  "'a'",
  "'it''s'",
  "'; DROP TABLE users; --'",
  "'é😀'",
  "'multi\nline'",
  "'with\\backslash'",
  "E'a\\nb'",
  "E'\\''",
  "e'\\\\'",
  "E'\\x41'",
  "E'\\u00e9'",
  "$$x$$",
  "$$;$$",
  "$t$ $$ $t$",
  "$T_1$x$T_1$",
  "$a$x$ab$$a$",
  "E'x\\\\'",
  "U&'\\0041'",
  "U&'d!0061t' UESCAPE '!'",
  "'users'",
  "'public.users'",
];
const BITS = ["B'0101'", "b'1'", "X'1F'", "x'ff'"];
const WS = [" ", "  ", "\n", "\t", "/* c */", "/* /* nested */ */", "-- line\n", "/**/"];
const WORDS = ["select", "from", "where", "users", "t", "a", "e", "x", "b", "n", "u", "uescape", "regclass", "delete", "drop", "table", "set", "search_path", "nextval", "and", "in", "values", "insert", "into"];
const FIXED = ["(", ")", ",", ";", "*", "=", "::", ".", "'", '"', "$", "$1", "-", "/", "&", "+", "\\", '"q"', '"Q"', "1", "e", "[", "]"];

const tokArb: fc.Arbitrary<Tok> = fc.oneof(
  fc.constantFrom(...NUMS).map((text): Tok => ({ text, kind: "num" })),
  fc.constantFrom(...STRS).map((text): Tok => ({ text, kind: "str" })),
  fc.constantFrom(...BITS).map((text): Tok => ({ text, kind: "bits" })),
  fc.constantFrom(...WS).map((text): Tok => ({ text, kind: "ws" })),
  fc.constantFrom(...WORDS).map((text): Tok => ({ text, kind: "word" })),
  fc.constantFrom(...FIXED).map((text): Tok => ({ text, kind: "fixed" })),
);

/** A twin of a token sequence: literals swapped within their class, comments/whitespace
 * swapped, unquoted words re-cased. The seed array picks the replacements. */
function twin(toks: readonly Tok[], seeds: readonly number[]): string {
  return toks
    .map((t, i) => {
      const seed = seeds[i % Math.max(seeds.length, 1)] ?? 0;
      const pick = (pool: readonly string[]): string => pool[seed % pool.length] ?? "";
      switch (t.kind) {
        case "num":
          return pick(NUMS);
        case "str":
          return pick(STRS);
        case "bits":
          return pick(BITS);
        case "ws":
          return pick(WS);
        case "word":
          // words are ASCII: re-case code unit by code unit
          return Array.from({ length: t.text.length }, (_, k) => {
            const ch = t.text.charAt(k);
            return ((seed >> k) & 1) === 1 ? ch.toUpperCase() : ch;
          }).join("");
        case "fixed":
          return t.text;
      }
    })
    .join("");
}

interface Outcome {
  readonly ok: boolean;
  readonly fingerprint?: string;
  readonly shape?: string;
  readonly cacheable?: boolean;
  readonly facts?: unknown;
}

function outcome(sql: string): Outcome {
  const d = classifyDetailed(sql);
  if (!d.classification.ok) return { ok: false };
  let fingerprint: string;
  try {
    fingerprint = fingerprintSync(sql);
  } catch {
    fingerprint = "(fingerprint failed)";
  }
  return { ok: true, fingerprint, shape: treeShape(parseSync(sql)), cacheable: d.cacheable, facts: d.classification.statements };
}

const CONSTANT_NODES = new Set(["A_Const", "Integer", "Float", "Boolean", "String", "BitString"]);

/**
 * The parse tree with every value a literal could have produced erased: constant nodes become
 * empty and string and number fields go (libpg_query's JSON omits empty strings and zeros, so
 * presence can't count either). The fingerprint also ignores constants but keeps string fields
 * of utility statements (COPY's file name, DefElem values): two statements differing only in
 * such a literal have different fingerprints and the same shape.
 */
function treeShape(tree: unknown): string {
  const erase = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(erase);
    if (typeof v !== "object" || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === "string" || typeof x === "number" || typeof x === "bigint") continue;
      out[k] = CONSTANT_NODES.has(k) ? {} : erase(x);
    }
    return out;
  };
  return JSON.stringify(erase(tree));
}

/**
 * The cache's soundness condition for two texts with the same key: they parse alike (same
 * outcome, same fingerprint), and if either one's classification would be stored, the other's
 * is identical (a hit would hand it over).
 */
function expectSameShape(a: string, b: string): void {
  const oa = outcome(a);
  const ob = outcome(b);
  const pair = `\n${JSON.stringify(a)}\n${JSON.stringify(b)}`;
  expect(ob.ok, `parse outcome differs:${pair}`).toBe(oa.ok);
  if (!oa.ok) return;
  if (ob.fingerprint !== oa.fingerprint) expect(ob.shape, `parse trees differ:${pair}`).toBe(oa.shape);
  if (oa.cacheable === true || ob.cacheable === true) {
    expect(ob.facts, `facts differ:${pair}`).toEqual(oa.facts);
  }
}

describe("normalize: property tests against the real parser", () => {
  it("token soup: equal keys imply the same parse outcome, fingerprint and facts", () => {
    let equalKeys = 0;
    fc.assert(
      fc.property(fc.array(tokArb, { minLength: 1, maxLength: 14 }), fc.array(fc.nat(), { minLength: 1, maxLength: 14 }), (toks, seeds) => {
        const a = toks.map((t) => t.text).join("");
        const b = twin(toks, seeds);
        const ka = normalize(a);
        const kb = normalize(b);
        if (ka === undefined || ka !== kb) return;
        equalKeys++;
        expectSameShape(a, b);
      }),
      { numRuns: 4000 },
    );
    // The property must not hold vacuously.
    expect(equalKeys).toBeGreaterThan(400);
  });

  it("expressions in a valid frame: juxtaposed literals, words and operators", () => {
    // Separators between atoms: "" keeps atoms glued (E + 'x' is an E-string, 'a' + \n + 'b'
    // one continued literal); a twin keeps "" as "" and may swap the others.
    const SEPS = [" ", "\n", "/* c */", "-- c\n", "\t"];
    const atom = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...NUMS).map((text): Tok => ({ text, kind: "num" })) },
      { weight: 6, arbitrary: fc.constantFrom(...STRS).map((text): Tok => ({ text, kind: "str" })) },
      { weight: 1, arbitrary: fc.constantFrom(...BITS).map((text): Tok => ({ text, kind: "bits" })) },
      { weight: 3, arbitrary: fc.constantFrom("a", "e", "E", "b", "x", "n", "u", "U", "uescape", "regclass", "text", "int").map((text): Tok => ({ text, kind: "word" })) },
      { weight: 3, arbitrary: fc.constantFrom("+", "-", "||", "::", "&", "(", ")", ",", "=", ".", "'", '"', "$", "[1]").map((text): Tok => ({ text, kind: "fixed" })) },
    );
    const sep = fc.oneof(fc.constant(""), fc.constantFrom(...SEPS)).map((text): Tok => (text === "" ? { text, kind: "fixed" } : { text, kind: "ws" }));
    let valid = 0;
    let equalKeys = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(atom, sep), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), (pairs, seeds) => {
        const toks: Tok[] = [{ text: "SELECT ", kind: "fixed" }];
        for (const [a, s] of pairs) toks.push(a, s);
        toks.push({ text: " AS c FROM t", kind: "fixed" });
        const a = toks.map((t) => t.text).join("");
        const b = twin(toks, seeds);
        const ka = normalize(a);
        if (ka === undefined || ka !== normalize(b)) return;
        equalKeys++;
        if (classify(a).ok) valid++;
        expectSameShape(a, b);
      }),
      { numRuns: 5000 },
    );
    expect(equalKeys).toBeGreaterThan(1000);
    expect(valid).toBeGreaterThan(300);
  });

  it("corpus twins: swapping the literals of known tricky statements never fools the cache", () => {
    // Literal positions come from PostgreSQL's own scanner, replacements from pools of values
    // that change facts when a fact depends on them (relation names, on/off, 0/1, SQL text, …).
    const STRING_POOL = ["'x'", "'users'", "'public.users'", "'c'", "'sql'", "'off'", "'on'", "'0'", "'1'", "'evil, public'", "'DELETE FROM users'", "'select 1'", "$$x$$", "E'y'", "''"];
    const INT_POOL = ["0", "1", "2", "16384"];
    const corpus = [
      ...BYPASS_CASES.map((c) => c.sql),
      "EXPLAIN (ANALYZE 0) DELETE FROM t",
      "VACUUM (ANALYZE 1) t",
      "SELECT set_config('search_path', 'a', false)",
      "SELECT set_config('work_mem', '1GB', true)",
      "SELECT crosstab('select 1', 'select 2')",
      "SELECT crosstab('select 1', 2)",
      "SELECT ts_rewrite('a'::tsquery, 'select 1')",
      "SET standard_conforming_strings = 'on'",
      "SET client_encoding = 'UTF8'",
      "CREATE FUNCTION f() RETURNS int LANGUAGE 'sql' AS 'select 1'",
      "SELECT currval('s'), setval('s', 1)",
      "SELECT * FROM users WHERE id = 1 AND name = 'x' LIMIT 10",
    ];
    let checked = 0;
    fc.assert(
      fc.property(fc.constantFrom(...corpus), fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), (sql, seeds) => {
        let tokens;
        try {
          tokens = scanSync(sql).tokens;
        } catch {
          return;
        }
        let out = "";
        let pos = 0;
        let k = 0;
        tokens.forEach((t, i) => {
          const prev = tokens[i - 1];
          const afterUescape = prev !== undefined && prev.text.toLowerCase() === "uescape";
          const pool = t.tokenName === "SCONST" && !afterUescape ? STRING_POOL : t.tokenName === "ICONST" ? INT_POOL : undefined;
          if (pool === undefined) return;
          const seed = seeds[k++ % seeds.length] ?? 0;
          out += sql.slice(pos, t.start) + (pool[seed % pool.length] ?? "");
          pos = t.end;
        });
        const twinSql = out + sql.slice(pos);
        const ka = normalize(sql);
        if (ka === undefined || ka !== normalize(twinSql)) return;
        checked++;
        expectSameShape(sql, twinSql);
      }),
      { numRuns: 3000 },
    );
    expect(checked).toBeGreaterThan(1000);
  });

  it("generated statements: literal values never change the key, and equal keys mean equal facts", () => {
    const ident = fc.constantFrom("users", "orders", "t", '"Users"', "public.users", '"public"."users"', "a", "password", "id");
    const col = fc.constantFrom("id", "name", "password", '"Email"', "u.id", "t.password");
    const lit = fc.oneof(
      fc.constantFrom(...NUMS).map((text): Tok => ({ text, kind: "num" })),
      fc.constantFrom(...STRS).map((text): Tok => ({ text, kind: "str" })),
      fc.constantFrom(...BITS).map((text): Tok => ({ text, kind: "bits" })),
    );
    const ws = fc.constantFrom(...WS).map((text): Tok => ({ text, kind: "ws" }));
    const word = (w: string): Tok => ({ text: w, kind: "word" });
    const fixed = (f: string): Tok => ({ text: f, kind: "fixed" });
    const raw = (text: string): Tok => ({ text, kind: "fixed" });
    const cond = fc.tuple(col, fc.constantFrom("=", "<>", "<", ">=", "LIKE"), lit, ws, ws).map(([c, op, l, w1, w2]): Tok[] => [
      raw(c),
      w1,
      fixed(op),
      w2,
      l,
    ]);
    const where = fc.option(fc.tuple(ws, cond, ws, fc.option(fc.tuple(cond, ws), { nil: undefined })), { nil: undefined }).map((w): Tok[] => {
      if (w === undefined) return [];
      const [w1, c1, w2, more] = w;
      const out: Tok[] = [w1, word("where"), { text: " ", kind: "ws" }, ...c1, w2];
      if (more !== undefined) out.push(word("and"), { text: " ", kind: "ws" }, ...more[0], more[1]);
      return out;
    });
    const stmt = fc.oneof(
      fc.tuple(ws, col, ws, ident, where).map(([w1, c, w2, t, wh]): Tok[] => [word("select"), w1, raw(c), w2, word("from"), { text: " ", kind: "ws" }, raw(t), { text: " u", kind: "fixed" }, ...wh]),
      fc.tuple(ws, ident, lit, ws, lit).map(([w1, t, l1, w2, l2]): Tok[] => [word("insert"), w1, word("into"), { text: " ", kind: "ws" }, raw(t), raw(" (a, b) "), word("values"), raw(" ("), l1, raw(","), w2, l2, raw(")")]),
      fc.tuple(ws, ident, col, lit, where).map(([w1, t, c, l, wh]): Tok[] => [word("update"), w1, raw(t), raw(" "), word("set"), raw(" "), raw(c.replace(/^\w\./, "")), raw(" = "), l, ...wh]),
      fc.tuple(ws, ident, where).map(([w1, t, wh]): Tok[] => [word("delete"), w1, word("from"), { text: " ", kind: "ws" }, raw(t), ...wh]),
    );
    let compared = 0;
    fc.assert(
      fc.property(stmt, fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), (toks, seeds) => {
        const a = toks.map((t) => t.text).join("");
        const b = twin(toks, seeds);
        const ka = normalize(a);
        const kb = normalize(b);
        if (ka === undefined || kb === undefined) return; // e.g. a backslash in a plain string
        // Twins differ only in literal values (same class), comments, spacing and case.
        expect(kb, `${JSON.stringify(a)}\n${JSON.stringify(b)}`).toBe(ka);
        expect(classify(a).ok, a).toBe(true);
        compared++;
        expectSameShape(a, b);
      }),
      { numRuns: 1500 },
    );
    expect(compared).toBeGreaterThan(500);
  });
});

// -------------------------------------------------------------------------------------------

describe("ClassificationCache", () => {
  it("answers repeated shapes from the cache with the same (frozen) result", () => {
    const cache = new ClassificationCache();
    const a = cache.classify("SELECT password FROM users WHERE id = 1");
    const b = cache.classify("select password from users where id = 2 -- again");
    expect(b).toBe(a);
    expect(b).toEqual(classify("SELECT password FROM users WHERE id = 3"));
    expect(Object.isFrozen(a)).toBe(true);
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, uncacheable: 0, unnormalizable: 0, entries: 1 });
  });

  it("never caches what depends on literal values", () => {
    const cache = new ClassificationCache();
    const users = cache.classify("SELECT 'users'::regclass");
    const orders = cache.classify("SELECT 'orders'::regclass");
    expect(users).toEqual(classify("SELECT 'users'::regclass"));
    expect(orders).toEqual(classify("SELECT 'orders'::regclass"));
    expect(cache.classify("SET search_path = evil").ok && cache.classify("SET search_path = good")).toEqual(
      classify("SET search_path = good"),
    );
    expect(cache.classify("SELECT nextval('a')")).toEqual(classify("SELECT nextval('a')"));
    expect(cache.classify("SELECT nextval('b')")).toEqual(classify("SELECT nextval('b')"));
    expect(cache.classify("EXPLAIN (ANALYZE 0) DELETE FROM t")).toEqual(classify("EXPLAIN (ANALYZE 0) DELETE FROM t"));
    expect(cache.classify("EXPLAIN (ANALYZE 1) DELETE FROM t")).toEqual(classify("EXPLAIN (ANALYZE 1) DELETE FROM t"));
    expect(cache.classify("DO $$ BEGIN END $$").ok).toBe(true);
    cache.classify("CREATE FUNCTION f() RETURNS int LANGUAGE 'sql' AS 'select 1'");
    expect(cache.classify("CREATE FUNCTION f() RETURNS int LANGUAGE 'c' AS 'evil'")).toEqual(
      classify("CREATE FUNCTION f() RETURNS int LANGUAGE 'c' AS 'evil'"),
    );
    expect(cache.stats().hits).toBe(0);
    expect(cache.stats().entries).toBe(0);
  });

  it("does not cache parse errors (their positions depend on literal lengths)", () => {
    const cache = new ClassificationCache();
    expect(cache.classify("SELECT 'a' FROM")).toEqual(classify("SELECT 'a' FROM"));
    expect(cache.classify("SELECT 'abcdef' FROM")).toEqual(classify("SELECT 'abcdef' FROM"));
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 2, uncacheable: 2, entries: 0 });
  });

  it("classifies what the normaliser declines directly", () => {
    const cache = new ClassificationCache();
    expect(cache.classify("SELECT 'a\\b' FROM users")).toEqual(classify("SELECT 'a\\b' FROM users"));
    expect(cache.stats()).toMatchObject({ unnormalizable: 1, misses: 0, entries: 0 });
  });

  it("evicts the least recently used entry", () => {
    const cache = new ClassificationCache(2);
    cache.classify("SELECT 1 FROM a");
    cache.classify("SELECT 1 FROM b");
    cache.classify("SELECT 2 FROM a"); // hit: a is now the most recent
    cache.classify("SELECT 1 FROM c"); // evicts b
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 3, entries: 2 });
    cache.classify("SELECT 3 FROM a"); // still cached
    expect(cache.stats().hits).toBe(2);
    cache.classify("SELECT 3 FROM b"); // was evicted
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 4 });
  });

  it("bounds the total size of its keys", () => {
    const cache = new ClassificationCache(100, 60);
    cache.classify("SELECT a, b, c FROM first_table"); // 32 chars
    cache.classify("SELECT a, b, c FROM other_table"); // 32 more: over 60, evicts the first
    expect(cache.stats().entries).toBe(1);
    cache.classify("SELECT " + "x, ".repeat(30) + "y FROM t"); // longer than the budget: not stored
    expect(cache.stats()).toMatchObject({ entries: 1, uncacheable: 1 });
  });

  it("close() empties it", async () => {
    const cache = new ClassificationCache();
    cache.classify("SELECT 1");
    await cache.close();
    expect(cache.stats().entries).toBe(0);
  });
});
