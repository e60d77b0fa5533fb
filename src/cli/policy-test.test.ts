/**
 * `airlock policy test FILE`: cases judged offline by the real evaluators (SQL parser, CEL
 * `when:`), exit 0 when every case matches, 1 on a mismatch, 2 on a bad file.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { REDIS_7_COMMANDS } from "../protocols/redis/builtin-commands.js";
import { runCli } from "./cli.js";

const dir = mkdtempSync(join(tmpdir(), "airlock-policy-test-"));
writeFileSync(
  join(dir, "airlock.yaml"),
  `serviceAccounts:
  - name: ci-bot
    groups: [agents]
connections:
  - name: orders
    type: postgres
    host: 127.0.0.1
    database: orders
    user: app
    groups: [agents, dba]
policies:
  - name: no-ddl
    match: { operations: [drop, truncate] }
    action: deny
  - name: night-writes-need-approval
    match: { operations: [update, delete, insert] }
    when: 'hour >= 22 || hour < 6'
    action: require_approval
    approvers: [dba]
  - name: big-readers-stop
    match: { operations: ["*"] }
    when: '"agent-rows" in budgets && budgets["agent-rows"]["rows"] >= 9000 && "select" in operations'
    action: deny
    message: this agent has read enough today
`,
);

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(""),
  };
}

async function run(cases: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(dir, `cases-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `config: ./airlock.yaml\n${cases}`);
  const out = sink();
  const err = sink();
  const code = await runCli(["policy", "test", file], { stdout: out.stream, stderr: err.stream, env: {}, cwd: dir });
  return { code, stdout: out.text(), stderr: err.text() };
}

const GOOD = `cases:
  - name: reads pass
    principal: ci-bot
    connection: orders
    statement: select * from orders
    expect: allow
  - name: drop is denied
    principal: ci-bot
    connection: orders
    statement: drop table orders
    expect: deny
    rule: no-ddl
  - name: a write at night needs approval
    principal: ci-bot
    connection: orders
    statement: update orders set status = 'x' where id = 1
    at: "2026-12-07T23:00:00Z"
    expect: require_approval
    rule: night-writes-need-approval
  - name: a write by day passes
    principal: ci-bot
    connection: orders
    statement: update orders set status = 'x' where id = 1
    at: "2026-12-07T11:00:00Z"
    expect: allow
  - name: reads stop once the budget counter is high
    principal: ci-bot
    connection: orders
    statement: select 1
    budgets: { agent-rows: { rows: 9500 } }
    expect: deny
    rule: big-readers-stop
  - name: a principal outside the agents group has no access
    principal: stranger
    groups: [people]
    connection: orders
    statement: select 1
    expect: deny
`;

describe("airlock policy test", () => {
  it("passes when every case matches, printing one line per case", async () => {
    const r = await run(GOOD);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("6 passed, 0 failed");
    expect(r.code).toBe(0);
  });

  it("exits 1 and names the case on a mismatch", async () => {
    const r = await run(`cases:
  - name: drop should pass (wrong)
    principal: ci-bot
    connection: orders
    statement: drop table orders
    expect: allow
`);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FAIL  drop should pass (wrong): expected allow, got deny (no-ddl)");
  });

  it("exits 2 with one line for a malformed file", async () => {
    const r = await run(`cases:\n  - name: x\n    expect: maybe\n`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^airlock: invalid policy test file .*expect/);
  });
});

describe("airlock policy test: when: on SSH and MCP policies", () => {
  it("judges SSH command lines and MCP tool calls with their facts", async () => {
    writeFileSync(
      join(dir, "multi.yaml"),
      `serviceAccounts:
  - name: ci-bot
    groups: [agents]
connections:
  - name: web1
    type: ssh
    host: 127.0.0.1
    user: u
    password: p
    hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
    groups: [agents]
  - name: bank
    type: mcp
    command: node
    groups: [agents]
policies:
  - name: no-force-push
    connections: [web1]
    match: { commands: ["*"] }
    when: 'command == "git" && "push" in argv && argv.exists(a, a == "--force")'
    action: deny
  - name: big-transfers
    connections: [bank]
    match: { tools: ["*"] }
    when: 'tool == "transfer" && "amount" in arguments && arguments.amount > 100'
    action: require_approval
    approvers: [finance]
`,
    );
    const file = join(dir, "multi-cases.yaml");
    writeFileSync(
      file,
      `config: ./multi.yaml
cases:
  - { name: force push refused, principal: ci-bot, connection: web1, statement: "git push --force origin main", expect: deny, rule: no-force-push }
  - { name: plain push passes, principal: ci-bot, connection: web1, statement: "git push origin main", expect: allow }
  - { name: big transfer held, principal: ci-bot, connection: bank, statement: 'transfer {"amount": 500}', expect: require_approval, rule: big-transfers }
  - { name: small transfer passes, principal: ci-bot, connection: bank, statement: 'transfer {"amount": 5}', expect: allow }
`,
    );
    const out = sink();
    const err = sink();
    const code = await runCli(["policy", "test", file], { stdout: out.stream, stderr: err.stream, env: {}, cwd: dir });
    expect(err.text()).toBe("");
    expect(out.text()).toContain("4 passed, 0 failed");
    expect(code).toBe(0);
  });
});

/** One configuration with a connection of every kind the gateway judges (nothing is dialed). */
const EVERY_KIND_CONFIG = `serviceAccounts:
  - name: ci-bot
    groups: [agents]
  - name: ops-bot
    groups: [agents, ops]
connections:
  - name: orders
    type: postgres
    host: 127.0.0.1
    database: orders
    user: app
    groups: [agents]
  - name: web1
    type: ssh
    host: 127.0.0.1
    user: u
    password: p
    hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
    groups: [agents]
  - name: cache
    type: redis
    host: 127.0.0.1
    groups: [agents]
  - name: api
    type: http
    baseUrl: http://127.0.0.1:9/
    groups: [agents]
  - name: prod-cluster
    type: kubernetes
    server: https://127.0.0.1:6443
    token: literal:cluster-token
    groups: [agents]
  - name: bank
    type: mcp
    command: node
    groups: [agents]
policies:
  - name: no-ddl
    match: { operations: [drop, truncate] }
    action: deny
  - name: no-rm
    connections: [web1, prod-cluster]
    match: { commands: [rm] }
    action: deny
    message: rm is not allowed here
  - name: session-keys-for-ops
    connections: [cache]
    match: { commands: ["*"] }
    when: 'keys.exists(k, k.startsWith("session:")) && !("ops" in groups)'
    action: deny
    message: session keys are for ops
  - name: users-only-for-ops
    connections: [api]
    match: { methods: ["*"] }
    when: 'path.startsWith("/users") && !("ops" in groups)'
    action: deny
  - name: no-debug
    connections: [api]
    match: { methods: [GET] }
    when: '"debug" in query && query["debug"] == "1"'
    action: deny
  - name: big-refunds
    connections: [api]
    match: { methods: [POST], paths: [/refunds], body: ["$.amount > 100"] }
    action: require_approval
    approvers: [finance]
  - name: prod-deletes-in-hours
    connections: [prod-cluster]
    match: { verbs: [delete] }
    when: 'ns.startsWith("prod") && (hour < 9 || hour >= 17)'
    action: deny
    message: deletes in prod only in office hours
  - name: no-ns-delete
    connections: [prod-cluster]
    match: { verbs: [delete], resources: [namespaces] }
    action: deny
  - name: big-transfers
    connections: [bank]
    match: { tools: ["*"] }
    when: 'tool == "transfer" && "amount" in arguments && arguments.amount > 100'
    action: require_approval
    approvers: [finance]
`;

