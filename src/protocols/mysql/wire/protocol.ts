/**
 * MySQL/MariaDB client/server protocol messages, pure and bounded (no I/O, no policy).
 *
 * References (MySQL Source Code Documentation, "Client/Server Protocol"; MariaDB KB
 * "Clientserver Protocol"):
 * - Capability flags: group__group__cs__capabilities__flags; MariaDB "1 - Connecting".
 * - Protocol::HandshakeV10 (page_protocol_connection_phase_packets_protocol_handshake_v10),
 *   Protocol::HandshakeResponse41 (…_protocol_handshake_response), Protocol::SSLRequest,
 *   Protocol::AuthSwitchRequest, Protocol::AuthMoreData.
 * - Generic responses: OK_Packet, ERR_Packet, EOF_Packet (page_protocol_basic_ok_packet, …);
 *   with CLIENT_DEPRECATE_EOF a resultset ends with an OK packet whose header is 0xfe.
 * - Text resultsets (page_protocol_com_query_response_text_resultset): column count,
 *   Protocol::ColumnDefinition41 per column (catalog, schema, table, org_table, name,
 *   org_name, …), an EOF unless CLIENT_DEPRECATE_EOF, then ResultsetRow (length-encoded
 *   strings, 0xfb for NULL), then the terminator.
 * - Prepared statements (page_protocol_com_stmt_prepare, _execute, _send_long_data, _close,
 *   _reset): COM_STMT_PREPARE_OK, Binary Protocol Resultset rows (0x00, NULL bitmap with an
 *   offset of 2, values per type: page_protocol_binary_resultset).
 */
import { GatewayError } from "../../../core/errors.js";
import { Cursor, PayloadWriter, lenencBytes } from "./packets.js";

// ---------------------------------------------------------------------------------------------
// Capability flags (u32; use >>> 0 after bit operations, bit 31 is set by some clients).

export const CAP = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  NO_SCHEMA: 0x10,
  COMPRESS: 0x20,
  ODBC: 0x40,
  LOCAL_FILES: 0x80,
  IGNORE_SPACE: 0x100,
  PROTOCOL_41: 0x200,
  INTERACTIVE: 0x400,
  SSL: 0x800,
  IGNORE_SIGPIPE: 0x1000,
  TRANSACTIONS: 0x2000,
  RESERVED: 0x4000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PS_MULTI_RESULTS: 0x40000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  CAN_HANDLE_EXPIRED_PASSWORDS: 0x400000,
  SESSION_TRACK: 0x800000,
  DEPRECATE_EOF: 0x1000000,
  OPTIONAL_RESULTSET_METADATA: 0x2000000,
  ZSTD_COMPRESSION: 0x4000000,
  QUERY_ATTRIBUTES: 0x8000000,
  SSL_VERIFY_SERVER_CERT: 0x40000000,
  REMEMBER_OPTIONS: 0x80000000,
} as const;

export function hasCap(caps: number, flag: number): boolean {
  return ((caps & flag) >>> 0) !== 0;
}

/** Server status flags (SERVER_STATUS_*). */
export const STATUS = {
  IN_TRANS: 0x1,
  AUTOCOMMIT: 0x2,
  MORE_RESULTS_EXISTS: 0x8,
  CURSOR_EXISTS: 0x40,
  LAST_ROW_SENT: 0x80,
  SESSION_STATE_CHANGED: 0x4000,
} as const;

/** Command bytes (enum_server_command). */
export const COM = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  TIME: 0x0f,
  DELAYED_INSERT: 0x10,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  TABLE_DUMP: 0x13,
  CONNECT_OUT: 0x14,
  REGISTER_SLAVE: 0x15,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  DAEMON: 0x1d,
  BINLOG_DUMP_GTID: 0x1e,
  RESET_CONNECTION: 0x1f,
  /** MariaDB: COM_STMT_BULK_EXECUTE. */
  STMT_BULK_EXECUTE: 0xfa,
} as const;

/** Column types (enum_field_types). */
export const TYPE = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

/** The binary charset number: a column of it holds bytes, not text. */
export const BINARY_CHARSET = 63;
/** utf8mb4_general_ci, what the gateway announces. */
export const DEFAULT_CHARSET = 45;

