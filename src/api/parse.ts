import type { z } from "zod";
import { GatewayError } from "../core/errors.js";

/**
 * Parse an API request's body or query with its schema: the value, or GW_BAD_REQUEST naming
 * the first bad field (`what` when the whole value is wrong).
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue === undefined || issue.path.length === 0 ? what : issue.path.map(String).join(".");
  throw new GatewayError("GW_BAD_REQUEST", `${path}: ${issue?.message ?? "invalid"}`);
}
