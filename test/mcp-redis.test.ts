/**
 * The MCP `redis` tool against a real Redis 7 through the gateway's own RESP listener: replies
 * masked, a denied command as a `denied` envelope naming the rule, and the target's password
 * never in any tool result. The SDK's client over Streamable HTTP.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "./harness/redis.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let redis: RedisServer;
let t: TestGateway;
let c: Client;

beforeAll(async () => {
  redis = await startRedis();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", redis: "127.0.0.1:0" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "cache", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: redis.password, groups: ["agents"] }],
    policies: [
      { name: "no-flush", connections: ["cache"], match: { commands: ["flushall", "flushdb"] }, action: "deny" },
      { name: "pii", connections: ["cache"], action: "mask", detectors: ["email"] },
    ],
  });
  await redis.cli(["SET", "user:1", "ann@example.com"]);
  const token = await t.mint("agent", "1h");
  c = new Client({ name: "mcp-redis-test", version: "1" });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${t.apiUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
}, 120_000);

afterAll(async () => {
  await c.close().catch(() => undefined);
  await t.stop();
  await redis.stop();
});

describe("redis tool", () => {
  it("is listed for a Redis connection, without the SQL tools", async () => {
    const names = (await c.listTools()).tools.map((x) => x.name);
    expect(names).toContain("redis");
    expect(names).not.toContain("query");
  });

  it("returns the reply, masked by the gateway", async () => {
    const r = await c.callTool({ name: "redis", arguments: { connection: "cache", command: ["GET", "user:1"] } });
    expect(r.structuredContent).toEqual({ status: "completed", connection: "cache", reply: "[EMAIL]" });
    const set = await c.callTool({ name: "redis", arguments: { connection: "cache", command: ["SET", "k", "v"] } });
    expect(set.structuredContent).toMatchObject({ status: "completed", reply: "OK" });
  });

  it("a denied command is a denied envelope naming the rule; nothing reached the target", async () => {
    const r = await c.callTool({ name: "redis", arguments: { connection: "cache", command: ["FLUSHALL"] } });
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: "denied", code: "GW_POLICY_DENIED", rule: "no-flush" });
    expect((await redis.cli(["GET", "user:1"])).stdout.trim()).toBe("ann@example.com");
  });

  it("a target error is failed with Redis' own error code; the target's password appears nowhere", async () => {
    const r = await c.callTool({ name: "redis", arguments: { connection: "cache", command: ["INCR", "user:1"] } });
    expect(r.structuredContent).toMatchObject({ status: "failed", code: "ERR" });
    for (const cmd of [["ACL", "WHOAMI"], ["CONFIG", "GET", "requirepass"], ["GET", "user:1"]]) {
      const x = await c.callTool({ name: "redis", arguments: { connection: "cache", command: cmd } });
      expect(JSON.stringify(x)).not.toContain(redis.password);
    }
  });
});
