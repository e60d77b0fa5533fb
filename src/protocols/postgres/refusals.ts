/**
 * Refusals that travel through the target. A refused statement is replaced by a "poison"
 * statement that the target rejects with a syntax error; the target's error is swapped for the
 * gateway's own ErrorResponse. Because the refusal travels through the target, it keeps
 * PostgreSQL's own semantics exactly: responses stay in order with pipelined messages, an
 * explicit transaction becomes failed (25P02 until ROLLBACK) as with any error, the rest of an
 * extended-protocol batch is skipped until Sync, and a prepared statement whose Parse was
 * refused does not exist upstream. (protocol-flow: "Extended Query", error handling.)
 */
import { randomBytes } from "node:crypto";
import type { DenyDecision } from "../../core/decision.js";
import { renderRefusal } from "./errors.js";
import type { OutBuffer } from "./out-buffer.js";
import type { TargetModel } from "./target-model.js";
import { encodeParse, encodeQuery } from "./wire/index.js";

const POISON_PREFIX = "airlock_denied_";
const POISON_RE = /airlock_denied_([0-9a-f]{16})/;

export class Refusals {
  /** Poison nonces awaiting their error from the target → the ErrorResponse to send instead. */
  readonly #poisons = new Map<string, Buffer>();
  readonly #model: TargetModel;
  /** After a refused extended message: drop the client's messages until Sync, as the server would. */
  skipUntilSync = false;

  constructor(model: TargetModel) {
    this.#model = model;
  }

  /**
   * Refuse an extended-protocol message (Parse or Bind): a poison Parse takes its place and the
   * client's messages are dropped until Sync, as the server does after an error. The poison is
   * named (its failed Parse leaves the client's unnamed statement alone) unless `name` says
   * otherwise: a refused unnamed Parse fails as the server's own would, dropping the old one.
   */
  extended(denial: DenyDecision, out: OutBuffer, name?: string): void {
    const poison = this.#poison(denial);
    const statement = name ?? poison;
    out.add(encodeParse(statement, poison));
    this.#model.parse(statement, undefined);
    this.skipUntilSync = true;
  }

  /** A refused Query or FunctionCall: a poison Query answered like one (error, ReadyForQuery). */
  simple(denial: DenyDecision): Buffer {
    return encodeQuery(this.#poison(denial));
  }

  /** The gateway's refusal to send in place of this target error, when it answers a poison. */
  replacementFor(errorMessage: string): Buffer | undefined {
    const nonce = POISON_RE.exec(errorMessage)?.[1];
    if (nonce === undefined) return undefined;
    const replacement = this.#poisons.get(nonce);
    if (replacement !== undefined) this.#poisons.delete(nonce);
    return replacement;
  }

  #poison(denial: DenyDecision): string {
    const nonce = randomBytes(8).toString("hex");
    this.#poisons.set(nonce, renderRefusal(denial));
    return POISON_PREFIX + nonce;
  }
}
