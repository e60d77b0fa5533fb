/**
 * Budgets on HTTP responses (issue 21): what a response counts, and the stage that cuts a body
 * when a budget is spent mid-stream.
 *
 * - A response is one row, charged when its head arrives (before anything is sent): a rows
 *   budget counts answered requests.
 * - Its body counts toward `bytes` as it streams, as the client receives it: after decoding
 *   and masking when the gateway inspects it (then sent uncompressed), the encoded bytes when it
 *   passes untouched; headers are not counted.
 * - When the bytes that fit run out mid-body, the bytes that still fit are passed (and counted:
 *   the budget is then spent exactly) and the stream fails: the engine ends the response
 *   without its end (HTTP/1.1: the connection closes before the last chunk or before
 *   Content-Length is reached; HTTP/2: RST_STREAM), so a client can always tell the body is
 *   incomplete; never a shorter body that looks whole.
 */
import { Transform, type TransformCallback } from "node:stream";
import type { DenyDecision } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import type { ResultWatch } from "../../core/result-watch.js";

/** The response header that carries budget warnings (one value per budget and kind at or past `warnAt`). */
export const BUDGET_WARNING_HEADER = "x-airlock-budget-warning";

/** Header values are visible ASCII and spaces only (a budget name is the operator's text). */
export function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

/** The error a BudgetMeter fails its stream with: the refusal that cut the body. */
export class BudgetCut extends GatewayError {
  readonly refusal: DenyDecision;
  constructor(refusal: DenyDecision) {
    super(refusal.code, refusal.message);
    this.refusal = refusal;
  }
}

/** Counts body bytes against the session's budgets; fails with BudgetCut once they run out. */
export class BudgetMeter extends Transform {
  readonly #watch: ResultWatch;
  readonly #seq: number;
  #cut: DenyDecision | undefined;

  constructor(watch: ResultWatch, seq: number) {
    super();
    this.#watch = watch;
    this.#seq = seq;
  }

  /** The refusal that cut the body, if it was cut. */
  get cut(): DenyDecision | undefined {
    return this.#cut;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const v = this.#watch.bytes(this.#seq, chunk.length);
    switch (v.type) {
      case "pass":
        done(null, chunk);
        return;
      case "cut":
        this.#cut = v.refusal;
        if (v.fit > 0) this.push(chunk.subarray(0, v.fit));
        // The part that fits goes out first; then the stream fails and the response is ended unfinished.
        setImmediate(() => done(new BudgetCut(v.refusal)));
        return;
      case "end":
        this.#cut = v.refusal;
        done(new BudgetCut(v.refusal));
        return;
    }
  }
}
