/**
 * `kubectl exec` held for approval (issue 15): a `require_approval` policy for exec in `prod-*`
 * namespaces. The real kubectl waits on the WebSocket handshake while the request is pending;
 * approved through the CLI (`airlock approvals approve`, bin/airlock.js: `npm run build` first)
 * the command runs in the fake API server's real shell; denied through the API it never starts
 * and kubectl prints the gateway's message. Exec elsewhere is not held.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { gatewayKubeconfig, kubeConnection, kubectl } from "./harness/kubectl.js";
import { until } from "./harness/until.js";

const repo = join(import.meta.dirname, "..");
let kube: FakeKube;
let t: TestGateway;
let cfg = "";
let opsToken = "";

interface ApprovalJson {
  id: string;
  status: string;
  statement: string;
  protocol?: string;
}

async function pendingExec(): Promise<ApprovalJson> {
  return until("a pending kubernetes approval", async () => {
    const r = await t.api("/v1/approvals?status=pending");
    return (r.body as { requests: ApprovalJson[] }).requests.find((q) => q.statement.includes("exec"));
  });
}

function airlockCli(args: readonly string[], token: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(repo, "bin", "airlock.js"), ...args, "--api", `http://127.0.0.1:${t.gw.addresses.api?.port ?? 0}`], { env: { PATH: process.env.PATH ?? "", AIRLOCK_TOKEN: token } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "ops1", groups: ["ops"] },
    ],
    connections: [kubeConnection(kube)],
    policies: [{ name: "prod-exec", connections: ["k8s"], match: { verbs: ["exec"], namespaces: ["prod-*"] }, action: "require_approval", approvers: ["ops"] }],
  });
  opsToken = await t.mint("ops1", "1h");
  const token = await t.mint("agent", "1h");
  cfg = gatewayKubeconfig(t, token);
  kube.put("namespaces", "", { metadata: { name: "prod-eu" } });
  kube.put("pods", "prod-eu", { metadata: { name: "api-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
}, 60_000);

afterAll(async () => {
  await t.stop();
  await kube.close();
});

describe("kubectl exec in prod-* needs approval", () => {
  it("waits while pending, runs once approved with the CLI", async () => {
    let settled = false;
    const run = kubectl(cfg, ["exec", "-n", "prod-eu", "api-1", "--", "sh", "-c", "echo approved-run $POD"], { timeoutMs: 60_000 }).finally(() => (settled = true));
    const req = await pendingExec();
    expect(req.statement).toContain("prod-eu");
    // Still waiting: nothing ran.
    await new Promise((r) => setTimeout(r, 500));
    expect(settled).toBe(false);
    const approved = await airlockCli(["approvals", "approve", req.id], opsToken);
    expect(approved.stderr).toBe("");
    expect(approved.code).toBe(0);
    const r = await run;
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("approved-run api-1\n");
  });

  it("denied through the API: the command never starts and kubectl shows why", async () => {
    const run = kubectl(cfg, ["exec", "-n", "prod-eu", "api-1", "--", "sh", "-c", "echo must-not-run"], { timeoutMs: 60_000 });
    const req = await pendingExec();
    const d = await t.api(`/v1/approvals/${req.id}/deny`, { token: opsToken, body: { reason: "not now" } });
    expect(d.status).toBe(200);
    const r = await run;
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain("must-not-run");
    expect(r.stderr).toContain("airlock:");
    expect(r.stderr).toContain("not now");
  });

  it("exec outside prod-* is not held", async () => {
    const r = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "echo free"]);
    expect(r.stdout).toBe("free\n");
  });
});
