/**
 * Airlock as an MCP server (issue 16): the connections a caller's groups may use, as tools.
 *
 * Every tool that touches a target is a client of the gateway's own engines over loopback, with
 * the caller's own bearer credential (targets/*.ts): the statement or command is admitted,
 * judged, held, masked, recorded and audited by exactly the code a wire client meets, in a
 * session of the caller's principal (client protocol `mcp`, correlated with the MCP session,
 * request id and trace context). The MCP layer only chooses the tool, shapes the envelope and
 * keeps cursors; it never decides. `check_policy` asks the same pipeline for a dry run.
 *
 * Adding an engine's tools is one entry in TARGET_TOOLS below plus its loopback client in
 * targets/ (HTTP and Kubernetes tools: http-tools.ts, kube-tool.ts; MySQL shares the SQL tools).
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { CallToolResult, ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Connection, ConnectionType } from "../../core/connection.js";
import type { Verdict } from "../../core/decision.js";
import type { JudgedEvent } from "../../core/events.js";
import type { Principal } from "../../core/principal.js";
import type { SessionInfo } from "../../core/session.js";
import { mcpCallText, parseMcpCallText } from "../../core/mcp-call.js";
import { ColumnGlob, Glob, anyGlob } from "../../policy/glob.js";
import type { Correlation, LoopbackCorrelations } from "./correlation.js";
import { fixFor, toToolResult, type Envelope } from "./envelope.js";
import { McpState } from "./state.js";
import { runSql, type SqlRows } from "./targets/postgres.js";
import { runRedis } from "./targets/redis.js";
import { runMysql } from "./targets/mysql.js";
import { runExec } from "./targets/ssh.js";
import type { Held, LoopbackCaller, LoopbackEndpoint, Refused, TargetError } from "./targets/types.js";
import { registerHttpTools, type ToolContext } from "./http-tools.js";
import { registerKubernetesTool } from "./kube-tool.js";
import { httpSketch, kubeSketch, requestCheckArgs, type RequestCheckArgs, type RequestSketch } from "./check-request.js";

export const MCP_SERVER_NAME = "airlock";

/** An approval request as the MCP tools show it (from the approval service). */
export interface ApprovalInfo {
  readonly id: string;
  readonly kind: string;
  readonly status: string;
  readonly requesterId: string;
  readonly connection: string;
  readonly statement?: string;
  readonly rule?: string;
  readonly approvers: readonly string[];
  readonly expiresAt: Date;
  readonly decisionReason?: string;
}

export interface McpMaskPolicy {
  readonly name: string;
  readonly connections: readonly string[];
  readonly groups?: readonly string[];
  readonly columns: readonly string[];
}

export interface McpServiceDeps {
  readonly connections: readonly Connection[];
  /** Column mask rules (policies with action mask and columns), for describe_schema's marks. */
  readonly maskPolicies: readonly McpMaskPolicy[];
  readonly endpoints: {
    readonly postgres?: LoopbackEndpoint & { readonly tls: boolean };
    readonly ssh?: LoopbackEndpoint & { readonly hostKey?: Buffer };
    readonly redis?: LoopbackEndpoint;
    /** The HTTP listener: `http_request` and `kubernetes` (its Kubernetes kind). */
    readonly http?: LoopbackEndpoint & { readonly tls: boolean };
    readonly mysql?: LoopbackEndpoint & { readonly tls: boolean };
  };
  readonly correlations: LoopbackCorrelations;
  readonly preview: (session: SessionInfo, event: JudgedEvent) => Promise<Verdict>;
  /**
   * The events a request to an HTTP or Kubernetes connection would be judged as, in order, built
   * by the HTTP engine's own code (runtime/mcp.ts; a Kubernetes exec: the request, then its argv
   * as a shell command), or the engine's refusal of it (check_policy).
   */
  readonly requestEvent: (session: SessionInfo, connection: Connection, request: RequestSketch) => Promise<readonly JudgedEvent[] | { readonly code: string; readonly message: string }>;
  readonly approvals: {
    get(id: string): Promise<ApprovalInfo | undefined>;
    requestGrant(principal: Principal, connection: string, durationMs: number, reason: string): Promise<ApprovalInfo>;
  };
  readonly hasGrant: (principalId: string, connection: string) => boolean;
  readonly version: string;
}

