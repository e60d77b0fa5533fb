import { describe, expect, it } from "vitest";
import type { ResultPlan } from "../../core/decision.js";
import { PLAIN } from "./sql-effects.js";
import { newExecution, TargetModel, type PortalRec, type StatementRec } from "./target-model.js";

const planA: ResultPlan = { masks: [{ rule: "a", columns: ["t.a"], detectors: [], strategy: "redact" }] };
const planB: ResultPlan = { masks: [{ rule: "b", columns: ["t.b"], detectors: [], strategy: "redact" }], maxRows: 3 };

function stmt(seq: number, plan: ResultPlan | undefined): StatementRec {
  return { seq, plan, effect: PLAIN };
}

function portal(s: StatementRec): PortalRec {
  return { kind: "bound", seq: s.seq, plan: s.plan, effect: s.effect, hold: false, usage: { sent: 0, cut: false }, statement: s };
}

describe("TargetModel", () => {
  it("changes a statement only when the target confirms the Parse", () => {
    const m = new TargetModel();
    const held = stmt(1, planA);
    m.parse("s1", held);
    m.sync();
    m.confirmed("parse");
    m.ready("I");
    // A second Parse of s1: the target refuses it (42P05); the record stays the first one.
    m.parse("s1", stmt(2, undefined));
    m.sync();
    expect(m.failed()).toBeUndefined();
    m.ready("I");
    expect(m.statements.get("s1")).toBe(held);
  });

  it("after an extended error, drops everything up to Sync, a Query included, and ignores what follows until Sync", () => {
    const m = new TargetModel();
    m.parse("", stmt(1, undefined));
    m.bind("", portal(stmt(1, undefined)));
    const failing = newExecution("execute", 0, false, undefined);
    m.execute("", failing);
    m.confirmed("parse");
    m.confirmed("bind");
    expect(m.failed()).toBe(failing);
    expect(m.ignoring).toBe(true);
    // Sent after the error arrived, before Sync: the target will not answer it.
    m.simple(newExecution("simple", 2, false, planA), [PLAIN]);
    m.sync();
    expect(m.ignoring).toBe(false);
    const next = newExecution("simple", 3, false, planB);
    m.simple(next, [PLAIN]);
    m.ready("I");
    expect(m.current()).toBe(next);
  });

  it("pairs Execute rows with the executed portal's plan and fields, not the last Describe", () => {
    const m = new TargetModel();
    const s1 = stmt(1, undefined);
    const s2 = stmt(2, planA);
    m.parse("s1", s1);
    m.parse("s2", s2);
    m.describe("S", "s1");
    m.bind("", portal(s2));
    const exec = newExecution("execute", 0, false, undefined);
    m.execute("", exec);
    m.confirmed("parse");
    m.confirmed("parse");
    expect(m.described([{ name: "x", tableOid: 1, columnAttr: 1, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }])).toBe(true);
    m.confirmed("bind");
    expect(m.current()).toBe(exec);
    expect(exec.plan).toBe(planA);
    expect(exec.seq).toBe(2);
    expect(exec.fields).toBeUndefined();
  });

  it("gives a cursor the DECLARE's plan and one row count for FETCH and Execute; unknown portals have no origin", () => {
    const m = new TargetModel();
    const declare = newExecution("simple", 1, false, planB);
    m.simple(declare, [{ kind: "declare", cursor: "c", hold: false }]);
    m.current();
    m.completed("complete");
    m.ready("T");
    const fetch = newExecution("simple", 2, false, undefined);
    m.simple(fetch, [{ kind: "fetch", cursor: "c" }]);
    expect(m.current()).toBe(fetch);
    expect(fetch.plan?.maxRows).toBe(3);
    fetch.usage.sent = 2;
    m.completed("complete");
    m.ready("T");
    const exec = newExecution("execute", 0, false, undefined);
    m.execute("c", exec);
    m.current();
    expect(exec.usage.sent).toBe(2);
    m.completed("suspended");
    m.sync();
    m.ready("I"); // the transaction ended: a cursor without HOLD is gone
    const after = newExecution("execute", 0, false, undefined);
    m.execute("c", after);
    m.current();
    expect(after.unknownOrigin).toBe(true);
  });

  it("a Bind relies on a Parse of the same batch, and waits for one of an earlier batch", () => {
    const m = new TargetModel();
    const s = stmt(1, planA);
    m.parse("s", s);
    expect(m.statementFor("s")).toEqual({ rec: s });
    m.sync();
    expect(m.statementFor("s")).toBe("wait");
    m.confirmed("parse");
    expect(m.statementFor("s")).toEqual({ rec: s });
    m.close("S", "s");
    expect(m.statementFor("s")).toEqual({ rec: undefined });
  });
});
