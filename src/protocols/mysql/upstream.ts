/**
 * The gateway's own session to the target: dial, read the server's HandshakeV10, upgrade to TLS
 * as the connection's sslmode says (Protocol::SSLRequest), then log in with the gateway-held
 * credential: mysql_native_password, caching_sha2_password (fast path; full authentication in
 * the clear over TLS, or RSA with the configured or fetched public key) and MariaDB's
 * client_ed25519, following AuthSwitchRequests. The client's capabilities, character set and
 * connection attributes are passed on; what the gateway does not serve is cleared (compression,
 * LOCAL INFILE). The credential never leaves this module except inside the auth exchange.
 */
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import type { MysqlConnection } from "../../core/connection.js";
import { dialTargetOf, type Dialer } from "../../core/engine.js";
import { GatewayError, toGatewayError } from "../../core/errors.js";
import type { SecretRef } from "../../core/secret.js";
import { cachingSha2Scramble, ed25519Response, nativePasswordScramble, rsaEncryptPassword } from "./auth.js";
import { PacketChannel } from "./channel.js";
import type { PacketLimits } from "./wire/packets.js";
import {
  CAP,
  COM,
  DEFAULT_CHARSET,
  decodeAuthReply,
  decodeErr,
  decodeHandshakeV10,
  encodeHandshakeResponse,
  encodeSslRequest,
  hasCap,
  type HandshakeV10,
  type OkPacket,
} from "./wire/protocol.js";

export interface TargetLink {
  readonly channel: PacketChannel;
  readonly handshake: HandshakeV10;
  /** The capabilities in force on the target leg. */
  readonly capabilities: number;
  readonly ok: OkPacket;
  readonly tls: boolean;
}

export interface TargetOptions {
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly limits: PacketLimits;
}

export interface ClientWishes {
  /** Capabilities the client negotiated with the gateway. */
  readonly capabilities: number;
  readonly charset: number;
  readonly maxPacketSize: number;
  readonly attributes: ReadonlyMap<string, string>;
}

/** Capabilities whose presence changes packet formats: the target must speak them if the client does. */
const FORMAT_CAPS = [
  ["CLIENT_DEPRECATE_EOF", CAP.DEPRECATE_EOF],
  ["CLIENT_PLUGIN_AUTH", CAP.PLUGIN_AUTH],
  ["CLIENT_SESSION_TRACK", CAP.SESSION_TRACK],
  ["CLIENT_MULTI_RESULTS", CAP.MULTI_RESULTS],
  ["CLIENT_PS_MULTI_RESULTS", CAP.PS_MULTI_RESULTS],
  ["CLIENT_PROTOCOL_41", CAP.PROTOCOL_41],
  ["CLIENT_SECURE_CONNECTION", CAP.SECURE_CONNECTION],
] as const;

/** Never asked of the target: compression, local files, query attributes, optional metadata. */
const NEVER = (CAP.COMPRESS | CAP.ZSTD_COMPRESSION | CAP.LOCAL_FILES | CAP.QUERY_ATTRIBUTES | CAP.OPTIONAL_RESULTSET_METADATA | CAP.SSL | CAP.SSL_VERIFY_SERVER_CERT) >>> 0;

export async function connectTarget(connection: MysqlConnection, wishes: ClientWishes, o: TargetOptions): Promise<TargetLink> {
  const socket = await o.dialer.dial(dialTargetOf(connection), { timeoutMs: o.timeoutMs, ...(o.signal === undefined ? {} : { signal: o.signal }) });
  try {
    return await login(socket, connection, wishes, o, connection.database);
  } catch (e) {
    socket.destroy();
    throw toGatewayError(e, "GW_UPSTREAM_UNAVAILABLE");
  }
}

