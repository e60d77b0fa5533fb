/**
 * Connections registered at run time from the web console, next to the configuration's.
 *
 * The effective set is one live map (`map`), plus a list (`list`) and a list of names (`names`)
 * kept equal to it and updated in place, that the access evaluator, session admission, the SQL
 * policy evaluator, the HTTP engine, the MCP service, access requests and group re-checks look
 * connections up in (core/connection.ts ConnectionSource). A registered connection is usable by
 * the next client at once, without a restart; a disabled one is refused to the next client
 * ("unknown connection").
 *
 * Invariants:
 * - Kept in the store (store/console-documents.ts, kind "connection"), so every gateway sharing
 *   the store sees the same set: each gateway reads it again every `refreshMs` (and at once
 *   after its own changes). The store is the truth; memory is a cache of it.
 * - The same validation as the YAML: the entry is parsed by parseConfig as a one-connection
 *   configuration (names, types, ports, host keys, sslmode, …), on write and again on every read.
 * - Connections from the configuration file are read-only here: a console entry cannot take or
 *   change a configured name (a stored entry with a configured name is skipped, with a warning).
 * - Secrets are either references (`env:NAME`, `file:PATH`, kept as written) or values, which are
 *   sealed (envelope encryption, secrets/secret-box.ts) before they are written anywhere; a value is
 *   never returned by the API again (views show `stored:<encrypted>`). A literal secret inside the
 *   connection document itself is refused: values go in `secrets`. Gateways sharing a store need
 *   the same key (secrets.storeKey / AIRLOCK_SECRET_KEY) to open each other's sealed values;
 *   `rotateKey` re-wraps every stored data key under the current key.
 * - An older gateway kept these in `<dataDir>/console-connections.json`: at start its entries are
 *   copied into the store (entries already there win) and the file is renamed `….migrated`.
 */
import { existsSync, readFileSync, renameSync } from "node:fs";
import type { Logger } from "pino";
import { z } from "zod";
import type { ConnectionView } from "../api/console-schemas.js";
import type { Connection } from "../core/connection.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { SecretRef } from "../core/secret.js";
import { KekUnavailable } from "../secrets/kek.js";
import type { SecretBox } from "../secrets/secret-box.js";
import type { ConsoleDocumentStore } from "../store/console-documents.js";
import { parseConfig, type Config } from "./config.js";
import { connectionView } from "./console.js";

/** Fields of a connection that hold secrets (config.ts). */
export const SECRET_FIELDS = ["password", "privateKey", "passphrase", "sslRootCert", "tlsCa"] as const;
type SecretField = (typeof SECRET_FIELDS)[number];
const PLACEHOLDER = "airlock-sealed-secret";
/** How often the store is read again for other gateways' changes. */
export const CONSOLE_REFRESH_MS = 2000;

/**
 * Re-read what the console keeps in the store every `ms` (0: never), in the background; a read
 * that fails is logged as `what` and tried again at the next tick. Returns the stop function.
 */
