/**
 * Vault's database secrets engine (developer.hashicorp.com/vault/api-docs/secret/databases):
 * dynamic, per-target-connection credentials for a connection with
 * `dynamicCredentials: vault-db:MOUNT/ROLE`. Each target login reads `GET /v1/MOUNT/creds/ROLE`
 * (Vault creates a database user, e.g. `CREATE ROLE … VALID UNTIL …`, and answers its username
 * and password under a lease); the lease is renewed (`PUT /v1/sys/leases/renew`) at half its
 * duration while the target connection lives, and revoked (`PUT /v1/sys/leases/revoke`, Vault
 * drops the user) when it closes. Username and password are handed to the log scrubber before
 * use; errors name the reference and Vault's status, never a value.
 */
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import type { LeaseDbCredentials } from "../core/secret.js";
import { secretUnresolved } from "./cache.js";
import { SecretHttpError } from "./http.js";
import type { VaultClient } from "./vault.js";

const credsAnswer = z.object({
  lease_id: z.string().min(1),
  lease_duration: z.number().int().nonnegative(),
  renewable: z.boolean(),
  data: z.object({ username: z.string().min(1), password: z.string().min(1) }),
});
const renewAnswer = z.object({ lease_duration: z.number().int().nonnegative() });

export interface VaultDatabaseOptions {
  readonly onValue?: (value: string) => void;
  /** Renewal or revocation failed (logged by the caller; the lease id is not secret). */
  readonly onError?: (what: "renew" | "revoke", leaseId: string, err: unknown) => void;
}

/** The lease function, and `drain`: waits (bounded) for revocations under way, at shutdown. */
export function vaultDatabaseLeases(vault: VaultClient, o: VaultDatabaseOptions = {}): { lease: LeaseDbCredentials; drain(timeoutMs: number): Promise<void> } {
  const revoking = new Set<Promise<void>>();
  const lease: LeaseDbCredentials = async (ref) => {
    const describe = `vault-db:${ref.mount}/${ref.role}`;
    const path = `/v1/${encodeURIComponent(ref.mount)}/creds/${encodeURIComponent(ref.role)}`;
    let raw: unknown;
    for (let attempt = 0; ; attempt++) {
      const token = await vault.token(describe);
      try {
        raw = await vault.call("GET", path, undefined, token);
        break;
      } catch (e) {
        if (e instanceof SecretHttpError && e.status === 403 && attempt === 0) {
          vault.dropToken();
          continue;
        }
        if (e instanceof SecretHttpError) throw secretUnresolved(describe, `Vault answered ${e.status}${e.status === 400 || e.status === 404 ? " (no such database role?)" : ""}`);
        if (e instanceof GatewayError) throw e;
        throw secretUnresolved(describe, "Vault could not be reached", e);
      }
    }
    const parsed = credsAnswer.safeParse(raw);
    if (!parsed.success) throw secretUnresolved(describe, "Vault's answer is not a database credential (lease_id, username, password)");
    const { lease_id: leaseId, data } = parsed.data;
    o.onValue?.(data.password);
    o.onValue?.(data.username);
    let timer: NodeJS.Timeout | undefined;
    let released = false;
    const schedule = (durationS: number): void => {
      if (released || !parsed.data.renewable || durationS <= 0) return;
      timer = setTimeout(() => void renew(durationS), Math.max(500, (durationS * 1000) / 2));
      timer.unref();
    };
    const renew = async (increment: number): Promise<void> => {
      try {
        const token = await vault.token(describe);
        const answer = renewAnswer.safeParse(await vault.call("PUT", "/v1/sys/leases/renew", { lease_id: leaseId, increment }, token));
        // Vault may grant less than asked (max TTL): renew again at half of what it granted.
        schedule(answer.success ? answer.data.lease_duration : increment);
      } catch (e) {
        o.onError?.("renew", leaseId, e);
        schedule(Math.max(2, increment / 2));
      }
    };
    schedule(parsed.data.lease_duration);
    return {
      username: data.username,
      password: data.password,
      release() {
        if (released) return;
        released = true;
        if (timer !== undefined) clearTimeout(timer);
        const p = (async () => {
          try {
            const token = await vault.token(describe);
            await vault.call("PUT", "/v1/sys/leases/revoke", { lease_id: leaseId }, token);
          } catch (e) {
            o.onError?.("revoke", leaseId, e);
          }
        })().finally(() => revoking.delete(p));
        revoking.add(p);
      },
    };
  };
  return {
    lease,
    async drain(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all([...revoking]), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
