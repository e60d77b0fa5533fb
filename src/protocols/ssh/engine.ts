/**
 * The SSH protocol engine (issue 6): an ssh2 server on the client side, an ssh2 client to the
 * target, and the pipeline in between. RFC 4252 (authentication), RFC 4254 (channels).
 *
 * accept → authenticate (the Airlock token as password or keyboard-interactive answer, or a
 * service account's registered public key; the user name selects the connection) → judge the
 * session → log in to the target with the gateway's own credential, pinned host key → serve
 * channels: exec, shell (PTY, window changes), the sftp subsystem, direct-tcpip forwards.
 * Everything else (agent and X11 forwarding, remote forwarding, env, other subsystems) is
 * refused. Every command, shell line, channel and forward is judged (audited) before it is
 * forwarded; refusals are one `airlock: …` line on stderr and exit status 126.
 */
import { timingSafeEqual } from "node:crypto";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import ssh2, { type AuthContext, type ClientChannel, type Connection as ServerClient, type PseudoTtyInfo, type ServerChannel, type Session } from "ssh2";
import type { SshConnection } from "../../core/connection.js";
import type { Decision, MaskRule } from "../../core/decision.js";
import { gatewayText, refusalText, type AuthContext as AuthCtx, type Dialer, type Gatekeeper, type ProtocolEngine } from "../../core/engine.js";
import { GatewayError, isGatewayError, toGatewayError } from "../../core/errors.js";
import type { JudgeHooks, SessionJudge } from "../../core/judge.js";
import type { Principal } from "../../core/principal.js";
import type { SecretRef } from "../../core/secret.js";
import type { SessionEndReason } from "../../core/session.js";
import { LiveConnections } from "../common/live.js";
import { isIncompleteShell } from "../../policy/shell/analyze.js";
import { AsciicastWriter } from "../../recording/asciicast.js";
import { LineMasker, type LineMaskFn } from "./line-masker.js";
import { LineTracker } from "./line-tracker.js";
import { SftpObserver } from "./sftp-observer.js";
import { connectUpstream, upstreamSocket, type UpstreamClient } from "./upstream.js";

const { Server, utils } = ssh2;

/** The part of a masker the SSH engine uses (built by runtime/maskers.ts). */
export interface TextMasker {
  /** `value` null: the `null` strategy, shown as `[REDACTED]` in a terminal. */
  maskText(text: string): { readonly value: string | null; readonly counts: Readonly<Record<string, number>> } | undefined;
}

/** A public key registered to a service account (`serviceAccounts[].sshPublicKeys`). */
export interface RegisteredKey {
  readonly principal: () => Principal | undefined;
  readonly line: string;
}

export interface SshEngineOptions {
  /** Authentication and admission, shared by every engine (audits every failure). */
  readonly gatekeeper: Gatekeeper;
  readonly dialer: Dialer;
  readonly publicKeys: readonly RegisteredKey[];
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  /** The gateway's host key (OpenSSH private key text). */
  readonly hostKey: string;
  readonly connectTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly logger: Logger;
  readonly maskerFor: (rule: MaskRule) => TextMasker;
  /** Where a session's asciicast recording goes. */
  readonly castPath: (sessionId: string) => string;
}

const AUTH_METHODS: ("password" | "keyboard-interactive" | "publickey")[] = ["publickey", "password", "keyboard-interactive"];
/** Failed authentication attempts (bad token, bad key signature, refused session) per connection. */
const MAX_AUTH_FAILURES = 6;
/**
 * Ciphers offered to clients (RFC 4253 §7.1: the client's first choice the server offers
 * wins): AES-GCM only. OpenSSH clients list chacha20-poly1305 and then AES-CTR (with an HMAC)
 * before AES-GCM, and through ssh2 both cost the gateway about twice the CPU per byte of AES-GCM
 * on CPUs with AES instructions (profiled on the scp path, bench/ssh-results.md). Every OpenSSH
 * since 6.2 and the ssh2 client have AES-GCM; a client without it cannot connect.
 */
const CLIENT_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"] as const;
/** Exit status of a refused command (INTERFACE.md). */
const DENIED_STATUS = 126;
/** Exit status when the gateway cannot reach the target. */
const UNAVAILABLE_STATUS = 255;

