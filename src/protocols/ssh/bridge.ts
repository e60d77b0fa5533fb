/**
 * Moving bytes between the client's channel and the target's: backpressure, output masking
 * line by line (the masking plan of the decision), the cast recording, and the corking of both
 * TCP sockets that coalesces the SSH packets one read produces into one write.
 */
import type { Socket } from "node:net";
import type { ClientChannel, ServerChannel } from "ssh2";
import type { Decision, MaskRule } from "../../core/decision.js";
import { LineMasker, type LineMaskFn } from "../common/line-masker.js";
import type { SessionContext, TextMasker } from "./state.js";

export interface BridgeOptions {
  /** Output masking, line by line; undefined passes output as it is. */
  readonly mask: LineMaskFn | undefined;
  /** Whether the channel's bytes go into the cast recording. */
  readonly record: boolean;
  /** Where client input goes (a shell judges lines first). */
  readonly input: (d: Buffer) => void | Promise<void>;
  /** Runs once the client's input ends, before the target's input is closed. */
  readonly onInputEnd?: () => Promise<void>;
  /** Sees the output written to the client's terminal (after masking). */
  readonly onOutput?: (d: Buffer) => void;
}

/** Client input written to the target as it is. */
export function passInput(up: ClientChannel): (d: Buffer) => void {
  return (d) => {
    up.write(d);
  };
}

/**
 * Moves bytes between the client's channel and the target's, with backpressure, optional
 * output masking and the cast recording. The exit status is passed on before the channel closes.
 */
export function bridge(ctx: SessionContext, ch: ServerChannel, up: ClientChannel, o: BridgeOptions): void {
  const { state } = ctx;
  state.channels.add(ch);
  const cast = o.record ? state.cast : undefined;
  const toClient = (target: { write(d: Buffer): boolean }) => (d: Buffer): void => {
    state.bytesToClient += d.length;
    cast?.output(d);
    if (!target.write(d) && !up.isPaused()) {
      up.pause();
      ch.once("drain", () => up.resume());
    }
  };
  const toTerminal = toClient(ch);
  const out = o.onOutput === undefined ? toTerminal : (d: Buffer): void => {
    o.onOutput?.(d);
    toTerminal(d);
  };
  const err = toClient(ch.stderr);
  const outMasker = o.mask === undefined ? undefined : new LineMasker({ mask: o.mask, write: out });
  const errMasker = o.mask === undefined ? undefined : new LineMasker({ mask: o.mask, write: err });
  up.on("data", (d: Buffer) => (outMasker === undefined ? out(d) : outMasker.push(d)));
  up.stderr.on("data", (d: Buffer) => (errMasker === undefined ? err(d) : errMasker.push(d)));

  let queue: Promise<void> = Promise.resolve();
  ch.on("data", (d: Buffer) => {
    state.bytesFromClient += d.length;
    cast?.input(d);
    const r = o.input(d);
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
      .then(() => o.onInputEnd?.())
      .catch((e: unknown) => ctx.log.error({ err: e }, "judging the last input line failed"))
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

/** The line masker of an allow decision's plan: its detector rules, chained (undefined: none). */
export function maskFnOf(decision: Decision, maskerFor: (rule: MaskRule) => TextMasker): LineMaskFn | undefined {
  if (decision.type !== "allow") return undefined;
  const rules = (decision.plan?.masks ?? []).filter((r) => r.detectors.length > 0);
  if (rules.length === 0) return undefined;
  const maskers = rules.map((r) => maskerFor(r));
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

/**
 * Bytes read on one leg are written to the other in the same turn of the event loop: corked
 * until it ends, the SSH packets one read produces leave in one write instead of one syscall
 * each (profiled: socket writes led the gateway's data path). Both sockets are corked on a read
 * of either: a read also makes ssh2 answer on the same socket (window adjustments).
 */
export function corkTogether(clientSocket: Socket, targetSocket: Socket): void {
  const corkBoth = (): void => {
    corkForTick(clientSocket);
    corkForTick(targetSocket);
  };
  clientSocket.prependListener("data", corkBoth);
  targetSocket.prependListener("data", corkBoth);
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
