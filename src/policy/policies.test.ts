/**
 * PolicyEvaluator / SessionPolicies unit tests: the evaluator is driven directly (no server),
 * with policies validated by parseConfig exactly as in production. End-to-end behaviour with a
 * real PostgreSQL lives in test/guardrails.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { AllowDecision, DenyDecision, EvaluatorVerdict as Verdict, HoldDecision, MaskRule } from "../core/decision.js";
import { isGatewayError } from "../core/errors.js";
import { createMaskerFactory } from "../masking/index.js";
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

/** `shop` connects upstream as "App": its schema `app` is on the default search_path ($user). */
const CONNECTIONS = [
  { name: "shop", type: "postgres", host: "db", database: "shop", user: "App", groups: ["agents", "dba"] },
  { name: "shop_ro", type: "postgres", host: "db", database: "shop", user: "reader", groups: ["agents"] },
  { name: "billing", type: "postgres", host: "db", database: "billing", user: "billing", groups: ["agents"] },
];

function makeEvaluator(policies: readonly RawPolicy[], resolver?: ViewResolver): PolicyEvaluator {
  const config = parseConfig({ connections: CONNECTIONS, policies });
  return new PolicyEvaluator(config.policies, config.connections, new ClassificationCache(), resolver);
}

interface SessionOptions {
  readonly connection?: string;
  readonly groups?: readonly string[];
  readonly attributes?: Readonly<Record<string, string>>;
}

function sessionInfo(opts: SessionOptions = {}): SessionInfo {
  return {
    id: crypto.randomUUID(),
    clientProtocol: "postgres", targetType: "postgres",
    connection: opts.connection ?? "shop",
    principal: { kind: "service_account", id: "sa:bot", name: "bot", groups: opts.groups ?? ["agents"] },
    clientAddress: "127.0.0.1:5000",
    startedAt: new Date(),
    attributes: opts.attributes ?? {},
  };
}

/** One open session: numbers statements and unwraps synchronous decisions. */
class Session {
  #seq = 0;
  constructor(
    readonly evaluator: SessionEvaluator,
    readonly info: SessionInfo,
  ) {}