interface ParsedRegisteredKey {
  readonly key: ssh2.ParsedKey;
  readonly blob: Buffer;
  readonly principal: () => Principal | undefined;
}

interface ClientState {
  readonly clientAddress: string;
  /** The client's SSH identification string (e.g. SSH-2.0-OpenSSH_9.2p1). */
  readonly ident: string;
  authFailures: number;
  gate?: SessionJudge;
  connection?: SshConnection;
  upstream?: Promise<UpstreamClient>;
  upstreamClient?: UpstreamClient;
  seq: number;
  bytesFromClient: number;
  bytesToClient: number;
  cast?: AsciicastWriter;
  endReason?: SessionEndReason;
  endDetail?: string;
  readonly channels: Set<ServerChannel>;
}

export class SshEngine implements ProtocolEngine {
  readonly clientProtocol = "ssh" as const;
  readonly #o: SshEngineOptions;
  readonly #log: Logger;
  readonly #server: InstanceType<typeof Server>;
  readonly #keys: readonly ParsedRegisteredKey[];
  readonly #live = new LiveConnections();
  /** Accepted sockets by `ip:port`, until ssh2 hands us their client. */
  readonly #byAddress = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();

  constructor(options: SshEngineOptions) {
    this.#o = options;
    this.#log = options.logger.child({ protocol: "ssh" });
    const keys: ParsedRegisteredKey[] = [];
    for (const k of options.publicKeys) {
      const parsed = utils.parseKey(k.line);
      if (parsed instanceof Error) continue; // config validation already named bad lines
      keys.push({ key: parsed, blob: parsed.getPublicSSH(), principal: k.principal });
    }
    this.#keys = keys;
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
    // Unauthenticated connections get authTimeoutMs to log in.
    const address = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    const timer = setTimeout(() => socket.destroy(), this.#o.authTimeoutMs);
    timer.unref();
    this.#byAddress.set(address, { socket, timer });
    void done.finally(() => {
      clearTimeout(timer);
      this.#byAddress.delete(address);
    });
    this.#server.injectSocket(socket);
    return done;
  }

  close(): Promise<void> {
    return this.#live.drain();
  }

  // --- authentication ------------------------------------------------------------------------

  #onClient(client: ServerClient, clientAddress: string, ident: string): void {
    const state: ClientState = { clientAddress, ident, authFailures: 0, seq: 0, bytesFromClient: 0, bytesToClient: 0, channels: new Set() };
    client.on("error", (e) => this.#log.debug({ err: e, clientAddress }, "client connection error"));
    client.on("authentication", (ctx) => {
      this.#authenticate(client, ctx, state).catch((e: unknown) => {
        this.#log.error({ err: e }, "authentication failed unexpectedly");
        ctx.reject();
      });
    });
    client.on("ready", () => this.#ready(client, state));
    client.on("close", () => {
      this.#endSession(state).catch((e: unknown) => this.#log.error({ err: e }, "could not end an SSH session cleanly"));
    });
  }

