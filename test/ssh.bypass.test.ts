/**
 * The shell bypass regression list (src/policy/shell/bypass-cases.ts) through the real wire
 * path: OpenSSH-compatible exec requests (ssh2 client) → gateway → real sshd. Denied cases
 * must exit 126 with one `airlock:` line and never reach the target; allowed cases must not be
 * refused by the gateway.
 */
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
}, 60_000);

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
const WIRE_CASES = SHELL_BYPASS_CASES.filter((c) => c.expect === "deny" || /^(ls|echo|grep|cat file|git|FOO=bar|for f|if \[|sudo ls|env FOO|find \.|bash -c 'uname|timeout 5 sleep|command -v|which|echo done|\[\[)/.test(c.command));

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
