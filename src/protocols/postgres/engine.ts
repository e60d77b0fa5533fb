/**
 * The PostgreSQL protocol engine: accept → TLS → authenticate the Airlock token → judge the
 * session → log in upstream with the real credential → serve (PgProxySession).
 * (protocol-flow: "Start-up", "SSL Session Encryption", "Canceling Requests in Progress".)
 *
 * Refusals reach the client as native ErrorResponses whose message starts with `airlock:`;
 * the codes follow the contract in INTERFACE.md (28P01, 3D000, 42501, …).
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket, type SecureContext } from "node:tls";
import type { Logger } from "pino";
import type { PostgresConnection } from "../../core/connection.js";
import type { MaskRule } from "../../core/decision.js";
import type { AuthContext, Dialer, Gatekeeper, ProtocolEngine, Refusal } from "../../core/engine.js";
import { GatewayError, isGatewayError, toGatewayError } from "../../core/errors.js";
import type { SessionJudge } from "../../core/judge.js";
import type { Principal } from "../../core/principal.js";
import type { LeaseDbCredentials, SecretRef } from "../../core/secret.js";
import { LiveConnections, PreAuthGate, type PreAuthSlot } from "../common/live.js";
import type { PgCatalog } from "./catalog.js";
import type { PgPreviewer } from "./preview.js";
import { renderRefusal, renderTooManyConnections } from "./errors.js";
import { parseOptions, readStartupSettings, type StartupRequest } from "./startup.js";
import { isProtectedSetting } from "../../policy/sql-settings.js";
import type { RuleMasker } from "./result-masking.js";
import { FramedSocket } from "./framed.js";
import { PgProxySession } from "./session.js";
import { UpstreamPool } from "./pool.js";
import { connectUpstream, sendCancel, type UpstreamSession } from "./upstream.js";
import {
  FrameReader,
  decodePassword,
  decodeStartupPacket,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeReadyForQuery,
} from "./wire/index.js";

export interface PostgresEngineOptions {
  /** Authentication and admission, shared by every engine (audits every failure). */
  readonly gatekeeper: Gatekeeper;
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  /** Dynamic credentials for connections with dynamicCredentials (Vault's database engine). */
  readonly leaseCredentials?: LeaseDbCredentials;
  readonly tls?: { readonly context: SecureContext; readonly require: boolean };
  readonly maxMessageBytes: number;
  readonly connectTimeoutMs: number;
  /** One deadline per client connection, from accept to authenticated. */
  readonly authTimeoutMs: number;
  /** Caps on connections not yet authenticated (in total, per source address). */
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerAddress: number;
  readonly maxRowsPerStatement: number;
  readonly maxValueBytes: number;
  readonly logger: Logger;
  /** The masker for a mask rule (content detectors and strategies). */
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  /** The target's catalog for a connection (shared with the policy evaluator). */
  readonly catalogFor: (connection: PostgresConnection) => PgCatalog;
  /** Previews of held writes and planner estimates for a connection (absent: none). */
  readonly previewerFor?: (connection: PostgresConnection) => PgPreviewer;
  /**
   * A CancelRequest whose key this engine does not hold: ask the other gateways and workers on
   * the store (issue 18); resolves once the holder has passed it on, or after a bound.
   */
  readonly cancelElsewhere?: (keyDigest: string) => Promise<void>;
}

/**
 * What travels between gateways for a cancel: a digest of (process id, secret key), so the key
 * itself never leaves the gateway that issued it, and the holder finds its session by it.
 */
export function cancelKeyDigest(processId: number, secretKey: Buffer): string {
  const pid = Buffer.alloc(4);
  pid.writeUInt32BE(processId >>> 0);
  return createHash("sha256").update("airlock-pg-cancel\0").update(pid).update(secretKey).digest("hex").slice(0, 32);
}

const PASSWORD_MESSAGE = 0x70; // 'p'
const TERMINATE_MESSAGE = 0x58; // 'X'
/** Initial delay of TCP keepalive probes on both legs. */
const KEEPALIVE_MS = 30_000;
/**
 * Before the client is authenticated, no message may be larger than this. An Airlock token is
 * < 4 KiB; an external JWT may be up to 16 KiB (MAX_EXTERNAL_TOKEN_LENGTH), refused as 28P01
 * above that by the authenticator; the margin keeps that refusal a precise one.
 */
