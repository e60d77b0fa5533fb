/**
 * Configuration of budgets (`budgets:`), result scanning (`resultScan:`) and canaries
 * (`canaries:`): zod schemas the configuration file's schema (runtime/config.ts) includes.
 */
import { z } from "zod";
import { durationSchema, nameSchema } from "../runtime/schema-parts.js";

const stringList = z.array(z.string().min(1));

export const budgetSchema = z
  .strictObject({
    name: nameSchema,
    connections: stringList.default(["*"]).describe("connection names or globs it counts on (each connection has its own counters)"),
    groups: stringList.optional().describe("principals in any of these groups (default: everyone)"),
    principals: stringList.optional().describe("principal names or ids (ci-bot, sa:ci-bot)"),
    per: z.enum(["principal", "group"]).default("principal").describe("principal: counters per principal; group: one shared counter for everyone it covers"),
    window: durationSchema.describe("fixed time window the limits apply to (1m, 1h, 1d)"),
    rows: z.number().int().min(1).optional().describe("rows read (results delivered to the client)"),
    bytes: z.number().int().min(1).optional().describe("bytes of result rows delivered to the client"),
    statements: z.number().int().min(1).optional().describe("statements and commands judged"),
    warnAt: z.number().gt(0).max(1).default(0.8).describe("fraction of a limit at which the client is warned once (a NOTICE)"),
  })
  .refine((b) => b.rows !== undefined || b.bytes !== undefined || b.statements !== undefined, { message: "a budget needs at least one of rows, bytes, statements" })
  .refine((b) => b.window >= 1000, { message: "window must be at least 1s" });

export const resultScanSchema = z
  .strictObject({
    injection: z
      .strictObject({
        action: z
          .enum(["off", "annotate", "mask", "end_session"])
          .default("annotate")
          .describe("annotate: a NOTICE (SQL) naming the flagged columns; mask: the value is replaced by [PROMPT_INJECTION]; end_session: the session ends"),
        connections: stringList.default(["*"]),
        groups: stringList.optional(),
      })
      .optional()
      .describe("prompt-injection detection in text result values"),
  })
  .default({});

export const canarySchema = z.strictObject({
  name: nameSchema,
  values: z
    .array(z.string().min(8).max(256))
    .min(1)
    .max(1000)
    .describe("planted values (at least 8 characters); a result value containing one trips the canary"),
  connections: stringList.default(["*"]),
  action: z.enum(["alert", "end_session", "revoke"]).default("revoke").describe("alert: audit and notify; end_session: also end the session; revoke: also revoke the token"),
  webhook: z.url().optional().describe("POSTed a JSON alert (canary, session, principal, connection; never the value)"),
});

export type BudgetInput = z.output<typeof budgetSchema>;
export type ResultScanConfig = z.output<typeof resultScanSchema>;
export type CanaryConfig = z.output<typeof canarySchema>;
