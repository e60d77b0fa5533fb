/**
 * The HTTP engine (issue 15): a reverse proxy on the `http` listener. Clients send ordinary
 * HTTP/1.1 (TLS when the gateway has a certificate) to `/CONNECTION/…` with
 * `Authorization: Bearer TOKEN` (or Basic with the token as password); a connection may also
 * be reached by its own `hostName` (Host header) or its own listener `port`, without a prefix.
 *
 * accept → per request: parse (Node's llhttp parser, strict: conflicting or duplicate
 * Content-Length, Content-Length with Transfer-Encoding and obs-fold are refused with 400
 * before anything here runs) → authenticate + admit (the shared Gatekeeper; one session per
 * client connection, connection and token) → refuse method overrides, normalize the path
 * (normalize.ts) → read a bounded prefix of the body for inspection → judge (`http.request`,
 * or a plugged-in kind's event: core/http-kind.ts) → forward the judged path with the gateway's
 * credential (upstream.ts), the agent's own Authorization removed, hop-by-hop headers dropped
 * (RFC 9110 §7.6.1) → stream the response back: decoded (gzip/deflate/br), the credential
 * scrubbed, masked (JSON streamed, text and SSE by lines), Location rewritten to the gateway
 * → record the exchange (capped, masked) as the session's result.
 * Refusals: errors.ts.
 */
import { createHash } from "node:crypto";
import { createServer as createHttpServer, request as httpRequest, type Agent as HttpAgent, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse, type ClientRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { Duplex, Readable } from "node:stream";
import { TLSSocket, type SecureContext } from "node:tls";
import type { Logger } from "pino";
import { connectionMap, type Connection, type ConnectionSource } from "../../core/connection.js";
import type { AllowDecision, DenyDecision, MaskRule } from "../../core/decision.js";
import type { Dialer, Gatekeeper, ProtocolEngine, Refusal } from "../../core/engine.js";
import { GatewayError, toGatewayError, type ErrorCode } from "../../core/errors.js";
import type { JudgedEvent } from "../../core/events.js";
import type { HttpRequestHead, HttpServedKind, HttpUpstream, PlanMasker, ResponseTransform } from "../../core/http-kind.js";
import type { SessionJudge } from "../../core/judge.js";
import type { Principal } from "../../core/principal.js";
import type { SecretRef } from "../../core/secret.js";
import { MaskChain, jsonPathRules, type RuleMasker } from "../../masking/index.js";
import { LiveConnections } from "../common/live.js";
import { JsonMaskTransform, LineMasker, SecretScrubber, Tap, WholeBodyTransform, contentEncodingOf, decoderFor, SCRUBBED } from "./body.js";
import { dialerAgent } from "./dial-agent.js";
import { REFUSAL_HEADER, renderRefusal, type RenderedRefusal } from "./errors.js";
import { BUDGET_WARNING_HEADER, BudgetMeter, headerSafe } from "./budget-meter.js";
import { normalizePath, parseQuery, splitTarget } from "./normalize.js";
import { messageEvent, relayWebSocket } from "./websocket.js";
import { clientConnectionOf, h2Server, hostOf, isH2Preface, requestHasBody, type ClientConnection } from "./h2.js";
import type { Http2Server } from "node:http2";
import { httpRequestEvent, bodyFacts, isJson, redactHeaders } from "./request-facts.js";
import { OAuthTokens, httpUpstream } from "./upstream.js";

export interface HttpEngineOptions {
  readonly gatekeeper: Gatekeeper;
  /** How targets are reached: directly, or through a network agent of the connection's `via` group. */
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly connections: ConnectionSource;
  /** Target kinds served over this listener besides `http` (Kubernetes): core/http-kind.ts. */
  readonly kinds: readonly HttpServedKind[];
  readonly tls?: { readonly context: SecureContext; readonly require: boolean };
  /** Request bodies up to this size are read before judgement (JSON ones parsed for body rules). */
  readonly maxInspectBytes: number;
  readonly connectTimeoutMs: number;
  readonly maxRecordedBytes: number;
  readonly logger: Logger;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
}

/** A client that opened TLS must finish the handshake within this (then it has headersTimeout for its head). */
const TLS_HANDSHAKE_TIMEOUT_MS = 30_000;

/** Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded either way. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"]);
/** Headers that ask a server to act as another method: refused (the gateway judges the method it sees). */
const METHOD_OVERRIDES = ["x-http-method-override", "x-http-method", "x-method-override"];
/** Methods a client may send again after a connection failure (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
const QUERY_OVERRIDES = new Set(["_method", "x-http-method-override", "_httpmethod"]);

/** The servers a listener's sockets are handed to once sniffed: HTTP/1.1 plain, HTTP/1.1 over TLS, HTTP/2 (h2c or h2). */
interface Servers {
  readonly http: Server;
  readonly https: Server | undefined;
  readonly h2: Http2Server;
}

interface Admitted {
  readonly gate: SessionJudge;
  /** The client speaks HTTP/2 (no connection-specific headers, no status messages). */
  readonly http2: boolean;
  readonly connection: Connection;
  /** Requests of this session not answered yet (the session's end answers them), with how to stop their target request. */
  readonly inFlight: Map<ServerResponse, { readonly kind: HttpServedKind | undefined; stop?: () => void }>;
  seq: number;
  bytesIn: number;
  bytesOut: number;
}

/** A decision's masks as the response path uses them (#maskParts). */
interface MaskParts {
  readonly headerRules: readonly string[];
  readonly bodyRules: readonly MaskRule[];
  readonly chain: MaskChain;
  readonly pathRules: ReturnType<typeof jsonPathRules>;
}

/** Responses with a Content-Length up to this are written in one go (#respond). */
const CORK_MAX_BYTES = 64 * 1024;

type AdmitResult = { readonly ok: true; readonly s: Admitted } | { readonly ok: false; readonly refusal: Refusal };

interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly s: Admitted;
  readonly head: HttpRequestHead;
  readonly forwardPath: string;
  readonly kind: HttpServedKind | undefined;
  readonly started: number;
}

