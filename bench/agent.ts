/**
 * pgbench select-only through the network-resident agent vs the gateway dialing directly, side
 * by side in ONE run (issue 19): the same in-process gateway serves two connections to the same
 * PostgreSQL, `direct` (the gateway dials) and `via` (through a real `airlock agent` process over
 * a WebSocket on loopback). Then scp (upload and download of one file, `BENCH_SCP_MB`, default
 * 64 MiB) to a real sshd the same two ways. Runs alternate (direct, via, direct, via); medians
 * are printed and prepended to bench/agent-results.md.
 *
 * Run: `npm run build --silent && node dist/bench/agent.js`. BENCH_DURATION (s, default 10),
 * BENCH_CLIENTS (default 4), BENCH_REPS (default 2).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, existsSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestGateway } from "../test/harness/gateway.js";
import { startPostgres } from "../test/harness/postgres.js";
import { until } from "../test/harness/until.js";
import { askpass, clientOptions, startSshd } from "../test/harness/sshd.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = existsSync(join(here, "..", "package.json")) ? join(here, "..") : join(here, "..", "..");
const DURATION = Number(process.env["BENCH_DURATION"] ?? 10);
const CLIENTS = Number(process.env["BENCH_CLIENTS"] ?? 4);
const REPS = Number(process.env["BENCH_REPS"] ?? 2);
const PASSWORD = "bench-pg-password";
const SCP_MB = Number(process.env["BENCH_SCP_MB"] ?? 64);

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    p.on("exit", (code) => (code === 0 ? ok(out) : fail(new Error(`${cmd} exited ${String(code)}: ${out.slice(-500)}`))));
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** Wall time of one command, in ms. */
async function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  await run(cmd, args, env);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const loadAtStart = (loadavg()[0] ?? 0).toFixed(1);
  const sshd = await startSshd();
  const work = mkdtempSync(join(tmpdir(), "airlock-bench-agent-"));
  const pg = await startPostgres({ users: [{ name: "app", password: PASSWORD, auth: "scram-sha-256" }], databases: ["bench"] });
  await pg.psql("alter database bench owner to app;", { database: "bench" });
  const bin = pg.binDir;
  await run(join(bin, "pgbench"), ["-i", "-s", "10", "-q", "-h", "127.0.0.1", "-p", String(pg.port), "-U", "app", "bench"], { PGPASSWORD: PASSWORD });
  const t = await startTestGateway({
    serviceAccounts: [
      { name: "edge", groups: ["edge"] },
      { name: "bot", groups: ["agents"] },
    ],
    agents: { groups: [{ name: "dc", allow: ["edge"] }] },
    connections: [
      { name: "direct", type: "postgres", host: "127.0.0.1", port: pg.port, database: "bench", user: "app", password: PASSWORD, groups: ["agents"], sslmode: "disable" },
      { name: "via", type: "postgres", host: "127.0.0.1", port: pg.port, database: "bench", user: "app", password: PASSWORD, via: "dc", groups: ["agents"], sslmode: "disable" },
      { name: "sshdirect", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, groups: ["agents"] },
      { name: "sshvia", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, groups: ["agents"], via: "dc" },
    ],
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0", ssh: "127.0.0.1:0" },
  });
  const agent = spawn(process.execPath, [join(repo, "bin", "airlock.js"), "agent", "--gateway", `ws://127.0.0.1:${t.gw.addresses.api?.port ?? 0}`, "--token", await t.mint("edge", "1h"), "--group", "dc"], { stdio: "ignore" });
  try {
    await until("agent connected", () => (t.gw.agents.list().length === 1 ? true : undefined), 30_000);
    const token = await t.mint("bot", "1h");
    const tps: Record<"direct" | "via", number[]> = { direct: [], via: [] };
    for (let r = 0; r < REPS; r++) {
      for (const path of ["direct", "via"] as const) {
        const out = await run(join(bin, "pgbench"), ["-S", "-n", "-c", String(CLIENTS), "-j", String(Math.min(2, CLIENTS)), "-T", String(DURATION), "-h", "127.0.0.1", "-p", String(t.pgPort), "-U", "bot", path], { PGPASSWORD: token });
        const m = /tps = ([\d.]+)/.exec(out);
        tps[path].push(Number(m?.[1] ?? 0));
        console.log(`${path}: ${m?.[1] ?? "?"} TPS`);
      }
    }
    // scp: the same file up and down through the gateway, dialing sshd directly or through the agent.
    const file = join(work, "payload.bin");
    const fd = openSync(file, "w");
    const chunk = randomBytes(1024 * 1024);
    for (let i = 0; i < SCP_MB; i++) writeSync(fd, chunk);
    closeSync(fd);
    const bytes = statSync(file).size;
    const scpArgs = ["-q", ...clientOptions("password"), "-P", String(t.gw.addresses.ssh?.port ?? 0)];
    const scpEnv = { DISPLAY: ":0", SSH_ASKPASS_REQUIRE: "force", SSH_ASKPASS: askpass(work, token) };
    const scp: Record<string, number[]> = { "direct up": [], "via up": [], "direct down": [], "via down": [] };
    for (let r = 0; r < REPS; r++) {
      for (const path of ["direct", "via"] as const) {
        const conn = path === "direct" ? "sshdirect" : "sshvia";
        scp[`${path} up`]?.push(await timed("scp", [...scpArgs, file, `${conn}@127.0.0.1:${sshd.home}/bench-${path}.bin`], scpEnv));
        scp[`${path} down`]?.push(await timed("scp", [...scpArgs, `${conn}@127.0.0.1:${sshd.home}/bench-${path}.bin`, join(work, `down-${path}.bin`)], scpEnv));
      }
    }
    const mibs = (k: string): number => bytes / 1048576 / (median(scp[k] ?? []) / 1000);
    const d = median(tps.direct);
    const v = median(tps.via);
    const text = [
      `## ${new Date().toISOString()} — pgbench -S, ${CLIENTS} clients, ${DURATION} s × ${REPS}, ${cpus().length} cores, load average at start ${loadAtStart}`,
      "",
      "| path | select-only TPS (median) | runs |",
      "|---|---|---|",
      `| gateway dials directly | ${d.toFixed(0)} | ${tps.direct.map((x) => x.toFixed(0)).join(", ")} |`,
      `| through the agent (WebSocket tunnel, loopback) | ${v.toFixed(0)} | ${tps.via.map((x) => x.toFixed(0)).join(", ")} |`,
      "",
      `Ratio agent / direct: **${(v / d).toFixed(2)}**.`,
      "",
      `scp of ${SCP_MB} MiB through the gateway (real sshd, SFTP subsystem), medians of ${REPS}:`,
      "",
      "| path | upload MiB/s | download MiB/s |",
      "|---|---|---|",
      `| gateway dials directly | ${mibs("direct up").toFixed(1)} | ${mibs("direct down").toFixed(1)} |`,
      `| through the agent | ${mibs("via up").toFixed(1)} | ${mibs("via down").toFixed(1)} |`,
      "",
      `Ratio agent / direct: upload **${(mibs("via up") / mibs("direct up")).toFixed(2)}**, download **${(mibs("via down") / mibs("direct down")).toFixed(2)}**.`,
      "",
    ].join("\n");
    const results = resolve(repo, "bench", "agent-results.md");
    const old = existsSync(results) ? readFileSync(results, "utf8") : "# Agent tunnel benchmarks (bench/agent.ts)\n\n";
    const [head, ...rest] = old.split("\n\n");
    writeFileSync(results, `${head ?? ""}\n\n${text}\n${rest.join("\n\n")}`);
    console.log(text);
  } finally {
    agent.kill("SIGKILL");
    await t.stop();
    await pg.stop();
    await sshd.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
