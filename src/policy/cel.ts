/**
 * Policies as code: a CEL expression (`when:`) as an extra condition on a policy, over the
 * typed facts of the event. Compiled and type-checked once, at configuration load (a bad
 * expression is a configuration error naming the policy); evaluated in the judge with the
 * facts of each statement. Bounded: the parser's AST size and depth are capped, and CEL has
 * no loops beyond its macros over the (bounded) fact lists.
 *
 * Facts (every name is always present):
 *   principal   map: id, name, kind (string)
 *   groups      list<string>   the principal's groups
 *   connection  string
 *   operations  list<string>   e.g. ["select"], ["update"] (SQL), the programs (SSH)
 *   relations   list<string>   relations read or written, as written (`public.orders`, `orders`)
 *   now         google.protobuf.Timestamp (UTC): `now.getHours()`, `now.getDayOfWeek()`
 *   hour        int, 0–23 UTC; weekday int, 0 = Sunday
 *   budgets     map<string, map<string, int>>: budget name → rows, bytes, statements used in
 *               the current window (only the budgets that cover the session)
 *
 * Facts of the event, by the kind of the policy's match (type-checked against that kind):
 *   http        method string (upper case), path string, query map<string, string> (first
 *               value of each name), headers map<string, string> (lower-case names, no credentials)
 *   redis       command string (lower case, `config|set`), keys list<string>
 *   shell       command string (the program, judged one by one in a line: `a | b`), argv
 *               list<string> (the program and its arguments, as the shell parser reads them)
 *   kubernetes  verb, resource, ns (the namespace: `namespace` is reserved in CEL), name
 *               string ("" when the request has none)
 *   mcp         tool string, arguments map<string, dyn> (the call's JSON arguments)
 * and `operations`/`relations` hold the same facts as lists for every kind (HTTP: [method],
 * [path]; Redis: [command], keys; shell: [program]; Kubernetes: [verb], [resource];
 * MCP: [tool], []).
 *
 * An expression that fails at run time (a budget the session does not have: use
 * `has(budgets.x)` or `"x" in budgets`) counts as holding for deny, approval and mask
 * policies, and as not holding for allow policies: fail closed.
 */
import { Environment } from "@marcbachmann/cel-js";
import type { MatchKind } from "./match.js";
import type { SessionInfo } from "../core/session.js";

export interface WhenFacts {
  readonly principal: { readonly id: string; readonly name: string; readonly kind: string };
  readonly groups: readonly string[];
  readonly connection: string;
  readonly operations: readonly string[];
  readonly relations: readonly string[];
  readonly now: Date;
  readonly budgets: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** The facts of the event's kind (see the module comment), by name. */
  readonly event?: Readonly<Record<string, unknown>>;
}

/** Longest `when:` expression accepted. */
export const MAX_WHEN_CHARS = 4096;

/** The event facts each match kind adds to the common ones, with their CEL types. */
const KIND_VARIABLES: { readonly [K in MatchKind]: readonly (readonly [string, string])[] } = {
  sql: [],
  http: [
    ["method", "string"],
    ["path", "string"],
    ["query", "map<string, string>"],
    ["headers", "map<string, string>"],
  ],
  redis: [
    ["command", "string"],
    ["keys", "list<string>"],
  ],
  shell: [
    ["command", "string"],
    ["argv", "list<string>"],
  ],
  kubernetes: [
    ["verb", "string"],
    ["resource", "string"],
    ["ns", "string"],
    ["name", "string"],
  ],
  mcp: [
    ["tool", "string"],
    ["arguments", "map<string, dyn>"],
  ],
};

function environmentFor(kind: MatchKind): Environment {
  let env = new Environment({ limits: { maxAstNodes: 2_000, maxDepth: 64, maxListElements: 1_000, maxMapEntries: 1_000, maxCallArguments: 16 } })
    .registerVariable("principal", "map<string, string>")
    .registerVariable("groups", "list<string>")
    .registerVariable("connection", "string")
    .registerVariable("operations", "list<string>")
    .registerVariable("relations", "list<string>")
    .registerVariable("now", "google.protobuf.Timestamp")
    .registerVariable("hour", "int")
    .registerVariable("weekday", "int")
    .registerVariable("budgets", "map<string, map<string, int>>");
  for (const [name, type] of KIND_VARIABLES[kind]) env = env.registerVariable(name, type);
  return env;
}