export class HttpEngine implements ProtocolEngine {
  readonly clientProtocol = "http" as const;
  readonly #o: HttpEngineOptions;
  readonly #log: Logger;
  readonly #live = new LiveConnections();
  readonly #connections: ReadonlyMap<string, Connection>;
  readonly #byHost: ReadonlyMap<string, string>;
  readonly #kinds: ReadonlyMap<string, HttpServedKind>;
  readonly #oauth = new OAuthTokens();
  readonly #agents = new Map<string, HttpAgent>();
  readonly #servers = new Map<string, Servers>();
  readonly #sessions = new WeakMap<object, Map<string, Promise<AdmitResult>>>();
  /**
   * WebSocket upgrades refused lately, by token, connection and request: kubectl retries a
   * refused WebSocket exec over SPDY at once, and that retry gets the same refusal (not the
   * "SPDY is not supported" it would otherwise see, which hides the rule and the reason).
   */
  readonly #refusedUpgrades = new Map<string, { readonly refusal: Refusal; readonly until: number }>();
  readonly #parts = new WeakMap<readonly MaskRule[], MaskParts>();
  readonly #bodyRules = new WeakMap<MaskRule, MaskRule>();

  constructor(options: HttpEngineOptions) {
    this.#o = options;
    this.#log = options.logger.child({ protocol: "http" });
    // A live map when the console registers connections at run time; Host routing (`hostName`) is the configuration's.
    this.#connections = connectionMap(options.connections);
    this.#byHost = new Map([...this.#connections.values()].flatMap((c) => (c.type === "http" && c.hostName !== undefined ? [[c.hostName, c.name] as const] : [])));
    this.#kinds = new Map(options.kinds.map((k) => [k.connectionType, k]));
  }

  /** Serve a socket of the main listener (connection by prefix or Host). */
  handle(socket: Socket): Promise<void> {
    return this.#handle(socket, "");
  }

  /** Serve a socket of a connection's own listener (`port:`): every request goes to it. */
  handleFor(connection: string): (socket: Socket) => Promise<void> {
    return (socket) => this.#handle(socket, connection);
  }

