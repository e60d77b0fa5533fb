/**
 * The configuration file (contract: shared INTERFACE.md). Parsed once at the edge with zod;
 * everything after this sees typed, validated values. Errors name the bad key.
 *
 * Over 500 lines: the whole schema of one file. Its per-target connection schemas are the part
 * that would stand alone (a connections module); not split yet (said in the closing note).
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { Connection, HttpAuth } from "../core/connection.js";
import { GatewayError } from "../core/errors.js";
import type { SecretRef } from "../core/secret.js";
import { detectorNameSchema } from "../masking/detectors.js";
import { isPhoneRegion } from "../masking/detectors/phone-regions.js";
import { identityProblems, loginSchema, oidcIssuerSchema, rolesSchema, samlSchema } from "../identity/config-schema.js";
import { approvalsSchema } from "../approvals/config-schema.js";
import { budgetSchema, canarySchema, resultScanSchema } from "../scan/config-schema.js";
import { auditSink, awsSecretsConfig, azureSecretsConfig, gcpSecretsConfig, vaultConfig } from "./config-ops.js";
import { INSTANCE_ID_RE } from "../store/instances.js";
import { agentProblems, agentsConfigSchema, credentialsOnSchema, viaSchema } from "../agent/config-schema.js";
import { durationSchema as duration, nameSchema as name, secretRefSchema as secretRef } from "./schema-parts.js";
export { parseSecretRef } from "./schema-parts.js";
import { httpMatchProblems } from "../policy/http-match.js";
import { whenProblem } from "../policy/cel.js";
import { mcpMatchProblems } from "../policy/mcp-match.js";
import { MATCH_KINDS, inferMatchKind, typedMatch, typesNamed, type MatchKind, type PolicyMatch } from "../policy/match.js";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, `[v6]:port` or `:port` (loopback). */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] === "" || m[2] === undefined ? "127.0.0.1" : m[2]);
  return { host, port };
}

const listenAddress = z
  .string()
  .describe("host:port to listen on, e.g. 127.0.0.1:15432 (port 0 picks a free port)")
  .transform((s, ctx) => {
    const a = parseListenAddress(s);
    if (a === undefined) {
      ctx.addIssue({ code: "custom", message: `expected host:port, got "${s}"` });
      return z.NEVER;
    }
    return a;
  });


const group = z.string().min(1).max(200);

const serviceAccount = z.strictObject({
  name,
  groups: z.array(group).default([]),
  sshPublicKeys: z.array(z.string()).default([]),
  description: z.string().optional(),
});

/** Trusted issuers, SAML, roles and login: src/identity/config-schema.ts. */
const oidcIssuer = oidcIssuerSchema;

const postgresConnection = z.strictObject({
  name,
  type: z.literal("postgres"),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5432),
  via: viaSchema,
  credentialsOn: credentialsOnSchema,
  database: z.string().min(1),
  user: z.string().min(1),
  password: secretRef.optional(),
  dynamicCredentials: z
    .string()
    .regex(/^vault-db:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/u, "vault-db:MOUNT/ROLE, e.g. vault-db:database/orders-readonly")
    .transform((s) => {
      const [mount = "", role = ""] = s.slice("vault-db:".length).split("/");
      return { kind: "vault-db" as const, mount, role };
    })
    .optional()
    .describe("vault-db:MOUNT/ROLE: log in with a user Vault's database secrets engine creates per target connection (needs secrets.vault); user and password are then not used"),
  groups: z.array(group).default([]),
  sslmode: z.enum(["disable", "prefer", "require", "verify-ca", "verify-full"]).default("prefer"),
  sslRootCert: secretRef.optional(),
  sslServerName: z.string().optional(),
  /**
   * Reuse target sessions between client sessions (like PgBouncer's session mode): a client
   * session that ends cleanly hands its target connection back, reset with DISCARD ALL.
   * `false` turns it off.
   */
  pool: z
    .union([
      z.literal(false),
      z.strictObject({
        maxIdle: z.number().int().min(0).max(1000).default(10),
        idleTimeout: duration.default(60_000),
      }),
    ])
    .default({ maxIdle: 10, idleTimeout: 60_000 }),
});

/**
 * Redis targets (issue 14; src/protocols/redis): the gateway logs in with its own ACL user and
 * password and works in one logical database.
 */
const redisConnection = z.strictObject({
  name,
  type: z.literal("redis"),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(6379),
  via: viaSchema,
  user: z.string().min(1).optional().describe("ACL user the gateway logs in as (default: the default user)"),
  password: secretRef.optional(),
  credentialsOn: credentialsOnSchema,
  database: z.number().int().min(0).max(100_000).default(0).describe("logical database; switching to another is refused"),
  groups: z.array(group).default([]),
  tls: z.boolean().default(false).describe("TLS to the target"),
  tlsCa: secretRef.optional().describe("CA bundle (PEM) to verify the target's certificate; default: the system CAs"),
  tlsServerName: z.string().optional(),
});

