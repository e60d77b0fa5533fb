/**
 * Policies written in the web console, layered after the configuration's.
 *
 * The effective list is the YAML's policies in their order, then the console's in the order set
 * in the console (`reorder`; a new policy goes last; those never placed follow, by name)
 * (policies are judged in order; the first matching deny / approval wins, so a console policy
 * can add refusals, approvals and masks but never loosen a YAML deny that matches first).
 *
 * Invariants:
 * - Kept in the store (store/console-documents.ts, kind "policy"), shared by every gateway on
 *   it, read again every `refreshMs` and at once after this gateway's own changes.
 * - The same validation as the YAML: each document is parsed by parseConfig as a one-policy
 *   configuration, with the effective connections known (a match's kind follows their types),
 *   on write and again on every read (an entry that no longer validates is skipped and logged).
 * - A YAML policy's name cannot be taken or changed here.
 * - New sessions are judged with the new list; a running session keeps the list it started with
 *   (its per-session evaluators were opened then).
 */
import type { Logger } from "pino";
import { parse as parseYaml, stringify } from "yaml";
import { z } from "zod";
import type { Connection } from "../core/connection.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { SessionStartEvent } from "../core/events.js";
import type { Decision } from "../core/decision.js";
import type { SessionInfo } from "../core/session.js";
import type { Evaluator, SessionEvaluator } from "../policy/evaluator.js";
import type { ConsoleDocumentStore } from "../store/console-documents.js";
import { parseConfig, type Config, type PolicyConfig } from "./config.js";
import { CONSOLE_REFRESH_MS, refreshEvery } from "./live-connections.js";
import { detectorNames } from "./maskers.js";

/** Longest policy document accepted from the console (YAML text). */
export const MAX_POLICY_CHARS = 64 * 1024;

export const policyBody = z.strictObject({
  /** One policy as it would be written under `policies:` in the YAML (YAML or JSON text). */
  document: z.string().min(1).max(MAX_POLICY_CHARS),
});

const storedPolicy = z.object({
  document: z.record(z.string(), z.unknown()),
  updatedAt: z.string(),
  updatedBy: z.string(),
  /** Place among the console's policies (judged in this order); absent = after those placed, by name. */
  order: z.number().int().nonnegative().optional(),
});
type StoredPolicy = z.infer<typeof storedPolicy>;

export interface PolicyViewEntry {
  name: string;
  action: string;
  connections: string[];
  groups?: string[];
  document: string;
  source: "config" | "console";
}

/**
 * An evaluator whose implementation is replaced when the policies change. Its name and kinds
 * are fixed (the pipeline routes by them once); new sessions open the current implementation.
 */
export class SwappableEvaluator implements Evaluator {
  readonly name: string;
  readonly kinds: Evaluator["kinds"];
  #current: Evaluator;

  constructor(initial: Evaluator) {
    this.#current = initial;
    this.name = initial.name;
    this.kinds = initial.kinds;
  }

  swap(next: Evaluator): void {
    if (next.name !== this.name || next.kinds.join() !== this.kinds.join()) throw new Error(`evaluator ${next.name} cannot replace ${this.name}`);
    this.#current = next;
  }

  evaluateSession(event: SessionStartEvent): Decision | undefined {
    return this.#current.evaluateSession?.(event);
  }

  openSession(session: SessionInfo): SessionEvaluator | undefined {
    return this.#current.openSession?.(session);
  }
}

export interface LivePoliciesOptions {
  readonly config: Config;
  readonly docs: ConsoleDocumentStore;
  /** The effective connections (for a match's kind). */
  readonly connections: () => readonly Connection[];
  /** Called with the effective list whenever it changes (rebuild the evaluators). */
  readonly onChange: (policies: readonly PolicyConfig[]) => void;
  readonly logger: Logger;
  readonly refreshMs?: number;
}