/** One caller's view: who they are, their credential (for loopback sessions only), which connections the client narrowed to. */
export interface McpCaller {
  readonly principal: Principal;
  readonly bearer: string;
  /** `airlock mcp --connection …` (the X-Airlock-Connections header): narrows, never widens. */
  readonly only?: readonly string[];
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1_000;
/** Rows and value bytes one `query` keeps at most (the rest of the result: not read). */
const MAX_KEPT_ROWS = 10_000;
const MAX_KEPT_BYTES = 8 * 1024 * 1024;
const MAX_OUTPUT_BYTES = 1024 * 1024;
const MAX_WAIT_SECONDS = 60;

/** Which tools a connection type brings. One entry per engine. */
const TARGET_TOOLS: Readonly<Record<ConnectionType, readonly string[]>> = {
  postgres: ["query", "explain", "describe_schema"],
  ssh: ["exec"],
  redis: ["redis"],
  http: ["http_request"],
  kubernetes: ["kubernetes"],
  // MySQL: the `query` tool needs a MySQL wire client to the gateway's own listener; not yet.
  mysql: ["query", "explain", "describe_schema"],
  // An upstream MCP server: its own tools, at /mcp/CONNECTION (protocols/mcp/gateway).
  mcp: [],
};

/** PostgreSQL type names for the OIDs agents meet most (pg_type); others as `oid:N`. */
const PG_TYPES: Readonly<Record<number, string>> = {
  16: "bool", 17: "bytea", 20: "int8", 21: "int2", 23: "int4", 25: "text", 114: "json", 700: "float4", 701: "float8",
  1042: "bpchar", 1043: "varchar", 1082: "date", 1114: "timestamp", 1184: "timestamptz", 1700: "numeric", 2950: "uuid", 3802: "jsonb",
};

function typeName(oid: number): string {
  return PG_TYPES[oid] ?? `oid:${oid}`;
}

function correlationOf(extra: Extra, tool: string): Correlation {
  const meta = extra._meta as Record<string, unknown> | undefined;
  const fromMeta = typeof meta?.["traceparent"] === "string" ? meta["traceparent"] : undefined;
  const header = extra.requestInfo?.headers["traceparent"];
  const fromHeader = typeof header === "string" ? header : undefined;
  const traceparent = fromMeta ?? fromHeader;
  return {
    requestId: String(extra.requestId),
    tool,
    ...(extra.sessionId === undefined ? {} : { mcpSession: extra.sessionId }),
    ...(traceparent === undefined ? {} : { traceparent }),
  };
}

export class McpService {
  readonly #d: McpServiceDeps;
  readonly #state = new McpState();

  constructor(deps: McpServiceDeps) {
    this.#d = deps;
  }

  /** Connections the caller may use: by groups (or an active access grant), narrowed by the client's list. */
  connectionsFor(caller: McpCaller): readonly Connection[] {
    const p = caller.principal;
    return this.#d.connections.filter(
      (c) => (caller.only === undefined || caller.only.includes(c.name)) && (c.groups.some((g) => p.groups.includes(g)) || this.#d.hasGrant(p.id, c.name)),
    );
  }