/**
 * Kubernetes API servers (issue 15; src/protocols/kubernetes), served on the HTTP listener at
 * `/CONNECTION/…`. The gateway's own credential: a bearer token, or a client certificate + key.
 */
const kubernetesConnection = z
  .strictObject({
    name,
    type: z.literal("kubernetes"),
    server: z
      .string()
      .regex(/^https?:\/\/[^/?#\s]+\/?$/, "expected the API server's URL with no path, e.g. https://10.0.0.1:6443")
      .describe("the API server's URL (https://host:port)"),
    via: viaSchema,
    ca: secretRef.optional().describe("CA bundle (PEM) to verify the API server; default: the system CAs"),
    token: secretRef.optional().describe("bearer token the gateway presents to the API server"),
    clientCert: secretRef.optional().describe("client certificate (PEM) the gateway presents"),
    clientKey: secretRef.optional().describe("private key (PEM) of clientCert"),
    tlsServerName: z.string().optional(),
    groups: z.array(group).default([]),
  })
  .refine((c) => (c.clientCert === undefined) === (c.clientKey === undefined), { message: "clientCert and clientKey must be given together" })
  .refine((c) => c.token !== undefined || c.clientCert !== undefined, { message: "a kubernetes connection needs token or clientCert/clientKey" });

/** A header name (RFC 9110 token). */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/, "expected an HTTP header name");

/** How the gateway authenticates to an HTTP target (src/protocols/http/upstream.ts). */
const httpAuth = z.union([
  z.strictObject({ bearer: secretRef.describe("token sent as Authorization: Bearer") }),
  z.strictObject({ basic: z.strictObject({ username: z.string(), password: secretRef }) }),
  z.strictObject({ header: z.strictObject({ name: headerName, value: secretRef }) }),
  z.strictObject({ query: z.strictObject({ name: z.string().min(1).max(100), value: secretRef }) }),
  z.strictObject({
    oauth2ClientCredentials: z.strictObject({
      tokenUrl: z.url(),
      clientId: z.string().min(1),
      clientSecret: secretRef,
      scopes: z.array(z.string().min(1)).default([]),
    }),
  }),
]);

/** HTTP API targets (issue 15; src/protocols/http). */
const httpConnection = z.strictObject({
  name,
  type: z.literal("http"),
  baseUrl: z.url({ protocol: /^https?$/ }).describe("the target's base URL, e.g. https://api.example.com/v1 (its path prefix is kept)"),
  via: viaSchema,
  auth: httpAuth.optional().describe("the credential the gateway injects (bearer | basic | header | query | oauth2ClientCredentials)"),
  groups: z.array(group).default([]),
  tlsCa: secretRef.optional().describe("CA bundle (PEM) to verify the target's certificate; default: the system CAs"),
  tlsCert: secretRef.optional().describe("client certificate (PEM) presented to the target"),
  tlsKey: secretRef.optional().describe("private key (PEM) of tlsCert"),
  tlsServerName: z.string().optional(),
  port: z.number().int().min(0).max(65535).optional().describe("also serve this connection on its own port (no path prefix); bound on listen.http's host"),
  hostName: z.string().min(1).max(253).optional().describe("also serve this connection to requests whose Host is this name (no path prefix)"),
});

/** MySQL/MariaDB targets (issue 14; src/protocols/mysql). */
const mysqlConnection = z.strictObject({
  name,
  type: z.literal("mysql"),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(3306),
  via: viaSchema,
  database: z.string().min(1).describe("the database the session works in; switching to another is refused"),
  user: z.string().min(1).describe("the account the gateway logs in as"),
  password: secretRef.optional(),
  groups: z.array(group).default([]),
  sslmode: z.enum(["disable", "prefer", "require", "verify-ca", "verify-full"]).default("prefer").describe("TLS to the target, as libpq's sslmode"),
  sslRootCert: secretRef.optional(),
  sslServerName: z.string().optional(),
  serverPublicKey: secretRef.optional().describe("the target's RSA public key (PEM) for caching_sha2_password without TLS; default: asked of the target"),
});

/**
 * Upstream MCP servers (issue 16, gateway half; src/protocols/mcp/gateway): by Streamable HTTP
 * (`url`, with `auth` as an http connection's) or by a command the gateway runs (`command`,
 * `args`, `env` values as secret references).
 */
const mcpConnection = z
  .strictObject({
    name,
    type: z.literal("mcp"),
    url: z.url({ protocol: /^https?$/ }).optional().describe("the upstream's Streamable HTTP endpoint, e.g. https://mcp.example.com/mcp"),
    auth: httpAuth.optional().describe("the credential the gateway injects on the HTTP upstream (bearer | basic | header | query | oauth2ClientCredentials)"),
    tlsCa: secretRef.optional().describe("CA bundle (PEM) to verify the HTTP upstream; default: the system CAs"),
    command: z.string().min(1).max(4096).optional().describe("a stdio upstream: the program the gateway runs"),
    args: z.array(z.string().max(65_536)).max(1000).default([]),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,200}$/, "expected an environment variable name"), secretRef).default({}).describe("environment of the stdio upstream: NAME: secret reference"),
    cwd: z.string().min(1).optional(),
    groups: z.array(group).default([]),
    pinning: z
      .enum(["admin", "first-use"])
      .default("admin")
      .describe("admin: tools are hidden until an admin pins them (airlock mcp pin); first-use: the first contact pins them. Either way a changed tool is hidden until an admin accepts it"),
    rateLimits: z
      .array(z.strictObject({ tools: z.array(z.string().min(1)).default(["*"]), calls: z.number().int().min(1).max(1_000_000_000), per: duration }))
      .default([])
      .describe("per principal × tool call windows (rate limits and budgets)"),
    timeout: duration.default(60_000).describe("how long the gateway waits for the upstream's answer to one request"),
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024 * 1024)
      .default(4 * 1024 * 1024)
      .describe("the largest message the gateway accepts from the upstream (bytes, default 4 MiB); a larger answer fails the call with GW_LIMIT"),
  })
  .refine((c) => (c.url === undefined) !== (c.command === undefined), { message: "an mcp connection needs exactly one of url (Streamable HTTP) or command (stdio)" })
  .refine((c) => c.command !== undefined || (Object.keys(c.env).length === 0 && c.cwd === undefined), { message: "env and cwd belong to a stdio upstream (command)" })
  .refine((c) => c.url !== undefined || (c.auth === undefined && c.tlsCa === undefined), { message: "auth and tlsCa belong to an HTTP upstream (url)" });

