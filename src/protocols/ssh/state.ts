/**
 * What the SSH engine's parts share about one client connection: its state, the options they
 * need, and the small native renderings of a refusal (an `airlock:` line on stderr with an exit
 * status, or a plain rejection of a request).
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { PseudoTtyInfo, ServerChannel } from "ssh2";
import type { SshConnection } from "../../core/connection.js";
import type { MaskRule } from "../../core/decision.js";
import { gatewayText, refusalText, type Refusal } from "../../core/engine.js";
import { isGatewayError } from "../../core/errors.js";
import type { JudgeHooks, SessionJudge } from "../../core/judge.js";
import type { SessionEndReason } from "../../core/session.js";
import type { AsciicastWriter } from "../../recording/asciicast.js";
import type { UpstreamClient } from "./upstream.js";

/** The part of a masker the SSH engine uses (built by runtime/maskers.ts). */
export interface TextMasker {
  /** `value` null: the `null` strategy, shown as `[REDACTED]` in a terminal. */
  maskText(text: string): { readonly value: string | null; readonly counts: Readonly<Record<string, number>> } | undefined;
}

/** Exit status of a refused command (INTERFACE.md). */
export const DENIED_STATUS = 126;
/** Exit status when the gateway cannot reach the target. */
export const UNAVAILABLE_STATUS = 255;

export interface ClientState {
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

/** An admitted session as the channel handlers see it. */
export interface SessionContext {
  readonly state: ClientState;
  readonly gate: SessionJudge;
  readonly log: Logger;
  readonly maskerFor: (rule: MaskRule) => TextMasker;
  /** The client's TCP socket, while it is open (corked with the target's, see bridge.ts). */
  readonly clientSocket: () => Socket | undefined;
}

export function ptyOptions(p: PseudoTtyInfo): { rows: number; cols: number; height: number; width: number; term: string; modes: PseudoTtyInfo["modes"] } {
  return { rows: p.rows, cols: p.cols, height: p.height, width: p.width, term: p.term, modes: p.modes };
}

/**
 * Answer a channel or global request. ssh2 passes no accept/reject function when the client
 * wants no reply (its typings say otherwise), so they are called only when present.
 */
export function reply(fn: unknown): void {
  if (typeof fn === "function") (fn as () => void)();
}

/** One `airlock: …` line on stderr, the exit status, and the channel closes. */
export function refuse(ch: ServerChannel, refusal: Refusal | string, status: number): void {
  try {
    ch.stderr.write(`${typeof refusal === "string" ? gatewayText(refusal) : refusalText(refusal)}\n`);
    ch.exit(status);
    ch.end();
  } catch {
    // the client went away
  }
}

/** The target session, or a refusal on the channel explaining why there is none. */
export async function upstreamOr(state: ClientState, ch: ServerChannel): Promise<UpstreamClient | undefined> {
  try {
    const u = await state.upstream;
    if (u !== undefined) return u;
  } catch (e) {
    refuse(ch, isGatewayError(e) ? e : "the target is unavailable", UNAVAILABLE_STATUS);
    return undefined;
  }
  refuse(ch, "the target is unavailable", UNAVAILABLE_STATUS);
  return undefined;
}

/**
 * Hooks for a judgement that may wait for a person's decision: `notify` tells the client once
 * it is held, and the wait is cancelled (the approval request with it) when the client closes
 * the channel. The client closing the whole connection ends the session, which cancels every
 * wait too (SessionJudge). Call `done` once judged.
 */
export function holdHooks(ch: ServerChannel, notify: (message: string) => void): { readonly hooks: JudgeHooks; readonly done: () => void } {
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
