/**
 * The MySQL/MariaDB protocol engine (issue 14): MySQL clients (mysql/mariadb CLI, mariadb-dump,
 * mysql2, MySQLdb, …) on one side, the gateway's own logged-in session to the target on the
 * other, the pipeline in between (session.ts).
 *
 * accept (a pre-auth slot) → HandshakeV10 offering caching_sha2_password (compression and LOCAL
 * INFILE not offered) → optional TLS (SSLRequest) → HandshakeResponse41: the database names the
 * connection, the password is the Airlock token. The gateway must read the token in the clear:
 * caching_sha2_password full authentication (AuthMoreData 0x04): the client sends it in the
 * clear over TLS, or RSA-encrypted with the gateway's public key (which it asks for with 0x02);
 * mysql_clear_password is accepted when the client chooses it. Any other plugin is switched to
 * caching_sha2_password. → authenticate, admit (the shared Gatekeeper) → dial and log in to the
 * target with the gateway's credential (upstream.ts) → OK to the client → serve.
 */
import { generateKeyPair, randomBytes, type KeyObject } from "node:crypto";
import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { TLSSocket, type SecureContext } from "node:tls";
import type { Logger } from "pino";
import type { MaskRule } from "../../core/decision.js";
import type { MysqlConnection } from "../../core/connection.js";
import type { Dialer, Gatekeeper, ProtocolEngine } from "../../core/engine.js";
import { GatewayError, toGatewayError } from "../../core/errors.js";
import type { Principal } from "../../core/principal.js";
import type { SecretRef } from "../../core/secret.js";
import type { RuleMasker } from "../../masking/index.js";
import { LiveConnections, PreAuthGate, type PreAuthSlot } from "../common/live.js";
import { clearPasswordOf, rsaDecryptPassword } from "./auth.js";
import { PacketChannel } from "./channel.js";
import { renderRefusal } from "./errors.js";
import { MysqlSession } from "./session.js";
import { connectTarget, type TargetLink, type TargetOptions } from "./upstream.js";
import type { MysqlPreviewer } from "./preview.js";
import type { PacketLimits } from "./wire/packets.js";
import {
  CAP,
  DEFAULT_CHARSET,
  STATUS,
  decodeHandshakeResponse,
  encodeAuthMoreData,
  encodeAuthSwitch,
  encodeErr,
  encodeHandshakeV10,
  encodeOk,
  hasCap,
  isSslRequest,
  type HandshakeResponse,
} from "./wire/protocol.js";

export interface MysqlEngineOptions {
  readonly gatekeeper: Gatekeeper;
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  /** Client-facing TLS (SSLRequest upgrade) when the gateway has a certificate. */
  readonly tls?: { readonly context: SecureContext; readonly require: boolean };
  readonly maxMessageBytes: number;
  readonly connectTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerAddress: number;
  readonly maxRowsPerStatement: number;
  readonly maxValueBytes: number;
  readonly logger: Logger;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  /** The MySQL connections an identity may use (a login that names no database). */
  readonly connectionsFor?: (principal: Principal) => readonly string[];
  /** Previews of held writes and planner estimates for a connection (absent: none). */
  readonly previewerFor?: (connection: MysqlConnection, target: TargetOptions) => MysqlPreviewer;
}

/** What the gateway offers clients. Not offered: compression, LOCAL INFILE, query attributes, optional metadata. */
const OFFERED =
  (CAP.LONG_PASSWORD |
    CAP.FOUND_ROWS |
    CAP.LONG_FLAG |
    CAP.CONNECT_WITH_DB |
    CAP.ODBC |
    CAP.IGNORE_SPACE |
    CAP.PROTOCOL_41 |
    CAP.INTERACTIVE |
    CAP.IGNORE_SIGPIPE |
    CAP.TRANSACTIONS |
    CAP.RESERVED |
    CAP.SECURE_CONNECTION |
    CAP.MULTI_STATEMENTS |
    CAP.MULTI_RESULTS |
    CAP.PS_MULTI_RESULTS |
    CAP.PLUGIN_AUTH |
    CAP.CONNECT_ATTRS |
    CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA |
    CAP.SESSION_TRACK |
    CAP.DEPRECATE_EOF) >>>
  0;

/**
 * The version the greeting announces: clients read features from it before the target is
 * known, so it is the last target version seen (MariaDB's `5.5.5-` prefix kept), else this.
 */
const DEFAULT_VERSION = "5.5.5-10.11.0-MariaDB-airlock";

const RSA_BITS = 4096;

const LOGIN_LIMITS: PacketLimits = { maxPayload: 64 * 1024 };

