/**
 * What the HTTP engine judges of a request (issue 15): the body facts, the text people see, the
 * headers as judged and recorded. One place, so that a dry run (MCP `check_policy`,
 * runtime/mcp.ts) builds exactly the event a request through the listener would be judged as.
 */
import { createHash } from "node:crypto";
import type { HttpBodyFacts, HttpRequestEvent } from "../../core/events.js";
import type { HttpRequestHead } from "../../core/http-kind.js";
import type { SessionInfo } from "../../core/session.js";
import { SCRUBBED, contentEncodingOf } from "./body.js";
import { normalizePath, parseQuery } from "./normalize.js";

export function isJson(ctype: string): boolean {
  const t = ctype.split(";")[0]?.trim() ?? "";
  return t === "application/json" || t.endsWith("+json") || t === "text/json";
}

/** The facts of a body read up to the inspection cap (`ended`: all of it was read). */
export function bodyFacts(headers: { readonly contentType?: string | undefined; readonly contentEncoding?: string | undefined }, body: { readonly chunks: readonly Buffer[]; readonly size: number; readonly ended: boolean }): HttpBodyFacts {
  if (body.size === 0 && body.ended) return { state: "none" };
  if (!body.ended) return { state: "opaque", reason: "too_large", bytes: body.size };
  const buf = Buffer.concat(body.chunks);
  const sha256 = createHash("sha256").update(buf).digest("hex");
  if (contentEncodingOf(headers.contentEncoding) !== undefined) return { state: "opaque", reason: "encoded", bytes: buf.length, sha256 };
  if (!isJson((headers.contentType ?? "").toLowerCase())) return { state: "opaque", reason: "not_json", bytes: buf.length, sha256 };
  try {
    return { state: "json", value: JSON.parse(buf.toString("utf8")) as unknown, bytes: buf.length, sha256 };
  } catch {
    return { state: "opaque", reason: "invalid_json", bytes: buf.length, sha256 };
  }
}

export function requestText(head: Pick<HttpRequestHead, "method" | "normalizedPath" | "rawQuery">, body: HttpBodyFacts): string {
  const line = `${head.method} ${head.normalizedPath}${head.rawQuery === "" ? "" : `?${head.rawQuery}`}`;
  switch (body.state) {
    case "none":
      return line;
    case "json":
      return `${line}\nbody: ${body.bytes} bytes JSON, sha256 ${body.sha256}`;
    case "opaque":
      return `${line}\nbody: ${body.bytes ?? "?"} bytes (${body.reason})${body.sha256 === undefined ? "" : `, sha256 ${body.sha256}`}`;
  }
}

/** Headers as recorded and judged: cookies and anything credential-like shown as [REDACTED]. */
export function redactHeaders(h: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = k === "cookie" || /token|secret|api[-_]?key|auth|password|session/.test(k) ? SCRUBBED : v;
  return out;
}

/** A request as a client would send it after `/CONNECTION`: the path (with `?query`), lower-case headers, a body. */
export interface RequestSketch {
  readonly method: string;
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly upgrade?: string;
}

/** The head the engine would parse from the sketch, or why the engine would refuse its path. */
export function sketchHead(r: RequestSketch): HttpRequestHead | { readonly error: string } {
  const q = r.target.indexOf("?");
  const path = q < 0 ? r.target : r.target.slice(0, q);
  const rawQuery = q < 0 ? "" : r.target.slice(q + 1);
  const norm = normalizePath(path === "" ? "/" : path);
  if (!norm.ok) return { error: `refused path: ${norm.reason}` };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) {
    const name = k.toLowerCase();
    if (name !== "authorization" && name !== "host") headers[name] = v;
  }
  return { method: r.method.toUpperCase(), path, normalizedPath: norm.normalized, rawQuery, query: parseQuery(rawQuery), headers, ...(r.upgrade === undefined ? {} : { upgrade: r.upgrade }) };
}

/** The event a plain HTTP request with this head and body would be judged as. */
export function httpRequestEvent(session: SessionInfo, seq: number, head: HttpRequestHead, facts: HttpBodyFacts): HttpRequestEvent {
  return { type: "http.request", session, seq, method: head.method, path: head.normalizedPath, query: head.query, headers: redactHeaders(head.headers), body: facts, text: requestText(head, facts) };
}
