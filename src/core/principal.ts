/** Who is acting. Every session and every control-plane call belongs to one principal. */
export type PrincipalKind = "service_account" | "person" | "workload" | "admin";

export interface Principal {
  readonly kind: PrincipalKind;
  /** Stable identifier, e.g. `sa:ci-bot`, `user:alice@example.com`, `admin`. */
  readonly id: string;
  /** Display name: the service account name, the person's email, … */
  readonly name: string;
  readonly groups: readonly string[];
  /** The Airlock token (its `jti`) this principal authenticated with, if any. */
  readonly tokenId?: string;
  /** When the credential stops being valid; sessions end then. */
  readonly expiresAt?: Date;
}

export const ADMIN_PRINCIPAL: Principal = Object.freeze({
  kind: "admin",
  id: "admin",
  name: "admin",
  groups: Object.freeze(["admin"]),
});
