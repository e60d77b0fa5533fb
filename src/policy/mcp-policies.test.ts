import { describe, expect, it } from "vitest";
import type { McpCallEvent, McpCallMethod } from "../core/events.js";
import { mcpCallText } from "../core/mcp-call.js";
import type { SessionInfo } from "../core/session.js";
import { parseConfig } from "../runtime/config.js";
import { McpPolicyEvaluator } from "./mcp-policies.js";
import { McpCallLimiter } from "./mcp-limits.js";

const config = parseConfig({
  connections: [
    { name: "files", type: "mcp", command: "node", groups: ["a"], rateLimits: [{ tools: ["search*"], calls: 2, per: "1m" }] },
    { name: "llm", type: "mcp", url: "https://mcp.example.com/mcp", groups: ["a"] },
  ],
  policies: [
    { name: "no-shell", connections: ["files"], match: { tools: ["run_*"] }, action: "deny" },
    { name: "no-etc", connections: ["files"], match: { tools: ["read_file"], arguments: ['$.path =~ /^\\/etc\\//', "$.recursive == true"] }, action: "deny" },
    { name: "big-deletes", connections: ["files"], match: { tools: ["delete"], arguments: { "$.count": "> 10", "$.force": "== true" } }, action: "require_approval", approvers: ["ops"] },
    { name: "everything-ok", connections: ["files"], action: "allow" },
    { name: "sampling-ok", connections: ["llm"], match: { tools: ["sampling/createMessage"] }, action: "allow" },
    { name: "pii", action: "mask", detectors: ["email"], columns: ["$.owner.name"] },
  ],
});

function session(connection: string, principal = "sa:x"): SessionInfo {
  return { id: "s", clientProtocol: "mcp", targetType: "mcp", connection, principal: { kind: "service_account", id: principal, name: principal, groups: ["a"] }, clientAddress: "1:1", startedAt: new Date(), attributes: {} };
}

function ev(s: SessionInfo, tool: string, args: Record<string, unknown> = {}, method: McpCallMethod = "tools/call", preview = false): McpCallEvent {
  return { type: "mcp.call", session: s, seq: 1, method, tool, arguments: args, text: mcpCallText(tool, args), ...(preview ? { preview } : {}) };
}

describe("MCP gateway policies", () => {
  const evaluator = new McpPolicyEvaluator(config.policies, config.connections);

  it("judges only mcp sessions", () => {
    expect(evaluator.openSession({ ...session("files"), targetType: "postgres" })).toBeUndefined();
  });

  it("denies by tool glob, by argument predicates (list: any; map: all), holds, and allows with the mask plan", () => {
    const s = session("files");
    const e = evaluator.openSession(s);
    expect(e?.evaluate(ev(s, "run_shell", { command: "id" }))).toMatchObject({ type: "deny", rule: "no-shell", code: "GW_POLICY_DENIED" });
    // A tool that is not as an admin pinned it is refused before any policy allows it.
    expect(e?.evaluate({ ...ev(s, "read_file", { path: "/home/x" }), unpinned: "changed" })).toMatchObject({ type: "deny", rule: "tool-pinning" });
    expect(e?.evaluate(ev(s, "read_file", { path: "/etc/passwd" }))).toMatchObject({ type: "deny", rule: "no-etc" });
    expect(e?.evaluate(ev(s, "read_file", { path: "/home/x", recursive: true }))).toMatchObject({ type: "deny", rule: "no-etc" });
    expect(e?.evaluate(ev(s, "read_file", { path: "/home/x" }))).toMatchObject({ type: "allow", rule: "everything-ok", plan: { masks: [{ rule: "pii", detectors: ["email"], columns: ["$.owner.name"] }] } });
    expect(e?.evaluate(ev(s, "delete", { count: 50, force: true }))).toMatchObject({ type: "hold", rule: "big-deletes", approvers: ["ops"], summary: { operations: ["tools/call"], relations: ["delete"] } });
    // A map's entries must all hold.
    expect(e?.evaluate(ev(s, "delete", { count: 50 }))).toMatchObject({ type: "allow", rule: "everything-ok" });
  });

  it("refuses the upstream's sampling and elicitation unless an allow policy names them (a match-less allow does not)", () => {
    const s = session("files");
    const e = evaluator.openSession(s);
    expect(e?.evaluate(ev(s, "sampling/createMessage", { messages: [] }, "sampling/createMessage"))).toMatchObject({ type: "deny", rule: "mcp-upstream-requests" });
    expect(e?.evaluate(ev(s, "elicitation/create", {}, "elicitation/create"))).toMatchObject({ type: "deny", rule: "mcp-upstream-requests" });
    const l = session("llm");
    const le = evaluator.openSession(l);
    expect(le?.evaluate(ev(l, "sampling/createMessage", {}, "sampling/createMessage"))).toMatchObject({ type: "allow", rule: "sampling-ok" });
    expect(le?.evaluate(ev(l, "elicitation/create", {}, "elicitation/create"))).toMatchObject({ type: "deny" });
  });

  it("limits calls per principal × tool; previews look without spending", () => {
    const ev2 = new McpPolicyEvaluator(config.policies, config.connections);
    const a = session("files", "sa:a");
    const b = session("files", "sa:b");
    const ea = ev2.openSession(a);
    const eb = ev2.openSession(b);
    for (let i = 0; i < 5; i++) expect(ea?.evaluate(ev(a, "search", { q: "x" }, "tools/call", true))).toMatchObject({ type: "allow" });
    expect(ea?.evaluate(ev(a, "search", { q: "1" }))).toMatchObject({ type: "allow" });
    expect(ea?.evaluate(ev(a, "search", { q: "2" }))).toMatchObject({ type: "allow" });
    expect(ea?.evaluate(ev(a, "search", { q: "3" }))).toMatchObject({ type: "deny", code: "GW_LIMIT", rule: "rate-limit" });
    expect(ea?.evaluate(ev(a, "searchAll", {}))).toMatchObject({ type: "allow" });
    expect(ea?.evaluate(ev(a, "read_file", { path: "/x" }))).toMatchObject({ type: "allow" });
    expect(eb?.evaluate(ev(b, "search", {}))).toMatchObject({ type: "allow" });
  });

  it("the limiter's window slides", () => {
    const l = new McpCallLimiter();
    const limits = [{ tools: ["*"], calls: 1, perMs: 1000 }];
    expect(l.take(limits, "p", "c", "t", true, 0)).toBeUndefined();
    expect(l.take(limits, "p", "c", "t", true, 500)).toBe(limits[0]);
    expect(l.take(limits, "p", "c", "t", true, 1001)).toBeUndefined();
  });
});

