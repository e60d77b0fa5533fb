/**
 * Masking of result rows on the wire (pure: no I/O): the PostgreSQL framing of the masking
 * library. Which rule covers which field is the library's (masking/plan.ts); here each field of
 * a RowDescription (resolved to relation.column through the catalog) gets, once per result, an
 * action by its type and format:
 * - keep: no rule applies, or the type cannot hold text (int4, bool, timestamps, uuid …);
 * - whole (a column rule): text types masked whole; arrays and records (anonymous `record`,
 *   named row types, user types that decode as either) keep their structure and each leaf is
 *   masked whole (a non-text leaf becomes NULL);
 * - null: a column rule on any other type (no masked text fits it);
 * - detect (the rules' content detectors, chained): on text values in place (the hot path);
 *   json/jsonb leaf by leaf so that they stay valid JSON; on the text form of types that cannot
 *   hold masked text (numeric, int8 after `card::numeric`, inet, …) — a value something is found
 *   in becomes NULL; binary int8/numeric/money/inet decoded to their text first; and on every
 *   leaf of structured values (arrays, records, tsvector, bytea in hex or escape format) decoded
 *   with wire/values.ts, masked, and encoded again with the quoting the client's parser expects.
 * Fail closed: a value under detect/whole whose type and format the gateway cannot decode (an
 * unknown binary type, a user type in binary that is neither an array nor a record, a value
 * that does not parse as its type says) makes the result refused (GW_POLICY_DENIED, rule
 * `masking`), never passed. Each DataRow is rewritten with recomputed lengths, one at a time.
 * (protocol-message-formats: RowDescription, DataRow.)
 */
import { isUtf8 } from "node:buffer";
import type { MaskRule, SourceColumn } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import { MaskChain, rulesForField, type RuleMasker } from "../../masking/index.js";
import { BackendType } from "./wire/index.js";
import {
  MAX_VALUE_DEPTH,
  ValueFormatError,
  decodeBinaryArray,
  decodeBinaryInt8,
  decodeBinaryNumeric,
  decodeBinaryRecord,
  decodeBinaryTsvector,
  decodeByteaText,
  decodeTextArray,
  decodeTextRecord,
  decodeTextTsvector,
  encodeBinaryArray,
  encodeBinaryRecord,
  encodeBinaryTsvector,
  encodeByteaText,
  encodeTextArray,
  encodeTextRecord,
  encodeTextTsvector,
  type TextArrayItem,
} from "./wire/values.js";

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
      /** Set for arrays and records: each leaf is masked whole, the structure kept. */
      readonly structured?: { readonly typeOid: number; readonly format: number };
    }
  /** A column rule on a non-text type (integer, date, …): no masked text fits it, so it becomes NULL. */
  | { readonly kind: "null"; readonly rule: string; readonly countKey: string }
  | {
      readonly kind: "detect";
      readonly chain: MaskChain;
      readonly json: boolean;
      readonly jsonbBinary: boolean;
      /**
       * How the value is read (default "text": its bytes are its text, masked in place):
       * "scalar", the text form of a type that cannot hold masked text (a finding makes it
       * NULL); "structured", decoded by type and format (wire/values.ts), leaves masked.
       */
      readonly mode?: "text" | "scalar" | "structured";
      readonly typeOid?: number;
      readonly format?: number;
    };

/** Types whose binary form is their UTF-8 text (jsonb: a version byte, then text). */
const TEXT_TYPES = new Set([
  25 /* text */, 1043 /* varchar */, 1042 /* bpchar */, 19 /* name */, 114 /* json */, 3802 /* jsonb */, 142 /* xml */, 705 /* unknown */,
  18 /* char */, 1790 /* refcursor */, 194 /* pg_node_tree */,
]);
const JSON_TYPES = new Set([114, 3802]);
const JSONB = 3802;
/** OIDs from here on are user-defined (domains, extensions such as citext, row types, enums). */
const FIRST_USER_OID = 16384;
/**
 * Types whose values cannot hold a detectable text value in either format (fixed-size numbers
 * too small for a card number, booleans, dates and times, uuids, geometry, bit strings …).
 */
