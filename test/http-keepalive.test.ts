/**
 * A kept-alive target connection the target drops while idle (RFC 9112 §9.3.1): the gateway
 * sends an idempotent request once more on a fresh connection, never a POST. The target here
 * is a raw TCP server that answers the first request of each connection (keep-alive) and drops
 * the connection on the second, as a server whose idle timer fired just then does.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let target: Server;
let gw: TestGateway;
let base = "";
const requests: string[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  target = createServer((socket) => {
    sockets.add(socket);
    let n = 0;
    let buf = "";
    socket.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      while (buf.includes("\r\n\r\n")) {
        const head = buf.slice(0, buf.indexOf("\r\n\r\n"));
        const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? "0");
        if (buf.length < head.length + 4 + len) return;
        buf = buf.slice(head.length + 4 + len);
        requests.push(head.split("\r\n")[0] ?? "");
        if (++n > 1) return void socket.resetAndDestroy();
        socket.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\nok\n");
      }
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "t", type: "http", baseUrl: `http://127.0.0.1:${(target.address() as AddressInfo).port}`, groups: ["agents"] }],
  });
  base = `http://127.0.0.1:${gw.gw.addresses.http?.port ?? 0}/t`;
}, 60_000);

afterAll(async () => {
  await gw.stop();
  for (const s of sockets) s.destroy();
  target.close();
});

describe("a target connection dropped while kept alive", () => {
  it("GET is sent again on a fresh connection; POST is not (502)", async () => {
    const token = await gw.mint("agent");
    const h = { authorization: `Bearer ${token}` };
    expect((await fetch(`${base}/a`, { headers: h })).status).toBe(200);
    // Reuses the kept-alive connection, which the target drops: retried once, answered.
    const again = await fetch(`${base}/b`, { headers: h });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe("ok\n");
    expect(requests.filter((r) => r.startsWith("GET /b"))).toHaveLength(2);
    // A POST on the (again kept-alive) connection is not sent twice.
    const post = await fetch(`${base}/c`, { method: "POST", headers: { ...h, "content-type": "application/json" }, body: "{}" });
    expect(post.status).toBe(502);
    expect(post.headers.get("x-airlock-refusal")).toBe("GW_UPSTREAM_UNAVAILABLE");
    expect(requests.filter((r) => r.startsWith("POST /c"))).toHaveLength(1);
  });
});