const environments = new Map<MatchKind, Environment>();

function envOf(kind: MatchKind): Environment {
  let env = environments.get(kind);
  if (env === undefined) {
    env = environmentFor(kind);
    environments.set(kind, env);
  }
  return env;
}

type Compiled = (context: Record<string, unknown>) => unknown;

/** Compiled expressions by kind and text. */
const compiled = new Map<string, Compiled>();

/**
 * Compile and type-check an expression against the facts of `kind` (default: SQL): undefined
 * when it is good, else the problem (one line).
 */
export function whenProblem(expression: string, kind: MatchKind = "sql"): string | undefined {
  if (expression.length > MAX_WHEN_CHARS) return `longer than ${MAX_WHEN_CHARS} characters`;
  try {
    const env = envOf(kind);
    const check = env.check(expression);
    if (!check.valid) return firstLine(check.error);
    if (check.type !== "bool") return `must be a bool expression, not ${String(check.type)}`;
    compiled.set(`${kind}\0${expression}`, env.parse(expression) as Compiled);
    return undefined;
  } catch (e) {
    return firstLine(e);
  }
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split("\n")[0]?.trim() ?? "invalid expression";
}

/**
 * Whether `expression` holds for `facts`. `failClosed` is the answer when it cannot be
 * evaluated (see the module comment).
 */
export function whenHolds(expression: string, facts: WhenFacts, failClosed: boolean, kind: MatchKind = "sql"): boolean {
  const key = `${kind}\0${expression}`;
  let fn = compiled.get(key);
  if (fn === undefined) {
    if (whenProblem(expression, kind) !== undefined) return failClosed;
    fn = compiled.get(key);
    if (fn === undefined) return failClosed;
  }
  const budgets = new Map<string, Map<string, bigint>>();
  for (const [name, counters] of Object.entries(facts.budgets)) {
    budgets.set(name, new Map(Object.entries(counters).map(([k, v]) => [k, BigInt(Math.trunc(v))])));
  }
  try {
    const r = fn({
      ...celValues(facts.event ?? {}),
      principal: new Map(Object.entries(facts.principal)),
      groups: [...facts.groups],
      connection: facts.connection,
      operations: [...facts.operations],
      relations: [...facts.relations],
      now: facts.now,
      hour: BigInt(facts.now.getUTCHours()),
      weekday: BigInt(facts.now.getUTCDay()),
      budgets,
    });
    return r === true;
  } catch {
    return failClosed;
  }
}

/** Event facts as CEL values: integers as int, objects as maps, lists as lists. */
function celValues(facts: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(facts)) out[k] = celValue(v, 0);
  return out;
}

function celValue(v: unknown, depth: number): unknown {
  if (depth > 32) return null;
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map((x) => celValue(x, depth + 1));
  if (v instanceof Map) return v;
  if (v !== null && typeof v === "object") return new Map(Object.entries(v).map(([k, x]) => [k, celValue(x, depth + 1)]));
  return v;
}

/** The facts of a `when:` that are not the event's: time and the session's budget counters. */
export type WhenContext = (session: SessionInfo) => { readonly now: Date; readonly budgets: WhenFacts["budgets"] };

/** What an evaluator knows of one event, for its policies' `when:`. */
export interface EventWhenFacts {
  readonly operations: readonly string[];
  readonly relations: readonly string[];
  readonly event: Readonly<Record<string, unknown>>;
}

/**
 * Whether a policy's `when:` holds for an event of `kind` in `session` (true when it has
 * none). Fail closed: an expression that cannot be evaluated holds for refusing and masking
 * policies and not for allow policies.
 */
export function policyWhenHolds(
  policy: { readonly when?: string | undefined; readonly action: string },
  kind: MatchKind,
  session: SessionInfo,
  context: WhenContext | undefined,
  facts: EventWhenFacts,
): boolean {
  if (policy.when === undefined) return true;
  const ctx = context?.(session) ?? { now: new Date(), budgets: {} };
  const p = session.principal;
  return whenHolds(
    policy.when,
    { principal: { id: p.id, name: p.name, kind: p.kind }, groups: p.groups, connection: session.connection, ...facts, ...ctx },
    policy.action !== "allow",
    kind,
  );
}
