/**
 * A real local HTTP API for the HTTP engine's tests: JSON endpoints (with PII), an echo of
 * what it received (method, path, headers, body: the canary for credentials), SSE, gzip and
 * brotli, redirects, a slow endpoint, a big JSON array, n bytes of text (`/bytes`), a WebSocket
 * echo and an OAuth2 client-credentials token endpoint. Loopback, free port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { WebSocketServer } from "ws";

export interface Upstream {
  readonly port: number;
  readonly url: string;
  /** Every request as the upstream saw it. */
  readonly seen: { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }[];
  stop(): Promise<void>;
}

export const UPSTREAM_CLIENT_ID = "airlock-client";
export const UPSTREAM_CLIENT_SECRET = "client-secret-CANARY-9f8e7d";
export const UPSTREAM_OAUTH_TOKEN = "oauth-access-CANARY-1a2b3c";

export async function startUpstream(): Promise<Upstream> {
  const seen: Upstream["seen"] = [];
  let port = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const url = new URL(req.url ?? "/", "http://x");
      const json = (status: number, v: unknown, extra: Record<string, string> = {}): void => {
        const text = JSON.stringify(v);
        res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...extra });
        res.end(text);
      };
      switch (url.pathname) {
        case "/oauth/token": {
          const expected = `Basic ${Buffer.from(`${UPSTREAM_CLIENT_ID}:${UPSTREAM_CLIENT_SECRET}`).toString("base64")}`;
          if (req.headers.authorization !== expected) return json(401, { error: "invalid_client" });
          return json(200, { access_token: UPSTREAM_OAUTH_TOKEN, token_type: "Bearer", expires_in: 3600 });
        }
        case "/oauth/protected":
          if (req.headers.authorization !== `Bearer ${UPSTREAM_OAUTH_TOKEN}`) return json(401, { error: "bad token" });
          return json(200, { ok: true });
        case "/echo":
          return json(200, { method: req.method, path: req.url, headers: req.headers, body });
        case "/users":
          return json(200, [
            { id: 1, name: "Ana", email: "ana.garcia@example.es", card: "4111 1111 1111 1111", ssn: "078-05-1120" },
            { id: 2, name: "Bob", email: "bob@example.com", card: "5500 0000 0000 0004", ssn: "219-09-9999" },
          ]);
        case "/big": {
          const n = Number(url.searchParams.get("n") ?? "1000");
          res.writeHead(200, { "content-type": "application/json" });
          res.write("[");
          for (let i = 0; i < n; i++) res.write(`${i === 0 ? "" : ","}{"i":${i},"email":"user${i}@example.com","note":"plain text ${i}"}`);
          res.end("]");
          return;
        }
        case "/bytes": {
          // n bytes of text in 1000-byte writes; with Content-Length unless chunked=1.
          const n = Number(url.searchParams.get("n") ?? "1000");
          const chunked = url.searchParams.get("chunked") === "1";
          res.writeHead(200, { "content-type": "text/plain", ...(chunked ? {} : { "content-length": n }) });
          for (let i = 0; i < n; i += 1000) res.write("x".repeat(Math.min(1000, n - i)));
          res.end();
          return;
        }
        case "/gzip": {
          const z = gzipSync(JSON.stringify({ email: "zip@example.com", n: 1 }));
          res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": z.length });
          return res.end(z);
        }
        case "/br": {
          const z = brotliCompressSync("contact: brotli@example.com\n");
          res.writeHead(200, { "content-type": "text/plain", "content-encoding": "br", "content-length": z.length });
          return res.end(z);
        }
        case "/text":
          res.writeHead(200, { "content-type": "text/plain" });
          return res.end("Write to carol@example.com\ncard 4111 1111 1111 1111\n");
        case "/sse": {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          let i = 0;
          const t = setInterval(() => {
            i++;
            res.write(`event: msg\ndata: {"n":${i},"email":"sse${i}@example.com"}\n\n`);
            if (i === 3) {
              clearInterval(t);
              res.end();
            }
          }, 20);
          return;
        }
        case "/redirect":
          res.writeHead(302, { location: `http://127.0.0.1:${port}/users?from=redirect` });
          return res.end();
        case "/cookie":
          res.writeHead(200, { "set-cookie": "sid=s3ss10n-value; HttpOnly", "content-type": "text/plain" });
          return res.end("ok\n");
        case "/slow":
          setTimeout(() => json(200, { slow: true }), 300);
          return;
        case "/payments":
          return json(201, { id: "pay_1", received: body.length });
        case "/forbidden":
          // The target's own JSON error, trying to pass itself off as the gateway's refusal.
          return json(403, { error: { code: "GW_POLICY_DENIED", message: "not yours" } }, { "x-airlock-refusal": "GW_POLICY_DENIED" });
        default:
          return json(404, { error: "not found", path: url.pathname });
      }
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    seen.push({ method: "UPGRADE", url: req.url ?? "", headers: req.headers, body: "" });
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Text echoed as `echo: …`; JSON `{"say": T}` answered with the text `echo: T`, `{"secret": true}` with the
      // credential the target was sent, any other JSON echoed as is.
      ws.on("message", (m, isBinary) => {
        const text = Buffer.isBuffer(m) ? m.toString("utf8") : "?";
        seen.push({ method: "WS", url: req.url ?? "", headers: {}, body: isBinary ? "(binary)" : text });
        if (isBinary) return ws.send(m);
        let doc: { say?: string; secret?: boolean } | undefined;
        try {
          doc = JSON.parse(text) as { say?: string; secret?: boolean };
        } catch {
          return ws.send(`echo: ${text}`);
        }
        if (doc.secret === true) return ws.send(`you sent ${String(req.headers.authorization)}`);
        ws.send(doc.say === undefined ? text : `echo: ${doc.say}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    stop: () =>
      new Promise((resolve) => {
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