const PRE_AUTH_MAX_MESSAGE_BYTES = 20 * 1024;

interface CancelEntry {
  /** Set once the session runs: withdraws a statement waiting for approval. */
  cancelHold?: () => boolean;
  /** Cleared when the session ends: no cancel is forwarded for it after that. */
  live: boolean;
  /**
   * Cancels on their way to the target. The target connection is handed to the pool (and so
   * to another client) only once they have all landed: a late one would cancel that client's
   * statement.
   */
  readonly inflight: Set<Promise<void>>;
  readonly secret: Buffer;
  readonly connection: PostgresConnection;
  readonly upstreamKey: { readonly processId: number; readonly secretKey: Buffer };
}

export class PostgresEngine implements ProtocolEngine {
  readonly clientProtocol = "postgres" as const;
  readonly #o: PostgresEngineOptions;
  readonly #log: Logger;
  readonly #live = new LiveConnections();
  readonly #preAuth: PreAuthGate;
  readonly #cancelKeys = new Map<number, CancelEntry>();
  /** cancelKeyDigest → process id, for cancels forwarded by other gateways. */
  readonly #cancelDigests = new Map<string, number>();
  /** Idle target sessions per connection (session pooling), created on first use. */
  readonly #pools = new Map<string, UpstreamPool>();

  constructor(options: PostgresEngineOptions) {
    this.#o = options;
    this.#log = options.logger.child({ protocol: "postgres" });
    this.#preAuth = new PreAuthGate({ maxTotal: options.maxUnauthenticated, maxPerAddress: options.maxUnauthenticatedPerAddress, timeoutMs: options.authTimeoutMs });
  }

  /** Connections accepted but not yet authenticated (tests, metrics). */
  get unauthenticated(): number {
    return this.#preAuth.size;
  }

