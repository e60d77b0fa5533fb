/**
 * Wiring helpers for the SSH listener (used by runtime/gateway.ts): the gateway's host key and
 * the service accounts' registered public keys.
 */
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import ssh2 from "ssh2";
import { GatewayError } from "../../core/errors.js";
import type { Principal } from "../../core/principal.js";
import type { SecretRef } from "../../core/secret.js";
import type { Logger } from "pino";
import type { MaskRule } from "../../core/decision.js";
import type { Dialer, Gatekeeper } from "../../core/engine.js";
import { initShellParser } from "../../policy/shell/analyze.js";
import { castPathOf } from "./cast-path.js";
import { SshEngine, type RegisteredKey, type TextMasker } from "./engine.js";

export { castPathOf } from "./cast-path.js";

export const HOST_KEY_FILE = "ssh_host_ed25519_key";

/**
 * The configured host key (`ssh.hostKey`), or `<dataDir>/ssh_host_ed25519_key`, generated once
 * (mode 0600) so clients can pin it. Its public half is written next to it (`.pub`).
 */
export async function loadOrCreateHostKey(dataDir: string, configured: SecretRef | undefined, resolveSecret: (ref: SecretRef) => Promise<string>): Promise<string> {
  if (configured !== undefined) {
    const key = await resolveSecret(configured);
    if (ssh2.utils.parseKey(key) instanceof Error) throw new GatewayError("GW_CONFIG", "ssh.hostKey is not a private key ssh2 can read (OpenSSH or PEM)");
    return key;
  }
  const path = join(dataDir, HOST_KEY_FILE);
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if (!(typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT")) {
      throw new GatewayError("GW_CONFIG", `cannot read the SSH host key ${path}`, { cause: e });
    }
  }
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "airlock-gateway" });
  await writeFile(path, pair.private, { mode: 0o600, flag: "wx" }).catch((e: unknown) => {
    // Another process created it first: use theirs.
    if (typeof e === "object" && e !== null && "code" in e && e.code === "EEXIST") return;
    throw new GatewayError("GW_CONFIG", `cannot write the SSH host key ${path}`, { cause: e });
  });
  await chmod(path, 0o600);
  await writeFile(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 }).catch(() => undefined);
  return readFile(path, "utf8");
}

/** The public line (`ssh-ed25519 AAAA…`) of a private host key, for pinning by clients. */
export function publicKeyLine(privateKey: string): string {
  const k = ssh2.utils.parseKey(privateKey);
  if (k instanceof Error) throw new GatewayError("GW_CONFIG", "not a private key");
  return `${k.type} ${k.getPublicSSH().toString("base64")}`;
}

export interface ServiceAccountKeys {
  readonly name: string;
  readonly groups: readonly string[];
  readonly sshPublicKeys: readonly string[];
}

/** Registered keys → the service account principal they log in as (undefined while it is blocked). */
export function registeredKeys(accounts: readonly ServiceAccountKeys[], isBlocked: (principalId: string) => boolean): RegisteredKey[] {
  const out: RegisteredKey[] = [];
  for (const a of accounts) {
    const principal = (): Principal | undefined => {
      const id = `sa:${a.name}`;
      if (isBlocked(id)) return undefined;
      return { kind: "service_account", id, name: a.name, groups: [...a.groups] };
    };
    for (const line of a.sshPublicKeys) out.push({ line: line.trim(), principal });
  }
  return out;
}

export interface SshEngineDeps {
  readonly dataDir: string;
  readonly hostKey: SecretRef | undefined;
  readonly serviceAccounts: readonly ServiceAccountKeys[];
  readonly isBlocked: (principalId: string) => boolean;
  readonly gatekeeper: Gatekeeper;
  readonly dialer: Dialer;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly connectTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerAddress: number;
  readonly logger: Logger;
  readonly maskerFor: (rule: MaskRule) => TextMasker;
  /** The directory a session's recordings live in (the JSON-lines recording's directory). */
  readonly recordingDir: (sessionId: string) => string;
}

/** The SSH engine with its host key, connections and keys. */
export async function createSshEngine(d: SshEngineDeps): Promise<{ engine: SshEngine; hostPublicKey: string }> {
  await initShellParser();
  const hostKey = await loadOrCreateHostKey(d.dataDir, d.hostKey, d.resolveSecret);
  const engine = new SshEngine({
    gatekeeper: d.gatekeeper,
    dialer: d.dialer,
    publicKeys: registeredKeys(d.serviceAccounts, d.isBlocked),
    resolveSecret: d.resolveSecret,
    hostKey,
    connectTimeoutMs: d.connectTimeoutMs,
    authTimeoutMs: d.authTimeoutMs,
    maxUnauthenticated: d.maxUnauthenticated,
    maxUnauthenticatedPerAddress: d.maxUnauthenticatedPerAddress,
    logger: d.logger,
    maskerFor: d.maskerFor,
    castPath: (id) => castPathOf(d.recordingDir(id), id),
  });
  return { engine, hostPublicKey: publicKeyLine(hostKey) };
}

