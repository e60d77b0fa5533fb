/**
 * CEL `when:` on Kubernetes policies (issue 21) through the REAL kubectl against the fake API
 * server (test/harness/fake-kube.ts), via the gateway's HTTP listener over TLS. The facts of the
 * kind (verb, resource, `ns`, name) and the common ones (principal, groups, time) decide whether
 * a policy applies; `kubectl exec`'s command is judged with the shell facts (command, argv).
 * Each refusal is checked in the cluster too: what was refused never reached it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { gatewayKubeconfig, kubeConnection, kubectl } from "./harness/kubectl.js";
import { until } from "./harness/until.js";

let kube: FakeKube;
let t: TestGateway;
let dir: string;
/** kubeconfigs by service account. */
const cfg: Record<string, string> = {};

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  dir = mkdtempSync(join(tmpdir(), "airlock-k8s-when-"));
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "sre", groups: ["agents", "sre"] },
    ],
    connections: [kubeConnection(kube)],
    policies: [
      {
        name: "prod-deletes-for-sre",
        connections: ["k8s"],
        match: { verbs: ["delete"] },
        when: 'ns.startsWith("prod") && !("sre" in groups)',
        action: "deny",
        message: "only sre deletes in prod",
      },
      {
        name: "db-secret-not-for-agent",
        connections: ["k8s"],
        match: { verbs: ["get"], resources: ["secrets"] },
        when: 'principal.name == "agent" && name == "db" && resource == "secrets"',
        action: "deny",
      },
      {
        name: "prod-configmaps-for-sre",
        connections: ["k8s"],
        match: { resources: ["configmaps"] },
        when: 'ns.startsWith("prod") && !("sre" in groups)',
        action: "deny",
        message: "prod configuration is for sre",
      },
      {
        // Holds at any time after 2000: time is a fact the expression reads.
        name: "frozen-namespace",
        connections: ["k8s"],
        match: { verbs: ["create", "update", "patch"] },
        when: 'ns == "frozen" && now > timestamp("2000-01-01T00:00:00Z") && hour >= 0 && hour <= 23 && weekday >= 0',
        action: "deny",
        message: "the frozen namespace takes no changes",
      },
      {
        // Never holds (a time in the past): must not refuse anything.
        name: "before-2000",
        connections: ["k8s"],
        match: { verbs: ["*"] },
        when: 'now < timestamp("2000-01-01T00:00:00Z")',
        action: "deny",
      },
      {
        name: "no-etc-reads-in-pods",
        connections: ["k8s"],
        match: { commands: ["*"] },
        when: 'command == "cat" && argv.exists(a, a.startsWith("/etc/")) && !("sre" in groups)',
        action: "deny",
        message: "no reading /etc in pods",
      },
    ],
  });
  for (const sa of ["agent", "sre"]) {
    const token = await t.mint(sa, "1h");
    cfg[sa] = gatewayKubeconfig(t, token);
  }
  for (const ns of ["prod-eu", "default", "frozen"]) kube.put("namespaces", "", { metadata: { name: ns } });
  kube.put("pods", "prod-eu", { metadata: { name: "api-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("pods", "prod-eu", { metadata: { name: "api-2" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("secrets", "default", { metadata: { name: "db" }, type: "Opaque", data: { password: Buffer.from("hunter2-cluster-pw").toString("base64") } });
  kube.put("configmaps", "prod-eu", { metadata: { name: "prod-settings" }, data: { dsn: "prod-dsn-value" } });
  kube.put("configmaps", "default", { metadata: { name: "dev-settings" }, data: { dsn: "dev-dsn-value" } });
  kube.put("configmaps", "default", { metadata: { name: "scratch" }, data: {} });
  kube.put("secrets", "default", { metadata: { name: "cache" }, type: "Opaque", data: { password: Buffer.from("other-pw").toString("base64") } });
}, 120_000);

afterAll(async () => {
  await t.stop();
  await kube.close();
  rmSync(dir, { recursive: true, force: true });
});

type AuditRecord = { type: string; decision?: string; rule?: string; principal?: { id: string }; statement?: string };

async function auditRecords(): Promise<AuditRecord[]> {
  await t.gw.audit.flush();
  const r = await t.api("/v1/audit?limit=1000");
  return (r.body as { records: AuditRecord[] }).records;
}

describe("CEL when: on Kubernetes (kubectl)", () => {
  it("namespace and groups: an agent may not delete in prod-*, sre may; deletes elsewhere pass", async () => {
    const refused = await kubectl(cfg["agent"]!, ["-n", "prod-eu", "delete", "pod", "api-1"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("Error from server (Forbidden): airlock: only sre deletes in prod (rule: prod-deletes-for-sre)");
    expect(kube.get("pods", "prod-eu", "api-1")).toBeDefined();
    const allowed = await kubectl(cfg["sre"]!, ["-n", "prod-eu", "delete", "pod", "api-2", "--wait=false"]);
    expect(allowed.stderr).toBe("");
    expect(allowed.code).toBe(0);
    expect(kube.get("pods", "prod-eu", "api-2")).toBeUndefined();
    // A Namespace object's ns is its own name: deleting prod-eu whole is a delete in prod too.
    const whole = await kubectl(cfg["agent"]!, ["delete", "namespace", "prod-eu", "--wait=false"]);
    expect(whole.code).not.toBe(0);
    expect(whole.stderr).toContain("(rule: prod-deletes-for-sre)");
    expect(kube.get("namespaces", "", "prod-eu")).toBeDefined();
    const elsewhere = await kubectl(cfg["agent"]!, ["delete", "configmap", "scratch", "--wait=false"]);
    expect(elsewhere.code).toBe(0);
    expect(kube.get("configmaps", "default", "scratch")).toBeUndefined();
    const record = await until("the refusal's audit record", async () => (await auditRecords()).find((a) => a.rule === "prod-deletes-for-sre" && a.decision === "deny"));
    expect(record.principal?.id).toBe("sa:agent");
  });

  it("principal, resource and name: agent is refused the db secret only; sre reads it", async () => {
    const refused = await kubectl(cfg["agent"]!, ["get", "secret", "db", "-o", "name"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("(rule: db-secret-not-for-agent)");
    const pods = await kubectl(cfg["agent"]!, ["get", "pods", "-o", "name"]);
    expect(pods.stdout).toContain("pod/web-1");
    const sre = await kubectl(cfg["sre"]!, ["get", "secret", "db", "-o", "name"]);
    expect(sre.stderr).toBe("");
    expect(sre.stdout.trim()).toBe("secret/db");
  });

  it("a list names no object: a refusing when: over name holds for it (the list would show the db secret)", async () => {
    const list = await kubectl(cfg["agent"]!, ["get", "secrets", "-o", "json"]);
    expect(list.stdout).not.toContain(Buffer.from("hunter2-cluster-pw").toString("base64"));
    expect(list.code).not.toBe(0);
    expect(list.stderr).toContain("(rule: db-secret-not-for-agent)");
    const pinned = await kubectl(cfg["agent"]!, ["get", "secrets", "--field-selector", "metadata.name=cache", "-o", "name"]);
    expect(pinned.stderr).toBe("");
    expect(pinned.stdout.trim()).toBe("secret/cache");
  });

  it("all namespaces names no namespace: a refusing when: over ns holds for it; one namespace is judged by its name", async () => {
    const all = await kubectl(cfg["agent"]!, ["get", "configmaps", "-A", "-o", "json"]);
    expect(all.stdout).not.toContain("prod-dsn-value");
    expect(all.code).not.toBe(0);
    expect(all.stderr).toContain("airlock: prod configuration is for sre (rule: prod-configmaps-for-sre)");
    const one = await kubectl(cfg["agent"]!, ["get", "configmaps", "-n", "default", "-o", "json"]);
    expect(one.stderr).toBe("");
    expect(one.stdout).toContain("dev-dsn-value");
    const sre = await kubectl(cfg["sre"]!, ["get", "configmaps", "-A", "-o", "json"]);
    expect(sre.stderr).toBe("");
    expect(sre.stdout).toContain("prod-dsn-value");
  });

  it("time: a policy whose when: reads now/hour/weekday applies; one whose time never comes does not", async () => {
    // `kubectl create -f` sends JSON (`kubectl create configmap` sends protobuf, which the gateway refuses unread).
    const manifest = (ns: string): string => JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: ns }, data: { a: "1" } });
    const refused = await kubectl(cfg["sre"]!, ["create", "-f", "-"], { stdin: manifest("frozen") });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("airlock: the frozen namespace takes no changes (rule: frozen-namespace)");
    expect(kube.get("configmaps", "frozen", "settings")).toBeUndefined();
    const created = await kubectl(cfg["sre"]!, ["create", "-f", "-"], { stdin: manifest("default") });
    expect(created.stderr).toBe("");
    expect(created.stdout).toContain("configmap/settings created");
    expect(kube.get("configmaps", "default", "settings")).toBeDefined();
    expect((await auditRecords()).some((a) => a.rule === "before-2000")).toBe(false);
  });

  it("kubectl exec: the command's facts (command, argv) and groups decide", async () => {
    const refused = await kubectl(cfg["agent"]!, ["exec", "web-1", "--", "cat", "/etc/hostname"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("no reading /etc in pods");
    const ok = await kubectl(cfg["agent"]!, ["exec", "web-1", "--", "sh", "-c", "echo hi from $POD"]);
    expect(ok.stdout).toBe("hi from web-1\n");
    const sre = await kubectl(cfg["sre"]!, ["exec", "web-1", "--", "sh", "-c", "cat /etc/hostname >/dev/null && echo read"]);
    expect(sre.stderr).toBe("");
    expect(sre.stdout).toBe("read\n");
  });
});