/** An OpenSSH public key line: `type base64 [comment]`. */
const SSH_KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}( .*)?$/;

/** SSH targets (issue 6; src/protocols/ssh). */
const sshConnection = z
  .strictObject({
    name,
    type: z.literal("ssh"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    via: viaSchema,
    user: z.string().min(1).describe("the account the gateway logs in as"),
    privateKey: secretRef.optional().describe("OpenSSH/PEM private key (secret reference)"),
    passphrase: secretRef.optional().describe("passphrase of an encrypted privateKey"),
    password: secretRef.optional(),
    hostKey: z.string().regex(SSH_KEY_LINE, 'expected the target\'s public host key as in known_hosts: "ssh-ed25519 AAAA…"').describe("pinned target host key; a mismatch refuses the session"),
    groups: z.array(group).default([]),
  })
  .refine((c) => c.privateKey !== undefined || c.password !== undefined, { message: "an ssh connection needs privateKey or password" });

const connection = z.discriminatedUnion("type", [postgresConnection, sshConnection, redisConnection, httpConnection, kubernetesConnection, mysqlConnection, mcpConnection], {
  error: (issue) => {
    const input: unknown = issue.input;
    const type = typeof input === "object" && input !== null && "type" in input ? input.type : undefined;
    return `unknown connection type${typeof type === "string" ? ` "${type}"` : ""} (supported: postgres, mysql, ssh, redis, http, kubernetes, mcp)`;
  },
});

/** Each connection type's schema, as the YAML validates it (the console's forms are generated from these). */
export const connectionTypeSchemas = {
  postgres: postgresConnection,
  mysql: mysqlConnection,
  redis: redisConnection,
  ssh: sshConnection,
  http: httpConnection,
  kubernetes: kubernetesConnection,
  mcp: mcpConnection,
} as const;
/** One connection entry as the YAML validates it. */
export const connectionSchema = connection;

const stringList = z.array(z.string().min(1));

/**
 * A policy's `match` as written: flat, every kind's keys (src/policy/match.ts); `kind` is
 * optional and inferred from the keys and the policy's connections in parseConfig, which turns
 * it into the typed union (PolicyMatch).
 */
/** A comparison on a planner estimate (`match.cost`, `match.estimatedRows`). */
const numberCompare = z
  .strictObject({ gt: z.number().optional(), gte: z.number().optional() })
  .refine((c) => c.gt !== undefined || c.gte !== undefined, { message: "give gt or gte" });

const policyMatch = z.strictObject({
  kind: z.enum(MATCH_KINDS as [MatchKind, ...MatchKind[]]).optional().describe("the kind of target the keys are about; inferred from the keys (and the policy's connections) when left out"),
  operations: stringList.optional(),
  relations: stringList.optional(),
  columns: stringList.optional(),
  functions: stringList.optional(),
  noWhere: z.boolean().optional(),
  statementRegex: z.string().optional(),
  cost: numberCompare.optional().describe("the planner's total cost estimate (EXPLAIN) of the statement, asked before it runs"),
  estimatedRows: numberCompare.optional().describe("the rows the planner estimates the statement returns or touches"),
  commands: stringList.optional(),
  arguments: z
    .union([stringList, z.record(z.string().min(1).max(1000), z.string().max(10_000))])
    .optional()
    .describe("shell: argument patterns; mcp: predicates on the tool call's arguments, [\"$.path OP VALUE\"] or { \"$.path\": \"OP VALUE\" }"),
  forwardTo: stringList.optional(),
  keys: stringList.optional(),
  methods: stringList.optional(),
  paths: stringList.optional(),
  query: stringList.optional(),
  headers: stringList.optional(),
  body: stringList.optional(),
  verbs: stringList.optional(),
  resources: stringList.optional(),
  namespaces: stringList.optional(),
  names: stringList.optional(),
  tools: stringList.optional(),
});

const policy = z.strictObject({
  name,
  connections: stringList.default(["*"]),
  groups: stringList.optional(),
  match: policyMatch.optional(),
  /** A CEL expression that must also hold (src/policy/cel.ts): compiled and type-checked at load. */
  when: z.string().min(1).optional().describe("CEL expression over principal, groups, connection, operations, relations, now, hour, weekday, budgets and the facts of the match kind (http: method, path, query, headers; redis: command, keys; shell: command, argv; kubernetes: verb, resource, ns, name; mcp: tool, arguments); the policy applies only when it is true"),
  action: z.enum(["deny", "require_approval", "require_grant", "mask", "allow"]),
  message: z.string().optional(),
  approvers: stringList.optional(),
  /** require_approval: distinct approvers needed (any deny denies). Default 1. */
  minApprovals: z.number().int().min(1).max(10).optional(),
  /** require_approval: how long a request waits for its decision (default 10m). */
  timeout: duration.optional(),
  /** require_approval: wait (the client waits) or async (refused at once; the approved re-send runs once). Default wait. */
  mode: z.enum(["wait", "async"]).optional(),
  columns: stringList.optional(),
  detectors: z.array(detectorNameSchema).optional(),
  /** mask: the countries whose national phone formats the `phone` detector knows (ISO 3166 codes; default: a built-in list). */
  phoneRegions: z.array(z.string()).optional(),
  strategy: z.enum(["redact", "partial", "hash", "null"]).optional(),
  /** Limits (any action): rows beyond are dropped, with a notice, and the statement cancelled. */
  maxRows: z.number().int().min(0).optional(),
  /** Timed by the gateway: a statement running longer is cancelled on the target (the session's own statement_timeout is the client's). */
  statementTimeout: duration.optional(),
  /** Sessions are read-only: injected at connect, writes and attempts to switch it off are refused. */
  readOnly: z.boolean().optional(),
  /** require_approval on SQL writes: run the statement first in a rolled-back transaction and show the approver what it would do. */
  preview: z.boolean().optional(),
  /** require_approval: a write whose preview changes more rows (all tables) is refused. Implies preview. */
  maxAffectedRows: z.number().int().min(0).optional(),
  /** require_approval with preview: how far the repeated preview at execution may move from the approved one (rows, or "10%"). Default 0. */
  previewTolerance: z.union([z.number().int().min(0), z.string().regex(/^\d+(\.\d+)?%$/, "a number of rows or a percentage like 10%")]).optional(),
});

/** `secrets.storeKey`: Vault transit (the key stays in Vault), or a reference to the key itself. */
const storeKeyRef = z.union([
  z
    .string()
    .regex(/^vault-transit:(?:[A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/u)
    .transform((s) => {
      const [mount, name] = s.slice("vault-transit:".length).includes("/") ? (s.slice("vault-transit:".length).split("/") as [string, string]) : ["transit", s.slice("vault-transit:".length)];
      return { kind: "vault-transit" as const, mount, name };
    }),
  secretRef,
]);
export type StoreKeyRef = z.infer<typeof storeKeyRef>;

export const configSchema = z.strictObject({
  dataDir: z.string().default("./.airlock").describe("embedded store, keys, recordings, admin credential"),
  secrets: z
    .strictObject({
      refreshInterval: duration.default(300_000).describe("how long a value read from a secret store is used before it is read again (rotation without restart)"),
      vault: vaultConfig.optional(),
      aws: awsSecretsConfig.optional().describe("AWS Secrets Manager for aws-sm: references"),
      gcp: gcpSecretsConfig.optional().describe("Google Secret Manager for gcp-sm: references"),
      azure: azureSecretsConfig.optional().describe("Azure Key Vault for azure-kv: references"),
      storeKey: storeKeyRef
        .optional()
        .describe(
          "the key-encryption key of secrets the console stores: vault-transit:[MOUNT/]KEYNAME (Vault's transit engine, needs secrets.vault), or a reference to 32 bytes (base64 or hex), e.g. env:NAME or file:PATH; default AIRLOCK_SECRET_KEY, else <dataDir>/keys/secrets.key",
        ),
      previousStoreKeys: z.array(storeKeyRef).default([]).describe("older key-encryption keys that still open stored secrets during a rotation (airlock secrets rotate-key), never seal"),
    })
    .default({ refreshInterval: 300_000, previousStoreKeys: [] }),
  store: z
    .strictObject({
      url: secretRef.optional().describe("PostgreSQL URL for the store instead of the embedded one"),
      embedded: z
        .enum(["sqlite", "pglite"])
        .optional()
        .describe("embedded store engine (without url): sqlite (default for a new dataDir) or pglite (default when <dataDir>/store already holds a PGlite store)"),
    })
    .default({}),
  instance: z
    .strictObject({
      id: z
        .string()
        .regex(INSTANCE_ID_RE, "letters, digits, '.', '_' or '-', at most 63, starting with a letter or digit")
        .optional()
        .describe("this gateway's instance id (its audit chain in a shared store); default: AIRLOCK_INSTANCE_ID, else generated once into <dataDir>/instance-id"),
      heartbeatInterval: duration.default(2_000).describe("how often this gateway tells the shared store it is alive"),
      staleAfter: duration
        .default(15_000)
        .describe("a gateway silent this long is taken as dead: a survivor closes its sessions as lost (keep well above heartbeatInterval)"),
      drainTimeout: duration.default(30_000).describe("on SIGTERM: how long live sessions may take to finish before they are ended"),
    })
    .default({ heartbeatInterval: 2_000, staleAfter: 15_000, drainTimeout: 30_000 }),
  listen: z
    .strictObject({
      api: listenAddress.optional(),
      postgres: listenAddress.optional(),
      mysql: listenAddress.optional(),
      ssh: listenAddress.optional(),
      redis: listenAddress.optional(),
      http: listenAddress.optional(),
      agents: listenAddress.optional().describe("agent tunnels only (WebSocket at /agent/connect), TLS with the gateway's certificate when it has one; agents may also use the API listener"),
    })
    .default({}),
  tls: z
    .strictObject({
      cert: secretRef.optional().describe("PEM certificate for the client-facing listeners"),
      key: secretRef.optional().describe("PEM private key for cert"),
      selfSigned: z.boolean().default(false).describe("generate a self-signed certificate under dataDir"),
      require: z.boolean().default(false).describe("refuse clients that do not use TLS"),
    })
    .default({ selfSigned: false, require: false }),
  tokens: z
    .strictObject({
      defaultTtl: duration.default(15 * 60_000),
      maxTtl: duration.default(24 * 3_600_000),
      endSessionsAtExpiry: z.boolean().default(true),
    })
    .default({ defaultTtl: 15 * 60_000, maxTtl: 24 * 3_600_000, endSessionsAtExpiry: true }),
  recording: z
    .strictObject({
      maxRowsPerStatement: z.number().int().min(0).max(100_000).default(100),
      maxValueBytes: z.number().int().min(16).max(1_048_576).default(1024),
    })
    .default({ maxRowsPerStatement: 100, maxValueBytes: 1024 }),
  audit: z
    .strictObject({
      fsync: z.boolean().default(false).describe("fsync the local audit log on every group commit"),
      sinks: z.array(auditSink).default([]).describe("where audit records are exported (each follows the chain on its own cursor)"),
      /** How often each sink is sent the chain head (`audit.head`). */
      headInterval: duration.default(60_000),
    })
    .default({ fsync: false, sinks: [], headInterval: 60_000 }),
  limits: z
    .strictObject({
      maxMessageBytes: z.number().int().min(1024).max(1_073_741_824).default(64 * 1_048_576),
      connectTimeout: duration.default(10_000),
      authTimeout: duration.default(30_000),
      maxUnauthenticated: z
        .number()
        .int()
        .min(1)
        .default(1000)
        .describe("client connections not yet authenticated, in total (more are refused at once)"),
      maxUnauthenticatedPerAddress: z
        .number()
        .int()
        .min(1)
        .default(100)
        .describe("client connections not yet authenticated from one source address"),
      sqlMaxBytes: z.number().int().min(1024).max(16 * 1_048_576).default(1_048_576).describe("longest statement the SQL parser is given (UTF-8 bytes); longer is refused"),
      sqlMaxDepth: z.number().int().min(16).max(10_000).default(1_000).describe("deepest nesting (brackets, CASE, chained operators) the SQL parser is given; deeper is refused"),
      sqlParseTimeout: duration.default(5_000).describe("time budget of one parse in a parser thread (and of the wait for one)"),
    })
    .default({
      maxMessageBytes: 64 * 1_048_576,
      connectTimeout: 10_000,
      authTimeout: 30_000,
      maxUnauthenticated: 1000,
      maxUnauthenticatedPerAddress: 100,
      sqlMaxBytes: 1_048_576,
      sqlMaxDepth: 1_000,
      sqlParseTimeout: 5_000,
    }),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    })
    .default({ level: "info" }),
  ssh: z
    .strictObject({
      hostKey: secretRef.optional().describe("the gateway's SSH host key (OpenSSH private key); default: generated once as <dataDir>/ssh_host_ed25519_key"),
    })
    .default({})
    .describe("the SSH listener (listen.ssh)"),
  serviceAccounts: z.array(serviceAccount).default([]),
  oidc: z.array(oidcIssuer).default([]),
  saml: samlSchema.optional(),
  roles: rolesSchema,
  login: loginSchema,
  connections: z.array(connection).default([]),
  agents: agentsConfigSchema,
  policies: z.array(policy).default([]),
  /** Notifications and access grants for approvals: src/approvals/config-schema.ts. */
  approvals: approvalsSchema,
  /** Budgets and rate limits per principal or group and connection (src/policy/budgets.ts). */
  budgets: z.array(budgetSchema).default([]),
  /** Results scanned before the agent reads them (src/scan). */
  resultScan: resultScanSchema,
  /** Planted values no legitimate task reads (src/scan/canaries.ts). */
  canaries: z.array(canarySchema).max(100).default([]),
});

export type RawConfig = z.input<typeof configSchema>;
type ParsedConfig = z.output<typeof configSchema>;
export type ServiceAccountConfig = ParsedConfig["serviceAccounts"][number];
/** A policy with its match typed by kind (inferred in parseConfig). */
export type PolicyConfig = Omit<ParsedConfig["policies"][number], "match"> & { readonly match?: PolicyMatch };
export type OidcIssuerConfig = ParsedConfig["oidc"][number];

export interface Config extends Omit<ParsedConfig, "connections" | "policies"> {
  readonly connections: readonly Connection[];
  readonly policies: readonly PolicyConfig[];
  /** The file it came from, if any (relative paths resolve against its directory). */
  readonly source?: string;
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path
        .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
        .join("");
      return `${path === "" ? "(top level)" : path}: ${issue.message}`;
    })
    .join("\n");
}

