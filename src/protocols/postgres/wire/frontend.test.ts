import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { GatewayError } from "../../../core/errors.js";
import {
  CANCEL_REQUEST_CODE,
  FrontendType,
  GSSENC_REQUEST_CODE,
  PROTOCOL_VERSION_3_0,
  PROTOCOL_VERSION_3_2,
  SSL_REQUEST_CODE,
  STARTUP_LIMITS,
  decodeBind,
  decodeClose,
  decodeCopyFail,
  decodeDescribe,
  decodeExecute,
  decodeFunctionCall,
  decodeParse,
  decodePassword,
  decodeQuery,
  decodeSASLInitialResponse,
  decodeStartupPacket,
  encodeBind,
  encodeCancelRequest,
  encodeClose,
  encodeCopyData,
  encodeCopyDone,
  encodeCopyFail,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeFunctionCall,
  encodeGSSENCRequest,
  encodeParse,
  encodePasswordMessage,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
} from "./frontend.js";
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

/** Body of an encoded tagged message (after type byte and length). */
function tbody(m: Buffer): Buffer {
  expect(m.readInt32BE(1)).toBe(m.length - 1);
  return m.subarray(5);
}

/** Body of an encoded untagged message (after the length). */
function ubody(m: Buffer): Buffer {
  expect(m.readInt32BE(0)).toBe(m.length);
  return m.subarray(4);
}

/** A raw startup body: version/code then NUL-separated strings given verbatim. */
function rawStartup(code: number, tail: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(code, 0);
  return Buffer.concat([b, Buffer.from(tail, "utf8")]);
}

/** Strings the protocol can carry: any code point except NUL. */
const protoString = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\0"));
const bytesValue = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

describe("decodeStartupPacket", () => {
  it("decodes a StartupMessage with its parameters in order", () => {
    const m = encodeStartupMessage({ user: "bob", database: "orders", application_name: "psql" });
    const p = decodeStartupPacket(ubody(m));
    expect(p).toEqual({
      kind: "startup",
      protocolVersion: PROTOCOL_VERSION_3_0,
      minorVersion: 0,
      params: new Map([
        ["user", "bob"],
        ["database", "orders"],
        ["application_name", "psql"],
      ]),
    });
  });

  it("accepts 3.x minor versions and reports them", () => {
    const p = decodeStartupPacket(ubody(encodeStartupMessage(new Map([["user", "u"]]), PROTOCOL_VERSION_3_2)));
    expect(p.kind === "startup" && p.minorVersion).toBe(2);
    expect(p.kind === "startup" && p.protocolVersion).toBe(196610);
  });

  it("decodes SSLRequest, GSSENCRequest and CancelRequest", () => {
    expect(decodeStartupPacket(ubody(encodeSSLRequest()))).toEqual({ kind: "ssl_request" });
    expect(decodeStartupPacket(ubody(encodeGSSENCRequest()))).toEqual({ kind: "gssenc_request" });
    for (const len of [4, 32, 256]) {
      const key = Buffer.alloc(len, 7);
      const p = decodeStartupPacket(ubody(encodeCancelRequest(4242, key)));
      expect(p).toEqual({ kind: "cancel", processId: 4242, secretKey: key });
    }
  });

  it("copies the cancel key out of the packet", () => {
    const body = ubody(encodeCancelRequest(1, Buffer.from([1, 2, 3, 4])));
    const p = decodeStartupPacket(body);
    body.fill(0);
    expect(p.kind === "cancel" && [...p.secretKey]).toEqual([1, 2, 3, 4]);
  });

  it("rejects malformed startup packets", () => {
    const bad: [Buffer, string][] = [
      [Buffer.alloc(2), "GW_PROTOCOL"], // no code
      [rawStartup(SSL_REQUEST_CODE, "x"), "GW_PROTOCOL"], // trailing bytes
      [rawStartup(GSSENC_REQUEST_CODE, "\0"), "GW_PROTOCOL"],
      [Buffer.concat([rawStartup(CANCEL_REQUEST_CODE, ""), Buffer.from([0, 0, 0, 1, 9, 9, 9])]), "GW_PROTOCOL"], // 3-byte key
      [Buffer.concat([rawStartup(CANCEL_REQUEST_CODE, ""), Buffer.from([0, 0, 0, 1]), Buffer.alloc(257)]), "GW_PROTOCOL"],
      [rawStartup(80877199, ""), "GW_PROTOCOL"], // unknown request code
      [rawStartup(0x20000, "user\0u\0\0"), "GW_UNSUPPORTED"], // protocol 2.0
      [rawStartup(0x40000, "user\0u\0\0"), "GW_UNSUPPORTED"],
      [rawStartup(PROTOCOL_VERSION_3_0, ""), "GW_PROTOCOL"], // no terminator
      [rawStartup(PROTOCOL_VERSION_3_0, "user\0u\0"), "GW_PROTOCOL"], // no terminator
      [rawStartup(PROTOCOL_VERSION_3_0, "user\0u"), "GW_PROTOCOL"], // value without NUL
      [rawStartup(PROTOCOL_VERSION_3_0, "user\0u\0\0x"), "GW_PROTOCOL"], // garbage after terminator
      [rawStartup(PROTOCOL_VERSION_3_0, "user\0a\0user\0b\0\0"), "GW_PROTOCOL"], // repeated name
      [Buffer.concat([rawStartup(PROTOCOL_VERSION_3_0, "user\0"), Buffer.from([0xc3, 0x28, 0, 0])]), "GW_PROTOCOL"], // bad UTF-8
    ];
    for (const [body, code] of bad) expect(codeOf(() => decodeStartupPacket(body))).toBe(code);
  });

  it("enforces the documented startup limits", () => {
    const many = Array.from({ length: STARTUP_LIMITS.maxParams + 1 }, (_, i) => `k${i}\0v\0`).join("");
    expect(codeOf(() => decodeStartupPacket(rawStartup(PROTOCOL_VERSION_3_0, many + "\0")))).toBe("GW_LIMIT");
    const exactly = Array.from({ length: STARTUP_LIMITS.maxParams }, (_, i) => `k${i}\0v\0`).join("");
    expect(codeOf(() => decodeStartupPacket(rawStartup(PROTOCOL_VERSION_3_0, exactly + "\0")))).toBe("no error");
    const longKey = "k".repeat(STARTUP_LIMITS.maxKeyBytes + 1);
    expect(codeOf(() => decodeStartupPacket(rawStartup(PROTOCOL_VERSION_3_0, `${longKey}\0v\0\0`)))).toBe("GW_LIMIT");
    const longValue = "v".repeat(STARTUP_LIMITS.maxValueBytes + 1);
    expect(codeOf(() => decodeStartupPacket(rawStartup(PROTOCOL_VERSION_3_0, `options\0${longValue}\0\0`)))).toBe("GW_LIMIT");
    const maxValue = "v".repeat(STARTUP_LIMITS.maxValueBytes);
    expect(codeOf(() => decodeStartupPacket(rawStartup(PROTOCOL_VERSION_3_0, `options\0${maxValue}\0\0`)))).toBe("no error");
  });
});

