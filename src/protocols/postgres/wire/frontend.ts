import { GatewayError } from "../../../core/errors.js";
import { BodyReader } from "./reader.js";
import { MessageWriter, checkCount, cstringSize } from "./writer.js";

/**
 * Messages the frontend (client) sends: decoders for what clients send to the gateway, encoders
 * for what the gateway sends upstream as a client. Formats: protocol-message-formats.
 *
 * Decoders take the body (Frame.body: the bytes after the length field) and throw GatewayError
 * GW_PROTOCOL on anything malformed (missing NUL terminator, a count that does not fit the body,
 * a negative length other than -1, trailing bytes) and GW_LIMIT when a documented bound is
 * exceeded. Strings are decoded as strict UTF-8 (the gateway forces client_encoding=UTF8
 * upstream, so the text it judges is the text the server reads; invalid UTF-8 is refused rather
 * than repaired). Byte fields (Bind parameters, passwords, secret keys) are subarrays of the
 * body, not copies, except where noted.
 */

/** Message type bytes sent by the frontend (protocol-message-formats). */
export const FrontendType = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd' (both directions)
  CopyDone: 0x63, // 'c' (both directions)
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  Parse: 0x50, // 'P'
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share 'p'. */
  Password: 0x70, // 'p'
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;

/** protocol-message-formats "StartupMessage": 3.0 is 196608 (major 3 << 16 | minor 0). */
export const PROTOCOL_VERSION_3_0 = 196608;
/** Protocol 3.2 (PostgreSQL 18): variable-length cancel keys. */
export const PROTOCOL_VERSION_3_2 = 196610;
export const CANCEL_REQUEST_CODE = 80877102;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;

/**
 * Bounds on a StartupMessage's parameters. The whole packet is already capped at 10,000 bytes by
 * the framer (as PostgreSQL caps it); these bound what one packet may claim within that.
 * Keys are GUC or option names (short); values may be long `options` strings.
 */
export const STARTUP_LIMITS = Object.freeze({
  maxParams: 64,
  maxKeyBytes: 256,
  maxValueBytes: 4096,
});

/**
 * Cancel secret keys: exactly 4 bytes in protocol 3.0, 4 to 256 bytes in 3.2
 * (protocol-message-formats "CancelRequest" and "BackendKeyData").
 */
export const MIN_CANCEL_KEY_BYTES = 4;
export const MAX_CANCEL_KEY_BYTES = 256;

// ---------------------------------------------------------------------------------------------
// Startup phase

export type StartupPacket =
  | {
      readonly kind: "startup";
      /** The full version code, e.g. 196608 for 3.0, 196610 for 3.2. */
      readonly protocolVersion: number;
      /** The minor version the client asked for (a server may answer NegotiateProtocolVersion). */
      readonly minorVersion: number;
      /** In the order sent; `_pq_.`-prefixed keys are protocol options. Keys are unique. */
      readonly params: ReadonlyMap<string, string>;
    }
  | { readonly kind: "ssl_request" }
  | { readonly kind: "gssenc_request" }
  | {
      readonly kind: "cancel";
      readonly processId: number;
      /** A copy (callers keep it to look the session up; a slice would pin the whole chunk). */
      readonly secretKey: Buffer;
    };

/**
 * Decode an untagged startup-phase packet (its body: everything after the Int32 length).
 * protocol-message-formats: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
 *
 * - Protocol 3.x with any minor version is accepted and reported (the engine negotiates).
 *   Other major versions: GW_UNSUPPORTED. Unknown request codes: GW_PROTOCOL.
 * - Parameters are NUL-terminated name/value pairs ending with an empty name; the packet must end
 *   exactly there (PostgreSQL: "invalid startup packet layout: expected terminator as last
 *   byte"). A repeated name is refused (GW_PROTOCOL): the server would take the last value
 *   while a reader taking the first would judge another database or user.
 * - Limits: STARTUP_LIMITS (GW_LIMIT).
 */
