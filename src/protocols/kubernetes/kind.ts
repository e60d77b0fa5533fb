/**
 * Kubernetes as a kind served by the HTTP listener (src/core/http-kind.ts): what a request
 * means (request.ts → a `k8s.request` event), how the API server is reached with the gateway's
 * own credential, refusals as Kubernetes `Status` objects (kubectl prints their `message`),
 * and responses masked per the decision's plan (Secrets decoded first: secrets.ts; watch
 * streams and `logs -f` line by line as they flow). Exec/attach over WebSocket: exec.ts;
 * port-forward (SPDY, plain or tunnelled in a WebSocket): portforward.ts.
 */
import type { Connection, ConnectionType } from "../../core/connection.js";
import type { Refusal } from "../../core/engine.js";
import { refusalText } from "../../core/engine.js";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import type { Classification, ClassifyContext, HttpRequestHead, HttpServedKind, HttpUpstream, ResponseContext, ResponseTransform, UpgradeContext } from "../../core/http-kind.js";
import type { SecretRef } from "../../core/secret.js";
import { k8sEvent } from "./event.js";
import { serveExec, type CastPathFor } from "./exec.js";
import { portForwardForm, portForwardPorts, servePortForward } from "./portforward.js";
import { classifyK8sRequest, execOptions, type K8sRequest } from "./request.js";
import { maskK8sJson } from "./secrets.js";

/** The apiserver refuses request bodies over 3 MiB (maxRequestBodyBytes); so does the gateway. */
export const MAX_REQUEST_BODY = 3 * 1024 * 1024;
/** A single object or list the gateway buffers to mask (larger lists: use --chunk-size / limit). */
export const MAX_RESPONSE_JSON = 32 * 1024 * 1024;
/** One watch event or log line. */
export const MAX_LINE = 4 * 1024 * 1024;

/** Media types the gateway cannot read to mask (it asks for JSON): refused rather than passed blind. */
const OPAQUE_MEDIA = /protobuf|cbor/i;

function classifyOrRefuse(head: HttpRequestHead): K8sRequest | GatewayError {
  try {
    return classifyK8sRequest(head.method, head.path.split("?")[0] ?? head.path, head.rawQuery);
  } catch (e) {
    return isGatewayError(e) ? e : new GatewayError("GW_PROTOCOL", "Kubernetes request refused: it could not be read");
  }
}

/** The object name a create body gives (`metadata.name`), or undefined (generateName, not JSON…). */
function nameFromBody(body: Buffer | undefined): { name?: string; parsed?: unknown } {
  if (body === undefined || body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return {}; // YAML apply-patch, protobuf: name unknown (a names rule then fails closed)
  }
  if (typeof parsed === "object" && parsed !== null && "metadata" in parsed) {
    const meta = parsed.metadata;
    if (typeof meta === "object" && meta !== null && "name" in meta) {
      const name = meta.name;
      if (typeof name === "string" && name !== "") return { name, parsed };
    }
  }
  return { parsed };
}

/** HTTP status → the `reason` of a Kubernetes Status (metav1.StatusReason). */
function statusReason(code: number): string {
  if (code === 401) return "Unauthorized";
  if (code === 403) return "Forbidden";
  if (code === 404) return "NotFound";
  if (code === 409) return "Conflict";
  if (code === 413) return "RequestEntityTooLarge";
  if (code === 429) return "TooManyRequests";
  if (code === 400) return "BadRequest";
  if (code === 503 || code === 502) return "ServiceUnavailable";
  if (code === 504) return "Timeout";
  return "InternalError";
}

/** A Kubernetes `Status` object carrying a refusal: kubectl prints `Error from server (Forbidden): <message>`. */
export function statusBody(refusal: Refusal, httpStatus: number): string {
  const rule = refusal.rule;
  return JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: refusalText({ message: refusal.message, rule }, true),
    reason: statusReason(httpStatus),
    details: { causes: [{ reason: "AirlockRefusal", message: refusal instanceof GatewayError ? refusal.code : refusal.code, field: rule ?? "" }] },
    code: httpStatus,
  });
}

function isWebSocketUpgrade(head: HttpRequestHead): boolean {
  return head.upgrade === "websocket";
}

