/**
 * Resolve secret references (`env:NAME`, `file:PATH`, literal) into values, inside the gateway
 * only. Errors name the reference (describeSecretRef), never a value, and every resolved value
 * is registered with the log scrubber so it can never appear in a log line.
 */
import { open } from "node:fs/promises";
import { GatewayError } from "../core/errors.js";
import { describeSecretRef } from "../core/secret.js";
import type { RemoteSecretRef, SecretRef } from "../core/secret.js";
import { registerSecretValue } from "../observability/logger.js";

/** Secret files are small (passwords, PEM keys); anything larger is a mistake. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

export async function resolveSecret(ref: SecretRef): Promise<string> {
  const value = await resolveRaw(ref);
  registerSecretValue(value);
  return value;
}

async function resolveRaw(ref: SecretRef): Promise<string> {
  switch (ref.kind) {
    case "literal":
      return ref.value;
    case "env": {
      const v = process.env[ref.name];
      if (v === undefined) throw unresolved(ref, "the environment variable is not set");
      if (v === "") throw unresolved(ref, "the environment variable is empty");
      return v;
    }
    case "file":
      return readSecretFile(ref);
    case "vault":
      throw unresolved(ref, "vault: references need secrets.vault in the configuration");
    case "aws-sm":
      throw unresolved(ref, "aws-sm: references need secrets.aws in the configuration");
    case "gcp-sm":
      throw unresolved(ref, "gcp-sm: references need secrets.gcp in the configuration");
    case "azure-kv":
      throw unresolved(ref, "azure-kv: references need secrets.azure in the configuration");
  }
}

/** A remote secret store: reads the reference's value (cached and refreshed by the store's client). */
export interface SecretProvider<K extends RemoteSecretRef["kind"]> {
  read(ref: Extract<RemoteSecretRef, { kind: K }>, describe: string): Promise<string>;
}

/** What resolves references beyond env:/file:/literal (configured under `secrets:`). */
export type SecretProviders = { readonly [K in RemoteSecretRef["kind"]]?: SecretProvider<K> };

/**
 * A resolver with the configured providers: `vault:`, `aws-sm:`, `gcp-sm:` and `azure-kv:`
 * through their store's client, everything else as `resolveSecret`. Every value is registered
 * with the log scrubber.
 */
export function secretResolver(providers: SecretProviders): (ref: SecretRef) => Promise<string> {
  return async (ref) => {
    const value = await readRemote(providers, ref);
    if (value === undefined) return resolveSecret(ref);
    registerSecretValue(value);
    return value;
  };
}

/** undefined: not a remote reference, or its store is not configured (resolveSecret says so). */
function readRemote(p: SecretProviders, ref: SecretRef): Promise<string> | undefined {
  const describe = describeSecretRef(ref);
  switch (ref.kind) {
    case "vault":
      return p.vault?.read(ref, describe);
    case "aws-sm":
      return p["aws-sm"]?.read(ref, describe);
    case "gcp-sm":
      return p["gcp-sm"]?.read(ref, describe);
    case "azure-kv":
      return p["azure-kv"]?.read(ref, describe);
    case "env":
    case "file":
    case "literal":
      return undefined;
  }
}

async function readSecretFile(ref: SecretRef & { kind: "file" }): Promise<string> {
  let handle;
  try {
    handle = await open(ref.path, "r");
  } catch (e) {
    throw unresolved(ref, `cannot open the file (${errnoCode(e)})`, e);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw unresolved(ref, "not a regular file");
    if (st.size > MAX_SECRET_FILE_BYTES) throw unresolved(ref, `the file is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    // Read at most one byte past the cap so a file that grows after stat is still refused.
    const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_SECRET_FILE_BYTES) throw unresolved(ref, `the file is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    let text = buf.subarray(0, length).toString("utf8");
    buf.fill(0);
    // Editors add one trailing newline; strip exactly one (a PEM's own final newline is kept
    // when the file ends in two).
    if (text.endsWith("\r\n")) text = text.slice(0, -2);
    else if (text.endsWith("\n")) text = text.slice(0, -1);
    if (text === "") throw unresolved(ref, "the file is empty");
    return text;
  } catch (e) {
    if (e instanceof GatewayError) throw e;
    throw unresolved(ref, `cannot read the file (${errnoCode(e)})`, e);
  } finally {
    await handle.close();
  }
}

function errnoCode(e: unknown): string {
  if (typeof e === "object" && e !== null && "code" in e && typeof e.code === "string") return e.code;
  return "error";
}

function unresolved(ref: SecretRef, why: string, cause?: unknown): GatewayError {
  return new GatewayError("GW_SECRET_UNRESOLVED", `cannot resolve secret ${describeSecretRef(ref)}: ${why}`, cause === undefined ? {} : { cause });
}
