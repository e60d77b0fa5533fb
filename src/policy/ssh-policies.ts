/**
 * Guardrails and masking plans for SSH sessions (issue 6), from the same `policies:` list as SQL.
 *
 * Which policies apply to SSH: a policy whose `match` uses only SSH keys (`commands`,
 * `arguments`, `forwardTo`), or has no `match` at all. A policy matching only on SQL (or HTTP)
 * keys never applies to SSH, and the SQL evaluator ignores SSH-only policies and SSH sessions.
 *
 * Commands (exec requests and shell lines) are analysed with the shell analyser
 * (./shell/analyze.ts). Each program found is judged on its own: the first policy matching it
 * decides (allow stops there, deny refuses the whole command, require_approval /
 * require_grant hold the whole command for the pipeline to resolve, unless another program of
 * it is denied: nobody is asked about a command that is refused anyway). When any
 * deny or approval policy applies to the session, a command that cannot be parsed or whose
 * programs cannot be known before they run is refused (fail closed).
 *
 * An exec of exactly one legacy scp or rsync server (`scp -t`/`scp -f`, `rsync --server`) moves
 * file bytes: when allowed, its plan says `transfer: "raw"` (no masks: a text masker would
 * corrupt the files; recorded as a transfer with sizes and hashes, not as terminal output).
 *
 * Forwarding (direct-tcpip, `ssh -L`) is refused unless an `allow` policy with
 * `match.forwardTo` (host:port globs) matches before any deny does.
 */
