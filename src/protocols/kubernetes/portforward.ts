/**
 * `kubectl port-forward` through the gateway, after the request was judged (verb
 * `portforward` on the pod: namespace, name, and the `ports` query when the client names
 * them). kubectl speaks SPDY/3.1 (wire/spdy.ts) either tunnelled in a WebSocket (subprotocol
 * `SPDY/3.1+portforward.k8s.io`, kubectl 1.30+, KEP-4006) or after a plain `Upgrade: SPDY/3.1`
 * (KUBECTL_PORT_FORWARD_WEBSOCKETS=false, older clients). Both are served:
 *  1. the gateway sends the upgrade request on to the API server with its own credential (the
 *     client's WebSocket key, so the API server's accept answers the client's handshake;
 *     no extensions, so frames stay readable), through the connection's Dialer Agent;
 *  2. the API server's 101 goes back to the client, then bytes are relayed both ways and READ
 *     in passing (WebSocket frames → SPDY frames): each new stream's headers (`streamType`,
 *     `port`, `requestID`) are decoded before its SYN_STREAM goes on; a stream to a port the
 *     judged request did not name (when it named ports) ends the tunnel, fail closed;
 *  3. DATA on the forwarded connections is counted each way; when the tunnel ends its facts
 *     (ports, connections, bytes each way, duration) are recorded and audited as a
 *     `transfer.fact` (`k8s.portforward`). Content is never recorded (as SSH port forwards).
 */
import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Duplex } from "node:stream";
import { gatewayText } from "../../core/engine.js";
import type { ConnectionType } from "../../core/connection.js";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import type { UpgradeContext } from "../../core/http-kind.js";
import { refusedUpgrade } from "./refused-upgrade.js";
import { controlStreamId, FLAG_FIN, HeaderInflater, parseSynStream, RST_STREAM, SpdyFrameReader, SYN_STREAM, type SpdyFrame } from "./wire/spdy.js";
import { WS_BINARY, WS_CLOSE, WS_CONTINUATION, WS_PING, WS_PONG, WsFrameReader, wsFrame } from "./wire/ws-frame.js";

/** The WebSocket subprotocol of the SPDY tunnel (k8s.io/apimachinery/pkg/util/portforward). */
export const PORTFORWARD_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io";
export const PORTFORWARD_PROTOCOL = "portforward.k8s.io";
const UPSTREAM_TIMEOUT_MS = 15_000;
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * The ports a port-forward request names (`ports=8080,9090`, repeatable): [] when none (kubectl
 * names them per stream, in SPDY headers). A value that is not a port is refused.
 */
export function portForwardPorts(rawQuery: string): number[] {
  const ports: number[] = [];
  for (const [k, v] of new URLSearchParams(rawQuery)) {
    if (k !== "ports") continue;
    for (const p of v.split(",")) {
      const t = p.trim();
      if (!/^\d{1,5}$/.test(t) || Number(t) < 1 || Number(t) > 65535) throw new GatewayError("GW_PROTOCOL", `port-forward: "${t}" is not a port`);
      ports.push(Number(t));
    }
  }
  return ports;
}

/** Which of the two forms a request is, or why it is neither. */
export function portForwardForm(upgrade: string | undefined, offeredProtocols: string | undefined, streamProtocols: string | undefined): "websocket" | "spdy" | GatewayError {
  if (upgrade === "websocket") {
    const offered = (offeredProtocols ?? "").split(",").map((s) => s.trim());
    if (offered.includes(PORTFORWARD_TUNNEL_PROTOCOL)) return "websocket";
    return new GatewayError("GW_UNSUPPORTED", `port-forward over WebSocket is served as the SPDY tunnel (${PORTFORWARD_TUNNEL_PROTOCOL}, kubectl 1.30+) only`);
  }
  if (upgrade === "spdy/3.1") {
    const offered = (streamProtocols ?? "").split(",").map((s) => s.trim());
    if (offered.includes(PORTFORWARD_PROTOCOL)) return "spdy";
    return new GatewayError("GW_UNSUPPORTED", `port-forward over SPDY needs X-Stream-Protocol-Version: ${PORTFORWARD_PROTOCOL}`);
  }
  return new GatewayError("GW_PROTOCOL", "port-forward needs a WebSocket or SPDY/3.1 upgrade");
}

