import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../core/errors.js";
import {
  CAP,
  TYPE,
  addTerminatorWarnings,
  decodeOk,
  encodeEof,
  encodeOk,
  binaryValueText,
  decodeBinaryRow,
  decodeColumnDefinition,
  decodeErr,
  decodeHandshakeResponse,
  decodeHandshakeV10,
  decodePrepareOk,
  decodeStmtExecute,
  decodeTextRow,
  encodeBinaryRow,
  encodeColumnDefinition,
  encodeErr,
  encodeHandshakeResponse,
  encodeHandshakeV10,
  encodeTextRow,
  isRowsTerminator,
  isSslRequest,
  encodeSslRequest,
} from "./protocol.js";

const scramble = Buffer.from("abcdefghijklmnopqrst");

describe("MySQL connection phase", () => {
  it("round-trips HandshakeV10", () => {
    const caps = (CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.DEPRECATE_EOF | CAP.SSL) >>> 0;
    const h = decodeHandshakeV10(encodeHandshakeV10({ serverVersion: "8.0.1-x", connectionId: 42, scramble, capabilities: caps, charset: 45, status: 2, authPlugin: "caching_sha2_password" }));
    expect(h).toMatchObject({ serverVersion: "8.0.1-x", connectionId: 42, capabilities: caps, charset: 45, status: 2, authPlugin: "caching_sha2_password" });
    expect(h.scramble.toString()).toBe(scramble.toString());
  });

  it("round-trips HandshakeResponse41 with every optional part", () => {
    const caps = (CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA | CAP.CONNECT_WITH_DB | CAP.CONNECT_ATTRS) >>> 0;
    const r = { capabilities: caps, maxPacketSize: 1 << 24, charset: 45, user: "agent", authResponse: Buffer.from([1, 2, 0, 3]), database: "shop", authPlugin: "caching_sha2_password", attributes: new Map([["program_name", "mysql"]]) };
    const d = decodeHandshakeResponse(encodeHandshakeResponse(r));
    expect(d).toEqual(r);
    // Without lenenc auth data: a one-byte length.
    const short = { ...r, capabilities: (caps & ~CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) >>> 0 };
    expect(decodeHandshakeResponse(encodeHandshakeResponse(short))).toEqual(short);
  });

  it("recognises an SSLRequest", () => {
    expect(isSslRequest(encodeSslRequest((CAP.PROTOCOL_41 | CAP.SSL) >>> 0, 1 << 24, 45))).toBe(true);
    expect(isSslRequest(encodeSslRequest(CAP.PROTOCOL_41, 1 << 24, 45))).toBe(false);
  });

  it("never throws anything but GatewayError on a malformed handshake (fuzz)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const f of [decodeHandshakeV10, decodeHandshakeResponse, decodeColumnDefinition, decodePrepareOk]) {
          try {
            f(Buffer.from(bytes));
          } catch (e) {
            expect(e).toBeInstanceOf(GatewayError);
          }
        }
      }),
    );
  });

  it("decodes every truncation of a valid response as an error, never a wrong value", () => {
    const full = encodeHandshakeResponse({ capabilities: (CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.CONNECT_WITH_DB) >>> 0, maxPacketSize: 1, charset: 8, user: "u", authResponse: Buffer.from("xyz"), database: "db", authPlugin: undefined, attributes: new Map() });
    for (let i = 0; i < full.length - 3; i++) {
      try {
        const d = decodeHandshakeResponse(full.subarray(0, i));
        expect(d.user).toBe("u");
      } catch (e) {
        expect(e).toBeInstanceOf(GatewayError);
      }
    }
  });
});

