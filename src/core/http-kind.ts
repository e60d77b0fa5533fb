/**
 * A kind of target served over the gateway's HTTP listener (issue 15) other than plain HTTP
 * APIs: Kubernetes first. The HTTP engine (src/protocols/http) owns the listener, the client
 * side of HTTP (parsing, TLS, authentication through the Gatekeeper, hop-by-hop headers,
 * streaming, chunking, refusals) and the upstream leg; a kind only says what a request MEANS
 * and how its target is reached. Engines never import each other: the runtime builds the kinds
 * and hands them to the HTTP engine as a list (`HttpEngineOptions.kinds`).
 *
 * Flow for a request to `/CONNECTION/rest…` whose connection's `type` is `kind.connectionType`:
 *   1. the engine authenticates the bearer token and admits a session (clientProtocol
 *      `kind.clientProtocol`, target types `[kind.connectionType]`);
 *   2. if `kind.bodyFor(head)` returns a cap, the engine buffers the request body up to it
 *      (a longer body is refused, GW_LIMIT) and passes it to `classify`;
 *   3. `kind.classify(head, ctx)` returns the judged event (e.g. `k8s.request`) or a refusal;
 *   4. the engine judges it (`session.judge(event)`), renders a deny through
 *      `kind.renderRefusal` (or its own JSON error) and otherwise forwards to
 *      `kind.upstream(connection)`'s base URL + `head.path`, with the kind's credential headers
 *      and TLS options, after dropping the client's `Authorization`;
 *   5. an upgrade request (WebSocket: `kubectl exec/attach/port-forward`) goes to
 *      `kind.upgrade` when the kind has one, after the judgement allowed it; without one the
 *      engine relays the upgraded stream itself, masking text frames by the decision's plan;
 *   6. the response body goes through `kind.responseTransform(…)` when it returns one,
 *      otherwise through the engine's default masking (streamed JSON, text and SSE by detectors).
 *
 * Everything here is small and stable on purpose; add optional members rather than change
 * existing ones.
 */
import type { Agent } from "node:http";
import type { Duplex } from "node:stream";
import type { ConnectionType } from "./connection.js";
import type { AllowDecision, MaskRule } from "./decision.js";
import type { ConnectionOf, Refusal } from "./engine.js";
import type { JudgedEvent } from "./events.js";
import type { SecretRef } from "./secret.js";
import type { SessionJudge } from "./judge.js";
import type { ClientProtocol, SessionInfo } from "./session.js";

/**
 * One client request as the engine parsed it, after the connection prefix was removed.
 * `path` is the path AFTER `/CONNECTION` exactly as the client sent it (still percent-encoded,
 * starting with `/`; `/` when nothing followed); `normalizedPath` is the same path decoded and
 * normalized (dot segments resolved, `//` collapsed, `;params` dropped) — the form policies
 * match on. A request whose path cannot be normalized safely (encoded `/` or NUL, `..` above
 * the root) never reaches a kind: the engine refuses it first.
 */
export interface HttpRequestHead {
  /** Upper case, as sent (the engine refuses method-override headers before classify). */
  readonly method: string;
  readonly path: string;
  readonly normalizedPath: string;
  /** The raw query string without `?` ("" when none). */
  readonly rawQuery: string;
  /** Decoded query parameters, in order (a name may repeat). */
  readonly query: readonly (readonly [string, string])[];
  /**
   * Request headers, names lower case, values as sent; repeated headers joined with ", "
   * (`set-cookie` never comes from clients). Hop-by-hop headers and the client's
   * `authorization` are already removed.
   */
  readonly headers: Readonly<Record<string, string>>;
  /** An upgrade request (`Connection: upgrade` + `Upgrade: websocket`): the protocol, lower case. */
  readonly upgrade?: string;
}

/** What the kind needs to build the judged event. */
export interface ClassifyContext<T extends ConnectionType> {
  readonly connection: ConnectionOf<T>;
  readonly session: SessionInfo;
  /** 1-based sequence of requests within the session (the event's `seq`). */
  readonly seq: number;
  /** The request body when `bodyFor` asked for it (at most that many bytes, already decoded from Content-Encoding). */
  readonly body?: Buffer;
}

export type Classification =
  | { readonly ok: true; readonly event: JudgedEvent; /** one line for people: `delete pods/web-1 -n prod` */ readonly summary: string }
  | { readonly ok: false; readonly refusal: Refusal };

