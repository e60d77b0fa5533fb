/**
 * Input judged line by line at Enter, for every engine that carries a terminal or a program's
 * stdin (SSH shells and exec with a PTY, `kubectl exec`/`attach`): each complete command is
 * judged before the Enter that runs it reaches the target.
 *
 * With a terminal (PTY/TTY) typed bytes go on at once (the target echoes them) and only Enter
 * waits for the decision; a refused line is erased where it is (KILL_LINE), or, when it would
 * complete a multi-line command the shell already holds, the command is cancelled with Ctrl-C.
 * Without one nothing is echoed, so a line's bytes are held until it is judged, and the lines of
 * an unfinished command (`for … do` without `done`) are held and judged together.
 *
 * The engine supplies the I/O (`TerminalIo`); this module decides what goes where.
 */
import type { Decision, DenyDecision } from "../../core/decision.js";
import { refusalText } from "../../core/engine.js";
import { isCompleteShell, isIncompleteShell } from "../../policy/shell/analyze.js";
import { KILL_LINE, LineTracker } from "./line-tracker.js";

export interface TerminalIo {
  /** Whether a terminal (PTY/TTY) is attached: a line editor runs and echoes. */
  readonly terminal: boolean;
  /** Bytes for the program reading the input. */
  readonly toTarget: (b: Buffer) => void;
  /**
   * A refusal for the person at the input: written in the terminal (and recorded with the
   * session's output), or on stderr without one. `text` has no line ending.
   */
  readonly notice: (text: string) => void;
  /** Judges one typed command (`ssh.input`); the engine wires hold notices and cancellation. */
  readonly judge: (line: string, edited: boolean) => Promise<Decision>;
  /** A marker in the session's recording. */
  readonly marker: (text: string) => void;
  /** Raw bytes for the terminal that are not a notice (shown again under one); terminal only. */
  readonly toTerminal: (b: Buffer) => void;
}

export interface TerminalInput {
  /** Client input, in order; the next chunk waits until this one's lines are decided. */
  readonly input: (data: Buffer) => Promise<void>;
  /** The client's input ended: without a terminal a last line without Enter still runs; it is judged. */
  readonly atEnd: () => Promise<void>;
  /** The target's output as written to the client's terminal (after masking). */
  readonly output: (data: Buffer) => void;
}

/** How long the next input waits for the shell to act on a Ctrl-C, at most. */
const INTERRUPT_SETTLE_MS = 1000;

export function terminalInput(io: TerminalIo): TerminalInput {
  const tracker = new LineTracker(undefined, { pty: io.terminal });
  const screen = new CurrentLine();
  /** The lines of an unfinished shell command, sent (terminal) or held (no terminal). */
  let pending = "";
  let held: Buffer[] = [];
  let newlineSeen: (() => void) | undefined;
  const send = (b: Buffer): void => {
    if (io.terminal) io.toTarget(b);
    else held.push(Buffer.from(b));
  };
  const release = (): void => {
    for (const b of held) io.toTarget(b);
    held = [];
  };
  /** Resolves at the target's next output line, or after `ms`. */
  const untilNewline = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        newlineSeen = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      newlineSeen = done;
    });
  // The program already holds the typed text. Only the refused line is erased; an unfinished
  // multi-line command it would have completed is cancelled as a whole with Ctrl-C, as the shell
  // holds its earlier lines. (Ctrl-C alone would also kill a program reading lines, and make the
  // terminal flush input it has not read yet: allowed lines typed ahead.)
  const refuseAtTerminal = async (d: DenyDecision, cancelCommand: boolean): Promise<void> => {
    io.notice(refusalText(d));
    // The prompt and the typed text again, under the notice, so the line editor's redraw of the
    // erased line lands where it expects the cursor.
    const again = screen.current();
    if (again.length > 0) io.toTerminal(again);
    if (!cancelCommand) {
      io.toTarget(KILL_LINE);
      return;
    }
    // The shell handles the interrupt asynchronously: input it reads before that would be
    // discarded with the line, so the next input waits until the shell has moved to a new line.
    const settled = untilNewline(INTERRUPT_SETTLE_MS);
    io.toTarget(Buffer.from([0x03]));
    await settled;
  };
  const refuse = async (d: DenyDecision, cancelCommand: boolean): Promise<void> => {
    io.marker(`refused: ${d.message}`);
    if (io.terminal) await refuseAtTerminal(d, cancelCommand);
    else io.notice(refusalText(d));
  };

  const input = async (data: Buffer): Promise<void> => {
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
        // A shell runs nothing until the command is complete: judged then, as a whole. But at a
        // terminal the program reading it may run each line as it comes (a script reading lines
        // is not a shell waiting for `done`), so a line that is a whole command on its own is
        // judged on its own first.
        if (io.terminal && pending !== "" && (await isCompleteShell(part.line))) {
          const alone = await io.judge(part.line, false);
          if (alone.type !== "allow") {
            await refuse(alone, false);
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
      const d = await io.judge(text, part.edited);
      const multiLine = pending !== "";
      pending = "";
      if (d.type === "allow") {
        send(part.enter);
        release();
        continue;
      }
      held = [];
      await refuse(d, multiLine);
    }
  };

  const atEnd = async (): Promise<void> => {
    const rest = tracker.pendingLine();
    if (io.terminal || rest === undefined) return;
    const text = pending === "" ? rest.line : `${pending}\n${rest.line}`;
    if (text.trim() === "" && !rest.edited) {
      release();
      return;
    }
    const d = await io.judge(text, rest.edited);
    if (d.type === "allow") release();
    else {
      held = [];
      await refuse(d, false);
    }
  };

  const output = (data: Buffer): void => {
    screen.push(data);
    if (newlineSeen !== undefined && data.includes(0x0a)) newlineSeen();
  };

  return { input, atEnd, output };
}

/**
 * The client's current output line (what its terminal shows after the last newline: the prompt
 * and the echoed typing), bounded: a longer line is not a prompt, and nothing is shown again.
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