export class LivePolicies {
  readonly #o: LivePoliciesOptions;
  readonly #configNames: ReadonlySet<string>;
  #stored = new Map<string, StoredPolicy>();
  #effective: readonly PolicyConfig[];
  #fingerprint = "";
  #stopRefresh: () => void = () => undefined;
  #refreshing: Promise<void> | undefined;

  private constructor(o: LivePoliciesOptions) {
    this.#o = o;
    this.#configNames = new Set(o.config.policies.map((p) => p.name));
    this.#effective = o.config.policies;
  }

  static async open(o: LivePoliciesOptions): Promise<LivePolicies> {
    const live = new LivePolicies(o);
    await live.refresh();
    live.#stopRefresh = refreshEvery(() => live.refresh(), o.refreshMs ?? CONSOLE_REFRESH_MS, o.logger, "console policies");
    return live;
  }

  close(): void {
    this.#stopRefresh();
  }

  /** The YAML's policies, then the console's by name. */
  effective(): readonly PolicyConfig[] {
    return this.#effective;
  }

  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const docs = await this.#o.docs.list("policy");
    const fingerprint = JSON.stringify(docs.map((d) => [d.name, d.body]));
    if (fingerprint === this.#fingerprint) return;
    const stored = new Map<string, StoredPolicy>();
    const console: { policy: PolicyConfig; order: number }[] = [];
    for (const d of docs) {
      if (this.#configNames.has(d.name)) {
        this.#o.logger.warn({ policy: d.name }, "a console policy has the name of a configured one: the configuration's wins");
        continue;
      }
      try {
        const e = storedPolicy.parse(JSON.parse(d.body));
        console.push({ policy: this.#validate(e.document), order: e.order ?? Number.MAX_SAFE_INTEGER });
        stored.set(d.name, e);
      } catch (err) {
        this.#o.logger.error({ policy: d.name, err: isGatewayError(err) ? err.message : "unreadable" }, "a stored console policy is invalid and is skipped");
      }
    }
    this.#stored = stored;
    this.#fingerprint = fingerprint;
    // Documents come by name; a stable sort keeps that order among equals.
    console.sort((a, b) => a.order - b.order);
    this.#effective = [...this.#o.config.policies, ...console.map((c) => c.policy)];
    this.#o.onChange(this.#effective);
  }

  /** Validate one policy document as the YAML's are; returns it parsed. */
  #validate(doc: Record<string, unknown>): PolicyConfig {
    let config: Config;
    try {
      config = parseConfig({ dataDir: this.#o.config.dataDir, policies: [doc] }, undefined, {
        knownConnections: this.#o.connections().map((c) => ({ name: c.name, type: c.type })),
        grants: this.#o.config.approvals.grants !== undefined,
      });
    } catch (e) {
      throw new GatewayError("GW_BAD_REQUEST", isGatewayError(e) ? e.message.replace(/policies\[0\]\.?/gu, "policy.").replace(/^invalid configuration:\n/u, "invalid policy: ") : "invalid policy");
    }
    const p = config.policies[0];
    if (p === undefined) throw new GatewayError("GW_BAD_REQUEST", "no policy given");
    try {
      detectorNames({ rule: p.name, detectors: p.detectors ?? [] });
    } catch (e) {
      throw new GatewayError("GW_BAD_REQUEST", isGatewayError(e) ? e.message : "unknown detector");
    }
    return p;
  }

  /** Parse YAML/JSON text (bounded) into one policy document. */
  static parseDocument(text: string): Record<string, unknown> {
    if (text.length > MAX_POLICY_CHARS) throw new GatewayError("GW_BAD_REQUEST", `a policy document is at most ${MAX_POLICY_CHARS} characters`);
    let doc: unknown;
    try {
      doc = parseYaml(text, { maxAliasCount: 50, uniqueKeys: true });
    } catch (e) {
      throw new GatewayError("GW_BAD_REQUEST", `the policy is not valid YAML: ${e instanceof Error ? e.message.split("\n")[0] ?? "" : "parse error"}`);
    }
    // The YAML list form (`- name: …`) of exactly one policy is accepted too.
    if (Array.isArray(doc) && doc.length === 1) doc = doc[0];
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new GatewayError("GW_BAD_REQUEST", "give one policy: a mapping with name, action, …");
    return doc as Record<string, unknown>;
  }

  /** Create or replace a console policy from YAML text. */
  async save(text: string, by: string): Promise<PolicyConfig> {
    const doc = LivePolicies.parseDocument(text);
    const p = this.#validate(doc);
    if (this.#configNames.has(p.name)) throw new GatewayError("GW_CONFLICT", `policy "${p.name}" is defined in the configuration file: change it there`);
    await this.refresh();
    // A changed policy keeps its place; a new one goes last.
    const order = this.#stored.get(p.name)?.order ?? Math.max(-1, ...[...this.#stored.values()].map((e) => e.order ?? -1)) + 1;
    const entry: StoredPolicy = { document: doc, updatedAt: new Date().toISOString(), updatedBy: by, order };
    await this.#o.docs.put({ kind: "policy", name: p.name, body: JSON.stringify(entry), updatedAt: new Date(entry.updatedAt), updatedBy: by });
    await this.refresh();
    return p;
  }

  /**
   * Set the order of the console's policies: `names` lists every console policy once, in the
   * order they are to be judged (after the YAML's, which keep theirs).
   */
  async reorder(names: readonly string[], by: string): Promise<readonly string[]> {
    await this.refresh();
    const current = [...this.#stored.keys()];
    const wanted = new Set(names);
    const yaml = names.filter((n) => this.#configNames.has(n));
    if (yaml.length > 0) throw new GatewayError("GW_CONFLICT", `policy "${yaml[0] ?? ""}" is defined in the configuration file: its place is set there`);
    if (wanted.size !== names.length) throw new GatewayError("GW_BAD_REQUEST", "a policy is named twice in the order");
    const unknown = names.filter((n) => !this.#stored.has(n));
    if (unknown.length > 0) throw new GatewayError("GW_NOT_FOUND", `no console policy ${unknown[0] ?? ""}`);
    const missing = current.filter((n) => !wanted.has(n));
    if (missing.length > 0) throw new GatewayError("GW_BAD_REQUEST", `the order must name every console policy; missing: ${missing.join(", ")}`);
    const now = new Date();
    for (const [i, name] of names.entries()) {
      const e = this.#stored.get(name);
      if (e === undefined || e.order === i) continue;
      const entry: StoredPolicy = { ...e, order: i, updatedAt: now.toISOString(), updatedBy: by };
      await this.#o.docs.put({ kind: "policy", name, body: JSON.stringify(entry), updatedAt: now, updatedBy: by });
    }
    await this.refresh();
    return this.views()
      .filter((v) => v.source === "console")
      .map((v) => v.name);
  }

  async remove(name: string): Promise<void> {
    if (this.#configNames.has(name)) throw new GatewayError("GW_CONFLICT", `policy "${name}" is defined in the configuration file: change it there`);
    if (!(await this.#o.docs.remove("policy", name))) throw new GatewayError("GW_NOT_FOUND", `no console policy ${name}`);
    await this.refresh();
  }

  /** The effective policies as the console shows them. */
  views(): PolicyViewEntry[] {
    const consoleNames = new Set(this.#stored.keys());
    return this.#effective.map((p) => ({
      name: p.name,
      action: p.action,
      connections: [...p.connections],
      ...(p.groups === undefined ? {} : { groups: [...p.groups] }),
      // Console policies show as written; YAML ones as parsed.
      document: stringify(consoleNames.has(p.name) ? this.#stored.get(p.name)?.document : p).trimEnd(),
      source: consoleNames.has(p.name) ? "console" : "config",
    }));
  }

  /** The console's policies as written, for `airlock config show`. */
  documents(): Record<string, unknown>[] {
    return [...this.#stored.values()].map((e) => e.document);
  }
}
