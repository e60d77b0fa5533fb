/**
 * pgbench select-only through the network-resident agent vs the gateway dialing directly, side
 * by side in ONE run (issue 19): the same in-process gateway serves two connections to the same
 * PostgreSQL, `direct` (the gateway dials) and `via` (through a real `airlock agent` process over
 * a WebSocket on loopback). Runs alternate (direct, via, direct, via); medians are printed and
 * prepended to bench/agent-results.md. scp through the agent is not measured yet.
 *
 * Run: `npm run build --silent && node dist/bench/agent.js`. BENCH_DURATION (s, default 10),
 * BENCH_CLIENTS (default 4), BENCH_REPS (default 2).
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestGateway } from "../test/harness/gateway.js";
import { startPostgres } from "../test/harness/postgres.js";
import { until } from "../test/harness/until.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = existsSync(join(here, "..", "package.json")) ? join(here, "..") : join(here, "..", "..");
const DURATION = Number(process.env["BENCH_DURATION"] ?? 10);
const CLIENTS = Number(process.env["BENCH_CLIENTS"] ?? 4);
const REPS = Number(process.env["BENCH_REPS"] ?? 2);
const PASSWORD = "bench-pg-password";

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

async function main(): Promise<void> {
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
    ],
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
    const d = median(tps.direct);
    const v = median(tps.via);
    const text = [
      `## ${new Date().toISOString()} — pgbench -S, ${CLIENTS} clients, ${DURATION} s × ${REPS}, ${cpus().length} cores (shared with other work: the machine was loaded)`,
      "",
      "| path | select-only TPS (median) | runs |",
      "|---|---|---|",
      `| gateway dials directly | ${d.toFixed(0)} | ${tps.direct.map((x) => x.toFixed(0)).join(", ")} |`,
      `| through the agent (WebSocket tunnel, loopback) | ${v.toFixed(0)} | ${tps.via.map((x) => x.toFixed(0)).join(", ")} |`,
      "",
      `Ratio agent / direct: **${(v / d).toFixed(2)}**. scp through the agent: not measured yet.`,
      "",
    ].join("\n");
    const file = resolve(repo, "bench", "agent-results.md");
    const old = existsSync(file) ? readFileSync(file, "utf8") : "# Agent tunnel benchmarks (bench/agent.ts)\n\n";
    const [head, ...rest] = old.split("\n\n");
    writeFileSync(file, `${head ?? ""}\n\n${text}\n${rest.join("\n\n")}`);
    console.log(text);
  } finally {
    agent.kill("SIGKILL");
    await t.stop();
    await pg.stop();
  }
}

await main();
