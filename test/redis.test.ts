/**
 * The Redis engine against a real redis-server, through real clients: redis-cli, ioredis and
 * node-redis (RESP2 and RESP3), pipelines, MULTI/EXEC, pub/sub; guardrails by command and key,
 * masking by detectors and key rules, approvals, recording and audit, and the gateway's
 * credential never reaching the client.
 */
import { Redis } from "ioredis";
import { createClient } from "redis";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { runProcess, startRedis, type RedisServer } from "./harness/redis.js";
import { until } from "./harness/until.js";

let redis: RedisServer;
let gw: TestGateway;
let port: number;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", redis: "127.0.0.1:0" },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "two", groups: ["agents", "other"] },
      { name: "boss", groups: ["approvers"] },
      { name: "outsider", groups: ["nobody"] },
    ],
    connections: [
      { name: "cache", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: redis.password, groups: ["agents"] },
      { name: "cache2", type: "redis", host: "127.0.0.1", port: redis.port, user: redis.user, password: redis.password, database: 2, groups: ["other"] },
    ],
    policies: [
      { name: "no-flush", connections: ["cache*"], match: { commands: ["flushall", "flushdb", "config|set"] }, action: "deny" },
      { name: "no-sessions", connections: ["cache*"], match: { keys: ["session:*"] }, action: "deny", message: "session keys are off limits" },
      { name: "del-needs-approval", connections: ["cache*"], match: { commands: ["del", "unlink"], keys: ["orders:*"] }, action: "require_approval", approvers: ["approvers"], timeout: "20s" },
      { name: "pii", connections: ["cache*"], action: "mask", detectors: ["email", "credit_card"] },
      { name: "user-values", connections: ["cache*"], match: { keys: ["user:*"] }, action: "mask" },
    ],
  });
  port = gw.gw.addresses.redis?.port ?? 0;
}, 60_000);

afterAll(async () => {
  await gw.stop();
  await redis.stop();
});

