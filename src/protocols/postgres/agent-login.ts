/**
 * Agent-side PostgreSQL login (issue 19): runs on the network-resident agent. The gateway sends
 * its StartupMessage through the tunnel stream as usual; the agent forwards it to the target,
 * answers the target's password challenge itself (cleartext, MD5, SCRAM-SHA-256; protocol-flow
 * "Start-up") with a password it resolves on its own host, and passes the gateway only what
 * follows: AuthenticationOk, ParameterStatus…, ReadyForQuery. Then it relays bytes unchanged.
 * The gateway never sees the password nor any byte derived from it.
 */
import type { Duplex } from "node:stream";
import { GatewayError } from "../../core/errors.js";
import { FramedSocket } from "./framed.js";
import {
  FrameReader,
  ScramClient,
  decodeAuthentication,
  decodeStartupPacket,
  encodeErrorResponse,
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  md5PasswordResponse,
} from "./wire/index.js";

const T_AUTH = 0x52; // 'R'
const T_ERROR = 0x45; // 'E'
const T_READY = 0x5a; // 'Z'
const MAX_STARTUP_BYTES = 10_000;
const MAX_LOGIN_MESSAGE_BYTES = 64 * 1024;

export interface AgentPostgresLogin {
  readonly user: string;
  /** Resolves the password on the agent host; rejects when it cannot. */
  readonly password: () => Promise<string>;
  readonly timeoutMs: number;
}

/**
 * Log in to `target` on behalf of the gateway on `gateway`; resolves once the session is ready
 * and both sides are piped together. A failure is reported to the gateway as a FATAL
 * ErrorResponse (the target's own for a refused password) and both ends are closed.
 */
export async function agentPostgresLogin(gateway: Duplex, target: Duplex, login: AgentPostgresLogin): Promise<void> {
  const fromGateway = new FramedSocket(gateway, new FrameReader({ maxMessageBytes: MAX_STARTUP_BYTES, untagged: true }));
  const targetReader = new FrameReader({ maxMessageBytes: MAX_LOGIN_MESSAGE_BYTES, untagged: true });
  targetReader.setTagged();
  const fromTarget = new FramedSocket(target, targetReader);
  let told = false; // the gateway already has the target's own ErrorResponse
  try {
    const startup = await fromGateway.read(login.timeoutMs);
    fromGateway.detach();
    const packet = decodeStartupPacket(startup.body);
    if (packet.kind !== "startup") throw new GatewayError("GW_PROTOCOL", "expected a StartupMessage from the gateway");
    if (packet.params.get("user") !== login.user) {
      throw new GatewayError("GW_UPSTREAM_AUTH", "the gateway asked to log in as a user this agent has no credential for");
    }
    target.write(startup.bytes);
    let scram: ScramClient | undefined;
    let password: string | undefined;
    const need = async (): Promise<string> => (password ??= await login.password());
    for (;;) {
      const f = await fromTarget.read(login.timeoutMs);
      if (f.type === T_ERROR) {
        gateway.write(f.bytes);
        told = true;
        throw new GatewayError("GW_UPSTREAM_AUTH", "the target refused the login");
      }
      if (f.type !== T_AUTH) {
        // NegotiateProtocolVersion, NoticeResponse: the gateway handles them.
        gateway.write(f.bytes);
        continue;
      }
      const auth = decodeAuthentication(f.body);
      switch (auth.kind) {
        case "ok":
          gateway.write(f.bytes);
          break;
        case "cleartext":
          target.write(encodePasswordMessage(await need()));
          continue;
        case "md5":
          target.write(encodePasswordMessage(md5PasswordResponse(login.user, await need(), auth.salt)));
          continue;
        case "sasl":
          if (!auth.mechanisms.includes("SCRAM-SHA-256")) throw new GatewayError("GW_UPSTREAM_AUTH", "the target offers no supported SASL mechanism");
          scram = new ScramClient(await need());
          target.write(encodeSASLInitialResponse("SCRAM-SHA-256", scram.clientFirstMessage()));
          continue;
        case "sasl_continue":
          if (scram === undefined) throw new GatewayError("GW_UPSTREAM_AUTH", "unexpected SASL continue from the target");
          target.write(encodeSASLResponse(await scram.handleServerFirstAsync(auth.data)));
          continue;
        case "sasl_final":
          if (scram === undefined) throw new GatewayError("GW_UPSTREAM_AUTH", "unexpected SASL final from the target");
          scram.verifyServerFinal(auth.data);
          continue;
        case "unsupported":
          throw new GatewayError("GW_UPSTREAM_AUTH", `the target asks for an unsupported authentication method (code ${auth.code})`);
      }
      break;
    }
    // The rest of start-up goes through as frames up to ReadyForQuery, after which the target
    // sends nothing until the gateway speaks: nothing is left buffered when the pipe starts.
    for (;;) {
      const f = await fromTarget.read(login.timeoutMs);
      gateway.write(f.bytes);
      told = f.type === T_ERROR;
      if (f.type === T_ERROR) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target refused the session");
      if (f.type === T_READY) break;
    }
    fromTarget.detach();
    if (targetReader.buffered > 0) throw new GatewayError("GW_PROTOCOL", "the target sent data after ReadyForQuery before any query");
    gateway.pipe(target);
    target.pipe(gateway);
    gateway.resume();
    target.resume();
  } catch (e) {
    fromGateway.detach();
    fromTarget.detach();
    if (!told && gateway.writable) {
      // Never the password or the reason's details: a fixed text the gateway maps to GW_UPSTREAM_AUTH.
      gateway.write(encodeErrorResponse({ severity: "FATAL", code: "28000", message: "airlock agent: the agent could not complete the target login" }));
    }
    gateway.end();
    target.destroy();
    throw e;
  }
}
