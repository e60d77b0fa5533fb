/**
 * require_approval and require_grant for SSH, end to end: a real sshd, the real gateway, the
 * real OpenSSH client and the ssh2 client; decisions through the API.
 */
import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientChannel } from "ssh2";
import { startSshWorld, type SshWorld } from "./harness/ssh-gateway.js";
import { until } from "./harness/until.js";

let w: SshWorld;
const tokens: Record<string, string> = {};

interface ApprovalJson {
  id: string;
  kind: string;
  status: string;
  statement?: string;
  protocol?: string;
  usedAt?: string;
  decisionReason?: string;
  summary?: { operations: string[]; relations: string[] };
}

async function listRequests(query = ""): Promise<ApprovalJson[]> {
  const r = await w.gw.api(`/v1/approvals${query}`);
  expect(r.status).toBe(200);
  return (r.body as { requests: ApprovalJson[] }).requests;
}

/** The pending request whose command is exactly `text`. */
function pending(text: string): Promise<ApprovalJson> {
  return until(`a pending request for "${text}"`, async () => (await listRequests("?status=pending")).find((r) => r.statement === text));
}

async function getRequest(id: string): Promise<ApprovalJson> {
  const r = await w.gw.api(`/v1/approvals/${id}`);
  expect(r.status).toBe(200);
  return (r.body as { request: ApprovalJson }).request;
}

async function decide(id: string, vote: "approve" | "deny", reason?: string): Promise<void> {
  const r = await w.gw.api(`/v1/approvals/${id}/${vote}`, { token: tokens["ops1"] ?? "", body: reason === undefined ? {} : { reason } });
  expect(r.status, r.text).toBe(200);
}

/** Collect a channel's output (stdout and stderr) until `pattern` appears. */
function waitFor(out: { text: string }, ch: ClientChannel, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const m = pattern.exec(out.text);
      if (m === null) return false;
      cleanup();
      resolve(m[0]);
      return true;
    };
    const onData = (): void => {
      check();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${pattern} in ${JSON.stringify(out.text.slice(-500))}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      ch.off("data", onData);
      ch.stderr.off("data", onData);
    };
    ch.on("data", onData);
    ch.stderr.on("data", onData);
    check();
  });
}

type Ssh2Client = Awaited<ReturnType<SshWorld["ssh2Client"]>>;

function collect(ch: ClientChannel): { text: string } {
  const out = { text: "" };
  ch.on("data", (d: Buffer) => (out.text += d.toString("utf8")));
  ch.stderr.on("data", (d: Buffer) => (out.text += d.toString("utf8")));
  return out;
}

function exec(c: Ssh2Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, ch) => (err === undefined ? resolve(ch) : reject(err)));
  });
}

function shell(c: Ssh2Client, pty: boolean): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel): void => (err === undefined ? resolve(ch) : reject(err));
    if (pty) c.shell({ rows: 24, cols: 120, term: "xterm", height: 0, width: 0 }, cb);
    else c.shell(false, cb);
  });
}

beforeAll(async () => {
  w = await startSshWorld({
    extraServiceAccounts: [{ name: "ops1", groups: ["ops"] }],
    policies: [
      { name: "reboots-need-approval", match: { commands: ["reboot", "shutdown"] }, action: "require_approval", approvers: ["ops"] },
      { name: "hostname-async", match: { commands: ["hostname"] }, action: "require_approval", approvers: ["ops"], mode: "async" },
      { name: "sleepers-need-approval", match: { commands: ["sleep"] }, action: "require_approval", approvers: ["ops"] },
      { name: "systemctl-needs-grant", match: { commands: ["systemctl"] }, action: "require_grant" },
      { name: "no-rm", match: { commands: ["rm"] }, action: "deny" },
      { name: "mask-secrets", action: "mask", detectors: ["email"] },
    ],
    approvals: { grants: { approvers: ["ops"] } },
  });
  for (const sa of ["agent", "ops1"]) tokens[sa] = await w.gw.mint(sa, "1h");
}, 240_000);

afterAll(async () => {
  await w.stop();
});