function protocolError(message: string): GatewayError {
  return new GatewayError("GW_PROTOCOL", message);
}

// ---------------------------------------------------------------------------------------------
// Connection phase

export interface HandshakeV10 {
  readonly serverVersion: string;
  readonly connectionId: number;
  /** The 20-byte nonce (both parts, trailing NUL removed). */
  readonly scramble: Buffer;
  readonly capabilities: number;
  readonly charset: number;
  readonly status: number;
  readonly authPlugin: string;
  /** MariaDB's extended capabilities (when CLIENT_LONG_PASSWORD, i.e. CLIENT_MYSQL, is clear). */
  readonly mariadbCapabilities: number;
}

export function decodeHandshakeV10(payload: Buffer): HandshakeV10 {
  const c = new Cursor(payload);
  const protocol = c.u8();
  if (protocol !== 10) throw protocolError(`unsupported handshake protocol ${protocol}`);
  const serverVersion = c.nulBytes().toString("latin1");
  const connectionId = c.u32();
  const part1 = c.bytes(8);
  c.u8();
  let capabilities = c.u16();
  let charset = 0;
  let status = 0;
  let authLen = 0;
  let mariadbCapabilities = 0;
  let part2: Uint8Array = Buffer.alloc(0);
  let authPlugin = "mysql_native_password";
  if (c.remaining > 0) {
    charset = c.u8();
    status = c.u16();
    capabilities = (capabilities | (c.u16() << 16)) >>> 0;
    authLen = c.u8();
    c.bytes(6);
    mariadbCapabilities = c.u32();
    if (hasCap(capabilities, CAP.SECURE_CONNECTION)) {
      const n = Math.max(13, authLen - 8);
      part2 = c.bytes(Math.min(n, c.remaining));
    }
    if (hasCap(capabilities, CAP.PLUGIN_AUTH) && c.remaining > 0) authPlugin = c.nulOrRest().toString("latin1");
  }
  let scramble = Buffer.concat([part1, part2]);
  if (scramble.length > 0 && scramble[scramble.length - 1] === 0) scramble = scramble.subarray(0, scramble.length - 1);
  return { serverVersion, connectionId, scramble, capabilities, charset, status, authPlugin, mariadbCapabilities: hasCap(capabilities, CAP.LONG_PASSWORD) ? 0 : mariadbCapabilities };
}

export function encodeHandshakeV10(h: Omit<HandshakeV10, "mariadbCapabilities">): Buffer {
  if (h.scramble.length !== 20) throw new GatewayError("GW_INTERNAL", "the scramble must be 20 bytes");
  return new PayloadWriter()
    .u8(10)
    .nul(h.serverVersion)
    .u32(h.connectionId)
    .bytes(h.scramble.subarray(0, 8))
    .u8(0)
    .u16(h.capabilities & 0xffff)
    .u8(h.charset)
    .u16(h.status)
    .u16((h.capabilities >>> 16) & 0xffff)
    .u8(21)
    .zeros(10)
    .bytes(h.scramble.subarray(8))
    .u8(0)
    .nul(h.authPlugin)
    .build();
}

export interface HandshakeResponse {
  readonly capabilities: number;
  readonly maxPacketSize: number;
  readonly charset: number;
  readonly user: string;
  readonly authResponse: Buffer;
  readonly database: string | undefined;
  readonly authPlugin: string | undefined;
  /** Connection attributes (key → value), bounded. */
  readonly attributes: ReadonlyMap<string, string>;
}

/** Protocol::SSLRequest is the first 32 bytes of a HandshakeResponse41 with CLIENT_SSL set. */
export function isSslRequest(payload: Buffer): boolean {
  return payload.length === 32 && hasCap(payload.readUInt32LE(0), CAP.SSL);
}

const MAX_ATTRIBUTES = 64;

