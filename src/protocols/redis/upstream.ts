/**
 * The gateway's own session to a Redis target: dial (through the Dialer), TLS when the
 * connection asks for it (the certificate verified against `tlsCa` or the system CAs, and the
 * host name), then log in with the gateway-held credential — `HELLO <protover> AUTH user pass`
 * when the client spoke HELLO, else `AUTH [user] pass` — and SELECT the connection's database.
 * The credential never reaches the client: the target's refusal is reported without it.
 */
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import type { RedisConnection } from "../../core/connection.js";
import { dialTargetOf, type DialTarget, type Dialer } from "../../core/engine.js";
import { GatewayError } from "../../core/errors.js";
import { describeSecretRef, type SecretRef } from "../../core/secret.js";
import { RespReader, encodeCommand, type RespLimits, type RespValue } from "./wire/resp.js";

export interface TargetLink {
  readonly socket: Duplex;
  /** The reader that already holds whatever the target sent after the login (nothing, normally). */
  readonly reader: RespReader;
  /** The target's answer to HELLO, when the client asked with HELLO. */
  readonly hello?: RespValue;
}

export interface TargetOptions {
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly limits: RespLimits;
}

export interface LoginRequest {
  /** The client's HELLO: its protocol version and, if given, SETNAME. Absent for AUTH. */
  readonly hello?: { readonly protover: 2 | 3; readonly setName?: Buffer };
}

/** Read replies one at a time from a socket (login phase only). */
class ReplyQueue {
  readonly reader: RespReader;
  readonly #socket: Duplex;
  #waiter: { resolve: (v: RespValue) => void; reject: (e: unknown) => void } | undefined;
  #failure: unknown;
  readonly #onData = (b: Buffer): void => {
    this.reader.push(b);
    this.#deliver();
  };
  readonly #onEnd = (): void => {
    this.#failure ??= new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target closed the connection during login");
    this.#deliver();
  };
  readonly #onError = (e: unknown): void => {
    this.#failure ??= new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the connection to the target failed during login", { cause: e });
    this.#deliver();
  };

  constructor(socket: Duplex, limits: RespLimits) {
    this.#socket = socket;
    this.reader = new RespReader({ limits });
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onEnd);
    socket.on("error", this.#onError);
  }

  #deliver(): void {
    const w = this.#waiter;
    if (w === undefined) return;
    try {
      const f = this.reader.next();
      if (f !== undefined) {
        this.#waiter = undefined;
        w.resolve(f.value);
        return;
      }
    } catch (e) {
      this.#waiter = undefined;
      w.reject(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target answered the login with something that is not RESP", { cause: e }));
      return;
    }
    if (this.#failure !== undefined) {
      this.#waiter = undefined;
      w.reject(this.#failure);
    }
  }

  next(): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#deliver();
    });
  }

  detach(): void {
    this.#socket.off("data", this.#onData);
    this.#socket.off("end", this.#onEnd);
    this.#socket.off("close", this.#onEnd);
    this.#socket.off("error", this.#onError);
  }
}

/** The text of an error reply, without anything the gateway sent (the target never echoes the password). */
function refused(what: string, v: RespValue): GatewayError {
  const text = v.type === "error" ? v.value : v.type === "bulkError" ? v.value.toString("utf8") : `unexpected ${v.type} reply`;
  return new GatewayError("GW_UPSTREAM_AUTH", `the target refused the gateway's ${what}: ${text.slice(0, 200)}`);
}

/** The agent-side login of a connection whose credential lives on its agent (issue 19). */
function agentLoginOf(c: RedisConnection): DialTarget["agentLogin"] {
  if (c.credentialsOn !== "agent" || c.password === undefined) return undefined;
  if (c.password.kind !== "env" && c.password.kind !== "file") throw new GatewayError("GW_CONFIG", `connection "${c.name}": an agent-side credential must be env: or file:`);
  return { type: "redis", ...(c.user === undefined ? {} : { user: c.user }), password: describeSecretRef(c.password) };
}

