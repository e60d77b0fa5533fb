/**
 * Masking of result rows on the wire (pure: no I/O): the PostgreSQL framing of the masking
 * library. Which rule covers which field is the library's (masking/plan.ts); here each field of
 * a RowDescription (resolved to relation.column through the catalog) gets, once per result, an
 * action by its type: keep, mask whole (a column rule on a text column), null (a column rule
 * on a non-text column), or detect (the rules' content detectors, chained, on text values;
 * json/jsonb through the JSON document API so that they stay valid JSON). Each DataRow is then
 * rewritten with recomputed lengths, one at a time (constant memory).
 * (protocol-message-formats: RowDescription, DataRow.)
 */
import type { MaskRule, SourceColumn } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import { MaskChain, rulesForField, type RuleMasker } from "../../masking/index.js";
import { BackendType } from "./wire/index.js";

export type { RuleMasker } from "../../masking/index.js";

export interface ResolvedField {
  readonly name: string;
  readonly relation?: { readonly schema: string; readonly name: string };
  readonly column?: string;
  /** Columns the value derives from (lineage, inheritance): see MaskField.derivedFrom. */
  readonly derivedFrom?: readonly SourceColumn[];
  readonly typeOid: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}

export type FieldAction =
  | { readonly kind: "keep" }
  | {
      readonly kind: "whole";
      readonly masker: RuleMasker;
      readonly rule: string;
      readonly json: boolean;
      /**
       * Per result column: the label, taken from the first value (columns hold one kind of
       * data; labelling is cosmetic, the whole value is masked whatever it holds), and, when
       * the output depends only on the label, the encoded output itself.
       */
      readonly memo: { label?: string; bytes?: Buffer | null };
      /** `column:<rule>`, the key its masked values are counted under (built once, not per row). */
      readonly countKey: string;
    }
  /** A column rule on a non-text type (integer, date, …): no masked text fits it, so it becomes NULL. */
  | { readonly kind: "null"; readonly rule: string; readonly countKey: string }
  | { readonly kind: "detect"; readonly chain: MaskChain; readonly json: boolean; readonly jsonbBinary: boolean };

/** Types whose binary form is their UTF-8 text (jsonb: a version byte, then text). */
const TEXT_TYPES = new Set([25 /* text */, 1043 /* varchar */, 1042 /* bpchar */, 19 /* name */, 114 /* json */, 3802 /* jsonb */, 142 /* xml */, 705 /* unknown */, 18 /* char */]);
const JSON_TYPES = new Set([114, 3802]);
const JSONB = 3802;
/** OIDs from here on are user-defined (domains, extensions such as citext): text in text format. */
const FIRST_USER_OID = 16384;

/** Decide, once per result, what happens to each field. */
export function planFields(fields: readonly ResolvedField[], rules: readonly MaskRule[], maskerFor: (rule: MaskRule) => RuleMasker): FieldAction[] {
  return fields.map((f): FieldAction => {
    const textual = TEXT_TYPES.has(f.typeOid) || (f.format === 0 && f.typeOid >= FIRST_USER_OID);
    const json = JSON_TYPES.has(f.typeOid);
    const covered = rulesForField(f, rules);
    if (covered.kind === "whole") {
      // `[REDACTED]` in an integer or timestamp column would break every typed client (text
      // format) or cannot be encoded at all (binary): such values are masked as NULL.
      const whole = covered.rule;
      const countKey = `column:${whole.rule}`;
      if (!textual || whole.strategy === "null") return { kind: "null", rule: whole.rule, countKey };
      return { kind: "whole", masker: maskerFor(whole), rule: whole.rule, json, memo: {}, countKey };
    }
    // Numbers, dates, booleans … cannot hold an email or a key; skip them.
    if (covered.kind === "keep" || !textual) return { kind: "keep" };
    return { kind: "detect", chain: new MaskChain(covered.rules.map(maskerFor)), json, jsonbBinary: f.typeOid === JSONB && f.format === 1 };
  });
}

export function needsWork(actions: readonly FieldAction[]): boolean {
  return actions.some((a) => a.kind !== "keep");
}

/** A JSON string literal, so a masked json/jsonb value stays valid JSON for the client's parser. */
function jsonString(s: string): string {
  return JSON.stringify(s);
}

// Scratch space for rewriteDataRow (synchronous, so one set serves every session): the fields
// that change, as (value start, value length, replacement) in field order.
let scratchStart: number[] = [];
let scratchLength: number[] = [];
let scratchValue: (Buffer | null)[] = [];

/**
 * Copy `src[from, to)` into `dst` at `at`; returns the position after it. Row fields are mostly
 * a few bytes: a loop beats Buffer#copy there (it allocates a view per call); longer stretches
 * use TypedArray#set.
 */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n <= 0) return at;
  if (n <= 64) {
    for (let i = 0; i < n; i++) dst[at + i] = src[from + i] ?? 0;
  } else {
    dst.set(src.subarray(from, to), at);
  }
  return at + n;
}

function malformed(why: string): GatewayError {
  return new GatewayError("GW_PROTOCOL", `malformed DataRow message: ${why}`);
}

/** The replacement of one value under a `whole` action (a column rule on a text column). */
function maskWholeValue(body: Buffer, start: number, length: number, action: Extract<FieldAction, { kind: "whole" }>): Buffer | null {
  const memo = action.memo;
  if (memo.bytes !== undefined) return memo.bytes;
  const text = body.toString("utf8", start, start + length);
  memo.label ??= action.masker.kindOf(text);
  const masked = action.masker.maskWhole(text, memo.label);
  const out = masked === null ? null : Buffer.from(action.json ? jsonString(masked) : masked, "utf8");
  if (action.masker.constantPerKind) memo.bytes = out;
  return out;
}

