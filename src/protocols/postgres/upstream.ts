/**
 * The gateway's own leg to the target PostgreSQL: dial (through the Dialer), optional TLS per
 * libpq's sslmode, StartupMessage, and answering the server's password challenge with the
 * real credential (protocol-flow: "Start-up"; SCRAM per "sasl-authentication"). The client
 * never sees this credential or any byte of this exchange.
 */
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate } from "node:tls";
import type { PostgresConnection } from "../../core/connection.js";
import { dialTargetOf, type DialTarget, type Dialer } from "../../core/engine.js";
import { GatewayError } from "../../core/errors.js";
import { describeSecretRef, type DbLease, type LeaseDbCredentials, type SecretRef } from "../../core/secret.js";
import { FramedSocket } from "./framed.js";
import {
  FrameReader,
  ScramClient,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeErrorOrNotice,
  decodeParameterStatus,
  decodeReadyForQuery,
  encodeCancelRequest,
  encodePasswordMessage,
  encodeQuery,
  type Frame,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeSSLRequest,
  encodeStartupMessage,
  md5PasswordResponse,
} from "./wire/index.js";

export interface UpstreamDeps {
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly timeoutMs: number;
  readonly maxMessageBytes: number;
  readonly signal?: AbortSignal;
  /** For connections with dynamicCredentials (Vault's database secrets engine). */
  readonly leaseCredentials?: LeaseDbCredentials;
}

export interface UpstreamSession {
  readonly socket: Duplex;
  /** Holds any bytes the server sent after ReadyForQuery. */
  readonly reader: FrameReader;
  readonly parameters: ReadonlyMap<string, string>;
  readonly backendKey: { readonly processId: number; readonly secretKey: Buffer };
  readonly txStatus: "I" | "T" | "E";
  /** NoticeResponse frames sent during login, to pass on to the client. */
  readonly notices: readonly Buffer[];
  readonly tls: boolean;
}

const T_AUTH = 0x52; // 'R'
const T_ERROR = 0x45; // 'E'
const T_NOTICE = 0x4e; // 'N'
const T_PARAM = 0x53; // 'S'
const T_KEY = 0x4b; // 'K'
const T_READY = 0x5a; // 'Z'
const T_NEGOTIATE = 0x76; // 'v'

/** Open an authenticated session on the target. Rejects with a GatewayError (GW_UPSTREAM_*). */
export async function connectUpstream(
  conn: PostgresConnection,
  clientParams: ReadonlyMap<string, string>,
  deps: UpstreamDeps,
): Promise<UpstreamSession> {
  const agentLogin = await agentLoginOf(conn, deps);
  const raw = await deps.dialer.dial({ ...dialTargetOf(conn), ...(agentLogin === undefined ? {} : { agentLogin }) }, {
    timeoutMs: deps.timeoutMs,
    ...(deps.signal === undefined ? {} : { signal: deps.signal }),
  });
  const reader = new FrameReader({ maxMessageBytes: deps.maxMessageBytes, untagged: true });
  reader.setTagged();
  const framed = new FramedSocket(raw, reader);
  let lease: DbLease | undefined;
  try {
    // A dynamic credential is created for this target connection and revoked when it closes.
    if (conn.dynamicCredentials !== undefined) {
      if (deps.leaseCredentials === undefined) {
        throw new GatewayError("GW_SECRET_UNRESOLVED", `connection "${conn.name}": vault-db: dynamic credentials need secrets.vault in the configuration`);
      }
      lease = await deps.leaseCredentials(conn.dynamicCredentials);
      const l = lease;
      raw.once("close", () => l.release());
    }
    let tls = false;
    // With agent-side credentials the agent speaks to the target (src/protocols/postgres/agent-login.ts).
    if (conn.sslmode !== "disable" && agentLogin === undefined) {
      tls = await negotiateTls(framed, conn, deps);
    }
    const params = new Map<string, string>(clientParams);
    params.set("user", lease?.username ?? conn.user);
    params.set("database", conn.database);
    framed.write(encodeStartupMessage(params));
    await authenticate(framed, conn, deps, lease);
    const parameters = new Map<string, string>();
    const notices: Buffer[] = [];
    let backendKey: UpstreamSession["backendKey"] | undefined;
    for (;;) {
      const f = await framed.read(deps.timeoutMs);
      switch (f.type) {
        case T_PARAM: {
          const p = decodeParameterStatus(f.body);
          parameters.set(p.name, p.value);
          break;
        }
        case T_KEY:
          backendKey = decodeBackendKeyData(f.body);
          break;
        case T_NOTICE:
          notices.push(Buffer.from(f.bytes));
          break;
        case T_NEGOTIATE:
          break;
        case T_ERROR:
          throw upstreamError(f.body);
        case T_READY: {
          framed.detach();
          return {
            socket: framed.socket,
            reader,
            parameters,
            backendKey: backendKey ?? { processId: 0, secretKey: Buffer.alloc(4) },
            txStatus: decodeReadyForQuery(f.body),
            notices,
            tls,
          };
        }
        default:
          throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target sent an unexpected message during start-up");
      }
    }
  } catch (e) {
    framed.detach();
    framed.socket.destroy();
    lease?.release();
    if (e instanceof GatewayError && (e.code.startsWith("GW_UPSTREAM") || e.code === "GW_UNSUPPORTED")) throw e;
    if (e instanceof GatewayError && e.code === "GW_SECRET_UNRESOLVED") throw e;
    throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target did not complete start-up", { cause: e });
  }
}