describe("MySQL responses and resultsets", () => {
  it("round-trips ERR", () => {
    expect(decodeErr(encodeErr({ code: 1142, sqlstate: "42000", message: "airlock: no (rule: r)" }))).toEqual({ code: 1142, sqlstate: "42000", message: "airlock: no (rule: r)" });
  });

  it("tells a terminator from a row that starts with 0xfe", () => {
    expect(isRowsTerminator(Buffer.from([0xfe, 0, 0, 2, 0]), false)).toBe(true);
    expect(isRowsTerminator(Buffer.from([0xfe, 0, 0, 2, 0, 0, 0]), true)).toBe(true);
    expect(isRowsTerminator(Buffer.concat([Buffer.from([0xfe]), Buffer.alloc(20)]), false)).toBe(false);
  });

  it("round-trips column definitions with org_table/org_name", () => {
    const c = { schema: "shop", table: "c", orgTable: "customers", name: "mail", orgName: "email", charset: 45, length: 800, type: TYPE.VAR_STRING, flags: 0, decimals: 0 };
    expect(decodeColumnDefinition(encodeColumnDefinition(c))).toEqual(c);
  });

  it("round-trips text rows with NULLs", () => {
    const values = [Buffer.from("a"), null, Buffer.alloc(300, 0x62), Buffer.alloc(0)];
    const row = encodeTextRow(values);
    const spans = decodeTextRow(row, 4);
    expect(spans.map((s) => (s === null ? null : row.subarray(s.start, s.end).toString()))).toEqual(values.map((v) => (v === null ? null : v.toString())));
    expect(() => decodeTextRow(row, 3)).toThrow(GatewayError);
    expect(() => decodeTextRow(row.subarray(0, row.length - 1), 4)).toThrow(GatewayError);
  });

  it("decodes binary rows, renders values, and replaces a string value", () => {
    const types = [TYPE.LONG, TYPE.VAR_STRING, TYPE.DOUBLE, TYPE.DATE, TYPE.NULL];
    // header, bitmap (5 columns + 2 → 1 byte; column 4 NULL → bit 6)
    const payload = Buffer.concat([
      Buffer.from([0x00, 0x40]),
      Buffer.from([7, 0, 0, 0]),
      Buffer.from([3, 0x61, 0x62, 0x63]),
      (() => {
        const b = Buffer.alloc(8);
        b.writeDoubleLE(1.5);
        return b;
      })(),
      Buffer.from([4, 0xe8, 0x07, 12, 31]),
    ]);
    const v = decodeBinaryRow(payload, types);
    expect(v[4]).toBeNull();
    expect(v.map((x, i) => (x === null ? null : binaryValueText(payload, types[i] ?? 0, 0, x)))).toEqual(["7", "abc", "1.5", "2024-12-31", null]);
    const out = encodeBinaryRow(payload, types, v, new Map([[1, Buffer.from("[EMAIL]")], [0, null]]));
    const w = decodeBinaryRow(out, types);
    expect(w[0]).toBeNull();
    expect(w.map((x, i) => (x === null ? null : binaryValueText(out, types[i] ?? 0, 0, x)))).toEqual([null, "[EMAIL]", "1.5", "2024-12-31", null]);
  });

  it("decodes COM_STMT_EXECUTE parameters, remembering types between executions", () => {
    const exec = Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0]), Buffer.from([0x02, 1]), Buffer.from([TYPE.LONGLONG, 0, TYPE.VAR_STRING, 0]), Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])]);
    const d = decodeStmtExecute(exec, 2, undefined);
    expect(d.values[1]).toBeNull();
    expect(binaryValueText(exec, TYPE.LONGLONG, 0, d.values[0] ?? { at: 0, start: 0, end: 0 })).toBe("5");
    const again = Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0]), Buffer.from([0x00, 0]), Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([2, 0x68, 0x69])]);
    const d2 = decodeStmtExecute(again, 2, d.types);
    expect(d2.values.map((x, i) => (x === null ? null : binaryValueText(again, d.types[i]?.type ?? 0, 0, x)))).toEqual(["6", "hi"]);
    expect(() => decodeStmtExecute(again, 2, undefined)).toThrow(GatewayError);
  });

  it("never throws anything but GatewayError on malformed rows (fuzz)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.constantFrom(...Object.values(TYPE)), { maxLength: 8 }), (bytes, types) => {
        const b = Buffer.from(bytes);
        for (const f of [() => decodeTextRow(b, types.length), () => decodeBinaryRow(b, types), () => decodeStmtExecute(b, types.length, types.map((type) => ({ type, flags: 0 })))]) {
          try {
            f();
          } catch (e) {
            expect(e).toBeInstanceOf(GatewayError);
          }
        }
      }),
    );
  });
});

describe("MySQL terminators", () => {
  it("adds the gateway's warnings to an EOF's or a 0xfe OK's warning count, keeping the rest byte for byte", () => {
    const caps41 = CAP.PROTOCOL_41 >>> 0;
    const eof = encodeEof({ warnings: 2, status: 0x22 });
    const more = addTerminatorWarnings(eof, caps41, 3);
    expect(more.readUInt16LE(1)).toBe(5);
    expect(more.readUInt16LE(3)).toBe(0x22);
    expect(eof.readUInt16LE(1)).toBe(2);
    const capsOk = (CAP.PROTOCOL_41 | CAP.DEPRECATE_EOF) >>> 0;
    // A large affected-rows count (3-byte lenenc) and session-state bytes after the counts.
    const ok = Buffer.concat([encodeOk({ affectedRows: 70_000, lastInsertId: 0, status: 0x02, warnings: 1 }, 0xfe), Buffer.from([0x00, 0x01, 0x02])]);
    const patched = addTerminatorWarnings(ok, capsOk, 2);
    expect(decodeOk(patched, capsOk)).toEqual({ affectedRows: 70_000, lastInsertId: 0, status: 0x02, warnings: 3 });
    expect(patched.subarray(-3)).toEqual(Buffer.from([0x00, 0x01, 0x02]));
    expect(addTerminatorWarnings(ok, capsOk, 0)).toBe(ok);
    expect(addTerminatorWarnings(encodeEof({ warnings: 0xfffe, status: 0 }), caps41, 9).readUInt16LE(1)).toBe(0xffff);
  });
});
