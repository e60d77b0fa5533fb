/**
 * The `kubernetes` tool's `exec` over the gateway's own HTTP listener: a WebSocket
 * (`v5.channel.k8s.io`) to `/CONNECTION/api/v1/namespaces/NS/pods/POD/exec?command=…`, with the
 * caller's Airlock token, exactly as `kubectl exec POD -- CMD` through the gateway. The Kubernetes
 * kind judges the request (verb exec), then the argv as a shell command (the SSH guardrails),
 * masks stdout and stderr line by line and records the stream (protocols/kubernetes/exec.ts).
 * Nothing is written to stdin: the command gets EOF at once.
 *
 * Answers: the exit code from the error channel's Status (Success, or NonZeroExitCode with the
 * code); a refusal before the upgrade is a Kubernetes Status with an AirlockRefusal cause; a
 * refused command after it, a Failure Status on the error channel whose message is the
 * gateway's `airlock: …` text.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { WebSocket, type RawData } from "ws";
import type { HoldNotice } from "../../../core/judge.js";
import { parseRefusalText } from "../envelope.js";
import { kubeRefusal } from "./http.js";
import type { ExecResult } from "./ssh.js";
import type { Held, LoopbackCaller, LoopbackEndpoint, Refused, TargetError } from "./types.js";

export interface KubeExecCall {
  readonly connection: string;
  readonly namespace: string;
  readonly pod: string;
  readonly container?: string;
  readonly command: readonly string[];
  /** Output bytes kept per stream. */
  readonly maxBytes: number;
  /** How long the command may run before the stream is closed. */
  readonly timeoutMs: number;
}

export type KubeExecOutcome = ExecResult | Refused | Held<ExecResult> | TargetError;

const CONNECT_TIMEOUT_MS = 15_000;
/** A held upgrade waits for a person (the approval's own expiry bounds it). */
const HELD_TIMEOUT_MS = 25 * 60 * 60_000;
const MAX_STATUS_BYTES = 64 * 1024;

function connectTo(endpoint: LoopbackEndpoint & { readonly tls: boolean }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // Loopback to this gateway's own listener (its certificate is its own, often self-signed).
    const sock: Socket = endpoint.tls
      ? tlsConnect({ host: endpoint.host, port: endpoint.port, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => resolve(sock))
      : netConnect({ host: endpoint.host, port: endpoint.port }, () => resolve(sock));
    sock.once("error", reject);
    sock.setTimeout(CONNECT_TIMEOUT_MS, () => sock.destroy(new Error("timeout")));
  });
}

function toBuffer(raw: RawData): Buffer {
  return Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
}

/** The error channel's Status: exit code, or the gateway's refusal of the command. */
function statusOutcome(text: string): { readonly exitCode: number } | Refused | TargetError {
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch {
    return { type: "error", code: "GW_UPSTREAM", message: "the exec stream ended with an unreadable status" };
  }
  if (typeof s !== "object" || s === null) return { type: "error", code: "GW_UPSTREAM", message: "the exec stream ended with an unreadable status" };
  const o = s as Record<string, unknown>;
  if (o["status"] === "Success") return { exitCode: 0 };
  const message = typeof o["message"] === "string" ? o["message"] : "the command failed";
  if (o["reason"] === "NonZeroExitCode") {
    const details = o["details"];
    const causes = typeof details === "object" && details !== null && "causes" in details && Array.isArray(details.causes) ? (details.causes as unknown[]) : [];
    for (const c of causes) {
      if (typeof c === "object" && c !== null && "reason" in c && c.reason === "ExitCode" && "message" in c && typeof c.message === "string" && /^\d{1,3}$/.test(c.message)) return { exitCode: Number(c.message) };
    }
    return { exitCode: 1 };
  }
  const refusal = message.startsWith("airlock:") ? parseRefusalText(message) : undefined;
  if (refusal !== undefined) return { type: "refused", code: "GW_POLICY_DENIED", ...(refusal.rule === undefined ? {} : { rule: refusal.rule }), message: refusal.message };
  return { type: "error", code: typeof o["reason"] === "string" && o["reason"] !== "" ? o["reason"] : "GW_UPSTREAM", message };
}

