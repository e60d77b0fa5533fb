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
import { kubectlPortForward, writeKubeconfig } from "./harness/kubectl.js";

let kube: FakeKube;
let direct: string;
let echo: Server;

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
});

afterAll(async () => {
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
