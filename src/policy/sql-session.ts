/**
 * Per-session SQL judgement (SessionPolicies): one concept, the state a session's statements
 * are judged in — prepared statements, every schema its search_path may name, views and
 * renames it made, catalog look-ups in flight — and the judgement that depends on it. It is
 * longer than ~500 lines because that state and the decisions reading it are one piece;
 * compilation and matching helpers live in sql-policy.ts.
 */
import { deny, type AllowDecision, type CostDeferral, type Decision, type EvaluatorVerdict, type HoldDecision, type MaskRule, type StatementLineage, type Verdict } from "../core/decision.js";
import type { DbQueryEvent, JudgedEvent } from "../core/events.js";
import type { CostEstimate } from "../core/preview.js";
import { EXPLAINABLE_OPERATIONS, costMatches, costMissing, formatEstimate, hasCostMatch, previewSettings } from "./sql-cost.js";
import { GatewayError } from "../core/errors.js";
import type { SessionInfo } from "../core/session.js";
import type { Answer, SessionEvaluator } from "./evaluator.js";
import { ColumnGlob, anyGlob } from "./glob.js";
import { setConfigTouchesProtected, settingsTouched } from "./sql-settings.js";
import type { Classification, ClassificationCache, ColumnAccess, QualifiedName, StatementFacts } from "./sql/index.js";
import {
  ATTRIBUTE_LOOKUP_FAILED,
  DEFAULT_APPROVAL_TIMEOUT_MS,
  READ_ONLY_SETTINGS,
  SETTINGS_OPERATIONS,
  SQL_KINDS,
  VIEW_LOOKUP_FAILED,
  WRITE_OPERATIONS,
  defaultMessage,
  globCoversSchema,
  objectNames,
  summarize,
  type CompiledPolicy,
  type GuardAction,
  type SessionView,
} from "./sql-policy.js";
import type { Relatives, ViewResolver } from "./view-resolver.js";
import type { MysqlClassifier } from "./mysql/classify.js";
import { MysqlSessionLineage, type MysqlObjectSource } from "./mysql/lineage.js";
import { whenHolds, type WhenFacts } from "./cel.js";

/** MySQL settings that undo a read-only session (the engine sets SESSION TRANSACTION READ ONLY). */
const MYSQL_READ_ONLY_SETTINGS = ["transaction_read_only", "tx_read_only"];

/** Inheritance links a session remembers; beyond this many, new ones are not (the catalog sees them once committed). */
const MAX_SESSION_LINKS = 1_000;

/**
 * Verdict cache (issue 13: decide once per statement shape). A statement that changes no state
 * this judgement reads (see `stateless`) is decided once per text, session state version and
 * catalog generation; the same text is then answered from the cache, synchronously, without
 * classifying or matching again. An entry is used for at most VERDICT_TTL_MS: the catalog
 * answers it was built from are themselves cached (catalog.ts, 60 s TTL; DDL through the
 * gateway invalidates them at once and bumps the generation), and an entry must not keep a
 * catalog answer alive beyond that by never asking again.
 */
const VERDICT_CACHE_ENTRIES = 256;
const VERDICT_TTL_MS = 1_000;

/** Operations whose judgement changes what later statements of the session are judged against. */
const STATEFUL_OPERATIONS: ReadonlySet<string> = new Set(["set_role", "create_view", "create_materialized_view", "rename"]);

function isSetConfig(fn: string): boolean {
  return fn === "set_config" || fn === "pg_catalog.set_config";
}

/**
 * Whether judging this statement leaves the session's judgement state (search_path schemas,
 * prepared statements, session views, links, aliases, shadowed catalog names) as it was, and
 * depends only on it, the policies and the catalog: then its verdict may be cached.
 */
function stateless(f: StatementFacts): boolean {
  return (
    f.setsSearchPath === undefined &&
    f.prepares === undefined &&
    f.executes === undefined &&
    f.inherits === undefined &&
    f.unknownEffects === undefined &&
    !f.functions.some(isSetConfig) &&
    !f.operations.some((op) => STATEFUL_OPERATIONS.has(op)) &&
    !f.relationsWritten.some((r) => isCatalogName(r.name))
  );
}

interface CachedVerdict {
  readonly stage: DbQueryEvent["stage"];
  readonly verdict: Verdict;
  readonly version: number;
  readonly generation: number;
  readonly at: number;
}

export interface SessionPoliciesOptions {
  /** Cache verdicts of stateless statements (default true; tests compare against false). */
  readonly verdictCache?: boolean;
  /** The facts of a CEL `when:` that are not the statement's (time, budget counters); default: now, none. */
  readonly whenContext?: (session: SessionInfo) => { readonly now: Date; readonly budgets: WhenFacts["budgets"] };
  /** MySQL targets' views and stored functions (column rules see through them: src/policy/mysql/lineage.ts). */
  readonly mysqlObjects?: MysqlObjectSource;
}

/** A single SQL PREPARE or EXECUTE: its statement name (lower case, as the target folds it). */
function preparedName(statements: readonly StatementFacts[]): { prepares?: string; executes?: string } {
  if (statements.length !== 1) return {};
  const f = statements[0];
  if (f?.prepares !== undefined) return { prepares: f.prepares.toLowerCase() };
  if (f?.executes !== undefined) return { executes: f.executes.toLowerCase() };
  return {};
}

/** Per-session judgement: keeps prepared statements and the search_path it has seen. */
export class SessionPolicies implements SessionEvaluator {
  readonly kinds = SQL_KINDS;
  readonly settings: Readonly<Record<string, string>>;
  /** The smallest statementTimeout of the session's policies, timed by the engine. */
  readonly statementTimeout?: { readonly ms: number; readonly rule: string };
  readonly #policies: readonly CompiledPolicy[];
  readonly #guards: readonly CompiledPolicy[];
  readonly #masks: readonly { policy: CompiledPolicy; rule: MaskRule }[];
  readonly #rowLimits: readonly CompiledPolicy[];
  readonly #cache: ClassificationCache;
  /** Prepared statements (SQL PREPARE and protocol Parse share one namespace) → their facts. */
  readonly #prepared = new Map<string, readonly StatementFacts[]>();
  /**
   * Every schema an unqualified name may resolve to in this session: the default path plus
   * every search_path ever set (an over-approximation: a relation guarded as public.users is
   * also guarded when it is reached unqualified through any of these).
   */
  readonly #schemas = new Set<string>(["public", "pg_catalog", "pg_temp"]);
  #searchPathUnknown = false;
  /**
   * A bare catalog name (`pg_depend`) resolves to pg_catalog: no search_path seen here names
   * pg_catalog after another schema, and none was set invisibly (set_config), except pg_dump's
   * empty path. Names of relations this session created or wrote that look like catalog names
   * (a temporary `pg_class` comes first) are in #shadowNames.
   */
  #catalogPathSafe = true;
  readonly #shadowNames = new Set<string>();
  /** Schema parts named in policy globs: with an unknown search_path, a bare name may be any of them. */
  readonly #policySchemas: readonly string[];
  readonly #readOnly: boolean;
  readonly #timeout: boolean;

