/**
 * The gateway's Dialer (issue 19): a target with `via: GROUP` is reached through a stream over
 * a connected agent of that group; any other target directly. The stream is an ordinary Duplex,
 * so every engine works unchanged.
 */
import type { Duplex } from "node:stream";
import type { DialTarget, Dialer } from "../core/engine.js";
import { GatewayError } from "../core/errors.js";
import type { AgentRegistry } from "./registry.js";
import type { OpenSpec } from "./spec.js";
import { StreamClosedError, type Tunnel } from "./tunnel.js";

export class AgentDialer implements Dialer {
  constructor(
    private readonly direct: Dialer,
    private readonly agents: AgentRegistry,
  ) {}

  async dial(target: DialTarget, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<Duplex> {
    if (target.via === undefined) return this.direct.dial(target, options);
    const spec: OpenSpec = { host: target.host, port: target.port, ...(target.agentLogin === undefined ? {} : { login: target.agentLogin }) };
    const tried = new Set<Tunnel>();
    // An agent that drops while opening is replaced by another of the group (at most a few).
    for (let attempt = 0; attempt < 3; attempt++) {
      const tunnel = this.agents.pick(target.via, tried);
      if (tunnel === undefined) break;
      tried.add(tunnel);
      try {
        return await tunnel.open(spec, options);
      } catch (e) {
        if (e instanceof StreamClosedError && e.reason !== undefined) {
          // The agent answered: the target itself is unreachable or refused the login.
          if (e.reason.code === "login_failed") throw new GatewayError("GW_UPSTREAM_AUTH", "the target refused the agent's credential", { cause: e });
          if (e.reason.code === "not_allowed") {
            throw new GatewayError("GW_AGENT_REFUSED", `the agent of group "${target.via}" refused to dial the target: it is not in the agent's allowlist`, { cause: e });
          }
          throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the agent cannot reach the target", { cause: e });
        }
        if (options.signal?.aborted === true || !tunnel.closed) {
          throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the agent did not connect the target", { cause: e });
        }
        // The tunnel died under us: try another agent of the group.
      }
    }
    throw new GatewayError("GW_AGENT_UNAVAILABLE", `no agent of group "${target.via}" is connected`);
  }
}
