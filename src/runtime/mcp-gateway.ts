/**
 * Wiring of the MCP gateway (protocols/mcp/gateway) into the gateway: admission through the one
 * gatekeeper, the upstream credential resolved the way an http connection's is (bearer, header,
 * OAuth2 client credentials …; src/protocols/http/upstream.ts), pins in the store, masking with
 * the gateway's maskers, approvals looked up for pending envelopes.
 */
import type { Logger } from "pino";
import type { ApprovalService } from "../approvals/service.js";
import type { AuditEventInput } from "../audit/types.js";
import type { Connection, HttpConnection, McpConnection } from "../core/connection.js";
import type { MaskRule } from "../core/decision.js";
import type { Gatekeeper } from "../core/engine.js";
import { GatewayError } from "../core/errors.js";
import type { SecretRef } from "../core/secret.js";
import type { RuleMasker } from "../masking/index.js";
import type { Pipeline } from "../policy/pipeline.js";
import { OAuthTokens, httpUpstream } from "../protocols/http/upstream.js";
import { McpPins } from "../protocols/mcp/gateway/pins.js";
import { McpGatewayService } from "../protocols/mcp/gateway/service.js";
import type { UpstreamCredential } from "../protocols/mcp/gateway/upstream.js";
import type { Store } from "../store/types.js";

export function mcpGatewayService(o: {
  readonly connections: ReadonlyMap<string, Connection>;
  readonly gatekeeper: Gatekeeper;
  readonly pipeline: Pipeline;
  readonly store: Store;
  readonly audit: (input: AuditEventInput) => Promise<void>;
  readonly approvals: ApprovalService;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  readonly timeoutMs: number;
  readonly logger: Logger;
}): McpGatewayService {
  const pinStore = o.store.mcpPins;
  if (pinStore === undefined) throw new GatewayError("GW_CONFIG", "this store does not keep MCP tool pins");
  const oauth = new OAuthTokens();
  const credential = async (c: McpConnection): Promise<UpstreamCredential> => {
    if (c.upstream.transport !== "http") return { headers: {}, secrets: [] };
    // The same credential kinds as an http connection's, injected by the same code.
    const asHttp: HttpConnection = {
      type: "http",
      name: c.name,
      baseUrl: c.upstream.url,
      auth: c.upstream.auth,
      groups: c.groups,
      ...(c.upstream.tlsCa === undefined ? {} : { tlsCa: c.upstream.tlsCa }),
    };
    const up = await httpUpstream(asHttp, o.resolveSecret, oauth, o.timeoutMs);
    return { headers: up.headers, ...(up.query === undefined ? {} : { query: up.query }), secrets: up.secrets };
  };
  return new McpGatewayService({
    connection: (name) => o.connections.get(name),
    connections: () => o.connections.values(),
    admit: (request) => o.gatekeeper.admit(request, ["mcp"]),
    upstream: { credential, resolveSecret: o.resolveSecret, version: "0.1.0" },
    maskerFor: o.maskerFor,
    pins: new McpPins(pinStore, o.audit, o.logger),
    approvals: {
      get: async (id) => {
        const v = await o.approvals.get(id);
        if (v === undefined) return undefined;
        const r = v.request;
        return { approvers: r.approvers, expiresAt: r.expiresAt, status: r.status, requesterId: r.requesterId, ...(r.decisionReason === undefined ? {} : { decisionReason: r.decisionReason }) };
      },
    },
    preview: (session, event) => o.pipeline.preview(session, event),
    logger: o.logger,
  });
}
