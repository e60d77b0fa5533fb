/**
 * Where the CLI finds the gateway and its credential:
 * - API address: --api URL > AIRLOCK_API > listen.api of the configuration > http://127.0.0.1:8780
 * - configuration: --config FILE > AIRLOCK_CONFIG > ./airlock.yaml when it exists
 * - credential: AIRLOCK_TOKEN > the token `airlock login` saved ($XDG_CONFIG_HOME/airlock/token,
 *   default ~/.config/airlock/token) > <dataDir>/admin.token (dataDir from the configuration,
 *   default ./.airlock)
 * The configuration is only read when one of those actually needs it.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isGatewayError } from "../core/errors.js";
import { readAdminToken } from "../identity/admin.js";
import { loadConfigFile } from "../runtime/config.js";
import type { Config, ListenAddress } from "../runtime/config.js";
import { ApiClient } from "./client.js";
import { CliError } from "./errors.js";
import { tokenFilePath } from "./login.js";

export const DEFAULT_API = "http://127.0.0.1:8780";
export const DEFAULT_CONFIG_FILE = "airlock.yaml";

export interface CliEnv {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export interface ConnectOptions {
  readonly api?: string;
  readonly config?: string;
}

/** The configuration file to use, or undefined when there is none. */
export function configPath(explicit: string | undefined, io: CliEnv): string | undefined {
  const given = explicit ?? nonEmpty(io.env["AIRLOCK_CONFIG"]);
  if (given !== undefined) return resolve(io.cwd, given);
  const local = join(io.cwd, DEFAULT_CONFIG_FILE);
  return existsSync(local) ? local : undefined;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}

/** Load a configuration file, turning its (possibly multi-line) error into one line. */
export function loadConfigOneLine(path: string): Config {
  try {
    return loadConfigFile(path);
  } catch (e) {
    if (isGatewayError(e)) throw new CliError(e.message.split("\n").join("; ").replace(":;", ":"), 1, { cause: e });
    throw e;
  }
}

export function apiUrlFor(address: ListenAddress): string {
  let host = address.host;
  // A wildcard listener is reached over loopback from the gateway's own host.
  if (host === "0.0.0.0" || host === "") host = "127.0.0.1";
  if (host === "::") host = "::1";
  return `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
}

export function connect(options: ConnectOptions, io: CliEnv): ApiClient {
  let config: Config | undefined | null = null; // null = not loaded yet
  const loadConfig = (): Config | undefined => {
    if (config === null) {
      const path = configPath(options.config, io);
      config = path === undefined ? undefined : loadConfigOneLine(path);
    }
    return config;
  };
  const api =
    nonEmpty(options.api) ??
    nonEmpty(io.env["AIRLOCK_API"]) ??
    (() => {
      const listen = loadConfig()?.listen.api;
      return listen === undefined ? DEFAULT_API : apiUrlFor(listen);
    })();
  return new ApiClient(api, async () => {
    const fromEnv = nonEmpty(io.env["AIRLOCK_TOKEN"]);
    if (fromEnv !== undefined) return fromEnv.trim();
    const saved = await readFile(tokenFilePath(io.env), "utf8").catch(() => undefined);
    if (saved !== undefined && saved.trim() !== "") return saved.trim();
    const dataDir = loadConfig()?.dataDir ?? resolve(io.cwd, ".airlock");
    try {
      return await readAdminToken(dataDir);
    } catch (e) {
      if (isGatewayError(e)) throw new CliError(e.message, 1, { cause: e });
      throw e;
    }
  });
}
