import type { SecretRef } from "./secret.js";

/** A configured target that clients ask for by name. */
export type Connection = PostgresConnection | SshConnection | RedisConnection | HttpConnection | KubernetesConnection | MysqlConnection | McpConnection;

export type ConnectionType = Connection["type"];

/** libpq's sslmode names, for the gateway's own leg to the target. */
export type UpstreamSslMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface PostgresConnection {
  readonly type: "postgres";
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The agent group whose network-resident agents reach this target (issue 19); absent = dialed directly. */
  readonly via?: string | undefined;
  readonly database: string;
  readonly user: string;
  /** Absent for targets that trust the gateway (e.g. trust auth). */
  readonly password?: SecretRef;
  /**
   * Where `password` is resolved: on the gateway (default), or on the agent of `via`, which then
   * performs the target login itself so that the gateway never holds the secret.
   */
  readonly credentialsOn?: "agent" | undefined;
  /**
   * Dynamic credentials (issue 20): each target connection logs in with a user that Vault's
   * database secrets engine creates for it (`vault-db:MOUNT/ROLE`), revoked when it closes.
   * `user` and `password` are then not used for the login.
   */
  readonly dynamicCredentials?: { readonly kind: "vault-db"; readonly mount: string; readonly role: string } | undefined;
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
  /** The agent group whose network-resident agents reach this target (issue 19); absent = dialed directly. */
  readonly via?: string | undefined;
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
  /** The agent group whose network-resident agents reach this target (issue 19); absent = dialed directly. */
  readonly via?: string | undefined;
  /** ACL user; absent = the `default` user (AUTH with the password only). */
  readonly user?: string;
  readonly password?: SecretRef;
  /** `agent`: the agent of `via` resolves `password` and sends AUTH itself; the gateway never holds it. */
  readonly credentialsOn?: "agent" | undefined;
  /** The logical database the session works in; switching to another (SELECT, MOVE, SWAPDB) is refused. */
  readonly database: number;
  readonly groups: readonly string[];
  /** TLS to the target: off, or on (verifying the certificate against `tlsCa`, or the system CAs). */
  readonly tls: boolean;
  readonly tlsCa?: SecretRef;
  readonly tlsServerName?: string;
}

/**
 * A Kubernetes API server (issue 15; src/protocols/kubernetes): clients reach it through the
 * HTTP listener at `/CONNECTION/…`; the gateway calls `server` with its own credential (a
 * bearer token, or a client certificate and key) and verifies the server against `ca`.
 */
export interface KubernetesConnection {
  readonly type: "kubernetes";
  readonly name: string;
  /** `https://host:port` (or `http://` for a local test server), no path. */
  readonly server: string;
  /** The agent group whose network-resident agents reach the API server (issue 19); absent = dialed directly. */
  readonly via?: string | undefined;
  /** CA bundle (PEM) the API server's certificate must chain to; absent: the system CAs. */
  readonly ca?: SecretRef;
  readonly token?: SecretRef;
  readonly clientCert?: SecretRef;
  readonly clientKey?: SecretRef;
  /** Server name to verify, when it differs from the URL's host. */
  readonly tlsServerName?: string;
  readonly groups: readonly string[];
}

/** How the gateway authenticates to an HTTP target (issue 15): it injects this; the agent never sees it. */
export type HttpAuth =
  | { readonly type: "none" }
  | { readonly type: "bearer"; readonly token: SecretRef }
  | { readonly type: "basic"; readonly username: string; readonly password: SecretRef }
  | { readonly type: "header"; readonly name: string; readonly value: SecretRef }
  | { readonly type: "query"; readonly name: string; readonly value: SecretRef }
  | {
      readonly type: "oauth2ClientCredentials";
      readonly tokenUrl: string;
      readonly clientId: string;
      readonly clientSecret: SecretRef;
      readonly scopes: readonly string[];
    };

/**
 * An HTTP API target (issue 15; src/protocols/http): clients reach it at
 * `/CONNECTION/…` on the HTTP listener, or at its own `port`, or by `Host` name.
 */
export interface HttpConnection {
  readonly type: "http";
  readonly name: string;
  /** `https://api.example.com/v1`: the path prefix in it is kept. */
  readonly baseUrl: string;
  /** The agent group whose network-resident agents reach the target (issue 19); absent = dialed directly. */
  readonly via?: string | undefined;
  readonly auth: HttpAuth;
  readonly groups: readonly string[];
  /** CA bundle (PEM) to verify the target; default: the system CAs. */
  readonly tlsCa?: SecretRef;
  /** Client certificate and key (PEM) presented to the target (mutual TLS). */
  readonly tlsCert?: SecretRef;
  readonly tlsKey?: SecretRef;
  readonly tlsServerName?: string;
  /** Serve this connection on its own listener port too (no path prefix). */
  readonly port?: number;
  /** Serve this connection to requests whose Host header is this name (no path prefix). */
  readonly hostName?: string;
}

/**
 * A MySQL/MariaDB target (issue 14; src/protocols/mysql): the gateway logs in as `user` with its
 * own password and works in `database`; switching to another database is refused.
 */
export interface MysqlConnection {
  readonly type: "mysql";
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The agent group whose network-resident agents reach this target (issue 19); absent = dialed directly. */
  readonly via?: string | undefined;
  readonly database: string;
  readonly user: string;
  readonly password?: SecretRef;
  readonly groups: readonly string[];
  /** TLS to the target, with libpq-like modes (as the postgres connection's sslmode). */
  readonly sslmode: UpstreamSslMode;
  /** CA bundle (PEM) for verify-ca / verify-full. */
  readonly sslRootCert?: SecretRef;
  readonly sslServerName?: string;
  /**
   * The target's RSA public key (PEM) for caching_sha2_password full authentication without
   * TLS; absent: asked of the target (trust on first use of the connection).
   */
  readonly serverPublicKey?: SecretRef;
}

/**
 * How the gateway reaches an upstream MCP server (issue 16, gateway half): Streamable HTTP with
 * a credential it injects (the HTTP target's auth kinds, OAuth2 client credentials included), or
 * a command it runs itself over stdio with an environment built from secret references. The
 * agent never sees either.
 */
export type McpUpstream =
  | { readonly transport: "http"; readonly url: string; readonly auth: HttpAuth; readonly tlsCa?: SecretRef }
  | {
      readonly transport: "stdio";
      readonly command: string;
      readonly args: readonly string[];
      readonly env: Readonly<Record<string, SecretRef>>;
      readonly cwd?: string;
    };

/** A per principal × tool window: at most `calls` calls of each matching tool per `perMs`. */
export interface McpRateLimit {
  readonly tools: readonly string[];
  readonly calls: number;
  readonly perMs: number;
}

/**
 * An upstream MCP server (issue 16; src/protocols/mcp/gateway): agents reach it at
 * `/mcp/CONNECTION` on the API listener; its tools are pinned by fingerprint (`pinning`: an admin
 * approves them, or the first contact pins them) and judged by `tools`/`arguments` policies.
 */
export interface McpConnection {
  readonly type: "mcp";
  readonly name: string;
  readonly upstream: McpUpstream;
  readonly groups: readonly string[];
  readonly pinning: "admin" | "first-use";
  readonly rateLimits: readonly McpRateLimit[];
  /** Bound on the wait for the upstream's answer to one request. */
  readonly timeoutMs: number;
  /** Largest message accepted from the upstream (default 4 MiB): a larger answer fails the call. */
  readonly maxMessageBytes?: number;
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
