/**
 * Wiring for the web console (src/api/console-routes.ts): the views of the effective
 * connections and policies, and the "try it" evaluation. Kept out of gateway.ts so the
 * composition root only gains a few lines.
 *
 * "Try it" runs the live judge's evaluators (the same instances the pipeline uses) over a
 * session.start and one statement/command event, and combines their answers as the pipeline
 * does (verdicts.ts). It executes nothing, audits nothing and creates no approval request;
 * approval grants a principal may hold are not considered.
 */
import { mcpCallText, parseMcpCallText } from "../core/mcp-call.js";
import { randomUUID } from "node:crypto";
import { stringify } from "yaml";
import type { ConnectionView, TryResult } from "../api/console-schemas.js";
import type { Connection } from "../core/connection.js";
import type { Verdict } from "../core/decision.js";
import type { JudgedEvent } from "../core/events.js";
import { GatewayError } from "../core/errors.js";
import { ADMIN_PRINCIPAL, type Principal } from "../core/principal.js";
import { describeSecretRef, type SecretRef } from "../core/secret.js";
import type { ClientProtocol, SessionInfo } from "../core/session.js";
import type { Evaluator } from "../policy/evaluator.js";
import { evaluateEvent, evaluateSession, settledVerdict } from "../policy/verdicts.js";
import type { Config } from "./config.js";

function isSecretRef(v: unknown): v is SecretRef {
  return typeof v === "object" && v !== null && "kind" in v && (v.kind === "env" || v.kind === "file" || v.kind === "vault" || v.kind === "aws-sm" || v.kind === "gcp-sm" || v.kind === "azure-kv" || v.kind === "literal");
}

/** A connection as the console shows it: secrets as references, never values. */
export function connectionView(c: Connection, source: "config" | "console", disabled = false): ConnectionView {
  const settings: Record<string, string | number | boolean | null> = {};
  for (const [k, v] of Object.entries(c)) {
    if (k === "name" || k === "type" || k === "host" || k === "port" || k === "groups") continue;
    if (isSecretRef(v)) settings[k] = describeSecretRef(v);
    else if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") settings[k] = v;
    else if (v !== undefined) settings[k] = JSON.stringify(v);
  }
  return { name: c.name, type: c.type, source, ...addressOf(c), groups: [...c.groups], disabled, settings };
}

/** Where a connection's target is: host and port, or those of its base URL. */
function addressOf(c: Connection): { host: string; port: number } {
  if ("host" in c) return { host: c.host, port: c.port };
  // A stdio MCP upstream runs on the gateway's own host.
  if (c.type === "mcp" && c.upstream.transport === "stdio") return { host: "localhost", port: 0 };
  const u = new URL(c.type === "http" ? c.baseUrl : c.type === "mcp" ? (c.upstream.transport === "http" ? c.upstream.url : "") : c.server);
  return { host: u.hostname, port: u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port) };
}

export function policyViews(config: Config): { name: string; action: string; connections: string[]; groups?: string[]; document: string }[] {
  return config.policies.map((p) => ({
    name: p.name,
    action: p.action,
    connections: [...p.connections],
    ...(p.groups === undefined ? {} : { groups: [...p.groups] }),
    document: stringify(p).trimEnd(),
  }));
}

function protocolOf(c: Connection): ClientProtocol {
  switch (c.type) {
    case "postgres":
      return "postgres";
    case "ssh":
      return "ssh";
    case "redis":
      return "redis";
    case "http":
      return "http";
    case "kubernetes":
      return "kubernetes";
    case "mysql":
      return "mysql";
    case "mcp":
      return "mcp";
  }
}

function eventFor(c: Connection, session: SessionInfo, statement: string): JudgedEvent {
  switch (c.type) {
    case "postgres":
    case "mysql":
      return { type: "db.query", session, seq: 1, stage: "simple", sql: statement };
    case "ssh":
      return { type: "ssh.exec", session, seq: 1, command: statement };
    case "redis":
      throw new GatewayError("GW_UNSUPPORTED", "try it does not evaluate Redis commands yet: use a PostgreSQL or SSH connection");
    case "http":
    case "kubernetes":
      throw new GatewayError("GW_UNSUPPORTED", "try it does not evaluate HTTP or Kubernetes requests yet: use a PostgreSQL or SSH connection");
    case "mcp": {
      // `TOOL {"argument": …}`: judged as the agent's tools/call would be.
      const call = parseMcpCallText(statement);
      return { type: "mcp.call", session, seq: 1, method: "tools/call", tool: call.tool, arguments: call.arguments, text: mcpCallText(call.tool, call.arguments), preview: true };
    }
  }
}

