/**
 * The gateway's end of agent tunnels (issue 19): a WebSocket at `/agent/connect` (on the API
 * listener, and on `listen.agents` when configured, with TLS when the gateway has a
 * certificate). The agent authenticates with a bearer token (a service account token or a
 * trusted workload JWT) and names its group; the principal must be in one of the group's
 * `allow` groups. Refusals are plain HTTP answers before the upgrade.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import { isGatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { AgentsConfig } from "./config-schema.js";
import type { AgentRegistry } from "./registry.js";
import { Tunnel } from "./tunnel.js";
import { HEADER_BYTES, MAX_DATA_PAYLOAD } from "./wire/frames.js";

export const AGENT_PATH = "/agent/connect";
/** Headers the agent sends with the upgrade request. */
export const AGENT_HEADERS = { group: "x-airlock-agent-group", version: "x-airlock-agent-version", name: "x-airlock-agent-name" } as const;

export interface AgentServerDeps {
  readonly registry: AgentRegistry;
  readonly groups: AgentsConfig["groups"];
  readonly heartbeatMs: number;
  readonly authenticate: (token: string) => Promise<Principal>;
  readonly logger: Logger;
}

function header(req: IncomingMessage, name: string, max: number): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  return s.slice(0, max).replace(/[^\x20-\x7e]/g, "");
}

function refuse(socket: Duplex, status: number, text: string, code: string): void {
  const body = JSON.stringify({ error: { code, message: text } });
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : "Bad Request"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export class AgentServer {
  readonly #deps: AgentServerDeps;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4 * (HEADER_BYTES + MAX_DATA_PAYLOAD), perMessageDeflate: false });
  readonly #sockets = new Set<WebSocket>();

  constructor(deps: AgentServerDeps) {
    this.#deps = deps;
  }

  /** Handle an HTTP upgrade if it is for the agent path; returns false otherwise (the caller answers). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? "").split("?")[0];
    if (path !== AGENT_PATH) return false;
    void this.#admit(req, socket, head);
    return true;
  }

  async #admit(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => undefined);
    const log = this.#deps.logger;
    const address = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? 0}`;
    const auth = header(req, "authorization", 16_384);
    const m = auth === undefined ? null : /^Bearer ([^\s]+)$/i.exec(auth);
    if (m?.[1] === undefined) {
      refuse(socket, 401, "missing credential: send Authorization: Bearer <token>", "GW_AUTH_MISSING");
      return;
    }
    let principal: Principal;
    try {
      principal = await this.#deps.authenticate(m[1]);
    } catch (e) {
      const code = isGatewayError(e) ? e.code : "GW_AUTH_INVALID";
      log.warn({ address, code }, "agent authentication failed");
      refuse(socket, 401, "the agent's credential was refused", code);
      return;
    }
    const groupName = header(req, AGENT_HEADERS.group, 100) ?? "";
    const group = this.#deps.groups.find((g) => g.name === groupName);
    if (group === undefined || !principal.groups.some((g) => group.allow.includes(g))) {
      log.warn({ address, principal: principal.id, group: groupName }, "agent refused: not allowed to serve this group");
      refuse(socket, 403, `principal may not serve as an agent of group "${groupName}"`, "GW_ACCESS_DENIED");
      return;
    }
    const version = header(req, AGENT_HEADERS.version, 64) ?? "unknown";
    const name = header(req, AGENT_HEADERS.name, 128) ?? principal.name;
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#sockets.add(ws);
      let id = "";
      const tunnel = new Tunnel(
        {
          send: (bytes) => {
            if (ws.readyState === ws.OPEN) ws.send(bytes);
          },
          close: () => ws.close(1000),
        },
        {
          role: "gateway",
          heartbeatMs: this.#deps.heartbeatMs,
          onClosed: (why) => {
            this.#deps.registry.remove(id);
            log.info({ agent: id, group: group.name, name, why }, "agent disconnected");
          },
        },
      );
      id = this.#deps.registry.add({ group: group.name, principal: principal.id, name, version, address, tunnel });
      log.info({ agent: id, group: group.name, name, version, address, principal: principal.id }, "agent connected");
      ws.on("message", (data, isBinary) => {
        if (!isBinary) {
          tunnel.protocolError("text message on the tunnel");
          return;
        }
        tunnel.receive(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
      });
      ws.on("close", () => {
        this.#sockets.delete(ws);
        tunnel.close("the agent's connection closed");
      });
      ws.on("error", (e) => log.debug({ err: e, agent: id }, "agent websocket error"));
    });
  }

  close(): void {
    this.#deps.registry.closeAll("the gateway is shutting down");
    for (const ws of this.#sockets) ws.terminate();
    this.#wss.close();
  }
}
