import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LoopbackCorrelations, correlationAttributes, traceIdOf } from "./correlation.js";

describe("traceIdOf", () => {
  it("reads the trace id of a W3C traceparent", () => {
    expect(traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(traceIdOf("00-00000000000000000000000000000000-00f067aa0ba902b7-01")).toBeUndefined();
    expect(traceIdOf("garbage")).toBeUndefined();
  });
  it("accepts nothing but 32 hex digits as the id, for any input", () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => traceIdOf(s) === undefined || /^[0-9a-f]{32}$/.test(traceIdOf(s) ?? "")));
  });
  it("a malformed traceparent is not recorded", () => {
    expect(correlationAttributes({ requestId: "1", tool: "query", traceparent: "00-zz-1-1" })).toEqual({ via: "mcp", "mcp.tool": "query", "mcp.request": "1" });
  });
});

describe("LoopbackCorrelations", () => {
  it("applies an entry once, to the principal it was made for, from a loopback address only", () => {
    const c = new LoopbackCorrelations();
    c.expect(40000, "sa:agent", { requestId: "7", tool: "query", mcpSession: "s1" });
    expect(c.lookup("10.0.0.1:40000", "sa:agent")).toBeUndefined();
    expect(c.lookup("127.0.0.1:40000", "sa:other")).toBeUndefined();
    expect(c.lookup("127.0.0.1:40000", "sa:agent")).toEqual({ clientProtocol: "mcp", attributes: { via: "mcp", "mcp.tool": "query", "mcp.request": "7", "mcp.session": "s1" } });
    expect(c.lookup("127.0.0.1:40000", "sa:agent")).toBeUndefined();
  });
  it("a released entry is gone", () => {
    const c = new LoopbackCorrelations();
    const release = c.expect(40001, "sa:agent", { requestId: "1", tool: "exec" });
    release();
    expect(c.lookup("127.0.0.1:40001", "sa:agent")).toBeUndefined();
  });
});
