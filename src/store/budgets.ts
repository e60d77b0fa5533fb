/**
 * Budget counters shared by every gateway on the store (issue 21, migration 7): one row per
 * budget × subject × connection × window (its start, ms since the epoch; windows are aligned to
 * the epoch, so every gateway agrees where one starts). Gateways add what they counted since
 * their last flush and read the totals back in the same statement (src/policy/budget-sync.ts).
 * Same SQL for every backend (INSERT … ON CONFLICT … RETURNING: PostgreSQL, SQLite ≥ 3.35).
 */
import { z } from "zod";
import type { SqlClient } from "./sql.js";

export interface BudgetCounterKey {
  readonly budget: string;
  readonly subject: string;
  readonly connection: string;
  readonly windowStart: number;
}

export interface BudgetUsage {
  readonly rows: number;
  readonly bytes: number;
  readonly statements: number;
}

export interface BudgetCounterStore {
  /**
   * Add `delta` to each counter (created at zero) and return every counter's total after the
   * addition (a zero delta reads it). Counters of windows that ended long ago are removed.
   */
  add(entries: readonly { readonly key: BudgetCounterKey; readonly delta: BudgetUsage }[]): Promise<(BudgetCounterKey & BudgetUsage)[]>;
}

const count = z.union([z.number(), z.string(), z.bigint()]).transform(Number);
const row = z.object({ budget: z.string(), subject: z.string(), connection: z.string(), window_start: count, rows: count, bytes: count, statements: count });
/** Rows of windows that started more than this long ago are pruned (windows are at most 31 days). */
const KEEP_MS = 32 * 86_400_000;
/** Counters per statement (7 parameters each: well under SQLite's 32766 and PostgreSQL's 65535). */
const CHUNK = 500;

export class SqlBudgetCounterStore implements BudgetCounterStore {
  readonly #sql: SqlClient;
  #lastPrune = 0;

  constructor(sql: SqlClient) {
    this.#sql = sql;
  }

  async add(entries: readonly { readonly key: BudgetCounterKey; readonly delta: BudgetUsage }[]): Promise<(BudgetCounterKey & BudgetUsage)[]> {
    if (entries.length === 0) return [];
    return this.#sql.transaction(async (tx) => {
      const out: (BudgetCounterKey & BudgetUsage)[] = [];
      // One multi-row statement per chunk (a flush carries every counter used in the last seconds).
      for (let i = 0; i < entries.length; i += CHUNK) {
        const chunk = entries.slice(i, i + CHUNK);
        const params: unknown[] = [];
        const values = chunk.map(({ key, delta }) => {
          const n = params.length;
          params.push(key.budget, key.subject, key.connection, key.windowStart, delta.rows, delta.bytes, delta.statements);
          return `($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}, $${n + 6}, $${n + 7})`;
        });
        const rows = await tx.query(
          `INSERT INTO budget_counters (budget, subject, connection, window_start, rows, bytes, statements)
           VALUES ${values.join(", ")}
           ON CONFLICT (budget, subject, connection, window_start) DO UPDATE
             SET rows = budget_counters.rows + excluded.rows,
                 bytes = budget_counters.bytes + excluded.bytes,
                 statements = budget_counters.statements + excluded.statements
           RETURNING budget, subject, connection, window_start, rows, bytes, statements`,
          params,
          row,
        );
        for (const r of rows) out.push({ budget: r.budget, subject: r.subject, connection: r.connection, windowStart: r.window_start, rows: r.rows, bytes: r.bytes, statements: r.statements });
      }
      const now = Date.now();
      if (now - this.#lastPrune > 3_600_000) {
        this.#lastPrune = now;
        await tx.execute("DELETE FROM budget_counters WHERE window_start < $1", [now - KEEP_MS]);
      }
      return out;
    });
  }
}