/** A stream over `raw` that yields `first` (bytes already read from it) before what follows. */
function withLeftover(raw: Socket, first: Buffer): Duplex {
  const d = new Duplex({
    read(): void {
      raw.resume();
    },
    write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
      raw.write(chunk, callback);
    },
    final(callback: (error?: Error | null) => void): void {
      raw.end(() => callback());
    },
    destroy(error: Error | null, callback: (error?: Error | null) => void): void {
      raw.destroy();
      callback(error);
    },
  });
  d.push(first);
  raw.on("data", (b: Buffer) => {
    if (!d.push(b)) raw.pause();
  });
  raw.once("end", () => d.push(null));
  raw.once("close", () => d.destroy());
  raw.on("error", (e: Error) => d.destroy(e));
  return d;
}

/** A 20-byte nonce of printable bytes (clients treat it as a NUL-terminated string). */
function nonce(): Buffer {
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) b[i] = 0x21 + ((b[i] ?? 0) % 94);
  return b;
}

export class MysqlEngine implements ProtocolEngine {
  readonly clientProtocol = "mysql" as const;
  readonly #o: MysqlEngineOptions;
  readonly #log: Logger;
  readonly #live = new LiveConnections();
  readonly #preAuth: PreAuthGate;
  readonly #limits: PacketLimits;
  #rsa: Promise<{ readonly publicPem: string; readonly privateKey: KeyObject }> | undefined;
  #serverVersion = DEFAULT_VERSION;
  #connectionIds = 1;

  constructor(options: MysqlEngineOptions) {
    this.#o = options;
    this.#log = options.logger.child({ protocol: "mysql" });
    this.#preAuth = new PreAuthGate({ maxTotal: options.maxUnauthenticated, maxPerAddress: options.maxUnauthenticatedPerAddress, timeoutMs: options.authTimeoutMs });
    this.#limits = { maxPayload: Math.max(options.maxMessageBytes, 1 << 20) };
    // Made now, in the thread pool: a 4096-bit key takes a moment, the first client should not wait.
    this.#rsaKey().catch((e: unknown) => this.#log.error({ err: e }, "could not make the RSA key for caching_sha2_password"));
  }

  handle(socket: Socket): Promise<void> {
    return this.#live.serve(socket, () => this.#serve(socket), (e) => this.#log.error({ err: e }, "unexpected error serving a MySQL client"));
  }

  close(): Promise<void> {
    return this.#live.drain();
  }

