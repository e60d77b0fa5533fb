/**
 * HTTP/2 to clients on the HTTP listener (issue 15): h2 by ALPN over TLS (the engine's own
 * TLSSocket offers `h2` and `http/1.1` on the sniffed port; engine.ts #serveTls) and h2c with
 * prior knowledge (RFC 9113 §3.3, the connection starts with the client preface) on a plain
 * socket. Node's http2 compatibility API hands the engine request and response objects with
 * the same surface as HTTP/1.1's (method, url, headers, rawHeaders, write/end/writeHead,
 * 'close'), so one set of handlers serves both; what differs is here:
 *  - the client connection a session belongs to is the HTTP/2 session, not the socket (each
 *    stream's `req.socket` is a proxy of its own);
 *  - a request body is announced by the stream, not by Content-Length/Transfer-Encoding;
 *  - pseudo-headers (`:path`, `:authority`, …) are never forwarded, and the Host is `:authority`;
 *  - connection-specific headers (`connection: close`) must not be sent.
 * WebSocket over HTTP/2 (RFC 8441) is not offered: WebSocket clients use HTTP/1.1.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createH2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import type { Socket } from "node:net";

/** The client connection behind a request: the key its sessions are cached under, and how to end it. */
export interface ClientConnection {
  readonly key: object;
  readonly http2: boolean;
  onClose(f: () => void): void;
  destroy(): void;
}

/** True for the start of the HTTP/2 client preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`. */
export function isH2Preface(first: Buffer): boolean {
  return first.length >= 3 && first.toString("latin1", 0, Math.min(first.length, 14)) === "PRI * HTTP/2.0".slice(0, Math.min(first.length, 14));
}

function h2Request(req: IncomingMessage): Http2ServerRequest | undefined {
  return req.httpVersionMajor === 2 ? (req as unknown as Http2ServerRequest) : undefined;
}

export function clientConnectionOf(req: IncomingMessage): ClientConnection {
  const h2 = h2Request(req);
  if (h2 !== undefined) {
    const session: Http2Session | undefined = h2.stream.session;
    if (session !== undefined) {
      return { key: session, http2: true, onClose: (f) => void session.once("close", f), destroy: () => session.destroy() };
    }
  }
  const socket: Socket = req.socket;
  return { key: socket, http2: false, onClose: (f) => void socket.once("close", f), destroy: () => socket.destroy() };
}

/** Whether the request has a body to read (HTTP/2: the stream did not end with the headers). */
export function requestHasBody(req: IncomingMessage): boolean {
  const h2 = h2Request(req);
  if (h2 !== undefined) return !h2.stream.endAfterHeaders;
  const cl = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (cl !== undefined && cl !== "0");
}

/** The Host a request was sent to (HTTP/2: `:authority`). */
export function hostOf(req: IncomingMessage): string {
  const h = req.headers.host ?? req.headers[":authority"];
  return typeof h === "string" ? h : "";
}

/**
 * An HTTP/2 server fed sockets by the engine (plain, starting with the preface);
 * its requests go to the engine's HTTP/1.1 handlers through the compatibility API.
 */
export function h2Server(onRequest: (req: IncomingMessage, res: ServerResponse) => void): Http2Server {
  const server = createH2Server({ maxSessionMemory: 16, settings: { maxConcurrentStreams: 128 } });
  // The compatibility objects carry every member the handlers use (see the header above).
  server.on("request", (req: Http2ServerRequest, res: Http2ServerResponse) => onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse));
  server.on("sessionError", () => undefined);
  return server;
}