async function dial(c: RedisConnection, o: TargetOptions): Promise<Duplex> {
  const agentLogin = agentLoginOf(c);
  const raw = await o.dialer.dial({ ...dialTargetOf(c), ...(agentLogin === undefined ? {} : { agentLogin }) }, { timeoutMs: o.timeoutMs, ...(o.signal === undefined ? {} : { signal: o.signal }) });
  if (!c.tls) return raw;
  const ca = c.tlsCa === undefined ? undefined : await o.resolveSecret(c.tlsCa);
  return new Promise<Duplex>((resolve, reject) => {
    const s = tlsConnect({ socket: raw, servername: c.tlsServerName ?? c.host, ...(ca === undefined ? {} : { ca }), rejectUnauthorized: true });
    const timer = setTimeout(() => fail(new Error("TLS handshake timed out")), o.timeoutMs);
    const fail = (e: unknown): void => {
      clearTimeout(timer);
      s.destroy();
      raw.destroy();
      reject(new GatewayError("GW_UPSTREAM_TLS", "TLS to the target failed", { cause: e }));
    };
    s.once("error", fail);
    s.once("secureConnect", () => {
      clearTimeout(timer);
      s.off("error", fail);
      resolve(s);
    });
  });
}

/** Open and log in. Rejects with a GatewayError (GW_UPSTREAM_*), the socket closed. */
export async function connectTarget(c: RedisConnection, login: LoginRequest, o: TargetOptions): Promise<TargetLink> {
  const socket = await dial(c, o);
  const q = new ReplyQueue(socket, o.limits);
  try {
    // With credentialsOn: agent the agent already logged in (AUTH) before handing over the stream.
    const password = c.password === undefined || c.credentialsOn === "agent" ? undefined : await o.resolveSecret(c.password);
    const user = c.user ?? "default";
    let hello: RespValue | undefined;
    if (login.hello !== undefined) {
      const args: (string | Buffer)[] = ["HELLO", String(login.hello.protover)];
      if (password !== undefined) args.push("AUTH", user, password);
      if (login.hello.setName !== undefined) args.push("SETNAME", login.hello.setName);
      socket.write(encodeCommand(args));
      hello = await q.next();
      if (hello.type === "error" || hello.type === "bulkError") throw refused("login", hello);
    } else if (password !== undefined) {
      socket.write(encodeCommand(c.user === undefined ? ["AUTH", password] : ["AUTH", user, password]));
      const r = await q.next();
      if (r.type !== "simple") throw refused("login", r);
    }
    if (c.database !== 0) {
      socket.write(encodeCommand(["SELECT", String(c.database)]));
      const r = await q.next();
      if (r.type !== "simple") throw refused(`SELECT ${c.database}`, r);
    }
    q.detach();
    return { socket, reader: q.reader, ...(hello === undefined ? {} : { hello }) };
  } catch (e) {
    q.detach();
    socket.destroy();
    throw e instanceof GatewayError ? e : new GatewayError("GW_UPSTREAM_UNAVAILABLE", "login to the target failed", { cause: e });
  }
}

/** The target's command table (`COMMAND`), over a logged-in link, before the session starts. */
export async function fetchCommandTable(link: TargetLink, limits: RespLimits): Promise<RespValue> {
  const q = new ReplyQueue(link.socket, limits);
  // Whatever the login left buffered belongs before the answer.
  const rest = link.reader.drain();
  if (rest.length > 0) q.reader.push(rest);
  try {
    link.socket.write(encodeCommand(["COMMAND"]));
    const v = await q.next();
    if (v.type !== "array") throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target did not answer COMMAND with its command table");
    const tail = q.reader.drain();
    if (tail.length > 0) link.reader.push(tail);
    return v;
  } finally {
    q.detach();
  }
}
