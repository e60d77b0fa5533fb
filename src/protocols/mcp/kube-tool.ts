/**
 * The MCP `kubernetes` tool (issue 16): get, list, describe (with events), delete, apply, logs and exec on a
 * `kubernetes` connection, each one (or, for apply, two) ordinary Kubernetes API requests to
 * `/CONNECTION/api…` on the gateway's own HTTP listener, so the Kubernetes kind judges (verb,
 * resource, namespace), masks (Secrets, detectors), records and audits them as kubectl's.
 *
 * apply: create (POST); when the object exists (409 AlreadyExists), a JSON merge patch of the
 * manifest (PATCH): each request judged by its own verb. describe: the object, then its events
 * (a `list events` of its own). exec: a WebSocket exec as kubectl's (targets/kube-exec.ts).
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { toToolResult, type Envelope } from "./envelope.js";
import { MAX_HTTP_BODY_BYTES, httpEnvelope, type ToolContext } from "./http-tools.js";
import type { HttpAnswer, HttpCall } from "./targets/http.js";
import { runKubeExec, type KubeExecCall } from "./targets/kube-exec.js";
import type { ExecResult } from "./targets/ssh.js";
import { approvalIdIn } from "./envelope.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";

const ACTIONS = ["get", "list", "describe", "delete", "apply", "logs", "exec"] as const;
type Action = (typeof ACTIONS)[number];

/** Resources outside the core group agents meet most: their group/version. Others: give apiVersion. */
const GROUP_OF: Readonly<Record<string, string>> = {
  deployments: "apps/v1",
  statefulsets: "apps/v1",
  daemonsets: "apps/v1",
  replicasets: "apps/v1",
  jobs: "batch/v1",
  cronjobs: "batch/v1",
  ingresses: "networking.k8s.io/v1",
  networkpolicies: "networking.k8s.io/v1",
  roles: "rbac.authorization.k8s.io/v1",
  rolebindings: "rbac.authorization.k8s.io/v1",
  clusterroles: "rbac.authorization.k8s.io/v1",
  clusterrolebindings: "rbac.authorization.k8s.io/v1",
  horizontalpodautoscalers: "autoscaling/v2",
  storageclasses: "storage.k8s.io/v1",
  customresourcedefinitions: "apiextensions.k8s.io/v1",
};
const CLUSTER_SCOPED = new Set(["namespaces", "nodes", "persistentvolumes", "clusterroles", "clusterrolebindings", "storageclasses", "customresourcedefinitions"]);
const SEGMENT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** `v1` or `GROUP/v1beta2`, the group a DNS name (no `..`, no empty label: nothing that walks the path). */
const API_VERSION = /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*\/)?v[0-9]{1,3}(?:(?:alpha|beta)[0-9]{1,3})?$/;

/** `ConfigMap` → `configmaps`, `Ingress` → `ingresses`, `NetworkPolicy` → `networkpolicies`. */
export function pluralOf(kind: string): string {
  const k = kind.toLowerCase();
  if (k.endsWith("s") || k.endsWith("x")) return `${k}es`;
  if (/[^aeiou]y$/.test(k)) return `${k.slice(0, -1)}ies`;
  return `${k}s`;
}

export interface KubeTarget {
  readonly resource: string;
  readonly apiVersion?: string | undefined;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
}

/** The collection or object path, or what is wrong with the arguments. */
export function kubePath(t: KubeTarget): string | { readonly error: string } {
  const resource = t.resource.toLowerCase();
  if (!SEGMENT.test(resource)) return { error: `invalid resource "${t.resource.slice(0, 100)}" (plural, e.g. pods, deployments)` };
  const apiVersion = t.apiVersion ?? GROUP_OF[resource] ?? "v1";
  if (apiVersion.length > 300 || !API_VERSION.test(apiVersion)) return { error: `invalid apiVersion "${apiVersion.slice(0, 100)}"` };
  for (const [what, v] of [["namespace", t.namespace], ["name", t.name]] as const) {
    if (v !== undefined && !SEGMENT.test(v)) return { error: `invalid ${what} "${v.slice(0, 100)}"` };
  }
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = CLUSTER_SCOPED.has(resource) ? "" : `/namespaces/${t.namespace ?? "default"}`;
  return `${base}${ns}/${resource}${t.name === undefined ? "" : `/${t.name}`}`;
}

