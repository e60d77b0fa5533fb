/**
 * CEL `when:` on shell policies (issue 21) through the OpenSSH client against a real sshd: each
 * program of a line is judged with its facts (`command`, `argv`), so `git push --force` is
 * refused wherever it sits in the line and a plain push runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshWorld, type SshWorld } from "./harness/ssh-gateway.js";

let w: SshWorld;
let token: string;

beforeAll(async () => {
  w = await startSshWorld({
    policies: [
      {
        name: "no-force-echo",
        connections: ["web1"],
        match: { commands: ["*"] },
        when: 'command == "echo" && argv.exists(a, a == "--force") && "agents" in groups',
        action: "deny",
        message: "no forcing here",
      },
    ],
  });
  token = await w.gw.mint("agent", "1h");
}, 240_000);

afterAll(async () => {
  await w.stop();
});

describe("CEL when: on SSH (OpenSSH client)", () => {
  it("refuses the program whose argv matches, anywhere in the line; runs the rest", async () => {
    const refused = await w.ssh("web1", token, "echo ok && echo --force");
    expect(refused.stderr).toMatch(/airlock: no forcing here/);
    expect(refused.stdout).not.toContain("ok");
    const ran = await w.ssh("web1", token, "echo plain-ran");
    expect(ran.stdout).toContain("plain-ran");
  });
});
