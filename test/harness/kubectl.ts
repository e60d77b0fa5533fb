/** Run the real kubectl (/usr/bin/kubectl) with a kubeconfig written to a throwaway directory. */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderKubeconfig } from "../../src/cli/kubeconfig.js";
import type { FakeKube } from "./fake-kube.js";
import type { TestGateway } from "./gateway.js";

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A kubeconfig file for `server` with a bearer token; returns its path. */
export function writeKubeconfig(server: string, token: string, caPem = "", text?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "airlock-kube-"));
  const path = join(dir, "config");
  writeFileSync(
    path,
    text ??
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}"${caPem === "" ? "" : `, certificate-authority-data: "${Buffer.from(caPem).toString("base64")}"`}}}]
users: [{name: u, user: {token: "${token}"}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]
current-context: x
`,
    { mode: 0o600 },
  );
  return path;
}

export function kubectl(kubeconfig: string, args: readonly string[], options: { readonly stdin?: string; readonly timeoutMs?: number } = {}): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const cacheDir = mkdtempSync(join(tmpdir(), "airlock-kube-cache-"));
    const p = spawn("kubectl", ["--kubeconfig", kubeconfig, "--cache-dir", cacheDir, "--request-timeout", "20s", ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cacheDir },
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    if (options.stdin !== undefined) p.stdin.end(options.stdin);
    else p.stdin.end();
  });
}

export interface PortForwardProcess {
  /** The local port kubectl listens on. */
  readonly localPort: number;
  /** Everything kubectl printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with kubectl's exit code. */
  readonly exited: Promise<number>;
  stop(): Promise<number>;
}

/**
 * `kubectl port-forward ARGS` kept running: resolves once kubectl prints
 * `Forwarding from 127.0.0.1:PORT`, rejects with its output if it exits first.
 * `websockets: false` sets KUBECTL_PORT_FORWARD_WEBSOCKETS=false (plain SPDY upgrade).
 */
export function kubectlPortForward(kubeconfig: string, args: readonly string[], options: { readonly websockets?: boolean; readonly timeoutMs?: number; readonly requestTimeout?: string } = {}): Promise<PortForwardProcess> {
  const cacheDir = mkdtempSync(join(tmpdir(), "airlock-kube-cache-"));
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cacheDir };
  if (options.websockets === false) env.KUBECTL_PORT_FORWARD_WEBSOCKETS = "false";
  const p = spawn("kubectl", ["--kubeconfig", kubeconfig, "--cache-dir", cacheDir, "--request-timeout", options.requestTimeout ?? "20s", "port-forward", ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  const exited = new Promise<number>((resolve) => p.on("close", (code) => resolve(code ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`kubectl port-forward did not start: ${out}`));
    }, options.timeoutMs ?? 20_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({
          localPort: Number(m[1]),
          output: () => out,
          exited,
          stop: () => {
            p.kill("SIGTERM");
            return exited;
          },
        });
      }
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward exited: ${out}`));
    });
  });
}

/**
 * A `kubernetes` connection to the fake API server, its CA and cluster token in files as an
 * operator keeps them (the gateway reads them through `file:` references).
 */
export function kubeConnection(kube: FakeKube, name = "k8s", groups: readonly string[] = ["agents"]): { name: string; type: "kubernetes"; server: string; ca: string; token: string; groups: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "airlock-k8s-conn-"));
  writeFileSync(join(dir, "ca.pem"), kube.caPem);
  writeFileSync(join(dir, "token"), kube.token);
  return { name, type: "kubernetes", server: kube.url, ca: `file:${join(dir, "ca.pem")}`, token: `file:${join(dir, "token")}`, groups: [...groups] };
}

/** A kubeconfig for `connection` on the test gateway's HTTP listener, as `airlock kubeconfig` writes it. */
export function gatewayKubeconfig(t: TestGateway, token: string, connection = "k8s"): string {
  const caPem = readFileSync(join(t.dataDir, "tls", "cert.pem"), "utf8");
  return writeKubeconfig("", "", "", renderKubeconfig({ connection, gatewayUrl: `https://127.0.0.1:${t.gw.addresses.http?.port ?? 0}`, token, caPem, namespace: "default" }));
}
