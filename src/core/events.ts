import type { CostDeferral, HoldDecision } from "./decision.js";
import type { ErrorCode } from "./errors.js";
import type { ObjectBinding } from "./objects.js";
import type { CostEstimate } from "./preview.js";
import type { ClientProtocol, SessionEndReason, SessionInfo } from "./session.js";

/**
 * Everything that happens on the data path, as typed events. Protocol engines produce them;
 * the one pipeline judges the decidable ones (`JudgedEvent`, through `Judge.judge`) and records
 * and audits the facts (`ObservedEvent`, through `Judge.observe`).
 */
export type GatewayEvent = SessionStartEvent | JudgedEvent | ObservedEvent | SessionEndEvent | AuthFailureEvent;

/**
 * Events that need a decision before anything of them is forwarded. Evaluators opt in to the
 * kinds they judge (`SessionEvaluator.kinds`); the pipeline routes each event by its `type`.
 */
export type JudgedEvent = DbQueryEvent | DbExecuteEvent | DbFunctionCallEvent | SshCommandEvent | RedisCommandEvent | ProtocolRequestEvent | HttpRequestEvent | K8sRequestEvent | McpCallEvent;

export type JudgedKind = JudgedEvent["type"];

/** The judged event of one kind. */
export type JudgedEventOf<K extends JudgedKind> = Extract<JudgedEvent, { readonly type: K }>;

/** Facts: recorded and audited, never refused. */
export type ObservedEvent = DbResultEvent | TransferFactEvent | UpstreamFailureEvent;

export interface SessionStartEvent {
  readonly type: "session.start";
  readonly session: SessionInfo;
}