  /** A fresh MCP server for one MCP session of one caller (tools listed for their connections). */
  serverFor(caller: McpCaller): McpServer {
    const server = new McpServer({ name: MCP_SERVER_NAME, version: this.#d.version }, { capabilities: { tools: {} } });
    const mine = this.connectionsFor(caller);
    const names = (types: readonly ConnectionType[]): string[] => mine.filter((c) => types.includes(c.type)).map((c) => c.name);
    const has = (tool: string): boolean => mine.some((c) => TARGET_TOOLS[c.type].includes(tool));
    const connectionArg = (types: readonly ConnectionType[]) => z.string().min(1).max(200).describe(`the connection: ${names(types).join(", ")}`);

    server.registerTool(
      "list_connections",
      { description: "The connections you may use through Airlock, their types and the tools that reach them.", inputSchema: {} },
      () => toToolResult({ status: "completed", connections: this.connectionsFor(caller).map((c) => ({ name: c.name, type: c.type, tools: TARGET_TOOLS[c.type] })) }),
    );

    if (has("query")) {
      server.registerTool(
        "query",
        {
          description:
            "Run one SQL statement on a PostgreSQL or MySQL connection through Airlock (judged by policy, possibly held for a person's approval; results masked). " +
            "Rows come back as structuredContent.rows with structuredContent.columns; when more rows exist, call again with { cursor } only.",
          inputSchema: {
            connection: connectionArg(["postgres", "mysql"]).optional(),
            sql: z.string().max(1024 * 1024).optional(),
            params: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).max(1000).optional().describe("values for $1, $2, … (MySQL: ?, ?, …)"),
            maxRows: z.number().int().min(1).max(MAX_PAGE).optional().describe(`rows per page (default ${DEFAULT_PAGE})`),
            cursor: z.string().max(100).optional().describe("continue a previous result"),
          },
        },
        async (args, extra) => {
          if (args.cursor !== undefined) return toToolResult(this.#page(caller, args.cursor));
          if (args.connection === undefined || args.sql === undefined) {
            return toToolResult({ status: "failed", code: "GW_BAD_REQUEST", message: "give connection and sql (or a cursor)" });
          }
          const call = { connection: args.connection, sql: args.sql, ...(args.params === undefined ? {} : { params: args.params }) };
          return toToolResult(await this.#sql(caller, extra, "query", call, args.maxRows ?? DEFAULT_PAGE));
        },
      );
      server.registerTool(
        "explain",
        {
          description: "The plan the database would use for a statement (EXPLAIN, never ANALYZE: nothing runs). Judged by policy like the statement itself.",
          inputSchema: { connection: connectionArg(["postgres", "mysql"]), sql: z.string().min(1).max(1024 * 1024) },
        },
        async (args, extra) => {
          if (/^\s*explain\b/i.test(args.sql)) return toToolResult({ status: "failed", code: "GW_BAD_REQUEST", message: "give the statement itself, without EXPLAIN" });
          const r = await this.#sql(caller, extra, "explain", { connection: args.connection, sql: `EXPLAIN ${args.sql}` }, MAX_PAGE);
          if (r.status !== "completed") return toToolResult(r);
          const rows = Array.isArray(r["rows"]) ? (r["rows"] as readonly (readonly (string | null)[])[]) : [];
          return toToolResult({ status: "completed", connection: args.connection, plan: rows.map((row) => row[0] ?? "").join("\n") });
        },
      );
      server.registerTool(
        "describe_schema",
        {
          description: "Tables, columns and types you may see on a PostgreSQL or MySQL connection; columns Airlock masks for you are marked masked: true.",
          inputSchema: { connection: connectionArg(["postgres", "mysql"]), schema: z.string().max(200).optional().describe("only this schema") },
        },
        async (args, extra) => toToolResult(await this.#describe(caller, extra, args.connection, args.schema)),
      );
    }

    if (has("exec")) {
      server.registerTool(
        "exec",
        {
          description: "Run one command on an SSH connection through Airlock (parsed and judged by policy, possibly held for approval; output masked).",
          inputSchema: { connection: connectionArg(["ssh"]), command: z.string().min(1).max(64 * 1024) },
        },
        async (args, extra) => toToolResult(await this.#exec(caller, extra, args.connection, args.command)),
      );
    }

    if (has("redis")) {
      server.registerTool(
        "redis",
        {
          description: 'Run one Redis command on a Redis connection through Airlock, e.g. ["GET", "user:1"] (judged by policy; replies masked).',
          inputSchema: { connection: connectionArg(["redis"]), command: z.array(z.string().max(1024 * 1024)).min(1).max(10_000) },
        },
        async (args, extra) => toToolResult(await this.#redis(caller, extra, args.connection, args.command)),
      );
    }

    const ctx: ToolContext = {
      ...(this.#d.endpoints.http === undefined ? {} : { httpEndpoint: this.#d.endpoints.http }),
      target: (connection, type) => this.#target(caller, connection, type),
      loopback: (extra, tool) => this.#loopback(caller, extra, tool),
      pending: (connection, held, entry) => this.#pendingEnvelope(caller, connection, held, entry),
      refusal: (connection, r) => this.#refusal(connection, r),
      connectionArg,
    };
    registerHttpTools(server, ctx, { http: has("http_request") });
    if (has("kubernetes")) registerKubernetesTool(server, ctx);

    server.registerTool(
      "check_policy",
      {
        description:
          "Would Airlock allow this SQL statement, shell command, HTTP request or Kubernetes action on this connection, and if not, which rule and why? " +
          "A dry run of the same judgement; nothing runs, nothing is held. SQL/SSH/MCP: statement. HTTP: method, path (query, headers, json or body). " +
          "Kubernetes: verb, resource, namespace, name (exec: command), or method and path.",
        inputSchema: {
          connection: z.string().min(1).max(200),
          statement: z.string().min(1).max(1024 * 1024).optional().describe("SQL (PostgreSQL and MySQL connections), a command line (SSH), or TOOL {json arguments} (MCP connections)"),
          ...requestCheckArgs,
        },
      },
      async (args) => toToolResult(await this.#check(caller, args.connection, args.statement, args)),
    );

    server.registerTool(
      "request_approval",
      {
        description:
          "Ask people for approval ahead of time: kind statement (a statement a policy holds; once approved, run it with query/exec within the approval's validity) " +
          "or kind access (a time-boxed access grant to a connection).",
        inputSchema: {
          kind: z.enum(["statement", "access"]),
          connection: z.string().min(1).max(200),
          statement: z.string().min(1).max(1024 * 1024).optional(),
          reason: z.string().min(1).max(2000).optional(),
          durationMinutes: z.number().int().min(1).max(24 * 60).optional().describe("access: how long (default 30)"),
        },
      },
      async (args, extra) => toToolResult(await this.#requestApproval(caller, extra, args)),
    );

    server.registerTool(
      "approval_status",
      { description: "The state of an approval request you made (pending, approved, denied, expired, cancelled).", inputSchema: { id: z.string().min(1).max(100) } },
      async (args) => toToolResult(await this.#status(caller, args.id)),
    );

    server.registerTool(
      "wait_approval",
      {
        description: `Wait (at most timeoutSeconds, default 30, max ${MAX_WAIT_SECONDS}) for a person to decide a held call; once approved, returns the call's own result.`,
        inputSchema: { id: z.string().min(1).max(100), timeoutSeconds: z.number().int().min(1).max(MAX_WAIT_SECONDS).optional() },
      },
      async (args, extra) => toToolResult(await this.#wait(caller, args.id, (args.timeoutSeconds ?? 30) * 1000, extra.signal)),
    );
    return server;
  }

  #loopback(caller: McpCaller, extra: Extra, tool: string): LoopbackCaller {
    const correlation = correlationOf(extra, tool);
    return {
      bearer: caller.bearer,
      principalId: caller.principal.id,
      correlation,
      expect: (port, onHold) => this.#d.correlations.expect(port, caller.principal.id, correlation, onHold),
    };
  }

  /** Narrowed out by the client, or not of this type: answered as the gateway answers an unknown connection. */
  #target(caller: McpCaller, connection: string, type: ConnectionType | readonly ConnectionType[]): Envelope | undefined {
    if (caller.only !== undefined && !caller.only.includes(connection)) {
      return { status: "denied", connection, code: "GW_UNKNOWN_CONNECTION", message: `connection "${connection}" is not among this client's connections`, fix: fixFor("GW_UNKNOWN_CONNECTION", undefined) };
    }
    const c = this.#d.connections.find((x) => x.name === connection);
    if (c !== undefined && (typeof type === "string" ? c.type !== type : !type.includes(c.type))) {
      return { status: "denied", connection, code: "GW_UNKNOWN_CONNECTION", message: `connection "${connection}" is a ${c.type} connection`, fix: `use the ${TARGET_TOOLS[c.type].join(" or ")} tool for it` };
    }
    return undefined;
  }

  async #pendingEnvelope(caller: McpCaller, connection: string, held: Held<unknown>, entry: { result?: Promise<Envelope>; rerun?: () => Promise<Envelope> }): Promise<Envelope> {
    const info = await this.#d.approvals.get(held.approvalId).catch(() => undefined);
    this.#state.addPending(held.approvalId, { principalId: caller.principal.id, connection, ...entry }, info?.expiresAt);
    return {
      status: "pending_approval",
      connection,
      approvalId: held.approvalId,
      ...(info?.rule === undefined ? {} : { rule: info.rule }),
      approvers: info?.approvers ?? [],
      ...(info === undefined ? {} : { expiresAt: info.expiresAt.toISOString() }),
      message: held.message,
      wait: { tool: "wait_approval", arguments: { id: held.approvalId } },
    };
  }

  #refusal(connection: string, r: Refused | TargetError): Envelope {
    switch (r.type) {
      case "refused":
        return { status: "denied", connection, code: r.code, ...(r.rule === undefined ? {} : { rule: r.rule }), message: r.message, fix: fixFor(r.code, r.rule) };
      case "error":
        return { status: "failed", connection, code: r.code, message: r.message };
    }
  }

  async #sql(caller: McpCaller, extra: Extra, tool: string, call: { connection: string; sql: string; params?: readonly (string | number | boolean | null)[] }, pageSize: number): Promise<Envelope> {
    const wrong = this.#target(caller, call.connection, ["postgres", "mysql"]);
    if (wrong !== undefined) return wrong;
    const isMysql = this.#d.connections.find((x) => x.name === call.connection)?.type === "mysql";
    const endpoint = isMysql ? this.#d.endpoints.mysql : this.#d.endpoints.postgres;
    if (endpoint === undefined) {
      const listener = isMysql ? "MySQL listener (listen.mysql)" : "PostgreSQL listener (listen.postgres)";
      return { status: "failed", connection: call.connection, code: "GW_UNSUPPORTED", message: `the gateway has no ${listener}, which SQL tools use` };
    }
    const run = async (): Promise<Envelope> => {
      const sqlCall = { ...call, maxRows: MAX_KEPT_ROWS, maxBytes: MAX_KEPT_BYTES };
      const outcome = await (isMysql ? runMysql(endpoint, this.#loopback(caller, extra, tool), sqlCall) : runSql(endpoint, this.#loopback(caller, extra, tool), sqlCall));
      switch (outcome.type) {
        case "rows":
          return this.#rows(caller, call.connection, outcome, pageSize);
        case "held": {
          const result = outcome.result?.then((r) => (r.type === "rows" ? this.#rows(caller, call.connection, r, pageSize) : this.#refusal(call.connection, r)));
          return this.#pendingEnvelope(caller, call.connection, outcome, result === undefined ? { rerun: run } : { result });
        }
        case "refused":
        case "error":
          return this.#refusal(call.connection, outcome);
      }
    };
    return run();
  }

  #rows(caller: McpCaller, connection: string, r: SqlRows, pageSize: number): Envelope {
    const columns = r.columns.map((c) => ({ name: c.name, type: c.typeName ?? typeName(c.typeId) }));
    const first = r.rows.slice(0, pageSize);
    const more = r.rows.length > pageSize;
    const cursor = more
      ? this.#state.newCursor({ principalId: caller.principal.id, connection, columns, rows: r.rows, offset: pageSize, pageSize, truncated: r.truncated })
      : undefined;
    return {
      status: "completed",
      connection,
      command: r.command,
      rowCount: r.rowCount,
      columns,
      rows: first,
      ...(cursor === undefined ? {} : { cursor }),
      hasMore: more || r.truncated,
      ...(r.truncated && !more ? { note: `the result was cut at ${r.rows.length} rows; narrow the statement (WHERE, LIMIT/OFFSET) for the rest` } : {}),
      ...(r.notices.length === 0 ? {} : { notices: r.notices }),
    };
  }

  #page(caller: McpCaller, cursor: string): Envelope {
    const c = this.#state.cursors.get(cursor, caller.principal.id);
    if (c === undefined) return { status: "failed", code: "GW_NOT_FOUND", message: "unknown or expired cursor: run the query again" };
    const rows = c.rows.slice(c.offset, c.offset + c.pageSize);
    c.offset += rows.length;
    const more = c.offset < c.rows.length;
    if (!more) this.#state.cursors.delete(cursor);
    return {
      status: "completed",
      connection: c.connection,
      columns: c.columns,
      rows,
      ...(more ? { cursor } : {}),
      hasMore: more || c.truncated,
      ...(c.truncated && !more ? { note: `the result was cut at ${c.rows.length} rows; narrow the statement for the rest` } : {}),
    };
  }

  async #describe(caller: McpCaller, extra: Extra, connection: string, schema: string | undefined): Promise<Envelope> {
    const isMysql = this.#d.connections.find((x) => x.name === connection)?.type === "mysql";
    const sql =
      "select c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable from information_schema.columns c " +
      (isMysql
        ? "where c.table_schema not in ('mysql', 'information_schema', 'performance_schema', 'sys')"
        : "where c.table_schema not in ('pg_catalog', 'information_schema') and c.table_schema not like 'pg_toast%'") +
      (schema === undefined ? "" : ` and c.table_schema = ${isMysql ? "?" : "$1"}`) +
      " order by c.table_schema, c.table_name, c.ordinal_position";
    const r = await this.#sql(caller, extra, "describe_schema", { connection, sql, ...(schema === undefined ? {} : { params: [schema] }) }, MAX_KEPT_ROWS);
    if (r.status !== "completed") return r;
    const masks = this.#maskGlobs(caller.principal, connection);
    const tables = new Map<string, { schema: string; table: string; columns: { name: string; type: string; nullable: boolean; masked?: true; maskedBy?: string }[] }>();
    const rows = (r["rows"] ?? []) as readonly (readonly (string | null)[])[];
    for (const [s, t, col, type, nullable] of rows) {
      if (s == null || t == null || col == null) continue;
      const key = `${s}.${t}`;
      let table = tables.get(key);
      if (table === undefined) tables.set(key, (table = { schema: s, table: t, columns: [] }));
      const rule = masks.find((m) => m.globs.some((g) => (g.relation.test(t) || g.relation.test(key)) && g.column.test(col)));
      table.columns.push({ name: col, type: type ?? "unknown", nullable: nullable === "YES", ...(rule === undefined ? {} : { masked: true as const, maskedBy: rule.name }) });
    }
    return { status: "completed", connection, tables: [...tables.values()] };
  }

  #maskGlobs(principal: Principal, connection: string): { name: string; globs: ColumnGlob[] }[] {
    return this.#d.maskPolicies
      .filter((p) => anyGlob(p.connections.map((g) => new Glob(g)), connection) && (p.groups === undefined || p.groups.some((g) => principal.groups.includes(g))))
      .map((p) => ({ name: p.name, globs: p.columns.map((c) => new ColumnGlob(c)) }));
  }

  async #exec(caller: McpCaller, extra: Extra, connection: string, command: string): Promise<Envelope> {
    const wrong = this.#target(caller, connection, "ssh");
    if (wrong !== undefined) return wrong;
    const endpoint = this.#d.endpoints.ssh;
    if (endpoint === undefined) return { status: "failed", connection, code: "GW_UNSUPPORTED", message: "the gateway has no SSH listener (listen.ssh), which exec uses" };
    const outcome = await runExec(endpoint, this.#loopback(caller, extra, "exec"), { connection, command, maxBytes: MAX_OUTPUT_BYTES });
    const done = (r: { type: "exec"; exitCode: number | null; signal?: string; stdout: string; stderr: string; truncated: boolean }): Envelope => ({
      status: "completed",
      connection,
      exitCode: r.exitCode,
      ...(r.signal === undefined ? {} : { signal: r.signal }),
      stdout: r.stdout,
      stderr: r.stderr,
      truncated: r.truncated,
    });
    switch (outcome.type) {
      case "exec":
        return done(outcome);
      case "held":
        return this.#pendingEnvelope(caller, connection, outcome, outcome.result === undefined ? {} : { result: outcome.result.then((r) => (r.type === "exec" ? done(r) : this.#refusal(connection, r))) });
      case "refused":
      case "error":
        return this.#refusal(connection, outcome);
    }
  }

  async #redis(caller: McpCaller, extra: Extra, connection: string, args: readonly string[]): Promise<Envelope> {
    const wrong = this.#target(caller, connection, "redis");
    if (wrong !== undefined) return wrong;
    const endpoint = this.#d.endpoints.redis;
    if (endpoint === undefined) return { status: "failed", connection, code: "GW_UNSUPPORTED", message: "the gateway has no Redis listener (listen.redis), which the redis tool uses" };
    const run = async (): Promise<Envelope> => {
      const outcome = await runRedis(endpoint, this.#loopback(caller, extra, "redis"), { connection, args, maxBytes: MAX_OUTPUT_BYTES });
      switch (outcome.type) {
        case "reply":
          return { status: "completed", connection, reply: outcome.reply };
        case "held":
          return this.#pendingEnvelope(caller, connection, outcome, { rerun: run });
        case "refused":
        case "error":
          return this.#refusal(connection, outcome);
      }
    };
    return run();
  }

  async #check(caller: McpCaller, connection: string, statement: string | undefined, request: RequestCheckArgs = {}): Promise<Envelope> {
    const c = this.#d.connections.find((x) => x.name === connection);
    if (c === undefined || (caller.only !== undefined && !caller.only.includes(connection))) {
      return { status: "completed", connection, decision: "deny", code: "GW_UNKNOWN_CONNECTION", message: `unknown connection "${connection}"`, fix: fixFor("GW_UNKNOWN_CONNECTION", undefined) };
    }
    const session: SessionInfo = {
      id: `preview-${randomUUID()}`,
      clientProtocol: "mcp",
      targetType: c.type,
      connection,
      principal: caller.principal,
      clientAddress: "mcp:check_policy",
      startedAt: new Date(),
      attributes: { via: "mcp", "mcp.tool": "check_policy" },
    };
    let event: JudgedEvent;
    let more: readonly JudgedEvent[] = [];
    const needStatement: Envelope = { status: "failed", connection, code: "GW_BAD_REQUEST", message: `give statement for a ${c.type} connection` };
    switch (c.type) {
      case "postgres":
      case "mysql":
        if (statement === undefined) return needStatement;
        event = { type: "db.query", session, seq: 1, stage: "simple", sql: statement };
        break;
      case "ssh":
        if (statement === undefined) return needStatement;
        event = { type: "ssh.exec", session, seq: 1, command: statement };
        break;
      case "redis":
        return { status: "failed", connection, code: "GW_UNSUPPORTED", message: "check_policy does not judge Redis commands yet (their keys come from the target's command table): run the command, a refusal changes nothing" };
      case "http":
      case "kubernetes": {
        const sketch = c.type === "http" ? httpSketch(connection, request) : kubeSketch(request);
        if ("error" in sketch) return { status: "failed", connection, code: "GW_BAD_REQUEST", message: sketch.error };
        const e = await this.#d.requestEvent(session, c, sketch);
        // The engine itself would refuse the request before any policy (a path it cannot normalize, exec over a non-WebSocket, …).
        if ("code" in e) return { status: "completed", connection, decision: "deny", code: e.code, message: e.message, fix: "change the request: the gateway refuses it as sent" };
        const [first, ...rest] = e;
        if (first === undefined) return { status: "failed", connection, code: "GW_INTERNAL", message: "nothing to judge" };
        event = first;
        more = rest;
        break;
      }
      case "mcp": {
        if (statement === undefined) return needStatement;
        // `TOOL {"argument": …}`: judged as a tools/call through /mcp/CONNECTION would be (rate limits aside).
        let call: ReturnType<typeof parseMcpCallText>;
        try {
          call = parseMcpCallText(statement);
        } catch (e) {
          return { status: "failed", connection, code: "GW_BAD_REQUEST", message: e instanceof Error ? e.message : "expected TOOL {json arguments}" };
        }
        event = { type: "mcp.call", session, seq: 1, method: "tools/call", tool: call.tool, arguments: call.arguments, text: mcpCallText(call.tool, call.arguments), preview: true };
        break;
      }
    }
    // Judged in order as the engine would: the first refusal stands; else the first hold; else allowed (masked if any plan masks).
    let v = await this.#d.preview(session, event);
    for (const next of more) {
      if (v.type === "deny") break;
      const w = await this.#d.preview(session, next);
      if (w.type === "deny" || (w.type === "hold" && v.type === "allow")) v = w;
      else if (w.type === "allow" && v.type === "allow" && (w.plan?.masks.length ?? 0) > 0 && (v.plan?.masks.length ?? 0) === 0) v = w;
    }
    switch (v.type) {
      case "allow":
        return { status: "completed", connection, decision: "allow", ...(v.rule === undefined ? {} : { rule: v.rule }), masked: (v.plan?.masks.length ?? 0) > 0, ...(v.plan?.maxRows === undefined ? {} : { maxRows: v.plan.maxRows }) };
      case "deny":
        return { status: "completed", connection, decision: "deny", code: v.code, ...(v.rule === undefined ? {} : { rule: v.rule }), message: v.message, fix: fixFor(v.code, v.rule) };
      case "hold":
        return {
          status: "completed",
          connection,
          decision: v.need === "approval" ? "require_approval" : "require_grant",
          rule: v.rule,
          message: v.message,
          approvers: v.approvers,
          mode: v.mode,
          fix: v.need === "approval" ? "run it: the call returns pending_approval with an id; then call wait_approval" : "request_approval with kind access first",
        };
    }
  }

  async #requestApproval(
    caller: McpCaller,
    extra: Extra,
    args: { kind: "statement" | "access"; connection: string; statement?: string | undefined; reason?: string | undefined; durationMinutes?: number | undefined },
  ): Promise<Envelope> {
    if (args.kind === "access") {
      if (args.reason === undefined) return { status: "failed", code: "GW_BAD_REQUEST", message: "an access request needs a reason" };
      try {
        const row = await this.#d.approvals.requestGrant(caller.principal, args.connection, (args.durationMinutes ?? 30) * 60_000, args.reason);
        this.#state.addPending(row.id, { principalId: caller.principal.id, connection: args.connection }, row.expiresAt);
        return {
          status: "pending_approval",
          connection: args.connection,
          approvalId: row.id,
          approvers: row.approvers,
          expiresAt: row.expiresAt.toISOString(),
          message: `access to ${args.connection} requested`,
          wait: { tool: "wait_approval", arguments: { id: row.id } },
        };
      } catch (e) {
        const code = typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : "GW_INTERNAL";
        const message = code === "GW_INTERNAL" ? "the request could not be made" : e instanceof Error ? e.message : "the request could not be made";
        return { status: "denied", connection: args.connection, code, message, fix: fixFor(code, undefined) };
      }
    }
    if (args.statement === undefined) return { status: "failed", code: "GW_BAD_REQUEST", message: "a statement request needs the statement" };
    // Held statements ask for approval when they are run: check first, then run it (held, not run).
    const check: Readonly<Record<string, unknown>> = { ...(await this.#check(caller, args.connection, args.statement)) };
    if (check["decision"] !== "require_approval") {
      return check["decision"] === "allow"
        ? { status: "completed", connection: args.connection, needed: false, message: "no approval is needed: run it with query/exec" }
        : {
            status: "denied",
            connection: args.connection,
            code: typeof check["code"] === "string" ? check["code"] : "GW_POLICY_DENIED",
            message: typeof check["message"] === "string" ? check["message"] : "denied",
            ...(typeof check["rule"] === "string" ? { rule: check["rule"] } : {}),
            fix: typeof check["fix"] === "string" ? check["fix"] : "",
          };
    }
    const c = this.#d.connections.find((x) => x.name === args.connection);
    if (c?.type === "ssh") return this.#exec(caller, extra, args.connection, args.statement);
    return this.#sql(caller, extra, "request_approval", { connection: args.connection, sql: args.statement }, DEFAULT_PAGE);
  }

  async #status(caller: McpCaller, id: string): Promise<Envelope> {
    const info = await this.#d.approvals.get(id);
    if (info === undefined || info.requesterId !== caller.principal.id) return { status: "failed", code: "GW_NOT_FOUND", message: `no approval request ${id} of yours` };
    return {
      status: "completed",
      approvalId: id,
      kind: info.kind,
      state: info.status,
      connection: info.connection,
      ...(info.rule === undefined ? {} : { rule: info.rule }),
      approvers: info.approvers,
      expiresAt: info.expiresAt.toISOString(),
      ...(info.decisionReason === undefined ? {} : { reason: info.decisionReason }),
    };
  }

  async #wait(caller: McpCaller, id: string, timeoutMs: number, signal: AbortSignal): Promise<Envelope> {
    const pending = this.#state.pending.get(id, caller.principal.id);
    if (pending?.delivered !== undefined) return pending.delivered;
    const deadline = Date.now() + timeoutMs;
    const stillPending = async (): Promise<Envelope> => {
      const s = await this.#status(caller, id);
      if (s.status !== "completed") return s;
      const approvers = Array.isArray(s["approvers"]) ? s["approvers"].map(String) : [];
      return {
        status: "pending_approval",
        approvalId: id,
        ...(typeof s.connection === "string" ? { connection: s.connection } : {}),
        approvers,
        ...(typeof s["expiresAt"] === "string" ? { expiresAt: s["expiresAt"] } : {}),
        message: `still ${String(s["state"])}: call wait_approval again`,
        wait: { tool: "wait_approval", arguments: { id } },
      };
    };
    if (pending?.result !== undefined) {
      // Wait mode: the held statement itself is waiting in its session; its result is the answer.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), timeoutMs);
        signal.addEventListener("abort", () => r(undefined), { once: true });
      });
      const r = await Promise.race([pending.result, timeout]);
      clearTimeout(timer);
      if (r === undefined) return stillPending();
      pending.delivered = r;
      return r;
    }
    // Async mode, or an access request: poll the request's state until decided or the bound.
    for (;;) {
      const info = await this.#d.approvals.get(id);
      if (info === undefined || info.requesterId !== caller.principal.id) return { status: "failed", code: "GW_NOT_FOUND", message: `no approval request ${id} of yours` };
      if (info.status === "approved") {
        if (pending?.rerun !== undefined) {
          const r = await pending.rerun();
          pending.delivered = r;
          return r;
        }
        return { status: "completed", approvalId: id, state: "approved", connection: info.connection, message: info.kind === "grant" ? `access to ${info.connection} granted` : "approved: run the statement again, unchanged" };
      }
      if (info.status !== "pending") {
        return { status: "denied", connection: info.connection, code: "GW_POLICY_DENIED", ...(info.rule === undefined ? {} : { rule: info.rule }), message: `approval ${id} was ${info.status}${info.decisionReason === undefined ? "" : `: ${info.decisionReason}`}`, fix: "change the request, or ask an approver" };
      }
      if (Date.now() >= deadline || signal.aborted) return stillPending();
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
    }
  }
}

export type { CallToolResult };
