/**
 * Starts a real OpenSSH sshd (as root, its own config, a free loopback port) for SSH
 * integration tests, with a throwaway test account that accepts the gateway's key (in the
 * temp dir's authorized_keys) and a password. Also drives the real `ssh`, `scp` and `sftp`
 * clients with a password given through SSH_ASKPASS.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports.js";

const execFileP = promisify(execFile);

/** Test accounts are per sshd (test files run in parallel and set their own passwords). */
const SSH_TEST_USER_PREFIX = "alsshtest";

export interface SshdServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly user: string;
  readonly home: string;
  /** `ssh-ed25519 AAAA…` of the server's host key (to pin). */
  readonly hostKey: string;
  /** The private key the gateway logs in with (OpenSSH format). */
  readonly clientKeyPath: string;
  /** The test account's password. */
  readonly password: string;
  stop(): Promise<void>;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Create a fresh unlocked test account with this password; returns its home. */
async function createUser(user: string, password: string): Promise<string> {
  await execFileP("useradd", ["-m", "-s", "/bin/bash", user]);
  await new Promise<void>((resolve, reject) => {
    const p = spawn("chpasswd", [], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`chpasswd failed: ${err}`))));
    p.stdin.end(`${user}:${password}\n`);
  });
  const { stdout } = await execFileP("getent", ["passwd", user]);
  const home = stdout.trim().split(":")[5] ?? `/home/${user}`;
  return home;
}

export async function startSshd(options: { password?: string } = {}): Promise<SshdServer> {
  if (process.getuid?.() !== 0) throw new Error("the sshd harness runs sshd as root (PTYs need it) and creates a test account");
  const dir = mkdtempSync(join(tmpdir(), "airlock-sshd-"));
  chmodSync(dir, 0o755);
  const password = options.password ?? `pw-${Math.random().toString(36).slice(2)}`;
  const user = `${SSH_TEST_USER_PREFIX}${randomBytes(4).toString("hex")}`;
  const home = await createUser(user, password);
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  await execFileP("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
  await execFileP("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "airlock-gateway", "-f", join(dir, "client_key")]);
  const authorized = join(dir, "authorized_keys");
  writeFileSync(authorized, readFileSync(join(dir, "client_key.pub")));
  chmodSync(authorized, 0o644);
  const port = await freePort();
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${authorized}`,
      "UsePAM no",
      "StrictModes no",
      "PasswordAuthentication yes",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin no",
      `AllowUsers ${user}`,
      "AllowTcpForwarding yes",
      "X11Forwarding no",
      "PrintMotd no",
      "PrintLastLog no",
      "Subsystem sftp internal-sftp",
      "LogLevel ERROR",
      "MaxSessions 50",
      "MaxStartups 100",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, 10_000);
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`sshd failed to start: ${stderr}`, { cause: e });
  }
  const pub = readFileSync(join(dir, "host_key.pub"), "utf8").trim().split(/\s+/);
  return {
    host: "127.0.0.1",
    port,
    dir,
    user,
    home,
    hostKey: `${pub[0] ?? ""} ${pub[1] ?? ""}`,
    clientKeyPath: join(dir, "client_key"),
    password,
    async stop() {
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
      rmSync(dir, { recursive: true, force: true });
      await execFileP("userdel", ["-r", "-f", user]).catch(() => undefined);
    },
  };
}

export interface ClientResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutBytes: Buffer;
}

/** An askpass script that prints `secret` (for ssh/scp/sftp password prompts). */
export function askpass(dir: string, secret: string): string {
  const path = join(dir, `askpass-${Math.random().toString(36).slice(2)}.sh`);
  writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' '${secret.replace(/'/g, "'\\''")}'\n`, { mode: 0o700 });
  return path;
}

/** Common options for the OpenSSH clients against the gateway. */
export function clientOptions(method: "password" | "keyboard-interactive" | "publickey" = "password"): string[] {
  return [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", `PreferredAuthentications=${method}`,
    "-o", `PubkeyAuthentication=${method === "publickey" ? "yes" : "no"}`,
    "-o", "BatchMode=no",
    "-o", "ConnectTimeout=10",
  ];
}

/** Run an OpenSSH client with the password from an askpass script. */
export function runSshClient(
  cmd: "ssh" | "scp" | "sftp",
  args: readonly string[],
  options: { askpassPath?: string; input?: string | Buffer; timeoutMs?: number } = {},
): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DISPLAY: ":0", SSH_ASKPASS_REQUIRE: options.askpassPath === undefined ? "never" : "force" };
    if (options.askpassPath !== undefined) env["SSH_ASKPASS"] = options.askpassPath;
    const child = spawn(cmd, [...args], { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, stdout: stdoutBytes.toString("utf8"), stderr, stdoutBytes });
    });
    child.stdin.end(options.input ?? "");
  });
}
