import { createHash, randomBytes } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync, chownSync, statSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFileTransfer } from "../src/policy/ssh-policies.js";
import { startSshWorld, type SshWorld } from "./harness/ssh-gateway.js";
import { until } from "./harness/until.js";
import type { ClientChannel } from "ssh2";

const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const CANARY = `canary-${randomBytes(12).toString("hex")}`;

let w: SshWorld;
let token: string;
let echo: Server;
let echoPort: number;

beforeAll(async () => {
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const a = echo.address();
  echoPort = typeof a === "object" && a !== null ? a.port : 0;
  w = await startSshWorld({
    sshdPassword: CANARY,
    extraConnections: (sshd) => [
      { name: "canary", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, password: CANARY, hostKey: sshd.hostKey, groups: ["agents"] },
      // A pinned key that is not the target's.
      { name: "wrongkey", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, password: CANARY, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", groups: ["agents"] },
      { name: "private", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, password: CANARY, hostKey: sshd.hostKey, groups: ["admins"] },
    ],
    policies: [
      { name: "no-destructive-shell", connections: ["web1", "canary"], match: { commands: ["rm", "shutdown", "reboot", "mkfs", "dd"] }, action: "deny" },
      { name: "no-shadow", match: { commands: ["cat", "less", "head", "tail"], arguments: ["/etc/shadow", "re:^/etc/gshadow"] }, action: "deny", message: "reading the shadow files is not allowed" },
      { name: "forward-to-echo", match: { forwardTo: [`127.0.0.1:${echoPort}`] }, action: "allow" },
      { name: "mask-secrets", action: "mask", detectors: ["secret", "email"] },
    ],
  });
  token = await w.gw.mint("agent", "1h");
  const env = join(w.sshd.home, ".env");
  writeFileSync(env, `AWS_ACCESS_KEY_ID=${AWS_KEY}\nAWS_SECRET_ACCESS_KEY=${AWS_SECRET}\nOWNER=alice@example.com\n`);
  const st = statSync(w.sshd.home);
  chownSync(env, st.uid, st.gid);
}, 240_000);

afterAll(async () => {
  await w.stop();
  echo.close();
});

describe("ssh exec", () => {
  it("runs a command with the token as the password", async () => {
    const r = await w.ssh("web1", token, "echo hello; id -un");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`hello\n${w.sshd.user}\n`);
    expect(r.code).toBe(0);
  });

  it("passes the exit status through", async () => {
    const r = await w.ssh("web1", token, "exit 7");
    expect(r.code).toBe(7);
  });

  it("accepts the token through keyboard-interactive", async () => {
    const r = await w.ssh("web1", token, "echo kbd", { method: "keyboard-interactive" });
    expect(r.stdout).toBe("kbd\n");
  });

  it("denies a guarded command with status 126 and one airlock line", async () => {
    const r = await w.ssh("web1", token, "ls / && rm -rf /tmp/nothing-here");
    expect(r.code).toBe(126);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^airlock: rm is not allowed here \(rule no-destructive-shell\)\n$/);
  });

  it("matches arguments (globs and RE2 regexes)", async () => {
    const a = await w.ssh("web1", token, "cat /etc/shadow");
    expect(a.code).toBe(126);
    expect(a.stderr).toContain("reading the shadow files is not allowed");
    const b = await w.ssh("web1", token, "head -1 /etc/gshadow-");
    expect(b.code).toBe(126);
    const c = await w.ssh("web1", token, "head -1 /etc/hostname");
    expect(c.code).toBe(0);
  });

  it("masks secrets in output line by line", async () => {
    const r = await w.ssh("web1", token, "cat .env");
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(AWS_KEY);
    expect(r.stdout).not.toContain(AWS_SECRET);
    expect(r.stdout).not.toContain("alice@example.com");
    expect(r.stdout).toContain("[EMAIL]");
    expect(r.stdout).toMatch(/AWS_ACCESS_KEY_ID=\[/);
  });
});

/** Collect a shell channel's output until `pattern` appears (or fail after timeoutMs). */
function waitFor(out: { text: string }, ch: ClientChannel, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const m = pattern.exec(out.text);
      if (m === null) return false;
      cleanup();
      resolve(m[0]);
      return true;
    };
    const onData = (): void => {
      check();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${pattern} in ${JSON.stringify(out.text.slice(-500))}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      ch.off("data", onData);
      ch.stderr.off("data", onData);
    };
    ch.on("data", onData);
    ch.stderr.on("data", onData);
    check();
  });
}

