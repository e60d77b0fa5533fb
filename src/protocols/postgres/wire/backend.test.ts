import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { GatewayError } from "../../../core/errors.js";
import {
  BackendType,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeCommandComplete,
  decodeCopyResponse,
  decodeDataRow,
  decodeErrorOrNotice,
  decodeFunctionCallResponse,
  decodeNegotiateProtocolVersion,
  decodeNotification,
  decodeParameterDescription,
  decodeParameterStatus,
  decodeReadyForQuery,
  decodeRowDescription,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationMD5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSASL,
  encodeAuthenticationSASLContinue,
  encodeAuthenticationSASLFinal,
  encodeBackendKeyData,
  encodeBindComplete,
  encodeCloseComplete,
  encodeCommandComplete,
  encodeCopyResponse,
  encodeDataRow,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeNoData,
  encodeNoticeResponse,
  encodeNotification,
  encodeParameterDescription,
  encodeParameterStatus,
  encodeParseComplete,
  encodePortalSuspended,
  encodeReadyForQuery,
  encodeRowDescription,
  forEachDataRowValue,
  type RowDescriptionField,
} from "./backend.js";
import { byteChunks, frameChunks, plain, splitsInTwo } from "./test-support.js";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e.code;
    throw e;
  }
  return "no error";
}

function tbody(m: Buffer): Buffer {
  expect(m.readInt32BE(1)).toBe(m.length - 1);
  return m.subarray(5);
}

/** A body built by hand: Int32 values and raw strings/bytes, concatenated. */
function raw(...parts: (number | string | Buffer)[]): Buffer {
  return Buffer.concat(
    parts.map((p) => {
      if (typeof p === "string") return Buffer.from(p, "latin1");
      if (Buffer.isBuffer(p)) return p;
      const b = Buffer.alloc(4);
      b.writeInt32BE(p, 0);
      return b;
    }),
  );
}

const protoString = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\0"));

