import { describe, expect, it } from "vitest";
import type { SessionInfo } from "../core/session.js";
import type { DenyDecision } from "../core/decision.js";
import { BudgetLedger, type BudgetConfig, type SessionBudgets } from "./budgets.js";

/** An in-memory ledger answers at once. */
function spentNow(b: SessionBudgets | undefined): DenyDecision | undefined {
  const r = b?.statement();
  if (r instanceof Promise) throw new Error("an in-memory ledger answered asynchronously");
  return r;
}

function session(principal: string, groups: string[], connection = "shop"): SessionInfo {
  return {
    id: `s-${principal}-${Math.random()}`,
    clientProtocol: "postgres",
    targetType: "postgres",
    connection,
    principal: { kind: "service_account", id: `sa:${principal}`, name: principal, groups },
    clientAddress: "127.0.0.1:1",
    startedAt: new Date(),
    attributes: {},
  };
}

const base: BudgetConfig = { name: "b", connections: ["shop"], per: "principal", window: 60_000, warnAt: 0.8 };

describe("BudgetLedger", () => {
  it("charges rows until the limit, warns once at warnAt, and refuses the row that does not fit", () => {
    const ledger = new BudgetLedger([{ ...base, rows: 10 }], { clock: () => 1_000 });
    const s = ledger.open(session("a", []));
    if (s === undefined) throw new Error("no budget");
    const warnings: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = s.row(10);
      expect(r.refusal).toBeUndefined();
      warnings.push(...r.warnings);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("8 of 10 rows");
    const cut = s.row(10);
    expect(cut.refusal?.code).toBe("GW_LIMIT");
    expect(cut.refusal?.rule).toBe("b");
    expect(spentNow(s)?.message).toContain("budget b is spent: 10 rows per 1m");
  });

  it("bytes without rows (HTTP bodies): the part that fits is charged, the budget is then spent exactly; nearEnd tells every kind past warnAt; the refusal carries the window's end", () => {
    const ledger = new BudgetLedger([{ ...base, bytes: 1000, statements: 10, warnAt: 0.5 }], { clock: () => 1_000 });
    const s = ledger.open(session("a", []));
    if (s === undefined) throw new Error("no budget");
    expect(s.nearEnd()).toEqual([]);
    expect(s.bytes(400)).toEqual({ warnings: [], fit: 400 });
    const warned = s.bytes(200);
    expect(warned.fit).toBe(200);
    expect(warned.warnings[0]).toContain("600 of 1000 bytes");
    expect(s.nearEnd()).toHaveLength(1);
    expect(s.nearEnd()[0]).toContain("600 of 1000 bytes");
    const cut = s.bytes(700);
    expect(cut.fit).toBe(400);
    expect(cut.refusal?.message).toMatch(/budget b is spent: 1000 bytes per 1m/);
    expect(cut.refusal?.retryAt?.getTime()).toBe(60_000);
    expect(s.facts()["b"]?.bytes).toBe(1000);
    expect(s.bytes(1).fit).toBe(0);
    // Spent exactly: the next statement is refused before it runs.
    expect(spentNow(s)?.message).toContain("budget b is spent: 1000 bytes");
  });

  it("starts over in the next window (aligned to the epoch)", () => {
    let now = 59_000;
    const ledger = new BudgetLedger([{ ...base, statements: 1 }], { clock: () => now });
    const s = ledger.open(session("a", []));
    expect(spentNow(s)).toBeUndefined();
    expect(spentNow(s)?.code).toBe("GW_LIMIT");
    now = 60_000;
    expect(spentNow(s)).toBeUndefined();
    expect(ledger.list()[0]?.windowStart).toBe(new Date(60_000).toISOString());
  });

  it("keeps counters per principal, or one for the group with per: group; bytes count", () => {
    const ledger = new BudgetLedger([
      { ...base, name: "each", bytes: 100 },
      { ...base, name: "pool", per: "group", groups: ["agents"], statements: 2 },
    ]);
    const a = ledger.open(session("a", ["agents"]));
    const b = ledger.open(session("b", ["agents"]));
    expect(a?.row(100).refusal).toBeUndefined();
    expect(a?.row(1).refusal?.message).toContain("100 bytes");
    expect(b?.row(100).refusal).toBeUndefined();
    expect(spentNow(a)?.rule).toBe("each");
    expect(spentNow(b)?.rule).toBe("each");
    const c = ledger.open(session("c", ["agents"]));
    expect(spentNow(c)).toBeUndefined();
    expect(spentNow(c)).toBeUndefined();
    // The pool is shared: a fourth statement of anyone in the group does not fit.
    expect(spentNow(ledger.open(session("d", ["agents"])))?.rule).toBe("pool");
    expect(ledger.list({ principalId: "sa:a" }).map((v) => v.budget)).toEqual(["each"]);
  });

  it("covers only matching connections, groups and principals", () => {
    const ledger = new BudgetLedger([{ ...base, groups: ["agents"], principals: ["a"], rows: 1 }]);
    expect(ledger.open(session("a", ["agents"], "other"))).toBeUndefined();
    expect(ledger.open(session("a", ["people"]))).toBeUndefined();
    expect(ledger.open(session("b", ["agents"]))).toBeUndefined();
    expect(ledger.open(session("a", ["agents"]))).toBeDefined();
  });
});
