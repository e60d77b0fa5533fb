/**
 * A small client for the control-plane API. node:http (not fetch) so that every request has
 * a timeout, a capped response size, and no keep-alive socket that would hold the CLI open.
 * Answers are parsed with zod at this boundary.
 */
import { request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { z } from "zod";
import { CliError } from "./errors.js";

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;

const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), rule: z.string().optional() }),
});

/** Why a connection failed, in words (never the raw error object). */
function networkReason(e: unknown): string {
  const code = errnoCode(e);
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ETIMEDOUT":
      return "timed out";
    case "ECONNRESET":
      return "connection reset";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
    case undefined:
      return "network error";
    default:
      return code;
  }
}

function errnoCode(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  if ("code" in e && typeof e.code === "string") return e.code;
  // Connecting to a name with several addresses fails with an AggregateError of them.
  if (e instanceof AggregateError) return errnoCode(e.errors[0]);
  return undefined;
}

export class ApiClient {
  readonly baseUrl: URL;
  readonly #credential: () => Promise<string>;

  constructor(baseUrl: string, credential: () => Promise<string>) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new CliError(`invalid API address "${baseUrl}" (expected e.g. http://127.0.0.1:8780)`, 2);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new CliError(`invalid API address "${baseUrl}" (use http:// or https://)`, 2);
    }
    if (!url.pathname.endsWith("/")) url.pathname += "/";
    this.baseUrl = url;
    this.#credential = credential;
  }

  /** The credential this client presents (for `airlock mcp`, which forwards it as its bearer). */
  credential(): Promise<string> {
    return this.#credential();
  }

  /** The address as users typed it, for messages. */
  get display(): string {
    return this.baseUrl.href.replace(/\/$/, "");
  }

  async request<T>(method: "GET" | "POST", path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
    const url = new URL(path.replace(/^\//, ""), this.baseUrl);
    const token = await this.#credential();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), "utf8");
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    const { status, text } = await this.#send(url, method, headers, payload);
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      throw new CliError(`unexpected answer from the gateway API at ${this.display} (HTTP ${status}, not JSON)`);
    }
    if (status < 200 || status > 299) {
      const err = errorBody.safeParse(json);
      if (err.success) {
        const rule = err.data.error.rule === undefined ? "" : ` (rule ${err.data.error.rule})`;
        throw new CliError(`${err.data.error.message}${rule}`);
      }
      throw new CliError(`the gateway API answered HTTP ${status}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new CliError(`unexpected answer from the gateway API at ${this.display}`);
    return parsed.data;
  }

  /** GET a non-JSON resource (e.g. an asciicast): status and body text. */
  async getText(path: string): Promise<{ status: number; text: string }> {
    const url = new URL(path.replace(/^\//, ""), this.baseUrl);
    const token = await this.#credential();
    return this.#send(url, "GET", { authorization: `Bearer ${token}` }, undefined);
  }

  #send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    payload: Buffer | undefined,
  ): Promise<{ status: number; text: string }> {
    const fail = (e: unknown): CliError => new CliError(`cannot reach the gateway API at ${this.display}: ${networkReason(e)}`, 1, { cause: e });
    return new Promise((resolve, reject) => {
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const req = send(url, { method, headers, agent: false, timeout: REQUEST_TIMEOUT_MS }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy();
            reject(new CliError(`the gateway API answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", (e) => {
          reject(fail(e));
        });
      });
      req.on("timeout", () => {
        req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" }));
      });
      req.on("error", (e) => {
        reject(fail(e));
      });
      req.end(payload);
    });
  }
}
