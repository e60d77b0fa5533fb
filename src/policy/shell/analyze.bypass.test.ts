/**
 * The shell bypass corpus judged by the real SSH policy evaluator (SshPolicyEvaluator →
 * SshSessionPolicies, the code the pipeline runs) under a policy denying
 * BYPASS_DENIED_PROGRAMS: `deny` cases must be refused, `allow` cases allowed.
 */
import { describe, expect, it } from "vitest";
import type { SessionInfo } from "../../core/session.js";
import { parseConfig } from "../../runtime/config.js";
import { SshPolicyEvaluator } from "../ssh-policies.js";
import { BYPASS_DENIED_PROGRAMS, SHELL_BYPASS_CASES } from "./bypass-cases.js";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

const config = parseConfig({
  connections: [{ name: "web1", type: "ssh", host: "h", user: "u", password: "p", hostKey: HOST_KEY, groups: ["agents"] }],
  policies: [{ name: "bypass-guard", match: { commands: BYPASS_DENIED_PROGRAMS }, action: "deny" }],
});

const session: SessionInfo = {
  id: "00000000-0000-4000-8000-000000000001",
  clientProtocol: "ssh", targetType: "ssh",
  connection: "web1",
  principal: { kind: "service_account", id: "sa:agent", name: "agent", groups: ["agents"] },
  clientAddress: "127.0.0.1:1",
  startedAt: new Date(),
  attributes: {},
};

const policies = new SshPolicyEvaluator(config.policies).openSession(session);

/** The evaluator's verdict for an exec request with this command. */
async function verdict(command: string): Promise<"deny" | "allow" | "hold" | "defer" | "none"> {
  const d = await policies?.evaluate({ type: "ssh.exec", session, seq: 1, command });
  return d === undefined ? "none" : d.type;
}

describe("shell bypass regression list (real SSH policy evaluator)", () => {
  it("the evaluator applies to the session", () => {
    expect(policies?.kinds).toContain("ssh.exec");
  });
  for (const c of SHELL_BYPASS_CASES) {
    it(`${c.expect}: ${JSON.stringify(c.command)}${c.note === undefined ? "" : ` (${c.note})`}`, async () => {
      expect(await verdict(c.command)).toBe(c.expect);
    });
  }
});
