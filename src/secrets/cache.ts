/**
 * The cache every remote secret store shares (Vault, AWS, Google, Azure): one document per key
 * (a KV secret, a secret version's text), used for `refreshMs` and then read again, so that a
 * rotated secret is used by the next target login without a restart while live sessions keep
 * the connection they have. Concurrent reads of one key are one fetch; a failed fetch is not
 * cached (the next login tries again).
 */
import { GatewayError } from "../core/errors.js";

/** What a store returns: a secret's text, or a document of named fields (KV v2). */
export type SecretDocument = string | Readonly<Record<string, unknown>>;

export class SecretCache {
  readonly #refreshMs: number;
  readonly #entries = new Map<string, { readonly doc: SecretDocument; readonly until: number }>();
  readonly #inflight = new Map<string, Promise<SecretDocument>>();

  constructor(refreshMs: number) {
    this.#refreshMs = refreshMs;
  }

  async get(key: string, fetch: () => Promise<SecretDocument>): Promise<SecretDocument> {
    const entry = this.#entries.get(key);
    if (entry !== undefined && Date.now() < entry.until) return entry.doc;
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = fetch()
        .then((doc) => {
          this.#entries.set(key, { doc, until: Date.now() + this.#refreshMs });
          return doc;
        })
        .finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * The value a reference names: the whole text without a field; with `#FIELD`, that key of the
 * document (a text secret is parsed as a JSON object first, as AWS and Google console "key/value"
 * secrets are stored). Errors say what is missing, never the value.
 */
export function pickField(doc: SecretDocument, field: string | undefined, describe: string): string {
  if (field === undefined) {
    if (typeof doc !== "string") throw secretUnresolved(describe, "the secret has several fields: name one with #FIELD");
    if (doc === "") throw secretUnresolved(describe, "the secret is empty");
    return doc;
  }
  let record: Readonly<Record<string, unknown>>;
  if (typeof doc === "string") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(doc);
    } catch {
      throw secretUnresolved(describe, `#${field} needs a JSON object secret, and this secret is not JSON`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw secretUnresolved(describe, `#${field} needs a JSON object secret`);
    record = parsed as Record<string, unknown>;
  } else {
    record = doc;
  }
  const value = Object.hasOwn(record, field) ? record[field] : undefined;
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw secretUnresolved(describe, `the secret has no field "${field}" with a text value`);
}

export function secretUnresolved(describe: string, why: string, cause?: unknown): GatewayError {
  return new GatewayError("GW_SECRET_UNRESOLVED", `cannot resolve secret ${describe}: ${why}`, cause === undefined ? {} : { cause });
}
