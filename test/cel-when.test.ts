/**
 * CEL `when:` on HTTP and Redis policies (issue 21), through real clients: curl against a real
 * local API (test/harness/http-upstream.ts) and redis-cli against a real redis-server. The
 * facts of each kind (HTTP method, path, query, headers; Redis command, keys) and the common
 * ones (principal, groups, budget counters) decide whether a policy applies.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";
import { runProcess, startRedis, type RedisServer } from "./harness/redis.js";

let up: Upstream;
let redis: RedisServer;
let gw: TestGateway;
let httpBase: string;
let redisPort: number;

beforeAll(async () => {
  up = await startUpstream();
  redis = await startRedis();
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0", redis: "127.0.0.1:0" },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "ops", groups: ["agents", "ops"] },
    ],
    connections: [
      { name: "api", type: "http", baseUrl: up.url, groups: ["agents"] },
      { name: "cache", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: redis.password, groups: ["agents"] },
    ],
    budgets: [{ name: "api-calls", connections: ["api"], groups: ["agents"], window: "1h", statements: 1000 }],
    policies: [
      {
        name: "users-only-for-ops",
        connections: ["api"],
        match: { methods: ["*"] },
        when: 'path.startsWith("/users") && !("ops" in groups)',
        action: "deny",
        message: "only ops may list users",
      },
      {
        name: "no-debug-query",
        connections: ["api"],
        match: { methods: ["GET"] },
        when: '"debug" in query && query["debug"] == "1"',
        action: "deny",
      },
      {
        name: "calls-budget-soft-stop",
        connections: ["api"],
        match: { methods: ["*"] },
        when: '"api-calls" in budgets && budgets["api-calls"]["statements"] >= 6 && method != "GET"',
        action: "deny",
        message: "over six calls this hour: reads only",
      },
      {
        name: "session-keys-for-ops",
        connections: ["cache"],
        match: { commands: ["*"] },
        when: 'keys.exists(k, k.startsWith("session:")) && !("ops" in groups)',
        action: "deny",
        message: "session keys are for ops",
      },
      { name: "no-flush-for-agents", connections: ["cache"], match: { commands: ["flushall", "flushdb"] }, when: 'command == "flushdb" || principal.name == "agent"', action: "deny" },
    ],
  });
  httpBase = `http://127.0.0.1:${gw.gw.addresses.http?.port ?? 0}`;
  redisPort = gw.gw.addresses.redis?.port ?? 0;
}, 120_000);

afterAll(async () => {
  await gw.stop();
  await redis.stop();
  await up.stop();
});

async function curl(token: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess("curl", ["-sS", "--max-time", "20", "-H", `Authorization: Bearer ${token}`, ...args]);
}

async function cli(token: string, args: readonly string[]): Promise<string> {
  const r = await runProcess("redis-cli", ["-h", "127.0.0.1", "-p", String(redisPort), "--user", "cache", "--pass", token, "--no-auth-warning", ...args]);
  return r.stdout + r.stderr;
}

describe("CEL when: on HTTP (curl)", () => {
  it("judges path and groups: an agent is refused /users, ops is served", async () => {
    const agent = await gw.mint("agent");
    const refused = await curl(agent, ["-w", "\\n%{http_code}", `${httpBase}/api/users`]);
    expect(refused.stdout).toMatch(/only ops may list users/);
    expect(refused.stdout.trim().endsWith("403")).toBe(true);
    const ops = await gw.mint("ops");
    const served = await curl(ops, [`${httpBase}/api/users`]);
    expect(served.stdout).toContain("Ana");
  });

  it("judges the query: ?debug=1 is refused naming the rule, ?debug=0 is not", async () => {
    const ops = await gw.mint("ops");
    const refused = await curl(ops, [`${httpBase}/api/echo?debug=1`]);
    expect(refused.stdout).toMatch(/no-debug-query/);
    const served = await curl(ops, ["-w", "\\n%{http_code}", `${httpBase}/api/echo?debug=0`]);
    expect(served.stdout.trim().endsWith("200")).toBe(true);
  });

  it("judges budget counters: after six calls this hour, writes are refused and reads still pass", async () => {
    const ops = await gw.mint("ops");
    for (let i = 0; i < 6; i++) await curl(ops, [`${httpBase}/api/echo?n=${i}`]);
    const write = await curl(ops, ["-X", "POST", "-H", "content-type: application/json", "-d", "{}", `${httpBase}/api/echo`]);
    expect(write.stdout).toMatch(/over six calls this hour: reads only/);
    const read = await curl(ops, ["-w", "\\n%{http_code}", `${httpBase}/api/echo?n=7`]);
    expect(read.stdout.trim().endsWith("200")).toBe(true);
  });
});

describe("CEL when: on Redis (redis-cli)", () => {
  it("judges keys and groups: an agent is refused session keys, ops reads them", async () => {
    await redis.cli(["SET", "session:abc", "secret-session"]);
    await redis.cli(["SET", "greeting", "hello"]);
    const agent = await gw.mint("agent");
    expect(await cli(agent, ["GET", "greeting"])).toContain("hello");
    const refused = await cli(agent, ["MGET", "greeting", "session:abc"]);
    expect(refused).toMatch(/NOPERM airlock: session keys are for ops/);
    expect(refused).not.toContain("secret-session");
    const ops = await gw.mint("ops");
    expect(await cli(ops, ["GET", "session:abc"])).toContain("secret-session");
  });

  it("judges the command and the principal's name", async () => {
    const agent = await gw.mint("agent");
    const ops = await gw.mint("ops");
    expect(await cli(agent, ["FLUSHALL"])).toMatch(/NOPERM airlock: .*no-flush-for-agents/);
    expect(await cli(ops, ["FLUSHDB"])).toMatch(/NOPERM airlock: .*no-flush-for-agents/);
    expect(await redis.cli(["GET", "greeting"])).toMatchObject({ stdout: expect.stringContaining("hello") as unknown });
  });
});
