/**
 * Cost rules on statements prepared with parameters (issue 21): the planner cannot estimate
 * them without values, so a prepare that a cost rule applies to gets a cost deferral, and each
 * execution is decided with its own estimate. These tests drive the real SQL evaluator (the
 * guardrails, in order) and the verdict combination with a fake estimator.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ALLOW, type AllowDecision, type CostDeferral, type EvaluatorVerdict, type Verdict } from "../core/decision.js";
import type { CostEstimate } from "../core/preview.js";
import type { DbQueryEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import { GatewayError } from "../core/errors.js";
import { parseConfig, type RawConfig } from "../runtime/config.js";
import type { SessionEvaluator } from "./evaluator.js";
import { PolicyEvaluator } from "./policies.js";
import { ClassificationCache, initSqlParser } from "./sql/index.js";
import { combineVerdicts, settledVerdict } from "./verdicts.js";

type RawPolicy = NonNullable<RawConfig["policies"]>[number];

beforeAll(async () => {
  await initSqlParser();
});

const CONNECTIONS = [{ name: "shop", type: "postgres", host: "db", database: "shop", user: "app", groups: ["agents"] }];

const POLICIES: RawPolicy[] = [
  { name: "no-runaway", match: { estimatedRows: { gt: 1e5 } }, action: "deny", message: "too many rows" },
  { name: "costly-big", match: { relations: ["big"], cost: { gt: 1000 } }, action: "require_approval", approvers: ["dba"] },
  { name: "mask-email", action: "mask", columns: ["*.email"] },
];

function open(policies: readonly RawPolicy[] = POLICIES): (sql: string, extra?: Partial<DbQueryEvent>) => EvaluatorVerdict | Promise<EvaluatorVerdict> {
  const config = parseConfig({ connections: CONNECTIONS, policies });
  const evaluator = new PolicyEvaluator(config.policies, config.connections, new ClassificationCache(), undefined, { verdictCache: true });
  const session: SessionInfo = {
    id: crypto.randomUUID(),
    clientProtocol: "postgres",
    targetType: "postgres",
    connection: "shop",
    principal: { kind: "service_account", id: "sa:bot", name: "bot", groups: ["agents"] },
    clientAddress: "127.0.0.1:5000",
    startedAt: new Date(),
    attributes: {},
  };
  const s: SessionEvaluator | undefined = evaluator.openSession(session);
  if (s === undefined) throw new Error("no policy applies");
  let seq = 0;
  return (sql, extra = {}) => {
    const d = s.evaluate({ type: "db.query", session, seq: ++seq, stage: "prepare", sql, statementName: "", ...extra });
    if (d === undefined) throw new Error("expected a verdict");
    return d instanceof Promise ? d.then((x) => x ?? Promise.reject(new Error("expected a verdict"))) : d;
  };
}

function deferral(v: EvaluatorVerdict | Promise<EvaluatorVerdict>): CostDeferral {
  if (v instanceof Promise) throw new Error("expected a synchronous verdict");
  if (v.type !== "defer") throw new Error(`expected a cost deferral, got ${v.type}`);
  return v;
}

const estimator = (e: CostEstimate) => (): Promise<CostEstimate> => Promise.resolve(e);

describe("cost rules on a prepare with parameters", () => {
  it("defer the verdict to each execution instead of asking the planner without values", async () => {
    const judge = open();
    let asked = 0;
    const d = deferral(judge("select * from a, b where a.id > $1", { parameterized: true, estimate: () => (asked++, Promise.reject(new Error("no values"))) }));
    expect(asked).toBe(0);
    expect(d.rule).toBe("no-runaway");
    // An approval rule exists: the objects are named, for the binding at the prepare.
    expect(d.objects).toBeDefined();
    // Each execution: its own estimate decides.
    const cheap = await d.decide(estimator({ cost: 10, rows: 1000 }));
    expect(cheap.type).toBe("allow");
    const costly = await d.decide(estimator({ cost: 1e6, rows: 1e6 }));
    expect(costly).toMatchObject({ type: "deny", rule: "no-runaway", code: "GW_POLICY_DENIED" });
    expect(costly.type === "deny" ? costly.message : "").toBe("too many rows (estimated cost 1.00e+6, rows 1.00e+6)");
  });

  it("an execution may be held for approval, with the estimate in the message and the masks once approved", async () => {
    const d = deferral(open()("select email from big where id > $1", { parameterized: true }));
    const held = await d.decide(estimator({ cost: 5000, rows: 10 }));
    if (held.type !== "hold") throw new Error(`expected a hold, got ${held.type}`);
    expect(held.rule).toBe("costly-big");
    expect(held.message).toContain("(estimated cost 5000, rows 10)");
    expect(held.allow.plan?.masks.map((m) => m.rule)).toEqual(["mask-email"]);
    const allowed = await d.decide(estimator({ cost: 8, rows: 1 }));
    if (allowed.type !== "allow") throw new Error(`expected an allow, got ${allowed.type}`);
    expect(allowed.plan?.masks.map((m) => m.rule)).toEqual(["mask-email"]);
  });

  it("fails closed: no estimator, an estimator that rejects or throws, all refuse under the rule", async () => {
    const d = deferral(open()("select * from a where id = $1", { parameterized: true }));
    const none = await d.decide(undefined);
    expect(none).toMatchObject({ type: "deny", rule: "no-runaway" });
    expect(none.type === "deny" ? none.message : "").toContain("which this connection cannot give before it runs, so it is refused (fail closed)");
    const rejected = await d.decide(() => Promise.reject(new GatewayError("GW_POLICY_DENIED", "EXPLAIN failed with SQLSTATE 22P03")));
    expect(rejected.type === "deny" ? rejected.message : "").toContain("could not be had (EXPLAIN failed with SQLSTATE 22P03)");
    const thrown = await d.decide(() => {
      throw new Error("boom");
    });
    expect(thrown.type === "deny" ? thrown.message : "").toContain("could not be had (EXPLAIN failed)");
    // A dry run (console try-it, MCP check_policy) shows the refusal without an estimate.
    expect((await settledVerdict(d)).type).toBe("deny");
  });

  it("is not deferred where no cost rule applies, nor without parameters, nor for a simple query", async () => {
    const judge = open([{ name: "costly-big", match: { relations: ["big"], cost: { gt: 1000 } }, action: "deny" }]);
    expect((await judge("select * from a where id = $1", { parameterized: true })).type).toBe("allow");
    // No parameters: the planner is asked now, not deferred.
    const asked: string[] = [];
    const now = open()("select * from big", { estimate: () => (asked.push("x"), Promise.resolve({ cost: 1, rows: 1 })) });
    expect(now).toBeInstanceOf(Promise);
    expect((await now).type).toBe("allow");
    expect(asked).toEqual(["x"]);
    // A simple query is never deferred (it has no values to wait for): refused without an estimate.
    expect(await open()("select * from big where id > $1", { stage: "simple", parameterized: true })).toMatchObject({ type: "deny", rule: "no-runaway" });
    // A statement without an explainable operation is never judged by cost rules.
    expect((await open()("show search_path", { parameterized: true })).type).toBe("allow");
  });

  it("no approval rule: the deferral names no objects (nothing to bind at the prepare)", () => {
    const d = deferral(open([{ name: "no-runaway", match: { estimatedRows: { gt: 1e5 } }, action: "deny" }])("select * from a where id > $1", { parameterized: true }));
    expect(d.objects).toBeUndefined();
  });
});

describe("combining a cost deferral with other evaluators", () => {
  const masking: AllowDecision = { type: "allow", plan: { masks: [{ rule: "other", columns: ["*.ssn"], detectors: [], strategy: "redact" }] } };
  const defer = (v: Verdict): CostDeferral => ({ type: "defer", rule: "r", message: "m", decide: () => v });
  const ask = (answers: readonly EvaluatorVerdict[]) => {
    const evaluators = answers.map((a) => ({ kinds: ["db.query" as const], evaluate: () => a }));
    return combineVerdicts(evaluators, (e) => e.evaluate({ type: "db.query", session: {} as SessionInfo, seq: 1, stage: "prepare", sql: "" }));
  };

  it("other allows merge into each execution's verdict; a later deny wins; a hold beside it refuses", async () => {
    const v = ask([masking, defer(ALLOW)]);
    if (v instanceof Promise || v.type !== "defer") throw new Error("expected a deferral");
    const decided = await v.decide(undefined);
    expect(decided.type === "allow" ? decided.plan?.masks.map((m) => m.rule) : []).toEqual(["other"]);
    expect(ask([defer(ALLOW), { type: "deny", code: "GW_POLICY_DENIED", message: "no" }])).toMatchObject({ type: "deny", message: "no" });
    const hold: Verdict = {
      type: "hold",
      need: "approval",
      rule: "h",
      message: "held",
      approvers: [],
      minApprovals: 1,
      timeoutMs: 1000,
      mode: "wait",
      allow: ALLOW,
    };
    expect(ask([hold, defer(ALLOW)])).toMatchObject({ type: "deny", rule: "r" });
    // Alone, the deferral is passed as it is.
    const alone = defer(ALLOW);
    expect(ask([alone])).toBe(alone);
  });
});
