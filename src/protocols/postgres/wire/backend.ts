import { GatewayError } from "../../../core/errors.js";
import { MAX_CANCEL_KEY_BYTES, MIN_CANCEL_KEY_BYTES } from "./frontend.js";
import { BodyReader } from "./reader.js";
import { MessageWriter, checkCount, cstringSize } from "./writer.js";

/**
 * Messages the backend (server) sends: decoders for what the upstream server sends to the
 * gateway, encoders for what the gateway sends to its client as a server.
 * Formats: protocol-message-formats; error fields: protocol-error-fields.
 *
 * Decoders take Frame.body and throw GatewayError GW_PROTOCOL on malformed input. Strings are
 * decoded leniently (invalid UTF-8 becomes U+FFFD) so that, e.g., a startup error rendered in a
 * server locale's encoding can still be relayed; the structure itself is checked strictly.
 */

/** Message type bytes sent by the backend (protocol-message-formats). */
export const BackendType = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyBothResponse: 0x57, // 'W'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  FunctionCallResponse: 0x56, // 'V'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

/** Authentication request codes (protocol-message-formats "Authentication…"). */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  SCMCredential: 6,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

// ---------------------------------------------------------------------------------------------
// Decoders

export type AuthenticationRequest =
  | { readonly kind: "ok" }
  | { readonly kind: "cleartext" }
  | { readonly kind: "md5"; readonly salt: Buffer }
  | { readonly kind: "sasl"; readonly mechanisms: string[] }
  | { readonly kind: "sasl_continue"; readonly data: Buffer }
  | { readonly kind: "sasl_final"; readonly data: Buffer }
  /** A real method the gateway does not implement (KerberosV5, SCM, GSSAPI, SSPI). */
  | { readonly kind: "unsupported"; readonly code: number };

/** protocol-message-formats "AuthenticationOk" … "AuthenticationSASLFinal" (all type 'R'). */
export function decodeAuthentication(body: Buffer): AuthenticationRequest {
  const r = new BodyReader(body, "Authentication", false);
  const code = r.int32();
  switch (code) {
    case AuthCode.Ok:
      r.end();
      return { kind: "ok" };
    case AuthCode.CleartextPassword:
      r.end();
      return { kind: "cleartext" };
    case AuthCode.MD5Password: {
      const salt = r.bytes(4);
      r.end();
      return { kind: "md5", salt };
    }
    case AuthCode.SASL: {
      // String[] mechanism names, terminated by an empty string that ends the message.
      const mechanisms: string[] = [];
      for (;;) {
        const name = r.cstring();
        if (name === "") break;
        mechanisms.push(name);
      }
      r.end();
      return { kind: "sasl", mechanisms };
    }
    case AuthCode.SASLContinue:
      return { kind: "sasl_continue", data: r.rest() };
    case AuthCode.SASLFinal:
      return { kind: "sasl_final", data: r.rest() };
    case AuthCode.KerberosV5:
    case AuthCode.SCMCredential:
    case AuthCode.GSS:
    case AuthCode.GSSContinue:
    case AuthCode.SSPI:
      return { kind: "unsupported", code };
    default:
      return r.fail("unknown authentication request code");
  }
}

/**
 * protocol-message-formats "BackendKeyData": Int32 process id, Byte[n] secret key (4 bytes in
 * 3.0; 4 to 256 bytes in 3.2). The key is copied: the engine keeps it for the session's life.
 */
export function decodeBackendKeyData(body: Buffer): { readonly processId: number; readonly secretKey: Buffer } {
  const r = new BodyReader(body, "BackendKeyData", false);
  const processId = r.int32();
  if (r.remaining < MIN_CANCEL_KEY_BYTES || r.remaining > MAX_CANCEL_KEY_BYTES) {
    r.fail(`secret key must be ${MIN_CANCEL_KEY_BYTES} to ${MAX_CANCEL_KEY_BYTES} bytes`);
  }
  return { processId, secretKey: Buffer.from(r.rest()) };
}

/** protocol-message-formats "ParameterStatus": String name, String value. */
export function decodeParameterStatus(body: Buffer): { readonly name: string; readonly value: string } {
  const r = new BodyReader(body, "ParameterStatus", false);
  const name = r.cstring();
  const value = r.cstring();
  r.end();
  return { name, value };
}