  readonly #viewResolver: ViewResolver | undefined;
  readonly #columnGuards: boolean;
  /** Policies matched by relation or column (guards and mask policies): see #throughInheritance. */
  readonly #inheritGuards: boolean;
  /** Column or function guards: `t.x` may be the call x(t), checked against the catalog. */
  readonly #attributeGuards: boolean;
  /** The role/database search_path default, while it is being looked up (first statement). */
  #pathPending: Promise<void> | undefined;
  /**
   * Views this session created, by bare name (CREATE VIEW, then INSERT INTO it, in one message
   * or one transaction: the catalog doesn't see the view yet). An over-approximation: kept for
   * the session's life.
   */
  readonly #sessionViews = new Map<string, SessionView>();
  /** Inheritance links this session made (ALTER TABLE … INHERIT, ATTACH PARTITION, CREATE TABLE
   * … INHERITS / PARTITION OF): kept for the session's life (an over-approximation). */
  readonly #links: { readonly parent: QualifiedName; readonly child: QualifiedName }[] = [];
  /** Relation names this session renamed into one another (ALTER … RENAME TO), by bare name. */
  readonly #aliases = new Map<string, Set<string>>();
  /** Whether any deny or approval policy applies: only then does fail-closed refuse. */
  readonly #denyGuards: boolean;
  readonly #connection: string;
  readonly #session: SessionInfo;
  readonly #whenContext: SessionPoliciesOptions["whenContext"];
  /**
   * Verdicts of stateless statements (see VERDICT_CACHE_ENTRIES); undefined: off. By shape (the
   * classification cache's object for the normalized text) unless a policy matches the raw text
   * (statementRegex); by exact text otherwise, and for statements whose shape is not cached.
   * Off for MySQL sessions (their classifications do not come from the shared cache).
   */
  readonly #verdicts: { readonly byText: Map<string, CachedVerdict>; readonly byShape: WeakMap<Classification, CachedVerdict> | undefined } | undefined;
  /** Bumped whenever state that judgement reads changes: cached verdicts of older versions are stale. */
  #version = 0;
  /**
   * Set for sessions whose target is MySQL/MariaDB: statements are classified by its grammar
   * (src/policy/mysql). PostgreSQL's session tracking stays off for them where it could open a
   * hole: no catalog look-ups (the view resolver reads PostgreSQL's catalog), no "catalog only"
   * exemption from row limits, and unqualified names match a policy's relation glob under any
   * database (the current one is not known to the evaluator; USE only adds to it).
   */
  readonly #mysql: MysqlClassifier | undefined;
  /** The MySQL session changed sql_mode: every reading of later texts must parse. */
  #sqlModeChanged = false;
  /** MySQL: views, stored functions and HANDLER names seen through (src/policy/mysql/lineage.ts). */
  readonly #mysqlLineage: MysqlSessionLineage | undefined;

  constructor(
    policies: readonly CompiledPolicy[],
    cache: ClassificationCache,
    session: SessionInfo,
    upstreamUser: string | undefined,
    viewResolver?: ViewResolver,
    options: SessionPoliciesOptions = {},
    mysql?: MysqlClassifier,
    mysqlDatabase?: string,
  ) {
    this.#session = session;
    this.#whenContext = options.whenContext;
    // A `when:` reads time and budget counters: a verdict is never reused for it.
    this.#verdicts =
      options.verdictCache === false || mysql !== undefined || policies.some((p) => p.config.when !== undefined)
        ? undefined
        : { byText: new Map(), byShape: policies.some((p) => p.match?.statementRegex !== undefined) ? undefined : new WeakMap() };
    this.#policies = policies;
    this.#mysql = mysql;
    // The target's views and functions matter only to rules on columns or relations.
    const throughObjects = policies.some((p) => (p.config.action === "mask" && (p.config.columns?.length ?? 0) > 0) || p.match?.columns !== undefined || p.match?.relations !== undefined);
    this.#mysqlLineage = mysql === undefined ? undefined : new MysqlSessionLineage(session.connection, mysqlDatabase, (sql) => mysql.classify(sql), throughObjects ? options.mysqlObjects : undefined);
    if (mysql !== undefined) {
      viewResolver = undefined;
      this.#searchPathUnknown = true;
      this.#catalogPathSafe = false;
    }
    this.#viewResolver = viewResolver;
    this.#connection = session.connection;
    // Column and relation guards both see through views (see evaluate()).
    this.#columnGuards = policies.some((p) => p.config.action !== "mask" && (p.match?.columns !== undefined || p.match?.relations !== undefined));
    // A mask policy matched by relation or column applies to a read through a parent too.
    this.#inheritGuards = policies.some((p) => p.match?.columns !== undefined || p.match?.relations !== undefined);
    this.#denyGuards = policies.some((p) => p.config.action === "deny" || p.config.action === "require_approval" || p.config.action === "require_grant");
    this.#attributeGuards = policies.some((p) => p.config.action !== "mask" && (p.match?.columns !== undefined || p.match?.functions !== undefined));
    this.#cache = cache;
    this.#guards = policies.filter((p) => p.config.action !== "mask");
    this.#masks = policies
      .filter((p) => p.config.action === "mask")
      .map((p) => ({
        policy: p,
        rule: {
          rule: p.name,
          columns: p.config.columns ?? [],
          detectors: p.config.detectors ?? [],
          strategy: p.config.strategy ?? "redact",
          ...(p.config.phoneRegions === undefined ? {} : { phoneRegions: p.config.phoneRegions }),
        },
      }));
    this.#rowLimits = policies.filter((p) => p.config.maxRows !== undefined);
    const schemaParts = new Set<string>();
    for (const p of policies) {
      for (const g of p.config.match?.relations ?? []) if (g.includes(".")) schemaParts.add(g.slice(0, g.lastIndexOf(".")));
      for (const g of p.config.match?.columns ?? []) {
        const rel = g.includes(".") ? g.slice(0, g.lastIndexOf(".")) : "";
        if (rel.includes(".")) schemaParts.add(rel.slice(0, rel.lastIndexOf(".")));
      }
    }
    this.#policySchemas = [...schemaParts];
    if (upstreamUser !== undefined) this.#schemas.add(upstreamUser.toLowerCase());
    const initialPath = session.attributes["search_path"];
    if (initialPath !== undefined) {
      const schemas = initialPath.split(",").map((x) => x.trim().replace(/^"|"$/g, ""));
      this.#addSearchPath(schemas);
      if (schemas.indexOf("pg_catalog") > 0) this.#catalogPathSafe = false;
    }
    // The role/database default (ALTER ROLE … SET search_path) the target session starts with
    // (and a pooled one returns to on DISCARD ALL): needed wherever names are matched.
    const nameGuards = policies.some((p) => p.config.action !== "mask" && (p.match?.relations !== undefined || p.match?.columns !== undefined || p.match?.functions !== undefined));
    if (nameGuards && viewResolver?.searchPath !== undefined) {
      try {
        const path = viewResolver.searchPath(session.connection);
        if (path instanceof Promise) {
          this.#pathPending = path
            .then(
              (schemas) => this.#addSchemas(schemas),
              // Unknown: every schema a policy names may be where a bare name resolves.
              () => {
                this.#searchPathUnknown = true;
                this.#version++;
              },
            )
            .finally(() => {
              this.#pathPending = undefined;
            });
        } else this.#addSchemas(path);
      } catch {
        this.#searchPathUnknown = true;
      }
    }
    const settings: Record<string, string> = {};
    const timeouts = policies.map((p) => p.config.statementTimeout).filter((t): t is number => t !== undefined);
    if (timeouts.length > 0) {
      // Timed by the engine itself (statement-timer.ts), not injected as the target's
      // statement_timeout: the target times an extended-protocol statement from its Parse, so a
      // Bind held for approval longer than the limit would fail there once approved.
      const ms = Math.min(...timeouts);
      this.statementTimeout = { ms, rule: policies.find((p) => p.config.statementTimeout === ms)?.name ?? "statementTimeout" };
    }
    this.#timeout = timeouts.length > 0;
    this.#readOnly = policies.some((p) => p.config.readOnly === true);
    if (this.#readOnly) settings["default_transaction_read_only"] = "on";
    this.settings = settings;
  }

  /** Schema names as the catalog reports them (exact; lower-cased too, which only widens). */
  #addSchemas(schemas: readonly string[]): void {
    this.#version++;
    for (const s of schemas) {
      if (s === "$user" || s === "") continue;
      this.#schemas.add(s);
      this.#schemas.add(s.toLowerCase());
    }
  }