  #poolFor(connection: PostgresConnection): UpstreamPool | undefined {
    const cfg = connection.pool;
    if (cfg === undefined || cfg.maxIdle === 0) return undefined;
    let pool = this.#pools.get(connection.name);
    if (pool === undefined) {
      pool = new UpstreamPool({ maxIdle: cfg.maxIdle, idleTimeoutMs: cfg.idleTimeoutMs, resetTimeoutMs: this.#o.connectTimeoutMs, logger: this.#log });
      this.#pools.set(connection.name, pool);
    }
    return pool;
  }

  handle(socket: Socket): Promise<void> {
    return this.#live.serve(socket, () => this.#serve(socket), (e) => this.#log.error({ err: e }, "unexpected error serving a client"));
  }

  async close(): Promise<void> {
    // Sessions are terminated through the registry by the runtime; connections still in
    // their handshake are cut by the drain.
    await this.#live.drain();
    for (const pool of this.#pools.values()) pool.close();
  }

  async #serve(socket: Socket): Promise<void> {
    socket.setNoDelay(true);
    // TCP keepalive: a client waiting for an approval sends nothing for minutes; idle-timeout
    // middleboxes must not drop it, and a peer that vanished is noticed.
    socket.setKeepAlive(true, KEEPALIVE_MS);
    const clientAddress = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    socket.on("error", () => undefined);
    const untrack: (() => void)[] = [];
    // Every socket of this connection (the TCP one, a TLS one over it): cut at the deadline.
    const sockets: Duplex[] = [socket];
    const slot = this.#preAuth.acquire(socket.remoteAddress, () => {
      this.#log.debug({ clientAddress }, "no authentication before the deadline: connection closed");
      for (const s of sockets) s.destroy();
    });
    if (slot === undefined) {
      // Refused before reading anything, as PostgreSQL does when it has no slot left ("sorry,
      // too many clients already"); libpq shows an ErrorResponse even in answer to SSLRequest.
      this.#log.info({ clientAddress }, "too many unauthenticated connections: refused");
      socket.end(renderTooManyConnections("too many connections waiting to authenticate; try again later"));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const framed = new FramedSocket(socket, new FrameReader({ maxMessageBytes: this.#o.maxMessageBytes, untagged: true }));
    try {
      await this.#session(framed, clientAddress, slot, (s) => {
        sockets.push(s);
        untrack.push(this.#live.track(s));
      });
    } finally {
      slot.release();
      for (const u of untrack) u();
    }
  }

  /** One client connection, from its first start-up packet; `track` adds sockets the drain must cut. */
  async #session(framed: FramedSocket, clientAddress: string, slot: PreAuthSlot, track: (s: Duplex) => void): Promise<void> {
    const o = this.#o;
    let tls = false;
    let params: ReadonlyMap<string, string> | undefined;
    let protocolVersion = 0;
    // Start-up: SSLRequest / GSSENCRequest / CancelRequest may come first.
    try {
      while (params === undefined) {
        const frame = await framed.read(slot.remainingMs());
        const packet = decodeStartupPacket(frame.body);
        switch (packet.kind) {
          case "ssl_request":
            if (tls) throw new GatewayError("GW_PROTOCOL", "SSLRequest after TLS was established");
            if (o.tls === undefined) {
              framed.write(Buffer.from("N"));
              break;
            }
            // Plaintext pipelined after SSLRequest would be treated as if it came over TLS.
            if (framed.reader.buffered > 0) throw new GatewayError("GW_PROTOCOL", "unexpected data after SSLRequest");
            framed.write(Buffer.from("S"));
            framed.replace(await upgradeToTls(framed, o.tls.context, slot.remainingMs()));
            track(framed.socket);
            tls = true;
            break;
          case "gssenc_request":
            framed.write(Buffer.from("N"));
            break;
          case "cancel": {
            framed.detach();
            // libpq's PQcancel (psql, psycopg) returns when this connection closes, and the
            // client's next statement follows at once: close it only after the target has
            // closed its own cancel connection, or the cancel lands on that next statement.
            await this.#cancel(packet.processId, packet.secretKey);
            const socket = framed.socket;
            socket.end();
            setTimeout(() => socket.destroy(), 1000).unref();
            return;
          }
          case "startup":
            params = packet.params;
            protocolVersion = packet.protocolVersion;
            break;
        }
      }
    } catch (e) {
      this.#log.debug({ err: e, clientAddress }, "start-up failed");
      const ge = toGatewayError(e, "GW_PROTOCOL");
      fatal(framed, ge.code === "GW_INTERNAL" ? new GatewayError("GW_PROTOCOL", "invalid start-up") : ge);
      return;
    }
    framed.reader.setTagged();
    framed.reader.setMaxMessageBytes(Math.min(PRE_AUTH_MAX_MESSAGE_BYTES, o.maxMessageBytes));

    const claimedUser = params.get("user") ?? "";
    const database = params.get("database") ?? claimedUser;
    const context: AuthContext = { clientProtocol: "postgres", connection: database, clientAddress, claimedUser };

    if (o.tls?.require === true && !tls) {
      const refusal = new GatewayError("GW_TLS_REQUIRED", "TLS is required: connect with sslmode=require");
      await o.gatekeeper.authFailure(context, new GatewayError("GW_TLS_REQUIRED", "client did not use TLS"));
      fatal(framed, refusal);
      return;
    }
    if (params.has("replication") && params.get("replication") !== "false" && params.get("replication") !== "0") {
      fatal(framed, new GatewayError("GW_UNSUPPORTED", "replication connections are not supported through the gateway"));
      return;
    }
    // Protocol 3.x: we speak 3.0 and say so (protocol-message-formats: NegotiateProtocolVersion).
    const minor = protocolVersion & 0xffff;
    const unknownOptions = [...params.keys()].filter((k) => k.startsWith("_pq_."));
    if (minor > 0 || unknownOptions.length > 0) framed.write(encodeNegotiateProtocolVersion(0, unknownOptions));

    // The Airlock token is the password.
    let principal: Principal;
    let authenticating = false;
    try {
      framed.write(encodeAuthenticationCleartextPassword());
      const frame = await framed.read(slot.remainingMs());
      // A client that gives up here (pg's end() during connect) says Terminate: PostgreSQL
      // closes without a word (protocol-flow "Termination"), and so does the gateway.
      if (frame.type === TERMINATE_MESSAGE) {
        framed.detach();
        framed.socket.destroy();
        return;
      }
      if (frame.type !== PASSWORD_MESSAGE) throw new GatewayError("GW_PROTOCOL", "expected a password message");
      const token = decodePassword(frame.body).toString("utf8");
      authenticating = true;
      principal = await o.gatekeeper.authenticate(token, context);
      // Authenticated: the connection leaves the pre-auth caps and its deadline.
      slot.release();
      framed.reader.setMaxMessageBytes(o.maxMessageBytes);
    } catch (e) {
      const ge = toGatewayError(e, "GW_AUTH_INVALID");
      // The gatekeeper audited what it refused; a credential refused before it (a token over the
      // pre-auth size limit, a timeout) is audited here. A protocol fault is not an auth failure.
      if (!authenticating && ge.code !== "GW_PROTOCOL") await o.gatekeeper.authFailure(context, ge);
      fatal(framed, ge);
      return;
    }

    // Settings the client asks for (its own parameters and `options`): forwarded, consumed by
    // the gateway (airlock.approval) or refused by name, never dropped silently.
    let request: StartupRequest;
    try {
      request = readStartupSettings(params);
    } catch (e) {
      fatal(framed, toGatewayError(e, "GW_PROTOCOL"));
      return;
    }
    const attributes: Record<string, string> = { tls: tls ? "on" : "off", user: claimedUser.slice(0, 200) };
    const app = request.settings.get("application_name");
    if (app !== undefined) attributes["application_name"] = app.slice(0, 200);
    // Forwarded to the target, so the guardrails must resolve names the way it will.
    const searchPath = request.settings.get("search_path");
    if (searchPath !== undefined) attributes["search_path"] = searchPath;
    if (request.approval !== undefined) attributes["airlock.approval"] = request.approval;
    // Unknown connections are judged too (and audited) by the shared admission step.
    const admitted = await o.gatekeeper.admit({ clientProtocol: "postgres", connection: database, principal, clientAddress, attributes }, ["postgres"]);
    if (!admitted.ok) {
      fatal(framed, admitted.refusal);
      return;
    }
    await this.#serveAdmitted(framed, admitted.session, admitted.connection, request.settings, track);
  }

  async #serveAdmitted(framed: FramedSocket, gate: SessionJudge, connection: PostgresConnection, settings: ReadonlyMap<string, string>, track: (s: Duplex) => void): Promise<void> {
    const o = this.#o;
    // A setting the session's policies own (a limit they inject, the session's identity) is
    // refused as SET of it would be: the client learns which, and nothing reaches the target.
    const owned = [...settings.keys()].find((name) => isProtectedSetting(name, gate.settings));
    if (owned !== undefined) {
      const refusal = new GatewayError("GW_POLICY_DENIED", `${owned} is set by the gateway for this session and cannot be changed at start-up`);
      this.#log.info({ sessionId: gate.info.id, setting: owned }, "start-up setting refused");
      fatal(framed, refusal);
      await gate.end("error", { statements: 0, bytesFromClient: 0, bytesToClient: 0 }, refusal.message);
      return;
    }
    const forward = new Map<string, string>(settings);
    // The client's encoding was checked (UTF8 only, startup.ts): the target speaks it too.
    forward.set("client_encoding", "UTF8");
    // The classifier reads string literals as standard_conforming_strings = on does; a target
    // (or a role / database default) with it off would read `'a\'…` differently. Pinned at
    // start-up, RESET and DISCARD ALL come back to it too.
    forward.set("standard_conforming_strings", "on");
    // Limits from policies (default_transaction_read_only) win over the client's. (A policy's
    // statementTimeout is timed by the gateway itself, see statement-timer.ts.)
    for (const [k, v] of Object.entries(gate.settings)) forward.set(k, v);

    const pool = this.#poolFor(connection);
    const poolKey = UpstreamPool.key(connection.name, forward);
    let upstream: UpstreamSession;
    try {
      upstream = pool?.acquire(poolKey) ?? await connectUpstream(connection, forward, {
        dialer: o.dialer,
        resolveSecret: o.resolveSecret,
        timeoutMs: o.connectTimeoutMs,
        maxMessageBytes: o.maxMessageBytes,
        signal: gate.signal,
        ...(o.leaseCredentials === undefined ? {} : { leaseCredentials: o.leaseCredentials }),
      });
    } catch (e) {
      const ge = toGatewayError(e, "GW_UPSTREAM_UNAVAILABLE");
      this.#log.warn({ err: ge.cause ?? ge, connection: connection.name, code: ge.code }, "could not open the target session");
      const refusal = new GatewayError(ge.code === "GW_INTERNAL" ? "GW_UPSTREAM_UNAVAILABLE" : ge.code, messageForUpstreamFailure(ge, connection.name));
      gate.observe({ type: "upstream.failure", session: gate.info, code: refusal.code, message: refusal.message });
      fatal(framed, refusal);
      await gate.end("error", { statements: 0, bytesFromClient: 0, bytesToClient: 0 }, refusal.message);
      return;
    }
    track(upstream.socket);
    if (upstream.socket instanceof Socket) upstream.socket.setKeepAlive(true, KEEPALIVE_MS);

    // Our own cancel key: the client never learns the target's.
    let processId = randomInt(1, 2 ** 31 - 1);
    while (this.#cancelKeys.has(processId)) processId = randomInt(1, 2 ** 31 - 1);
    const secret = randomBytes(4);
    const cancelEntry: CancelEntry = { secret, connection, upstreamKey: upstream.backendKey, live: true, inflight: new Set() };
    this.#cancelKeys.set(processId, cancelEntry);
    const digest = cancelKeyDigest(processId, secret);
    this.#cancelDigests.set(digest, processId);

    // One write for the whole log-in answer (a dozen small messages): one syscall, one packet.
    const hello: Buffer[] = [encodeAuthenticationOk()];
    for (const [name, value] of upstream.parameters) hello.push(encodeParameterStatus(name, value));
    hello.push(encodeBackendKeyData(processId, secret), ...upstream.notices, encodeReadyForQuery(upstream.txStatus));
    framed.write(Buffer.concat(hello));
    framed.detach();

    const session = new PgProxySession({
      gate,
      client: framed.socket,
      clientReader: framed.reader,
      upstream,
      maxRowsPerStatement: o.maxRowsPerStatement,
      maxValueBytes: o.maxValueBytes,
      logger: this.#log.child({ sessionId: gate.info.id }),
      catalog: o.catalogFor(connection),
      maskerFor: o.maskerFor,
      ...(o.previewerFor === undefined ? {} : { previewer: o.previewerFor(connection) }),
      cancelUpstream: () => this.#forwardCancel(cancelEntry),
      poolable: pool !== undefined && !this.#live.closing,
    });
    cancelEntry.cancelHold = () => session.cancelHold();
    let outcome: Awaited<ReturnType<PgProxySession["run"]>>;
    try {
      outcome = await session.run();
    } finally {
      cancelEntry.live = false;
      this.#cancelKeys.delete(processId);
      this.#cancelDigests.delete(digest);
    }
    // Cancels already on their way must land (on this session's idle backend, where PostgreSQL
    // ignores them) before the target connection can serve anyone else.
    if (cancelEntry.inflight.size > 0) await Promise.allSettled([...cancelEntry.inflight]);
    if (outcome.released !== undefined && pool !== undefined) void pool.release(poolKey, outcome.released);
    await gate.end(outcome.reason, outcome.stats, outcome.detail);
  }

  /**
   * Send a cancel for the session's statement to the target; resolves once the target has
   * closed its cancel connection (it has signalled the backend) or the attempt failed. Never
   * for a session that has ended.
   */
  #forwardCancel(entry: CancelEntry): Promise<void> {
    if (!entry.live) return Promise.resolve();
    const p = sendCancel(entry.connection, entry.upstreamKey, {
      dialer: this.#o.dialer,
      resolveSecret: this.#o.resolveSecret,
      timeoutMs: this.#o.connectTimeoutMs,
      maxMessageBytes: this.#o.maxMessageBytes,
    }).catch((e: unknown) => {
      this.#log.warn({ err: e, connection: entry.connection.name }, "could not forward a cancel request");
    });
    entry.inflight.add(p);
    void p.finally(() => entry.inflight.delete(p));
    return p;
  }

