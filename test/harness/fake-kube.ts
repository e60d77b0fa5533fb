/**
 * A Kubernetes API server fake for the tests (issue 15), faithful to the wire where kubectl
 * and @kubernetes/client-node look: discovery (legacy /api, /apis, /api/v1, /apis/apps/v1 and
 * aggregated discovery v2 when the Accept header asks for it), /version, a minimal valid
 * OpenAPI v3 index, CRUD + watch (chunked JSON event lines) for namespaces, pods, deployments,
 * secrets and configmaps, Table output when asked (`as=Table`), pod logs (follow included),
 * exec/attach over WebSocket `v5.channel.k8s.io`/`v4.channel.k8s.io` backed by REAL
 * processes (child_process.spawn), and port-forward over SPDY/3.1, plain (`Upgrade: SPDY/3.1`)
 * or tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`), each forwarded connection joined
 * to a local TCP server the test maps (`forwardPort`; fake-kube-portforward.ts). Every request needs `Authorization: Bearer <token>`, so a
 * test proves who called. No real cluster is reachable from these machines.
 *
 * TLS by default (a fresh self-signed certificate, `caPem`): kubectl (client-go's clientcmd)
 * only sends a kubeconfig's token over TLS.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { generate } from "selfsigned";
import type { AddressInfo } from "node:net";
import { WebSocketServer, WebSocket, type RawData } from "ws";
import { serveSpdyPortForward, type ByteLink, type PortForwardFact } from "./fake-kube-portforward.js";

const PORTFORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io";
const PORTFORWARD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/;

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

interface ResourceDef {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly subresources: readonly string[];
}

const RESOURCES: readonly ResourceDef[] = [
  { group: "", version: "v1", resource: "namespaces", kind: "Namespace", namespaced: false, singular: "namespace", shortNames: ["ns"], subresources: ["status", "finalize"] },
  { group: "", version: "v1", resource: "pods", kind: "Pod", namespaced: true, singular: "pod", shortNames: ["po"], subresources: ["log", "exec", "attach", "status", "portforward"] },
  { group: "", version: "v1", resource: "secrets", kind: "Secret", namespaced: true, singular: "secret", shortNames: [], subresources: [] },
  { group: "", version: "v1", resource: "events", kind: "Event", namespaced: true, singular: "event", shortNames: ["ev"], subresources: [] },
  { group: "", version: "v1", resource: "configmaps", kind: "ConfigMap", namespaced: true, singular: "configmap", shortNames: ["cm"], subresources: [] },
  { group: "apps", version: "v1", resource: "deployments", kind: "Deployment", namespaced: true, singular: "deployment", shortNames: ["deploy"], subresources: ["status", "scale"] },
];

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export interface FakeKubeRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  readonly accept: string | undefined;
  /** Every header as received (lower-case names). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

interface Watcher {
  readonly resource: string;
  readonly namespace: string;
  readonly fieldName: string | undefined;
  send(type: string, obj: Obj): void;
}

export class FakeKube {
  readonly token: string;
  readonly requests: FakeKubeRequest[] = [];
  #server: Server | undefined;
  #wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has("v5.channel.k8s.io") ? "v5.channel.k8s.io" : offered.has("v4.channel.k8s.io") ? "v4.channel.k8s.io" : false),
  });
  /**
   * WebSocket port-forward requests: `ws` refuses `SPDY/3.1+portforward.k8s.io` as a subprotocol
   * (`/` is not a token character), so the fake takes the header out before the handshake and
   * answers it itself (`headers` event), as the apiserver's tunnelling handler does.
   */
  #tunnels = new WeakSet<IncomingMessage>();
  /** `ns/pod:port` → the local TCP port a forwarded connection is joined to. */
  #ports = new Map<string, number>();
  /** Every forwarded connection the fake joined (the pod, its port, and how the tunnel came). */
  readonly portForwards: PortForwardFact[] = [];
  #objects = new Map<string, Obj>();
  #rv = 1;
  #watchers = new Set<Watcher>();
  #logs = new Map<string, string[]>();
  #logFollowers = new Map<string, Set<(line: string) => void>>();
  /** Long-running processes of pods started with a shell (`stdin: true`), for attach. */
  #attached = new Map<string, ChildProcess>();
  #children = new Set<ChildProcess>();
  url = "";
  /** The server's certificate (self-signed: also its CA), when TLS. */
  caPem = "";
  readonly #tls: boolean;

  constructor(token = `cluster-token-${randomUUID()}`, options: { readonly tls?: boolean } = {}) {
    this.token = token;
    this.#tls = options.tls ?? true;
    for (const ns of ["default", "kube-system"]) this.put("namespaces", "", { metadata: { name: ns } });
  }

  async start(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) this.#status(res, 500, "InternalError", "fake-kube failed");
        else res.destroy();
      });
    };
    let server: Server;
    if (this.#tls) {
      const pems = await generate([{ name: "commonName", value: "fake-kube" }], {
        keyType: "ec",
        curve: "P-256",
        notAfterDate: new Date(Date.now() + 86_400_000),
        extensions: [
          { name: "basicConstraints", cA: true },
          { name: "extKeyUsage", serverAuth: true },
          { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
        ],
      });
      this.caPem = pems.cert;
      server = createHttpsServer({ cert: pems.cert, key: pems.private }, handler);
    } else server = createServer(handler);
    server.on("upgrade", (req: IncomingMessage, socket, head: Buffer) => {
      this.#record(req);
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + JSON.stringify(statusObj(401, "Unauthorized", "Unauthorized")));
        return;
      }
      const pf = PORTFORWARD_PATH.exec(new URL(req.url ?? "/", "http://fake").pathname);
      if (pf !== null && (req.headers.upgrade ?? "").toLowerCase() === "spdy/3.1") {
        const [, ns = "", pod = ""] = pf;
        if (this.#objects.get(keyOf("pods", ns, pod)) === undefined) {
          const body = JSON.stringify(statusObj(404, "NotFound", `pods "${pod}" not found`));
          socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
          return;
        }
        socket.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n");
        const link: ByteLink = {
          write: (b) => {
            if (socket.writable) socket.write(b);
          },
          close: () => socket.destroy(),
          onData: (cb) => {
            if (head.length > 0) setImmediate(() => cb(head));
            socket.on("data", cb);
          },
          onClose: (cb) => void socket.once("close", cb),
        };
        socket.on("error", () => undefined);
        this.#portForward(link, ns, pod, "spdy");
        return;
      }
      if (pf !== null && (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim()).includes(PORTFORWARD_TUNNEL)) {
        delete req.headers["sec-websocket-protocol"];
        this.#tunnels.add(req);
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#stream(req, ws));
    });
    this.#wss.on("headers", (headers: string[], req: IncomingMessage) => {
      if (this.#tunnels.has(req)) headers.push(`Sec-WebSocket-Protocol: ${PORTFORWARD_TUNNEL}`);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.#server = server;
    this.url = `${this.#tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const c of this.#children) c.kill("SIGKILL");
    for (const w of this.#wss.clients) w.terminate();
    this.#wss.close();
    const s = this.#server;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Add or replace an object directly (test setup). */
  put(resource: string, namespace: string, obj: Record<string, unknown> & { metadata: Record<string, unknown> }): Obj {
    const def = defOf(resource);
    const name = String(obj.metadata.name);
    const key = keyOf(resource, def.namespaced ? namespace : "", name);
    const existed = this.#objects.has(key);
    const full: Obj = {
      ...obj,
      apiVersion: def.group === "" ? def.version : `${def.group}/${def.version}`,
      kind: def.kind,
      metadata: {
        ...obj.metadata,
        name,
        ...(def.namespaced ? { namespace } : {}),
        uid: this.#objects.get(key)?.metadata.uid ?? randomUUID(),
        resourceVersion: String(++this.#rv),
        creationTimestamp: this.#objects.get(key)?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      },
    };
    if (resource === "pods" && full.status === undefined) full.status = { phase: "Running" };
    if (resource === "namespaces") full.status = { phase: "Active" };
    this.#objects.set(key, full);
    this.#notify(resource, existed ? "MODIFIED" : "ADDED", full);
    if (resource === "pods" && !existed) this.#startPod(namespace, name, full);
    return full;
  }

  get(resource: string, namespace: string, name: string): Obj | undefined {
    return this.#objects.get(keyOf(resource, defOf(resource).namespaced ? namespace : "", name));
  }

  /** Append a line to a pod's log (followers see it at once). */
  log(namespace: string, pod: string, line: string): void {
    const k = `${namespace}/${pod}`;
    const lines = this.#logs.get(k) ?? [];
    lines.push(line);
    this.#logs.set(k, lines);
    for (const f of this.#logFollowers.get(k) ?? []) f(line);
  }

  // --- HTTP -----------------------------------------------------------------------------------

  #record(req: IncomingMessage): void {
    this.requests.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization, accept: req.headers.accept, headers: { ...req.headers } });
  }

  #status(res: ServerResponse, code: number, reason: string, message: string): void {
    const body = JSON.stringify(statusObj(code, reason, message));
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  #json(res: ServerResponse, code: number, value: unknown, contentType = "application/json"): void {
    const body = JSON.stringify(value);
    res.writeHead(code, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  /** Requests whose response has not ended yet (watches, `logs -f`), by URL. */
  readonly open = new Set<string>();

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#record(req);
    const url0 = req.url ?? "";
    this.open.add(url0);
    res.once("close", () => this.open.delete(url0));
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      this.#status(res, 401, "Unauthorized", "Unauthorized");
      return;
    }
    const url = new URL(req.url ?? "/", "http://fake");
    const parts = url.pathname.split("/").filter((p) => p !== "");
    const method = req.method ?? "GET";
    const accept = req.headers.accept ?? "";
    const aggregated = accept.includes("as=APIGroupDiscoveryList");
    // Discovery and other non-resource paths.
    if (url.pathname === "/version") {
      this.#json(res, 200, { major: "1", minor: "32", gitVersion: "v1.32.0-fake", gitCommit: "fake", gitTreeState: "clean", buildDate: "2026-01-01T00:00:00Z", goVersion: "go1.23", compiler: "gc", platform: "linux/amd64" });
      return;
    }
    if (url.pathname === "/openapi/v3") {
      this.#json(res, 200, { paths: { "api/v1": { serverRelativeURL: "/openapi/v3/api/v1?hash=1" }, "apis/apps/v1": { serverRelativeURL: "/openapi/v3/apis/apps/v1?hash=1" } } });
      return;
    }
    if (url.pathname === "/openapi/v3/api/v1" || url.pathname === "/openapi/v3/apis/apps/v1") {
      this.#json(res, 200, openApiFor(url.pathname.endsWith("apps/v1") ? "apps" : ""));
      return;
    }
    if (url.pathname.startsWith("/openapi/v2") || url.pathname.startsWith("/openapi/")) {
      this.#status(res, 404, "NotFound", "the server could not find the requested resource");
      return;
    }
    if (url.pathname === "/healthz" || url.pathname === "/readyz" || url.pathname === "/livez") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    if (url.pathname === "/api") {
      if (aggregated) this.#json(res, 200, discoveryList(""), AGG_CONTENT_TYPE);
      else this.#json(res, 200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1:6443" }] });
      return;
    }
    if (url.pathname === "/apis") {
      if (aggregated) this.#json(res, 200, discoveryList("apps"), AGG_CONTENT_TYPE);
      else this.#json(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: [{ name: "apps", versions: [{ groupVersion: "apps/v1", version: "v1" }], preferredVersion: { groupVersion: "apps/v1", version: "v1" } }] });
      return;
    }
    if (url.pathname === "/api/v1" || url.pathname === "/apis/apps/v1") {
      const group = url.pathname === "/api/v1" ? "" : "apps";
      this.#json(res, 200, resourceList(group));
      return;
    }
    // Resource requests: /api/v1/... or /apis/apps/v1/...
    let rest: string[];
    let group: string;
    if (parts[0] === "api" && parts[1] === "v1") {
      group = "";
      rest = parts.slice(2);
    } else if (parts[0] === "apis" && parts[1] === "apps" && parts[2] === "v1") {
      group = "apps";
      rest = parts.slice(3);
    } else {
      this.#status(res, 404, "NotFound", "the server could not find the requested resource");
      return;
    }
    let namespace = "";
    if (rest[0] === "namespaces" && rest.length >= 3) {
      namespace = rest[1] ?? "";
      rest = rest.slice(2);
    }
    const [resource = "", name = "", sub = ""] = rest;
    const def = RESOURCES.find((d) => d.resource === resource && d.group === group);
    if (def === undefined || rest.length > 3) {
      this.#status(res, 404, "NotFound", "the server could not find the requested resource");
      return;
    }
    if (sub === "log" && method === "GET") {
      this.#serveLog(res, namespace, name, url.searchParams.get("follow") === "true");
      return;
    }
    if (sub !== "" && sub !== "status") {
      this.#status(res, 405, "MethodNotAllowed", `${sub} is served over WebSocket only`);
      return;
    }
    const ns = def.namespaced ? namespace : "";
    const fieldName = /^metadata\.name==?(.+)$/.exec(url.searchParams.get("fieldSelector") ?? "")?.[1];
    const wantTable = accept.includes("as=Table");
    switch (method) {
      case "GET": {
        if (name !== "") {
          const o = this.#objects.get(keyOf(resource, ns, name));
          if (o === undefined) this.#status(res, 404, "NotFound", `${def.resource} "${name}" not found`);
          else if (wantTable) this.#json(res, 200, table([o]));
          else this.#json(res, 200, o);
          return;
        }
        // Field selectors besides metadata.name (kubectl describe: events by involvedObject.*); others are refused as the API server does.
        const terms = (url.searchParams.get("fieldSelector") ?? "").split(",").filter((x) => x !== "" && !x.startsWith("metadata.name"));
        const fields: [string, string][] = [];
        for (const term of terms) {
          const m = /^([A-Za-z.]+)==?(.*)$/.exec(term);
          if (m === null || (resource !== "events" && m[1] !== "metadata.namespace") || !/^(involvedObject\.(name|kind|namespace|uid)|reason|type|metadata\.namespace)$/.test(m[1] ?? "")) {
            this.#status(res, 400, "BadRequest", `"${term}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
            return;
          }
          fields.push([m[1] ?? "", m[2] ?? ""]);
        }
        const fieldOf = (o: Obj, path: string): unknown => path.split(".").reduce<unknown>((v, k) => (typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined), o);
        const items = this.#list(resource, ns, fieldName).filter((o) => fields.every(([f, v]) => {
          const have = fieldOf(o, f);
          return (typeof have === "string" ? have : "") === v;
        }));
        if (url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1") {
          this.#serveWatch(req, res, resource, ns, fieldName, url.searchParams.get("resourceVersion") ?? "", items);
          return;
        }
        if (wantTable) this.#json(res, 200, table(items));
        else this.#json(res, 200, { kind: `${def.kind}List`, apiVersion: def.group === "" ? "v1" : `${def.group}/v1`, metadata: { resourceVersion: String(this.#rv) }, items });
        return;
      }
      case "POST": {
        const body = (await readJson(req)) as Obj | undefined;
        if (body?.metadata === undefined || typeof body.metadata.name !== "string") {
          this.#status(res, 422, "Invalid", "metadata.name: Required value");
          return;
        }
        if (this.#objects.has(keyOf(resource, ns, body.metadata.name))) {
          this.#status(res, 409, "AlreadyExists", `${def.resource} "${body.metadata.name}" already exists`);
          return;
        }
        if (url.searchParams.get("dryRun") === "All") {
          this.#json(res, 201, body);
          return;
        }
        this.#json(res, 201, this.put(resource, ns, body));
        return;
      }
      case "PUT":
      case "PATCH": {
        const current = this.#objects.get(keyOf(resource, ns, name));
        if (current === undefined) {
          this.#status(res, 404, "NotFound", `${def.resource} "${name}" not found`);
          return;
        }
        const ct = req.headers["content-type"] ?? "";
        if (method === "PATCH" && !ct.includes("merge-patch+json") && !ct.includes("strategic-merge-patch+json")) {
          this.#status(res, 415, "UnsupportedMediaType", `the fake serves merge and strategic-merge patches only, not ${ct}`);
          return;
        }
        const body = (await readJson(req)) as Obj | undefined;
        if (body === undefined) {
          this.#status(res, 400, "BadRequest", "the body is not JSON");
          return;
        }
        const next = method === "PUT" ? body : (mergePatch(current, body) as Obj);
        this.#json(res, 200, this.put(resource, ns, { ...next, metadata: { ...next.metadata, name } }));
        return;
      }
      case "DELETE": {
        if (name === "") {
          const gone = this.#list(resource, ns, fieldName);
          for (const o of gone) this.#delete(resource, ns === "" ? (typeof o.metadata.namespace === "string" ? o.metadata.namespace : "") : ns, String(o.metadata.name));
          this.#json(res, 200, { kind: `${def.kind}List`, apiVersion: "v1", metadata: {}, items: gone });
          return;
        }
        const o = this.#delete(resource, ns, name);
        if (o === undefined) this.#status(res, 404, "NotFound", `${def.resource} "${name}" not found`);
        else this.#json(res, 200, o);
        return;
      }
      default:
        this.#status(res, 405, "MethodNotAllowed", `${method} is not allowed`);
    }
  }

  #list(resource: string, ns: string, fieldName: string | undefined): Obj[] {
    const out: Obj[] = [];
    for (const [k, o] of this.#objects) {
      const [r, n] = k.split("/");
      if (r !== resource || (ns !== "" && n !== ns)) continue;
      if (fieldName !== undefined && o.metadata.name !== fieldName) continue;
      out.push(o);
    }
    return out;
  }

  #delete(resource: string, ns: string, name: string): Obj | undefined {
    const key = keyOf(resource, ns, name);
    const o = this.#objects.get(key);
    if (o === undefined) return undefined;
    this.#objects.delete(key);
    if (resource === "namespaces") for (const [k] of this.#objects) if (k.split("/")[1] === name) this.#objects.delete(k);
    if (resource === "pods") {
      const p = this.#attached.get(`${ns}/${name}`);
      p?.kill("SIGKILL");
      this.#attached.delete(`${ns}/${name}`);
    }
    const gone = { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.#rv) } };
    this.#notify(resource, "DELETED", gone);
    return gone;
  }

  #notify(resource: string, type: string, obj: Obj): void {
    for (const w of this.#watchers) {
      if (w.resource !== resource) continue;
      if (w.namespace !== "" && obj.metadata.namespace !== w.namespace) continue;
      if (w.fieldName !== undefined && obj.metadata.name !== w.fieldName) continue;
      w.send(type, obj);
    }
  }

  #serveWatch(req: IncomingMessage, res: ServerResponse, resource: string, namespace: string, fieldName: string | undefined, rv: string, initial: Obj[]): void {
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    const w: Watcher = { resource, namespace, fieldName, send: (type, obj) => res.write(`${JSON.stringify({ type, object: obj })}\n`) };
    // resourceVersion "" or "0": start with the current state as ADDED events (watch semantics).
    if (rv === "" || rv === "0") for (const o of initial) w.send("ADDED", o);
    this.#watchers.add(w);
    const end = (): void => {
      this.#watchers.delete(w);
    };
    req.on("close", end);
    res.on("close", end);
  }

  #serveLog(res: ServerResponse, namespace: string, pod: string, follow: boolean): void {
    if (this.#objects.get(keyOf("pods", namespace, pod)) === undefined) {
      this.#status(res, 404, "NotFound", `pods "${pod}" not found`);
      return;
    }
    const k = `${namespace}/${pod}`;
    res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
    for (const l of this.#logs.get(k) ?? []) res.write(`${l}\n`);
    if (!follow) {
      res.end();
      return;
    }
    const f = (line: string): void => {
      res.write(`${line}\n`);
    };
    const set = this.#logFollowers.get(k) ?? new Set();
    set.add(f);
    this.#logFollowers.set(k, set);
    res.on("close", () => set.delete(f));
  }

  // --- exec / attach ---------------------------------------------------------------------------

  /** A pod whose first container runs a shell with stdin open gets a real long-running /bin/sh (for attach). */
  #startPod(namespace: string, name: string, pod: Obj): void {
    const spec = pod.spec as { containers?: { command?: string[]; stdin?: boolean }[] } | undefined;
    const c = spec?.containers?.[0];
    if (c?.stdin !== true || c.command?.[0] === undefined || !/(^|\/)(sh|bash)$/.test(c.command[0])) return;
    const p = spawn("/bin/sh", [], { stdio: ["pipe", "pipe", "pipe"] });
    this.#children.add(p);
    p.on("exit", () => this.#children.delete(p));
    this.#attached.set(`${namespace}/${name}`, p);
  }

  /** Join `ns/pod`'s `port` to a local TCP server (port-forward). */
  forwardPort(namespace: string, pod: string, port: number, localPort: number): void {
    this.#ports.set(`${namespace}/${pod}:${port}`, localPort);
  }

  #portForward(link: ByteLink, ns: string, pod: string, form: PortForwardFact["form"]): void {
    serveSpdyPortForward(
      link,
      (port) => this.#ports.get(`${ns}/${pod}:${port}`),
      (port) => this.portForwards.push({ namespace: ns, pod, port, form }),
    );
  }

  #stream(req: IncomingMessage, ws: WebSocket): void {
    const url = new URL(req.url ?? "/", "http://fake");
    const pf = PORTFORWARD_PATH.exec(url.pathname);
    if (pf !== null && this.#tunnels.has(req)) {
      const [, ns = "", pod = ""] = pf;
      if (this.#objects.get(keyOf("pods", ns, pod)) === undefined) {
        ws.close(1011, `pods "${pod}" not found`);
        return;
      }
      const link: ByteLink = {
        write: (b) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(b, { binary: true });
        },
        close: () => ws.close(1000),
        onData: (cb) => void ws.on("message", (raw: RawData) => cb(Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw))),
        onClose: (cb) => void ws.once("close", cb),
      };
      this.#portForward(link, ns, pod, "websocket");
      return;
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach)$/.exec(url.pathname);
    const v5 = ws.protocol === "v5.channel.k8s.io";
    if (m === null || ws.protocol === "") {
      ws.close(1008, "unsupported");
      return;
    }
    const [, ns = "", pod = "", what] = m;
    const send = (ch: number, data: Buffer | string): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.concat([Buffer.from([ch]), typeof data === "string" ? Buffer.from(data) : data]));
    };
    if (this.#objects.get(keyOf("pods", ns, pod)) === undefined) {
      send(3, JSON.stringify(statusObj(404, "NotFound", `pods "${pod}" not found`)));
      ws.close(1000);
      return;
    }
    let proc: ChildProcess;
    let owned = true;
    if (what === "exec") {
      const command = url.searchParams.getAll("command");
      if (command.length === 0 || command[0] === undefined) {
        send(3, JSON.stringify(statusObj(400, "BadRequest", "you must specify at least one command for the container")));
        ws.close(1000);
        return;
      }
      proc = spawn(command[0], command.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: { PATH: "/usr/bin:/bin", HOME: "/tmp", POD: pod } });
      this.#children.add(proc);
      proc.on("error", () => {
        send(3, JSON.stringify({ metadata: {}, status: "Failure", message: `exec: "${command[0] ?? ""}": executable file not found in $PATH`, reason: "InternalError", code: 500 }));
        ws.close(1000);
      });
    } else {
      const p = this.#attached.get(`${ns}/${pod}`);
      if (p === undefined) {
        send(3, JSON.stringify(statusObj(400, "BadRequest", "container does not have stdin open")));
        ws.close(1000);
        return;
      }
      proc = p;
      owned = false;
    }
    const onOut = (d: Buffer): void => send(1, d);
    const onErr = (d: Buffer): void => send(2, d);
    proc.stdout?.on("data", onOut);
    proc.stderr?.on("data", onErr);
    ws.on("message", (raw: RawData) => {
      const buf = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
      if (buf.length === 0) return;
      const ch = buf[0];
      if (ch === 0) proc.stdin?.write(buf.subarray(1));
      else if (ch === 255 && v5 && buf[1] === 0 && owned) proc.stdin?.end();
    });
    ws.on("close", () => {
      proc.stdout?.off("data", onOut);
      proc.stderr?.off("data", onErr);
      if (owned) proc.kill("SIGKILL");
    });
    if (owned) {
      proc.on("close", (code) => {
        send(3, JSON.stringify(code === 0 ? { metadata: {}, status: "Success" } : { metadata: {}, status: "Failure", message: `command terminated with non-zero exit code: exit status ${code ?? 1}`, reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: String(code ?? 1) }] } }));
        ws.close(1000);
      });
    }
  }
}

