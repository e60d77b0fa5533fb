/**
 * Guardrails and masking plans for Redis sessions (issue 14), from the same `policies:` list.
 *
 * Which policies apply: a policy whose `match` is a redis match (`commands`, `keys`) or that
 * has no `match`, on the session's connection and groups. Guard policies are tried in order and
 * the first that matches a command decides (allow, deny, require_approval / require_grant),
 * as for SSH programs:
 * - `commands`: globs over the command's name, lower case; a subcommand matches as
 *   `config|set`, `config set` and its container `config`;
 * - `keys`: globs over the keys the command touches, read from the target's own command table
 *   (key specifications). When the table cannot say every key, a refusing policy with `keys`
 *   matches (fail closed) and an allowing one does not.
 * - `readOnly: true` refuses every command the target's table flags `write`.
 *
 * Unknown effect: scripts and functions (EVAL*, FCALL*, SCRIPT, FUNCTION), MODULE, DEBUG,
 * MIGRATE, SHUTDOWN, ACL, replication (SYNC, PSYNC, REPLCONF, REPLICAOF, SLAVEOF), every command
 * the target's table flags `admin` (CONFIG, CLIENT KILL, SAVE, FAILOVER …) and commands the
 * table does not know run what the gateway cannot inspect, or reach beyond the session: when any
 * deny or approval policy, or a key rule that masks values whole, applies to the session they
 * are refused (fail closed), unless an `allow` policy names the command itself (not a bare `*`).
 *
 * Masks: a `mask` policy with `detectors` masks what they find in every reply (no match), or
 * in the replies of commands its `commands`/`keys` match; one with no detectors masks those
 * replies' values whole (`keys: ["user:*"]`: the values of user keys read back as `[REDACTED]`).
 * A key rule must not be escaped by moving the data: a writing command that touches a key it
 * covers and a key it does not (RENAME, COPY, SORT … STORE, SUNIONSTORE, …) is refused.
 */
