/**
 * One admitted Redis session: client commands judged one at a time, in order, before anything
 * of them reaches the target; replies paired with the command that produced them and masked by
 * its plan on the way back.
 *
 * Pairing follows the server's rules, so a reply is never masked under another command's plan:
 * - every forwarded command has one reply, in order (pipelining);
 * - a refusal is answered by the gateway in the same order (a queue entry of its own), so a
 *   pipelined client still pairs its replies right;
 * - SUBSCRIBE and friends are answered by one confirmation per channel (RESP2 arrays, RESP3
 *   pushes); an UNSUBSCRIBE with no channel by one per channel still subscribed; messages and
 *   other pushes belong to no command and are masked by the plan of the subscription (or of
 *   the latest command);
 * - inside MULTI each command is judged as it is queued (`+QUEUED`); EXEC's array holds their
 *   replies, each masked by its own plan; a command the gateway refused inside MULTI aborts the
 *   transaction as the server's own queue-time errors do (EXECABORT: DISCARD is sent instead).
 * Commands that would break the pairing or the session's binding to its connection and identity
 * (AUTH/HELLO AUTH again, RESET, CLIENT REPLY, MONITOR, SYNC/PSYNC, SELECT/SWAPDB/MOVE to another
 * database) are judged as protocol requests and refused.
 * A reply with no command waiting for it is a broken pairing: the session ends (fail closed).
 */
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { RedisConnection } from "../../core/connection.js";
import type { MaskRule } from "../../core/decision.js";
import { gatewayText } from "../../core/engine.js";
import type { ErrorCode } from "../../core/errors.js";
import type { RedisCommandEvent } from "../../core/events.js";
import type { SessionJudge } from "../../core/judge.js";
import type { SessionEndReason, SessionInfo } from "../../core/session.js";
import type { RuleMasker } from "../../masking/index.js";
import type { CommandKeys, CommandTable } from "./commands.js";
import { renderRefusal } from "./errors.js";
import { maskReply, previewReply, replyPlan, replySize, type ReplyPlan } from "./replies.js";
import { RespError, RespReader, commandArgs, encodeCommand, encodeError, encodeResp, type RespFrame, type RespLimits, type RespValue } from "./wire/resp.js";

export interface RedisSessionOptions {
  readonly gate: SessionJudge;
  readonly connection: RedisConnection;
  readonly client: Duplex;
  /** The client's reader, holding whatever it sent after logging in. */
  readonly clientReader: RespReader;
  readonly target: Duplex;
  readonly targetReader: RespReader;
  readonly table: CommandTable;
  readonly resp3: boolean;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  readonly limits: RespLimits;
  /** Longest reply text kept in the recording. */
  readonly maxRecordedBytes: number;
  readonly logger: Logger;
}

type SubKind = "channel" | "pattern" | "shard";

interface Base {
  readonly seq: number;
  readonly command: string;
  readonly started: number;
}

type Pending =
  | (Base & { readonly kind: "reply"; readonly plan: ReplyPlan | undefined; readonly onReply?: (v: RespValue) => void })
  /** Answered by the gateway (a refusal, QUIT's OK) once everything before it has been answered. */
  | (Base & { readonly kind: "local"; readonly bytes: Buffer; readonly close?: boolean })
  | (Base & { readonly kind: "exec"; readonly queued: readonly { readonly command: string; readonly plan: ReplyPlan | undefined }[] })
  /** DISCARD sent in place of EXEC after a refusal inside MULTI: the client gets EXECABORT. */
  | (Base & { readonly kind: "abort" })
  | (Base & { readonly kind: "subscribe"; readonly plan: ReplyPlan | undefined; readonly sub: SubKind; readonly subscribing: boolean; remaining: number });

const SUBSCRIBE: Readonly<Record<string, { readonly sub: SubKind; readonly subscribing: boolean }>> = {
  subscribe: { sub: "channel", subscribing: true },
  psubscribe: { sub: "pattern", subscribing: true },
  ssubscribe: { sub: "shard", subscribing: true },
  unsubscribe: { sub: "channel", subscribing: false },
  punsubscribe: { sub: "pattern", subscribing: false },
  sunsubscribe: { sub: "shard", subscribing: false },
};