const INERT_TYPES = new Set([
  16 /* bool */, 21 /* int2 */, 23 /* int4 */, 26 /* oid */, 27 /* tid */, 28 /* xid */, 29 /* cid */, 5069 /* xid8 */, 700 /* float4 */,
  701 /* float8 */, 1082 /* date */, 1083 /* time */, 1114 /* timestamp */, 1184 /* timestamptz */, 1266 /* timetz */, 1186 /* interval */,
  2950 /* uuid */, 3220 /* pg_lsn */, 24 /* regproc */, 2202 /* regprocedure */, 2203 /* regoper */, 2204 /* regoperator */,
  2205 /* regclass */, 2206 /* regtype */, 4096 /* regrole */, 4089 /* regnamespace */, 3734 /* regconfig */, 3769 /* regdictionary */,
  829 /* macaddr */, 774 /* macaddr8 */, 600 /* point */, 601 /* lseg */, 602 /* path */, 603 /* box */, 604 /* polygon */, 628 /* line */,
  718 /* circle */, 1560 /* bit */, 1562 /* varbit */, 3904 /* int4range */, 3908 /* tsrange */, 3910 /* tstzrange */, 3912 /* daterange */,
  4451 /* int4multirange */, 4533 /* tsmultirange */, 4534 /* tstzmultirange */, 4535 /* datemultirange */, 2970 /* txid_snapshot */,
  5038 /* pg_snapshot */, 1033 /* aclitem */, 22 /* int2vector */, 30 /* oidvector */, 2278 /* void */,
]);
const BYTEA = 17;
const TSVECTOR = 3614;
const RECORD = 2249;
const INT8 = 20;
const MONEY = 790;
const NUMERIC = 1700;
const INET = 869;
const CIDR = 650;
/** Built-in array types: array OID → element OID (text format needs the element's type). */
const ARRAY_ELEMENTS = new Map<number, number>([
  [1000, 16], [1001, 17], [1002, 18], [1003, 19], [1005, 21], [1006, 22], [1007, 23], [1008, 24], [1009, 25], [1010, 27], [1011, 28],
  [1012, 29], [1013, 30], [1014, 1042], [1015, 1043], [1016, 20], [1017, 600], [1018, 601], [1019, 602], [1020, 603], [1021, 700],
  [1022, 701], [1027, 604], [1028, 26], [791, 790], [1040, 829], [1041, 869], [651, 650], [775, 774], [1182, 1082], [1183, 1083],
  [1115, 1114], [1185, 1184], [1187, 1186], [1231, 1700], [1270, 1266], [1561, 1560], [1563, 1562], [2951, 2950], [199, 114],
  [3807, 3802], [143, 142], [3643, 3614], [3645, 3615], [2201, 1790], [1263, 2275], [2287, 2249], [3221, 3220], [2210, 2205],
  [2211, 2206], [1034, 1033], [3905, 3904], [3907, 3906], [3909, 3908], [3911, 3910], [3913, 3912], [3927, 3926], [271, 5069],
  [629, 628], [719, 718], [1034, 1033], [2949, 2970], [4192, 4191], [4073, 4072],
]);
/** Array element delimiters other than ',' (box). */
const ARRAY_DELIMITERS = new Map<number, string>([[1020, ";"]]);

/** How a detect action reads a value of this type in this format. */
function detectMode(typeOid: number, format: number): "keep" | "text" | "scalar" | "structured" {
  if (TEXT_TYPES.has(typeOid)) return "text";
  if (INERT_TYPES.has(typeOid)) return "keep";
  if (format === 0) {
    if (ARRAY_ELEMENTS.has(typeOid) || typeOid === RECORD || typeOid === TSVECTOR || typeOid === BYTEA || typeOid >= FIRST_USER_OID) return "structured";
    return "scalar"; // numeric, int8, money, inet, … : their text form, NULL when something is found
  }
  return "structured"; // binary: decoded by type (or refused)
}

/** Whether a column rule keeps this type's structure (arrays, records: leaves masked whole). */
function wholeIsStructured(typeOid: number): boolean {
  return ARRAY_ELEMENTS.has(typeOid) || typeOid === RECORD || typeOid >= FIRST_USER_OID;
}

