/**
 * `airlock policy test FILE`: cases judged offline by the real evaluators (SQL parser, CEL
 * `when:`), exit 0 when every case matches, 1 on a mismatch, 2 on a bad file.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
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
