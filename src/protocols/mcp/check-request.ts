/**
 * `check_policy` for HTTP and Kubernetes connections (issue 16): the call as the request a client
 * would send to `/CONNECTION…` on the gateway's HTTP listener (method, path with query, headers,
 * body). The runtime turns it into the judged event with the HTTP engine's own code (or the
 * Kubernetes kind's classification), and the pipeline's dry run judges it, so the answer is the
 * one the real request would get (rate budgets aside: a dry run counts nothing).
 */
import { z } from "zod";
import { kubePath } from "./kube-tool.js";
import { requestHeaders, requestTarget } from "./targets/http.js";

/** A request as a client would send it after `/CONNECTION` (lower-case headers; `upgrade`: a WebSocket exec). */
export interface RequestSketch {
  readonly method: string;
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly upgrade?: string;
  readonly body?: Buffer;
}

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
/** The Kubernetes verbs check_policy takes (kubectl's words; `describe` is a get). */
export const KUBE_CHECK_VERBS = ["get", "describe", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "logs", "exec"] as const;
type KubeVerb = (typeof KUBE_CHECK_VERBS)[number];

/** check_policy's arguments for HTTP and Kubernetes connections. */
export const requestCheckArgs = {
  method: z.enum(HTTP_METHODS).optional().describe("HTTP connections: the method (default GET)"),
  path: z.string().min(1).max(8192).optional().describe("HTTP connections: the path relative to the connection, e.g. /v1/users/42"),
  query: z.record(z.string().max(200), z.union([z.string().max(8192), z.array(z.string().max(8192)).max(100)])).optional(),
  headers: z.record(z.string().max(100), z.string().max(8192)).optional(),
  json: z.unknown().optional().describe("a JSON body (HTTP), or the object of a Kubernetes create/update/patch"),
  body: z.string().max(1024 * 1024).optional().describe("a text body (HTTP)"),
  verb: z.enum(KUBE_CHECK_VERBS).optional().describe("Kubernetes connections: what kubectl would do"),
  resource: z.string().min(1).max(253).optional().describe("Kubernetes: the plural resource (pods, deployments, …)"),
  apiVersion: z.string().max(300).optional(),
  namespace: z.string().max(253).optional(),
  name: z.string().max(253).optional(),
  command: z.array(z.string().max(64 * 1024)).max(1000).optional().describe("Kubernetes exec: the command's argv"),
};

export interface RequestCheckArgs {
  readonly method?: (typeof HTTP_METHODS)[number] | undefined;
  readonly path?: string | undefined;
  readonly query?: Readonly<Record<string, string | readonly string[]>> | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly json?: unknown;
  readonly body?: string | undefined;
  readonly verb?: KubeVerb | undefined;
  readonly resource?: string | undefined;
  readonly apiVersion?: string | undefined;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
  readonly command?: readonly string[] | undefined;
}

function jsonBody(v: unknown): { readonly body?: Buffer; readonly headers: Record<string, string> } {
  return v === undefined ? { headers: {} } : { body: Buffer.from(JSON.stringify(v), "utf8"), headers: { "content-type": "application/json" } };
}

/** Strip the `/CONNECTION` prefix requestTarget adds: the sketch is relative to the connection. */
function relative(connection: string, target: string): string {
  return target.slice(`/${encodeURIComponent(connection)}`.length);
}

/** An HTTP connection's request, or what is wrong with the arguments. */
export function httpSketch(connection: string, a: RequestCheckArgs): RequestSketch | { readonly error: string } {
  if (a.path === undefined) return { error: "give path (and method, query, headers, json or body) for an HTTP connection" };
  if (a.json !== undefined && a.body !== undefined) return { error: "give json or body, not both" };
  const target = requestTarget({ connection, path: a.path, ...(a.query === undefined ? {} : { query: a.query }) });
  if (typeof target !== "string") return target;
  const h = requestHeaders(a.headers);
  if (!h.ok) return { error: h.error };
  const j = jsonBody(a.json);
  const text = a.body === undefined ? {} : { body: Buffer.from(a.body, "utf8") };
  const headers = { ...h.headers, ...j.headers, ...(a.body !== undefined && h.headers["content-type"] === undefined ? { "content-type": "text/plain; charset=utf-8" } : {}) };
  return { method: a.method ?? "GET", target: relative(connection, target), headers, ...(j.body === undefined ? {} : { body: j.body }), ...text };
}

/** A Kubernetes connection's request (as kubectl would send it), or what is wrong with the arguments. */
export function kubeSketch(a: RequestCheckArgs): RequestSketch | { readonly error: string } {
  if (a.verb === undefined) {
    if (a.path === undefined) return { error: "give verb and resource (and namespace, name), or method and path, for a Kubernetes connection" };
    const target = requestTarget({ connection: "x", path: a.path, ...(a.query === undefined ? {} : { query: a.query }) });
    if (typeof target !== "string") return target;
    return { method: a.method ?? "GET", target: relative("x", target), headers: { accept: "application/json", ...jsonBody(a.json).headers }, ...(a.json === undefined ? {} : { body: jsonBody(a.json).body ?? Buffer.alloc(0) }) };
  }
  const verb = a.verb;
  const resource = verb === "logs" || verb === "exec" ? "pods" : a.resource;
  if (resource === undefined) return { error: `${verb} needs resource` };
  const named = !(verb === "list" || verb === "watch" || verb === "create" || verb === "deletecollection");
  if (named && a.name === undefined) return { error: `${verb} needs name` };
  const path = kubePath({ resource, apiVersion: a.apiVersion, namespace: a.namespace, name: named ? a.name : undefined });
  if (typeof path !== "string") return path;
  const accept = { accept: "application/json" };
  const withBody = (method: string): RequestSketch => {
    const j = jsonBody(a.json ?? (verb === "create" && a.name !== undefined ? { metadata: { name: a.name } } : undefined));
    return { method, target: path, headers: { ...accept, ...j.headers, ...(method === "PATCH" ? { "content-type": "application/merge-patch+json" } : {}) }, ...(j.body === undefined ? {} : { body: j.body }) };
  };
  switch (verb) {
    case "get":
    case "describe":
    case "list":
      return { method: "GET", target: path, headers: accept };
    case "watch":
      return { method: "GET", target: `${path}?watch=true`, headers: accept };
    case "create":
      return withBody("POST");
    case "update":
      return withBody("PUT");
    case "patch":
      return withBody("PATCH");
    case "delete":
    case "deletecollection":
      return { method: "DELETE", target: path, headers: accept };
    case "logs":
      return { method: "GET", target: `${path}/log`, headers: accept };
    case "exec": {
      if (a.command === undefined || a.command.length === 0) return { error: "exec needs command (the argv)" };
      const q = new URLSearchParams();
      for (const c of a.command) q.append("command", c);
      q.append("stdout", "true");
      q.append("stderr", "true");
      return { method: "GET", target: `${path}/exec?${q.toString()}`, headers: { connection: "upgrade", upgrade: "websocket" }, upgrade: "websocket" };
    }
  }
}
