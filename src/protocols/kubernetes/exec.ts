/**
 * `kubectl exec` and `kubectl attach` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`;
 * wire/channel.ts), served end to end by the kind after the request was judged (verb exec or
 * attach):
 *  1. exec: the command (`command=` parameters) is judged as a shell command by the shell
 *     guardrails (an `ssh.exec` event on the Kubernetes session) BEFORE anything reaches the
 *     API server; a refusal is a 403 with a Kubernetes Status (kubectl prints it);
 *  2. the gateway opens its own WebSocket to the API server with its own credential and the
 *     protocol the client offered, then completes the client's handshake with the same one;
 *  3. stdin is judged line by line (`ssh.input`, the SSH engine's LineTracker: with a TTY the
 *     line editor's keys, without one every byte), stdout/stderr are masked line by line
 *     (LineMasker) and the error channel's Status as JSON; everything the client sees is
 *     recorded as asciicast.
 * SPDY (kubectl before 1.30, or KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false) is refused with a
 * message saying so. Best effort as for SSH shells: see the README.
 */
import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { gatewayText, refusalText, type Refusal } from "../../core/engine.js";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import type { ConnectionType } from "../../core/connection.js";
import type { UpgradeContext } from "../../core/http-kind.js";
import type { SessionJudge } from "../../core/judge.js";
import { AsciicastWriter } from "../../recording/asciicast.js";
import { LineMasker } from "../common/line-masker.js";
import { terminalInput } from "../common/terminal-input.js";
import { refusedUpgrade } from "./refused-upgrade.js";
import { execOptions } from "./request.js";
import { argvToShell, chooseProtocol, CLOSE, decodeChannelMessage, encodeChannelMessage, ERROR, RESIZE, STDERR, STDIN, STDOUT, type ChannelProtocol } from "./wire/channel.js";

/** Where a session's asciicast goes (given by the runtime per gateway; absent: not recorded as a terminal). */
export type CastPathFor = (sessionId: string) => string;

const UPSTREAM_TIMEOUT_MS = 15_000;

function statusJson(message: string, code: number, reason: string): string {
  return JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code });
}

/** Answer the not-yet-upgraded request with an HTTP error carrying a Kubernetes Status. */
function refuseHttp(socket: UpgradeContext<ConnectionType>["socket"], code: number, body: string): void {
  const reason = code === 403 ? "Forbidden" : code === 400 ? "Bad Request" : code === 502 ? "Bad Gateway" : "Error";
  socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function refusalStatus(r: Refusal): string {
  return statusJson(refusalText({ message: r.message, rule: r.rule }, true), 403, "Forbidden");
}

function headerOf(raw: readonly string[], name: string): string | undefined {
  for (const line of raw) {
    const i = line.indexOf(":");
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === name) return line.slice(i + 1).trim();
  }
  return undefined;
}

export async function serveExec(ctx: UpgradeContext<ConnectionType>, castPathFor?: CastPathFor): Promise<void> {
  try {
    await serve(ctx, castPathFor);
  } catch (e) {
    const err = isGatewayError(e) ? e : new GatewayError("GW_INTERNAL", "exec failed");
    if (!ctx.socket.destroyed) refuseHttp(ctx.socket, 502, statusJson(gatewayText(err.message), 502, "ServiceUnavailable"));
  }
}

