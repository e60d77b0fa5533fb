/**
 * PERMANENT bypass regression suite for the SQL classifier: every trick in bypass-cases.ts must
 * be revealed by the facts (or refused). Add cases there; never delete them.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { BYPASS_CASES as CASES } from "./bypass-cases.js";
import { classify, initSqlParser } from "./classify.js";
import { ClassificationCache } from "./normalize.js";
import { summarize } from "./testing.js";

beforeAll(async () => {
  await initSqlParser();
});

describe("bypass attempts", () => {
  it("has a substantial list", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((c) => c.trick)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.trick, c] as const))("%s", (_trick, c) => {
    const r = classify(c.sql);
    if (c.refused === true) {
      expect(r.ok).toBe(false);
      return;
    }
    if (!r.ok) throw new Error(`unexpectedly refused: ${r.error}`);
    const all = r.statements.map(summarize);
    const union = (pick: (s: (typeof all)[number]) => readonly string[]): string[] => all.flatMap(pick);
    for (const op of c.ops ?? []) expect(union((s) => s.ops)).toContain(op);
    for (const rel of c.read ?? []) expect(union((s) => s.read)).toContain(rel);
    for (const rel of c.written ?? []) expect(union((s) => s.written)).toContain(rel);
    for (const col of c.columns ?? []) expect(union((s) => s.columns)).toContain(col);
    for (const fn of c.functions ?? []) expect(union((s) => s.functions)).toContain(fn);
    for (const fn of c.matches ?? []) expect(union((s) => [...s.functions, ...(s.facts.equivalentFunctions ?? [])])).toContain(fn);
    if (c.noWhere === true) expect(all.some((s) => s.noWhere)).toBe(true);
    if (c.unknown === true) expect(all.some((s) => s.unknown)).toBe(true);
    if (c.prepares !== undefined) expect(all.map((s) => s.facts.prepares)).toContain(c.prepares);
    if (c.executes !== undefined) expect(all.map((s) => s.facts.executes)).toContain(c.executes);
    if (c.searchPath !== undefined) expect(all.map((s) => s.facts.setsSearchPath)).toContainEqual(c.searchPath);
    for (const op of c.notOps ?? []) expect(union((s) => s.ops)).not.toContain(op);
    for (const rel of c.notRead ?? []) expect(union((s) => s.read)).not.toContain(rel);
    for (const col of c.notColumns ?? []) expect(union((s) => s.columns)).not.toContain(col);
  });

  it("the cache reveals exactly what a fresh parse reveals, even when warmed with harmless twins", () => {
    const cache = new ClassificationCache(1_000);
    // Warm the cache with shapes that differ from the tricks only in literals.
    for (const c of CASES) cache.classify(c.sql.replace(/'[^']*'/g, "'harmless'"));
    for (const c of CASES) {
      expect(cache.classify(c.sql), c.trick).toEqual(classify(c.sql));
    }
  });
});