import { policyWhenHolds, type WhenContext } from "./cel.js";
import { policyHold } from "./holds.js";
import { RE2JS } from "re2js";
import { deny, type AllowDecision, type HoldDecision, type MaskRule, type Verdict } from "../core/decision.js";
import { GatewayError } from "../core/errors.js";
import type { JudgedEvent, JudgedKind, SshCommandEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import type { PolicyConfig } from "../runtime/config.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { Glob, anyGlob } from "./glob.js";
import { analyzeShell, type ShellCommand } from "./shell/analyze.js";


/** An argument pattern: a glob, or `re:REGEX` (RE2 syntax: linear time, unanchored). */
type ArgPattern = { readonly kind: "glob"; readonly glob: Glob } | { readonly kind: "re"; readonly re: RE2JS };

interface SshPolicy {
  readonly config: PolicyConfig;
  readonly name: string;
  readonly connections: readonly Glob[];
  readonly groups: readonly string[] | undefined;
  readonly hasMatch: boolean;
  readonly commands?: readonly Glob[];
  readonly arguments?: readonly ArgPattern[];
  readonly forwardTo?: readonly Glob[];
}

function compileArg(p: PolicyConfig, pattern: string): ArgPattern {
  if (pattern.startsWith("re:")) {
    try {
      return { kind: "re", re: RE2JS.compile(pattern.slice(3)) };
    } catch (e) {
      throw new GatewayError("GW_CONFIG", `policy "${p.name}": match.arguments ${pattern} is not a valid (RE2) regular expression`, { cause: e });
    }
  }
  return { kind: "glob", glob: new Glob(pattern) };
}

/** Undefined when the policy does not apply to SSH at all. */
function compile(p: PolicyConfig): SshPolicy | undefined {
  const m = p.match;
  const base = { config: p, name: p.name, connections: p.connections.map((g) => new Glob(g)), groups: p.groups };
  if (m === undefined) return { ...base, hasMatch: false };
  if (m.kind !== "shell") return undefined; // about another kind of target
  return {
    ...base,
    hasMatch: true,
    ...(m.commands === undefined ? {} : { commands: m.commands.map((g) => new Glob(g)) }),
    ...(m.arguments === undefined ? {} : { arguments: m.arguments.map((a) => compileArg(p, a)) }),
    ...(m.forwardTo === undefined ? {} : { forwardTo: m.forwardTo.map((g) => new Glob(g)) }),
  };
}

/** The events of a shell target: commands, typed lines, channels and forwards. */
const SHELL_KINDS: readonly JudgedKind[] = ["ssh.exec", "ssh.input", "ssh.channel", "ssh.forward"];

function isShellEvent(e: JudgedEvent): e is SshCommandEvent {
  return (SHELL_KINDS as readonly string[]).includes(e.type);
}

export class SshPolicyEvaluator implements Evaluator {
  readonly name = "ssh-policies";
  readonly kinds = SHELL_KINDS;
  readonly #policies: readonly SshPolicy[];
  readonly #whenContext: WhenContext | undefined;

  /** `whenContext`: time and budget counters for `when:` (default: now, no budgets). */
  constructor(policies: readonly PolicyConfig[], whenContext?: WhenContext) {
    this.#policies = policies.map(compile).filter((p): p is SshPolicy => p !== undefined);
    this.#whenContext = whenContext;
  }

  openSession(session: SessionInfo): SessionEvaluator | undefined {
    // Kubernetes sessions too: `kubectl exec`'s command and typed lines are shell (issue 15).
    if (session.targetType !== "ssh" && session.targetType !== "kubernetes") return undefined;
    const applicable = this.#policies.filter(
      (p) => anyGlob(p.connections, session.connection) && (p.groups === undefined || p.groups.some((g) => session.principal.groups.includes(g))),
    );
    return new SshSessionPolicies(applicable, { session, context: this.#whenContext });
  }
}

/** `!x` history references (not `! `, `!=`, `!(`, `$!`) and `^old^new` quick substitution. */
const HISTORY_EXPANSION = /(?:^|[^\\$])![^\s=(]|^\s*\^/m;

const isGuard = (p: SshPolicy): boolean => p.config.action !== "mask";
const isRefusing = (p: SshPolicy): boolean => p.config.action === "deny" || p.config.action === "require_approval" || p.config.action === "require_grant";

export class SshSessionPolicies implements SessionEvaluator {
  readonly kinds = SHELL_KINDS;
  readonly #commandGuards: readonly SshPolicy[];
  readonly #forwardGuards: readonly SshPolicy[];
  readonly #failClosed: boolean;
  readonly #allow: AllowDecision;
  /** Programs refusing policies name (wildcard-only globs left out), for the analysis's fallback. */
  readonly #guarded: ((program: string) => boolean) | undefined;
  /** For `when:`: the session and its time and budget counters. */
  readonly #when: { readonly session: SessionInfo; readonly context: WhenContext | undefined } | undefined;

  constructor(policies: readonly SshPolicy[], when?: { readonly session: SessionInfo; readonly context: WhenContext | undefined }) {
    this.#when = when;
    // Policies about commands (or about everything); forwardTo-only policies judge forwards only.
    this.#commandGuards = policies.filter((p) => isGuard(p) && (p.commands !== undefined || p.arguments !== undefined || !p.hasMatch));
    this.#forwardGuards = policies.filter((p) => isGuard(p) && (p.forwardTo !== undefined || !p.hasMatch));
    this.#failClosed = this.#commandGuards.some(isRefusing);
    // `commands: ["*"]` (an allowlist's final deny) would make every word suspect: left out.
    const named = this.#commandGuards
      .filter(isRefusing)
      .flatMap((p) => (p.config.match?.kind === "shell" ? (p.config.match.commands ?? []) : []).filter((g) => !/^[*?]*$/.test(g)).map((g) => new Glob(g)));
    this.#guarded = named.length === 0 ? undefined : (program) => anyGlob(named, program);
    const masks: MaskRule[] = policies
      .filter((p) => p.config.action === "mask" && (p.config.detectors ?? []).length > 0 && !p.hasMatch)
      .map((p) => ({
        rule: p.name,
        columns: [],
        detectors: p.config.detectors ?? [],
        strategy: p.config.strategy ?? "redact",
        ...(p.config.phoneRegions === undefined ? {} : { phoneRegions: p.config.phoneRegions }),
      }));
    this.#allow = masks.length === 0 ? { type: "allow" } : { type: "allow", plan: { masks } };
  }

  async evaluate(event: JudgedEvent): Promise<Verdict | undefined> {
    if (!isShellEvent(event)) return undefined;
    switch (event.type) {
      case "ssh.exec": {
        const verdict = await this.#judgeText(event.command, false);
        return isFileTransfer(event.command) ? asFileTransfer(verdict) : verdict;
      }
      case "ssh.input":
        // An interactive shell expands history (`!!`, `!rm`, `^old^new`) before it runs the line.
        if (this.#failClosed && HISTORY_EXPANSION.test(event.line)) {
          return deny("GW_POLICY_DENIED", "history expansion (!, ^) runs a line the gateway cannot see, so it is refused (fail closed)", "fail-closed");
        }
        return this.#judgeText(event.line, event.edited, true);
      case "ssh.channel":
        if (event.channel === "shell") return this.#allow;
        return this.#judgeCommands([{ name: event.name ?? "", path: event.name ?? "", args: [], dynamicArgs: false, via: ["subsystem"] }]);
      case "ssh.forward":
        return this.#judgeForward(event.host, event.port);
    }
  }

  async #judgeText(text: string, edited: boolean, interactive = false): Promise<Verdict> {
    if (this.#commandGuards.length === 0) return this.#allow;
    if (edited && this.#failClosed) {
      return deny("GW_POLICY_DENIED", "the line was edited with keys the gateway cannot follow (arrows, tab completion, history): type it again without them", "fail-closed");
    }
    const a = await analyzeShell(text, this.#guarded === undefined ? {} : { guarded: this.#guarded });
    if (!a.ok) {
      if (!this.#failClosed) return this.#allow;
      return deny("GW_POLICY_DENIED", `the command could not be parsed, so it is refused (fail closed): ${a.error}`, "fail-closed");
    }
    if (a.unknowable.length > 0 && this.#failClosed) {
      return deny("GW_POLICY_DENIED", `${a.unknowable[0] ?? "the command cannot be inspected"}, so it is refused (fail closed)`, "fail-closed");
    }
    if (interactive && a.evaluatesValues === true && this.#failClosed) {
      // Variables outlive the line: one set earlier may hold code that arithmetic runs.
      return deny("GW_POLICY_DENIED", "arithmetic on variables in an interactive shell can run code stored in an earlier line, so it is refused (fail closed)", "fail-closed");
    }
    return this.#judgeCommands(a.commands);
  }

  /** The policy's `when:` (over the program and its argv: src/policy/cel.ts) holds for one program. */
  #whenHolds(p: SshPolicy, c: ShellCommand): boolean {
    if (p.config.when === undefined) return true;
    // A session evaluator built without its session cannot evaluate: fail closed.
    if (this.#when === undefined) return p.config.action !== "allow";
    const argv = [c.name, ...c.args];
    return policyWhenHolds(p.config, "shell", this.#when.session, this.#when.context, { operations: [c.name], relations: [], event: { command: c.name, argv } });
  }

  #judgeCommands(commands: readonly ShellCommand[]): Verdict {
    let allowedBy: string | undefined;
    // The first hold is kept while later programs may still be denied.
    let held: { readonly policy: SshPolicy; readonly program: string } | undefined;
    for (const c of commands) {
      for (const p of this.#commandGuards) {
        if (!matchesCommand(p, c) || !this.#whenHolds(p, c)) continue;
        if (p.config.action === "allow") {
          allowedBy ??= p.name;
          break;
        }
        if (p.config.action === "require_approval" || p.config.action === "require_grant") {
          held ??= { policy: p, program: c.name };
          break;
        }
        return deny("GW_POLICY_DENIED", p.config.message ?? `${c.name} is not allowed here (rule ${p.name})`, p.name);
      }
    }
    if (held !== undefined) {
      const programs = [...new Set(commands.map((c) => c.name))].slice(0, 20);
      return this.#hold(held.policy, held.program, programs);
    }
    return allowedBy === undefined ? this.#allow : { ...this.#allow, rule: allowedBy };
  }

  /** A require_approval / require_grant policy matched: the pipeline turns this into allow or deny (src/approvals). */
  /** `what` names what is held ("rm", "forwarding to db:5432") in the default message. */
  #hold(p: SshPolicy, what: string, programs: readonly string[]): HoldDecision {
    // Shown to approvers: the programs the command runs (SSH has no relations).
    return policyHold(p, this.#allow, what, { operations: [...programs], relations: [] });
  }


  #judgeForward(host: string, port: number): Verdict {
    const target = `${host}:${port}`;
    for (const p of this.#forwardGuards) {
      if (p.forwardTo !== undefined && !anyGlob(p.forwardTo, target)) continue;
      if (p.config.action === "allow") {
        if (p.forwardTo === undefined) continue; // only an explicit forwardTo allows forwarding
        return { type: "allow", rule: p.name };
      }
      if (p.config.action === "require_approval" || p.config.action === "require_grant") {
        return this.#hold(p, `forwarding to ${target}`, [`forward ${target}`]);
      }
      return deny("GW_POLICY_DENIED", p.config.message ?? `forwarding to ${target} is not allowed (rule ${p.name})`, p.name);
    }
    return deny("GW_POLICY_DENIED", `forwarding to ${target} is refused: no policy allows it (match.forwardTo)`, "no-forwarding");
  }
}

/**
 * Exactly one legacy scp or rsync server with one plain path, nothing else: its data is passed
 * unmasked (masking would corrupt files). Anything more (`scp -f x; cat .env`) is masked.
 */
const SCP_SERVER = /^scp(?: -[A-Za-z]+)* (?:-- )?(?:'[^']*'|[A-Za-z0-9_./~@%+=:,-]+)$/;
const RSYNC_SERVER = /^rsync --server(?: --?[A-Za-z0-9_.=,+-]+)* \. (?:'[^']*'|[A-Za-z0-9_./~@%+=:,-]+)$/;

export function isFileTransfer(command: string): boolean {
  return SCP_SERVER.test(command) || RSYNC_SERVER.test(command);
}

/** A file transfer's verdict: an allow (now or once approved) passes raw bytes, masks dropped. */
function asFileTransfer(v: Verdict): Verdict {
  switch (v.type) {
    case "deny":
      return v;
    case "hold":
      return { ...v, allow: rawTransfer(v.allow) };
    case "allow":
      return rawTransfer(v);
  }
}

function rawTransfer(a: AllowDecision): AllowDecision {
  return { ...a, plan: { masks: [], transfer: "raw" } };
}

/** All given match keys must hold for the one program. */
function matchesCommand(p: SshPolicy, c: ShellCommand): boolean {
  if (!p.hasMatch) return true;
  if (p.forwardTo !== undefined && p.commands === undefined && p.arguments === undefined) return false;
  if (p.commands !== undefined && !anyGlob(p.commands, c.name) && !anyGlob(p.commands, c.path)) return false;
  if (p.arguments !== undefined) {
    const patterns = p.arguments;
    const test = (a: string): boolean => patterns.some((pt) => (pt.kind === "glob" ? pt.glob.test(a) : pt.re.test(a)));
    let hit: boolean;
    if (isRefusing(p)) {
      // Each argument as written and with its path spelled plainly (`/etc//./x/../shadow` is
      // `/etc/shadow`), and the files named by redirections (`cat < /etc/shadow`).
      hit = argumentForms([...c.args, ...(c.redirects ?? [])]).some(test);
    } else {
      // An allow holds only when every non-option argument matches, path spelled plainly
      // (`cat /var/log/x /etc/shadow` and `cat /var/log/../../etc/shadow` are not "logs").
      const plain = c.args.map((a) => (a.includes("/") && !a.startsWith("-") ? normalisePath(a) : a));
      const positional = plain.filter((a) => !a.startsWith("-"));
      hit = plain.some(test) && positional.every(test);
    }
    // Arguments only known at run time may be anything: they match a refusing policy (fail
    // closed) but never count for an allow.
    if (c.dynamicArgs) return isRefusing(p);
    if (!hit) return false;
  }
  return true;
}

/** An argument, the value of `--opt=value`, and paths among them normalised lexically. */
export function argumentForms(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    out.push(a);
    const eq = a.startsWith("-") ? a.indexOf("=") : -1;
    const prefix = eq < 0 ? "" : a.slice(0, eq + 1);
    const value = eq < 0 ? a : a.slice(eq + 1);
    if (prefix !== "") out.push(value);
    if (!value.includes("/")) continue;
    const n = normalisePath(value);
    if (n !== value) out.push(prefix + n, n);
  }
  return out;
}

/** Collapse `//` and `/./`, resolve `..` lexically (symlinks are not followed). */
export function normalisePath(p: string): string {
  const absolute = p.startsWith("/");
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
      else if (!absolute) parts.push("..");
      continue;
    }
    parts.push(seg);
  }
  const body = parts.join("/");
  return absolute ? `/${body}` : body === "" ? "." : body;
}