export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse {
  const c = new Cursor(payload);
  const capabilities = c.u32();
  if (!hasCap(capabilities, CAP.PROTOCOL_41)) throw new GatewayError("GW_UNSUPPORTED", "clients older than protocol 4.1 are not supported");
  const maxPacketSize = c.u32();
  const charset = c.u8();
  c.bytes(23);
  const user = c.nulBytes().toString("utf8");
  const authResponse = Buffer.from(
    hasCap(capabilities, CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) ? (c.lenencBytes() ?? Buffer.alloc(0)) : hasCap(capabilities, CAP.SECURE_CONNECTION) ? c.bytes(c.u8()) : c.nulBytes(),
  );
  let database: string | undefined;
  if (hasCap(capabilities, CAP.CONNECT_WITH_DB) && c.remaining > 0) database = c.nulOrRest().toString("utf8");
  let authPlugin: string | undefined;
  if (hasCap(capabilities, CAP.PLUGIN_AUTH) && c.remaining > 0) authPlugin = c.nulOrRest().toString("latin1");
  const attributes = new Map<string, string>();
  if (hasCap(capabilities, CAP.CONNECT_ATTRS) && c.remaining > 0) {
    const len = c.lenencInt();
    const a = new Cursor(c.bytes(Math.min(len, c.remaining)));
    while (a.remaining > 0 && attributes.size < MAX_ATTRIBUTES) {
      const k = a.lenencString();
      const v = a.lenencString();
      attributes.set(k.slice(0, 64), v.slice(0, 256));
    }
  }
  return { capabilities, maxPacketSize, charset, user, authResponse, database: database === "" ? undefined : database, authPlugin, attributes };
}

export function encodeHandshakeResponse(r: HandshakeResponse): Buffer {
  const w = new PayloadWriter().u32(r.capabilities).u32(r.maxPacketSize).u8(r.charset).zeros(23).nul(r.user);
  if (hasCap(r.capabilities, CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA)) w.lenencBytes(r.authResponse);
  else if (hasCap(r.capabilities, CAP.SECURE_CONNECTION)) w.u8(r.authResponse.length).bytes(r.authResponse);
  else w.nul(r.authResponse);
  if (hasCap(r.capabilities, CAP.CONNECT_WITH_DB)) w.nul(r.database ?? "");
  if (hasCap(r.capabilities, CAP.PLUGIN_AUTH)) w.nul(r.authPlugin ?? "");
  if (hasCap(r.capabilities, CAP.CONNECT_ATTRS)) {
    const attrs = Buffer.concat([...r.attributes].flatMap(([k, v]) => [lenencBytes(k), lenencBytes(v)]));
    w.lenencBytes(attrs);
  }
  return w.build();
}

export function encodeSslRequest(capabilities: number, maxPacketSize: number, charset: number): Buffer {
  return new PayloadWriter().u32(capabilities).u32(maxPacketSize).u8(charset).zeros(23).build();
}

/** Protocol::AuthSwitchRequest: 0xfe, plugin name, plugin data. */
export function encodeAuthSwitch(plugin: string, data: Buffer): Buffer {
  return new PayloadWriter().u8(0xfe).nul(plugin).bytes(data).build();
}

/** Protocol::AuthMoreData: 0x01 and the data. */
export function encodeAuthMoreData(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x01]), data]);
}

/** What the server said during authentication. */
export type AuthReply =
  | { readonly type: "ok"; readonly ok: OkPacket }
  | { readonly type: "err"; readonly err: ErrPacket }
  | { readonly type: "switch"; readonly plugin: string; readonly data: Buffer }
  | { readonly type: "more"; readonly data: Buffer };

export function decodeAuthReply(payload: Buffer, capabilities: number): AuthReply {
  const first = payload[0];
  if (first === 0x00) return { type: "ok", ok: decodeOk(payload, capabilities) };
  if (first === 0xff) return { type: "err", err: decodeErr(payload) };
  if (first === 0x01) return { type: "more", data: payload.subarray(1) };
  if (first === 0xfe) {
    const c = new Cursor(payload, 1);
    if (c.remaining === 0) return { type: "switch", plugin: "mysql_old_password", data: Buffer.alloc(0) };
    const plugin = c.nulOrRest().toString("latin1");
    let data = c.rest();
    if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
    return { type: "switch", plugin, data };
  }
  throw protocolError("unexpected packet during authentication");
}