/** Harmless stand-ins for `reboot` and `shutdown` in the target user's home. */
let bin: string;
function fakeBin(name: string, body: string): void {
  const path = join(bin, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const st = statSync(w.sshd.home);
  chownSync(path, st.uid, st.gid);
}

describe("an SSH exec held for approval (wait mode)", () => {
  beforeAll(() => {
    bin = join(w.sshd.home, "bin");
    mkdirSync(bin, { recursive: true });
    fakeBin("reboot", "echo rebooting-now alice@example.com");
    fakeBin("shutdown", "echo shut");
  });

  it("runs once approved: OpenSSH gets one waiting line on stderr, then the command's (masked) output", async () => {
    const command = `echo before; ${bin}/reboot`;
    const run = w.ssh("web1", tokens["agent"] ?? "", command);
    const req = await pending(command);
    expect(req).toMatchObject({ kind: "statement", protocol: "ssh", summary: { operations: ["echo", "reboot"], relations: [] } });
    await decide(req.id, "approve");
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("before\nrebooting-now [EMAIL]\n");
    expect(r.stderr).toMatch(new RegExp(`^airlock: reboot needs approval \\(rule reboots-need-approval\\): waiting for approval ${req.id} by ops \\(until [^)]+\\); approve with: airlock approvals approve ${req.id}\\n$`));
    expect((await getRequest(req.id)).usedAt).toBeDefined();
    // Single use: the same command is held again.
    const again = w.ssh("web1", tokens["agent"] ?? "", command);
    const second = await pending(command);
    expect(second.id).not.toBe(req.id);
    await decide(second.id, "deny");
    expect((await again).code).toBe(126);
  });

  it("exits 126 with one airlock line when denied, and nothing runs", async () => {
    const command = `${bin}/shutdown -h now`;
    const run = w.ssh("web1", tokens["agent"] ?? "", command);
    const req = await pending(command);
    await decide(req.id, "deny", "not during business hours");
    const r = await run;
    expect(r.code).toBe(126);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`waiting for approval ${req.id}`);
    expect(lines[1]).toBe(`airlock: approval ${req.id} was denied: not during business hours`);
  });

  it("refuses at once when another program of the command is denied (nobody is asked)", async () => {
    const before = (await listRequests()).length;
    const r = await w.ssh("web1", tokens["agent"] ?? "", `${bin}/reboot && rm -f /tmp/x`);
    expect(r.code).toBe(126);
    expect(r.stderr).toBe("airlock: rm is not allowed here (rule no-rm)\n");
    expect((await listRequests()).length).toBe(before);
  });

  it("cancels the request when the client closes the channel while waiting; the connection goes on", async () => {
    const c = await w.ssh2Client("web1", tokens["agent"] ?? "");
    try {
      const ch = await exec(c, "sleep 0");
      const out = collect(ch);
      const req = await pending("sleep 0");
      await waitFor(out, ch, /waiting for approval apr_\w+/);
      ch.close();
      const ended = await until("the request to be cancelled", async () => {
        const r = await getRequest(req.id);
        return r.status === "pending" ? undefined : r;
      });
      expect(ended.status).toBe("cancelled");
      const next = await exec(c, "echo still-here");
      const o2 = collect(next);
      await new Promise((r) => next.once("close", r));
      expect(o2.text).toBe("still-here\n");
    } finally {
      c.end();
    }
  });

  it("cancels the request when the client goes away while waiting", async () => {
    const c = await w.ssh2Client("web1", tokens["agent"] ?? "");
    const ch = await exec(c, "sleep 1");
    const out = collect(ch);
    const req = await pending("sleep 1");
    await waitFor(out, ch, /waiting for approval/);
    c.end();
    const ended = await until("the request to be cancelled", async () => {
      const r = await getRequest(req.id);
      return r.status === "pending" ? undefined : r;
    });
    expect(ended.status).toBe("cancelled");
    // A late approval changes nothing.
    const late = await w.gw.api(`/v1/approvals/${req.id}/approve`, { token: tokens["ops1"] ?? "", body: {} });
    expect(late.status).toBe(409);
  });
});

