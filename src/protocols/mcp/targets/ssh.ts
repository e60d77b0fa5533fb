/**
 * The `exec` tool over the gateway's own SSH listener (ssh2's client, the connection as the user
 * name, the caller's bearer as the password): the command is parsed, judged, held, masked,
 * recorded and audited by the SSH engine as an `ssh CONNECTION@gateway CMD` would be. A refusal
 * arrives as that engine renders it: exit status 126 and one `airlock: …` line on stderr.
 */
import { connect as netConnect } from "node:net";
import { approvalIdIn, parseRefusalText } from "../envelope.js";
import type { Held, LoopbackCaller, LoopbackEndpoint, Refused, TargetError } from "./types.js";

export interface ExecResult {
  readonly type: "exec";
  readonly exitCode: number | null;
  readonly signal?: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
}

export type ExecOutcome = ExecResult | Refused | Held<ExecResult> | TargetError;

const CONNECT_TIMEOUT_MS = 15_000;
const DENIED_EXIT = 126;

export async function runExec(
  endpoint: LoopbackEndpoint & { readonly hostKey?: Buffer },
  caller: LoopbackCaller,
  call: { readonly connection: string; readonly command: string; readonly maxBytes: number },
): Promise<ExecOutcome> {
  // Loaded at the first exec, not with the MCP service: ssh2 costs ~15 MiB of RSS.
  const { Client } = await import("ssh2");
  return new Promise<ExecOutcome>((resolve) => {
    let settled = false;
    let announceHold: ((h: Held<ExecResult>) => void) | undefined = (h) => {
      settled = true;
      resolve(h);
    };
    let finish!: (r: ExecResult | Refused | TargetError) => void;
    const result = new Promise<ExecResult | Refused | TargetError>((r) => (finish = r));
    void result.then((r) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    });

    const sock = netConnect({ host: endpoint.host, port: endpoint.port });
    const client = new Client();
    let release: (() => void) | undefined;
    const fail = (): void => finish({ type: "error", code: "GW_UPSTREAM", message: "the gateway's SSH listener could not be reached" });
    sock.once("error", fail);
    sock.once("connect", () => {
      release = caller.expect(sock.localPort ?? 0);
      client.connect({
        sock,
        username: call.connection,
        password: caller.bearer,
        tryKeyboard: false,
        readyTimeout: CONNECT_TIMEOUT_MS,
        ...(endpoint.hostKey === undefined ? {} : { hostVerifier: (key: Buffer) => key.equals(endpoint.hostKey ?? Buffer.alloc(0)) }),
      });
    });
    client.on("error", (e: Error & { level?: string }) => {
      release?.();
      if (e.level === "client-authentication") finish({ type: "refused", code: "GW_AUTH_INVALID", message: "the gateway refused the credential for this connection" });
      else fail();
    });
    client.on("ready", () => {
      release?.();
      client.exec(call.command, (err, stream) => {
        if (err) {
          finish({ type: "refused", code: "GW_POLICY_DENIED", message: "the gateway refused the command" });
          client.end();
          return;
        }
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let outBytes = 0;
        let errBytes = 0;
        let truncated = false;
        let exitCode: number | null = null;
        let signal: string | undefined;
        stream.on("data", (d: Buffer) => {
          if (outBytes + d.length > call.maxBytes) truncated = true;
          else out.push(d);
          outBytes += d.length;
        });
        stream.stderr.on("data", (d: Buffer) => {
          if (errBytes + d.length > call.maxBytes) truncated = true;
          else errs.push(d);
          errBytes += d.length;
          const text = d.toString("utf8");
          const id = approvalIdIn(text);
          if (id !== undefined && text.includes("waiting for approval") && announceHold !== undefined) {
            const line = text.split("\n").find((l) => l.includes(id)) ?? text;
            announceHold({ type: "held", approvalId: id, message: parseRefusalText(line.trim())?.message ?? line.trim(), result });
            announceHold = undefined;
          }
        });
        stream.on("exit", (code: number | null, sig?: string) => {
          exitCode = code;
          if (sig !== undefined) signal = sig;
        });
        stream.on("close", () => {
          client.end();
          const stderr = Buffer.concat(errs).toString("utf8");
          const lastLine = stderr.trimEnd().split("\n").at(-1) ?? "";
          const refusal = exitCode === DENIED_EXIT ? parseRefusalText(lastLine) : undefined;
          if (refusal !== undefined) {
            finish({ type: "refused", code: "GW_POLICY_DENIED", ...(refusal.rule === undefined ? {} : { rule: refusal.rule }), message: refusal.message });
            return;
          }
          finish({ type: "exec", exitCode, ...(signal === undefined ? {} : { signal }), stdout: Buffer.concat(out).toString("utf8"), stderr, truncated });
        });
      });
    });
  });
}
