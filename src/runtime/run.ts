/**
 * `airlock gateway`: run the gateway with `--config FILE`, `AIRLOCK_CONFIG`, `./airlock.yaml`,
 * or — when none exists — the built-in demo (embedded store, embedded demo PostgreSQL with
 * sample customer data, a demo service account), printing commands a newcomer can paste.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import type { Writable } from "node:stream";
import { isGatewayError } from "../core/errors.js";
import { createLogger } from "../observability/logger.js";
import { loadConfigFile, parseConfig, type Config, type RawConfig } from "./config.js";
import { DEMO_POLICIES } from "./demo-policies.js";
import { DEMO_CONNECTION, DEMO_GROUP, DEMO_SERVICE_ACCOUNT, startDemoTarget, type DemoTarget } from "./demo.js";
import { startGateway, type RunningGateway } from "./gateway.js";
import { isWorkerProcess, runPrimary, workerCount, workerDone, workerIdentity, workerReady, workerStop, type WorkerIdentity } from "./workers.js";

export interface GatewayCommandOptions {
  readonly configPath?: string;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Resolves when the gateway should stop (default: SIGINT or SIGTERM). */
  readonly until?: Promise<void>;
  /** `--workers N`: processes sharing the listeners (runtime/workers.ts); default: see workerCount. */
  readonly workers?: number;
}

export function demoConfig(cwd: string, target: DemoTarget, dataDir: string): Config {
  const raw: RawConfig = {
    dataDir,
    listen: { api: "127.0.0.1:8780", postgres: "127.0.0.1:15432" },
    tls: { selfSigned: true },
    serviceAccounts: [{ name: DEMO_SERVICE_ACCOUNT, groups: [DEMO_GROUP], description: "the demo agent" }],
    connections: [
      {
        name: DEMO_CONNECTION,
        type: "postgres",
        host: target.host,
        port: target.port,
        database: target.database,
        user: target.user,
        password: `file:${target.passwordFile}`,
        groups: [DEMO_GROUP],
        sslmode: "disable",
      },
    ],
    policies: DEMO_POLICIES,
  };
  return parseConfig(raw, resolve(cwd, "airlock.demo.yaml"));
}

function banner(gw: RunningGateway, demo: boolean, worker: WorkerIdentity | undefined): string {
  const lines: string[] = [];
  const api = gw.addresses.api;
  const pg = gw.addresses.postgres;
  lines.push("", `Airlock gateway is running${demo ? " with the built-in demo" : ""}${worker === undefined ? "" : ` (${worker.workers} worker processes sharing these listeners)`}.`);
  if (api !== undefined) lines.push(`  API and metrics:  http://${api.host}:${api.port}`);
  const link = demo ? gw.consoleLoginLink() : undefined;
  if (link !== undefined) lines.push(`  Web console:      ${link}   (one-time admin login link, 15 minutes)`);
  if (pg !== undefined) lines.push(`  PostgreSQL:       ${pg.host}:${pg.port}${gw.tls === undefined ? "" : " (TLS available)"}`);
  lines.push(`  Data directory:   ${gw.config.dataDir}`);
  if (demo && pg !== undefined) {
    const ssl = gw.tls === undefined ? "" : " sslmode=require";
    lines.push(
      "",
      "Try it (in another terminal, from this directory):",
      `  TOKEN=$(npx airlock token create --service-account ${DEMO_SERVICE_ACCOUNT} --ttl 1h)`,
      `  psql "host=${pg.host} port=${pg.port} dbname=${DEMO_CONNECTION} user=${DEMO_SERVICE_ACCOUNT} password=$TOKEN${ssl}" -c "select id, name, email, card_number from customers limit 5"`,
      `  psql "host=${pg.host} port=${pg.port} dbname=${DEMO_CONNECTION} user=${DEMO_SERVICE_ACCOUNT} password=$TOKEN${ssl}" -c "drop table customers"   # refused by a policy`,
      `  psql "host=${pg.host} port=${pg.port} dbname=${DEMO_CONNECTION} user=${DEMO_SERVICE_ACCOUNT} password=$TOKEN${ssl}" -c "delete from orders where id = 3"   # held until approved:`,
      "  npx airlock approvals list",
      "  npx airlock approvals approve <APPROVAL_ID>   # or: deny <APPROVAL_ID> --reason TEXT",
      "  npx airlock sessions list",
      "  npx airlock sessions show <SESSION_ID>",
      "  npx airlock audit verify",
      "",
      "Stop with Ctrl-C. To use your own targets, write ./airlock.yaml (see README).",
    );
  }
  lines.push("");
  return lines.join("\n");
}

export async function runGatewayCommand(options: GatewayCommandOptions): Promise<number> {
  const configPath = options.configPath ?? options.env["AIRLOCK_CONFIG"] ?? (existsSync(resolve(options.cwd, "airlock.yaml")) ? "airlock.yaml" : undefined);
  // One worker of `--workers N`: the primary sends who it is, then it runs as a gateway.
  const worker = isWorkerProcess() ? await workerIdentity() : undefined;
  let demo: DemoTarget | undefined;
  let gw: RunningGateway | undefined;
  try {
    let config: Config;
    if (configPath !== undefined) {
      config = loadConfigFile(resolve(options.cwd, configPath));
      if (worker === undefined) {
        const n = workerCount(config, options.workers, availableParallelism());
        if (n > 1) return await runPrimary({ config, workers: n, stdout: options.stdout, stderr: options.stderr, env: options.env, until: options.until?.then(() => "SIGINT" as const) ?? untilSignal() });
      }
    } else if (options.workers !== undefined && options.workers > 1) {
      options.stderr.write("airlock: --workers needs a configuration with the PostgreSQL store (store.url); the built-in demo runs one process\n");
      return 1;
    } else {
      const dataDir = resolve(options.cwd, ".airlock");
      const bootLogger = createLogger({ level: "warn" });
      options.stdout.write("No airlock.yaml found: starting the built-in demo (first start initialises a demo PostgreSQL)…\n");
      demo = await startDemoTarget(dataDir, bootLogger);
      config = demoConfig(options.cwd, demo, dataDir);
    }
    gw = await startGateway(config, worker === undefined ? {} : { worker });
    if (worker === undefined || worker.index === 1) options.stdout.write(banner(gw, demo !== undefined, worker));
    if (worker !== undefined) workerReady();
    const signal = await (worker !== undefined ? workerStop() : (options.until ?? untilSignal()));
    if (signal === "SIGTERM") {
      // An orchestrator's stop: drain (readiness fails, no new connections, live sessions may
      // finish for instance.drainTimeout), then close() ends what is left.
      const left = await gw.drain(config.instance.drainTimeout);
      if (left > 0) gw.logger.info({ sessions: left }, "drain period over; ending the remaining sessions");
    }
    return 0;
  } catch (e) {
    const message = isGatewayError(e) ? e.message : e instanceof Error ? e.message : String(e);
    options.stderr.write(`airlock: ${message}\n`);
    return 1;
  } finally {
    await gw?.close();
    await demo?.stop().catch(() => undefined);
    if (worker !== undefined) workerDone();
  }
}

function untilSignal(): Promise<"SIGINT" | "SIGTERM"> {
  return new Promise((resolve) => {
    const done = (signal: "SIGINT" | "SIGTERM"): void => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve(signal);
    };
    const onInt = (): void => done("SIGINT");
    const onTerm = (): void => done("SIGTERM");
    process.once("SIGINT", onInt);
    process.once("SIGTERM", onTerm);
  });
}
