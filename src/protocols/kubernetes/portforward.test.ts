import { describe, expect, it } from "vitest";
import { PortForwardInspector, portForwardForm, portForwardPorts } from "./portforward.js";
import { controlFrame, dataFrame, encodeHeaderBlock, FLAG_FIN, HeaderDeflater, SYN_STREAM } from "./wire/spdy.js";
import { WS_BINARY, WS_TEXT, WsFrameReader } from "./wire/ws-frame.js";

/** A client's SYN_STREAM for a port-forward stream (header block compressed on `d`'s context). */
function syn(d: HeaderDeflater, streamId: number, type: string, port: string, requestId: string): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(streamId, 0);
  return controlFrame(SYN_STREAM, 0, Buffer.concat([fixed, d.compress(encodeHeaderBlock([["streamtype", type], ["port", port], ["requestid", requestId]]))]));
}

/** A masked client WebSocket frame (as gorilla/websocket writes it). */
function masked(opcode: number, payload: Buffer): Buffer {
  const key = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.from(payload.map((b, i) => b ^ (key[i & 3] ?? 0)));
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  return Buffer.concat([head, key, body]);
}

describe("port-forward requests", () => {
  it("reads the ports query and refuses what is not a port", () => {
    expect(portForwardPorts("ports=8080,9090&ports=22")).toEqual([8080, 9090, 22]);
    expect(portForwardPorts("timeout=20s")).toEqual([]);
    expect(() => portForwardPorts("ports=80x")).toThrow(/not a port/);
    expect(() => portForwardPorts("ports=70000")).toThrow(/not a port/);
  });

  it("tells the two forms apart and refuses others", () => {
    expect(portForwardForm("websocket", "SPDY/3.1+portforward.k8s.io", undefined)).toBe("websocket");
    expect(portForwardForm("spdy/3.1", undefined, "portforward.k8s.io")).toBe("spdy");
    expect(portForwardForm("websocket", "v4.channel.k8s.io", undefined)).toBeInstanceOf(Error);
    expect(portForwardForm("spdy/3.1", undefined, "v4.channel.k8s.io")).toBeInstanceOf(Error);
    expect(portForwardForm(undefined, undefined, undefined)).toBeInstanceOf(Error);
  });
});

describe("PortForwardInspector", () => {
  it("passes whole frames on, counts DATA of data streams each way, and learns the ports", async () => {
    const d = new HeaderDeflater();
    const i = new PortForwardInspector("spdy", []);
    const all = Buffer.concat([syn(d, 1, "error", "7000", "0"), syn(d, 3, "data", "7000", "0"), dataFrame(1, FLAG_FIN, Buffer.alloc(0)), dataFrame(3, 0, Buffer.from("hello"))]);
    // Split mid-frame: nothing incomplete goes on.
    const a = await i.fromClient(all.subarray(0, 30));
    const b = await i.fromClient(all.subarray(30));
    expect(Buffer.concat([a, b]).equals(all)).toBe(true);
    expect(a.length).toBeLessThan(30);
    i.fromServer(dataFrame(3, 0, Buffer.from("HELLO!")));
    i.fromServer(dataFrame(1, 0, Buffer.from("an error text is not forwarded data")));
    expect([...i.ports]).toEqual([7000]);
    expect(i.connections).toBe(1);
    expect(i.bytesFromClient).toBe(5);
    expect(i.bytesToClient).toBe(6);
    i.close();
  });

  it("a stream to a port the judged request did not name ends the tunnel before its SYN_STREAM goes on", async () => {
    const d = new HeaderDeflater();
    const i = new PortForwardInspector("spdy", [7000]);
    expect((await i.fromClient(syn(d, 1, "error", "7000", "0"))).length).toBeGreaterThan(0);
    await expect(i.fromClient(syn(d, 3, "error", "22", "1"))).rejects.toThrow(/port 22 refused/);
    i.close();
  });

  it("refuses streams of unknown types or without a port", async () => {
    const d = new HeaderDeflater();
    const i = new PortForwardInspector("spdy", []);
    await expect(i.fromClient(syn(d, 1, "stdin", "7000", "0"))).rejects.toThrow(/unknown type/);
    const j = new PortForwardInspector("spdy", []);
    await expect(j.fromClient(syn(new HeaderDeflater(), 1, "data", "x", "0"))).rejects.toThrow(/valid port/);
    i.close();
    j.close();
  });

  it("reads SPDY inside masked WebSocket frames, a SYN_STREAM split across two of them included", async () => {
    const d = new HeaderDeflater();
    const i = new PortForwardInspector("websocket", [7000]);
    const s = syn(d, 1, "data", "22", "0");
    const first = await i.fromClient(masked(WS_BINARY, s.subarray(0, 12)));
    expect(new WsFrameReader().push(first).length).toBe(1); // the first half goes on: it opens nothing
    await expect(i.fromClient(masked(WS_BINARY, s.subarray(12)))).rejects.toThrow(/port 22 refused/);
    const k = new PortForwardInspector("websocket", []);
    await expect(k.fromClient(masked(WS_TEXT, Buffer.from("hi")))).rejects.toThrow(/binary/);
    i.close();
    k.close();
  });
});
