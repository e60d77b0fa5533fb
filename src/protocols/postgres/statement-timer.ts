/**
 * A policy's `statementTimeout`, enforced by the gateway itself: each statement the target runs
 * is timed, and when the limit passes the gateway cancels it on the target (a CancelRequest, as
 * for a maxRows cut, behind the same barrier so the cancel cannot reach a later statement) and
 * the client gets `57014 airlock: statement timeout (30s) exceeded (rule: …)`, recorded and
 * audited with the rule.
 *
 * The policy's limit is not injected as the target's `statement_timeout`: the target times an
 * extended-protocol statement from its Parse, so a Bind held for approval longer than the limit
 * would fail once approved. The session's own statement_timeout is the client's to set
 * (pg_dump sends `SET statement_timeout = 0`); this timer applies whatever the session set.
 *
 * What is timed: an extended-protocol Execute, or a simple Query. The clock starts when the
 * statement is sent, or when the target answered the operation before it (it was working on that
 * until then), and stops when its result ends. A Query of several statements is timed from one
 * result the gateway sees to the next: the target sends small results only when the whole Query
 * is done (it flushes at ReadyForQuery), so several short statements in one Query can together
 * pass the limit (PostgreSQL's own timeout times each separately; the gateway's is stricter).
 * Time the target spends waiting for nothing of the session (no statement outstanding, a portal
 * suspended) is not counted.
 */
import type { Logger } from "pino";
import { gatewayText } from "../../core/engine.js";
import type { StatementTimeoutLimit } from "../../core/judge.js";
import type { Execution, TargetModel } from "./target-model.js";

export interface StatementTimerOptions {
  readonly limit: StatementTimeoutLimit;
  readonly model: TargetModel;
  /** Cancel the running statement on the target (the result stage's barrier + CancelRequest). */
  readonly cancel: () => void;
  readonly logger: Logger;
}

/** `30s`, `1.5s`, `250ms`, `2min`: the limit as people write it. */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}min`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10}s`;
  return `${ms}ms`;
}

export function timeoutMessage(limit: StatementTimeoutLimit): string {
  return gatewayText(`statement timeout (${formatDuration(limit.ms)}) exceeded (rule: ${limit.rule}); the statement was cancelled`);
}

export class StatementTimer {
  readonly #o: StatementTimerOptions;
  #timer: NodeJS.Timeout | undefined;
  /** What the running timer is for: the execution and the model's progress when it started. */
  #exec: Execution | undefined;
  #progress = -1;
  /** The limit passed for #exec at #progress and the cancel was sent: not timed again. */
  #fired = false;
  #stopped = false;

  constructor(o: StatementTimerOptions) {
    this.#o = o;
  }

  /**
   * Call after anything was sent to the target or answered by it: starts the clock for the
   * statement now outstanding (a new one each time the target made progress), or stops it.
   */
  check(): void {
    if (this.#stopped) return;
    const model = this.#o.model;
    const exec = model.running();
    if (exec === undefined) {
      this.#clear();
      return;
    }
    if ((this.#timer !== undefined || this.#fired) && this.#exec === exec && this.#progress === model.progress) return;
    this.#clear();
    this.#exec = exec;
    this.#progress = model.progress;
    this.#timer = setTimeout(() => this.#expire(), this.#o.limit.ms);
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    const model = this.#o.model;
    const exec = model.running();
    if (this.#stopped || exec === undefined || exec !== this.#exec || model.progress !== this.#progress) {
      // The statement ended meanwhile (its answer is being processed): time the next one.
      this.check();
      return;
    }
    // Denied statements are the gateway's own refusal travelling through the target: nothing to cancel.
    if (exec.denied) return;
    const { limit } = this.#o;
    exec.timedOut = { message: timeoutMessage(limit), rule: limit.rule };
    this.#o.logger.info({ rule: limit.rule, limitMs: limit.ms, seq: exec.seq }, "statement timeout: cancelling the statement on the target");
    this.#fired = true;
    this.#o.cancel();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#exec = undefined;
    this.#fired = false;
  }

  /** The session ended. */
  stop(): void {
    this.#stopped = true;
    this.#clear();
  }
}
