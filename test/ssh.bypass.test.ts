/**
 * The shell bypass regression list (src/policy/shell/bypass-cases.ts) through the real wire
 * path: OpenSSH-compatible exec requests (ssh2 client) → gateway → real sshd. Denied cases
 * must exit 126 with one `airlock:` line and never reach the target; allowed cases must not be
 * refused by the gateway.
 */
import { randomBytes } from "node:crypto";
import type { ClientChannel } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BYPASS_DENIED_PROGRAMS, SHELL_BYPASS_CASES } from "../src/policy/shell/bypass-cases.js";
import { startSshWorld, type SshWorld } from "./harness/ssh-gateway.js";

let w: SshWorld;
let client: Awaited<ReturnType<SshWorld["ssh2Client"]>>;

beforeAll(async () => {
  w = await startSshWorld({
    policies: [{ name: "bypass-guard", match: { commands: BYPASS_DENIED_PROGRAMS }, action: "deny" }],
  });
  client = await w.ssh2Client("web1", await w.gw.mint("agent", "1h"));
}, 240_000);

afterAll(async () => {
  client.end();
  await w.stop();
});

function exec(command: string): Promise<{ code: number | undefined; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err !== undefined) {
        reject(err);
        return;
      }
      let stderr = "";
      let code: number | undefined;
      ch.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      ch.on("data", () => undefined);
      ch.on("exit", (c: unknown) => (code = typeof c === "number" ? c : undefined));
      ch.on("close", () => resolve({ code, stderr }));
      ch.end();
    });
  });
}

// Every denied case, and the allowed ones that do nothing harmful when they really run.
const WIRE_CASES = SHELL_BYPASS_CASES.filter((c) => c.expect === "deny" || /^(ls|echo|grep|cat file|git|FOO=bar|for f|if \[|sudo ls|env FOO|find \.|bash -c 'uname|timeout 5 sleep|command -v|which|echo done|\[\[|stty -a|awk -F:|sed 's\/a\/b\/g' f|cp a\.txt)/.test(c.command));

describe("shell bypass list through the SSH wire", () => {
  for (const c of WIRE_CASES) {
    it(`${c.expect}: ${JSON.stringify(c.command)}`, async () => {
      const r = await exec(c.command);
      if (c.expect === "deny") {
        expect(r.code).toBe(126);
        expect(r.stderr).toMatch(/^airlock: [^\n]*\n$/);
      } else {
        expect(r.stderr).not.toContain("airlock:");
      }
    });
  }
});

/** Collect a shell channel's output until `pattern` appears (or fail after 10 s). */
function waitFor(out: { text: string }, ch: ClientChannel, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!pattern.test(out.text)) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${pattern} in ${JSON.stringify(out.text.slice(-500))}`));
    }, 10_000);
    const cleanup = (): void => {
      clearTimeout(timer);
      ch.off("data", check);
      ch.stderr.off("data", check);
    };
    ch.on("data", check);
    ch.stderr.on("data", check);
    check();
  });
}

function openShell(pty: boolean): Promise<{ ch: ClientChannel; out: { text: string } }> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel): void => {
      if (err !== undefined) {
        reject(err);
        return;
      }
      const out = { text: "" };
      ch.on("data", (d: Buffer) => (out.text += d.toString("utf8")));
      ch.stderr.on("data", (d: Buffer) => (out.text += d.toString("utf8")));
      resolve({ ch, out });
    };
    if (pty) client.shell({ rows: 24, cols: 200, term: "xterm", height: 0, width: 0 }, cb);
    else client.shell(false, cb);
  });
}

// Second bypass corpus, interactive: keys that make the shell run a line without Enter, or
// editing keys that a shell without a line editor reads as text.
describe("interactive bypasses through the SSH wire", () => {
  it("refuses Ctrl-O, history recall at an empty prompt and cross-line arithmetic in a PTY shell", async () => {
    const probe = `airlock-probe-${randomBytes(6).toString("hex")}`;
    const { ch, out } = await openShell(true);
    try {
      ch.write(`touch ${probe}; echo made-$((20+1))\r`);
      await waitFor(out, ch, /made-21/);
      // readline runs the line at Ctrl-O: the key must not reach the shell before the line is judged.
      ch.write(`rm -f ${probe}\x0f`);
      await waitFor(out, ch, /airlock: the line was edited/);
      // a line put into the history, then recalled with Up at an empty prompt and run with Enter
      ch.write(`history -s 'rm -f ${probe}'; echo queued-$((30+1))\r`);
      await waitFor(out, ch, /queued-31/);
      out.text = "";
      ch.write("\x1b[A");
      await waitFor(out, ch, /airlock: the line was edited/);
      ch.write("\r");
      // code stored in a variable by one line, evaluated by arithmetic in the next
      ch.write(`read -r x <<< 'a[$(rm -f ${probe})]'; echo stored-$((50+1))\r`);
      await waitFor(out, ch, /stored-51/);
      ch.write("echo $((x))\r");
      await waitFor(out, ch, /airlock: arithmetic on variables/);
      ch.write(`test -e ${probe} && echo still-$((40+2))-there\r`);
      await waitFor(out, ch, /still-42-there/);
      ch.write("exit\r");
      await new Promise((r) => ch.once("close", r));
    } finally {
      ch.close();
    }
  });

  it("reads DEL and Ctrl-U as text in a shell without a PTY (no line editor hides the rm)", async () => {
    const probe = `airlock-probe-${randomBytes(6).toString("hex")}`;
    const { ch, out } = await openShell(false);
    try {
      ch.write(`touch ${probe}; echo made-$((20+1))\n`);
      await waitFor(out, ch, /made-21/);
      // refused (as a program name with control characters, or as rm): either way nothing runs
      ch.write(`rm -f ${probe};${"\x7f".repeat(40)}\n`);
      await waitFor(out, ch, /airlock: [^\n]*refused|airlock: rm is not allowed/);
      out.text = "";
      ch.write(`rm -f ${probe};\x15\n`);
      await waitFor(out, ch, /airlock: [^\n]*refused|airlock: rm is not allowed/);
      ch.write(`test -e ${probe} && echo still-$((40+2))-there\n`);
      await waitFor(out, ch, /still-42-there/);
      ch.end();
      await new Promise((r) => ch.once("close", r));
    } finally {
      ch.close();
    }
  });
});
