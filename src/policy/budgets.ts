/**
 * Budgets and rate limits per principal (or per group) and connection: rows read, bytes
 * returned, statements/commands, per fixed time window (aligned to the epoch, so every gateway
 * agrees where a window starts). The ledger is the one place counters live; sessions get a
 * `SessionBudgets` view that charges them on the data path.
 *
 * Invariants: a charge that would pass a limit is refused and not counted (the client gets the
 * rows so far); the warning (`warnAt`) is given once per counter and window; the ledger holds
 * at most MAX_COUNTERS counters (expired windows are dropped first, then the oldest).
 *
 * Shared across gateways (a store with `budgets`): the data path never waits on the store.
 * Charges count in memory (`used` = the store's total at the last sync + what this gateway
 * counted since, `pending`); every `flushMs` (200 ms) one flush adds the pending counts of the
 * counters used in the last LIVE_MS to the store and reads their totals back (other gateways'
 * counts included). A counter new to this gateway is synced at once (next tick), so a restarted
 * gateway learns the spent part of a window within one store round trip. Between two flushes
 * the gateways together can pass a limit by what they count in that interval: a shared budget
 * is exact to within one flush interval of traffic, never reset by a restart.
 */
import { deny, type DenyDecision } from "../core/decision.js";
import type { SessionInfo } from "../core/session.js";
import { Glob, anyGlob } from "./glob.js";
import type { BudgetCounterKey, BudgetCounterStore, BudgetUsage } from "../store/budgets.js";

export type BudgetKind = "rows" | "bytes" | "statements";
export const BUDGET_KINDS: readonly BudgetKind[] = ["rows", "bytes", "statements"];

export interface BudgetConfig {
  readonly name: string;
  readonly connections: readonly string[];
  /** Whom it covers: principals in any of these groups (absent: everyone, unless `principals`). */
  readonly groups?: readonly string[] | undefined;
  /** Whom it covers: principal names or ids (`ci-bot`, `sa:ci-bot`). */
  readonly principals?: readonly string[] | undefined;
  /** `principal`: each principal has its own counters; `group`: everyone covered shares one. */
  readonly per: "principal" | "group";
  readonly window: number;
  readonly rows?: number | undefined;
  readonly bytes?: number | undefined;
  readonly statements?: number | undefined;
  /** Fraction of a limit at which the client is warned once (NOTICE). */
  readonly warnAt: number;
}

/** Counters by budget and kind, never by principal (bounded label sets). */
export interface BudgetMetrics {
  budgetConsumed(budget: string, kind: BudgetKind, n: number): void;
  budgetExhausted(budget: string, kind: BudgetKind): void;
}

/** One counter as the API shows it. */
export interface BudgetCounterView {
  readonly budget: string;
  readonly subject: string;
  readonly connection: string;
  readonly windowStart: string;
  readonly windowEnd: string;
  readonly used: Readonly<Record<BudgetKind, number>>;
  readonly limits: Readonly<Partial<Record<BudgetKind, number>>>;
}

interface Counter {
  readonly budget: CompiledBudget;
  readonly subject: string;
  readonly connection: string;
  windowStart: number;
  used: Record<BudgetKind, number>;
  warned: Set<BudgetKind>;
  /** Counted here since the last flush (shared ledgers). */
  pending: Record<BudgetKind, number>;
  /** When this gateway last used the counter (shared ledgers flush live counters only). */
  touched: number;
  /** The store's total was read at least once. */
  synced: boolean;
}

/** Shared budgets: how often counts go to the store, and how long an unused counter is still refreshed. */
export const DEFAULT_FLUSH_MS = 200;
const LIVE_MS = 10_000;
const LOAD_TIMEOUT_MS = 2_000;

/** What the sync to the store costs (measured; GET /metrics shows budget flushes). */
export interface BudgetSyncStats {
  readonly flushes: number;
  readonly counters: number;
  readonly totalMs: number;
  readonly maxMs: number;
  readonly failures: number;
}

