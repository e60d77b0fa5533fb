/**
 * The HTTP engine's target leg through the `Dialer` (core/engine.ts), like every other engine:
 * a Node http(s) Agent whose sockets are the Dialer's streams — a TCP socket when the gateway
 * dials directly, a stream over a network agent (`via:`) otherwise — with TLS on top when the
 * target is https. Requests (and `ws` WebSockets, for kubectl exec) take it as their `agent`,
 * so keep-alive pooling, upgrades and streaming work unchanged over either.
 */
import { Agent as HttpAgent, type AgentOptions, type ClientRequestArgs } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import type { DialTarget, Dialer } from "../../core/engine.js";
import { GatewayError } from "../../core/errors.js";
import type { HttpUpstream } from "../../core/http-kind.js";

type Callback = (err: Error | null, stream: Duplex) => void;

interface DialPlan {
  readonly dialer: Dialer;
  readonly target: DialTarget;
  readonly tls: HttpUpstream["tls"] | undefined;
  readonly https: boolean;
  readonly timeoutMs: number;
}

/** An http(s) Agent whose connections come from the Dialer. One per connection (its target and TLS are fixed). */
export function dialerAgent(dialer: Dialer, up: HttpUpstream, via: string | undefined, timeoutMs: number): HttpAgent {
  const https = up.baseUrl.protocol === "https:";
  const host = up.baseUrl.hostname.replace(/^\[|\]$/g, "");
  const port = up.baseUrl.port === "" ? (https ? 443 : 80) : Number(up.baseUrl.port);
  const plan: DialPlan = { dialer, target: { host, port, ...(via === undefined ? {} : { via }) }, tls: up.tls, https, timeoutMs };
  const options: AgentOptions = { keepAlive: true, maxFreeSockets: 16 };
  return https ? new DialerHttpsAgent(plan, options) : new DialerHttpAgent(plan, options);
}

class DialerHttpAgent extends HttpAgent {
  readonly #plan: DialPlan;
  constructor(plan: DialPlan, options: AgentOptions) {
    super(options);
    this.#plan = plan;
  }
  override createConnection(_options: ClientRequestArgs, callback?: Callback): Duplex | null | undefined {
    open(this.#plan, callback);
    return undefined;
  }
}

class DialerHttpsAgent extends HttpsAgent {
  readonly #plan: DialPlan;
  constructor(plan: DialPlan, options: AgentOptions) {
    super(options);
    this.#plan = plan;
  }
  override createConnection(_options: ClientRequestArgs, callback?: Callback): Duplex | null | undefined {
    open(this.#plan, callback);
    return undefined;
  }
}

function open(plan: DialPlan, callback: Callback | undefined): void {
  const cb: Callback = callback ?? (() => undefined);
  plan.dialer.dial(plan.target, { timeoutMs: plan.timeoutMs }).then(
    (stream) => {
      if (!plan.https) return cb(null, socketLike(stream));
      const tls = plan.tls;
      const servername = tls?.servername ?? (isIP(plan.target.host) === 0 ? plan.target.host : undefined);
      const secure = tlsConnect({
        socket: socketLike(stream),
        ALPNProtocols: ["http/1.1"],
        ...(servername === undefined ? {} : { servername }),
        ...(tls?.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls?.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls?.key === undefined ? {} : { key: tls.key }),
        rejectUnauthorized: tls?.rejectUnauthorized ?? true,
      });
      // The stream under TLS goes with it.
      secure.once("close", () => stream.destroy());
      cb(null, secure);
    },
    (e: unknown) => cb(e instanceof Error ? e : new GatewayError("GW_UPSTREAM_UNAVAILABLE", "cannot reach the target", { cause: e }), undefined as unknown as Duplex),
  );
}

/**
 * Node's HTTP client and Agent call a few net.Socket methods on their sockets (timeouts,
 * keep-alive, ref/unref). A Dialer stream over a network agent is a plain Duplex: those become
 * no-ops on it (the tunnel has its own liveness; the engine its own request timeout).
 */
function socketLike(stream: Duplex): Duplex {
  const s = stream as Duplex & Partial<Record<"setTimeout" | "setNoDelay" | "setKeepAlive" | "ref" | "unref", (...a: unknown[]) => unknown>>;
  for (const m of ["setTimeout", "setNoDelay", "setKeepAlive", "ref", "unref"] as const) {
    if (typeof s[m] !== "function") s[m] = () => s;
  }
  return s;
}