describe("async mode", () => {
  it("refuses at once with the approval id; the identical command runs once after approval", async () => {
    const agent = tokens["agent"] ?? "";
    const first = await w.ssh("web1", agent, "hostname");
    expect(first.code).toBe(126);
    expect(first.stdout).toBe("");
    const id = /approval (apr_\w+) requested from ops/.exec(first.stderr)?.[1] ?? "";
    expect(id).not.toBe("");
    expect(first.stderr.split("\n").filter((l) => l !== "")).toHaveLength(1);
    // Asking again before a decision names the same request.
    const waiting = await w.ssh("web1", agent, "hostname");
    expect(waiting.code).toBe(126);
    expect(waiting.stderr).toContain(id);
    // A different command is a different request.
    const other = await w.ssh("web1", agent, "hostname -s");
    expect(other.stderr).not.toContain(id);

    await decide(id, "approve");
    const ran = await w.ssh("web1", agent, "hostname");
    expect(ran.code).toBe(0);
    expect(ran.stderr).toBe("");
    expect(ran.stdout.trim()).not.toBe("");
    expect((await getRequest(id)).usedAt).toBeDefined();
    const once = await w.ssh("web1", agent, "hostname");
    expect(once.code).toBe(126);
    expect(once.stderr).not.toContain(id);
  });
});

describe("interactive shells", () => {
  it("a PTY shell prints the waiting line in the terminal, runs the line once approved, and refuses it when denied", async () => {
    const c = await w.ssh2Client("web1", tokens["agent"] ?? "");
    try {
      const ch = await shell(c, true);
      const out = collect(ch);
      ch.write("echo ready-$((1+1))\r");
      await waitFor(out, ch, /ready-2/);
      ch.write(`${bin}/reboot\r`);
      const req = await pending(`${bin}/reboot`);
      await waitFor(out, ch, new RegExp(`airlock: reboot needs approval [^\\r\\n]*waiting for approval ${req.id}`));
      await decide(req.id, "approve");
      await waitFor(out, ch, /rebooting-now \[EMAIL\]/);

      ch.write(`${bin}/shutdown\r`);
      const denied = await pending(`${bin}/shutdown`);
      await decide(denied.id, "deny", "no");
      await waitFor(out, ch, new RegExp(`airlock: approval ${denied.id} was denied: no`));
      ch.write("echo after-$((2+2))\r");
      await waitFor(out, ch, /after-4/);
      expect(out.text).not.toMatch(/^shut\r?$/m);
      ch.write("exit\r");
      await new Promise((r) => ch.once("close", r));
    } finally {
      c.end();
    }
  });

  it("a shell without a PTY gets the waiting line on stderr and runs the line once approved", async () => {
    const c = await w.ssh2Client("web1", tokens["agent"] ?? "");
    try {
      const ch = await shell(c, false);
      const out = collect(ch);
      ch.write(`${bin}/reboot\n`);
      const req = await pending(`${bin}/reboot`);
      await waitFor(out, ch, /waiting for approval/);
      await decide(req.id, "approve");
      await waitFor(out, ch, /rebooting-now \[EMAIL\]\n/);
      ch.end();
      await new Promise((r) => ch.once("close", r));
    } finally {
      c.end();
    }
  });
});

describe("require_grant", () => {
  it("refuses without an active access grant and runs under one", async () => {
    const agent = tokens["agent"] ?? "";
    const r = await w.ssh("web1", agent, "systemctl --version");
    expect(r.code).toBe(126);
    expect(r.stderr).toBe("airlock: systemctl needs an active access grant (rule systemctl-needs-grant): request one with airlock access request web1 --duration 30m --reason TEXT\n");

    const created = await w.gw.api("/v1/access/requests", { token: agent, body: { connection: "web1", duration: "15m", reason: "restart nginx" } });
    expect(created.status, created.text).toBe(201);
    await decide((created.body as { request: { id: string } }).request.id, "approve");
    const ok = await w.ssh("web1", agent, "systemctl --version >/dev/null 2>&1; echo granted");
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe("granted\n");
  });
});