export function decodeStartupPacket(body: Buffer): StartupPacket {
  const r = new BodyReader(body, "startup", true);
  const code = r.int32();
  switch (code) {
    case SSL_REQUEST_CODE:
      r.end();
      return { kind: "ssl_request" };
    case GSSENC_REQUEST_CODE:
      r.end();
      return { kind: "gssenc_request" };
    case CANCEL_REQUEST_CODE: {
      const processId = r.int32();
      const keyLength = r.remaining;
      if (keyLength < MIN_CANCEL_KEY_BYTES || keyLength > MAX_CANCEL_KEY_BYTES) {
        r.fail(`cancel key must be ${MIN_CANCEL_KEY_BYTES} to ${MAX_CANCEL_KEY_BYTES} bytes`);
      }
      return { kind: "cancel", processId, secretKey: Buffer.from(r.rest()) };
    }
    default:
      break;
  }
  const major = code >>> 16;
  if (major === 1234) r.fail("unknown request code");
  if (major !== 3) {
    throw new GatewayError("GW_UNSUPPORTED", `unsupported frontend protocol ${major}.${code & 0xffff}: only 3.x is supported`);
  }
  const params = new Map<string, string>();
  for (;;) {
    const key = r.cstring();
    if (key === "") break;
    if (Buffer.byteLength(key) > STARTUP_LIMITS.maxKeyBytes) {
      throw new GatewayError("GW_LIMIT", `startup parameter name longer than ${STARTUP_LIMITS.maxKeyBytes} bytes`);
    }
    const value = r.cstring();
    if (Buffer.byteLength(value) > STARTUP_LIMITS.maxValueBytes) {
      throw new GatewayError("GW_LIMIT", `startup parameter value longer than ${STARTUP_LIMITS.maxValueBytes} bytes`);
    }
    if (params.has(key)) r.fail("repeated startup parameter");
    if (params.size >= STARTUP_LIMITS.maxParams) {
      throw new GatewayError("GW_LIMIT", `more than ${STARTUP_LIMITS.maxParams} startup parameters`);
    }
    params.set(key, value);
  }
  r.end();
  return { kind: "startup", protocolVersion: code, minorVersion: code & 0xffff, params };
}

// ---------------------------------------------------------------------------------------------
// Decoders for tagged frontend messages (each takes Frame.body)

/** protocol-message-formats "Query": String query. */
export function decodeQuery(body: Buffer): { readonly sql: string } {
  const r = new BodyReader(body, "Query", true);
  const sql = r.cstring();
  r.end();
  return { sql };
}

export interface ParseMessage {
  readonly name: string;
  readonly sql: string;
  /** Parameter type OIDs (0 = unspecified), unsigned. */
  readonly paramTypes: number[];
}

/** protocol-message-formats "Parse": String name, String query, Int16 n, Int32[n] type OIDs. */
export function decodeParse(body: Buffer): ParseMessage {
  const r = new BodyReader(body, "Parse", true);
  const name = r.cstring();
  const sql = r.cstring();
  const n = r.uint16();
  r.expectItems(n, 4);
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32();
  r.end();
  return { name, sql, paramTypes };
}

export interface BindMessage {
  readonly portal: string;
  readonly statement: string;
  /** 0 = text, 1 = binary; empty = all text, one entry = applies to all. */
  readonly paramFormats: number[];
  /** Values as subarrays of the body (no copy); null = SQL NULL. */
  readonly params: (Buffer | null)[];
  readonly resultFormats: number[];
}

/** Format codes: 0 text, 1 binary (protocol-overview "Formats and Format Codes"). */
function readFormats(r: BodyReader): number[] {
  const n = r.uint16();
  r.expectItems(n, 2);
  const formats = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const f = r.int16();
    if (f !== 0 && f !== 1) r.fail("format code must be 0 or 1");
    formats[i] = f;
  }
  return formats;
}

/** Int16 n, then n × (Int32 length, -1 = NULL; Byte[length]). */
function readValues(r: BodyReader): (Buffer | null)[] {
  const n = r.uint16();
  r.expectItems(n, 4);
  const values = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    if (len === -1) values[i] = null;
    else if (len < 0) r.fail("negative value length");
    else values[i] = r.bytes(len);
  }
  return values;
}

/**
 * protocol-message-formats "Bind": String portal, String statement, Int16 + Int16[] parameter
 * formats, Int16 + values, Int16 + Int16[] result formats. Like PostgreSQL (exec_bind_message),
 * more than one parameter format code must match the parameter count.
 */
