/**
 * `airlock policy test FILE`: a table of cases (event → expected decision) judged offline by
 * the same evaluators the gateway's pipeline uses, for CI in users' own repositories. Nothing
 * connects anywhere: views are not resolved through a target's catalog, access grants are not
 * consulted, and approvals are reported as the hold (`require_approval` / `require_grant`).
 *
 * Every kind the gateway judges can be a case, built into its event by the engines' own code:
 * HTTP and Kubernetes requests by the HTTP engine's path normalization and the Kubernetes
 * kind's classification (as check_policy does, runtime/mcp.ts), Redis commands by the Redis
 * engine's key extraction over a command table (Redis 7.0's built in, or the file's
 * `redisCommands:`), SSH lines and MCP tool calls as their engines build them.
 *
 * File format (YAML):
 *   config: ./airlock.yaml          # optional, relative to this file (else --config)
 *   redisCommands: ./commands.json  # optional: `redis-cli --json COMMAND` of your server
 *   cases:
 *     - name: agents may read orders
 *       principal: ci-bot           # a service account (or sa:NAME, admin), or any name with `groups`
 *       groups: [agents]            # optional: groups of a principal the configuration does not list
 *       connection: orders
 *       statement: select * from orders   # SQL; SSH: the command line; MCP: TOOL {"json": "arguments"}
 *       # or one of:
 *       #   input: rm -rf /tmp/x                       SSH: a line typed into an interactive shell
 *       #   redis: [SET, k, v]  (or "SET k v")         Redis: a command
 *       #   http: { method, path, query, headers, json, body }
 *       #   kubernetes: { verb, resource, apiVersion, namespace, name, command, json }
 *       #            or { method, url, json }          (a raw API path, classified as the engine does)
 *       #   mcp: { tool, arguments }
 *       at: 2026-12-07T10:00:00Z    # optional: the time CEL `when:` sees (default now)
 *       budgets: { agent-rows: { rows: 9500 } }   # optional: counters CEL `when:` sees
 *       expect: allow               # allow | deny | require_approval | require_grant
 *       rule: no-ddl                # optional: the rule that must decide
 *       message: may not            # optional: text the decision's message must contain
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { Connection } from "../core/connection.js";
import { GatewayError } from "../core/errors.js";
import type { JudgedEvent } from "../core/events.js";
import { mcpCallText } from "../core/mcp-call.js";
import type { Principal } from "../core/principal.js";
import type { SessionInfo } from "../core/session.js";
import { AccessEvaluator } from "../policy/access.js";
import { HttpPolicyEvaluator } from "../policy/http-policies.js";
import { K8sPolicyEvaluator } from "../policy/kubernetes-policies.js";
import { McpPolicyEvaluator } from "../policy/mcp-policies.js";
import { PolicyEvaluator } from "../policy/policies.js";
import { RedisPolicyEvaluator } from "../policy/redis-policies.js";
import { SshPolicyEvaluator } from "../policy/ssh-policies.js";
import { FeatureEvaluator } from "../policy/features.js";
import { ClassificationCache, initSqlParser } from "../policy/sql/index.js";
import { httpSketch, kubeSketch, requestCheckArgs, type RequestCheckArgs } from "../protocols/mcp/check-request.js";
import { REDIS_7_COMMANDS } from "../protocols/redis/builtin-commands.js";
import { CommandTable, respFromJson } from "../protocols/redis/commands.js";
import { redisCommandEvent, redisFeatureOf } from "../protocols/redis/session.js";
import { loadConfigFile, type Config } from "./config.js";
import { principalFinder, tryEvents, tryIt, type EngineRefusal } from "./console.js";
import { requestEvent } from "./mcp.js";

const MAX_CASES = 10_000;

const httpCase = z.strictObject({
  method: requestCheckArgs.method,
  path: z.string().min(1).max(8192),
  query: requestCheckArgs.query,
  headers: requestCheckArgs.headers,
  json: requestCheckArgs.json,
  body: requestCheckArgs.body,
});

const kubernetesCase = z.strictObject({
  verb: requestCheckArgs.verb,
  resource: requestCheckArgs.resource,
  apiVersion: requestCheckArgs.apiVersion,
  namespace: requestCheckArgs.namespace,
  name: requestCheckArgs.name,
  command: requestCheckArgs.command,
  json: requestCheckArgs.json,
  method: requestCheckArgs.method,
  url: z.string().min(1).max(8192).optional().describe("a raw API path with its query, e.g. /api/v1/namespaces/prod/pods?watch=1"),
  query: requestCheckArgs.query,
});

const KINDS = ["statement", "input", "redis", "http", "kubernetes", "mcp"] as const;

const caseSchema = z
  .strictObject({
    name: z.string().min(1).max(200),
    principal: z.string().min(1),
    groups: z.array(z.string().min(1)).optional(),
    connection: z.string().min(1),
    statement: z.string().min(1).max(1_048_576).optional(),
    input: z.string().max(16 * 1024).optional(),
    redis: z.union([z.string().min(1).max(1_048_576), z.array(z.string().max(1_048_576)).min(1).max(10_000)]).optional(),
    http: httpCase.optional(),
    kubernetes: kubernetesCase.optional(),
    mcp: z.strictObject({ tool: z.string().min(1).max(200), arguments: z.record(z.string(), z.unknown()).optional() }).optional(),
    at: z.iso.datetime({ offset: true }).optional(),
    budgets: z.record(z.string(), z.record(z.string(), z.number().int().min(0))).optional(),
    expect: z.enum(["allow", "deny", "require_approval", "require_grant"]),
    rule: z.string().min(1).optional(),
    message: z.string().min(1).optional(),
  })
  .refine((c) => KINDS.filter((k) => c[k] !== undefined).length === 1, { message: `give exactly one of ${KINDS.join(", ")}` });

type Case = z.output<typeof caseSchema>;

const fileSchema = z.strictObject({
  config: z.string().min(1).optional(),
  redisCommands: z.string().min(1).optional(),
  cases: z.array(caseSchema).min(1).max(MAX_CASES),
});

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly expected: string;
  readonly got: string;
  readonly rule?: string;
  readonly message?: string;
}

/** Run a policy test file; `configPath` is used when the file names no config. */
export async function runPolicyTests(file: string, configPath?: string): Promise<readonly CaseResult[]> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"), { maxAliasCount: 100 });
  } catch (e) {
    throw new GatewayError("GW_CONFIG", `cannot read policy test file ${file}: ${e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e)}`, { cause: e });
  }
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.map(String).join(".") || "(top level)"}: ${i.message}`);
    throw new GatewayError("GW_CONFIG", `invalid policy test file ${file}:\n${issues.join("\n")}`);
  }
  const cfgPath = parsed.data.config === undefined ? configPath : resolve(dirname(file), parsed.data.config);
  if (cfgPath === undefined) throw new GatewayError("GW_CONFIG", `${file} names no config: add "config: ./airlock.yaml" or pass --config`);
  const config = loadConfigFile(cfgPath);
  const redisTable = commandTable(parsed.data.redisCommands === undefined ? undefined : resolve(dirname(file), parsed.data.redisCommands));
  await initSqlParser();
  const out: CaseResult[] = [];
  for (const c of parsed.data.cases) out.push(await runCase(config, redisTable, c));
  return out;
}

/** The Redis command table cases are judged with: a saved `redis-cli --json COMMAND`, or Redis 7.0's. */
function commandTable(file: string | undefined): CommandTable {
  if (file === undefined) return new CommandTable(respFromJson(REDIS_7_COMMANDS));
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new GatewayError("GW_CONFIG", `cannot read redisCommands ${file}: ${e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e)}`, { cause: e });
  }
  const table = new CommandTable(respFromJson(json));
  if (table.size === 0) throw new GatewayError("GW_CONFIG", `redisCommands ${file} holds no commands: save it with redis-cli --json COMMAND`);
  return table;
}

/** `SET "a b" c` → SET, a b, c: words split at blanks, as redis-cli reads a line (quotes group). */
export function redisWords(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    const dq = m[1];
    out.push(dq !== undefined ? dq.replace(/\\(.)/g, "$1") : (m[2] ?? m[3] ?? ""));
  }
  return out;
}

/** The case's events, built by the engine's code for its connection's kind. */
function caseEvents(c: Case, conn: Connection, session: SessionInfo, table: CommandTable): readonly JudgedEvent[] | EngineRefusal | Promise<readonly JudgedEvent[] | EngineRefusal> {
  const given = KINDS.find((k) => c[k] !== undefined) ?? "statement";
  const wrong = (want: string): never => {
    throw new GatewayError("GW_BAD_REQUEST", `connection ${conn.name} is a ${conn.type} connection: give ${want}, not ${given}`);
  };
  switch (conn.type) {
    case "postgres":
    case "mysql":
      return wrong("statement");
    case "ssh": {
      if (c.input === undefined) return wrong("statement (a command line) or input (a line typed into a shell)");
      // A typed line reaches the target only through a shell channel the policies allowed first (protocols/ssh/channels.ts, line-input.ts).
      return [
        { type: "ssh.channel", session, seq: 1, channel: "shell" },
        { type: "ssh.input", session, seq: 2, line: c.input, edited: false },
      ];
    }
    case "redis": {
      if (c.redis === undefined) return wrong("redis (a command)");
      const words = typeof c.redis === "string" ? redisWords(c.redis) : c.redis;
      if (words.length === 0) return wrong("redis (a command)");
      const args = words.map((w) => Buffer.from(w, "utf8"));
      const keys = table.keysOf(args);
      const feature = redisFeatureOf(conn, keys.name.split("|")[0] ?? keys.name, args);
      // The engine refuses these whatever the policies say (protocols/redis/session.ts).
      if (feature !== undefined) return { code: feature.code, message: feature.reason, rule: "protocol" };
      return [redisCommandEvent(session, 1, args, keys, false)];
    }
    case "http": {
      if (c.http === undefined) return wrong("http (method, path, query, headers, json or body)");
      const sketch = httpSketch(conn.name, c.http);
      if ("error" in sketch) throw new GatewayError("GW_BAD_REQUEST", sketch.error);
      return requestEvent(session, conn, sketch);
    }
    case "kubernetes": {
      const k = c.kubernetes;
      if (k === undefined) return wrong("kubernetes (verb, resource, namespace, name; or method and url)");
      if (k.url !== undefined && k.verb !== undefined) throw new GatewayError("GW_BAD_REQUEST", "give verb (and resource, namespace, name) or url, not both");
      const args: RequestCheckArgs = { ...k, ...(k.url === undefined ? {} : { path: k.url }) };
      const sketch = kubeSketch(args);
      if ("error" in sketch) throw new GatewayError("GW_BAD_REQUEST", sketch.error);
      return requestEvent(session, conn, sketch);
    }
    case "mcp": {
      if (c.mcp === undefined) return wrong('statement (TOOL {"json": "arguments"}) or mcp (tool, arguments)');
      const args = c.mcp.arguments ?? {};
      return [{ type: "mcp.call", session, seq: 1, method: "tools/call", tool: c.mcp.tool, arguments: args, text: mcpCallText(c.mcp.tool, args), preview: true }];
    }
  }
}

async function runCase(config: Config, table: CommandTable, c: Case): Promise<CaseResult> {
  const now = c.at === undefined ? new Date() : new Date(c.at);
  const budgets = c.budgets ?? {};
  // Fresh evaluators per case: session state (prepared statements, settings) never leaks between cases.
  const evaluators = [
    new AccessEvaluator(config.connections),
    new PolicyEvaluator(config.policies, config.connections, new ClassificationCache(), undefined, { whenContext: () => ({ now, budgets }) }),
    new SshPolicyEvaluator(config.policies, () => ({ now, budgets })),
    new RedisPolicyEvaluator(config.policies, () => ({ now, budgets })),
    new K8sPolicyEvaluator(config.policies, () => ({ now, budgets })),
    new HttpPolicyEvaluator(config.policies, () => ({ now, budgets })),
    new McpPolicyEvaluator(config.policies, config.connections, () => ({ now, budgets })),
    new FeatureEvaluator(),
  ];
  const known = principalFinder(config);
  const principal = (id: string): Principal | undefined =>
    c.groups !== undefined ? { kind: "service_account", id: id.includes(":") ? id : `sa:${id}`, name: id.replace(/^sa:/, ""), groups: [...c.groups] } : known(id);
  const deps = { connections: () => config.connections, evaluators, principal };
  let got: string;
  let rule: string | undefined;
  let message: string | undefined;
  try {
    const r =
      c.statement !== undefined
        ? await tryIt(deps, { connection: c.connection, principal: c.principal, statement: c.statement })
        : await tryEvents(deps, { connection: c.connection, principal: c.principal }, (conn, session) => caseEvents(c, conn, session, table));
    rule = r.rule;
    message = r.message;
    got = r.decision === "hold" ? holdKind(config, r.rule) : r.decision;
  } catch (e) {
    got = "error";
    message = e instanceof Error ? e.message : String(e);
  }
  const messageOk = c.message === undefined || (message ?? "").includes(c.message);
  const ok = got === c.expect && (c.rule === undefined || c.rule === rule) && messageOk;
  const expected = `${c.expect}${c.rule === undefined ? "" : ` (${c.rule})`}${c.message === undefined ? "" : ` with message containing "${c.message}"`}`;
  return { name: c.name, ok, expected, got: got + (rule === undefined ? "" : ` (${rule})`), ...(rule === undefined ? {} : { rule }), ...(message === undefined ? {} : { message }) };
}

function holdKind(config: Config, rule: string | undefined): string {
  const p = config.policies.find((x) => x.name === rule);
  return p?.action === "require_grant" ? "require_grant" : "require_approval";
}