/** Transaction status: idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = "I" | "T" | "E";

/** protocol-message-formats "ReadyForQuery": Byte1 status. */
export function decodeReadyForQuery(body: Buffer): TransactionStatus {
  const r = new BodyReader(body, "ReadyForQuery", false);
  const s = r.uint8();
  r.end();
  if (s === 0x49) return "I";
  if (s === 0x54) return "T";
  if (s === 0x45) return "E";
  return r.fail("unknown transaction status");
}

export interface ErrorOrNotice {
  /** Every field by its protocol-error-fields type byte as a one-character key ('S', 'C', 'M', …). */
  readonly fields: ReadonlyMap<string, string>;
  /** 'V' (never localized) when present, else 'S'; "" if neither was sent. */
  readonly severity: string;
  /** 'C' SQLSTATE; "" if absent. */
  readonly code: string;
  /** 'M' primary message; "" if absent. */
  readonly message: string;
}

/**
 * protocol-message-formats "ErrorResponse" / "NoticeResponse": a list of (Byte1 field type,
 * String value), ended by a zero byte that ends the message. A repeated field keeps the last
 * value (as libpq does). Missing S/C/M are reported as "" rather than refused, so that a
 * non-conforming server's error can still be relayed.
 */
export function decodeErrorOrNotice(body: Buffer): ErrorOrNotice {
  const r = new BodyReader(body, "ErrorResponse", false);
  const fields = new Map<string, string>();
  for (;;) {
    const t = r.uint8();
    if (t === 0) break;
    fields.set(String.fromCharCode(t), r.cstring());
  }
  r.end();
  return {
    fields,
    severity: fields.get("V") ?? fields.get("S") ?? "",
    code: fields.get("C") ?? "",
    message: fields.get("M") ?? "",
  };
}

export interface RowDescriptionField {
  readonly name: string;
  /** OID of the table, or 0 if the column is not a simple table column. */
  readonly tableOid: number;
  /** Attribute number of the column in that table, or 0. */
  readonly columnAttr: number;
  readonly typeOid: number;
  /** pg_type.typlen: negative for variable-width types. */
  readonly typeSize: number;
  readonly typeModifier: number;
  /** 0 text, 1 binary (0 in a RowDescription answering a statement Describe: not yet known). */
  readonly format: number;
}

/** Smallest encoding of one RowDescription field: empty name (1) + 18 bytes of integers. */
const MIN_FIELD_BYTES = 19;

/**
 * protocol-message-formats "RowDescription": Int16 field count, then per field: String name,
 * Int32 table OID, Int16 attribute number, Int32 type OID, Int16 type size, Int32 type modifier,
 * Int16 format code.
 */
export function decodeRowDescription(body: Buffer): RowDescriptionField[] {
  const r = new BodyReader(body, "RowDescription", false);
  const n = r.uint16();
  r.expectItems(n, MIN_FIELD_BYTES);
  const fields = new Array<RowDescriptionField>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: r.cstring(),
      tableOid: r.uint32(),
      columnAttr: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    };
  }
  r.end();
  return fields;
}

/**
 * protocol-message-formats "DataRow": Int16 column count, then per column Int32 length (-1 =
 * NULL) and that many bytes. Values are subarrays of `body` (no copy).
 */
export function decodeDataRow(body: Buffer): (Buffer | null)[] {
  const r = new BodyReader(body, "DataRow", false);
  const n = r.uint16();
  r.expectItems(n, 4);
  const values = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    if (len === -1) values[i] = null;
    else if (len < 0) r.fail("negative value length");
    else values[i] = r.bytes(len);
  }
  r.end();
  return values;
}

/**
 * Walk a DataRow without allocating: `visit(index, start, length)` gets each value's offset in
 * `body` and its length (-1 for NULL, with `start` just after the length field). Returns the
 * column count. A malformed row throws GW_PROTOCOL, possibly after visiting the well-formed
 * values before the fault: callers must discard partial work when it throws.
 */