export function decodeBind(body: Buffer): BindMessage {
  const r = new BodyReader(body, "Bind", true);
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats = readFormats(r);
  const params = readValues(r);
  if (paramFormats.length > 1 && paramFormats.length !== params.length) {
    r.fail("parameter format count does not match the parameter count");
  }
  const resultFormats = readFormats(r);
  r.end();
  return { portal, statement, paramFormats, params, resultFormats };
}

export interface TargetMessage {
  /** 'S' prepared statement, 'P' portal. */
  readonly kind: "S" | "P";
  readonly name: string;
}

function decodeTarget(body: Buffer, what: string): TargetMessage {
  const r = new BodyReader(body, what, true);
  const k = r.uint8();
  if (k !== 0x53 && k !== 0x50) r.fail("target must be 'S' or 'P'");
  const name = r.cstring();
  r.end();
  return { kind: k === 0x53 ? "S" : "P", name };
}

/** protocol-message-formats "Describe": Byte1 'S'|'P', String name. */
export function decodeDescribe(body: Buffer): TargetMessage {
  return decodeTarget(body, "Describe");
}

/** protocol-message-formats "Close": Byte1 'S'|'P', String name. */
export function decodeClose(body: Buffer): TargetMessage {
  return decodeTarget(body, "Close");
}

/** protocol-message-formats "Execute": String portal, Int32 max rows (0 or less = no limit). */
export function decodeExecute(body: Buffer): { readonly portal: string; readonly maxRows: number } {
  const r = new BodyReader(body, "Execute", true);
  const portal = r.cstring();
  const maxRows = r.int32();
  r.end();
  return { portal, maxRows };
}

/**
 * protocol-message-formats "PasswordMessage": the password bytes before the terminating NUL
 * (a subarray). As in PostgreSQL (recv_password_packet), the first NUL must be the last byte.
 * SASL messages share the 'p' type but have other layouts: see decodeSASLInitialResponse; a
 * SASLResponse body is the raw mechanism data itself.
 */
export function decodePassword(body: Buffer): Buffer {
  const nul = body.indexOf(0);
  if (nul < 0 || nul !== body.length - 1) {
    throw new GatewayError("GW_PROTOCOL", "malformed PasswordMessage message: expected one NUL-terminated string");
  }
  return body.subarray(0, nul);
}

/**
 * protocol-message-formats "SASLInitialResponse": String mechanism, Int32 data length
 * (-1 = no initial response), Byte[n] data (a subarray).
 */
export function decodeSASLInitialResponse(body: Buffer): { readonly mechanism: string; readonly data: Buffer | null } {
  const r = new BodyReader(body, "SASLInitialResponse", true);
  const mechanism = r.cstring();
  const len = r.int32();
  let data: Buffer | null = null;
  if (len !== -1) {
    if (len < 0) r.fail("negative data length");
    data = r.bytes(len);
  }
  r.end();
  return { mechanism, data };
}

/** protocol-message-formats "CopyFail": String error message. */
export function decodeCopyFail(body: Buffer): { readonly message: string } {
  const r = new BodyReader(body, "CopyFail", true);
  const message = r.cstring();
  r.end();
  return { message };
}

export interface FunctionCallMessage {
  readonly functionOid: number;
  readonly argCount: number;
  readonly argFormats: number[];
  /** Argument values as subarrays; null = SQL NULL. */
  readonly args: (Buffer | null)[];
  readonly resultFormat: number;
}

/**
 * protocol-message-formats "FunctionCall" (the fastpath interface): Int32 function OID,
 * Int16 + Int16[] argument formats, Int16 + argument values, Int16 result format.
 * Validated completely, so the caller can identify the call and refuse it reliably.
 */
export function decodeFunctionCall(body: Buffer): FunctionCallMessage {
  const r = new BodyReader(body, "FunctionCall", true);
  const functionOid = r.uint32();
  const argFormats = readFormats(r);
  const args = readValues(r);
  if (argFormats.length > 1 && argFormats.length !== args.length) {
    r.fail("argument format count does not match the argument count");
  }
  const resultFormat = r.int16();
  if (resultFormat !== 0 && resultFormat !== 1) r.fail("format code must be 0 or 1");
  r.end();
  return { functionOid, argCount: args.length, argFormats, args, resultFormat };
}

// ---------------------------------------------------------------------------------------------
// Encoders (single pass: measure, allocate once, fill)

function untaggedCode(code: number): Buffer {
  return new MessageWriter(0, 4).int32(code).finish();
}

