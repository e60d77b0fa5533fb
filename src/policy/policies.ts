/**
 * Guardrails and masking plans from the `policies:` list (INTERFACE.md). Policies are judged
 * in order: the first matching deny / require_approval / allow decides; mask policies
 * accumulate into the statement's result plan; limits (maxRows, statementTimeout, readOnly)
 * come from every applicable policy.
 *
 * Facts come from the real PostgreSQL parser (./sql). Fail closed: when any deny or approval
 * policy applies to the session, a statement that cannot be parsed, or whose effects cannot
 * be known (DO blocks, COPY … PROGRAM, EXECUTE of an unknown prepared statement), is refused.
 */
import { connectionMap, type Connection, type ConnectionSource, type ConnectionType } from "../core/connection.js";
import type { SessionInfo } from "../core/session.js";
import type { PolicyConfig } from "../runtime/config.js";
import type { Evaluator, SessionEvaluator } from "./evaluator.js";
import { Glob, anyGlob } from "./glob.js";
import type { ClassificationCache } from "./sql/index.js";

import { SessionPolicies, type SessionPoliciesOptions } from "./sql-session.js";
import { SQL_KINDS, compileMatch, isSqlPolicy, type CompiledPolicy } from "./sql-policy.js";
import type { ViewResolver } from "./view-resolver.js";
import { sharedMysqlClassifier, type MysqlClassifier } from "./mysql/index.js";

export type { ViewResolver } from "./view-resolver.js";
export { DEFAULT_APPROVAL_TIMEOUT_MS } from "./sql-policy.js";

/** Target types whose statements are SQL this evaluator's classifiers read: PostgreSQL's parser, and MySQL's grammar for `mysql` (src/policy/mysql). */
const SQL_TARGETS: ReadonlySet<ConnectionType> = new Set<ConnectionType>(["postgres", "mysql"]);

export class PolicyEvaluator implements Evaluator {
  readonly name = "policies";
  readonly kinds = SQL_KINDS;
  readonly #policies: readonly CompiledPolicy[];
  readonly #cache: ClassificationCache;
  readonly #connections: ReadonlyMap<string, Connection>;

  readonly #viewResolver: ViewResolver | undefined;
  readonly #sessionOptions: SessionPoliciesOptions;

  readonly #mysql: MysqlClassifier | undefined;

  constructor(
    policies: readonly PolicyConfig[],
    connections: ConnectionSource,
    cache: ClassificationCache,
    viewResolver?: ViewResolver,
    sessionOptions: SessionPoliciesOptions = {},
    mysql?: MysqlClassifier,
  ) {
    this.#viewResolver = viewResolver;
    this.#sessionOptions = sessionOptions;
    this.#mysql = mysql;
    // SQL matches, and policies without one: other kinds of match are about other targets.
    this.#policies = policies.filter(isSqlPolicy).map((p) => ({
      config: p,
      name: p.name,
      connections: p.connections.map((g) => new Glob(g)),
      groups: p.groups,
      match: compileMatch(p),
    }));
    this.#cache = cache;
    this.#connections = connectionMap(connections);
  }

  openSession(session: SessionInfo): SessionEvaluator | undefined {
    // SQL guardrails, for targets whose SQL the classifier reads; shell targets are judged by
    // SshPolicyEvaluator (src/policy/ssh-policies.ts).
    if (!SQL_TARGETS.has(session.targetType)) return undefined;
    const applicable = this.#policies.filter(
      (p) => anyGlob(p.connections, session.connection) && (p.groups === undefined || p.groups.some((g) => session.principal.groups.includes(g))),
    );
    if (applicable.length === 0) return undefined;
    const connection = this.#connections.get(session.connection);
    // The dialect follows the target: a MySQL connection's statements are MySQL's, whatever the client speaks.
    const targetType: string = session.targetType;
    if (targetType === "mysql") {
      const database = connection?.type === "mysql" ? connection.database : undefined;
      return new SessionPolicies(applicable, this.#cache, session, undefined, undefined, this.#sessionOptions, this.#mysql ?? sharedMysqlClassifier(), database);
    }
    return new SessionPolicies(applicable, this.#cache, session, connection?.type === "postgres" ? connection.user : undefined, this.#viewResolver, this.#sessionOptions);
  }
}