// ---------------------------------------------------------------------------------------------
// Generic responses

export interface OkPacket {
  readonly affectedRows: number;
  readonly lastInsertId: number;
  readonly status: number;
  readonly warnings: number;
}

export function decodeOk(payload: Buffer, capabilities: number): OkPacket {
  const c = new Cursor(payload, 1);
  const affectedRows = c.lenencInt();
  const lastInsertId = c.lenencInt();
  let status = 0;
  let warnings = 0;
  if (hasCap(capabilities, CAP.PROTOCOL_41)) {
    status = c.u16();
    warnings = c.u16();
  } else if (hasCap(capabilities, CAP.TRANSACTIONS)) status = c.u16();
  return { affectedRows, lastInsertId, status, warnings };
}

export function encodeOk(ok: OkPacket, header = 0x00): Buffer {
  return new PayloadWriter().u8(header).lenenc(ok.affectedRows).lenenc(ok.lastInsertId).u16(ok.status).u16(ok.warnings).build();
}

export interface ErrPacket {
  readonly code: number;
  readonly sqlstate: string;
  readonly message: string;
}

export function decodeErr(payload: Buffer): ErrPacket {
  const c = new Cursor(payload, 1);
  const code = c.u16();
  let sqlstate = "HY000";
  if (c.remaining > 0 && payload[c.pos] === 0x23) {
    c.u8();
    sqlstate = c.bytes(Math.min(5, c.remaining)).toString("latin1");
  }
  return { code, sqlstate, message: c.rest().toString("utf8") };
}

export function encodeErr(e: ErrPacket): Buffer {
  const state = (e.sqlstate + "HY000").slice(0, 5);
  return new PayloadWriter().u8(0xff).u16(e.code).u8(0x23).bytes(Buffer.from(state, "latin1")).bytes(Buffer.from(e.message, "utf8")).build();
}

export interface EofPacket {
  readonly warnings: number;
  readonly status: number;
}

/** An EOF packet: header 0xfe and fewer than 9 bytes (a longer 0xfe packet is a row or an OK). */
export function isEof(payload: Buffer): boolean {
  return payload[0] === 0xfe && payload.length < 9;
}

export function decodeEof(payload: Buffer): EofPacket {
  const c = new Cursor(payload, 1);
  if (c.remaining < 4) return { warnings: 0, status: 0 };
  const warnings = c.u16();
  const status = c.u16();
  return { warnings, status };
}

export function encodeEof(e: EofPacket): Buffer {
  return new PayloadWriter().u8(0xfe).u16(e.warnings).u16(e.status).build();
}

/**
 * The end of a resultset's rows: an EOF packet, or with CLIENT_DEPRECATE_EOF an OK packet with
 * header 0xfe (less than 0xffffff bytes long, so it cannot be a row starting with a 0xfe length).
 */
export function isRowsTerminator(payload: Buffer, deprecateEof: boolean): boolean {
  if (payload[0] !== 0xfe) return false;
  return deprecateEof ? payload.length < 0xffffff : payload.length < 9;
}

/** The status flags of a terminator (EOF or the OK that replaces it). */
export function terminatorStatus(payload: Buffer, capabilities: number): number {
  if (hasCap(capabilities, CAP.DEPRECATE_EOF)) return decodeOk(payload, capabilities).status;
  return decodeEof(payload).status;
}

/**
 * The terminator with `add` more warnings in its warning count (saturating at 65535): the EOF
 * packet's, or (CLIENT_DEPRECATE_EOF) the OK packet's that replaces it. A new buffer; the rest
 * of the packet (status, session-state info) is kept byte for byte.
 */
