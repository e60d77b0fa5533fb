/**
 * HashiCorp Vault / OpenBao client for `vault:MOUNT/PATH#FIELD` secret references (issue 20):
 * KV version 2 reads (`GET /v1/MOUNT/data/PATH`), authenticated with a token, AppRole
 * (`POST /v1/auth/MOUNT/login` with role_id and secret_id) or Kubernetes
 * (`POST /v1/auth/MOUNT/login` with the pod's service-account JWT and a role).
 *
 * Values are cached per reference for `refreshMs` (rotation without restart: a value read after
 * that is fetched again, so the next target login uses a rotated secret while live sessions
 * continue on the connection they have). A login token is reused until Vault refuses it (403)
 * or its lease runs out, then the client logs in again once. Nothing read from Vault, nor the
 * client's own token, is ever put into an error or a log line: errors name the reference and
 * Vault's HTTP status only.
 */
import { Agent, request as httpsRequest } from "node:https";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";

export type VaultAuth =
  | { readonly method: "token"; readonly token: () => Promise<string> }
  | { readonly method: "approle"; readonly mount: string; readonly roleId: () => Promise<string>; readonly secretId: () => Promise<string> }
  | { readonly method: "kubernetes"; readonly mount: string; readonly role: string; readonly jwt: () => Promise<string> };

export interface VaultOptions {
  /** e.g. https://vault.internal:8200 */
  readonly address: string;
  /** Vault Enterprise / OpenBao namespace (X-Vault-Namespace). */
  readonly namespace?: string;
  /** PEM CA bundle for an https address. */
  readonly ca?: string;
  readonly auth: VaultAuth;
  readonly timeoutMs: number;
  /** How long a value read is used before it is read again. */
  readonly refreshMs: number;
  /** Called with every value read, so that the log scrubber knows it. */
  readonly onValue?: (value: string) => void;
}

/** Vault answers are bounded: a KV secret is small. */
const MAX_RESPONSE_BYTES = 1_048_576;

const loginAnswer = z.object({ auth: z.object({ client_token: z.string().min(1), lease_duration: z.number().int().nonnegative().optional() }) });
const kvAnswer = z.object({ data: z.object({ data: z.record(z.string(), z.unknown()).nullable() }) });

interface Cached {
  readonly data: Readonly<Record<string, unknown>>;
  readonly until: number;
}

class VaultHttpError extends Error {
  constructor(readonly status: number) {
    super(`vault answered ${status}`);
  }
}

export class VaultClient {
  readonly #o: VaultOptions;
  readonly #agent: Agent | undefined;
  #token: { readonly value: string; readonly until: number } | undefined;
  #login: Promise<string> | undefined;
  /** Per KV path (mount + path), so that two fields of one secret are one read. */
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<Cached>>();

  constructor(o: VaultOptions) {
    this.#o = o;
    const url = new URL(o.address);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new GatewayError("GW_CONFIG", "secrets.vault.address must be an http(s) URL");
    this.#agent = url.protocol === "https:" ? new Agent({ keepAlive: true, ...(o.ca === undefined ? {} : { ca: o.ca }) }) : undefined;
  }

  /** The value of FIELD in the KV v2 secret MOUNT/PATH. */
  async read(ref: { readonly mount: string; readonly path: string; readonly field: string }, describe: string): Promise<string> {
    const key = `${ref.mount}\u0000${ref.path}`;
    let entry = this.#cache.get(key);
    if (entry === undefined || Date.now() >= entry.until) {
      let pending = this.#inflight.get(key);
      if (pending === undefined) {
        pending = this.#fetch(ref.mount, ref.path, describe).finally(() => this.#inflight.delete(key));
        this.#inflight.set(key, pending);
      }
      entry = await pending;
    }
    const value = entry.data[ref.field];
    if (typeof value !== "string" || value === "") throw unresolved(describe, `the secret has no field "${ref.field}" with a text value`);
    return value;
  }

