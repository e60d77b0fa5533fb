/**
 * Input judged line by line at Enter: interactive shells, and exec with a PTY, where a program
 * reading the terminal (an attached tmux, a script reading lines) may run what is typed.
 * Each complete command is judged as an `ssh.input` event before the Enter that runs it reaches
 * the target.
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel } from "ssh2";
import { gatewayText, refusalText } from "../../core/engine.js";
import type { Decision, DenyDecision } from "../../core/decision.js";
import { isCompleteShell, isIncompleteShell } from "../../policy/shell/analyze.js";
import { KILL_LINE, LineTracker } from "../common/line-tracker.js";
import { holdHooks, type SessionContext } from "./state.js";

/** The `input` and `atEnd` handlers for `bridge` (bridge.ts). */
export function lineInput(
  ctx: SessionContext,
  ch: ServerChannel,
  up: ClientChannel,
  pty: PseudoTtyInfo | undefined,
): { readonly input: (data: Buffer) => Promise<void>; readonly atEnd: () => Promise<void>; readonly output: (data: Buffer) => void } {
  const { state, gate } = ctx;
  const tracker = new LineTracker(undefined, { pty: pty !== undefined });
  const screen = new CurrentLine();
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
  const judgeLine = async (line: string, edited: boolean): Promise<Decision> => {
    // A held line waits here (input typed meanwhile waits behind it); the notice goes to the terminal.
    const wait = holdHooks(ch, notify);
    return gate.judge({ type: "ssh.input", session: gate.info, seq: ++state.seq, line, edited }, wait.hooks).finally(wait.done);
  };
  // A refused line at a terminal: the program already holds the typed text. Only that line is
  // erased (KILL_LINE); an unfinished multi-line command the refused line would have completed is
  // cancelled as a whole with Ctrl-C, as the shell holds its earlier lines.
  const refuseAtTerminal = async (d: DenyDecision, cancelCommand: boolean): Promise<void> => {
    const note = Buffer.concat([Buffer.from(`\r\n${refusalText(d)}\r\n`), screen.current()]);
    ch.write(note);
    state.cast?.output(note);
    if (!cancelCommand) {
      up.write(KILL_LINE);
      return;
    }
    // The shell handles the interrupt asynchronously: input it reads before that would be
    // discarded with the line, so the next input waits until the shell has moved to a new
    // line (or a second).
    const settled = untilNewline(up, 1000);
    up.write("\x03");
    await settled;
  };
  // Input is handled one chunk at a time: a line waits for its decision, and so does
  // everything typed after it.
  const handleInput = async (data: Buffer): Promise<void> => {
    for (const part of tracker.feed(data)) {
      if (part.kind === "pass") {
        send(part.bytes);
        continue;
      }
      if (part.kind === "cancel") {
        // Ctrl-C (or Ctrl-D on an empty line) at a terminal: the shell drops the unfinished command.
        pending = "";
        send(part.bytes);
        continue;
      }
      const text = pending === "" ? part.line : `${pending}\n${part.line}`;
      if (!part.edited && (await isIncompleteShell(text))) {
        // A shell runs nothing until the command is complete: judged then, as a whole. But a
        // program reading the terminal may run each line as it comes (a script reading lines
        // is not a shell waiting for `done`), so there a line that is a whole command on its
        // own is judged on its own first.
        if (pty !== undefined && pending !== "" && (await isCompleteShell(part.line))) {
          const alone = await judgeLine(part.line, false);
          if (alone.type !== "allow") {
            state.cast?.marker(`refused: ${alone.message}`);
            await refuseAtTerminal(alone, false);
            continue;
          }
        }
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
      const d = await judgeLine(text, part.edited);
      const multiLine = pending !== "";
      pending = "";
      if (d.type === "allow") {
        send(part.enter);
        release();
        continue;
      }
      held = [];
      state.cast?.marker(`refused: ${d.message}`);
      if (pty !== undefined) await refuseAtTerminal(d, multiLine);
      else ch.stderr.write(`${refusalText(d)}\n`);
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
      const d = await judgeLine(text, rest.edited);
    if (d.type === "allow") release();
    else ch.stderr.write(`${refusalText(d)}\n`);
  };
  return { input: handleInput, atEnd, output: (d) => screen.push(d) };
}

/**
 * The client's current output line (what its terminal shows after the last newline: the prompt
 * and the echoed typing), shown again under a refusal notice so the line editor's redraw of the
 * erased line lands where it expects the cursor.
 */
class CurrentLine {
  static readonly #max = 2048;
  #parts: Buffer[] = [];
  #size = 0;
  #over = false;

  push(d: Buffer): void {
    const nl = d.lastIndexOf(0x0a);
    let rest = d;
    if (nl >= 0) {
      this.#parts = [];
      this.#size = 0;
      this.#over = false;
      rest = d.subarray(nl + 1);
    }
    if (this.#over || rest.length === 0) return;
    if (this.#size + rest.length > CurrentLine.#max) {
      // A line this long is not a prompt: nothing is shown again.
      this.#over = true;
      this.#parts = [];
      this.#size = 0;
      return;
    }
    this.#parts.push(Buffer.from(rest));
    this.#size += rest.length;
  }

  current(): Buffer {
    return Buffer.concat(this.#parts);
  }
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
