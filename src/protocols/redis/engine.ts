/**
 * The Redis protocol engine (issue 14): RESP2/RESP3 clients (redis-cli, ioredis, node-redis …)
 * on one side, the gateway's own logged-in session to the target on the other, the pipeline in
 * between (session.ts).
 *
 * accept (a pre-auth slot: one deadline from accept to authenticated, caps in total and per
 * address) → the client logs in with `AUTH CONNECTION TOKEN`, `HELLO <2|3> AUTH CONNECTION
 * TOKEN [SETNAME name]`, or `AUTH TOKEN` when the identity may use exactly one Redis
 * connection; anything else first is answered `-NOAUTH` (QUIT closes) → admit (the shared
 * Gatekeeper) → dial and log in to the target with the gateway's credential (upstream.ts),
 * read its command table once per connection (commands.ts) → serve.
 * Refusals: `-WRONGPASS airlock: …` for a bad token or unknown connection, `-NOPERM airlock: …`
 * for an access or policy deny (errors.ts).
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import type { RedisConnection } from "../../core/connection.js";
import type { MaskRule } from "../../core/decision.js";
import type { Dialer, Gatekeeper, ProtocolEngine } from "../../core/engine.js";
import { GatewayError, toGatewayError } from "../../core/errors.js";
import type { Principal } from "../../core/principal.js";
import type { SecretRef } from "../../core/secret.js";
import type { RuleMasker } from "../../masking/index.js";
import { LiveConnections, PreAuthGate, type PreAuthSlot } from "../common/live.js";
import { CommandTable } from "./commands.js";
import { renderRefusal } from "./errors.js";
import { RedisSession } from "./session.js";
import { connectTarget, fetchCommandTable, type TargetLink } from "./upstream.js";
import { DEFAULT_RESP_LIMITS, RespError, RespReader, commandArgs, encodeError, encodeResp, type RespFrame, type RespLimits, type RespValue } from "./wire/resp.js";

export interface RedisEngineOptions {
  readonly gatekeeper: Gatekeeper;
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  /** The Redis connections an identity may use (for a bare `AUTH TOKEN`). */
  readonly connectionsFor: (principal: Principal) => readonly string[];
  /** Client-facing TLS: the listener wraps sockets itself when given (Redis TLS has no upgrade). */
  readonly tls?: { readonly wrap: (socket: Socket) => TLSSocket; readonly require: boolean };
  readonly maxMessageBytes: number;
  readonly connectTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerAddress: number;
  readonly maxRecordedBytes: number;
  readonly logger: Logger;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
}

/** How long a target's command table is trusted before it is read again (modules come and go). */
const TABLE_TTL_MS = 10 * 60_000;

interface Login {
  readonly connection: string | undefined;
  readonly token: string;
  readonly hello?: { readonly protover: 2 | 3; readonly setName?: Buffer };
}

export class RedisEngine implements ProtocolEngine {
  readonly clientProtocol = "redis" as const;
  readonly #o: RedisEngineOptions;
  readonly #log: Logger;
  readonly #live = new LiveConnections();
  readonly #preAuth: PreAuthGate;
  readonly #limits: RespLimits;
  readonly #tables = new Map<string, { table: CommandTable; at: number }>();

  constructor(options: RedisEngineOptions) {
    this.#o = options;
    this.#log = options.logger.child({ protocol: "redis" });
    this.#preAuth = new PreAuthGate({ maxTotal: options.maxUnauthenticated, maxPerAddress: options.maxUnauthenticatedPerAddress, timeoutMs: options.authTimeoutMs });
    this.#limits = { ...DEFAULT_RESP_LIMITS, maxBulkBytes: options.maxMessageBytes };
  }

  handle(socket: Socket): Promise<void> {
    return this.#live.serve(socket, () => this.#serve(socket), (e) => this.#log.error({ err: e }, "unexpected error serving a Redis client"));
  }

  close(): Promise<void> {
    return this.#live.drain();
  }