interface StreamInfo {
  readonly port: number;
  readonly data: boolean;
}

/**
 * Reads a port-forward tunnel both ways. `fromClient` returns the bytes to send on (whole
 * frames, after any new stream was checked) or throws a GatewayError that ends the tunnel;
 * `fromServer` only counts (the API server is trusted to speak SPDY; garbage stops the count).
 */
export class PortForwardInspector {
  readonly #allowed: ReadonlySet<number> | undefined;
  readonly #ws: boolean;
  readonly #c2sWs = new WsFrameReader();
  readonly #s2cWs = new WsFrameReader();
  readonly #c2s = new SpdyFrameReader();
  readonly #s2c = new SpdyFrameReader();
  readonly #inflater = new HeaderInflater();
  readonly #streams = new Map<number, StreamInfo>();
  #s2cBroken = false;
  readonly ports = new Set<number>();
  connections = 0;
  bytesFromClient = 0;
  bytesToClient = 0;

  constructor(form: "websocket" | "spdy", allowedPorts: readonly number[]) {
    this.#ws = form === "websocket";
    this.#allowed = allowedPorts.length === 0 ? undefined : new Set(allowedPorts);
  }

  async fromClient(chunk: Buffer): Promise<Buffer> {
    if (!this.#ws) {
      const frames = this.#c2s.push(chunk);
      for (const f of frames) await this.#inspect(f);
      return frames.length === 1 ? (frames[0]?.raw ?? Buffer.alloc(0)) : Buffer.concat(frames.map((f) => f.raw));
    }
    const out: Buffer[] = [];
    for (const w of this.#c2sWs.push(chunk)) {
      if (w.opcode === WS_BINARY || w.opcode === WS_CONTINUATION) {
        for (const f of this.#c2s.push(w.payload)) await this.#inspect(f);
      } else if (w.opcode !== WS_CLOSE && w.opcode !== WS_PING && w.opcode !== WS_PONG) {
        throw new GatewayError("GW_PROTOCOL", "the port-forward tunnel carries binary WebSocket messages only");
      }
      out.push(w.raw);
    }
    return Buffer.concat(out);
  }

  fromServer(chunk: Buffer): void {
    if (this.#s2cBroken) return;
    try {
      if (!this.#ws) {
        for (const f of this.#s2c.push(chunk)) this.#count(f, false);
        return;
      }
      for (const w of this.#s2cWs.push(chunk)) {
        if (w.opcode === WS_BINARY || w.opcode === WS_CONTINUATION) for (const f of this.#s2c.push(w.payload)) this.#count(f, false);
      }
    } catch {
      this.#s2cBroken = true;
    }
  }

  close(): void {
    this.#inflater.close();
  }

  #count(f: SpdyFrame, fromClient: boolean): void {
    if (f.kind === "data") {
      if (this.#streams.get(f.streamId)?.data !== true) return;
      if (fromClient) this.bytesFromClient += f.data.length;
      else this.bytesToClient += f.data.length;
      return;
    }
    if (f.type === RST_STREAM) {
      const id = controlStreamId(f);
      if (id !== undefined) this.#streams.delete(id);
    }
  }

  async #inspect(f: SpdyFrame): Promise<void> {
    if (f.kind === "data") {
      this.#count(f, true);
      if ((f.flags & FLAG_FIN) !== 0 && this.#streams.get(f.streamId)?.data === false) this.#streams.delete(f.streamId);
      return;
    }
    if (f.type !== SYN_STREAM) {
      this.#count(f, true);
      return;
    }
    const { streamId, block } = parseSynStream(f.payload);
    const h = await this.#inflater.inflate(block);
    const type = h.get("streamtype");
    const portText = h.get("port") ?? "";
    if (type !== "data" && type !== "error") throw new GatewayError("GW_PROTOCOL", "port-forward: a stream of an unknown type was opened");
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw new GatewayError("GW_PROTOCOL", "port-forward: a stream without a valid port was opened");
    const port = Number(portText);
    if (this.#allowed !== undefined && !this.#allowed.has(port)) {
      throw new GatewayError("GW_POLICY_DENIED", `port-forward to port ${port} refused: the request that was judged named ports ${[...this.#allowed].join(",")}`);
    }
    this.ports.add(port);
    if (type === "data") this.connections++;
    this.#streams.set(streamId, { port, data: type === "data" });
  }
}

function statusJson(message: string, code: number, reason: string): string {
  return JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code });
}

function refuseHttp(socket: Duplex, code: number, body: string): void {
  const reason = code === 403 ? "Forbidden" : code === 400 ? "Bad Request" : code === 404 ? "Not Found" : code === 502 ? "Bad Gateway" : "Error";
  socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function headerOf(raw: readonly string[], name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if ((raw[i] ?? "").toLowerCase() === name) values.push(raw[i + 1] ?? "");
  return values.length === 0 ? undefined : values.join(", ");
}

export async function servePortForward(ctx: UpgradeContext<ConnectionType>): Promise<void> {
  try {
    await serve(ctx);
  } catch (e) {
    const err = isGatewayError(e) ? e : new GatewayError("GW_INTERNAL", "port-forward failed");
    if (!ctx.socket.destroyed) refuseHttp(ctx.socket, err.code === "GW_INTERNAL" ? 502 : 400, statusJson(gatewayText(err.message), err.code === "GW_INTERNAL" ? 502 : 400, err.code === "GW_INTERNAL" ? "ServiceUnavailable" : "BadRequest"));
  }
}

async function serve(ctx: UpgradeContext<ConnectionType>): Promise<void> {
  const { head, socket, session } = ctx;
  const ev = ctx.event;
  if (ev.type !== "k8s.request") throw new GatewayError("GW_INTERNAL", "port-forward without its request");
  const form = portForwardForm(head.upgrade, headerOf(ctx.rawHeaders, "sec-websocket-protocol"), headerOf(ctx.rawHeaders, "x-stream-protocol-version"));
  if (form instanceof GatewayError) throw form;
  const ports = portForwardPorts(head.rawQuery);
  const key = headerOf(ctx.rawHeaders, "sec-websocket-key") ?? "";
  if (form === "websocket" && !/^[A-Za-z0-9+/]{22}==$/.test(key)) throw new GatewayError("GW_PROTOCOL", "a WebSocket upgrade without a valid Sec-WebSocket-Key");

  // 1. The upgrade request, on to the API server with the gateway's credential.
  const up = ctx.upstream;
  const base = up.baseUrl;
  const prefix = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname;
  const headers: Record<string, string> = { connection: "Upgrade" };
  const ua = head.headers["user-agent"];
  if (ua !== undefined) headers["user-agent"] = ua;
  if (form === "websocket") {
    Object.assign(headers, { upgrade: "websocket", "sec-websocket-key": key, "sec-websocket-version": "13", "sec-websocket-protocol": PORTFORWARD_TUNNEL_PROTOCOL });
  } else {
    Object.assign(headers, { upgrade: "SPDY/3.1", "x-stream-protocol-version": PORTFORWARD_PROTOCOL });
  }
  Object.assign(headers, up.headers);
  const request = base.protocol === "https:" ? httpsRequest : httpRequest;
  const req = request({
    agent: ctx.agent,
    hostname: base.hostname.replace(/^\[|\]$/g, ""),
    port: base.port === "" ? undefined : Number(base.port),
    method: head.method,
    path: `${prefix}${head.path}${head.rawQuery === "" ? "" : `?${head.rawQuery}`}`,
    headers,
  });
  req.setTimeout(UPSTREAM_TIMEOUT_MS, () => req.destroy(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the API server did not answer the port-forward")));
  req.end();
  const answer = await new Promise<{ ok: true; res: IncomingMessage; upSocket: Duplex; upHead: Buffer } | { ok: false; status: number; body: string }>((resolve) => {
    req.once("error", () => resolve({ ok: false, status: 502, body: statusJson(gatewayText("the API server could not be reached for port-forward"), 502, "ServiceUnavailable") }));
    req.once("response", (res: IncomingMessage) => void refusedUpgrade(res).then(resolve));
    req.once("upgrade", (res: IncomingMessage, upSocket: Duplex, upHead: Buffer) => resolve({ ok: true, res, upSocket, upHead }));
  });
  if (!answer.ok) {
    // The API server's own refusal (a Status), scrubbed of the gateway's credentials and masked.
    let body = answer.body;
    for (const s of up.secrets) if (s !== "") body = body.split(s).join("[REDACTED]");
    refuseHttp(socket, answer.status, ctx.mask.json(body));
    return;
  }
  const { res, upSocket, upHead } = answer;
  upSocket.on("error", () => undefined);
  socket.on("error", () => undefined);

  // 2. The API server's 101, checked, back to the client.
  let hello: string;
  if (form === "websocket") {
    const accept = createHash("sha1").update(key + WS_GUID).digest("base64");
    if (res.headers["sec-websocket-accept"] !== accept || res.headers["sec-websocket-protocol"] !== PORTFORWARD_TUNNEL_PROTOCOL || res.headers["sec-websocket-extensions"] !== undefined) {
      upSocket.destroy();
      refuseHttp(socket, 502, statusJson(gatewayText("the API server did not accept the port-forward tunnel"), 502, "ServiceUnavailable"));
      return;
    }
    hello = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${PORTFORWARD_TUNNEL_PROTOCOL}\r\n\r\n`;
  } else {
    if ((res.headers.upgrade ?? "").toLowerCase() !== "spdy/3.1" || res.headers["x-stream-protocol-version"] !== PORTFORWARD_PROTOCOL) {
      upSocket.destroy();
      refuseHttp(socket, 502, statusJson(gatewayText("the API server did not accept the port-forward"), 502, "ServiceUnavailable"));
      return;
    }
    hello = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${PORTFORWARD_PROTOCOL}\r\n\r\n`;
  }
  socket.write(hello);

  // 3. Relay, reading as it goes.
  const inspector = new PortForwardInspector(form, ports);
  const started = performance.now();
  await new Promise<void>((resolve) => {
    let done = false;
    let refusal: GatewayError | undefined;
    let chain = Promise.resolve();
    const finish = (): void => {
      if (done) return;
      done = true;
      inspector.close();
      if (refusal !== undefined && form === "websocket" && socket.writable) {
        // A close frame with the reason: kubectl's tunnel reports it (1008: policy violation).
        const reason = Buffer.from(gatewayText(refusal.message).slice(0, 120));
        socket.write(wsFrame(WS_CLOSE, Buffer.concat([Buffer.from([0x03, 0xf0]), reason])));
      }
      socket.end();
      upSocket.destroy();
      setTimeout(() => socket.destroy(), 1000).unref();
      const details: Record<string, string | number> = {
        form,
        ports: [...inspector.ports].join(","),
        connections: inspector.connections,
        bytesFromClient: inspector.bytesFromClient,
        bytesToClient: inspector.bytesToClient,
        durationMs: Math.round(performance.now() - started),
      };
      if (refusal !== undefined) details.refused = refusal.message;
      session.observe({ type: "transfer.fact", session: session.info, seq: ev.seq, stage: "k8s.portforward", text: `(${ev.text}: closed)`, details });
      resolve();
    };
    const fromClient = (chunk: Buffer): void => {
      chain = chain.then(async () => {
        if (done) return;
        let out: Buffer;
        try {
          out = await inspector.fromClient(chunk);
        } catch (e) {
          refusal = isGatewayError(e) ? e : new GatewayError("GW_PROTOCOL", "the port-forward stream could not be read");
          finish();
          return;
        }
        if (out.length > 0 && !upSocket.destroyed && !upSocket.write(out)) {
          socket.pause();
          upSocket.once("drain", () => socket.resume());
        }
      });
    };
    const fromServer = (chunk: Buffer): void => {
      inspector.fromServer(chunk);
      if (!socket.destroyed && !socket.write(chunk)) {
        upSocket.pause();
        socket.once("drain", () => upSocket.resume());
      }
    };
    ctx.signal.addEventListener("abort", finish, { once: true });
    if (ctx.firstBytes.length > 0) fromClient(ctx.firstBytes);
    if (upHead.length > 0) fromServer(upHead);
    socket.on("data", fromClient);
    upSocket.on("data", fromServer);
    socket.once("close", () => void chain.then(finish));
    upSocket.once("close", () => void chain.then(finish));
  });
}