export function forEachDataRowValue(body: Buffer, visit: (index: number, start: number, length: number) => void): number {
  if (body.length < 2) throw new GatewayError("GW_PROTOCOL", "malformed DataRow message: message is shorter than its fields");
  const n = body.readUInt16BE(0);
  if (n * 4 > body.length - 2) throw new GatewayError("GW_PROTOCOL", "malformed DataRow message: count does not fit the message");
  let pos = 2;
  for (let i = 0; i < n; i++) {
    if (body.length - pos < 4) throw new GatewayError("GW_PROTOCOL", "malformed DataRow message: message is shorter than its fields");
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len === -1) {
      visit(i, pos, -1);
      continue;
    }
    if (len < 0 || len > body.length - pos) {
      throw new GatewayError("GW_PROTOCOL", "malformed DataRow message: value length does not fit the message");
    }
    visit(i, pos, len);
    pos += len;
  }
  if (pos !== body.length) throw new GatewayError("GW_PROTOCOL", "malformed DataRow message: trailing bytes after the last field");
  return n;
}

/** Commands whose tag ends in a row count (protocol-message-formats "CommandComplete"). */
const COUNTED_COMMANDS = new Set(["SELECT", "UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY"]);
const DIGITS = /^[0-9]+$/;

export interface CommandComplete {
  readonly tag: string;
  /**
   * Rows affected or returned, for tags that carry it: "SELECT n", "INSERT oid n", "UPDATE n",
   * "DELETE n", "MERGE n", "FETCH n", "MOVE n", "COPY n". Counts above 2^53 lose precision.
   */
  readonly rows?: number;
}

/** protocol-message-formats "CommandComplete": String command tag. */
export function decodeCommandComplete(body: Buffer): CommandComplete {
  const r = new BodyReader(body, "CommandComplete", false);
  const tag = r.cstring();
  r.end();
  const words = tag.split(" ");
  const [command, a, b] = words;
  let count: string | undefined;
  if (command === "INSERT" && words.length === 3 && a !== undefined && DIGITS.test(a)) count = b;
  else if (command !== undefined && words.length === 2 && COUNTED_COMMANDS.has(command)) count = a;
  if (count === undefined || !DIGITS.test(count)) return { tag };
  return { tag, rows: Number(count) };
}

/** Response to COPY: 'G' CopyInResponse, 'H' CopyOutResponse, 'W' CopyBothResponse. */
export interface CopyResponse {
  /** 0 textual, 1 binary (overall). */
  readonly format: number;
  readonly columnFormats: number[];
}

/** protocol-message-formats "CopyInResponse"/"CopyOutResponse"/"CopyBothResponse": Int8, Int16, Int16[]. */
export function decodeCopyResponse(body: Buffer): CopyResponse {
  const r = new BodyReader(body, "CopyResponse", false);
  const format = r.uint8();
  if (format !== 0 && format !== 1) r.fail("format must be 0 or 1");
  const n = r.uint16();
  r.expectItems(n, 2);
  const columnFormats = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const f = r.int16();
    if (f !== 0 && f !== 1) r.fail("format code must be 0 or 1");
    columnFormats[i] = f;
  }
  r.end();
  return { format, columnFormats };
}

/** protocol-message-formats "NotificationResponse": Int32 process id, String channel, String payload. */
export function decodeNotification(body: Buffer): { readonly processId: number; readonly channel: string; readonly payload: string } {
  const r = new BodyReader(body, "NotificationResponse", false);
  const processId = r.int32();
  const channel = r.cstring();
  const payload = r.cstring();
  r.end();
  return { processId, channel, payload };
}

/**
 * protocol-message-formats "NegotiateProtocolVersion": Int32 newest minor version supported,
 * Int32 count, String[count] protocol options the server did not recognize.
 */
export function decodeNegotiateProtocolVersion(body: Buffer): { readonly minorVersion: number; readonly unrecognizedOptions: string[] } {
  const r = new BodyReader(body, "NegotiateProtocolVersion", false);
  const minorVersion = r.int32();
  const n = r.int32();
  r.expectItems(n, 1);
  const unrecognizedOptions = new Array<string>(n);
  for (let i = 0; i < n; i++) unrecognizedOptions[i] = r.cstring();
  r.end();
  return { minorVersion, unrecognizedOptions };
}

/** protocol-message-formats "ParameterDescription": Int16 count, Int32[count] type OIDs. */
export function decodeParameterDescription(body: Buffer): number[] {
  const r = new BodyReader(body, "ParameterDescription", false);
  const n = r.uint16();
  r.expectItems(n, 4);
  const oids = new Array<number>(n);
  for (let i = 0; i < n; i++) oids[i] = r.uint32();
  r.end();
  return oids;
}

