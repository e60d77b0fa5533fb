/**
 * What a Kubernetes API request is, from its method, path and query: the apiserver's
 * RequestInfo rules (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), re-derived, with
 * the gateway's own verbs for what matters to policies (exec, attach, portforward, proxy, logs
 * are subresources to the apiserver; here they are verbs).
 *
 * URL forms (requestinfo.go, "NewRequestInfo"):
 *   /api/{version}/...            core group ("")
 *   /apis/{group}/{version}/...   named groups
 *   .../namespaces/{ns}/{resource}[/{name}[/{subresource}[/rest…]]]
 *   .../{resource}[/{name}[/{subresource}]]           cluster-scoped (or all namespaces)
 *   .../watch/... and .../proxy/...                   legacy verb prefixes
 * Anything with fewer parts (`/api`, `/apis`, `/api/v1`, `/apis/apps/v1`) and any other path
 * (`/version`, `/openapi/v3`, `/healthz`) is a non-resource request.
 *
 * Fail closed: the apiserver reads the percent-DECODED path, so an encoded `/` (`%2F`) would
 * split a segment there and not here; `.`/`..` segments, empty segments (`//`), encoded `%`
 * (double encoding), backslashes, NUL and control characters, and upper case in the parts
 * that name the API (prefix, group, version, resource, subresource; all lower case in
 * Kubernetes) are refused rather than guessed at. A trailing slash is dropped, as the
 * apiserver's splitPath does.
 */
import { GatewayError } from "../../core/errors.js";
import type { K8sVerb } from "../../core/events.js";

export type { K8sVerb } from "../../core/events.js";
export const K8S_VERBS: readonly K8sVerb[] = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "exec", "attach", "portforward", "proxy", "logs"];

/** A request for an API resource (or one of its subresources). */
export interface K8sResourceRequest {
  readonly type: "resource";
  readonly verb: K8sVerb;
  /** The verb the apiserver's RBAC would check (`create` for a POST exec, `get` for logs). */
  readonly rbacVerb: string;
  /** "" for the core group. */
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly resource: string;
  /** "" when none. */
  readonly subresource: string;
  /** "" for cluster-scoped and all-namespaces requests. */
  readonly namespace: string;
  /** "" for collections (or the name a `metadata.name=` field selector pins a list to). */
  readonly name: string;
  /** Path parts past the subresource (a proxy's target path), decoded. */
  readonly rest: readonly string[];
  /** The normalized path the gateway forwards. */
  readonly path: string;
}

/** Discovery, version, OpenAPI, health: anything outside /api/{v} and /apis/{g}/{v} resources. */
export interface K8sNonResourceRequest {
  readonly type: "nonresource";
  readonly verb: K8sVerb;
  readonly rbacVerb: string;
  readonly path: string;
}

export type K8sRequest = K8sResourceRequest | K8sNonResourceRequest;

/** Bounds: real paths are short; kubectl's longest are proxy paths. */
export const MAX_PATH_LENGTH = 4096;
export const MAX_QUERY_LENGTH = 16384;
const MAX_SEGMENTS = 64;

/** Subresources the gateway treats as verbs of their own. */
const VERB_SUBRESOURCES: Readonly<Record<string, K8sVerb>> = { exec: "exec", attach: "attach", portforward: "portforward", proxy: "proxy", log: "logs" };

/** requestinfo.go: namespaceSubresources — `/namespaces/{ns}/status|finalize` stay about the namespace. */
const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

function refuse(message: string): never {
  throw new GatewayError("GW_PROTOCOL", `Kubernetes request refused: ${message}`);
}