export interface TryItDeps {
  readonly connections: () => readonly Connection[];
  readonly evaluators: readonly Evaluator[];
  /** The principal a principal id names (service accounts from the config; `admin`). */
  readonly principal: (id: string) => Principal | undefined;
}

function resultOf(v: Verdict): TryResult {
  switch (v.type) {
    case "allow":
      return {
        decision: "allow",
        ...(v.rule === undefined ? {} : { rule: v.rule }),
        masking: (v.plan?.masks ?? []).map((m) => `${m.rule}: ${m.strategy} ${[...m.columns, ...m.detectors.map((d) => `[${d}]`)].join(", ")}`.trim()),
        ...(v.plan?.refuse === undefined ? {} : { message: `the result would be refused: ${v.plan.refuse.message}` }),
      };
    case "deny":
      return { decision: "deny", code: v.code, message: v.message, ...(v.rule === undefined ? {} : { rule: v.rule }), masking: [] };
    case "hold":
      return { decision: "hold", rule: v.rule, message: `${v.message} (approvers: ${v.approvers.join(", ") || "admin"}; ${v.minApprovals} needed)`, masking: [] };
  }
}

export async function tryIt(deps: TryItDeps, input: { connection: string; principal: string; statement: string }): Promise<TryResult> {
  return tryEvents(deps, input, (c, session) => [eventFor(c, session, input.statement)]);
}

/** What the engine itself refuses before any policy is asked (a path it cannot normalize, …). */
export interface EngineRefusal {
  readonly code: string;
  readonly message: string;
  /** `protocol` when the engine refuses it whatever the policies say. */
  readonly rule?: string;
}

/**
 * "Try it" over the events an engine would judge for one request, in order (a Kubernetes exec
 * is its request, then its command as a shell command): the first refusal stands, else the
 * first hold, else allowed (masked if any answer masks), as check_policy combines them.
 */
export async function tryEvents(
  deps: TryItDeps,
  input: { readonly connection: string; readonly principal: string },
  build: (c: Connection, session: SessionInfo) => readonly JudgedEvent[] | EngineRefusal | Promise<readonly JudgedEvent[] | EngineRefusal>,
): Promise<TryResult> {
  const c = deps.connections().find((x) => x.name === input.connection);
  if (c === undefined) throw new GatewayError("GW_NOT_FOUND", `no connection ${input.connection}`);
  const principal = deps.principal(input.principal);
  if (principal === undefined) throw new GatewayError("GW_NOT_FOUND", `no principal ${input.principal} (use sa:NAME for a service account, or admin)`);
  const protocol = protocolOf(c);
  const session: SessionInfo = {
    id: `try_${randomUUID()}`,
    clientProtocol: protocol,
    targetType: c.type,
    connection: c.name,
    principal,
    clientAddress: "console:try-it",
    startedAt: new Date(),
    attributes: {},
  };
  const start = evaluateSession(deps.evaluators, { type: "session.start", session });
  if (start.type === "deny") return resultOf(start);
  const events = await build(c, session);
  if ("code" in events) return { decision: "deny", code: events.code, message: events.message, ...(events.rule === undefined ? {} : { rule: events.rule }), masking: [] };
  let verdict: Verdict | undefined;
  for (const event of events) {
    const open = deps.evaluators.flatMap((e) => {
      if (!e.kinds.includes(event.type)) return [];
      const s = e.openSession?.(session);
      return s !== undefined && s.kinds.includes(event.type) ? [s] : [];
    });
    const v: Verdict =
      open.length === 0 ? { type: "deny", code: "GW_UNSUPPORTED", message: `no evaluator judges ${event.type} events, so it is refused (fail closed)`, rule: "fail-closed" } : await settledVerdict(await evaluateEvent(open, event));
    if (verdict === undefined || v.type === "deny" || (v.type === "hold" && verdict.type === "allow")) verdict = v;
    else if (v.type === "allow" && verdict.type === "allow" && (v.plan?.masks.length ?? 0) > 0 && (verdict.plan?.masks.length ?? 0) === 0) verdict = v;
    if (verdict.type === "deny") break;
  }
  if (verdict === undefined) throw new GatewayError("GW_INTERNAL", "nothing to judge");
  return resultOf(verdict);
}

/** Principals "try it" can stand for: the configured service accounts, and admin. */
export function principalFinder(config: Config): (id: string) => Principal | undefined {
  return (id) => {
    if (id === "admin") return ADMIN_PRINCIPAL;
    const name = id.startsWith("sa:") ? id.slice(3) : id;
    const sa = config.serviceAccounts.find((s) => s.name === name);
    return sa === undefined ? undefined : { kind: "service_account", id: `sa:${sa.name}`, name: sa.name, groups: [...sa.groups] };
  };
}