/** Cases of every kind; the last one is wrong on purpose (its expectation does not hold). */
const EVERY_KIND_CASES = `config: ./every.yaml
cases:
  - { name: sql drop refused, principal: ci-bot, connection: orders, statement: drop table orders, expect: deny, rule: no-ddl }
  - { name: ssh command line refused, principal: ci-bot, connection: web1, statement: "cd /tmp && rm -rf x", expect: deny, rule: no-rm, message: rm is not allowed }
  - { name: ssh typed line refused, principal: ci-bot, connection: web1, input: "rm -rf /var/www", expect: deny, rule: no-rm }
  - { name: ssh typed line passes, principal: ci-bot, connection: web1, input: "ls -la", expect: allow }
  - { name: redis session key refused, principal: ci-bot, connection: cache, redis: [MGET, greeting, "session:abc"], expect: deny, rule: session-keys-for-ops, message: session keys are for ops }
  - { name: redis line form, principal: ci-bot, connection: cache, redis: 'SET "session:x y" v', expect: deny, rule: session-keys-for-ops }
  - { name: redis session key for ops, principal: ops-bot, connection: cache, redis: "GET session:abc", expect: allow }
  - { name: redis select refused by the engine, principal: ops-bot, connection: cache, redis: "SELECT 3", expect: deny, rule: protocol }
  - { name: http users refused, principal: ci-bot, connection: api, http: { path: /users/42 }, expect: deny, rule: users-only-for-ops }
  - { name: http users for ops, principal: ops-bot, connection: api, http: { path: /users/42 }, expect: allow }
  - { name: http path normalized like the engine, principal: ci-bot, connection: api, http: { path: /docs/../users }, expect: deny, rule: users-only-for-ops }
  - { name: http debug query, principal: ops-bot, connection: api, http: { path: /echo, query: { debug: "1" } }, expect: deny, rule: no-debug }
  - { name: http big refund held, principal: ci-bot, connection: api, http: { method: POST, path: /refunds, json: { amount: 500 } }, expect: require_approval, rule: big-refunds }
  - { name: http small refund passes, principal: ci-bot, connection: api, http: { method: POST, path: /refunds, json: { amount: 5 } }, expect: allow }
  - name: k8s delete at night refused
    principal: ci-bot
    connection: prod-cluster
    kubernetes: { verb: delete, resource: pods, namespace: prod-eu, name: web-1 }
    at: "2026-12-07T23:00:00Z"
    expect: deny
    rule: prod-deletes-in-hours
  - name: k8s delete by day passes
    principal: ci-bot
    connection: prod-cluster
    kubernetes: { verb: delete, resource: pods, namespace: prod-eu, name: web-1 }
    at: "2026-12-07T11:00:00Z"
    expect: allow
  - name: k8s raw url classified like the engine
    principal: ci-bot
    connection: prod-cluster
    kubernetes: { method: DELETE, url: /api/v1/namespaces/kube-system }
    expect: deny
    rule: no-ns-delete
  - { name: k8s exec command judged, principal: ci-bot, connection: prod-cluster, kubernetes: { verb: exec, namespace: dev, name: web-1, command: [sh, -c, "rm -rf /data"] }, expect: deny, rule: no-rm }
  - { name: mcp big transfer held, principal: ci-bot, connection: bank, mcp: { tool: transfer, arguments: { amount: 500 } }, expect: require_approval, rule: big-transfers }
  - { name: mcp small transfer passes, principal: ci-bot, connection: bank, mcp: { tool: transfer, arguments: { amount: 5 } }, expect: allow }
  - { name: wrong on purpose, principal: ops-bot, connection: api, http: { method: DELETE, path: /users/1 }, expect: deny }
`;