/** What a partial document (a policy or connection entered in the web console) is checked against besides itself. */
export interface ParseContext {
  /** Connections defined elsewhere that policies' `connections:` may name (their type settles a match's kind). */
  readonly knownConnections?: readonly { readonly name: string; readonly type: Connection["type"] }[];
  /** Whether approvals.grants is configured elsewhere (require_grant policies need it). */
  readonly grants?: boolean;
}

/** Validate an already-parsed document. Throws GatewayError GW_CONFIG naming each bad key. */
export function parseConfig(doc: unknown, source?: string, context: ParseContext = {}): Config {
  const result = configSchema.safeParse(doc ?? {});
  if (!result.success) {
    throw new GatewayError("GW_CONFIG", `invalid configuration${source === undefined ? "" : ` in ${source}`}:\n${formatIssues(result.error)}`);
  }
  const parsed = result.data;
  const problems: string[] = [];
  const seen = new Set<string>();
  parsed.connections.forEach((c, i) => {
    if (seen.has(c.name)) problems.push(`connections[${i}].name: duplicate connection "${c.name}"`);
    seen.add(c.name);
    if (c.type === "http" && (c.tlsCert === undefined) !== (c.tlsKey === undefined)) problems.push(`connections[${i}]: tlsCert and tlsKey must be given together`);
    if (c.type === "postgres" && (c.sslmode === "verify-ca" || c.sslmode === "verify-full") && c.sslRootCert === undefined) {
      // Without a CA bundle the system roots are used; that is allowed.
    }
  });
  const sinkNames = new Set<string>();
  parsed.audit.sinks.forEach((k, i) => {
    if (sinkNames.has(k.name)) problems.push(`audit.sinks[${i}].name: duplicate sink "${k.name}"`);
    sinkNames.add(k.name);
  });
  const accounts = new Set<string>();
  parsed.serviceAccounts.forEach((s, i) => {
    s.sshPublicKeys.forEach((k, j) => {
      if (!SSH_KEY_LINE.test(k.trim())) problems.push(`serviceAccounts[${i}].sshPublicKeys[${j}]: expected an OpenSSH public key line ("ssh-ed25519 AAAA… comment")`);
    });
    if (accounts.has(s.name)) problems.push(`serviceAccounts[${i}].name: duplicate service account "${s.name}"`);
    accounts.add(s.name);
  });
  const policyNames = new Set<string>();
  const policies: PolicyConfig[] = [];
  parsed.policies.forEach((p, i) => {
    const { match, ...rest } = p;
    let kind: MatchKind | undefined;
    if (match === undefined) policies.push(rest);
    else {
      const inferred = inferMatchKind(match, typesNamed(p.connections, [...parsed.connections, ...(context.knownConnections ?? [])]));
      if ("problem" in inferred) problems.push(`policies[${i}].${inferred.problem}`);
      else {
        kind = inferred.kind;
        policies.push({ ...rest, match: typedMatch(match, inferred.kind) });
      }
    }
    if (kind === "http" && p.match !== undefined) problems.push(...httpMatchProblems(p.match).map((m) => `policies[${i}].match.${m}`));
    if (p.when !== undefined) {
      // The facts of `when:` depend on the kind of event: a policy with it needs a match that says which.
      if (kind === undefined) {
        if (match === undefined) problems.push(`policies[${i}].when: needs a match that says the kind of event (e.g. match: { methods: ["*"] } for HTTP, { commands: ["*"] } for Redis, { operations: ["*"] } for SQL)`);
      } else if (kind === "shell" && p.match?.forwardTo !== undefined) {
        problems.push(`policies[${i}].when: is read for programs, not for port forwards (forwardTo)`);
      } else {
        const problem = whenProblem(p.when, kind);
        if (problem !== undefined) problems.push(`policies[${i}].when: ${problem} (facts of ${kind} policies)`);
      }
    }
    if (kind === "mcp" && p.match !== undefined) problems.push(...mcpMatchProblems(p.match).map((m) => `policies[${i}].match.${m}`));
    if (kind !== "mcp" && p.match?.arguments !== undefined && !Array.isArray(p.match.arguments)) {
      problems.push(`policies[${i}].match.arguments: a map of JSON paths is for mcp connections; shell arguments are a list of patterns`);
    }
    if (policyNames.has(p.name)) problems.push(`policies[${i}].name: duplicate policy "${p.name}"`);
    policyNames.add(p.name);
    // A redis match (`keys`, `commands`) with no detectors masks what it matches whole.
    // So does a kubernetes one: the values of Secrets' `data` it matches, decoded, masked whole.
    const redisMatch = kind === "redis" || kind === "kubernetes";
    if (p.action === "mask" && p.columns === undefined && p.detectors === undefined && !redisMatch) {
      problems.push(`policies[${i}]: a mask policy needs columns and/or detectors`);
    }
    if (p.action !== "mask" && (p.columns !== undefined || p.detectors !== undefined || p.strategy !== undefined || p.phoneRegions !== undefined)) {
      problems.push(`policies[${i}]: columns/detectors/strategy/phoneRegions belong to mask policies (use match.columns to match statements)`);
    }
    p.phoneRegions?.forEach((code, j) => {
      if (!isPhoneRegion(code)) problems.push(`policies[${i}].phoneRegions[${j}]: unknown phone region "${code}" (expected an ISO 3166 country code such as "DE")`);
    });
    if (p.phoneRegions !== undefined && !(p.detectors ?? []).includes("phone")) {
      problems.push(`policies[${i}].phoneRegions: only the phone detector reads it; add phone to detectors`);
    }
    if (p.match !== undefined && (p.statementTimeout !== undefined || p.readOnly !== undefined)) {
      problems.push(`policies[${i}]: statementTimeout and readOnly apply to whole sessions and cannot be combined with match`);
    }
    if (p.action === "require_approval" && (p.approvers === undefined || p.approvers.length === 0)) {
      problems.push(`policies[${i}].approvers: require_approval needs at least one approver group`);
    }
    if (p.action !== "require_approval" && (p.minApprovals !== undefined || p.timeout !== undefined || p.mode !== undefined)) {
      problems.push(`policies[${i}]: minApprovals/timeout/mode belong to require_approval policies`);
    }
    if (p.action === "require_grant" && parsed.approvals.grants === undefined && context.grants !== true) {
      problems.push(`policies[${i}]: require_grant needs approvals.grants (who approves access requests)`);
    }
  });
  problems.push(...identityProblems(parsed));
  problems.push(...agentProblems(parsed));
  if ((parsed.tls.cert === undefined) !== (parsed.tls.key === undefined)) {
    problems.push("tls: cert and key must be given together");
  }
  if (problems.length > 0) {
    throw new GatewayError("GW_CONFIG", `invalid configuration${source === undefined ? "" : ` in ${source}`}:\n${problems.join("\n")}`);
  }
  const baseDir = source === undefined ? process.cwd() : dirname(resolve(source));
  const connections: Connection[] = parsed.connections.map((c): Connection => {
    if (c.type === "ssh") {
      const { privateKey, passphrase, password, ...rest } = c;
      return {
        ...rest,
        ...(privateKey === undefined ? {} : { privateKey: resolveFileRef(privateKey, baseDir) }),
        ...(passphrase === undefined ? {} : { passphrase: resolveFileRef(passphrase, baseDir) }),
        ...(password === undefined ? {} : { password: resolveFileRef(password, baseDir) }),
      };
    }
    if (c.type === "kubernetes") {
      const { ca, token, clientCert, clientKey, tlsServerName, ...rest } = c;
      return {
        ...rest,
        ...(tlsServerName === undefined ? {} : { tlsServerName }),
        ...(ca === undefined ? {} : { ca: resolveFileRef(ca, baseDir) }),
        ...(token === undefined ? {} : { token: resolveFileRef(token, baseDir) }),
        ...(clientCert === undefined ? {} : { clientCert: resolveFileRef(clientCert, baseDir) }),
        ...(clientKey === undefined ? {} : { clientKey: resolveFileRef(clientKey, baseDir) }),
      };
    }
    if (c.type === "redis") {
      const { password, tlsCa, user, tlsServerName, ...rest } = c;
      return {
        ...rest,
        ...(user === undefined ? {} : { user }),
        ...(tlsServerName === undefined ? {} : { tlsServerName }),
        // An agent-side reference names a path on the agent host: it is not resolved here.
        ...(password === undefined ? {} : { password: c.credentialsOn === "agent" ? password : resolveFileRef(password, baseDir) }),
        ...(tlsCa === undefined ? {} : { tlsCa: resolveFileRef(tlsCa, baseDir) }),
      };
    }
    if (c.type === "http") return httpConnectionOf(c, baseDir);
    if (c.type === "mcp") return mcpConnectionOf(c, baseDir);
    if (c.type === "mysql") {
      const { password, sslRootCert, sslServerName, serverPublicKey, ...rest } = c;
      return {
        ...rest,
        ...(password === undefined ? {} : { password: resolveFileRef(password, baseDir) }),
        ...(sslRootCert === undefined ? {} : { sslRootCert: resolveFileRef(sslRootCert, baseDir) }),
        ...(sslServerName === undefined ? {} : { sslServerName }),
        ...(serverPublicKey === undefined ? {} : { serverPublicKey: resolveFileRef(serverPublicKey, baseDir) }),
      };
    }
    const { password, sslRootCert, sslServerName, pool, ...rest } = c;
    return {
      ...rest,
      pool: pool === false ? { maxIdle: 0, idleTimeoutMs: 0 } : { maxIdle: pool.maxIdle, idleTimeoutMs: pool.idleTimeout },
      // An agent-side reference names a path on the agent host: it is not resolved here.
      ...(password === undefined ? {} : { password: c.credentialsOn === "agent" ? password : resolveFileRef(password, baseDir) }),
      ...(sslRootCert === undefined ? {} : { sslRootCert: resolveFileRef(sslRootCert, baseDir) }),
      ...(sslServerName === undefined ? {} : { sslServerName }),
    };
  });
  return {
    ...parsed,
    dataDir: resolve(baseDir, parsed.dataDir),
    connections,
    policies,
    ...(source === undefined ? {} : { source: resolve(source) }),
  };
}

