/**
 * What the gateway asks an agent to dial (the OPEN frame's JSON), and why a stream closed (the
 * CLOSE frame's JSON). Parsed with zod at the trust boundary on both sides.
 */
import { z } from "zod";

/** A secret reference the agent resolves on its own host: only env: and file:. */
const agentSecretRef = z
  .string()
  .max(1024)
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/.+)$/, "expected env:NAME or file:/ABSOLUTE/PATH");

export const agentLoginSchema = z.discriminatedUnion("type", [
  z.strictObject({
    /** PostgreSQL: the agent answers the target's password challenge (cleartext, MD5, SCRAM-SHA-256). */
    type: z.literal("postgres"),
    user: z.string().min(1).max(256),
    password: agentSecretRef,
    /** TLS from the agent to the target (the connection's sslmode; absent = disable). The CA is public material. */
    tls: z
      .strictObject({
        sslmode: z.enum(["prefer", "require", "verify-ca", "verify-full"]),
        ca: z.string().max(256 * 1024).optional(),
        serverName: z.string().min(1).max(253),
      })
      .optional(),
  }),
  z.strictObject({
    /** Redis: the agent sends `AUTH [user] password` and hands over the stream once the target said OK. */
    type: z.literal("redis"),
    user: z.string().min(1).max(256).optional(),
    password: agentSecretRef,
  }),
]);
export type AgentLogin = z.infer<typeof agentLoginSchema>;

export const openSpecSchema = z.strictObject({
  host: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535),
  login: agentLoginSchema.optional(),
});
export type OpenSpec = z.infer<typeof openSpecSchema>;

/** Stable codes a CLOSE may carry; the message is safe to log (never a secret). */
export const closeReasonSchema = z.strictObject({
  code: z.enum(["unreachable", "not_allowed", "refused", "login_failed", "bad_request", "shutting_down", "protocol"]),
  message: z.string().max(500),
});
export type CloseReason = z.infer<typeof closeReasonSchema>;

export function parseJsonWith<T>(schema: z.ZodType<T>, bytes: Buffer): T | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
  const r = schema.safeParse(doc);
  return r.success ? r.data : undefined;
}