/** How the gateway reaches and authenticates to the target. */
export interface HttpUpstream {
  /** Base URL: `https://10.0.0.1:6443` (a path prefix in it is kept: `http://h/api-prefix`). */
  readonly baseUrl: URL;
  /** Credential headers the gateway adds (e.g. `authorization: Bearer …`); they replace any the client sent. */
  readonly headers: Readonly<Record<string, string>>;
  /** Query parameters the gateway adds (a credential in the query); they replace any the client sent. */
  readonly query?: readonly (readonly [string, string])[];
  /** TLS to the target (https only): PEM values already resolved. */
  readonly tls?: {
    readonly ca?: string;
    readonly cert?: string;
    readonly key?: string;
    readonly servername?: string;
    /** Default true: a target certificate that does not verify is refused (GW_UPSTREAM_TLS). */
    readonly rejectUnauthorized?: boolean;
  };
  /** Every value that must never reach the client (tokens, passwords): the engine scrubs responses, logs and recordings of them. */
  readonly secrets: readonly string[];
}

/** Masking the kind may apply inside its own transforms, per the decision's plan. */
export interface PlanMasker {
  /** The rules of the decision's plan (empty: nothing to mask). */
  readonly rules: readonly MaskRule[];
  /** A text value: masked text, or the input when nothing was found. */
  text(value: string): string;
  /** A JSON document (text): masked by path rules and detectors, kept valid JSON. */
  json(doc: string): string;
  /** Values masked so far, per kind (for the result's recording and audit). */
  readonly counts: Readonly<Record<string, number>>;
}

/**
 * How a response body is rewritten instead of the engine's default masking:
 * - `json`: the whole body (decoded from Content-Encoding) is buffered up to `maxBytes` and
 *   handed to `rewrite` (larger: the response is refused, fail closed) — a Secret, a list;
 * - `json-lines`: one JSON document per line (watch streams), each line rewritten as it comes;
 * - `text-lines`: text by lines (pod logs, `-f` included), each line rewritten as it comes.
 * `rewrite` returns the new text; it must keep the document valid (the engine sends it as is).
 */
export type ResponseTransform =
  | { readonly type: "json"; readonly maxBytes: number; rewrite(body: string, mask: PlanMasker): string }
  | { readonly type: "json-lines"; readonly maxLineBytes: number; rewrite(line: string, mask: PlanMasker): string }
  | { readonly type: "text-lines"; readonly maxLineBytes: number; rewrite(line: string, mask: PlanMasker): string };

export interface ResponseContext<T extends ConnectionType> {
  readonly head: HttpRequestHead;
  readonly connection: ConnectionOf<T>;
  readonly event: JudgedEvent;
  readonly decision: AllowDecision;
  readonly status: number;
  /** Response headers, names lower case. */
  readonly headers: Readonly<Record<string, string>>;
}

/** An upgraded stream the kind serves itself (exec/attach/port-forward over WebSocket). */
export interface UpgradeContext<T extends ConnectionType> {
  readonly head: HttpRequestHead;
  readonly connection: ConnectionOf<T>;
  readonly session: SessionJudge;
  /** The judged event of the upgrade request and its (allow) decision. */
  readonly event: JudgedEvent;
  readonly decision: AllowDecision;
  readonly upstream: HttpUpstream;
  /** The client's socket after the request head (nothing has been answered yet). */
  readonly socket: Duplex;
  /** Bytes the client sent after the request head. */
  readonly firstBytes: Buffer;
  /** The raw request head lines as received (for a kind that completes the WebSocket handshake itself). */
  readonly rawHeaders: readonly string[];
  /** Masking per the decision's plan, for output the kind relays. */
  readonly mask: PlanMasker;
  /** Aborts when the session must end (revocation, shutdown). */
  readonly signal: AbortSignal;
  /**
   * The Node http(s) Agent that reaches `upstream` through the gateway's Dialer (directly, or
   * through a network agent of the connection's `via` group): pass it as the `agent` of the
   * kind's own request or WebSocket to the target, never dial the target another way.
   */
  readonly agent: Agent;
}

export interface HttpServedKind<T extends ConnectionType = ConnectionType> {
  /** The connection type this kind serves (`kubernetes`). */
  readonly connectionType: T;
  /** How its clients are recorded (`kubernetes`). */
  readonly clientProtocol: ClientProtocol;
  /** How the target is reached; `resolveSecret` resolves the connection's secret references. */
  upstream(connection: ConnectionOf<T>, resolveSecret: (ref: SecretRef) => Promise<string>): Promise<HttpUpstream>;
  /** The body size the kind wants to read before classifying (create, patch…), or undefined for none. */
  bodyFor?(head: HttpRequestHead): number | undefined;
  classify(head: HttpRequestHead, ctx: ClassifyContext<T>): Classification | Promise<Classification>;
  /** A refusal in the kind's clients' own shape (Kubernetes: a `Status` object). Default: the engine's JSON error. */
  renderRefusal?(refusal: Refusal, httpStatus: number): { readonly contentType: string; readonly body: string };
  responseTransform?(ctx: ResponseContext<T>): ResponseTransform | undefined;
  /** Serve an allowed upgrade request end to end. Resolves when the stream is over; never rejects. */
  upgrade?(ctx: UpgradeContext<T>): Promise<void>;
}
