import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { McpConnection } from "../core/connection.js";
import { DirectDialer } from "./dialer.js";
import { testConnection } from "./connection-test.js";

const deps = { dialer: new DirectDialer(), resolveSecret: () => Promise.reject(new Error("no secrets here")), timeoutMs: 2000, maxMessageBytes: 1 << 20 };

function mcp(upstream: McpConnection["upstream"]): McpConnection {
  return { type: "mcp", name: "m", upstream, groups: [], pinning: "admin", rateLimits: [], timeoutMs: 1000 };
}

describe("test connection: MCP upstreams", () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("a stdio upstream: its program must exist and be executable (it is not started)", async () => {
    const ok = await testConnection(mcp({ transport: "stdio", command: process.execPath, args: [], env: {} }), deps);
    expect(ok).toMatchObject({ ok: true, checked: "command" });
    const onPath = await testConnection(mcp({ transport: "stdio", command: "sh", args: [], env: {} }), deps);
    expect(onPath.ok).toBe(true);
    const missing = await testConnection(mcp({ transport: "stdio", command: "/nonexistent/airlock-mcp-server", args: [], env: {} }), deps);
    expect(missing).toMatchObject({ ok: false, checked: "command", code: "ENOENT" });
  });

  it("an HTTP upstream: the server must accept a TCP connection", async () => {
    const ok = await testConnection(mcp({ transport: "http", url: `http://127.0.0.1:${port}/mcp`, auth: { type: "none" } }), deps);
    expect(ok).toMatchObject({ ok: true, checked: "tcp" });
    const closed = await new Promise<number>((r) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => r(p));
      });
    });
    const refused = await testConnection(mcp({ transport: "http", url: `http://127.0.0.1:${closed}/mcp`, auth: { type: "none" } }), deps);
    expect(refused).toMatchObject({ ok: false, checked: "tcp", code: "GW_UPSTREAM_UNAVAILABLE" });
  });
});