function shaped(connection: string, action: Action, path: string, a: HttpAnswer): Envelope {
  if (a.status >= 400) {
    const j = a.json;
    const reason = typeof j === "object" && j !== null && "reason" in j && typeof j.reason === "string" ? j.reason : `HTTP_${a.status}`;
    const message = typeof j === "object" && j !== null && "message" in j && typeof j.message === "string" ? j.message : (a.text ?? "").slice(0, 2000);
    return { status: "failed", connection, code: reason, message };
  }
  return {
    status: "completed",
    connection,
    action,
    path,
    httpStatus: a.status,
    ...(a.json !== undefined ? { object: a.json } : { text: a.text ?? "" }),
    truncated: a.truncated,
    ...(a.truncated ? { note: `the answer was cut at ${MAX_HTTP_BODY_BYTES} bytes: narrow it (labelSelector, limit, tailLines)` } : {}),
  };
}

/** Most events describe shows (the newest). */
const MAX_EVENTS = 50;

interface EventLine {
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly count?: number;
  readonly lastTimestamp?: string;
  readonly source?: string;
}

/**
 * kubectl describe's Events: the events whose involvedObject is this object (field selector
 * involvedObject.name/kind), in its namespace (all namespaces for a cluster-scoped object). A
 * request of its own (`list events`), judged and masked as any; refused or failed, describe
 * still answers with the object and says why the events are missing.
 */
async function eventsOf(
  object: unknown,
  resource: string,
  namespace: string | undefined,
  run: (method: string, path: string, query: Record<string, string>) => Promise<Envelope>,
): Promise<{ readonly events: readonly EventLine[] } | { readonly eventsNote: string }> {
  const o = typeof object === "object" && object !== null ? (object as Record<string, unknown>) : {};
  const meta = typeof o["metadata"] === "object" && o["metadata"] !== null ? (o["metadata"] as Record<string, unknown>) : {};
  const name = typeof meta["name"] === "string" ? meta["name"] : undefined;
  const kind = typeof o["kind"] === "string" ? o["kind"] : undefined;
  if (name === undefined) return { eventsNote: "the object has no name: no events looked up" };
  const clusterScoped = CLUSTER_SCOPED.has(resource.toLowerCase());
  const path = clusterScoped ? "/api/v1/events" : kubePath({ resource: "events", namespace: typeof meta["namespace"] === "string" ? meta["namespace"] : namespace });
  if (typeof path !== "string") return { eventsNote: path.error };
  const selector = `involvedObject.name=${name}${kind === undefined ? "" : `,involvedObject.kind=${kind}`}`;
  const r = await run("GET", path, { fieldSelector: selector, limit: "500" });
  if (r.status !== "completed") {
    const rule = "rule" in r && typeof r.rule === "string" ? `, rule ${r.rule}` : "";
    return { eventsNote: `events not shown (${r.status}${rule}): ${r.message}` };
  }
  const list = r["object"];
  const items = typeof list === "object" && list !== null && "items" in list && Array.isArray(list.items) ? (list.items as unknown[]) : [];
  const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  const lines = items.flatMap((e): EventLine[] => {
    if (typeof e !== "object" || e === null) return [];
    const x = e as Record<string, unknown>;
    const src = typeof x["source"] === "object" && x["source"] !== null ? str((x["source"] as Record<string, unknown>)["component"]) : undefined;
    const when = str(x["lastTimestamp"]) ?? str(x["eventTime"]);
    const type = str(x["type"]);
    const reason = str(x["reason"]);
    const message = str(x["message"]);
    const line: EventLine = {
      ...(type === undefined ? {} : { type }),
      ...(reason === undefined ? {} : { reason }),
      ...(message === undefined ? {} : { message }),
      ...(typeof x["count"] === "number" ? { count: x["count"] } : {}),
      ...(when === undefined ? {} : { lastTimestamp: when }),
      ...(src === undefined ? {} : { source: src }),
    };
    return [line];
  });
  lines.sort((a, b) => (a.lastTimestamp ?? "").localeCompare(b.lastTimestamp ?? ""));
  return { events: lines.slice(-MAX_EVENTS) };
}

/** Output kept per stream of an exec; how long its command may run. */
const MAX_EXEC_OUTPUT = 1024 * 1024;
const DEFAULT_EXEC_SECONDS = 60;
const MAX_EXEC_SECONDS = 600;

/**
 * `exec`: the command in a pod, as `kubectl exec POD -- CMD` through the gateway (targets/kube-exec.ts):
 * the request judged (verb exec), the argv judged as a shell command, output masked, recorded.
 */
