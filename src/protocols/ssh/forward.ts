/**
 * Local port forwarding (RFC 4254 §7.2, direct-tcpip, `ssh -L`): judged as an `ssh.forward`
 * event, opened through the target (forwardOut), its bytes passed whole and recorded as a
 * transfer fact (byte counts) when it closes.
 */
import type { ServerChannel } from "ssh2";
import { reply, type SessionContext } from "./state.js";
import type { UpstreamClient } from "./upstream.js";

export interface ForwardRequest {
  readonly destIP: string;
  readonly destPort: number;
  readonly srcIP: string;
  readonly srcPort: number;
}

export async function forward(ctx: SessionContext, accept: (() => ServerChannel) | undefined, reject: (() => void) | undefined, info: ForwardRequest): Promise<void> {
  const { state, gate } = ctx;
  const host = info.destIP;
  const port = info.destPort;
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
  upstream.forwardOut(info.srcIP, info.srcPort, host, port, (err, up) => {
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
