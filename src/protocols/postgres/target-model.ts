/**
 * A model of the target's session state, kept from the target's own answers: which prepared
 * statements and portals (protocol-bound or SQL cursors) it holds, and which of the messages
 * the gateway sent it is answering now. Results are paired with the statement the target
 * actually executed, never by position guesses:
 *
 * - every message sent that the target answers is queued as an operation; its answer
 *   (ParseComplete, BindComplete, CloseComplete, rows and CommandComplete, ErrorResponse) pops
 *   it, and only then does its effect on the state apply (a refused second Parse of `s1`
 *   leaves the record of `s1` as it was);
 * - after an ErrorResponse to an extended-protocol message the target ignores everything up to
 *   Sync, a simple Query or FunctionCall included (postgres.c: ignore_till_sync), so those
 *   operations are dropped without an answer;
 * - SQL cursors (DECLARE) are portals of the target: their rows, through FETCH or a protocol
 *   Execute of the cursor's name, carry the DECLARE's plan and share one row count;
 * - at the end of a transaction (ReadyForQuery idle) the target drops every portal but a
 *   cursor declared WITH HOLD (portalmem.c: AtCommit_Portals / AtAbort_Portals).
 *
 * Rows whose origin the model does not know are refused by the result stage (fail closed).
 */
import type { ResultPlan } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import type { DeferredHold } from "../../core/events.js";
import type { CopyOutSpec } from "./copy-spec.js";
import { newResult, type ResultAcc } from "./executions.js";
import { PLAIN, type SqlEffect } from "./sql-effects.js";
import type { RowDescriptionField } from "./wire/index.js";

/** Rows a portal or cursor has sent to the client, across Executes and FETCHes (maxRows). */
export interface Usage {
  sent: number;
  /** maxRows was reached and the client told once. */
  cut: boolean;
}

export interface StatementRec {
  readonly seq: number;
  readonly plan: ResultPlan | undefined;
  /** Held for approval (or a grant): each Bind of it is decided on its own, with its parameters. */
  readonly held?: { readonly deferred: DeferredHold; readonly paramTypes: readonly number[] };
  readonly effect: SqlEffect;
  /** Made by SQL PREPARE: the guardrails judge its Binds as `EXECUTE name`. */
  readonly sql?: true;
  /** Result fields (text format), from a Describe of it or of a portal bound from it. */
  fields?: readonly RowDescriptionField[] | undefined;
}

export interface PortalRec {
  readonly kind: "bound" | "cursor";
  readonly seq: number;
  readonly params?: readonly (string | null)[];
  readonly plan: ResultPlan | undefined;
  readonly resultFormats?: readonly number[];
  readonly effect: SqlEffect;
  readonly hold: boolean;
  readonly usage: Usage;
  /** The statement it was bound from (its fields are learned on a Describe of the portal). */
  readonly statement?: StatementRec;
  fields?: readonly RowDescriptionField[] | undefined;
}

/** One result stream the client receives: an Execute, or a simple Query / FunctionCall. */
export interface Execution {
  readonly kind: "simple" | "execute";
  /** A refused statement replaced by a poison: its error is the refusal, nothing is recorded. */
  readonly denied: boolean;
  readonly started: number;
  seq: number;
  params?: readonly (string | null)[] | undefined;
  plan: ResultPlan | undefined;
  resultFormats?: readonly number[] | undefined;
  /** Fields of rows that come without a RowDescription (protocol Execute). */
  fields?: readonly RowDescriptionField[] | undefined;
  /** The row count maxRows applies to (a portal's or cursor's across executions). */
  usage: Usage;
  /** The rows' origin is not known to the gateway: the result is refused, never passed raw. */
  unknownOrigin?: boolean;
  /** A COPY … TO STDOUT: what its stream holds (masked by the result stage). */
  copy?: CopyOutSpec | undefined;
  /** The policy's statement timeout passed and the gateway cancelled it (statement-timer.ts):
   * the error the client gets instead of the target's 57014, and the rule. */
  timedOut?: { readonly message: string; readonly rule: string };
  result: ResultAcc;
}

type Op =
  | { readonly k: "parse"; readonly name: string; readonly rec: StatementRec | undefined; readonly epoch: number }
  | { readonly k: "bind"; readonly portal: string; readonly rec: PortalRec; readonly epoch: number }
  | { readonly k: "describe"; readonly what: "S" | "P"; readonly name: string; readonly epoch: number }
  | { readonly k: "close"; readonly what: "S" | "P"; readonly name: string; readonly epoch: number }
  | { readonly k: "execute"; readonly portal: string; readonly exec: Execution; resolved: boolean; readonly touches: boolean; readonly epoch: number }
  | { readonly k: "simple"; readonly exec: Execution; readonly base: ResultPlan | undefined; readonly units: readonly SqlEffect[]; unit: number; unitStarted: boolean; readonly epoch: number }
  | { readonly k: "sync"; readonly epoch: number };

