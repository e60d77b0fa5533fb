import { describe, expect, it } from "vitest";
import type { RedisCommandEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import { parseConfig } from "../runtime/config.js";
import { RedisPolicyEvaluator } from "./redis-policies.js";

const config = parseConfig({
  connections: [{ name: "cache", type: "redis", host: "127.0.0.1", groups: ["agents"] }],
  policies: [
    { name: "ok-eval", connections: ["cache"], match: { commands: ["evalsha"], keys: ["jobs:*"] }, action: "allow" },
    { name: "no-flush", connections: ["cache"], match: { commands: ["flush*", "config set"] }, action: "deny" },
    { name: "no-secrets", connections: ["cache"], match: { keys: ["secret:*"] }, action: "deny" },
    { name: "hold-del", connections: ["cache"], match: { commands: ["del"] }, action: "require_approval", approvers: ["ops"] },
    { name: "pii", connections: ["cache"], action: "mask", detectors: ["email"] },
    { name: "users", connections: ["cache"], match: { keys: ["user:*"] }, action: "mask" },
  ],
});

const session: SessionInfo = {
  id: "s1",
  clientProtocol: "redis",
  targetType: "redis",
  connection: "cache",
  principal: { kind: "service_account", id: "sa:a", name: "a", groups: ["agents"] },
  clientAddress: "127.0.0.1:1",
  startedAt: new Date(),
  attributes: {},
};

function event(command: string, keys: string[], extra: Partial<RedisCommandEvent> = {}): RedisCommandEvent {
  return { type: "redis.command", session, seq: 1, command, text: command, keys, keysComplete: true, unknownCommand: false, flags: [], queued: false, ...extra };
}

const judge = new RedisPolicyEvaluator(config.policies).openSession(session);

describe("Redis policies", () => {
  it("match commands (subcommands too) and keys; the first match decides", () => {
    expect(judge?.evaluate(event("flushall", []))).toMatchObject({ type: "deny", rule: "no-flush" });
    expect(judge?.evaluate(event("config|set", []))).toMatchObject({ type: "deny", rule: "no-flush" });
    expect(judge?.evaluate(event("config|get", []))).toMatchObject({ type: "allow" });
    expect(judge?.evaluate(event("get", ["secret:x"]))).toMatchObject({ type: "deny", rule: "no-secrets" });
    expect(judge?.evaluate(event("mget", ["a", "secret:x"]))).toMatchObject({ type: "deny", rule: "no-secrets" });
    expect(judge?.evaluate(event("del", ["a"]))).toMatchObject({ type: "hold", rule: "hold-del", summary: { operations: ["del"], relations: ["a"] } });
  });

  it("fails closed on keys it cannot see, unknown commands and unknown-effect commands", () => {
    expect(judge?.evaluate(event("sort", ["l"], { keysComplete: false }))).toMatchObject({ type: "deny", rule: "no-secrets" });
    expect(judge?.evaluate(event("frob", [], { unknownCommand: true }))).toMatchObject({ type: "deny", rule: "fail-closed" });
    expect(judge?.evaluate(event("eval", ["jobs:1"]))).toMatchObject({ type: "deny", rule: "fail-closed" });
    expect(judge?.evaluate(event("module|load", []))).toMatchObject({ type: "deny", rule: "fail-closed" });
    // Named by an allow policy (with its keys): allowed.
    expect(judge?.evaluate(event("evalsha", ["jobs:1"]))).toMatchObject({ type: "allow", rule: "ok-eval" });
    expect(judge?.evaluate(event("evalsha", ["other"]))).toMatchObject({ type: "deny", rule: "fail-closed" });
  });

  it("plans masks: detectors on every reply, key rules whole", () => {
    expect(judge?.evaluate(event("get", ["greeting"]))).toEqual({ type: "allow", plan: { masks: [{ rule: "pii", columns: [], detectors: ["email"], strategy: "redact" }] } });
    const user = judge?.evaluate(event("hgetall", ["user:1"]));
    expect(user).toMatchObject({ type: "allow", plan: { masks: [{ rule: "pii" }, { rule: "users", columns: ["*"], detectors: [] }] } });
  });

  it("refuses administrative commands while guardrails apply, and moving key-masked values out", () => {
    expect(judge?.evaluate(event("client|kill", [], { flags: ["admin", "noscript"] }))).toMatchObject({ type: "deny", rule: "fail-closed" });
    expect(judge?.evaluate(event("rename", ["user:1", "plain"], { flags: ["write"] }))).toMatchObject({ type: "deny", rule: "users" });
    expect(judge?.evaluate(event("sort", ["user:list"], { flags: ["write"], keysComplete: false }))).toMatchObject({ type: "deny", rule: "users" });
    expect(judge?.evaluate(event("set", ["user:1"], { flags: ["write"] }))).toMatchObject({ type: "allow" });
    expect(judge?.evaluate(event("rename", ["user:1", "user:2"], { flags: ["write"] }))).toMatchObject({ type: "allow" });
    // A key rule alone (no deny policy) still makes unknown-effect commands fail closed: a script could read user keys.
    const masksOnly = parseConfig({ connections: [{ name: "cache", type: "redis", host: "h", groups: ["agents"] }], policies: [{ name: "users", match: { keys: ["user:*"] }, action: "mask" }] });
    const m = new RedisPolicyEvaluator(masksOnly.policies).openSession(session);
    expect(m?.evaluate(event("eval", []))).toMatchObject({ type: "deny", rule: "fail-closed" });
    const detectOnly = parseConfig({ connections: [{ name: "cache", type: "redis", host: "h", groups: ["agents"] }], policies: [{ name: "pii", action: "mask", detectors: ["email"] }] });
    expect(new RedisPolicyEvaluator(detectOnly.policies).openSession(session)?.evaluate(event("eval", []))).toMatchObject({ type: "allow" });
  });

  it("refuses writes in a read-only session", () => {
    const ro = parseConfig({ connections: [{ name: "cache", type: "redis", host: "h", groups: ["agents"] }], policies: [{ name: "ro", action: "allow", readOnly: true }] });
    const j = new RedisPolicyEvaluator(ro.policies).openSession(session);
    expect(j?.evaluate(event("set", ["a"], { flags: ["write", "denyoom"] }))).toMatchObject({ type: "deny", rule: "ro" });
    expect(j?.evaluate(event("get", ["a"], { flags: ["readonly"] }))).toMatchObject({ type: "allow" });
    expect(j?.evaluate(event("eval", []))).toMatchObject({ type: "deny", rule: "fail-closed" });
  });

  it("does not open for other targets, and a redis key no other kind has is a config error there", () => {
    expect(new RedisPolicyEvaluator(config.policies).openSession({ ...session, targetType: "postgres" })).toBeUndefined();
    expect(() =>
      parseConfig({
        connections: [{ name: "db", type: "postgres", host: "h", database: "d", user: "u" }],
        policies: [{ name: "k", connections: ["db"], match: { keys: ["a*"] }, action: "deny" }],
      }),
    ).toThrow(/match.keys is a redis key/);
  });
});
