/**
 * `kubectl port-forward` (issue 15): the REAL kubectl 1.32, SPDY/3.1 tunnelled in a WebSocket
 * (`SPDY/3.1+portforward.k8s.io`, its default) and plain `Upgrade: SPDY/3.1`
 * (KUBECTL_PORT_FORWARD_WEBSOCKETS=false), first straight against the fake API server (its
 * SPDY side is faithful enough for kubectl), then through the gateway: judged as verb
 * `portforward` on the pod before the tunnel opens, relayed, its facts recorded and audited.
 */
import { connect, createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKube } from "./harness/fake-kube.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { gatewayKubeconfig, kubeConnection, kubectlPortForward, writeKubeconfig } from "./harness/kubectl.js";
import { until } from "./harness/until.js";

let kube: FakeKube;
let direct: string;
let echo: Server;
let t: TestGateway;
let viaGateway: string;
let opsToken: string;

/** Send `text` through localhost:port and read until `expectLen` bytes came back (or the peer closed). */
function roundTrip(port: number, text: string, expectLen = Buffer.byteLength(text)): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no echo: got ${got.length} bytes`));
    }, 15_000);
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= expectLen) {
        clearTimeout(timer);
        s.end();
        resolve(got.toString());
      }
    });
    s.on("error", reject);
    s.on("close", () => {
      clearTimeout(timer);
      resolve(got.toString());
    });
    s.write(text);
  });
}

beforeAll(async () => {
  kube = new FakeKube();
  await kube.start();
  direct = writeKubeconfig(kube.url, kube.token, kube.caPem);
  echo = createServer((s) => {
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => s.write(Buffer.from(d.toString().toUpperCase())));
    s.on("end", () => s.end());
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  kube.put("pods", "default", { metadata: { name: "web-1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  kube.forwardPort("default", "web-1", 7000, (echo.address() as AddressInfo).port);
  kube.put("namespaces", "", { metadata: { name: "prod" } });
  kube.put("pods", "prod", { metadata: { name: "db-1" }, spec: { containers: [{ name: "c", image: "postgres" }] } });
  kube.forwardPort("prod", "db-1", 7000, (echo.address() as AddressInfo).port);
  kube.put("namespaces", "", { metadata: { name: "staging" } });
  kube.put("pods", "staging", { metadata: { name: "cache-1" }, spec: { containers: [{ name: "c", image: "redis" }] } });
  kube.forwardPort("staging", "cache-1", 7000, (echo.address() as AddressInfo).port);

  t = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    tls: { selfSigned: true },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "ops1", groups: ["ops"] },
    ],
    connections: [kubeConnection(kube)],
    policies: [
      { name: "no-pf-prod", connections: ["k8s"], match: { verbs: ["portforward"], namespaces: ["prod"] }, action: "deny" },
      { name: "staging-pf", connections: ["k8s"], match: { verbs: ["portforward"], namespaces: ["staging"] }, action: "require_approval", approvers: ["ops"] },
    ],
  });
  opsToken = await t.mint("ops1", "1h");
  const token = await t.mint("agent");
  viaGateway = gatewayKubeconfig(t, token);
}, 60_000);

afterAll(async () => {
  await t.stop();
  await kube.close();
  echo.close();
});

describe("port-forward straight against the fake (the fake is faithful)", () => {
  for (const websockets of [true, false]) {
    it(`kubectl port-forward, ${websockets ? "SPDY in a WebSocket" : "plain SPDY upgrade"}`, async () => {
      const pf = await kubectlPortForward(direct, ["pod/web-1", ":7000"], { websockets });
      try {
        expect(await roundTrip(pf.localPort, "hello")).toBe("HELLO");
        expect(await roundTrip(pf.localPort, "again")).toBe("AGAIN");
        const big = "x".repeat(300_000);
        expect(await roundTrip(pf.localPort, big)).toBe(big.toUpperCase());
      } finally {
        await pf.stop();
      }
      expect(kube.portForwards.filter((f) => f.form === (websockets ? "websocket" : "spdy")).length).toBe(3);
    });
  }
});

/** The recorded facts of a closed port-forward whose text contains `what`, from the session recordings. */
async function recordedFacts(what: string): Promise<string> {
  return until(`the port-forward's recorded facts (${what})`, async () => {
    const sessions = (await t.api("/v1/sessions?limit=200")).body as { sessions: { id: string }[] };
    for (const s of sessions.sessions) {
      const show = JSON.stringify((await t.api(`/v1/sessions/${s.id}`)).body);
      const m = new RegExp(`${what}[^"]*closed\\)","decision":"allow","message":"([^"]*)"`).exec(show);
      if (m !== null && m[1] !== undefined && !seenFacts.has(m[1])) return m[1];
    }
    return undefined;
  });
}
const seenFacts = new Set<string>();