/** What a Bind or Parse of a name may rely on now: a record (or none), or wait for the target. */
export type NameView = { readonly rec: StatementRec | undefined } | "wait";

export class TargetModel {
  readonly statements = new Map<string, StatementRec>();
  readonly portals = new Map<string, PortalRec>();
  /** Effects of portals as last bound by the client (send time): which Executes may touch statements. */
  readonly #sentPortalEffects = new Map<string, SqlEffect>();
  readonly #ops: Op[] = [];
  #head = 0;
  /** Syncs sent so far: operations of the same epoch run only if all before them succeeded. */
  #epoch = 0;
  #waiters: (() => void)[] = [];
  #ignoring = false;
  #progress = 0;

  // ------------------------------------------------------------ sent (client → target)

  parse(name: string, rec: StatementRec | undefined): void {
    this.#push({ k: "parse", name, rec, epoch: this.#epoch });
  }

  bind(portal: string, rec: PortalRec): void {
    this.#sentPortalEffects.set(portal, rec.effect);
    this.#push({ k: "bind", portal, rec, epoch: this.#epoch });
  }

  describe(what: "S" | "P", name: string): void {
    this.#push({ k: "describe", what, name, epoch: this.#epoch });
  }

  close(what: "S" | "P", name: string): void {
    this.#push({ k: "close", what, name, epoch: this.#epoch });
  }

  execute(portal: string, exec: Execution): void {
    const effect = this.#sentPortalEffects.get(portal) ?? PLAIN;
    this.#push({ k: "execute", portal, exec, resolved: false, touches: touchesStatements(effect), epoch: this.#epoch });
  }

  simple(exec: Execution, units: readonly SqlEffect[]): void {
    this.#push({ k: "simple", exec, base: exec.plan, units, unit: 0, unitStarted: false, epoch: this.#epoch });
  }

  sync(): void {
    this.#push({ k: "sync", epoch: this.#epoch });
    this.#ignoring = false;
    this.#epoch++;
  }

  #push(op: Op): void {
    // The target ignores everything until Sync after an error: nothing of it will be answered.
    if (this.#ignoring && op.k !== "sync") return;
    this.#ops.push(op);
  }

  /**
   * The target answered an extended-protocol message with an error and no Sync has been sent
   * since: what the client sends now, up to Sync, is ignored by the target (a Query included).
   */
  get ignoring(): boolean {
    return this.#ignoring;
  }

  /** Grows each time the target answers an operation or ends a statement of a simple Query. */
  get progress(): number {
    return this.#progress;
  }

  /**
   * The execution the target is working on or will run next (the first Execute, Query or
   * FunctionCall not yet answered), or undefined when none is outstanding. Its statement's
   * running time is what a statement timeout measures (statement-timer.ts).
   */
  running(): Execution | undefined {
    for (let i = this.#head; i < this.#ops.length; i++) {
      const op = this.#ops[i];
      if (op?.k === "execute" || op?.k === "simple") return op.exec;
    }
    return undefined;
  }

  /** Nothing is awaiting an answer. */
  get idle(): boolean {
    return this.#head >= this.#ops.length;
  }