interface CompiledBudget {
  readonly config: BudgetConfig;
  readonly connections: readonly Glob[];
}

const MAX_COUNTERS = 100_000;

export type ChargeResult =
  | { readonly type: "ok"; readonly warn?: string }
  | { readonly type: "spent"; readonly refusal: DenyDecision };

export class BudgetLedger {
  readonly #budgets: readonly CompiledBudget[];
  readonly #counters = new Map<string, Counter>();
  readonly #clock: () => number;
  readonly #metrics: BudgetMetrics | undefined;
  readonly #store: BudgetCounterStore | undefined;
  readonly #onSyncError: ((e: unknown) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #soon = false;
  /** Pending counts of windows that rolled over before they were flushed. */
  #late: { key: BudgetCounterKey; delta: BudgetUsage }[] = [];
  #stats = { flushes: 0, counters: 0, totalMs: 0, maxMs: 0, failures: 0 };

  constructor(
    budgets: readonly BudgetConfig[],
    options: {
      readonly clock?: () => number;
      readonly metrics?: BudgetMetrics;
      /** Counters shared through the store (absent: in memory, per gateway). */
      readonly store?: BudgetCounterStore;
      readonly flushMs?: number;
      readonly onSyncError?: (e: unknown) => void;
    } = {},
  ) {
    this.#budgets = budgets.map((config) => ({ config, connections: config.connections.map((g) => new Glob(g)) }));
    this.#clock = options.clock ?? Date.now;
    this.#metrics = options.metrics;
    this.#store = budgets.length === 0 ? undefined : options.store;
    this.#onSyncError = options.onSyncError;
    if (this.#store !== undefined) {
      this.#timer = setInterval(() => void this.flush(), options.flushMs ?? DEFAULT_FLUSH_MS);
      this.#timer.unref();
    }
  }

  get shared(): boolean {
    return this.#store !== undefined;
  }

