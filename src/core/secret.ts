/**
 * A reference to a secret held by the gateway: `env:NAME`, `file:PATH`, a HashiCorp Vault /
 * OpenBao KV v2 field `vault:MOUNT/PATH#FIELD`, or a literal value. Resolved only inside the
 * gateway (src/secrets); the resolved value never leaves it.
 */
export type SecretRef =
  | { readonly kind: "env"; readonly name: string }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "vault"; readonly mount: string; readonly path: string; readonly field: string }
  | { readonly kind: "literal"; readonly value: string };

/** How a reference is shown in logs, API answers and errors: never the value itself. */
export function describeSecretRef(ref: SecretRef): string {
  switch (ref.kind) {
    case "env":
      return `env:${ref.name}`;
    case "file":
      return `file:${ref.path}`;
    case "vault":
      return `vault:${ref.mount}/${ref.path}#${ref.field}`;
    case "literal":
      return "literal:<redacted>";
  }
}