/** One exec, in a client connection (and so a gateway session) of its own. */
export async function runKubeExec(endpoint: LoopbackEndpoint & { readonly tls: boolean }, caller: LoopbackCaller, call: KubeExecCall): Promise<KubeExecOutcome> {
  const q = new URLSearchParams();
  for (const c of call.command) q.append("command", c);
  if (call.container !== undefined) q.append("container", call.container);
  q.append("stdout", "true");
  q.append("stderr", "true");
  const path = `/${encodeURIComponent(call.connection)}/api/v1/namespaces/${encodeURIComponent(call.namespace)}/pods/${encodeURIComponent(call.pod)}/exec?${q.toString()}`;
  let sock: Socket;
  try {
    sock = await connectTo(endpoint);
  } catch {
    return { type: "error", code: "GW_UPSTREAM", message: "the gateway's HTTP listener could not be reached" };
  }
  let announce: ((n: HoldNotice) => void) | undefined;
  let waitLonger: (() => void) | undefined;
  const release = caller.expect(sock.localPort ?? 0, (n) => announce?.(n));
  const final = new Promise<ExecResult | Refused | TargetError>((resolve) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let truncated = false;
    let status = "";
    let timedOut = false;
    const url = `${endpoint.tls ? "wss" : "ws"}://${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}${path}`;
    const ws = new WebSocket(url, ["v5.channel.k8s.io"], {
      headers: { authorization: `Bearer ${caller.bearer}` },
      createConnection: () => sock,
      handshakeTimeout: HELD_TIMEOUT_MS,
      maxPayload: 2 * 1024 * 1024,
      perMessageDeflate: false,
    });
    const finish = (o: ExecResult | Refused | TargetError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      release();
      ws.terminate();
      sock.destroy();
      resolve(o);
    };
    waitLonger = () => sock.setTimeout(HELD_TIMEOUT_MS);
    ws.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        if (size < MAX_STATUS_BYTES) chunks.push(c);
        size += c.length;
      });
      res.on("end", () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          parsed = undefined;
        }
        const r = typeof parsed === "object" && parsed !== null ? kubeRefusal(parsed) : undefined;
        if (r !== undefined) return finish({ type: "refused", code: r.code, ...(r.rule === undefined ? {} : { rule: r.rule }), message: parseRefusalText(r.message)?.message ?? r.message });
        const st = typeof parsed === "object" && parsed !== null ? statusOutcome(JSON.stringify(parsed)) : undefined;
        if (st !== undefined && "type" in st) return finish(st);
        finish({ type: "error", code: `HTTP_${res.statusCode ?? 0}`, message: "the gateway refused the exec" });
      });
      res.on("error", () => finish({ type: "error", code: "GW_UPSTREAM", message: "the answer was cut off" }));
    });
    ws.on("open", () => {
      sock.setTimeout(0);
      timer = setTimeout(() => {
        timedOut = true;
        ws.close(1000);
      }, call.timeoutMs);
      // No stdin: tell the other side at once (v5 close frame for channel 0).
      ws.send(Buffer.from([255, 0]));
    });
    ws.on("message", (raw: RawData) => {
      const b = toBuffer(raw);
      const ch = b[0];
      const data = b.subarray(1);
      if (ch === 1 || ch === 2) {
        const kept = ch === 1 ? outBytes : errBytes;
        if (kept + data.length > call.maxBytes) truncated = true;
        else (ch === 1 ? out : err).push(data);
        if (ch === 1) outBytes += data.length;
        else errBytes += data.length;
      } else if (ch === 3 && status.length < MAX_STATUS_BYTES) status += data.toString("utf8");
    });
    ws.on("close", () => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (status === "") {
        if (timedOut) return finish({ type: "exec", exitCode: null, signal: "timeout", stdout, stderr: `${stderr}${stderr === "" || stderr.endsWith("\n") ? "" : "\n"}airlock: the command ran longer than ${Math.round(call.timeoutMs / 1000)} s and was stopped\n`, truncated });
        return finish({ type: "error", code: "GW_UPSTREAM", message: "the exec stream ended without a status" });
      }
      const st = statusOutcome(status);
      if ("type" in st) return finish(st);
      finish({ type: "exec", exitCode: st.exitCode, stdout, stderr, truncated });
    });
    ws.on("error", () => finish({ type: "error", code: "GW_UPSTREAM", message: "the gateway's HTTP listener closed the exec stream" }));
  });
  return new Promise<KubeExecOutcome>((resolve) => {
    announce = (n) => {
      waitLonger?.();
      resolve({ type: "held", approvalId: n.approvalId, message: n.message, result: final });
    };
    void final.then(resolve);
  });
}