async function kubeExec(ctx: ToolContext, extra: RequestHandlerExtra<ServerRequest, ServerNotification>, call: KubeExecCall): Promise<Envelope> {
  const wrong = ctx.target(call.connection, "kubernetes");
  if (wrong !== undefined) return wrong;
  const endpoint = ctx.httpEndpoint;
  if (endpoint === undefined) return { status: "failed", connection: call.connection, code: "GW_UNSUPPORTED", message: "the gateway has no HTTP listener (listen.http), which the kubernetes tool uses" };
  const done = (r: ExecResult): Envelope => ({
    status: "completed",
    connection: call.connection,
    action: "exec",
    pod: call.pod,
    namespace: call.namespace,
    exitCode: r.exitCode,
    ...(r.signal === undefined ? {} : { signal: r.signal }),
    stdout: r.stdout,
    stderr: r.stderr,
    truncated: r.truncated,
    ...(r.truncated ? { note: `output was cut at ${MAX_EXEC_OUTPUT} bytes per stream` } : {}),
  });
  const run = async (): Promise<Envelope> => {
    const outcome = await runKubeExec(endpoint, ctx.loopback(extra, "kubernetes"), call);
    switch (outcome.type) {
      case "exec":
        return done(outcome);
      case "held":
        return ctx.pending(call.connection, outcome, outcome.result === undefined ? { rerun: run } : { result: outcome.result.then((r) => (r.type === "exec" ? done(r) : ctx.refusal(call.connection, r))) });
      case "refused": {
        // Async-mode approvals: refused now naming the request; the identical exec runs once approved.
        const id = approvalIdIn(outcome.message);
        if (id !== undefined && /waiting for approval|approve with|approval .*pending/.test(outcome.message)) return ctx.pending(call.connection, { type: "held", approvalId: id, message: outcome.message }, { rerun: run });
        return ctx.refusal(call.connection, outcome);
      }
      case "error":
        return ctx.refusal(call.connection, outcome);
    }
  };
  return run();
}

