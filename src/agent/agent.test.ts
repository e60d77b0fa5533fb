import { describe, expect, it } from "vitest";
import { agentUrl, backoffDelay, resolveAgentSecret } from "./agent.js";

describe("agent helpers", () => {
  it("agentUrl: https/wss to wss, default path /agent/connect, bad input refused", () => {
    expect(agentUrl("https://gw.example.com:8781")).toBe("wss://gw.example.com:8781/agent/connect");
    expect(agentUrl("wss://gw:1/custom")).toBe("wss://gw:1/custom");
    expect(agentUrl("http://127.0.0.1:8780/")).toBe("ws://127.0.0.1:8780/agent/connect");
    expect(() => agentUrl("ftp://x")).toThrow(/unsupported scheme/);
    expect(() => agentUrl("not a url")).toThrow(/not a URL/);
  });

  it("backoff: full jitter under an exponential cap, bounded by the maximum", () => {
    expect(backoffDelay(0, 500, 30_000, () => 0.999)).toBe(499);
    expect(backoffDelay(3, 500, 30_000, () => 0.5)).toBe(2000);
    expect(backoffDelay(50, 500, 30_000, () => 0.999)).toBe(29_970);
    expect(backoffDelay(5, 500, 30_000, () => 0)).toBe(0);
  });

  it("resolves env: on the agent host, refuses anything else", async () => {
    await expect(resolveAgentSecret("env:X", { X: "v" })).resolves.toBe("v");
    await expect(resolveAgentSecret("env:MISSING", {})).rejects.toThrow(/not set on the agent host/);
    await expect(resolveAgentSecret("vault:a/b#c", {})).rejects.toThrow(/unsupported/);
  });
});