/** Split and decode the path; refuse anything whose meaning could differ between here and the apiserver. */
export function splitK8sPath(rawPath: string): string[] {
  if (rawPath.length > MAX_PATH_LENGTH) refuse(`the path is longer than ${MAX_PATH_LENGTH} characters`);
  if (!rawPath.startsWith("/")) refuse("the path must start with /");
  if (rawPath.includes("\\")) refuse("backslashes are not allowed in the path");
  let trimmed = rawPath.slice(1);
  if (trimmed.endsWith("/")) trimmed = trimmed.slice(0, -1);
  if (trimmed === "") return [];
  const raw = trimmed.split("/");
  if (raw.length > MAX_SEGMENTS) refuse(`the path has more than ${MAX_SEGMENTS} segments`);
  return raw.map((seg) => {
    if (seg === "") refuse("empty path segments (//) are not allowed");
    let dec: string;
    try {
      dec = decodeURIComponent(seg);
    } catch {
      refuse("the path has a malformed percent-encoding");
    }
    if (dec.includes("/")) refuse("an encoded slash (%2F) is not allowed in the path");
    if (dec.includes("%")) refuse("double percent-encoding is not allowed in the path");
    if (dec === "." || dec === "..") refuse("dot segments (. and ..) are not allowed in the path");
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(dec)) refuse("control characters are not allowed in the path");
    return dec;
  });
}

const LOWER_API = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

function apiPart(what: string, s: string): string {
  if (!LOWER_API.test(s)) refuse(`${what} "${s.slice(0, 80)}" is not a lower-case API name`);
  return s;
}

function methodVerb(method: string): K8sVerb | undefined {
  switch (method) {
    case "GET":
    case "HEAD":
      return "get";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return undefined;
  }
}

/** apimachinery's Convert_Slice_string_To_bool: the first value; "", "false", "0" are false. */
function queryBool(query: URLSearchParams, key: string): boolean {
  const v = query.getAll(key);
  if (v.length === 0) return false;
  const first = (v[0] ?? "").toLowerCase();
  return !(first === "" || first === "false" || first === "0");
}

/** fields.Selector.RequiresExactMatch("metadata.name"): a `metadata.name=X` or `==X` term. */
function exactNameFromFieldSelector(query: URLSearchParams): string {
  const sels = query.getAll("fieldSelector");
  if (sels.length > 1) refuse("more than one fieldSelector parameter");
  const sel = sels[0];
  if (sel === undefined) return "";
  // Terms are comma-separated; a backslash escapes , = ! in values (fields/selector.go).
  if (sel.includes("\\")) {
    // Escaped values are rare; a name pinned through them would be judged on the wrong text.
    return /metadata\.name/.test(sel) ? refuse("an escaped metadata.name field selector is not supported") : "";
  }
  for (const term of sel.split(",")) {
    const m = /^\s*metadata\.name\s*(==|=)(.*)$/.exec(term);
    if (m !== null) {
      const name = m[2]?.trim() ?? "";
      if (name !== "" && name !== "." && name !== ".." && !/[/%]/.test(name)) return name;
    }
  }
  return "";
}

/**
 * Classify one request. `query` is the raw query string without `?`. Throws GatewayError
 * (GW_PROTOCOL, GW_LIMIT) for what must be refused.
 */
