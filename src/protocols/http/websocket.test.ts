import { describe, expect, it } from "vitest";
import type { HttpRequestHead } from "../../core/http-kind.js";
import type { SessionInfo } from "../../core/session.js";
import { isH2Preface } from "./h2.js";
import { WS_METHOD, messageEvent, messageFacts } from "./websocket.js";

describe("WebSocket messages as judged events", () => {
  it("a text message that parses is JSON, anything else opaque (a body rule then fails closed)", () => {
    const json = messageFacts(Buffer.from('{"op":"drop"}'), false);
    expect(json).toMatchObject({ state: "json", value: { op: "drop" }, bytes: 13 });
    expect(messageFacts(Buffer.from("drop users"), false)).toMatchObject({ state: "opaque", reason: "not_json", bytes: 10 });
    // Binary is never parsed, even when its bytes would be JSON.
    expect(messageFacts(Buffer.from('{"op":"drop"}'), true)).toMatchObject({ state: "opaque", reason: "not_json" });
  });

  it("is an http.request of method WS on the upgrade's path, with the message's digest in its text", () => {
    const head: HttpRequestHead = { method: "GET", path: "/ws", normalizedPath: "/ws", rawQuery: "room=1", query: [["room", "1"]], headers: {}, upgrade: "websocket" };
    const body = messageFacts(Buffer.from('{"a":1}'), false);
    const e = messageEvent({ type: "http.request", session: {} as SessionInfo, seq: 3, path: "/ws", query: head.query, headers: {} }, head, body);
    expect(e).toMatchObject({ type: "http.request", method: WS_METHOD, path: "/ws", seq: 3 });
    expect(e.type === "http.request" ? e.text : "").toMatch(/^WS \/ws\?room=1\nmessage: 7 bytes JSON, sha256 [0-9a-f]{64}$/);
  });
});

describe("HTTP/2 preface sniffing", () => {
  it("knows the client preface, even cut short, and nothing else", () => {
    expect(isH2Preface(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))).toBe(true);
    expect(isH2Preface(Buffer.from("PRI * H"))).toBe(true);
    expect(isH2Preface(Buffer.from("GET / HTTP/1.1\r\n"))).toBe(false);
    expect(isH2Preface(Buffer.from("PRIX"))).toBe(false);
    expect(isH2Preface(Buffer.from("PR"))).toBe(false);
  });
});