const AGG_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

function defOf(resource: string): ResourceDef {
  const d = RESOURCES.find((r) => r.resource === resource);
  if (d === undefined) throw new Error(`fake-kube does not serve ${resource}`);
  return d;
}

function keyOf(resource: string, ns: string, name: string): string {
  return `${resource}/${ns}/${name}`;
}

function statusObj(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

function resourceList(group: string): Record<string, unknown> {
  const defs = RESOURCES.filter((d) => d.group === group);
  const resources: Record<string, unknown>[] = [];
  for (const d of defs) {
    resources.push({ name: d.resource, singularName: d.singular, namespaced: d.namespaced, kind: d.kind, verbs: VERBS, ...(d.shortNames.length > 0 ? { shortNames: d.shortNames } : {}) });
    for (const s of d.subresources) resources.push({ name: `${d.resource}/${s}`, singularName: "", namespaced: d.namespaced, kind: s === "log" ? "Pod" : d.kind, verbs: s === "log" ? ["get"] : ["create", "get"] });
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group === "" ? "v1" : `${group}/v1`, resources };
}

function discoveryList(group: string): Record<string, unknown> {
  const defs = RESOURCES.filter((d) => d.group === group);
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: "apidiscovery.k8s.io/v2",
    metadata: {},
    items: [
      {
        metadata: group === "" ? {} : { name: group },
        versions: [
          {
            version: "v1",
            freshness: "Current",
            resources: defs.map((d) => ({
              resource: d.resource,
              responseKind: { group: d.group, version: d.version, kind: d.kind },
              scope: d.namespaced ? "Namespaced" : "Cluster",
              singularResource: d.singular,
              verbs: VERBS,
              ...(d.shortNames.length > 0 ? { shortNames: d.shortNames } : {}),
              subresources: d.subresources.map((s) => ({ subresource: s, responseKind: { group: "", version: "v1", kind: s === "log" ? "Pod" : d.kind }, verbs: s === "log" ? ["get"] : ["create", "get"] })),
            })),
          },
        ],
      },
    ],
  };
}