export function addTerminatorWarnings(payload: Buffer, capabilities: number, add: number): Buffer {
  if (add <= 0 || !hasCap(capabilities, CAP.PROTOCOL_41)) return payload;
  let at = 1;
  if (hasCap(capabilities, CAP.DEPRECATE_EOF)) {
    const c = new Cursor(payload, 1);
    c.lenencInt();
    c.lenencInt();
    c.u16();
    at = c.pos;
  }
  if (at + 2 > payload.length) return payload;
  const out = Buffer.from(payload);
  out.writeUInt16LE(Math.min(0xffff, out.readUInt16LE(at) + add), at);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Resultsets

export interface ColumnDefinition {
  readonly schema: string;
  readonly table: string;
  readonly orgTable: string;
  readonly name: string;
  readonly orgName: string;
  readonly charset: number;
  readonly length: number;
  readonly type: number;
  readonly flags: number;
  readonly decimals: number;
}

/** UNSIGNED_FLAG of a column definition. */
export const UNSIGNED_FLAG = 0x20;

export function decodeColumnDefinition(payload: Buffer): ColumnDefinition {
  const c = new Cursor(payload);
  c.lenencBytes(); // catalog ("def")
  const schema = c.lenencString();
  const table = c.lenencString();
  const orgTable = c.lenencString();
  const name = c.lenencString();
  const orgName = c.lenencString();
  c.lenencInt(); // length of the fixed fields (0x0c)
  const charset = c.u16();
  const length = c.u32();
  const type = c.u8();
  const flags = c.u16();
  const decimals = c.u8();
  return { schema, table, orgTable, name, orgName, charset, length, type, flags, decimals };
}

export function encodeColumnDefinition(d: ColumnDefinition): Buffer {
  return new PayloadWriter()
    .lenencBytes("def")
    .lenencBytes(d.schema)
    .lenencBytes(d.table)
    .lenencBytes(d.orgTable)
    .lenencBytes(d.name)
    .lenencBytes(d.orgName)
    .lenenc(0x0c)
    .u16(d.charset)
    .u32(d.length)
    .u8(d.type)
    .u16(d.flags)
    .u8(d.decimals)
    .zeros(2)
    .build();
}

/** One text-protocol value: [start, end) of the payload, or null. */
export type ValueSpan = { readonly start: number; readonly end: number } | null;

/** The value spans of a text resultset row (ProtocolText::ResultsetRow). */
export function decodeTextRow(payload: Buffer, columns: number): ValueSpan[] {
  const c = new Cursor(payload);
  const out: ValueSpan[] = [];
  for (let i = 0; i < columns; i++) {
    const n = c.lenenc();
    if (n === null) {
      out.push(null);
      continue;
    }
    const start = c.pos;
    c.bytes(n);
    out.push({ start, end: c.pos });
  }
  if (c.remaining !== 0) throw protocolError("row longer than its columns");
  return out;
}

/** A text row from values (null = NULL). */
export function encodeTextRow(values: readonly (Buffer | null)[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) parts.push(v === null ? Buffer.from([0xfb]) : lenencBytes(v));
  return Buffer.concat(parts);
}

/** Whether values of a type are sent as length-encoded strings in the binary protocol. */
export function isBinaryStringType(type: number): boolean {
  switch (type) {
    case TYPE.DECIMAL:
    case TYPE.VARCHAR:
    case TYPE.BIT:
    case TYPE.JSON:
    case TYPE.NEWDECIMAL:
    case TYPE.ENUM:
    case TYPE.SET:
    case TYPE.TINY_BLOB:
    case TYPE.MEDIUM_BLOB:
    case TYPE.LONG_BLOB:
    case TYPE.BLOB:
    case TYPE.VAR_STRING:
    case TYPE.STRING:
    case TYPE.GEOMETRY:
      return true;
    default:
      return false;
  }
}

/** The fixed size of a binary value of `type`, or "lenenc" / "lenbyte" (dates and times). */
function binaryWidth(type: number): number | "lenenc" | "lenbyte" {
  if (isBinaryStringType(type)) return "lenenc";
  switch (type) {
    case TYPE.TINY:
      return 1;
    case TYPE.SHORT:
    case TYPE.YEAR:
      return 2;
    case TYPE.LONG:
    case TYPE.INT24:
    case TYPE.FLOAT:
      return 4;
    case TYPE.DOUBLE:
    case TYPE.LONGLONG:
      return 8;
    case TYPE.NULL:
      return 0;
    case TYPE.DATE:
    case TYPE.DATETIME:
    case TYPE.TIMESTAMP:
    case TYPE.TIME:
    case TYPE.NEWDATE:
    case TYPE.TIMESTAMP2:
    case TYPE.DATETIME2:
    case TYPE.TIME2:
      return "lenbyte";
    default:
      throw protocolError(`unknown column type ${type}`);
  }
}

/** One binary value: where its bytes are ([start, end): the value itself, without its length prefix). */
export interface BinaryValue {
  readonly start: number;
  readonly end: number;
  /** Where the value's encoding begins (its length prefix, if any). */
  readonly at: number;
}

/** The values of a binary resultset row (ProtocolBinary::ResultsetRow): null or a span. */
export function decodeBinaryRow(payload: Buffer, types: readonly number[]): (BinaryValue | null)[] {
  const c = new Cursor(payload);
  if (c.u8() !== 0x00) throw protocolError("binary row without its 0x00 header");
  const bitmap = c.bytes(Math.floor((types.length + 7 + 2) / 8));
  const out: (BinaryValue | null)[] = [];
  for (let i = 0; i < types.length; i++) {
    const bit = i + 2;
    if (((bitmap[bit >> 3] ?? 0) & (1 << (bit & 7))) !== 0) {
      out.push(null);
      continue;
    }
    out.push(readBinaryValue(c, types[i] ?? TYPE.NULL));
  }
  if (c.remaining !== 0) throw protocolError("binary row longer than its columns");
  return out;
}

function readBinaryValue(c: Cursor, type: number): BinaryValue {
  const at = c.pos;
  const w = binaryWidth(type);
  if (w === "lenenc") {
    const n = c.lenencInt();
    const start = c.pos;
    c.bytes(n);
    return { at, start, end: c.pos };
  }
  if (w === "lenbyte") {
    const n = c.u8();
    const start = c.pos;
    c.bytes(n);
    return { at, start, end: c.pos };
  }
  c.bytes(w);
  return { at, start: at, end: c.pos };
}

/** Rebuild a binary row with some string values replaced (null = NULL). */
export function encodeBinaryRow(payload: Buffer, types: readonly number[], values: readonly (BinaryValue | null)[], replace: ReadonlyMap<number, Buffer | null>): Buffer {
  const bitmapLen = Math.floor((types.length + 7 + 2) / 8);
  const bitmap = Buffer.from(payload.subarray(1, 1 + bitmapLen));
  const parts: Buffer[] = [Buffer.from([0x00]), bitmap];
  values.forEach((v, i) => {
    if (v === null) return;
    const r = replace.get(i);
    if (r === undefined) {
      parts.push(payload.subarray(v.at, v.end));
      return;
    }
    if (r === null) {
      const bit = i + 2;
      bitmap[bit >> 3] = (bitmap[bit >> 3] ?? 0) | (1 << (bit & 7));
      return;
    }
    parts.push(lenencBytes(r));
  });
  return Buffer.concat(parts);
}

/** Render a binary value as text (for recordings and approvers). */
export function binaryValueText(payload: Buffer, type: number, flags: number, v: BinaryValue): string {
  const b = payload.subarray(v.start, v.end);
  const unsigned = (flags & UNSIGNED_FLAG) !== 0;
  switch (binaryWidth(type)) {
    case "lenenc":
      return b.toString("utf8");
    case "lenbyte":
      return renderTemporal(type, b);
    case 0:
      return "NULL";
    default:
      break;
  }
  switch (type) {
    case TYPE.TINY:
      return String(unsigned ? b.readUInt8(0) : b.readInt8(0));
    case TYPE.SHORT:
    case TYPE.YEAR:
      return String(unsigned ? b.readUInt16LE(0) : b.readInt16LE(0));
    case TYPE.LONG:
    case TYPE.INT24:
      return String(unsigned ? b.readUInt32LE(0) : b.readInt32LE(0));
    case TYPE.LONGLONG:
      return String(unsigned ? b.readBigUInt64LE(0) : b.readBigInt64LE(0));
    case TYPE.FLOAT:
      return String(b.readFloatLE(0));
    case TYPE.DOUBLE:
      return String(b.readDoubleLE(0));
    default:
      return `\\x${b.toString("hex")}`;
  }
}

function renderTemporal(type: number, b: Buffer): string {
  const p2 = (n: number): string => String(n).padStart(2, "0");
  if (type === TYPE.TIME || type === TYPE.TIME2) {
    if (b.length === 0) return "00:00:00";
    const neg = b[0] === 1 ? "-" : "";
    const days = b.length >= 5 ? b.readUInt32LE(1) : 0;
    const h = (b[5] ?? 0) + days * 24;
    return `${neg}${p2(h)}:${p2(b[6] ?? 0)}:${p2(b[7] ?? 0)}${b.length >= 12 ? `.${String(b.readUInt32LE(8)).padStart(6, "0")}` : ""}`;
  }
  if (b.length === 0) return "0000-00-00";
  const y = b.readUInt16LE(0);
  const date = `${String(y).padStart(4, "0")}-${p2(b[2] ?? 0)}-${p2(b[3] ?? 0)}`;
  if (b.length < 7) return type === TYPE.DATE ? date : `${date} 00:00:00`;
  const time = `${p2(b[4] ?? 0)}:${p2(b[5] ?? 0)}:${p2(b[6] ?? 0)}`;
  return `${date} ${time}${b.length >= 11 ? `.${String(b.readUInt32LE(7)).padStart(6, "0")}` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Prepared statements

export interface PrepareOk {
  readonly statementId: number;
  readonly columns: number;
  readonly params: number;
  readonly warnings: number;
}

export function decodePrepareOk(payload: Buffer): PrepareOk {
  const c = new Cursor(payload);
  if (c.u8() !== 0x00) throw protocolError("not a COM_STMT_PREPARE_OK");
  const statementId = c.u32();
  const columns = c.u16();
  const params = c.u16();
  let warnings = 0;
  if (c.remaining >= 3) {
    c.u8();
    warnings = c.u16();
  }
  return { statementId, columns, params, warnings };
}

export interface StmtExecute {
  readonly statementId: number;
  readonly flags: number;
  /** Parameter values (spans into the payload) when the types are known; null = NULL. */
  readonly values: readonly (BinaryValue | null)[];
  /** The parameter types used (sent now, or the previous execution's). */
  readonly types: readonly { readonly type: number; readonly flags: number }[];
  /** Whether this execution sent new types. */
  readonly newTypes: boolean;
}

/**
 * COM_STMT_EXECUTE: statement id, flags (cursor type), iteration count, then for statements
 * with parameters a NULL bitmap, new-params-bound flag, types (2 bytes each) when bound, values.
 * `previousTypes`: what the last execution bound (types are only sent when they change).
 */
export function decodeStmtExecute(
  payload: Buffer,
  paramCount: number,
  previousTypes: readonly { readonly type: number; readonly flags: number }[] | undefined,
  longData: ReadonlySet<number> = new Set(),
): StmtExecute {
  const c = new Cursor(payload, 1);
  const statementId = c.u32();
  const flags = c.u8();
  c.u32();
  if (paramCount === 0) return { statementId, flags, values: [], types: [], newTypes: false };
  const nulls = c.bytes(Math.floor((paramCount + 7) / 8));
  const bound = c.u8();
  let types: { type: number; flags: number }[];
  if (bound === 1) {
    types = [];
    for (let i = 0; i < paramCount; i++) {
      const type = c.u8();
      const f = c.u8();
      types.push({ type, flags: f & 0x80 ? UNSIGNED_FLAG : 0 });
    }
  } else if (previousTypes !== undefined && previousTypes.length === paramCount) types = [...previousTypes];
  else throw protocolError("COM_STMT_EXECUTE without parameter types");
  const values: (BinaryValue | null)[] = [];
  for (let i = 0; i < paramCount; i++) {
    if (((nulls[i >> 3] ?? 0) & (1 << (i & 7))) !== 0) {
      values.push(null);
      continue;
    }
    // A parameter sent with COM_STMT_SEND_LONG_DATA has no value here.
    if (longData.has(i)) {
      values.push({ at: c.pos, start: c.pos, end: c.pos });
      continue;
    }
    values.push(readBinaryValue(c, types[i]?.type ?? TYPE.NULL));
  }
  return { statementId, flags, values, types, newTypes: bound === 1 };
}