  async #cancel(processId: number, secretKey: Buffer): Promise<void> {
    const entry = this.#cancelKeys.get(processId);
    if (entry === undefined || entry.secret.length !== secretKey.length || !timingSafeEqual(entry.secret, secretKey)) {
      if (this.#o.cancelElsewhere === undefined) {
        this.#log.debug("cancel request with an unknown key ignored");
        return;
      }
      // Another gateway or worker behind the same address may hold the session.
      await this.#o.cancelElsewhere(cancelKeyDigest(processId, secretKey));
      return;
    }
    await this.#cancelEntry(entry);
  }

  async #cancelEntry(entry: CancelEntry): Promise<void> {
    // A statement waiting for approval has not reached the target: withdraw it here.
    if (entry.cancelHold?.() === true) return;
    await this.#forwardCancel(entry);
  }

  /**
   * A cancel that reached another gateway or worker, for a session this engine may hold.
   * Returns whether it holds it (the cancel has then been passed on).
   */
  async cancelByDigest(keyDigest: string): Promise<boolean> {
    const processId = this.#cancelDigests.get(keyDigest);
    const entry = processId === undefined ? undefined : this.#cancelKeys.get(processId);
    if (entry === undefined) return false;
    await this.#cancelEntry(entry);
    return true;
  }
}

