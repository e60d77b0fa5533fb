import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";

export interface UpstreamOptions {
  readonly description: () => string;
  readonly credential: (extra: unknown) => string;
}
export function buildUpstream(opts: UpstreamOptions): McpServer;

export interface HttpUpstream {
  readonly url: string;
  /** Authorization headers the upstream received. */
  readonly received: string[];
  close(): Promise<void>;
}
export function startHttpUpstream(opts: {
  readonly token?: string;
  /** Accept a request by its Authorization header (instead of a fixed token). */
  readonly authorize?: (authorization: string) => Promise<boolean>;
  readonly description: () => string;
}): Promise<HttpUpstream>;