/** The replacement of one value under a `detect` action, or undefined when it is clean. */
function detectValue(body: Buffer, start: number, length: number, action: Extract<FieldAction, { kind: "detect" }>, counts: Record<string, number>): Buffer | null | undefined {
  // jsonb in binary format: a version byte, then the JSON text (kept as it is).
  const from = action.jsonbBinary && length > 0 ? start + 1 : start;
  const end = start + length;
  if (!action.json) return action.chain.range(body, from, end, counts);
  // json/jsonb: a document the byte scan finds nothing in, and that has no escapes (which
  // could spell a value the byte scan cannot see), is clean; anything else is masked leaf by
  // leaf so that the client still gets valid JSON.
  const backslash = body.indexOf(0x5c, from);
  const escaped = backslash >= 0 && backslash < end;
  if (!escaped) {
    // Counted in the leaf pass below, not here.
    if (action.chain.range(body, from, end, {}) === undefined) return undefined;
  }
  const r = action.chain.json(body.toString("utf8", from, end), counts);
  if (r.text === undefined) return undefined;
  const masked = Buffer.from(r.text, "utf8");
  return from === start ? masked : Buffer.concat([body.subarray(start, from), masked]);
}

/**
 * Mask one field value (a DataRow field, a COPY field) under its action: the new bytes, null
 * for SQL NULL, or undefined when the value is unchanged. Adds masked counts per kind to
 * `counts`. Throws GatewayError GW_POLICY_DENIED (rule `masking`) when the value cannot be
 * treated (e.g. a binary value of a type the gateway cannot decode): the caller refuses the
 * whole result, never passes the value.
 */
export function maskFieldValue(value: Buffer, action: FieldAction, counts: Record<string, number>): Buffer | null | undefined {
  if (action.kind === "keep") return undefined;
  if (action.kind === "null") {
    counts[action.countKey] = (counts[action.countKey] ?? 0) + 1;
    return null;
  }
  if (action.kind === "whole") {
    counts[action.countKey] = (counts[action.countKey] ?? 0) + 1;
    return maskWholeValue(value, 0, value.length, action);
  }
  return detectValue(value, 0, value.length, action, counts);
}

/**
 * Rewrite one DataRow body. Returns the whole new message (type + length + body), or
 * undefined when nothing changed (the original bytes are forwarded). Adds masked counts per
 * kind to `counts`. One pass over the fields without allocating for the ones that stay; the
 * new message is written in one buffer: unchanged stretches of the original copied as they
 * are, replaced values with their new lengths. A malformed row throws GW_PROTOCOL.
 */
export function rewriteDataRow(body: Buffer, actions: readonly FieldAction[], counts: Record<string, number>): Buffer | undefined {
  if (body.length < 2) throw malformed("message is shorter than its fields");
  const n = body.readUInt16BE(0);
  if (n * 4 > body.length - 2) throw malformed("count does not fit the message");
  let changed = 0;
  let delta = 0;
  let pos = 2;
  for (let i = 0; i < n; i++) {
    if (body.length - pos < 4) throw malformed("message is shorter than its fields");
    const length = body.readInt32BE(pos);
    pos += 4;
    if (length === -1) continue;
    if (length < 0 || length > body.length - pos) throw malformed("value length does not fit the message");
    const start = pos;
    pos += length;
    const action = actions[i];
    if (action === undefined || action.kind === "keep") continue;
    let out: Buffer | null | undefined;
    if (action.kind === "null") {
      out = null;
      counts[action.countKey] = (counts[action.countKey] ?? 0) + 1;
    } else if (action.kind === "whole") {
      out = maskWholeValue(body, start, length, action);
      counts[action.countKey] = (counts[action.countKey] ?? 0) + 1;
    } else {
      out = detectValue(body, start, length, action, counts);
      if (out === undefined) continue;
    }
    scratchStart[changed] = start;
    scratchLength[changed] = length;
    scratchValue[changed] = out;
    changed++;
    delta += (out === null ? 0 : out.length) - length;
  }
  if (pos !== body.length) throw malformed("trailing bytes after the last field");
  if (changed === 0) return undefined;
  // protocol-message-formats "DataRow": Byte1('D'), Int32 length (self-inclusive), Int16 count,
  // then per field Int32 length (-1 = NULL) and the bytes.
  const bodyLength = body.length + delta;
  const msg = Buffer.allocUnsafe(1 + 4 + bodyLength);
  msg[0] = BackendType.DataRow;
  msg.writeInt32BE(4 + bodyLength, 1);
  let w = 5;
  let r = 0;
  for (let k = 0; k < changed; k++) {
    const start = scratchStart[k] ?? 0;
    const value = scratchValue[k] ?? null;
    // Everything before this value's length field, unchanged.
    w = copyBytes(body, r, start - 4, msg, w);
    if (value === null) {
      w = msg.writeInt32BE(-1, w);
    } else {
      w = msg.writeInt32BE(value.length, w);
      w = copyBytes(value, 0, value.length, msg, w);
    }
    r = start + (scratchLength[k] ?? 0);
    scratchValue[k] = null; // hold no masked bytes past this call
  }
  copyBytes(body, r, body.length, msg, w);
  if (scratchStart.length > 4096) {
    // A very wide row once: do not keep its scratch space forever.
    scratchStart = [];
    scratchLength = [];
    scratchValue = [];
  }
  return msg;
}
