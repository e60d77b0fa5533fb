/**
 * Target → client: every answer of the target is paired with the operation it answers (the
 * TargetModel), and results are reframed on the way: DataRows masked by the plan of the
 * statement that produced them, row limits enforced (across Executes of one portal and FETCHes
 * of one cursor), results the gateway cannot treat refused in place, and every result recorded
 * as the client received it.
 */
import type { Logger } from "pino";
import type { DenyDecision, MaskRule } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import { gatewayText } from "../../core/engine.js";
import type { SessionJudge } from "../../core/judge.js";
import type { PgCatalog } from "./catalog.js";
import { renderNotice, renderRefusal } from "./errors.js";
import { EMPTY, maskCopyLine, newResult, renderValue, tagWithRows, type ResultAcc } from "./executions.js";
import type { OutBuffer } from "./out-buffer.js";
import type { Refusals } from "./refusals.js";
import { needsWork, planFields, rewriteDataRow, type ResolvedField, type RuleMasker } from "./result-masking.js";
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
  encodeCopyData,
  encodeErrorResponse,
} from "./wire/index.js";

export interface ResultOptions {
  readonly gate: SessionJudge;
  readonly catalog: PgCatalog;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  readonly maxRowsPerStatement: number;
  readonly maxValueBytes: number;
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
const COPY_COLUMNS: DenyDecision = {
  type: "deny",
  code: "GW_POLICY_DENIED",
  rule: "masking",
  message: "COPY … TO STDOUT is refused while column masking applies to this session; use SELECT",
};
const COPY_BINARY: DenyDecision = { type: "deny", code: "GW_POLICY_DENIED", rule: "masking", message: "binary COPY cannot be masked; use text or CSV format" };

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
      case B.CommandComplete:
        return this.#onComplete(frame);
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        return this.#onComplete(frame);
      case B.ErrorResponse:
        return this.#onError(frame);
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
    const fields = decodeRowDescription(frame.body);
    this.#columns = fields.map((f) => f.name);
    this.#formats = fields.map((f) => f.format);
    if (this.#model.described(fields)) return undefined;
    const p = this.#model.current();
    if (p === undefined) return undefined;
    p.fields = fields;
    return this.#planRows(p, fields);
  }