  get syncStats(): BudgetSyncStats {
    return { ...this.#stats };
  }

  /**
   * Send the pending counts of live counters to the store and take its totals (shared ledgers;
   * a no-op otherwise). One flush at a time; a failed flush keeps its counts pending.
   */
  flush(): Promise<void> {
    const store = this.#store;
    if (store === undefined) return Promise.resolve();
    this.#flushing ??= this.#flushOnce(store).finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async #flushOnce(store: BudgetCounterStore): Promise<void> {
    const now = this.#clock();
    const live: Counter[] = [];
    const entries: { key: BudgetCounterKey; delta: BudgetUsage }[] = this.#late;
    this.#late = [];
    for (const c of this.#counters.values()) {
      if (now - c.touched > LIVE_MS && c.synced && c.pending.rows + c.pending.bytes + c.pending.statements === 0) continue;
      this.#roll(c);
      live.push(c);
      entries.push({ key: keyOf(c), delta: { ...c.pending } });
    }
    if (entries.length === 0) return;
    const sent = live.map((c) => ({ c, windowStart: c.windowStart, delta: { ...c.pending } }));
    for (const s of sent) s.c.pending = { rows: 0, bytes: 0, statements: 0 };
    const started = performance.now();
    let totals: (BudgetCounterKey & BudgetUsage)[];
    try {
      totals = await store.add(entries);
    } catch (e) {
      this.#stats.failures++;
      // Kept: counted again at the next flush.
      for (const s of sent) {
        if (s.c.windowStart === s.windowStart) for (const k of BUDGET_KINDS) s.c.pending[k] += s.delta[k];
      }
      this.#late.push(...entries.slice(0, entries.length - sent.length));
      this.#onSyncError?.(e);
      return;
    }
    const ms = performance.now() - started;
    this.#stats.flushes++;
    this.#stats.counters += entries.length;
    this.#stats.totalMs += ms;
    this.#stats.maxMs = Math.max(this.#stats.maxMs, ms);
    const byKey = new Map(totals.map((t) => [`${t.budget}\u0000${t.subject}\u0000${t.connection}\u0000${t.windowStart}`, t]));
    for (const { c, windowStart } of sent) {
      if (c.windowStart !== windowStart) continue;
      const t = byKey.get(`${c.budget.config.name}\u0000${c.subject}\u0000${c.connection}\u0000${windowStart}`);
      if (t === undefined) continue;
      // The store's total (this gateway's flushed counts included) plus what was counted meanwhile.
      c.used = { rows: t.rows + c.pending.rows, bytes: t.bytes + c.pending.bytes, statements: t.statements + c.pending.statements };
      c.synced = true;
    }
  }

  /**
   * The first read of new counters (bounded: LOAD_TIMEOUT_MS). A store that does not answer
   * leaves them counted locally from zero (logged through onSyncError) rather than stalling
   * every statement.
   */
  async load(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, LOAD_TIMEOUT_MS)));
    await Promise.race([this.flush(), timeout]);
    clearTimeout(timer);
    for (const c of this.#counters.values()) c.synced = true;
  }

  /** Stop syncing, after a last flush. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush().catch(() => undefined);
  }

  get empty(): boolean {
    return this.#budgets.length === 0;
  }

  /** The budgets that cover a session, or undefined when none does. */
  open(session: SessionInfo): SessionBudgets | undefined {
    const p = session.principal;
    const keys: Counter[] = [];
    for (const b of this.#budgets) {
      const c = b.config;
      if (!anyGlob(b.connections, session.connection)) continue;
      const byGroup = c.groups === undefined || c.groups.some((g) => p.groups.includes(g));
      const byName = c.principals === undefined || c.principals.includes(p.name) || c.principals.includes(p.id);
      if (!byGroup || !byName) continue;
      keys.push(this.#counter(b, c.per === "group" ? `group:${c.name}` : p.id, session.connection));
    }
    return keys.length === 0 ? undefined : new SessionBudgets(this, keys);
  }

  /** The counters of the budgets that cover a session, by budget name (CEL `budgets`). */
  factsFor(session: SessionInfo): Record<string, Record<BudgetKind, number>> {
    return this.open(session)?.facts() ?? {};
  }

  #counter(budget: CompiledBudget, subject: string, connection: string): Counter {
    const key = `${budget.config.name}\u0000${subject}\u0000${connection}`;
    let c = this.#counters.get(key);
    if (c === undefined) {
      if (this.#counters.size >= MAX_COUNTERS) this.#evict();
      c = {
        budget,
        subject,
        connection,
        windowStart: this.#windowStart(budget),
        used: { rows: 0, bytes: 0, statements: 0 },
        warned: new Set(),
        pending: { rows: 0, bytes: 0, statements: 0 },
        touched: this.#clock(),
        synced: false,
      };
      this.#counters.set(key, c);
      // New to this gateway: learn the window's total from the store now, not at the next tick.
      if (this.#store !== undefined && !this.#soon) {
        this.#soon = true;
        setImmediate(() => {
          this.#soon = false;
          void this.flush();
        });
      }
    }
    c.touched = this.#clock();
    return c;
  }

  #windowStart(b: CompiledBudget): number {
    const w = b.config.window;
    return Math.floor(this.#clock() / w) * w;
  }

  #evict(): void {
    const now = this.#clock();
    for (const [k, c] of this.#counters) if (c.windowStart + c.budget.config.window <= now) this.#counters.delete(k);
    while (this.#counters.size >= MAX_COUNTERS) {
      const oldest = this.#counters.keys().next();
      if (oldest.done === true) break;
      this.#counters.delete(oldest.value);
    }
  }

  /** Roll the counter into the current window when its window has passed. */
  #roll(c: Counter): void {
    const start = this.#windowStart(c.budget);
    if (start !== c.windowStart) {
      if (this.#store !== undefined && c.pending.rows + c.pending.bytes + c.pending.statements > 0) this.#late.push({ key: keyOf(c), delta: c.pending });
      c.windowStart = start;
      c.used = { rows: 0, bytes: 0, statements: 0 };
      c.pending = { rows: 0, bytes: 0, statements: 0 };
      c.warned.clear();
    }
  }

  /** Would `n` more of `kind` pass the limit? Counts them when not. */
  charge(c: Counter, kind: BudgetKind, n: number): ChargeResult {
    this.#roll(c);
    const cfg = c.budget.config;
    const limit = cfg[kind];
    if (limit === undefined) return OK;
    if (c.used[kind] + n > limit) {
      this.#metrics?.budgetExhausted(cfg.name, kind);
      return { type: "spent", refusal: spentRefusal(cfg, kind, limit, c.windowStart) };
    }
    c.used[kind] += n;
    c.pending[kind] += n;
    this.#metrics?.budgetConsumed(cfg.name, kind, n);
    if (!c.warned.has(kind) && c.used[kind] >= cfg.warnAt * limit) {
      c.warned.add(kind);
      return { type: "ok", warn: warningText(c, kind, limit) };
    }
    return OK;
  }

  /** The warning of every kind of this counter at or past its `warnAt` now (not only the first time). */
  nearEnd(c: Counter): string[] {
    this.#roll(c);
    const cfg = c.budget.config;
    const out: string[] = [];
    for (const kind of BUDGET_KINDS) {
      const limit = cfg[kind];
      if (limit !== undefined && c.used[kind] >= cfg.warnAt * limit) out.push(warningText(c, kind, limit));
    }
    return out;
  }

  /** How much more of `kind` fits now (Infinity: no limit). */
  room(c: Counter, kind: BudgetKind): number {
    this.#roll(c);
    const limit = c.budget.config[kind];
    return limit === undefined ? Infinity : Math.max(0, limit - c.used[kind]);
  }

  /** The refusal of a spent `kind` (a charge found it does not fit), counted as an exhaustion. */
  spentBy(c: Counter, kind: BudgetKind): DenyDecision {
    const cfg = c.budget.config;
    this.#metrics?.budgetExhausted(cfg.name, kind);
    return spentRefusal(cfg, kind, cfg[kind] ?? 0, c.windowStart);
  }

  /** Is `kind` already spent (nothing more fits)? */
  spent(c: Counter, kind: BudgetKind): DenyDecision | undefined {
    this.#roll(c);
    c.touched = this.#clock();
    const cfg = c.budget.config;
    const limit = cfg[kind];
    return limit !== undefined && c.used[kind] >= limit ? spentRefusal(cfg, kind, limit, c.windowStart) : undefined;
  }

  /** Counters of the current windows (API, CLI), optionally for one subject. */
  list(filter: { readonly principalId?: string } = {}): BudgetCounterView[] {
    const out: BudgetCounterView[] = [];
    for (const c of this.#counters.values()) {
      this.#roll(c);
      if (filter.principalId !== undefined && c.subject !== filter.principalId) continue;
      const cfg = c.budget.config;
      const limits: Partial<Record<BudgetKind, number>> = {};
      for (const k of BUDGET_KINDS) {
        const v = cfg[k];
        if (v !== undefined) limits[k] = v;
      }
      out.push({
        budget: cfg.name,
        subject: c.subject,
        connection: c.connection,
        windowStart: new Date(c.windowStart).toISOString(),
        windowEnd: new Date(c.windowStart + cfg.window).toISOString(),
        used: { ...c.used },
        limits,
      });
    }
    return out;
  }

  /** The current counters of a session's budgets, by budget name (facts for CEL `when:`). */
  facts(counters: readonly Counter[]): Record<string, Record<BudgetKind, number>> {
    const out: Record<string, Record<BudgetKind, number>> = {};
    for (const c of counters) {
      this.#roll(c);
      out[c.budget.config.name] = { ...c.used };
    }
    return out;
  }
}

