/**
 * The `airlock` command (contract: INTERFACE.md "The command line"). `runCli` runs one
 * invocation in-process and returns the exit status: 0 success, 1 failure, 2 usage error.
 * Every error is one line on stderr: `airlock: <message>`.
 */
import type { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { decodeJwt } from "jose";
import { z } from "zod";
import { isGatewayError } from "../core/errors.js";
import { configJsonSchema } from "../runtime/config.js";
import { parseDuration } from "../runtime/duration.js";
import { connect, configPath, loadConfigOneLine } from "./context.js";
import type { ConnectOptions } from "./context.js";
import { CliError } from "./errors.js";
import { playCast } from "./replay.js";
import { parseEntries, renderEntry, sessionHeader, sessionSchema, sessionsTable } from "./format.js";
import { registerApprovalCommands } from "./approvals.js";
import { registerKubeconfigCommand } from "./kubeconfig.js";
import { registerLoginCommand } from "./login.js";
import { registerMcpCommand } from "./mcp.js";
import { registerAgentCommands } from "./agent.js";

export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** One chain per gateway instance sharing the store (issue 18). */
const chainVerdict = z.object({ chain: z.string(), ok: z.boolean(), records: z.number(), lastSeq: z.number().optional(), failedSeq: z.number().optional(), reason: z.string().optional(), detail: z.string().optional() });
const auditVerifySchema = z.union([
  z.object({ ok: z.literal(true), records: z.number(), lastSeq: z.number(), chains: z.array(chainVerdict).optional() }),
  z.object({ ok: z.literal(false), records: z.number(), failedSeq: z.number(), reason: z.string(), detail: z.string(), chains: z.array(chainVerdict).optional() }),
]);

function intOption(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

function speedOption(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number ≥ 0 (0 = no delay)");
  return n;
}

function ttlOption(value: string): string | number {
  if (/^\d+$/.test(value)) return Number(value);
  try {
    parseDuration(value);
  } catch {
    throw new InvalidArgumentError(`invalid duration "${value}" (use e.g. 30s, 15m, 1h)`);
  }
  return value;
}

/** A token id (UUID) or a whole token, from which the id (`jti`) is read without verifying. */
/** The message of an API error body, else the start of the text. */
function errorLine(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof j.error?.message === "string") return j.error.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

export function tokenIdFrom(arg: string): string {
  const text = arg.trim();
  if (text.split(".").length === 3) {
    let jti: unknown;
    try {
      jti = decodeJwt(text).jti;
    } catch {
      throw new CliError("the argument looks like a token but cannot be decoded", 2);
    }
    if (typeof jti !== "string" || jti === "") throw new CliError("the token has no id (jti)", 2);
    return jti;
  }
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(text)) throw new CliError(`"${text.slice(0, 60)}" is not a token id`, 2);
  return text;
}

function withApi(cmd: Command): Command {
  return cmd
    .option("--api <url>", "gateway API address (default: AIRLOCK_API, listen.api of the config, http://127.0.0.1:8780)")
    .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml)");
}

function connectOptions(opts: { api?: string; config?: string }): ConnectOptions {
  return { ...(opts.api === undefined ? {} : { api: opts.api }), ...(opts.config === undefined ? {} : { config: opts.config }) };
}

interface GatewayModule {
  runGatewayCommand(options: {
    configPath?: string;
    workers?: number;
    cwd: string;
    env: NodeJS.ProcessEnv;
    stdout: Writable;
    stderr: Writable;
  }): Promise<number>;
}

function isGatewayModule(m: unknown): m is GatewayModule {
  return typeof m === "object" && m !== null && "runGatewayCommand" in m && typeof m.runGatewayCommand === "function";
}

/** Loaded lazily: the CLI's other commands must work without the whole gateway's code. */
async function loadGatewayRuntime(): Promise<GatewayModule> {
  // A variable specifier keeps this module compilable without the runtime's sources.
  const specifier = "../runtime/run.js";
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (e) {
    const why = e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e);
    throw new CliError(`gateway runtime unavailable (${why})`, 1, { cause: e });
  }
  if (!isGatewayModule(mod)) throw new CliError("gateway runtime unavailable (no runGatewayCommand)");
  return mod;
}