  #addSearchPath(entries: readonly string[]): void {
    this.#version++;
    for (const e of entries) {
      const s = e.trim().replace(/^"(.*)"$/, "$1").toLowerCase();
      if (s === "$user" || s === "") continue;
      this.#schemas.add(s);
    }
  }

  evaluate(event: JudgedEvent): Answer {
    return event.type === "db.query" ? this.#statement(event) : undefined;
  }

  #statement(event: DbQueryEvent): Answer {
    const pathPending = this.#pathPending;
    if (pathPending !== undefined) return pathPending.then(() => this.#statement(event));
    const mysql = this.#mysql;
    if (mysql !== undefined) {
      // MySQL's grammar, in parser threads too (bounded; never stalls other sessions).
      const classified = mysql.classify(event.sql, { strictModes: this.#sqlModeChanged });
      const through = (c: Classification): Answer => {
        const seen = this.#mysqlLineage?.apply(c) ?? c;
        return seen instanceof Promise ? seen.then((x) => this.#classifiedAndChanged(event, x)) : this.#classifiedAndChanged(event, seen);
      };
      if (classified instanceof Promise) return classified.then(through);
      return through(classified);
    }
    const verdicts = this.#verdicts;
    if (verdicts === undefined) {
      // A statement not cached is parsed by a parser thread (bounded; never stalls other sessions).
      const classified = this.#cache.classifyBounded(event.sql);
      if (classified instanceof Promise) return classified.then((c) => this.#classifiedAndChanged(event, c));
      return this.#classifiedAndChanged(event, classified);
    }
    const generation = this.#viewResolver?.generation?.(this.#connection) ?? 0;
    const now = Date.now();
    const fresh = (hit: CachedVerdict | undefined): hit is CachedVerdict =>
      hit !== undefined && hit.stage === event.stage && hit.version === this.#version && hit.generation === generation && now - hit.at <= VERDICT_TTL_MS;
    const byText = verdicts.byText.get(event.sql);
    if (fresh(byText)) return byText.verdict;
    const classified = this.#cache.classifyBounded(event.sql);
    if (classified instanceof Promise) return classified.then((c) => this.#classifiedAndChanged(event, c));
    // The same shape (the classification cache's object: same text up to literal values): the
    // verdict depends on the text itself only through statementRegex and settings statements.
    const byShape = verdicts.byShape?.get(classified);
    if (fresh(byShape)) return byShape.verdict;
    const version = this.#version;
    const verdict = this.#classifiedAndChanged(event, classified);
    if (
      !(verdict instanceof Promise) &&
      verdict !== undefined &&
      verdict.type !== "hold" &&
      verdict.type !== "defer" &&
      version === this.#version &&
      !(event.stage === "prepare" && event.statementName !== undefined && event.statementName !== "") &&
      (!classified.ok || classified.statements.every(stateless))
    ) {
      const entry: CachedVerdict = { stage: event.stage, verdict, version, generation, at: now };
      if (verdicts.byShape !== undefined && classified.ok && !classified.statements.some((f) => f.operations.some((op) => SETTINGS_OPERATIONS.has(op)))) {
        verdicts.byShape.set(classified, entry);
      } else {
        if (verdicts.byText.size >= VERDICT_CACHE_ENTRIES) verdicts.byText.clear();
        verdicts.byText.set(event.sql, entry);
      }
    }
    return verdict;
  }

  /** #classified, counting a statement that may change the session's judgement state as a change. */
  #classifiedAndChanged(event: DbQueryEvent, classification: Classification): Answer {
    if (classification.ok && !classification.statements.every(stateless)) this.#version++;
    const answer = this.#classified(event, classification);
    // Its effects may land later too (an approved hold defines what it prepares).
    if (answer instanceof Promise) return answer.finally(() => this.#version++);
    return answer;
  }

  #classified(event: DbQueryEvent, classification: Classification): Answer {
    const pathPending = this.#pathPending;
    if (pathPending !== undefined) return pathPending.then(() => this.#classified(event, classification));
    const guarded = this.#denyGuards || this.#readOnly || this.#timeout;
    if (!classification.ok) {
      if (!guarded) return this.#allow([]);
      return deny("GW_POLICY_DENIED", `the statement could not be parsed, so it is refused (fail closed): ${classification.error}`, "fail-closed");
    }
    // Resolve EXECUTE to what it runs; remember PREPARE and Parse for later. Effects of earlier
    // statements of the same message apply to the later ones (`SET search_path = evil; DROP
    // TABLE secrets`): they only widen what names may resolve to, so they are applied at once,
    // even if the message is then refused.
    const effective: StatementFacts[] = [];
    const preparedHere = new Map<string, StatementFacts>();
    for (const f of classification.statements) {
      if (f.setsSearchPath !== undefined && f.setsSearchPath !== "default") {
        this.#addSearchPath(f.setsSearchPath);
        if (f.setsSearchPath.indexOf("pg_catalog") > 0) this.#catalogPathSafe = false;
      }
      if (f.functions.includes("set_config") || f.functions.includes("pg_catalog.set_config")) {
        // Only a set_config that may set search_path (named so, or a name it cannot tell) matters.
        const names = f.settings ?? [];
        if (names.length === 0 || names.includes("search_path")) {
          this.#catalogPathSafe = classification.statements.length === 1 && setsEmptySearchPath(event.sql);
        }
      }
      for (const r of f.relationsWritten) if (isCatalogName(r.name)) this.#shadowNames.add(r.name);
      // SET ROLE / SESSION AUTHORIZATION change what "$user" in the search_path means.
      if (f.operations.includes("set_role")) this.#searchPathUnknown = true;
      // MySQL: USE db widens what unqualified names may resolve to; a changed sql_mode may
      // change how later texts read (ANSI_QUOTES, NO_BACKSLASH_ESCAPES).
      if (f.switchesDatabase !== undefined) this.#schemas.add(f.switchesDatabase);
      if (this.#mysql !== undefined && f.settings?.includes("sql_mode") === true) this.#sqlModeChanged = true;
      if (f.executes !== undefined) {
        const name = f.executes.toLowerCase();
        const here = preparedHere.get(name);
        const target = here === undefined ? this.#prepared.get(name) : [here];
        if (target === undefined) {
          if (guarded) return deny("GW_POLICY_DENIED", `EXECUTE of an unknown prepared statement "${f.executes}" is refused (fail closed)`, "fail-closed");
        } else effective.push(...target);
      }
      if (f.prepares !== undefined) preparedHere.set(f.prepares.toLowerCase(), f);
      effective.push(f);
    }
    if (guarded) {
      for (const f of effective) {
        if (f.unknownEffects !== undefined) {
          return deny("GW_POLICY_DENIED", `${f.unknownEffects}: its effects cannot be checked, so it is refused (fail closed)`, "fail-closed");
        }
      }
      if (this.#searchPathUnknown || effective.some((f) => f.functions.includes("set_config") || f.functions.includes("pg_catalog.set_config"))) {
        // set_config() can change search_path (or a limit) invisibly.
        this.#searchPathUnknown = true;
      }
      const limit = this.#checkLimits(event.sql, effective);
      if (limit !== undefined) return limit;
    }
    this.#learnDefinitions(effective);
    // `t.x` may be the call x(t) (attribute notation): only the catalog can tell.
    let withAttributes: readonly StatementFacts[] | Promise<readonly StatementFacts[]>;
    try {
      withAttributes = this.#attributeCalls(effective);
    } catch {
      return ATTRIBUTE_LOOKUP_FAILED;
    }
    const next = (facts: readonly StatementFacts[]): Answer => {
      let withRelatives: readonly StatementFacts[] | Promise<readonly StatementFacts[]>;
      try {
        withRelatives = this.#throughInheritance(facts);
      } catch {
        return VIEW_LOOKUP_FAILED;
      }
      if (withRelatives instanceof Promise) {
        return withRelatives.then(
          (f) => this.#throughViews(event, classification.statements, f),
          () => VIEW_LOOKUP_FAILED,
        );
      }
      return this.#throughViews(event, classification.statements, withRelatives);
    };
    if (withAttributes instanceof Promise) {
      return withAttributes.then(next, () => ATTRIBUTE_LOOKUP_FAILED);
    }
    return next(withAttributes);
  }

  /**
   * Column and relation guards follow inheritance and partitioning: a column of a relation is
   * also the same column of every relation sharing it (a read of the parent returns its
   * children's rows; a rule on the parent's column covers the child's inherited one), and the
   * rows of a relation read or written include its descendants'. From the catalog, and from
   * the links this session made itself (not visible to the catalog before they commit).
   */
  #throughInheritance(effective: readonly StatementFacts[]): readonly StatementFacts[] | Promise<readonly StatementFacts[]> {
    const resolver = this.#viewResolver;
    if (!this.#inheritGuards || (resolver?.relatives === undefined && this.#links.length === 0)) return effective;
    const names = new Set<string>();
    for (const f of effective) {
      for (const c of f.columns) if (c.relation !== undefined && c.relation.name !== "*") names.add(c.relation.name);
      for (const r of [...f.relationsRead, ...f.relationsWritten]) if (r.name !== "*") names.add(r.name);
    }
    if (names.size === 0) return effective;
    const apply = (catalog: Relatives): readonly StatementFacts[] => effective.map((f) => this.#withRelatives(f, catalog));
    if (resolver?.relatives === undefined) return apply(new Map());
    const answer = resolver.relatives(this.#connection, [...names]);
    return answer instanceof Promise ? answer.then(apply) : apply(answer);
  }

  #withRelatives(f: StatementFacts, catalog: Relatives): StatementFacts {
    const memo = new Map<string, readonly { relation: QualifiedName; descendant: boolean }[]>();
    const relativesOf = (r: QualifiedName): readonly { relation: QualifiedName; descendant: boolean }[] => {
      const key = `${r.schema ?? ""}\u0000${r.name}`;
      let out = memo.get(key);
      if (out === undefined) {
        const found: { relation: QualifiedName; descendant: boolean }[] = [];
        for (const [schema, list] of catalog.get(r.name) ?? []) {
          if (!this.#mayResolveTo(r, schema)) continue;
          for (const x of list) found.push({ relation: { schema: x.schema, name: x.name }, descendant: x.descendant });
        }
        found.push(...this.#sessionRelatives(r.name));
        out = found;
        memo.set(key, out);
      }
      return out;
    };
    const columns: ColumnAccess[] = [];
    for (const c of f.columns) {
      if (c.relation === undefined || c.relation.name === "*") continue;
      for (const x of relativesOf(c.relation)) columns.push({ relation: x.relation, column: c.column, access: c.access });
    }
    const descendants = (rels: readonly QualifiedName[]): QualifiedName[] =>
      rels.flatMap((r) => (r.name === "*" ? [] : relativesOf(r).filter((x) => x.descendant).map((x) => x.relation)));
    const read = descendants(f.relationsRead);
    const written = descendants(f.relationsWritten);
    if (columns.length === 0 && read.length === 0 && written.length === 0) return f;
    return { ...f, columns: [...f.columns, ...columns], relationsRead: [...f.relationsRead, ...read], relationsWritten: [...f.relationsWritten, ...written] };
  }

  /** Relatives of `name` through the inheritance links this session made (by bare name). */
  #sessionRelatives(name: string): { relation: QualifiedName; descendant: boolean }[] {
    if (this.#links.length === 0) return [];
    // Descendants (transitively), then the ancestors of it and of each descendant.
    const down = new Set<string>([name]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const l of this.#links) {
        if (down.has(l.parent.name) && !down.has(l.child.name)) {
          down.add(l.child.name);
          grew = true;
        }
      }
    }
    const up = new Set<string>(down);
    for (let grew = true; grew; ) {
      grew = false;
      for (const l of this.#links) {
        if (up.has(l.child.name) && !up.has(l.parent.name)) {
          up.add(l.parent.name);
          grew = true;
        }
      }
    }
    const out: { relation: QualifiedName; descendant: boolean }[] = [];
    for (const n of up) if (n !== name) out.push({ relation: { name: n }, descendant: down.has(n) });
    return out;
  }

  /**
   * Column and relation guards see through views: each statement gets the base columns and
   * relations of the views it reads, and of the views it writes (an updatable view writes its
   * base table), from the catalog and from the views this session defined itself.
   */
  #throughViews(event: DbQueryEvent, statements: readonly StatementFacts[], effective: readonly StatementFacts[]): EvaluatorVerdict | Promise<EvaluatorVerdict> {
    const sessionViews = this.#sessionViews.size > 0 ? effective.map((f) => [this.#sessionViewsOf(f.relationsRead), this.#sessionViewsOf(f.relationsWritten)] as const) : undefined;
    const resolver = this.#viewResolver;
    if (this.#columnGuards && (resolver !== undefined || sessionViews !== undefined)) {
      // [2i]: the views statement i reads; [2i + 1]: the views it writes.
      const perStatement: (readonly ColumnAccess[] | Promise<readonly ColumnAccess[]>)[] = [];
      try {
        for (const f of effective) {
          for (const rels of [f.relationsRead, f.relationsWritten]) {
            const candidates = resolver === undefined ? [] : this.#viewCandidates(rels);
            perStatement.push(candidates.length === 0 || resolver === undefined ? [] : resolver.resolve(this.#connection, candidates));
          }
        }
      } catch {
        return VIEW_LOOKUP_FAILED;
      }
      const relationsOf = (cs: readonly ColumnAccess[]): QualifiedName[] => cs.flatMap((c) => (c.relation === undefined ? [] : [c.relation]));
      const withViews = (cols: readonly (readonly ColumnAccess[])[]): StatementFacts[] =>
        effective.map((f, i) => {
          const local = sessionViews?.[i];
          const read = [...(cols[2 * i] ?? []), ...(local?.[0].columns ?? [])];
          const written = [...(cols[2 * i + 1] ?? []), ...(local?.[1].columns ?? [])].map((c): ColumnAccess => ({ ...c, access: "write" }));
          const readRels = local?.[0].relations ?? [];
          const writtenRels = local?.[1].relations ?? [];
          if (read.length === 0 && written.length === 0 && readRels.length === 0 && writtenRels.length === 0) return f;
          return {
            ...f,
            columns: [...f.columns, ...read, ...written],
            relationsRead: [...f.relationsRead, ...relationsOf(read), ...readRels],
            relationsWritten: [...f.relationsWritten, ...relationsOf(written), ...writtenRels],
          };
        });
      if (perStatement.some((r) => r instanceof Promise)) {
        return Promise.all(perStatement.map(async (r) => r)).then(
          (cols) => this.#decide(event, statements, withViews(cols)),
          () => VIEW_LOOKUP_FAILED,
        );
      }
      return this.#decide(event, statements, withViews(perStatement as readonly (readonly ColumnAccess[])[]));
    }
    return this.#decide(event, statements, effective);
  }

  /**
   * Remembers what later statements of this session need before the catalog shows it: views
   * it creates (their base columns and relations) and names it renames into one another.
   * Applied at once, even if the message is then refused: it only widens what is guarded.
   */
  #learnDefinitions(effective: readonly StatementFacts[]): void {
    for (const f of effective) {
      if (f.inherits !== undefined && this.#links.length < MAX_SESSION_LINKS) this.#links.push(...f.inherits);
      const ops = f.operations;
      if (ops.includes("create_view") || ops.includes("create_materialized_view")) {
        const written = new Set(f.relationsWritten.map((r) => r.name));
        const view: SessionView = {
          columns: f.columns.filter((c) => c.access === "read" && (c.relation === undefined || !written.has(c.relation.name))),
          relations: f.relationsRead.filter((r) => !written.has(r.name)),
        };
        for (const name of written) {
          const prior = this.#sessionViews.get(name);
          this.#sessionViews.set(name, prior === undefined ? view : { columns: [...prior.columns, ...view.columns], relations: [...prior.relations, ...view.relations] });
        }
      }
      if (ops.includes("rename") && f.relationsWritten.length > 1) {
        const names = f.relationsWritten.map((r) => r.name).filter((n) => n !== "*");
        const group = new Set<string>(names.flatMap((n) => [n, ...(this.#aliases.get(n) ?? [])]));
        for (const n of group) this.#aliases.set(n, group);
      }
    }
  }

  /** What the views this session created, among these relations (or their aliases), read. */
  #sessionViewsOf(relations: readonly QualifiedName[]): SessionView {
    const columns: ColumnAccess[] = [];
    const rels: QualifiedName[] = [];
    for (const r of relations) {
      for (const name of this.#aliases.get(r.name) ?? [r.name]) {
        const v = this.#sessionViews.get(name);
        if (v === undefined) continue;
        columns.push(...v.columns);
        rels.push(...v.relations);
      }
    }
    return { columns, relations: rels };
  }

  /**
   * Attribute notation: `t.x` is the call x(t), handing the whole row of t to function x,
   * when no relation t may resolve to has a column x. Such references become a whole-row read
   * of t and a call of x. A relation the catalog doesn't show (created in this transaction) is
   * assumed to be such a call. Only when a column or function guard applies; cached lookups.
   */
  #attributeCalls(effective: readonly StatementFacts[]): readonly StatementFacts[] | Promise<readonly StatementFacts[]> {
    const resolver = this.#viewResolver;
    if (!this.#attributeGuards || resolver?.columns === undefined) return effective;
    let names: Set<string> | undefined;
    for (const f of effective) {
      if (f.attributeRefs === undefined) continue;
      names ??= new Set();
      for (const r of f.attributeRefs) {
        for (const n of this.#aliases.get(r.relation.name) ?? [r.relation.name]) names.add(n);
      }
    }
    if (names === undefined) return effective;
    const answer = resolver.columns(this.#connection, [...names]);
    const apply = (catalog: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>): readonly StatementFacts[] =>
      effective.map((f) => this.#withAttributeCalls(f, catalog));
    return answer instanceof Promise ? answer.then(apply) : apply(answer);
  }

  #withAttributeCalls(f: StatementFacts, catalog: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>): StatementFacts {
    const refs = f.attributeRefs;
    if (refs === undefined) return f;
    const columns: ColumnAccess[] = [];
    const functions: string[] = [];
    for (const ref of refs) {
      let seen = false;
      let call = false;
      for (const name of this.#aliases.get(ref.relation.name) ?? [ref.relation.name]) {
        for (const [schema, cols] of catalog.get(name) ?? []) {
          if (!this.#mayResolveTo(ref.relation, schema)) continue;
          seen = true;
          if (!cols.has(ref.name)) call = true;
        }
      }
      if (call || !seen) {
        columns.push({ relation: ref.relation, column: "*", access: "read" });
        functions.push(ref.name);
      }
    }
    if (columns.length === 0) return f;
    return { ...f, columns: [...f.columns, ...columns], functions: [...f.functions, ...functions] };
  }

  /** Whether relation r, as written, may be the one in `schema`. */
  #mayResolveTo(r: QualifiedName, schema: string): boolean {
    if (r.schema !== undefined) return r.schema === schema || (r.schema === "pg_temp" && schema.startsWith("pg_temp"));
    if (this.#searchPathUnknown || this.#schemas.has(schema)) return true;
    // Temporary relations live in the session's pg_temp_N, searched first.
    return schema.startsWith("pg_temp_");
  }

  /** Relations that may be views, with every schema an unqualified name may resolve to (and
   * every name this session renamed them from or to). */
  #viewCandidates(relations: readonly QualifiedName[]): { schema: string; name: string }[] {
    const out = new Map<string, { schema: string; name: string }>();
    for (const r of relations) {
      if (r.name === "*") continue;
      const schemas = r.schema !== undefined ? [r.schema] : [...this.#schemas];
      for (const name of this.#aliases.get(r.name) ?? [r.name]) {
        // A renamed name may have been qualified differently: try every schema for the others.
        for (const s of name === r.name ? schemas : [...this.#schemas, ...schemas]) out.set(`${s}.${name}`, { schema: s, name });
      }
    }
    return [...out.values()];
  }

  /**
   * The first guard that matches decides. `execution`: deciding one execution of a statement
   * prepared earlier (a cost deferral), whose definitions were recorded at its prepare.
   */
  #decide(event: DbQueryEvent, statements: readonly StatementFacts[], effective: readonly StatementFacts[], estimate?: CostEstimate, execution = false): EvaluatorVerdict | Promise<EvaluatorVerdict> {
    for (const p of this.#guards) {
      if (!effective.some((f) => this.#matches(p, f, event.sql))) continue;
      let costNote = "";
      if (hasCostMatch(p)) {
        // A cost rule judges the planner's estimate: asked of the target only now, when every
        // other key of the rule holds (engines give `estimate`; none: fail closed). A statement
        // prepared with parameters is estimated at each execution, with its values.
        if (!effective.some((f) => f.operations.some((op) => EXPLAINABLE_OPERATIONS.has(op)))) continue;
        if (estimate === undefined) {
          return event.stage === "prepare" && event.parameterized === true ? this.#deferCost(event, statements, effective, p) : this.#withEstimate(event, statements, effective, p);
        }
        if (costMissing(p, estimate)) {
          return deny("GW_POLICY_DENIED", `rule ${p.name} judges the planner's cost of the statement, which the target's plan does not give (MariaDB 10.x estimates rows only: use estimatedRows), so it is refused (fail closed)`, p.name);
        }
        if (!costMatches(p, estimate)) continue;
        costNote = ` (estimated ${estimate.cost === undefined ? "" : `cost ${formatEstimate(estimate.cost)}, `}rows ${formatEstimate(estimate.rows)})`;
      }
      const action = p.config.action as GuardAction;
      if (action === "allow") break;
      const message = (p.config.message ?? defaultMessage(action, p)) + costNote;
      if (action === "require_approval" || action === "require_grant") {
        // The pipeline turns the hold into allow or deny (src/approvals). What the statement
        // defines for later ones (prepared statements) is recorded only once it is allowed.
        const lineage = this.#unitLineage(statements);
        const hold: HoldDecision = {
          type: "hold",
          need: action === "require_approval" ? "approval" : "grant",
          rule: p.name,
          message,
          approvers: p.config.approvers ?? [],
          minApprovals: p.config.minApprovals ?? 1,
          timeoutMs: p.config.timeout ?? DEFAULT_APPROVAL_TIMEOUT_MS,
          mode: p.config.mode ?? "wait",
          allow: this.#allow(effective, event.sql, lineage),
          summary: summarize(effective),
          objects: objectNames(effective),
          ...preparedName(statements),
          ...(action === "require_approval" && (p.config.preview === true || p.config.maxAffectedRows !== undefined) ? { preview: previewSettings(p, statements, effective) } : {}),
          onAllowed: () => {
            this.#defined(event, statements, effective);
          },
        };
        return hold;
      }
      return deny("GW_POLICY_DENIED", message, p.name);
    }
    const lineage = this.#unitLineage(statements);
    if (!execution) this.#defined(event, statements, effective);
    return this.#allow(effective, event.sql, lineage);
  }

  /** Why rule `p` refuses a statement whose estimate it cannot have (fail closed). */
  #costRefusal(p: CompiledPolicy, why: string): Decision {
    return deny("GW_POLICY_DENIED", `rule ${p.name} judges the planner's estimate of the statement, which ${why}, so it is refused (fail closed)`, p.name);
  }

  /**
   * A cost rule applies to a statement prepared with parameters: the planner can estimate it
   * only with values, so each execution is decided with its own estimate (the pipeline calls
   * `decide` at every Bind). The prepare runs nothing and goes to the target: what it defines
   * is recorded now. The rest of the judgement (guards, masks, limits) is the same at each
   * execution; guards after `p` see that execution's estimate too.
   */
  #deferCost(event: DbQueryEvent, statements: readonly StatementFacts[], effective: readonly StatementFacts[], p: CompiledPolicy): EvaluatorVerdict {
    if (statements.length > 1) return this.#costRefusal(p, "is asked one statement at a time (send the statements separately)");
    this.#defined(event, statements, effective);
    const mayHold = this.#guards.some((g) => g.config.action === "require_approval");
    const decide = (estimate: (() => Promise<CostEstimate>) | undefined): Verdict | Promise<Verdict> => {
      if (estimate === undefined) return this.#costRefusal(p, "this connection cannot give before it runs");
      let asked: Promise<CostEstimate>;
      try {
        asked = estimate();
      } catch (e) {
        return this.#costRefusal(p, `could not be had (${e instanceof GatewayError ? e.message : "EXPLAIN failed"})`);
      }
      return asked.then(
        async (e) => {
          const v = await this.#decide(event, statements, effective, e, true);
          return v.type === "defer" ? this.#costRefusal(p, "could not be judged with its values") : v;
        },
        (e: unknown) => this.#costRefusal(p, `could not be had (${e instanceof GatewayError ? e.message : "EXPLAIN failed"})`),
      );
    };
    const deferral: CostDeferral = {
      type: "defer",
      rule: p.name,
      message: p.config.message ?? defaultMessage(p.config.action as GuardAction, p),
      ...(mayHold ? { objects: objectNames(effective) } : {}),
      decide,
    };
    return deferral;
  }

  /** Ask the target's planner, then decide again with its estimate; a failure refuses under rule `p` (fail closed). */
  #withEstimate(event: DbQueryEvent, statements: readonly StatementFacts[], effective: readonly StatementFacts[], p: CompiledPolicy): EvaluatorVerdict | Promise<EvaluatorVerdict> {
    const ask = event.estimate;
    const refuse = (why: string): Verdict => this.#costRefusal(p, why);
    if (ask === undefined) return refuse("this connection cannot give before it runs");
    if (statements.length > 1) return refuse("is asked one statement at a time (send the statements separately)");
    return ask().then(
      (e) => this.#decide(event, statements, effective, e),
      (e: unknown) => refuse(`could not be had (${e instanceof GatewayError ? e.message : "EXPLAIN failed"})`),
    );
  }

  /**
   * Per statement of the message, where its output columns come from (for column rules on
   * computed fields); an EXECUTE's is its prepared statement's.
   */
  #unitLineage(statements: readonly StatementFacts[]): (StatementLineage | undefined)[] {
    return statements.map((f, i) => {
      if (f.executes === undefined) return f.lineage;
      const name = f.executes.toLowerCase();
      for (let j = i - 1; j >= 0; j--) {
        const p = statements[j];
        if (p?.prepares?.toLowerCase() === name) return p.lineage;
      }
      const prepared = this.#prepared.get(name);
      return prepared?.[prepared.length - 1]?.lineage;
    });
  }

  /** An allowed statement: record what it defines for later statements. */
  #defined(event: DbQueryEvent, statements: readonly StatementFacts[], effective: readonly StatementFacts[]): void {
    for (const f of statements) {
      if (f.prepares !== undefined) {
        this.#prepared.set(f.prepares.toLowerCase(), [f]);
        this.#version++;
      }
      if (f.setsSearchPath !== undefined && f.setsSearchPath !== "default") this.#addSearchPath(f.setsSearchPath);
    }
    if (event.stage === "prepare" && event.statementName !== undefined && event.statementName !== "") {
      this.#prepared.set(event.statementName.toLowerCase(), [...effective]);
      this.#version++;
    }
  }

  #checkLimits(sql: string, facts: readonly StatementFacts[]): Decision | undefined {
    // A statementTimeout is timed by the engine itself (it cancels the statement): the session
    // may change statement_timeout, RESET ALL and DISCARD ALL freely. Only read-only is guarded.
    if (!this.#readOnly) return undefined;
    if (this.#mysql !== undefined) return this.#checkMysqlLimits(facts);
    // Runs for every statement of a session with limits: plain loops, nothing allocated.
    let touches = false;
    for (const f of facts) {
      for (const op of f.operations) {
        if (WRITE_OPERATIONS.has(op) || op.startsWith("create") || op.startsWith("drop") || op.startsWith("alter")) {
          return deny("GW_POLICY_DENIED", `this session is read-only (${op} is not allowed)`, this.#limitRule("readOnly"));
        }
        if (SETTINGS_OPERATIONS.has(op)) touches = true;
      }
    }
    if (facts.some(setConfigTouchesProtected)) return deny("GW_POLICY_DENIED", "set_config() could undo this session's limits and is refused", this.#limitRule("readOnly"));
    if (!touches) return undefined;
    const s = settingsTouched(sql);
    if (s.resetAll || s.discardAll) return deny("GW_POLICY_DENIED", "RESET ALL / DISCARD ALL would undo this session's limits", this.#limitRule("readOnly"));
    const hit = s.variables.find((v) => READ_ONLY_SETTINGS.includes(v));
    if (hit !== undefined) return deny("GW_POLICY_DENIED", `${hit} is set by the gateway for this session and cannot be changed`, this.#limitRule("readOnly"));
    if (s.readWrite) {
      return deny("GW_POLICY_DENIED", "this session is read-only (READ WRITE transactions are not allowed)", this.#limitRule("readOnly"));
    }
    return undefined;
  }

  /** Read-only for MySQL sessions: from the facts alone (settingsTouched() reads PostgreSQL's SET syntax). */
  #checkMysqlLimits(facts: readonly StatementFacts[]): Decision | undefined {
    for (const f of facts) {
      for (const op of f.operations) {
        if (WRITE_OPERATIONS.has(op) || op.startsWith("create") || op.startsWith("drop") || op.startsWith("alter") || op === "replace" || op === "load_data" || op === "set_global") {
          return deny("GW_POLICY_DENIED", `this session is read-only (${op} is not allowed)`, this.#limitRule("readOnly"));
        }
        if (op === "read_write") return deny("GW_POLICY_DENIED", "this session is read-only (READ WRITE transactions are not allowed)", this.#limitRule("readOnly"));
      }
      const ownStatement = f.operations.includes("set_transaction") || f.operations.includes("start_transaction");
      const hit = ownStatement ? undefined : f.settings?.find((v) => MYSQL_READ_ONLY_SETTINGS.includes(v));
      if (hit !== undefined) return deny("GW_POLICY_DENIED", `${hit} is set by the gateway for this session and cannot be changed`, this.#limitRule("readOnly"));
    }
    return undefined;
  }

  #limitRule(kind: "readOnly" | "statementTimeout"): string {
    const p = this.#policies.find((x) => (kind === "readOnly" ? x.config.readOnly === true : x.config.statementTimeout !== undefined));
    return p?.name ?? kind;
  }

  #allow(facts: readonly StatementFacts[], sql?: string, lineage?: readonly (StatementLineage | undefined)[]): AllowDecision {
    const masks: MaskRule[] = [];
    const copyTo = facts.some((f) => f.operations.includes("copy_to"));
    for (const m of this.#masks) {
      if (m.policy.match !== undefined && (sql === undefined || !facts.some((f) => this.#matches(m.policy, f, sql)))) continue;
      // The engine resolves a COPY's columns (a catalog lookup) only when a column rule may
      // touch them: drop the rules that cannot touch the columns this COPY reads.
      if (copyTo && m.rule.columns.length > 0 && !facts.some((f) => this.#copyTouches(m.rule, f))) {
        if (m.rule.detectors.length > 0) masks.push({ ...m.rule, columns: [] });
        continue;
      }
      masks.push(m.rule);
    }
    let maxRows: number | undefined;
    let maxRowsRule: string | undefined;
    // Row limits bound how much of the data a statement takes; reading only the system catalog
    // takes none of it (pg_dump's catalog queries return thousands of rows on an empty database).
    const limits = this.#mysql === undefined && catalogOnly(facts, (name) => this.#catalogPathSafe && isCatalogName(name) && !this.#shadowNames.has(name)) ? [] : this.#rowLimits;
    for (const p of limits) {
      const limit = p.config.maxRows;
      if (limit === undefined) continue;
      if (p.match !== undefined && (sql === undefined || !facts.some((f) => this.#matches(p, f, sql)))) continue;
      if (maxRows === undefined || limit < maxRows) {
        maxRows = limit;
        maxRowsRule = p.name;
      }
    }
    if (masks.length === 0 && maxRows === undefined) return { type: "allow" };
    // Errors and notices can echo a value the statement read (`password::int`): the engine
    // redacts their value-echoing parts when a column rule covers a column it reads.
    const redactEchoes = masks.some((m) => m.columns.length > 0 && facts.some((f) => this.#readsCovered(m, f)));
    // Lineage matters only to column rules.
    const withLineage = lineage !== undefined && masks.some((m) => m.columns.length > 0);
    return {
      type: "allow",
      plan: {
        masks,
        ...(maxRows === undefined ? {} : { maxRows }),
        ...(maxRowsRule === undefined ? {} : { maxRowsRule }),
        ...(redactEchoes ? { redactEchoes } : {}),
        ...(withLineage ? { lineage } : {}),
      },
    };
  }

  /** Whether a COPY's columns (or, lacking column facts, its relations) may meet a column rule. */
  #copyTouches(rule: MaskRule, f: StatementFacts): boolean {
    return this.#readsCovered(rule, f);
  }

  /** Whether the columns a statement reads (or, lacking column facts, its relations) may meet a column rule. */
  #readsCovered(rule: MaskRule, f: StatementFacts): boolean {
    const globs = rule.columns.map((c) => new ColumnGlob(c));
    for (const c of f.columns) {
      if (c.access !== "read") continue;
      for (const g of globs) {
        const relOk = c.relation === undefined || this.#relationCandidates(c.relation).some((r) => g.relation.test(r));
        if (relOk && (c.column === "*" || g.column.test(c.column))) return true;
      }
    }
    const withColumns = new Set(f.columns.filter((c) => c.relation !== undefined).map((c) => `${c.relation?.schema ?? ""}.${c.relation?.name ?? ""}`));
    return f.relationsRead.some(
      (r) => !withColumns.has(`${r.schema ?? ""}.${r.name}`) && globs.some((g) => this.#relationCandidates(r).some((cand) => g.relation.test(cand))),
    );
  }

  /** All given match keys must hold for one statement, and the policy's `when:` if it has one. */
  #matches(p: CompiledPolicy, f: StatementFacts, sql: string): boolean {
    if (!this.#matchKeys(p, f, sql)) return false;
    const when = p.config.when;
    if (when === undefined) return true;
    const s = this.#session;
    const ctx = this.#whenContext?.(s) ?? { now: new Date(), budgets: {} };
    const relations = [...f.relationsRead, ...f.relationsWritten].map((r) => (r.schema === undefined ? r.name : `${r.schema}.${r.name}`));
    return whenHolds(
      when,
      { principal: { id: s.principal.id, name: s.principal.name, kind: s.principal.kind }, groups: s.principal.groups, connection: s.connection, operations: f.operations, relations, ...ctx },
      p.config.action !== "allow",
    );
  }

  #matchKeys(p: CompiledPolicy, f: StatementFacts, sql: string): boolean {
    const m = p.match;
    if (m === undefined) return true;
    if (m.operations !== undefined && !f.operations.some((op) => anyGlob(m.operations ?? [], op))) return false;
    if (m.relations !== undefined) {
      const globs = m.relations;
      const rels = [...f.relationsRead, ...f.relationsWritten];
      const hit = rels.some((r) =>
        r.name === "*"
          ? globs.some((g) => globCoversSchema(g.source, r.schema))
          : this.#relationCandidates(r).some((c) => anyGlob(globs, c)),
      );
      if (!hit) return false;
    }
    if (m.columns !== undefined) {
      const globs = m.columns;
      const hit = f.columns.some((c) =>
        globs.some((g) => {
          const rel = c.relation;
          const relOk =
            rel === undefined ||
            (rel.name === "*" ? globCoversSchema(g.relation.source, rel.schema) : this.#relationCandidates(rel).some((r) => g.relation.test(r)));
          return relOk && (c.column === "*" || g.column.test(c.column));
        }),
      );
      if (!hit) return false;
    }
    if (m.functions !== undefined) {
      const globs = m.functions;
      // A member of a dangerous family stands for all of them (sql/function-families.ts).
      const hit = [...f.functions, ...(f.equivalentFunctions ?? [])].some((fn) => this.#functionCandidates(fn).some((c) => anyGlob(globs, c)));
      if (!hit) return false;
    }
    if (m.noWhere === true && !f.noWhere) return false;
    if (m.noWhere === false && f.noWhere) return false;
    if (m.statementRegex !== undefined && !m.statementRegex.test(sql)) return false;
    return true;
  }

  /**
   * Names a function call may be matched under: as written, bare, and (unqualified) under every
   * schema it may resolve to — pg_catalog first, as PostgreSQL resolves it.
   */
  #functionCandidates(fn: string): string[] {
    const dot = fn.lastIndexOf(".");
    if (dot >= 0) return [fn, fn.slice(dot + 1)];
    const schemas = this.#searchPathUnknown ? [...this.#schemas, ...this.#policySchemas] : [...this.#schemas];
    return [fn, ...schemas.map((s) => `${s}.${fn}`)];
  }

  /** Names a relation may be matched under: as written, and qualified by every schema it may resolve to. */
  #relationCandidates(r: QualifiedName): string[] {
    if (r.schema !== undefined) return [`${r.schema}.${r.name}`, r.name];
    if (this.#searchPathUnknown) return [r.name, ...[...this.#schemas, ...this.#policySchemas].map((s) => `${s}.${r.name}`)];
    return [r.name, ...[...this.#schemas].map((s) => `${s}.${r.name}`)];
  }
}

/** Catalog relations that hold user data (statistics samples, large objects): never "catalog only". */
const DATA_CATALOGS = new Set(["pg_statistic", "pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic_ext_data", "pg_largeobject"]);

/**
 * pg_catalog's tables and views (PostgreSQL 15), the data ones above left out: an unqualified
 * name among these resolves to pg_catalog unless a temporary relation of that name exists or
 * the search_path names pg_catalog after another schema (see `catalogOnly`).
 */
const CATALOG_NAMES: ReadonlySet<string> = new Set([
  "pg_aggregate", "pg_am", "pg_amop", "pg_amproc", "pg_attrdef", "pg_attribute", "pg_auth_members",
  "pg_authid", "pg_available_extension_versions", "pg_available_extensions",
  "pg_backend_memory_contexts", "pg_cast", "pg_class", "pg_collation", "pg_config",
  "pg_constraint", "pg_conversion", "pg_cursors", "pg_database", "pg_db_role_setting",
  "pg_default_acl", "pg_depend", "pg_description", "pg_enum", "pg_event_trigger", "pg_extension",
  "pg_file_settings", "pg_foreign_data_wrapper", "pg_foreign_server", "pg_foreign_table",
  "pg_group", "pg_hba_file_rules", "pg_ident_file_mappings", "pg_index", "pg_indexes",
  "pg_inherits", "pg_init_privs", "pg_language", "pg_largeobject_metadata", "pg_locks",
  "pg_matviews", "pg_namespace", "pg_opclass", "pg_operator", "pg_opfamily", "pg_parameter_acl",
  "pg_partitioned_table", "pg_policies", "pg_policy", "pg_prepared_statements",
  "pg_prepared_xacts", "pg_proc", "pg_publication", "pg_publication_namespace",
  "pg_publication_rel", "pg_publication_tables", "pg_range", "pg_replication_origin",
  "pg_replication_origin_status", "pg_replication_slots", "pg_rewrite", "pg_roles", "pg_rules",
  "pg_seclabel", "pg_seclabels", "pg_sequence", "pg_sequences", "pg_settings", "pg_shadow",
  "pg_shdepend", "pg_shdescription", "pg_shmem_allocations", "pg_shseclabel", "pg_stat_activity",
  "pg_stat_all_indexes", "pg_stat_all_tables", "pg_stat_archiver", "pg_stat_bgwriter",
  "pg_stat_database", "pg_stat_database_conflicts", "pg_stat_gssapi", "pg_stat_progress_analyze",
  "pg_stat_progress_basebackup", "pg_stat_progress_cluster", "pg_stat_progress_copy",
  "pg_stat_progress_create_index", "pg_stat_progress_vacuum", "pg_stat_recovery_prefetch",
  "pg_stat_replication", "pg_stat_replication_slots", "pg_stat_slru", "pg_stat_ssl",
  "pg_stat_subscription", "pg_stat_subscription_stats", "pg_stat_sys_indexes",
  "pg_stat_sys_tables", "pg_stat_user_functions", "pg_stat_user_indexes", "pg_stat_user_tables",
  "pg_stat_wal", "pg_stat_wal_receiver", "pg_stat_xact_all_tables", "pg_stat_xact_sys_tables",
  "pg_stat_xact_user_functions", "pg_stat_xact_user_tables", "pg_statio_all_indexes",
  "pg_statio_all_sequences", "pg_statio_all_tables", "pg_statio_sys_indexes",
  "pg_statio_sys_sequences", "pg_statio_sys_tables", "pg_statio_user_indexes",
  "pg_statio_user_sequences", "pg_statio_user_tables", "pg_statistic_ext", "pg_subscription",
  "pg_subscription_rel", "pg_tables", "pg_tablespace", "pg_timezone_abbrevs", "pg_timezone_names",
  "pg_transform", "pg_trigger", "pg_ts_config", "pg_ts_config_map", "pg_ts_dict", "pg_ts_parser",
  "pg_ts_template", "pg_type", "pg_user", "pg_user_mapping", "pg_user_mappings", "pg_views",
]);

/** pg_dump's own first statement: an empty search_path, after which bare names resolve to pg_temp, then pg_catalog. */
const EMPTY_PATH_IDIOM = /^\s*select\s+pg_catalog\.set_config\s*\(\s*'search_path'\s*,\s*''\s*,\s*false\s*\)\s*;?\s*$/i;

/** Whether a statement's text is exactly pg_dump's `SELECT pg_catalog.set_config('search_path', '', false)`. */
export function setsEmptySearchPath(sql: string): boolean {
  return EMPTY_PATH_IDIOM.test(sql);
}

export function isCatalogName(name: string): boolean {
  return CATALOG_NAMES.has(name);
}

/**
 * The statement is a SELECT that reads only system catalogs and calls only pg_catalog's
 * functions, each named with its schema (`pg_catalog.pg_class`, `information_schema.columns`,
 * `pg_catalog.format_type(…)`, as pg_dump writes them): row limits do not apply. An unqualified
 * name does not count (a table or function of that name may come first on the session's
 * search_path) unless `bare` says the session cannot have shadowed it.
 */
export function catalogOnly(facts: readonly StatementFacts[], bare: (name: string) => boolean = () => false): boolean {
  let read = 0;
  for (const f of facts) {
    if (f.relationsWritten.length > 0 || f.unknownEffects !== undefined) return false;
    if (f.operations.some((op) => op !== "select")) return false;
    // A function could return any data for each catalog row: only pg_catalog's own, by name.
    if (f.functions.some((fn) => !fn.startsWith("pg_catalog."))) return false;
    for (const r of f.relationsRead) {
      const qualified = r.schema === "pg_catalog" || r.schema === "information_schema";
      if (!qualified && !(r.schema === undefined && bare(r.name))) return false;
      if (DATA_CATALOGS.has(r.name)) return false;
      read++;
    }
  }
  return read > 0;
}