/** The agent-side login request of a connection whose credential lives on its agent. */
async function agentLoginOf(conn: PostgresConnection, deps: UpstreamDeps): Promise<DialTarget["agentLogin"]> {
  if (conn.credentialsOn !== "agent" || conn.password === undefined) return undefined;
  if (conn.password.kind !== "env" && conn.password.kind !== "file") {
    throw new GatewayError("GW_CONFIG", `connection "${conn.name}": an agent-side credential must be env: or file:`);
  }
  // TLS is then the agent's to do (it speaks to the target); the CA bundle is public and goes along.
  const ca = conn.sslRootCert === undefined ? undefined : await deps.resolveSecret(conn.sslRootCert);
  const tls = conn.sslmode === "disable" ? undefined : { sslmode: conn.sslmode, serverName: conn.sslServerName ?? conn.host, ...(ca === undefined ? {} : { ca }) };
  return { type: "postgres", user: conn.user, password: describeSecretRef(conn.password), ...(tls === undefined ? {} : { tls }) };
}

/** SSLRequest, then a TLS handshake per sslmode (libpq semantics). Returns whether TLS is on. */
async function negotiateTls(framed: FramedSocket, conn: PostgresConnection, deps: UpstreamDeps): Promise<boolean> {
  // The answer is a single byte, not a framed message: read it straight off the socket.
  framed.detach();
  framed.write(encodeSSLRequest());
  const answer = await readOneByte(framed.socket, deps.timeoutMs);
  if (answer !== 0x53 /* 'S' */) {
    if (conn.sslmode === "prefer" && answer === 0x4e /* 'N' */) {
      framed.replace(framed.socket);
      return false;
    }
    throw new GatewayError("GW_UPSTREAM_TLS", `the target does not offer TLS (sslmode=${conn.sslmode})`);
  }
  // Bytes after 'S' and before the TLS handshake would be injected plaintext (CVE-2021-23222).
  if (framed.socket.readableLength > 0) {
    throw new GatewayError("GW_UPSTREAM_TLS", "the target sent unexpected data before the TLS handshake");
  }
  const verify = conn.sslmode === "verify-ca" || conn.sslmode === "verify-full";
  const ca = conn.sslRootCert === undefined ? undefined : await deps.resolveSecret(conn.sslRootCert);
  const name = conn.sslServerName ?? conn.host;
  const secure = tlsConnect({
    socket: framed.socket,
    ...(isIP(name) === 0 ? { servername: name } : {}),
    ...(ca === undefined ? {} : { ca }),
    rejectUnauthorized: verify,
    checkServerIdentity:
      conn.sslmode === "verify-full" ? (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert) : () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new GatewayError("GW_UPSTREAM_TLS", "TLS handshake with the target timed out")), deps.timeoutMs);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      resolve();
    });
    secure.once("error", (e) => {
      clearTimeout(timer);
      reject(new GatewayError("GW_UPSTREAM_TLS", "TLS to the target failed verification or handshake", { cause: e }));
    });
  });
  framed.replace(secure);
  return true;
}

