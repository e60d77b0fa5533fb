/**
 * Bypass attempts against the Kubernetes engine (issue 15): raw HTTPS requests and the real
 * kubectl through the gateway to the API server fake (test/harness/fake-kube.ts). Every trick
 * must be refused by the gateway (a Kubernetes Status naming `airlock:`), and the fake must
 * never see the request: path tricks (encoded slashes, `..`, double slashes, case, matrix
 * parameters), method overrides, watch/exec/attach/port-forward/proxy subresources,
 * impersonation headers, dry-run, patch types, deletecollection.
 */
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { gatewayKubeconfig, kubeConnection, kubectl } from "./harness/kubectl.js";

let kube: FakeKube;
let t: TestGateway;
let cfg: string;
let token: string;
let port: number;
let gwCa: string;

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [kubeConnection(kube)],
    policies: [
      { name: "no-ns-delete", match: { verbs: ["delete"], resources: ["namespaces"] }, action: "deny" },
      { name: "no-secrets", match: { verbs: ["get"], resources: ["secrets"] }, action: "deny" },
      { name: "no-exec", match: { verbs: ["exec", "portforward"] }, action: "deny" },
      { name: "no-proxy", match: { verbs: ["proxy"] }, action: "deny" },
      { name: "keep-web", match: { verbs: ["delete"], resources: ["pods"], names: ["web-*"] }, action: "deny" },
      { name: "no-deploy-edit", match: { verbs: ["update"], resources: ["apps/deployments"] }, action: "deny" },
    ],
  });
  token = await t.mint("agent", "1h");
  port = t.gw.addresses.http?.port ?? 0;
  gwCa = readFileSync(join(t.dataDir, "tls", "cert.pem"), "utf8");
  cfg = gatewayKubeconfig(t, token);
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.put("secrets", "default", { metadata: { name: "db" }, type: "Opaque", data: { password: Buffer.from("hunter2-cluster-pw").toString("base64") } });
  kube.put("deployments", "default", { metadata: { name: "web" }, spec: { replicas: 1 } });
}, 60_000);

afterAll(async () => {
  await t.stop();
  await kube.close();
});

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** One raw request to the gateway, `path` after the connection prefix, sent byte for byte. */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path: `/k8s${path}`,
        ca: gwCa,
        headers: { authorization: `Bearer ${token}`, accept: "application/json", ...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }), ...headers },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString("utf8")));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The requests the fake saw while `fn` ran. */
async function seenBy<T>(fn: () => Promise<T>): Promise<{ result: T; seen: typeof kube.requests }> {
  const before = kube.requests.length;
  const result = await fn();
  return { result, seen: kube.requests.slice(before) };
}