/**
 * A minimal valid OpenAPI v3 document for a group version: per resource, the object path with a
 * PATCH operation carrying its GVK and the `fieldValidation` query parameter (what kubectl
 * looks for to validate server-side, k8s.io/cli-runtime query_param_verifier_v3.go).
 */
function openApiFor(group: string): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  const prefix = group === "" ? "/api/v1" : `/apis/${group}/v1`;
  for (const d of RESOURCES.filter((r) => r.group === group)) {
    const p = d.namespaced ? `${prefix}/namespaces/{namespace}/${d.resource}/{name}` : `${prefix}/${d.resource}/{name}`;
    const op = (verb: string): Record<string, unknown> => ({
      operationId: `${verb}${d.kind}`,
      "x-kubernetes-group-version-kind": { group: d.group, version: d.version, kind: d.kind },
      "x-kubernetes-action": verb,
      parameters: [{ name: "fieldValidation", in: "query", schema: { type: "string", uniqueItems: true } }],
      responses: { "200": { description: "OK" } },
    });
    paths[p] = { patch: op("patch"), put: op("put") };
  }
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: "v1.32.0" }, paths, components: { schemas: {} } };
}

function table(items: Obj[]): Record<string, unknown> {
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: {},
    columnDefinitions: [
      { name: "Name", type: "string", format: "name", description: "Name", priority: 0 },
      { name: "Age", type: "string", format: "", description: "Age", priority: 0 },
    ],
    rows: items.map((o) => ({ cells: [o.metadata.name, "1m"], object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata } })),
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > 3 * 1024 * 1024) return undefined;
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return undefined;
  }
}

/** RFC 7386 JSON merge patch (strategic merge patches are read the same way: enough for the fake). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === "object" && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k.startsWith("$setElementOrder")) continue;
    if (v === null) out[k] = undefined;
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
