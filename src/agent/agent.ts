/**
 * The network-resident agent (issue 19; `airlock agent`): one outbound WebSocket to the gateway
 * (TLS verified against the system CAs or `ca`), authenticated with a bearer token, carrying
 * the gateway's target connections as multiplexed streams. It reconnects with jittered
 * exponential backoff whenever the tunnel drops. Agent-side secrets (`env:`/`file:`) are resolved
 * here, on the agent host, and only used to answer a target's login challenge.
 */
import { lookup } from "node:dns/promises";
import { readFile } from "node:fs/promises";
import { connect, isIP, type Socket } from "node:net";
import { z } from "zod";
import { WebSocket } from "ws";
import type { Duplex } from "node:stream";
import { agentPostgresLogin } from "../protocols/postgres/agent-login.js";
import { agentPostgresTls } from "../protocols/postgres/agent-tls.js";
import { encodeErrorResponse } from "../protocols/postgres/wire/index.js";
import { agentRedisLogin } from "../protocols/redis/agent-login.js";
import { GATEWAY_VERSION } from "../observability/version.js";
import { allowedBy, announcedRules, type AllowRule } from "./allowlist.js";
import { AGENT_HEADERS, AGENT_PATH, AGENT_TARGETS_HEADER, MAX_ANNOUNCED_TARGETS } from "./server.js";
import { openSpecSchema, parseJsonWith, type OpenSpec } from "./spec.js";
import { Tunnel, type TunnelStream } from "./tunnel.js";
import { HEADER_BYTES, MAX_DATA_PAYLOAD } from "./wire/frames.js";

export interface AgentOptions {
  /** `wss://gateway:8780` (the path defaults to /agent/connect); https:// and http:// are accepted too. */
  readonly gateway: string;
  readonly token: string;
  readonly group: string;
  readonly name?: string;
  /** PEM CA bundle the gateway's certificate must chain to (default: the system CAs). */
  readonly ca?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
  readonly heartbeatMs?: number;
  readonly dialTimeoutMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * The secret references this agent may resolve for a target login (`--secret env:NAME`).
   * Anything else the gateway names is refused: a gateway must not be able to make the agent
   * read arbitrary variables or files.
   */
  readonly allowSecrets: readonly string[];
  /**
   * The targets this agent will dial (src/agent/allowlist.ts). Undefined: only the targets the
   * gateway announced when the tunnel opened (the connections naming this agent's group).
   */
  readonly allow?: readonly AllowRule[];
}

const announcedSchema = z.array(z.strictObject({ host: z.string().min(1).max(253), port: z.number().int().min(1).max(65535) })).max(MAX_ANNOUNCED_TARGETS);

/** The gateway's announced targets from the upgrade response header; [] when absent or malformed. */
export function parseAnnounced(value: string | string[] | undefined): { host: string; port: number }[] {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return [];
  try {
    const r = announcedSchema.safeParse(JSON.parse(Buffer.from(v, "base64url").toString("utf8")));
    return r.success ? r.data : [];
  } catch {
    return [];
  }
}

/** The WebSocket URL of the gateway's agent endpoint. */
export function agentUrl(gateway: string): string {
  let u: URL;
  try {
    u = new URL(gateway);
  } catch {
    throw new Error(`--gateway: "${gateway.slice(0, 200)}" is not a URL (e.g. wss://gateway.example.com:8781)`);
  }
  const scheme = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : u.protocol === "http:" || u.protocol === "ws:" ? "ws:" : undefined;
  if (scheme === undefined) throw new Error(`--gateway: unsupported scheme ${u.protocol} (use wss:// or https://)`);
  u.protocol = scheme;
  if (u.pathname === "/" || u.pathname === "") u.pathname = AGENT_PATH;
  return u.toString();
}

/** Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff And Jitter"). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * cap);
}

export async function resolveAgentSecret(ref: string, env: NodeJS.ProcessEnv): Promise<string> {
  if (ref.startsWith("env:")) {
    const v = env[ref.slice(4)];
    if (v === undefined) throw new Error(`${ref} is not set on the agent host`);
    return v;
  }
  if (ref.startsWith("file:/")) return (await readFile(ref.slice(5), "utf8")).replace(/\r?\n$/, "");
  throw new Error("unsupported secret reference");
}

export class NetworkAgent {
  readonly #o: AgentOptions;
  readonly #url: string;
  #ws: WebSocket | undefined;
  #tunnel: Tunnel | undefined;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #targets = new Set<Socket>();
  /** The gateway's announced targets (used when no `allow` is configured); set at each connect. */
  #announced: AllowRule[] = [];

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#url = agentUrl(options.gateway);
  }

  start(): void {
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#tunnel?.close("the agent is stopping");
    this.#ws?.close(1001);
    for (const s of this.#targets) s.destroy();
  }

  #connect(): void {
    if (this.#stopped) return;
    const o = this.#o;
    const ws = new WebSocket(this.#url, {
      headers: {
        authorization: `Bearer ${o.token}`,
        [AGENT_HEADERS.group]: o.group,
        [AGENT_HEADERS.version]: GATEWAY_VERSION,
        [AGENT_HEADERS.name]: o.name ?? "",
      },
      ...(o.ca === undefined ? {} : { ca: o.ca }),
      rejectUnauthorized: true,
      maxPayload: 4 * (HEADER_BYTES + MAX_DATA_PAYLOAD),
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    this.#ws = ws;
    let tunnel: Tunnel | undefined;
    ws.on("unexpected-response", (_req, res) => {
      o.log("error", "the gateway refused the agent", { status: res.statusCode });
      res.resume();
      ws.terminate();
    });
    ws.on("upgrade", (res) => {
      const targets = parseAnnounced(res.headers[AGENT_TARGETS_HEADER]);
      this.#announced = announcedRules(targets);
      if (o.allow === undefined) o.log("info", "no allowlist configured: dialing only the targets the gateway announced", { targets: targets.map((t) => `${t.host}:${t.port}`) });
    });
    ws.on("open", () => {
      this.#attempt = 0;
      o.log("info", "connected to the gateway", { url: this.#url, group: o.group });
      tunnel = new Tunnel(
        {
          send: (bytes) => {
            if (ws.readyState === ws.OPEN) ws.send(bytes);
          },
          close: () => ws.terminate(),
        },
        { role: "agent", heartbeatMs: o.heartbeatMs ?? 10_000, onOpen: (stream, spec) => void this.#serve(stream, spec) },
      );
      this.#tunnel = tunnel;
    });
    ws.on("message", (data, isBinary) => {
      if (tunnel === undefined) return;
      if (!isBinary) {
        tunnel.protocolError("text message on the tunnel");
        return;
      }
      tunnel.receive(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
    });
    ws.on("error", (e) => o.log("warn", "tunnel error", { error: e.message }));
    ws.on("close", () => {
      tunnel?.close("the gateway connection closed");
      if (this.#stopped) return;
      const delay = backoffDelay(this.#attempt++, 500, o.maxBackoffMs ?? 10_000);
      o.log("warn", "disconnected from the gateway; reconnecting", { inMs: delay });
      this.#timer = setTimeout(() => this.#connect(), delay);
    });
  }

  async #serve(stream: TunnelStream, specBytes: Buffer): Promise<void> {
    const spec: OpenSpec | undefined = parseJsonWith(openSpecSchema, specBytes);
    if (spec === undefined) {
      stream.refuse({ code: "bad_request", message: "malformed open request" });
      return;
    }
    const login = spec.login;
    if (login !== undefined && !this.#o.allowSecrets.includes(login.password)) {
      this.#o.log("warn", "refused a login with a secret reference this agent does not allow (--secret)", { reference: login.password });
      stream.refuse({ code: "login_failed", message: "the agent does not allow that secret reference" });
      return;
    }
    const address = await this.#permit(spec);
    if (address === undefined) {
      stream.refuse({ code: "not_allowed", message: "the target is not in the agent's allowlist" });
      return;
    }
    const socket = await this.#dial(address, spec.port).catch((e: unknown) => {
      this.#o.log("warn", "cannot reach the target", { host: spec.host, port: spec.port, error: e instanceof Error ? e.message : String(e) });
      return undefined;
    });
    if (socket === undefined) {
      stream.refuse({ code: "unreachable", message: `cannot reach ${spec.host}:${spec.port}` });
      return;
    }
    if (login?.type === "redis") {
      // Logged in before the stream is accepted: a refused AUTH is a clean refusal of the open.
      const ok = await agentRedisLogin(socket, { ...(login.user === undefined ? {} : { user: login.user }), password: () => resolveAgentSecret(login.password, this.#o.env), timeoutMs: this.#o.dialTimeoutMs ?? 10_000 }).then(
        () => true,
        (e: unknown) => {
          this.#o.log("warn", "agent-side login failed", { host: spec.host, port: spec.port, error: e instanceof Error ? e.message : String(e) });
          return false;
        },
      );
      if (!ok) {
        stream.refuse({ code: "login_failed", message: "the target refused the agent's login" });
        return;
      }
    }
    this.#targets.add(socket);
    socket.on("close", () => {
      this.#targets.delete(socket);
      stream.destroy();
    });
    socket.on("error", () => socket.destroy());
    stream.on("close", () => socket.destroy());
    stream.on("error", () => socket.destroy());
    stream.accept();
    if (login === undefined) {
      stream.pipe(socket);
      socket.pipe(stream);
      return;
    }
    switch (login.type) {
      case "redis":
        stream.pipe(socket);
        socket.pipe(stream);
        return;
      case "postgres": {
        // The PostgreSQL login runs over the accepted stream: the gateway sends its StartupMessage.
        let target: Duplex = socket;
        if (login.tls !== undefined) {
          const tls = login.tls;
          const secured = await agentPostgresTls(socket, { sslmode: tls.sslmode, serverName: tls.serverName, timeoutMs: this.#o.dialTimeoutMs ?? 10_000, ...(tls.ca === undefined ? {} : { ca: tls.ca }) }).catch((e: unknown) => {
            this.#o.log("warn", "TLS to the target failed", { host: spec.host, port: spec.port, error: e instanceof Error ? e.message : String(e) });
            return undefined;
          });
          if (secured === undefined) {
            // Never accepted as a login: the gateway reads a FATAL and reports GW_UPSTREAM_TLS-like unavailability.
            stream.end(encodeErrorResponse({ severity: "FATAL", code: "08001", message: "airlock agent: TLS to the target failed" }));
            socket.destroy();
            return;
          }
          target = secured;
        }
        await agentPostgresLogin(stream, target, {
          user: login.user,
          password: () => resolveAgentSecret(login.password, this.#o.env),
          timeoutMs: this.#o.dialTimeoutMs ?? 10_000,
        }).catch((e: unknown) => {
          this.#o.log("warn", "agent-side login failed", { host: spec.host, port: spec.port, error: e instanceof Error ? e.message : String(e) });
        });
        return;
      }
    }
  }

  /**
   * The address to dial for `spec` when the allowlist (or, without one, the gateway's announced
   * targets) admits it; undefined (and a log line) when not. A name is resolved once here and the
   * checked address is the one dialed.
   */
  async #permit(spec: OpenSpec): Promise<string | undefined> {
    let address = spec.host;
    if (isIP(spec.host) === 0) {
      try {
        address = (await lookup(spec.host)).address;
      } catch {
        address = ""; // name rules may still admit it; the dial then fails as unreachable
      }
    }
    const rules = this.#o.allow ?? this.#announced;
    const rule = allowedBy(rules, spec.host, spec.port, address);
    if (rule === undefined) {
      this.#o.log("warn", "refused to dial a target outside the allowlist", { host: spec.host, port: spec.port, allowlist: this.#o.allow === undefined ? "announced by the gateway" : "configured" });
      return undefined;
    }
    return address === "" ? spec.host : address;
  }

  #dial(host: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error("connect timeout"));
      }, this.#o.dialTimeoutMs ?? 10_000);
      s.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.once("connect", () => {
        clearTimeout(timer);
        s.removeAllListeners("error");
        resolve(s);
      });
    });
  }
}