  async close(): Promise<void> {
    await this.#live.drain();
    for (const a of this.#agents.values()) a.destroy();
    for (const s of this.#servers.values()) {
      s.http.closeAllConnections();
      s.https?.closeAllConnections();
    }
  }

  #handle(socket: Socket, fixed: string): Promise<void> {
    return this.#live.serve(
      socket,
      () =>
        new Promise<void>((resolve) => {
          socket.on("error", () => undefined);
          socket.once("close", () => resolve());
          const servers = this.#serversFor(fixed);
          socket.once("data", (first: Buffer) => {
            socket.pause();
            socket.unshift(first);
            const tls = this.#o.tls;
            // TLS or plain on one port: a TLS ClientHello starts with 0x16 (RFC 8446 §5.1).
            if (first[0] === 0x16 && tls !== undefined) {
              // The TLSSocket takes the ClientHello from the socket's buffer (it reads what was
              // unshifted) and then the socket's handle directly: the raw socket must NOT be
              // resumed, or the buffered ClientHello flows out to no one and the handshake hangs.
              // The certificate is the default context, not only the SNI answer: clients that
              // dial an IP address (kubectl to https://127.0.0.1) send no SNI.
              this.#serveTls(socket, tls.context, servers);
              return;
            }
            if (tls?.require === true) {
              const r = renderRefusal(new GatewayError("GW_TLS_REQUIRED", "this gateway requires TLS: use https://"));
              socket.end(rawResponse(r));
            } else if (isH2Preface(first)) {
              // h2c with prior knowledge: the HTTP/2 session reads the preface from the buffer (not resumed, as for TLS).
              servers.h2.emit("connection", socket);
              return;
            } else servers.http.emit("connection", socket);
            socket.resume();
          });
        }),
      (e) => this.#log.error({ err: e }, "unexpected error serving an HTTP client"),
    );
  }

  /**
   * TLS on a sniffed socket: handshake with the listener's certificate, offering `h2` and
   * `http/1.1` by ALPN (RFC 7301), then serve the decrypted stream on the HTTP/2 server (the
   * client chose `h2`) or the HTTP/1.1 one (it chose `http/1.1` or sent no ALPN). A handshake
   * that fails or does not finish within the head timeout closes the connection.
   */
  #serveTls(socket: Socket, context: SecureContext, servers: Servers): void {
    const server = servers.https;
    if (server === undefined) return void socket.destroy();
    const secure = new TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: ["h2", "http/1.1"] });
    const timer = setTimeout(() => secure.destroy(), TLS_HANDSHAKE_TIMEOUT_MS);
    const failed = (): void => {
      clearTimeout(timer);
      secure.destroy();
      socket.destroy();
    };
    secure.once("error", failed);
    secure.once("close", () => clearTimeout(timer));
    secure.once("secure", () => {
      clearTimeout(timer);
      secure.off("error", failed);
      secure.on("error", () => undefined);
      if (secure.alpnProtocol === "h2") {
        // A server-side TLSSocket made outside tls.Server keeps `secureConnecting` true after
        // its handshake (tls.Server clears it before 'secureConnection'); an HTTP/2 session
        // given such a socket waits for a 'secureConnect' that a server socket never emits,
        // and stalls (the stall an earlier attempt saw). Cleared here as tls.Server does.
        markHandshakeDone(secure);
        servers.h2.emit("connection", secure);
        return;
      }
      server.emit("connection", secure);
    });
  }

  #serversFor(fixed: string): Servers {
    let s = this.#servers.get(fixed);
    if (s !== undefined) return s;
    const options = { maxHeaderSize: 32 * 1024, insecureHTTPParser: false, requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 30_000 };
    const wire = (server: Server): Server => {
      server.on("request", (req: IncomingMessage, res: ServerResponse) => void this.#onRequest(req, res, fixed, false));
      server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => void this.#onRequest(req, res, fixed, true));
      server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#onUpgrade(req, socket, head, fixed));
      server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
        // Malformed requests, smuggling shapes (RFC 9112 §6.3), oversized heads: 400 and close.
        if (!socket.writable) return socket.destroy();
        const r = renderRefusal(new GatewayError(err.code === "HPE_HEADER_OVERFLOW" ? "GW_LIMIT" : "GW_PROTOCOL", "malformed HTTP request"), err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400);
        socket.end(rawResponse(r));
      });
      return server;
    };
    const tls = this.#o.tls;
    s = {
      http: wire(createHttpServer(options)),
      // Fed sockets already decrypted (#serveTls), so a plain HTTP server.
      https: tls === undefined ? undefined : wire(createHttpServer(options)),
      h2: h2Server((req, res) => void this.#onRequest(req, res, fixed, false)),
    };
    this.#servers.set(fixed, s);
    return s;
  }

  /** The connection a request is for, and whether its path carries the prefix. */
  #route(req: IncomingMessage, fixed: string): { name: string; byPrefix: boolean } {
    if (fixed !== "") return { name: fixed, byPrefix: false };
    const host = hostOf(req).replace(/:\d+$/, "").toLowerCase();
    const byHost = this.#byHost.get(host);
    if (byHost !== undefined) return { name: byHost, byPrefix: false };
    return { name: "", byPrefix: true };
  }

  async #admit(req: IncomingMessage, name: string): Promise<AdmitResult> {
    const socket = req.socket;
    const client = clientConnectionOf(req);
    const token = tokenOf(req.headers.authorization);
    const clientAddress = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    const key = `${name}\0${createHash("sha256").update(token).digest("hex")}`;
    let map = this.#sessions.get(client.key);
    if (map === undefined) {
      map = new Map();
      this.#sessions.set(client.key, map);
      const sessions = map;
      client.onClose(() => {
        for (const p of sessions.values()) {
          void p.then((r) => (r.ok ? r.s.gate.end("client_closed", { statements: r.s.seq, bytesFromClient: r.s.bytesIn, bytesToClient: r.s.bytesOut }) : undefined));
        }
      });
    }
    const cached = map.get(key);
    if (cached !== undefined) {
      const r = await cached;
      if (!r.ok || !r.s.gate.signal.aborted) return r;
    }
    const p = this.#admitNew(token, name, clientAddress, client);
    map.set(key, p);
    const r = await p;
    // A refusal is not kept: the next request on this connection tries again.
    if (!r.ok) map.delete(key);
    return r;
  }

  async #admitNew(token: string, name: string, clientAddress: string, client: ClientConnection): Promise<AdmitResult> {
    const gk = this.#o.gatekeeper;
    const known = this.#connections.get(name);
    const clientProtocol = known !== undefined && known.type !== "http" ? (this.#kinds.get(known.type)?.clientProtocol ?? "http") : "http";
    const context = { clientProtocol, clientAddress, connection: name };
    let principal: Principal;
    try {
      principal = await gk.authenticate(token, context);
    } catch (e) {
      return { ok: false, refusal: toGatewayError(e, "GW_AUTH_INVALID") };
    }
    const targets = known !== undefined && known.type !== "http" && this.#kinds.has(known.type) ? ([known.type] as const) : (["http"] as const);
    const admission = await gk.admit({ clientProtocol, connection: name, principal, clientAddress, attributes: {} }, targets);
    if (!admission.ok) return { ok: false, refusal: admission.refusal };
    const gate = admission.session;
    const s: Admitted = { gate, http2: client.http2, connection: admission.connection, inFlight: new Map(), seq: 0, bytesIn: 0, bytesOut: 0 };
    gate.signal.addEventListener("abort", () => this.#ended(s, client), { once: true });
    return { ok: true, s };
  }

  /**
   * The session was ended (terminate, revoke, drain): a request still waiting for its answer gets
   * the refusal saying why (as every engine's client does), its target request is stopped, and
   * the connection closes.
   */
  #ended(s: Admitted, client: ClientConnection): void {
    const ended = new GatewayError("GW_SESSION_TERMINATED", `session ended: ${s.gate.termination?.detail ?? "terminated"}`);
    let pending = 0;
    for (const [res, e] of s.inFlight) {
      e.stop?.();
      if (res.headersSent || res.writableEnded || res.destroyed) continue;
      const r = renderFor(ended, e.kind);
      pending++;
      res.writeHead(r.status, { ...r.headers, "content-length": Buffer.byteLength(r.body), ...(s.http2 ? {} : { connection: "close" }) });
      res.end(r.body, () => {
        if (--pending === 0) client.destroy();
      });
    }
    s.inFlight.clear();
    if (pending === 0) client.destroy();
    else setTimeout(() => client.destroy(), 1_000).unref();
  }

  /** Everything common to plain requests and upgrades, up to the head; a refusal otherwise. */
  async #prepare(
    req: IncomingMessage,
    fixed: string,
  ): Promise<{ s: Admitted; head: HttpRequestHead; forwardPath: string; kind: HttpServedKind | undefined } | { refusal: Refusal; kind?: HttpServedKind | undefined }> {
    const route = this.#route(req, fixed);
    const split = splitTarget(req.url ?? "", route.byPrefix);
    if (split === undefined) return { refusal: new GatewayError("GW_PROTOCOL", "the request target must be a path (/CONNECTION/…)") };
    const name = route.byPrefix ? split.connection : route.name;
    const admitted = await this.#admit(req, name);
    // A login refused on a connection of another kind is told in that kind's shape (kubectl reads a Status).
    const known = this.#connections.get(name);
    if (!admitted.ok) return { refusal: admitted.refusal, kind: known === undefined || known.type === "http" ? undefined : this.#kinds.get(known.type) };
    const s = admitted.s;
    for (const h of METHOD_OVERRIDES) {
      if (req.headers[h] !== undefined) return { refusal: await this.#refuseFeature(s, "http.method_override", `${h} header`, `the ${h} header is refused: send the request with its real method`) };
    }
    const query = parseQuery(split.rawQuery);
    const override = query.find(([k]) => QUERY_OVERRIDES.has(k.toLowerCase()));
    if (override !== undefined) {
      return { refusal: await this.#refuseFeature(s, "http.method_override", `${override[0].slice(0, 64)} query parameter`, `the ${override[0]} query parameter is refused: send the request with its real method`) };
    }
    const norm = normalizePath(split.rest);
    if (!norm.ok) return { refusal: new GatewayError("GW_PROTOCOL", `refused path: ${norm.reason}`) };
    const headers = forwardableHeaders(req);
    const upgrade = isUpgrade(req) ? (req.headers.upgrade ?? "").toLowerCase() : undefined;
    const head: HttpRequestHead = {
      method: (req.method ?? "GET").toUpperCase(),
      path: split.rest,
      normalizedPath: norm.normalized,
      rawQuery: split.rawQuery,
      query,
      headers,
      ...(upgrade === undefined ? {} : { upgrade }),
    };
    const kind = s.connection.type === "http" ? undefined : this.#kinds.get(s.connection.type);
    return { s, head, forwardPath: norm.forward, kind };
  }

  /** A request of the protocol the gateway never forwards: judged (audited as a deny, issue 11), then refused. */
  async #refuseFeature(s: Admitted, feature: string, detail: string, reason: string, code: ErrorCode = "GW_PROTOCOL"): Promise<Refusal> {
    const gate = s.gate;
    const d = await gate.judge({ type: "protocol.request", session: gate.info, seq: ++s.seq, feature, detail, violation: { code, reason } });
    return d.type === "deny" ? { ...d, code, message: reason } : new GatewayError(code, reason);
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse, fixed: string, expectsContinue: boolean): Promise<void> {
    const started = performance.now();
    res.on("error", () => undefined);
    try {
      const p = await this.#prepare(req, fixed);
      if ("refusal" in p) return this.#refuse(res, p.refusal, p.kind);
      const { s, head, forwardPath, kind } = p;
      // 100-continue (RFC 9110 §10.1.1): answered once the client is admitted, so a bad token is refused before the body is sent.
      if (expectsContinue) res.writeContinue();
      s.seq++;
      s.inFlight.set(res, { kind });
      res.once("close", () => s.inFlight.delete(res));
      const x: Exchange = { req, res, s, head, forwardPath, kind, started };
      if (kind === undefined) await this.#serveHttp(x);
      else await this.#serveKind(x, kind);
    } catch (e) {
      const ge = toGatewayError(e);
      if (ge.code === "GW_INTERNAL") this.#log.error({ err: e }, "unexpected error in an HTTP exchange");
      if (!res.headersSent) this.#refuse(res, ge, undefined);
      else if (!res.writableEnded) res.destroy();
    }
  }

  #refuse(res: ServerResponse, r: Refusal, kind: HttpServedKind | undefined): void {
    // Already answered (the session's end answered it): nothing more to say.
    if (res.headersSent || res.writableEnded) return;
    const rendered = renderFor(r, kind);
    res.writeHead(rendered.status, { ...rendered.headers, "content-length": Buffer.byteLength(rendered.body) });
    res.end(rendered.body);
  }

  async #serveHttp(x: Exchange): Promise<void> {
    const { req, s, head } = x;
    const body = await readBody(req, this.#o.maxInspectBytes);
    const facts = bodyFacts({ contentType: req.headers["content-type"], contentEncoding: req.headers["content-encoding"] }, body);
    const event: JudgedEvent = httpRequestEvent(s.gate.info, s.seq, head, facts);
    await this.#judgeAndForward(x, event, body);
  }

  async #serveKind(x: Exchange, kind: HttpServedKind): Promise<void> {
    const { req, s, head } = x;
    const cap = kind.bodyFor?.(head);
    let body: BodyPrefix = { chunks: [], size: 0, ended: true };
    if (cap !== undefined) {
      body = await readBody(req, cap);
      if (!body.ended) throw new GatewayError("GW_LIMIT", `the request body is larger than ${cap} bytes`);
    } else if (hasBody(req)) body = await readBody(req, 0);
    const c = await kind.classify(head, { connection: s.connection, session: s.gate.info, seq: s.seq, ...(cap === undefined ? {} : { body: Buffer.concat(body.chunks) }) });
    if (!c.ok) return this.#refuse(x.res, await this.#refuseFeature(x.s, `${kind.clientProtocol}.request`, x.head.method, c.refusal.message, c.refusal.code), kind);
    await this.#judgeAndForward(x, c.event, body);
  }

  async #judgeAndForward(x: Exchange, event: JudgedEvent, body: BodyPrefix): Promise<void> {
    const { req, res, s } = x;
    const gone = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) gone.abort();
    });
    const decision = await s.gate.judge(event, { signal: gone.signal });
    if (decision.type === "deny") {
      req.resume();
      return this.#refuse(res, decision, x.kind);
    }
    const upstream = await this.#upstream(s.connection, x.kind);
    await this.#forward(x, event, decision, upstream, body);
  }

  async #upstream(c: Connection, kind: HttpServedKind | undefined): Promise<HttpUpstream> {
    try {
      if (kind !== undefined) return await kind.upstream(c, this.#o.resolveSecret);
      if (c.type !== "http") throw new GatewayError("GW_UNKNOWN_CONNECTION", `connection "${c.name}" is not served over HTTP`);
      return await httpUpstream(c, this.#o.resolveSecret, this.#oauth, this.#o.connectTimeoutMs);
    } catch (e) {
      throw toGatewayError(e, "GW_UPSTREAM_AUTH");
    }
  }

  /** The pooled Agent of a connection's target: its sockets come from the Dialer (dial-agent.ts). */
  #agentFor(c: Connection, up: HttpUpstream): HttpAgent {
    const key = `${c.name}|${up.baseUrl.origin}`;
    let a = this.#agents.get(key);
    if (a === undefined) {
      a = dialerAgent(this.#o.dialer, up, c.type === "http" || c.type === "kubernetes" ? c.via : undefined, this.#o.connectTimeoutMs);
      this.#agents.set(key, a);
    }
    return a;
  }

  #upstreamRequest(x: Exchange, up: HttpUpstream, extraHeaders: OutgoingHttpHeaders): ClientRequest {
    const base = up.baseUrl;
    const basePath = base.pathname.replace(/\/+$/, "");
    let query = x.head.rawQuery;
    if (up.query !== undefined && up.query.length > 0) {
      const names = new Set(up.query.map(([k]) => k));
      const kept = x.head.query.filter(([k]) => !names.has(k)).map(([k, v]) => [k, v] as [string, string]);
      query = new URLSearchParams([...kept, ...up.query.map(([k, v]) => [k, v] as [string, string])]).toString();
    }
    const path = `${basePath}${x.forwardPath}${query === "" ? "" : `?${query}`}`;
    const headers: OutgoingHttpHeaders = { ...x.head.headers, ...extraHeaders, ...up.headers, host: base.host };
    delete headers.expect;
    const https = base.protocol === "https:";
    const options = {
      method: x.head.method,
      host: base.hostname.replace(/^\[|\]$/g, ""),
      port: base.port === "" ? (https ? 443 : 80) : Number(base.port),
      path,
      headers,
      agent: this.#agentFor(x.s.connection, up),
      timeout: this.#o.connectTimeoutMs,
    };
    return https ? httpsRequest(options) : httpRequest(options);
  }

  async #forward(x: Exchange, event: JudgedEvent, decision: AllowDecision, up: HttpUpstream, body: BodyPrefix): Promise<void> {
    const { req, res, s } = x;
    const send = (): { upReq: ClientRequest; responded: Promise<IncomingMessage> } => {
      const upReq = this.#upstreamRequest(x, up, {});
      const tracked = s.inFlight.get(res);
      if (tracked !== undefined) tracked.stop = () => upReq.destroy();
      const responded = new Promise<IncomingMessage>((resolve, reject) => {
        upReq.once("response", resolve);
        upReq.once("error", reject);
        upReq.once("timeout", () => upReq.destroy(new Error("timeout")));
      });
      for (const c of body.chunks) upReq.write(c);
      if (body.ended) upReq.end();
      return { upReq, responded };
    };
    let sent = send();
    res.once("close", () => {
      if (!res.writableFinished) sent.upReq.destroy();
    });
    s.bytesIn += body.size;
    if (!body.ended) {
      req.on("data", (c: Buffer) => (s.bytesIn += c.length));
      req.pipe(sent.upReq);
    }
    let upRes: IncomingMessage;
    try {
      upRes = await sent.responded.catch(async (e: unknown) => {
        // A kept-alive connection the target closed while idle (RFC 9112 §9.3.1): an idempotent
        // request whose whole body the gateway holds is sent once more on a fresh connection
        // (RFC 9110 §9.2.2), as clients do; anything else is the target's failure.
        if (!sent.upReq.reusedSocket || !body.ended || !IDEMPOTENT.has(x.head.method) || res.closed || (e as NodeJS.ErrnoException).code !== "ECONNRESET") throw e;
        sent = send();
        return sent.responded;
      });
    } catch (e) {
      // The Dialer's own refusal (no agent of the group connected, the agent cannot reach the target) is told as it is.
      const ge = e instanceof GatewayError ? e : new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target did not answer", { cause: e });
      this.#log.warn({ err: e, connection: s.connection.name }, "HTTP target request failed");
      s.gate.observe({ type: "upstream.failure", session: s.gate.info, code: ge.code, message: ge.message });
      if (s.connection.type === "http" && s.connection.auth.type === "oauth2ClientCredentials") this.#oauth.invalidate(s.connection.name);
      return this.#refuse(res, ge, x.kind);
    }
    if (upRes.statusCode === 401 && s.connection.type === "http" && s.connection.auth.type === "oauth2ClientCredentials") this.#oauth.invalidate(s.connection.name);
    await this.#respond(x, event, decision, up, upRes);
  }

  async #respond(x: Exchange, event: JudgedEvent, decision: AllowDecision, up: HttpUpstream, upRes: IncomingMessage): Promise<void> {
    const { res, s, head } = x;
    const status = upRes.statusCode ?? 502;
    const { headerRules, bodyRules, chain, pathRules } = this.#maskParts(decision.plan?.masks ?? []);
    const counts: Record<string, number> = {};
    const outHeaders = this.#responseHeaders(upRes, up, s.connection.name, headerRules, counts);
    // Budgets (budget-meter.ts): the response is one row, charged before anything is sent; its
    // body counts toward bytes as it streams; budgets near their end are told in a header.
    const watch = s.gate.results;
    let meter: BudgetMeter | undefined;
    if (watch !== undefined) {
      const v = watch.row(event.seq, 0, []);
      if (v.type !== "pass") {
        upRes.destroy();
        this.#observeCut(x, event, status, v.refusal);
        return this.#refuse(res, v.refusal, x.kind);
      }
      const warnings = watch.budgetWarnings();
      if (warnings.length > 0) outHeaders[BUDGET_WARNING_HEADER] = warnings.map(headerSafe);
      meter = new BudgetMeter(watch, event.seq);
    }
    const noBody = head.method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
    const ctype = (upRes.headers["content-type"] ?? "").toLowerCase();
    const lowerHeaders = Object.fromEntries(Object.entries(outHeaders).map(([k, v]) => [k, String(v)]));
    const transform = x.kind?.responseTransform?.({ head, connection: s.connection, event, decision, status, headers: lowerHeaders });
    const needScrub = up.secrets.length > 0;
    const needMask = bodyRules.length > 0 || transform !== undefined;
    const tap = new Tap(this.#o.maxRecordedBytes);
    const stages: Duplex[] = [];
    if (!noBody && (needScrub || needMask)) {
      const enc = contentEncodingOf(upRes.headers["content-encoding"]);
      if (enc === "unknown") {
        upRes.resume();
        return this.#refuse(res, new GatewayError("GW_POLICY_DENIED", `the target answered in a content encoding the gateway cannot inspect (${String(upRes.headers["content-encoding"])}), so the response is refused`), x.kind);
      }
      if (enc !== undefined) stages.push(decoderFor(enc, 1 << 20));
      delete outHeaders["content-encoding"];
      delete outHeaders["content-length"];
      if (needScrub) stages.push(new SecretScrubber(up.secrets));
      if (transform !== undefined) stages.push(transformStage(transform, this.#planMasker(bodyRules, chain, counts)));
      else if (bodyRules.length > 0) {
        if (isJson(ctype)) stages.push(new JsonMaskTransform({ chain, pathRules, maskerFor: this.#o.maskerFor, counts }));
        else if (isText(ctype)) stages.push(new LineMasker(chain, counts));
        // Other media types (images, archives, octet streams) carry no text a detector reads: passed, scrubbed of the credential.
      }
    }
    // HTTP/2 has no status messages (RFC 9113 §8.3.2).
    if (s.http2) res.writeHead(status, outHeaders);
    else res.writeHead(status, upRes.statusMessage, outHeaders);
    if (ctype.startsWith("text/event-stream")) res.flushHeaders();
    else if (!noBody && meter === undefined && Number(upRes.headers["content-length"] ?? Infinity) <= CORK_MAX_BYTES) {
      // A small body of known length goes out with its head in one write at its end (res.end
      // uncorks), not as head + first chunk and then the rest; streamed bodies are not held,
      // nor metered ones (a budget cut must leave the client the head and the bytes that fit).
      res.cork();
    }
    let failed: unknown;
    if (noBody) {
      upRes.resume();
      res.end();
    } else {
      try {
        await relay(upRes, meter === undefined ? stages : [...stages, meter], tap, res);
      } catch (e) {
        failed = e;
        // With the error: an HTTP/2 stream is then reset (INTERNAL_ERROR), not ended cleanly
        // as if the body were whole; an HTTP/1.1 connection is closed either way.
        res.destroy(e instanceof Error ? e : new Error("the response was cut off"));
      }
    }
    s.bytesOut += tap.bytes;
    const duration = performance.now() - x.started;
    const cut = meter?.cut;
    if (cut !== undefined) this.#log.info({ connection: s.connection.name, rule: cut.rule, seq: event.seq }, "HTTP response cut: a budget is spent");
    else if (failed !== undefined && !(failed instanceof Error && /premature close/i.test(failed.message))) {
      this.#log.warn({ connection: s.connection.name, err: failed }, "HTTP response aborted (fail closed)");
    }
    const reqHeaders = JSON.stringify(redactHeaders(head.headers)).slice(0, this.#o.maxRecordedBytes);
    const resHeaders = JSON.stringify(outHeaders).slice(0, this.#o.maxRecordedBytes);
    const recordedBody = tap.head() + (tap.truncated ? " …" : "");
    s.gate.observe({
      type: "db.result",
      session: s.gate.info,
      seq: event.seq,
      kind: "simple",
      commandTag: `HTTP ${status}`,
      rowCount: tap.bytes,
      columns: ["part", "content"],
      rows: [
        ["request", `${head.method} ${head.path}${head.rawQuery === "" ? "" : `?${head.rawQuery}`}`],
        ["request headers", SecretScrubber.scrubText(reqHeaders, up.secrets)],
        ["response status", `${status} ${upRes.statusMessage ?? ""}`.trim()],
        ["response headers", resHeaders],
        ["response body", needScrub ? SecretScrubber.scrubText(recordedBody, up.secrets) : recordedBody],
      ],
      rowsTruncated: tap.truncated,
      durationMs: Math.round(duration),
      ...(Object.keys(counts).length === 0 ? {} : { masked: counts }),
      ...(cut !== undefined
        ? { error: { sqlstate: cut.code, message: `${cut.message}; the response body was cut after ${tap.bytes} bytes` }, refusedBy: cut.rule ?? cut.code }
        : failed === undefined
          ? {}
          : { error: { sqlstate: "GW_PROTOCOL", message: "the response was cut off: it could not be masked (fail closed) or the connection dropped" } }),
    });
  }

  /** A response refused at its head because a budget is spent: recorded and audited (refusedBy) as the result of its request. */
  #observeCut(x: Exchange, event: JudgedEvent, status: number, refusal: DenyDecision): void {
    const { s, head } = x;
    s.gate.observe({
      type: "db.result",
      session: s.gate.info,
      seq: event.seq,
      kind: "simple",
      commandTag: `HTTP ${status}`,
      rowCount: 0,
      columns: ["part", "content"],
      rows: [["request", `${head.method} ${head.path}${head.rawQuery === "" ? "" : `?${head.rawQuery}`}`]],
      durationMs: Math.round(performance.now() - x.started),
      error: { sqlstate: refusal.code, message: `${refusal.message}; the target's answer (${status}) was not sent` },
      refusedBy: refusal.rule ?? refusal.code,
    });
  }

  /**
   * A decision's masks split for the response: header rules, body rules (without their
   * `header:` columns), the detector chain and the compiled JSON paths. Cached by the plan's
   * rule list (policies hand out the same list for the same set of rules), and each derived rule
   * by its rule, so maskers and compiled paths (cached by rule identity) are built once.
   */
  #maskParts(masks: readonly MaskRule[]): MaskParts {
    let parts = this.#parts.get(masks);
    if (parts !== undefined) return parts;
    const headerRules = masks.flatMap((m) => m.columns.filter((c) => c.toLowerCase().startsWith("header:")).map((c) => c.slice(7).trim().toLowerCase()));
    const bodyRules = masks.map((m) => this.#bodyRule(m)).filter((m) => m.columns.length > 0 || m.detectors.length > 0);
    const chain = new MaskChain(bodyRules.filter((m) => m.detectors.length > 0).map((m) => this.#o.maskerFor(m)));
    parts = { headerRules, bodyRules, chain, pathRules: jsonPathRules(bodyRules) };
    if (masks.length > 0) this.#parts.set(masks, parts);
    return parts;
  }

  #bodyRule(m: MaskRule): MaskRule {
    if (!m.columns.some((c) => c.toLowerCase().startsWith("header:"))) return m;
    let b = this.#bodyRules.get(m);
    if (b === undefined) {
      b = { ...m, columns: m.columns.filter((c) => !c.toLowerCase().startsWith("header:")) };
      this.#bodyRules.set(m, b);
    }
    return b;
  }

  #planMasker(rules: readonly MaskRule[], chain: MaskChain, counts: Record<string, number>): PlanMasker {
    const maskerFor = this.#o.maskerFor;
    return {
      rules,
      counts,
      text: (v) => chain.line(v, counts) ?? v,
      json: (doc) => chain.json(doc, counts, rules, maskerFor).text ?? doc,
    };
  }

  #responseHeaders(upRes: IncomingMessage, up: HttpUpstream, connection: string, headerRules: readonly string[], counts: Record<string, number>): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const dropped = connectionTokens(upRes.headers.connection);
    const raw = upRes.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] ?? "").toLowerCase();
      let value = raw[i + 1] ?? "";
      // A target cannot pass its answer off as the gateway's refusal.
      if (HOP_BY_HOP.has(name) || dropped.has(name) || name === REFUSAL_HEADER || name === BUDGET_WARNING_HEADER) continue;
      value = SecretScrubber.scrubText(value, up.secrets);
      if (headerRules.includes(name)) {
        value = SCRUBBED;
        counts.header = (counts.header ?? 0) + 1;
      }
      if (name === "location") value = rewriteLocation(value, up.baseUrl, connection);
      const prev = out[name];
      if (prev === undefined) out[name] = value;
      else out[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
    return out;
  }

  async #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, fixed: string): Promise<void> {
    socket.on("error", () => undefined);
    // Refusals after routing are rendered in the kind's shape (kubectl reads a Status).
    let kindOf: HttpServedKind | undefined;
    try {
      const p = await this.#prepare(req, fixed);
      if ("refusal" in p) return void socket.end(rawResponse(renderFor(p.refusal, p.kind)));
      const { s, kind } = p;
      kindOf = kind;
      const retryKey = `${s.connection.name}\0${createHash("sha256").update(tokenOf(req.headers.authorization)).digest("hex")}\0${p.head.path}?${p.head.rawQuery}`;
      const earlier = this.#refusedUpgrades.get(retryKey);
      if (earlier !== undefined && earlier.until > Date.now() && p.head.upgrade !== "websocket") return void socket.end(rawResponse(renderFor(earlier.refusal, kind)));
      s.seq++;
      let event: JudgedEvent;
      if (kind !== undefined) {
        const c = await kind.classify(p.head, { connection: s.connection, session: s.gate.info, seq: s.seq });
        if (!c.ok) return void socket.end(rawResponse(renderFor(await this.#refuseFeature(s, `${kind.clientProtocol}.request`, `${p.head.method} upgrade`, c.refusal.message, c.refusal.code), kind)));
        event = c.event;
      } else {
        event = httpRequestEvent(s.gate.info, s.seq, p.head, { state: "none" });
      }
      const decision = await s.gate.judge(event);
      if (decision.type === "deny") {
        if (p.head.upgrade === "websocket") this.#rememberRefusedUpgrade(retryKey, decision);
        return void socket.end(rawResponse(renderFor(decision, kind)));
      }
      const up = await this.#upstream(s.connection, kind);
      const masks = decision.plan?.masks ?? [];
      const chain = new MaskChain(masks.filter((m) => m.detectors.length > 0).map((m) => this.#o.maskerFor(m)));
      if (kind?.upgrade !== undefined) {
        await kind.upgrade({
          head: p.head,
          connection: s.connection,
          session: s.gate,
          event,
          decision,
          upstream: up,
          socket,
          firstBytes: head,
          rawHeaders: req.rawHeaders,
          mask: this.#planMasker(masks, chain, {}),
          signal: s.gate.signal,
          agent: this.#agentFor(s.connection, up),
        });
        return;
      }
      if (p.head.upgrade === "websocket") return await this.#relayWebSocket(req, socket, head, p, up, masks, chain);
      if (masks.length > 0) {
        // Another upgraded protocol is bytes the gateway cannot read: refused rather than passed unmasked.
        return void socket.end(rawResponse(renderFor(new GatewayError("GW_POLICY_DENIED", `a mask policy applies to this request, and a ${p.head.upgrade ?? "raw"} upgrade cannot be masked, so it is refused`), kind)));
      }
      await this.#relayUpgrade(req, socket, head, p, up);
    } catch (e) {
      const ge = toGatewayError(e);
      if (ge.code === "GW_INTERNAL") this.#log.error({ err: e }, "unexpected error in an HTTP upgrade");
      socket.end(rawResponse(renderFor(ge, kindOf)));
    }
  }

  #rememberRefusedUpgrade(key: string, refusal: Refusal): void {
    const now = Date.now();
    for (const [k, v] of this.#refusedUpgrades) if (v.until <= now) this.#refusedUpgrades.delete(k);
    if (this.#refusedUpgrades.size < 10_000) this.#refusedUpgrades.set(key, { refusal, until: now + 30_000 });
  }

  /** A WebSocket on an `http` connection, frame by frame: client messages judged, target messages masked (websocket.ts). */
  async #relayWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, p: { s: Admitted; head: HttpRequestHead; forwardPath: string }, up: HttpUpstream, masks: readonly MaskRule[], chain: MaskChain): Promise<void> {
    const { s } = p;
    const base = up.baseUrl;
    let query = p.head.rawQuery;
    if (up.query !== undefined && up.query.length > 0) {
      const names = new Set(up.query.map(([k]) => k));
      query = new URLSearchParams([...p.head.query.filter(([k]) => !names.has(k)), ...up.query].map(([k, v]) => [k, v] as [string, string])).toString();
    }
    const target = `${base.protocol === "https:" ? "wss:" : "ws:"}//${base.host}${base.pathname.replace(/\/+$/, "")}${p.forwardPath}${query === "" ? "" : `?${query}`}`;
    const bodyRules = masks.map((m) => ({ ...m, columns: m.columns.filter((c) => !c.toLowerCase().startsWith("header:")) })).filter((m) => m.columns.length > 0 || m.detectors.length > 0);
    const counts: Record<string, number> = {};
    const untrack = this.#live.track(socket);
    try {
      await relayWebSocket({
        req,
        socket,
        head,
        target,
        agent: this.#agentFor(s.connection, up),
        headers: p.head.headers,
        credential: up.headers,
        secrets: up.secrets,
        mask: bodyRules.length === 0 ? undefined : this.#planMasker(bodyRules, chain, counts),
        judge: (body) => {
          const base = { type: "http.request" as const, session: s.gate.info, seq: ++s.seq, path: p.head.normalizedPath, query: p.head.query, headers: redactHeaders(p.head.headers) };
          return s.gate.judge(messageEvent(base, p.head, body));
        },
        signal: s.gate.signal,
        timeoutMs: this.#o.connectTimeoutMs,
        declined: (status, headers, body) => void socket.end(rawResponse({ status, headers, body })),
        failed: (e) => {
          this.#log.warn({ err: e, connection: s.connection.name }, "WebSocket to the target failed");
          socket.end(rawResponse(renderRefusal(e instanceof GatewayError ? e : new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target did not answer"))));
        },
      });
    } finally {
      untrack();
    }
  }

  async #relayUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, p: { s: Admitted; head: HttpRequestHead; forwardPath: string; kind: HttpServedKind | undefined }, up: HttpUpstream): Promise<void> {
    const x: Exchange = { req, res: undefined as unknown as ServerResponse, s: p.s, head: p.head, forwardPath: p.forwardPath, kind: p.kind, started: performance.now() };
    const upReq = this.#upstreamRequest(x, up, { connection: "Upgrade", upgrade: req.headers.upgrade ?? "websocket" });
    upReq.end();
    await new Promise<void>((resolve) => {
      upReq.once("error", (e) => {
        this.#log.warn({ err: e, connection: p.s.connection.name }, "HTTP upgrade to the target failed");
        socket.end(rawResponse(renderRefusal(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target did not answer"))));
        resolve();
      });
      upReq.once("response", (upRes: IncomingMessage) => {
        // The target declined the upgrade: its answer goes back as is (scrubbed), and the socket closes.
        const headers = this.#responseHeaders(upRes, up, p.s.connection.name, [], {});
        const chunks: Buffer[] = [];
        upRes.on("data", (c: Buffer) => chunks.length < 64 && chunks.push(c));
        upRes.on("end", () => {
          const body = SecretScrubber.scrubText(Buffer.concat(chunks).toString("utf8"), up.secrets);
          socket.end(rawResponse({ status: upRes.statusCode ?? 502, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])), body }));
          resolve();
        });
      });
      upReq.once("upgrade", (upRes: IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
        const headers = this.#responseHeaders(upRes, up, p.s.connection.name, [], {});
        let text = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${upRes.headers.upgrade ?? "websocket"}\r\n`;
        for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${String(one)}\r\n`;
        socket.write(`${text}\r\n`);
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        upSocket.on("error", () => undefined);
        const untrack = this.#live.track(upSocket);
        const done = (): void => {
          untrack();
          socket.destroy();
          upSocket.destroy();
          resolve();
        };
        p.s.gate.signal.addEventListener("abort", done, { once: true });
        upSocket.once("close", done);
        socket.once("close", done);
        upSocket.pipe(socket);
        socket.pipe(upSocket);
      });
    });
  }
}

interface BodyPrefix {
  readonly chunks: Buffer[];
  readonly size: number;
  /** The whole body was read. */
  readonly ended: boolean;
}

function hasBody(req: IncomingMessage): boolean {
  return requestHasBody(req);
}

/** Read the body up to `max` bytes (more: stop, the rest stays in the request stream, paused). */
function readBody(req: IncomingMessage, max: number): Promise<BodyPrefix> {
  if (!hasBody(req)) return Promise.resolve({ chunks: [], size: 0, ended: true });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      if (size > max) {
        req.pause();
        cleanup();
        resolve({ chunks, size, ended: false });
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ chunks, size, ended: true });
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(new GatewayError("GW_PROTOCOL", "the request body could not be read", { cause: e }));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

function isText(ctype: string): boolean {
  const t = ctype.split(";")[0]?.trim() ?? "";
  return t === "" || t.startsWith("text/") || t.endsWith("+xml") || t === "application/xml" || t === "application/javascript" || t === "application/x-www-form-urlencoded" || t === "application/x-ndjson" || t === "application/yaml";
}

/** The token from `Authorization: Bearer T`, or the password of `Basic` (user ignored). */
function tokenOf(header: string | undefined): string {
  if (header === undefined) return "";
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(header);
  if (m === null) return "";
  const scheme = (m[1] ?? "").toLowerCase();
  if (scheme === "bearer") return m[2] ?? "";
  if (scheme === "basic") {
    const decoded = Buffer.from(m[2] ?? "", "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return colon < 0 ? "" : decoded.slice(colon + 1);
  }
  return "";
}

function connectionTokens(v: string | string[] | undefined): Set<string> {
  const s = Array.isArray(v) ? v.join(",") : (v ?? "");
  return new Set(s.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== ""));
}

function isUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade !== undefined && connectionTokens(req.headers.connection).has("upgrade");
}

/** Client headers that may go to the target: no hop-by-hop, no credentials of the agent, no Host. */
function forwardableHeaders(req: IncomingMessage): Record<string, string> {
  const dropped = connectionTokens(req.headers.connection);
  const out: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? "").toLowerCase();
    // Pseudo-headers of HTTP/2 (`:path`, `:authority`) are the request line, not headers.
    if (HOP_BY_HOP.has(name) || dropped.has(name) || name === "authorization" || name === "host" || name === "expect" || name.startsWith(":")) continue;
    const v = raw[i + 1] ?? "";
    out[name] = out[name] === undefined ? v : `${out[name]}, ${v}`;
  }
  return out;
}

/** A Location pointing into the target becomes the gateway path of the same resource. */
function rewriteLocation(value: string, base: URL, connection: string): string {
  let u: URL;
  try {
    u = new URL(value, base);
  } catch {
    return value;
  }
  const basePath = base.pathname.replace(/\/+$/, "");
  if (u.origin !== base.origin || !(u.pathname === basePath || u.pathname.startsWith(`${basePath}/`) || basePath === "")) return u.toString();
  return `/${connection}${u.pathname.slice(basePath.length) || "/"}${u.search}${u.hash}`;
}

/** A refusal as the engine renders it, with the body in the kind's own shape when it has one (a Kubernetes Status). */
function renderFor(r: Refusal, kind: HttpServedKind | undefined): RenderedRefusal {
  const rendered = renderRefusal(r);
  if (kind?.renderRefusal === undefined) return rendered;
  const k = kind.renderRefusal(r, rendered.status);
  // No Retry-After here: client-go (kubectl) sleeps that long and retries a 429 up to 10 times,
  // so a budget spent for an hour would stall it for hours; the Status message says when it resets.
  const { "retry-after": _retry, ...headers } = rendered.headers;
  return { status: rendered.status, headers: { ...headers, "content-type": k.contentType }, body: k.body };
}

/** What tls.Server does to a socket once its handshake is done (`secureConnecting`, not in Node's typings). */
function markHandshakeDone(socket: TLSSocket): void {
  Reflect.set(socket, "secureConnecting", false);
}

function rawResponse(r: RenderedRefusal): string {
  const reason = r.status === 401 ? "Unauthorized" : r.status === 403 ? "Forbidden" : r.status === 404 ? "Not Found" : r.status === 400 ? "Bad Request" : "Error";
  let s = `HTTP/1.1 ${r.status} ${reason}\r\n`;
  for (const [k, v] of Object.entries(r.headers)) s += `${k}: ${v}\r\n`;
  s += `content-length: ${Buffer.byteLength(r.body)}\r\nconnection: close\r\n\r\n${r.body}`;
  return s;
}

/**
 * `source → stages → tap → res`, as stream.pipeline does it but without what pipeline costs on
 * every call (an AbortController, an end-of-stream watcher per stream, and an Error built to
 * destroy each finished stream): resolves once `res` has finished; rejects, with every stream
 * destroyed, when any stream fails, a readable closes before its end, or `res` closes first
 * (the client left). The caller then destroys `res` (fail closed).
 */
function relay(source: Readable, stages: readonly Duplex[], tap: Duplex, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const readables: Readable[] = [source, ...stages, tap];
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      for (const r of readables) r.destroy();
      reject(e);
    };
    for (const r of readables) {
      r.on("error", fail);
      r.once("close", () => {
        if (!r.readableEnded) fail(new Error("premature close"));
      });
    }
    res.on("error", fail);
    res.once("finish", () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    res.once("close", () => {
      if (!res.writableFinished) fail(new Error("premature close"));
    });
    let prev: Readable = source;
    for (const d of [...stages, tap]) prev = prev.pipe(d);
    prev.pipe(res);
  });
}

function transformStage(t: ResponseTransform, mask: PlanMasker): Duplex {
  switch (t.type) {
    case "json":
      return new WholeBodyTransform(t.maxBytes, (b) => t.rewrite(b, mask));
    case "json-lines":
    case "text-lines":
      return new LineMasker(new MaskChain([]), {}, t.maxLineBytes, (line) => t.rewrite(line, mask));
  }
}