async function cli(token: string, args: readonly string[], options: { user?: string; resp3?: boolean; input?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess(
    "redis-cli",
    ["-h", "127.0.0.1", "-p", String(port), "--user", options.user ?? "cache", "--pass", token, "--no-auth-warning", ...(options.resp3 === true ? ["-3"] : []), ...args],
    options.input === undefined ? {} : { input: options.input },
  );
}

function ioredis(token: string, extra: Record<string, unknown> = {}): Redis {
  return new Redis({ host: "127.0.0.1", port, username: "cache", password: token, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...extra });
}

async function audit(): Promise<AuditRecord[]> {
  const r = await gw.api("/v1/audit?limit=1000");
  return (r.body as { records: AuditRecord[] }).records;
}

describe("Redis engine", () => {
  beforeAll(async () => {
    await redis.cli(["FLUSHALL"]);
    await redis.cli(["SET", "greeting", "hello"]);
    await redis.cli(["SET", "contact", "write to alice@example.com or call"]);
    await redis.cli(["SET", "user:1", "Alice Example"]);
    await redis.cli(["HSET", "user:2", "name", "Bob", "card", "4111 1111 1111 1111"]);
    await redis.cli(["SET", "session:abc", "secret-session"]);
    await redis.cli(["SET", "orders:1", "pending"]);
  });

  it("serves redis-cli with AUTH CONNECTION TOKEN, and refuses with the native codes", async () => {
    const token = await gw.mint("agent");
    const ok = await cli(token, ["GET", "greeting"]);
    expect(ok.stdout.trim()).toBe("hello");
    const denied = await cli(token, ["FLUSHALL"]);
    expect(denied.stdout).toMatch(/NOPERM airlock: FLUSHALL is not allowed here \(rule no-flush\)/);
    expect((await redis.cli(["GET", "greeting"])).stdout.trim()).toBe("hello");
    const keyDenied = await cli(token, ["GET", "session:abc"]);
    expect(keyDenied.stdout).toMatch(/NOPERM airlock: session keys are off limits/);
    expect(keyDenied.stdout).not.toContain("secret-session");
    const bad = await cli("not-a-token", ["GET", "greeting"]);
    expect(`${bad.stdout}${bad.stderr}`).toMatch(/WRONGPASS airlock:/);
    const outsider = await gw.mint("outsider");
    const refused = await cli(outsider, ["GET", "greeting"]);
    expect(`${refused.stdout}${refused.stderr}`).toMatch(/(NOPERM|WRONGPASS) airlock:/);
  });

  it("judges keys wherever the command puts them (key specs from the target's table)", async () => {
    const token = await gw.mint("agent");
    // MGET, MSET (every other argument), EVAL's numkeys, XREAD after STREAMS, SORT … STORE.
    for (const args of [
      ["MGET", "greeting", "session:abc"],
      ["MSET", "a", "1", "session:x", "2"],
      ["RENAME", "greeting", "session:stolen"],
      ["COPY", "session:abc", "stolen"],
      ["XREAD", "COUNT", "1", "STREAMS", "session:s", "0"],
      ["OBJECT", "ENCODING", "session:abc"],
      ["LMPOP", "2", "x", "session:l", "LEFT"],
    ]) {
      const r = await cli(token, args);
      expect(r.stdout, args.join(" ")).toMatch(/NOPERM airlock:/);
    }
    expect((await redis.cli(["EXISTS", "session:x", "session:stolen", "stolen"])).stdout.trim()).toBe("0");
    // Scripts are unknown-effect while deny rules apply.
    const script = await cli(token, ["EVAL", "return redis.call('get', KEYS[1])", "1", "greeting"]);
    expect(script.stdout).toMatch(/NOPERM airlock: EVAL runs what the gateway cannot inspect/);
    const inline = await cli(token, [], { input: "flushall\n" });
    expect(inline.stdout).toMatch(/NOPERM/);
    expect((await redis.cli(["DBSIZE"])).stdout.trim()).not.toBe("0");
  });

  it("masks values by detectors and by key rules, over RESP2 and RESP3", async () => {
    const token = await gw.mint("agent");
    const c = await cli(token, ["GET", "contact"]);
    expect(c.stdout).toContain("[EMAIL]");
    expect(c.stdout).not.toContain("alice@example.com");
    const u = await cli(token, ["GET", "user:1"]);
    expect(u.stdout).not.toContain("Alice");
    const h2 = await cli(token, ["HGETALL", "user:2"]);
    expect(h2.stdout).toContain("name");
    expect(h2.stdout).not.toContain("Bob");
    expect(h2.stdout).not.toContain("4111");
    const h3 = await cli(token, ["HGETALL", "user:2"], { resp3: true });
    expect(h3.stdout).toContain("name");
    expect(h3.stdout).not.toContain("Bob");
    // The key rule is not escaped by moving the value, nor by reading it bit by bit.
    expect((await cli(token, ["RENAME", "user:1", "plain"])).stdout).toMatch(/NOPERM airlock: RENAME would move values that rule user-values masks/);
    expect((await cli(token, ["GETBIT", "user:1", "1"])).stdout.trim()).toBe("");
    expect((await redis.cli(["EXISTS", "user:1"])).stdout.trim()).toBe("1");
    const client = createClient({ socket: { host: "127.0.0.1", port }, username: "cache", password: token, RESP: 3 });
    await client.connect();
    try {
      expect(await client.get("contact")).toContain("[EMAIL]");
      const all = await client.hGetAll("user:2");
      expect(Object.keys(all).sort()).toEqual(["card", "name"]);
      expect(JSON.stringify(all)).not.toMatch(/Bob|4111/);
      expect(await client.get("greeting")).toBe("hello");
    } finally {
      await client.quit();
    }
  });

  it("keeps replies paired with their commands through pipelines, refusals and MULTI/EXEC (ioredis)", async () => {
    const token = await gw.mint("agent");
    const r = ioredis(token);
    await r.connect();
    try {
      const out = await r.pipeline().get("greeting").flushall().get("contact").get("session:abc").set("k1", "v1").get("k1").exec();
      expect(out?.map(([e, v]) => (e === null ? v : `ERR:${e.message.split(" ")[0] ?? ""}`))).toEqual(["hello", "ERR:NOPERM", expect.stringContaining("[EMAIL]"), "ERR:NOPERM", "OK", "v1"]);
      const tx = await r.multi().set("k2", "alice@example.com").get("k2").get("greeting").exec();
      expect(tx?.map(([, v]) => v)).toEqual(["OK", "[EMAIL]", "hello"]);
      // A refused command inside MULTI aborts the transaction, as a queue-time error does.
      await expect(r.multi().set("k3", "x").flushdb().exec()).rejects.toThrow(/EXECABORT/);
      expect((await redis.cli(["EXISTS", "k3"])).stdout.trim()).toBe("0");
      expect(await r.get("greeting")).toBe("hello");
    } finally {
      r.disconnect();
    }
  });

  it("masks pub/sub messages and keeps pairing while subscribed (RESP2 and RESP3)", async () => {
    const token = await gw.mint("agent");
    for (const resp of [2, 3] as const) {
      const sub = createClient({ socket: { host: "127.0.0.1", port }, username: "cache", password: token, RESP: resp });
      await sub.connect();
      try {
        const got: string[] = [];
        await sub.subscribe(["news", "alerts"], (m) => got.push(m));
        await redis.cli(["PUBLISH", "news", `mail bob@example.org now (${resp})`]);
        await redis.cli(["PUBLISH", "alerts", `plain ${resp}`]);
        await until("both messages", () => (got.length === 2 ? true : undefined));
        expect(got[0]).toContain("[EMAIL]");
        expect(got[0]).not.toContain("bob@example.org");
        expect(got[1]).toBe(`plain ${resp}`);
        await sub.unsubscribe();
      } finally {
        await sub.quit();
      }
    }
  });

  it("holds a command for approval and runs it once approved", async () => {
    const token = await gw.mint("agent");
    const approver = await gw.mint("boss");
    const r = ioredis(token, { commandTimeout: 30_000 });
    await r.connect();
    try {
      const pending = r.del("orders:1");
      pending.catch(() => undefined);
      const id = await until("the approval request", async () => {
        const list = await gw.api("/v1/approvals?status=pending");
        return (list.body as { requests: { id: string; statement?: string }[] }).requests.find((r) => r.statement?.startsWith("DEL orders:1") === true)?.id;
      });
      const decided = await gw.api(`/v1/approvals/${id}/approve`, { token: approver, body: {} });
      expect(decided.status).toBe(200);
      expect(await pending).toBe(1);
      expect((await redis.cli(["EXISTS", "orders:1"])).stdout.trim()).toBe("0");
    } finally {
      r.disconnect();
    }
  });

  it("binds the session to its connection's database and identity", async () => {
    const token = await gw.mint("agent");
    const r = ioredis(token);
    await r.connect();
    try {
      await expect(r.select(3)).rejects.toThrow(/NOPERM airlock: connection "cache" is database 0/);
      await expect(r.call("MOVE", "greeting", "2")).rejects.toThrow(/NOPERM/);
      await expect(r.call("AUTH", "cache", token)).rejects.toThrow(/NOPERM airlock: the session is already logged in/);
      await expect(r.call("MONITOR")).rejects.toThrow(/NOPERM/);
      await expect(r.call("CLIENT", "REPLY", "OFF")).rejects.toThrow(/NOPERM/);
      expect(await r.get("greeting")).toBe("hello");
    } finally {
      r.disconnect();
    }
    // cache2 is database 2 of the same server.
    await redis.cli(["-n", "2", "SET", "where", "db2"]);
    const two = await gw.mint("two");
    expect((await cli(two, ["GET", "where"], { user: "cache2" })).stdout.trim()).toBe("db2");
    // A bare AUTH TOKEN works when the identity may use exactly one Redis connection.
    const agent = await gw.mint("agent");
    expect((await runProcess("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "--pass", agent, "--no-auth-warning", "GET", "greeting"])).stdout.trim()).toBe("hello");
    const many = await runProcess("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "--pass", two, "--no-auth-warning", "GET", "greeting"]);
    expect(`${many.stdout}${many.stderr}`).toMatch(/WRONGPASS airlock: name the connection as the user/);
  });

  it("answers NOAUTH before login, refuses garbage cleanly, and caps the login time", async () => {
    const raw = connect({ host: "127.0.0.1", port });
    const got: Buffer[] = [];
    raw.on("data", (b: Buffer) => got.push(b));
    await new Promise((resolve) => raw.once("connect", resolve));
    raw.write("GET greeting\r\n*1\r\n$4\r\nPING\r\n");
    await until("two NOAUTH replies", () => (Buffer.concat(got).toString().split("\r\n").length >= 3 ? true : undefined));
    expect(Buffer.concat(got).toString()).toBe("-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n");
    raw.write("*1\r\n$99999999999\r\n");
    await new Promise((resolve) => raw.once("close", resolve));
    expect(Buffer.concat(got).toString()).toMatch(/ERR RESP protocol error|exceeds the limit/);
  });

  it("records commands and what the client saw, audits decisions, and never shows the gateway's password", async () => {
    const token = await gw.mint("agent");
    await cli(token, ["GET", "contact"]);
    await cli(token, ["FLUSHDB"]);
    const records = await audit();
    const denied = records.find((r) => r.type === "db.query" && r.protocol === "redis" && r.decision === "deny" && r.statement?.startsWith("FLUSHDB"));
    expect(denied?.rule).toBe("no-flush");
    const sessions = await gw.api("/v1/sessions?limit=100");
    const list = (sessions.body as { sessions: { id: string; protocol: string }[] }).sessions.filter((s) => s.protocol === "redis");
    expect(list.length).toBeGreaterThan(0);
    const shown = await Promise.all(list.slice(0, 5).map((s) => gw.api(`/v1/sessions/${s.id}`)));
    const text = shown.map((s) => s.text).join("\n");
    expect(text).toContain("GET contact");
    expect(text).toContain("[EMAIL]");
    expect(text).not.toContain("alice@example.com");
    expect(gw.logs()).not.toContain(redis.password);
    expect(JSON.stringify(records)).not.toContain(redis.password);
    expect(text).not.toContain(redis.password);
  });
});