function httpConnectionOf(c: z.output<typeof httpConnection>, baseDir: string): Connection {
  const { auth, tlsCa, tlsCert, tlsKey, tlsServerName, port, hostName, ...rest } = c;
  const f = (r: SecretRef): SecretRef => resolveFileRef(r, baseDir);
  const a: HttpAuth =
    auth === undefined
      ? { type: "none" }
      : "bearer" in auth
        ? { type: "bearer", token: f(auth.bearer) }
        : "basic" in auth
          ? { type: "basic", username: auth.basic.username, password: f(auth.basic.password) }
          : "header" in auth
            ? { type: "header", name: auth.header.name, value: f(auth.header.value) }
            : "query" in auth
              ? { type: "query", name: auth.query.name, value: f(auth.query.value) }
              : { type: "oauth2ClientCredentials", ...auth.oauth2ClientCredentials, clientSecret: f(auth.oauth2ClientCredentials.clientSecret) };
  return {
    ...rest,
    auth: a,
    ...(tlsCa === undefined ? {} : { tlsCa: f(tlsCa) }),
    ...(tlsCert === undefined ? {} : { tlsCert: f(tlsCert) }),
    ...(tlsKey === undefined ? {} : { tlsKey: f(tlsKey) }),
    ...(tlsServerName === undefined ? {} : { tlsServerName }),
    ...(port === undefined ? {} : { port }),
    ...(hostName === undefined ? {} : { hostName: hostName.toLowerCase() }),
  };
}

