/**
 * Input judged line by line at Enter: interactive shells, and exec with a PTY, where a program
 * reading the terminal (an attached tmux, a script reading lines) may run what is typed.
 * Each complete command is judged as an `ssh.input` event before the Enter that runs it reaches
 * the target (common/terminal-input.ts decides; this wires the SSH channels to it).
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel } from "ssh2";
import { gatewayText } from "../../core/engine.js";
import { terminalInput, type TerminalInput } from "../common/terminal-input.js";
import { holdHooks, type SessionContext } from "./state.js";

/** The `input`, `atEnd` and `output` handlers for `bridge` (bridge.ts). */
export function lineInput(ctx: SessionContext, ch: ServerChannel, up: ClientChannel, pty: PseudoTtyInfo | undefined): TerminalInput {
  const { state, gate } = ctx;
  const toTerminal = (b: Buffer): void => {
    ch.write(b);
    state.cast?.output(b);
  };
  // A notice is printed in the terminal (recorded with the session), or on stderr without a PTY.
  const notice = (text: string): void => {
    if (pty === undefined) ch.stderr.write(`${text}\n`);
    else toTerminal(Buffer.from(`\r\n${text}\r\n`));
  };
  return terminalInput({
    terminal: pty !== undefined,
    toTarget: (b) => {
      up.write(b);
    },
    toTerminal,
    notice,
    marker: (text) => state.cast?.marker(text),
    judge: async (line, edited) => {
      // A held line waits here (input typed meanwhile waits behind it); the notice goes to the terminal.
      const wait = holdHooks(ch, (message) => notice(gatewayText(message)));
      return gate.judge({ type: "ssh.input", session: gate.info, seq: ++state.seq, line, edited }, wait.hooks).finally(wait.done);
    },
  });
}