export function readOneByte(socket: Duplex, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new GatewayError("GW_UPSTREAM_TLS", "no answer to SSLRequest")), timeoutMs);
    const onReadable = (): void => {
      const b = socket.read(1) as Buffer | null;
      if (b !== null) done(undefined, b[0]);
    };
    const onEnd = (): void => done(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target closed the connection"));
    const done = (e: unknown, v?: number): void => {
      clearTimeout(timer);
      socket.off("readable", onReadable);
      socket.off("end", onEnd);
      socket.off("error", onEnd);
      if (e !== undefined || v === undefined) reject(e instanceof Error ? e : new GatewayError("GW_UPSTREAM_UNAVAILABLE", "no answer"));
      else resolve(v);
    };
    socket.on("readable", onReadable);
    socket.once("end", onEnd);
    socket.once("error", onEnd);
    onReadable();
  });
}

async function authenticate(framed: FramedSocket, conn: PostgresConnection, deps: UpstreamDeps, lease: DbLease | undefined): Promise<void> {
  let password: string | undefined = lease?.password;
  const user = lease?.username ?? conn.user;
  const needPassword = async (): Promise<string> => {
    if (password !== undefined) return password;
    if (conn.credentialsOn === "agent") {
      // The agent answers every challenge; one reaching the gateway means it did not.
      throw new GatewayError("GW_UPSTREAM_AUTH", `connection "${conn.name}": the agent did not complete the target login`);
    }
    if (conn.password === undefined) {
      throw new GatewayError("GW_UPSTREAM_AUTH", `the target asks for a password but connection "${conn.name}" has none configured`);
    }
    password ??= await deps.resolveSecret(conn.password);
    return password;
  };
  let scram: ScramClient | undefined;
  for (;;) {
    const f = await framed.read(deps.timeoutMs);
    if (f.type === T_ERROR) throw upstreamError(f.body);
    if (f.type === T_NEGOTIATE || f.type === T_NOTICE) continue;
    if (f.type !== T_AUTH) throw new GatewayError("GW_UPSTREAM_AUTH", "the target sent an unexpected message during authentication");
    const auth = decodeAuthentication(f.body);
    switch (auth.kind) {
      case "ok":
        return;
      case "cleartext":
        framed.write(encodePasswordMessage(await needPassword()));
        break;
      case "md5":
        framed.write(encodePasswordMessage(md5PasswordResponse(user, await needPassword(), auth.salt)));
        break;
      case "sasl": {
        if (!auth.mechanisms.includes("SCRAM-SHA-256")) {
          throw new GatewayError("GW_UPSTREAM_AUTH", `the target offers no supported SASL mechanism (${auth.mechanisms.join(", ")})`);
        }
        scram = new ScramClient(await needPassword());
        framed.write(encodeSASLInitialResponse("SCRAM-SHA-256", scram.clientFirstMessage()));
        break;
      }
      case "sasl_continue":
        if (scram === undefined) throw new GatewayError("GW_UPSTREAM_AUTH", "unexpected SASL continue from the target");
        framed.write(encodeSASLResponse(await scram.handleServerFirstAsync(auth.data)));
        break;
      case "sasl_final":
        if (scram === undefined) throw new GatewayError("GW_UPSTREAM_AUTH", "unexpected SASL final from the target");
        scram.verifyServerFinal(auth.data);
        break;
      case "unsupported":
        throw new GatewayError("GW_UPSTREAM_AUTH", `the target asks for an unsupported authentication method (code ${auth.code})`);
    }
  }
}

/**
 * SQLSTATEs of a rejected start-up setting: undefined_object (unrecognized configuration
 * parameter), invalid_parameter_value, insufficient_privilege (permission denied to set
 * parameter), cant_change_runtime_param.
 */
