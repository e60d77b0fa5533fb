/**
 * The gateway's own MCP client to an upstream server (issue 16, gateway half), with the SDK's
 * Client over Streamable HTTP (the credential injected as headers; the runtime resolves it, an
 * OAuth2 client-credentials token included) or over stdio (a process the gateway spawns, its
 * environment the safe defaults plus the connection's resolved secret references; its stderr is
 * discarded, since it may print them). The agent never sees the credential.
 *
 * The client declares sampling and elicitation, so that an upstream that asks for them is
 * heard and judged (refused unless a policy allows), rather than failing inside the upstream.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CreateMessageRequestSchema, ElicitRequestSchema, type Tool } from "@modelcontextprotocol/sdk/types.js";
import type { McpConnection } from "../../../core/connection.js";
import { GatewayError } from "../../../core/errors.js";
import type { SecretRef } from "../../../core/secret.js";

/** The upstream's credential as headers, and every secret value to scrub from answers. */
export interface UpstreamCredential {
  readonly headers: Readonly<Record<string, string>>;
  /** Query parameters to add to the URL (an http auth of kind `query`). */
  readonly query?: readonly (readonly [string, string])[];
  readonly secrets: readonly string[];
}

export interface UpstreamDeps {
  readonly credential: (c: McpConnection) => Promise<UpstreamCredential>;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly version: string;
}

/** What the upstream asks of the agent's side; each answers or throws (a refusal). */
export interface UpstreamRequestHandlers {
  readonly sampling: (params: Record<string, unknown>) => Promise<Record<string, unknown>>;
  readonly elicitation: (params: Record<string, unknown>) => Promise<Record<string, unknown>>;
}

export interface Upstream {
  readonly client: Client;
  readonly secrets: readonly string[];
  /**
   * For one request: a signal aborted (reason: a GW_LIMIT GatewayError) when the upstream sends a
   * message over the cap while it is in flight; `release` when it is done.
   */
  guard(): { readonly signal: AbortSignal; release(): void };
  close(): Promise<void>;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

function tooLarge(c: McpConnection, max: number): GatewayError {
  return new GatewayError("GW_LIMIT", `the upstream MCP server of ${c.name} sent a message larger than ${max} bytes (the connection's maxMessageBytes), so it was refused`);
}

/**
 * A fetch whose response bodies are bounded (Streamable HTTP): a JSON answer at `max` bytes, an
 * SSE stream at `max` bytes per event (between blank lines). Over it the body errors (nothing more
 * is buffered) and `tripped` is told.
 */
export function cappedFetch(max: number, tripped: () => GatewayError): FetchLike {
  return async (url, init) => {
    const res = await fetch(url, init);
    if (res.body === null) return res;
    const sse = (res.headers.get("content-type") ?? "").toLowerCase().includes("text/event-stream");
    let count = 0;
    let last = 0;
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          if (!sse) count += chunk.length;
          else {
            for (const b of chunk) {
              if (b === 13) continue;
              // An event ends at a blank line (\n\n, \r\n\r\n): the count starts again.
              count = b === 10 && last === 10 ? 0 : count + 1;
              last = b;
            }
          }
          if (count > max) {
            controller.error(tripped());
            return;
          }
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** Tools of one upstream, every page, bounded. */
const MAX_TOOL_PAGES = 20;
const MAX_TOOLS = 5_000;

export async function openUpstream(c: McpConnection, deps: UpstreamDeps, handlers: UpstreamRequestHandlers | undefined): Promise<Upstream> {
  const client = new Client({ name: "airlock-gateway", version: deps.version }, { capabilities: handlers === undefined ? {} : { sampling: {}, elicitation: {} } });
  if (handlers !== undefined) {
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => (await handlers.sampling(request.params as Record<string, unknown>)) as never);
    client.setRequestHandler(ElicitRequestSchema, async (request) => (await handlers.elicitation(request.params as Record<string, unknown>)) as never);
  }
  const u = c.upstream;
  const max = c.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const inFlight = new Set<AbortController>();
  const trip = (): GatewayError => {
    const e = tooLarge(c, max);
    for (const a of inFlight) a.abort(e);
    return e;
  };
  let secrets: readonly string[] = [];
  try {
    switch (u.transport) {
      case "http": {
        const cred = await deps.credential(c);
        secrets = cred.secrets;
        const url = new URL(u.url);
        for (const [k, v] of cred.query ?? []) url.searchParams.append(k, v);
        await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { ...cred.headers }, redirect: "error" }, fetch: cappedFetch(max, trip) }), { timeout: c.timeoutMs });
        break;
      }
      case "stdio": {
        const env: Record<string, string> = { ...getDefaultEnvironment() };
        const values: string[] = [];
        for (const [k, ref] of Object.entries(u.env)) {
          const v = await deps.resolveSecret(ref);
          env[k] = v;
          if (ref.kind !== "literal") values.push(v);
        }
        secrets = values;
        // The SDK's line buffer is bounded by maxBufferSize: over it the transport closes, and
        // the calls in flight fail (the upstream is restarted by the next session).
        await client.connect(new StdioClientTransport({ command: u.command, args: [...u.args], env, stderr: "ignore", maxBufferSize: max, ...(u.cwd === undefined ? {} : { cwd: u.cwd }) }), { timeout: c.timeoutMs });
        break;
      }
    }
  } catch (e) {
    await client.close().catch(() => undefined);
    if (e instanceof GatewayError) throw e;
    throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the upstream MCP server of ${c.name} could not be reached or did not initialize`, { cause: e });
  }
  return {
    client,
    secrets,
    guard: () => {
      const a = new AbortController();
      inFlight.add(a);
      return { signal: a.signal, release: () => inFlight.delete(a) };
    },
    close: () => client.close().catch(() => undefined),
  };
}

/** Every tool the upstream lists (following cursors), bounded. */
export async function listAllTools(client: Client, timeoutMs: number): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_TOOL_PAGES; page++) {
    const r = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: timeoutMs });
    tools.push(...r.tools);
    if (tools.length > MAX_TOOLS) throw new GatewayError("GW_LIMIT", `the upstream lists more than ${MAX_TOOLS} tools`);
    cursor = r.nextCursor;
    if (cursor === undefined) return tools;
  }
  throw new GatewayError("GW_LIMIT", `the upstream's tool list has more than ${MAX_TOOL_PAGES} pages`);
}