export function refreshEvery(refresh: () => Promise<void>, ms: number, logger: Logger, what: string): () => void {
  if (ms <= 0) return () => undefined;
  const timer = setInterval(() => {
    refresh().catch((e: unknown) => logger.warn({ err: isGatewayError(e) ? e.message : "store error" }, `${what}: could not read the store`));
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}

export const registerBody = z.strictObject({
  /** The connection as it would be written in the YAML (secrets as env:/file: references only). */
  connection: z.record(z.string(), z.unknown()),
  /** Secret values to store encrypted, by field (password, privateKey, …). */
  secrets: z.partialRecord(z.enum(SECRET_FIELDS), z.string().min(1).max(64 * 1024)).default({}),
});
export type RegisterBody = z.infer<typeof registerBody>;

const storedEntry = z.object({
  raw: z.record(z.string(), z.unknown()),
  sealed: z.partialRecord(z.enum(SECRET_FIELDS), z.string()),
  disabled: z.boolean(),
  updatedAt: z.string(),
  updatedBy: z.string(),
});
type StoredEntry = z.infer<typeof storedEntry>;
const storedFile = z.object({ version: z.literal(1), connections: z.array(storedEntry) });

function openedKey(purpose: string, sealed: string): string {
  return `${purpose}\u0000${sealed}`;
}

/** What `airlock secrets rotate-key` did. */
export interface RotateKeyResult {
  /** The public id of the key everything is now wrapped by. */
  readonly keyId: string;
  /** Console connections with stored secrets under that key now. */
  connections: number;
  /** Secrets whose data key was re-wrapped (or that were sealed anew from the older format). */
  rewrapped: number;
  /** Secrets already wrapped by that key. */
  unchanged: number;
  /** Connections whose secrets no key of this gateway opens (left as they are). */
  readonly failed: string[];
}

export interface LiveConnectionsOptions {
  readonly config: Config;
  readonly docs: ConsoleDocumentStore;
  readonly box: SecretBox;
  readonly logger: Logger;
  /** The file an older gateway kept console connections in (migrated into the store at start). */
  readonly legacyFile?: string;
  readonly refreshMs?: number;
}

export class LiveConnections {
  /** The effective, enabled connections: configuration first, then the console's. */
  readonly map = new Map<string, Connection>();
  /** The same connections as a list (updated in place: holders of the reference see changes). */
  readonly list: Connection[] = [];
  /** Their names (updated in place). */
  readonly names: string[] = [];
  readonly #configNames: ReadonlySet<string>;
  #stored = new Map<string, StoredEntry>();
  /** Sealed secrets opened (the key may be remote, so opening is asynchronous): by purpose and sealed text. */
  #opened = new Map<string, string | GatewayError>();
  #fingerprint = "";
  #stopRefresh: () => void = () => undefined;
  #refreshing: Promise<void> | undefined;
  readonly #listeners: (() => void)[] = [];
  readonly #o: LiveConnectionsOptions;

  private constructor(options: LiveConnectionsOptions) {
    this.#o = options;
    this.#configNames = new Set(options.config.connections.map((c) => c.name));
    this.#publish();
  }

  /** Migrate a legacy file, read the store, and keep reading it every `refreshMs`. */
  static async open(options: LiveConnectionsOptions): Promise<LiveConnections> {
    const live = new LiveConnections(options);
    if (options.legacyFile !== undefined) await live.#migrateFile(options.legacyFile);
    await live.refresh();
    live.#stopRefresh = refreshEvery(() => live.refresh(), options.refreshMs ?? CONSOLE_REFRESH_MS, options.logger, "console connections");
    return live;
  }

  close(): void {
    this.#stopRefresh();
  }

  /** Called after the effective set changed (here or on another gateway). */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async #migrateFile(file: string): Promise<void> {
    if (!existsSync(file)) return;
    let parsed: z.infer<typeof storedFile>;
    try {
      const r = storedFile.safeParse(JSON.parse(readFileSync(file, "utf8")));
      if (!r.success) throw new Error("shape");
      parsed = r.data;
    } catch {
      throw new GatewayError("GW_CONFIG", `${file} is not a console connections file: move it away to start`);
    }
    const existing = new Set((await this.#o.docs.list("connection")).map((d) => d.name));
    let moved = 0;
    for (const e of parsed.connections) {
      const name = e.raw["name"];
      if (typeof name !== "string" || existing.has(name)) continue;
      await this.#o.docs.put({ kind: "connection", name, body: JSON.stringify(e), updatedAt: new Date(e.updatedAt), updatedBy: e.updatedBy });
      moved++;
    }
    renameSync(file, `${file}.migrated`);
    this.#o.logger.info({ moved, file }, "console connections moved from the file into the store");
  }

  /** Read the store again; rebuild the effective set when it changed. Concurrent calls share one read. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const docs = await this.#o.docs.list("connection");
    const fingerprint = JSON.stringify(docs.map((d) => [d.name, d.body]));
    if (fingerprint === this.#fingerprint) return;
    const stored = new Map<string, StoredEntry>();
    for (const d of docs) {
      let e: StoredEntry;
      try {
        e = storedEntry.parse(JSON.parse(d.body));
      } catch {
        this.#o.logger.error({ connection: d.name }, "a stored console connection is not readable and is skipped");
        continue;
      }
      if (this.#configNames.has(d.name)) {
        this.#o.logger.warn({ connection: d.name }, "a console connection has the name of a configured one: the configuration's wins");
        continue;
      }
      stored.set(d.name, e);
    }
    this.#opened = await this.#openAll(stored.values());
    this.#stored = stored;
    // A remote key that could not be asked (Vault down) is asked again at the next read.
    this.#fingerprint = [...this.#opened.values()].some((v) => v instanceof KekUnavailable) ? "" : fingerprint;
    this.#publish();
  }

  /** Open every sealed secret of these entries (kept from the last read when unchanged). */
  async #openAll(entries: Iterable<StoredEntry>): Promise<Map<string, string | GatewayError>> {
    const opened = new Map<string, string | GatewayError>();
    for (const e of entries) {
      const name = e.raw["name"];
      if (typeof name !== "string") continue;
      for (const f of SECRET_FIELDS) {
        const s = e.sealed[f];
        if (s === undefined) continue;
        const purpose = `connection:${name}:${f}`;
        const k = openedKey(purpose, s);
        const known = this.#opened.get(k);
        if (known !== undefined && !(known instanceof KekUnavailable)) {
          opened.set(k, known);
          continue;
        }
        try {
          opened.set(k, await this.#o.box.open(s, purpose));
        } catch (err) {
          opened.set(k, isGatewayError(err) ? err : new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret cannot be decrypted"));
        }
      }
    }
    return opened;
  }

  /** Rebuild map, list and names from the configuration and the stored entries. */
  #publish(): void {
    const next = new Map<string, Connection>();
    for (const c of this.#o.config.connections) next.set(c.name, c);
    for (const [name, e] of this.#stored) {
      if (e.disabled) continue;
      try {
        next.set(name, this.#build(e.raw, e.sealed));
      } catch (err) {
        this.#o.logger.error({ connection: name, err: isGatewayError(err) ? err.message : "invalid" }, "a stored console connection is invalid and is skipped");
      }
    }
    for (const name of [...this.map.keys()]) if (!next.has(name)) this.map.delete(name);
    for (const [name, c] of next) this.map.set(name, c);
    this.list.splice(0, this.list.length, ...next.values());
    this.names.splice(0, this.names.length, ...next.keys());
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.#o.logger.error({ err }, "a console connections listener failed");
      }
    }
  }

  /** Validate (as the YAML is) and build; sealed secrets become literal values in memory only. */
  #build(raw: Record<string, unknown>, sealed: Partial<Record<SecretField, string>>): Connection {
    const doc: Record<string, unknown> = { ...raw };
    for (const f of SECRET_FIELDS) {
      const v = doc[f];
      if (typeof v === "string" && !v.startsWith("env:") && !v.startsWith("file:")) {
        throw new GatewayError("GW_BAD_REQUEST", `connection.${f}: give a reference (env:NAME or file:PATH) here, or the value under secrets.${f} (stored encrypted)`);
      }
      if (sealed[f] !== undefined) doc[f] = PLACEHOLDER;
    }
    let config: Config;
    try {
      // The agent groups come along so that a console connection may name one in `via`.
      config = parseConfig({ dataDir: this.#o.config.dataDir, agents: this.#o.config.agents, connections: [doc] }, "the console");
    } catch (e) {
      throw new GatewayError("GW_BAD_REQUEST", isGatewayError(e) ? e.message.replace(/connections\[0\]\./gu, "connection.") : "invalid connection");
    }
    const c = config.connections[0];
    if (c === undefined) throw new GatewayError("GW_BAD_REQUEST", "no connection given");
    const secrets: Partial<Record<SecretField, SecretRef>> = {};
    for (const f of SECRET_FIELDS) {
      const s = sealed[f];
      if (s === undefined) continue;
      const v = this.#opened.get(openedKey(`connection:${c.name}:${f}`, s));
      if (v === undefined) throw new GatewayError("GW_SECRET_UNRESOLVED", "a stored secret was not opened");
      if (v instanceof GatewayError) throw v;
      secrets[f] = { kind: "literal", value: v };
    }
    return { ...c, ...secrets };
  }

  /** Register or change a console connection; returns it. */
  async register(body: RegisterBody, by: string): Promise<Connection> {
    const name = body.connection["name"];
    if (typeof name === "string" && this.#configNames.has(name)) {
      throw new GatewayError("GW_CONFLICT", `connection "${name}" is defined in the configuration file: change it there`);
    }
    await this.refresh();
    const previous = typeof name === "string" ? this.#stored.get(name) : undefined;
    const sealed: Partial<Record<SecretField, string>> = {};
    for (const f of SECRET_FIELDS) {
      const value = body.secrets[f];
      // A changed connection keeps its stored secrets unless new values (or references) are given.
      if (value !== undefined && typeof name === "string") {
        const s = await this.#o.box.seal(value, `connection:${name}:${f}`);
        sealed[f] = s;
        this.#opened.set(openedKey(`connection:${name}:${f}`, s), value);
      }
      else if (previous?.sealed[f] !== undefined && body.connection[f] === undefined) sealed[f] = previous.sealed[f];
    }
    const c = this.#build(body.connection, sealed);
    const entry: StoredEntry = { raw: body.connection, sealed, disabled: previous?.disabled ?? false, updatedAt: new Date().toISOString(), updatedBy: by };
    await this.#write(c.name, entry);
    return c;
  }

  /** Disable or enable a console connection: new sessions are refused / admitted at once. */
  async setDisabled(name: string, disabled: boolean, by: string): Promise<void> {
    if (this.#configNames.has(name)) throw new GatewayError("GW_CONFLICT", `connection "${name}" is defined in the configuration file: change it there`);
    await this.refresh();
    const e = this.#stored.get(name);
    if (e === undefined) throw new GatewayError("GW_NOT_FOUND", `no console connection ${name}`);
    await this.#write(name, { ...e, disabled, updatedAt: new Date().toISOString(), updatedBy: by });
  }

  /**
   * Re-wrap the data key of every stored secret under the current key-encryption key (values
   * sealed before envelope encryption are sealed anew). Afterwards the previous keys are no
   * longer needed. An entry whose secrets no key of this gateway opens is left as it is and named.
   */
  async rotateKey(by: string): Promise<RotateKeyResult> {
    await this.refresh();
    const result: RotateKeyResult = { keyId: this.#o.box.keyId, connections: 0, rewrapped: 0, unchanged: 0, failed: [] };
    for (const [name, e] of this.#stored) {
      const sealed: Partial<Record<SecretField, string>> = {};
      let rewrapped = 0;
      try {
        for (const f of SECRET_FIELDS) {
          const s = e.sealed[f];
          if (s === undefined) continue;
          const r = await this.#o.box.rewrap(s, `connection:${name}:${f}`);
          sealed[f] = r.sealed;
          if (r.changed) rewrapped++;
          else result.unchanged++;
        }
      } catch {
        result.failed.push(name);
        continue;
      }
      if (Object.keys(sealed).length === 0) continue;
      result.connections++;
      result.rewrapped += rewrapped;
      if (rewrapped > 0) await this.#o.docs.put({ kind: "connection", name, body: JSON.stringify({ ...e, sealed }), updatedAt: new Date(), updatedBy: by });
    }
    await this.refresh();
    return result;
  }

  async #write(name: string, entry: StoredEntry): Promise<void> {
    await this.#o.docs.put({ kind: "connection", name, body: JSON.stringify(entry), updatedAt: new Date(entry.updatedAt), updatedBy: entry.updatedBy });
    await this.refresh();
  }

  /** The effective connection of this name, or a disabled console one (for "test connection"). */
  connection(name: string): Connection | undefined {
    const c = this.map.get(name);
    if (c !== undefined) return c;
    const e = this.#stored.get(name);
    return e === undefined ? undefined : this.#safeBuild(e);
  }

  /** Every connection as the console shows it (secrets as references; stored values as `stored:<encrypted>`). */
  views(): ConnectionView[] {
    const out: ConnectionView[] = this.#o.config.connections.map((c) => connectionView(c, "config"));
    for (const [name, e] of this.#stored) {
      const c = this.map.get(name) ?? this.#safeBuild(e);
      if (c === undefined) continue;
      const v = connectionView(c, "console", e.disabled);
      for (const f of SECRET_FIELDS) if (e.sealed[f] !== undefined) v.settings[f] = "stored:<encrypted>";
      out.push(v);
    }
    return out;
  }

  /** The console's connections as YAML-ready documents (secrets as references or `stored:<encrypted>`), for `airlock config show`. */
  documents(): Record<string, unknown>[] {
    return [...this.#stored.values()].map((e) => ({
      ...e.raw,
      ...Object.fromEntries(Object.keys(e.sealed).map((f) => [f, "stored:<encrypted>"])),
      ...(e.disabled ? { disabled: true } : {}),
    }));
  }

  #safeBuild(e: StoredEntry): Connection | undefined {
    try {
      return this.#build(e.raw, e.sealed);
    } catch {
      return undefined;
    }
  }
}
