/**
 * The verdict cache of SessionPolicies (issue 13: decide once per statement shape): a cached
 * verdict must never let a statement skip a decision it needs. Each test below fails if the
 * cache ignored one of the things a verdict depends on (session state such as search_path and
 * role, prepared statements, the catalog's generation, the entry's age); the property test
 * compares a cached session with an uncached one over random statement sequences.
 */
import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { EvaluatorVerdict as Verdict } from "../core/decision.js";
import type { DbQueryEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import { parseConfig, type RawConfig } from "../runtime/config.js";
import type { SessionEvaluator } from "./evaluator.js";
import { PolicyEvaluator, type ViewResolver } from "./policies.js";
import { ClassificationCache, initSqlParser, type ColumnAccess } from "./sql/index.js";

type RawPolicy = NonNullable<RawConfig["policies"]>[number];

beforeAll(async () => {
  await initSqlParser();
});

afterEach(() => {
  vi.useRealTimers();
});

const CONNECTIONS = [{ name: "shop", type: "postgres", host: "db", database: "shop", user: "app", groups: ["agents"] }];

function info(): SessionInfo {
  return {
    id: crypto.randomUUID(),
    clientProtocol: "postgres",
    targetType: "postgres",
    connection: "shop",
    principal: { kind: "service_account", id: "sa:bot", name: "bot", groups: ["agents"] },
    clientAddress: "127.0.0.1:5000",
    startedAt: new Date(),
    attributes: {},
  };
}

function open(policies: readonly RawPolicy[], opts: { resolver?: ViewResolver; verdictCache?: boolean } = {}): (sql: string, stage?: DbQueryEvent["stage"], name?: string) => Verdict {
  const config = parseConfig({ connections: CONNECTIONS, policies });
  const evaluator = new PolicyEvaluator(config.policies, config.connections, new ClassificationCache(), opts.resolver, { verdictCache: opts.verdictCache ?? true });
  const session = info();
  const s: SessionEvaluator | undefined = evaluator.openSession(session);
  if (s === undefined) throw new Error("no policy applies");
  let seq = 0;
  return (sql, stage = "simple", name) => {
    const event: DbQueryEvent = { type: "db.query", session, seq: ++seq, stage, sql, ...(name === undefined ? {} : { statementName: name }) };
    const d = s.evaluate(event);
    if (d === undefined || d instanceof Promise) throw new Error("expected a synchronous verdict");
    return d;
  };
}

const EVIL_X: RawPolicy = { name: "no-evil-x", match: { relations: ["evil.x"] }, action: "deny" };
const NO_BARE_DELETE: RawPolicy = { name: "no-bare-delete", match: { operations: ["delete"], noWhere: true }, action: "deny" };
const MASK_EMAIL: RawPolicy = { name: "pii", action: "mask", columns: ["*.email"], detectors: ["email"], strategy: "redact" };

describe("verdict cache", () => {
  it("answers a repeated stateless statement from the cache (the same verdict object)", () => {
    const judge = open([EVIL_X, MASK_EMAIL]);
    const first = judge("select email from customers where id = 1");
    expect(first.type).toBe("allow");
    expect(judge("select email from customers where id = 1")).toBe(first);
    // Off: decided again each time.
    const uncached = open([EVIL_X, MASK_EMAIL], { verdictCache: false });
    expect(uncached("select email from customers where id = 1")).not.toBe(uncached("select email from customers where id = 1"));
  });

  it("statements that differ only in literal values share one decision (by shape)", () => {
    const judge = open([EVIL_X, MASK_EMAIL]);
    const first = judge("select email from customers where id = 1");
    expect(judge("SELECT email FROM customers WHERE id = 42")).toBe(first);
    expect(judge("select email from customers where id = 1 and note = 'x'")).not.toBe(first);
  });

  it("with a statementRegex policy, the text decides: no sharing by shape", () => {
    const judge = open([{ name: "no-magic", match: { statementRegex: "magic" }, action: "deny" }]);
    expect(judge("select * from t where note = 'plain'").type).toBe("allow");
    const d = judge("select * from t where note = 'magic'");
    expect(d.type).toBe("deny");
    expect(d.rule).toBe("no-magic");
  });

  it("settings statements are keyed by their text in a read-only session", () => {
    const judge = open([{ name: "ro", action: "allow", readOnly: true }]);
    expect(judge("set work_mem = '64MB'").type).toBe("allow");
    expect(judge("set transaction_read_only = 'off'").type).toBe("deny");
    expect(judge("set work_mem = '32MB'").type).toBe("allow");
  });

  it("SET search_path changes what a cached unqualified name may resolve to", () => {
    const judge = open([EVIL_X]);
    expect(judge("select * from x").type).toBe("allow");
    expect(judge("select * from x").type).toBe("allow");
    expect(judge("set search_path = evil, public").type).toBe("allow");
    const d = judge("select * from x");
    expect(d.type).toBe("deny");
    expect(d.rule).toBe("no-evil-x");
  });

  it("a search_path set inside a multi-statement message applies to a cached statement later", () => {
    const judge = open([EVIL_X]);
    expect(judge("select * from x").type).toBe("allow");
    expect(judge("select 1; set search_path = evil").type).toBe("allow");
    expect(judge("select * from x").type).toBe("deny");
  });

  it("SET ROLE makes the search_path unknown: a cached allow is not reused", () => {
    const judge = open([EVIL_X]);
    expect(judge("select * from x").type).toBe("allow");
    expect(judge("set role someone_else").type).toBe("allow");
    expect(judge("select * from x").type).toBe("deny");
  });

  it("set_config of search_path is never cached and invalidates what was", () => {
    const judge = open([EVIL_X]);
    expect(judge("select * from x").type).toBe("allow");
    judge("select set_config('search_path', 'evil', false)");
    expect(judge("select * from x").type).toBe("deny");
  });

  it("EXECUTE is judged against what the name is prepared as now", () => {
    const judge = open([NO_BARE_DELETE]);
    expect(judge("prepare p as select 1").type).toBe("allow");
    expect(judge("execute p").type).toBe("allow");
    expect(judge("deallocate p").type).toBe("allow");
    expect(judge("prepare p as delete from orders").type).toBe("deny");
    // The refused PREPARE did not define p; a new one does.
    expect(judge("prepare p2 as delete from orders").type).toBe("deny");
  });

  it("a protocol Parse of a named statement defines it for a later EXECUTE even when its text was cached", () => {
    const judge = open([NO_BARE_DELETE]);
    expect(judge("select 1").type).toBe("allow");
    expect(judge("select 1", "prepare", "s1").type).toBe("allow");
    expect(judge("execute s1").type).toBe("allow");
    expect(judge("execute s2").type).toBe("deny"); // unknown prepared statement: fail closed
  });

  it("a catalog generation change (DDL seen by the gateway) re-decides a cached statement", () => {
    let generation = 0;
    let viewReads: readonly ColumnAccess[] = [];
    const resolver: ViewResolver = {
      resolve: (_c, candidates) => (candidates.some((c) => c.name === "v") ? viewReads : []),
      generation: () => generation,
    };
    const judge = open([{ name: "no-ssn", match: { columns: ["*.ssn"] }, action: "deny" }], { resolver });
    expect(judge("select name from v").type).toBe("allow");
    viewReads = [{ relation: { schema: "public", name: "people" }, column: "ssn", access: "read" }];
    generation++;
    const d = judge("select name from v");
    expect(d.type).toBe("deny");
    expect(d.rule).toBe("no-ssn");
  });

  it("an entry is used for at most a second: a changed catalog answer is seen after that", () => {
    vi.useFakeTimers({ now: new Date("2026-12-07T12:00:00Z"), toFake: ["Date"] });
    let viewReads: readonly ColumnAccess[] = [];
    const resolver: ViewResolver = { resolve: (_c, candidates) => (candidates.some((c) => c.name === "v") ? viewReads : []), generation: () => 0 };
    const judge = open([{ name: "no-ssn", match: { columns: ["*.ssn"] }, action: "deny" }], { resolver });
    expect(judge("select name from v").type).toBe("allow");
    viewReads = [{ relation: { schema: "public", name: "people" }, column: "ssn", access: "read" }];
    vi.setSystemTime(new Date("2026-12-07T12:00:01.500Z"));
    expect(judge("select name from v").type).toBe("deny");
  });

  it("the stage is part of the key: a Parse and a Query of the same text are each decided", () => {
    const judge = open([MASK_EMAIL]);
    const q = judge("select email from customers");
    const p = judge("select email from customers", "prepare", "");
    expect(p).not.toBe(q);
    expect(JSON.stringify(p)).toBe(JSON.stringify(q));
  });

  it("decides exactly as an uncached session over random statement sequences (property)", () => {
    const policies: RawPolicy[] = [
      EVIL_X,
      NO_BARE_DELETE,
      MASK_EMAIL,
      { name: "card-rows", match: { relations: ["cards"] }, action: "allow", maxRows: 10 },
      { name: "no-drop", match: { operations: ["drop"] }, action: "deny" },
    ];
    const statements = [
      "select * from x",
      "select * from evil.x",
      "select email from customers",
      "select * from cards",
      "select * from v2",
      "set search_path = evil, public",
      "set search_path = public",
      "set role other",
      "reset role",
      "prepare p as select * from x",
      "prepare q as delete from orders",
      "execute p",
      "execute q",
      "deallocate p",
      "create view v2 as select email from customers",
      "alter table x rename to y",
      "select * from y",
      "delete from orders",
      "delete from orders where id = 1",
      "drop table x",
      "select set_config('search_path', 'evil', false)",
      "select 1; select * from x",
      "this is not sql",
      "select * from x where id = 1",
      "select * from x where id = 2",
      "select * from t where note = 'magic'",
      "select * from t where note = 'plain'",
      "select email from customers where id = 7",
    ];
    for (const set of [policies, [...policies, { name: "no-magic", match: { statementRegex: "magic" }, action: "deny" } satisfies RawPolicy]]) {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: statements.length - 1 }), { minLength: 1, maxLength: 30 }), (picks) => {
          const cached = open(set);
          const fresh = open(set, { verdictCache: false });
          for (const i of picks) {
            const sql = statements[i] ?? "select 1";
            expect(JSON.stringify(cached(sql))).toBe(JSON.stringify(fresh(sql)));
          }
        }),
        { numRuns: 150 },
      );
    }
  });
});