async function serve(ctx: UpgradeContext<ConnectionType>, castPathFor: CastPathFor | undefined): Promise<void> {
  const { head, session, socket } = ctx;
  const ev = ctx.event;
  if (ev.type !== "k8s.request") throw new GatewayError("GW_INTERNAL", "exec without its request");
  const opts = execOptions(head.rawQuery);
  // 1. The command, before anything starts.
  if (ev.verb === "exec") {
    const d = await session.judge({ type: "ssh.exec", session: session.info, seq: ev.seq, command: argvToShell(opts.command) });
    if (d.type === "deny") {
      // Over WebSocket the refusal goes on the error channel of an accepted stream: a refused
      // handshake makes kubectl (1.30+) retry over SPDY, and the user would read the SPDY
      // refusal instead of the rule. Nothing reaches the API server either way.
      if (head.upgrade === "websocket" && (await refuseOverChannel(ctx, refusalStatus(d)))) return;
      refuseHttp(socket, 403, refusalStatus(d));
      return;
    }
  }
  if (head.upgrade !== "websocket") {
    refuseHttp(socket, 400, statusJson(gatewayText(`kubectl ${ev.verb} over SPDY is not supported by the gateway: use kubectl 1.30 or newer (WebSocket, v5.channel.k8s.io)`), 400, "BadRequest"));
    return;
  }
  const protocol = chooseProtocol(headerOf(ctx.rawHeaders, "sec-websocket-protocol") ?? head.headers["sec-websocket-protocol"]);
  if (protocol === undefined) {
    refuseHttp(socket, 400, statusJson(gatewayText("the gateway speaks v5.channel.k8s.io and v4.channel.k8s.io only"), 400, "BadRequest"));
    return;
  }
  // 2. The gateway's own WebSocket to the API server.
  const up = ctx.upstream;
  const base = new URL(up.baseUrl.href);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  const prefix = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname;
  const target = `${base.origin}${prefix}${head.path}${head.rawQuery === "" ? "" : `?${head.rawQuery}`}`;
  const upstream = new WebSocket(target, [protocol], {
    headers: { ...up.headers },
    handshakeTimeout: UPSTREAM_TIMEOUT_MS,
    maxPayload: 2 * 1024 * 1024,
    // Through the Dialer (directly or via a network agent), TLS per the upstream: dial-agent.ts.
    agent: ctx.agent,
  });
  const opened = await new Promise<{ ok: true } | { ok: false; status: number; body: string }>((resolve) => {
    upstream.once("open", () => resolve({ ok: true }));
    upstream.once("unexpected-response", (_req, res) => void refusedUpgrade(res).then(resolve));
    upstream.once("error", () => resolve({ ok: false, status: 502, body: statusJson(gatewayText("the API server could not be reached for exec"), 502, "ServiceUnavailable") }));
  });
  if (!opened.ok) {
    // The API server's own refusal (a Status), scrubbed of the gateway's credentials and masked.
    let body = opened.body;
    for (const s of up.secrets) if (s !== "") body = body.split(s).join("[REDACTED]");
    refuseHttp(socket, opened.status, ctx.mask.json(body));
    upstream.terminate();
    return;
  }
  if (upstream.protocol !== protocol) {
    upstream.terminate();
    refuseHttp(socket, 502, statusJson(gatewayText("the API server did not accept the channel protocol"), 502, "ServiceUnavailable"));
    return;
  }
  // 3. Complete the client's handshake with the same protocol.
  // The listener's socket (plain or TLS, both net.Sockets); anything else cannot be handed to ws.
  if (!(socket instanceof Socket)) {
    upstream.terminate();
    refuseHttp(socket, 502, statusJson(gatewayText("exec is not available on this listener"), 502, "ServiceUnavailable"));
    return;
  }
  const { client, wss } = await acceptClient(ctx, socket, protocol);
  if (client === undefined) {
    upstream.terminate();
    wss.close();
    return;
  }
  await relay(ctx, session, client, upstream, protocol, opts.stdin, opts.tty, castPathFor);
  wss.close();
}

/** Complete the client's WebSocket handshake with `protocol` (undefined: the client went away). */
async function acceptClient(ctx: UpgradeContext<ConnectionType>, socket: Socket, protocol: ChannelProtocol): Promise<{ client: WebSocket | undefined; wss: WebSocketServer }> {
  const { head } = ctx;
  const req = new IncomingMessage(socket);
  req.method = "GET";
  req.url = head.path;
  req.headers = {
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": headerOf(ctx.rawHeaders, "sec-websocket-key") ?? head.headers["sec-websocket-key"] ?? "",
    "sec-websocket-version": headerOf(ctx.rawHeaders, "sec-websocket-version") ?? head.headers["sec-websocket-version"] ?? "",
    "sec-websocket-protocol": protocol,
  };
  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * 1024 * 1024, handleProtocols: () => protocol });
  const client = await new Promise<WebSocket | undefined>((resolve) => {
    socket.once("close", () => resolve(undefined));
    try {
      wss.handleUpgrade(req, socket, ctx.firstBytes, (ws) => resolve(ws));
    } catch {
      resolve(undefined);
    }
  });
  return { client, wss };
}

/**
 * Refuse an exec on an accepted stream: the Status on the error channel (v4/v5 carry JSON
 * there; kubectl prints its message), then close. False when the stream cannot be accepted
 * (no channel protocol in common, not a net.Socket): the caller answers in HTTP instead.
 */
async function refuseOverChannel(ctx: UpgradeContext<ConnectionType>, status: string): Promise<boolean> {
  const { socket } = ctx;
  const protocol = chooseProtocol(headerOf(ctx.rawHeaders, "sec-websocket-protocol") ?? ctx.head.headers["sec-websocket-protocol"]);
  if (protocol === undefined || !(socket instanceof Socket)) return false;
  const { client, wss } = await acceptClient(ctx, socket, protocol);
  if (client === undefined) {
    wss.close();
    return true;
  }
  await new Promise<void>((resolve) => {
    client.once("close", () => resolve());
    client.send(encodeChannelMessage(ERROR, status), () => client.close(1000));
    setTimeout(() => {
      client.terminate();
      resolve();
    }, 5_000).unref();
  });
  wss.close();
  return true;
}

