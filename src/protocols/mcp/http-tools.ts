/**
 * The MCP tools that reach targets over the gateway's own HTTP listener (issue 16):
 * `http_request` for `http` connections and `kubernetes` for clusters (the listener's Kubernetes
 * kind). Each call is one loopback request with the caller's own token (targets/http.ts); the
 * engine judges, holds, masks, records and audits it. This file only shapes arguments and
 * envelopes.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { ConnectionType } from "../../core/connection.js";
import { toToolResult, type Envelope } from "./envelope.js";
import { runHttp, type HttpAnswer, type HttpCall } from "./targets/http.js";
import type { Held, LoopbackCaller, LoopbackEndpoint, Refused, TargetError } from "./targets/types.js";

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** What the MCP service lends a tool family: its checks, loopback identity and envelopes. */
export interface ToolContext {
  readonly httpEndpoint?: LoopbackEndpoint & { readonly tls: boolean };
  readonly target: (connection: string, type: ConnectionType) => Envelope | undefined;
  readonly loopback: (extra: Extra, tool: string) => LoopbackCaller;
  readonly pending: (connection: string, held: Held<unknown>, entry: { result?: Promise<Envelope>; rerun?: () => Promise<Envelope> }) => Promise<Envelope>;
  readonly refusal: (connection: string, r: Refused | TargetError) => Envelope;
  readonly connectionArg: (types: readonly ConnectionType[]) => z.ZodString;
}

/** Response body bytes a call keeps (the engine has masked them already). */
export const MAX_HTTP_BODY_BYTES = 1024 * 1024;
const MAX_REQUEST_BODY_CHARS = 1024 * 1024;

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** The answer as a completed envelope: status, the headers that say what it is, the body. */
function answered(connection: string, a: HttpAnswer, extra: Record<string, unknown> = {}): Envelope {
  return {
    status: "completed",
    connection,
    ...extra,
    httpStatus: a.status,
    headers: a.headers,
    ...(a.json !== undefined ? { json: a.json } : { body: a.text ?? "" }),
    truncated: a.truncated,
    ...(a.truncated ? { note: `the body was cut at ${MAX_HTTP_BODY_BYTES} bytes; ask for less (a query parameter, a range)` } : {}),
  };
}

/** One loopback request as an envelope; a held one re-sends itself once approved (async mode). */
export async function httpEnvelope(ctx: ToolContext, extra: Extra, tool: string, type: ConnectionType, call: HttpCall, shape: (a: HttpAnswer) => Envelope): Promise<Envelope> {
  const wrong = ctx.target(call.connection, type);
  if (wrong !== undefined) return wrong;
  const endpoint = ctx.httpEndpoint;
  if (endpoint === undefined) return { status: "failed", connection: call.connection, code: "GW_UNSUPPORTED", message: `the gateway has no HTTP listener (listen.http), which the ${tool} tool uses` };
  const run = async (): Promise<Envelope> => {
    const outcome = await runHttp(endpoint, ctx.loopback(extra, tool), call);
    switch (outcome.type) {
      case "response":
        return shape(outcome);
      case "held":
        // Wait mode: the request itself waits in its session and its answer is wait_approval's; async mode: re-sent once approved.
        return ctx.pending(
          call.connection,
          outcome,
          outcome.result === undefined ? { rerun: run } : { result: outcome.result.then((r) => (r.type === "response" ? shape(r) : ctx.refusal(call.connection, r))) },
        );
      case "refused":
      case "error":
        return ctx.refusal(call.connection, outcome);
    }
  };
  return run();
}

export function registerHttpTools(server: McpServer, ctx: ToolContext, which: { readonly http: boolean }): void {
  if (which.http) {
    server.registerTool(
      "http_request",
      {
        description:
          "Send one HTTP request to an HTTP connection through Airlock (judged by policy, possibly held for approval; the response masked). " +
          "The path is relative to the connection; Airlock adds the target's credential, never yours. The answer: httpStatus, headers, and json (JSON bodies) or body (text).",
        inputSchema: {
          connection: ctx.connectionArg(["http"]),
          method: z.enum(METHODS).optional().describe("default GET"),
          path: z.string().min(1).max(8192).describe("e.g. /v1/users/42"),
          query: z.record(z.string().max(200), z.union([z.string().max(8192), z.array(z.string().max(8192)).max(100)])).optional(),
          headers: z.record(z.string().max(100), z.string().max(8192)).optional().describe("request headers (Authorization is never forwarded)"),
          json: z.unknown().optional().describe("a JSON body (sent as application/json)"),
          body: z.string().max(MAX_REQUEST_BODY_CHARS).optional().describe("a text body"),
        },
      },
      async (args, extra) => {
        if (args.json !== undefined && args.body !== undefined) return toToolResult({ status: "failed", code: "GW_BAD_REQUEST", message: "give json or body, not both" });
        if (args.json !== undefined && JSON.stringify(args.json).length > MAX_REQUEST_BODY_CHARS) {
          return toToolResult({ status: "failed", code: "GW_LIMIT", message: `the JSON body is over ${MAX_REQUEST_BODY_CHARS} characters` });
        }
        const call: HttpCall = {
          connection: args.connection,
          method: args.method ?? "GET",
          path: args.path,
          ...(args.query === undefined ? {} : { query: args.query }),
          ...(args.headers === undefined ? {} : { headers: args.headers }),
          ...(args.json !== undefined ? { body: { type: "json" as const, value: args.json } } : args.body !== undefined ? { body: { type: "text" as const, value: args.body } } : {}),
          maxBytes: MAX_HTTP_BODY_BYTES,
        };
        return toToolResult(await httpEnvelope(ctx, extra, "http_request", "http", call, (a) => answered(args.connection, a)));
      },
    );
  }
}
