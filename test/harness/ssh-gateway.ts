/**
 * A real sshd plus an in-process gateway with an SSH listener in front of it, shared by the
 * SSH integration test files (each starts its own).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import type { RawConfig } from "../../src/runtime/config.js";
import { startTestGateway, type TestGateway } from "./gateway.js";
import { askpass, clientOptions, runSshClient, startSshd, type ClientResult, type SshdServer } from "./sshd.js";

const execFileP = promisify(execFile);

export interface SshWorld {
  readonly sshd: SshdServer;
  readonly gw: TestGateway;
  readonly sshPort: number;
  readonly dir: string;
  /** The agent's registered key pair (for public key login). */
  readonly agentKeyPath: string;
  readonly agentKeyPrivate: string;
  /** Run ssh/scp/sftp against the gateway with `token` as the password. */
  client(cmd: "ssh" | "scp" | "sftp", token: string, args: readonly string[], options?: { input?: string | Buffer; method?: "password" | "keyboard-interactive"; timeoutMs?: number }): Promise<ClientResult>;
  /** `ssh -p PORT CONNECTION@127.0.0.1 COMMAND`. */
  ssh(connection: string, token: string, command: string, options?: { input?: string | Buffer; method?: "password" | "keyboard-interactive" }): Promise<ClientResult>;
  /** An ssh2 client logged in to the gateway. */
  ssh2Client(connection: string, token: string): Promise<InstanceType<typeof ssh2.Client>>;
  stop(): Promise<void>;
}

export interface SshWorldOptions {
  readonly policies?: RawConfig["policies"];
  readonly extraConnections?: (sshd: SshdServer) => NonNullable<RawConfig["connections"]>;
  readonly sshdPassword?: string;
  /** More service accounts (e.g. approvers), besides `agent` and `outsider`. */
  readonly extraServiceAccounts?: NonNullable<RawConfig["serviceAccounts"]>;
  readonly approvals?: RawConfig["approvals"];
  readonly limits?: RawConfig["limits"];
}

export async function startSshWorld(options: SshWorldOptions = {}): Promise<SshWorld> {
  const sshd = await startSshd(options.sshdPassword === undefined ? {} : { password: options.sshdPassword });
  const dir = mkdtempSync(join(tmpdir(), "airlock-sshc-"));
  const agentKeyPath = join(dir, "agent_key");
  await execFileP("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "agent", "-f", agentKeyPath]);
  const agentPub = readFileSync(`${agentKeyPath}.pub`, "utf8").trim();
  let gw: TestGateway;
  try {
    gw = await startTestGateway({
      listen: { api: "127.0.0.1:0", ssh: "127.0.0.1:0" },
      serviceAccounts: [
        { name: "agent", groups: ["agents"], sshPublicKeys: [agentPub] },
        { name: "outsider", groups: ["others"] },
        ...(options.extraServiceAccounts ?? []),
      ],
      connections: [
        { name: "web1", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, groups: ["agents"] },
        ...(options.extraConnections?.(sshd) ?? []),
      ],
      policies: options.policies ?? [],
      ...(options.approvals === undefined ? {} : { approvals: options.approvals }),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
  } catch (e) {
    await sshd.stop();
    throw e;
  }
  const sshPort = gw.gw.addresses.ssh?.port ?? 0;
  const client: SshWorld["client"] = (cmd, token, args, o = {}) =>
    runSshClient(cmd, [...clientOptions(o.method ?? "password"), ...args], { askpassPath: askpass(dir, token), ...(o.input === undefined ? {} : { input: o.input }), ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) });
  return {
    sshd,
    gw,
    sshPort,
    dir,
    agentKeyPath,
    agentKeyPrivate: readFileSync(agentKeyPath, "utf8"),
    client,
    ssh: (connection, token, command, o = {}) =>
      client("ssh", token, ["-p", String(sshPort), `${connection}@127.0.0.1`, command], { ...(o.input === undefined ? {} : { input: o.input }), ...(o.method === undefined ? {} : { method: o.method }) }),
    ssh2Client: (connection, token) =>
      new Promise((resolve, reject) => {
        const c = new ssh2.Client();
        c.once("ready", () => resolve(c));
        c.once("error", reject);
        c.connect({ host: "127.0.0.1", port: sshPort, username: connection, password: token, readyTimeout: 10_000 });
      }),
    async stop() {
      await gw.stop();
      await sshd.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