function mcpConnectionOf(c: z.output<typeof mcpConnection>, baseDir: string): Connection {
  const f = (r: SecretRef): SecretRef => resolveFileRef(r, baseDir);
  const base = {
    type: "mcp" as const,
    name: c.name,
    groups: c.groups,
    pinning: c.pinning,
    rateLimits: c.rateLimits.map((r) => ({ tools: r.tools, calls: r.calls, perMs: r.per })),
    timeoutMs: c.timeout,
    maxMessageBytes: c.maxMessageBytes,
  };
  if (c.url !== undefined) {
    const http = httpConnectionOf({ name: c.name, type: "http", baseUrl: c.url, groups: c.groups, ...(c.auth === undefined ? {} : { auth: c.auth }) }, baseDir);
    const auth = http.type === "http" ? http.auth : ({ type: "none" } as const);
    return { ...base, upstream: { transport: "http", url: c.url, auth, ...(c.tlsCa === undefined ? {} : { tlsCa: f(c.tlsCa) }) } };
  }
  const env: Record<string, SecretRef> = {};
  for (const [k, v] of Object.entries(c.env)) env[k] = f(v);
  return {
    ...base,
    upstream: { transport: "stdio", command: c.command ?? "", args: c.args, env, ...(c.cwd === undefined ? {} : { cwd: resolve(baseDir, c.cwd) }) },
  };
}

function resolveFileRef(ref: SecretRef, baseDir: string): SecretRef {
  return ref.kind === "file" ? { kind: "file", path: resolve(baseDir, ref.path) } : ref;
}

/** Read and validate a YAML file. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new GatewayError("GW_CONFIG", `cannot read configuration file ${path}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, maxAliasCount: 100 });
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new GatewayError("GW_CONFIG", `${path} is not valid YAML: ${detail}`, { cause: e });
  }
  return parseConfig(doc, path);
}

/** The JSON Schema of the configuration file (shipped as schema/airlock.schema.json). */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" });
}
