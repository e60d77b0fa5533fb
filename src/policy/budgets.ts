/**
 * Budgets and rate limits per principal (or per group) and connection: rows read, bytes
 * returned, statements/commands, per fixed time window (aligned to the epoch, so every gateway
 * agrees where a window starts). The ledger is the one place counters live; sessions get a
 * `SessionBudgets` view that charges them on the data path.
 *
 * Invariants: a charge that would pass a limit is refused and not counted (the client gets the
 * rows so far); the warning (`warnAt`) is given once per counter and window; the ledger holds
 * at most MAX_COUNTERS counters (expired windows are dropped first, then the oldest).
 */
import { deny, type DenyDecision } from "../core/decision.js";
import type { SessionInfo } from "../core/session.js";
import { Glob, anyGlob } from "./glob.js";

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

  constructor(budgets: readonly BudgetConfig[], options: { readonly clock?: () => number; readonly metrics?: BudgetMetrics } = {}) {
    this.#budgets = budgets.map((config) => ({ config, connections: config.connections.map((g) => new Glob(g)) }));
    this.#clock = options.clock ?? Date.now;
    this.#metrics = options.metrics;
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
      c = { budget, subject, connection, windowStart: this.#windowStart(budget), used: { rows: 0, bytes: 0, statements: 0 }, warned: new Set() };
      this.#counters.set(key, c);
    }
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
      c.windowStart = start;
      c.used = { rows: 0, bytes: 0, statements: 0 };
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
    this.#metrics?.budgetConsumed(cfg.name, kind, n);
    if (!c.warned.has(kind) && c.used[kind] >= cfg.warnAt * limit) {
      c.warned.add(kind);
      return { type: "ok", warn: `budget ${cfg.name}: ${c.used[kind]} of ${limit} ${kind} used in this ${formatWindow(cfg.window)} window (it resets at ${new Date(c.windowStart + cfg.window).toISOString()})` };
    }
    return OK;
  }

  /** Is `kind` already spent (nothing more fits)? */
  spent(c: Counter, kind: BudgetKind): DenyDecision | undefined {
    this.#roll(c);
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

function spentRefusal(cfg: BudgetConfig, kind: BudgetKind, limit: number, windowStart: number): DenyDecision {
  const resets = new Date(windowStart + cfg.window).toISOString();
  return deny("GW_LIMIT", `budget ${cfg.name} is spent: ${limit} ${kind} per ${formatWindow(cfg.window)} (it resets at ${resets})`, cfg.name);
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
  statement(): DenyDecision | undefined {
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

  facts(): Record<string, Record<BudgetKind, number>> {
    return this.#ledger.facts(this.#counters);
  }
}
