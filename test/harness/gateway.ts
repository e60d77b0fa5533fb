/**
 * Starts a real Airlock gateway in-process for integration tests: throwaway data directory,
 * loopback listeners on free ports, and every log line captured so tests can inspect them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/observability/logger.js";
import { parseConfig, type RawConfig } from "../../src/runtime/config.js";
import { startGateway, type RunningGateway } from "../../src/runtime/gateway.js";
import { runClient } from "./postgres.js";

export interface TestGateway {
  readonly gw: RunningGateway;
  readonly dataDir: string;
  readonly pgPort: number;
  readonly apiUrl: string;
  /** Every log line the gateway wrote (pino JSON). */
  logs(): string;
  mint(serviceAccount: string, ttl?: string): Promise<string>;
  api(path: string, init?: { method?: string; body?: unknown; token?: string }): Promise<{ status: number; body: unknown; text: string }>;
  /** Run psql against the gateway with the token as the password. */
  psql(
    connection: string,
    token: string,
    args: readonly string[],
    options?: { input?: string; sslmode?: string; port?: number; env?: NodeJS.ProcessEnv },
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** `options.dataDir`: start on an existing data directory (a restart); it is then kept at stop. */
export async function startTestGateway(raw: Omit<RawConfig, "dataDir" | "listen"> & { listen?: RawConfig["listen"] }, options: { readonly dataDir?: string } = {}): Promise<TestGateway> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "airlock-gw-"));
  const lines: string[] = [];
  const logger = createLogger({ level: "trace", destination: { write: (s: string) => void lines.push(s) } });
  const config = parseConfig({
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
    ...raw,
    dataDir,
  });
  const gw = await startGateway(config, { logger });
  const pgPort = gw.addresses.postgres?.port ?? 0;
  const apiUrl = `http://127.0.0.1:${gw.addresses.api?.port ?? 0}`;
  const api: TestGateway["api"] = async (path, init = {}) => {
    const res = await fetch(apiUrl + path, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers: {
        authorization: `Bearer ${init.token ?? gw.adminToken}`,
        ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, body, text };
  };
  return {
    gw,
    dataDir,
    pgPort,
    apiUrl,
    logs: () => lines.join(""),
    async mint(serviceAccount, ttl = "15m") {
      const r = await api("/v1/tokens", { body: { serviceAccount, ttl } });
      if (r.status !== 201) throw new Error(`mint failed: ${r.status} ${r.text}`);
      return (r.body as { token: string }).token;
    },
    api,
    psql(connection, token, args, options = {}) {
      return runClient(
        "psql",
        [
          "-X",
          "-v",
          "ON_ERROR_STOP=1",
          `host=127.0.0.1 port=${options.port ?? pgPort} dbname=${connection} user=agent sslmode=${options.sslmode ?? "disable"} connect_timeout=10`,
          ...args,
        ],
        { env: { ...process.env, PGPASSWORD: token, PGAPPNAME: "psql-test", ...options.env }, ...(options.input === undefined ? {} : { input: options.input }) },
      );
    },
    async stop() {
      await gw.close();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
