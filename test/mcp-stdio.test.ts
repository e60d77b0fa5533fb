/**
 * `airlock mcp` on stdio, as an MCP client spawns it: the SDK's StdioClientTransport runs the
 * compiled CLI (compiled here from src/cli/main.ts) with the README's stdio configuration, and
 * the README's HTTP configuration is used as printed by the SDK's Streamable HTTP client.
 * Real gateway, real PostgreSQL 15.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

const repo = resolve(import.meta.dirname, "..");
let server: PgServer;
let t: TestGateway;
let token = "";
let buildDir = "";
let cli = "";

interface McpServerEntry {
  type?: string;
  url?: string;
  headers?: Record<string, string>;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
}

/** The README's JSON blocks that configure an MCP client. */
function readmeConfigs(): McpServerEntry[] {
  const readme = readFileSync(join(repo, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### MCP (Model Context Protocol)"));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? "").filter((b) => b.includes("mcpServers"));
  return blocks.map((b) => (JSON.parse(b) as { mcpServers: Record<string, McpServerEntry> }).mcpServers["airlock"] ?? {});
}

function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => env[name] ?? "");
}

beforeAll(async () => {
  // The CLI, compiled (bin/airlock.js runs dist/, which a test must not depend on).
  mkdirSync(join(repo, ".airlock"), { recursive: true });
  buildDir = mkdtempSync(join(repo, ".airlock", "mcp-cli-"));
  const tsconfig = join(buildDir, "tsconfig.json");
  writeFileSync(tsconfig, JSON.stringify({ extends: join(repo, "tsconfig.build.json"), compilerOptions: { outDir: join(buildDir, "out"), rootDir: repo, incremental: false }, include: [], files: [join(repo, "src/cli/main.ts")] }));
  await promisify(execFile)(join(repo, "node_modules/.bin/tsc"), ["-p", tsconfig], { cwd: repo });
  cli = join(buildDir, "out", "src", "cli", "main.js");

  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["orders"] });
  await server.psql(
    `create table customers (id int primary key, email text not null); insert into customers values (1, 'ann@example.com'), (2, 'bob@example.com');
     alter table customers owner to app;`,
    { database: "orders" },
  );
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
      { name: "orders2", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [{ name: "hide-email", action: "mask", columns: ["customers.email"], strategy: "redact" }],
  });
  token = await t.mint("agent", "1h");
}, 600_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
  rmSync(buildDir, { recursive: true, force: true });
});

describe("README client configurations", () => {
  it("stdio: airlock mcp --connection orders, spawned by the SDK's client, gives that connection's tools and masked rows", async () => {
    const entry = readmeConfigs().find((e) => e.command !== undefined);
    expect(entry?.command).toBe("npx");
    expect(entry?.args?.slice(0, 2)).toEqual(["airlock", "mcp"]);
    const env = { AIRLOCK_TOKEN: token };
    const transport = new StdioClientTransport({
      command: process.execPath,
      // `npx airlock` → the compiled CLI; the rest of the arguments as printed.
      args: [cli, ...(entry?.args?.slice(1) ?? [])],
      env: { PATH: process.env["PATH"] ?? "", ...Object.fromEntries(Object.entries(entry?.env ?? {}).map(([k, v]) => [k, expand(v, env)])), AIRLOCK_API: t.apiUrl },
      stderr: "pipe",
    });
    const c = new Client({ name: "stdio-test", version: "1" });
    await c.connect(transport);
    try {
      const listed = await c.callTool({ name: "list_connections", arguments: {} });
      expect(listed.structuredContent).toEqual({ status: "completed", connections: [{ name: "orders", type: "postgres", tools: ["query", "explain", "describe_schema"] }] });
      const r = await c.callTool({ name: "query", arguments: { connection: "orders", sql: "select id, email from customers order by id" } });
      expect(r.structuredContent).toMatchObject({ status: "completed", rows: [["1", "[EMAIL]"], ["2", "[EMAIL]"]] });
      // Narrowed by --connection: the other connection is not this client's.
      const other = await c.callTool({ name: "query", arguments: { connection: "orders2", sql: "select 1" } });
      expect(other.structuredContent).toMatchObject({ status: "denied", code: "GW_UNKNOWN_CONNECTION" });
    } finally {
      await c.close();
    }
  });

  it("stdio: a bad token fails the client's initialize with the gateway's reason, not a hang", async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [cli, "mcp"], env: { PATH: process.env["PATH"] ?? "", AIRLOCK_TOKEN: "not-a-token", AIRLOCK_API: t.apiUrl }, stderr: "pipe" });
    const c = new Client({ name: "stdio-test", version: "1" });
    await expect(c.connect(transport)).rejects.toThrow(/airlock: .*401|invalid/i);
    await c.close().catch(() => undefined);
  });

  it("http: the README's HTTP entry, with the URL's host and port of this gateway", async () => {
    const entry = readmeConfigs().find((e) => e.type === "http");
    expect(entry?.url).toBe("http://127.0.0.1:8780/mcp");
    const url = new URL(entry?.url ?? "");
    url.port = new URL(t.apiUrl).port;
    const headers = Object.fromEntries(Object.entries(entry?.headers ?? {}).map(([k, v]) => [k, expand(v, { AIRLOCK_TOKEN: token })]));
    const c = new Client({ name: "http-test", version: "1" });
    await c.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
    try {
      const r = await c.callTool({ name: "query", arguments: { connection: "orders", sql: "select email from customers where id = 1" } });
      expect(r.structuredContent).toMatchObject({ status: "completed", rows: [["[EMAIL]"]] });
    } finally {
      await c.close();
    }
  });
});