const SETTING_ERRORS = new Set(["42704", "22023", "42501", "55P02"]);

/** An ErrorResponse from the target during login, as a GatewayError that keeps the text for logs only. */
function upstreamError(body: Buffer): GatewayError {
  const e = decodeErrorOrNotice(body);
  // A setting the client gave at start-up that the target rejects (unknown name, bad value, not
  // settable by this role): the client's own mistake, so it learns the target's words.
  if (SETTING_ERRORS.has(e.code)) {
    return new GatewayError("GW_UNSUPPORTED", `the target refused the start-up: ${e.message.slice(0, 300)}`, { cause: new Error(`${e.code}: ${e.message}`) });
  }
  const authFailure = e.code.startsWith("28");
  return new GatewayError(
    authFailure ? "GW_UPSTREAM_AUTH" : "GW_UPSTREAM_UNAVAILABLE",
    authFailure ? "the target refused the gateway's credential" : "the target refused the connection",
    { cause: new Error(`${e.code}: ${e.message}`) },
  );
}

/**
 * Forward a client's cancel to the target with the target's own key (protocol-flow:
 * "Canceling Requests in Progress"): a new connection carrying only a CancelRequest.
 */
export async function sendCancel(
  conn: PostgresConnection,
  key: { readonly processId: number; readonly secretKey: Buffer },
  deps: UpstreamDeps,
): Promise<void> {
  const raw = await deps.dialer.dial(dialTargetOf(conn), { timeoutMs: deps.timeoutMs });
  const reader = new FrameReader({ maxMessageBytes: deps.maxMessageBytes });
  reader.setTagged();
  const framed = new FramedSocket(raw, reader);
  try {
    if (conn.sslmode !== "disable") await negotiateTls(framed, conn, deps);
    framed.detach();
    // The server closes the connection once it has signalled the backend: waiting for that
    // lets a caller know the cancel has landed (or will be ignored by an idle backend).
    await new Promise<void>((resolve) => {
      const socket = framed.socket;
      const timer = setTimeout(resolve, Math.min(deps.timeoutMs, 2000));
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      socket.once("close", done);
      socket.once("error", done);
      socket.resume();
      socket.end(encodeCancelRequest(key.processId, key.secretKey));
    });
  } finally {
    setTimeout(() => framed.socket.destroy(), 1000).unref();
  }
}

/**
 * One simple Query on an idle target session the gateway uses for itself (catalog look-ups,
 * the pool's reset), not a client's: every answer frame goes to `onFrame` until ReadyForQuery,
 * then the socket is detached and paused again. Resolves with the ReadyForQuery frame; rejects
 * on close, socket error, bad framing or `timeoutMs`.
 */
export function sideQuery(session: UpstreamSession, sql: string, timeoutMs: number, onFrame: (f: Frame) => void): Promise<Frame> {
  return sideExchange(session, encodeQuery(sql), timeoutMs, onFrame);
}

/**
 * As sideQuery, with the messages given as bytes (e.g. Parse + Describe + Sync): they must end
 * in a Query or a Sync, whose ReadyForQuery ends the exchange.
 */
export function sideExchange(session: UpstreamSession, messages: Buffer, timeoutMs: number, onFrame: (f: Frame) => void): Promise<Frame> {
  const { socket, reader } = session;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (e: Error | undefined, ready?: Frame): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onClose);
      socket.pause();
      if (ready !== undefined) resolve(ready);
      else reject(e ?? new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target session ended"));
    };
    const onData = (chunk: Buffer): void => {
      try {
        reader.push(chunk);
        for (let f = reader.next(); f !== undefined; f = reader.next()) {
          if (f.type === 0x5a /* ReadyForQuery */) {
            finish(undefined, f);
            return;
          }
          onFrame(f);
        }
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    };
    const onClose = (): void => finish(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target session closed"));
    const timer = setTimeout(() => finish(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target did not answer in time")), timeoutMs);
    timer.unref();
    if (socket.destroyed || !socket.writable) {
      finish(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target session is closed"));
      return;
    }
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("error", onClose);
    socket.write(messages);
    socket.resume();
  });
}
