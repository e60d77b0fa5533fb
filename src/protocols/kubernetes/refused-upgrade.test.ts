import { createServer, get, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusedUpgrade } from "./refused-upgrade.js";

describe("refusedUpgrade", () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === "/big") {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("x".repeat(200 * 1024));
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"kind":"Status","code":404,"reason":"NotFound"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const answer = (path: string) => new Promise<ReturnType<typeof refusedUpgrade>>((resolve, reject) => get({ host: "127.0.0.1", port, path }, (res) => resolve(refusedUpgrade(res))).on("error", reject));

  it("passes the API server's status and body on", async () => {
    expect(await answer("/exec")).toEqual({ ok: false, status: 404, body: '{"kind":"Status","code":404,"reason":"NotFound"}' });
  });

  it("keeps at most 64 KiB of a large body (whole chunks up to the cap)", async () => {
    const r = await answer("/big");
    expect(r.status).toBe(500);
    expect(r.body.length).toBeGreaterThan(0);
    expect(r.body.length).toBeLessThanOrEqual(64 * 1024);
  });
});