/** Decide, once per result, what happens to each field. */
export function planFields(fields: readonly ResolvedField[], rules: readonly MaskRule[], maskerFor: (rule: MaskRule) => RuleMasker): FieldAction[] {
  return fields.map((f): FieldAction => {
    const json = JSON_TYPES.has(f.typeOid);
    const covered = rulesForField(f, rules);
    if (covered.kind === "whole") {
      // `[REDACTED]` in an integer or timestamp column would break every typed client (text
      // format) or cannot be encoded at all (binary): such values are masked as NULL. Arrays
      // and records keep their structure, each leaf masked.
      const whole = covered.rule;
      const countKey = `column:${whole.rule}`;
      if (whole.strategy === "null") return { kind: "null", rule: whole.rule, countKey };
      if (TEXT_TYPES.has(f.typeOid)) return { kind: "whole", masker: maskerFor(whole), rule: whole.rule, json, memo: {}, countKey };
      if (wholeIsStructured(f.typeOid)) {
        return { kind: "whole", masker: maskerFor(whole), rule: whole.rule, json: false, memo: {}, countKey, structured: { typeOid: f.typeOid, format: f.format } };
      }
      return { kind: "null", rule: whole.rule, countKey };
    }
    if (covered.kind === "keep") return { kind: "keep" };
    const mode = detectMode(f.typeOid, f.format);
    if (mode === "keep") return { kind: "keep" };
    const chain = new MaskChain(covered.rules.map(maskerFor));
    if (mode === "text") return { kind: "detect", chain, json, jsonbBinary: f.typeOid === JSONB && f.format === 1 };
    return { kind: "detect", chain, json: false, jsonbBinary: false, mode, typeOid: f.typeOid, format: f.format };
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

// ---------------------------------------------------------------------------------------------
// Structured values: decoded by type and format, leaves masked, encoded again.

/** What a structured walk does with its leaves: content detection, or a column rule's whole mask. */
interface Leaves {
  /** Under a column rule every leaf is masked: those of types that hold no text become NULL. */
  readonly whole: boolean;
  /** A text leaf: the replacement, null (SQL NULL), or undefined (unchanged). */
  text(s: string): string | null | undefined;
  /** A leaf of text bytes (UTF-8 or any ASCII-compatible encoding), or bytea's raw bytes. */
  bytes(b: Buffer): Buffer | null | undefined;
  /** The text form of a value that cannot hold masked text: true when it must become NULL. */
  scalar(s: string): boolean;
  /** A JSON document: the replacement (valid JSON; "null" for SQL NULL) or undefined. */
  json(doc: string): string | undefined;
}

function detectLeaves(chain: MaskChain, counts: Record<string, number>): Leaves {
  return {
    whole: false,
    text: (s) => chain.text(s, counts),
    bytes: (b) => chain.range(b, 0, b.length, counts),
    scalar: (s) => chain.text(s, counts) !== undefined,
    json: (doc) => chain.json(doc, counts).text,
  };
}

function wholeLeaves(action: Extract<FieldAction, { kind: "whole" }>, counts: Record<string, number>): Leaves {
  const count = (): void => {
    counts[action.countKey] = (counts[action.countKey] ?? 0) + 1;
  };
  const text = (s: string): string | null => {
    count();
    action.memo.label ??= action.masker.kindOf(s);
    return action.masker.maskWhole(s, action.memo.label);
  };
  return {
    whole: true,
    text,
    bytes: (b) => {
      const m = text(b.toString("utf8"));
      return m === null ? null : Buffer.from(m, "utf8");
    },
    scalar: () => {
      count();
      return true;
    },
    json: (doc) => {
      const m = text(doc);
      return m === null ? "null" : jsonString(m);
    },
  };
}

function cannotMask(why: string): GatewayError {
  return new GatewayError("GW_POLICY_DENIED", `a result value cannot be masked (${why}), so the result is not passed`, { rule: "masking" });
}

/** A text form that reads as a number (a record field of unknown type): it cannot hold masked text. */
const NUMBER_LIKE = /^[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/** inet/cidr in binary (inet_send): family, bits, is_cidr, length, address bytes → text. */
function decodeBinaryInet(b: Buffer): string {
  if (b.length < 4 || b.length !== 4 + (b[3] ?? 0)) throw new ValueFormatError("binary inet", "length does not fit");
  const addr = b.subarray(4);
  const text = addr.length === 4 ? [...addr].join(".") : addr.toString("hex").replace(/(.{4})(?!$)/g, "$1:");
  return `${text}/${b[1] ?? 0}`;
}

/** A text-format value of type `oid` (0: unknown, e.g. a field of a text-format record). */
function maskTextForm(text: string, oid: number, L: Leaves, depth: number): string | null | undefined {
  if (depth > MAX_VALUE_DEPTH) throw cannotMask("nested too deeply");
  if (JSON_TYPES.has(oid)) return L.json(text);
  if (TEXT_TYPES.has(oid)) return L.text(text);
  if (INERT_TYPES.has(oid)) return L.whole ? null : undefined;
  const element = ARRAY_ELEMENTS.get(oid);
  if (element !== undefined) return maskTextArray(text, element, ARRAY_DELIMITERS.get(oid) ?? ",", L, depth);
  if (oid === RECORD) return maskTextRecord(text, L, depth);
  if (oid === TSVECTOR) {
    const lexemes = decodeTextTsvector(text);
    let changed = false;
    const out = [];
    for (const l of lexemes) {
      const m = L.text(l.lexeme);
      if (m === null) return null;
      if (m !== undefined) changed = true;
      out.push(m === undefined ? l : { lexeme: m, positions: l.positions });
    }
    return changed ? encodeTextTsvector(out) : undefined;
  }
  if (oid === BYTEA) {
    const { bytes, format } = decodeByteaText(Buffer.from(text, "latin1"));
    const m = L.bytes(bytes);
    return m === undefined || m === null ? m : encodeByteaText(m, format).toString("latin1");
  }
  if (oid === 0 || oid >= FIRST_USER_OID) {
    // A user type (a domain, an enum, citext, a row type, an array of one) or a field of
    // unknown type: arrays and records are read as such, numbers hold no masked text.
    const c = text.charCodeAt(0);
    try {
      if (c === 123 /* { */ || c === 91 /* [ */) return maskTextArray(text, 0, ",", L, depth);
      if (c === 40 /* ( */) return maskTextRecord(text, L, depth);
    } catch (e) {
      if (!(e instanceof ValueFormatError)) throw e;
    }
    if (NUMBER_LIKE.test(text)) return L.scalar(text) ? null : undefined;
    return L.text(text);
  }
  return L.scalar(text) ? null : undefined;
}

function maskTextArray(text: string, element: number, delim: string, L: Leaves, depth: number): string | undefined {
  const a = decodeTextArray(text, delim);
  const walk = (items: TextArrayItem[]): boolean => {
    let changed = false;
    for (let k = 0; k < items.length; k++) {
      const it = items[k];
      if (it === null || it === undefined) continue;
      if (typeof it !== "string") {
        if (walk(it)) changed = true;
        continue;
      }
      const m = maskTextForm(it, element, L, depth + 1);
      if (m === undefined) continue;
      items[k] = m;
      changed = true;
    }
    return changed;
  };
  return walk(a.items) ? encodeTextArray(a, delim) : undefined;
}

function maskTextRecord(text: string, L: Leaves, depth: number): string | undefined {
  const fields = decodeTextRecord(text);
  let changed = false;
  for (let k = 0; k < fields.length; k++) {
    const f = fields[k];
    if (f === null || f === undefined) continue;
    const m = maskTextForm(f, 0, L, depth + 1);
    if (m === undefined) continue;
    fields[k] = m;
    changed = true;
  }
  return changed ? encodeTextRecord(fields) : undefined;
}

/** A binary-format value of type `oid`. */
function maskBinaryForm(value: Buffer, oid: number, L: Leaves, depth: number): Buffer | null | undefined {
  if (depth > MAX_VALUE_DEPTH) throw cannotMask("nested too deeply");
  if (oid === JSONB) {
    if (value[0] !== 1) throw new ValueFormatError("binary jsonb", "unknown version");
    const m = L.json(value.toString("utf8", 1));
    return m === undefined ? undefined : Buffer.concat([value.subarray(0, 1), Buffer.from(m, "utf8")]);
  }
  if (JSON_TYPES.has(oid)) {
    const m = L.json(value.toString("utf8"));
    return m === undefined ? undefined : Buffer.from(m, "utf8");
  }
  if (TEXT_TYPES.has(oid) || oid === BYTEA) return L.bytes(value);
  if (INERT_TYPES.has(oid)) return L.whole ? null : undefined;
  switch (oid) {
    case INT8:
    case MONEY:
      return L.scalar(decodeBinaryInt8(value)) ? null : undefined;
    case NUMERIC:
      return L.scalar(decodeBinaryNumeric(value)) ? null : undefined;
    case INET:
    case CIDR:
      return L.scalar(decodeBinaryInet(value)) ? null : undefined;
    case TSVECTOR: {
      const lexemes = decodeBinaryTsvector(value);
      let changed = false;
      const out = [];
      for (const l of lexemes) {
        const m = L.bytes(l.lexeme);
        if (m === null) return null;
        if (m !== undefined) changed = true;
        out.push(m === undefined ? l : { lexeme: m, positions: l.positions });
      }
      return changed ? encodeBinaryTsvector(out) : undefined;
    }
    case RECORD:
      return maskBinaryRecord(value, L, depth);
  }
  if (ARRAY_ELEMENTS.has(oid)) return maskBinaryArray(value, L, depth);
  if (oid >= FIRST_USER_OID) {
    // A user type in binary: arrays and row types carry their element/field types and are
    // read as such; anything else (an enum, a domain, an extension type) cannot be known here.
    try {
      return maskBinaryArray(value, L, depth);
    } catch (e) {
      if (!(e instanceof ValueFormatError)) throw e;
    }
    try {
      return maskBinaryRecord(value, L, depth);
    } catch (e) {
      if (!(e instanceof ValueFormatError)) throw e;
    }
    if (L.whole) return null;
    throw cannotMask(`type ${oid} in binary format is not known to the gateway; use text format`);
  }
  if (L.whole) return null;
  throw cannotMask(`type ${oid} in binary format is not known to the gateway; use text format`);
}

function maskBinaryArray(value: Buffer, L: Leaves, depth: number): Buffer | undefined {
  const a = decodeBinaryArray(value);
  let changed = false;
  for (let k = 0; k < a.elements.length; k++) {
    const e = a.elements[k];
    if (e === null || e === undefined) continue;
    const m = maskBinaryForm(e, a.elementOid, L, depth + 1);
    if (m === undefined) continue;
    a.elements[k] = m;
    changed = true;
  }
  return changed ? encodeBinaryArray(a) : undefined;
}

function maskBinaryRecord(value: Buffer, L: Leaves, depth: number): Buffer | undefined {
  const fields = decodeBinaryRecord(value);
  let changed = false;
  for (let k = 0; k < fields.length; k++) {
    const f = fields[k];
    if (f === undefined || f.value === null) continue;
    const m = maskBinaryForm(f.value, f.typeOid, L, depth + 1);
    if (m === undefined) continue;
    fields[k] = { typeOid: f.typeOid, value: m };
    changed = true;
  }
  return changed ? encodeBinaryRecord(fields) : undefined;
}

/** A value of any type and format through the structured walk; decoding failures refuse. */
function maskStructured(value: Buffer, typeOid: number, format: number, L: Leaves): Buffer | null | undefined {
  try {
    if (format === 1) return maskBinaryForm(value, typeOid, L, 0);
    const encoding = isUtf8(value) ? "utf8" : "latin1";
    const m = maskTextForm(value.toString(encoding), typeOid, L, 0);
    return m === undefined || m === null ? m : Buffer.from(m, encoding);
  } catch (e) {
    if (e instanceof ValueFormatError) throw cannotMask(`a value of type ${typeOid} does not decode as its type says`);
    throw e;
  }
}

/** A detect action that is not on text: a type's text form (NULL on a finding) or a structured value. */
function detectOther(body: Buffer, start: number, length: number, action: Extract<FieldAction, { kind: "detect" }>, counts: Record<string, number>): Buffer | null | undefined {
  if (action.mode === "scalar") return action.chain.range(body, start, start + length, counts) === undefined ? undefined : null;
  return maskStructured(body.subarray(start, start + length), action.typeOid ?? 0, action.format ?? 0, detectLeaves(action.chain, counts));
}

/** A whole action on an array or record: every leaf masked, the structure kept. */
function wholeStructured(body: Buffer, start: number, length: number, action: Extract<FieldAction, { kind: "whole" }>, counts: Record<string, number>): Buffer | null | undefined {
  const s = action.structured;
  if (s === undefined) return maskWholeValue(body, start, length, action);
  // Unchanged only when no leaf holds anything (an empty array, all NULLs); a user type that
  // turns out to be plain text (citext, a domain) is a text leaf, masked whole.
  return maskStructured(body.subarray(start, start + length), s.typeOid, s.format, wholeLeaves(action, counts));
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
    if (action.structured !== undefined) return wholeStructured(value, 0, value.length, action, counts);
    counts[action.countKey] = (counts[action.countKey] ?? 0) + 1;
    return maskWholeValue(value, 0, value.length, action);
  }
  if (action.mode !== undefined && action.mode !== "text") return detectOther(value, 0, value.length, action, counts);
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
      if (action.structured === undefined) {
        out = maskWholeValue(body, start, length, action);
        counts[action.countKey] = (counts[action.countKey] ?? 0) + 1;
      } else {
        out = wholeStructured(body, start, length, action, counts);
        if (out === undefined) continue;
      }
    } else {
      out = action.mode === undefined || action.mode === "text" ? detectValue(body, start, length, action, counts) : detectOther(body, start, length, action, counts);
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