  /**
   * The statement a Bind of `name` sent now will use. An operation on the name in the current
   * batch decides it exactly (had it failed, the target would skip this Bind too); one in an
   * earlier batch, or SQL that may prepare or deallocate, must be answered first ("wait").
   */
  statementFor(name: string): NameView {
    for (let i = this.#ops.length - 1; i >= this.#head; i--) {
      const op = this.#ops[i];
      if (op === undefined) continue;
      if ((op.k === "parse" && op.name === name) || (op.k === "close" && op.what === "S" && op.name === name)) {
        if (op.epoch !== this.#epoch) return "wait";
        return { rec: op.k === "parse" ? op.rec : undefined };
      }
      if ((op.k === "simple" && op.units.some(touchesStatements)) || (op.k === "execute" && op.touches)) return "wait";
    }
    return { rec: this.statements.get(name) };
  }

  /** Resolves once at least one more operation has been answered (or the model was reset). */
  answered(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  // ------------------------------------------------------------ answered (target → client)

  /** The execution whose results arrive now, with its origin resolved (undefined: none). */
  current(): Execution | undefined {
    const op = this.#ops[this.#head];
    if (op === undefined) return undefined;
    if (op.k === "execute") {
      if (!op.resolved) {
        op.resolved = true;
        this.#resolveExecute(op.portal, op.exec);
      }
      return op.exec;
    }
    if (op.k === "simple") {
      if (!op.unitStarted) {
        op.unitStarted = true;
        this.#resolveUnit(op);
      }
      return op.exec;
    }
    return undefined;
  }

  #resolveExecute(portal: string, exec: Execution): void {
    const rec = this.portals.get(portal);
    if (rec === undefined) {
      exec.unknownOrigin = true;
      return;
    }
    exec.seq = rec.seq;
    exec.params = rec.params;
    exec.resultFormats = rec.resultFormats;
    // Fields learned after the Bind was sent (a Describe of its statement) count too.
    exec.fields = rec.fields ?? rec.statement?.fields;
    if (rec.effect.kind === "fetch") {
      // A FETCH bound as a portal: the rows are the cursor's.
      const cursor = this.portals.get(rec.effect.cursor);
      if (cursor === undefined) {
        exec.unknownOrigin = true;
        return;
      }
      exec.plan = mergePlans(cursor.plan, rec.plan);
      exec.usage = cursor.usage;
      return;
    }
    if (rec.effect.kind === "unknown") exec.unknownOrigin = true;
    exec.copy = rec.effect.kind === "copy_out" ? rec.effect.spec : undefined;
    exec.plan = rec.plan;
    exec.usage = rec.usage;
  }

  #resolveUnit(op: Extract<Op, { k: "simple" }>): void {
    const effect = op.units[op.unit] ?? PLAIN;
    const exec = op.exec;
    exec.usage = { sent: 0, cut: false };
    exec.plan = unitPlan(op.base, op.unit);
    exec.unknownOrigin = false;
    exec.copy = effect.kind === "copy_out" ? effect.spec : undefined;
    if (effect.kind === "unknown") exec.unknownOrigin = true;
    if (effect.kind !== "fetch") return;
    const cursor = this.portals.get(effect.cursor);
    if (cursor === undefined) {
      exec.unknownOrigin = true;
      return;
    }
    exec.plan = mergePlans(cursor.plan, op.base);
    exec.usage = cursor.usage;
  }

  /** ParseComplete, BindComplete, CloseComplete: the head operation took effect. */
  confirmed(kind: "parse" | "bind" | "close"): void {
    const op = this.#ops[this.#head];
    if (op?.k !== kind) throw desync(kind);
    if (op.k === "parse") {
      if (op.rec !== undefined) this.statements.set(op.name, op.rec);
    } else if (op.k === "bind") {
      this.portals.set(op.portal, op.rec);
    } else {
      if (op.what === "S") this.statements.delete(op.name);
      else this.portals.delete(op.name);
    }
    this.#shift();
  }

  /** RowDescription or NoData answering a Describe: the fields of that statement or portal. */
  described(fields: readonly RowDescriptionField[]): boolean {
    const op = this.#ops[this.#head];
    if (op?.k !== "describe") return false;
    if (op.what === "S") {
      const s = this.statements.get(op.name);
      if (s !== undefined) s.fields = fields;
    } else {
      const p = this.portals.get(op.name);
      if (p !== undefined) {
        p.fields = fields;
        // Later Binds of the statement (without a Describe) carry the same columns; the
        // format is the Bind's, so keep the statement's copy in text format.
        if (p.statement !== undefined) p.statement.fields = fields.map((f) => ({ ...f, format: 0 }));
      }
    }
    this.#shift();
    return true;
  }

  /** ParameterDescription: part of a statement Describe's answer, which RowDescription/NoData ends. */
  get describing(): boolean {
    return this.#ops[this.#head]?.k === "describe";
  }

  /**
   * CommandComplete, EmptyQueryResponse or PortalSuspended for the current execution: apply what
   * the statement did (cursor declared, statement prepared…). Returns whether the execution ended.
   */
  completed(how: "complete" | "empty" | "suspended"): boolean {
    const op = this.#ops[this.#head];
    if (op === undefined) return false;
    if (op.k === "execute") {
      if (how === "complete") {
        const rec = this.portals.get(op.portal);
        if (rec !== undefined && !op.exec.unknownOrigin) this.#applyEffect(rec.effect, rec.plan, rec.seq);
      }
      this.#shift();
      return true;
    }
    if (op.k === "simple") {
      if (how === "complete") this.#applyEffect(op.units[op.unit] ?? PLAIN, unitPlan(op.base, op.unit), op.exec.seq);
      this.#progress++;
      op.unit++;
      op.unitStarted = false;
      return false;
    }
    return false;
  }