function isMap(p: Readonly<Record<string, string>> | ReadonlyMap<string, string>): p is ReadonlyMap<string, string> {
  return p instanceof Map;
}

/**
 * protocol-message-formats "StartupMessage". Parameters in iteration order; names must be
 * non-empty (an empty name terminates the list).
 */
export function encodeStartupMessage(
  params: Readonly<Record<string, string>> | ReadonlyMap<string, string>,
  version: number = PROTOCOL_VERSION_3_0,
): Buffer {
  const entries: [string, string][] = isMap(params) ? [...params] : Object.entries(params);
  let size = 4 + 1;
  for (const [k, v] of entries) {
    if (k === "") throw new GatewayError("GW_PROTOCOL", "a startup parameter name cannot be empty");
    size += cstringSize(k) + cstringSize(v);
  }
  const w = new MessageWriter(0, size).int32(version);
  for (const [k, v] of entries) w.cstring(k).cstring(v);
  return w.uint8(0).finish();
}

const SSL_REQUEST = untaggedCode(SSL_REQUEST_CODE);
const GSSENC_REQUEST = untaggedCode(GSSENC_REQUEST_CODE);

/** protocol-message-formats "SSLRequest" (a shared constant buffer: do not modify). */
export function encodeSSLRequest(): Buffer {
  return SSL_REQUEST;
}

/** protocol-message-formats "GSSENCRequest" (a shared constant buffer: do not modify). */
export function encodeGSSENCRequest(): Buffer {
  return GSSENC_REQUEST;
}

/** protocol-message-formats "CancelRequest": Int32 code, Int32 process id, Byte[n] secret key. */
export function encodeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  if (secretKey.length < MIN_CANCEL_KEY_BYTES || secretKey.length > MAX_CANCEL_KEY_BYTES) {
    throw new GatewayError("GW_PROTOCOL", `cancel key must be ${MIN_CANCEL_KEY_BYTES} to ${MAX_CANCEL_KEY_BYTES} bytes`);
  }
  return new MessageWriter(0, 8 + secretKey.length, true).int32(CANCEL_REQUEST_CODE).int32(processId).bytes(secretKey).finish();
}

/**
 * protocol-message-formats "PasswordMessage": the password (cleartext, or an "md5…" response)
 * NUL-terminated. The buffer is not pooled so the caller may zero it once written.
 */
export function encodePasswordMessage(password: string | Buffer): Buffer {
  const bytes = typeof password === "string" ? Buffer.from(password, "utf8") : password;
  if (bytes.includes(0)) throw new GatewayError("GW_PROTOCOL", "a password cannot contain a NUL byte");
  return new MessageWriter(FrontendType.Password, bytes.length + 1, true).bytes(bytes).uint8(0).finish();
}

/**
 * protocol-message-formats "SASLInitialResponse": String mechanism, Int32 length of the initial
 * response (-1 when `data` is null), Byte[n] data.
 */
export function encodeSASLInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  const dataLength = data === null ? 0 : data.length;
  const w = new MessageWriter(FrontendType.Password, cstringSize(mechanism) + 4 + dataLength, true).cstring(mechanism);
  if (data === null) w.int32(-1);
  else w.int32(data.length).bytes(data);
  return w.finish();
}

/** protocol-message-formats "SASLResponse": Byte[n] mechanism data. */
export function encodeSASLResponse(data: Buffer): Buffer {
  return new MessageWriter(FrontendType.Password, data.length, true).bytes(data).finish();
}

/** protocol-message-formats "Query". */
export function encodeQuery(sql: string): Buffer {
  return new MessageWriter(FrontendType.Query, cstringSize(sql)).cstring(sql).finish();
}

/** protocol-message-formats "Parse". */
export function encodeParse(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  checkCount(paramTypes.length, "parameter types");
  const w = new MessageWriter(FrontendType.Parse, cstringSize(name) + cstringSize(sql) + 2 + 4 * paramTypes.length);
  w.cstring(name).cstring(sql).uint16(paramTypes.length);
  for (const oid of paramTypes) w.uint32(oid);
  return w.finish();
}

export interface BindInput {
  readonly portal?: string;
  readonly statement?: string;
  readonly paramFormats?: readonly number[];
  readonly params: readonly (Buffer | null)[];
  readonly resultFormats?: readonly number[];
}