export function registerKubernetesTool(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    "kubernetes",
    {
      description:
        "Get, list, describe (with the object's events), delete or apply Kubernetes objects, read a pod's logs, or exec a command in a pod, on a Kubernetes connection through Airlock " +
        "(judged by policy by verb, resource and namespace, an exec's command by the shell rules; possibly held for approval; Secrets and sensitive values masked). " +
        "resource is the plural (pods, deployments, configmaps); apply takes a manifest object; exec takes name (the pod) and command (the argv).",
      inputSchema: {
        connection: ctx.connectionArg(["kubernetes"]),
        action: z.enum(ACTIONS),
        resource: z.string().min(1).max(253).optional().describe("plural resource name (pods, deployments, …); apply: from the manifest's kind"),
        apiVersion: z.string().max(300).optional().describe("group/version for resources outside the core group, e.g. apps/v1 (known ones are filled in)"),
        namespace: z.string().max(253).optional().describe("default: default"),
        name: z.string().max(253).optional(),
        labelSelector: z.string().max(4096).optional(),
        limit: z.number().int().min(1).max(5000).optional(),
        manifest: z.record(z.string(), z.unknown()).optional().describe("apply: the object (apiVersion, kind, metadata.name, …)"),
        container: z.string().max(253).optional().describe("logs, exec: the container"),
        tailLines: z.number().int().min(1).max(100_000).optional().describe("logs: the last N lines"),
        command: z.array(z.string().max(64 * 1024)).min(1).max(1000).optional().describe('exec: the argv, e.g. ["ls", "-l", "/app"] (no shell unless you run one)'),
        timeoutSeconds: z.number().int().min(1).max(MAX_EXEC_SECONDS).optional().describe(`exec: stop the command after this long (default ${DEFAULT_EXEC_SECONDS})`),
      },
    },
    async (args, extra) => {
      const bad = (message: string): ReturnType<typeof toToolResult> => toToolResult({ status: "failed", connection: args.connection, code: "GW_BAD_REQUEST", message });
      const run = (method: string, path: string, query: Record<string, string>, body?: unknown): Promise<Envelope> => {
        const call: HttpCall = {
          connection: args.connection,
          method,
          path,
          query,
          headers: { accept: "application/json" },
          ...(body === undefined ? {} : { body: { type: "json" as const, value: body } }),
          maxBytes: MAX_HTTP_BODY_BYTES,
        };
        return httpEnvelope(ctx, extra, "kubernetes", "kubernetes", call, (a) => shaped(args.connection, args.action, path, a));
      };
      switch (args.action) {
        case "describe": {
          if (args.resource === undefined) return bad("describe needs resource");
          if (args.name === undefined) return bad("describe needs name");
          const path = kubePath({ resource: args.resource, apiVersion: args.apiVersion, namespace: args.namespace, name: args.name });
          if (typeof path !== "string") return bad(path.error);
          const got = await run("GET", path, {});
          if (got.status !== "completed") return toToolResult(got);
          return toToolResult({ ...got, ...(await eventsOf(got["object"], args.resource, args.namespace, run)) });
        }
        case "get":
        case "delete":
        case "list": {
          if (args.resource === undefined) return bad(`${args.action} needs resource`);
          if (args.action !== "list" && args.name === undefined) return bad(`${args.action} needs name`);
          const path = kubePath({ resource: args.resource, apiVersion: args.apiVersion, namespace: args.namespace, name: args.action === "list" ? undefined : args.name });
          if (typeof path !== "string") return bad(path.error);
          const query: Record<string, string> = {};
          if (args.action === "list") {
            if (args.labelSelector !== undefined) query["labelSelector"] = args.labelSelector;
            query["limit"] = String(args.limit ?? 500);
          }
          return toToolResult(await run(args.action === "delete" ? "DELETE" : "GET", path, query));
        }
        case "logs": {
          if (args.name === undefined) return bad("logs needs name (the pod)");
          const path = kubePath({ resource: "pods", namespace: args.namespace, name: args.name });
          if (typeof path !== "string") return bad(path.error);
          const query: Record<string, string> = {};
          if (args.container !== undefined) query["container"] = args.container;
          if (args.tailLines !== undefined) query["tailLines"] = String(args.tailLines);
          return toToolResult(await run("GET", `${path}/log`, query));
        }
        case "exec": {
          if (args.name === undefined) return bad("exec needs name (the pod)");
          if (args.command === undefined) return bad('exec needs command (the argv, e.g. ["ls", "-l"])');
          const path = kubePath({ resource: "pods", namespace: args.namespace, name: args.name });
          if (typeof path !== "string") return bad(path.error);
          if (args.container !== undefined && !SEGMENT.test(args.container)) return bad(`invalid container "${args.container.slice(0, 100)}"`);
          const call: KubeExecCall = {
            connection: args.connection,
            namespace: args.namespace ?? "default",
            pod: args.name,
            ...(args.container === undefined ? {} : { container: args.container }),
            command: args.command,
            maxBytes: MAX_EXEC_OUTPUT,
            timeoutMs: (args.timeoutSeconds ?? DEFAULT_EXEC_SECONDS) * 1000,
          };
          return toToolResult(await kubeExec(ctx, extra, call));
        }
        case "apply": {
          const m = args.manifest;
          if (m === undefined) return bad("apply needs manifest");
          const meta = m["metadata"];
          const name = typeof meta === "object" && meta !== null && "name" in meta && typeof meta.name === "string" ? meta.name : undefined;
          const ns = typeof meta === "object" && meta !== null && "namespace" in meta && typeof meta.namespace === "string" ? meta.namespace : args.namespace;
          const kind = m["kind"];
          const apiVersion = m["apiVersion"];
          if (typeof kind !== "string" || typeof apiVersion !== "string" || name === undefined) return bad("the manifest needs apiVersion, kind and metadata.name");
          const target = { resource: args.resource ?? pluralOf(kind), apiVersion, namespace: ns };
          const collection = kubePath(target);
          const object = kubePath({ ...target, name });
          if (typeof collection !== "string") return bad(collection.error);
          if (typeof object !== "string") return bad(object.error);
          const created = await run("POST", collection, {}, m);
          if (created.status === "failed" && created.code === "AlreadyExists") {
            const call: HttpCall = {
              connection: args.connection,
              method: "PATCH",
              path: object,
              headers: { accept: "application/json", "content-type": "application/merge-patch+json" },
              body: { type: "json", value: m },
              maxBytes: MAX_HTTP_BODY_BYTES,
            };
            return toToolResult(await httpEnvelope(ctx, extra, "kubernetes", "kubernetes", call, (a) => shaped(args.connection, "apply", object, a)));
          }
          return toToolResult(created);
        }
      }
    },
  );
}
