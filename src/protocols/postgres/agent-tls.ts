/**
 * TLS from the agent to a PostgreSQL target (issue 19, agent-side login): SSLRequest, the
 * one-byte answer, then a TLS handshake verified per sslmode with libpq's semantics
 * (protocol-flow "SSL Session Encryption"), before the agent's own login runs over it. The CA
 * bundle is public material the gateway sends along (its `sslRootCert`); the password is not.
 */
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate } from "node:tls";
import { GatewayError } from "../../core/errors.js";
import { readOneByte } from "./upstream.js";
import { encodeSSLRequest } from "./wire/index.js";

export interface AgentPostgresTls {
  readonly sslmode: "prefer" | "require" | "verify-ca" | "verify-full";
  readonly ca?: string;
  /** The name verify-full checks (the connection's sslServerName or host). */
  readonly serverName: string;
  readonly timeoutMs: number;
}

/** The stream to log in over: TLS, or `socket` itself when the target declines and sslmode is prefer. */
export async function agentPostgresTls(socket: Duplex, o: AgentPostgresTls): Promise<Duplex> {
  socket.write(encodeSSLRequest());
  const answer = await readOneByte(socket, o.timeoutMs);
  if (answer !== 0x53 /* 'S' */) {
    if (o.sslmode === "prefer" && answer === 0x4e /* 'N' */) return socket;
    throw new GatewayError("GW_UPSTREAM_TLS", `the target does not offer TLS (sslmode=${o.sslmode})`);
  }
  // Bytes after 'S' and before the TLS handshake would be injected plaintext (CVE-2021-23222).
  if (socket.readableLength > 0) throw new GatewayError("GW_UPSTREAM_TLS", "the target sent unexpected data before the TLS handshake");
  const verify = o.sslmode === "verify-ca" || o.sslmode === "verify-full";
  const secure = tlsConnect({
    socket,
    ...(isIP(o.serverName) === 0 ? { servername: o.serverName } : {}),
    ...(o.ca === undefined ? {} : { ca: o.ca }),
    rejectUnauthorized: verify,
    checkServerIdentity: o.sslmode === "verify-full" ? (_host: string, cert: PeerCertificate) => checkServerIdentity(o.serverName, cert) : () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new GatewayError("GW_UPSTREAM_TLS", "TLS handshake with the target timed out")), o.timeoutMs);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      resolve();
    });
    secure.once("error", (e) => {
      clearTimeout(timer);
      reject(new GatewayError("GW_UPSTREAM_TLS", "TLS to the target failed verification or handshake", { cause: e }));
    });
  });
  return secure;
}
