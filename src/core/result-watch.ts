/**
 * What an engine asks the pipeline about the rows it is about to hand to the client: budgets
 * (rows and bytes per principal and window), result scanning (prompt-injection text, canary
 * values). The engine only reframes: it asks per row, after masking, and renders the verdict
 * (a NOTICE, a replaced value, a cut result, an ended session). Implemented in src/scan/watch.ts.
 */
import type { DenyDecision } from "./decision.js";

/** One value of a row as the watch sees it: the text of a text-format field, or null (NULL, binary). */
export type WatchedValue = string | null;

export type RowVerdict =
  /** Pass the row. `notices`: tell the client (once each). `replace`: value index → replacement text. */
  | { readonly type: "pass"; readonly notices?: readonly string[]; readonly replace?: ReadonlyMap<number, string> }
  /** A budget is spent: this row is not passed; the client gets the rows so far and this refusal. */
  | { readonly type: "cut"; readonly refusal: DenyDecision; readonly notices?: readonly string[] }
  /** The session must end (a canary or an injection under `end_session`): nothing more is passed. */
  | { readonly type: "end"; readonly refusal: DenyDecision };

export type BytesVerdict =
  | { readonly type: "pass"; readonly notices?: readonly string[] }
  /** A budget is spent: only the first `fit` bytes may pass (they are counted), then the result is cut with this refusal. */
  | { readonly type: "cut"; readonly fit: number; readonly refusal: DenyDecision; readonly notices?: readonly string[] }
  | { readonly type: "end"; readonly refusal: DenyDecision };

export interface ResultWatch {
  /** The watch reads values (scanning or canaries): the engine decodes text fields for it. */
  readonly wantsValues: boolean;
  /**
   * One row the client is about to receive: `bytes` is its size on the wire, `values` its
   * text fields when `wantsValues` (else empty). `seq` names the statement.
   */
  row(seq: number, bytes: number, values: readonly WatchedValue[]): RowVerdict;
  /**
   * More bytes of a result that is not made of rows (an HTTP response body, as it streams):
   * charged to the `bytes` limits only. A `cut` verdict: the bytes that still fit pass (and are
   * counted, so the budget is then spent exactly), the rest does not.
   */
  bytes(seq: number, bytes: number): BytesVerdict;
  /**
   * The session's budgets at or past their `warnAt` now, one text per budget and kind (empty
   * when none): engines that can say it on every answer from then on (an HTTP header) do.
   */
  budgetWarnings(): readonly string[];
}

export const PASS: RowVerdict = Object.freeze({ type: "pass" });

/** What the pipeline keeps per session besides its evaluators: budgets and the result watch. */
export interface SessionGuards {
  /** Rows on their way to the client (engines that stream results: PostgreSQL). */
  readonly watch?: ResultWatch;
  /**
   * A statement or command is about to be judged: a refusal when a budget is spent (it is
   * charged otherwise). A promise while shared counters are first read from the store.
   */
  statement(): DenyDecision | undefined | Promise<DenyDecision | undefined>;
  /** Budget counters of the session, by budget name (facts for CEL `when:`). */
  budgetFacts(): Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export interface GuardFactory {
  open(session: import("./session.js").SessionInfo): SessionGuards | undefined;
}