  async #serve(raw: Socket): Promise<void> {
    raw.setNoDelay(true);
    raw.on("error", () => undefined);
    const clientAddress = `${raw.remoteAddress ?? "?"}:${raw.remotePort ?? 0}`;
    const slot = this.#preAuth.acquire(raw.remoteAddress, () => raw.destroy());
    if (slot === undefined) {
      raw.end(encodeError("ERR airlock: too many connections are logging in; try again shortly"));
      return;
    }
    let client: Duplex = raw;
    if (this.#o.tls !== undefined) {
      const t = this.#o.tls.wrap(raw);
      t.on("error", () => undefined);
      this.#live.track(t);
      client = t;
    }
    try {
      await this.#session(client, clientAddress, slot);
    } finally {
      slot.release();
      client.destroy();
    }
  }

  async #session(client: Duplex, clientAddress: string, slot: PreAuthSlot): Promise<void> {
    const reader = new RespReader({ limits: { ...this.#limits, maxBulkBytes: Math.min(this.#limits.maxBulkBytes, 64 * 1024) }, allowInline: true });
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    const frames = new FrameQueue(client, reader);
    for (;;) {
      const frame = await frames.next(slot.remainingMs());
      if (frame === undefined) return;
      let login: Login | undefined;
      try {
        login = this.#loginOf(frame);
      } catch (e) {
        client.end(encodeError(`ERR ${e instanceof RespError ? e.message : "protocol error"}`));
        return;
      }
      if (login === undefined) {
        const name = frame.value.type === "array" && frame.value.value?.[0]?.type === "bulk" ? frame.value.value[0].value?.toString("latin1").toLowerCase() : undefined;
        if (name === "quit") {
          client.end(encodeResp({ type: "simple", value: "OK" }));
          return;
        }
        if (name === "hello") client.write(encodeError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
        else client.write(encodeError("NOAUTH Authentication required."));
        continue;
      }
      const served = await this.#login(client, clientAddress, login, frames, slot);
      if (!served) continue;
      await closed;
      return;
    }
  }

  /** AUTH / HELLO … AUTH from the client, or undefined for anything else. */
  #loginOf(frame: RespFrame): Login | undefined {
    const args = commandArgs(frame.value);
    const name = args[0]?.toString("latin1").toLowerCase();
    const text = (i: number): string | undefined => args[i]?.toString("utf8");
    if (name === "auth") {
      if (args.length === 2) return { connection: undefined, token: text(1) ?? "" };
      if (args.length === 3) return { connection: text(1), token: text(2) ?? "" };
      throw new RespError("GW_PROTOCOL", "wrong number of arguments for 'auth' command");
    }
    if (name !== "hello") return undefined;
    const v = args.length > 1 ? text(1) : "2";
    if (v !== "2" && v !== "3") throw new RespError("GW_PROTOCOL", "NOPROTO unsupported protocol version");
    let auth: { user: string; pass: string } | undefined;
    let setName: Buffer | undefined;
    for (let i = 2; i < args.length; i++) {
      const opt = args[i]?.toString("latin1").toLowerCase();
      if (opt === "auth" && i + 2 < args.length) {
        auth = { user: text(i + 1) ?? "", pass: text(i + 2) ?? "" };
        i += 2;
      } else if (opt === "setname" && i + 1 < args.length) {
        setName = args[i + 1];
        i += 1;
      } else {
        throw new RespError("GW_PROTOCOL", `Syntax error in HELLO option '${args[i]?.toString("utf8").slice(0, 40) ?? ""}'`);
      }
    }
    if (auth === undefined) return undefined;
    return { connection: auth.user, token: auth.pass, hello: { protover: v === "3" ? 3 : 2, ...(setName === undefined ? {} : { setName }) } };
  }

  /** Authenticate, admit, dial; true once a session was served (the connection is then done). */
  async #login(client: Duplex, clientAddress: string, login: Login, frames: FrameQueue, slot: PreAuthSlot): Promise<boolean> {
    const gk = this.#o.gatekeeper;
    const context = { clientProtocol: "redis" as const, clientAddress, ...(login.connection === undefined ? {} : { connection: login.connection, claimedUser: login.connection }) };
    let principal: Principal;
    try {
      principal = await gk.authenticate(login.token, context);
    } catch (e) {
      client.write(renderRefusal(toGatewayError(e, "GW_AUTH_INVALID")));
      return false;
    }
    let connectionName = login.connection;
    if (connectionName === undefined || connectionName === "default") {
      const mine = this.#o.connectionsFor(principal);
      if (mine.length !== 1) {
        const error = new GatewayError(
          "GW_UNKNOWN_CONNECTION",
          mine.length === 0 ? "this identity may use no Redis connection" : `name the connection as the user: AUTH CONNECTION TOKEN (this identity may use ${mine.length} Redis connections)`,
        );
        await gk.authFailure(context, error);
        client.write(renderRefusal(error));
        return false;
      }
      connectionName = mine[0] ?? "";
    }
    const admission = await gk.admit({ clientProtocol: "redis", connection: connectionName, principal, clientAddress, attributes: login.hello === undefined ? {} : { resp: String(login.hello.protover) } }, ["redis"]);
    if (!admission.ok) {
      client.write(renderRefusal(admission.refusal));
      return false;
    }
    slot.release();
    const gate = admission.session;
    const connection = admission.connection;
    let link: TargetLink;
    let table: CommandTable;
    try {
      link = await connectTarget(connection, login.hello === undefined ? {} : { hello: login.hello }, {
        dialer: this.#o.dialer,
        resolveSecret: this.#o.resolveSecret,
        timeoutMs: this.#o.connectTimeoutMs,
        signal: gate.signal,
        limits: this.#limits,
      });
      table = await this.#tableFor(connection, link);
    } catch (e) {
      const ge = toGatewayError(e, "GW_UPSTREAM_UNAVAILABLE");
      this.#log.warn({ err: ge.cause ?? ge, connection: connection.name, code: ge.code }, "could not open the target session");
      gate.observe({ type: "upstream.failure", session: gate.info, code: ge.code, message: ge.message });
      client.end(renderRefusal(ge));
      await gate.end("error", { statements: 0, bytesFromClient: 0, bytesToClient: 0 }, ge.message);
      return true;
    }
    const untrack = this.#live.track(link.socket);
    client.write(link.hello === undefined ? encodeResp({ type: "simple", value: "OK" }) : encodeResp(link.hello));
    frames.detach();
    // The login reader's small bulk limit was for unauthenticated input; the session's is the configured one.
    const clientReader = new RespReader({ limits: this.#limits, allowInline: true });
    clientReader.push(frames.reader.drain());
    const session = new RedisSession({
      gate,
      connection,
      client,
      clientReader,
      target: link.socket,
      targetReader: link.reader,
      table,
      resp3: login.hello?.protover === 3,
      maskerFor: this.#o.maskerFor,
      limits: this.#limits,
      maxRecordedBytes: this.#o.maxRecordedBytes,
      logger: this.#log,
    });
    try {
      await session.run();
    } finally {
      untrack();
      link.socket.destroy();
    }
    return true;
  }

  async #tableFor(connection: RedisConnection, link: TargetLink): Promise<CommandTable> {
    const cached = this.#tables.get(connection.name);
    if (cached !== undefined && Date.now() - cached.at < TABLE_TTL_MS) return cached.table;
    const reply: RespValue = await fetchCommandTable(link, this.#limits);
    const table = new CommandTable(reply);
    if (table.size === 0) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target's command table is empty");
    this.#tables.set(connection.name, { table, at: Date.now() });
    return table;
  }
}

/** Client frames one at a time during login (after it, the session reads the same reader). */
class FrameQueue {
  readonly reader: RespReader;
  readonly #socket: Duplex;
  #waiter: (() => void) | undefined;
  #closed = false;
  readonly #onData = (b: Buffer): void => {
    this.reader.push(b);
    this.#waiter?.();
  };
  readonly #onClose = (): void => {
    this.#closed = true;
    this.#waiter?.();
  };

  constructor(socket: Duplex, reader: RespReader) {
    this.#socket = socket;
    this.reader = reader;
    socket.on("data", this.#onData);
    socket.on("end", this.#onClose);
    socket.on("close", this.#onClose);
  }

  /** The next frame, or undefined when the client went away or the deadline passed. Throws RespError. */
  async next(timeoutMs: number): Promise<RespFrame | undefined> {
    for (;;) {
      let frame: RespFrame | undefined;
      try {
        frame = this.reader.next();
      } catch (e) {
        const why = e instanceof RespError ? e.message : "protocol error";
        this.#socket.end(encodeError(`ERR ${why}`));
        return undefined;
      }
      if (frame !== undefined) {
        const args = frame.value.type === "array" ? frame.value.value : null;
        if (args !== null && args.length === 0) continue;
        return frame;
      }
      if (this.#closed) return undefined;
      const timedOut = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(true), timeoutMs);
        this.#waiter = () => {
          clearTimeout(t);
          resolve(false);
        };
      });
      this.#waiter = undefined;
      if (timedOut) {
        this.#socket.end(encodeError("ERR airlock: authentication timed out"));
        return undefined;
      }
    }
  }

  detach(): void {
    this.#socket.off("data", this.#onData);
    this.#socket.off("end", this.#onClose);
    this.#socket.off("close", this.#onClose);
  }
}
