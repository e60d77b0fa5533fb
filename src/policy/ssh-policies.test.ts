import { beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../core/connection.js";
import type { SshCommandEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import { parseConfig, type RawConfig } from "../runtime/config.js";
import { PolicyEvaluator } from "./policies.js";
import { ClassificationCache, initSqlParser } from "./sql/index.js";
import { SshPolicyEvaluator, isFileTransfer } from "./ssh-policies.js";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

function setup(policies: RawConfig["policies"], extra: Partial<RawConfig> = {}): { ssh: SshPolicyEvaluator; sql: PolicyEvaluator; connections: readonly Connection[] } {
  const config = parseConfig({
    ...extra,
    connections: [
      { name: "web1", type: "ssh", host: "h", user: "u", password: "p", hostKey: HOST_KEY, groups: ["agents"] },
      { name: "db", type: "postgres", host: "h", database: "d", user: "u", groups: ["agents"] },
    ],
    policies,
  });
  return {
    ssh: new SshPolicyEvaluator(config.policies),
    sql: new PolicyEvaluator(config.policies, config.connections, new ClassificationCache()),
    connections: config.connections,
  };
}

const session = (connection: string, protocol: "ssh" | "postgres" = "ssh"): SessionInfo => ({
  id: "00000000-0000-4000-8000-000000000001",
  clientProtocol: protocol, targetType: protocol,
  connection,
  principal: { kind: "service_account", id: "sa:a", name: "a", groups: ["agents"] },
  clientAddress: "127.0.0.1:1",
  startedAt: new Date(),
  attributes: {},
});

type EventInput = SshCommandEvent extends infer E ? (E extends SshCommandEvent ? Omit<E, "session" | "seq"> : never) : never;

async function judge(ev: SshPolicyEvaluator, e: EventInput): Promise<string> {
  const s = ev.openSession(session("web1"));
  const d = await s?.evaluate({ ...e, session: session("web1"), seq: 1 });
  if (d === undefined) return "none";
  if (d.type === "hold") return `hold:${d.need}:${d.rule}`;
  return d.type === "deny" ? `deny:${d.rule ?? ""}` : `allow${d.rule === undefined ? "" : `:${d.rule}`}`;
}

beforeAll(async () => {
  await initSqlParser();
});

describe("SshPolicyEvaluator", () => {
  it("judges every program of a command, first matching policy per program", async () => {
    const { ssh } = setup([
      { name: "allow-ls", match: { commands: ["ls"] }, action: "allow" },
      { name: "no-rm", match: { commands: ["rm"] }, action: "deny" },
    ]);
    expect(await judge(ssh, { type: "ssh.exec", command: "ls -la" })).toBe("allow:allow-ls");
    expect(await judge(ssh, { type: "ssh.exec", command: "ls && sudo rm x" })).toBe("deny:no-rm");
    expect(await judge(ssh, { type: "ssh.exec", command: "echo hi" })).toBe("allow");
  });

  it("refuses what cannot be known when a deny applies, and allows it otherwise", async () => {
    const guarded = setup([{ name: "no-rm", match: { commands: ["rm"] }, action: "deny" }]);
    expect(await judge(guarded.ssh, { type: "ssh.exec", command: "$X" })).toBe("deny:fail-closed");
    expect(await judge(guarded.ssh, { type: "ssh.exec", command: "echo 'unterminated" })).toBe("deny:fail-closed");
    expect(await judge(guarded.ssh, { type: "ssh.input", line: "ls", edited: true })).toBe("deny:fail-closed");
    for (const line of ["!!", "!rm", "echo x; !-2", "^echo ^", "ls !$"]) expect(await judge(guarded.ssh, { type: "ssh.input", line, edited: false })).toBe("deny:fail-closed");
    for (const line of ["[ ! -f x ] && echo y", "test 1 != 2", "echo $!", "echo hi!"]) expect(await judge(guarded.ssh, { type: "ssh.input", line, edited: false })).toBe("allow");
    const open = setup([{ name: "allow-all", match: { commands: ["*"] }, action: "allow" }]);
    expect(await judge(open.ssh, { type: "ssh.exec", command: "$X" })).toBe("allow");
  });

  it("matches arguments with globs and re: regexes; run-time arguments count for a deny only", async () => {
    const { ssh } = setup([
      { name: "no-force", match: { commands: ["git"], arguments: ["--force", "re:^-f$"] }, action: "deny" },
      { name: "allow-cat-logs", match: { commands: ["cat"], arguments: ["/var/log/*"] }, action: "allow" },
      { name: "no-cat", match: { commands: ["cat"] }, action: "deny" },
    ]);
    expect(await judge(ssh, { type: "ssh.exec", command: "git push --force" })).toBe("deny:no-force");
    expect(await judge(ssh, { type: "ssh.exec", command: "git push -f" })).toBe("deny:no-force");
    expect(await judge(ssh, { type: "ssh.exec", command: "git push" })).toBe("allow");
    expect(await judge(ssh, { type: "ssh.exec", command: "git push $OPTS" })).toBe("deny:no-force");
    expect(await judge(ssh, { type: "ssh.exec", command: "cat /var/log/syslog" })).toBe("allow:allow-cat-logs");
    expect(await judge(ssh, { type: "ssh.exec", command: "cat /var/log/$F" })).toBe("deny:no-cat");
  });

  it("refuses forwarding unless an allow with forwardTo matches first", async () => {
    const { ssh } = setup([
      { name: "no-db", match: { forwardTo: ["*:5432"] }, action: "deny" },
      { name: "web", match: { forwardTo: ["10.0.0.*:80", "127.0.0.1:*"] }, action: "allow" },
    ]);
    expect(await judge(ssh, { type: "ssh.forward", host: "10.0.0.7", port: 80 })).toBe("allow:web");
    expect(await judge(ssh, { type: "ssh.forward", host: "127.0.0.1", port: 5432 })).toBe("deny:no-db");
    expect(await judge(ssh, { type: "ssh.forward", host: "10.0.0.7", port: 22 })).toBe("deny:no-forwarding");
    const none = setup([]);
    expect(await judge(none.ssh, { type: "ssh.forward", host: "127.0.0.1", port: 80 })).toBe("deny:no-forwarding");
  });

  it("ignores SQL-only policies, and the SQL evaluator ignores SSH sessions", async () => {
    const { ssh, sql } = setup([
      { name: "no-drop", match: { operations: ["drop"] }, action: "deny" },
      { name: "no-rm", match: { commands: ["rm"] }, action: "deny" },
      { name: "mask", action: "mask", detectors: ["email"], columns: ["*.email"] },
    ]);
    expect(await judge(ssh, { type: "ssh.exec", command: "drop table x" })).toBe("allow");
    expect(sql.openSession(session("web1"))).toBeUndefined();
    const pg = sql.openSession(session("db", "postgres"));
    expect(pg?.evaluate({ type: "db.query", session: session("db", "postgres"), seq: 1, stage: "simple", sql: "select 1" })).toMatchObject({ type: "allow" });
    expect(ssh.openSession(session("db", "postgres"))).toBeUndefined();
    // mask detectors apply to SSH output; columns do not
    const d = await ssh.openSession(session("web1"))?.evaluate({ type: "ssh.exec", command: "cat x", session: session("web1"), seq: 1 });
    expect(d).toMatchObject({ type: "allow", plan: { masks: [{ rule: "mask", detectors: ["email"], columns: [] }] } });
  });

  it("holds require_approval and require_grant commands for the pipeline, unless another program is denied", async () => {
    const { ssh } = setup([
      { name: "no-rm", match: { commands: ["rm"] }, action: "deny" },
      { name: "ask", match: { commands: ["reboot"] }, action: "require_approval", approvers: ["ops"], mode: "async", timeout: "2m" },
      { name: "grant", match: { commands: ["systemctl"] }, action: "require_grant" },
      { name: "mask", action: "mask", detectors: ["email"] },
    ], { approvals: { grants: { approvers: ["ops"] } } });
    const s = ssh.openSession(session("web1"));
    const d = await s?.evaluate({ type: "ssh.exec", command: "uptime; sudo reboot", session: session("web1"), seq: 1 });
    expect(d).toMatchObject({
      type: "hold",
      need: "approval",
      rule: "ask",
      approvers: ["ops"],
      minApprovals: 1,
      mode: "async",
      timeoutMs: 120_000,
      summary: { operations: ["uptime", "sudo", "reboot"], relations: [] },
      // once approved, output masking still applies
      allow: { type: "allow", plan: { masks: [{ rule: "mask" }] } },
    });
    expect(d?.type === "hold" ? d.message : "").toBe("reboot needs approval (rule ask)");
    expect(await judge(ssh, { type: "ssh.exec", command: "sudo reboot && rm -rf /" })).toBe("deny:no-rm");
    expect(await judge(ssh, { type: "ssh.input", line: "systemctl restart nginx", edited: false })).toBe("hold:grant:grant");
    expect(await judge(ssh, { type: "ssh.exec", command: "uptime" })).toBe("allow");
  });
});

// Second bypass corpus (src/policy/shell/bypass-cases-2.ts): argument spellings and redirections.
describe("SshPolicyEvaluator argument bypasses", () => {
  it("matches paths however they are spelled, redirections included, for a deny", async () => {
    const { ssh } = setup([{ name: "no-shadow", match: { commands: ["cat", "head"], arguments: ["/etc/shadow"] }, action: "deny" }]);
    for (const command of ["cat /etc//shadow", "cat /etc/./shadow", "cat /etc/../etc/shadow", "cat /./etc/shadow", "cat < /etc/shadow", "sudo cat < /etc/shadow", "head --file=/etc//shadow", "cat ~root/../etc/shadow", "cat ~/../../etc/shadow"]) {
      expect(await judge(ssh, { type: "ssh.exec", command }), command).toBe("deny:no-shadow");
    }
    expect(await judge(ssh, { type: "ssh.exec", command: "cat /etc/hostname" })).toBe("allow");
    expect(await judge(ssh, { type: "ssh.exec", command: "cat ~/notes.txt" })).toBe("allow");
  });

  it("allows by argument only when every non-option argument matches, path spelled plainly", async () => {
    const { ssh } = setup([
      { name: "allow-cat-logs", match: { commands: ["cat"], arguments: ["/var/log/*"] }, action: "allow" },
      { name: "no-cat", match: { commands: ["cat"] }, action: "deny" },
    ]);
    expect(await judge(ssh, { type: "ssh.exec", command: "cat -n /var/log/syslog /var/log/auth.log" })).toBe("allow:allow-cat-logs");
    expect(await judge(ssh, { type: "ssh.exec", command: "cat /var/log/../../etc/shadow" })).toBe("deny:no-cat");
    expect(await judge(ssh, { type: "ssh.exec", command: "cat /var/log/syslog /etc/shadow" })).toBe("deny:no-cat");
    expect(await judge(ssh, { type: "ssh.exec", command: "cat /var/log//syslog" })).toBe("allow:allow-cat-logs");
  });
});

describe("SshPolicyEvaluator interactive lines", () => {
  it("refuses arithmetic on variables in shell lines (a value set by an earlier line may hold code)", async () => {
    const { ssh } = setup([{ name: "no-rm", match: { commands: ["rm"] }, action: "deny" }]);
    // `read -r x` then typing a[$(rm -f f)] stores code in x; a later line evaluates it.
    expect(await judge(ssh, { type: "ssh.input", line: "read -r x", edited: false })).toBe("allow");
    for (const line of ["echo $((x))", "echo ${!x}", "(( x ))", "[[ $x -eq 1 ]]", "echo ${a[x]}"]) {
      expect(await judge(ssh, { type: "ssh.input", line, edited: false }), line).toBe("deny:fail-closed");
    }
    expect(await judge(ssh, { type: "ssh.input", line: "echo $((6 * 7))", edited: false })).toBe("allow");
    expect(await judge(ssh, { type: "ssh.exec", command: "echo $((x))" })).toBe("allow");
  });
});

describe("SshPolicyEvaluator fallback for programs without a table", () => {
  it("uses the refusing policies' program globs, but not wildcard-only ones", async () => {
    const exec = (command: string): EventInput => ({ type: "ssh.exec", command });
    const named = setup([{ name: "no-reboot", match: { commands: ["reboot", "shut*"] }, action: "require_approval", approvers: ["ops"] }]).ssh;
    expect(await judge(named, exec("unknown-runner reboot"))).toBe("deny:fail-closed");
    expect(await judge(named, exec("unknown-runner shutdown -h now"))).toBe("deny:fail-closed");
    expect(await judge(named, exec("unknown-runner rm x"))).toBe("allow");
    // Programs known not to run their arguments keep `--` and names as plain words.
    for (const command of ["rm -- -odd-name", "curl -- https://example.com/reboot", "grep -- reboot /var/log/syslog", "cp -- a b"]) {
      expect(await judge(named, exec(command)), command).toBe("allow");
    }
    // An allowlist: `make` is allowed and everything else denied; make's words are not programs.
    const allowlist = setup([
      { name: "ok", match: { commands: ["make", "ls", "mytool"] }, action: "allow" },
      { name: "rest", match: { commands: ["*"] }, action: "deny" },
    ]).ssh;
    expect(await judge(allowlist, exec("make build"))).toBe("allow:ok");
    expect(await judge(allowlist, exec("mytool build"))).toBe("allow:ok");
    expect(await judge(allowlist, exec("mytool -- bash"))).toBe("deny:fail-closed");
    // Without a refusing policy nothing fails closed.
    const open = setup([{ name: "mask", action: "mask", detectors: ["secret"] }]).ssh;
    expect(await judge(open, exec("unknown-runner -- bash"))).toBe("allow");
  });
});

describe("file transfers (legacy scp, rsync)", () => {
  it("recognises a lone legacy scp or rsync server with one path", () => {
    expect(isFileTransfer("scp -t /tmp/x")).toBe(true);
    expect(isFileTransfer("scp -f -- /tmp/x.bin")).toBe(true);
    expect(isFileTransfer("scp -r -p -t 'dir with space'")).toBe(true);
    expect(isFileTransfer("rsync --server -vlogDtpre.iLsfxC . /tmp/dest")).toBe(true);
  });

  it("never exempts anything else from masking", () => {
    expect(isFileTransfer("scp -f x; cat .env")).toBe(false);
    expect(isFileTransfer("scp -f $(cat .env)")).toBe(false);
    expect(isFileTransfer("scp -f x\ncat .env")).toBe(false);
    expect(isFileTransfer("cat .env | scp -t x")).toBe(false);
    expect(isFileTransfer("scp -f 'x'; cat '.env'")).toBe(false);
  });

  const plan = async (ev: SshPolicyEvaluator, command: string): Promise<unknown> => {
    const d = await ev.openSession(session("web1"))?.evaluate({ type: "ssh.exec", command, session: session("web1"), seq: 1 });
    if (d === undefined) return "none";
    if (d.type === "deny") return `deny:${d.rule ?? ""}`;
    if (d.type === "hold") return { hold: d.rule, plan: d.allow.plan };
    if (d.type === "defer") return `defer:${d.rule}`;
    return d.plan ?? "no plan";
  };

  it("plans a raw transfer (masks dropped) for an allowed scp or rsync server, and masks anything else", async () => {
    const { ssh } = setup([
      { name: "no-rm", match: { commands: ["rm"] }, action: "deny" },
      { name: "mask-secrets", action: "mask", detectors: ["secret"] },
    ]);
    expect(await plan(ssh, "scp -t /tmp/x")).toEqual({ masks: [], transfer: "raw" });
    expect(await plan(ssh, "rsync --server -vlogDtpre.iLsfxC . /tmp/dest")).toEqual({ masks: [], transfer: "raw" });
    expect(await plan(ssh, "scp -f x; cat .env")).toEqual({ masks: [{ rule: "mask-secrets", columns: [], detectors: ["secret"], strategy: "redact" }] });
    expect(await plan(ssh, "cat .env")).toEqual({ masks: [{ rule: "mask-secrets", columns: [], detectors: ["secret"], strategy: "redact" }] });
  });

  it("plans a raw transfer with no policies at all, and never for a refused one", async () => {
    expect(await plan(setup([]).ssh, "scp -f /tmp/x")).toEqual({ masks: [], transfer: "raw" });
    expect(await plan(setup([]).ssh, "echo hi")).toBe("no plan");
    const { ssh } = setup([{ name: "no-scp", match: { commands: ["scp"] }, action: "deny" }]);
    expect(await plan(ssh, "scp -t /tmp/x")).toBe("deny:no-scp");
  });

  it("keeps the raw transfer for what an approval allows", async () => {
    const { ssh } = setup([
      { name: "approve-scp", match: { commands: ["scp"] }, action: "require_approval", approvers: ["admins"] },
      { name: "mask-secrets", action: "mask", detectors: ["secret"] },
    ]);
    expect(await plan(ssh, "scp -t /tmp/x")).toEqual({ hold: "approve-scp", plan: { masks: [], transfer: "raw" } });
  });
});

describe("SSH policies: CEL when:", () => {
  it("judges each program and its argv, with budget counters", async () => {
    const { ssh } = setup([
      { name: "no-force-push", match: { commands: ["*"] }, when: 'command == "git" && argv.exists(a, a == "--force" || a == "-f") && "push" in argv', action: "deny" },
      { name: "no-deep-find", match: { commands: ["find"] }, when: '!argv.exists(a, a == "-maxdepth")', action: "deny", message: "find needs -maxdepth" },
    ]);
    expect(await judge(ssh, { type: "ssh.exec", command: "git push --force origin main" })).toBe("deny:no-force-push");
    expect(await judge(ssh, { type: "ssh.exec", command: "git status && git push -f" })).toBe("deny:no-force-push");
    expect(await judge(ssh, { type: "ssh.exec", command: "git push origin main" })).toBe("allow");
    expect(await judge(ssh, { type: "ssh.exec", command: "ls | find / -name x" })).toBe("deny:no-deep-find");
    expect(await judge(ssh, { type: "ssh.exec", command: "find / -maxdepth 2 -name x" })).toBe("allow");
  });

  it("refuses when: on port-forward policies and type-checks against the shell facts", () => {
    expect(() => setup([{ name: "f", match: { forwardTo: ["db:5432"] }, when: "hour > 1", action: "deny" }])).toThrow(/policies\[0\]\.when: is read for programs, not for port forwards/);
    expect(() => setup([{ name: "f", match: { commands: ["git"] }, when: "keys.size() > 0", action: "deny" }])).toThrow(/policies\[0\]\.when: .*facts of shell policies/);
  });
});