describe("port-forward through the gateway", () => {
  for (const websockets of [true, false]) {
    const form = websockets ? "websocket" : "spdy";
    it(`relays kubectl's ${websockets ? "WebSocket-tunnelled" : "plain"} SPDY with the gateway's credential, and records the facts`, async () => {
      const before = kube.requests.length;
      const pf = await kubectlPortForward(viaGateway, ["pod/web-1", ":7000"], { websockets });
      const big = "y".repeat(200_000);
      try {
        expect(await roundTrip(pf.localPort, "hello")).toBe("HELLO");
        expect(await roundTrip(pf.localPort, big)).toBe(big.toUpperCase());
      } finally {
        await pf.stop();
      }
      const upgrades = kube.requests.slice(before).filter((q) => (q.url.split("?")[0] ?? "").endsWith("/pods/web-1/portforward"));
      expect(upgrades.map((q) => q.headers.upgrade)).toEqual([websockets ? "websocket" : "SPDY/3.1"]);
      expect(upgrades[0]?.authorization).toBe(`Bearer ${kube.token}`);
      expect(upgrades[0]?.headers.upgrade).toBe(websockets ? "websocket" : "SPDY/3.1");
      expect(pf.output()).not.toContain(kube.token);
      const facts = await recordedFacts("portforward pods/portforward web-1 -n default");
      seenFacts.add(facts);
      expect(facts).toContain(`form=${form}`);
      expect(facts).toContain("ports=7000 connections=2");
      expect(facts).toContain(`bytesFromClient=${5 + big.length} bytesToClient=${5 + big.length}`);
      expect(facts).toMatch(/durationMs=\d+/);
      const audit = await until("the port-forward's audit record", async () => {
        const r = await t.api("/v1/audit?limit=1000");
        const records = (r.body as { records: { details?: Record<string, unknown> }[] }).records;
        return records.some((x) => x.details?.kind === "k8s.portforward" && x.details.form === form && x.details.bytesFromClient === 5 + big.length) ? r.text : undefined;
      });
      expect(audit).not.toContain(kube.token);
    }, 60_000);

    it(`a policy denying port-forward in prod refuses it before the tunnel opens (${form}), and kubectl shows why`, async () => {
      const before = kube.requests.length;
      const denials = async (): Promise<number> => {
        const audit = (await t.api("/v1/audit?limit=1000")).body as { records: { decision?: string; rule?: string; statement?: string }[] };
        return audit.records.filter((r) => r.decision === "deny" && r.rule === "no-pf-prod" && r.statement === "portforward pods/portforward db-1 -n prod").length;
      };
      const denied = await denials();
      // (Another request timeout than the other form's: a refused WebSocket is remembered for kubectl's SPDY retry of the same URL.)
      const err = await kubectlPortForward(viaGateway, ["-n", "prod", "pod/db-1", ":7000"], { websockets, requestTimeout: websockets ? "20s" : "21s" }).then(
        async (pf) => {
          await pf.stop();
          return "it started";
        },
        (e: unknown) => String(e),
      );
      expect(err).toContain("error upgrading connection: airlock: portforward pods/portforward db-1 -n prod is not allowed here");
      expect(err).toContain("(rule: no-pf-prod)");
      expect(kube.requests.slice(before).filter((q) => q.url.includes("/portforward"))).toEqual([]);
      expect(kube.portForwards.filter((f) => f.namespace === "prod")).toEqual([]);
      // The refusal is audited (written after the answer: waited for).
      await until("the refused port-forward's audit record", async () => ((await denials()) > denied ? true : undefined));
    }, 60_000);
  }
});

describe("port-forward held for approval", () => {
  it("kubectl waits while pending; nothing reaches the API server; once approved the tunnel opens", async () => {
    const before = kube.requests.length;
    const started = kubectlPortForward(viaGateway, ["-n", "staging", "pod/cache-1", ":7000"], { timeoutMs: 60_000 });
    const req = await until("a pending port-forward approval", async () => {
      const r = await t.api("/v1/approvals?status=pending");
      return (r.body as { requests: { id: string; statement: string }[] }).requests.find((q) => q.statement.includes("portforward pods/portforward cache-1 -n staging"));
    });
    expect(kube.requests.slice(before).filter((q) => q.url.includes("/portforward"))).toEqual([]);
    expect((await t.api(`/v1/approvals/${req.id}/approve`, { token: opsToken, body: {} })).status).toBe(200);
    const pf = await started;
    try {
      expect(await roundTrip(pf.localPort, "approved")).toBe("APPROVED");
    } finally {
      await pf.stop();
    }
    expect(kube.portForwards.filter((f) => f.namespace === "staging").length).toBe(1);
  }, 90_000);
});
