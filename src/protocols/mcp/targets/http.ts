/**
 * The `http_request` and `kubernetes` tools over the gateway's own HTTP listener: one request to
 * `/CONNECTION/PATH` with the caller's Airlock token as `Authorization: Bearer`, judged, masked,
 * recorded and audited by the HTTP engine (and its Kubernetes kind) exactly as curl's would be.
 * The agent's own Authorization (and hop-by-hop headers) are never sent; the target's credential
 * is injected by the engine on the far side and never seen here.
 *
 * A refusal is the engine's JSON error body (errors.ts): `{ "error": { code, message, rule } }`
 * with 4xx/5xx, or 202 with `x-airlock-approval` for an async-mode hold.
 */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { parseRefusalText } from "../envelope.js";
import type { HoldNotice } from "../../../core/judge.js";
import type { Held, LoopbackCaller, LoopbackEndpoint, Refused, TargetError } from "./types.js";

export interface HttpCall {
  readonly connection: string;
  readonly method: string;
  /** Relative to the connection, starting with `/`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | readonly string[]>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: { readonly type: "json"; readonly value: unknown } | { readonly type: "text"; readonly value: string };
  /** Response body bytes kept at most (the rest: not read, `truncated`). */
  readonly maxBytes: number;
}

export interface HttpAnswer {
  readonly type: "response";
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The body as JSON when it is JSON and complete, else as text. */
  readonly json?: unknown;
  readonly text?: string;
  readonly truncated: boolean;
}

export type HttpOutcome = HttpAnswer | Refused | Held<HttpAnswer> | TargetError;

const TIMEOUT_MS = 60_000;
/** A held request's wait: longer than any approval's validity (the engine answers when it ends). */
const HELD_TIMEOUT_MS = 25 * 60 * 60_000;
const MAX_HEADERS = 50;
const MAX_HEADER_VALUE = 8 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
/** Never taken from the agent: its credential, the routing, framing and hop-by-hop headers (RFC 9110 §7.6.1). */
const NEVER_SENT = new Set([
  "authorization",
  "proxy-authorization",
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);
/** Response headers an agent is shown (the body is the point; these say what it is). */
const SHOWN = ["content-type", "content-length", "content-encoding", "location", "etag", "last-modified", "cache-control", "retry-after", "www-authenticate", "x-airlock-approval"];

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** The path and query as sent to the listener, or a message saying what is wrong. */
export function requestTarget(call: Pick<HttpCall, "connection" | "path" | "query">): string | { readonly error: string } {
  if (!call.path.startsWith("/") || call.path.startsWith("//")) return { error: "path must start with a single / (it is relative to the connection)" };
  if (/[\s#]/.test(call.path) || hasControl(call.path)) return { error: "path must not contain spaces, control characters or #" };
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(call.query ?? {})) for (const one of typeof v === "string" ? [v] : v) params.append(k, one);
  const qs = params.toString();
  const sep = qs === "" ? "" : call.path.includes("?") ? "&" : "?";
  return `/${encodeURIComponent(call.connection)}${call.path}${sep}${qs}`;
}

/** The agent's headers as sent, or a message saying which one is wrong. */
export function requestHeaders(headers: Readonly<Record<string, string>> | undefined): { readonly ok: true; readonly headers: Record<string, string> } | { readonly ok: false; readonly error: string } {
  const out: Record<string, string> = {};
  const entries = Object.entries(headers ?? {});
  if (entries.length > MAX_HEADERS) return { ok: false, error: `at most ${MAX_HEADERS} headers` };
  for (const [name, value] of entries) {
    if (!TOKEN.test(name)) return { ok: false, error: `invalid header name "${name.slice(0, 100)}"` };
    if (value.length > MAX_HEADER_VALUE || hasControl(value.replace(/\t/g, ""))) return { ok: false, error: `invalid value for header ${name}` };
    const lower = name.toLowerCase();
    if (NEVER_SENT.has(lower)) continue;
    out[lower] = value;
  }
  return { ok: true, headers: out };
}

function shownHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of SHOWN) {
    const v = h[name];
    if (typeof v === "string") out[name] = v.slice(0, 2000);
  }
  return out;
}

/** A Kubernetes Status the engine rendered for a refusal (kubernetes/kind.ts statusBody): its gateway code, rule and message. */
export function kubeRefusal(o: object): { code: string; message: string; rule?: string } | undefined {
  if (!("kind" in o) || o.kind !== "Status" || !("message" in o) || typeof o.message !== "string" || !("details" in o)) return undefined;
  const details = o.details;
  if (typeof details !== "object" || details === null || !("causes" in details) || !Array.isArray(details.causes)) return undefined;
  const cause: unknown = details.causes[0];
  if (typeof cause !== "object" || cause === null || !("reason" in cause) || cause.reason !== "AirlockRefusal" || !("message" in cause) || typeof cause.message !== "string") return undefined;
  const rule = "field" in cause && typeof cause.field === "string" && cause.field !== "" ? cause.field : undefined;
  return { code: cause.message, message: o.message, ...(rule === undefined ? {} : { rule }) };
}

