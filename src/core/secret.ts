/**
 * A reference to a secret held by the gateway: `env:NAME`, `file:PATH`, a HashiCorp Vault /
 * OpenBao KV v2 field `vault:MOUNT/PATH#FIELD`, a cloud secret manager's secret
 * (`aws-sm:SECRET_ID[#FIELD]`, `gcp-sm:projects/P/secrets/S/versions/V[#FIELD]`,
 * `azure-kv:VAULT/SECRET[/VERSION][#FIELD]`; FIELD picks a key of a JSON secret), or a literal
 * value. Resolved only inside the gateway (src/secrets); the resolved value never leaves it.
 */
export type SecretRef =
  | { readonly kind: "env"; readonly name: string }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "vault"; readonly mount: string; readonly path: string; readonly field: string }
  | { readonly kind: "aws-sm"; readonly secretId: string; readonly field?: string }
  | { readonly kind: "gcp-sm"; readonly name: string; readonly field?: string }
  | { readonly kind: "azure-kv"; readonly vault: string; readonly secret: string; readonly version?: string; readonly field?: string }
  | { readonly kind: "literal"; readonly value: string };

/** The references a remote secret store resolves (configured under `secrets:`). */
export type RemoteSecretRef = Extract<SecretRef, { kind: "vault" | "aws-sm" | "gcp-sm" | "azure-kv" }>;

/** How a reference is shown in logs, API answers and errors: never the value itself. */
export function describeSecretRef(ref: SecretRef): string {
  switch (ref.kind) {
    case "env":
      return `env:${ref.name}`;
    case "file":
      return `file:${ref.path}`;
    case "vault":
      return `vault:${ref.mount}/${ref.path}#${ref.field}`;
    case "aws-sm":
      return `aws-sm:${ref.secretId}${fieldSuffix(ref.field)}`;
    case "gcp-sm":
      return `gcp-sm:${ref.name}${fieldSuffix(ref.field)}`;
    case "azure-kv":
      return `azure-kv:${ref.vault}/${ref.secret}${ref.version === undefined ? "" : `/${ref.version}`}${fieldSuffix(ref.field)}`;
    case "literal":
      return "literal:<redacted>";
  }
}

function fieldSuffix(field: string | undefined): string {
  return field === undefined ? "" : `#${field}`;
}

/** A dynamic database credential that lives as long as one target connection (vault-db:). */
export interface DbLease {
  readonly username: string;
  readonly password: string;
  /** Stop renewing and revoke (idempotent; never throws). */
  release(): void;
}

export type LeaseDbCredentials = (ref: { readonly mount: string; readonly role: string }) => Promise<DbLease>;
