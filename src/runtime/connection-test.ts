/**
 * "Test connection" (web console): dial a connection's target with the credential the gateway
 * holds, log in the way the engine would, and close. Nothing is run on the target.
 *
 * The answer never carries a secret: a failure is reported by its GatewayError code and the
 * engine's own secret-free message (the same text a client would see); other errors by their
 * system code (ECONNREFUSED, ETIMEDOUT, …) only.
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import type { Duplex } from "node:stream";
import type { Connection } from "../core/connection.js";
import type { Dialer } from "../core/engine.js";
import { isGatewayError } from "../core/errors.js";
import type { SecretRef } from "../core/secret.js";
import { connectTarget as connectMysql } from "../protocols/mysql/upstream.js";
import { CAP } from "../protocols/mysql/wire/protocol.js";
import { DEFAULT_PACKET_LIMITS } from "../protocols/mysql/wire/packets.js";
import { connectUpstream as connectPostgres } from "../protocols/postgres/upstream.js";
import { connectTarget as connectRedis } from "../protocols/redis/upstream.js";
import { DEFAULT_RESP_LIMITS } from "../protocols/redis/wire/resp.js";

export interface ConnectionTestResult {
  readonly ok: boolean;
  /**
   * What was checked: "login" (authenticated), "tcp" (reachable only: HTTP, Kubernetes, an MCP
   * server over HTTP) or "command" (a stdio MCP server's program exists and is executable; it is
   * not started).
   */
  readonly checked: "login" | "tcp" | "command";
  readonly ms: number;
  readonly code?: string;
  readonly message: string;
}

export interface ConnectionTestDeps {
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly timeoutMs: number;
  readonly maxMessageBytes: number;
}

function close(s: Duplex): void {
  s.destroy();
}

/** The secret-free description of a failure. */
export function describeFailure(e: unknown): { code: string; message: string } {
  if (isGatewayError(e)) return { code: e.code, message: e.message };
  const sys = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof sys === "string" && /^E[A-Z0-9_]{1,40}$/u.test(sys) ? { code: sys, message: `the target could not be reached (${sys})` } : { code: "GW_UPSTREAM_UNAVAILABLE", message: "the target could not be reached" };
}

export async function testConnection(c: Connection, deps: ConnectionTestDeps): Promise<ConnectionTestResult> {
  const started = Date.now();
  const signal = AbortSignal.timeout(deps.timeoutMs + 1000);
  const checked: ConnectionTestResult["checked"] = c.type === "http" || c.type === "kubernetes" ? "tcp" : c.type === "mcp" ? (c.upstream.transport === "http" ? "tcp" : "command") : "login";
  try {
    switch (c.type) {
      case "postgres": {
        const s = await connectPostgres(c, new Map([["application_name", "airlock-test-connection"]]), { dialer: deps.dialer, resolveSecret: deps.resolveSecret, timeoutMs: deps.timeoutMs, maxMessageBytes: deps.maxMessageBytes, signal });
        close(s.socket);
        break;
      }
      case "mysql": {
        const link = await connectMysql(
          c,
          { capabilities: (CAP.LONG_PASSWORD | CAP.PROTOCOL_41 | CAP.TRANSACTIONS | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH) >>> 0, charset: 45, maxPacketSize: 16 * 1024 * 1024, attributes: new Map() },
          { dialer: deps.dialer, resolveSecret: deps.resolveSecret, timeoutMs: deps.timeoutMs, signal, limits: DEFAULT_PACKET_LIMITS },
        );
        link.channel.socket.destroy();
        break;
      }
      case "redis": {
        const link = await connectRedis(c, {}, { dialer: deps.dialer, resolveSecret: deps.resolveSecret, timeoutMs: deps.timeoutMs, signal, limits: DEFAULT_RESP_LIMITS });
        close(link.socket);
        break;
      }
      case "ssh": {
        // Loaded only for an SSH connection: ssh2 costs ~15 MiB of RSS.
        const { connectUpstream: connectSsh } = await import("../protocols/ssh/upstream.js");
        const client = await connectSsh(c, { dialer: deps.dialer, resolveSecret: deps.resolveSecret, timeoutMs: deps.timeoutMs, signal });
        client.end();
        break;
      }
      case "mcp": {
        if (c.upstream.transport === "stdio") {
          await findExecutable(c.upstream.command, c.upstream.cwd);
          break;
        }
        await dialUrl(c.upstream.url, deps, signal);
        break;
      }
      case "http":
      case "kubernetes": {
        await dialUrl(c.type === "http" ? c.baseUrl : c.server, deps, signal);
        break;
      }
    }
    const ms = Date.now() - started;
    const what = { login: "logged in to the target", tcp: "the target accepted a TCP connection", command: "the upstream's program exists and is executable" }[checked];
    return { ok: true, checked, ms, message: `${what} in ${ms} ms${checked === "login" ? "" : checked === "tcp" ? " (no request sent)" : " (not started)"}` };
  } catch (e) {
    const f = describeFailure(e);
    return { ok: false, checked, ms: Date.now() - started, code: f.code, message: f.message };
  }
}

async function dialUrl(url: string, deps: ConnectionTestDeps, signal: AbortSignal): Promise<void> {
  const u = new URL(url);
  const port = u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port);
  close(await deps.dialer.dial({ host: u.hostname, port }, { timeoutMs: deps.timeoutMs, signal }));
}

/** Where `command` resolves (absolute, relative to cwd, or on PATH) to an executable file; throws ENOENT otherwise. */
async function findExecutable(command: string, cwd: string | undefined): Promise<void> {
  const candidates = command.includes("/") ? [isAbsolute(command) ? command : join(cwd ?? process.cwd(), command)] : (process.env["PATH"] ?? "").split(delimiter).filter((d) => d !== "").map((d) => join(d, command));
  for (const file of candidates) {
    try {
      await access(file, constants.X_OK);
      return;
    } catch {
      // the next candidate
    }
  }
  throw Object.assign(new Error("not found"), { code: "ENOENT" });
}
