/**
 * Kubernetes through the gateway (issue 15): the REAL kubectl against the fake API server
 * (test/harness/fake-kube.ts) via the gateway's HTTP listener (TLS: kubectl sends a
 * kubeconfig's token over TLS only). The gateway presents its own cluster token; kubectl holds
 * an Airlock token only.
 */
import { readFileSync } from "node:fs";
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
    policies: [
      { name: "no-ns-delete", connections: ["k8s"], match: { verbs: ["delete"], resources: ["namespaces"] }, action: "deny" },
      { name: "no-rm", connections: ["k8s"], match: { commands: ["rm"] }, action: "deny" },
      { name: "hide-secret-data", connections: ["k8s"], match: { resources: ["secrets"] }, action: "mask" },
      { name: "pii", connections: ["k8s"], action: "mask", detectors: ["email"] },
    ],
  });
  const token = await t.mint("agent");
  cfg = gatewayKubeconfig(t, token);
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("secrets", "default", { metadata: { name: "db" }, type: "Opaque", data: { password: Buffer.from("hunter2-cluster-pw").toString("base64") } });
  kube.log("default", "web-1", "user ana.garcia@example.es logged in");
}, 60_000);

afterAll(async () => {
  await t.stop();
  await kube.close();
});

describe("kubectl through the gateway", () => {
  it("get pods works and the gateway, not kubectl, holds the cluster token", async () => {
    const r = await kubectl(cfg, ["get", "pods"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("web-1");
    const seen = kube.requests.filter((q) => q.url.includes("/pods"));
    expect(seen.length).toBeGreaterThan(0);
    for (const q of seen) expect(q.authorization).toBe(`Bearer ${kube.token}`);
    expect(readFileSync(cfg, "utf8")).not.toContain(kube.token);
    expect(r.stdout + r.stderr).not.toContain(kube.token);
  });

  it("deny delete namespaces: kubectl prints the Status message with the rule", async () => {
    const r = await kubectl(cfg, ["delete", "namespace", "kube-system"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("airlock:");
    expect(r.stderr).toContain("(rule: no-ns-delete)");
    expect(kube.get("namespaces", "", "kube-system")).toBeDefined();
  });

  it("kubectl create's protobuf body is refused with the JSON way in the message, and that way works", async () => {
    const r = await kubectl(cfg, ["create", "configmap", "gen-cm", "--from-literal=a=b"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("cannot be inspected");
    expect(r.stderr).toContain("--dry-run=client -o yaml | kubectl apply -f -");
    const manifest = await kubectl(cfg, ["create", "configmap", "gen-cm", "--from-literal=a=b", "--dry-run=client", "-o", "yaml"]);
    expect(manifest.code).toBe(0);
    const applied = await kubectl(cfg, ["apply", "-f", "-"], { stdin: manifest.stdout });
    expect(applied.stderr).toBe("");
    expect(applied.stdout).toContain("configmap/gen-cm created");
  });

  it("masks Secrets' data (decoded, masked, encoded again)", async () => {
    const r = await kubectl(cfg, ["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
    expect(r.stderr).toBe("");
    const value = Buffer.from(r.stdout, "base64").toString("utf8");
    expect(value).not.toContain("hunter2");
    expect(value).toMatch(/\[/);
  });

  it("masks logs", async () => {
    const r = await kubectl(cfg, ["logs", "web-1"]);
    expect(r.stdout).toContain("[EMAIL]");
    expect(r.stdout).not.toContain("ana.garcia");
  });

  it("exec: allowed commands run in a real process, rm is refused before it starts", async () => {
    const ok = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "echo hi from $POD"]);
    expect(ok.stdout).toBe("hi from web-1\n");
    const no = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "rm -rf /tmp/x"]);
    expect(no.code).not.toBe(0);
    expect(no.stderr).toContain("(rule: no-rm)");
  });
});
