/**
 * Agent-side Redis login (issue 19): runs on the network-resident agent. Before it accepts the
 * gateway's stream, the agent sends `AUTH [user] password` (RESP, the Redis AUTH command) with a
 * password it resolves on its own host and reads the one reply: `+OK` and the agent accepts the
 * stream (the gateway then sends HELLO/SELECT without a credential); anything else and the
 * agent refuses the stream as a failed login. The gateway never sees the password nor the reply.
 */
import type { Duplex } from "node:stream";
import { GatewayError } from "../../core/errors.js";
import { RespReader, encodeCommand } from "./wire/resp.js";

export interface AgentRedisLogin {
  readonly user?: string;
  /** Resolves the password on the agent host; rejects when it cannot. */
  readonly password: () => Promise<string>;
  readonly timeoutMs: number;
}

const LIMITS = { maxBulkBytes: 64 * 1024, maxElements: 16, maxDepth: 4, maxLineBytes: 64 * 1024 };

/** Log in on `target`. Rejects when the login fails (the caller closes the target). */
export async function agentRedisLogin(target: Duplex, login: AgentRedisLogin): Promise<void> {
  const reader = new RespReader({ limits: LIMITS });
  try {
    const password = await login.password();
    target.write(encodeCommand(login.user === undefined ? ["AUTH", password] : ["AUTH", login.user, password]));
    const reply = await new Promise<ReturnType<RespReader["next"]>>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error("the target did not answer AUTH in time")), login.timeoutMs);
      const onData = (b: Buffer): void => {
        reader.push(b);
        try {
          const f = reader.next();
          if (f !== undefined) done(undefined, f);
        } catch (e) {
          done(e);
        }
      };
      const onEnd = (): void => done(new Error("the target closed the connection during AUTH"));
      const done = (e: unknown, f?: ReturnType<RespReader["next"]>): void => {
        clearTimeout(timer);
        target.off("data", onData);
        target.off("end", onEnd);
        target.off("close", onEnd);
        target.off("error", onEnd);
        target.pause(); // until the agent pipes it to the gateway's stream
        if (e === undefined) resolve(f);
        else reject(e instanceof Error ? e : new Error("the target's AUTH reply could not be read"));
      };
      target.on("data", onData);
      target.once("end", onEnd);
      target.once("close", onEnd);
      target.once("error", onEnd);
    });
    if (reply?.value.type !== "simple") throw new GatewayError("GW_UPSTREAM_AUTH", "the target refused the agent's AUTH");
    // The target sends nothing unasked: whatever is buffered after +OK would be a protocol error.
    if (reader.drain().length > 0) throw new GatewayError("GW_PROTOCOL", "the target sent data after AUTH before any command");
  } catch (e) {
    target.destroy();
    throw e;
  }
}
