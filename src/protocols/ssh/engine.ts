/**
 * The SSH protocol engine (issue 6): an ssh2 server on the client side, an ssh2 client to the
 * target, and the pipeline in between. RFC 4252 (authentication), RFC 4254 (channels).
 *
 * accept → authenticate and admit (auth.ts; the user name selects the connection) → log in to
 * the target through the Dialer with the gateway's own credential, pinned host key
 * (upstream.ts) → serve channels: exec, shell (PTY, window changes), the sftp subsystem
 * (session.ts, channels.ts), direct-tcpip forwards (forward.ts). Everything else (agent and X11
 * forwarding, remote forwarding, env, other subsystems) is judged as a protocol request and
 * refused natively (requests.ts). Every command, shell line, channel and forward is judged
 * (audited) before it is forwarded; refusals are one `airlock: …` line on stderr and exit
 * status 126.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import ssh2, { type Connection as ServerClient } from "ssh2";
import type { MaskRule } from "../../core/decision.js";
import type { Dialer, Gatekeeper, ProtocolEngine } from "../../core/engine.js";
import { toGatewayError } from "../../core/errors.js";
import type { SecretRef } from "../../core/secret.js";
import { AsciicastWriter } from "../../recording/asciicast.js";
import { LiveConnections, PreAuthGate, type PreAuthSlot } from "../common/live.js";
import { SshAuthenticator, type RegisteredKey } from "./auth.js";
import { corkTogether } from "./bridge.js";
import { forward } from "./forward.js";
import { globalRequest, refuseRequest } from "./requests.js";
import { serveSession } from "./session.js";
import { reply, type ClientState, type SessionContext, type TextMasker } from "./state.js";
import { connectUpstream, upstreamSocket } from "./upstream.js";

export type { RegisteredKey } from "./auth.js";
export type { TextMasker } from "./state.js";

const { Server } = ssh2;

export interface SshEngineOptions {
  /** Authentication and admission, shared by every engine (audits every failure). */
  readonly gatekeeper: Gatekeeper;
  readonly dialer: Dialer;
  readonly publicKeys: readonly RegisteredKey[];
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  /** The gateway's host key (OpenSSH private key text). */
  readonly hostKey: string;
  readonly connectTimeoutMs: number;
  /** One deadline from accept to authenticated (config `limits.authTimeout`). */
  readonly authTimeoutMs: number;
  /** Unauthenticated connections held at once, in total and from one source address (config
   * `limits.maxUnauthenticated`, `limits.maxUnauthenticatedPerAddress`); more are closed at once. */
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerAddress: number;
  readonly logger: Logger;
  readonly maskerFor: (rule: MaskRule) => TextMasker;
  /** Where a session's asciicast recording goes. */
  readonly castPath: (sessionId: string) => string;
}

/**
 * Ciphers offered to clients (RFC 4253 §7.1: the client's first choice the server offers
 * wins): AES-GCM only. OpenSSH clients list chacha20-poly1305 and then AES-CTR (with an HMAC)
 * before AES-GCM, and through ssh2 both cost the gateway about twice the CPU per byte of AES-GCM
 * on CPUs with AES instructions (profiled on the scp path, bench/ssh-results.md). Every OpenSSH
 * since 6.2 and the ssh2 client have AES-GCM; a client without it cannot connect.
 */
const CLIENT_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"] as const;

export class SshEngine implements ProtocolEngine {
  readonly clientProtocol = "ssh" as const;
  readonly #o: SshEngineOptions;
  readonly #log: Logger;
  readonly #server: InstanceType<typeof Server>;
  readonly #auth: SshAuthenticator;
  readonly #live = new LiveConnections();
  /** Accepted sockets by `ip:port` and their pre-auth slot, until they authenticate or close. */
  readonly #byAddress = new Map<string, { socket: Socket; slot: PreAuthSlot }>();
  /** Caps and one deadline for connections that have not authenticated (shared with PostgreSQL's front door design). */
  readonly #preAuth: PreAuthGate;

