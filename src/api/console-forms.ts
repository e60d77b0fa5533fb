/**
 * The console's connection forms are generated from the same zod schemas the YAML is validated
 * with (src/runtime/config.ts connectionTypeSchemas), served as JSON Schema per connection type,
 * and checked field by field before a save:
 *
 *   GET  /v1/console/connections/form       admin: {types: [{type, schema}], secretFields}
 *   POST /v1/console/connections/validate   admin: a register body → {ok, issues: [{field, message}]}
 *
 * `validate` runs the type's schema on the document as `POST /v1/console/connections` would
 * see it (secret values given under `secrets` stand in as stored), so each problem is named by
 * its field (`hostKey`, `auth.bearer`, …) for the form to show next to it. The save itself
 * validates again (parseConfig, the YAML's full check); its answer is the final word.
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { connectionTypeSchemas } from "../runtime/config.js";
import { registerBody, SECRET_FIELDS } from "../runtime/live-connections.js";
import { parseInput } from "./parse.js";

export const connectionTypeName = z.enum(["postgres", "mysql", "redis", "ssh", "http", "kubernetes", "mcp"]);
export const connectionForm = z.object({
  types: z.array(z.object({ type: connectionTypeName, schema: z.record(z.string(), z.unknown()) })),
  secretFields: z.array(z.string()),
});
export const fieldIssue = z.object({ field: z.string(), message: z.string() });
export const validation = z.object({ ok: z.boolean(), issues: z.array(fieldIssue) });

let cached: z.infer<typeof connectionForm> | undefined;

/** JSON Schema (input side: defaults allowed to be absent) of every connection type. */
export function connectionFormSchemas(): z.infer<typeof connectionForm> {
  cached ??= {
    types: connectionTypeName.options.map((type) => ({
      type,
      schema: z.toJSONSchema(connectionTypeSchemas[type], { io: "input", unrepresentable: "any" }),
    })),
    secretFields: [...SECRET_FIELDS],
  };
  return cached;
}

/** Field-by-field problems of a connection document, as the YAML's schema finds them. */
export function connectionIssues(body: z.infer<typeof registerBody>): z.infer<typeof fieldIssue>[] {
  const doc: Record<string, unknown> = { ...body.connection };
  const issues: z.infer<typeof fieldIssue>[] = [];
  for (const f of SECRET_FIELDS) {
    const v = doc[f];
    if (typeof v === "string" && !v.startsWith("env:") && !v.startsWith("file:")) {
      issues.push({ field: f, message: "give a reference (env:NAME or file:PATH) here, or enter the value to store it encrypted" });
    }
    if (body.secrets[f] !== undefined) doc[f] = "stored-secret";
  }
  const type = connectionTypeName.safeParse(doc["type"]);
  if (!type.success) return [...issues, { field: "type", message: "choose one of postgres, mysql, redis, ssh, http, kubernetes, mcp" }];
  const r = connectionTypeSchemas[type.data].safeParse(doc);
  if (!r.success) {
    for (const i of r.error.issues) {
      // An unknown key is reported on its parent: name the key itself.
      const keys = i.code === "unrecognized_keys" ? i.keys : [undefined];
      for (const k of keys) issues.push({ field: [...i.path, ...(k === undefined ? [] : [k])].map(String).join(".") || "(form)", message: i.message });
    }
  }
  return issues;
}

export function registerConsoleFormRoutes(app: FastifyInstance): void {
  const admin = { config: { airlockAccess: "admin" as const } };
  app.get("/v1/console/connections/form", admin, () => Promise.resolve(connectionFormSchemas()));
  app.post("/v1/console/connections/validate", admin, (request) => {
    const body = parseInput(registerBody, request.body, "body");
    const issues = connectionIssues(body);
    return Promise.resolve({ ok: issues.length === 0, issues });
  });
}