const MESSAGES = new Set(["message", "pmessage", "smessage"]);

function firstWord(v: RespValue): string | undefined {
  if ((v.type !== "array" && v.type !== "push") || v.value === null) return undefined;
  const f = v.value[0];
  return f?.type === "bulk" && f.value !== null ? f.value.toString("latin1").toLowerCase() : f?.type === "simple" ? f.value.toLowerCase() : undefined;
}

/** Printable text of one argument for people: quoted when needed, long ones cut. */
function showArg(b: Buffer): string {
  const cap = 256;
  const s = b.subarray(0, cap).toString("utf8");
  const shown = /^[\x21-\x7e]+$/.test(s) ? s : JSON.stringify(s);
  return b.length > cap ? `${shown}…(${b.length} bytes)` : shown;
}

export function commandText(args: readonly Buffer[]): string {
  const name = args[0]?.toString("latin1").toUpperCase() ?? "";
  return [name, ...args.slice(1, 64).map(showArg), ...(args.length > 64 ? [`…(${args.length - 64} more)`] : [])].join(" ");
}

/** A command the gateway refuses whatever the policies say (it would break the session's binding), as a `protocol.request`. */
export interface RedisFeature {
  readonly feature: string;
  readonly detail: string;
  readonly code: ErrorCode;
  readonly reason: string;
}

/**
 * The event a command is judged as (`keys`: from the target's command table), also used by the
 * offline `airlock policy test` (src/runtime/policy-test.ts) so both judge the same facts.
 */
export function redisCommandEvent(session: SessionInfo, seq: number, args: readonly Buffer[], keys: CommandKeys, inMulti: boolean): RedisCommandEvent {
  const top = keys.name.split("|")[0] ?? keys.name;
  return {
    type: "redis.command",
    session,
    seq,
    command: keys.name,
    text: commandText(args),
    keys: keys.keys.map((k) => k.toString("utf8")),
    keysComplete: keys.complete,
    unknownCommand: keys.unknown,
    flags: [...keys.flags],
    queued: inMulti && top !== "exec" && top !== "discard" && top !== "multi",
  };
}

/** Commands that would break the pairing of this session with its connection, database and identity. */
export function redisFeatureOf(connection: Pick<RedisConnection, "name" | "database">, top: string, args: readonly Buffer[]): RedisFeature | undefined {
  const arg = (i: number): string => args[i]?.toString("latin1").toLowerCase() ?? "";
  const db = String(connection.database);
  switch (top) {
    case "auth":
      return { feature: "redis.reauth", detail: "AUTH within a session", code: "GW_UNSUPPORTED", reason: "the session is already logged in; to use another connection or identity, open a new connection" };
    case "hello":
      if (args.some((a, i) => i > 1 && a.toString("latin1").toLowerCase() === "auth")) {
        return { feature: "redis.reauth", detail: "HELLO AUTH within a session", code: "GW_UNSUPPORTED", reason: "the session is already logged in; to use another connection or identity, open a new connection" };
      }
      return undefined;
    case "reset":
      return { feature: "redis.reset", detail: "RESET", code: "GW_UNSUPPORTED", reason: "RESET would drop the gateway's login to the target; open a new connection instead" };
    case "monitor":
      return { feature: "redis.monitor", detail: "MONITOR", code: "GW_UNSUPPORTED", reason: "MONITOR streams every client's commands and is not served through the gateway" };
    case "sync":
    case "psync":
      return { feature: "redis.replication", detail: top.toUpperCase(), code: "GW_UNSUPPORTED", reason: "replication streams are not served through the gateway" };
    case "client":
      if (arg(1) === "reply") return { feature: "redis.client-reply", detail: "CLIENT REPLY", code: "GW_UNSUPPORTED", reason: "CLIENT REPLY OFF/SKIP is not served through the gateway (every command is answered)" };
      return undefined;
    case "select":
      if (arg(1) !== db) return { feature: "redis.select", detail: `SELECT ${arg(1).slice(0, 20)}`, code: "GW_POLICY_DENIED", reason: `connection "${connection.name}" is database ${db}; another database is another connection` };
      return undefined;
    case "swapdb":
      return { feature: "redis.select", detail: "SWAPDB", code: "GW_POLICY_DENIED", reason: `SWAPDB reaches beyond database ${db} of connection "${connection.name}"` };
    case "move":
      return { feature: "redis.select", detail: "MOVE", code: "GW_POLICY_DENIED", reason: `MOVE reaches beyond database ${db} of connection "${connection.name}"` };
    case "copy": {
      const i = args.findIndex((a, k) => k > 2 && a.toString("latin1").toLowerCase() === "db");
      if (i > 0 && arg(i + 1) !== db) return { feature: "redis.select", detail: "COPY … DB", code: "GW_POLICY_DENIED", reason: `COPY … DB reaches beyond database ${db} of connection "${connection.name}"` };
      return undefined;
    }
    default:
      return undefined;
  }
}

