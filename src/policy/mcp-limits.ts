/**
 * Per principal × tool call limits of MCP gateway connections (`rateLimits`, issue 16).
 *
 * `McpCallLimiter` keeps exact sliding windows in this gateway's memory (one gateway, or no
 * shared store). `SharedMcpCallLimiter` shares the counts with every gateway on the store,
 * through the same counter table as budgets (src/store/budgets.ts, migration 7):
 * - windows are aligned to the epoch (every gateway agrees where one starts), and the sliding
 *   count is estimated from two of them: the previous window's total weighted by how much of it
 *   still lies inside the last `perMs`, plus the current window's total (the usual sliding-window
 *   counter). It never under-counts calls of the current window;
 * - calls are counted here at once and sent with the totals read back every `flushMs` (200 ms),
 *   so gateways together can exceed a limit by at most the calls of one flush interval;
 * - a store that fails keeps the counts pending (sent again at the next flush): limits then hold
 *   per gateway, as without a shared store.
 */
import type { McpRateLimit } from "../core/connection.js";
import type { BudgetCounterKey, BudgetCounterStore } from "../store/budgets.js";
import { Glob } from "./glob.js";

/** Takes one call, or names the limit that is full. */
export interface CallLimiter {
  /** The limit that is full for this call, or undefined after counting the call (when `spend`) in every window. */
  take(limits: readonly McpRateLimit[], principalId: string, connection: string, tool: string, spend?: boolean, now?: number): McpRateLimit | undefined;
}

const MAX_TRACKED_KEYS = 100_000;

function applicable(limits: readonly McpRateLimit[], tool: string): McpRateLimit[] {
  return limits.filter((l) => l.tools.some((g) => new Glob(g).test(tool)));
}

/** Identity of a limit that survives config reloads and reordering (not its index). */
function limitId(l: McpRateLimit): string {
  return `${l.calls}/${l.perMs}/${l.tools.join(",")}`;
}

/** Sliding windows of call times per (limit, principal, connection, tool), in memory; bounded. */
export class McpCallLimiter implements CallLimiter {
  readonly #calls = new Map<string, number[]>();

  take(limits: readonly McpRateLimit[], principalId: string, connection: string, tool: string, spend = true, now = Date.now()): McpRateLimit | undefined {
    const keyed = applicable(limits, tool).map((l) => {
      const key = `${limitId(l)}\u0000${principalId}\u0000${connection}\u0000${tool}`;
      const times = (this.#calls.get(key) ?? []).filter((t) => t > now - l.perMs);
      return { l, key, times };
    });
    const full = keyed.find(({ l, times }) => times.length >= l.calls);
    for (const { key, times } of keyed) {
      if (full === undefined && spend) times.push(now);
      this.#calls.delete(key);
      if (times.length > 0) this.#calls.set(key, times);
    }
    while (this.#calls.size > MAX_TRACKED_KEYS) {
      const oldest = this.#calls.keys().next();
      if (oldest.done === true) break;
      this.#calls.delete(oldest.value);
    }
    return full?.l;
  }
}

interface WindowCounter {
  readonly key: BudgetCounterKey;
  readonly perMs: number;
  /** The store's total at the last flush (this gateway's flushed calls included). */
  total: number;
  /** Counted here since the last flush. */
  pending: number;
  /** Sent to the store by the flush under way, not yet in `total`. */
  inFlight: number;
}

function storeKey(k: BudgetCounterKey): string {
  return `${k.budget}\u0000${k.subject}\u0000${k.connection}\u0000${k.windowStart}`;
}

export class SharedMcpCallLimiter implements CallLimiter {
  readonly #store: BudgetCounterStore;
  readonly #counters = new Map<string, WindowCounter>();
  readonly #timer: NodeJS.Timeout;
  readonly #onSyncError: ((e: unknown) => void) | undefined;
  #flushing: Promise<void> | undefined;

  constructor(store: BudgetCounterStore, options: { readonly flushMs?: number; readonly onSyncError?: (e: unknown) => void } = {}) {
    this.#store = store;
    this.#onSyncError = options.onSyncError;
    this.#timer = setInterval(() => void this.flush(), options.flushMs ?? 200);
    this.#timer.unref();
  }

  take(limits: readonly McpRateLimit[], principalId: string, connection: string, tool: string, spend = true, now = Date.now()): McpRateLimit | undefined {
    const windows = applicable(limits, tool).map((l) => {
      const start = Math.floor(now / l.perMs) * l.perMs;
      const budget = `mcp-rate:${limitId(l)}:${tool}`;
      const cur = this.#counter({ budget, subject: principalId, connection, windowStart: start }, l.perMs);
      const prev = this.#counter({ budget, subject: principalId, connection, windowStart: start - l.perMs }, l.perMs);
      const stillInside = 1 - (now - start) / l.perMs;
      // Calls a flush is sending count too: until the store answers they are in no total.
      const estimate = (prev.total + prev.pending + prev.inFlight) * stillInside + cur.total + cur.pending + cur.inFlight;
      return { l, cur, estimate };
    });
    const full = windows.find(({ l, estimate }) => estimate + 1 > l.calls);
    if (full === undefined && spend) for (const w of windows) w.cur.pending++;
    this.#evict(now);
    return full?.l;
  }

  #counter(key: BudgetCounterKey, perMs: number): WindowCounter {
    const k = storeKey(key);
    let c = this.#counters.get(k);
    if (c === undefined) {
      c = { key, perMs, total: 0, pending: 0, inFlight: 0 };
      this.#counters.set(k, c);
    }
    return c;
  }

  /** Windows that can no longer count (ended more than one window ago) and have nothing pending. */
  #evict(now: number): void {
    if (this.#counters.size <= MAX_TRACKED_KEYS) return;
    for (const [k, c] of this.#counters) {
      if (c.pending === 0 && c.inFlight === 0 && c.key.windowStart + 2 * c.perMs < now) this.#counters.delete(k);
    }
    while (this.#counters.size > MAX_TRACKED_KEYS) {
      const oldest = this.#counters.keys().next();
      if (oldest.done === true) break;
      this.#counters.delete(oldest.value);
    }
  }

  /** Send what was counted here and read every live window's total back (one at a time). */
  flush(now = Date.now()): Promise<void> {
    this.#flushing ??= this.#flushOnce(now).finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async #flushOnce(now: number): Promise<void> {
    const sent: { c: WindowCounter; delta: number }[] = [];
    for (const [k, c] of this.#counters) {
      if (c.key.windowStart + 2 * c.perMs < now && c.pending === 0 && c.inFlight === 0) {
        this.#counters.delete(k);
        continue;
      }
      sent.push({ c, delta: c.pending });
      c.inFlight += c.pending;
      c.pending = 0;
    }
    if (sent.length === 0) return;
    let totals: (BudgetCounterKey & { readonly statements: number })[];
    try {
      totals = await this.#store.add(sent.map(({ c, delta }) => ({ key: c.key, delta: { rows: 0, bytes: 0, statements: delta } })));
    } catch (e) {
      for (const { c, delta } of sent) {
        c.inFlight -= delta;
        c.pending += delta;
      }
      this.#onSyncError?.(e);
      return;
    }
    const byKey = new Map(totals.map((t) => [storeKey(t), t.statements]));
    for (const { c, delta } of sent) {
      c.inFlight -= delta;
      const t = byKey.get(storeKey(c.key));
      // The store's total has this flush's calls; without one (not expected) they stay counted.
      if (t !== undefined) c.total = t;
      else c.pending += delta;
    }
  }

  /** Stop syncing, after a last flush. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => undefined);
  }
}
