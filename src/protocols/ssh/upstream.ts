/**
 * The gateway's own SSH leg to the target: an ssh2 Client logged in with the connection's key
 * or password (secret references, resolved here and never shown), with the target's host key
 * pinned: the key the target presents must equal `hostKey` (compared in constant time), or the
 * connection is refused before any credential is sent.
 */
import { timingSafeEqual } from "node:crypto";
import { Socket } from "node:net";
import ssh2, { type ServerHostKeyAlgorithm } from "ssh2";
import type { SshConnection } from "../../core/connection.js";
import { dialTargetOf, type Dialer } from "../../core/engine.js";
import { GatewayError, isGatewayError } from "../../core/errors.js";
import type { SecretRef } from "../../core/secret.js";

const { Client } = ssh2;
export type UpstreamClient = InstanceType<typeof Client>;

/** The TCP socket under each upstream client (the engine corks it to coalesce writes). */
const SOCKETS = new WeakMap<UpstreamClient, Socket>();

export function upstreamSocket(c: UpstreamClient): Socket | undefined {
  return SOCKETS.get(c);
}

/** `type base64 [comment]` → the key type and its wire blob. */
export function parsePinnedKey(line: string): { type: string; blob: Buffer } {
  const parts = line.trim().split(/\s+/);
  const type = parts[0] ?? "";
  const blob = Buffer.from(parts[1] ?? "", "base64");
  if (type === "" || blob.length === 0) throw new GatewayError("GW_CONFIG", "hostKey is not an OpenSSH public key line");
  return { type, blob };
}

export function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Host key algorithms a pinned key type can be presented with. */
function hostKeyAlgorithms(type: string): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [type];
}

export interface UpstreamOptions {
  /** How the target is reached (directly, or through a network-resident agent). */
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Connect and authenticate. Rejects with GW_UPSTREAM_UNAVAILABLE
 * (unreachable), GW_UPSTREAM_AUTH (credential refused), GW_UPSTREAM_HOSTKEY (host key mismatch)
 * or GW_SECRET_UNRESOLVED.
 */
export async function connectUpstream(c: SshConnection, o: UpstreamOptions): Promise<UpstreamClient> {
  const pinned = parsePinnedKey(c.hostKey);
  const privateKey = c.privateKey === undefined ? undefined : await o.resolveSecret(c.privateKey);
  const passphrase = c.passphrase === undefined ? undefined : await o.resolveSecret(c.passphrase);
  const password = c.password === undefined ? undefined : await o.resolveSecret(c.password);
  // Reached through the Dialer like every engine's target; ssh2 takes the connected stream.
  const sock = await o.dialer.dial(dialTargetOf(c), { timeoutMs: o.timeoutMs, ...(o.signal === undefined ? {} : { signal: o.signal }) }).catch((e: unknown) => {
    // The agent's own refusals say what to fix (connect an agent, or widen its allowlist).
    if (isGatewayError(e) && (e.code === "GW_AGENT_UNAVAILABLE" || e.code === "GW_AGENT_REFUSED")) throw new GatewayError(e.code, `connection "${c.name}": ${e.message}`, { cause: e });
    throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `connection "${c.name}": the target is unavailable`, { cause: e });
  });
  const client = new Client();
  // A TCP socket can be corked by the engine to coalesce writes.
  if (sock instanceof Socket) SOCKETS.set(client, sock);
  let mismatch = false;
  return new Promise<UpstreamClient>((resolve, reject) => {
    let settled = false;
    const fail = (e: GatewayError): void => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener("abort", onAbort);
      client.end();
      reject(e);
    };
    const onAbort = (): void => fail(new GatewayError("GW_SESSION_TERMINATED", "the session ended"));
    o.signal?.addEventListener("abort", onAbort, { once: true });
    client.once("ready", () => {
      if (settled) return;
      settled = true;
      // Small packets (SFTP read requests, keystrokes) must not wait for Nagle's algorithm.
      client.setNoDelay(true);
      o.signal?.removeEventListener("abort", onAbort);
      resolve(client);
    });
    // `on`, not `once`: ssh2 can emit a second error after the first (a handshake timeout, then
    // "Connection lost before handshake" when the socket goes), and an error with no listener
    // would take the whole gateway down. `fail` settles once.
    client.on("error", (e: Error & { level?: string }) => {
      if (mismatch) fail(new GatewayError("GW_UPSTREAM_HOSTKEY", `connection "${c.name}": the target's host key does not match the pinned hostKey`, { cause: e }));
      else if (e.level === "client-authentication") fail(new GatewayError("GW_UPSTREAM_AUTH", `connection "${c.name}": the target refused the gateway's credential`, { cause: e }));
      else if (e.level === "client-timeout") fail(new GatewayError("GW_UPSTREAM_UNAVAILABLE", `connection "${c.name}": the target did not answer in time`, { cause: e }));
      else fail(new GatewayError("GW_UPSTREAM_UNAVAILABLE", `connection "${c.name}": the target is unavailable`, { cause: e }));
    });
    client.once("close", () => fail(new GatewayError("GW_UPSTREAM_UNAVAILABLE", `connection "${c.name}": the target closed the connection`)));
    try {
      client.connect({
        sock,
        host: c.host,
        port: c.port,
        username: c.user,
        ...(privateKey === undefined ? {} : { privateKey }),
        ...(passphrase === undefined ? {} : { passphrase }),
        ...(password === undefined ? {} : { password }),
        readyTimeout: o.timeoutMs,
        keepaliveInterval: 15_000,
        algorithms: { serverHostKey: hostKeyAlgorithms(pinned.type) as ServerHostKeyAlgorithm[] },
        hostVerifier: (key: Buffer): boolean => {
          const ok = sameKey(key, pinned.blob);
          if (!ok) mismatch = true;
          return ok;
        },
      });
    } catch (e) {
      sock.destroy();
      fail(new GatewayError("GW_UPSTREAM_UNAVAILABLE", `connection "${c.name}": the gateway could not use its credential`, { cause: e }));
    }
  });
}
