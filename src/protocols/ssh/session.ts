/**
 * One session channel's requests (RFC 4254 §6): pty-req and window-change, signal, and the
 * program it runs (exec, shell, the sftp subsystem; channels.ts). Requests the gateway does not
 * serve (env, x11-req, auth-agent-req@openssh.com, other subsystems) are judged and rejected
 * (requests.ts).
 *
 * Those are rejected at once and judged alongside, not after: replies to a session's requests
 * go out in the order the requests came (RFC 4254 §5.4; OpenSSH sends `x11-req` wanting a reply
 * and then `exec` at once, and pairs replies with requests in order), and the program's request
 * must be answered at once (a client EOF arriving before the reply makes ssh2 refuse it), so no
 * reply can wait for a judgement. The engine implements none of these features, so no
 * judgement could make it serve one (requests.ts).
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel, Session } from "ssh2";
import { exec, shell, sftp } from "./channels.js";
import { AGENT_REQUEST, X11_REQUEST, envRequest, judgeUnserved, subsystemRequest, type UnservedRequest } from "./requests.js";
import { UNAVAILABLE_STATUS, refuse, reply, type SessionContext } from "./state.js";

export function serveSession(ctx: SessionContext, session: Session): void {
  let pty: PseudoTtyInfo | undefined;
  let upstreamChannel: ClientChannel | undefined;
  const setUpstream = (c: ClientChannel): void => {
    upstreamChannel = c;
  };
  const unserved = (r: UnservedRequest, reject: unknown): void => {
    reply(reject);
    void judgeUnserved(ctx, r);
  };
  const failed = (ch: ServerChannel | undefined) => (e: unknown): void => {
    // Something went wrong serving a channel: log it, tell the client in one line, close it.
    ctx.log.error({ err: e }, "an SSH channel failed");
    if (ch !== undefined) refuse(ch, "the gateway could not serve this request", UNAVAILABLE_STATUS);
  };

  session.on("pty", (accept, _reject, info) => {
    pty = info;
    reply(accept);
  });
  session.on("window-change", (accept, _reject, info) => {
    if (pty !== undefined) pty = { ...pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
    upstreamChannel?.setWindow(info.rows, info.cols, info.height, info.width);
    ctx.state.cast?.resize(info.cols, info.rows);
    reply(accept);
  });
  // The variable's name only: its value may be a secret.
  session.on("env", (_accept, reject, info) => unserved(envRequest(info.key), reject));
  session.on("auth-agent", (_accept, reject) => unserved(AGENT_REQUEST, reject));
  session.on("x11", (_accept, reject) => unserved(X11_REQUEST, reject));
  session.on("signal", (accept, _reject, info) => {
    upstreamChannel?.signal(info.name);
    reply(accept);
  });
  session.on("exec", (accept, _reject, info) => {
    // Accepted at once: a client EOF arriving before the reply would otherwise end the session.
    const ch = accept();
    void exec(ctx, ch, info.command, pty, setUpstream).catch(failed(ch));
  });
  session.on("shell", (accept) => {
    // Accepted at once: a client EOF arriving before the reply would otherwise end the session.
    const ch = accept();
    void shell(ctx, ch, pty, setUpstream).catch(failed(ch));
  });
  session.on("subsystem", (accept, reject, info) => {
    if (info.name !== "sftp") {
      unserved(subsystemRequest(info.name), reject);
      return;
    }
    // Accepted at once: a client EOF arriving before the reply would otherwise end the session.
    const ch = accept();
    void sftp(ctx, ch).catch(failed(ch));
  });
}
