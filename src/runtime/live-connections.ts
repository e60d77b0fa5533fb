/**
 * Connections registered at run time from the web console, next to the configuration's.
 *
 * The effective set is one live map (`map`) that the access evaluator, session admission and the
 * SQL policy evaluator look connections up in (core/connection.ts ConnectionSource), so a
 * registered connection is usable by the next client at once, without a restart, and a disabled
 * one is refused to the next client ("unknown connection").
 *
 * Invariants:
 * - The same validation as the YAML: the entry is parsed by parseConfig as a one-connection
 *   configuration (names, types, ports, host keys, sslmode, …).
 * - Connections from the configuration file are read-only here: a console entry cannot take or
 *   change a configured name.
 * - Secrets are either references (`env:NAME`, `file:PATH`, kept as written) or values, which are
 *   sealed with AES-256-GCM (secrets/secret-box.ts) before they are written anywhere; a value is
 *   never returned by the API again (views show `stored:<encrypted>`). A literal secret inside the
 *   connection document itself is refused: values go in `secrets`.
 * - Persisted in `<dataDir>/console-connections.json` (0600, written atomically).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Logger } from "pino";
import { z } from "zod";
import type { ConnectionView } from "../api/console-schemas.js";
import type { Connection } from "../core/connection.js";
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { SecretRef } from "../core/secret.js";
import type { SecretBox } from "../secrets/secret-box.js";
import { parseConfig, type Config } from "./config.js";
import { connectionView } from "./console.js";

/** Fields of a connection that hold secrets (config.ts). */
export const SECRET_FIELDS = ["password", "privateKey", "passphrase", "sslRootCert", "tlsCa"] as const;
type SecretField = (typeof SECRET_FIELDS)[number];
const PLACEHOLDER = "airlock-sealed-secret";

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

export class LiveConnections {
  /** The effective, enabled connections: configuration first, then the console's. */
  readonly map = new Map<string, Connection>();
  readonly #configNames: ReadonlySet<string>;
  readonly #stored = new Map<string, StoredEntry>();
  readonly #o: { readonly config: Config; readonly file: string; readonly box: SecretBox; readonly logger: Logger };

  constructor(options: { readonly config: Config; readonly file: string; readonly box: SecretBox; readonly logger: Logger }) {
    this.#o = options;
    for (const c of options.config.connections) this.map.set(c.name, c);
    this.#configNames = new Set(options.config.connections.map((c) => c.name));
    this.#load();
  }

  #load(): void {
    if (!existsSync(this.#o.file)) return;
    const parsed = storedFile.safeParse(JSON.parse(readFileSync(this.#o.file, "utf8")));
    if (!parsed.success) throw new GatewayError("GW_CONFIG", `${this.#o.file} is not a console connections file`);
    for (const e of parsed.data.connections) {
      try {
        const c = this.#build(e.raw, e.sealed);
        if (this.#configNames.has(c.name)) {
          this.#o.logger.warn({ connection: c.name }, "a console connection has the name of a configured one: the configuration's wins");
          continue;
        }
        this.#stored.set(c.name, e);
        if (!e.disabled) this.map.set(c.name, c);
      } catch (err) {
        this.#o.logger.error({ err: isGatewayError(err) ? err.message : "invalid" }, "a stored console connection is invalid and is skipped");
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
      config = parseConfig({ dataDir: this.#o.config.dataDir, connections: [doc] }, "the console");
    } catch (e) {
      throw new GatewayError("GW_BAD_REQUEST", isGatewayError(e) ? e.message.replace(/connections\[0\]\./gu, "connection.") : "invalid connection");
    }
    const c = config.connections[0];
    if (c === undefined) throw new GatewayError("GW_BAD_REQUEST", "no connection given");
    const secrets: Partial<Record<SecretField, SecretRef>> = {};
    for (const f of SECRET_FIELDS) {
      const s = sealed[f];
      if (s !== undefined) secrets[f] = { kind: "literal", value: this.#o.box.open(s, `connection:${c.name}:${f}`) };
    }
    return { ...c, ...secrets };
  }

  /** Register or change a console connection; returns it. */
  register(body: RegisterBody, by: string): Connection {
    const name = body.connection["name"];
    if (typeof name === "string" && this.#configNames.has(name)) {
      throw new GatewayError("GW_CONFLICT", `connection "${name}" is defined in the configuration file: change it there`);
    }
    const previous = typeof name === "string" ? this.#stored.get(name) : undefined;
    const sealed: Partial<Record<SecretField, string>> = {};
    for (const f of SECRET_FIELDS) {
      const value = body.secrets[f];
      // A changed connection keeps its stored secrets unless new values (or references) are given.
      if (value !== undefined && typeof name === "string") sealed[f] = this.#o.box.seal(value, `connection:${name}:${f}`);
      else if (previous?.sealed[f] !== undefined && body.connection[f] === undefined) sealed[f] = previous.sealed[f];
    }
    const c = this.#build(body.connection, sealed);
    const entry: StoredEntry = { raw: body.connection, sealed, disabled: previous?.disabled ?? false, updatedAt: new Date().toISOString(), updatedBy: by };
    this.#stored.set(c.name, entry);
    this.#save();
    if (!entry.disabled) this.map.set(c.name, c);
    return c;
  }

  /** Disable or enable a console connection: new sessions are refused / admitted at once. */
  setDisabled(name: string, disabled: boolean, by: string): void {
    if (this.#configNames.has(name)) throw new GatewayError("GW_CONFLICT", `connection "${name}" is defined in the configuration file: change it there`);
    const e = this.#stored.get(name);
    if (e === undefined) throw new GatewayError("GW_NOT_FOUND", `no console connection ${name}`);
    const next = { ...e, disabled, updatedAt: new Date().toISOString(), updatedBy: by };
    this.#stored.set(name, next);
    this.#save();
    if (disabled) this.map.delete(name);
    else this.map.set(name, this.#build(next.raw, next.sealed));
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

  #save(): void {
    const tmp = `${this.#o.file}.${randomBytes(6).toString("hex")}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: 1, connections: [...this.#stored.values()] }, null, 2), { mode: 0o600 });
    renameSync(tmp, this.#o.file);
  }
}