  async #authenticate(client: ServerClient, ctx: AuthContext, state: ClientState): Promise<void> {
    if (state.gate !== undefined) {
      ctx.reject();
      return;
    }
    const connectionName = ctx.username;
    let principal: Principal | undefined;
    switch (ctx.method) {
      case "password":
        principal = await this.#tokenPrincipal(ctx.password, connectionName, state);
        break;
      case "keyboard-interactive": {
        const answer = await new Promise<string | undefined>((resolve) => {
          ctx.prompt([{ prompt: "Airlock token: ", echo: false }], "Airlock", "", (answers) => resolve(answers[0]));
        });
        principal = await this.#tokenPrincipal(answer ?? "", connectionName, state);
        break;
      }
      case "publickey": {
        const match = this.#keys.find((k) => k.blob.length === ctx.key.data.length && timingSafeEqual(k.blob, ctx.key.data));
        if (match === undefined) {
          ctx.reject(AUTH_METHODS);
          return;
        }
        if (ctx.signature === undefined || ctx.blob === undefined) {
          ctx.accept(); // the client asks whether this key would do: it would, if it can sign
          return;
        }
        if (!match.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) {
          await this.#o.gatekeeper.authFailure(authContext(connectionName, state), new GatewayError("GW_AUTH_INVALID", "bad public key signature"));
          this.#authFailed(client, ctx, state);
          return;
        }
        principal = match.principal();
        if (principal === undefined) {
          await this.#o.gatekeeper.authFailure(authContext(connectionName, state), new GatewayError("GW_AUTH_REVOKED", "the key's service account is blocked"));
        }
        break;
      }
      case "none":
      case "hostbased":
        ctx.reject(AUTH_METHODS);
        return;
    }
    if (principal === undefined) {
      this.#authFailed(client, ctx, state);
      return;
    }
    // The user name selects the connection; unknown connections are judged (and audited) too,
    // and the client learns only that authentication failed.
    const admitted = await this.#o.gatekeeper.admit(
      { clientProtocol: "ssh", connection: connectionName, principal, clientAddress: state.clientAddress, attributes: { method: ctx.method, client: state.ident } },
      ["ssh"],
    );
    if (!admitted.ok) {
      this.#authFailed(client, ctx, state);
      return;
    }
    const gate = admitted.session;
    const connection = admitted.connection;
    state.gate = gate;
    state.connection = connection;
    const pending = this.#byAddress.get(state.clientAddress);
    if (pending !== undefined) clearTimeout(pending.timer);
    gate.signal.addEventListener(
      "abort",
      () => {
        const t = gate.termination;
        state.endReason = t?.reason ?? "terminated";
        state.endDetail = t?.detail ?? "the session was ended";
        for (const ch of state.channels) {
          try {
            ch.stderr.write(`\r\n${gatewayText(state.endDetail)}\r\n`);
          } catch {
            // the channel may be gone already
          }
        }
        state.upstreamClient?.end();
        client.end();
      },
      { once: true },
    );
    ctx.accept();
  }

  /** Refuse this attempt; past MAX_AUTH_FAILURES the connection is closed (as sshd's MaxAuthTries). */
  #authFailed(client: ServerClient, ctx: AuthContext, state: ClientState): void {
    state.authFailures++;
    ctx.reject(AUTH_METHODS);
    if (state.authFailures >= MAX_AUTH_FAILURES) client.end();
  }

  /** The token's principal, or undefined (the gatekeeper audited why). An empty answer is no attempt. */
  async #tokenPrincipal(token: string, connection: string, state: ClientState): Promise<Principal | undefined> {
    if (token === "") return undefined;
    return this.#o.gatekeeper.authenticate(token, authContext(connection, state)).catch(() => undefined);
  }

  // --- the admitted session ------------------------------------------------------------------

  #ready(client: ServerClient, state: ClientState): void {
    const gate = state.gate;
    const connection = state.connection;
    if (gate === undefined || connection === undefined) {
      client.end();
      return;
    }
    state.cast = new AsciicastWriter(this.#o.castPath(gate.info.id));
    const upstream = connectUpstream(connection, { dialer: this.#o.dialer, resolveSecret: this.#o.resolveSecret, timeoutMs: this.#o.connectTimeoutMs, signal: gate.signal });
    state.upstream = upstream;
    upstream.then(
      (u) => {
        state.upstreamClient = u;
        // Bytes read on one leg are written to the other in the same turn of the event loop:
        // corked until it ends, the SSH packets one read produces leave in one write instead of
        // one syscall each (profiled: socket writes led the gateway's data path).
        const clientSocket = this.#byAddress.get(state.clientAddress)?.socket;
        const targetSocket = upstreamSocket(u);
        if (clientSocket !== undefined && targetSocket !== undefined) {
          // Both: a read also makes ssh2 answer on the same socket (window adjustments).
          const corkBoth = (): void => {
            corkForTick(clientSocket);
            corkForTick(targetSocket);
          };
          clientSocket.prependListener("data", corkBoth);
          targetSocket.prependListener("data", corkBoth);
        }
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
      const session = accept();
      this.#serveSession(session, state, gate);
    });
    client.on("tcpip", (accept, reject, info) => {
      this.#forward(accept, reject, info.destIP, info.destPort, info.srcIP, info.srcPort, state, gate).catch((e: unknown) => {
        this.#log.error({ err: e }, "forwarding failed");
        reply(reject);
      });
    });
    // Remote forwarding (tcpip-forward), streamlocal and anything else global: refused.
    client.on("request", (_accept, reject) => reply(reject));
  }

  async #endSession(state: ClientState): Promise<void> {
    const gate = state.gate;
    if (gate === undefined) return;
    state.upstreamClient?.end();
    await state.cast?.close();
    await gate.end(state.endReason ?? "client_closed", { statements: state.seq, bytesFromClient: state.bytesFromClient, bytesToClient: state.bytesToClient }, state.endDetail);
  }

  /** The target session, or a refusal on the channel explaining why there is none. */
  async #upstreamOr(state: ClientState, ch: ServerChannel): Promise<UpstreamClient | undefined> {
    try {
      const u = await state.upstream;
      if (u !== undefined) return u;
    } catch (e) {
      const message = isGatewayError(e) ? e.message : "the target is unavailable";
      refuse(ch, message, UNAVAILABLE_STATUS);
      return undefined;
    }
    refuse(ch, "the target is unavailable", UNAVAILABLE_STATUS);
    return undefined;
  }

  #serveSession(session: Session, state: ClientState, gate: SessionJudge): void {
    let pty: PseudoTtyInfo | undefined;
    let upstreamChannel: ClientChannel | undefined;
    session.on("pty", (accept, _reject, info) => {
      pty = info;
      reply(accept);
    });
    session.on("window-change", (accept, _reject, info) => {
      if (pty !== undefined) pty = { ...pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
      upstreamChannel?.setWindow(info.rows, info.cols, info.height, info.width);
      state.cast?.resize(info.cols, info.rows);
      reply(accept);
    });
    session.on("env", (_accept, reject) => reply(reject));
    session.on("auth-agent", (_accept, reject) => reply(reject));
    session.on("x11", (_accept, reject) => reply(reject));
    session.on("signal", (accept, _reject, info) => {
      upstreamChannel?.signal(info.name);
      reply(accept);
    });
    session.on("exec", (accept, _reject, info) => {
      // Accept at once: a client EOF arriving before the reply would otherwise end the session.
      const ch = accept();
      this.#exec(ch, info.command, pty, state, gate, (c) => (upstreamChannel = c)).catch((e: unknown) => this.#channelFailed(ch, e));
    });
    session.on("shell", (accept) => {
      const ch = accept();
      this.#shell(ch, pty, state, gate, (c) => (upstreamChannel = c)).catch((e: unknown) => this.#channelFailed(ch, e));
    });
    session.on("subsystem", (accept, reject, info) => {
      if (info.name !== "sftp") {
        reply(reject);
        return;
      }
      const ch = accept();
      this.#sftp(ch, state, gate).catch((e: unknown) => this.#channelFailed(ch, e));
    });
  }

  /** Something went wrong serving a channel: log it, tell the client in one line, close it. */
  #channelFailed(ch: ServerChannel | undefined, e: unknown): void {
    this.#log.error({ err: e }, "an SSH channel failed");
    if (ch !== undefined) refuse(ch, "the gateway could not serve this request", UNAVAILABLE_STATUS);
  }

  #maskFn(decision: Decision): LineMaskFn | undefined {
    if (decision.type !== "allow") return undefined;
    const rules = (decision.plan?.masks ?? []).filter((r) => r.detectors.length > 0);
    if (rules.length === 0) return undefined;
    const maskers = rules.map((r) => this.#o.maskerFor(r));
    return (text) => {
      let current = text;
      let changed = false;
      const counts: Record<string, number> = {};
      for (const m of maskers) {
        const r = m.maskText(current);
        if (r === undefined) continue;
        changed = true;
        current = r.value ?? "[REDACTED]";
        for (const [k, n] of Object.entries(r.counts)) counts[k] = (counts[k] ?? 0) + n;
      }
      return changed ? { text: current, counts } : undefined;
    };
  }

  #startCast(state: ClientState, pty: PseudoTtyInfo | undefined, title: string): void {
    state.cast?.start({ width: pty?.cols ?? 80, height: pty?.rows ?? 24, title, ...(pty === undefined ? {} : { env: { TERM: pty.term } }) });
  }

  async #exec(
    ch: ServerChannel | undefined,
    command: string,
    pty: PseudoTtyInfo | undefined,
    state: ClientState,
    gate: SessionJudge,
    setUpstream: (c: ClientChannel) => void,
  ): Promise<void> {
    if (ch === undefined) return;
    const eol = pty === undefined ? "\n" : "\r\n";
    const wait = holdHooks(ch, (message) => {
      ch.stderr.write(`${gatewayText(message)}${eol}`);
    });
    const decision = await gate.judge({ type: "ssh.exec", session: gate.info, seq: ++state.seq, command }, wait.hooks).finally(wait.done);
    if (decision.type === "deny") {
      refuse(ch, decision.message, DENIED_STATUS);
      return;
    }
    const upstream = await this.#upstreamOr(state, ch);
    if (upstream === undefined) return;
    // Legacy scp (`scp -t` / `scp -f`) and rsync move file bytes: not masked or cast-recorded.
    const raw = isFileTransfer(command);
    if (!raw) this.#startCast(state, pty, command.slice(0, 200));
    upstream.exec(command, pty === undefined ? {} : { pty: ptyOptions(pty) }, (err, up) => {
      if (err instanceof Error) {
        refuse(ch, "the target refused to run the command", UNAVAILABLE_STATUS);
        return;
      }
      setUpstream(up);
      if (pty !== undefined && !raw) {
        // With a PTY the program may read the terminal and run what is typed (`ssh -t web1 tmux
        // attach`, a script reading lines): input is judged line by line, as in a shell.
        const lines = this.#lineInput(ch, up, pty, state, gate);
        this.#bridge(ch, up, state, this.#maskFn(decision), true, lines.input, lines.atEnd);
        return;
      }
      this.#bridge(ch, up, state, raw ? undefined : this.#maskFn(decision), !raw, (d) => {
        up.write(d);
      });
    });
  }

  async #shell(ch: ServerChannel | undefined, pty: PseudoTtyInfo | undefined, state: ClientState, gate: SessionJudge, setUpstream: (c: ClientChannel) => void): Promise<void> {
    if (ch === undefined) return;
    const decision = await gate.judge({ type: "ssh.channel", session: gate.info, seq: ++state.seq, channel: "shell" });
    if (decision.type === "deny") {
      refuse(ch, decision.message, DENIED_STATUS);
      return;
    }
    const upstream = await this.#upstreamOr(state, ch);
    if (upstream === undefined) return;
    this.#startCast(state, pty, "shell");
    upstream.shell(pty === undefined ? false : ptyOptions(pty), (err, up) => {
      if (err instanceof Error) {
        refuse(ch, "the target refused to start a shell", UNAVAILABLE_STATUS);
        return;
      }
      setUpstream(up);
      const lines = this.#lineInput(ch, up, pty, state, gate);
      this.#bridge(ch, up, state, this.#maskFn(decision), true, lines.input, lines.atEnd);
    });
  }

  /**
   * Input judged line by line at Enter (shells, and exec with a PTY, where a program reading
   * the terminal — an attached tmux, a script reading lines — may run what is typed): the
   * `input` and `atEnd` handlers for #bridge.
   */
  #lineInput(
    ch: ServerChannel,
    up: ClientChannel,
    pty: PseudoTtyInfo | undefined,
    state: ClientState,
    gate: SessionJudge,
  ): { readonly input: (data: Buffer) => Promise<void>; readonly atEnd: () => Promise<void> } {
    const tracker = new LineTracker(undefined, { pty: pty !== undefined });
    let pending = "";
    // Without a PTY nothing is echoed, so the lines of an unfinished command are held back
    // and forwarded (or dropped) together; with a PTY they go on at once (the shell echoes
    // them) and a refusal cancels the whole command with Ctrl-C.
    let held: Buffer[] = [];
    const send = (b: Buffer): void => {
      if (pty === undefined) held.push(b);
      else up.write(b);
    };
    const release = (): void => {
      for (const b of held) up.write(b);
      held = [];
    };
    // A line held for approval: the notice is printed in the terminal (recorded with the
    // session), or on stderr without a PTY.
    const notify = (message: string): void => {
      if (pty === undefined) {
        ch.stderr.write(`${gatewayText(message)}\n`);
        return;
      }
      const note = Buffer.from(`\r\n${gatewayText(message)}\r\n`);
      ch.write(note);
      state.cast?.output(note);
    };
    // Input is handled one chunk at a time: a line waits for its decision, and so does
    // everything typed after it.
    const handleInput = async (data: Buffer): Promise<void> => {
      for (const part of tracker.feed(data)) {
        if (part.kind === "pass") {
          send(part.bytes);
          continue;
        }
        const text = pending === "" ? part.line : `${pending}\n${part.line}`;
        if (!part.edited && (await isIncompleteShell(text))) {
          // Nothing runs until the command is complete: judged then, as a whole.
          pending = text;
          send(part.enter);
          continue;
        }
        // An edited empty line (a history key at an empty prompt) is judged like any other.
        if (text.trim() === "" && !part.edited) {
          pending = "";
          send(part.enter);
          release();
          continue;
        }
        // A held line waits here (input typed meanwhile waits behind it); the notice goes to the terminal.
        const wait = holdHooks(ch, notify);
        const d = await gate.judge({ type: "ssh.input", session: gate.info, seq: ++state.seq, line: text, edited: part.edited }, wait.hooks).finally(wait.done);
        pending = "";
        if (d.type === "allow") {
          send(part.enter);
          release();
          continue;
        }
        held = [];
        state.cast?.marker(`refused: ${d.message}`);
        if (pty !== undefined) {
          // The shell already holds the typed line: Ctrl-C makes it discard the line (and any
          // unfinished multi-line command) and print a fresh prompt.
          const note = Buffer.from(`\r\n${refusalText(d)}\r\n`);
          ch.write(note);
          state.cast?.output(note);
          // The shell handles the interrupt asynchronously: input it reads before that would be
          // discarded with the line, so the next input waits until the shell has moved to a new
          // line (or a second).
          const settled = untilNewline(up, 1000);
          up.write("\x03");
          await settled;
        } else {
          ch.stderr.write(`${refusalText(d)}\n`);
        }
      }
    };
    // Without a PTY, a last line without a newline still runs when input ends: judge it too.
    const atEnd = async (): Promise<void> => {
      const rest = tracker.pendingLine();
      if (pty !== undefined || rest === undefined) return;
      const text = pending === "" ? rest.line : `${pending}\n${rest.line}`;
      if (text.trim() === "" && !rest.edited) {
        release();
        return;
      }
      const wait = holdHooks(ch, notify);
      const d = await gate.judge({ type: "ssh.input", session: gate.info, seq: ++state.seq, line: text, edited: rest.edited }, wait.hooks).finally(wait.done);
      if (d.type === "allow") release();
      else ch.stderr.write(`${refusalText(d)}\n`);
    };
    return { input: handleInput, atEnd };
  }

  async #sftp(ch: ServerChannel | undefined, state: ClientState, gate: SessionJudge): Promise<void> {
    if (ch === undefined) return;
    const wait = holdHooks(ch, (message) => {
      ch.stderr.write(`${gatewayText(message)}\n`);
    });
    const decision = await gate.judge({ type: "ssh.channel", session: gate.info, seq: ++state.seq, channel: "subsystem", name: "sftp" }, wait.hooks).finally(wait.done);
    if (decision.type === "deny") {
      refuse(ch, decision.message, DENIED_STATUS);
      return;
    }
    const upstream = await this.#upstreamOr(state, ch);
    if (upstream === undefined) return;
    upstream.subsys("sftp", (err, up) => {
      if (err instanceof Error) {
        refuse(ch, "the target has no sftp subsystem", UNAVAILABLE_STATUS);
        return;
      }
      const observer = new SftpObserver((op) => {
        gate.observe({ type: "transfer.fact", session: gate.info, seq: state.seq, stage: "ssh.sftp", text: op.text, details: op.details });
      });
      this.#bridge(ch, up, state, undefined, false, (d) => {
        up.write(d);
      });
      // Observed after the bridge's listeners: each chunk is on its way before it is hashed.
      ch.on("data", (d: Buffer) => observer.fromClient(d));
      up.on("data", (d: Buffer) => observer.fromServer(d));
      up.once("close", () => observer.close());
    });
  }

  /**
   * Moves bytes between the client's channel and the target's, with backpressure, optional
   * output masking and the cast recording. Input goes through `input` (the shell judges lines).
   * The exit status is passed on before the channel closes.
   */
  #bridge(
    ch: ServerChannel,
    up: ClientChannel,
    state: ClientState,
    mask: LineMaskFn | undefined,
    record: boolean,
    input: (d: Buffer) => void | Promise<void>,
    onInputEnd?: () => Promise<void>,
  ): void {
    state.channels.add(ch);
    const cast = record ? state.cast : undefined;
    const toClient = (target: { write(d: Buffer): boolean }) => (d: Buffer): void => {
      state.bytesToClient += d.length;
      cast?.output(d);
      if (!target.write(d) && !up.isPaused()) {
        up.pause();
        ch.once("drain", () => up.resume());
      }
    };
    const out = toClient(ch);
    const err = toClient(ch.stderr);
    const outMasker = mask === undefined ? undefined : new LineMasker({ mask, write: out });
    const errMasker = mask === undefined ? undefined : new LineMasker({ mask, write: err });
    up.on("data", (d: Buffer) => (outMasker === undefined ? out(d) : outMasker.push(d)));
    up.stderr.on("data", (d: Buffer) => (errMasker === undefined ? err(d) : errMasker.push(d)));

    let queue: Promise<void> = Promise.resolve();
    ch.on("data", (d: Buffer) => {
      state.bytesFromClient += d.length;
      if (record) cast?.input(d);
      const r = input(d);
      if (r instanceof Promise) {
        ch.pause();
        const resume = (): void => {
          ch.resume();
        };
        queue = queue.then(() => r).then(resume, resume);
      }
    });
    ch.on("end", () => {
      void queue
        .then(() => onInputEnd?.())
        .catch((e: unknown) => this.#log.error({ err: e }, "judging the last input line failed"))
        .then(() => up.end());
    });
    let exit: unknown[] | undefined;
    up.on("exit", (...args: unknown[]) => {
      exit = args;
    });
    up.on("close", () => {
      outMasker?.close();
      errMasker?.close();
      if (exit !== undefined) {
        const [codeOrSignal, coreDumped, message] = exit;
        if (typeof codeOrSignal === "number") ch.exit(codeOrSignal);
        else if (typeof codeOrSignal === "string") ch.exit(codeOrSignal, coreDumped === true, typeof message === "string" ? message : "");
      }
      ch.end();
      state.channels.delete(ch);
    });
    ch.on("close", () => {
      up.close();
      state.channels.delete(ch);
    });
  }

  async #forward(
    accept: (() => ServerChannel) | undefined,
    reject: (() => void) | undefined,
    host: string,
    port: number,
    srcIP: string,
    srcPort: number,
    state: ClientState,
    gate: SessionJudge,
  ): Promise<void> {
    const decision = await gate.judge({ type: "ssh.forward", session: gate.info, seq: ++state.seq, host, port });
    if (decision.type === "deny" || accept === undefined) {
      reply(reject);
      return;
    }
    let upstream: UpstreamClient | undefined;
    try {
      upstream = await state.upstream;
    } catch {
      upstream = undefined;
    }
    if (upstream === undefined) {
      reply(reject);
      return;
    }
    const seq = state.seq;
    upstream.forwardOut(srcIP, srcPort, host, port, (err, up) => {
      if (err instanceof Error) {
        reply(reject);
        return;
      }
      const ch = accept();
      let sent = 0;
      let received = 0;
      ch.on("data", (d: Buffer) => {
        sent += d.length;
        state.bytesFromClient += d.length;
      });
      up.on("data", (d: Buffer) => {
        received += d.length;
        state.bytesToClient += d.length;
      });
      ch.pipe(up).pipe(ch);
      up.once("close", () => {
        ch.end();
        gate.observe({ type: "transfer.fact", session: gate.info, seq, stage: "ssh.forward.closed", text: `(forward to ${host}:${port} closed)`, details: { bytesFromClient: sent, bytesToClient: received } });
      });
      ch.once("close", () => up.end());
    });
  }
}

