/**
 * Target → client: every answer of the target is paired with the operation it answers (the
 * TargetModel), and results are reframed on the way: DataRows masked by the plan of the
 * statement that produced them, row limits enforced (across Executes of one portal and FETCHes
 * of one cursor), results the gateway cannot treat refused in place, and every result recorded
 * as the client received it.
 */
import type { Logger } from "pino";
import type { DenyDecision, MaskRule, ResultPlan, SourceColumn, StatementLineage } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import { MaskChain } from "../../masking/index.js";
import { gatewayText } from "../../core/engine.js";
import type { SessionJudge } from "../../core/judge.js";
import type { ResultWatch } from "../../core/result-watch.js";
import type { PgCatalog } from "./catalog.js";
import { renderNotice, renderRefusal } from "./errors.js";
import type { CopyOutSpec } from "./copy-spec.js";
import { EMPTY, maskCopyRow, newResult, renderValue, tagWithRows, type ResultAcc } from "./executions.js";
import type { OutBuffer } from "./out-buffer.js";
import type { Refusals } from "./refusals.js";
import { maskErrorOrNotice, maskFunctionResult, maskNotification, type ChannelMasking } from "./channel-masking.js";
import { needsWork, planFields, rewriteDataRow, type FieldAction, type ResolvedField, type RuleMasker } from "./result-masking.js";
import type { Execution, TargetModel } from "./target-model.js";
import {
  type Frame,
  type RowDescriptionField,
  BackendType as B,
  decodeCommandComplete,
  decodeCopyResponse,
  decodeDataRow,
  decodeErrorOrNotice,
  decodeReadyForQuery,
  decodeRowDescription,
  encodeCommandComplete,
  encodeDataRow,
  encodeCopyData,
  encodeErrorResponse,
} from "./wire/index.js";
import { CopyOutSplitter } from "./wire/copy.js";

export interface ResultOptions {
  readonly gate: SessionJudge;
  readonly catalog: PgCatalog;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  readonly maxRowsPerStatement: number;
  readonly maxValueBytes: number;
  /** Longest COPY row buffered while masking (default 64 MiB); a longer one is refused. */
  readonly maxCopyRowBytes?: number;
  readonly logger: Logger;
  /** Send a CancelRequest for the running statement; resolves once the target has taken it. */
  readonly cancelUpstream: () => Promise<void>;
  /** A catalog lookup finished: re-observe the frame that waited for it. */
  readonly unblock: () => void;
}

/** Refusals of results the gateway cannot treat, each naming its rule (recorded as `refusedBy`). */
const UNRESOLVED: DenyDecision = { type: "deny", code: "GW_POLICY_DENIED", rule: "masking", message: "the masking rules could not be resolved against the target's catalog" };
const UNKNOWN_ORIGIN: DenyDecision = {
  type: "deny",
  code: "GW_POLICY_DENIED",
  rule: "result-origin",
  message: "the gateway cannot tell which statement produced these rows, so they are not passed (fail closed)",
};
const UNKNOWN_FIELDS: DenyDecision = {
  type: "deny",
  code: "GW_POLICY_DENIED",
  rule: "result-origin",
  message: "the gateway does not know the columns of these rows; Describe the statement or portal before Execute",
};
/** A COPY … TO STDOUT whose stream the gateway cannot mask. */
function copyUnknown(message: string): DenyDecision {
  return { type: "deny", code: "GW_POLICY_DENIED", rule: "masking", message };
}

/** A COPY stream that broke off: malformed, a row over the limit, or a field that cannot be masked. */
function copyFailure(e: unknown): DenyDecision {
  if (e instanceof GatewayError && e.code === "GW_POLICY_DENIED") return copyUnknown(e.message);
  if (e instanceof GatewayError && e.code === "GW_LIMIT") return { type: "deny", code: "GW_LIMIT", rule: "masking", message: `${e.message}; the COPY was cut` };
  return copyUnknown("the gateway could not read this COPY's output, so the rest of it is not passed (fail closed)");
}

/** A COPY row larger than this (the default message size limit) is refused. */
const DEFAULT_MAX_COPY_ROW_BYTES = 64 * 1_048_576;

/** How strongly an action masks: the COPY of a table found in several schemas takes the strongest. */
function strength(a: FieldAction): number {
  return a.kind === "null" ? 3 : a.kind === "whole" ? 2 : a.kind === "detect" ? 1 : 0;
}

function mergeActions(plans: readonly (readonly FieldAction[])[]): FieldAction[] {
  const first = plans[0] ?? [];
  return first.map((a, i) => {
    let best = a;
    for (const plan of plans) {
      const b = plan[i];
      if (b !== undefined && strength(b) > strength(best)) best = b;
    }
    return best;
  });
}

/**
 * After a maxRows cancel, new client work waits until the cancelled statement has completed and
 * the target has taken the cancel (a cancel still in flight could hit the next statement).
 */
export class CancelBarrier {
  promise: Promise<void> | undefined;
  #release: (() => void) | undefined;

