/**
 * The session channel's programs (RFC 4254 §6.5): exec, an interactive shell, and the sftp
 * subsystem. Each is judged before anything reaches the target, then bridged (bridge.ts).
 *
 * An exec's decision carries its result plan: masks for the output, or `transfer: "raw"` for a
 * file-copy server (legacy scp, rsync; decided by src/policy/ssh-policies.ts), whose bytes are
 * passed unmasked, kept out of the cast, and recorded as a transfer fact (sizes, SHA-256).
 */
import { createHash } from "node:crypto";
import type { ClientChannel, PseudoTtyInfo, ServerChannel } from "ssh2";
import { gatewayText } from "../../core/engine.js";
import { bridge, maskFnOf, passInput } from "./bridge.js";
import { lineInput } from "./line-input.js";
import { SftpObserver } from "./sftp-observer.js";
import { DENIED_STATUS, UNAVAILABLE_STATUS, holdHooks, ptyOptions, refuse, upstreamOr, type SessionContext } from "./state.js";

function startCast(ctx: SessionContext, pty: PseudoTtyInfo | undefined, title: string): void {
  ctx.state.cast?.start({ width: pty?.cols ?? 80, height: pty?.rows ?? 24, title, ...(pty === undefined ? {} : { env: { TERM: pty.term } }) });
}

export async function exec(ctx: SessionContext, ch: ServerChannel | undefined, command: string, pty: PseudoTtyInfo | undefined, setUpstream: (c: ClientChannel) => void): Promise<void> {
  if (ch === undefined) return;
  const { state, gate } = ctx;
  const eol = pty === undefined ? "\n" : "\r\n";
  const wait = holdHooks(ch, (message) => {
    ch.stderr.write(`${gatewayText(message)}${eol}`);
  });
  const decision = await gate.judge({ type: "ssh.exec", session: gate.info, seq: ++state.seq, command }, wait.hooks).finally(wait.done);
  if (decision.type === "deny") {
    refuse(ch, decision, DENIED_STATUS);
    return;
  }
  const seq = state.seq;
  const upstream = await upstreamOr(state, ch);
  if (upstream === undefined) return;
  // The plan says the stream is a file transfer: raw bytes, no masks, no cast.
  const raw = decision.plan?.transfer === "raw";
  if (!raw) startCast(ctx, pty, command.slice(0, 200));
  upstream.exec(command, pty === undefined ? {} : { pty: ptyOptions(pty) }, (err, up) => {
    if (err instanceof Error) {
      refuse(ch, "the target refused to run the command", UNAVAILABLE_STATUS);
      return;
    }
    setUpstream(up);
    if (raw) {
      bridge(ctx, ch, up, { mask: undefined, record: false, input: passInput(up) });
      observeRawTransfer(ctx, ch, up, seq, command);
      return;
    }
    const mask = maskFnOf(decision, ctx.maskerFor);
    if (pty !== undefined) {
      // With a PTY the program may read the terminal and run what is typed (`ssh -t web1 tmux
      // attach`, a script reading lines): input is judged line by line, as in a shell.
      const lines = lineInput(ctx, ch, up, pty);
      bridge(ctx, ch, up, { mask, record: true, input: lines.input, onInputEnd: lines.atEnd, onOutput: lines.output });
      return;
    }
    bridge(ctx, ch, up, { mask, record: true, input: passInput(up) });
  });
}

/**
 * A raw transfer's facts, observed after the bridge's listeners (each chunk is on its way
 * before it is hashed): bytes each way and the SHA-256 of each direction's stream, recorded
 * and audited once the target's channel closes.
 */
function observeRawTransfer(ctx: SessionContext, ch: ServerChannel, up: ClientChannel, seq: number, command: string): void {
  const fromClient = createHash("sha256");
  const toClient = createHash("sha256");
  let bytesFromClient = 0;
  let bytesToClient = 0;
  ch.on("data", (d: Buffer) => {
    bytesFromClient += d.length;
    fromClient.update(d);
  });
  up.on("data", (d: Buffer) => {
    bytesToClient += d.length;
    toClient.update(d);
  });
  up.once("close", () => {
    ctx.gate.observe({
      type: "transfer.fact",
      session: ctx.gate.info,
      seq,
      stage: "ssh.transfer",
      text: `(file transfer: ${command.slice(0, 200)})`,
      details: { bytesFromClient, bytesToClient, sha256FromClient: fromClient.digest("hex"), sha256ToClient: toClient.digest("hex") },
    });
  });
}

export async function shell(ctx: SessionContext, ch: ServerChannel | undefined, pty: PseudoTtyInfo | undefined, setUpstream: (c: ClientChannel) => void): Promise<void> {
  if (ch === undefined) return;
  const { state, gate } = ctx;
  const decision = await gate.judge({ type: "ssh.channel", session: gate.info, seq: ++state.seq, channel: "shell" });
  if (decision.type === "deny") {
    refuse(ch, decision, DENIED_STATUS);
    return;
  }
  const upstream = await upstreamOr(state, ch);
  if (upstream === undefined) return;
  startCast(ctx, pty, "shell");
  upstream.shell(pty === undefined ? false : ptyOptions(pty), (err, up) => {
    if (err instanceof Error) {
      refuse(ch, "the target refused to start a shell", UNAVAILABLE_STATUS);
      return;
    }
    setUpstream(up);
    const lines = lineInput(ctx, ch, up, pty);
    bridge(ctx, ch, up, { mask: maskFnOf(decision, ctx.maskerFor), record: true, input: lines.input, onInputEnd: lines.atEnd, onOutput: lines.output });
  });
}

export async function sftp(ctx: SessionContext, ch: ServerChannel | undefined): Promise<void> {
  if (ch === undefined) return;
  const { state, gate } = ctx;
  const wait = holdHooks(ch, (message) => {
    ch.stderr.write(`${gatewayText(message)}\n`);
  });
  const decision = await gate.judge({ type: "ssh.channel", session: gate.info, seq: ++state.seq, channel: "subsystem", name: "sftp" }, wait.hooks).finally(wait.done);
  if (decision.type === "deny") {
    refuse(ch, decision, DENIED_STATUS);
    return;
  }
  const upstream = await upstreamOr(state, ch);
  if (upstream === undefined) return;
  upstream.subsys("sftp", (err, up) => {
    if (err instanceof Error) {
      refuse(ch, "the target has no sftp subsystem", UNAVAILABLE_STATUS);
      return;
    }
    const observer = new SftpObserver((op) => {
      gate.observe({ type: "transfer.fact", session: gate.info, seq: state.seq, stage: "ssh.sftp", text: op.text, details: op.details });
    });
    bridge(ctx, ch, up, { mask: undefined, record: false, input: passInput(up) });
    // Observed after the bridge's listeners: each chunk is on its way before it is hashed.
    ch.on("data", (d: Buffer) => observer.fromClient(d));
    up.on("data", (d: Buffer) => observer.fromServer(d));
    up.once("close", () => observer.close());
  });
}
