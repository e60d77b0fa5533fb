/**
 * WebSocket upgrades on an `http` connection, relayed frame by frame (issue 15): the gateway
 * ends the client's WebSocket and opens its own to the target (through the Dialer's Agent,
 * with the gateway's credential), then
 *  - server → client: text messages are masked by the decision's plan (a JSON message by JSON
 *    paths and detectors, other text by detectors) and scrubbed of the gateway's credential;
 *    binary messages pass scrubbed (no text a detector reads);
 *  - client → server: every message is judged before it is sent, as an `http.request` event of
 *    method `WS` on the upgrade's path whose body is the message (JSON when it parses): so
 *    `match: { methods: [WS], body: ["$.op == 'drop'"] }` denies a message, and a rule that must
 *    read a body it cannot (binary, not JSON) refuses it, fail closed. A refused message closes
 *    the WebSocket with 1008 (policy violation) and the refusal's text as the reason.
 * The target's own handshake refusal goes back as its HTTP answer (scrubbed).
 */
import { createHash } from "node:crypto";
import type { Agent, IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { refusalText } from "../../core/engine.js";
import type { Decision } from "../../core/decision.js";
import type { HttpBodyFacts, JudgedEvent } from "../../core/events.js";
import type { HttpRequestHead, PlanMasker } from "../../core/http-kind.js";
import { SecretScrubber } from "./body.js";

/** A message larger than this is refused (1009), either way. */
export const WS_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** The pseudo-method client → server messages are judged under. */
export const WS_METHOD = "WS";

export interface WebSocketRelayOptions {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  /** ws:// or wss:// URL of the target, with its path and query. */
  readonly target: string;
  readonly agent: Agent;
  /** Client headers that may go to the target (hop-by-hop and the agent's Authorization removed). */
  readonly headers: Readonly<Record<string, string>>;
  /** The gateway's credential headers. */
  readonly credential: Readonly<Record<string, string>>;
  readonly secrets: readonly string[];
  /** Masking of server → client text messages; undefined: nothing to mask. */
  readonly mask: PlanMasker | undefined;
  /** Judge one client → server message (its event built by `messageEvent`). */
  readonly judge: (body: HttpBodyFacts, text: string) => Promise<Decision>;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** The target declined: answer the client with this HTTP response and close. */
  readonly declined: (status: number, headers: Readonly<Record<string, string>>, body: string) => void;
  readonly failed: (e: unknown) => void;
}

/** What a client message is, for the judge: JSON when it parses. */
export function messageFacts(data: Buffer, isBinary: boolean): HttpBodyFacts {
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (isBinary) return { state: "opaque", reason: "not_json", bytes: data.length, sha256 };
  try {
    return { state: "json", value: JSON.parse(data.toString("utf8")) as unknown, bytes: data.length, sha256 };
  } catch {
    return { state: "opaque", reason: "not_json", bytes: data.length, sha256 };
  }
}

/** The judged event of one client → server message. */
export function messageEvent(base: Omit<Extract<JudgedEvent, { type: "http.request" }>, "method" | "body" | "text">, head: HttpRequestHead, body: HttpBodyFacts): JudgedEvent {
  const line = `${WS_METHOD} ${head.normalizedPath}${head.rawQuery === "" ? "" : `?${head.rawQuery}`}`;
  const digest = body.state === "none" ? "" : `\nmessage: ${body.bytes ?? "?"} bytes ${body.state === "json" ? "JSON" : "(not JSON)"}, sha256 ${body.sha256 ?? "?"}`;
  return { ...base, method: WS_METHOD, body, text: `${line}${digest}` };
}

/** A close reason fits in 123 bytes (RFC 6455 §5.5). */
function reason(text: string): string {
  let r = text;
  while (Buffer.byteLength(r) > 123) r = `${r.slice(0, r.length - 2)}…`;
  return r;
}

/** Close codes a peer may send on (1005, 1006, 1015 are never sent). */
function sendable(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 || code < 1000 || code >= 5000 ? 1000 : code;
}

export function relayWebSocket(o: WebSocketRelayOptions): Promise<void> {
  const offered = (o.req.headers["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.headers)) if (!k.startsWith("sec-websocket-")) headers[k] = v;
  const upstream = new WebSocket(o.target, offered, {
    agent: o.agent,
    headers: { ...headers, ...o.credential },
    handshakeTimeout: o.timeoutMs,
    maxPayload: WS_MAX_MESSAGE_BYTES,
  });
  return new Promise<void>((resolve) => {
    let settled = false;
    upstream.once("unexpected-response", (_r, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on("end", () => {
        settled = true;
        const h: Record<string, string> = {};
        const ct = res.headers["content-type"];
        if (ct !== undefined) h["content-type"] = ct;
        o.declined(res.statusCode ?? 502, h, SecretScrubber.scrubText(Buffer.concat(chunks).toString("utf8"), o.secrets));
        resolve();
      });
      res.on("error", () => undefined);
    });
    upstream.once("error", (e) => {
      if (settled) return;
      settled = true;
      o.failed(e);
      resolve();
    });
    upstream.once("open", () => {
      settled = true;
      const chosen = upstream.protocol;
      const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_MESSAGE_BYTES, handleProtocols: () => (chosen === "" ? false : chosen) });
      wss.handleUpgrade(o.req, o.socket, o.head, (client) => {
        serve(o, client, upstream).then(resolve, resolve);
      });
    });
  });
}

async function serve(o: WebSocketRelayOptions, client: WebSocket, upstream: WebSocket): Promise<void> {
  const closeBoth = (code: number, why: string): void => {
    if (client.readyState === WebSocket.OPEN) client.close(code, reason(why));
    if (upstream.readyState === WebSocket.OPEN) upstream.close(code === 1008 ? 1000 : code, "");
    setTimeout(() => {
      client.terminate();
      upstream.terminate();
    }, 2_000).unref();
  };
  // Client messages are judged one at a time, in order: a message waits for the one before it.
  let queue = Promise.resolve();
  client.on("message", (data: RawData, isBinary: boolean) => {
    const buf = toBuffer(data);
    queue = queue.then(async () => {
      if (client.readyState !== WebSocket.OPEN) return;
      const facts = messageFacts(buf, isBinary);
      const d = await o.judge(facts, "");
      if (d.type === "deny") return closeBoth(1008, refusalText(d, true));
      if (upstream.readyState === WebSocket.OPEN) upstream.send(buf, { binary: isBinary });
    }).catch(() => closeBoth(1011, "airlock: the message could not be judged"));
  });
  upstream.on("message", (data: RawData, isBinary: boolean) => {
    if (client.readyState !== WebSocket.OPEN) return;
    const buf = toBuffer(data);
    if (isBinary) {
      // Credentials are ASCII: a latin1 round trip finds them in any bytes and keeps the rest as is.
      client.send(o.secrets.length === 0 ? buf : Buffer.from(SecretScrubber.scrubText(buf.toString("latin1"), o.secrets), "latin1"), { binary: true });
      return;
    }
    let text = buf.toString("utf8");
    if (o.secrets.length > 0) text = SecretScrubber.scrubText(text, o.secrets);
    client.send(o.mask === undefined ? text : maskMessage(text, o.mask));
  });
  upstream.on("ping", (d: Buffer) => client.readyState === WebSocket.OPEN && client.ping(d));
  client.on("ping", (d: Buffer) => upstream.readyState === WebSocket.OPEN && upstream.ping(d));
  client.on("error", () => undefined);
  upstream.on("error", () => undefined);
  const onAbort = (): void => closeBoth(1008, "airlock: session ended");
  o.signal.addEventListener("abort", onAbort, { once: true });
  await new Promise<void>((resolve) => {
    let open = 2;
    const done = (): void => {
      if (--open > 0) return;
      o.signal.removeEventListener("abort", onAbort);
      resolve();
    };
    client.once("close", (code: number, why: Buffer) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.close(sendable(code), why.toString("utf8"));
      else upstream.terminate();
      done();
    });
    upstream.once("close", (code: number, why: Buffer) => {
      // After the pending client messages were judged: a refusal's close is not overtaken.
      void queue.then(() => {
        if (client.readyState === WebSocket.OPEN) client.close(sendable(code), reason(why.toString("utf8")));
        else client.terminate();
      });
      done();
    });
  });
}

/** A text message: JSON masked by paths and detectors (stays valid JSON), other text by detectors. */
function maskMessage(text: string, mask: PlanMasker): string {
  const t = text.trimStart();
  if (t.startsWith("{") || t.startsWith("[") || t.startsWith('"')) {
    try {
      JSON.parse(text);
      return mask.json(text);
    } catch {
      // not JSON after all: text
    }
  }
  return mask.text(text);
}

function toBuffer(d: RawData): Buffer {
  if (Buffer.isBuffer(d)) return d;
  if (Array.isArray(d)) return Buffer.concat(d);
  return Buffer.from(d);
}