function openShell(c: Awaited<ReturnType<SshWorld["ssh2Client"]>>, window: { rows: number; cols: number } | false): Promise<{ ch: ClientChannel; out: { text: string } }> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel): void => {
      if (err !== undefined) {
        reject(err);
        return;
      }
      const out = { text: "" };
      ch.on("data", (d: Buffer) => (out.text += d.toString("utf8")));
      ch.stderr.on("data", (d: Buffer) => (out.text += d.toString("utf8")));
      resolve({ ch, out });
    };
    if (window === false) c.shell(false, cb);
    else c.shell({ ...window, term: "xterm", height: 0, width: 0 }, cb);
  });
}

describe("ssh interactive shell", () => {
  it("serves a PTY shell whose window changes reach the target, and refuses a denied line", async () => {
    const c = await w.ssh2Client("web1", token);
    try {
      const { ch, out } = await openShell(c, { rows: 24, cols: 80 });
      ch.write("stty size\r");
      await waitFor(out, ch, /24 80/);
      ch.setWindow(40, 100, 0, 0);
      ch.write("stty size\r");
      await waitFor(out, ch, /40 100/);
      ch.write("touch /tmp/airlock-keep && rm -f /tmp/airlock-keep\r");
      await waitFor(out, ch, /airlock: rm is not allowed here/);
      ch.write("echo still-$((40+2))\r");
      await waitFor(out, ch, /still-42/);
      // Keys the gateway cannot follow (history recall) make the line unknowable.
      ch.write("\x1b[Aecho recalled\r");
      await waitFor(out, ch, /airlock: the line was edited with keys the gateway cannot follow/);
      ch.write("cat ~/.env\r");
      await waitFor(out, ch, /\[EMAIL\]/);
      expect(out.text).not.toContain(AWS_SECRET);
      expect(out.text).not.toContain("alice@example.com");
      ch.write("exit\r");
      await new Promise((r) => ch.once("close", r));
    } finally {
      c.end();
    }
    // The window change is in the cast as an asciicast "r" event.
    const cast = await castContaining("still-42");
    expect(cast).toMatch(/\[[0-9.]+,"r","100x40"\]/);
  });

  it("passes a real ssh -tt client's window change through (under script, resized with stty)", async () => {
    const { askpass, clientOptions } = await import("./harness/sshd.js");
    const { spawn } = await import("node:child_process");
    const mark = `size-start-${randomBytes(4).toString("hex")}`;
    const started = join(w.sshd.home, mark);
    // The target prints its terminal size, writes a mark, then waits until the size changes.
    const remote = `stty size; stty size > ${mark}; for i in $(seq 1 100); do s=$(stty size); if [ "$s" = "50 120" ]; then echo resized-$s; break; fi; sleep 0.1; done`;
    const quote = (x: string): string => `'${x.replace(/'/g, "'\\''")}'`;
    const sshCmd = ["ssh", ...clientOptions("password"), "-tt", "-p", String(w.sshPort), "web1@127.0.0.1", remote].map(quote).join(" ");
    // In script's terminal: start at 24x80, wait for the mark, then resize (the kernel sends
    // SIGWINCH to ssh, which sends window-change).
    // (an asynchronous command's stdin is /dev/null unless redirected: ssh gets the terminal)
    const inner = `stty rows 24 cols 80; ${sshCmd} < /dev/tty & p=$!; while [ ! -s ${quote(started)} ]; do sleep 0.1; done; stty rows 50 cols 120; wait $p`;
    const child = spawn("script", ["-qec", inner, "/dev/null"], {
      env: { ...process.env, DISPLAY: ":0", SSH_ASKPASS_REQUIRE: "force", SSH_ASKPASS: askpass(w.dir, token) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((r) => child.once("close", r));
    clearTimeout(timer);
    expect(out).toContain("24 80");
    expect(out).toContain("resized-50 120");
    expect(code).toBe(0);
    const cast = await castContaining("resized-50 120");
    expect(cast).toMatch(/\[[0-9.]+,"r","120x50"\]/);
  });

  it("judges a non-PTY shell's input lines, multi-line constructs as a whole", async () => {
    const c = await w.ssh2Client("web1", token);
    try {
      const { ch, out } = await openShell(c, false);
      ch.write("echo one\n");
      await waitFor(out, ch, /one\n/);
      ch.write("for i in 1 2; do\necho loop-$i\nrm -f /tmp/nothing\ndone\n");
      await waitFor(out, ch, /airlock: rm is not allowed here/);
      ch.write("echo two\n");
      await waitFor(out, ch, /two\n/);
      expect(out.text).not.toContain("loop-1");
      // A last line without a newline is judged when input ends.
      ch.write("echo three; rm -f /tmp/nothing");
      ch.end();
      await waitFor(out, ch, /airlock: rm is not allowed here[^\n]*\n[\s\S]*$/);
      await new Promise((r) => ch.once("close", r));
      expect(out.text).not.toContain("three");
    } finally {
      c.end();
    }
  });
});

describe("ssh exec with a PTY (real ssh -tt)", () => {
  it("judges what is typed into a program reading the terminal line by line, as in a shell", async () => {
    // A script that runs every line it reads: allowed as a command (a script file is a
    // program), but what it is fed through the terminal must be judged like shell input.
    const probe = join(w.sshd.home, `airlock-pty-probe-${randomBytes(4).toString("hex")}`);
    const repl = join(w.sshd.home, "repl.sh");
    writeFileSync(probe, "keep\n");
    writeFileSync(repl, 'while IFS= read -r line; do eval "$line"; done\n');
    const st = statSync(w.sshd.home);
    chownSync(probe, st.uid, st.gid);
    chownSync(repl, st.uid, st.gid);
    // All typed ahead at once: the refused line is erased, not interrupted, so the script lives
    // on and neither the allowed line before it nor the lines after it are lost. A line inside
    // an unfinished shell construct is judged on its own as well: the script runs it alone.
    const input = [`echo ran-$((6*7))`, `rm -f ${probe}`, `echo after-$((1+1))`, "for x in 1; do", `rm -f ${probe}`, "echo alone-$((2+3))", "exit"];
    const r = await w.client("ssh", token, ["-tt", "-p", String(w.sshPort), "web1@127.0.0.1", "bash repl.sh"], {
      input: input.map((l) => `${l}\r`).join(""),
      timeoutMs: 20_000,
    });
    expect(r.stdout).toContain("ran-42");
    expect(r.stdout).toContain("after-2");
    expect(r.stdout).toContain("alone-5");
    expect(r.stdout.match(/airlock: rm is not allowed here/g)).toHaveLength(2);
    expect(readFileSync(probe, "utf8")).toBe("keep\n");
    expect(r.code).toBe(0);
  });

  it("refuses programs that start a shell or a multiplexer reading the terminal", async () => {
    for (const command of ["bash", "tmux", "screen", "script -q /dev/null"]) {
      const r = await w.client("ssh", token, ["-tt", "-p", String(w.sshPort), "web1@127.0.0.1", command], { input: "rm -f x\r" });
      expect(r.code, command).toBe(126);
      expect(r.stdout + r.stderr, command).toMatch(/airlock: [^\n]*(reads its|starts a shell|cannot see)/);
    }
  });
});

describe("ssh file transfer", () => {
  const sizes = 3 * 1024 * 1024 + 17;

  it("copies with legacy scp (-O) up and down", async () => {
    const local = join(w.dir, "up.bin");
    const data = randomBytes(sizes);
    writeFileSync(local, data);
    const up = await w.client("scp", token, ["-O", "-P", String(w.sshPort), local, `web1@127.0.0.1:${w.sshd.home}/airlock-scp-up.bin`]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const down = join(w.dir, "down.bin");
    const r = await w.client("scp", token, ["-O", "-P", String(w.sshPort), `web1@127.0.0.1:${w.sshd.home}/airlock-scp-up.bin`, down]);
    expect(r.code).toBe(0);
    expect(createHash("sha256").update(readFileSync(down)).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    // Each direction was one legacy scp server command, judged and audited like any exec.
    const statements = [...readAudit().matchAll(/"statement":"(scp [^"]*)"/g)].map((m) => m[1] ?? "");
    expect(statements.some((c) => / -t /.test(c) && isFileTransfer(c))).toBe(true);
    expect(statements.some((c) => / -f /.test(c) && isFileTransfer(c))).toBe(true);
    // Passed raw (the plan said so) and recorded as a transfer: sizes and hashes, not content.
    const upload = await recordedSession(`(file transfer: scp -t ${w.sshd.home}/airlock-scp-up.bin)`);
    expect(upload).toMatch(/bytesFromClient=(\d+) bytesToClient=\d+ sha256FromClient=[0-9a-f]{64} sha256ToClient=[0-9a-f]{64}/);
    expect(Number(/bytesFromClient=(\d+)/.exec(upload ?? "")?.[1])).toBeGreaterThan(sizes);
    expect(readAudit()).toMatch(/"kind":"ssh.transfer"/);
  });

  it("copies with modern scp (over sftp) and sftp, recording file operations with sizes and hashes", async () => {
    const local = join(w.dir, "up2.bin");
    const data = randomBytes(sizes);
    writeFileSync(local, data);
    const up = await w.client("scp", token, ["-P", String(w.sshPort), local, `web1@127.0.0.1:${w.sshd.home}/airlock-sftp-up.bin`]);
    expect(up.code).toBe(0);
    const batch = join(w.dir, "batch");
    const remote = `${w.sshd.home}/airlock-sftp-up.bin`;
    writeFileSync(batch, `get ${remote} ${join(w.dir, "down2.bin")}\nls\nrm ${remote}\n`);
    const r = await w.client("sftp", token, ["-P", String(w.sshPort), "-b", batch, "web1@127.0.0.1"]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(w.dir, "down2.bin")).equals(data)).toBe(true);
    const hash = createHash("sha256").update(data).digest("hex");
    // sftp exits before the gateway has closed its session and flushed its recording: wait for it.
    const collect = async (): Promise<string> => {
      const sessions = (await w.gw.api("/v1/sessions?limit=50")).body as { sessions: { id: string }[] };
      let all = "";
      for (const s of sessions.sessions) all += JSON.stringify((await w.gw.api(`/v1/sessions/${s.id}`)).body);
      return all;
    };
    const ops = await until("the sftp session's recorded operations", async () => {
      const all = await collect();
      return all.includes(`sftp remove ${remote}`) ? all : undefined;
    }, 10_000);
    expect(ops).toContain(`sftp wrote ${sizes} bytes: ${remote}`);
    expect(ops).toContain(`sftp read ${sizes} bytes: ${remote}`);
    expect(ops).toContain(`sftp remove ${remote}`);
    // The recorded entries carry the details too: sizes and SHA-256 of the bytes moved.
    expect(ops).toContain(`bytesWritten=${sizes}`);
    expect(ops).toContain(`sha256Written=${hash}`);
    expect(ops).toContain(`sha256Read=${hash}`);
    const audit = readAudit();
    expect(audit).toContain(hash);
  });
});

/** Poll `fn` until it returns a value (10 s at most). */
async function eventually<T>(fn: () => Promise<T | undefined>): Promise<T | undefined> {
  for (let i = 0; i < 100; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** The cast (asciicast text) of the session whose recording contains `text`. */
function castContaining(text: string): Promise<string | undefined> {
  return eventually(async () => {
    const sessions = (await w.gw.api("/v1/sessions?limit=100")).body as { sessions: { id: string }[] };
    for (const s of sessions.sessions) {
      const cast = await w.gw.api(`/v1/sessions/${s.id}/cast`);
      if (cast.status === 200 && cast.text.includes(text)) return cast.text;
    }
    return undefined;
  });
}

function readAudit(): string {
  const dir = join(w.gw.dataDir, "audit");
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), "utf8"))
    .join("");
}

function forwardOut(c: Awaited<ReturnType<SshWorld["ssh2Client"]>>, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => c.forwardOut("127.0.0.1", 40000, "127.0.0.1", port, (err, ch) => (err === undefined ? resolve(ch) : reject(err))));
}

describe("ssh port forwarding", () => {
  it("forwards to a destination a policy allows", async () => {
    const c = await w.ssh2Client("web1", token);
    try {
      const ch = await forwardOut(c, echoPort);
      const got = new Promise<string>((r) => ch.once("data", (d: Buffer) => r(d.toString())));
      ch.write("ping through airlock");
      expect(await got).toBe("ping through airlock");
      ch.end();
      // The closed forward is recorded with its byte counts (20 bytes each way).
      const recorded = await eventually(async () => {
        const sessions = (await w.gw.api("/v1/sessions?limit=100")).body as { sessions: { id: string }[] };
        for (const s of sessions.sessions) {
          const show = JSON.stringify((await w.gw.api(`/v1/sessions/${s.id}`)).body);
          if (show.includes(`forward to 127.0.0.1:${echoPort} closed`)) return show;
        }
        return undefined;
      });
      expect(recorded).toContain("bytesFromClient=20 bytesToClient=20");
    } finally {
      c.end();
    }
  });

  it("refuses a destination no policy allows", async () => {
    const c = await w.ssh2Client("web1", token);
    try {
      await expect(forwardOut(c, w.sshd.port)).rejects.toThrow();
    } finally {
      c.end();
    }
  });

  it("refuses remote forwarding (ssh2 forwardIn, and the real ssh -R with ExitOnForwardFailure)", async () => {
    const c = await w.ssh2Client("web1", token);
    try {
      await expect(new Promise((resolve, reject) => c.forwardIn("127.0.0.1", 0, (err) => (err === undefined ? resolve(undefined) : reject(err))))).rejects.toThrow();
      // The session still works afterwards.
      const r = await w.ssh("web1", token, "echo after");
      expect(r.stdout).toBe("after\n");
    } finally {
      c.end();
    }
    const { freePort } = await import("./harness/ports.js");
    const remote = await freePort();
    const r = await w.client("ssh", token, ["-R", `${remote}:127.0.0.1:${echoPort}`, "-o", "ExitOnForwardFailure=yes", "-p", String(w.sshPort), "web1@127.0.0.1", "echo forwarded"]);
    expect(r.code).toBe(255);
    expect(r.stdout).not.toContain("forwarded");
    expect(r.stderr).toMatch(/remote port forwarding failed/i);
  });

  it("refuses X11 and agent forwarding requests on a session channel", async () => {
    const ssh2 = (await import("ssh2")).default;
    const connectWith = (extra: Record<string, unknown>): Promise<InstanceType<typeof ssh2.Client>> =>
      new Promise((resolve, reject) => {
        const c = new ssh2.Client();
        c.once("ready", () => {
          c.on("error", () => undefined); // a reset at the end is not what is tested
          resolve(c);
        });
        c.once("error", reject);
        c.connect({ host: "127.0.0.1", port: w.sshPort, username: "web1", password: token, readyTimeout: 10_000, ...extra });
      });
    const execWith = (c: InstanceType<typeof ssh2.Client>, options: Record<string, unknown>): Promise<string> =>
      new Promise((resolve, reject) => {
        c.exec("echo ran", options, (err, ch) => {
          if (err !== undefined) {
            reject(err);
            return;
          }
          let out = "";
          ch.on("data", (d: Buffer) => (out += d.toString()));
          ch.on("close", () => resolve(out));
        });
      });
    const x = await connectWith({});
    try {
      await expect(execWith(x, { x11: true })).rejects.toThrow(/X11/);
      await expect(execWith(x, {})).resolves.toBe("ran\n");
    } finally {
      x.end();
    }
    // An agent socket that does not exist: the gateway must refuse before anyone could use it.
    const a = await connectWith({ agent: join(w.dir, "no-agent.sock"), agentForward: true });
    try {
      await expect(execWith(a, {})).rejects.toThrow(/agent forwarding/);
    } finally {
      a.end();
    }
  });

  it("forwards with the real ssh -L", async () => {
    const { freePort } = await import("./harness/ports.js");
    const local = await freePort();
    const { spawn } = await import("node:child_process");
    const { askpass, clientOptions } = await import("./harness/sshd.js");
    const child = spawn("ssh", [...clientOptions("password"), "-N", "-L", `${local}:127.0.0.1:${echoPort}`, "-p", String(w.sshPort), "web1@127.0.0.1"], {
      env: { ...process.env, DISPLAY: ":0", SSH_ASKPASS_REQUIRE: "force", SSH_ASKPASS: askpass(w.dir, token) },
      stdio: "ignore",
    });
    try {
      let answer = "";
      for (let i = 0; i < 100 && answer === ""; i++) {
        answer = await new Promise<string>((resolve) => {
          const s = connect(local, "127.0.0.1");
          s.once("error", () => resolve(""));
          s.once("connect", () => s.write("hello -L"));
          s.once("data", (d: Buffer) => {
            resolve(d.toString());
            s.destroy();
          });
          s.once("close", () => resolve(""));
        });
        if (answer === "") await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer).toBe("hello -L");
    } finally {
      child.kill();
    }
  });
});

/** Audit records of refused protocol requests, by feature. */
function refusedRequests(): Map<string, { statement?: string; code?: string; decision?: string }> {
  const out = new Map<string, { statement?: string; code?: string; decision?: string }>();
  for (const line of readAudit().split("\n")) {
    if (!line.includes('"protocol.request"')) continue;
    const r = JSON.parse(line) as { type: string; statement?: string; code?: string; decision?: string; details?: { feature?: string } };
    const feature = r.details?.feature;
    if (r.type === "protocol.request" && feature !== undefined) out.set(feature, { ...(r.statement === undefined ? {} : { statement: r.statement }), ...(r.code === undefined ? {} : { code: r.code }), ...(r.decision === undefined ? {} : { decision: r.decision }) });
  }
  return out;
}

/** The recorded session (as the API shows it) that contains `text`. */
function recordedSession(text: string): Promise<string | undefined> {
  return eventually(async () => {
    const sessions = (await w.gw.api("/v1/sessions?limit=100")).body as { sessions: { id: string }[] };
    for (const s of sessions.sessions) {
      const show = JSON.stringify((await w.gw.api(`/v1/sessions/${s.id}`)).body);
      if (show.includes(text)) return show;
    }
    return undefined;
  });
}

describe("ssh requests the gateway does not serve (judged, audited, recorded, refused natively)", () => {
  it("refuses env (SendEnv), naming the variable, never its value; the command still runs", async () => {
    const value = `envsecret-${randomBytes(8).toString("hex")}`;
    process.env["AIRLOCK_TEST_SECRET"] = value;
    try {
      const r = await w.client("ssh", token, ["-o", "SendEnv=AIRLOCK_TEST_SECRET", "-p", String(w.sshPort), "web1@127.0.0.1", "echo env-ran:$AIRLOCK_TEST_SECRET"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("env-ran:\n");
    } finally {
      delete process.env["AIRLOCK_TEST_SECRET"];
    }
    const audited = await eventually(() => Promise.resolve([...refusedRequests()].find(([f, a]) => f === "ssh.env" && a.statement?.includes("AIRLOCK_TEST_SECRET") === true)));
    expect(audited?.[1]).toEqual({ statement: "the environment variable AIRLOCK_TEST_SECRET", code: "GW_UNSUPPORTED", decision: "deny" });
    expect(readAudit()).not.toContain(value);
    const recorded = await recordedSession("the environment variable AIRLOCK_TEST_SECRET");
    expect(recorded).toContain("ssh.env");
    expect(recorded).not.toContain(value);
  });

  it("refuses X11 forwarding (ssh -Y) and agent forwarding (ssh -A), answering in order: the command still runs", async () => {
    const x = await w.client("ssh", token, ["-Y", "-p", String(w.sshPort), "web1@127.0.0.1", "echo x11-ran"]);
    expect(x.stdout).toBe("x11-ran\n");
    expect(x.code).toBe(0);
    expect(x.stderr).toMatch(/X11 forwarding request failed/);
    const { execFile } = await import("node:child_process");
    const sock = join(w.dir, "agent.sock");
    const agent = await new Promise<number>((resolve, reject) =>
      execFile("ssh-agent", ["-a", sock], (err, stdout) => (err === null ? resolve(Number(/SSH_AGENT_PID=(\d+)/.exec(stdout)?.[1] ?? 0)) : reject(new Error("ssh-agent did not start", { cause: err })))),
    );
    process.env["SSH_AUTH_SOCK"] = sock;
    try {
      const a = await w.client("ssh", token, ["-A", "-p", String(w.sshPort), "web1@127.0.0.1", "echo agent-ran:${SSH_AUTH_SOCK:-none}"]);
      expect(a.stdout).toBe("agent-ran:none\n");
      expect(a.code).toBe(0);
    } finally {
      delete process.env["SSH_AUTH_SOCK"];
      if (agent > 0) process.kill(agent);
    }
    const features = await eventually(() => Promise.resolve(refusedRequests().has("ssh.agent") && refusedRequests().has("ssh.x11") ? refusedRequests() : undefined));
    expect(features?.get("ssh.x11")).toEqual({ statement: "X11 forwarding", code: "GW_UNSUPPORTED", decision: "deny" });
    expect(features?.get("ssh.agent")).toEqual({ statement: "agent forwarding", code: "GW_UNSUPPORTED", decision: "deny" });
    expect(await recordedSession("X11 forwarding is not supported through the gateway")).toContain("ssh.x11");
    expect(await recordedSession("agent forwarding is not supported through the gateway")).toContain("ssh.agent");
  });

  it("refuses remote forwarding (ssh -R) and unknown subsystems (ssh -s)", async () => {
    const { freePort } = await import("./harness/ports.js");
    const remote = await freePort();
    const r = await w.client("ssh", token, ["-R", `${remote}:127.0.0.1:${echoPort}`, "-o", "ExitOnForwardFailure=yes", "-p", String(w.sshPort), "web1@127.0.0.1", "echo forwarded"]);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/remote port forwarding failed/i);
    const s = await w.client("ssh", token, ["-s", "-p", String(w.sshPort), "web1@127.0.0.1", "netconf"]);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toMatch(/subsystem request failed/i);
    const features = await eventually(() => Promise.resolve(refusedRequests().has("ssh.subsystem.netconf") && refusedRequests().has("ssh.global.tcpip-forward") ? refusedRequests() : undefined));
    expect(features?.get("ssh.global.tcpip-forward")).toEqual({ statement: `remote port forwarding of localhost:${remote}` /* OpenSSH's default bind address */, code: "GW_UNSUPPORTED", decision: "deny" });
    expect(features?.get("ssh.subsystem.netconf")).toEqual({ statement: "the subsystem netconf", code: "GW_UNSUPPORTED", decision: "deny" });
    expect(await recordedSession(`remote port forwarding of localhost:${remote}`)).toContain("ssh.global.tcpip-forward");
    expect(await recordedSession("the subsystem netconf is not supported")).toContain("ssh.subsystem.netconf");
  });
});

describe("ssh identity and target checks", () => {
  it("logs in with a service account's registered public key", async () => {
    const { runSshClient, clientOptions } = await import("./harness/sshd.js");
    const k = await runSshClient("ssh", [...clientOptions("publickey"), "-i", w.agentKeyPath, "-o", "IdentitiesOnly=yes", "-p", String(w.sshPort), "web1@127.0.0.1", "echo by-key"]);
    expect(k.stdout).toBe("by-key\n");
    expect(k.code).toBe(0);
  });

  it("refuses bad tokens, unknown connections and connections the groups may not use, auditing each", async () => {
    const bad = await w.ssh("web1", "not-a-token", "echo hi");
    expect(bad.code).toBe(255);
    expect(bad.stdout).toBe("");
    const unknown = await w.ssh("nosuch", token, "echo hi");
    expect(unknown.code).toBe(255);
    const denied = await w.ssh("private", token, "echo hi");
    expect(denied.code).toBe(255);
    const audit = readAudit();
    expect(audit).toContain('"auth.failure"');
    expect(audit).toMatch(/"connection":"nosuch"[^\n]*"decision":"deny"|"decision":"deny"[^\n]*"connection":"nosuch"/);
    expect(audit).toMatch(/GW_ACCESS_DENIED/);
  });

  it("closes a connection after six failed attempts", async () => {
    const { default: ssh2 } = await import("ssh2");
    let attempts = 0;
    const outcome = await new Promise<string>((resolve) => {
      const c = new ssh2.Client();
      c.once("ready", () => resolve("ready"));
      c.once("error", (e) => resolve(`error: ${e.message}`));
      c.once("close", () => resolve("closed"));
      c.connect({
        host: "127.0.0.1",
        port: w.sshPort,
        username: "web1",
        readyTimeout: 10_000,
        authHandler: (_methods, _partial, next) => {
          attempts++;
          if (attempts > 20) return false;
          next({ type: "password", username: "web1", password: `bad-${attempts}` });
          return undefined;
        },
      });
    });
    expect(outcome).not.toBe("ready");
    expect(attempts).toBeLessThanOrEqual(7);
  });

  it("refuses a target whose host key is not the pinned one, saying why", async () => {
    const r = await w.ssh("wrongkey", token, "echo hi");
    expect(r.code).toBe(255);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('airlock: connection "wrongkey": the target\'s host key does not match the pinned hostKey');
  });

  it("never lets the target's password reach the client, the logs or the recordings", async () => {
    const ok = await w.ssh("canary", token, "echo canary-ok; echo $SSH_CONNECTION >/dev/null");
    expect(ok.stderr + ok.stdout).toBe("canary-ok\n");
    const denied = await w.ssh("canary", token, "rm -rf /");
    expect(denied.code).toBe(126);
    const mismatch = await w.ssh("wrongkey", token, "echo hi");
    const c = await w.ssh2Client("canary", token);
    const { ch, out } = await openShell(c, { rows: 24, cols: 80 });
    ch.write("echo shell-ok\r");
    await waitFor(out, ch, /shell-ok/);
    ch.write("exit\r");
    await new Promise((r) => ch.once("close", r));
    c.end();
    await new Promise((r) => setTimeout(r, 300));
    for (const seen of [ok.stdout, ok.stderr, denied.stdout, denied.stderr, mismatch.stdout, mismatch.stderr, out.text]) expect(seen).not.toContain(CANARY);
    expect(w.gw.logs()).not.toContain(CANARY);
    expect(readAudit()).not.toContain(CANARY);
    const recordings = join(w.gw.dataDir, "recordings");
    let all = "";
    for (const shard of readdirSync(recordings)) for (const f of readdirSync(join(recordings, shard))) all += readFileSync(join(recordings, shard, f), "utf8");
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(CANARY);
  });

  it("ends a live SSH session when its token is revoked", async () => {
    const t = await w.gw.mint("agent", "10m");
    const tokenId = (JSON.parse(Buffer.from(t.split(".")[1] ?? "", "base64url").toString()) as { jti: string }).jti;
    const c = await w.ssh2Client("web1", t);
    const { ch, out } = await openShell(c, { rows: 24, cols: 80 });
    ch.write("echo alive\r");
    await waitFor(out, ch, /alive/);
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    const res = await w.gw.api(`/v1/tokens/${tokenId}/revoke`, { method: "POST", body: {} });
    expect(res.status).toBe(200);
    await closed;
    expect(out.text).toContain("airlock: the access token was revoked");
  });
});

describe("ssh recordings", () => {
  it("records commands in the session and the terminal as asciicast v2, served by the API", async () => {
    const c = await w.ssh2Client("web1", token);
    const { ch, out } = await openShell(c, { rows: 30, cols: 90 });
    ch.write("echo recorded-$((6*7))\r");
    await waitFor(out, ch, /recorded-42/);
    ch.write("exit\r");
    await new Promise((r) => ch.once("close", r));
    c.end();
    await new Promise((r) => setTimeout(r, 500));
    const sessions = (await w.gw.api("/v1/sessions?limit=100")).body as { sessions: { id: string; protocol?: string }[] };
    let found: string | undefined;
    for (const s of sessions.sessions) {
      const cast = await w.gw.api(`/v1/sessions/${s.id}/cast`);
      if (cast.status === 200 && cast.text.includes("recorded-42")) {
        found = cast.text;
        const header = JSON.parse(cast.text.split("\n")[0] ?? "{}") as { version: number; width: number; height: number };
        expect(header).toMatchObject({ version: 2, width: 90, height: 30 });
        expect(cast.text).toMatch(/\[[0-9.]+,"i","echo recorded/);
        const show = JSON.stringify((await w.gw.api(`/v1/sessions/${s.id}`)).body);
        expect(show).toContain("echo recorded-$((6*7))");
        // `airlock sessions replay` plays the cast.
        const { runCli } = await import("../src/cli/cli.js");
        const { PassThrough } = await import("node:stream");
        const stdout = new PassThrough();
        const stderr = new PassThrough();
        let played = "";
        stdout.on("data", (d: Buffer) => (played += d.toString()));
        const code = await runCli(["sessions", "replay", s.id, "--speed", "0", "--api", w.gw.apiUrl], {
          stdout,
          stderr,
          env: { AIRLOCK_TOKEN: w.gw.gw.adminToken },
          cwd: w.dir,
        });
        expect(code).toBe(0);
        expect(played).toContain("recorded-42");
        break;
      }
    }
    expect(found).toBeDefined();
    const none = await w.gw.api(`/v1/sessions/00000000-0000-4000-8000-000000000000/cast`);
    expect(none.status).toBe(404);
  });
});