  /** The RSA key pair for caching_sha2_password without TLS: made once, on first need. */
  #rsaKey(): Promise<{ readonly publicPem: string; readonly privateKey: KeyObject }> {
    this.#rsa ??= new Promise((resolve, reject) => {
      // 4096 bits: RSA-OAEP carries at most 470 bytes, enough for an Airlock token (a 2048-bit
      // key carries 214, less than a token); longer credentials (some JWTs) need TLS.
      generateKeyPair("rsa", { modulusLength: RSA_BITS }, (err, publicKey, privateKey) => {
        if (err !== null) reject(err);
        else resolve({ publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(), privateKey });
      });
    });
    return this.#rsa;
  }

  async #serve(raw: Socket): Promise<void> {
    raw.setNoDelay(true);
    raw.on("error", () => undefined);
    const clientAddress = `${raw.remoteAddress ?? "?"}:${raw.remotePort ?? 0}`;
    const slot = this.#preAuth.acquire(raw.remoteAddress, () => raw.destroy());
    const channel = new PacketChannel(raw, LOGIN_LIMITS);
    if (slot === undefined) {
      channel.write(encodeErr({ code: 1040, sqlstate: "08004", message: "airlock: too many connections are logging in; try again shortly" }), 0);
      raw.end();
      return;
    }
    let client: Duplex = raw;
    try {
      const r = await this.#login(channel, raw, clientAddress, slot);
      if (r !== undefined) client = r;
    } catch (e) {
      const ge = toGatewayError(e, "GW_PROTOCOL");
      this.#log.debug({ err: ge.cause ?? ge, code: ge.code }, "MySQL login failed");
    } finally {
      slot.release();
      client.destroy();
      raw.destroy();
    }
  }

  /** The login; returns the socket in use (TLS or not) so the caller can close it. */
  async #login(channel: PacketChannel, raw: Socket, clientAddress: string, slot: PreAuthSlot): Promise<Duplex | undefined> {
    const scramble = nonce();
    const tls = this.#o.tls;
    const offered = (OFFERED | (tls === undefined ? 0 : CAP.SSL)) >>> 0;
    let seq = channel.write(
      encodeHandshakeV10({ serverVersion: this.#serverVersion, connectionId: this.#connectionIds++ & 0x7fffffff, scramble, capabilities: offered, charset: DEFAULT_CHARSET, status: STATUS.AUTOCOMMIT, authPlugin: "caching_sha2_password" }),
      0,
    );
    let p = await channel.next(slot.remainingMs());
    if (p === undefined) return undefined;
    let secure = false;
    let socket: Duplex = raw;
    if (isSslRequest(p.payload)) {
      if (tls === undefined) throw new GatewayError("GW_PROTOCOL", "TLS requested but not offered");
      channel.detach();
      const leftover = channel.reader.drain();
      // A client may send its TLS ClientHello right behind the SSLRequest (mysql2 does, without
      // waiting): those bytes are already read. A TLSSocket over a net.Socket reads the socket's
      // handle directly and never sees data unshifted onto it, so the handshake would hang;
      // it is built over a stream that yields the leftover first instead.
      const t = new TLSSocket(leftover.length > 0 ? withLeftover(raw, leftover) : raw, { isServer: true, secureContext: tls.context });
      t.on("error", () => undefined);
      this.#live.track(t);
      socket = t;
      channel.replaceSocket(t);
      secure = true;
      p = await channel.next(slot.remainingMs());
      if (p === undefined) return socket;
    }
    seq = (p.lastSeq + 1) & 0xff;
    let response: HandshakeResponse;
    try {
      response = decodeHandshakeResponse(p.payload);
    } catch (e) {
      const ge = toGatewayError(e, "GW_PROTOCOL");
      channel.write(renderRefusal(ge), seq);
      return socket;
    }
    const context = {
      clientProtocol: "mysql" as const,
      clientAddress,
      claimedUser: response.user.slice(0, 128),
      ...(response.database === undefined ? {} : { connection: response.database }),
    };
    const gk = this.#o.gatekeeper;
    const refuse = (e: unknown): Duplex => {
      channel.write(renderRefusal(toGatewayError(e, "GW_AUTH_INVALID")), seq);
      socket.end();
      return socket;
    };
    if (tls?.require === true && !secure) {
      const error = new GatewayError("GW_TLS_REQUIRED", "this gateway requires TLS (use --ssl / ssl-mode=REQUIRED)");
      await gk.authFailure(context, error);
      return refuse(error);
    }
    // The token in the clear, by the plugin the client chose (or caching_sha2 full authentication).
    let token: string;
    try {
      const r = await this.#readToken(channel, response, scramble, secure, seq, slot);
      token = r.token;
      seq = r.seq;
    } catch (e) {
      const ge = toGatewayError(e, "GW_AUTH_INVALID");
      await gk.authFailure(context, ge);
      return refuse(ge);
    }
    let principal: Principal;
    try {
      principal = await gk.authenticate(token, context);
    } catch (e) {
      return refuse(e);
    }
    // The database names the connection; a login without one (mariadb-dump selects its
    // database after logging in) is named by the user, or is the identity's only connection.
    let connectionName = response.database;
    if (connectionName === undefined) {
      const mine = this.#o.connectionsFor?.(principal) ?? [];
      connectionName = mine.includes(response.user) ? response.user : mine.length === 1 ? mine[0] : undefined;
    }
    if (connectionName === undefined) {
      const error = new GatewayError("GW_UNKNOWN_CONNECTION", "name the connection as the database (mysql -h GATEWAY -P PORT -u ANY -pTOKEN CONNECTION) or as the user");
      await gk.authFailure(context, error);
      return refuse(error);
    }
    const admission = await gk.admit(
      {
        clientProtocol: "mysql",
        connection: connectionName,
        principal,
        clientAddress,
        attributes: {
          ...(secure ? { tls: "on" } : {}),
          ...(response.attributes.get("program_name") === undefined ? {} : { program_name: response.attributes.get("program_name") ?? "" }),
        },
      },
      ["mysql"],
    );
    if (!admission.ok) {
      channel.write(renderRefusal(admission.refusal), seq);
      socket.end();
      return socket;
    }
    slot.release();
    const gate = admission.session;
    const connection = admission.connection;
    const capabilities = (response.capabilities & offered) >>> 0;
    let link: TargetLink;
    try {
      link = await connectTarget(
        connection,
        { capabilities, charset: response.charset, maxPacketSize: response.maxPacketSize, attributes: response.attributes },
        { dialer: this.#o.dialer, resolveSecret: this.#o.resolveSecret, timeoutMs: this.#o.connectTimeoutMs, signal: gate.signal, limits: this.#limits },
      );
    } catch (e) {
      const ge = toGatewayError(e, "GW_UPSTREAM_UNAVAILABLE");
      this.#log.warn({ err: ge.cause ?? ge, connection: connection.name, code: ge.code }, "could not open the target session");
      gate.observe({ type: "upstream.failure", session: gate.info, code: ge.code, message: ge.message });
      channel.write(renderRefusal(ge), seq);
      socket.end();
      await gate.end("error", { statements: 0, bytesFromClient: 0, bytesToClient: 0 }, ge.message);
      return socket;
    }
    this.#serverVersion = link.handshake.serverVersion;
    const untrack = this.#live.track(link.channel.socket);
    const session = new MysqlSession({
      gate,
      connection,
      client: channel,
      target: link.channel,
      targetId: link.handshake.connectionId,
      capabilities,
      limits: this.#limits,
      maskerFor: this.#o.maskerFor,
      maxRowsPerStatement: this.#o.maxRowsPerStatement,
      maxValueBytes: this.#o.maxValueBytes,
      logger: this.#log,
      ...(this.#o.previewerFor === undefined
        ? {}
        : { previewer: this.#o.previewerFor(connection, { dialer: this.#o.dialer, resolveSecret: this.#o.resolveSecret, timeoutMs: this.#o.connectTimeoutMs, limits: this.#limits }) }),
      killQuery: () => import("./upstream.js").then((m) => m.killQuery(connection, link.handshake.connectionId, { dialer: this.#o.dialer, resolveSecret: this.#o.resolveSecret, timeoutMs: this.#o.connectTimeoutMs, limits: this.#limits })),
    });
    try {
      const ready = await session.prepare();
      if (ready !== undefined) {
        channel.write(renderRefusal(ready), seq);
        socket.end();
        await gate.end("error", { statements: 0, bytesFromClient: 0, bytesToClient: 0 }, ready.message);
        return socket;
      }
      channel.write(encodeOk({ affectedRows: 0, lastInsertId: 0, status: link.ok.status, warnings: 0 }), seq);
      await session.run();
    } finally {
      untrack();
      link.channel.socket.destroy();
    }
    return socket;
  }

  async #readToken(channel: PacketChannel, response: HandshakeResponse, scramble: Buffer, secure: boolean, startSeq: number, slot: PreAuthSlot): Promise<{ token: string; seq: number }> {
    let seq = startSeq;
    const plugin = response.authPlugin ?? "mysql_native_password";
    if (plugin === "mysql_clear_password") return { token: clearPasswordOf(response.authResponse), seq };
    if (plugin !== "caching_sha2_password") {
      if (!hasCap(response.capabilities, CAP.PLUGIN_AUTH)) throw new GatewayError("GW_UNSUPPORTED", "the client cannot switch authentication plugins; use one that supports caching_sha2_password");
      seq = channel.write(encodeAuthSwitch("caching_sha2_password", Buffer.concat([scramble, Buffer.from([0])])), seq);
      const p = await channel.next(slot.remainingMs());
      if (p === undefined) throw new GatewayError("GW_AUTH_MISSING", "the client went away during login");
      seq = (p.lastSeq + 1) & 0xff;
      if (p.payload.length === 0) throw new GatewayError("GW_AUTH_MISSING", "no token presented: use an Airlock access token as the password");
    } else if (response.authResponse.length === 0) {
      throw new GatewayError("GW_AUTH_MISSING", "no token presented: use an Airlock access token as the password");
    }
    // The gateway cannot check a scramble (it does not know the token): full authentication.
    seq = channel.write(encodeAuthMoreData(Buffer.from([0x04])), seq);
    for (let round = 0; round < 3; round++) {
      const p = await channel.next(slot.remainingMs());
      if (p === undefined) throw new GatewayError("GW_AUTH_MISSING", "the client went away during login");
      seq = (p.lastSeq + 1) & 0xff;
      const data = p.payload;
      if (secure) return { token: clearPasswordOf(data), seq };
      if (data.length === 1 && data[0] === 0x02) {
        const key = await this.#rsaKey();
        seq = channel.write(encodeAuthMoreData(Buffer.from(key.publicPem, "latin1")), seq);
        continue;
      }
      if (data.length === RSA_BITS / 8 && this.#rsa !== undefined) {
        // RSA-OAEP with the gateway's key (the client fetched it, or has it pinned).
        const key = await this.#rsaKey();
        try {
          return { token: rsaDecryptPassword(data, scramble, key.privateKey), seq };
        } catch (e) {
          if (data[data.length - 1] !== 0) throw new GatewayError("GW_AUTH_INVALID", "invalid token", { cause: e });
        }
      }
      // The password in the clear (libmariadb sends it so on a connection it trusts, as
      // psql sends a cleartext password when asked): accepted as PostgreSQL's cleartext
      // password is; tls.require refuses clients without TLS before this.
      return { token: clearPasswordOf(data), seq };
    }
    throw new GatewayError("GW_PROTOCOL", "login did not finish");
  }
}