export interface SessionEndEvent {
  readonly type: "session.end";
  readonly session: SessionInfo;
  readonly reason: SessionEndReason;
  /** A safe, client-facing description of why the session ended abnormally. */
  readonly detail?: string;
  readonly statements: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

/**
 * How a statement reached the gateway, for any protocol with prepared statements:
 * - `simple`: text that runs now (PostgreSQL Query, MySQL COM_QUERY; may hold several statements);
 * - `prepare`: text prepared now and run later by executions that bring their values
 *   (PostgreSQL Parse, MySQL COM_STMT_PREPARE);
 * - `execute`: an execution of a statement prepared by other means (PostgreSQL Bind of a
 *   statement made by SQL PREPARE), judged as `EXECUTE name` and, like `prepare`, decided per
 *   execution when held.
 */
export type DbQueryStage = "simple" | "prepare" | "execute";

export interface DbQueryEvent {
  readonly type: "db.query";
  readonly session: SessionInfo;
  /** 1-based sequence of statements within the session. */
  readonly seq: number;
  readonly stage: DbQueryStage;
  readonly sql: string;
  /** Prepared statement name for `prepare` and `execute` ("" = unnamed). */
  readonly statementName?: string;
  /**
   * Asks the target's planner for the statement's estimate (EXPLAIN on a gateway-owned
   * session, engine-provided): called only when a cost rule applies. Rejects when it cannot
   * be estimated (the rule then refuses: fail closed).
   */
  readonly estimate?: () => Promise<CostEstimate>;
  /**
   * A `prepare` whose text takes parameters (`$1`): the planner cannot estimate it without
   * values, so a cost rule that applies is judged at each execution instead (CostDeferral).
   * An over-approximation is harmless (the execution is then estimated with no values).
   */
  readonly parameterized?: boolean;
}

/**
 * Bind parameters of one execution. `shown` is what people read (approvers, recordings: text,
 * or `\x…` hex for binary, capped); an async approval is bound to the raw values, their format
 * codes and the declared types, so two values that render alike (clipped) never match.
 */
export interface BoundParams {
  readonly shown: readonly (string | null)[];
  readonly values: readonly (Uint8Array | null)[];
  /** As in PostgreSQL's Bind: empty = all text, one entry = applies to all, else one per value. */
  readonly formats: readonly number[];
  /** Declared type OIDs (0 or missing = unspecified). */
  readonly types: readonly number[];
}

/**
 * A prepared statement whose verdict is a hold, or a cost deferral (a cost rule that needs the
 * values to estimate it). Preparing runs nothing, so the prepare is allowed and the hold is
 * kept, unresolved, for its executions: each is decided on its own, with its values
 * (`DbExecuteEvent`, whose `estimate` a cost deferral asks). Engines keep it as is and hand it
 * back; they never look inside.
 */
export interface DeferredHold {
  readonly type: "deferred";
  readonly hold: HoldDecision | CostDeferral;
  readonly sql: string;
  readonly statementName?: string;
  /**
   * What the statement's names resolved to when it was prepared: the target analyses a
   * prepared statement then, and keeps that analysis until something invalidates it, so an
   * execution is approved only while the names still resolve the same (src/approvals/binding.ts).
   */
  readonly objects?: ObjectBinding;
}

/** One execution of a prepared statement whose hold was deferred: decided with these values. */
export interface DbExecuteEvent {
  readonly type: "db.execute";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly deferred: DeferredHold;
  readonly params: BoundParams;
  /**
   * Asks the target's planner for this execution's estimate (EXPLAIN of the statement with
   * these values, engine-provided): called only for a cost deferral. Rejects when it cannot be had.
   */
  readonly estimate?: () => Promise<CostEstimate>;
}

/**
 * A call of a server function by its identifier, with no statement text (PostgreSQL's fastpath
 * FunctionCall: large objects through libpq's lo_* API). The PostgreSQL engine judges a call
 * whose OID it resolves as the SQL call of that function (a `db.query`); this event stands for
 * a call it could not resolve, which is refused.
 */
export interface DbFunctionCallEvent {
  readonly type: "db.function_call";
  readonly session: SessionInfo;
  readonly seq: number;
  /** The function's OID on the target. */
  readonly functionOid: number;
  readonly argumentCount: number;
}

/**
 * One Redis command (issue 14), judged before it is forwarded. The engine reads the keys from
 * the target's own command table (key specifications); the policy decides what they mean.
 */
export interface RedisCommandEvent {
  readonly type: "redis.command";
  readonly session: SessionInfo;
  readonly seq: number;
  /** Lower case; a subcommand as `container|sub` (`config|set`, `object|encoding`). */
  readonly command: string;
  /** The command as text for people (audit, recording, approvers): arguments quoted, long ones cut. */
  readonly text: string;
  /** The keys it touches (UTF-8 text; bytes that are not UTF-8 show as U+FFFD). */
  readonly keys: readonly string[];
  /** False when the target's command table cannot say every key (then key rules fail closed). */
  readonly keysComplete: boolean;
  /** The target's command table does not know it. */
  readonly unknownCommand: boolean;
  /** Flags from the target's command table: `write`, `readonly`, `admin`, `pubsub`, `blocking`, … */
  readonly flags: readonly string[];
  /** Queued inside MULTI (runs at EXEC). */
  readonly queued: boolean;
}

/**
 * A protocol feature the client asked for that is not a statement or command: an SSH `env`,
 * `x11`, agent-forwarding or global request, a PostgreSQL replication start-up, a message the
 * gateway cannot attribute. Judged like everything else (a feature evaluator keeps the list of
 * what the gateway serves), so every refusal is a decision, audited and recorded.
 */
export interface ProtocolRequestEvent {
  readonly type: "protocol.request";
  readonly session: SessionInfo;
  readonly seq: number;
  /** Stable name, `<protocol>.<feature>`: `ssh.env`, `ssh.x11`, `ssh.agent`, `ssh.global`, `postgres.malformed`, … */
  readonly feature: string;
  /** Safe, human-readable description (never a value that could be a secret). */
  readonly detail: string;
  /** A refusal the engine already knows must follow (a malformed message): code and reason. */
  readonly violation?: { readonly code: ErrorCode; readonly reason: string };
}

/** One result (or failure) of a statement that was forwarded, as the client received it. */
export interface DbResultEvent {
  readonly type: "db.result";
  readonly session: SessionInfo;
  /** The `seq` of the DbQueryEvent this result belongs to. */
  readonly seq: number;
  /** Bind parameters as the client sent them (text, or `\x…` hex for binary), for `execute`. */
  readonly params?: readonly (string | null)[];
  /** Portal execution of a prepared statement, or the simple query itself. */
  readonly kind: "simple" | "execute";
  readonly commandTag?: string;
  readonly rowCount: number;
  readonly columns?: readonly string[];
  /** The first rows the client received (text), up to the configured cap. */
  readonly rows?: readonly (readonly (string | null)[])[];
  readonly rowsTruncated?: boolean;
  /** The error the client received (a target error, or the gateway's refusal of the result). */
  readonly error?: { readonly sqlstate: string; readonly message: string };
  /** The result was refused by its plan (e.g. a value its masking could not cover): the rule. */
  readonly refusedBy?: string;
  readonly durationMs: number;
  /** Values masked in this result, per kind (counts only, never values). */
  readonly masked?: Readonly<Record<string, number>>;
  /** Rows the client received, when a row limit cut the result. */
  readonly rowsSent?: number;
}

/**
 * A fact about data that passed as a whole (an SFTP file, a port forward, a raw scp/rsync
 * stream): recorded and audited as sizes, hashes and counts, never content.
 */
export interface TransferFactEvent {
  readonly type: "transfer.fact";
  readonly session: SessionInfo;
  readonly seq: number;
  /** e.g. `ssh.sftp`, `ssh.forward.closed`, `ssh.transfer`. */
  readonly stage: string;
  readonly text: string;
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

/** The gateway could not open (or lost) its own session to the target. */
export interface UpstreamFailureEvent {
  readonly type: "upstream.failure";
  readonly session: SessionInfo;
  readonly code: ErrorCode;
  /** Safe description (never the credential). */
  readonly message: string;
}

export interface AuthFailureEvent {
  readonly type: "auth.failure";
  readonly protocol: ClientProtocol;
  readonly connection?: string;
  readonly clientAddress: string;
  readonly code: ErrorCode;
  /** Safe description (never the presented credential). */
  readonly reason: string;
  /** The user name the client claimed, if any. */
  readonly claimedUser?: string;
}

/**
 * SSH events, judged before anything reaches the target: an exec request, one line typed into
 * an interactive shell, a subsystem or shell channel, or a local port forward (direct-tcpip).
 */
export type SshCommandEvent = SshExecEvent | SshInputEvent | SshChannelEvent | SshForwardEvent;

export interface SshExecEvent {
  readonly type: "ssh.exec";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly command: string;
}

/** A line typed into an interactive shell, judged at Enter (best effort: see README). */
export interface SshInputEvent {
  readonly type: "ssh.input";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly line: string;
  /** Editing keys (arrows, tab completion, history) were used: the line may differ from what the shell runs. */
  readonly edited: boolean;
}

/** A shell or subsystem (sftp) channel being opened. */
export interface SshChannelEvent {
  readonly type: "ssh.channel";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly channel: "shell" | "subsystem";
  /** The subsystem name (sftp). */
  readonly name?: string;
}

export interface SshForwardEvent {
  readonly type: "ssh.forward";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly host: string;
  readonly port: number;
}

/** The gateway's Kubernetes verbs: the apiserver's, plus its subresources that act (exec, attach, portforward, proxy, logs). */
export type K8sVerb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection" | "exec" | "attach" | "portforward" | "proxy" | "logs";

/**
 * One Kubernetes API request (issue 15; src/protocols/kubernetes/request.ts), judged before it
 * is forwarded. A `kubectl exec POD -- CMD` is judged twice: as this request (verb exec), then
 * its command as an `ssh.exec` by the shell guardrails; typed lines as `ssh.input`.
 */
export interface K8sRequestEvent {
  readonly type: "k8s.request";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly verb: K8sVerb;
  /** False for discovery, /version, /openapi, health: `path` says what. */
  readonly resourceRequest: boolean;
  /** "" = the core group. */
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly resource: string;
  readonly subresource: string;
  readonly namespace: string;
  readonly name: string;
  /** The normalized request path (no query). */
  readonly path: string;
  /** For people: `delete namespaces prod`, `exec pods web-1 -n prod: sh -c …`. */
  readonly text: string;
  /** A patch, update or create body the gateway parsed (JSON), for field rules; absent when not read. */
  readonly body?: unknown;
}

/**
 * What the gateway knows of an HTTP request body when it is judged (issue 15). JSON bodies up
 * to the inspection cap are parsed; anything else is described, and a policy that must read
 * the body refuses it (fail closed).
 */
export type HttpBodyFacts =
  | { readonly state: "none" }
  | { readonly state: "json"; readonly value: unknown; readonly bytes: number; readonly sha256: string }
  | { readonly state: "opaque"; readonly reason: "too_large" | "not_json" | "invalid_json" | "encoded"; readonly bytes?: number; readonly sha256?: string };

/** One HTTP request to an `http` connection (issue 15), judged before it is forwarded. */
export interface HttpRequestEvent {
  readonly type: "http.request";
  readonly session: SessionInfo;
  readonly seq: number;
  /** Upper case. */
  readonly method: string;
  /** The normalized path after the connection prefix (decoded, dot segments resolved, `//` collapsed, `;params` dropped). */
  readonly path: string;
  /** Decoded query parameters in order. */
  readonly query: readonly (readonly [string, string])[];
  /** Request headers (lower-case names) without hop-by-hop headers and credentials. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: HttpBodyFacts;
  /** For people (audit, recording, approvers) and async approval matching: method, path, query, body digest. */
  readonly text: string;
}

/**
 * What an MCP request through the gateway is (issue 16, gateway half): an agent's `tools/call`
 * (or `resources/read`, `prompts/get`, named `resource:URI` / `prompt:NAME`), or a request the upstream server sends back to the agent's side (`sampling/createMessage`,
 * `elicitation/create`), which the gateway refuses unless a policy allows it.
 */
export type McpCallMethod = "tools/call" | "resources/read" | "prompts/get" | "sampling/createMessage" | "elicitation/create";

/** One MCP request to (or from) an `mcp` connection, judged before it is forwarded. */
export interface McpCallEvent {
  readonly type: "mcp.call";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly method: McpCallMethod;
  /** The tool's name for `tools/call`; `resource:URI`, `prompt:NAME`; the method itself for the upstream's requests. */
  readonly tool: string;
  /** The call's arguments (parsed JSON, bounded by the transport's message cap). */
  readonly arguments: Readonly<Record<string, unknown>>;
  /** For people (audit, recording, approvers) and async approval matching: tool and canonical arguments, capped. */
  readonly text: string;
  /**
   * The tool is not as an admin approved it (tool pinning, src/protocols/mcp/gateway/pins.ts):
   * `changed` since pinned, `new` (never pinned), `unknown` (the upstream does not list it).
   * Such a call is refused by the policy evaluator, so the refusal is judged and audited.
   */
  readonly unpinned?: "changed" | "new" | "unknown";
  /** A dry run (check_policy, the console's "try it"): call limits are looked at, not spent. */
  readonly preview?: boolean;
  /**
   * Judged to build the tool list (a preview with no arguments): would every call of the tool be
   * refused? A `when:` that reads the arguments cannot say, so it does not hide the tool.
   */
  readonly listing?: boolean;
}