/** protocol-message-formats "FunctionCallResponse": Int32 length (-1 = NULL), Byte[n] (a subarray). */
export function decodeFunctionCallResponse(body: Buffer): Buffer | null {
  const r = new BodyReader(body, "FunctionCallResponse", false);
  const len = r.int32();
  if (len === -1) {
    r.end();
    return null;
  }
  if (len < 0) r.fail("negative value length");
  const v = r.bytes(len);
  r.end();
  return v;
}

// ---------------------------------------------------------------------------------------------
// Encoders

function emptyMessage(type: number): Buffer {
  return new MessageWriter(type, 0).finish();
}

function authMessage(code: number, extra = 0): MessageWriter {
  return new MessageWriter(BackendType.Authentication, 4 + extra).int32(code);
}

// Constant frames sent on every connection or statement, built once. They are shared: callers
// must never modify them (socket.write does not).
const AUTH_OK = authMessage(AuthCode.Ok).finish();
const AUTH_CLEARTEXT = authMessage(AuthCode.CleartextPassword).finish();
const READY_IDLE = new MessageWriter(BackendType.ReadyForQuery, 1).uint8(0x49).finish();
const READY_IN_TRANSACTION = new MessageWriter(BackendType.ReadyForQuery, 1).uint8(0x54).finish();
const READY_FAILED = new MessageWriter(BackendType.ReadyForQuery, 1).uint8(0x45).finish();
const EMPTY_QUERY_RESPONSE = emptyMessage(BackendType.EmptyQueryResponse);
const PARSE_COMPLETE = emptyMessage(BackendType.ParseComplete);
const BIND_COMPLETE = emptyMessage(BackendType.BindComplete);
const CLOSE_COMPLETE = emptyMessage(BackendType.CloseComplete);
const NO_DATA = emptyMessage(BackendType.NoData);
const PORTAL_SUSPENDED = emptyMessage(BackendType.PortalSuspended);

/** protocol-message-formats "AuthenticationOk" (shared constant: do not modify). */
export function encodeAuthenticationOk(): Buffer {
  return AUTH_OK;
}

/** protocol-message-formats "AuthenticationCleartextPassword" (shared constant: do not modify). */
export function encodeAuthenticationCleartextPassword(): Buffer {
  return AUTH_CLEARTEXT;
}

/** protocol-message-formats "AuthenticationMD5Password": Int32 5, Byte4 salt. */
export function encodeAuthenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new GatewayError("GW_PROTOCOL", "an MD5 salt is 4 bytes");
  return authMessage(AuthCode.MD5Password, 4).bytes(salt).finish();
}

/** protocol-message-formats "AuthenticationSASL": Int32 10, String[] mechanisms, empty String. */
export function encodeAuthenticationSASL(mechanisms: readonly string[]): Buffer {
  let size = 1;
  for (const m of mechanisms) {
    if (m === "") throw new GatewayError("GW_PROTOCOL", "a SASL mechanism name cannot be empty");
    size += cstringSize(m);
  }
  const w = authMessage(AuthCode.SASL, size);
  for (const m of mechanisms) w.cstring(m);
  return w.uint8(0).finish();
}

/** protocol-message-formats "AuthenticationSASLContinue": Int32 11, Byte[n] data. */
export function encodeAuthenticationSASLContinue(data: Buffer): Buffer {
  return authMessage(AuthCode.SASLContinue, data.length).bytes(data).finish();
}

/** protocol-message-formats "AuthenticationSASLFinal": Int32 12, Byte[n] data. */
export function encodeAuthenticationSASLFinal(data: Buffer): Buffer {
  return authMessage(AuthCode.SASLFinal, data.length).bytes(data).finish();
}

/** protocol-message-formats "BackendKeyData": Int32 process id, Byte[n] secret key (4..256 bytes). */
export function encodeBackendKeyData(processId: number, secretKey: Buffer): Buffer {
  if (secretKey.length < MIN_CANCEL_KEY_BYTES || secretKey.length > MAX_CANCEL_KEY_BYTES) {
    throw new GatewayError("GW_PROTOCOL", `secret key must be ${MIN_CANCEL_KEY_BYTES} to ${MAX_CANCEL_KEY_BYTES} bytes`);
  }
  return new MessageWriter(BackendType.BackendKeyData, 4 + secretKey.length).int32(processId).bytes(secretKey).finish();
}

