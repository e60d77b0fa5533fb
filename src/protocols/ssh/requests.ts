/**
 * SSH requests the gateway does not serve (RFC 4254 §6.3.1 X11, §6.4 env, §7.1 remote
 * forwarding, OpenSSH's agent forwarding and streamlocal forwarding, subsystems other than
 * sftp): each is judged as a `protocol.request` event, so its refusal is a decision of the
 * pipeline (src/policy/features.ts keeps the positive list of served features), audited and
 * recorded, and the engine renders it: the request is rejected natively. On a session channel
 * the rejection goes out at once, with the judgement alongside (session.ts says why replies
 * there cannot wait); a global request is answered after its judgement (ssh2 keeps global
 * replies in order itself).
 *
 * No `airlock:` line is written for them: they arrive before the session's command, with no
 * channel output yet, and OpenSSH sends some with every session (Debian's `SendEnv LANG LC_*`),
 * so a line would be noise on every command. The client's own tool says what failed (OpenSSH:
 * "X11 forwarding request failed", "remote port forwarding failed").
 *
 * What the engine does not implement it cannot serve: an allow for one of these features
 * (were features.ts ever to list one) is still answered with a rejection, and logged.
 */
import type { Decision } from "../../core/decision.js";
import { reply, type SessionContext } from "./state.js";

/** A client-chosen name, safe to use in a feature name and a description (bounded, printable). */
export function safeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9@._+-]/g, "_");
  return cleaned.length > 64 ? `${cleaned.slice(0, 64)}…` : cleaned === "" ? "_" : cleaned;
}

/** A request the gateway does not serve, as a judged feature: name and safe description. */
export interface UnservedRequest {
  /** `ssh.env`, `ssh.x11`, `ssh.agent`, `ssh.subsystem.<name>`, `ssh.global.<name>`. */
  readonly feature: string;
  /** Never a value that could be a secret (an env request is described by its variable's name). */
  readonly detail: string;
}

export function envRequest(key: string): UnservedRequest {
  return { feature: "ssh.env", detail: `the environment variable ${safeName(key)}` };
}

export const X11_REQUEST: UnservedRequest = { feature: "ssh.x11", detail: "X11 forwarding" };
export const AGENT_REQUEST: UnservedRequest = { feature: "ssh.agent", detail: "agent forwarding" };

export function subsystemRequest(name: string): UnservedRequest {
  const safe = safeName(name);
  return { feature: `ssh.subsystem.${safe}`, detail: `the subsystem ${safe}` };
}

/** A global request ssh2 hands to the server (tcpip-forward, streamlocal-forward and their cancels). */
export function globalRequest(name: string, info: unknown): UnservedRequest {
  const safe = safeName(name);
  const o = typeof info === "object" && info !== null ? (info as Record<string, unknown>) : {};
  const bind = typeof o["bindAddr"] === "string" && typeof o["bindPort"] === "number" ? ` of ${safeName(o["bindAddr"])}:${o["bindPort"]}` : "";
  const socket = typeof o["socketPath"] === "string" ? ` of ${o["socketPath"].replace(/[^\x20-\x7e]/g, "?").slice(0, 200)}` : "";
  switch (name) {
    case "tcpip-forward":
      return { feature: `ssh.global.${safe}`, detail: `remote port forwarding${bind}` };
    case "cancel-tcpip-forward":
      return { feature: `ssh.global.${safe}`, detail: `cancelling remote port forwarding${bind}` };
    case "streamlocal-forward@openssh.com":
      return { feature: `ssh.global.${safe}`, detail: `remote socket forwarding${socket}` };
    case "cancel-streamlocal-forward@openssh.com":
      return { feature: `ssh.global.${safe}`, detail: `cancelling remote socket forwarding${socket}` };
    default:
      return { feature: `ssh.global.${safe}`, detail: `the global request ${safe}` };
  }
}

/** Judge an unserved request (audited and recorded by the pipeline). */
export function judgeRequest(ctx: SessionContext, r: UnservedRequest): Promise<Decision> {
  return ctx.gate.judge({ type: "protocol.request", session: ctx.gate.info, seq: ++ctx.state.seq, feature: r.feature, detail: r.detail });
}

/** Judge an unserved request; an allow (see the module comment) or a failed judgement is logged. Never rejects. */
export async function judgeUnserved(ctx: SessionContext, r: UnservedRequest): Promise<void> {
  try {
    const d = await judgeRequest(ctx, r);
    if (d.type === "allow") ctx.log.warn({ feature: r.feature }, "a feature the SSH engine does not implement was allowed; rejected");
  } catch (e) {
    ctx.log.error({ err: e, feature: r.feature }, "judging an SSH request failed");
  }
}

/** Judge the request, then reject it natively (a judgement that fails: rejected too, fail closed). */
export async function refuseRequest(ctx: SessionContext, r: UnservedRequest, reject: unknown): Promise<void> {
  await judgeUnserved(ctx, r);
  reply(reject);
}