/** Refused by the gateway (a 4xx Status saying `airlock:`), and nothing reached the API server. */
async function expectRefused(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const { result, seen } = await seenBy(() => raw(method, path, headers, body));
  const what = `${method} ${path} ${JSON.stringify(headers)}`;
  expect(result.status, `${what} → ${result.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
  expect(result.status, what).toBeLessThan(500);
  expect(result.body, what).toContain("airlock:");
  expect(seen.map((r) => `${r.method} ${r.url}`), `${what} reached the API server`).toEqual([]);
  return result;
}

describe("Kubernetes bypass attempts", () => {
  it("the baseline works: an allowed read passes, a denied one is refused before the API server", async () => {
    const ok = await raw("GET", "/api/v1/namespaces/default/pods/web-1");
    expect(ok.status).toBe(200);
    expect(ok.body).toContain("web-1");
    const no = await expectRefused("GET", "/api/v1/namespaces/default/secrets/db");
    expect(no.body).toContain("(rule: no-secrets)");
  });

  it("path tricks cannot reach a denied resource", async () => {
    for (const path of [
      "/api/v1/namespaces/default/secrets%2Fdb",
      "/api/v1/namespaces/default/secrets%2fdb",
      "/api/v1/namespaces/default/%73ecrets/db",
      "/api/v1/namespaces%2Fdefault%2Fsecrets/db",
      "/api/v1/namespaces/default/x/../secrets/db",
      "/api/v1/namespaces/default/x/%2e%2e/secrets/db",
      "/api/v1/namespaces/default/x/%252e%252e/secrets/db",
      "/api/v1/namespaces/default/./secrets/db",
      "/api/v1/namespaces/default//secrets/db",
      "//api/v1/namespaces/default/secrets/db",
      "/api//v1/namespaces/default/secrets/db",
      "/api/v1/namespaces/default/Secrets/db",
      "/API/v1/namespaces/default/secrets/db",
      "/api/V1/namespaces/default/secrets/db",
      "/api/v1/namespaces/default/SECRETS/db",
      "/api/v1/namespaces/default/secrets;x=y/db",
      "/api/v1/namespaces/default/secrets/db;",
      "/api/v1/namespaces/default/secrets/db/",
      "/api/v1/namespaces/default/secrets\\db",
      "/api/v1/namespaces/default/secrets%00/db",
      "/api/v1/namespaces/default/secrets/db%2F..%2F..%2Fpods",
      "/api/v1/secrets",
      "/api/v1/namespaces/default/secrets",
      "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ddb",
    ]) {
      await expectRefused("GET", path);
    }
  });

  it("method overrides are refused: a GET cannot become a DELETE", async () => {
    for (const h of ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]) {
      await expectRefused("GET", "/api/v1/namespaces/kube-system", { [h]: "DELETE" });
      await expectRefused("POST", "/api/v1/namespaces/kube-system", { [h]: "DELETE", "content-type": "application/json" }, "{}");
    }
    await expectRefused("GET", "/api/v1/namespaces/kube-system?_method=DELETE");
    expect(kube.get("namespaces", "", "kube-system")).toBeDefined();
  });

  it("watch, exec, attach, port-forward and proxy subresources are judged as what they do", async () => {
    // watch is a read of the same objects: covered by the deny on get.
    await expectRefused("GET", "/api/v1/namespaces/default/secrets?watch=true");
    await expectRefused("GET", "/api/v1/namespaces/default/secrets?watch=1&fieldSelector=metadata.name%3Ddb");
    await expectRefused("GET", "/api/v1/watch/namespaces/default/secrets");
    await expectRefused("GET", "/api/v1/watch/namespaces/default/secrets/db");
    // exec / attach / portforward without the WebSocket upgrade, and with a POST (SPDY's method).
    await expectRefused("POST", "/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true", { "content-type": "application/json" }, "");
    await expectRefused("GET", "/api/v1/namespaces/default/pods/web-1/exec?command=id");
    await expectRefused("POST", "/api/v1/namespaces/default/pods/web-1/attach?stdin=true", { "content-type": "application/json" }, "");
    await expectRefused("GET", "/api/v1/namespaces/default/pods/web-1/portforward?ports=80");
    // proxy: to a pod, a service, a node, and the legacy /proxy/ prefix.
    await expectRefused("GET", "/api/v1/namespaces/default/pods/web-1/proxy/");
    await expectRefused("GET", "/api/v1/namespaces/default/pods/web-1:8080/proxy/admin/delete");
    await expectRefused("GET", "/api/v1/namespaces/default/services/web:80/proxy/");
    await expectRefused("GET", "/api/v1/nodes/n1/proxy/configz");
    await expectRefused("GET", "/api/v1/proxy/namespaces/default/pods/web-1");
  });

  it("kubectl exec, attach, port-forward and --raw are refused with the rule", async () => {
    const exec = await kubectl(cfg, ["exec", "web-1", "--", "id"]);
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toContain("airlock:");
    const attach = await kubectl(cfg, ["attach", "web-1"], { timeoutMs: 20_000 });
    expect(attach.code).not.toBe(0);
    expect(attach.stderr).toContain("airlock:");
    const pf = await kubectl(cfg, ["port-forward", "pod/web-1", "18080:80"], { timeoutMs: 20_000 });
    expect(pf.code).not.toBe(0);
    expect(pf.stderr).toContain("airlock:");
    const rawGet = await kubectl(cfg, ["get", "--raw", "/api/v1/namespaces/default/secrets/db"]);
    expect(rawGet.code).not.toBe(0);
    expect(rawGet.stdout).not.toContain("aHVudGVy");
    const rawProxy = await kubectl(cfg, ["get", "--raw", "/api/v1/namespaces/default/pods/web-1/proxy/"]);
    expect(rawProxy.code).not.toBe(0);
  });

  it("impersonation headers never reach the API server (the gateway's credential acts for the agent only)", async () => {
    for (const h of [
      { "Impersonate-User": "system:admin" },
      { "Impersonate-Group": "system:masters" },
      { "Impersonate-Uid": "0" },
      { "Impersonate-Extra-scopes": "all" },
      { "impersonate-user": "admin", "impersonate-group": "system:masters" },
    ]) {
      await expectRefused("GET", "/api/v1/namespaces/default/pods", h);
    }
    // kubectl impersonates its discovery requests too, and prints their refusal as
    // "Forbidden: unknown" (its discovery client does not show a Status' message).
    const r = await kubectl(cfg, ["get", "pods", "--as", "system:admin", "--as-group", "system:masters"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/airlock:|\(Forbidden\)/);
    expect(r.stdout).not.toContain("web-1");
    for (const q of kube.requests) expect(Object.keys(q.headers).filter((k) => k.startsWith("impersonate-"))).toEqual([]);
  });

  it("dry-run does not change what a request is judged as", async () => {
    await expectRefused("DELETE", "/api/v1/namespaces/kube-system?dryRun=All");
    await expectRefused("DELETE", "/api/v1/namespaces/default/pods/web-1?dryRun=All&gracePeriodSeconds=0");
    const r = await kubectl(cfg, ["delete", "namespace", "kube-system", "--dry-run=server"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("(rule: no-ns-delete)");
  });

  it("every patch type, PUT and subresources of a protected resource are refused", async () => {
    const path = "/apis/apps/v1/namespaces/default/deployments/web";
    for (const [type, body] of [
      ["application/merge-patch+json", '{"spec":{"replicas":0}}'],
      ["application/strategic-merge-patch+json", '{"spec":{"replicas":0}}'],
      ["application/json-patch+json", '[{"op":"replace","path":"/spec/replicas","value":0}]'],
      ["application/apply-patch+yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 0\n"],
    ] as const) {
      await expectRefused("PATCH", `${path}?fieldManager=agent`, { "content-type": type }, body);
      await expectRefused("PATCH", `${path}/scale`, { "content-type": type }, body);
    }
    await expectRefused("PUT", path, { "content-type": "application/json" }, '{"metadata":{"name":"web"},"spec":{"replicas":0}}');
    await expectRefused("PUT", `${path}/status`, { "content-type": "application/json" }, '{"metadata":{"name":"web"}}');
    // Another group's spelling of the same resource is not a way around it.
    await expectRefused("PATCH", "/apis/APPS/v1/namespaces/default/deployments/web", { "content-type": "application/merge-patch+json" }, "{}");
    const r = await kubectl(cfg, ["scale", "deployment/web", "--replicas=0"]);
    expect(r.code).not.toBe(0);
    expect((kube.get("deployments", "default", "web")?.spec as { replicas?: number } | undefined)?.replicas).toBe(1);
  });

  it("deletecollection cannot delete what delete may not", async () => {
    await expectRefused("DELETE", "/api/v1/namespaces/default/pods");
    await expectRefused("DELETE", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb-1");
    await expectRefused("DELETE", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
    await expectRefused("DELETE", "/api/v1/namespaces");
    const r = await kubectl(cfg, ["delete", "pods", "--all"]);
    expect(r.code).not.toBe(0);
    expect(kube.get("pods", "default", "web-1")).toBeDefined();
  });
});