  /** Decide how this execution's rows are masked, from their fields; "block" while looking up. */
  #planRows(p: Execution, fields: readonly RowDescriptionField[]): "block" | undefined {
    const acc = p.result;
    const masks = p.plan?.masks;
    if (masks === undefined || masks.length === 0) return undefined;
    const resolved = this.#resolveFields(fields, p);
    if (resolved === "block") return "block";
    if (resolved === undefined) {
      acc.refused ??= UNRESOLVED;
      return undefined;
    }
    const actions = planFields(resolved, masks, this.#o.maskerFor);
    acc.actions = needsWork(actions) ? actions : undefined;
    acc.planned = true;
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
    return fields.map((f, i): ResolvedField => {
      const format = formats === undefined || formats.length === 0 ? f.format : formats.length === 1 ? (formats[0] ?? 0) : (formats[i] ?? 0);
      const info = f.tableOid !== 0 ? catalog.cached(f.tableOid) : undefined;
      const rel = info !== undefined && info !== "missing" ? info : undefined;
      const column = rel?.columns.get(f.columnAttr);
      return {
        name: f.name,
        typeOid: f.typeOid,
        format,
        ...(rel === undefined || column === undefined ? {} : { relation: { schema: rel.schema, name: rel.name }, column }),
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
        return this.#refuse(p, { type: "deny", code: "GW_POLICY_DENIED", rule: e.rule ?? "masking", message: e.message });
      }
    }
    if (plan?.maxRows !== undefined && p.usage.sent >= plan.maxRows) {
      acc.rowCount++;
      this.#limitExceeded(p, out);
      return EMPTY;
    }
    p.usage.sent++;
    acc.sent++;
    this.#captureRow(acc, bytes === undefined ? frame.body : bytes.subarray(5), p.fields);
    return bytes;
  }

  #onCopyOut(frame: Frame): Buffer | undefined {
    this.#columns = ["copy"];
    this.#formats = [0];
    const p = this.#model.current();
    if (p === undefined || p.denied) return undefined;
    if (this.#preRefusal(p) !== undefined) return EMPTY;
    if (p.plan !== undefined && p.plan.masks.length > 0) {
      const format = decodeCopyResponse(frame.body).format;
      p.result.copyFormat = format;
      if (p.plan.masks.some((m) => m.columns.length > 0)) return this.#refuse(p, COPY_COLUMNS);
      if (format === 1) return this.#refuse(p, COPY_BINARY);
    }
    return undefined;
  }

  #onCopyData(frame: Frame, out: OutBuffer): Buffer | undefined {
    const p = this.#model.current();
    if (p === undefined) return undefined; // COPY FROM STDIN echoes nothing; nothing to treat
    const acc = p.result;
    if (acc.refused !== undefined) return EMPTY;
    if (p.plan?.maxRows !== undefined && p.usage.sent >= p.plan.maxRows) {
      acc.rowCount++;
      this.#limitExceeded(p, out);
      return EMPTY;
    }
    let replacement: Buffer | undefined;
    const masks = p.plan?.masks ?? [];
    if (masks.length > 0 && acc.copyFormat === 0) {
      const masked = maskCopyLine(frame.body.toString("utf8"), masks, this.#o.maskerFor, acc.masked);
      if (masked !== undefined) replacement = encodeCopyData(Buffer.from(masked, "utf8"));
    }
    p.usage.sent++;
    acc.sent++;
    acc.rowCount++;
    if (acc.rows.length < this.#o.maxRowsPerStatement) {
      acc.rows.push([renderValue(replacement === undefined ? frame.body : replacement.subarray(5), 0, this.#o.maxValueBytes)]);
    } else acc.truncated = true;
    return replacement;
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
      const acc = p.result;
      const refused = p.denied ? undefined : acc.refused;
      if (refused !== undefined) {
        // The client gets the refusal, and so does the recording (not the target's tag).
        replacement = renderRefusal(refused);
        this.#emit(p, { error: refusalRecord(replacement, refused) });
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

  #refuse(p: Execution, refusal: DenyDecision): Buffer {
    p.result.refused = refusal;
    return EMPTY;
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
    if (p === undefined || p.denied) return undefined;
    const acc = p.result;
    let replacement: Buffer | undefined;
    let recorded: { sqlstate: string; message: string } = { sqlstate: err.code, message: err.message };
    if (acc.refused !== undefined) {
      replacement = renderRefusal(acc.refused);
      recorded = refusalRecord(replacement, acc.refused);
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
    this.#emit(p, { error: recorded, ...(acc.refused === undefined ? {} : { refusedBy: acc.refused.rule ?? acc.refused.code }) });
    if (p.kind === "execute") this.barrier.release();
    return replacement;
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

/** The refusal as the recording shows it: the SQLSTATE and text the client received. */
function refusalRecord(rendered: Buffer, refusal: DenyDecision): { sqlstate: string; message: string } {
  const e = decodeErrorOrNotice(rendered.subarray(5));
  return { sqlstate: e.code, message: e.message || refusal.message };
}

/** Command tags of statements that may change what the catalog lookups cache (CREATE …, ALTER …
 * including ALTER ROLE/DATABASE … SET, DROP …, IMPORT FOREIGN SCHEMA, COMMENT, SECURITY LABEL). */
function changesCatalog(tag: string): boolean {
  return tag.startsWith("CREATE") || tag.startsWith("ALTER") || tag.startsWith("DROP") || tag.startsWith("IMPORT") || tag === "COMMENT" || tag === "SECURITY LABEL";
}