export function classifyK8sRequest(method: string, rawPath: string, query: string): K8sRequest {
  if (query.length > MAX_QUERY_LENGTH) throw new GatewayError("GW_LIMIT", `Kubernetes request refused: the query is longer than ${MAX_QUERY_LENGTH} characters`);
  const m = method.toUpperCase();
  if (m !== method) refuse(`method "${method.slice(0, 20)}" must be upper case`);
  const parts = splitK8sPath(rawPath);
  const path = "/" + parts.map(encodeSegment).join("/");
  const params = new URLSearchParams(query);

  const nonResource = (): K8sNonResourceRequest => {
    const verb = methodVerb(m);
    if (verb === undefined) refuse(`method ${m} is not allowed`);
    return { type: "nonresource", verb, rbacVerb: m.toLowerCase(), path };
  };
  if (parts.length < 3) return nonResource();
  const prefix = parts[0];
  if (prefix !== "api" && prefix !== "apis") {
    if (prefix !== undefined && prefix.toLowerCase() !== prefix && (prefix.toLowerCase() === "api" || prefix.toLowerCase() === "apis")) {
      refuse(`"/${prefix}" is not an API prefix (did you mean /${prefix.toLowerCase()}?)`);
    }
    return nonResource();
  }
  let cur = parts.slice(1);
  let apiGroup = "";
  if (prefix === "apis") {
    if (cur.length < 3) return nonResource();
    apiGroup = apiPart("API group", cur[0] ?? "");
    cur = cur.slice(1);
  }
  const apiVersion = apiPart("API version", cur[0] ?? "");
  cur = cur.slice(1);

  let rbacVerb: string;
  const special = cur[0];
  if (special === "watch" || special === "proxy") {
    if (cur.length < 2) refuse(`/${special} needs a resource`);
    rbacVerb = special;
    cur = cur.slice(1);
  } else {
    const v = methodVerb(m);
    if (v === undefined) refuse(`method ${m} is not allowed`);
    rbacVerb = v;
  }

  let namespace = "";
  if (cur[0] === "namespaces" && cur.length > 1) {
    namespace = cur[1] ?? "";
    if (cur.length > 2 && !NAMESPACE_SUBRESOURCES.has(cur[2] ?? "")) cur = cur.slice(2);
  }

  const resource = apiPart("resource", cur[0] ?? "");
  let name = cur[1] ?? "";
  let subresource = "";
  let rest: string[] = [];
  if (cur.length >= 3) {
    if (rbacVerb === "proxy") {
      // requestinfo.go: specialVerbsNoSubresources — the legacy /proxy/ prefix has no subresource.
      rest = cur.slice(2);
    } else {
      subresource = apiPart("subresource", cur[2] ?? "");
      rest = cur.slice(3);
    }
  }
  if (rest.length > 0 && subresource !== "proxy" && rbacVerb !== "proxy") {
    refuse(`unexpected path after ${resource}/${name}/${subresource}`);
  }

  if (name === "" && rbacVerb === "get") {
    rbacVerb = queryBool(params, "watch") ? "watch" : "list";
    name = exactNameFromFieldSelector(params);
  }
  if (name === "" && rbacVerb === "delete") rbacVerb = "deletecollection";

  let verb: K8sVerb;
  const asVerb = VERB_SUBRESOURCES[subresource];
  if (rbacVerb === "proxy") verb = "proxy";
  else if (asVerb !== undefined) {
    if (name === "") refuse(`${resource}/${subresource} needs a name`);
    verb = asVerb;
  } else verb = rbacVerb as K8sVerb;
  if (rbacVerb === "watch" && subresource !== "") refuse("watch of a subresource is not supported");
  if (!(K8S_VERBS as readonly string[]).includes(verb)) refuse(`verb "${verb}" is not understood`);
  return { type: "resource", verb, rbacVerb, apiGroup, apiVersion, resource, subresource, namespace, name, rest, path };
}

/** Re-encode a decoded segment for the forwarded path (only what must be). */
function encodeSegment(s: string): string {
  return s.replace(/[%?#\s"<>^`{|}]/g, (c) => encodeURIComponent(c));
}

/** `group/resource` (core: `resource`), with `/subresource` when there is one: how policies name it. */
export function resourceNames(r: K8sResourceRequest): string[] {
  const base = r.resource;
  const grouped = r.apiGroup === "" ? base : `${r.apiGroup}/${base}`;
  const out = [base, grouped];
  if (r.subresource !== "") out.push(`${base}/${r.subresource}`, `${grouped}/${r.subresource}`);
  return [...new Set(out)];
}

/** The exec/attach options from the query: `command` repeated, `container`, `stdin`, `tty`. */
export interface ExecOptions {
  readonly command: readonly string[];
  readonly container: string;
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

export function execOptions(query: string): ExecOptions {
  const p = new URLSearchParams(query);
  const containers = p.getAll("container");
  if (containers.length > 1) refuse("more than one container parameter");
  return {
    command: p.getAll("command"),
    container: containers[0] ?? "",
    stdin: queryBool(p, "stdin"),
    stdout: queryBool(p, "stdout"),
    stderr: queryBool(p, "stderr"),
    tty: queryBool(p, "tty"),
  };
}

/** A short human text for audit, approvers and recordings: `delete namespaces/prod (core/v1)`. */
export function describeK8sRequest(r: K8sRequest): string {
  switch (r.type) {
    case "nonresource":
      return `${r.verb} ${r.path}`;
    case "resource": {
      const res = resourceNames(r).at(-1) ?? r.resource;
      const target = r.name === "" ? res : `${res} ${r.name}`;
      return `${r.verb} ${target}${r.namespace === "" ? "" : ` -n ${r.namespace}`}`;
    }
  }
}
