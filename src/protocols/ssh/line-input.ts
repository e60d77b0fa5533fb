/**
 * Input judged line by line at Enter: interactive shells, and exec with a PTY, where a program
 * reading the terminal (an attached tmux, a script reading lines) may run what is typed.
 * Each complete command is judged as an `ssh.input` event before the Enter that runs it reaches
 * the target.
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel } from "ssh2";
import { gatewayText, refusalText } from "../../core/engine.js";
import { isIncompleteShell } from "../../policy/shell/analyze.js";
import { LineTracker } from "../common/line-tracker.js";
import { holdHooks, type SessionContext } from "./state.js";

/** The `input` and `atEnd` handlers for `bridge` (bridge.ts). */
export function lineInput(
  ctx: SessionContext,
  ch: ServerChannel,
  up: ClientChannel,
  pty: PseudoTtyInfo | undefined,
): { readonly input: (data: Buffer) => Promise<void>; readonly atEnd: () => Promise<void> } {
  const { state, gate } = ctx;
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