const corked = new WeakSet<Socket>();

/**
 * Buffer a socket's writes until this turn of the event loop has run its callbacks (ssh2 emits
 * channel data on a later tick than the read: the streams' flow), then send them together.
 */
function corkForTick(s: Socket): void {
  if (corked.has(s) || s.destroyed) return;
  corked.add(s);
  s.cork();
  setImmediate(() => {
    corked.delete(s);
    s.uncork();
  });
}

function ptyOptions(p: PseudoTtyInfo): { rows: number; cols: number; height: number; width: number; term: string; modes: PseudoTtyInfo["modes"] } {
  return { rows: p.rows, cols: p.cols, height: p.height, width: p.width, term: p.term, modes: p.modes };
}

/** Resolves at the first output containing a newline, or after `ms`. */
function untilNewline(up: ClientChannel, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      up.off("data", onData);
      resolve();
    };
    const onData = (d: Buffer): void => {
      if (d.includes(0x0a)) done();
    };
    const timer = setTimeout(done, ms);
    up.on("data", onData);
  });
}

/**
 * Exactly one legacy scp or rsync server with one plain path, nothing else: its data is passed
 * unmasked (masking would corrupt files). Anything more (`scp -f x; cat .env`) is masked.
 */
const SCP_SERVER = /^scp(?: -[A-Za-z]+)* (?:-- )?(?:'[^']*'|[A-Za-z0-9_./~@%+=:,-]+)$/;
const RSYNC_SERVER = /^rsync --server(?: --?[A-Za-z0-9_.=,+-]+)* \. (?:'[^']*'|[A-Za-z0-9_./~@%+=:,-]+)$/;

