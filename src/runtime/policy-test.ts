/**
 * `airlock policy test FILE`: a table of cases (event → expected decision) judged offline by
 * the same evaluators the gateway's pipeline uses, for CI in users' own repositories. Nothing
 * connects anywhere: views are not resolved through a target's catalog, access grants are not
 * consulted, and approvals are reported as the hold (`require_approval` / `require_grant`).
 *
 * File format (YAML):
 *   config: ./airlock.yaml          # optional, relative to this file (else --config)
 *   cases:
 *     - name: agents may read orders
 *       principal: ci-bot           # a service account (or sa:NAME, admin), or any name with `groups`
 *       groups: [agents]            # optional: groups of a principal the configuration does not list
 *       connection: orders
 *       statement: select * from orders   # SSH: the command line; MCP: TOOL {"json": "arguments"}
 *       at: 2026-12-07T10:00:00Z    # optional: the time CEL `when:` sees (default now)
 *       budgets: { agent-rows: { rows: 9500 } }   # optional: counters CEL `when:` sees
 *       expect: allow               # allow | deny | require_approval | require_grant
 *       rule: no-ddl                # optional: the rule that must decide
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import { AccessEvaluator } from "../policy/access.js";
import { HttpPolicyEvaluator } from "../policy/http-policies.js";
import { K8sPolicyEvaluator } from "../policy/kubernetes-policies.js";
import { McpPolicyEvaluator } from "../policy/mcp-policies.js";
import { PolicyEvaluator } from "../policy/policies.js";
import { RedisPolicyEvaluator } from "../policy/redis-policies.js";
import { SshPolicyEvaluator } from "../policy/ssh-policies.js";
import { FeatureEvaluator } from "../policy/features.js";
import { ClassificationCache, initSqlParser } from "../policy/sql/index.js";
import { loadConfigFile, type Config } from "./config.js";
import { principalFinder, tryIt } from "./console.js";

const MAX_CASES = 10_000;

const caseSchema = z.strictObject({
  name: z.string().min(1).max(200),
  principal: z.string().min(1),
  groups: z.array(z.string().min(1)).optional(),
  connection: z.string().min(1),
  statement: z.string().min(1).max(1_048_576),
  at: z.iso.datetime({ offset: true }).optional(),
  budgets: z.record(z.string(), z.record(z.string(), z.number().int().min(0))).optional(),
  expect: z.enum(["allow", "deny", "require_approval", "require_grant"]),
  rule: z.string().min(1).optional(),
});

const fileSchema = z.strictObject({
  config: z.string().min(1).optional(),
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
  await initSqlParser();
  const out: CaseResult[] = [];
  for (const c of parsed.data.cases) out.push(await runCase(config, c));
  return out;
}

async function runCase(config: Config, c: z.output<typeof caseSchema>): Promise<CaseResult> {
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
  let got: string;
  let rule: string | undefined;
  let message: string | undefined;
  try {
    const r = await tryIt({ connections: () => config.connections, evaluators, principal }, { connection: c.connection, principal: c.principal, statement: c.statement });
    rule = r.rule;
    message = r.message;
    got = r.decision === "hold" ? holdKind(config, r.rule) : r.decision;
  } catch (e) {
    got = "error";
    message = e instanceof Error ? e.message : String(e);
  }
  const ok = got === c.expect && (c.rule === undefined || c.rule === rule);
  return { name: c.name, ok, expected: c.expect + (c.rule === undefined ? "" : ` (${c.rule})`), got: got + (rule === undefined ? "" : ` (${rule})`), ...(rule === undefined ? {} : { rule }), ...(message === undefined ? {} : { message }) };
}

function holdKind(config: Config, rule: string | undefined): string {
  const p = config.policies.find((x) => x.name === rule);
  return p?.action === "require_grant" ? "require_grant" : "require_approval";
}
