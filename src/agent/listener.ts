/**
 * `listen.agents`: a listener that serves only agent tunnels (WebSocket at /agent/connect),
 * over TLS with the gateway's certificate when it has one (agents verify it).
 */
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { SecureContext } from "node:tls";
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
  const server: Server = tls === undefined ? createHttpServer(notFound) : createHttpsServer({ secureContext: tls.context }, notFound);
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.on("upgrade", (req, socket, head) => {
    if (!agents.handleUpgrade(req, socket, head)) socket.destroy();
  });
  server.on("clientError", (_e, socket) => socket.destroy());
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
        server.closeAllConnections();
      }),
  };
}