export function isFileTransfer(command: string): boolean {
  return SCP_SERVER.test(command) || RSYNC_SERVER.test(command);
}

/**
 * Hooks for a judgement that may wait for a person's decision: `notify` tells the client once
 * it is held, and the wait is cancelled (the approval request with it) when the client closes
 * the channel. The client closing the whole connection ends the session, which cancels every
 * wait too (SessionJudge). Call `done` once judged.
 */
function holdHooks(ch: ServerChannel, notify: (message: string) => void): { readonly hooks: JudgeHooks; readonly done: () => void } {
  const ac = new AbortController();
  const cancel = (): void => {
    ac.abort("the client closed the channel while waiting for approval");
  };
  // A paused channel emits `close` only once its input is read; ssh2 ends stderr at CHANNEL_CLOSE at once.
  ch.once("close", cancel);
  ch.stderr.once("finish", cancel);
  if (ch.stderr.writableEnded || ch.destroyed) cancel();
  return {
    hooks: {
      signal: ac.signal,
      onHold: (notice) => {
        try {
          notify(notice.message);
        } catch {
          // the client went away: the signal cancels the request
        }
      },
    },
    done: () => {
      ch.off("close", cancel);
      ch.stderr.off("finish", cancel);
    },
  };
}

/**
 * Answer a channel or global request. ssh2 passes no accept/reject function when the client
 * wants no reply (its typings say otherwise), so they are called only when present.
 */
function reply(fn: unknown): void {
  if (typeof fn === "function") (fn as () => void)();
}

/** Where an SSH authentication attempt came from (the user name is the connection). */
function authContext(connection: string, state: ClientState): AuthCtx {
  return { clientProtocol: "ssh", connection, clientAddress: state.clientAddress, claimedUser: connection };
}

/** One `airlock: …` line on stderr, the exit status, and the channel closes. */
function refuse(ch: ServerChannel, message: string, status: number): void {
  try {
    ch.stderr.write(`${gatewayText(message)}\n`);
    ch.exit(status);
    ch.end();
  } catch {
    // the client went away
  }
}