  async #fetch(mount: string, path: string, describe: string): Promise<Cached> {
    const apiPath = `/v1/${encodeURIComponent(mount)}/data/${path.split("/").map(encodeURIComponent).join("/")}`;
    for (let attempt = 0; ; attempt++) {
      const token = await this.#currentToken(describe);
      try {
        const body = await this.#call("GET", apiPath, undefined, token);
        const parsed = kvAnswer.safeParse(body);
        if (!parsed.success || parsed.data.data.data === null) throw unresolved(describe, "Vault's answer is not a KV v2 secret (or the secret version is deleted)");
        const data = parsed.data.data.data;
        for (const v of Object.values(data)) if (typeof v === "string" && v !== "") this.#o.onValue?.(v);
        const entry = { data, until: Date.now() + this.#o.refreshMs };
        this.#cache.set(`${mount}\u0000${path}`, entry);
        return entry;
      } catch (e) {
        if (e instanceof VaultHttpError) {
          // A token Vault no longer accepts (revoked, expired): log in again, once (for a static
          // token: read its reference again, e.g. a file Vault Agent rewrites).
          if (e.status === 403 && attempt === 0) {
            this.#token = undefined;
            continue;
          }
          throw unresolved(describe, e.status === 404 ? "no such secret in Vault" : e.status === 403 ? "Vault refused access (403)" : `Vault answered ${e.status}`);
        }
        if (e instanceof GatewayError) throw e;
        throw unresolved(describe, "Vault could not be reached", e);
      }
    }
  }

  async #currentToken(describe: string): Promise<string> {
    const t = this.#token;
    if (t !== undefined && Date.now() < t.until) return t.value;
    this.#login ??= this.#doLogin(describe).finally(() => (this.#login = undefined));
    return this.#login;
  }

  async #doLogin(describe: string): Promise<string> {
    const auth = this.#o.auth;
    let value: string;
    let leaseMs = Number.POSITIVE_INFINITY;
    try {
      switch (auth.method) {
        case "token":
          value = await auth.token();
          break;
        case "approle":
        case "kubernetes": {
          const payload =
            auth.method === "approle" ? { role_id: await auth.roleId(), secret_id: await auth.secretId() } : { role: auth.role, jwt: await auth.jwt() };
          const answer = loginAnswer.safeParse(await this.#call("POST", `/v1/auth/${encodeURIComponent(auth.mount)}/login`, payload, undefined));
          if (!answer.success) throw unresolved(describe, `Vault's ${auth.method} login answer has no client token`);
          value = answer.data.auth.client_token;
          const lease = answer.data.auth.lease_duration;
          // Renew by logging in again a little before the lease ends (0 = no expiry).
          if (lease !== undefined && lease > 0) leaseMs = Math.max(1_000, lease * 1000 * 0.9);
          break;
        }
      }
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      if (e instanceof VaultHttpError) throw unresolved(describe, `the Vault ${auth.method} login was refused (${e.status})`);
      throw unresolved(describe, "Vault could not be reached for login", e);
    }
    this.#o.onValue?.(value);
    this.#token = { value, until: Date.now() + leaseMs };
    return value;
  }

  #call(method: "GET" | "POST", path: string, payload: unknown, token: string | undefined): Promise<unknown> {
    const url = new URL(path, this.#o.address);
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const headers: Record<string, string> = { accept: "application/json" };
    if (token !== undefined) headers["x-vault-token"] = token;
    if (this.#o.namespace !== undefined) headers["x-vault-namespace"] = this.#o.namespace;
    if (body !== undefined) headers["content-type"] = "application/json";
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, timeout: this.#o.timeoutMs, ...(this.#agent === undefined ? {} : { agent: this.#agent }) }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error("vault answer too large"));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            reject(new VaultHttpError(status));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown);
          } catch (e) {
            reject(e instanceof Error ? e : new Error("invalid JSON"));
          }
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("vault request timed out")));
      req.on("error", reject);
      req.end(body);
    });
  }

  close(): void {
    this.#agent?.destroy();
    this.#cache.clear();
  }
}

function unresolved(describe: string, why: string, cause?: unknown): GatewayError {
  return new GatewayError("GW_SECRET_UNRESOLVED", `cannot resolve secret ${describe}: ${why}`, cause === undefined ? {} : { cause });
}
