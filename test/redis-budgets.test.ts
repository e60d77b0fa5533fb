/**
 * Row/byte budgets on Redis replies (issue 21): each reply counts as one row of its size on the
 * wire; once a budget is spent, the command is answered with an error instead of its reply
 * (pairing kept), and later commands are refused. A real redis-server, the gateway, ioredis.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startRedis, type RedisServer } from "./harness/redis.js";

let redis: RedisServer;
let gw: TestGateway;
let port: number;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", redis: "127.0.0.1:0" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "cache", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: redis.password, groups: ["agents"] }],
    budgets: [{ name: "cache-bytes", connections: ["cache"], groups: ["agents"], window: "1h", bytes: 2000, rows: 100 }],
  });
  port = gw.gw.addresses.redis?.port ?? 0;
}, 120_000);

afterAll(async () => {
  await gw.stop();
  await redis.stop();
});

describe("budgets on Redis replies", () => {
  it("a big reply that would pass the bytes budget is answered with an error; then commands are refused", async () => {
    const token = await gw.mint("agent");
    // No ready check: ioredis's INFO (about 5 KB) would spend the budget before the test starts.
    const c = new Redis({ host: "127.0.0.1", port, username: "cache", password: token, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await c.connect();
    try {
      await c.set("small", "x".repeat(100));
      await c.set("big", "y".repeat(5000));
      expect(await c.get("small")).toBe("x".repeat(100));
      await expect(c.get("big")).rejects.toThrow(/airlock: budget cache-bytes is spent: 2000 bytes per 1h/);
      // The session stays paired: a small reply still fits until the budget is spent.
      for (let i = 0; i < 20; i++) await c.get("small").catch(() => undefined);
      await expect(c.get("small")).rejects.toThrow(/budget cache-bytes is spent/);
      const list = (await gw.api("/v1/budgets")).body as { budgets: { budget: string; used: { bytes: number; rows: number } }[] };
      const b = list.budgets.find((x) => x.budget === "cache-bytes");
      expect(b?.used.bytes).toBeLessThanOrEqual(2000);
      expect(b?.used.rows).toBeGreaterThan(2);
    } finally {
      c.disconnect();
    }
  });
});
