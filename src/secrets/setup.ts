/**
 * The secret stores from `secrets:` (used by runtime/gateway.ts): Vault, AWS Secrets Manager,
 * Google Secret Manager, Azure Key Vault. Their own credentials are env:/file:/literal
 * references, resolved locally at each login; every value they read is scrubbed from logs.
 */
import { registerSecretValue } from "../observability/logger.js";
import type { Config } from "../runtime/config.js";
import { AwsSecretsManager } from "./aws-sm.js";
import { AzureKeyVault } from "./azure-kv.js";
import { GcpSecretManager } from "./gcp-sm.js";
import { resolveSecret as resolveLocalSecret, type SecretProviders } from "./resolve.js";
import type { LeaseDbCredentials } from "../core/secret.js";
import { VaultClient, type VaultAuth } from "./vault.js";
import { vaultDatabaseLeases } from "./vault-db.js";

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

/** Every configured store, and one close for all of them. */
export async function secretProviders(
  s: Config["secrets"],
  options: { readonly env?: NodeJS.ProcessEnv; readonly onLeaseError?: (what: "renew" | "revoke", leaseId: string, err: unknown) => void } = {},
): Promise<{ providers: SecretProviders; leaseCredentials: LeaseDbCredentials | undefined; vault: VaultClient | undefined; close(): Promise<void> }> {
  const env = options.env ?? process.env;
  const refreshMs = s.refreshInterval;
  const vault = s.vault === undefined ? undefined : await vaultClient(s.vault, refreshMs);
  const aws = s.aws;
  const awsKeys = aws?.accessKeyId === undefined || aws.secretAccessKey === undefined ? undefined : { id: aws.accessKeyId, secret: aws.secretAccessKey };
  const awsSm =
    aws === undefined
      ? undefined
      : new AwsSecretsManager({
          timeoutMs: aws.timeout,
          refreshMs,
          onValue: registerSecretValue,
          ...(aws.region === undefined ? {} : { region: aws.region }),
          ...(aws.endpoint === undefined ? {} : { endpoint: aws.endpoint }),
          ...(aws.profile === undefined ? {} : { profile: aws.profile }),
          ...(awsKeys === undefined
            ? {}
            : {
                credentials: async () => {
                  const token = aws.sessionToken === undefined ? undefined : await resolveLocalSecret(aws.sessionToken);
                  return { accessKeyId: await resolveLocalSecret(awsKeys.id), secretAccessKey: await resolveLocalSecret(awsKeys.secret), ...(token === undefined ? {} : { sessionToken: token }) };
                },
              }),
        });
  const g = s.gcp;
  const gcpSm =
    g === undefined
      ? undefined
      : new GcpSecretManager({
          credentials: () => {
            if (g.credentials !== undefined) return resolveLocalSecret(g.credentials);
            const path = env["GOOGLE_APPLICATION_CREDENTIALS"];
            return resolveLocalSecret(path === undefined || path === "" ? { kind: "env", name: "GOOGLE_APPLICATION_CREDENTIALS" } : { kind: "file", path });
          },
          timeoutMs: g.timeout,
          refreshMs,
          onValue: registerSecretValue,
          ...(g.endpoint === undefined ? {} : { endpoint: g.endpoint }),
          ...(g.tokenUri === undefined ? {} : { tokenUri: g.tokenUri }),
        });
  const az = s.azure;
  const azureKv =
    az === undefined
      ? undefined
      : new AzureKeyVault({
          tenantId: az.tenantId,
          clientId: az.clientId,
          clientSecret: () => resolveLocalSecret(az.clientSecret),
          timeoutMs: az.timeout,
          refreshMs,
          onValue: registerSecretValue,
          ...(az.authorityHost === undefined ? {} : { authorityHost: az.authorityHost }),
          ...(az.vaultUrl === undefined ? {} : { vaultUrl: az.vaultUrl }),
        });
  const leases = vault === undefined ? undefined : vaultDatabaseLeases(vault, { onValue: registerSecretValue, ...(options.onLeaseError === undefined ? {} : { onError: options.onLeaseError }) });
  return {
    providers: {
      ...(vault === undefined ? {} : { vault }),
      ...(awsSm === undefined ? {} : { "aws-sm": awsSm }),
      ...(gcpSm === undefined ? {} : { "gcp-sm": gcpSm }),
      ...(azureKv === undefined ? {} : { "azure-kv": azureKv }),
    },
    leaseCredentials: leases?.lease,
    vault,
    // Target connections closed at shutdown are revoking their leases: give them a moment.
    async close() {
      await leases?.drain(5_000);
      vault?.close();
      awsSm?.close();
      gcpSm?.close();
      azureKv?.close();
    },
  };
}
