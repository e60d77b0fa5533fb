/**
 * A policy's `match`, as a union per target kind. The YAML stays flat (`match: { operations:
 * [drop] }`); the kind is inferred from the keys, and where keys are shared between kinds
 * (`commands` is shell or redis, `arguments` shell or mcp) from the types of the connections
 * the policy applies to. An explicit `kind:` settles it. A match whose keys fit none of its
 * connections' types is a configuration error naming the key, never a policy that silently
 * matches nothing.
 */
import type { ConnectionType } from "../core/connection.js";
import { Glob } from "./glob.js";

export type MatchKind = "sql" | "shell" | "redis" | "http" | "kubernetes" | "mcp";

export interface SqlMatch {
  readonly kind: "sql";
  readonly operations?: readonly string[];
  readonly relations?: readonly string[];
  readonly columns?: readonly string[];
  readonly functions?: readonly string[];
  readonly noWhere?: boolean;
  readonly statementRegex?: string;
  /** The planner's estimate (EXPLAIN), asked before the statement runs. */
  readonly cost?: NumberCompare;
  readonly estimatedRows?: NumberCompare;
}

export interface NumberCompare {
  readonly gt?: number | undefined;
  readonly gte?: number | undefined;
}

export interface ShellMatch {
  readonly kind: "shell";
  readonly commands?: readonly string[];
  readonly arguments?: readonly string[];
  readonly forwardTo?: readonly string[];
}

export interface RedisMatch {
  readonly kind: "redis";
  readonly commands?: readonly string[];
  readonly keys?: readonly string[];
}

export interface HttpMatch {
  readonly kind: "http";
  readonly methods?: readonly string[];
  readonly paths?: readonly string[];
  readonly query?: readonly string[];
  readonly headers?: readonly string[];
  readonly body?: readonly string[];
}

export interface KubernetesMatch {
  readonly kind: "kubernetes";
  readonly verbs?: readonly string[];
  readonly resources?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly names?: readonly string[];
}

export interface McpMatch {
  readonly kind: "mcp";
  readonly tools?: readonly string[];
  /** Predicates on the call's arguments: `$.path OP VALUE` strings, or `{ "$.path": "OP VALUE" }` (src/policy/mcp-policies.ts). */
  readonly arguments?: readonly string[] | Readonly<Record<string, string>>;
}

export type PolicyMatch = SqlMatch | ShellMatch | RedisMatch | HttpMatch | KubernetesMatch | McpMatch;

/** The keys each kind accepts (besides `kind`). */
export const MATCH_KEYS: { readonly [K in MatchKind]: readonly string[] } = {
  sql: ["operations", "relations", "columns", "functions", "noWhere", "statementRegex", "cost", "estimatedRows"],
  shell: ["commands", "arguments", "forwardTo"],
  redis: ["commands", "keys"],
  http: ["methods", "paths", "query", "headers", "body"],
  kubernetes: ["verbs", "resources", "namespaces", "names"],
  mcp: ["tools", "arguments"],
};

export const MATCH_KINDS = Object.keys(MATCH_KEYS) as readonly MatchKind[];

/** The match kind statements of each connection type are judged as. */
export const MATCH_KIND_OF: { readonly [T in ConnectionType]: MatchKind } = {
  postgres: "sql",
  ssh: "shell",
  redis: "redis",
  kubernetes: "kubernetes",
  http: "http",
  mysql: "sql",
  mcp: "mcp",
};

/**
 * Kinds a connection type is judged as besides its own: `kubectl exec`'s commands and typed
 * lines are judged by the shell guardrails (`commands`, `arguments`).
 */
export const EXTRA_MATCH_KINDS_OF: { readonly [T in ConnectionType]?: readonly MatchKind[] } = {
  kubernetes: ["shell"],
};

/** What a flat `match` looks like once parsed by the config schema (all keys optional). */
export type FlatMatch = { readonly kind?: MatchKind | undefined } & { readonly [key: string]: unknown };

/**
 * The kind of a flat match for a policy applying to connections of `types` (the configured
 * connections its `connections` globs name). Returns the kind, or a problem naming the key.
 */
export function inferMatchKind(match: FlatMatch, types: ReadonlySet<ConnectionType>): { readonly kind: MatchKind } | { readonly problem: string } {
  const keys = Object.keys(match).filter((k) => k !== "kind" && match[k] !== undefined);
  if (keys.length === 0) return { problem: "match needs at least one key (or leave match out to match everything)" };
  const fitting = (match.kind === undefined ? MATCH_KINDS : [match.kind]).filter((kind) => keys.every((k) => MATCH_KEYS[kind].includes(k)));
  if (fitting.length === 0) {
    if (match.kind !== undefined) {
      const bad = keys.find((k) => !MATCH_KEYS[match.kind ?? "sql"].includes(k)) ?? keys[0];
      return { problem: `match.${bad ?? "?"} is not a key of a ${match.kind} match (its keys: ${MATCH_KEYS[match.kind].join(", ")})` };
    }
    const first = keys[0] ?? "?";
    const other = keys.find((k) => !MATCH_KINDS.some((kind) => MATCH_KEYS[kind].includes(k) && MATCH_KEYS[kind].includes(first)));
    return { problem: `match.${other ?? first} cannot be combined with match.${first}: they belong to different kinds of target` };
  }
  const served = new Set([...types].flatMap((t) => [MATCH_KIND_OF[t], ...(EXTRA_MATCH_KINDS_OF[t] ?? [])]));
  const applicable = fitting.filter((kind) => served.has(kind));
  if (applicable.length === 1 && applicable[0] !== undefined) return { kind: applicable[0] };
  if (applicable.length > 1) {
    return { problem: `match.${keys.join("/")} fits ${applicable.join(" and ")} connections alike: say which with match.kind` };
  }
  // A policy that names no configured connection (yet): the keys alone decide, shared keys
  // taking their first meaning in MATCH_KINDS order (`commands`: shell), as before kinds existed.
  if (types.size === 0 && fitting[0] !== undefined) return { kind: fitting[0] };
  const key = keys[0] ?? "?";
  const typeList = `only ${[...types].join(", ")} connections`;
  const kinds = fitting.join(" or ");
  return { problem: `match.${key} is a ${kinds} key, but the policy applies to ${typeList}` };
}

/** The connection types a policy's `connections` globs name among the configured connections. */
export function typesNamed(globs: readonly string[], connections: readonly { readonly name: string; readonly type: ConnectionType }[]): Set<ConnectionType> {
  const compiled = globs.map((g) => new Glob(g));
  return new Set(connections.filter((c) => compiled.some((g) => g.test(c.name))).map((c) => c.type));
}

/** Build the typed match from a flat one whose kind has been settled. */
export function typedMatch(match: FlatMatch, kind: MatchKind): PolicyMatch {
  const out: Record<string, unknown> = { kind };
  for (const k of MATCH_KEYS[kind]) if (match[k] !== undefined) out[k] = match[k];
  return out as unknown as PolicyMatch;
}