  constructor(options: SshEngineOptions) {
    this.#o = options;
    this.#log = options.logger.child({ protocol: "ssh" });
    this.#auth = new SshAuthenticator(options.gatekeeper, options.publicKeys);
    this.#preAuth = new PreAuthGate({ maxTotal: options.maxUnauthenticated, maxPerAddress: options.maxUnauthenticatedPerAddress, timeoutMs: options.authTimeoutMs });
    this.#server = new Server({ hostKeys: [options.hostKey], ident: "Airlock", algorithms: { cipher: [...CLIENT_CIPHERS] } }, (client, info) => {
      this.#onClient(client, `${info.ip}:${info.port}`, info.header.identRaw.slice(0, 100));
    });
  }

  handle(socket: Socket): Promise<void> {
    return this.#live.serve(socket, () => this.#serve(socket), (e) => this.#log.error({ err: e }, "unexpected error serving a client"));
  }

  /** Hand the socket to ssh2; resolves when it closes. */
  #serve(socket: Socket): Promise<void> {
    socket.setNoDelay(true);
    const done = new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
    });
    socket.on("error", () => undefined);
    const address = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    // Unauthenticated connections are capped (in total and per source address) and get one
    // deadline from accept to authenticated, whatever they send meanwhile.
    const slot = this.#preAuth.acquire(socket.remoteAddress, () => {
      this.#log.debug({ clientAddress: address }, "no authentication before the deadline: connection closed");
      socket.destroy();
    });
    if (slot === undefined) {
      // Like OpenSSH's MaxStartups: closed before the version exchange, nothing read.
      this.#log.info({ clientAddress: address }, "too many unauthenticated connections: refused");
      socket.destroy();
      return done;
    }
    this.#byAddress.set(address, { socket, slot });
    void done.finally(() => {
      slot.release();
      this.#byAddress.delete(address);
    });
    this.#server.injectSocket(socket);
    return done;
  }

  /** Unauthenticated connections held now (tests, metrics). */
  get unauthenticated(): number {
    return this.#preAuth.size;
  }

  close(): Promise<void> {
    return this.#live.drain();
  }

  #onClient(client: ServerClient, clientAddress: string, ident: string): void {
    const state: ClientState = { clientAddress, ident, authFailures: 0, seq: 0, bytesFromClient: 0, bytesToClient: 0, channels: new Set(), running: new Set() };
    client.on("error", (e) => this.#log.debug({ err: e, clientAddress }, "client connection error"));
    client.on("authentication", (ctx) => {
      const admitted = (): void => {
        this.#byAddress.get(state.clientAddress)?.slot.release();
      };
      this.#auth.authenticate(client, ctx, state, admitted).catch((e: unknown) => {
        this.#log.error({ err: e }, "authentication failed unexpectedly");
        ctx.reject();
      });
    });
    client.on("ready", () => this.#ready(client, state));
    client.on("close", () => {
      this.#endSession(state).catch((e: unknown) => this.#log.error({ err: e }, "could not end an SSH session cleanly"));
    });
  }

  /** The admitted session: dial the target, then serve the client's channels and requests. */
  #ready(client: ServerClient, state: ClientState): void {
    const gate = state.gate;
    const connection = state.connection;
    if (gate === undefined || connection === undefined) {
      client.end();
      return;
    }
    const ctx: SessionContext = {
      state,
      gate,
      log: this.#log,
      maskerFor: this.#o.maskerFor,
      clientSocket: () => this.#byAddress.get(state.clientAddress)?.socket,
    };
    state.cast = new AsciicastWriter(this.#o.castPath(gate.info.id));
    const upstream = connectUpstream(connection, { dialer: this.#o.dialer, resolveSecret: this.#o.resolveSecret, timeoutMs: this.#o.connectTimeoutMs, signal: gate.signal });
    state.upstream = upstream;
    upstream.then(
      (u) => {
        state.upstreamClient = u;
        const clientSocket = ctx.clientSocket();
        const targetSocket = upstreamSocket(u);
        if (clientSocket !== undefined && targetSocket !== undefined) corkTogether(clientSocket, targetSocket);
        u.on("close", () => {
          state.endReason ??= "upstream_closed";
          client.end();
        });
        u.on("error", (e) => this.#log.debug({ err: e }, "target connection error"));
      },
      (e: unknown) => {
        const ge = toGatewayError(e, "GW_UPSTREAM_UNAVAILABLE");
        this.#log.warn({ err: ge.cause ?? ge, connection: connection.name, code: ge.code }, "could not open the target session");
        state.endReason = "error";
        state.endDetail = ge.message;
        gate.observe({ type: "upstream.failure", session: gate.info, code: ge.code, message: ge.message });
      },
    );
    client.on("session", (accept) => {
      serveSession(ctx, accept());
    });
    client.on("tcpip", (accept, reject, info) => {
      forward(ctx, accept, reject, info).catch((e: unknown) => {
        this.#log.error({ err: e }, "forwarding failed");
        reply(reject);
      });
    });
    // Remote forwarding (tcpip-forward), streamlocal and their cancels: judged, then refused
    // (ssh2 answers global requests in order itself, and refuses any other global request,
    // e.g. keepalive@openssh.com, with no handler, which is what a keepalive expects). Before
    // authentication ssh2 refuses them all without emitting anything: no session to audit
    // them in, and nothing was asked of the target.
    client.on("request", (_accept, reject, name, info) => {
      void refuseRequest(ctx, globalRequest(name, info), reject);
    });
  }

  async #endSession(state: ClientState): Promise<void> {
    const gate = state.gate;
    if (gate === undefined) return;
    state.upstreamClient?.end();
    await state.cast?.close();
    await gate.end(state.endReason ?? "client_closed", { statements: state.seq, bytesFromClient: state.bytesFromClient, bytesToClient: state.bytesToClient }, state.endDetail);
  }
}
