/**
 * The pieces of an MCP gateway policy match (issue 16), compiled once at config load:
 * - `tools`: globs over the upstream tool's name (case-insensitive: over-matching is the safe direction); an
 *   upstream's request back to the agent is named by its method (`sampling/createMessage`,
 *   `elicitation/create`), so `tools: ["sampling/*"]` names those;
 * - `arguments`: predicates on the call's arguments as a JSON document, either a list of
 *   `$.path OP VALUE` strings (the HTTP body predicate language, src/policy/http-match.ts) or a
 *   map `{ "$.path": "OP VALUE" }` (an empty value means "present"). Entries of a list are
 *   alternatives (any may hold); the entries of a map must all hold, as keys of a match do.
 */
import { Glob } from "./glob.js";
import { bodyPredicateHolds, parseBodyPredicate, type BodyPredicate } from "./http-match.js";
import type { McpMatch } from "./match.js";

export interface CompiledMcpMatch {
  readonly tools?: readonly Glob[];
  /** Alternatives: any holds. */
  readonly anyOf?: readonly BodyPredicate[];
  /** All hold. */
  readonly allOf?: readonly BodyPredicate[];
}

/** `{ "$.path": "== x" }` entries as predicate source text. */
function mapEntries(m: Readonly<Record<string, string>>): string[] {
  return Object.entries(m).map(([path, pred]) => `${path} ${pred}`.trim());
}

export function compileMcpMatch(m: McpMatch): CompiledMcpMatch {
  const args = m.arguments;
  return {
    ...(m.tools === undefined ? {} : { tools: m.tools.map((g) => new Glob(g)) }),
    ...(args === undefined ? {} : isList(args) ? { anyOf: args.map(parseBodyPredicate) } : { allOf: mapEntries(args).map(parseBodyPredicate) }),
  };
}

function isList(a: readonly string[] | Readonly<Record<string, string>>): a is readonly string[] {
  return Array.isArray(a);
}

/** Does the match hold for a call of `tool` with `args`? */
export function mcpMatchHolds(m: CompiledMcpMatch, tool: string, args: unknown): boolean {
  if (m.tools !== undefined && !m.tools.some((g) => g.test(tool))) return false;
  if (m.anyOf !== undefined && !m.anyOf.some((p) => bodyPredicateHolds(p, args))) return false;
  if (m.allOf !== undefined && !m.allOf.every((p) => bodyPredicateHolds(p, args))) return false;
  return true;
}

/** Problems of an mcp match, for config validation (each names its key). */
export function mcpMatchProblems(m: { readonly arguments?: unknown }): string[] {
  const problems: string[] = [];
  const a = m.arguments;
  if (a === undefined || a === null || typeof a !== "object") return problems;
  const entries: [string, string][] = Array.isArray(a)
    ? a.flatMap((x: unknown, j): [string, string][] => (typeof x === "string" ? [[`[${j}]`, x]] : []))
    : Object.entries(a as Record<string, unknown>).flatMap(([k, v]): [string, string][] => (typeof v === "string" ? [[`["${k}"]`, `${k} ${v}`.trim()]] : []));
  for (const [where, text] of entries) {
    try {
      parseBodyPredicate(text);
    } catch (e) {
      problems.push(`arguments${where}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return problems;
}