async function login(socket: Duplex, connection: MysqlConnection, wishes: ClientWishes, o: TargetOptions, database: string): Promise<TargetLink> {
  const channel = new PacketChannel(socket, o.limits);
  const first = await channel.next(o.timeoutMs, o.signal);
  if (first === undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target closed the connection before its greeting");
  if (first.payload[0] === 0xff) {
    const err = decodeErr(first.payload);
    throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the target refused the connection: ${err.message.slice(0, 200)}`);
  }
  const hs = decodeHandshakeV10(first.payload);
  let seq = (first.lastSeq + 1) & 0xff;
  const server = hs.capabilities;
  for (const [name, flag] of FORMAT_CAPS) {
    if (hasCap(wishes.capabilities, flag) && !hasCap(server, flag)) {
      throw new GatewayError("GW_UNSUPPORTED", `the target does not support ${name}, which the client uses`);
    }
  }
  let caps = ((wishes.capabilities & server & ~NEVER) | CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.CONNECT_WITH_DB) >>> 0;
  caps = (caps & server) >>> 0;
  if (!hasCap(server, CAP.CONNECT_ATTRS)) caps = (caps & ~CAP.CONNECT_ATTRS) >>> 0;
  const charset = wishes.charset === 0 ? DEFAULT_CHARSET : wishes.charset;
  const mode = connection.sslmode;
  let tls = false;
  if (mode !== "disable" && hasCap(server, CAP.SSL)) {
    const withSsl = (caps | CAP.SSL) >>> 0;
    seq = channel.write(encodeSslRequest(withSsl, wishes.maxPacketSize, charset), seq);
    const ca = connection.sslRootCert === undefined ? undefined : await o.resolveSecret(connection.sslRootCert);
    const verify = mode === "verify-ca" || mode === "verify-full";
    channel.detach();
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({
        socket,
        servername: connection.sslServerName ?? connection.host,
        rejectUnauthorized: verify,
        ...(ca === undefined ? {} : { ca }),
        ...(mode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
      });
      const timer = setTimeout(() => reject(new GatewayError("GW_UPSTREAM_TLS", "TLS to the target timed out")), o.timeoutMs);
      t.once("secureConnect", () => {
        clearTimeout(timer);
        resolve(t);
      });
      t.once("error", (e) => {
        clearTimeout(timer);
        reject(new GatewayError("GW_UPSTREAM_TLS", "TLS to the target failed", { cause: e }));
      });
    });
    channel.replaceSocket(secure);
    caps = withSsl;
    tls = true;
  } else if (mode === "require" || mode === "verify-ca" || mode === "verify-full") {
    throw new GatewayError("GW_UPSTREAM_TLS", "the target does not offer TLS, and the connection requires it");
  }
  const password = connection.password === undefined ? "" : await o.resolveSecret(connection.password);
  const plugin = hs.authPlugin;
  const initial = authData(plugin, password, hs.scramble, tls);
  seq = channel.write(
    encodeHandshakeResponse({
      capabilities: caps,
      maxPacketSize: wishes.maxPacketSize,
      charset,
      user: connection.user,
      authResponse: initial ?? Buffer.alloc(0),
      database,
      authPlugin: initial === undefined ? "mysql_native_password" : plugin,
      attributes: wishes.attributes,
    }),
    seq,
  );
  let nonce = hs.scramble;
  let current = initial === undefined ? "mysql_native_password" : plugin;
  let publicKey: string | undefined = connection.serverPublicKey === undefined ? undefined : await o.resolveSecret(connection.serverPublicKey);
  let askedForKey = false;
  for (let rounds = 0; rounds < 8; rounds++) {
    const p = await channel.next(o.timeoutMs, o.signal);
    if (p === undefined) throw new GatewayError("GW_UPSTREAM_AUTH", "the target closed the connection during login");
    seq = (p.lastSeq + 1) & 0xff;
    const reply = decodeAuthReply(p.payload, caps);
    switch (reply.type) {
      case "ok":
        return { channel, handshake: hs, capabilities: caps, ok: reply.ok, tls };
      case "err":
        // The target's message names the account, never the password.
        throw new GatewayError("GW_UPSTREAM_AUTH", `the target refused the gateway's login (${reply.err.code}): ${reply.err.message.slice(0, 200)}`);
      case "switch": {
        nonce = reply.data;
        current = reply.plugin;
        const data = authData(current, password, nonce, tls);
        if (data === undefined) throw new GatewayError("GW_UPSTREAM_AUTH", `the target asks for the ${current.slice(0, 40)} authentication plugin, which the gateway does not support`);
        seq = channel.write(data, seq);
        break;
      }
      case "more": {
        if (current !== "caching_sha2_password" && current !== "sha256_password") throw new GatewayError("GW_UPSTREAM_AUTH", "unexpected data from the target during login");
        const b = reply.data;
        if (b.length === 1 && b[0] === 0x03) break; // fast authentication succeeded: OK follows
        if (b.length === 1 && b[0] === 0x04) {
          if (tls) seq = channel.write(Buffer.concat([Buffer.from(password, "utf8"), Buffer.from([0])]), seq);
          else if (publicKey !== undefined) seq = channel.write(rsaEncryptPassword(password, nonce, publicKey), seq);
          else {
            if (mode === "require") throw new GatewayError("GW_UPSTREAM_TLS", "caching_sha2_password full authentication needs TLS or the target's public key");
            askedForKey = true;
            seq = channel.write(Buffer.from([0x02]), seq);
          }
          break;
        }
        if (askedForKey && b.includes("-----BEGIN PUBLIC KEY-----")) {
          publicKey = b.toString("latin1");
          seq = channel.write(rsaEncryptPassword(password, nonce, publicKey), seq);
          break;
        }
        throw new GatewayError("GW_UPSTREAM_AUTH", "unexpected data from the target during login");
      }
    }
  }
  throw new GatewayError("GW_UPSTREAM_AUTH", "the target's login did not finish");
}

/** The first auth response for `plugin`, or undefined when the gateway cannot answer it. */
function authData(plugin: string, password: string, nonce: Buffer, tls: boolean): Buffer | undefined {
  switch (plugin) {
    case "mysql_native_password":
      return nativePasswordScramble(password, nonce);
    case "caching_sha2_password":
      return cachingSha2Scramble(password, nonce);
    case "client_ed25519":
      return ed25519Response(password, nonce);
    case "mysql_clear_password":
      // Only over TLS: a clear password on an unencrypted leg could be read on the way.
      return tls ? Buffer.concat([Buffer.from(password, "utf8"), Buffer.from([0])]) : undefined;
    default:
      return undefined;
  }
}

/**
 * `KILL QUERY id` on a side connection (statement timeouts, row limits): the target stops the
 * running statement of the session `connectionId`. Best effort; resolves either way.
 */
export async function killQuery(connection: MysqlConnection, connectionId: number, o: TargetOptions): Promise<boolean> {
  let link: TargetLink | undefined;
  try {
    link = await connectTarget(connection, { capabilities: CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.LONG_PASSWORD | CAP.TRANSACTIONS, charset: DEFAULT_CHARSET, maxPacketSize: 1 << 24, attributes: new Map([["program_name", "airlock-kill"]]) }, o);
    link.channel.write(Buffer.concat([Buffer.from([COM.QUERY]), Buffer.from(`KILL QUERY ${connectionId}`, "latin1")]), 0);
    const r = await link.channel.next(o.timeoutMs);
    return r !== undefined && r.payload[0] === 0x00;
  } catch {
    return false;
  } finally {
    link?.channel.socket.destroy();
  }
}
