/**
 * The one HTTP call every secret-store client makes (Vault, AWS Secrets Manager, Google Secret
 * Manager, Azure Key Vault, their token endpoints): bounded answer size, a timeout, JSON parsed
 * as `unknown` for the caller's schema. A non-2xx answer is a `SecretHttpError` carrying the
 * status only: a store's error body may echo what was sent, so it is never kept.
 */
import { Agent, request as httpsRequest } from "node:https";
import { request as httpRequest, type IncomingMessage } from "node:http";

/** Secret-store answers are small (a secret, a token): anything larger is refused. */
export const MAX_SECRET_RESPONSE_BYTES = 1_048_576;

export class SecretHttpError extends Error {
  /** `code`: the store's error code word (e.g. ResourceNotFoundException), never its message. */
  constructor(
    readonly status: number,
    readonly code?: string,
  ) {
    super(`the secret store answered ${status}${code === undefined ? "" : ` ${code}`}`);
  }
}

/**
 * The error code word of a store's error body: AWS `__type`, Azure `error.code`, Google
 * `error.status`, OAuth `error`. Only a short identifier is kept (messages may echo input).
 */
export function errorCodeOf(text: string): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const b = body as Record<string, unknown>;
  const err = b["error"];
  const candidates = [b["__type"], typeof err === "object" && err !== null ? (err as Record<string, unknown>)["code"] : undefined, typeof err === "object" && err !== null ? (err as Record<string, unknown>)["status"] : undefined, err];
  for (const c of candidates) {
    if (typeof c !== "string") continue;
    const word = c.slice(c.lastIndexOf("#") + 1);
    if (/^[A-Za-z][A-Za-z0-9_.-]{0,79}$/u.test(word)) return word;
  }
  return undefined;
}

export interface SecretHttpRequest {
  readonly method: "GET" | "POST" | "PUT";
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  /** Sent as is (the caller sets content-type). */
  readonly body?: string;
  readonly timeoutMs: number;
  readonly agent?: Agent;
}

/** https agent with an optional private CA (keep-alive: one store, many reads). */
export function secretStoreAgent(address: URL, ca: string | undefined): Agent | undefined {
  return address.protocol === "https:" ? new Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) }) : undefined;
}

export function secretHttp(r: SecretHttpRequest): Promise<unknown> {
  const send = r.url.protocol === "https:" ? httpsRequest : httpRequest;
  const headers: Record<string, string> = { accept: "application/json", ...r.headers };
  if (r.body !== undefined) headers["content-length"] = String(Buffer.byteLength(r.body));
  return new Promise((resolve, reject) => {
    const req = send(r.url, { method: r.method, headers, timeout: r.timeoutMs, ...(r.agent === undefined ? {} : { agent: r.agent }) }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_SECRET_RESPONSE_BYTES) {
          req.destroy(new Error("the secret store's answer is too large"));
          return;
        }
        chunks.push(c);
      });
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        const text = Buffer.concat(chunks).toString("utf8");
        if (status < 200 || status > 299) {
          reject(new SecretHttpError(status, errorCodeOf(text)));
          return;
        }
        if (text === "") {
          resolve(undefined);
          return;
        }
        try {
          resolve(JSON.parse(text) as unknown);
        } catch {
          reject(new Error("the secret store's answer is not JSON"));
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("the secret store did not answer in time")));
    req.on("error", reject);
    req.end(r.body);
  });
}
