/**
 * The Vault client from `secrets.vault` (used by runtime/gateway.ts): its own credentials are
 * env:/file:/literal references, resolved locally; every value it reads is scrubbed from logs.
 */
import { registerSecretValue } from "../observability/logger.js";
import type { Config } from "../runtime/config.js";
import { resolveSecret as resolveLocalSecret } from "./resolve.js";
import { VaultClient, type VaultAuth } from "./vault.js";

export async function vaultClient(v: NonNullable<Config["secrets"]["vault"]>, refreshMs: number): Promise<VaultClient> {
  const a = v.auth;
  const auth: VaultAuth =
    "token" in a
      ? { method: "token", token: () => resolveLocalSecret(a.token) }
      : "approle" in a
        ? { method: "approle", mount: a.approle.mount, roleId: () => resolveLocalSecret(a.approle.roleId), secretId: () => resolveLocalSecret(a.approle.secretId) }
        : { method: "kubernetes", mount: a.kubernetes.mount, role: a.kubernetes.role, jwt: () => resolveLocalSecret(a.kubernetes.jwt) };
  const ca = v.ca === undefined ? undefined : await resolveLocalSecret(v.ca);
  return new VaultClient({
    address: v.address,
    auth,
    timeoutMs: v.timeout,
    refreshMs,
    onValue: registerSecretValue,
    ...(v.namespace === undefined ? {} : { namespace: v.namespace }),
    ...(ca === undefined ? {} : { ca }),
  });
}