  #applyEffect(effect: SqlEffect, plan: ResultPlan | undefined, seq: number): void {
    switch (effect.kind) {
      case "declare":
        this.portals.set(effect.cursor, { kind: "cursor", seq, plan, effect: PLAIN, hold: effect.hold, usage: { sent: 0, cut: false } });
        return;
      case "close_cursor":
        if (effect.cursor === undefined) this.portals.clear();
        else this.portals.delete(effect.cursor);
        return;
      case "prepare":
        this.statements.set(effect.name, { seq, plan: undefined, effect: PLAIN, sql: true });
        return;
      case "deallocate":
        if (effect.name === undefined) this.statements.clear();
        else this.statements.delete(effect.name);
        return;
      case "discard_all":
        this.statements.clear();
        this.portals.clear();
        return;
      case "fetch":
      case "plain":
      case "copy_out":
      case "unknown":
        return;
    }
  }

  /**
   * ErrorResponse. An extended-protocol operation failed: it and everything the target will now
   * ignore until Sync are dropped. In a simple Query the error ends it (ReadyForQuery follows).
   * Returns the execution the error belongs to, if any.
   */
  failed(): Execution | undefined {
    const op = this.#ops[this.#head];
    if (op === undefined || op.k === "sync") return undefined;
    if (op.k === "simple") {
      this.current();
      return op.exec;
    }
    const exec = op.k === "execute" ? this.current() : undefined;
    // A failed Parse of the unnamed statement has dropped the old one (exec_parse_message).
    if (op.k === "parse" && op.name === "") this.statements.delete("");
    while (this.#head < this.#ops.length && this.#ops[this.#head]?.k !== "sync") this.#shift();
    // No Sync sent yet: whatever the client sends until its Sync is ignored by the target.
    if (this.#head >= this.#ops.length) this.#ignoring = true;
    return exec;
  }

  /** ReadyForQuery: the Sync, Query or FunctionCall it answers is done; idle ends portals. */
  ready(txStatus: "I" | "T" | "E"): void {
    while (this.#head < this.#ops.length) {
      const op = this.#ops[this.#head];
      this.#shift();
      if (op === undefined || op.k === "sync") break;
      if (op.k === "simple") {
        // exec_simple_query drops the unnamed statement and replaces the unnamed portal.
        this.statements.delete("");
        this.portals.delete("");
        break;
      }
    }
    if (txStatus === "I") {
      for (const [name, p] of this.portals) if (!p.hold) this.portals.delete(name);
    }
  }

  #shift(): void {
    this.#head++;
    this.#progress++;
    if (this.#head > 1024 && this.#head * 2 > this.#ops.length) {
      this.#ops.splice(0, this.#head);
      this.#head = 0;
    } else if (this.#head === this.#ops.length) {
      this.#ops.length = 0;
      this.#head = 0;
    }
    const waiters = this.#waiters;
    if (waiters.length > 0) {
      this.#waiters = [];
      for (const w of waiters) w();
    }
  }

  /** The session ended: release anyone waiting for an answer. */
  dispose(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

export function newExecution(kind: "simple" | "execute", seq: number, denied: boolean, plan: ResultPlan | undefined): Execution {
  return { kind, seq, denied, started: performance.now(), plan, usage: { sent: 0, cut: false }, result: newResult() };
}

function touchesStatements(e: SqlEffect): boolean {
  return e.kind === "prepare" || e.kind === "deallocate" || e.kind === "discard_all" || e.kind === "unknown";
}

/** The plan of one statement of a simple Query: its own lineage only (see ResultPlan.lineage). */
function unitPlan(base: ResultPlan | undefined, unit: number): ResultPlan | undefined {
  if (base?.lineage === undefined) return base;
  const own = base.lineage[unit];
  return { ...base, lineage: [own] };
}

/** Rows of a cursor read by a FETCH: the cursor's masks and the FETCH's own, the cursor's limit. */
function mergePlans(cursor: ResultPlan | undefined, own: ResultPlan | undefined): ResultPlan | undefined {
  if (own === undefined || own.masks.length === 0) return cursor;
  if (cursor === undefined) return { masks: own.masks };
  const masks = [...cursor.masks];
  for (const m of own.masks) if (!masks.includes(m)) masks.push(m);
  return { ...cursor, masks };
}

function desync(what: string): GatewayError {
  return new GatewayError("GW_PROTOCOL", `the target answered ${what} where the gateway expected something else`);
}