describe("decodeAuthentication", () => {
  it("decodes every request kind", () => {
    expect(decodeAuthentication(tbody(encodeAuthenticationOk()))).toEqual({ kind: "ok" });
    expect(decodeAuthentication(tbody(encodeAuthenticationCleartextPassword()))).toEqual({ kind: "cleartext" });
    expect(decodeAuthentication(tbody(encodeAuthenticationMD5Password(Buffer.from([1, 2, 3, 4]))))).toEqual({ kind: "md5", salt: Buffer.from([1, 2, 3, 4]) });
    expect(decodeAuthentication(tbody(encodeAuthenticationSASL(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])))).toEqual({
      kind: "sasl",
      mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
    });
    expect(decodeAuthentication(tbody(encodeAuthenticationSASLContinue(Buffer.from("r=abc,s=c2FsdA==,i=4096"))))).toEqual({
      kind: "sasl_continue",
      data: Buffer.from("r=abc,s=c2FsdA==,i=4096"),
    });
    expect(decodeAuthentication(tbody(encodeAuthenticationSASLFinal(Buffer.from("v=xyz"))))).toEqual({ kind: "sasl_final", data: Buffer.from("v=xyz") });
    for (const code of [2, 6, 7, 9]) expect(decodeAuthentication(raw(code))).toEqual({ kind: "unsupported", code });
    expect(decodeAuthentication(raw(8, "gss-token"))).toEqual({ kind: "unsupported", code: 8 });
  });

  it("rejects malformed requests", () => {
    expect(codeOf(() => decodeAuthentication(raw(0, "x")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeAuthentication(raw(5, "abc")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeAuthentication(raw(5, "abcde")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeAuthentication(raw(10, "SCRAM-SHA-256\0")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeAuthentication(raw(10, "SCRAM-SHA-256\0\0junk")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeAuthentication(raw(13)))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeAuthentication(Buffer.alloc(3)))).toBe("GW_PROTOCOL");
  });
});

describe("backend message decoders", () => {
  it("decodes BackendKeyData with 3.0 and 3.2 key lengths, copying the key", () => {
    const body = tbody(encodeBackendKeyData(77, Buffer.from([1, 2, 3, 4])));
    const k = decodeBackendKeyData(body);
    body.fill(0);
    expect(k).toEqual({ processId: 77, secretKey: Buffer.from([1, 2, 3, 4]) });
    expect(decodeBackendKeyData(tbody(encodeBackendKeyData(-5, Buffer.alloc(32, 9))))).toEqual({ processId: -5, secretKey: Buffer.alloc(32, 9) });
    expect(codeOf(() => decodeBackendKeyData(raw(1, "abc")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeBackendKeyData(raw(1, Buffer.alloc(257))))).toBe("GW_PROTOCOL");
  });

  it("decodes ParameterStatus and ReadyForQuery", () => {
    expect(decodeParameterStatus(tbody(encodeParameterStatus("server_version", "18.1")))).toEqual({ name: "server_version", value: "18.1" });
    for (const s of ["I", "T", "E"] as const) {
      const m = encodeReadyForQuery(s);
      expect(m).toEqual(Buffer.from([0x5a, 0, 0, 0, 5, s.charCodeAt(0)]));
      expect(decodeReadyForQuery(tbody(m))).toBe(s);
    }
    expect(codeOf(() => decodeReadyForQuery(Buffer.from("X")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeReadyForQuery(Buffer.from("II")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeParameterStatus(Buffer.from("a\0b")))).toBe("GW_PROTOCOL");
  });

  it("reuses the constant frames", () => {
    expect(encodeReadyForQuery("I")).toBe(encodeReadyForQuery("I"));
    expect(encodeAuthenticationOk()).toBe(encodeAuthenticationOk());
    expect(encodeAuthenticationOk()).toEqual(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]));
    expect(encodeEmptyQueryResponse()).toEqual(Buffer.from([0x49, 0, 0, 0, 4]));
  });

  it("encodes ErrorResponse with S, V, C, M and decodes it back", () => {
    const m = encodeErrorResponse({ severity: "ERROR", code: "42501", message: "airlock: denied by rule no-ddl", hint: "ask a DBA", detail: "DROP", position: 7 });
    expect(m[0]).toBe(BackendType.ErrorResponse);
    const e = decodeErrorOrNotice(tbody(m));
    expect(e.severity).toBe("ERROR");
    expect(e.code).toBe("42501");
    expect(e.message).toBe("airlock: denied by rule no-ddl");
    expect(Object.fromEntries(e.fields)).toEqual({ S: "ERROR", V: "ERROR", C: "42501", M: "airlock: denied by rule no-ddl", D: "DROP", H: "ask a DBA", P: "7" });
    const n = encodeNoticeResponse({ severity: "NOTICE", code: "00000", message: "waiting for approval a-1" });
    expect(n[0]).toBe(BackendType.NoticeResponse);
    expect(decodeErrorOrNotice(tbody(n)).message).toBe("waiting for approval a-1");
  });

  it("keeps NUL out of error text without throwing, but refuses a bad SQLSTATE", () => {
    const m = encodeErrorResponse({ severity: "FATAL", code: "28P01", message: "bad\0token" });
    expect(decodeErrorOrNotice(tbody(m)).message).toBe("bad\uFFFDtoken");
    expect(codeOf(() => encodeErrorResponse({ severity: "ERROR", code: "4250", message: "x" }))).toBe("GW_INTERNAL");
  });

  it("prefers V over S and tolerates missing fields", () => {
    const e = decodeErrorOrNotice(raw("SFEHLER\0VERROR\0Mkaputt\0\0"));
    expect(e.severity).toBe("ERROR");
    expect(e.code).toBe("");
    expect(decodeErrorOrNotice(raw("\0")).message).toBe("");
    expect(codeOf(() => decodeErrorOrNotice(raw("Mx\0")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeErrorOrNotice(raw("Mx")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeErrorOrNotice(raw("Mx\0\0\0")))).toBe("GW_PROTOCOL");
  });

  it("decodes RowDescription fields", () => {
    const fields: RowDescriptionField[] = [
      { name: "id", tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
      { name: "email", tableOid: 16384, columnAttr: 2, typeOid: 1043, typeSize: -1, typeModifier: 259, format: 1 },
    ];
    expect(decodeRowDescription(tbody(encodeRowDescription(fields)))).toEqual(fields);
    expect(decodeRowDescription(tbody(encodeRowDescription([{ name: "?column?" }])))).toEqual([
      { name: "?column?", tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
    ]);
    expect(codeOf(() => decodeRowDescription(Buffer.from([0xff, 0xff, 0])))).toBe("GW_PROTOCOL");
  });

  it("decodes DataRow values as subarrays and walks them without allocating", () => {
    const m = encodeDataRow([Buffer.from("1"), null, Buffer.alloc(0), Buffer.from("alice@example.com")]);
    const body = tbody(m);
    const values = decodeDataRow(body);
    expect(values).toEqual([Buffer.from("1"), null, Buffer.alloc(0), Buffer.from("alice@example.com")]);
    expect(values[3]?.buffer).toBe(body.buffer);
    const seen: [number, number, number][] = [];
    expect(forEachDataRowValue(body, (i, start, len) => seen.push([i, start, len]))).toBe(4);
    expect(seen.map(([, start, len]) => (len < 0 ? null : body.toString("utf8", start, start + len)))).toEqual(["1", null, "", "alice@example.com"]);
    expect(seen.map(([i]) => i)).toEqual([0, 1, 2, 3]);
  });

  it("rejects malformed DataRows in both decoders", () => {
    const good = tbody(encodeDataRow([Buffer.from("ab")]));
    const bad = [
      Buffer.alloc(1),
      Buffer.from([0, 2, 0, 0, 0, 1, 0x61]), // two columns claimed, one present
      Buffer.from([0, 1, 0xff, 0xff, 0xff, 0xfe]), // length -2
      Buffer.from([0, 1, 0, 0, 0, 9, 0x61]), // length beyond the body
      Buffer.concat([good, Buffer.from([0])]), // trailing byte
      Buffer.from([0xff, 0xff, 0, 0]), // count far beyond the body
    ];
    for (const b of bad) {
      expect(codeOf(() => decodeDataRow(b))).toBe("GW_PROTOCOL");
      expect(codeOf(() => forEachDataRowValue(b, () => undefined))).toBe("GW_PROTOCOL");
    }
  });

  it("parses row counts from command tags", () => {
    const cases: [string, number | undefined][] = [
      ["SELECT 5", 5],
      ["INSERT 0 3", 3],
      ["UPDATE 2", 2],
      ["DELETE 4", 4],
      ["MERGE 1", 1],
      ["FETCH 3", 3],
      ["MOVE 1", 1],
      ["COPY 10", 10],
      ["SELECT 0", 0],
      ["CREATE TABLE", undefined],
      ["BEGIN", undefined],
      ["INSERT 0", undefined],
      ["UPDATE x", undefined],
      ["SELECT 5 6", undefined],
      ["DROP 3", undefined],
    ];
    for (const [tag, rows] of cases) {
      const c = decodeCommandComplete(tbody(encodeCommandComplete(tag)));
      expect(c.tag).toBe(tag);
      expect(c.rows).toBe(rows);
      expect("rows" in c).toBe(rows !== undefined);
    }
  });

  it("decodes copy responses, notifications, protocol negotiation, parameter descriptions", () => {
    for (const kind of ["G", "H", "W"] as const) {
      const m = encodeCopyResponse(kind, 0, [0, 0, 0]);
      expect(String.fromCharCode(m[0]!)).toBe(kind);
      expect(decodeCopyResponse(tbody(m))).toEqual({ format: 0, columnFormats: [0, 0, 0] });
    }
    expect(codeOf(() => decodeCopyResponse(Buffer.from([2, 0, 0])))).toBe("GW_PROTOCOL");
    expect(decodeNotification(tbody(encodeNotification(12, "jobs", "{\"id\":1}")))).toEqual({ processId: 12, channel: "jobs", payload: "{\"id\":1}" });
    expect(decodeNegotiateProtocolVersion(tbody(encodeNegotiateProtocolVersion(0, ["_pq_.x"])))).toEqual({ minorVersion: 0, unrecognizedOptions: ["_pq_.x"] });
    expect(codeOf(() => decodeNegotiateProtocolVersion(raw(0, 1000000, "a\0")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeNegotiateProtocolVersion(raw(0, -1)))).toBe("GW_PROTOCOL");
    expect(decodeParameterDescription(tbody(encodeParameterDescription([23, 25, 0xfffffffe])))).toEqual([23, 25, 0xfffffffe]);
    expect(decodeFunctionCallResponse(raw(-1))).toBeNull();
    expect(decodeFunctionCallResponse(raw(2, "ok"))).toEqual(Buffer.from("ok"));
    expect(codeOf(() => decodeFunctionCallResponse(raw(3, "ok")))).toBe("GW_PROTOCOL");
  });
});

/** One encoded example of every backend message kind. */
const EXAMPLES: Buffer[] = [
  encodeAuthenticationOk(),
  encodeAuthenticationCleartextPassword(),
  encodeAuthenticationMD5Password(Buffer.from([9, 9, 9, 9])),
  encodeAuthenticationSASL(["SCRAM-SHA-256"]),
  encodeAuthenticationSASLContinue(Buffer.from("r=n,s=c2FsdA==,i=4096")),
  encodeAuthenticationSASLFinal(Buffer.from("v=c2ln")),
  encodeBackendKeyData(42, Buffer.from([1, 2, 3, 4])),
  encodeParameterStatus("client_encoding", "UTF8"),
  encodeReadyForQuery("I"),
  encodeReadyForQuery("T"),
  encodeReadyForQuery("E"),
  encodeErrorResponse({ severity: "ERROR", code: "42501", message: "airlock: no" }),
  encodeNoticeResponse({ severity: "WARNING", code: "01000", message: "careful" }),
  encodeRowDescription([{ name: "a", typeOid: 23, typeSize: 4 }, { name: "b" }]),
  encodeDataRow([Buffer.from("1"), null, Buffer.from("x")]),
  encodeCommandComplete("SELECT 1"),
  encodeEmptyQueryResponse(),
  encodeParseComplete(),
  encodeBindComplete(),
  encodeCloseComplete(),
  encodeNoData(),
  encodePortalSuspended(),
  encodeParameterDescription([23]),
  encodeCopyResponse("G", 0, [0]),
  encodeCopyResponse("H", 1, [1, 1]),
  encodeCopyResponse("W", 0, []),
  encodeNotification(1, "ch", "payload"),
  encodeNegotiateProtocolVersion(0, ["_pq_.compression"]),
];

describe("backend messages split at every byte", () => {
  it("frames each message identically for every split and in 1-byte chunks", () => {
    for (const m of EXAMPLES) {
      const reference = plain(frameChunks([m], { maxMessageBytes: 1 << 16 }));
      expect(reference).toEqual([{ type: m[0], bytes: m.toString("hex"), body: m.subarray(5).toString("hex") }]);
      for (const chunks of splitsInTwo(m)) expect(plain(frameChunks(chunks, { maxMessageBytes: 1 << 16 }))).toEqual(reference);
      expect(plain(frameChunks(byteChunks(m), { maxMessageBytes: 1 << 16 }))).toEqual(reference);
    }
  });
});

describe("backend decoder properties", () => {
  const decoders: ((b: Buffer) => unknown)[] = [
    decodeAuthentication,
    decodeBackendKeyData,
    decodeParameterStatus,
    decodeReadyForQuery,
    decodeErrorOrNotice,
    decodeRowDescription,
    decodeDataRow,
    (b) => forEachDataRowValue(b, () => undefined),
    decodeCommandComplete,
    decodeCopyResponse,
    decodeNotification,
    decodeNegotiateProtocolVersion,
    decodeParameterDescription,
    decodeFunctionCallResponse,
  ];

  // Property (b).
  it("every decoder returns or throws GatewayError on arbitrary bodies", () => {
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.tuple(fc.constantFrom(...EXAMPLES.map((m) => m.subarray(5))), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat()).map(([b, at, v, cut]) => {
        const c = Buffer.from(b);
        if (c.length > 0) c[at % c.length] = v;
        return c.subarray(0, cut % (c.length + 1));
      }),
    );
    for (const decode of decoders) {
      fc.assert(
        fc.property(bodies, (body) => {
          try {
            decode(body);
          } catch (e) {
            if (!(e instanceof GatewayError)) throw e;
            expect(e.code).toBe("GW_PROTOCOL");
          }
        }),
        { numRuns: 400 },
      );
    }
  });

  // Property (c).
  it("DataRow round-trips, and forEachDataRowValue agrees with decodeDataRow", () => {
    const values = fc.array(fc.option(fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)), { nil: null }), { maxLength: 30 });
    fc.assert(
      fc.property(values, (vs) => {
        const body = tbody(encodeDataRow(vs));
        expect(decodeDataRow(body)).toEqual(vs);
        const walked: (Buffer | null)[] = [];
        forEachDataRowValue(body, (_i, start, len) => walked.push(len < 0 ? null : body.subarray(start, start + len)));
        expect(walked).toEqual(vs);
      }),
    );
  });

  it("RowDescription round-trips", () => {
    const field = fc.record({
      name: protoString,
      tableOid: fc.integer({ min: 0, max: 0xffffffff }),
      columnAttr: fc.integer({ min: -32768, max: 32767 }),
      typeOid: fc.integer({ min: 0, max: 0xffffffff }),
      typeSize: fc.integer({ min: -32768, max: 32767 }),
      typeModifier: fc.integer({ min: -2147483648, max: 2147483647 }),
      format: fc.constantFrom(0, 1),
    });
    fc.assert(
      fc.property(fc.array(field, { maxLength: 12 }), (fields) => {
        expect(decodeRowDescription(tbody(encodeRowDescription(fields)))).toEqual(fields);
      }),
    );
  });

  it("ErrorResponse round-trips", () => {
    const text = fc.string({ unit: "binary", maxLength: 60 });
    const error = fc.record(
      {
        severity: fc.constantFrom("ERROR" as const, "FATAL" as const, "PANIC" as const),
        code: fc.stringMatching(/^[0-9A-Z]{5}$/),
        message: text,
        detail: text,
        hint: text,
        position: fc.integer({ min: 1, max: 100000 }),
      },
      { requiredKeys: ["severity", "code", "message"] },
    );
    fc.assert(
      fc.property(error, (e) => {
        const d = decodeErrorOrNotice(tbody(encodeErrorResponse(e)));
        const clean = (s: string): string => s.replaceAll("\0", "\uFFFD");
        expect(d.severity).toBe(e.severity);
        expect(d.fields.get("S")).toBe(e.severity);
        expect(d.code).toBe(e.code);
        expect(d.message).toBe(clean(e.message));
        expect(d.fields.get("D")).toBe(e.detail === undefined ? undefined : clean(e.detail));
        expect(d.fields.get("H")).toBe(e.hint === undefined ? undefined : clean(e.hint));
        expect(d.fields.get("P")).toBe(e.position === undefined ? undefined : String(e.position));
      }),
    );
  });
});
