import { DirectDialer } from "../../runtime/dialer.js";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { SshConnection } from "../../core/connection.js";
import { isGatewayError } from "../../core/errors.js";
import ssh2 from "ssh2";
import type { DialTarget, Dialer } from "../../core/engine.js";
import { connectUpstream } from "./upstream.js";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

const connection = (port: number): SshConnection => ({
  type: "ssh",
  name: "t",
  host: "127.0.0.1",
  port,
  user: "u",
  password: { kind: "literal", value: "p" },
  hostKey: HOST_KEY,
  groups: [],
});

const options = { dialer: new DirectDialer(), resolveSecret: (): Promise<string> => Promise.resolve("p"), timeoutMs: 500 };

let server: Server | undefined;
const held: Socket[] = [];

afterEach(async () => {
  for (const s of held) s.destroy();
  await new Promise((r) => (server === undefined ? r(undefined) : server.close(r)));
  server = undefined;
});

async function listen(onConnection: (s: Socket) => void): Promise<number> {
  server = createServer(onConnection);
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
  const a = server.address();
  return typeof a === "object" && a !== null ? a.port : 0;
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    return isGatewayError(e) ? `${e.code}: ${e.message}` : "other error";
  }
}

describe("connectUpstream over the gateway's own socket", () => {
  it("says the target is unavailable when nothing listens", async () => {
    const port = await listen(() => undefined);
    await new Promise((r) => server?.close(r));
    server = undefined;
    expect(await failure(connectUpstream(connection(port), options))).toMatch(/^GW_UPSTREAM_UNAVAILABLE: connection "t": the target (is unavailable|closed the connection)/);
  });

  it("times out (readyTimeout) when the target accepts but never speaks SSH", async () => {
    const port = await listen((s) => held.push(s));
    const t0 = Date.now();
    expect(await failure(connectUpstream(connection(port), options))).toBe('GW_UPSTREAM_UNAVAILABLE: connection "t": the target did not answer in time');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe("connectUpstream through the Dialer", () => {
  it("reaches the target only through the given Dialer", async () => {
    const pair = ssh2.utils.generateKeyPairSync("ed25519");
    const target = new ssh2.Server({ hostKeys: [pair.private] }, (client) => {
      client.on("error", () => undefined);
      client.on("authentication", (ctx) => (ctx.method === "password" && ctx.username === "u" && ctx.password === "p" ? ctx.accept() : ctx.reject(["password"])));
    });
    await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
    const address = target.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    // The connection names a host nothing resolves; only this dialer knows where the target is.
    const dialed: DialTarget[] = [];
    const direct = new DirectDialer();
    const dialer: Dialer = {
      dial: (t, o) => {
        dialed.push(t);
        return direct.dial({ host: "127.0.0.1", port }, o);
      },
    };
    try {
      const c = await connectUpstream({ ...connection(2), host: "target.invalid", hostKey: pair.public }, { ...options, dialer });
      c.end();
      expect(dialed).toEqual([{ host: "target.invalid", port: 2 }]);
    } finally {
      await new Promise((r) => target.close(r));
    }
  });

  it("says the target is unavailable when the Dialer fails", async () => {
    const dialer: Dialer = { dial: () => Promise.reject(new Error("no route")) };
    expect(await failure(connectUpstream(connection(2), { ...options, dialer }))).toBe('GW_UPSTREAM_UNAVAILABLE: connection "t": the target is unavailable');
  });
});
