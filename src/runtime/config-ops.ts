/**
 * Configuration of what the gateway exchanges with operations' systems (issue 20): audit export
 * sinks (`audit.sinks`, src/audit/export) and the secret store (`secrets.vault`, src/secrets).
 * Parts of `configSchema` (config.ts), kept apart so that file stays about targets and policies.
 */
import { z } from "zod";
import { durationSchema as duration, nameSchema as name, secretRefSchema as secretRef } from "./schema-parts.js";

/** Which audit records a sink takes (all given must hold). */
const auditSinkFilter = z
  .strictObject({
    types: z.array(z.string().min(1)).optional().describe("event types, e.g. db.query, auth.failure"),
    decisions: z.array(z.enum(["allow", "deny"])).optional(),
    connections: z.array(z.string().min(1)).optional().describe("connection globs"),
  })
  .default({});

/** The shape of exported records: Airlock's own, or OCSF 1.8 events (src/audit/export/ocsf.ts). */
const auditSinkFormat = z.enum(["airlock", "ocsf"]).default("airlock").describe("airlock: Airlock's audit record; ocsf: OCSF 1.8 events (see the README's mapping table)");

/** Audit export sinks (issue 20; src/audit/export). */
export const auditSink = z.discriminatedUnion("type", [
  z.strictObject({
    name,
    type: z.literal("file"),
    path: z.string().min(1).describe("JSON-lines file, rotated to PATH.1 … PATH.keep"),
    maxBytes: z.number().int().min(1024).default(64 * 1_048_576),
    keep: z.number().int().min(1).max(1000).default(5),
    filter: auditSinkFilter,
    format: auditSinkFormat,
  }),
  z.strictObject({
    name,
    type: z.literal("webhook"),
    url: z.url(),
    secret: secretRef.describe("HMAC-SHA256 key for the x-airlock-signature header"),
    timeout: duration.default(10_000),
    headers: z.record(z.string(), z.string()).default({}),
    filter: auditSinkFilter,
    format: auditSinkFormat,
  }),
  z.strictObject({
    name,
    type: z.literal("syslog"),
    transport: z.enum(["udp", "tcp", "tls"]).default("tcp"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(514),
    facility: z.number().int().min(0).max(23).default(13).describe("RFC 5424 facility (13: log audit)"),
    appName: z.string().min(1).max(48).default("airlock"),
    ca: secretRef.optional().describe("TLS: CA bundle (PEM) of the receiver"),
    servername: z.string().optional(),
    timeout: duration.default(10_000),
    filter: auditSinkFilter,
    format: auditSinkFormat,
  }),
  z.strictObject({
    name,
    type: z.literal("otlp"),
    url: z.url().describe("OTLP/HTTP logs endpoint, e.g. http://collector:4318/v1/logs"),
    headers: z.record(z.string(), secretRef).default({}).describe("request headers (e.g. an API key), values as secret references"),
    serviceName: z.string().min(1).default("airlock"),
    timeout: duration.default(10_000),
    filter: auditSinkFilter,
    format: auditSinkFormat,
  }),
]);

/** Where `vault:` secret references are read (issue 20; src/secrets/vault.ts). */
export const vaultConfig = z.strictObject({
  address: z.url().describe("Vault / OpenBao address, e.g. https://vault.internal:8200"),
  namespace: z.string().min(1).optional().describe("X-Vault-Namespace (Vault Enterprise, OpenBao)"),
  ca: secretRef.optional().describe("PEM CA bundle of an https address"),
  auth: z.union([
    z.strictObject({ token: secretRef.describe("a Vault token") }),
    z.strictObject({
      approle: z.strictObject({ roleId: secretRef, secretId: secretRef, mount: z.string().min(1).default("approle") }),
    }),
    z.strictObject({
      kubernetes: z.strictObject({
        role: z.string().min(1),
        jwt: secretRef.default({ kind: "file", path: "/var/run/secrets/kubernetes.io/serviceaccount/token" }).describe("the pod's service-account token"),
        mount: z.string().min(1).default("kubernetes"),
      }),
    }),
  ]),
  timeout: duration.default(10_000),
});

/** `secrets.aws`: AWS Secrets Manager for `aws-sm:` references (src/secrets/aws-sm.ts). */
export const awsSecretsConfig = z
  .strictObject({
    region: z.string().regex(/^[a-z0-9-]{1,32}$/u).optional().describe("default AWS_REGION / AWS_DEFAULT_REGION (an ARN's own region wins)"),
    endpoint: z.url().optional().describe("instead of https://secretsmanager.REGION.amazonaws.com (VPC endpoint, LocalStack, tests)"),
    profile: z.string().min(1).optional().describe("profile of the shared credentials file (default AWS_PROFILE, else default)"),
    accessKeyId: secretRef.optional().describe("default AWS_ACCESS_KEY_ID, else the profile"),
    secretAccessKey: secretRef.optional(),
    sessionToken: secretRef.optional(),
    timeout: duration.default(10_000),
  })
  .refine((a) => (a.accessKeyId === undefined) === (a.secretAccessKey === undefined), { message: "accessKeyId and secretAccessKey go together", path: ["secretAccessKey"] });

/** `secrets.gcp`: Google Secret Manager for `gcp-sm:` references (src/secrets/gcp-sm.ts). */
export const gcpSecretsConfig = z.strictObject({
  credentials: secretRef.optional().describe("the service-account key JSON, e.g. file:/etc/airlock/gcp-sa.json (default: the file GOOGLE_APPLICATION_CREDENTIALS names)"),
  endpoint: z.url().optional().describe("instead of https://secretmanager.googleapis.com"),
  tokenUri: z.url().optional().describe("instead of the key file's token_uri"),
  timeout: duration.default(10_000),
});

/** `secrets.azure`: Azure Key Vault for `azure-kv:` references (src/secrets/azure-kv.ts). */
export const azureSecretsConfig = z.strictObject({
  tenantId: z.string().regex(/^[A-Za-z0-9.-]{1,128}$/u).describe("Microsoft Entra tenant id (or domain)"),
  clientId: z.string().min(1).describe("the app registration's client id"),
  clientSecret: secretRef.describe("its client secret"),
  authorityHost: z.url().optional().describe("instead of https://login.microsoftonline.com"),
  vaultUrl: z.string().includes("{vault}").optional().describe("the vault URL with {vault} for its name, instead of https://{vault}.vault.azure.net"),
  timeout: duration.default(10_000),
});
