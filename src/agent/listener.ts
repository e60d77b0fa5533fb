/**
 * `listen.agents`: a listener that serves only agent tunnels (WebSocket at /agent/connect),
 * over TLS with the gateway's certificate when it has one (agents verify it).
 */
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { TLSSocket, type SecureContext } from "node:tls";
import type { AgentServer } from "./server.js";

export interface AgentListener {
  readonly address: { readonly host: string; readonly port: number };
  readonly tls: boolean;
  close(): Promise<void>;
}

export async function startAgentListener(
  at: { readonly host: string; readonly port: number },
  tls: { readonly context: SecureContext } | undefined,
  agents: AgentServer,
): Promise<AgentListener> {
  const notFound = (_req: unknown, res: { writeHead(s: number, h: Record<string, string>): { end(b: string): void } }): void => {
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "GW_NOT_FOUND", message: "agent tunnels only: WebSocket at /agent/connect" } }));
  };
  const http = createHttpServer(notFound);
  http.headersTimeout = 10_000;
  http.requestTimeout = 10_000;
  http.on("upgrade", (req, socket, head) => {
    if (!agents.handleUpgrade(req, socket, head)) socket.destroy();
  });
  http.on("clientError", (_e, socket) => socket.destroy());
  // TLS as the other listeners do it: the gateway's one SecureContext around each accepted socket.
  const server = createNetServer((raw) => {
    raw.on("error", () => raw.destroy());
    if (tls === undefined) {
      http.emit("connection", raw);
      return;
    }
    const secure = new TLSSocket(raw, { isServer: true, secureContext: tls.context });
    secure.on("error", () => secure.destroy());
    const timer = setTimeout(() => secure.destroy(), 10_000);
    secure.once("secure", () => {
      clearTimeout(timer);
      http.emit("connection", secure);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    address: { host: a.address, port: a.port },
    tls: tls !== undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}