function valuesSize(values: readonly (Buffer | null)[]): number {
  let size = 2;
  for (const v of values) size += 4 + (v === null ? 0 : v.length);
  return size;
}

function writeValues(w: MessageWriter, values: readonly (Buffer | null)[]): void {
  w.uint16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
}

function writeFormats(w: MessageWriter, formats: readonly number[]): void {
  w.uint16(formats.length);
  for (const f of formats) w.int16(f);
}

/** protocol-message-formats "Bind". */
export function encodeBind(m: BindInput): Buffer {
  const portal = m.portal ?? "";
  const statement = m.statement ?? "";
  const paramFormats = m.paramFormats ?? [];
  const resultFormats = m.resultFormats ?? [];
  checkCount(paramFormats.length, "parameter formats");
  checkCount(m.params.length, "parameters");
  checkCount(resultFormats.length, "result formats");
  const size =
    cstringSize(portal) + cstringSize(statement) + 2 + 2 * paramFormats.length + valuesSize(m.params) + 2 + 2 * resultFormats.length;
  const w = new MessageWriter(FrontendType.Bind, size).cstring(portal).cstring(statement);
  writeFormats(w, paramFormats);
  writeValues(w, m.params);
  writeFormats(w, resultFormats);
  return w.finish();
}

function encodeTarget(type: number, kind: "S" | "P", name: string): Buffer {
  return new MessageWriter(type, 1 + cstringSize(name))
    .uint8(kind === "S" ? 0x53 : 0x50)
    .cstring(name)
    .finish();
}

/** protocol-message-formats "Describe". */
export function encodeDescribe(kind: "S" | "P", name = ""): Buffer {
  return encodeTarget(FrontendType.Describe, kind, name);
}

/** protocol-message-formats "Close". */
export function encodeClose(kind: "S" | "P", name = ""): Buffer {
  return encodeTarget(FrontendType.Close, kind, name);
}

/** protocol-message-formats "Execute". */
export function encodeExecute(portal = "", maxRows = 0): Buffer {
  return new MessageWriter(FrontendType.Execute, cstringSize(portal) + 4).cstring(portal).int32(maxRows).finish();
}

/** protocol-message-formats "CopyData" (sent by both sides): Byte[n]. */
export function encodeCopyData(data: Buffer): Buffer {
  return new MessageWriter(FrontendType.CopyData, data.length).bytes(data).finish();
}

/** protocol-message-formats "CopyFail". */
export function encodeCopyFail(message: string): Buffer {
  return new MessageWriter(FrontendType.CopyFail, cstringSize(message)).cstring(message).finish();
}

export interface FunctionCallInput {
  readonly functionOid: number;
  readonly argFormats?: readonly number[];
  readonly args: readonly (Buffer | null)[];
  readonly resultFormat?: number;
}

/** protocol-message-formats "FunctionCall". */
export function encodeFunctionCall(m: FunctionCallInput): Buffer {
  const argFormats = m.argFormats ?? [];
  checkCount(argFormats.length, "argument formats");
  checkCount(m.args.length, "arguments");
  const w = new MessageWriter(FrontendType.FunctionCall, 4 + 2 + 2 * argFormats.length + valuesSize(m.args) + 2);
  w.uint32(m.functionOid);
  writeFormats(w, argFormats);
  writeValues(w, m.args);
  return w.int16(m.resultFormat ?? 0).finish();
}

function emptyMessage(type: number): Buffer {
  return new MessageWriter(type, 0).finish();
}

const SYNC = emptyMessage(FrontendType.Sync);
const FLUSH = emptyMessage(FrontendType.Flush);
const TERMINATE = emptyMessage(FrontendType.Terminate);
const COPY_DONE = emptyMessage(FrontendType.CopyDone);

/** protocol-message-formats "Sync" (a shared constant buffer: do not modify). */
export function encodeSync(): Buffer {
  return SYNC;
}

/** protocol-message-formats "Flush" (a shared constant buffer: do not modify). */
export function encodeFlush(): Buffer {
  return FLUSH;
}

/** protocol-message-formats "Terminate" (a shared constant buffer: do not modify). */
export function encodeTerminate(): Buffer {
  return TERMINATE;
}

/** protocol-message-formats "CopyDone", sent by both sides (a shared constant buffer: do not modify). */
export function encodeCopyDone(): Buffer {
  return COPY_DONE;
}