const OK: ChargeResult = Object.freeze({ type: "ok" });

function keyOf(c: Counter): BudgetCounterKey {
  return { budget: c.budget.config.name, subject: c.subject, connection: c.connection, windowStart: c.windowStart };
}

function warningText(c: Counter, kind: BudgetKind, limit: number): string {
  const cfg = c.budget.config;
  return `budget ${cfg.name}: ${c.used[kind]} of ${limit} ${kind} used in this ${formatWindow(cfg.window)} window (it resets at ${new Date(c.windowStart + cfg.window).toISOString()})`;
}

function spentRefusal(cfg: BudgetConfig, kind: BudgetKind, limit: number, windowStart: number): DenyDecision {
  const resets = new Date(windowStart + cfg.window).toISOString();
  return { ...deny("GW_LIMIT", `budget ${cfg.name} is spent: ${limit} ${kind} per ${formatWindow(cfg.window)} (it resets at ${resets})`, cfg.name), retryAt: new Date(windowStart + cfg.window) };
}

function formatWindow(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** The budgets of one session. */
export class SessionBudgets {
  readonly #ledger: BudgetLedger;
  readonly #counters: readonly Counter[];

  constructor(ledger: BudgetLedger, counters: readonly Counter[]) {
    this.#ledger = ledger;
    this.#counters = counters;
  }

  /**
   * A statement or command is about to be judged: refused when any budget of the session is
   * spent (rows, bytes or statements), else one statement is charged.
   */
  statement(): DenyDecision | undefined | Promise<DenyDecision | undefined> {
    // Shared counters new to this gateway: their window's total is read from the store first
    // (a restarted gateway must not start from zero).
    if (this.#ledger.shared && this.#counters.some((c) => !c.synced)) return this.#ledger.load().then(() => this.#statementNow());
    return this.#statementNow();
  }

  #statementNow(): DenyDecision | undefined {
    for (const c of this.#counters) {
      for (const k of BUDGET_KINDS) {
        const spent = this.#ledger.spent(c, k);
        if (spent !== undefined) return spent;
      }
    }
    for (const c of this.#counters) {
      const r = this.#ledger.charge(c, "statements", 1);
      if (r.type === "spent") return r.refusal;
    }
    return undefined;
  }

  /** One row of `bytes` on its way to the client: warnings to give, or the refusal that cuts it. */
  row(bytes: number): { readonly warnings: readonly string[]; readonly refusal?: DenyDecision } {
    const warnings: string[] = [];
    for (const c of this.#counters) {
      for (const [kind, n] of [["rows", 1], ["bytes", bytes]] as const) {
        const r = this.#ledger.charge(c, kind, n);
        if (r.type === "spent") return { warnings, refusal: r.refusal };
        if (r.warn !== undefined) warnings.push(r.warn);
      }
    }
    return { warnings };
  }

  /**
   * More bytes of a result that has no rows (an HTTP body): charged to `bytes` only. When they
   * do not all fit, the part that fits (`fit`, possibly 0) is charged and the refusal returned:
   * the budget is then spent exactly, and the next statement is refused before it runs.
   */
  bytes(n: number): { readonly warnings: readonly string[]; readonly fit: number; readonly refusal?: DenyDecision } {
    let fit = n;
    let refusal: DenyDecision | undefined;
    for (const c of this.#counters) {
      const room = this.#ledger.room(c, "bytes");
      if (room < fit) {
        fit = room;
        refusal = this.#ledger.spentBy(c, "bytes");
      }
    }
    const warnings: string[] = [];
    for (const c of this.#counters) {
      const r = this.#ledger.charge(c, "bytes", fit);
      if (r.type === "ok" && r.warn !== undefined) warnings.push(r.warn);
    }
    return refusal === undefined ? { warnings, fit } : { warnings, fit, refusal };
  }

  /** Every budget of the session at or past its `warnAt` now, one text per budget and kind. */
  nearEnd(): string[] {
    return this.#counters.flatMap((c) => this.#ledger.nearEnd(c));
  }

  facts(): Record<string, Record<BudgetKind, number>> {
    return this.#ledger.facts(this.#counters);
  }
}