function relay(ctx: UpgradeContext<ConnectionType>, session: SessionJudge, client: WebSocket, upstream: WebSocket, protocol: ChannelProtocol, stdin: boolean, tty: boolean, castPathFor: CastPathFor | undefined): Promise<void> {
  const ev = ctx.event;
  const cast = castPathFor === undefined ? undefined : new AsciicastWriter(castPathFor(session.info.id));
  cast?.start({ width: 80, height: 24, title: ev.type === "k8s.request" ? ev.text : "exec" });
  const send = (channel: number, data: Buffer | string): void => {
    if (client.readyState === WebSocket.OPEN) client.send(encodeChannelMessage(channel, data));
  };
  const maskLine = (text: string): { text: string; counts: Readonly<Record<string, number>> } | undefined => {
    const masked = ctx.mask.text(text);
    return masked === text ? undefined : { text: masked, counts: {} };
  };
  const out = new LineMasker({ mask: maskLine, write: (b) => { terminal.output(b); cast?.output(b); send(STDOUT, b); } });
  const err = new LineMasker({ mask: maskLine, write: (b) => { cast?.output(b); send(STDERR, b); } });
  const toUpstream = (channel: number, data: Buffer): void => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(encodeChannelMessage(channel, data));
  };
  const toTerminal = (b: Buffer): void => {
    cast?.output(b);
    send(STDOUT, b);
  };
  const notice = (text: string): void => {
    const b = Buffer.from(tty ? `\r\n${text}\r\n` : `${text}\n`);
    cast?.output(b);
    send(tty ? STDOUT : STDERR, b);
  };
  let seq = ev.seq;
  // Input is handled one message at a time: a line waits for its decision, and so does what follows it.
  let chain = Promise.resolve();
  // The same line-by-line judgement as an SSH terminal (common/terminal-input.ts).
  const terminal = terminalInput({
    terminal: tty,
    toTarget: (b) => toUpstream(STDIN, b),
    toTerminal,
    notice,
    marker: (text) => cast?.marker(text),
    judge: (line, edited) =>
      session.judge({ type: "ssh.input", session: session.info, seq: ++seq, line, edited }, { onHold: (n) => notice(gatewayText(n.message)), signal: ctx.signal }),
  });
  const onStdin = async (data: Buffer): Promise<void> => {
    cast?.input(data);
    await terminal.input(data);
  };

  return new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      out.close();
      err.close();
      void cast?.close();
      if (client.readyState === WebSocket.OPEN) client.close(1000);
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000);
      setTimeout(() => {
        client.terminate();
        upstream.terminate();
      }, 1000).unref();
      resolve();
    };
    const onAbort = (): void => {
      notice(gatewayText("the session was ended by the gateway"));
      finish();
    };
    ctx.signal.addEventListener("abort", onAbort, { once: true });

    client.on("message", (raw: RawData) => {
      const buf = toBuffer(raw);
      chain = chain.then(async () => {
        let m;
        try {
          m = decodeChannelMessage(buf, protocol);
        } catch (e) {
          notice(gatewayText(isGatewayError(e) ? e.message : "bad channel message"));
          finish();
          return;
        }
        switch (m.type) {
          case "empty":
            return;
          case "resize":
            cast?.resize(m.width, m.height);
            toUpstream(RESIZE, m.payload);
            return;
          case "close":
            // Half-close of stdin: judge the last unfinished line first (it runs at EOF).
            if (m.channel === STDIN) await terminal.atEnd();
            if (upstream.readyState === WebSocket.OPEN) upstream.send(Buffer.from([CLOSE, m.channel]));
            return;
          case "data":
            if (m.channel !== STDIN || !stdin) {
              notice(gatewayText(`channel ${m.channel} is not the client's to write`));
              finish();
              return;
            }
            await onStdin(m.payload);
            return;
        }
      });
    });
    upstream.on("message", (raw: RawData) => {
      const buf = toBuffer(raw);
      let m;
      try {
        m = decodeChannelMessage(buf, protocol);
      } catch {
        finish();
        return;
      }
      switch (m.type) {
        case "empty":
          if (client.readyState === WebSocket.OPEN) client.send(buf);
          return;
        case "data":
          if (m.channel === STDOUT) out.push(m.payload);
          else if (m.channel === STDERR) err.push(m.payload);
          else if (m.channel === ERROR) {
            out.flush();
            err.flush();
            send(ERROR, ctx.mask.json(m.payload.toString("utf8")));
          } else finish();
          return;
        case "resize":
        case "close":
          // Not the server's to send: end the stream rather than guess.
          finish();
          return;
      }
    });
    client.on("close", () => {
      void chain.then(finish);
    });
    upstream.on("close", () => {
      out.flush();
      err.flush();
      void chain.then(finish);
    });
    client.on("error", finish);
    upstream.on("error", finish);
  });
}

function toBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}
