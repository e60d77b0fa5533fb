/**
 * The MCP `kubernetes` tool (issue 16): get, list, describe, delete, apply and logs on a
 * `kubernetes` connection, each one (or, for apply, two) ordinary Kubernetes API requests to
 * `/CONNECTION/api…` on the gateway's own HTTP listener, so the Kubernetes kind judges (verb,
 * resource, namespace), masks (Secrets, detectors), records and audits them as kubectl's.
 *
 * apply: create (POST); when the object exists (409 AlreadyExists), a JSON merge patch of the
 * manifest (PATCH): each request judged by its own verb.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { toToolResult, type Envelope } from "./envelope.js";
import { MAX_HTTP_BODY_BYTES, httpEnvelope, type ToolContext } from "./http-tools.js";
import type { HttpAnswer, HttpCall } from "./targets/http.js";

const ACTIONS = ["get", "list", "describe", "delete", "apply", "logs"] as const;
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

export function registerKubernetesTool(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    "kubernetes",
    {
      description:
        "Get, list, describe, delete or apply Kubernetes objects, or read a pod's logs, on a Kubernetes connection through Airlock (judged by policy by verb, resource and namespace; " +
        "possibly held for approval; Secrets and sensitive values masked). resource is the plural (pods, deployments, configmaps); apply takes a manifest object.",
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
        container: z.string().max(253).optional().describe("logs: the container"),
        tailLines: z.number().int().min(1).max(100_000).optional().describe("logs: the last N lines"),
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
        case "get":
        case "describe":
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
