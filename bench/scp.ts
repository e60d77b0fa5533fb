/**
 * scp throughput through the gateway vs direct, in one run (issue 6; goal ≥ 0.5× direct).
 *
 * Starts a real sshd (test/harness/sshd.ts, as root) and a gateway with an SSH listener, then
 * copies one file (default 256 MiB, `BENCH_SCP_MB`) with the real `scp`, both directions, in
 * alternating rounds (`BENCH_SCP_ROUNDS`, default 3): direct (the gateway's key) and through the
 * gateway (an Airlock token as the password). Reports medians; appends to bench/ssh-results.md
 * with `--record`.
 *
 *   npm run bench:scp [-- --record]
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, openSync, closeSync, rmSync, statSync, writeSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createLogger } from "../src/observability/logger.js";
import { parseConfig } from "../src/runtime/config.js";
import { startGateway } from "../src/runtime/gateway.js";
import { askpass, clientOptions, startSshd } from "../test/harness/sshd.js";

const MB = Number(process.env["BENCH_SCP_MB"] ?? 256);
const ROUNDS = Number(process.env["BENCH_SCP_ROUNDS"] ?? 3);
const record = process.argv.includes("--record");

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"], detached: true });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`${cmd} failed (${String(code)}): ${err}`));
      else resolvePromise(performance.now() - t0);
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]?.toFixed(1) ?? "?";
  const sshd = await startSshd();
  const work = mkdtempSync(join(tmpdir(), "airlock-bench-scp-"));
  const dataDir = join(work, "gw");
  const gw = await startGateway(
    parseConfig({
      dataDir,
      listen: { api: "127.0.0.1:0", ssh: "127.0.0.1:0" },
      serviceAccounts: [{ name: "bench", groups: ["bench"] }],
      connections: [{ name: "target", type: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, groups: ["bench"] }],
      policies: [{ name: "no-rm", match: { commands: ["rm"] }, action: "deny" }],
    }),
    { logger: createLogger({ level: "warn" }) },
  );
  try {
    const token = (await gw.tokens.mint("bench", { ttlMs: 3_600_000, createdBy: "bench" })).token;
    const file = join(work, "payload.bin");
    const fd = openSync(file, "w");
    const chunk = randomBytes(1024 * 1024);
    for (let i = 0; i < MB; i++) writeSync(fd, chunk);
    closeSync(fd);
    const bytes = statSync(file).size;
    const gwPort = gw.addresses.ssh?.port ?? 0;
    const base = ["-q", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"];
    const direct = [...base, "-i", sshd.clientKeyPath, "-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey", "-P", String(sshd.port)];
    const viaGw = ["-q", ...clientOptions("password"), "-P", String(gwPort)];
    const envDirect = { ...process.env, SSH_ASKPASS_REQUIRE: "never" };
    const envGw = { ...process.env, DISPLAY: ":0", SSH_ASKPASS_REQUIRE: "force", SSH_ASKPASS: askpass(work, token) };
    const results: Record<string, number[]> = { "direct up": [], "gateway up": [], "direct down": [], "gateway down": [] };
    for (let r = 0; r < ROUNDS; r++) {
      results["direct up"]?.push(await run("scp", [...direct, file, `${sshd.user}@127.0.0.1:${sshd.home}/bench-direct.bin`], envDirect));
      results["gateway up"]?.push(await run("scp", [...viaGw, file, `target@127.0.0.1:${sshd.home}/bench-gw.bin`], envGw));
      results["direct down"]?.push(await run("scp", [...direct, `${sshd.user}@127.0.0.1:${sshd.home}/bench-direct.bin`, join(work, "d1.bin")], envDirect));
      results["gateway down"]?.push(await run("scp", [...viaGw, `target@127.0.0.1:${sshd.home}/bench-gw.bin`, join(work, "d2.bin")], envGw));
    }
    const mibs = (ms: number): number => bytes / 1048576 / (ms / 1000);
    const line = (k: string): string => `| ${k} | ${median(results[k] ?? []).toFixed(0)} ms | ${mibs(median(results[k] ?? [])).toFixed(1)} MiB/s |`;
    const upRatio = mibs(median(results["gateway up"] ?? [])) / mibs(median(results["direct up"] ?? []));
    const downRatio = mibs(median(results["gateway down"] ?? [])) / mibs(median(results["direct down"] ?? []));
    const report = [
      `### scp ${MB} MiB, ${ROUNDS} rounds, medians (${new Date().toISOString().slice(0, 16)}, ${cpus().length} cores, Node ${process.version}, load average at start ${loadAtStart})`,
      "| path | time | throughput |",
      "|---|---|---|",
      line("direct up"),
      line("gateway up"),
      line("direct down"),
      line("gateway down"),
      "",
      `gateway/direct: upload ${upRatio.toFixed(2)}×, download ${downRatio.toFixed(2)}× (goal ≥ 0.5×). scp uses the SFTP subsystem (OpenSSH 9); the gateway runs in this process.`,
      "",
    ].join("\n");
    process.stdout.write(`${report}\n`);
    if (record) appendFileSync(join(process.cwd(), "bench", "ssh-results.md"), `${report}\n`);
  } finally {
    await gw.close();
    await sshd.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
