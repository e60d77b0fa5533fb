/**
 * The HTTP engine's response relay when something breaks mid-body (issue 15): the target cuts
 * its answer short, a masked JSON answer turns out not to be JSON, the client leaves during a
 * stream. Each must fail closed (the client never gets a clean end of a partial or unmasked
 * body), be recorded as cut off, and release the target's request. A small local target of its
 * own (the shapes the shared harness upstream does not serve), reached with Node's fetch.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

const CANARY = "relay-target-bearer-CANARY-55aa";
let target: Server;
let gw: TestGateway;
let base: string;
/** Requests whose connection the target saw close before it finished answering. */
const abandoned = new Set<string>();

beforeAll(async () => {
  target = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    req.resume();
    if (url.startsWith("/cut")) {
      // Announces 1000 bytes, sends 60, then drops the connection.
      res.writeHead(200, { "content-type": "text/plain", "content-length": "1000" });
      res.write("x".repeat(60), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (url.startsWith("/badjson")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('[{"email":"first@example.com"},');
      setTimeout(() => res.end('{"email": "second@example.com" oops not json "third@example.com"}]'), 20);
      return;
    }
    if (url.startsWith("/endless")) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const t = setInterval(() => res.write(`data: tick ${Date.now()}\n\n`), 20);
      res.on("close", () => {
        clearInterval(t);
        if (!res.writableFinished) abandoned.add(url);
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  const port = (target.address() as AddressInfo).port;
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "t", type: "http", baseUrl: `http://127.0.0.1:${port}`, auth: { bearer: CANARY }, groups: ["agents"] }],
    policies: [{ name: "pii", connections: ["t"], action: "mask", detectors: ["email"] }],
  });
  base = `http://127.0.0.1:${gw.gw.addresses.http?.port ?? 0}/t`;
}, 60_000);

afterAll(async () => {
  await gw.stop();
  target.closeAllConnections();
  await new Promise<void>((resolve) => target.close(() => resolve()));
});

/** The body as the client reads it, or the error reading it ended with. */
async function read(path: string, token: string, signal?: AbortSignal): Promise<{ ok: true; text: string } | { ok: false; error: string }> {
  try {
    const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` }, ...(signal === undefined ? {} : { signal }) });
    return { ok: true, text: await r.text() };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

/** The recording text of the session that carried `path`, once it is written. */
function recordingWith(path: string): Promise<string> {
  return until(`the recording of ${path}`, async () => {
    const list = (await gw.api("/v1/sessions?limit=100")).body as { sessions: { id: string }[] };
    for (const { id } of list.sessions) {
      const text = (await gw.api(`/v1/sessions/${id}`)).text;
      if (text.includes(path)) return text;
    }
    return undefined;
  });
}

describe("HTTP response relay failures", () => {
  it("a target that cuts its answer short: the client gets an error, not a clean short body; recorded as cut off", async () => {
    const token = await gw.mint("agent");
    const r = await read("/cut?n=1", token);
    expect(r.ok).toBe(false);
    const rec = await recordingWith("/cut?n=1");
    expect(rec).toContain("cut off");
    expect(rec).not.toContain(CANARY);
  });

  it("masked JSON that stops being JSON: the rest is never sent unmasked, the client sees the answer fail", async () => {
    const token = await gw.mint("agent");
    const r = await read("/badjson?n=1", token);
    expect(r.ok).toBe(false);
    const rec = await recordingWith("/badjson?n=1");
    expect(rec).toContain("cut off");
    expect(rec).not.toContain("first@example.com");
    expect(rec).not.toContain("third@example.com");
  });

  it("a client that leaves during a stream: the target's request is closed too", async () => {
    const token = await gw.mint("agent");
    const ac = new AbortController();
    const r = await fetch(`${base}/endless?n=1`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
    const reader = r.body?.getReader();
    const first: { value?: Uint8Array } = (await reader?.read()) ?? {};
    expect(new TextDecoder().decode(first.value)).toContain("data: tick");
    ac.abort();
    await until("the target's request closed", () => (abandoned.has("/endless?n=1") ? true : undefined));
  });

  it("the gateway still serves the same client connection's next requests after those failures", async () => {
    const token = await gw.mint("agent");
    const r = await fetch(`${base}/missing`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(404);
  });
});
