/**
 * Prometheus metrics for the gateway. Each GatewayMetrics owns its own Registry (never the
 * process-global one), so two gateways in one process (tests) never share counters.
 *
 * Hot-path cost: label children are resolved once per label combination and cached, so an
 * increment on the data path is a Map lookup plus an addition. Label values come from closed
 * sets (typed unions below) or from configuration (protocol names), so cardinality is bounded.
 * No metric ever carries a principal, a statement, or any other free text.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ConnectionType } from "../core/connection.js";
import type { ErrorCode } from "../core/errors.js";
import type { SessionEndReason } from "../core/session.js";

/** How a session ended, or `denied` when access was refused at start. */
export type SessionOutcome = SessionEndReason | "denied";
export type StatementDecision = "allow" | "deny";
export type ByteDirection = "from_client" | "to_client";

/** Protocol label: a configured connection type (kept `string`-compatible for future engines). */
export type ProtocolLabel = ConnectionType | (string & {});

interface Child {
  inc(value?: number): void;
}
interface GaugeChild extends Child {
  dec(value?: number): void;
}
interface HistogramChild {
  observe(value: number): void;
}

export class GatewayMetrics {
  readonly registry: Registry;
  readonly #sessionsActive: Gauge<"protocol">;
  readonly #sessionsTotal: Counter<"protocol" | "outcome">;
  readonly #statementsTotal: Counter<"protocol" | "decision">;
  readonly #authFailures: Counter<"protocol" | "code">;
  readonly #bytesTotal: Counter<"protocol" | "direction">;
  readonly #auditRecords: Counter;
  readonly #auditWriteErrors: Counter;
  readonly #upstreamConnect: Histogram<"protocol">;
  readonly #budgetConsumed: Counter<"budget" | "kind">;
  readonly #budgetExhausted: Counter<"budget" | "kind">;
  readonly #resultFlagged: Counter<"kind">;
  /** Cached label children, keyed by metric name + label values joined with NUL. */
  readonly #children = new Map<string, Child | GaugeChild | HistogramChild>();

  constructor(options: { readonly prefix?: string } = {}) {
    const p = options.prefix ?? "airlock_";
    this.registry = new Registry();
    const registers = [this.registry];
    this.#sessionsActive = new Gauge({ name: `${p}sessions_active`, help: "Live client sessions", labelNames: ["protocol"], registers });
    this.#sessionsTotal = new Counter({
      name: `${p}sessions_total`,
      help: "Client sessions by outcome (end reason, or denied at start)",
      labelNames: ["protocol", "outcome"],
      registers,
    });
    this.#statementsTotal = new Counter({
      name: `${p}statements_total`,
      help: "Judged statements/commands by decision",
      labelNames: ["protocol", "decision"],
      registers,
    });
    this.#authFailures = new Counter({
      name: `${p}auth_failures_total`,
      help: "Failed client authentications by error code",
      labelNames: ["protocol", "code"],
      registers,
    });
    this.#bytesTotal = new Counter({
      name: `${p}bytes_total`,
      help: "Bytes relayed between clients and targets",
      labelNames: ["protocol", "direction"],
      registers,
    });
    this.#auditRecords = new Counter({ name: `${p}audit_records_total`, help: "Audit records written", registers });
    this.#auditWriteErrors = new Counter({
      name: `${p}audit_write_errors_total`,
      help: "Audit writes that failed (the action was refused)",
      registers,
    });
    this.#upstreamConnect = new Histogram({
      name: `${p}upstream_connect_seconds`,
      help: "Time to open and authenticate the gateway's own connection to a target",
      labelNames: ["protocol"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    // Budgets are labelled by budget name (configuration) and kind, never by principal.
    this.#budgetConsumed = new Counter({ name: `${p}budget_consumed_total`, help: "Rows, bytes and statements charged to budgets", labelNames: ["budget", "kind"], registers });
    this.#budgetExhausted = new Counter({
      name: `${p}budget_exhausted_total`,
      help: "Statements refused or results cut because a budget was spent",
      labelNames: ["budget", "kind"],
      registers,
    });
    this.#resultFlagged = new Counter({ name: `${p}results_flagged_total`, help: "Result rows flagged by the result scan (prompt-injection kinds, canary)", labelNames: ["kind"], registers });
  }

  budgetConsumed(budget: string, kind: "rows" | "bytes" | "statements", n: number): void {
    if (n > 0) this.#child(`bc\0${budget}\0${kind}`, () => this.#budgetConsumed.labels(budget, kind)).inc(n);
  }

  budgetExhausted(budget: string, kind: "rows" | "bytes" | "statements"): void {
    this.#child(`be\0${budget}\0${kind}`, () => this.#budgetExhausted.labels(budget, kind)).inc();
  }

  resultFlagged(kind: string): void {
    this.#child(`rf\0${kind}`, () => this.#resultFlagged.labels(kind)).inc();
  }

  #child<T extends Child | GaugeChild | HistogramChild>(key: string, make: () => T): T {
    const cached = this.#children.get(key);
    if (cached !== undefined) return cached as T;
    const made = make();
    this.#children.set(key, made);
    return made;
  }

  sessionOpened(protocol: ProtocolLabel): void {
    this.#child(`sa\0${protocol}`, () => this.#sessionsActive.labels(protocol)).inc();
  }

  /** A session that was opened has ended: the active gauge drops and the outcome is counted. */
  sessionClosed(protocol: ProtocolLabel, outcome: SessionEndReason): void {
    this.#child<GaugeChild>(`sa\0${protocol}`, () => this.#sessionsActive.labels(protocol)).dec();
    this.#sessionOutcome(protocol, outcome);
  }

  /** Access was refused at session start (never counted as active). */
  sessionDenied(protocol: ProtocolLabel): void {
    this.#sessionOutcome(protocol, "denied");
  }

  #sessionOutcome(protocol: ProtocolLabel, outcome: SessionOutcome): void {
    this.#child(`st\0${protocol}\0${outcome}`, () => this.#sessionsTotal.labels(protocol, outcome)).inc();
  }

  statement(protocol: ProtocolLabel, decision: StatementDecision): void {
    this.#child(`stm\0${protocol}\0${decision}`, () => this.#statementsTotal.labels(protocol, decision)).inc();
  }

  authFailure(protocol: ProtocolLabel, code: ErrorCode): void {
    this.#child(`af\0${protocol}\0${code}`, () => this.#authFailures.labels(protocol, code)).inc();
  }

  bytes(protocol: ProtocolLabel, direction: ByteDirection, n: number): void {
    if (n <= 0) return;
    this.#child(`b\0${protocol}\0${direction}`, () => this.#bytesTotal.labels(protocol, direction)).inc(n);
  }

  auditRecords(n = 1): void {
    if (n > 0) this.#auditRecords.inc(n);
  }

  auditWriteError(): void {
    this.#auditWriteErrors.inc();
  }

  upstreamConnected(protocol: ProtocolLabel, seconds: number): void {
    this.#child<HistogramChild>(`uc\0${protocol}`, () => this.#upstreamConnect.labels(protocol)).observe(seconds);
  }

  /** Prometheus text exposition format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): Promise<void> {
    this.#children.clear();
    this.registry.clear();
    return Promise.resolve();
  }
}
