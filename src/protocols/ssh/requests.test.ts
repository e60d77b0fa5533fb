import { describe, expect, it } from "vitest";
import type { SessionInfo } from "../../core/session.js";
import { FeatureEvaluator } from "../../policy/features.js";
import { AGENT_REQUEST, X11_REQUEST, envRequest, globalRequest, safeName, subsystemRequest, type UnservedRequest } from "./requests.js";

const session: SessionInfo = {
  id: "00000000-0000-4000-8000-000000000001",
  clientProtocol: "ssh",
  targetType: "ssh",
  connection: "web1",
  principal: { kind: "service_account", id: "sa:a", name: "a", groups: ["agents"] },
  clientAddress: "127.0.0.1:1",
  startedAt: new Date(),
  attributes: {},
};

async function judged(r: UnservedRequest): Promise<string> {
  const d = await new FeatureEvaluator().openSession().evaluate({ type: "protocol.request", session, seq: 1, feature: r.feature, detail: r.detail });
  if (d === undefined) return "none";
  return d.type === "deny" ? `deny:${d.code}:${d.rule ?? ""}:${d.message}` : d.type;
}

describe("SSH requests the gateway does not serve", () => {
  it("are each a named feature that the feature evaluator refuses", async () => {
    expect(await judged(envRequest("LANG"))).toBe("deny:GW_UNSUPPORTED:unsupported-feature:the environment variable LANG is not supported through the gateway");
    expect(await judged(X11_REQUEST)).toBe("deny:GW_UNSUPPORTED:unsupported-feature:X11 forwarding is not supported through the gateway");
    expect(await judged(AGENT_REQUEST)).toBe("deny:GW_UNSUPPORTED:unsupported-feature:agent forwarding is not supported through the gateway");
    expect(await judged(subsystemRequest("netconf"))).toBe("deny:GW_UNSUPPORTED:unsupported-feature:the subsystem netconf is not supported through the gateway");
    expect(await judged(globalRequest("tcpip-forward", { bindAddr: "localhost", bindPort: 8080 }))).toBe(
      "deny:GW_UNSUPPORTED:unsupported-feature:remote port forwarding of localhost:8080 is not supported through the gateway",
    );
    expect(await judged(globalRequest("streamlocal-forward@openssh.com", { socketPath: "/tmp/s.sock" }))).toBe(
      "deny:GW_UNSUPPORTED:unsupported-feature:remote socket forwarding of /tmp/s.sock is not supported through the gateway",
    );
  });

  it("name features by protocol, request and (for subsystems and globals) the client's name for it", () => {
    expect([envRequest("X").feature, X11_REQUEST.feature, AGENT_REQUEST.feature]).toEqual(["ssh.env", "ssh.x11", "ssh.agent"]);
    expect(subsystemRequest("netconf").feature).toBe("ssh.subsystem.netconf");
    expect(globalRequest("tcpip-forward", {}).feature).toBe("ssh.global.tcpip-forward");
    expect(globalRequest("cancel-streamlocal-forward@openssh.com", {}).feature).toBe("ssh.global.cancel-streamlocal-forward@openssh.com");
  });

  it("describe an env request by the variable's name only, never its value", () => {
    const r = envRequest("AWS_SECRET_ACCESS_KEY");
    expect(r.detail).toBe("the environment variable AWS_SECRET_ACCESS_KEY");
    expect(JSON.stringify(r)).not.toContain("wJalr");
  });

  it("bound and clean names the client chose", () => {
    expect(safeName("a b\u001b[2J\n")).toBe("a_b__2J_");
    expect(safeName("")).toBe("_");
    expect(safeName("x".repeat(500))).toBe(`${"x".repeat(64)}…`);
    expect(subsystemRequest("evil\nname").feature).toBe("ssh.subsystem.evil_name");
  });
});