import { policyHold } from "./holds.js";
import { deny, type AllowDecision, type HoldDecision, type MaskRule, type Verdict } from "../core/decision.js";
import type { JudgedEvent, JudgedKind, RedisCommandEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import type { PolicyConfig } from "../runtime/config.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { Glob, anyGlob } from "./glob.js";
import { policyWhenHolds, type WhenContext } from "./cel.js";

export const REDIS_KINDS: readonly JudgedKind[] = ["redis.command"];

/** Commands whose effect the gateway cannot know from their text (see the header). */
const UNKNOWN_EFFECT = new Set([
  "eval",
  "eval_ro",
  "evalsha",
  "evalsha_ro",
  "fcall",
  "fcall_ro",
  "script",
  "function",
  "module",
  "debug",
  "migrate",
  "shutdown",
  "acl",
  "sync",
  "psync",
  "replconf",
  "replicaof",
  "slaveof",
]);

interface RedisPolicy {
  readonly config: PolicyConfig;
  readonly name: string;
  readonly connections: readonly Glob[];
  readonly groups: readonly string[] | undefined;
  readonly hasMatch: boolean;
  readonly commands?: readonly Glob[];
  readonly keys?: readonly Glob[];
  /** Command names given literally (no wildcard), for the unknown-effect exemption. */
  readonly named: ReadonlySet<string>;
}

function compile(p: PolicyConfig): RedisPolicy | undefined {
  const m = p.match;
  const base = { config: p, name: p.name, connections: p.connections.map((g) => new Glob(g)), groups: p.groups, named: new Set<string>() };
  if (m === undefined) return { ...base, hasMatch: false };
  if (m.kind !== "redis") return undefined;
  return {
    ...base,
    hasMatch: true,
    ...(m.commands === undefined ? {} : { commands: m.commands.map((g) => new Glob(g)) }),
    ...(m.keys === undefined ? {} : { keys: m.keys.map((g) => new Glob(g)) }),
    named: new Set((m.commands ?? []).filter((c) => !/[*?]/.test(c)).map((c) => c.toLowerCase())),
  };
}

export class RedisPolicyEvaluator implements Evaluator {
  readonly name = "redis-policies";
  readonly kinds = REDIS_KINDS;
  readonly #policies: readonly RedisPolicy[];
  readonly #whenContext: WhenContext | undefined;

  /** `whenContext`: time and budget counters for `when:` (default: now, no budgets). */
  constructor(policies: readonly PolicyConfig[], whenContext?: WhenContext) {
    this.#policies = policies.map(compile).filter((p): p is RedisPolicy => p !== undefined);
    this.#whenContext = whenContext;
  }

  openSession(session: SessionInfo): SessionEvaluator | undefined {
    if (session.targetType !== "redis") return undefined;
    const applicable = this.#policies.filter(
      (p) => anyGlob(p.connections, session.connection) && (p.groups === undefined || p.groups.some((g) => session.principal.groups.includes(g))),
    );
    return new RedisSessionPolicies(applicable, this.#whenContext);
  }
}

const isRefusing = (p: RedisPolicy): boolean => p.config.action === "deny" || p.config.action === "require_approval" || p.config.action === "require_grant";

/** The names a command answers to: `config|set`, `config set`, `config`. */
function namesOf(command: string): string[] {
  const bar = command.indexOf("|");
  return bar < 0 ? [command] : [command, command.replace("|", " "), command.slice(0, bar)];
}

/** The match's keys and the policy's `when:` (over command, keys: src/policy/cel.ts) hold. */
function matches(p: RedisPolicy, e: RedisCommandEvent, context: WhenContext | undefined): boolean {
  if (!keysMatch(p, e)) return false;
  return policyWhenHolds(p.config, "redis", e.session, context, { operations: [e.command], relations: e.keys, event: { command: e.command, keys: [...e.keys] } });
}

function keysMatch(p: RedisPolicy, e: RedisCommandEvent): boolean {
  if (!p.hasMatch) return true;
  const commands = p.commands;
  if (commands !== undefined && !namesOf(e.command).some((n) => anyGlob(commands, n))) return false;
  const keys = p.keys;
  if (keys !== undefined) {
    if (e.keys.some((k) => anyGlob(keys, k))) return true;
    // Keys the gateway cannot see may be any key: a refusing (or masking) rule holds, an allow does not.
    return !e.keysComplete && p.config.action !== "allow";
  }
  return true;
}

/** A mask policy that masks values whole by key (no detectors). */
function isWholeKeyRule(p: RedisPolicy): boolean {
  return p.config.action === "mask" && p.keys !== undefined && (p.config.detectors ?? []).length === 0;
}

/** The command touches a key the rule covers and one it does not (or keys the gateway cannot see). */
function copiesOut(p: RedisPolicy, e: RedisCommandEvent): boolean {
  const keys = p.keys ?? [];
  const covered = e.keys.filter((k) => anyGlob(keys, k));
  if (covered.length === 0) return false;
  return !e.keysComplete || covered.length < e.keys.length;
}

export class RedisSessionPolicies implements SessionEvaluator {
  readonly kinds = REDIS_KINDS;
  readonly #guards: readonly RedisPolicy[];
  readonly #masks: readonly RedisPolicy[];
  readonly #failClosed: boolean;
  readonly #readOnly: RedisPolicy | undefined;
  readonly #whenContext: WhenContext | undefined;

  constructor(policies: readonly RedisPolicy[], whenContext?: WhenContext) {
    this.#whenContext = whenContext;
    this.#guards = policies.filter((p) => p.config.action !== "mask");
    this.#masks = policies.filter((p) => p.config.action === "mask");
    this.#failClosed = this.#guards.some(isRefusing) || policies.some((p) => p.config.readOnly === true) || this.#masks.some(isWholeKeyRule);
    this.#readOnly = policies.find((p) => p.config.readOnly === true);
  }

  evaluate(event: JudgedEvent): Verdict | undefined {
    if (event.type !== "redis.command") return undefined;
    const allow = this.#allowFor(event);
    const name = event.command.split("|")[0] ?? event.command;
    const explicitlyAllowed = this.#guards.some((p) => p.config.action === "allow" && (p.named.has(name) || p.named.has(event.command)) && matches(p, event, this.#whenContext));
    if (this.#failClosed && !explicitlyAllowed) {
      if (event.unknownCommand) {
        return deny("GW_POLICY_DENIED", `${name.toUpperCase()} is not in the target's command table, so it is refused (fail closed)`, "fail-closed");
      }
      if (UNKNOWN_EFFECT.has(name)) {
        return deny("GW_POLICY_DENIED", `${name.toUpperCase()} runs what the gateway cannot inspect, so it is refused (fail closed)`, "fail-closed");
      }
      if (event.flags.includes("admin")) {
        return deny("GW_POLICY_DENIED", `${event.command.replace("|", " ").toUpperCase()} is an administrative command, refused while guardrails apply (fail closed; an allow policy naming it lets it through)`, "fail-closed");
      }
    }
    const escape = this.#masks.find((p) => isWholeKeyRule(p) && event.flags.includes("write") && copiesOut(p, event));
    if (escape !== undefined) {
      return deny("GW_POLICY_DENIED", `${name.toUpperCase()} would move values that rule ${escape.name} masks to a key it does not cover`, escape.name);
    }
    if (this.#readOnly !== undefined && event.flags.includes("write")) {
      return deny("GW_POLICY_DENIED", `the session is read-only: ${name.toUpperCase()} writes (rule ${this.#readOnly.name})`, this.#readOnly.name);
    }
    for (const p of this.#guards) {
      if (!matches(p, event, this.#whenContext)) continue;
      if (p.config.action === "allow") return { ...allow, rule: p.name };
      if (p.config.action === "require_approval" || p.config.action === "require_grant") return this.#hold(p, event, allow);
      return deny("GW_POLICY_DENIED", p.config.message ?? `${name.toUpperCase()} is not allowed here (rule ${p.name})`, p.name);
    }
    return allow;
  }

  /** The masks that apply to this command's reply. */
  #allowFor(event: RedisCommandEvent): AllowDecision {
    const masks: MaskRule[] = [];
    for (const p of this.#masks) {
      if (!matches(p, event, this.#whenContext)) continue;
      const detectors = p.config.detectors ?? [];
      // No detectors: the values of what it matches are masked whole (columns "*": every value).
      masks.push({ rule: p.name, columns: detectors.length === 0 ? ["*"] : [], detectors, strategy: p.config.strategy ?? "redact" });
    }
    return masks.length === 0 ? { type: "allow" } : { type: "allow", plan: { masks } };
  }

  #hold(p: RedisPolicy, e: RedisCommandEvent, allow: AllowDecision): HoldDecision {
    const name = e.command.split("|")[0] ?? e.command;
    return policyHold(p, allow, name.toUpperCase(), { operations: [e.command], relations: e.keys.slice(0, 20) });
  }

}
