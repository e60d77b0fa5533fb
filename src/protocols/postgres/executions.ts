/**
 * One result as it reaches the client (what was sent, masked, refused), and the pure helpers
 * of the proxy loop.
 */
import type { DenyDecision } from "../../core/decision.js";
import { maskFieldValue, type FieldAction, type ResolvedField } from "./result-masking.js";
import { decodeCopyField, rewriteCopyRow, type CopyField, type CopyFormat, type CopyOutSplitter } from "./wire/copy.js";

export interface ResultAcc {
  rowCount: number;
  rows: (string | null)[][];
  truncated: boolean;
  /** Rows of this result actually sent to the client. */
  sent: number;
  /** How each field is masked, once the fields are resolved. */
  actions?: FieldAction[] | undefined;
  /** The fields were resolved and `actions` decided. */
  planned?: boolean;
  /** COPY out in progress. */
  copy?: CopyOut | undefined;
  /** The fields a COPY's stream holds, per possible source relation, once looked up. */
  copyFields?: "pending" | readonly (readonly ResolvedField[])[] | undefined;
  /** A COPY refused before its CopyOutResponse was sent: the client never entered COPY mode. */
  copyHidden?: boolean;
  /** The result is refused: rows are dropped and its completion becomes this refusal. */
  refused?: DenyDecision | undefined;
  /** maxRows was exceeded (or a budget spent) and a cancel was sent. */
  cancelled?: boolean;
  /** A budget was spent mid-result: the client gets the rows so far, then this refusal. */
  cutBy?: DenyDecision | undefined;
  masked: Record<string, number>;
}

export function newResult(): ResultAcc {
  return { rowCount: 0, rows: [], truncated: false, sent: 0, masked: {} };
}

export const EMPTY = Buffer.alloc(0);

/** Replace the row count in a command tag (`SELECT 5000` → `SELECT 100`). */
export function tagWithRows(tag: string, rows: number): string {
  const i = tag.lastIndexOf(" ");
  return i > 0 && /^\d+$/.test(tag.slice(i + 1)) ? `${tag.slice(0, i)} ${rows}` : tag;
}

/** A COPY … TO STDOUT in progress, as the result stage treats its stream. */
export interface CopyOut {
  /** Splits the stream into rows; undefined: the format is not known and nothing is masked
   * (only a row limit applies, counted by CopyData message, one row each from PostgreSQL). */
  readonly splitter: CopyOutSplitter | undefined;
  readonly format: CopyFormat | undefined;
  /** How each field is masked; undefined when nothing is. */
  readonly actions: readonly FieldAction[] | undefined;
}

/**
 * Mask one COPY row under its field actions: the row's new bytes, or undefined when no field
 * changed. Each field goes through maskFieldValue, as a DataRow field would (binary COPY
 * fields are the types' binary encodings, text and CSV fields their text); a masked NULL is
 * written as the format's NULL. Throws GatewayError when a field cannot be treated.
 */
export function maskCopyRow(format: CopyFormat, raw: Buffer, fields: readonly CopyField[], actions: readonly FieldAction[], counts: Record<string, number>): Buffer | undefined {
  let replace: Map<number, Buffer | null> | undefined;
  for (let i = 0; i < fields.length; i++) {
    const action = actions[i];
    const field = fields[i];
    if (action === undefined || field === undefined || action.kind === "keep") continue;
    const value = decodeCopyField(format, raw, field);
    if (value === null) continue;
    const out = maskFieldValue(value, action, counts);
    if (out === undefined) continue;
    replace ??= new Map();
    replace.set(i, out);
  }
  return replace === undefined ? undefined : rewriteCopyRow(format, raw, fields, replace);
}

/** A value as text for the recording: text format as UTF-8, binary as `\x` hex; capped. */
export function renderValue(v: Buffer, format: number, maxBytes: number): string {
  if (format === 1) {
    const shown = v.subarray(0, Math.floor(maxBytes / 2));
    return `\\x${shown.toString("hex")}${shown.length < v.length ? "…" : ""}`;
  }
  if (v.length <= maxBytes) return v.toString("utf8");
  return `${v.subarray(0, maxBytes).toString("utf8")}…`;
}
