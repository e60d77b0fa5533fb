/**
 * One session channel's requests (RFC 4254 §6): pty-req and window-change, signal, and the
 * program it runs (exec, shell, the sftp subsystem; channels.ts). Requests the gateway does not
 * serve (env, x11-req, auth-agent-req@openssh.com, other subsystems) are judged and rejected
 * (requests.ts).
 *
 * Replies go out in the order the requests came (RFC 4254 §5.4): OpenSSH sends `x11-req`
 * with a reply wanted and then `exec` at once, and pairs the replies with its requests in order,
 * so a request answered after its judgement holds back the answers to the ones behind it. A
 * request starting the program is otherwise accepted at once (a client EOF arriving before the
 * reply would make ssh2 refuse it); only behind a pending judgement does it wait.
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel, Session } from "ssh2";
import { exec, shell, sftp } from "./channels.js";
import { AGENT_REQUEST, X11_REQUEST, envRequest, refuseRequest, subsystemRequest, type UnservedRequest } from "./requests.js";
import { UNAVAILABLE_STATUS, refuse, reply, type SessionContext } from "./state.js";

export function serveSession(ctx: SessionContext, session: Session): void {
  let pty: PseudoTtyInfo | undefined;
  let upstreamChannel: ClientChannel | undefined;
  const setUpstream = (c: ClientChannel): void => {
    upstreamChannel = c;
  };
  // Requests whose replies wait for a judgement, and the chain that keeps replies in order.
  let pending = 0;
  let replies: Promise<void> = Promise.resolve();
  const inOrder = (answer: () => void): void => {
    if (pending === 0) {
      answer();
      return;
    }
    pending++;
    replies = replies
      .then(answer)
      .catch((e: unknown) => ctx.log.error({ err: e }, "answering an SSH request failed"))
      .finally(() => pending--);
  };
  const unserved = (r: UnservedRequest, reject: unknown): void => {
    pending++;
    replies = replies.then(() => refuseRequest(ctx, r, reject)).finally(() => pending--);
  };
  const failed = (ch: ServerChannel | undefined) => (e: unknown): void => {
    // Something went wrong serving a channel: log it, tell the client in one line, close it.
    ctx.log.error({ err: e }, "an SSH channel failed");
    if (ch !== undefined) refuse(ch, "the gateway could not serve this request", UNAVAILABLE_STATUS);
  };

  session.on("pty", (accept, _reject, info) => {
    pty = info;
    inOrder(() => reply(accept));
  });
  session.on("window-change", (accept, _reject, info) => {
    if (pty !== undefined) pty = { ...pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
    upstreamChannel?.setWindow(info.rows, info.cols, info.height, info.width);
    ctx.state.cast?.resize(info.cols, info.rows);
    inOrder(() => reply(accept));
  });
  // The variable's name only: its value may be a secret.
  session.on("env", (_accept, reject, info) => unserved(envRequest(info.key), reject));
  session.on("auth-agent", (_accept, reject) => unserved(AGENT_REQUEST, reject));
  session.on("x11", (_accept, reject) => unserved(X11_REQUEST, reject));
  session.on("signal", (accept, _reject, info) => {
    upstreamChannel?.signal(info.name);
    inOrder(() => reply(accept));
  });
  session.on("exec", (accept, _reject, info) => {
    inOrder(() => {
      const ch = accept();
      // The reply is sent; the program's judgement does not hold back later requests.
      void exec(ctx, ch, info.command, pty, setUpstream).catch(failed(ch));
    });
  });
  session.on("shell", (accept) => {
    inOrder(() => {
      const ch = accept();
      // The reply is sent; the program's judgement does not hold back later requests.
      void shell(ctx, ch, pty, setUpstream).catch(failed(ch));
    });
  });
  session.on("subsystem", (accept, reject, info) => {
    if (info.name !== "sftp") {
      unserved(subsystemRequest(info.name), reject);
      return;
    }
    inOrder(() => {
      const ch = accept();
      // The reply is sent; the program's judgement does not hold back later requests.
      void sftp(ctx, ch).catch(failed(ch));
    });
  });
}
