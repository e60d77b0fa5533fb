/**
 * Wiring of the MCP server (protocols/mcp) into the gateway: which of the gateway's own
 * listeners its tools reach over loopback, the policy facts describe_schema shows, and the
 * approval service's view for the approval tools.
 */
import type { ApprovalService } from "../approvals/service.js";
import type { Connection } from "../core/connection.js";
import type { Pipeline } from "../policy/pipeline.js";
import type { LoopbackCorrelations } from "../protocols/mcp/correlation.js";
import { McpService, type ApprovalInfo, type McpMaskPolicy } from "../protocols/mcp/server.js";
import type { ApprovalRow } from "../store/approvals.js";
import type { McpRoutesDeps } from "../api/mcp-routes.js";
import type { Config, ListenAddress } from "./config.js";
import type { ListenerTls } from "./tls.js";
import type { JudgedEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import { bodyFacts, httpRequestEvent, sketchHead } from "../protocols/http/request-facts.js";
import { kubernetesKind } from "../protocols/kubernetes/kind.js";
import { execOptions } from "../protocols/kubernetes/request.js";
import { argvToShell } from "../protocols/kubernetes/wire/channel.js";
import type { RequestSketch } from "../protocols/mcp/check-request.js";

const kube = kubernetesKind();

/** check_policy on HTTP and Kubernetes connections: the event the HTTP listener would judge (the engine's and the kind's own code). */
export async function requestEvent(session: SessionInfo, connection: Connection, r: RequestSketch): Promise<readonly JudgedEvent[] | { readonly code: string; readonly message: string }> {
  const head = sketchHead(r);
  if ("error" in head) return { code: "GW_PROTOCOL", message: head.error };
  const body = r.body === undefined ? { chunks: [], size: 0, ended: true } : { chunks: [r.body], size: r.body.length, ended: true };
  switch (connection.type) {
    case "http":
      return [httpRequestEvent(session, 1, head, bodyFacts({ contentType: head.headers["content-type"], contentEncoding: head.headers["content-encoding"] }, body))];
    case "kubernetes": {
      const c = await kube.classify(head, { connection, session, seq: 1, ...(r.body === undefined ? {} : { body: r.body }) });
      if (!c.ok) return { code: c.refusal.code, message: c.refusal.message };
      // An exec's argv is judged as a shell command too, before it starts (protocols/kubernetes/exec.ts).
      if (c.event.type === "k8s.request" && c.event.verb === "exec") return [c.event, { type: "ssh.exec", session, seq: 1, command: argvToShell(execOptions(head.rawQuery).command) }];
      return [c.event];
    }
    case "postgres":
    case "mysql":
    case "ssh":
    case "redis":
    case "mcp":
      return { code: "GW_UNSUPPORTED", message: `a ${connection.type} connection takes no HTTP request` };
  }
}

function approvalInfo(r: ApprovalRow): ApprovalInfo {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    requesterId: r.requesterId,
    connection: r.connection,
    ...(r.statement === undefined ? {} : { statement: r.statement }),
    ...(r.rule === undefined ? {} : { rule: r.rule }),
    approvers: r.approvers,
    expiresAt: r.expiresAt,
    ...(r.decisionReason === undefined ? {} : { decisionReason: r.decisionReason }),
  };
}

/** Loopback to a wildcard listen address goes to the loopback interface. */
function loopbackHost(a: ListenAddress): string {
  return a.host === "0.0.0.0" ? "127.0.0.1" : a.host === "::" ? "::1" : a.host;
}

export function mcpServiceDeps(o: {
  readonly config: Config;
  /** The effective connections (a live list: the console's registrations appear in it). */
  readonly connections?: readonly Connection[];
  readonly addresses: { readonly postgres?: ListenAddress; readonly ssh?: ListenAddress; readonly redis?: ListenAddress; readonly http?: ListenAddress; readonly mysql?: ListenAddress };
  readonly tls: ListenerTls | undefined;
  readonly sshHostKey: string | undefined;
  readonly correlations: LoopbackCorrelations;
  readonly pipeline: Pipeline;
  readonly approvals: ApprovalService;
}): Pick<McpRoutesDeps, "service" | "issuers" | "publicUrl"> {
  const { config, addresses } = o;
  const maskPolicies: McpMaskPolicy[] = config.policies.flatMap((p) =>
    p.action === "mask" && p.columns !== undefined ? [{ name: p.name, connections: p.connections, ...(p.groups === undefined ? {} : { groups: p.groups }), columns: p.columns }] : [],
  );
  const hostKeyBlob = o.sshHostKey?.split(" ")[1];
  const service = new McpService({
    connections: o.connections ?? config.connections,
    maskPolicies,
    endpoints: {
      ...(addresses.postgres === undefined ? {} : { postgres: { host: loopbackHost(addresses.postgres), port: addresses.postgres.port, tls: o.tls?.require === true } }),
      ...(addresses.ssh === undefined
        ? {}
        : { ssh: { host: loopbackHost(addresses.ssh), port: addresses.ssh.port, ...(hostKeyBlob === undefined ? {} : { hostKey: Buffer.from(hostKeyBlob, "base64") }) } }),
      ...(addresses.redis === undefined ? {} : { redis: { host: loopbackHost(addresses.redis), port: addresses.redis.port } }),
      ...(addresses.mysql === undefined ? {} : { mysql: { host: loopbackHost(addresses.mysql), port: addresses.mysql.port, tls: o.tls?.require === true } }),
      ...(addresses.http === undefined ? {} : { http: { host: loopbackHost(addresses.http), port: addresses.http.port, tls: o.tls?.require === true } }),
    },
    correlations: o.correlations,
    preview: (session, event) => o.pipeline.preview(session, event),
    requestEvent: (session, connection, request) => requestEvent(session, connection, request),
    approvals: {
      get: async (id) => {
        const v = await o.approvals.get(id);
        return v === undefined ? undefined : approvalInfo(v.request);
      },
      requestGrant: async (principal, connection, durationMs, reason) => approvalInfo(await o.approvals.requestGrant(principal, connection, durationMs, reason)),
    },
    hasGrant: (principalId, connection) => o.approvals.activeGrant(principalId, connection) !== undefined,
    version: "0.1.0",
  });
  return {
    service,
    issuers: config.oidc.map((i) => i.issuer),
    ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
  };
}
