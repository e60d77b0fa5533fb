/**
 * `airlock config show` (GET /v1/console/config): the running gateway's effective configuration,
 * the YAML's settings plus the connections and policies the web console stored, with every
 * secret shown as its reference and never its value.
 *
 * Redaction is by structure first (a SecretRef becomes `env:NAME`, `file:PATH`, `vault:…` or
 * `literal:<redacted>`; a sealed console secret is `stored:<encrypted>`), then by shape as a
 * safety net for settings kept as plain strings: a URL's password, and any string under a key
 * that names a secret (password, secret, token, key, passphrase, …) that is not a reference.
 */
import { stringify } from "yaml";
import { describeSecretRef, type SecretRef } from "../core/secret.js";
import type { Config } from "./config.js";

const SECRET_KEY = /pass(word|phrase)?|secret|token|credential|private|apikey|api_key|(^|[a-z])key$|^key|cookie|authorization/iu;
const REFERENCE = /^(env|file|vault|vault-transit|aws-sm|gcp-sm|azure-kv):|^stored:<encrypted>$|^literal:<redacted>$/u;
/** Keys whose values are names or public material, not secrets, although the key matches SECRET_KEY. */
const NOT_SECRET = new Set(["hostKey", "sshPublicKeys", "tokenUrl", "keysClaim", "groupsClaim", "claims", "maxTtl", "defaultTtl", "endSessionsAtExpiry", "tokenEndpoint", "publicKey", "serverPublicKey", "keyId", "keys"]);
const MAX_DEPTH = 32;

function isSecretRef(v: object): v is SecretRef {
  const k = (v as { kind?: unknown }).kind;
  const keys = Object.keys(v);
  return (
    (k === "env" && keys.length === 2 && "name" in v) ||
    (k === "file" && keys.length === 2 && "path" in v) ||
    (k === "vault" && "mount" in v && "field" in v) ||
    (k === "aws-sm" && "secretId" in v) ||
    (k === "gcp-sm" && "name" in v && keys.length <= 3) ||
    (k === "azure-kv" && "vault" in v && "secret" in v) ||
    (k === "literal" && keys.length === 2 && "value" in v)
  );
}

function redactUrl(s: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//iu.test(s)) return s;
  try {
    const u = new URL(s);
    if (u.password === "") return s;
    u.password = "<redacted>";
    return u.toString().replace("%3Credacted%3E", "<redacted>");
  } catch {
    return s;
  }
}

/** A JSON-ready copy with secrets as references. */
export function redact(value: unknown, key = "", depth = 0): unknown {
  if (depth > MAX_DEPTH) return "<too deep>";
  if (value === null || value === undefined) return value;
  if (typeof value === "string") {
    if (REFERENCE.test(value)) return value;
    if (key !== "" && !NOT_SECRET.has(key) && SECRET_KEY.test(key)) return "<redacted>";
    return redactUrl(value);
  }
  if (typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof RegExp) return value.source;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return "<redacted>";
  if (Array.isArray(value)) return value.map((v) => redact(v, key, depth + 1));
  if (value instanceof Map) return redact(Object.fromEntries(value), key, depth + 1);
  if (value instanceof Set) return redact([...value], key, depth + 1);
  if (typeof value === "object") {
    if (isSecretRef(value)) return describeSecretRef(value);
    // secrets.storeKey as Vault transit: a key name, not a secret, shown as written.
    const t = value as { kind?: unknown; mount?: unknown; name?: unknown };
    if (t.kind === "vault-transit" && typeof t.mount === "string" && typeof t.name === "string" && Object.keys(value).length === 3) return `vault-transit:${t.mount}/${t.name}`;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === "function" || v === undefined) continue;
      out[k] = redact(v, k, depth + 1);
    }
    return out;
  }
  return undefined;
}

export interface EffectiveConfig {
  /** The effective configuration as a JSON-ready object (secrets as references). */
  readonly config: Record<string, unknown>;
  /** Names that came from the web console (kept in the store). */
  readonly fromConsole: { readonly connections: readonly string[]; readonly policies: readonly string[] };
}

export function effectiveConfig(config: Config, consoleConnections: readonly Record<string, unknown>[], consolePolicies: readonly Record<string, unknown>[]): EffectiveConfig {
  const { source: _source, ...rest } = config;
  const base = redact(rest) as Record<string, unknown>;
  // Policies are kept with their match's inferred kind; the YAML never writes it.
  const yamlPolicies = ((base["policies"] as Record<string, unknown>[] | undefined) ?? []).map((p) => {
    const m = p["match"];
    if (typeof m !== "object" || m === null) return p;
    const { kind: _kind, ...match } = m as Record<string, unknown>;
    return { ...p, match };
  });
  const yamlConnections = (base["connections"] as unknown[] | undefined) ?? [];
  return {
    config: {
      ...base,
      connections: [...yamlConnections, ...consoleConnections.map((c) => redact(c))],
      policies: [...yamlPolicies, ...consolePolicies.map((p) => redact(p))],
    },
    fromConsole: {
      connections: consoleConnections.map((c) => String(c["name"])),
      policies: consolePolicies.map((p) => String(p["name"])),
    },
  };
}

/** The YAML text `airlock config show` prints. */
export function effectiveConfigYaml(e: EffectiveConfig, source: string | undefined): string {
  const head = [
    `# The effective configuration of the running gateway${source === undefined ? " (built-in demo)" : ` (${source})`},`,
    "# plus what the web console stored; secrets are shown as references, never values.",
    `# From the console: connections [${e.fromConsole.connections.join(", ")}], policies [${e.fromConsole.policies.join(", ")}]`,
  ];
  return `${head.join("\n")}\n${stringify(e.config, { lineWidth: 0 })}`;
}
