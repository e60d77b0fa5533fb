/**
 * PERMANENT bypass regression suite for the MySQL classifier: every trick in bypass-cases.ts
 * must be revealed by the facts (or refused), with the real grammar in its worker thread. Add
 * cases there; never delete them.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ColumnAccess, QualifiedName } from "../sql/facts.js";
import { MYSQL_BYPASS_CASES as CASES } from "./bypass-cases.js";
import { classifyMysql, closeTestClassifier } from "./testing.js";

afterAll(closeTestClassifier);

const name = (r: QualifiedName): string => (r.schema === undefined ? r.name : `${r.schema}.${r.name}`);
const col = (c: ColumnAccess): string => `${c.relation === undefined ? "?" : name(c.relation)}.${c.column}`;

describe("MySQL bypass attempts", () => {
  it("has a substantial list", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((c) => c.trick)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.trick, c] as const))("%s", async (_trick, c) => {
    const r = await classifyMysql(c.sql);
    if (c.refused === true) {
      expect(r.ok).toBe(false);
      return;
    }
    if (!r.ok) throw new Error(`unexpectedly refused: ${r.error}`);
    const s = r.statements;
    const ops = s.flatMap((f) => f.operations);
    for (const op of c.ops ?? []) expect(ops).toContain(op);
    for (const x of c.read ?? []) expect(s.flatMap((f) => f.relationsRead.map(name))).toContain(x);
    for (const x of c.written ?? []) expect(s.flatMap((f) => f.relationsWritten.map(name))).toContain(x);
    for (const x of c.columns ?? []) expect(s.flatMap((f) => f.columns.map(col))).toContain(x);
    for (const x of c.functions ?? []) expect(s.flatMap((f) => f.functions)).toContain(x);
    for (const x of c.families ?? []) expect(s.flatMap((f) => f.functionFamilies ?? [])).toContain(x);
    for (const x of c.settings ?? []) expect(s.flatMap((f) => f.settings ?? [])).toContain(x);
    if (c.noWhere === true) expect(s.some((f) => f.noWhere)).toBe(true);
    if (c.unknown === true) expect(s.some((f) => f.unknownEffects !== undefined)).toBe(true);
    if (c.prepares !== undefined) expect(s.map((f) => f.prepares)).toContain(c.prepares);
    if (c.executes !== undefined) expect(s.map((f) => f.executes)).toContain(c.executes);
    for (const op of c.notOps ?? []) expect(ops).not.toContain(op);
  }, 120_000);
});
