import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { StreamClosedError, Tunnel, type TunnelStream } from "./tunnel.js";

/** Two tunnels wired back to back through an in-memory transport (asynchronous, like a socket). */
function pair(onOpen: (s: TunnelStream, spec: Buffer) => void, window = 32 * 1024): { gw: Tunnel; agent: Tunnel; sent: { bytes: number } } {
  const sent = { bytes: 0 };
  const peers: { agent?: Tunnel; gw?: Tunnel } = {};
  const gw = new Tunnel(
    {
      send: (b) => {
        sent.bytes += b.length;
        setImmediate(() => peers.agent?.receive(b));
      },
      close: (why) => setImmediate(() => peers.agent?.close(why)),
    },
    { role: "gateway", window, heartbeatMs: 60_000 },
  );
  const agent = new Tunnel(
    {
      send: (b) => setImmediate(() => peers.gw?.receive(b)),
      close: (why) => setImmediate(() => peers.gw?.close(why)),
    },
    { role: "agent", window, heartbeatMs: 60_000, onOpen },
  );
  peers.agent = agent;
  peers.gw = gw;
  return { gw, agent, sent };
}

describe("agent tunnel", () => {
  it("carries a stream both ways (echo), many streams at once", async () => {
    const { gw, agent } = pair((s) => {
      s.accept();
      s.pipe(s);
    });
    const payloads = Array.from({ length: 8 }, () => randomBytes(200_000));
    await Promise.all(
      payloads.map(async (p) => {
        const s = await gw.open({ host: "x", port: 1 }, { timeoutMs: 5000 });
        const chunks: Buffer[] = [];
        s.on("data", (c: Buffer) => chunks.push(c));
        s.end(p);
        await once(s, "end");
        expect(Buffer.concat(chunks).equals(p)).toBe(true);
        s.destroy();
      }),
    );
    gw.close("done");
    agent.close("done");
  });

  it("flow control: a reader that does not read holds the sender at the window", async () => {
    let remote: TunnelStream | undefined;
    const { gw, agent, sent } = pair((s) => {
      remote = s;
      s.accept();
      s.pause();
    }, 16 * 1024);
    const s = await gw.open({ host: "x", port: 1 }, { timeoutMs: 5000 });
    const before = sent.bytes;
    let done = false;
    s.write(randomBytes(1_000_000), () => (done = true));
    await new Promise((r) => setTimeout(r, 100));
    // Window (16 KiB) plus the stream's own readable buffer: nowhere near the megabyte.
    expect(sent.bytes - before).toBeLessThan(16 * 1024 + 64 * 1024 + 2048);
    expect(done).toBe(false);
    remote?.resume();
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(true);
    gw.close("done");
    agent.close("done");
  });

  it("a refused open rejects with the agent's reason", async () => {
    const { gw, agent } = pair((s) => s.refuse({ code: "unreachable", message: "cannot reach db:5432" }));
    const e: unknown = await gw.open({ host: "db", port: 5432 }, { timeoutMs: 5000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StreamClosedError);
    expect((e as StreamClosedError).reason?.code).toBe("unreachable");
    gw.close("done");
    agent.close("done");
  });

  it("losing the tunnel ends every stream with an error, and open() then fails at once", async () => {
    const { gw, agent } = pair((s) => s.accept());
    const s = await gw.open({ host: "x", port: 1 }, { timeoutMs: 5000 });
    const err = once(s, "error");
    agent.close("agent killed");
    const [e] = (await err) as [Error];
    expect(e).toBeInstanceOf(StreamClosedError);
    await new Promise((r) => setImmediate(r));
    expect(gw.closed).toBe(true);
    await expect(gw.open({ host: "x", port: 1 }, { timeoutMs: 100 })).rejects.toBeInstanceOf(StreamClosedError);
  });

  it("an open nobody answers times out", async () => {
    const { gw, agent } = pair(() => undefined);
    await expect(gw.open({ host: "x", port: 1 }, { timeoutMs: 50 })).rejects.toThrow(/within 50 ms/);
    gw.close("done");
    agent.close("done");
  });

  it("a peer that sends data beyond the window kills the tunnel (protocol error)", async () => {
    const { gw, agent } = pair((s) => s.accept(), 1024);
    const s = await gw.open({ host: "x", port: 1 }, { timeoutMs: 5000 });
    s.on("error", () => undefined);
    // Forge a DATA frame larger than the window from the agent's side.
    agent.sendFrame({ type: "data", stream: s.id, data: Buffer.alloc(4096) });
    await new Promise((r) => setTimeout(r, 20));
    expect(gw.closed).toBe(true);
  });
});
