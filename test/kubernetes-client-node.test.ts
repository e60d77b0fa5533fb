/**
 * `@kubernetes/client-node` (1.4, the JavaScript client; 2.x needs Node 22) through the gateway,
 * unchanged (issue 15): a kubeconfig printed by `airlock kubeconfig` and loaded with
 * KubeConfig.loadFromFile, then CoreV1Api list/read/create/delete, a Watch whose Secret events
 * are masked, Exec over WebSocket with stdin judged line by line, logs (masked), and a denied
 * request surfacing as the client's own ApiException carrying the refusal. The API server is
 * the fake (test/harness/fake-kube.ts); the gateway holds its token, the client an Airlock one.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { ApiException, CoreV1Api, Exec, KubeConfig, Log, V1ConfigMap, V1ObjectMeta, Watch, type V1Secret, type V1Status } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { kubeConnection } from "./harness/kubectl.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

const repo = resolve(import.meta.dirname, "..");
let kube: FakeKube;
let t: TestGateway;
let kc: KubeConfig;
let kubeconfigText: string;

function airlock(args: readonly string[], token: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [join(repo, "bin", "airlock.js"), ...args], { env: { PATH: process.env.PATH ?? "", AIRLOCK_TOKEN: token } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (code) => done({ code, stdout, stderr }));
  });
}

function collect(): { stream: Writable; text(): string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  const dir = mkdtempSync(join(tmpdir(), "airlock-k8s-cn-"));
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
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("secrets", "default", { metadata: { name: "db" }, type: "Opaque", data: { password: Buffer.from("hunter2-cluster-pw").toString("base64") } });
  kube.log("default", "web-1", "user ana.garcia@example.es logged in");

  // The kubeconfig exactly as an operator gets it: `airlock kubeconfig CONNECTION`.
  const gwCa = join(t.dataDir, "tls", "cert.pem");
  const r = await airlock(
    ["kubeconfig", "k8s", "--service-account", "agent", "--server", `https://127.0.0.1:${t.gw.addresses.http?.port ?? 0}`, "--certificate-authority", gwCa, "--namespace", "default", "--api", `http://127.0.0.1:${t.gw.addresses.api?.port ?? 0}`],
    t.gw.adminToken,
  );
  expect(r.stderr).toBe("");
  kubeconfigText = r.stdout;
  const path = join(dir, "kubeconfig");
  writeFileSync(path, kubeconfigText, { mode: 0o600 });
  kc = new KubeConfig();
  kc.loadFromFile(path);
}, 60_000);

afterAll(async () => {
  await t.stop();
  await kube.close();
});

describe("@kubernetes/client-node through the gateway", () => {
  it("the kubeconfig names the gateway and holds an Airlock token, never the cluster's", () => {
    expect(kc.getCurrentCluster()?.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/k8s$/);
    expect(kubeconfigText).not.toContain(kube.token);
    expect(readFileSync(join(t.dataDir, "tls", "cert.pem"), "utf8")).toContain("BEGIN CERTIFICATE");
  });

  it("CoreV1Api list, read, create, delete", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const before = kube.requests.length;
    const pods = await core.listNamespacedPod({ namespace: "default" });
    expect(pods.items.map((p) => p.metadata?.name)).toContain("web-1");
    const pod = await core.readNamespacedPod({ name: "web-1", namespace: "default" });
    expect(pod.status?.phase).toBe("Running");
    const body = new V1ConfigMap();
    body.metadata = new V1ObjectMeta();
    body.metadata.name = "from-js";
    body.data = { k: "v" };
    const created = await core.createNamespacedConfigMap({ namespace: "default", body });
    expect(created.metadata?.name).toBe("from-js");
    expect(kube.get("configmaps", "default", "from-js")).toBeDefined();
    await core.deleteNamespacedConfigMap({ name: "from-js", namespace: "default" });
    expect(kube.get("configmaps", "default", "from-js")).toBeUndefined();
    const seen = kube.requests.slice(before);
    expect(seen.length).toBeGreaterThanOrEqual(4);
    for (const q of seen) expect(q.authorization).toBe(`Bearer ${kube.token}`);
  });

  it("reading a Secret gives its data masked", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const s = await core.readNamespacedSecret({ name: "db", namespace: "default" });
    const value = Buffer.from(s.data?.password ?? "", "base64").toString("utf8");
    expect(value).not.toContain("hunter2");
    expect(value).toMatch(/\[/);
  });

  it("a Watch on Secrets sees the events, their data masked as they flow", async () => {
    const events: { type: string; obj: V1Secret }[] = [];
    const w = new Watch(kc);
    const ac = await w.watch(
      "/api/v1/namespaces/default/secrets",
      {},
      (type: string, obj: V1Secret) => events.push({ type, obj }),
      () => undefined,
    );
    try {
      await until("the watch's initial ADDED", () => (events.some((e) => e.obj.metadata?.name === "db") ? true : undefined));
      kube.put("secrets", "default", { metadata: { name: "api-key" }, type: "Opaque", data: { key: Buffer.from("sk-live-0123456789abcdef").toString("base64") } });
      // Delivered as it happens (not held until the next event comes along).
      const added = await until("the watch's ADDED api-key", () => events.find((e) => e.obj.metadata?.name === "api-key"));
      expect(added.type).toBe("ADDED");
      expect(Object.keys(added.obj.data ?? {})).toEqual(["key"]);
      for (const e of events) {
        for (const v of Object.values(e.obj.data ?? {})) {
          const plain = Buffer.from(v, "base64").toString("utf8");
          expect(plain).not.toContain("hunter2");
          expect(plain).not.toContain("sk-live");
        }
      }
    } finally {
      ac.abort();
    }
  });

  it("Exec over WebSocket: stdin judged line by line, a refused line never reaches the pod", async () => {
    // (`sh` reading its commands from stdin is refused as a command, fail closed; `cat` shows
    // exactly which stdin lines reached the process.)
    const out = collect();
    const err = collect();
    const stdin = new PassThrough();
    let status: V1Status | undefined;
    const ws = await new Exec(kc).exec("default", "web-1", "c", ["cat"], out.stream, err.stream, stdin, false, (s) => (status = s));
    const closed = new Promise<void>((r) => ws.once("close", () => r()));
    stdin.write("echo first\n");
    await until("the first line's echo", () => (out.text().includes("echo first") ? true : undefined));
    stdin.write("rm -rf /tmp/airlock-cn-never\n");
    await until("the refusal notice", () => (err.text().includes("(rule no-rm)") ? true : undefined));
    stdin.write("echo second\n");
    await until("the second line's echo", () => (out.text().includes("echo second") ? true : undefined));
    stdin.end();
    await closed;
    expect(out.text()).toBe("echo first\necho second\n");
    expect(err.text()).toContain("airlock:");
    expect(status?.status).toBe("Success");
  });

  it("Exec of a refused command: the status carries the refusal", async () => {
    const out = collect();
    let status: V1Status | undefined;
    const ws = await new Exec(kc).exec("default", "web-1", "c", ["rm", "-rf", "/tmp/x"], out.stream, null, null, false, (s) => (status = s));
    await new Promise<void>((r) => ws.once("close", () => r()));
    expect(status?.status).toBe("Failure");
    expect(status?.message).toContain("(rule: no-rm)");
    expect(out.text()).toBe("");
  });

  it("logs, masked: readNamespacedPodLog and Log", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const text = await core.readNamespacedPodLog({ name: "web-1", namespace: "default" });
    expect(text).toContain("[EMAIL]");
    expect(text).not.toContain("ana.garcia");
    const sink = collect();
    const finished = new Promise<void>((r) => sink.stream.once("finish", () => r()));
    await new Log(kc).log("default", "web-1", "c", sink.stream, { follow: false });
    await finished;
    expect(sink.text()).toContain("[EMAIL]");
    expect(sink.text()).not.toContain("ana.garcia");
  });

  it("a denied request is the client's own ApiException with the refusal", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const e = await core.deleteNamespace({ name: "kube-system" }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ApiException);
    const ae = e as ApiException<unknown>;
    expect(ae.code).toBe(403);
    expect(typeof ae.body === "string" ? ae.body : JSON.stringify(ae.body)).toContain("(rule: no-ns-delete)");
    expect(ae.message).toContain("airlock:");
    expect(kube.get("namespaces", "", "kube-system")).toBeDefined();
  });
});

