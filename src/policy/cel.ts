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
 * An expression that fails at run time (a budget the session does not have: use
 * `has(budgets.x)` or `"x" in budgets`) counts as holding for deny, approval and mask
 * policies, and as not holding for allow policies: fail closed.
 */
import { Environment } from "@marcbachmann/cel-js";

export interface WhenFacts {
  readonly principal: { readonly id: string; readonly name: string; readonly kind: string };
  readonly groups: readonly string[];
  readonly connection: string;
  readonly operations: readonly string[];
  readonly relations: readonly string[];
  readonly now: Date;
  readonly budgets: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** Longest `when:` expression accepted. */
export const MAX_WHEN_CHARS = 4096;

const env = new Environment({ limits: { maxAstNodes: 2_000, maxDepth: 64, maxListElements: 1_000, maxMapEntries: 1_000, maxCallArguments: 16 } })
  .registerVariable("principal", "map<string, string>")
  .registerVariable("groups", "list<string>")
  .registerVariable("connection", "string")
  .registerVariable("operations", "list<string>")
  .registerVariable("relations", "list<string>")
  .registerVariable("now", "google.protobuf.Timestamp")
  .registerVariable("hour", "int")
  .registerVariable("weekday", "int")
  .registerVariable("budgets", "map<string, map<string, int>>");

type Compiled = (context: Record<string, unknown>) => unknown;

const compiled = new Map<string, Compiled>();

/** Compile and type-check an expression: undefined when it is good, else the problem (one line). */
export function whenProblem(expression: string): string | undefined {
  if (expression.length > MAX_WHEN_CHARS) return `longer than ${MAX_WHEN_CHARS} characters`;
  try {
    const check = env.check(expression);
    if (!check.valid) return firstLine(check.error);
    if (check.type !== "bool") return `must be a bool expression, not ${String(check.type)}`;
    compiled.set(expression, env.parse(expression) as Compiled);
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
export function whenHolds(expression: string, facts: WhenFacts, failClosed: boolean): boolean {
  let fn = compiled.get(expression);
  if (fn === undefined) {
    if (whenProblem(expression) !== undefined) return failClosed;
    fn = compiled.get(expression);
    if (fn === undefined) return failClosed;
  }
  const budgets = new Map<string, Map<string, bigint>>();
  for (const [name, counters] of Object.entries(facts.budgets)) {
    budgets.set(name, new Map(Object.entries(counters).map(([k, v]) => [k, BigInt(Math.trunc(v))])));
  }
  try {
    const r = fn({
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