  event(sql: string, stage: DbQueryEvent["stage"] = "simple", statementName?: string): DbQueryEvent {
    this.#seq++;
    const base = { type: "db.query" as const, session: this.info, seq: this.#seq, stage, sql };
    return statementName === undefined ? base : { ...base, statementName };
  }

  raw(sql: string, stage: DbQueryEvent["stage"] = "simple", statementName?: string): ReturnType<SessionEvaluator["evaluate"]> {
    return this.evaluator.evaluate(this.event(sql, stage, statementName));
  }

  /** A simple-protocol Query, judged synchronously. */
  query(sql: string): Verdict {
    return syncDecision(this.raw(sql));
  }

  /** An extended-protocol Parse of a (named) prepared statement. */
  parse(sql: string, statementName: string): Verdict {
    return syncDecision(this.raw(sql, "prepare", statementName));
  }
}

function syncDecision(d: ReturnType<SessionEvaluator["evaluate"]>): Verdict {
  if (d instanceof Promise) throw new Error("expected a synchronous decision, got a promise");
  if (d === undefined) throw new Error("expected a decision, got none");
  return d;
}

function open(policies: readonly RawPolicy[], opts: SessionOptions & { readonly resolver?: ViewResolver } = {}): Session {
  const info = sessionInfo(opts);
  const s = makeEvaluator(policies, opts.resolver).openSession(info);
  if (s === undefined) throw new Error("no policy applies to this session");
  return new Session(s, info);
}

function held(d: Verdict): HoldDecision {
  if (d.type !== "hold") throw new Error(`expected a hold, got ${JSON.stringify(d)}`);
  return d;
}

function denied(d: Verdict, rule: string): DenyDecision {
  if (d.type !== "deny") throw new Error(`expected a deny by ${rule}, got ${JSON.stringify(d)}`);
  expect(d.code).toBe("GW_POLICY_DENIED");
  expect(d.rule).toBe(rule);
  return d;
}

function allowed(d: Verdict): AllowDecision {
  if (d.type !== "allow") throw new Error(`expected allow, got ${JSON.stringify(d)}`);
  return d;
}

function ruleNames(d: Verdict): string[] {
  return (allowed(d).plan?.masks ?? []).map((m) => m.rule);
}

const NO_DROP: RawPolicy = { name: "no-drop", match: { operations: ["drop"] }, action: "deny" };

describe("applicability", () => {
  it("opens no session evaluator when no policy applies", () => {
    expect(makeEvaluator([]).openSession(sessionInfo())).toBeUndefined();
    const ev = makeEvaluator([{ ...NO_DROP, connections: ["shop*"] }]);
    expect(ev.openSession(sessionInfo({ connection: "shop" }))).toBeDefined();
    expect(ev.openSession(sessionInfo({ connection: "shop_ro" }))).toBeDefined();
    expect(ev.openSession(sessionInfo({ connection: "billing" }))).toBeUndefined();
  });

  it("filters by groups: any one shared group suffices", () => {
    const ev = makeEvaluator([{ ...NO_DROP, groups: ["dba", "ops"] }]);
    expect(ev.openSession(sessionInfo({ groups: ["agents"] }))).toBeUndefined();
    expect(ev.openSession(sessionInfo({ groups: [] }))).toBeUndefined();
    expect(ev.openSession(sessionInfo({ groups: ["agents", "ops"] }))).toBeDefined();
  });

  it("judges a session only by the policies of its connection", () => {
    const policies: RawPolicy[] = [
      { ...NO_DROP, connections: ["billing"] },
      { name: "hide-email", connections: ["shop"], action: "mask", columns: ["customers.email"] },
    ];
    const shop = open(policies, { connection: "shop" });
    expect(ruleNames(shop.query("drop table orders"))).toEqual(["hide-email"]);
    const billing = open(policies, { connection: "billing" });
    denied(billing.query("drop table orders"), "no-drop");
  });

  it("lets a group-scoped allow exempt only that group", () => {
    const policies: RawPolicy[] = [
      { name: "dba-may-drop-tables", groups: ["dba"], match: { operations: ["drop_table"] }, action: "allow" },
      NO_DROP,
    ];
    denied(open(policies, { groups: ["agents"] }).query("drop table t"), "no-drop");
    const dba = open(policies, { groups: ["dba"] });
    expect(dba.query("drop table t")).toEqual({ type: "allow" });
    denied(dba.query("drop index i"), "no-drop");
  });

  it("has no opinion on fastpath function calls (the feature evaluator judges them)", () => {
    const s = open([NO_DROP]);
    expect(s.evaluator.kinds).toEqual(["db.query"]);
    expect(s.evaluator.evaluate({ type: "db.function_call", session: s.info, seq: 1, functionOid: 764, argumentCount: 1 })).toBeUndefined();
  });
});

describe("ordering and refusals", () => {
  const first: RawPolicy = { name: "first", match: { operations: ["delete"] }, action: "deny" };
  const second: RawPolicy = { name: "second", match: { relations: ["orders"] }, action: "deny", message: "orders are off limits" };

  it("the first matching guard decides", () => {
    denied(open([first, second]).query("delete from orders where id = 1"), "first");
    const d = denied(open([second, first]).query("delete from orders where id = 1"), "second");
    expect(d.message).toBe("orders are off limits");
    denied(open([first, second]).query("select * from orders"), "second");
  });

  it("an earlier matching allow exempts the statement from later guards; a later or non-matching one does not", () => {
    const allowOrders: RawPolicy = { name: "orders-ok", match: { relations: ["orders"] }, action: "allow" };
    expect(open([allowOrders, first]).query("delete from orders where id = 1")).toEqual({ type: "allow" });
    denied(open([allowOrders, first]).query("delete from customers where id = 1"), "first");
    denied(open([first, allowOrders]).query("delete from orders where id = 1"), "first");
  });

  it("uses a default message naming the rule, or the policy's message", () => {
    const d = denied(open([first]).query("delete from t where id = 1"), "first");
    expect(d.message).toBe("the statement is not allowed (rule first)");
    const custom = denied(open([{ ...first, message: "no deletes today" }]).query("delete from t where id = 1"), "first");
    expect(custom.message).toBe("no deletes today");
  });

  it("holds require_approval statements for the pipeline, naming the approver groups and the rule's settings", () => {
    const approval: RawPolicy = { name: "writes-need-approval", match: { operations: ["insert"] }, action: "require_approval", approvers: ["dba", "leads"] };
    const d = held(open([approval]).query("insert into orders values (1)"));
    expect(d).toMatchObject({
      need: "approval",
      rule: "writes-need-approval",
      message: "the statement needs approval (rule writes-need-approval)",
      approvers: ["dba", "leads"],
      minApprovals: 1,
      timeoutMs: 600_000,
      mode: "wait",
      summary: { operations: ["insert"], relations: ["orders"] },
    });
    const custom = held(open([{ ...approval, message: "ask a DBA", minApprovals: 2, timeout: "30s", mode: "async" }]).query("insert into orders values (1)"));
    expect(custom).toMatchObject({ message: "ask a DBA", minApprovals: 2, timeoutMs: 30_000, mode: "async" });
    expect(open([approval]).query("select 1")).toEqual({ type: "allow" });
  });

  it("records a held PREPARE only once it is allowed", () => {
    const approval: RawPolicy = { name: "deletes", match: { operations: ["delete"] }, action: "require_approval", approvers: ["dba"] };
    const s = open([approval]);
    held(s.query("prepare p as delete from orders where id = 2"));
    // Not allowed yet: EXECUTE of it is unknown (fail closed).
    denied(s.query("execute p"), "fail-closed");
    const h = held(s.query("prepare q as delete from orders where id = 1"));
    h.onAllowed?.();
    // Now known, with the DELETE's facts: running it needs approval again.
    expect(held(s.query("execute q")).rule).toBe("deletes");
  });

  it("refuses a whole multi-statement query when any one statement matches", () => {
    const s = open([NO_DROP]);
    denied(s.query("insert into t values (1); drop table t; select 1"), "no-drop");
    expect(s.query("insert into t values (1); select 1")).toEqual({ type: "allow" });
  });
});

describe("matchers", () => {
  it("operations: exact tags, case-insensitive, and globs", () => {
    const exact = open([{ name: "r", match: { operations: ["DROP_TABLE"] }, action: "deny" }]);
    denied(exact.query("drop table t"), "r");
    expect(exact.query("drop index i").type).toBe("allow");
    const glob = open([{ name: "r", match: { operations: ["drop*"] }, action: "deny" }]);
    for (const sql of ["drop table t", "drop index i", "drop schema s cascade", "drop owned by r"]) denied(glob.query(sql), "r");
    expect(glob.query("create table t (a int)").type).toBe("allow");
  });

  it("relations: unqualified globs match any schema; qualified globs follow the search path", () => {
    const bare = open([{ name: "r", match: { relations: ["users"] }, action: "deny" }]);
    for (const sql of ["select 1 from users", "select 1 from public.users", "select 1 from evil.users", "insert into users values (1)"]) denied(bare.query(sql), "r");
    expect(bare.query("select 1 from accounts").type).toBe("allow");

    const qualified = open([{ name: "r", match: { relations: ["public.users"] }, action: "deny" }]);
    denied(qualified.query("select 1 from users"), "r");
    denied(qualified.query("select 1 from PUBLIC.users"), "r");
    expect(qualified.query("select 1 from evil.users").type).toBe("allow");
  });

  it("relations: after SET search_path an unqualified name also matches the new schemas' globs", () => {
    const s = open([{ name: "evil-schema", match: { relations: ["evil.*"] }, action: "deny" }]);
    expect(s.query("select * from x").type).toBe("allow");
    expect(s.query("SET search_path = evil, public").type).toBe("allow");
    denied(s.query("select * from x"), "evil-schema");
    denied(s.query("drop table secrets"), "evil-schema");
    // A qualified name is not resolved through the search path.
    expect(s.query("select * from public.x").type).toBe("allow");
  });

  it("relations: a quoted search_path entry is tracked too", () => {
    const s = open([{ name: "r", match: { relations: ["vault.secrets"] }, action: "deny" }]);
    expect(s.query("select * from secrets").type).toBe("allow");
    expect(s.query(`set search_path to "Vault"`).type).toBe("allow");
    denied(s.query("select * from secrets"), "r");
  });

  it("relations: the session's initial search_path and the upstream user's schema ($user) count", () => {
    const policy: RawPolicy = { name: "r", match: { relations: ["evil.x", "app.secrets"] }, action: "deny" };
    denied(open([policy], { attributes: { search_path: `"$user", evil` } }).query("select * from x"), "r");
    expect(open([policy]).query("select * from x").type).toBe("allow");
    // shop connects as "App"; billing as "billing".
    denied(open([policy], { connection: "shop" }).query("select * from secrets"), "r");
    expect(open([policy], { connection: "billing" }).query("select * from secrets").type).toBe("allow");
  });

  it("relations: after set_config() the search path is unknown, so a bare name may be in any schema a policy names", () => {
    const s = open([{ name: "vault", match: { relations: ["vault.secrets"] }, action: "deny" }]);
    expect(s.query("select * from secrets").type).toBe("allow");
    expect(s.query("select set_config('work_mem', '64kB', false)").type).toBe("allow");
    denied(s.query("select * from secrets"), "vault");
    expect(s.query("select * from other").type).toBe("allow");
  });

  it("relations: set_config of search_path to a value not known statically fails closed", () => {
    const s = open([{ name: "vault", match: { relations: ["vault.secrets"] }, action: "deny" }]);
    const d = denied(s.query("select set_config('search_path', current_user, false)"), "fail-closed");
    expect(d.message).toContain("fail closed");
  });

  it("columns: named, star, whole-row, written and relation-less columns all match", () => {
    const s = open([{ name: "no-passwords", match: { columns: ["users.password"] }, action: "deny" }]);
    for (const sql of [
      "select password from users",
      'select "password" from "users"',
      "select * from users",
      "select u.* from users u",
      "select u from users u",
      "select row_to_json(u) from users u",
      "select * from public.users",
      "insert into users values (1, 'ada', 'x')",
      "update users set password = 'x' where id = 1",
      "select password", // no relation could own it: matched by column name alone
    ]) {
      denied(s.query(sql), "no-passwords");
    }
    for (const sql of ["select name from users", "select 1 from users", "select count(*) from users", "select password from accounts", "select * from accounts"]) {
      expect(s.query(sql).type, sql).toBe("allow");
    }
  });

  it("columns: qualified, bare and globbed column patterns", () => {
    const qualified = open([{ name: "r", match: { columns: ["public.users.password"] }, action: "deny" }]);
    denied(qualified.query("select password from users"), "r");
    expect(qualified.query("select password from evil.users").type).toBe("allow");
    const bare = open([{ name: "r", match: { columns: ["password"] }, action: "deny" }]);
    denied(bare.query("select password from accounts"), "r");
    expect(bare.query("select name from accounts").type).toBe("allow");
    const glob = open([{ name: "r", match: { columns: ["users.pass*"] }, action: "deny" }]);
    denied(glob.query("select passphrase from users"), "r");
    expect(glob.query("select name from users").type).toBe("allow");
  });

  it("functions: unqualified globs match any schema, qualified ones only theirs", () => {
    const bare = open([{ name: "r", match: { functions: ["pg_sleep", "pg_read_*"] }, action: "deny" }]);
    for (const sql of ["select pg_sleep(1)", "select pg_catalog.pg_sleep(1)", "select evil.pg_sleep(1)", "select pg_read_file('/etc/passwd')"]) denied(bare.query(sql), "r");
    expect(bare.query("select now()").type).toBe("allow");
    const qualified = open([{ name: "r", match: { functions: ["pg_catalog.pg_sleep"] }, action: "deny" }]);
    denied(qualified.query("select pg_catalog.pg_sleep(1)"), "r");
    expect(qualified.query("select evil.pg_sleep(1)").type).toBe("allow");
  });

  it("noWhere: true matches only unrestricted writes, false only restricted ones", () => {
    const bulk = open([{ name: "bulk", match: { operations: ["delete", "update"], noWhere: true }, action: "deny" }]);
    for (const sql of ["delete from orders", "update orders set total = 0", "update orders set total = 0 where true"]) denied(bulk.query(sql), "bulk");
    for (const sql of ["delete from orders where id = 1", "select * from orders"]) expect(bulk.query(sql).type, sql).toBe("allow");
    const restricted = open([{ name: "restricted", match: { operations: ["delete"], noWhere: false }, action: "deny" }]);
    denied(restricted.query("delete from orders where id = 1"), "restricted");
    expect(restricted.query("delete from orders").type).toBe("allow");
  });

  it("statementRegex: unanchored, case-insensitive, dot matches newlines, RE2 (linear time)", () => {
    const s = open([
      { name: "marker", match: { statementRegex: "forbidden_marker" }, action: "deny" },
      { name: "activity", match: { statementRegex: "^select.*pg_stat_activity" }, action: "deny" },
      { name: "nested", match: { statementRegex: "(a+)+$" }, action: "deny" },
    ]);
    denied(s.query("SELECT 1 AS Forbidden_Marker"), "marker");
    denied(s.query("select 'x forbidden_marker y'"), "marker");
    denied(s.query("select\n*\nfrom pg_stat_activity"), "activity");
    expect(s.query("select 1").type).toBe("allow");
    // Exponential for a backtracking engine; RE2 answers at once.
    const started = Date.now();
    expect(s.query(`select '${"a".repeat(64)}!'`).type).toBe("allow");
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("statementRegex: a pattern RE2 cannot compile is a configuration error naming the policy", () => {
    for (const pattern of ["(a)\\1", "(?=x)", "["]) {
      let error: unknown;
      try {
        makeEvaluator([{ name: "bad-regex", match: { statementRegex: pattern }, action: "deny" }]);
      } catch (e) {
        error = e;
      }
      expect(isGatewayError(error) && error.code === "GW_CONFIG", pattern).toBe(true);
      expect(isGatewayError(error) ? error.message : "", pattern).toContain('"bad-regex"');
    }
  });

  it("combined keys must all hold for one and the same statement", () => {
    const s = open([{ name: "orders-deletes", match: { operations: ["delete"], relations: ["orders"] }, action: "deny" }]);
    denied(s.query("delete from orders where id = 1"), "orders-deletes");
    expect(s.query("delete from customers where id = 1").type).toBe("allow");
    expect(s.query("select * from orders").type).toBe("allow");
    expect(s.query("delete from customers where id = 1; select * from orders").type).toBe("allow");
    const cols = open([{ name: "pw-writes", match: { operations: ["update"], columns: ["users.password"], noWhere: false }, action: "deny" }]);
    denied(cols.query("update users set password = 'x' where id = 1"), "pw-writes");
    expect(cols.query("update users set password = 'x'").type).toBe("allow");
    expect(cols.query("update users set name = 'x' where id = 1").type).toBe("allow");
    expect(cols.query("select password from users").type).toBe("allow");
  });

  it("a policy whose match is about another kind of target is a configuration error naming the key, never a silent no-match", () => {
    // Only PostgreSQL connections here: `commands` (a shell or redis key) cannot apply.
    expect(() => makeEvaluator([{ name: "no-rm", match: { commands: ["rm"] }, action: "deny" }])).toThrow(/policies\[0\]\.match\.commands is a shell or redis key, but the policy applies to only postgres connections/);
    expect(() => makeEvaluator([{ name: "mixed", match: { operations: ["drop"], commands: ["rm"] }, action: "deny" }])).toThrow(/match\.commands cannot be combined with match\.operations/);
    // With a shell connection beside them, the shell policy applies to it alone: SQL sessions are not judged by it.
    const config = parseConfig({
      connections: [...CONNECTIONS, { name: "web1", type: "ssh", host: "h", user: "u", password: "p", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", groups: ["agents"] }],
      policies: [{ name: "no-rm", match: { commands: ["rm"] }, action: "deny" }],
    });
    expect(config.policies[0]?.match).toEqual({ kind: "shell", commands: ["rm"] });
    expect(new PolicyEvaluator(config.policies, config.connections, new ClassificationCache()).openSession(sessionInfo())).toBeUndefined();
  });
});

describe("fail closed only when guarded", () => {
  const unknowable: readonly (readonly [string, RegExp])[] = [
    ["selec 1", /^the statement could not be parsed, so it is refused \(fail closed\): syntax error at or near "selec"$/],
    ["select * from", /could not be parsed/],
    ["select 1\u0000", /could not be parsed/],
    ["do $$ begin perform 1; end $$", /^DO blocks .*: its effects cannot be checked, so it is refused \(fail closed\)$/],
    ["copy users to program 'cat > /tmp/x'", /PROGRAM.*fail closed/],
    ["execute nope", /^EXECUTE of an unknown prepared statement "nope" is refused \(fail closed\)$/],
    ["explain analyze execute nope", /unknown prepared statement "nope"/],
  ];

  it("refuses statements whose effects cannot be known when a guard applies", () => {
    for (const guard of [
      NO_DROP,
      { name: "approve", match: { operations: ["insert"] }, action: "require_approval", approvers: ["dba"] } satisfies RawPolicy,
      // Limits guard a session on their own (on a mask policy, no guard policy applies).
      { name: "ro", action: "mask", detectors: ["email"], readOnly: true } satisfies RawPolicy,
      { name: "timeout", action: "mask", detectors: ["email"], statementTimeout: "5s" } satisfies RawPolicy,
    ]) {
      const s = open([guard]);
      for (const [sql, message] of unknowable) expect(denied(s.query(sql), "fail-closed").message, `${guard.name}: ${sql}`).toMatch(message);
    }
  });

  it("lets them through when only mask policies apply, with the masking plan", () => {
    const s = open([
      { name: "hide-email", action: "mask", columns: ["*.email"] },
      { name: "orders-only", match: { relations: ["orders"] }, action: "mask", detectors: ["email"] },
    ]);
    for (const [sql] of unknowable) expect(ruleNames(s.query(sql)), sql).toEqual(["hide-email"]);
  });
});

describe("prepared statements", () => {
  it("EXECUTE is judged by the prepared statement's facts, with the current search path", () => {
    const s = open([{ name: "evil-secrets", match: { relations: ["evil.secrets"] }, action: "deny" }]);
    expect(s.query("prepare p as delete from secrets where id = $1").type).toBe("allow");
    expect(s.query("execute p(1)").type).toBe("allow");
    expect(s.query("set search_path = evil, public").type).toBe("allow");
    denied(s.query("execute p(1)"), "evil-secrets");
    denied(s.query("explain analyze execute p(1)"), "evil-secrets");
  });

  const planPolicies: RawPolicy[] = [
    NO_DROP,
    { name: "customers-pii", match: { relations: ["customers"] }, action: "mask", columns: ["customers.email"] },
    { name: "customers-cap", match: { relations: ["customers"] }, action: "allow", maxRows: 5 },
  ];
  const customersPlan = {
    masks: [{ rule: "customers-pii", columns: ["customers.email"], detectors: [], strategy: "redact" }],
    maxRows: 5,
    maxRowsRule: "customers-cap",
    redactEchoes: true,
  };

  it("EXECUTE carries the prepared statement's masking plan and row limit (names fold like PostgreSQL)", () => {
    const s = open(planPolicies);
    expect(s.query("prepare c as select email from customers").type).toBe("allow");
    expect(allowed(s.query("execute c")).plan).toMatchObject(customersPlan);
    expect(allowed(s.query("EXECUTE C")).plan).toMatchObject(customersPlan);
    // Its result's columns come from the prepared statement (column rules on computed fields).
    expect(allowed(s.query("execute c")).plan?.lineage?.[0]?.outputs).toEqual([[{ relation: "customers", column: "email" }]]);
    expect(s.query("select 1")).toEqual({ type: "allow" });
  });

  it("a protocol Parse with a name can be run by SQL EXECUTE", () => {
    const s = open(planPolicies);
    expect(allowed(s.parse("select email from customers where id = $1", "fetch_customer")).plan).toMatchObject(customersPlan);
    expect(allowed(s.query("execute fetch_customer(1)")).plan).toMatchObject(customersPlan);
    // The unnamed statement is not remembered.
    expect(s.parse("select email from customers", "").type).toBe("allow");
    denied(s.query('execute "p"'), "fail-closed");
  });

  it("a refused PREPARE or Parse is not remembered; an earlier allowed one with that name still is", () => {
    const s = open([{ name: "bulk", match: { operations: ["delete"], noWhere: true }, action: "deny" }]);
    denied(s.query("prepare d as delete from orders"), "bulk");
    denied(s.query("execute d"), "fail-closed");
    denied(s.parse("delete from orders", "d2"), "bulk");
    denied(s.query("execute d2"), "fail-closed");
    expect(s.query("prepare p as select 1").type).toBe("allow");
    denied(s.query("prepare p as delete from orders"), "bulk");
    expect(s.query("execute p").type).toBe("allow");
  });

  it("EXECUTE of an unknown name passes when only mask policies apply", () => {
    const s = open([{ name: "hide-email", action: "mask", columns: ["*.email"] }]);
    expect(ruleNames(s.query("execute nope"))).toEqual(["hide-email"]);
  });
});

describe("limits", () => {
  it("times the smallest statementTimeout (ms) and injects read-only, from applicable policies only", () => {
    const ev = makeEvaluator([
      { name: "slow", action: "allow", statementTimeout: "2s" },
      { name: "fast", action: "allow", statementTimeout: 1500 },
      { name: "faster-elsewhere", connections: ["billing"], action: "allow", statementTimeout: 10 },
      { name: "faster-for-dba", groups: ["dba"], action: "allow", statementTimeout: "1s" },
      { name: "ro", connections: ["shop_ro"], action: "allow", readOnly: true },
      { name: "not-ro", action: "allow", readOnly: false },
    ]);
    expect(ev.openSession(sessionInfo({ connection: "shop" }))?.statementTimeout).toEqual({ ms: 1500, rule: "fast" });
    expect(ev.openSession(sessionInfo({ connection: "shop", groups: ["dba"] }))?.statementTimeout).toEqual({ ms: 1000, rule: "faster-for-dba" });
    expect(ev.openSession(sessionInfo({ connection: "shop_ro" }))?.settings).toEqual({ default_transaction_read_only: "on" });
    expect(ev.openSession(sessionInfo({ connection: "billing" }))?.statementTimeout).toEqual({ ms: 10, rule: "faster-elsewhere" });
    expect(ev.openSession(sessionInfo({ connection: "shop" }))?.settings).toEqual({});
    expect(makeEvaluator([NO_DROP]).openSession(sessionInfo())?.settings).toEqual({});
  });

  it("read-only refuses writes and attempts to switch it off", () => {
    const s = open([{ name: "ro", action: "allow", readOnly: true }]);
    for (const sql of [
      "insert into t values (1)",
      "update t set a = 1 where id = 1",
      "delete from t where id = 1",
      "truncate t",
      "create table t (a int)",
      "alter table t add column b int",
      "drop table t",
      "copy t from stdin",
      "grant select on t to r",
      "prepare p as insert into t values (1)",
      "select 1; insert into t values (1)",
      "set default_transaction_read_only = off",
      "set transaction_read_only = off",
      "reset default_transaction_read_only",
      "reset all",
      "discard all",
      "begin read write",
      "start transaction isolation level serializable, read write",
      "set transaction read write",
      "set session characteristics as transaction read write",
      "select pg_catalog.set_config('default_transaction_read_only', 'off', false)",
      "select set_config(name, 'off', false) from pg_settings where name = 'transaction_read_only'",
    ]) {
      const d = denied(s.query(sql), "ro");
      expect(d.message, sql).toMatch(/read-only|set by the gateway|undo this session's limits|set_config/);
    }
    // A setting set_config() may change that can't be known is refused whatever it is.
    denied(s.query("select set_config(name, 'off', false) from pg_settings where name like '%read_only'"), "fail-closed");
  });

  it("read-only allows reads, harmless settings and read-only transactions", () => {
    const s = open([{ name: "ro", action: "allow", readOnly: true }]);
    for (const sql of [
      "select * from t",
      "copy t to stdout",
      "show all",
      "set work_mem = '64kB'",
      // A knowable, unprotected setting (issue 12: pg_dump sends this one).
      "select set_config('work_mem', '64kB', false)",
      "select set_config(name, 'view, foreign-table', false) from pg_settings where name = 'restrict_nonsystem_relation_kind'",
      "reset work_mem",
      "discard plans",
      "set transaction isolation level serializable",
      "set transaction read only",
      "begin read only",
      "begin",
      "commit",
    ]) {
      expect(s.query(sql).type, sql).toBe("allow");
    }
  });

  it("statementTimeout is the engine's to time: the session may change statement_timeout (pg_dump sets it to 0)", () => {
    expect(makeEvaluator([{ name: "slow", action: "allow", statementTimeout: "30s" }, { name: "timeout", action: "allow", statementTimeout: "10s" }]).openSession(sessionInfo())?.statementTimeout).toEqual({ ms: 10_000, rule: "timeout" });
    const s = open([{ name: "timeout", action: "allow", statementTimeout: "30s" }]);
    for (const sql of [
      "set statement_timeout = 0",
      "set local statement_timeout = 0",
      "reset statement_timeout",
      "reset all",
      "discard all",
      "select set_config('statement_timeout', '0', false)",
      "select pg_catalog.set_config('search_path', '', false)",
      "set default_transaction_read_only = off", "begin read write", "insert into t values (1)", "set lock_timeout = 0",
    ]) {
      expect(s.query(sql).type, sql).toBe("allow");
    }
  });

  it("names the policy that set the limit being protected", () => {
    const s = open([
      { name: "ro", action: "allow", readOnly: true },
      { name: "timeout", action: "allow", statementTimeout: "30s" },
    ]);
    expect(s.query("set statement_timeout = 0").type).toBe("allow");
    denied(s.query("set default_transaction_read_only = off"), "ro");
    denied(s.query("insert into t values (1)"), "ro");
  });
});

describe("result plans", () => {
  it("passes a mask policy's phoneRegions to the phone detector", () => {
    const plain: RawPolicy = { name: "phones", action: "mask", detectors: ["phone"] };
    const maskerFor = createMaskerFactory(Buffer.alloc(32, 1));
    const ruleOf = (p: RawPolicy): MaskRule => {
      const rule = allowed(open([p]).query("select note from contacts")).plan?.masks[0];
      if (rule === undefined) throw new Error("no mask rule");
      return rule;
    };
    const pt = ruleOf({ ...plain, phoneRegions: ["PT"] });
    expect(pt.phoneRegions).toEqual(["PT"]);
    expect(ruleOf(plain)).not.toHaveProperty("phoneRegions");
    // A Lisbon number in its national format: Portugal is not a default region.
    const text = "ligue para 212 345 678 hoje";
    expect(maskerFor(pt).maskText(text)?.value).toBe("ligue para [PHONE] hoje");
    expect(maskerFor(ruleOf(plain)).maskText(text)).toBeUndefined();
  });

  it("accumulates the mask rules whose match holds, in policy order, with defaults filled in", () => {
    const s = open([
      NO_DROP,
      { name: "emails", action: "mask", columns: ["*.email"] },
      { name: "order-totals", match: { relations: ["orders"] }, action: "mask", columns: ["orders.total"], strategy: "null" },
      { name: "secret-scan", match: { relations: ["vault.*"] }, action: "mask", detectors: ["secret"], strategy: "hash" },
    ]);
    const emails: MaskRule = { rule: "emails", columns: ["*.email"], detectors: [], strategy: "redact" };
    const totals: MaskRule = { rule: "order-totals", columns: ["orders.total"], detectors: [], strategy: "null" };
    const scan: MaskRule = { rule: "secret-scan", columns: [], detectors: ["secret"], strategy: "hash" };
    expect(s.query("select 1")).toMatchObject({ type: "allow", plan: { masks: [emails] } });
    expect(s.query("select * from orders")).toMatchObject({ type: "allow", plan: { masks: [emails, totals], redactEchoes: true } });
    expect(s.query("select * from vault.keys join orders using (id)")).toMatchObject({ type: "allow", plan: { masks: [emails, totals, scan], redactEchoes: true } });
    // Errors may echo what a statement reads: flagged only when it reads a covered column.
    expect(s.query("select id from orders")).toMatchObject({ type: "allow", plan: { masks: [emails, totals] } });
    expect(s.query("select total::text::date from orders")).toMatchObject({ type: "allow", plan: { masks: [emails, totals], redactEchoes: true } });
    expect(s.query("select 1 from orders where total::text = 'x'")).toMatchObject({ type: "allow", plan: { masks: [emails, totals], redactEchoes: true } });
    expect(denied(s.query("drop table orders"), "no-drop")).not.toHaveProperty("plan");
  });

  it("maxRows is the smallest limit among the policies that match, with its rule", () => {
    const s = open([
      NO_DROP,
      { name: "cap-all", action: "mask", detectors: ["email"], maxRows: 1000 },
      { name: "cap-orders", match: { relations: ["orders"] }, action: "allow", maxRows: 50 },
      { name: "cap-customers", match: { relations: ["customers"] }, action: "allow", maxRows: 10 },
      { name: "cap-unused", match: { relations: ["nothing_reads_this"] }, action: "allow", maxRows: 1 },
    ]);
    const plan = (sql: string): AllowDecision["plan"] => allowed(s.query(sql)).plan;
    expect(plan("select 1")).toMatchObject({ maxRows: 1000, maxRowsRule: "cap-all" });
    expect(plan("select * from orders")).toMatchObject({ maxRows: 50, maxRowsRule: "cap-orders" });
    expect(plan("select * from orders join customers using (id)")).toMatchObject({ maxRows: 10, maxRowsRule: "cap-customers" });
    expect(open([{ name: "zero", action: "allow", maxRows: 0 }]).query("select 1")).toEqual({ type: "allow", plan: { masks: [], maxRows: 0, maxRowsRule: "zero" } });
  });

  it("row limits do not apply to reads of the system catalog alone, unless the session could have shadowed it", () => {
    const limited = (s: Session, sql: string): boolean => allowed(s.query(sql)).plan?.maxRows !== undefined;
    const s = open([NO_DROP, { name: "cap", action: "allow", maxRows: 1000 }]);
    // pg_dump's catalog queries, qualified or (after its empty search_path) bare.
    expect(limited(s, "select c.oid, pg_catalog.format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_class c join pg_catalog.pg_attribute a on a.attrelid = c.oid")).toBe(false);
    expect(limited(s, "select * from information_schema.columns")).toBe(false);
    expect(limited(s, "SELECT pg_catalog.set_config('search_path', '', false);")).toBe(true);
    expect(limited(s, "select classid, objid, refclassid, refobjid, deptype from pg_depend where deptype != 'p'")).toBe(false);
    // Data, functions that may return data, statistics samples, writes: limited.
    expect(limited(s, "select * from pg_catalog.pg_class, orders")).toBe(true);
    expect(limited(s, "select public.leak() from pg_catalog.pg_class")).toBe(true);
    expect(limited(s, "select lower(relname) from pg_catalog.pg_class")).toBe(true);
    expect(limited(s, "select * from pg_catalog.pg_stats")).toBe(true);
    expect(limited(s, "select 1")).toBe(true);
    // A temporary pg_class comes first on the path: the bare name is no longer the catalog's.
    s.query("create temp table pg_class as select * from orders");
    expect(limited(s, "select * from pg_class")).toBe(true);
    expect(limited(s, "select * from pg_catalog.pg_class")).toBe(false);
    // pg_catalog after another schema, or a search_path set invisibly: bare names are limited.
    const t = open([NO_DROP, { name: "cap", action: "allow", maxRows: 1000 }]);
    t.query("set search_path = evil, pg_catalog");
    expect(limited(t, "select * from pg_depend")).toBe(true);
    const u = open([NO_DROP, { name: "cap", action: "allow", maxRows: 1000 }]);
    u.query("select set_config('search_path', 'evil, pg_catalog', false)");
    expect(limited(u, "select * from pg_depend")).toBe(true);
    u.query("SELECT pg_catalog.set_config('search_path', '', false);");
    expect(limited(u, "select * from pg_depend")).toBe(false);
    // Another setting by set_config (pg_dump's restrict_nonsystem_relation_kind) changes nothing.
    u.query("SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'");
    expect(limited(u, "select * from pg_depend")).toBe(false);
  });

  it("COPY TO drops column rules that cannot touch the copied columns, keeping their detectors", () => {
    const s = open([
      { name: "pii", action: "mask", columns: ["customers.email"], detectors: ["email"] },
      { name: "totals", action: "mask", columns: ["orders.total"] },
    ]);
    const pii: MaskRule = { rule: "pii", columns: ["customers.email"], detectors: ["email"], strategy: "redact" };
    const piiDetectorsOnly: MaskRule = { ...pii, columns: [] };
    const totals: MaskRule = { rule: "totals", columns: ["orders.total"], detectors: [], strategy: "redact" };
    const masks = (sql: string): readonly MaskRule[] => allowed(s.query(sql)).plan?.masks ?? [];
    expect(masks("copy (select id, name from customers) to stdout")).toEqual([piiDetectorsOnly]);
    expect(masks("copy customers (id, name) to stdout")).toEqual([piiDetectorsOnly]);
    expect(masks("copy customers to stdout")).toEqual([pii]);
    expect(masks("copy (select email from customers) to stdout")).toEqual([pii]);
    expect(masks("copy (select u.* from public.customers u) to stdout")).toEqual([pii]);
    // No column facts for the relation: judged by relation.
    expect(masks("copy (select count(*) from orders) to stdout")).toEqual([piiDetectorsOnly, totals]);
    expect(masks("copy (select id from orders) to stdout")).toEqual([piiDetectorsOnly]);
    // Outside COPY nothing is dropped: the engine maps result columns to their origins.
    expect(masks("select id from customers")).toEqual([pii, totals]);
  });

  it("COPY TO without detectors leaves no plan when no column rule can apply", () => {
    const s = open([{ name: "totals", action: "mask", columns: ["orders.total"] }]);
    expect(s.query("copy (select id from customers) to stdout")).toEqual({ type: "allow" });
    expect(ruleNames(s.query("copy orders to stdout"))).toEqual(["totals"]);
  });
});

describe("view resolution", () => {
  const PASSWORD: ColumnAccess = { relation: { schema: "public", name: "users" }, column: "password", access: "read" };
  const NAME: ColumnAccess = { relation: { schema: "public", name: "users" }, column: "name", access: "read" };
  const GUARD: RawPolicy = { name: "no-passwords", match: { columns: ["users.password"] }, action: "deny" };

  type Mode = "sync" | "async" | "throw" | "reject";

  /** Views of the target's catalog: `schema.name` → the base columns the view reads. */
  class FakeResolver implements ViewResolver {
    readonly calls: { connection: string; candidates: string[] }[] = [];
    constructor(
      private readonly mode: Mode,
      private readonly views: Readonly<Record<string, readonly ColumnAccess[]>> = { "public.user_secrets": [PASSWORD], "public.user_names": [NAME] },
    ) {}

    resolve(connection: string, candidates: readonly { schema: string; name: string }[]): readonly ColumnAccess[] | Promise<readonly ColumnAccess[]> {
      this.calls.push({ connection, candidates: candidates.map((c) => `${c.schema}.${c.name}`).sort() });
      if (this.mode === "throw") throw new Error("catalog unreachable");
      if (this.mode === "reject") return Promise.reject(new Error("catalog unreachable"));
      const cols = candidates.flatMap((c) => this.views[`${c.schema}.${c.name}`] ?? []);
      return this.mode === "async" ? Promise.resolve(cols) : cols;
    }
  }

  it("sees a guarded column through a view (synchronous resolver)", () => {
    const resolver = new FakeResolver("sync");
    const s = open([GUARD], { resolver });
    denied(s.query("select * from user_secrets"), "no-passwords");
    denied(s.query("select count(*) from (select * from public.user_secrets) s"), "no-passwords");
    expect(s.query("select * from user_names").type).toBe("allow");
    expect(resolver.calls[0]).toEqual({ connection: "shop", candidates: ["app.user_secrets", "pg_catalog.user_secrets", "pg_temp.user_secrets", "public.user_secrets"] });
    expect(resolver.calls[1]?.candidates).toEqual(["public.user_secrets"]);
  });

  it("asks about the schemas a bare name may resolve to, including SET search_path ones", () => {
    const resolver = new FakeResolver("sync", { "evil.v": [PASSWORD] });
    const s = open([GUARD], { resolver });
    expect(s.query("select * from v").type).toBe("allow");
    expect(s.query("set search_path = evil").type).toBe("allow");
    denied(s.query("select * from v"), "no-passwords");
    expect(resolver.calls.at(-1)?.candidates).toContain("evil.v");
  });

  it("awaits an asynchronous resolver", async () => {
    const s = open([GUARD], { resolver: new FakeResolver("async") });
    const pending = s.raw("select * from user_secrets");
    expect(pending).toBeInstanceOf(Promise);
    const d = await pending;
    if (d === undefined) throw new Error("no decision");
    denied(d, "no-passwords");
    const ok = await s.raw("select name from user_names");
    expect(ok?.type).toBe("allow");
  });

  it("fails closed when the resolver throws or rejects", async () => {
    const thrown = denied(open([GUARD], { resolver: new FakeResolver("throw") }).query("select * from anything"), "fail-closed");
    expect(thrown.message).toContain("could not be resolved");
    const rejected = await open([GUARD], { resolver: new FakeResolver("reject") }).raw("select * from anything");
    if (rejected === undefined) throw new Error("no decision");
    expect(denied(rejected, "fail-closed").message).toContain("could not be resolved");
  });

  it("is not consulted without column or relation guards, or without relations touched", () => {
    const resolver = new FakeResolver("throw");
    // (Relation guards consult it too: a view read or written stands for its base tables.)
    const masksOnly = open([NO_DROP, { name: "hide", action: "mask", columns: ["users.password"] }], { resolver });
    expect(masksOnly.query("select * from user_secrets").type).toBe("allow");
    const guarded = open([GUARD], { resolver });
    expect(guarded.query("select 1").type).toBe("allow");
    expect(guarded.query("select now()").type).toBe("allow");
    expect(resolver.calls).toEqual([]);
  });

  it("sees a guarded relation through a view that is read or written", () => {
    const resolver = new FakeResolver("sync");
    const writes: RawPolicy = { name: "no-user-writes", match: { operations: ["insert", "update", "delete"], relations: ["users"] }, action: "deny" };
    const s = open([writes], { resolver });
    denied(s.query("insert into user_names values (3, 'eve')"), "no-user-writes");
    denied(s.query("update user_names set name = 'eve' where id = 1"), "no-user-writes");
    expect(s.query("select * from user_names").type).toBe("allow");
    expect(s.query("insert into orders values (1)").type).toBe("allow");
  });
});

describe("regressions found in review", () => {
  const SECRETS: RawPolicy = { name: "no-evil-secrets", match: { relations: ["evil.secrets"] }, action: "deny" };

  it("applies SET search_path to the later statements of the same message", () => {
    const s = open([SECRETS]);
    denied(s.query("set search_path = evil; drop table secrets"), "no-evil-secrets");
  });

  it("treats SET ROLE as making the search path unknown ($user changes)", () => {
    const s = open([SECRETS]);
    allowed(s.query("set role evil"));
    denied(s.query("drop table secrets"), "no-evil-secrets");
  });

  it("matches statements that touch every table of a schema", () => {
    denied(open([SECRETS]).query("drop schema evil cascade"), "no-evil-secrets");
    const pw: RawPolicy = { name: "no-pw", match: { columns: ["public.users.password"] }, action: "deny" };
    denied(open([pw]).query("select schema_to_xml('public', true, false, '')"), "no-pw");
    allowed(open([SECRETS]).query("drop schema other cascade"));
  });

  it("matches a schema-qualified function glob against an unqualified call", () => {
    const sleep: RawPolicy = { name: "no-sleep", match: { functions: ["pg_catalog.pg_sleep"] }, action: "deny" };
    denied(open([sleep]).query("select pg_sleep(1)"), "no-sleep");
  });

  it("attaches a view's base columns to the statement that reads the view", () => {
    const policy: RawPolicy = { name: "no-pw-select", match: { operations: ["select"], columns: ["users.password"] }, action: "deny" };
    const resolver: ViewResolver = {
      resolve: (_c, candidates) =>
        candidates.some((c) => c.name === "v") ? [{ relation: { schema: "public", name: "users" }, column: "password", access: "read" }] : [],
    };
    const s = open([policy], { resolver });
    denied(s.query("begin; select * from v"), "no-pw-select");
  });

  it("resolves PREPARE then EXECUTE within one message", () => {
    const s = open([NO_DROP]);
    allowed(s.query("prepare q as select 1; execute q"));
  });

  it("does not fail closed when only allow policies apply", () => {
    const s = open([{ name: "cap", action: "allow", maxRows: 10 }]);
    allowed(s.query("do $$ begin end $$"));
  });
});
