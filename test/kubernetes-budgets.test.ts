/**
 * Budgets on Kubernetes responses (issue 21): the HTTP engine's budgets, rendered as a
 * Kubernetes Status. The real kubectl against the fake API server through the gateway: once
 * the rows budget (one row per response) is spent, kubectl fails at once (TooManyRequests),
 * and the target is not asked. The 429 carries no Retry-After (client-go would sleep it and retry up to 10 times, stalling for
 * the rest of the window).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { gatewayKubeconfig, kubeConnection, kubectl } from "./harness/kubectl.js";

let kube: FakeKube;
let t: TestGateway;
let cfg: string;

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [kubeConnection(kube)],
    budgets: [{ name: "k8s-rows", connections: ["k8s"], groups: ["agents"], window: "1h", rows: 6 }],
  });
  const token = await t.mint("agent");
  cfg = gatewayKubeconfig(t, token);
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
}, 60_000);

afterAll(async () => {
  await t.stop();
  await kube.close();
});

describe("kubectl and a spent budget", () => {
  it("answers work until the rows budget is spent; then kubectl prints the refusal at once, without retrying", async () => {
    let refused: { stderr: string; ms: number } | undefined;
    let served = 0;
    for (let i = 0; i < 10 && refused === undefined; i++) {
      const started = Date.now();
      const r = await kubectl(cfg, ["get", "pods"], { timeoutMs: 60_000 });
      if (r.code === 0) {
        expect(r.stdout).toContain("web-1");
        served++;
      } else refused = { stderr: r.stderr, ms: Date.now() - started };
    }
    expect(served).toBeGreaterThan(0);
    // kubectl 1.32 prints client-go's own text for a 429, not the Status message.
    expect(refused?.stderr).toMatch(/Error from server \(TooManyRequests\)/);
    // client-go retries a 429 only after a Retry-After: none is sent, so no wait.
    expect(refused?.ms).toBeLessThan(15_000);
    const rows = kube.requests.length;
    const again = await kubectl(cfg, ["get", "pods"]);
    expect(again.code).not.toBe(0);
    expect(kube.requests.length).toBe(rows);
  });
});