function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const print = (text: string): void => {
    io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  };
  const printLines = (lines: readonly string[]): void => {
    if (lines.length > 0) io.stdout.write(`${lines.join("\n")}\n`);
  };
  const json = (value: unknown): void => {
    print(JSON.stringify(value, null, 2));
  };

  const program = new Command("airlock")
    .description("Airlock: an access gateway between agents and databases")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => {
        write(`airlock: ${s.replace(/^error: /, "").trim().replace(/\s*\n\s*/g, " ")}\n`);
      },
    })
    .showSuggestionAfterError(true)
    .helpCommand(true);

  // --- gateway ------------------------------------------------------------------------------
  program
    .command("gateway")
    .description("run the gateway")
    .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml, else the built-in demo)")
    .option("--workers <n>", "processes sharing the listeners (default: the number of cores with a PostgreSQL store, else 1)", (v: string) => {
      if (!/^[0-9]{1,3}$/.test(v) || Number(v) < 1 || Number(v) > 256) throw new InvalidArgumentError("a whole number from 1 to 256");
      return Number(v);
    })
    .action(async (opts: { config?: string; workers?: number }) => {
      const runtime = await loadGatewayRuntime();
      const path = opts.config ?? (io.env["AIRLOCK_CONFIG"] === "" ? undefined : io.env["AIRLOCK_CONFIG"]);
      setExit(
        await runtime.runGatewayCommand({
          ...(path === undefined ? {} : { configPath: path }),
          ...(opts.workers === undefined ? {} : { workers: opts.workers }),
          cwd: io.cwd,
          env: io.env,
          stdout: io.stdout,
          stderr: io.stderr,
        }),
      );
    });

  // --- token --------------------------------------------------------------------------------
  const token = program.command("token").description("mint and revoke short-lived access tokens");
  withApi(
    token
      .command("create")
      .description("print a new access token for a service account (and nothing else) on stdout")
      .requiredOption("--service-account <name>", "the service account the token acts as")
      .addOption(new Option("--ttl <duration>", "lifetime, e.g. 15m or 1h (default: tokens.defaultTtl)").argParser(ttlOption)),
  ).action(async (opts: { serviceAccount: string; ttl?: string | number; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request(
      "POST",
      "/v1/tokens",
      z.object({ token: z.string(), id: z.string(), expiresAt: z.string(), serviceAccount: z.string() }),
      { serviceAccount: opts.serviceAccount, ...(opts.ttl === undefined ? {} : { ttl: opts.ttl }) },
    );
    print(res.token);
  });

  withApi(
    token
      .command("revoke")
      .description("revoke a token; live sessions that used it end")
      .argument("<token-id>", "the token's id, or the token itself"),
  ).action(async (arg: string, opts: { api?: string; config?: string }) => {
    const id = tokenIdFrom(arg);
    const client = connect(connectOptions(opts), io);
    const res = await client.request(
      "POST",
      `/v1/tokens/${encodeURIComponent(id)}/revoke`,
      z.object({ revoked: z.boolean(), sessionsEnded: z.number() }),
    );
    print(`revoked ${id} (${res.sessionsEnded} live sessions ended)`);
  });

  // --- sessions -----------------------------------------------------------------------------
  const sessions = program.command("sessions").description("inspect recorded and live sessions");
  withApi(
    sessions
      .command("list")
      .description("list sessions, newest first")
      .option("--json", "print JSON")
      .addOption(new Option("--limit <n>", "at most this many (1-1000)").default(50).argParser(intOption(1, 1000)))
      .option("--connection <name>", "only sessions of this connection")
      .option("--trace <id>", "only sessions opened under this W3C trace id (or traceparent), e.g. by MCP tool calls"),
  ).action(async (opts: { json?: boolean; limit: number; connection?: string; trace?: string; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    const q = new URLSearchParams({ limit: String(opts.limit) });
    if (opts.connection !== undefined) q.set("connection", opts.connection);
    if (opts.trace !== undefined) {
      const id = /^(?:[0-9a-f]{2}-)?([0-9a-f]{32})(?:-[0-9a-f]{16}-[0-9a-f]{2})?$/i.exec(opts.trace.trim())?.[1];
      if (id === undefined) throw new CliError("--trace expects a 32-hex trace id or a traceparent", 2);
      q.set("trace", id.toLowerCase());
    }
    const res = await client.request("GET", `/v1/sessions?${q.toString()}`, z.object({ sessions: z.array(sessionSchema) }));
    if (opts.json === true) json(res);
    else printLines(sessionsTable(res.sessions));
  });

  const sessionAnswer = z.object({ session: sessionSchema, recording: z.array(z.unknown()) });

  // --- budgets ------------------------------------------------------------------------------
  const budgetCounter = z.object({
    budget: z.string(),
    subject: z.string(),
    connection: z.string(),
    windowStart: z.string(),
    windowEnd: z.string(),
    used: z.record(z.string(), z.number()),
    limits: z.record(z.string(), z.number()),
  });
  withApi(
    program
      .command("budgets")
      .description("budget counters of the current windows (your own, or everyone's as admin or auditor)")
      .option("--json", "print JSON"),
  ).action(async (opts: { json?: boolean; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request("GET", "/v1/budgets", z.object({ budgets: z.array(budgetCounter) }));
    if (opts.json === true) {
      json(res);
      return;
    }
    if (res.budgets.length === 0) {
      print("no budget counters yet");
      return;
    }
    printLines(
      res.budgets.map((b) => {
        const used = Object.entries(b.limits).map(([k, limit]) => `${k} ${b.used[k] ?? 0}/${limit}`);
        return `${b.budget}  ${b.subject}  ${b.connection}  ${used.join(", ")}  (window ends ${b.windowEnd})`;
      }),
    );
  });

  withApi(
    sessions
      .command("show")
      .description("show a session and every statement with its decision and results")
      .argument("<id>", "session id")
      .option("--json", "print JSON"),
  ).action(async (id: string, opts: { json?: boolean; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request("GET", `/v1/sessions/${encodeURIComponent(id)}`, sessionAnswer);
    if (opts.json === true) {
      json(res);
      return;
    }
    const lines = sessionHeader(res.session);
    const entries = parseEntries(res.recording).filter((e) => e?.kind !== "header" && e?.kind !== "end");
    lines.push("");
    if (entries.length === 0) lines.push("(no statements recorded)");
    for (const e of entries) lines.push(...renderEntry(e));
    printLines(lines);
  });

  withApi(
    sessions
      .command("replay")
      .description("replay a session's recording in the terminal, at its original pace")
      .argument("<id>", "session id")
      .addOption(new Option("--speed <n>", "speed factor (2 = twice as fast, 0 = no delay)").default(1).argParser(speedOption)),
  ).action(async (id: string, opts: { speed: number; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request("GET", `/v1/sessions/${encodeURIComponent(id)}`, sessionAnswer);
    // Terminal sessions (SSH) replay their asciicast recording.
    const cast = await client.getText(`/v1/sessions/${encodeURIComponent(id)}/cast`);
    if (cast.status === 200) {
      await playCast(cast.text, opts.speed, { write: (s) => void io.stdout.write(s), sleep });
      return;
    }
    const entries = parseEntries(res.recording);
    if (entries.length === 0) {
      print("(no recording for this session)");
      return;
    }
    let previous = 0;
    for (const e of entries) {
      if (e !== undefined) {
        const wait = opts.speed === 0 ? 0 : (e.t - previous) / opts.speed;
        if (wait > 0) await sleep(wait);
        previous = e.t;
      }
      printLines(renderEntry(e));
    }
  });

  // --- audit --------------------------------------------------------------------------------
  const audit = program.command("audit").description("the tamper-evident audit log");
  withApi(
    audit.command("verify").description("check the audit hash chain; exit 1 at the first bad record").option("--json", "print JSON"),
  ).action(async (opts: { json?: boolean; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request("GET", "/v1/audit/verify", auditVerifySchema);
    const chains = res.chains ?? [];
    if (opts.json === true) json(res);
    else if (chains.length > 1) {
      for (const c of chains) {
        print(c.ok ? `chain ${c.chain}: intact, ${c.records} records (last seq ${c.lastSeq ?? 0})` : `chain ${c.chain}: broken at seq ${c.failedSeq ?? 0}: ${c.reason ?? ""}: ${c.detail ?? ""}`);
      }
      print(res.ok ? `audit chains intact: ${chains.length} chains, ${res.records} records` : `audit verification failed: ${res.detail}`);
    } else if (res.ok) print(`audit chain intact: ${res.records} records (last seq ${res.lastSeq})`);
    else print(`audit chain broken at seq ${res.failedSeq}: ${res.reason}: ${res.detail}`);
    setExit(res.ok ? 0 : 1);
  });

  // --- secrets ------------------------------------------------------------------------------
  const secrets = program.command("secrets").description("secrets the console stores (encrypted at rest)");
  withApi(
    secrets
      .command("rotate-key")
      .description("re-wrap every stored secret's data key under the gateway's current key (secrets.storeKey); exit 1 when one could not be opened")
      .option("--json", "print JSON"),
  ).action(async (opts: { json?: boolean; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request(
      "POST",
      "/v1/secrets/rotate-key",
      z.object({ keyId: z.string(), connections: z.number(), rewrapped: z.number(), unchanged: z.number(), failed: z.array(z.string()) }),
    );
    if (opts.json === true) json(res);
    else {
      print(`stored secrets of ${res.connections} connections are wrapped by key ${res.keyId} (${res.rewrapped} re-wrapped, ${res.unchanged} already were)`);
      if (res.failed.length > 0) print(`not opened with any configured key, left as they are: ${res.failed.join(", ")}`);
    }
    setExit(res.failed.length === 0 ? 0 : 1);
  });

  // --- approvals and access requests: ./approvals.ts -----------------------------------------
  registerApprovalCommands(program, io, setExit);
  registerKubeconfigCommand(program, io);
  // --- people's login: ./login.ts ---------------------------------------------------------
  registerLoginCommand(program, io, (opts) => connect(connectOptions(opts), io).baseUrl.href, setExit);
  registerMcpCommand(program, (opts) => connect(connectOptions(opts), io), io);
  registerAgentCommands(program, io, (opts) => connect(connectOptions(opts), io));

  // --- config -------------------------------------------------------------------------------
  const config = program.command("config").description("the configuration file");
  config
    .command("validate")
    .description("validate a configuration file")
    .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml)")
    .action((opts: { config?: string }) => {
      const path = configPath(opts.config, io);
      if (path === undefined) throw new CliError("no configuration file: pass --config FILE, set AIRLOCK_CONFIG, or create ./airlock.yaml", 2);
      try {
        loadConfigOneLine(path);
      } catch (e) {
        // Here the full list of problems is the answer: one per line, each naming its key.
        const cause = e instanceof CliError ? e.cause : undefined;
        if (isGatewayError(cause)) {
          io.stderr.write(`airlock: ${cause.message}\n`);
          setExit(1);
          return;
        }
        throw e;
      }
      print("configuration OK");
    });
  withApi(
    config
      .command("show")
      .description("print the running gateway's effective configuration (the YAML plus what the web console stored), secrets as references")
      .option("--json", "print JSON"),
  ).action(async (opts: { json?: boolean; api?: string; config?: string }) => {
    const client = connect(connectOptions(opts), io);
    if (opts.json === true) {
      json(await client.request("GET", "/v1/console/config?format=json", z.record(z.string(), z.unknown())));
      return;
    }
    const res = await client.getText("/v1/console/config?format=yaml");
    if (res.status !== 200) throw new CliError(`the gateway answered ${res.status}: ${errorLine(res.text)}`, 1);
    io.stdout.write(res.text.endsWith("\n") ? res.text : `${res.text}\n`);
  });
  config
    .command("schema")
    .description("print the JSON Schema of the configuration file")
    .action(() => {
      json(configJsonSchema());
    });

  // --- policy -------------------------------------------------------------------------------
  const policy = program.command("policy").description("policies as code");
  policy
    .command("test")
    .description("judge a table of cases (event → expected decision) offline; exit 1 on any mismatch")
    .argument("<file>", "YAML file of cases")
    .option("--config <file>", "configuration file, when the test file names none (default: AIRLOCK_CONFIG, ./airlock.yaml)")
    .option("--json", "print JSON")
    .action(async (file: string, opts: { config?: string; json?: boolean }) => {
      // Loaded lazily, like the gateway runtime: it brings the SQL parser.
      const specifier = "../runtime/policy-test.js";
      const mod = (await import(specifier)) as { runPolicyTests(file: string, config?: string): Promise<readonly { name: string; ok: boolean; expected: string; got: string; message?: string }[]> };
      let results;
      try {
        results = await mod.runPolicyTests(file, configPath(opts.config, io));
      } catch (e) {
        if (isGatewayError(e)) throw new CliError(e.message.replace(/\n/g, "; "), 2, { cause: e });
        throw e;
      }
      const failed = results.filter((r) => !r.ok);
      if (opts.json === true) json({ passed: results.length - failed.length, failed: failed.length, cases: results });
      else {
        printLines(results.map((r) => (r.ok ? `ok    ${r.name}` : `FAIL  ${r.name}: expected ${r.expected}, got ${r.got}${r.message === undefined ? "" : ` — ${r.message}`}`)));
        print(`${results.length - failed.length} passed, ${failed.length} failed`);
      }
      if (failed.length > 0) setExit(1);
    });

  return program;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version requests exit 0; everything else commander raises is a usage error
      // (already printed through outputError).
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      return 2;
    }
    if (e instanceof CliError) {
      io.stderr.write(`airlock: ${oneLine(e.message)}\n`);
      return e.exitCode;
    }
    if (isGatewayError(e)) {
      io.stderr.write(`airlock: ${oneLine(e.message)}\n`);
      return 1;
    }
    const message = e instanceof Error ? e.message : String(e);
    io.stderr.write(`airlock: unexpected error: ${oneLine(message)}\n`);
    return 1;
  }
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, "; ");
}