export class RedisSession {
  readonly #o: RedisSessionOptions;
  readonly #log: Logger;
  readonly #pending: Pending[] = [];
  #seq = 0;
  #resp3: boolean;
  #inMulti = false;
  #multiDirty = false;
  #queued: { command: string; plan: ReplyPlan | undefined }[] = [];
  readonly #subs: Record<SubKind, Set<string>> = { channel: new Set(), pattern: new Set(), shard: new Set() };
  /** Subscriptions the server counts (the last confirmation's count). */
  #subscriptions = 0;
  /** The plan pushes and pub/sub messages are masked by. */
  #pushPlan: ReplyPlan | undefined;
  #processing = false;
  #ended = false;
  #endReason: SessionEndReason = "client_closed";
  #endDetail: string | undefined;
  #bytesFromClient = 0;
  #bytesToClient = 0;
  #resolveDone: (() => void) | undefined;

  constructor(o: RedisSessionOptions) {
    this.#o = o;
    this.#resp3 = o.resp3;
    this.#log = o.logger.child({ sessionId: o.gate.info.id });
  }

  /** Serve until either side closes or the session is ended; then end it. */
  async run(): Promise<void> {
    const { client, target, gate } = this.#o;
    const done = new Promise<void>((resolve) => (this.#resolveDone = resolve));
    client.on("data", (b: Buffer) => {
      this.#bytesFromClient += b.length;
      this.#o.clientReader.push(b);
      void this.#pumpClient();
    });
    target.on("data", (b: Buffer) => {
      this.#o.targetReader.push(b);
      this.#pumpTarget();
    });
    client.on("close", () => this.#finish("client_closed"));
    client.on("error", (e) => this.#log.debug({ err: e }, "client connection error"));
    target.on("close", () => this.#finish("upstream_closed"));
    target.on("error", (e) => this.#log.debug({ err: e }, "target connection error"));
    const onAbort = (): void => {
      const t = gate.termination;
      this.#endReason = t?.reason ?? "terminated";
      this.#endDetail = t?.detail;
      // A client waiting for a reply reads this as its answer, then sees the connection close
      // (one waiting for nothing would take an unasked reply for a protocol error: it only sees the close).
      if (this.#pending.length > 0 || this.#processing) this.#writeClient(encodeError(`ERR ${gatewayText(`session ended: ${t?.detail ?? "terminated"}`)}`));
      this.#finish(this.#endReason);
    };
    if (gate.signal.aborted) onAbort();
    else gate.signal.addEventListener("abort", onAbort, { once: true });
    // Whatever the client pipelined behind its login, and the target sent after it.
    void this.#pumpClient();
    this.#pumpTarget();
    await done;
    gate.signal.removeEventListener("abort", onAbort);
    await gate.end(this.#endReason, { statements: this.#seq, bytesFromClient: this.#bytesFromClient, bytesToClient: this.#bytesToClient }, this.#endDetail);
  }

  /** Read through a method: the flag changes across awaits, which narrowing cannot see. */
  #isEnded(): boolean {
    return this.#ended;
  }

  #finish(reason: SessionEndReason, detail?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#endReason === "client_closed") this.#endReason = reason;
    if (detail !== undefined) this.#endDetail ??= detail;
    this.#o.client.end();
    this.#o.target.destroy();
    setImmediate(() => this.#o.client.destroy());
    this.#resolveDone?.();
  }

  #writeClient(b: Buffer): void {
    if (this.#o.client.destroyed) return;
    this.#bytesToClient += b.length;
    this.#o.client.write(b);
  }

  // -------------------------------------------------------------------------------------------
  // Client → target

  async #pumpClient(): Promise<void> {
    if (this.#processing || this.#ended) return;
    this.#processing = true;
    try {
      for (;;) {
        if (this.#isEnded()) return;
        let frame: RespFrame | undefined;
        try {
          frame = this.#o.clientReader.next();
        } catch (e) {
          // As redis-server does: an error reply, then the connection is closed.
          const why = e instanceof RespError ? e.message : "protocol error";
          this.#enqueue({ kind: "local", seq: this.#seq, command: "", started: Date.now(), bytes: encodeError(`ERR ${why}`), close: true });
          return;
        }
        if (frame === undefined) return;
        this.#o.client.pause();
        try {
          await this.#onCommand(frame);
        } finally {
          this.#o.client.resume();
        }
      }
    } catch (e) {
      this.#log.error({ err: e }, "unexpected error serving a Redis command");
      this.#finish("error", "internal error");
    } finally {
      this.#processing = false;
    }
  }

  async #onCommand(frame: RespFrame): Promise<void> {
    let args: Buffer[];
    try {
      args = commandArgs(frame.value);
    } catch (e) {
      const why = e instanceof RespError ? e.message : "protocol error";
      this.#enqueue({ kind: "local", seq: this.#seq, command: "", started: Date.now(), bytes: encodeError(`ERR ${why}`), close: true });
      return;
    }
    if (args.length === 0) return; // an empty inline line: nothing (as redis-server)
    const seq = ++this.#seq;
    const started = Date.now();
    const keys = this.#o.table.keysOf(args);
    const name = keys.name;
    const top = name.split("|")[0] ?? name;
    const gate = this.#o.gate;
    const refuseLocally = (bytes: Buffer, close = false): void => {
      if (this.#inMulti && top !== "exec" && top !== "discard") this.#multiDirty = true;
      this.#enqueue({ kind: "local", seq, command: name, started, bytes, ...(close ? { close } : {}) });
    };

    if (top === "quit") {
      this.#enqueue({ kind: "local", seq, command: name, started, bytes: encodeResp({ type: "simple", value: "OK" }), close: true });
      return;
    }
    const feature = redisFeatureOf(this.#o.connection, top, args);
    if (feature !== undefined) {
      const d = await gate.judge({ type: "protocol.request", session: gate.info, seq, feature: feature.feature, detail: feature.detail, violation: { code: feature.code, reason: feature.reason } });
      // A protocol request the gateway refuses is always refused, whatever the decision says.
      refuseLocally(renderRefusal(d.type === "deny" ? d : { type: "deny", code: feature.code, message: feature.reason, rule: "protocol" }));
      return;
    }

    const decision = await gate.judge(redisCommandEvent(gate.info, seq, args, keys, this.#inMulti), { signal: gate.signal });
    if (this.#isEnded()) return;
    if (decision.type === "deny") {
      refuseLocally(renderRefusal(decision));
      return;
    }
    const plan = replyPlan(decision.plan?.masks ?? [], this.#o.maskerFor);
    // What the target runs is exactly what was judged: an inline command goes on as RESP.
    const bytes = frame.inline === true ? encodeCommand(args) : frame.raw;
    const sub = SUBSCRIBE[top];
    if (sub !== undefined) {
      if (plan !== undefined || this.#pushPlan === undefined) this.#pushPlan = plan;
      const channels = args.length - 1;
      this.#enqueue({ kind: "subscribe", seq, command: name, started, plan, sub: sub.sub, subscribing: sub.subscribing, remaining: channels === 0 && !sub.subscribing ? -1 : channels });
    } else if (top === "multi") {
      this.#enqueue({ kind: "reply", seq, command: name, started, plan, onReply: (v) => this.#startMulti(v) });
    } else if (top === "exec" && this.#inMulti) {
      this.#inMulti = false;
      if (this.#multiDirty) {
        this.#multiDirty = false;
        this.#queued = [];
        this.#enqueue({ kind: "abort", seq, command: name, started });
        this.#writeTarget(encodeCommand(["DISCARD"]));
        return;
      }
      this.#enqueue({ kind: "exec", seq, command: name, started, queued: this.#queued });
      this.#queued = [];
    } else if (top === "discard" && this.#inMulti) {
      this.#inMulti = false;
      this.#multiDirty = false;
      this.#queued = [];
      this.#enqueue({ kind: "reply", seq, command: name, started, plan });
    } else if (top === "hello") {
      const v = Number(args[1]?.toString("latin1") ?? (this.#resp3 ? 3 : 2));
      this.#enqueue({ kind: "reply", seq, command: name, started, plan, onReply: (r) => {
        if (r.type !== "error" && r.type !== "bulkError" && (v === 2 || v === 3)) this.#resp3 = v === 3;
      } });
    } else {
      if (this.#inMulti) this.#queued.push({ command: name, plan });
      this.#enqueue({ kind: "reply", seq, command: name, started, plan });
      if (plan !== undefined && this.#pushPlan === undefined) this.#pushPlan = plan;
    }
    this.#writeTarget(bytes);
  }

  #startMulti(v: RespValue): void {
    if (v.type !== "simple") return;
    this.#inMulti = true;
    this.#multiDirty = false;
    this.#queued = [];
  }

  #writeTarget(b: Buffer): void {
    if (!this.#o.target.destroyed) this.#o.target.write(b);
  }

  /**
   * Commands the gateway does not pass whatever the policies say: they would break the pairing
   * of replies or the session's binding to its connection, database and identity.
   */
  #enqueue(p: Pending): void {
    this.#pending.push(p);
    this.#flushLocal();
  }

  /** Answer the gateway's own entries that have reached the head of the queue. */
  #flushLocal(): void {
    for (let head = this.#pending[0]; head?.kind === "local"; head = this.#pending[0]) {
      this.#pending.shift();
      // A refusal is recorded as the pipeline's decision, with no result: the target answered nothing.
      this.#writeClient(head.bytes);
      if (head.close === true) {
        this.#finish("client_closed");
        return;
      }
    }
  }

  #localReply(bytes: Buffer): RespValue {
    const r = new RespReader();
    r.push(bytes);
    return r.next()?.value ?? { type: "null" };
  }

  // -------------------------------------------------------------------------------------------
  // Target → client

  #pumpTarget(): void {
    for (;;) {
      if (this.#ended) return;
      let frame: RespFrame | undefined;
      try {
        frame = this.#o.targetReader.next();
      } catch (e) {
        this.#log.warn({ err: e }, "the target sent something that is not RESP");
        this.#finish("error", "the target's answer could not be read");
        return;
      }
      if (frame === undefined) return;
      this.#onReply(frame);
    }
  }

  #onReply(frame: RespFrame): void {
    const v = frame.value;
    const head = this.#pending[0];
    const word = firstWord(v);
    const isConfirmation = word !== undefined && SUBSCRIBE[word] !== undefined && (v.type === "push" || (!this.#resp3 && v.type === "array"));
    if (isConfirmation && head?.kind === "subscribe") {
      this.#onConfirmation(frame, head, word);
      return;
    }
    const isMessage = v.type === "push" || (v.type === "array" && !this.#resp3 && word !== undefined && MESSAGES.has(word) && this.#subscriptions > 0 && head?.kind !== "reply");
    if (isMessage) {
      this.#forwardMasked(frame, this.#pushPlan, word === undefined ? "push" : word, undefined);
      return;
    }
    if (head === undefined || head.kind === "local") {
      // A reply nobody asked for: the pairing is lost, so nothing more can be masked right.
      this.#log.error({ type: v.type }, "a reply from the target matches no command; ending the session (fail closed)");
      this.#finish("error", "the gateway lost track of the target's replies");
      return;
    }
    this.#pending.shift();
    switch (head.kind) {
      case "reply": {
        head.onReply?.(v);
        // Budgets (core/result-watch.ts): a reply counts as one row of its size on the wire. A
        // spent budget answers this command with an error instead (pairing is kept).
        const verdict = this.#o.gate.results?.row(head.seq, frame.raw.length, []);
        if (verdict !== undefined && verdict.type !== "pass") {
          const bytes = renderRefusal(verdict.refusal);
          this.#writeClient(bytes);
          this.#record(head, this.#localReply(bytes), undefined);
          break;
        }
        this.#forwardMasked(frame, head.plan, head.command, head);
        break;
      }
      case "subscribe":
        // An error instead of confirmations (wrong arguments).
        this.#forwardMasked(frame, head.plan, head.command, head);
        break;
      case "exec":
        this.#onExec(frame, head);
        break;
      case "abort": {
        const bytes = encodeError("EXECABORT Transaction discarded because of previous errors.");
        this.#writeClient(bytes);
        this.#record(head, this.#localReply(bytes), undefined);
        break;
      }
    }
    this.#flushLocal();
  }

  #onConfirmation(frame: RespFrame, head: Extract<Pending, { kind: "subscribe" }>, word: string): void {
    const v = frame.value;
    const items = (v.type === "array" || v.type === "push") && v.value !== null ? v.value : [];
    const channel = items[1];
    const count = items[2];
    const name = channel?.type === "bulk" && channel.value !== null ? channel.value.toString("latin1") : undefined;
    const kind = SUBSCRIBE[word];
    if (kind !== undefined && name !== undefined) {
      if (kind.subscribing) this.#subs[kind.sub].add(name);
      else this.#subs[kind.sub].delete(name);
    }
    if (count?.type === "integer") this.#subscriptions = Number(count.value);
    this.#forwardMasked(frame, head.plan, head.command, undefined);
    if (head.remaining > 0) head.remaining--;
    const done = head.remaining === 0 || (head.remaining < 0 && (name === undefined || this.#subs[head.sub].size === 0));
    if (done) {
      this.#pending.shift();
      this.#record(head, v, undefined);
      this.#flushLocal();
    }
  }

  #onExec(frame: RespFrame, head: Extract<Pending, { kind: "exec" }>): void {
    const v = frame.value;
    if (v.type !== "array" || v.value === null) {
      this.#writeRaw(frame, head);
      return;
    }
    const counts: Record<string, number> = {};
    const out = v.value.map((item, i) => {
      const q = head.queued[i];
      return q?.plan === undefined ? undefined : maskReply(item, q.plan, { resp3: this.#resp3, command: q.command }, counts);
    });
    const changed = out.some((m) => m !== undefined);
    const value: RespValue = changed ? { type: "array", value: v.value.map((item, i) => out[i] ?? item) } : v;
    this.#writeClient(changed ? encodeResp(value) : frame.raw);
    this.#record(head, value, counts);
  }

  #writeRaw(frame: RespFrame, head: Pending): void {
    this.#writeClient(frame.raw);
    this.#record(head, frame.value, undefined);
  }

  #forwardMasked(frame: RespFrame, plan: ReplyPlan | undefined, command: string, head: Pending | undefined): void {
    if (plan === undefined) {
      if (head === undefined) this.#writeClient(frame.raw);
      else this.#writeRaw(frame, head);
      return;
    }
    const counts: Record<string, number> = {};
    const masked = maskReply(frame.value, plan, { resp3: this.#resp3, command }, counts);
    this.#writeClient(masked === undefined ? frame.raw : encodeResp(masked));
    if (head !== undefined) this.#record(head, masked ?? frame.value, counts);
  }

  #record(head: Pending, value: RespValue, counts: Record<string, number> | undefined): void {
    const gate = this.#o.gate;
    const masked = counts !== undefined && Object.keys(counts).length > 0 ? counts : undefined;
    const error = value.type === "error" || value.type === "bulkError" ? (value.type === "error" ? value.value : value.value.toString("utf8")) : undefined;
    gate.observe({
      type: "db.result",
      session: gate.info,
      seq: head.seq,
      kind: "simple",
      commandTag: head.command.toUpperCase(),
      rowCount: replySize(value),
      columns: ["reply"],
      rows: [[previewReply(value, this.#o.maxRecordedBytes)]],
      durationMs: Date.now() - head.started,
      ...(masked === undefined ? {} : { masked }),
      ...(error === undefined ? {} : { error: { sqlstate: error.split(" ")[0] ?? "ERR", message: error.slice(0, 500) } }),
    });
  }
}
