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
import type { AuditEventInput } from "../audit/types.js";
import { auditPrincipal } from "../audit/types.js";
import { isGatewayError, type ErrorCode } from "../core/errors.js";
import type { Connection } from "../core/connection.js";
import type { Principal } from "../core/principal.js";
import type { AgentsConfig } from "./config-schema.js";
import type { AgentRegistry } from "./registry.js";
import { Tunnel } from "./tunnel.js";
import { HEADER_BYTES, MAX_DATA_PAYLOAD } from "./wire/frames.js";

export const AGENT_PATH = "/agent/connect";
/** Headers the agent sends with the upgrade request. */
export const AGENT_HEADERS = { group: "x-airlock-agent-group", version: "x-airlock-agent-version", name: "x-airlock-agent-name" } as const;
/**
 * The response header of the upgrade (101) that lists the targets of the connections naming the
 * agent's group (base64url of JSON `[{host, port}]`): an agent without its own allowlist dials only these.
 */
export const AGENT_TARGETS_HEADER = "x-airlock-agent-targets";
/** At most this many targets are announced; an agent group serving more needs its own allowlist. */
export const MAX_ANNOUNCED_TARGETS = 200;

export interface AgentServerDeps {
  readonly registry: AgentRegistry;
  readonly groups: AgentsConfig["groups"];
  readonly heartbeatMs: number;
  readonly authenticate: (token: string) => Promise<Principal>;
  readonly logger: Logger;
  /** Writes an audit record (agent.connect, agent.disconnect); never throws. */
  readonly audit: (input: AuditEventInput) => void;
  /** The host:port of each connection whose `via` names this group, at the time the agent connects. */
  readonly targetsOf: (group: string) => readonly { readonly host: string; readonly port: number }[];
}

/** The host and port an `http(s)://` URL dials (default ports 80 / 443); nothing for a bad URL. */
function pushUrl(out: { host: string; port: number }[], url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return;
  }
  const host = u.hostname.replace(/^\[|\]$/g, "");
  out.push({ host, port: u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port) });
}

/** The host:port of each connection whose `via` names `group` (HTTP and Kubernetes: their URL's). */
export function agentTargets(connections: Iterable<Connection>, group: string): { host: string; port: number }[] {
  const out: { host: string; port: number }[] = [];
  for (const c of connections) {
    switch (c.type) {
      case "postgres":
      case "mysql":
      case "redis":
      case "ssh":
        if (c.via === group) out.push({ host: c.host, port: c.port });
        break;
      case "http":
        if (c.via === group) pushUrl(out, c.baseUrl);
        break;
      case "kubernetes":
        if (c.via === group) pushUrl(out, c.server);
        break;
      case "mcp":
        // Not dialed through agents in this version (no `via`).
        break;
    }
  }
  return out;
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
  /** The targets announced in the 101 of the upgrade now under way (set just before handleUpgrade, which writes the 101 synchronously). */
  #announce: string | undefined;

  constructor(deps: AgentServerDeps) {
    this.#deps = deps;
    this.#wss.on("headers", (headers) => {
      if (this.#announce !== undefined) headers.push(`${AGENT_TARGETS_HEADER}: ${this.#announce}`);
    });
  }

  #refused(address: string, group: string, code: ErrorCode, principal?: Principal): void {
    this.#deps.audit({
      type: "agent.connect",
      decision: "deny",
      code,
      clientAddress: address,
      ...(principal === undefined ? {} : { principal: auditPrincipal(principal) }),
      details: { group },
    });
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
    const groupName = header(req, AGENT_HEADERS.group, 100) ?? "";
    if (m?.[1] === undefined) {
      this.#refused(address, groupName, "GW_AUTH_MISSING");
      refuse(socket, 401, "missing credential: send Authorization: Bearer <token>", "GW_AUTH_MISSING");
      return;
    }
    let principal: Principal;
    try {
      principal = await this.#deps.authenticate(m[1]);
    } catch (e) {
      const code = isGatewayError(e) ? e.code : "GW_AUTH_INVALID";
      log.warn({ address, code }, "agent authentication failed");
      this.#refused(address, groupName, code);
      refuse(socket, 401, "the agent's credential was refused", code);
      return;
    }
    const group = this.#deps.groups.find((g) => g.name === groupName);
    if (group === undefined || !principal.groups.some((g) => group.allow.includes(g))) {
      log.warn({ address, principal: principal.id, group: groupName }, "agent refused: not allowed to serve this group");
      this.#refused(address, groupName, "GW_ACCESS_DENIED", principal);
      refuse(socket, 403, `principal may not serve as an agent of group "${groupName}"`, "GW_ACCESS_DENIED");
      return;
    }
    const version = header(req, AGENT_HEADERS.version, 64) ?? "unknown";
    const name = header(req, AGENT_HEADERS.name, 128) ?? principal.name;
    const targets = this.#deps.targetsOf(group.name).slice(0, MAX_ANNOUNCED_TARGETS).map((t) => ({ host: t.host, port: t.port }));
    this.#announce = Buffer.from(JSON.stringify(targets)).toString("base64url");
    try {
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws, { group: group.name, principal, name, version, address }));
    } finally {
      this.#announce = undefined;
    }
  }

  #serve(ws: WebSocket, a: { readonly group: string; readonly principal: Principal; readonly name: string; readonly version: string; readonly address: string }): void {
    const log = this.#deps.logger;
    const { group, principal, name, version, address } = a;
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
          log.info({ agent: id, group, name, why }, "agent disconnected");
          this.#deps.audit({
            type: "agent.disconnect",
            principal: auditPrincipal(principal),
            clientAddress: address,
            message: why.slice(0, 200),
            details: { agentId: id, group, name, version, streamsOpened: tunnel.opened },
          });
        },
      },
    );
    id = this.#deps.registry.add({ group, principal: principal.id, name, version, address, tunnel });
    log.info({ agent: id, group, name, version, address, principal: principal.id }, "agent connected");
    this.#deps.audit({ type: "agent.connect", decision: "allow", principal: auditPrincipal(principal), clientAddress: address, details: { agentId: id, group, name, version } });
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
  }

  close(): void {
    this.#deps.registry.closeAll("the gateway is shutting down");
    for (const ws of this.#sockets) ws.terminate();
    this.#wss.close();
  }
}