  arm(cancel: () => Promise<void>): void {
    if (this.promise !== undefined) return;
    const completed = new Promise<void>((resolve) => (this.#release = resolve));
    this.promise = Promise.all([completed, cancel()]).then(() => undefined);
  }

  /** The statement completed (or was skipped). */
  release(): void {
    const release = this.#release;
    if (release === undefined) return;
    this.#release = undefined;
    const barrier = this.promise;
    release();
    void barrier?.then(() => {
      if (this.promise === barrier) this.promise = undefined;
    });
  }
}

/** How long planned field actions are reused without asking the catalog again (see #rowPlans). */
const ROW_PLAN_TTL_MS = 1_000;

interface RowPlanMemo {
  readonly fields: readonly RowDescriptionField[];
  readonly resultFormats: readonly number[] | undefined;
  readonly generation: number;
  readonly at: number;
  readonly actions: FieldAction[] | undefined;
}

function sameFormats(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class ResultStage {
  readonly #o: ResultOptions;
  readonly #model: TargetModel;
  readonly #refusals: Refusals;
  readonly barrier = new CancelBarrier();
  txStatus: "I" | "T" | "E";
  /** A DDL statement completed and its transaction has not ended yet (see ReadyForQuery). */
  #catalogChanged = false;
  #columns: string[] | undefined;
  #formats: number[] | undefined;
  /**
   * The last RowDescription decoded (its body copied): the same statement shape sends the same
   * bytes every time, and is decoded once (issue 13: result plans built once per statement and
   * RowDescription).
   */
  #lastRowDescription: { readonly body: Buffer; readonly fields: readonly RowDescriptionField[]; readonly columns: string[]; readonly formats: number[] } | undefined;
  /**
   * Field actions per result plan (a cached verdict hands out the same plan object for the same
   * statement) for the RowDescription they were planned for: reused while the fields, the
   * requested formats and the catalog's generation are the same, for at most ROW_PLAN_TTL_MS
   * (the catalog answers they come from have their own TTL).
   */
  readonly #rowPlans = new WeakMap<ResultPlan, RowPlanMemo>();
  /**
   * Every mask rule with content detectors this session's statements were planned with: the
   * detectors for what arrives outside any statement (a NOTIFY payload while idle) and, added
   * to the statement's own, for errors and notices.
   */
  readonly #seenRules: MaskRule[] = [];
  #seenFrom: readonly MaskRule[] | undefined;
  #channelChain: MaskChain | undefined;

  constructor(o: ResultOptions, model: TargetModel, refusals: Refusals, txStatus: "I" | "T" | "E") {
    this.#o = o;
    this.#model = model;
    this.#refusals = refusals;
    this.txStatus = txStatus;
  }

  /**
   * Observe one frame from the target. Returns undefined to forward it as is, replacement
   * bytes (empty to drop it), or "block" to wait for a catalog lookup before going on.
   * Extra frames to send before it may be added to `out`.
   */
  observe(frame: Frame, out: OutBuffer): Buffer | "block" | undefined {
    const model = this.#model;
    switch (frame.type) {
      case B.ParseComplete:
        model.confirmed("parse");
        return undefined;
      case B.BindComplete:
        model.confirmed("bind");
        return undefined;
      case B.CloseComplete:
        model.confirmed("close");
        return undefined;
      case B.ParameterDescription:
        return undefined;
      case B.NoData:
        model.described([]);
        return undefined;
      case B.RowDescription:
        return this.#onRowDescription(frame);
      case B.DataRow:
        return this.#onDataRow(frame, out);
      case B.CopyOutResponse:
        return this.#onCopyOut(frame);
      case B.CopyData:
        return this.#onCopyData(frame, out);
      case B.CopyDone:
        return this.#onCopyDone();
      case B.CommandComplete:
        return this.#onComplete(frame);
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        return this.#onComplete(frame);
      case B.ErrorResponse:
        return this.#onError(frame);
      case B.NoticeResponse:
        return this.#onNotice(frame);
      case B.NotificationResponse:
        // Asynchronous (another session's NOTIFY): the detectors of the statement running now,
        // if any, and of every rule seen in this session; never echo redaction.
        return maskNotification(frame.body, this.#channel(this.#model.current()).chain, {});
      case B.FunctionCallResponse:
        return this.#onFunctionResult(frame);
      case B.ReadyForQuery: {
        this.txStatus = decodeReadyForQuery(frame.body);
        if (this.#catalogChanged) {
          // DDL ran: what the gateway's catalog lookups cached (views, columns, search_path
          // defaults) may be stale for every session of this connection. Again at the end of
          // the transaction, when the change becomes visible to the side connection.
          this.#o.catalog.invalidate();
          if (this.txStatus === "I") this.#catalogChanged = false;
        }
        model.ready(this.txStatus);
        // Executions skipped by the target after an error never complete: let new work go.
        this.barrier.release();
        return undefined;
      }
      default:
        return undefined;
    }
  }

  #onRowDescription(frame: Frame): Buffer | "block" | undefined {
    let last = this.#lastRowDescription;
    if (last === undefined || !last.body.equals(frame.body)) {
      const decoded = decodeRowDescription(frame.body);
      last = { body: Buffer.from(frame.body), fields: decoded, columns: decoded.map((f) => f.name), formats: decoded.map((f) => f.format) };
      this.#lastRowDescription = last;
    }
    const fields = last.fields;
    this.#columns = last.columns;
    this.#formats = last.formats;
    if (this.#model.described(fields)) return undefined;
    const p = this.#model.current();
    if (p === undefined) return undefined;
    p.fields = fields;
    return this.#planRows(p, fields);
  }

  /** Decide how this execution's rows are masked, from their fields; "block" while looking up. */
  #planRows(p: Execution, fields: readonly RowDescriptionField[]): "block" | undefined {
    const acc = p.result;
    const plan = p.plan;
    const masks = plan?.masks;
    if (plan === undefined || masks === undefined || masks.length === 0) return undefined;
    const generation = this.#o.catalog.generation;
    const now = Date.now();
    const memo = this.#rowPlans.get(plan);
    if (
      memo !== undefined &&
      memo.fields === fields &&
      sameFormats(memo.resultFormats, p.resultFormats) &&
      memo.generation === generation &&
      !this.#catalogChanged &&
      now - memo.at <= ROW_PLAN_TTL_MS
    ) {
      acc.actions = memo.actions;
      acc.planned = true;
      return undefined;
    }
    const resolved = this.#resolveFields(fields, p);
    if (resolved === "block") return "block";
    if (resolved === undefined) {
      acc.refused ??= UNRESOLVED;
      return undefined;
    }
    const actions = planFields(resolved, masks, this.#o.maskerFor);
    acc.actions = needsWork(actions) ? actions : undefined;
    acc.planned = true;
    if (!this.#catalogChanged) this.#rowPlans.set(plan, { fields, resultFormats: p.resultFormats, generation, at: now, actions: acc.actions });
    return undefined;
  }

  /**
   * Field origins (relation.column) for masking. Returns "block" after starting a catalog
   * lookup (processing resumes when it completes), or undefined when the lookup failed.
   */
  #resolveFields(fields: readonly RowDescriptionField[], p: Execution): ResolvedField[] | "block" | undefined {
    const catalog = this.#o.catalog;
    const needColumnRules = p.plan?.masks.some((m) => m.columns.length > 0) === true;
    const missing: number[] = [];
    if (needColumnRules) for (const f of fields) if (f.tableOid !== 0 && catalog.cached(f.tableOid) === "missing") missing.push(f.tableOid);
    if (missing.length > 0) {
      if (p.result.refused !== undefined) return undefined;
      catalog.relations(missing).then(
        () => this.#o.unblock(),
        (e: unknown) => {
          this.#o.logger.warn({ err: e }, "catalog lookup for masking failed; refusing the result");
          p.result.refused = UNRESOLVED;
          this.#o.unblock();
        },
      );
      return "block";
    }
    const formats = p.resultFormats;
    const origins = fields.map((f) => {
      const info = f.tableOid !== 0 ? catalog.cached(f.tableOid) : undefined;
      const rel = info !== undefined && info !== "missing" ? info : undefined;
      const column = rel?.columns.get(f.columnAttr);
      return rel === undefined || column === undefined ? undefined : { relation: { schema: rel.schema, name: rel.name }, column };
    });
    const sources = needColumnRules ? fieldSources(origins, p.plan?.lineage?.[0], catalog, this.#catalogChanged) : undefined;
    if (sources !== undefined && sources.missing.length > 0) {
      if (p.result.refused !== undefined) return undefined;
      Promise.all([catalog.inheritance(sources.missing), catalog.viewLineage(sources.missing), catalog.columnsByName(sources.missing)]).then(
        () => this.#o.unblock(),
        (e: unknown) => {
          this.#o.logger.warn({ err: e }, "catalog lookup for masking failed; refusing the result");
          p.result.refused = UNRESOLVED;
          this.#o.unblock();
        },
      );
      return "block";
    }
    return fields.map((f, i): ResolvedField => {
      const format = formats === undefined || formats.length === 0 ? f.format : formats.length === 1 ? (formats[0] ?? 0) : (formats[i] ?? 0);
      const origin = origins[i];
      const derivedFrom = sources?.fields[i];
      return {
        name: f.name,
        typeOid: f.typeOid,
        format,
        ...(origin === undefined ? {} : origin),
        ...(derivedFrom === undefined || derivedFrom.length === 0 ? {} : { derivedFrom }),
      };
    });
  }

  /** Refusals that hold before any row is looked at: the plan's own, or an unknown origin. */
  #preRefusal(p: Execution): DenyDecision | undefined {
    const acc = p.result;
    if (acc.refused !== undefined) return acc.refused;
    if (p.unknownOrigin === true) acc.refused = UNKNOWN_ORIGIN;
    else if (p.plan?.refuse !== undefined) acc.refused = p.plan.refuse;
    return acc.refused;
  }

  #onDataRow(frame: Frame, out: OutBuffer): Buffer | "block" | undefined {
    const p = this.#model.current();
    // A DataRow that answers nothing the gateway sent has no origin: never passed.
    if (p === undefined) return EMPTY;
    if (p.denied) return EMPTY;
    const acc = p.result;
    if (this.#preRefusal(p) !== undefined) return EMPTY;
    const plan = p.plan;
    if (plan !== undefined && plan.masks.length > 0 && acc.planned !== true) {
      // Rows of a protocol Execute come without a RowDescription: the fields are the portal's
      // (its Describe) or its statement's. Unknown fields cannot be masked: refused.
      if (p.fields === undefined) {
        acc.refused = UNKNOWN_FIELDS;
        return EMPTY;
      }
      if (this.#planRows(p, p.fields) === "block") return "block";
      if (acc.refused !== undefined) return EMPTY;
    }
    let bytes: Buffer | undefined;
    if (acc.actions !== undefined) {
      try {
        bytes = rewriteDataRow(frame.body, acc.actions, acc.masked);
      } catch (e) {
        // A value the gateway cannot mask (a type it cannot decode): the result is refused.
        if (!(e instanceof GatewayError) || e.code !== "GW_POLICY_DENIED") throw e;
        acc.refused = { type: "deny", code: "GW_POLICY_DENIED", rule: e.rule ?? "masking", message: e.message };
        return EMPTY;
      }
    }
    if (plan?.maxRows !== undefined && p.usage.sent >= plan.maxRows) {
      acc.rowCount++;
      this.#limitExceeded(p, out);
      return EMPTY;
    }
    const watch = this.#o.gate.results;
    if (watch !== undefined) {
      if (acc.cutBy !== undefined) return EMPTY;
      const watched = this.#watchRow(watch, p, bytes === undefined ? frame.body : bytes.subarray(5), out);
      if (watched === "drop") return EMPTY;
      if (watched !== undefined) bytes = watched;
    }
    p.usage.sent++;
    acc.sent++;
    this.#captureRow(acc, bytes === undefined ? frame.body : bytes.subarray(5), p.fields);
    return bytes;
  }

  /**
   * CopyOutResponse: decide how the COPY's stream is treated. Under masking, its fields are
   * resolved (the table's columns, or the query's fields by a Describe on the side connection)
   * and planned as a SELECT's would be; "block" while looking up. A COPY the gateway cannot
   * treat is refused before the client enters COPY mode.
   */
  #onCopyOut(frame: Frame): Buffer | "block" | undefined {
    this.#columns = ["copy"];
    this.#formats = [0];
    const p = this.#model.current();
    if (p === undefined || p.denied) return undefined;
    const acc = p.result;
    if (this.#preRefusal(p) !== undefined) return this.#hideCopy(p);
    const masks = p.plan?.masks ?? [];
    const limited = p.plan?.maxRows !== undefined;
    if (masks.length === 0 && !limited) return undefined;
    const response = decodeCopyResponse(frame.body);
    const spec = p.copy;
    const format = spec === undefined || "unknown" in spec.format ? undefined : spec.format;
    if (format === undefined || (format.kind === "binary") !== (response.format === 1)) {
      if (masks.length > 0) {
        const why =
          spec === undefined
            ? "the gateway cannot tell which COPY statement produced this output"
            : "unknown" in spec.format
              ? `the gateway cannot tell the output format of this COPY (${spec.format.unknown})`
              : "this COPY's output is not in the format its statement names";
        acc.refused = copyUnknown(`${why}, so it cannot be masked (fail closed)`);
        return this.#hideCopy(p);
      }
      acc.copy = { splitter: undefined, format: undefined, actions: undefined };
      return undefined;
    }
    let actions: FieldAction[] | undefined;
    if (masks.length > 0 && spec !== undefined) {
      const candidates = this.#copyFields(p, spec, response.columnFormats.length, format.kind === "binary" ? 1 : 0);
      if (candidates === "block") return "block";
      if (acc.refused !== undefined) return this.#hideCopy(p);
      actions = mergeActions(candidates.map((fields) => planFields(fields, masks, this.#o.maskerFor)));
      if (!needsWork(actions)) actions = undefined;
    }
    acc.copy = { splitter: new CopyOutSplitter(format, this.#o.maxCopyRowBytes ?? DEFAULT_MAX_COPY_ROW_BYTES, response.columnFormats.length), format, actions };
    return undefined;
  }

  /**
   * The fields of a COPY's stream, for each relation it may read (a table named without its
   * schema: every table of that name, so that no search_path moves it off a masked one), or
   * "block" while looking up. On failure, the result is refused (column rules) or its fields
   * are taken as text of unknown origin (detectors only).
   */
  #copyFields(p: Execution, spec: CopyOutSpec, count: number, format: number): readonly (readonly ResolvedField[])[] | "block" {
    const acc = p.result;
    const known = acc.copyFields;
    const columnRules = p.plan?.masks.some((m) => m.columns.length > 0) === true;
    const unknownOrigin = (): ResolvedField[][] => [Array.from({ length: count }, (_, i): ResolvedField => ({ name: `column${i + 1}`, typeOid: 25, format }))];
    if (known === "pending") return "block";
    if (known !== undefined) {
      const fitting = known.filter((fields) => fields.length === count);
      if (fitting.length > 0) return fitting;
      if (!columnRules && format === 0) return unknownOrigin();
      acc.refused = copyUnknown("the gateway could not resolve the columns of this COPY, so its output cannot be masked (fail closed)");
      return [];
    }
    acc.copyFields = "pending";
    this.#lookUpCopy(spec, format).then(
      (fields) => {
        acc.copyFields = fields;
        this.#o.unblock();
      },
      (e: unknown) => {
        this.#o.logger.warn({ err: e }, "resolving the columns of a COPY failed");
        acc.copyFields = [];
        this.#o.unblock();
      },
    );
    return "block";
  }

  async #lookUpCopy(spec: CopyOutSpec, format: number): Promise<readonly (readonly ResolvedField[])[]> {
    const catalog = this.#o.catalog;
    if (spec.relation !== undefined) {
      const rel = spec.relation;
      const tables = (await catalog.tablesNamed(rel.name)).filter((t) => rel.schema === undefined || t.schema === rel.schema);
      const wanted = spec.columns ?? [];
      const out: ResolvedField[][] = [];
      for (const t of tables) {
        const cols = wanted.length === 0 ? t.columns : wanted.map((w) => t.columns.find((c) => c.name === w));
        if (cols.some((c) => c === undefined)) continue;
        out.push(
          cols.flatMap((c) => (c === undefined ? [] : [{ name: c.name, typeOid: c.typeOid, format, relation: { schema: t.schema, name: t.name }, column: c.name }])),
        );
      }
      return out;
    }
    if (spec.query === undefined) return [];
    // Described on the side connection, whose search_path may not be the session's: a field
    // from `schema.name.column` may as well come from `name.column` of any other schema, and
    // takes the strongest action of them all (masking never depends on the search_path).
    const fields = await catalog.describeQuery(spec.query);
    await catalog.relations(fields.map((f) => f.tableOid).filter((o) => o !== 0));
    const variants: ResolvedField[][] = [];
    for (const f of fields) {
      const info = f.tableOid !== 0 ? catalog.cached(f.tableOid) : undefined;
      const rel = info !== undefined && info !== "missing" ? info : undefined;
      const column = rel?.columns.get(f.columnAttr);
      const base: ResolvedField = { name: f.name, typeOid: f.typeOid, format };
      if (rel === undefined || column === undefined) {
        variants.push([base]);
        continue;
      }
      const same = (await catalog.tablesNamed(rel.name)).filter((t) => t.schema !== rel.schema && t.columns.some((c) => c.name === column));
      variants.push([rel.schema, ...same.map((t) => t.schema)].map((schema) => ({ ...base, relation: { schema, name: rel.name }, column })));
    }
    const most = Math.max(1, ...variants.map((v) => v.length));
    return Array.from({ length: most }, (_, k) => variants.map((v) => v[Math.min(k, v.length - 1)] ?? { name: "", typeOid: 25, format }));
  }

  /** A COPY refused before the client saw its CopyOutResponse: the stream is dropped whole. */
  #hideCopy(p: Execution): Buffer {
    p.result.copyHidden = true;
    return EMPTY;
  }

  #onCopyData(frame: Frame, out: OutBuffer): Buffer | undefined {
    const p = this.#model.current();
    if (p === undefined) return undefined; // COPY FROM STDIN echoes nothing; nothing to treat
    const acc = p.result;
    if (acc.refused !== undefined) return EMPTY;
    const copy = acc.copy;
    if (copy === undefined) {
      // Nothing to mask and no row limit: passed as it is.
      this.#recordCopy(acc, frame.body, 0);
      return undefined;
    }
    const splitter = copy.splitter;
    const format = copy.format;
    if (splitter === undefined || format === undefined) {
      // Format unknown, no masks: one row per message (as PostgreSQL sends them).
      if (this.#copyLimitReached(p, out)) return EMPTY;
      p.usage.sent++;
      acc.sent++;
      this.#recordCopy(acc, frame.body, 0);
      return undefined;
    }
    const parts: Buffer[] = [];
    let changed = false;
    try {
      const items = splitter.push(frame.body);
      for (const item of items) {
        if (item.kind !== "row") {
          parts.push(item.raw);
          continue;
        }
        if (this.#copyLimitReached(p, out)) {
          changed = true;
          break;
        }
        const masked = copy.actions === undefined ? undefined : maskCopyRow(format, item.raw, item.fields, copy.actions, acc.masked);
        if (masked !== undefined) changed = true;
        const row = masked ?? item.raw;
        parts.push(row);
        p.usage.sent++;
        acc.sent++;
        this.#recordCopy(acc, row, format.kind === "binary" ? 1 : 0);
      }
    } catch (e) {
      acc.refused = copyFailure(e);
      return EMPTY;
    }
    // A row still incomplete is held by the splitter and sent with the message that ends it.
    let length = 0;
    for (const part of parts) length += part.length;
    if (!changed && length === frame.body.length) return undefined;
    if (length === 0) return EMPTY;
    return encodeCopyData(Buffer.concat(parts, length));
  }

  /** CopyDone: a row left incomplete is never passed; the result is refused instead. */
  #onCopyDone(): Buffer | undefined {
    const p = this.#model.current();
    if (p === undefined) return undefined;
    const acc = p.result;
    if (acc.copyHidden === true) return EMPTY;
    try {
      if (acc.refused === undefined) acc.copy?.splitter?.finish();
    } catch (e) {
      acc.refused = copyFailure(e);
    }
    return undefined;
  }

  /** maxRows reached for this COPY (the client is told and the statement cancelled). */
  #copyLimitReached(p: Execution, out: OutBuffer): boolean {
    if (p.plan?.maxRows === undefined || p.usage.sent < p.plan.maxRows) return false;
    p.result.rowCount++;
    this.#limitExceeded(p, out);
    return true;
  }

  /** One COPY row (or message) as the client received it, for the recording. */
  #recordCopy(acc: ResultAcc, row: Buffer, format: number): void {
    acc.rowCount++;
    if (acc.rows.length < this.#o.maxRowsPerStatement) acc.rows.push([renderValue(row, format, this.#o.maxValueBytes)]);
    else acc.truncated = true;
  }

  /** CommandComplete, EmptyQueryResponse or PortalSuspended: the result ends (refused: in its place, the refusal). */
  #onComplete(frame: Frame): Buffer | undefined {
    const model = this.#model;
    const p = model.current();
    let replacement: Buffer | undefined;
    const how = frame.type === B.CommandComplete ? "complete" : frame.type === B.EmptyQueryResponse ? "empty" : "suspended";
    const { tag, rows } = how === "complete" ? decodeCommandComplete(frame.body) : { tag: how === "empty" ? "EMPTY" : "SUSPENDED", rows: undefined };
    if (changesCatalog(tag)) this.#catalogChanged = true;
    if (p !== undefined) {
      const masks = p.plan?.masks;
      if (masks !== undefined && masks !== this.#seenFrom) this.#remember(masks);
      const acc = p.result;
      const refused = p.denied ? undefined : acc.refused;
      if (refused !== undefined) {
        // The client gets the refusal, and so does the recording (not the target's tag).
        replacement = renderRefusal(refused);
        this.#emit(p, { error: refusalRecord(replacement, refused) });
      } else if (acc.cutBy !== undefined) {
        // A budget was spent mid-result and the target finished before the cancel: the rows so far, then the refusal.
        replacement = renderRefusal(acc.cutBy);
        this.#emit(p, { error: refusalRecord(replacement, acc.cutBy), refusedBy: acc.cutBy.rule ?? acc.cutBy.code });
      } else {
        if (how === "complete" && acc.cancelled === true && p.plan?.maxRows !== undefined) {
          // The target finished before the cancel arrived: report what the client got.
          replacement = encodeCommandComplete(tagWithRows(tag, acc.sent));
        }
        this.#emit(p, { tag, rows });
      }
    }
    this.#endExecution(p, model.completed(how));
    this.#columns = undefined;
    this.#formats = undefined;
    return replacement;
  }

  /**
   * Budgets and result scanning (core/result-watch.ts) for one row about to be sent: its
   * replacement bytes, "drop" when it is not sent (a spent budget cuts the result here, an
   * ended session passes nothing more), or undefined to send it as it is.
   */
  #watchRow(watch: ResultWatch, p: Execution, body: Buffer, out: OutBuffer): Buffer | "drop" | undefined {
    const acc = p.result;
    const raw = watch.wantsValues ? decodeDataRow(body) : undefined;
    const formats = this.#formats ?? p.fields?.map((f) => f.format);
    const values = raw === undefined ? [] : raw.map((v, i) => (v === null || (formats?.[i] ?? 0) !== 0 ? null : v.toString("utf8")));
    const v = watch.row(p.seq, body.length + 5, values);
    switch (v.type) {
      case "pass": {
        for (const n of v.notices ?? []) out.add(renderNotice(n, "WARNING"));
        if (v.replace === undefined || raw === undefined) return undefined;
        const replace = v.replace;
        return encodeDataRow(raw.map((x, i) => {
          const r = replace.get(i);
          return r === undefined ? x : Buffer.from(r, "utf8");
        }));
      }
      case "cut":
        for (const n of v.notices ?? []) out.add(renderNotice(n, "WARNING"));
        acc.rowCount++;
        acc.cutBy = v.refusal;
        if (acc.cancelled !== true) {
          acc.cancelled = true;
          out.add(renderNotice(`${v.refusal.message}; the result was cut after ${acc.sent} rows and the statement is cancelled`, "WARNING"));
          this.barrier.arm(this.#o.cancelUpstream);
        }
        return "drop";
      case "end":
        acc.refused ??= v.refusal;
        return "drop";
    }
  }

  /** maxRows reached: tell the client once, and cancel the statement on the target. */
  #limitExceeded(p: Execution, out: OutBuffer): void {
    const acc = p.result;
    if (acc.cancelled === true) return;
    acc.cancelled = true;
    if (p.usage.cut) return; // an earlier Execute/FETCH of this portal was already cut
    p.usage.cut = true;
    const limit = p.plan?.maxRows ?? 0;
    const rule = p.plan?.maxRowsRule;
    out.add(renderNotice(`the result was cut at ${limit} rows${rule === undefined ? "" : ` (rule: ${rule})`}; the statement is cancelled`));
    this.barrier.arm(this.#o.cancelUpstream);
  }

  /** A result ended; a simple Query's next statement starts with a fresh result. */
  #endExecution(p: Execution | undefined, ended: boolean): void {
    if (p === undefined) return;
    if (ended) this.barrier.release();
    else p.result = newResult();
  }

  #onError(frame: Frame): Buffer | undefined {
    const err = decodeErrorOrNotice(frame.body);
    const poison = this.#refusals.replacementFor(err.message);
    const p = this.#model.failed();
    if (poison !== undefined) return poison;
    if (p === undefined || p.denied) return maskErrorOrNotice(B.ErrorResponse, frame.body, this.#channel(p), {});
    const acc = p.result;
    let replacement: Buffer | undefined;
    let recorded: { sqlstate: string; message: string } = { sqlstate: err.code, message: err.message };
    const gatewayCancel = err.code === "57014" && (acc.cancelled === true || p.timedOut !== undefined);
    if (acc.refused === undefined && !gatewayCancel) {
      // The target's own error: its fields through the detectors (and echo redaction).
      replacement = maskErrorOrNotice(B.ErrorResponse, frame.body, this.#channel(p), acc.masked);
      if (replacement !== undefined) recorded = { sqlstate: err.code, message: decodeErrorOrNotice(replacement.subarray(5)).message };
    } else if (acc.refused !== undefined) {
      replacement = renderRefusal(acc.refused);
      recorded = refusalRecord(replacement, acc.refused);
    } else if (p.timedOut !== undefined && err.code === "57014") {
      // The gateway's statement timer cancelled it (statement-timer.ts): say so, with the rule.
      replacement = encodeErrorResponse({ severity: "ERROR", code: "57014", message: p.timedOut.message });
      recorded = { sqlstate: "57014", message: p.timedOut.message };
    } else if (acc.cutBy !== undefined && err.code === "57014") {
      // The gateway cancelled it because a budget was spent: the budget's refusal, not a cancel.
      replacement = renderRefusal(acc.cutBy);
      recorded = refusalRecord(replacement, acc.cutBy);
    } else if (acc.cancelled === true && err.code === "57014") {
      const limit = p.plan?.maxRows ?? 0;
      const rule = p.plan?.maxRowsRule;
      // In an implicit transaction the cut result is the whole answer; inside a transaction
      // block the cancel aborted it, and the client must know.
      replacement =
        this.txStatus === "I" && p.kind === "simple"
          ? encodeCommandComplete(`SELECT ${acc.sent}`)
          : encodeErrorResponse({
              severity: "ERROR",
              code: "57014",
              message: gatewayText(`the result exceeded ${limit} rows${rule === undefined ? "" : ` (rule: ${rule})`}; the statement was cancelled`),
            });
    }
    const refusedBy = acc.refused !== undefined ? (acc.refused.rule ?? acc.refused.code) : acc.cutBy !== undefined ? (acc.cutBy.rule ?? acc.cutBy.code) : recorded.sqlstate === "57014" ? p.timedOut?.rule : undefined;
    this.#emit(p, { error: recorded, ...(refusedBy === undefined ? {} : { refusedBy }) });
    // The next result starts with its own columns (not this failed one's).
    this.#columns = undefined;
    this.#formats = undefined;
    if (p.kind === "execute") this.barrier.release();
    return replacement;
  }

  /** A NoticeResponse of the target (RAISE NOTICE, warnings): masked like the statement's errors. */
  #onNotice(frame: Frame): Buffer | undefined {
    const p = this.#model.current();
    return maskErrorOrNotice(B.NoticeResponse, frame.body, this.#channel(p), p?.result.masked ?? {});
  }

  /** A fastpath call's result (FunctionCallResponse): its value through the detectors, then recorded. */
  #onFunctionResult(frame: Frame): Buffer | undefined {
    const p = this.#model.current();
    if (p === undefined || p.denied) return maskFunctionResult(frame.body, this.#channel(undefined).chain, {});
    const acc = p.result;
    const refused = this.#preRefusal(p);
    if (refused !== undefined) {
      // A FunctionCall is answered by its result or an error: the refusal takes the result's place.
      const rendered = renderRefusal(refused);
      this.#emit(p, { error: refusalRecord(rendered, refused) });
      return rendered;
    }
    const replacement = maskFunctionResult(frame.body, this.#channel(p).chain, acc.masked);
    acc.rowCount++;
    acc.sent++;
    this.#columns = ["result"];
    this.#formats = [1];
    if (acc.rows.length < this.#o.maxRowsPerStatement) {
      const body = replacement === undefined ? frame.body : replacement.subarray(5);
      const len = body.readInt32BE(0);
      acc.rows.push([len < 0 ? null : renderValue(body.subarray(4), 1, this.#o.maxValueBytes)]);
    } else acc.truncated = true;
    this.#emit(p, { tag: "FUNCTION CALL", rows: 1 });
    this.#columns = undefined;
    this.#formats = undefined;
    return replacement;
  }

  /**
   * How errors, notices and notifications are masked now: the detectors of the rules of the
   * statement `p` (when there is one) and of every rule seen in this session; echo redaction
   * when `p` reads a column a column rule covers.
   */
  #channel(p: Execution | undefined): ChannelMasking {
    const masks = p?.plan?.masks;
    if (masks !== undefined && masks !== this.#seenFrom) this.#remember(masks);
    if (this.#channelChain === undefined && this.#seenRules.length > 0) this.#channelChain = new MaskChain(this.#seenRules.map(this.#o.maskerFor));
    return { chain: this.#channelChain, redactEchoes: p?.plan?.redactEchoes === true };
  }

  /** Remember the detector rules of a statement's plan (see #seenRules). */
  #remember(masks: readonly MaskRule[]): void {
    this.#seenFrom = masks;
    for (const m of masks) {
      if (m.detectors.length > 0 && !this.#seenRules.some((r) => r === m || (r.rule === m.rule && sameList(r.detectors, m.detectors) && r.strategy === m.strategy))) {
        this.#seenRules.push(m);
        this.#channelChain = undefined;
      }
    }
  }

  #captureRow(acc: ResultAcc, body: Buffer, fields: readonly RowDescriptionField[] | undefined): void {
    acc.rowCount++;
    if (acc.rows.length >= this.#o.maxRowsPerStatement) {
      acc.truncated = true;
      return;
    }
    const values = decodeDataRow(body);
    const formats = this.#formats ?? fields?.map((f) => f.format);
    acc.rows.push(values.map((v, i) => (v === null ? null : renderValue(v, formats?.[i] ?? 0, this.#o.maxValueBytes))));
  }

  #emit(p: Execution, r: { tag?: string; rows?: number | undefined; error?: { sqlstate: string; message: string }; refusedBy?: string }): void {
    if (p.denied) return;
    const acc = p.result;
    const masked = Object.keys(acc.masked).length > 0 ? acc.masked : undefined;
    const refusedBy = r.refusedBy ?? (acc.refused === undefined ? undefined : (acc.refused.rule ?? acc.refused.code));
    const columns = this.#columns ?? p.fields?.map((f) => f.name);
    this.#o.gate.observe({
      type: "db.result",
      session: this.#o.gate.info,
      seq: p.seq,
      kind: p.kind,
      rowCount: acc.refused !== undefined ? 0 : (r.rows ?? acc.rowCount),
      durationMs: Math.round((performance.now() - p.started) * 1000) / 1000,
      ...(p.kind === "execute" && p.params !== undefined ? { params: p.params } : {}),
      ...(r.tag === undefined || acc.refused !== undefined ? {} : { commandTag: r.tag }),
      ...(columns === undefined ? {} : { columns }),
      ...(acc.rows.length > 0 && acc.refused === undefined ? { rows: acc.rows } : {}),
      ...(acc.truncated ? { rowsTruncated: true } : {}),
      ...(r.error === undefined ? {} : { error: r.error }),
      ...(refusedBy === undefined ? {} : { refusedBy }),
      ...(masked === undefined ? {} : { masked }),
      ...(acc.cancelled === true ? { rowsSent: acc.sent } : {}),
    });
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The refusal as the recording shows it: the SQLSTATE and text the client received. */
function refusalRecord(rendered: Buffer, refusal: DenyDecision): { sqlstate: string; message: string } {
  const e = decodeErrorOrNotice(rendered.subarray(5));
  return { sqlstate: e.code, message: e.message || refusal.message };
}

/** Command tags of statements that may change what the catalog lookups cache (CREATE …, ALTER …
 * including ALTER ROLE/DATABASE … SET, DROP …, IMPORT FOREIGN SCHEMA, COMMENT, SECURITY LABEL). */
/** Views of views deeper than this are not followed further (their columns read anything). */
const MAX_VIEW_NESTING = 8;

/**
 * The columns each result field derives from, for column rules: a computed field's (no table
 * origin) from the statement's lineage (its own output's sources when the outputs map to the
 * fields one to one, else everything the statement reads), a field with an origin from that
 * origin; then, from the catalog, through views (a view column's own sources, from the view's
 * definition, nested views followed) and widened to the same column of every relation sharing
 * it through inheritance or partitioning. While this session's own DDL is uncommitted (the
 * catalog cannot see it: `ALTER TABLE … INHERIT` then a read in one transaction), to that
 * column of any relation. `missing`: relation names the catalog must be asked about first.
 */
function fieldSources(
  origins: readonly ({ relation: { schema: string; name: string }; column: string } | undefined)[],
  lineage: StatementLineage | undefined,
  catalog: PgCatalog,
  uncommittedDdl: boolean,
): { fields: SourceColumn[][]; missing: string[] } {
  const mapped = lineage?.outputs !== undefined && lineage.outputs.length === origins.length ? lineage.outputs : undefined;
  const missing = new Set<string>();
  const fields = origins.map((o, i): SourceColumn[] => {
    const raw: readonly SourceColumn[] =
      o !== undefined ? [{ schema: o.relation.schema, relation: o.relation.name, column: o.column }] : lineage === undefined ? [] : (mapped?.[i] ?? lineage.reads);
    const out: SourceColumn[] = [];
    const seen = new Set<string>();
    // `shared`: reached through inheritance (the relative may lack the column: not a call).
    const queue: { s: SourceColumn; depth: number; shared?: true }[] = raw.map((s) => ({ s, depth: 0 }));
    for (let k = 0; k < queue.length; k++) {
      const item = queue[k];
      if (item === undefined) continue;
      const { s, depth, shared } = item;
      const key = `${s.schema ?? ""}\u0000${s.relation ?? ""}\u0000${s.column}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (s.relation === undefined) {
        out.push(s);
        continue;
      }
      const inherited = catalog.cachedInheritance(s.relation);
      const views = catalog.cachedViewLineage(s.relation);
      const columns = catalog.cachedColumns(s.relation);
      if (inherited === "missing" || views === "missing" || columns === "missing") {
        out.push(s);
        missing.add(s.relation);
        continue;
      }
      if (s.column === "*") {
        // A whole row is each column of the relation(s) that name may be (a rule naming no
        // column of it does not cover it); a relation the catalog does not show: any column.
        let known = false;
        for (const [schema, cols] of columns) {
          if (s.schema !== undefined && schema !== s.schema) continue;
          known = true;
          for (const c of cols) queue.push({ s: { schema, relation: s.relation, column: c }, depth, shared: true });
        }
        if (known) continue;
      }
      out.push(s);
      if (uncommittedDdl) queue.push({ s: { column: s.column }, depth });
      if (s.column !== "*" && shared !== true) {
        // `t.x` where t has no column x is the call x(t): the whole row.
        for (const [schema, cols] of columns) {
          if ((s.schema === undefined || schema === s.schema) && !cols.has(s.column)) queue.push({ s: { schema, relation: s.relation, column: "*" }, depth });
        }
      }
      for (const info of inherited) {
        if (s.schema !== undefined && info.schema !== s.schema) continue;
        queue.push({ s: { schema: info.schema, relation: info.name, column: s.column }, depth, shared: true });
        for (const r of info.relatives) queue.push({ s: { schema: r.schema, relation: r.name, column: s.column }, depth, shared: true });
      }
      for (const v of views) {
        if (s.schema !== undefined && v.schema !== s.schema) continue;
        if (depth >= MAX_VIEW_NESTING) {
          queue.push({ s: { column: "*" }, depth });
          continue;
        }
        let from: readonly SourceColumn[];
        if (s.column === "*") from = v.outputs === undefined ? v.reads : v.outputs.flat();
        else {
          const idx = v.columns.indexOf(s.column);
          if (idx < 0) continue;
          from = v.outputs?.[idx] ?? v.reads;
        }
        for (const x of from) queue.push({ s: x, depth: depth + 1 });
      }
    }
    return out;
  });
  return { fields: missing.size > 0 ? [] : fields, missing: [...missing] };
}

function changesCatalog(tag: string): boolean {
  return tag.startsWith("CREATE") || tag.startsWith("ALTER") || tag.startsWith("DROP") || tag.startsWith("IMPORT") || tag === "COMMENT" || tag === "SECURITY LABEL";
}
