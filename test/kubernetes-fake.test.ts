/**
 * The fake API server (test/harness/fake-kube.ts) against the REAL kubectl, directly (no
 * gateway): proves the fake is faithful enough that the gateway tests through it mean something.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { kubectl, writeKubeconfig } from "./harness/kubectl.js";

let kube: FakeKube;
let cfg: string;

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  cfg = writeKubeconfig(kube.url, kube.token, kube.caPem);
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.log("default", "web-1", "started ok");
});
afterAll(async () => {
  await kube.close();
});

describe("fake-kube with the real kubectl", () => {
  it("get, apply, delete", async () => {
    const get = await kubectl(cfg, ["get", "pods"]);
    expect(get.stderr).toBe("");
    expect(get.stdout).toContain("web-1");
    const manifest = JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "default" }, data: { a: "1" } });
    const apply = await kubectl(cfg, ["apply", "-f", "-"], { stdin: manifest });
    expect(apply.stderr).toBe("");
    expect(apply.stdout).toContain("configmap/settings created");
    const yaml = await kubectl(cfg, ["get", "configmap", "settings", "-o", "jsonpath={.data.a}"]);
    expect(yaml.stdout).toBe("1");
    const del = await kubectl(cfg, ["delete", "configmap", "settings"]);
    expect(del.stdout).toContain("deleted");
    expect(kube.get("configmaps", "default", "settings")).toBeUndefined();
  });

  it("logs and exec (a real process)", async () => {
    const logs = await kubectl(cfg, ["logs", "web-1"]);
    expect(logs.stdout).toBe("started ok\n");
    const exec = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "echo hello from $POD; echo oops >&2"]);
    expect(exec.stdout).toBe("hello from web-1\n");
    expect(exec.stderr).toContain("oops");
    const fail = await kubectl(cfg, ["exec", "web-1", "--", "sh", "-c", "exit 3"]);
    expect(fail.code).toBe(3);
    const stdin = await kubectl(cfg, ["exec", "-i", "web-1", "--", "cat"], { stdin: "piped input\n" });
    expect(stdin.stdout).toBe("piped input\n");
  });

  it("refuses a wrong token", async () => {
    const bad = await kubectl(writeKubeconfig(kube.url, "wrong", kube.caPem), ["get", "pods"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Unauthorized|provide credentials/);
  });
});