describe("airlock policy test: every kind of event", () => {
  it("judges HTTP, Redis, Kubernetes, SSH lines and MCP calls with the engines' own event builders", async () => {
    writeFileSync(join(dir, "every.yaml"), EVERY_KIND_CONFIG);
    const file = join(dir, "every-cases.yaml");
    writeFileSync(file, EVERY_KIND_CASES);
    const out = sink();
    const err = sink();
    const code = await runCli(["policy", "test", file, "--json"], { stdout: out.stream, stderr: err.stream, env: {}, cwd: dir });
    expect(err.text()).toBe("");
    const r = JSON.parse(out.text()) as { passed: number; failed: number; cases: { name: string; ok: boolean; got: string; message?: string }[] };
    expect(r.cases.filter((c) => !c.ok).map((c) => `${c.name}: ${c.got} ${c.message ?? ""}`)).toEqual([expect.stringMatching(/^wrong on purpose: allow/)]);
    expect(r.passed).toBe(20);
    expect(code).toBe(1);
  });

  it("fails a case whose message does not contain the expected text, and names it", async () => {
    writeFileSync(join(dir, "every.yaml"), EVERY_KIND_CONFIG);
    const file = join(dir, "message-mismatch.yaml");
    writeFileSync(file, `config: ./every.yaml\ncases:\n  - { name: message mismatch, principal: ci-bot, connection: orders, statement: drop table x, expect: deny, message: "no such text" }\n`);
    const out = sink();
    const r = { code: await runCli(["policy", "test", file], { stdout: out.stream, stderr: sink().stream, env: {}, cwd: dir }), stdout: "" };
    r.stdout = out.text();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  message mismatch: expected deny with message containing "no such text", got deny (no-ddl)');
  });

  it("reports a case whose kind does not fit its connection as an error, and a case with two kinds as a bad file", async () => {
    writeFileSync(join(dir, "every.yaml"), EVERY_KIND_CONFIG);
    const file = join(dir, "kind-mismatch.yaml");
    writeFileSync(file, `config: ./every.yaml\ncases:\n  - { name: redis on http, principal: ci-bot, connection: api, redis: "GET x", expect: allow }\n`);
    const out = sink();
    const code = await runCli(["policy", "test", file], { stdout: out.stream, stderr: sink().stream, env: {}, cwd: dir });
    expect(code).toBe(1);
    expect(out.text()).toContain("FAIL  redis on http: expected allow, got error — connection api is a http connection: give http");
    writeFileSync(file, `config: ./every.yaml\ncases:\n  - { name: two, principal: ci-bot, connection: api, redis: "GET x", statement: x, expect: allow }\n`);
    const err = sink();
    expect(await runCli(["policy", "test", file], { stdout: sink().stream, stderr: err.stream, env: {}, cwd: dir })).toBe(2);
    expect(err.text()).toContain("give exactly one of statement, input, redis, http, kubernetes, mcp");
  });

  it("redisCommands: judges with the table of the user's own server (redis-cli --json COMMAND)", async () => {
    writeFileSync(join(dir, "every.yaml"), EVERY_KIND_CONFIG);
    // A server that knows only GET: MGET is an unknown command there, whose keys nobody can say.
    const onlyGet = (REDIS_7_COMMANDS as unknown[][]).filter((c) => c[0] === "get");
    expect(onlyGet.length).toBe(1);
    writeFileSync(join(dir, "commands.json"), JSON.stringify(onlyGet));
    const file = join(dir, "own-table.yaml");
    writeFileSync(
      file,
      `config: ./every.yaml
redisCommands: ./commands.json
cases:
  - { name: keys by the given table, principal: ci-bot, connection: cache, redis: "GET session:abc", expect: deny, rule: session-keys-for-ops }
  - { name: unknown to the given table, principal: ci-bot, connection: cache, redis: "SET greeting hello", expect: deny, rule: fail-closed, message: not in the target's command table }
`,
    );
    const out = sink();
    const code = await runCli(["policy", "test", file, "--json"], { stdout: out.stream, stderr: sink().stream, env: {}, cwd: dir });
    const r = JSON.parse(out.text()) as { cases: { name: string; ok: boolean; got: string; message?: string }[] };
    expect(r.cases.map((c) => `${c.name}: ${c.ok} ${c.got}`)).toEqual(["keys by the given table: true deny (session-keys-for-ops)", "unknown to the given table: true deny (fail-closed)"]);
    expect(code).toBe(0);
    // With the built-in Redis 7.0 table, SET is known and passes.
    writeFileSync(file, `config: ./every.yaml\ncases:\n  - { name: known to Redis 7.0, principal: ci-bot, connection: cache, redis: "SET greeting hello", expect: allow }\n`);
    expect(await runCli(["policy", "test", file], { stdout: sink().stream, stderr: sink().stream, env: {}, cwd: dir })).toBe(0);
  });
});
