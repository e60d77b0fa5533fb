/**
 * The SSH listener's pre-auth gate (the same PreAuthGate as PostgreSQL's front door, config
 * `limits.maxUnauthenticated`, `limits.maxUnauthenticatedPerAddress`, `limits.authTimeout`):
 * held unauthenticated TCP connections beyond the per-address cap are closed at once, each
 * held one is closed at its deadline whatever it sends, and a legitimate `ssh` client from
 * another address still gets in during the flood.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshWorld, type SshWorld } from "./harness/ssh-gateway.js";

const PER_ADDRESS = 4;
let w: SshWorld;
let token: string;

beforeAll(async () => {
  w = await startSshWorld({ limits: { authTimeout: "4s", maxUnauthenticatedPerAddress: PER_ADDRESS, maxUnauthenticated: 50 } });
  token = await w.gw.mint("agent", "1h");
}, 240_000);

afterAll(async () => {
  await w.stop();
});

interface Held {
  readonly socket: Socket;
  received(): string;
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

/** A raw TCP connection to the SSH listener from `localAddress` that sends only what it is told. */
function hold(localAddress: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: w.sshPort, host: "127.0.0.1", localAddress });
    let data = "";
    let closed = false;
    socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
    const closedP = new Promise<void>((r) =>
      socket.once("close", () => {
        closed = true;
        r();
      }),
    );
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      socket.on("error", () => undefined);
      resolve({ socket, received: () => data, closed: closedP, isClosed: () => closed });
    });
  });
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("SSH pre-auth gate", () => {
  it("closes connections beyond the per-address cap at once, while a real ssh client from elsewhere logs in", async () => {
    const flood: Held[] = [];
    for (let i = 0; i < PER_ADDRESS; i++) flood.push(await hold("127.0.0.2"));
    await settle(300);
    // The held ones got the server's version line and are kept (until their deadline).
    for (const h of flood) {
      expect(h.received()).toMatch(/^SSH-2\.0-Airlock/);
      expect(h.isClosed()).toBe(false);
    }
    // Beyond the cap: closed before the version exchange, nothing sent.
    const extra: Held[] = [];
    for (let i = 0; i < 3; i++) extra.push(await hold("127.0.0.2"));
    await Promise.all(extra.map((h) => h.closed));
    for (const h of extra) expect(h.received()).toBe("");
    // Another address is not affected: a real OpenSSH client logs in and runs a command.
    const r = await w.ssh("web1", token, "echo through-the-flood");
    expect(r.stdout.trim()).toBe("through-the-flood");
    expect(r.code).toBe(0);
    expect(w.gw.logs()).toContain("too many unauthenticated connections: refused");
    for (const h of flood) h.socket.destroy();
  }, 60_000);

  it("a connection that never authenticates is closed at its deadline, and its slot freed", async () => {
    const talker = await hold("127.0.0.3");
    talker.socket.write("SSH-2.0-Slowpoke\r\n");
    await talker.closed;
    expect(talker.received()).toMatch(/^SSH-2\.0-Airlock/);
    // Its slot is free again: the cap counts only live unauthenticated connections.
    const again: Held[] = [];
    for (let i = 0; i < PER_ADDRESS; i++) again.push(await hold("127.0.0.3"));
    await settle(300);
    for (const h of again) expect(h.received()).toMatch(/^SSH-2\.0-Airlock/);
    for (const h of again) h.socket.destroy();
  }, 60_000);

  it("an authenticated session does not hold a slot, nor is it cut at the deadline", async () => {
    const c = await w.ssh2Client("web1", token);
    try {
      // Fill this address's slots after the session authenticated: all are accepted.
      const others: Held[] = [];
      for (let i = 0; i < PER_ADDRESS; i++) others.push(await hold("127.0.0.1"));
      await settle(300);
      for (const h of others) expect(h.received()).toMatch(/^SSH-2\.0-Airlock/);
      for (const h of others) h.socket.destroy();
      // Past the 4 s deadline, the authenticated session still runs commands.
      await settle(5000);
      const out = await new Promise<string>((resolve, reject) => {
        c.exec("echo still-here", (err, stream) => {
          if (err !== undefined) {
            reject(err);
            return;
          }
          let s = "";
          stream.on("data", (d: Buffer) => (s += d.toString()));
          stream.on("close", () => resolve(s));
        });
      });
      expect(out.trim()).toBe("still-here");
    } finally {
      c.end();
    }
  }, 60_000);
});
