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
