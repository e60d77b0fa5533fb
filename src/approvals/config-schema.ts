/**
 * The `approvals:` block of the configuration file: notifications for approval and access
 * requests, the public URL used in their links, and who may approve time-boxed access grants.
 * (Per-statement approval rules live on `require_approval` policies.)
 */
import { z } from "zod";
import { durationSchema as duration, secretRefSchema as secretRef } from "../runtime/schema-parts.js";

const webhook = z.strictObject({
  /** A secret reference too: Slack incoming-webhook URLs carry their credential in the path. */
  url: secretRef.describe("the receiver's URL (secret reference: Slack webhook URLs are credentials)"),
  /** HMAC-SHA256 key for X-Airlock-Signature. Optional for receivers that cannot verify (Slack). */
  secret: secretRef.optional(),
  format: z.enum(["json", "slack"]).default("json"),
  maxAttempts: z.number().int().min(1).max(10).default(5),
  /** First retry delay; doubled per attempt. */
  retryDelay: duration.default(1000),
  timeout: duration.default(10_000),
});

const email = z.strictObject({
  smtp: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(587),
    /** true = TLS from the start (port 465); false = STARTTLS when offered. */
    secure: z.boolean().default(false),
    user: z.string().optional(),
    password: secretRef.optional(),
  }),
  from: z.string().min(3),
  to: z.array(z.string().min(3)).min(1),
});

const grants = z.strictObject({
  /** Groups whose members may approve access requests (admin always may). */
  approvers: z.array(z.string().min(1)).min(1),
  minApprovals: z.number().int().min(1).max(10).default(1),
  /** The longest grant that may be requested. */
  maxDuration: duration.default(8 * 3_600_000),
  /** How long an access request waits for its decision. */
  timeout: duration.default(60 * 60_000),
  /** Connections (globs) that nobody may use without an active grant, whatever their groups. */
  required: z.array(z.string().min(1)).default([]),
});

export const approvalsSchema = z
  .strictObject({
    /** Base URL of the control-plane API as approvers reach it; links are <publicUrl>/v1/approvals/ID. */
    publicUrl: z.url().optional(),
    webhooks: z.array(webhook).default([]),
    email: email.optional(),
    grants: grants.optional(),
  })
  .default({ webhooks: [] });

export type ApprovalsConfig = z.output<typeof approvalsSchema>;
export type WebhookConfig = ApprovalsConfig["webhooks"][number];
export type EmailConfig = NonNullable<ApprovalsConfig["email"]>;
export type GrantsConfig = NonNullable<ApprovalsConfig["grants"]>;