describe("MCP policies: CEL when:", () => {
  const cfg = parseConfig({
    connections: [{ name: "bank", type: "mcp", command: "node", groups: ["a"] }],
    policies: [
      { name: "big-transfers", connections: ["bank"], match: { tools: ["*"] }, when: 'tool == "transfer" && "amount" in arguments && arguments.amount > 100 && !("ops" in groups)', action: "deny", message: "transfers over 100 are for ops" },
      { name: "prod-accounts", connections: ["bank"], match: { tools: ["*"] }, when: 'has(arguments.account) && arguments.account.env == "prod"', action: "require_approval", approvers: ["ops"] },
    ],
  });
  const evaluator = new McpPolicyEvaluator(cfg.policies, cfg.connections);

  it("judges tool, arguments (nested, numbers) and groups", () => {
    const s = session("bank");
    const e = evaluator.openSession(s);
    expect(e?.evaluate(ev(s, "transfer", { amount: 500 }))).toMatchObject({ type: "deny", rule: "big-transfers", message: "transfers over 100 are for ops" });
    expect(e?.evaluate(ev(s, "transfer", { amount: 50 }))).toMatchObject({ type: "allow" });
    expect(e?.evaluate(ev(s, "transfer", { amount: 100.5 }))).toMatchObject({ type: "deny", rule: "big-transfers" });
    expect(e?.evaluate(ev(s, "balance", { amount: 500 }))).toMatchObject({ type: "allow" });
    expect(e?.evaluate(ev(s, "transfer", { amount: 5, account: { env: "prod" } }))).toMatchObject({ type: "hold", rule: "prod-accounts" });
    // A value of another type cannot be compared: a refusing rule holds (fail closed).
    expect(e?.evaluate(ev(s, "transfer", { amount: "lots" }))).toMatchObject({ type: "deny", rule: "big-transfers" });
    const ops: SessionInfo = { ...s, principal: { ...s.principal, groups: ["a", "ops"] } };
    expect(evaluator.openSession(ops)?.evaluate(ev(ops, "transfer", { amount: 500 }))).toMatchObject({ type: "allow" });
  });

  it("for the tool list (no arguments yet), a when: that reads the arguments does not refuse; one that does not still does", () => {
    const c = parseConfig({
      connections: [{ name: "files", type: "mcp", command: "node", groups: ["a"] }],
      policies: [
        { name: "etc", connections: ["files"], match: { tools: ["read_file"] }, when: 'arguments.path.startsWith("/etc/")', action: "deny" },
        { name: "no-shell-for-a", connections: ["files"], match: { tools: ["run_shell"] }, when: '"a" in groups && tool == "run_shell"', action: "deny" },
      ],
    });
    const s = session("files");
    const e = new McpPolicyEvaluator(c.policies, c.connections).openSession(s);
    const listing = (tool: string): McpCallEvent => ({ ...ev(s, tool, {}, "tools/call", true), listing: true });
    expect(e?.evaluate(listing("read_file"))).toMatchObject({ type: "allow" });
    expect(e?.evaluate(listing("run_shell"))).toMatchObject({ type: "deny", rule: "no-shell-for-a" });
    // A call without the argument is still refused (fail closed), and one with it is judged by it.
    expect(e?.evaluate(ev(s, "read_file", {}))).toMatchObject({ type: "deny", rule: "etc" });
    expect(e?.evaluate(ev(s, "read_file", { path: "/etc/passwd" }))).toMatchObject({ type: "deny", rule: "etc" });
    expect(e?.evaluate(ev(s, "read_file", { path: "/srv/x" }))).toMatchObject({ type: "allow" });
  });

  it("type-checks against the MCP facts at load", () => {
    expect(() => parseConfig({ policies: [{ name: "x", match: { tools: ["*"] }, when: "tool > 1", action: "deny" }] })).toThrow(/policies\[0\]\.when: .*facts of mcp policies/);
  });
});