/** `castPathFor`: where an exec/attach session's terminal recording goes (this gateway's recordings). */
export function kubernetesKind(castPathFor?: CastPathFor): HttpServedKind {
  return {
    connectionType: "kubernetes",
    clientProtocol: "kubernetes",

    async upstream(connection: Connection, resolveSecret: (ref: SecretRef) => Promise<string>): Promise<HttpUpstream> {
      if (connection.type !== "kubernetes") throw new GatewayError("GW_INTERNAL", "not a kubernetes connection");
      const secrets: string[] = [];
      const headers: Record<string, string> = {};
      if (connection.token !== undefined) {
        const token = (await resolveSecret(connection.token)).trim();
        headers.authorization = `Bearer ${token}`;
        secrets.push(token);
      }
      const tls: { ca?: string; cert?: string; key?: string; servername?: string } = {};
      if (connection.ca !== undefined) tls.ca = await resolveSecret(connection.ca);
      if (connection.clientCert !== undefined) tls.cert = await resolveSecret(connection.clientCert);
      if (connection.clientKey !== undefined) {
        tls.key = await resolveSecret(connection.clientKey);
        secrets.push(tls.key);
      }
      if (connection.tlsServerName !== undefined) tls.servername = connection.tlsServerName;
      const baseUrl = new URL(connection.server);
      return { baseUrl, headers, secrets, ...(baseUrl.protocol === "https:" ? { tls: { ...tls, rejectUnauthorized: true } } : {}) };
    },

    bodyFor(head: HttpRequestHead): number | undefined {
      // A create names its object in the body (names rules); exec/attach/portforward have none.
      return head.method === "POST" && head.upgrade === undefined ? MAX_REQUEST_BODY : undefined;
    },

    classify(head: HttpRequestHead, ctx: ClassifyContext<ConnectionType>): Classification {
      const r = classifyOrRefuse(head);
      if (r instanceof GatewayError) return { ok: false, refusal: r };
      // Impersonate-User/-Group/-Uid/-Extra-* would make the API server act as someone else with
      // the gateway's credential (kubectl --as): policies judge the agent, so it is never forwarded.
      const impersonation = Object.keys(head.headers).find((h) => h.toLowerCase().startsWith("impersonate-"));
      if (impersonation !== undefined) {
        return { ok: false, refusal: new GatewayError("GW_POLICY_DENIED", `Kubernetes request refused: impersonation (${impersonation}) is not served; the gateway's credential acts for the agent only`) };
      }
      const accept = head.headers.accept ?? "";
      const contentType = head.headers["content-type"] ?? "";
      if (r.type === "resource" && (OPAQUE_MEDIA.test(accept) && !/application\/json/i.test(accept))) {
        return { ok: false, refusal: new GatewayError("GW_UNSUPPORTED", "Kubernetes request refused: the gateway serves JSON only (protobuf and CBOR cannot be inspected); use the client's JSON content type") };
      }
      if (OPAQUE_MEDIA.test(contentType)) {
        return { ok: false, refusal: new GatewayError("GW_UNSUPPORTED", "Kubernetes request refused: a protobuf or CBOR body cannot be inspected; send JSON (kubectl create namespace/configmap/secret/... sends protobuf: use `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`, which sends JSON)") };
      }
      let command: readonly string[] | undefined;
      let ports: readonly number[] | undefined;
      if (r.type === "resource" && r.verb === "portforward") {
        // kubectl's SPDY, plain or tunnelled in a WebSocket: portforward.ts reads it in passing.
        const form = portForwardForm(head.upgrade, head.headers["sec-websocket-protocol"], head.headers["x-stream-protocol-version"]);
        if (form instanceof GatewayError) return { ok: false, refusal: form };
        try {
          ports = portForwardPorts(head.rawQuery);
        } catch (e) {
          return { ok: false, refusal: isGatewayError(e) ? e : new GatewayError("GW_PROTOCOL", "bad port-forward ports") };
        }
      } else if (r.type === "resource" && (r.verb === "exec" || r.verb === "attach")) {
        if (head.upgrade !== undefined && !isWebSocketUpgrade(head)) {
          return {
            ok: false,
            refusal: new GatewayError("GW_UNSUPPORTED", `kubectl ${r.verb} over SPDY is not supported by the gateway: use kubectl 1.30 or newer (WebSocket, v5.channel.k8s.io), and do not set KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`),
          };
        }
        if (!isWebSocketUpgrade(head)) return { ok: false, refusal: new GatewayError("GW_PROTOCOL", `${r.verb} needs a WebSocket upgrade`) };
        if (r.verb === "exec") {
          try {
            command = execOptions(head.rawQuery).command;
          } catch (e) {
            return { ok: false, refusal: isGatewayError(e) ? e : new GatewayError("GW_PROTOCOL", "bad exec options") };
          }
          if (command.length === 0) return { ok: false, refusal: new GatewayError("GW_PROTOCOL", "exec needs a command") };
        }
      }
      const fromBody = r.type === "resource" && r.verb === "create" ? nameFromBody(ctx.body) : {};
      const event = k8sEvent(ctx.session, ctx.seq, r, {
        ...(fromBody.name === undefined ? {} : { name: fromBody.name }),
        ...(command === undefined ? {} : { command }),
        ...(ports === undefined || ports.length === 0 ? {} : { ports }),
      });
      return { ok: true, event, summary: event.text };
    },

    renderRefusal(refusal: Refusal, httpStatus: number): { contentType: string; body: string } {
      return { contentType: "application/json", body: statusBody(refusal, httpStatus) };
    },

    responseTransform(ctx: ResponseContext<ConnectionType>): ResponseTransform | undefined {
      const masks = ctx.decision.plan?.masks ?? [];
      if (masks.length === 0) return undefined;
      const e = ctx.event;
      if (e.type !== "k8s.request") return undefined;
      const type = (ctx.headers["content-type"] ?? "").toLowerCase();
      if (e.verb === "logs") return { type: "text-lines", maxLineBytes: MAX_LINE, rewrite: (line, mask) => mask.text(line) };
      if (e.verb === "watch" || (type.includes("application/json") && /(^|&)watch=(?!false|0(&|$))[^&]*/i.test(ctx.head.rawQuery))) {
        return { type: "json-lines", maxLineBytes: MAX_LINE, rewrite: (line, mask) => (line.trim() === "" ? line : maskK8sJson(line, mask)) };
      }
      return { type: "json", maxBytes: MAX_RESPONSE_JSON, rewrite: (body, mask) => maskK8sJson(body, mask) };
    },

    upgrade(ctx: UpgradeContext<ConnectionType>): Promise<void> {
      if (ctx.event.type === "k8s.request" && ctx.event.verb === "portforward") return servePortForward(ctx);
      return serveExec(ctx, castPathFor);
    },
  };
}