/**
 * `airlock.approval=wait|async` as a start-up parameter, or inside `options` as
 * `-c airlock.approval=async` / `--airlock.approval=async` (what libpq's PGOPTIONS and drivers'
 * `options` send). Neither is forwarded to the target.
 */
export function approvalModeFrom(params: ReadonlyMap<string, string>): "wait" | "async" | "invalid" | undefined {
  let value = params.get("airlock.approval");
  const options = params.get("options");
  if (value === undefined && options !== undefined) {
    try {
      value = parseOptions(options).findLast(([name]) => name === "airlock.approval")?.[1];
    } catch {
      value = undefined; // malformed options are refused by readStartupSettings
    }
  }
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  return v === "wait" || v === "async" ? v : "invalid";
}

function messageForUpstreamFailure(e: GatewayError, connection: string): string {
  if (e.code === "GW_UPSTREAM_AUTH") return `connection "${connection}": the target refused the gateway's credential`;
  if (e.code === "GW_UPSTREAM_TLS") return `connection "${connection}": TLS to the target failed`;
  if (e.code === "GW_UNSUPPORTED") return `connection "${connection}": ${e.message}`;
  if (e.code === "GW_SECRET_UNRESOLVED") return `connection "${connection}": the gateway could not resolve its credential`;
  if (e.code === "GW_AGENT_UNAVAILABLE" || e.code === "GW_AGENT_REFUSED") return `connection "${connection}": ${e.message}`;
  return `connection "${connection}": the target is unavailable`;
}

/** A refusal before the session runs: FATAL ErrorResponse, then the connection closes. */
function fatal(framed: FramedSocket, refusal: Refusal): void {
  const socket = framed.socket;
  framed.detach();
  if (!socket.destroyed && !socket.writableEnded) socket.end(renderRefusal(refusal, "FATAL"));
  setTimeout(() => socket.destroy(), 1000).unref();
}

function upgradeToTls(framed: FramedSocket, context: SecureContext, timeoutMs: number): Promise<TLSSocket> {
  framed.detach();
  const secure = new TLSSocket(framed.socket, { isServer: true, secureContext: context });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new GatewayError("GW_PROTOCOL", "TLS handshake timed out"));
    }, timeoutMs);
    secure.once("secure", () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once("error", (e) => {
      clearTimeout(timer);
      reject(isGatewayError(e) ? e : new GatewayError("GW_PROTOCOL", "TLS handshake failed", { cause: e }));
    });
  });
}