/** protocol-message-formats "ParameterStatus". */
export function encodeParameterStatus(name: string, value: string): Buffer {
  return new MessageWriter(BackendType.ParameterStatus, cstringSize(name) + cstringSize(value)).cstring(name).cstring(value).finish();
}

/** protocol-message-formats "ReadyForQuery" (shared constants: do not modify). */
export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  switch (status) {
    case "I":
      return READY_IDLE;
    case "T":
      return READY_IN_TRANSACTION;
    case "E":
      return READY_FAILED;
  }
}

export interface ErrorFields<S extends string> {
  readonly severity: S;
  /** SQLSTATE: five characters of [0-9A-Z] (protocol-error-fields 'C'; errcodes-appendix). */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** 1-based character position in the query string the error refers to ('P'). */
  readonly position?: number;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Text that reaches an error or notice may be dynamic (rule names, upstream text); a NUL would
 * cut the field short, and throwing while reporting an error would lose the report, so NUL is
 * replaced by U+FFFD here instead.
 */
function errorText(s: string): string {
  return s.includes("\0") ? s.replaceAll("\0", "\uFFFD") : s;
}

function encodeErrorOrNotice(type: number, e: ErrorFields<string>): Buffer {
  if (!SQLSTATE.test(e.code)) throw new GatewayError("GW_INTERNAL", "SQLSTATE must be five characters of 0-9A-Z");
  // protocol-error-fields: S (localized severity) and V (never localized) carry the same value
  // here since the gateway does not localize; C SQLSTATE; M message; D detail; H hint; P position.
  const list: [number, string][] = [
    [0x53, e.severity],
    [0x56, e.severity],
    [0x43, e.code],
    [0x4d, errorText(e.message)],
  ];
  if (e.detail !== undefined) list.push([0x44, errorText(e.detail)]);
  if (e.hint !== undefined) list.push([0x48, errorText(e.hint)]);
  if (e.position !== undefined) list.push([0x50, String(e.position)]);
  let size = 1;
  for (const [, v] of list) size += 1 + cstringSize(v);
  const w = new MessageWriter(type, size);
  for (const [t, v] of list) w.uint8(t).cstring(v);
  return w.uint8(0).finish();
}

/** protocol-message-formats "ErrorResponse" with S, V, C, M (and D, H, P when given). */
export function encodeErrorResponse(e: ErrorFields<"ERROR" | "FATAL" | "PANIC">): Buffer {
  return encodeErrorOrNotice(BackendType.ErrorResponse, e);
}

/** protocol-message-formats "NoticeResponse", same fields as encodeErrorResponse. */
export function encodeNoticeResponse(e: ErrorFields<"NOTICE" | "WARNING" | "INFO">): Buffer {
  return encodeErrorOrNotice(BackendType.NoticeResponse, e);
}

/** A RowDescription field to encode; omitted attributes describe a computed text column. */
export interface RowDescriptionFieldInput {
  readonly name: string;
  readonly tableOid?: number;
  readonly columnAttr?: number;
  /** Default 25 (text). */
  readonly typeOid?: number;
  readonly typeSize?: number;
  readonly typeModifier?: number;
  readonly format?: number;
}

/** protocol-message-formats "RowDescription". */
export function encodeRowDescription(fields: readonly RowDescriptionFieldInput[]): Buffer {
  checkCount(fields.length, "columns");
  let size = 2;
  for (const f of fields) size += cstringSize(f.name) + 18;
  const w = new MessageWriter(BackendType.RowDescription, size).uint16(fields.length);
  for (const f of fields) {
    w.cstring(f.name)
      .uint32(f.tableOid ?? 0)
      .int16(f.columnAttr ?? 0)
      .uint32(f.typeOid ?? 25)
      .int16(f.typeSize ?? -1)
      .int32(f.typeModifier ?? -1)
      .int16(f.format ?? 0);
  }
  return w.finish();
}

/** protocol-message-formats "DataRow". */
export function encodeDataRow(values: readonly (Buffer | null)[]): Buffer {
  checkCount(values.length, "columns");
  let size = 2;
  for (const v of values) size += 4 + (v === null ? 0 : v.length);
  const w = new MessageWriter(BackendType.DataRow, size).uint16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
  return w.finish();
}

/** protocol-message-formats "CommandComplete". */
export function encodeCommandComplete(tag: string): Buffer {
  return new MessageWriter(BackendType.CommandComplete, cstringSize(tag)).cstring(tag).finish();
}

/** protocol-message-formats "EmptyQueryResponse" (shared constant: do not modify). */
export function encodeEmptyQueryResponse(): Buffer {
  return EMPTY_QUERY_RESPONSE;
}

/** protocol-message-formats "ParseComplete" (shared constant: do not modify). */
export function encodeParseComplete(): Buffer {
  return PARSE_COMPLETE;
}

/** protocol-message-formats "BindComplete" (shared constant: do not modify). */
export function encodeBindComplete(): Buffer {
  return BIND_COMPLETE;
}

/** protocol-message-formats "CloseComplete" (shared constant: do not modify). */
export function encodeCloseComplete(): Buffer {
  return CLOSE_COMPLETE;
}

/** protocol-message-formats "NoData" (shared constant: do not modify). */
export function encodeNoData(): Buffer {
  return NO_DATA;
}

/** protocol-message-formats "PortalSuspended" (shared constant: do not modify). */
export function encodePortalSuspended(): Buffer {
  return PORTAL_SUSPENDED;
}

/** protocol-message-formats "ParameterDescription". */
export function encodeParameterDescription(typeOids: readonly number[]): Buffer {
  checkCount(typeOids.length, "parameters");
  const w = new MessageWriter(BackendType.ParameterDescription, 2 + 4 * typeOids.length).uint16(typeOids.length);
  for (const oid of typeOids) w.uint32(oid);
  return w.finish();
}

/** protocol-message-formats "CopyInResponse" ('G'), "CopyOutResponse" ('H'), "CopyBothResponse" ('W'). */
export function encodeCopyResponse(kind: "G" | "H" | "W", format: number, columnFormats: readonly number[]): Buffer {
  checkCount(columnFormats.length, "columns");
  const type = kind === "G" ? BackendType.CopyInResponse : kind === "H" ? BackendType.CopyOutResponse : BackendType.CopyBothResponse;
  const w = new MessageWriter(type, 1 + 2 + 2 * columnFormats.length).uint8(format).uint16(columnFormats.length);
  for (const f of columnFormats) w.int16(f);
  return w.finish();
}

/** protocol-message-formats "NotificationResponse". */
export function encodeNotification(processId: number, channel: string, payload: string): Buffer {
  return new MessageWriter(BackendType.NotificationResponse, 4 + cstringSize(channel) + cstringSize(payload))
    .int32(processId)
    .cstring(channel)
    .cstring(payload)
    .finish();
}

/**
 * protocol-message-formats "ErrorResponse" / "NoticeResponse" from every field as decoded
 * (decodeErrorOrNotice's `fields`, in their order): a target's error or notice re-encoded after
 * some field values were rewritten (masking). Field types are single bytes 1..255; values pass
 * through errorText (no NUL).
 */
export function encodeErrorOrNoticeFields(type: typeof BackendType.ErrorResponse | typeof BackendType.NoticeResponse, fields: ReadonlyMap<string, string>): Buffer {
  let size = 1;
  for (const [t, v] of fields) {
    const code = t.charCodeAt(0);
    if (t.length !== 1 || code === 0 || code > 0xff) throw new GatewayError("GW_INTERNAL", "an error field type is one non-zero byte");
    size += 1 + cstringSize(errorText(v));
  }
  const w = new MessageWriter(type, size);
  for (const [t, v] of fields) w.uint8(t.charCodeAt(0)).cstring(errorText(v));
  return w.uint8(0).finish();
}

/** protocol-message-formats "FunctionCallResponse": Int32 length (-1 = NULL), then the bytes. */
export function encodeFunctionCallResponse(value: Buffer | null): Buffer {
  const w = new MessageWriter(BackendType.FunctionCallResponse, 4 + (value === null ? 0 : value.length));
  if (value === null) return w.int32(-1).finish();
  return w.int32(value.length).bytes(value).finish();
}

/** protocol-message-formats "NegotiateProtocolVersion". */
export function encodeNegotiateProtocolVersion(minorVersion: number, unrecognizedOptions: readonly string[] = []): Buffer {
  let size = 8;
  for (const o of unrecognizedOptions) size += cstringSize(o);
  const w = new MessageWriter(BackendType.NegotiateProtocolVersion, size).int32(minorVersion).int32(unrecognizedOptions.length);
  for (const o of unrecognizedOptions) w.cstring(o);
  return w.finish();
}