/** The engine's refusal body, read back; undefined when the body is not one. */
function refusalOf(status: number, headers: IncomingHttpHeaders, text: string): Refused | Held<HttpAnswer> | undefined {
  if (!/^application\/json/.test(headers["content-type"] ?? "")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const error = "error" in parsed ? parsed.error : kubeRefusal(parsed);
  if (typeof error !== "object" || error === null || !("code" in error) || !("message" in error)) return undefined;
  const code = error.code;
  const message = error.message;
  if (typeof code !== "string" || !code.startsWith("GW_") || typeof message !== "string") return undefined;
  const said = parseRefusalText(message);
  const rule = "rule" in error && typeof error.rule === "string" ? error.rule : said?.rule;
  const text2 = said?.message ?? message;
  const approval = headers["x-airlock-approval"];
  if (status === 202 && typeof approval === "string") return { type: "held", approvalId: approval, message: text2 };
  return { type: "refused", code, ...(rule === undefined ? {} : { rule }), message: text2 };
}

function connectTo(endpoint: LoopbackEndpoint & { readonly tls: boolean }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // Loopback to this gateway's own listener (its certificate is its own, often self-signed).
    const sock: Socket = endpoint.tls
      ? tlsConnect({ host: endpoint.host, port: endpoint.port, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => resolve(sock))
      : netConnect({ host: endpoint.host, port: endpoint.port }, () => resolve(sock));
    sock.once("error", reject);
    sock.setTimeout(TIMEOUT_MS, () => sock.destroy(new Error("timeout")));
  });
}

/** One request, in a client connection (and so a gateway session) of its own. */
export async function runHttp(endpoint: LoopbackEndpoint & { readonly tls: boolean }, caller: LoopbackCaller, call: HttpCall): Promise<HttpOutcome> {
  const target = requestTarget(call);
  if (typeof target !== "string") return { type: "error", code: "GW_BAD_REQUEST", message: target.error };
  const agentHeaders = requestHeaders(call.headers);
  if (!agentHeaders.ok) return { type: "error", code: "GW_BAD_REQUEST", message: agentHeaders.error };
  let body: Buffer | undefined;
  const headers: OutgoingHttpHeaders = { ...agentHeaders.headers, authorization: `Bearer ${caller.bearer}`, host: `${endpoint.host}:${endpoint.port}`, connection: "close" };
  if (call.body !== undefined) {
    body = Buffer.from(call.body.type === "json" ? JSON.stringify(call.body.value) : call.body.value, "utf8");
    if (headers["content-type"] === undefined) headers["content-type"] = call.body.type === "json" ? "application/json" : "text/plain; charset=utf-8";
    headers["content-length"] = body.length;
  }
  let sock: Socket;
  try {
    sock = await connectTo(endpoint);
  } catch {
    return { type: "error", code: "GW_UPSTREAM", message: "the gateway's HTTP listener could not be reached" };
  }
  // Wait mode: the engine holds the request open with nothing on the wire; the approval path
  // tells us (correlation.ts), and the call answers `held` at once while the request waits on.
  let announce: ((n: HoldNotice) => void) | undefined;
  let waitLonger: (() => void) | undefined;
  const release = caller.expect(sock.localPort ?? 0, (n) => announce?.(n));
  const final = new Promise<HttpOutcome>((resolve) => {
    let done = false;
    const finish = (o: HttpOutcome): void => {
      if (done) return;
      done = true;
      release();
      sock.destroy();
      resolve(o);
    };
    const req = httpRequest({ method: call.method, path: target, headers, createConnection: () => sock, timeout: TIMEOUT_MS });
    waitLonger = () => {
      // Held: the answer comes once a person decides (the approval's own expiry bounds it).
      sock.setTimeout(HELD_TIMEOUT_MS);
      req.setTimeout(HELD_TIMEOUT_MS);
    };
    req.once("timeout", () => finish({ type: "error", code: "GW_TIMEOUT", message: "no answer from the gateway's HTTP listener" }));
    req.once("error", () => finish({ type: "error", code: "GW_UPSTREAM", message: "the gateway closed the connection" }));
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      const settle = (): void => {
        const buf = Buffer.concat(chunks);
        // Cut on a character boundary: a partial UTF-8 sequence at the end is dropped.
        let text = buf.toString("utf8");
        if (truncated && text.endsWith("\ufffd")) text = text.slice(0, -1);
        const status = res.statusCode ?? 0;
        if (status === 202 || status >= 400) {
          const r = truncated ? undefined : refusalOf(status, res.headers, text);
          if (r !== undefined) return finish(r);
        }
        let json: unknown;
        let isJson = false;
        if (!truncated && /^application\/(?:[\w.+-]+\+)?json/.test(res.headers["content-type"] ?? "") && text.trim() !== "") {
          try {
            json = JSON.parse(text);
            isJson = true;
          } catch {
            isJson = false;
          }
        }
        finish({ type: "response", status, headers: shownHeaders(res.headers), ...(isJson ? { json } : { text }), truncated });
      };
      res.on("data", (c: Buffer) => {
        if (truncated) return;
        if (kept + c.length > call.maxBytes) {
          chunks.push(c.subarray(0, call.maxBytes - kept));
          kept = call.maxBytes;
          truncated = true;
          settle();
          return;
        }
        kept += c.length;
        chunks.push(c);
      });
      res.once("end", settle);
      res.once("error", () => finish({ type: "error", code: "GW_UPSTREAM", message: "the answer was cut off" }));
    });
    req.end(body);
  });
  return new Promise<HttpOutcome>((resolve) => {
    announce = (n) => {
      waitLonger?.();
      const result: Promise<HttpAnswer | Refused | TargetError> = final.then((o) =>
        o.type === "held" ? { type: "error", code: "GW_INTERNAL", message: "the approved request was held again" } : o,
      );
      resolve({ type: "held", approvalId: n.approvalId, message: n.message, result });
    };
    void final.then(resolve);
  });
}
