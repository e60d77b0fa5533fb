/**
 * HTTP and Kubernetes targets through a network-resident agent (issue 15 × issue 19): the
 * target leg of the HTTP engine goes through the Dialer, so a connection with `via:` reaches
 * its target over a real `airlock agent` process's tunnel (bin/airlock.js: run
 * `npm run build` first). Plain processes, no network namespace (test/agent.test.ts proves the
 * agent reaches what the gateway cannot); here the proof is the agent's streams, and the 503
 * when no agent of the group is connected.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderKubeconfig } from "../src/cli/kubeconfig.js";
import { FakeKube } from "./harness/fake-kube.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";
import { kubectl, writeKubeconfig } from "./harness/kubectl.js";
import { runProcess } from "./harness/redis.js";
import { until } from "./harness/until.js";

const repo = join(import.meta.dirname, "..");
const CANARY = "via-agent-bearer-CANARY-51f0";
let up: Upstream;
let kube: FakeKube;
let t: TestGateway;
let base = "";
let cfg = "";
let agent: ChildProcess | undefined;
let agentLog = "";
let caFile = "";
let edgeToken = "";

function startAgent(): ChildProcess {
  const child = spawn(
    process.execPath,
    [join(repo, "bin", "airlock.js"), "agent", "--gateway", `wss://127.0.0.1:${t.gw.addresses.agents?.port ?? 0}`, "--token", edgeToken, "--group", "dc-east", "--name", "east-1", "--ca", caFile],
    { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "ignore", "pipe"] },
  );
  child.stderr.setEncoding("utf8").on("data", (d: string) => (agentLog += d));
  return child;
}

const streams = (): number => t.gw.agents.list().reduce((n, a) => n + a.streams, 0);

beforeAll(async () => {
  up = await startUpstream();
  kube = new FakeKube();
  await kube.start();
  const dir = mkdtempSync(join(tmpdir(), "airlock-http-agent-"));
  writeFileSync(join(dir, "ca.pem"), kube.caPem);
  writeFileSync(join(dir, "token"), kube.token);
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0", agents: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [
      { name: "edge", groups: ["edge-east"] },
      { name: "bot", groups: ["agents"] },
    ],
    agents: { groups: [{ name: "dc-east", allow: ["edge-east"] }], heartbeat: "1s" },
    connections: [
      { name: "api", type: "http", baseUrl: up.url, via: "dc-east", auth: { bearer: CANARY }, groups: ["agents"] },
      { name: "k8s", type: "kubernetes", server: kube.url, via: "dc-east", ca: `file:${join(dir, "ca.pem")}`, token: `file:${join(dir, "token")}`, groups: ["agents"] },
    ],
    policies: [
      { name: "no-admin", connections: ["api"], match: { paths: ["/admin/*"] }, action: "deny" },
      { name: "pii", action: "mask", detectors: ["email"] },
    ],
  });
  caFile = join(t.dataDir, "tls", "cert.pem");
  edgeToken = await t.mint("edge", "1h");
  base = `https://127.0.0.1:${t.gw.addresses.http?.port ?? 0}`;
  const bot = await t.mint("bot", "1h");
  cfg = writeKubeconfig("", "", "", renderKubeconfig({ connection: "k8s", gatewayUrl: base, token: bot, caPem: readFileSync(caFile, "utf8"), namespace: "default" }));
  kube.put("pods", "default", { metadata: { name: "web-1", annotations: { owner: "ops@example.com" } }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  agent = startAgent();
  await until("the agent connected", () => (t.gw.agents.list().length === 1 ? true : undefined), 30_000).catch((e: unknown) => {
    throw new Error(`${String(e)}; agent log: ${agentLog.slice(0, 2000)}`);
  });
}, 120_000);

afterAll(async () => {
  agent?.kill("SIGKILL");
  await t.stop();
  await up.stop();
  await kube.close();
});

async function curl(token: string, path: string): Promise<{ status: string; body: string; headers: string }> {
  const r = await runProcess("curl", ["-sS", "--max-time", "20", "--cacert", caFile, "-D", "-", "-H", `Authorization: Bearer ${token}`, "-w", "\n%{http_code}", `${base}${path}`]);
  const lines = r.stdout.split("\n");
  const status = (lines.pop() ?? "").trim();
  const text = lines.join("\n");
  const split = text.indexOf("\r\n\r\n");
  return { status, headers: text.slice(0, split), body: text.slice(split + 4) };
}

describe("HTTP and Kubernetes through a network agent (via:)", () => {
  it("curl reaches the HTTP target over the agent's tunnel: credential injected, response masked, deny before the target", async () => {
    const token = await t.mint("bot");
    const before = up.seen.length;
    const r = await curl(token, "/api/users");
    expect(r.status).toBe("200");
    const users = JSON.parse(r.body) as { name: string; email: string }[];
    expect(users.map((u) => [u.name, u.email])).toEqual([["Ana", "[EMAIL]"], ["Bob", "[EMAIL]"]]);
    expect(up.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(up.seen.length).toBe(before + 1);
    // The kept-alive connection to the target is a stream of the agent's tunnel.
    expect(streams()).toBeGreaterThan(0);
    const denied = await curl(token, "/api/admin/x");
    expect(denied.status).toBe("403");
    expect(up.seen.length).toBe(before + 1);
    expect(r.body + r.headers + agentLog).not.toContain(CANARY);
  });

  it("kubectl get and exec reach the API server over the agent (TLS to the API server inside the tunnel)", async () => {
    const get = await kubectl(cfg, ["get", "pods", "-o", "jsonpath={.items[0].metadata.annotations.owner}"]);
    expect(get.stderr).toBe("");
    expect(get.stdout).toBe("[EMAIL]");
    const exec = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "echo via agent $POD"]);
    expect(exec.stderr).toBe("");
    expect(exec.stdout).toBe("via agent web-1\n");
    for (const q of kube.requests) expect(q.authorization).toBe(`Bearer ${kube.token}`);
  });

  it("no agent of the group connected: 503 GW_AGENT_UNAVAILABLE, marked as the gateway's; back once an agent returns", async () => {
    const token = await t.mint("bot");
    agent?.kill("SIGKILL");
    await until("the agent gone", () => (t.gw.agents.list().length === 0 ? true : undefined), 20_000);
    const r = await curl(token, "/api/users");
    expect(r.status).toBe("503");
    expect(r.headers.toLowerCase()).toContain("x-airlock-refusal: gw_agent_unavailable");
    expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe("GW_AGENT_UNAVAILABLE");
    // kubectl exec's WebSocket to the API server takes the same road: no agent, no exec.
    const exec = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "echo should-not-run"]);
    expect(exec.code).not.toBe(0);
    expect(exec.stdout).not.toContain("should-not-run");
    agent = startAgent();
    await until("the agent back", () => (t.gw.agents.list().length === 1 ? true : undefined), 30_000);
    const again = await curl(token, "/api/users");
    expect(again.status).toBe("200");
  });
});