describe("tagged frontend messages", () => {
  it("round-trips Query, Parse, Describe, Close, Execute, CopyFail", () => {
    expect(decodeQuery(tbody(encodeQuery("select 'é', 1")))).toEqual({ sql: "select 'é', 1" });
    expect(decodeParse(tbody(encodeParse("s1", "select $1::int, $2", [23, 0])))).toEqual({ name: "s1", sql: "select $1::int, $2", paramTypes: [23, 0] });
    expect(decodeParse(tbody(encodeParse("", "select 1")))).toEqual({ name: "", sql: "select 1", paramTypes: [] });
    expect(decodeParse(tbody(encodeParse("", "x", [0xffffffff])))).toEqual({ name: "", sql: "x", paramTypes: [0xffffffff] });
    expect(decodeDescribe(tbody(encodeDescribe("S", "s1")))).toEqual({ kind: "S", name: "s1" });
    expect(decodeDescribe(tbody(encodeDescribe("P")))).toEqual({ kind: "P", name: "" });
    expect(decodeClose(tbody(encodeClose("P", "c")))).toEqual({ kind: "P", name: "c" });
    expect(decodeExecute(tbody(encodeExecute("p", 100)))).toEqual({ portal: "p", maxRows: 100 });
    expect(decodeCopyFail(tbody(encodeCopyFail("client gave up")))).toEqual({ message: "client gave up" });
  });

  it("writes the right type bytes", () => {
    expect(encodeQuery("x")[0]).toBe(FrontendType.Query);
    expect(encodeParse("", "x")[0]).toBe(FrontendType.Parse);
    expect(encodeBind({ params: [] })[0]).toBe(FrontendType.Bind);
    expect(encodeSync()).toEqual(Buffer.from([0x53, 0, 0, 0, 4]));
    expect(encodeFlush()).toEqual(Buffer.from([0x48, 0, 0, 0, 4]));
    expect(encodeTerminate()).toEqual(Buffer.from([0x58, 0, 0, 0, 4]));
    expect(encodeCopyDone()).toEqual(Buffer.from([0x63, 0, 0, 0, 4]));
    expect(encodeSSLRequest()).toEqual(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
  });

  it("decodes Bind with NULLs, binary values as subarrays, and formats", () => {
    const m = encodeBind({
      portal: "p1",
      statement: "s1",
      paramFormats: [0, 1, 0],
      params: [Buffer.from("42"), Buffer.from([0, 1, 2]), null],
      resultFormats: [1],
    });
    const body = tbody(m);
    const b = decodeBind(body);
    expect(b.portal).toBe("p1");
    expect(b.statement).toBe("s1");
    expect(b.paramFormats).toEqual([0, 1, 0]);
    expect(b.params).toEqual([Buffer.from("42"), Buffer.from([0, 1, 2]), null]);
    expect(b.resultFormats).toEqual([1]);
    // Values are views of the body, not copies.
    expect(b.params[0]?.buffer).toBe(body.buffer);
    body[body.indexOf("42")] = 0x39;
    expect(b.params[0]?.toString()).toBe("92");
  });

  it("rejects malformed Bind messages", () => {
    const good = tbody(encodeBind({ params: [Buffer.from("a")] }));
    // portal "", statement "", 0 formats, 1 param: length then value, 0 result formats
    const withLength = (len: number): Buffer => {
      const b = Buffer.from(good);
      b.writeInt32BE(len, 6);
      return b;
    };
    expect(codeOf(() => decodeBind(good))).toBe("no error");
    expect(codeOf(() => decodeBind(withLength(-2)))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeBind(withLength(1000)))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeBind(Buffer.concat([good, Buffer.from([0])])))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeBind(good.subarray(0, good.length - 1)))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeBind(Buffer.from("portal-without-nul")))).toBe("GW_PROTOCOL");
    // A parameter count that cannot fit the body.
    const lying = Buffer.from([0, 0, 0, 0, 0xff, 0xff]);
    expect(codeOf(() => decodeBind(lying))).toBe("GW_PROTOCOL");
    // Two format codes for three parameters.
    const mismatch = encodeBind({ paramFormats: [0, 1], params: [null, null, null] });
    expect(codeOf(() => decodeBind(tbody(mismatch)))).toBe("GW_PROTOCOL");
    // Format code 2 does not exist.
    const badFormat = encodeBind({ paramFormats: [2], params: [null] });
    expect(codeOf(() => decodeBind(tbody(badFormat)))).toBe("GW_PROTOCOL");
  });

  it("rejects malformed Parse, Describe, Execute and Query messages", () => {
    expect(codeOf(() => decodeParse(Buffer.from("s\0select 1\0\0\x02\0\0\0\x17", "latin1")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeParse(Buffer.from("s\0select 1\0", "latin1")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeDescribe(Buffer.from("Xname\0")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeDescribe(Buffer.alloc(0)))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeExecute(Buffer.from("p\0\0\0")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeQuery(Buffer.from("select 1")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeQuery(Buffer.from("select 1\0; drop table t\0")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodeQuery(Buffer.from([0x73, 0xff, 0xfe, 0])))).toBe("GW_PROTOCOL");
  });

  it("decodes PasswordMessage bytes and SASLInitialResponse", () => {
    const pw = decodePassword(tbody(encodePasswordMessage("hunter2")));
    expect(pw.toString()).toBe("hunter2");
    expect(decodePassword(tbody(encodePasswordMessage(Buffer.from([0xff, 1])))).equals(Buffer.from([0xff, 1]))).toBe(true);
    expect(codeOf(() => decodePassword(Buffer.from("abc")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodePassword(Buffer.from("ab\0c\0")))).toBe("GW_PROTOCOL");
    expect(codeOf(() => decodePassword(Buffer.alloc(0)))).toBe("GW_PROTOCOL");

    const init = decodeSASLInitialResponse(tbody(encodeSASLInitialResponse("SCRAM-SHA-256", Buffer.from("n,,n=,r=abc"))));
    expect(init).toEqual({ mechanism: "SCRAM-SHA-256", data: Buffer.from("n,,n=,r=abc") });
    expect(decodeSASLInitialResponse(tbody(encodeSASLInitialResponse("M", null)))).toEqual({ mechanism: "M", data: null });
    expect(tbody(encodeSASLResponse(Buffer.from("c=biws")))).toEqual(Buffer.from("c=biws"));
  });

  it("never echoes a password in its errors", () => {
    try {
      decodePassword(Buffer.from("topsecret-no-terminator"));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GatewayError);
      expect((e as Error).message).not.toContain("topsecret");
    }
    try {
      encodePasswordMessage("top\0secret");
      expect.unreachable();
    } catch (e) {
      expect((e as GatewayError).code).toBe("GW_PROTOCOL");
      expect((e as Error).message).not.toContain("secret");
    }
  });

  it("decodes FunctionCall enough to identify it", () => {
    const m = encodeFunctionCall({ functionOid: 1255, argFormats: [1], args: [Buffer.from([0, 0, 0, 1]), null], resultFormat: 1 });
    const f = decodeFunctionCall(tbody(m));
    expect(f.functionOid).toBe(1255);
    expect(f.argCount).toBe(2);
    expect(f.args).toEqual([Buffer.from([0, 0, 0, 1]), null]);
    expect(f.resultFormat).toBe(1);
    expect(codeOf(() => decodeFunctionCall(tbody(m).subarray(0, 6)))).toBe("GW_PROTOCOL");
  });

  it("refuses to encode strings with NUL and out-of-range numbers", () => {
    expect(codeOf(() => encodeQuery("select 1\0; drop table x"))).toBe("GW_PROTOCOL");
    expect(codeOf(() => encodeParse("a\0", "x"))).toBe("GW_PROTOCOL");
    expect(codeOf(() => encodeStartupMessage({ "": "x" }))).toBe("GW_PROTOCOL");
    expect(codeOf(() => encodeStartupMessage({ user: "a\0b" }))).toBe("GW_PROTOCOL");
    expect(codeOf(() => encodeParse("", "x", [-1]))).toBe("GW_PROTOCOL");
    expect(codeOf(() => encodeExecute("", 2 ** 31))).toBe("GW_PROTOCOL");
    expect(codeOf(() => encodeCancelRequest(1, Buffer.alloc(3)))).toBe("GW_PROTOCOL");
    expect(codeOf(() => encodeBind({ params: new Array<null>(70000).fill(null) }))).toBe("GW_LIMIT");
  });
});

/** One encoded example of every frontend message kind. */
const TAGGED_EXAMPLES: Buffer[] = [
  encodeQuery("select * from t where a = 'x'"),
  encodeParse("stmt", "insert into t values ($1, $2)", [23, 25]),
  encodeBind({ portal: "p", statement: "stmt", paramFormats: [1], params: [Buffer.from([1, 2, 3, 4]), null], resultFormats: [0, 1] }),
  encodeDescribe("S", "stmt"),
  encodeExecute("p", 10),
  encodeClose("S", "stmt"),
  encodeSync(),
  encodeFlush(),
  encodeTerminate(),
  encodePasswordMessage("pw"),
  encodeSASLInitialResponse("SCRAM-SHA-256", Buffer.from("n,,n=,r=xyz")),
  encodeSASLResponse(Buffer.from("c=biws,r=xyz,p=abc")),
  encodeCopyData(Buffer.from("1\tfoo\n")),
  encodeCopyDone(),
  encodeCopyFail("nope"),
  encodeFunctionCall({ functionOid: 99, args: [Buffer.from("x")] }),
];

const UNTAGGED_EXAMPLES: Buffer[] = [
  encodeStartupMessage({ user: "agent", database: "orders", client_encoding: "UTF8" }),
  encodeSSLRequest(),
  encodeGSSENCRequest(),
  encodeCancelRequest(1234, Buffer.from([9, 8, 7, 6])),
];

describe("frontend messages split at every byte", () => {
  it("frames each tagged message identically for every split and in 1-byte chunks", () => {
    for (const m of TAGGED_EXAMPLES) {
      const reference = plain(frameChunks([m], { maxMessageBytes: 1 << 16 }));
      expect(reference).toHaveLength(1);
      expect(reference[0]?.bytes).toBe(m.toString("hex"));
      for (const chunks of splitsInTwo(m)) expect(plain(frameChunks(chunks, { maxMessageBytes: 1 << 16 }))).toEqual(reference);
      expect(plain(frameChunks(byteChunks(m), { maxMessageBytes: 1 << 16 }))).toEqual(reference);
    }
  });

  it("frames each startup-phase message identically for every split and in 1-byte chunks", () => {
    for (const m of UNTAGGED_EXAMPLES) {
      const options = { maxMessageBytes: 1 << 16, untagged: true } as const;
      const reference = plain(frameChunks([m], options));
      expect(reference).toEqual([{ type: 0, bytes: m.toString("hex"), body: m.subarray(4).toString("hex") }]);
      for (const chunks of splitsInTwo(m)) expect(plain(frameChunks(chunks, options))).toEqual(reference);
      expect(plain(frameChunks(byteChunks(m), options))).toEqual(reference);
      expect(() => decodeStartupPacket(m.subarray(4))).not.toThrow();
    }
  });
});

describe("frontend decoder properties", () => {
  const decoders: [string, (b: Buffer) => unknown][] = [
    ["startup", decodeStartupPacket],
    ["Query", decodeQuery],
    ["Parse", decodeParse],
    ["Bind", decodeBind],
    ["Describe", decodeDescribe],
    ["Close", decodeClose],
    ["Execute", decodeExecute],
    ["Password", decodePassword],
    ["SASLInitialResponse", decodeSASLInitialResponse],
    ["CopyFail", decodeCopyFail],
    ["FunctionCall", decodeFunctionCall],
  ];

  // Property (b): arbitrary bodies decode or throw GatewayError, nothing else.
  it("every decoder returns or throws GatewayError on arbitrary bodies", () => {
    // Bias towards near-valid bodies: mutations of real messages find deeper paths than noise.
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc
        .tuple(fc.constantFrom(...TAGGED_EXAMPLES.map(tbody), ...UNTAGGED_EXAMPLES.map(ubody)), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat())
        .map(([b, at, v, cut]) => {
          const c = Buffer.from(b);
          if (c.length > 0) c[at % c.length] = v;
          return c.subarray(0, c.length === 0 ? 0 : cut % (c.length + 1));
        }),
    );
    for (const [, decode] of decoders) {
      fc.assert(
        fc.property(bodies, (body) => {
          try {
            decode(body);
          } catch (e) {
            if (!(e instanceof GatewayError)) throw e;
            expect(["GW_PROTOCOL", "GW_LIMIT", "GW_UNSUPPORTED"]).toContain(e.code);
          }
        }),
        { numRuns: 400 },
      );
    }
  });

  // Property (c): decode(encode(m)) = m.
  it("Query round-trips", () => {
    fc.assert(
      fc.property(protoString, (sql) => {
        expect(decodeQuery(tbody(encodeQuery(sql)))).toEqual({ sql });
      }),
    );
  });

  it("Parse round-trips", () => {
    fc.assert(
      fc.property(protoString, protoString, fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 20 }), (name, sql, paramTypes) => {
        expect(decodeParse(tbody(encodeParse(name, sql, paramTypes)))).toEqual({ name, sql, paramTypes });
      }),
    );
  });

  it("Bind round-trips", () => {
    const bind = fc
      .record({
        portal: protoString,
        statement: protoString,
        params: fc.array(fc.option(bytesValue, { nil: null }), { maxLength: 10 }),
        resultFormats: fc.array(fc.constantFrom(0, 1), { maxLength: 5 }),
        formatMode: fc.constantFrom("none", "one", "each"),
        format: fc.constantFrom(0, 1),
      })
      .map((r) => ({
        portal: r.portal,
        statement: r.statement,
        params: r.params,
        resultFormats: r.resultFormats,
        paramFormats: r.formatMode === "none" ? [] : r.formatMode === "one" ? [r.format] : r.params.map(() => r.format),
      }));
    fc.assert(
      fc.property(bind, (m) => {
        expect(decodeBind(tbody(encodeBind(m)))).toEqual(m);
      }),
    );
  });

  it("StartupMessage round-trips", () => {
    const params = fc.uniqueArray(fc.tuple(protoString.filter((k) => k !== ""), protoString), {
      maxLength: 20,
      selector: ([k]) => k,
    });
    fc.assert(
      fc.property(params, fc.integer({ min: 0, max: 0xffff }), (entries, minor) => {
        const version = (3 << 16) | minor;
        const p = decodeStartupPacket(ubody(encodeStartupMessage(new Map(entries), version)));
        expect(p).toEqual({ kind: "startup", protocolVersion: version, minorVersion: minor, params: new Map(entries) });
      }),
    );
  });
});
