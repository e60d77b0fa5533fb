import type { SecretRef } from "./secret.js";

/** A configured target that clients ask for by name. */
export type Connection = PostgresConnection | SshConnection | RedisConnection;

export type ConnectionType = Connection["type"];

/** libpq's sslmode names, for the gateway's own leg to the target. */
export type UpstreamSslMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface PostgresConnection {
  readonly type: "postgres";
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Absent for targets that trust the gateway (e.g. trust auth). */
  readonly password?: SecretRef;
  readonly groups: readonly string[];
  readonly sslmode: UpstreamSslMode;
  /** CA bundle (PEM) for verify-ca / verify-full. */
  readonly sslRootCert?: SecretRef;
  /** Server name to verify, when it differs from `host`. */
  readonly sslServerName?: string;
  /** Idle target sessions kept for reuse; absent or maxIdle 0 = no pooling. */
  readonly pool?: { readonly maxIdle: number; readonly idleTimeoutMs: number };
}

/** An SSH target (issue 6): the gateway logs in as `user` with its own key or password. */
export interface SshConnection {
  readonly type: "ssh";
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey?: SecretRef;
  /** Passphrase of an encrypted privateKey. */
  readonly passphrase?: SecretRef;
  readonly password?: SecretRef;
  /** The pinned host key, `type base64` as in known_hosts; a mismatch refuses the session. */
  readonly hostKey: string;
  readonly groups: readonly string[];
}

/**
 * A Redis target (issue 14): the gateway logs in with its own ACL user (`user`, default
 * `default`) and password, and selects `database`.
 */
export interface RedisConnection {
  readonly type: "redis";
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** ACL user; absent = the `default` user (AUTH with the password only). */
  readonly user?: string;
  readonly password?: SecretRef;
  /** The logical database the session works in; switching to another (SELECT, MOVE, SWAPDB) is refused. */
  readonly database: number;
  readonly groups: readonly string[];
  /** TLS to the target: off, or on (verifying the certificate against `tlsCa`, or the system CAs). */
  readonly tls: boolean;
  readonly tlsCa?: SecretRef;
  readonly tlsServerName?: string;
}

/**
 * Where components look connections up: a fixed list (the configuration), or a live map that
 * grows and shrinks at run time (connections registered in the web console: src/runtime/live-connections.ts).
 */
export type ConnectionSource = readonly Connection[] | ReadonlyMap<string, Connection>;

/** A map view of a source: the live map itself, or a map of the list. */
export function connectionMap(source: ConnectionSource): ReadonlyMap<string, Connection> {
  return source instanceof Map ? (source as ReadonlyMap<string, Connection>) : new Map((source as readonly Connection[]).map((c) => [c.name, c]));
}
