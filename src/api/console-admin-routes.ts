/**
 * Console routes for what changes the gateway at run time (besides connection registration in
 * console-routes.ts): policy editing, "test connection", the effective configuration, and the
 * live sessions stream.
 *
 *   GET  /v1/console/config                    auditor: the effective configuration, secrets as references (yaml|json)
 *   POST /v1/console/policies                  admin: create or replace a console policy {document: YAML}
 *   POST /v1/console/policies/:name/delete     admin: remove a console policy
 *   POST /v1/console/policies/order            admin: the order console policies are judged in {names: [...]}
 *   POST /v1/console/connections/:name/test    admin: dial the target with the held credential, ok or the (secret-free) error
 *   GET  /v1/console/sessions/stream           user: the sessions list, live (Server-Sent Events)
 *
 * Every change is audited (`policy.change`, `connection.test`), with the caller as principal.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import { auditPrincipal, type AuditLog } from "../audit/types.js";
import { GatewayError } from "../core/errors.js";
import { callerOf, type Caller } from "./auth.js";
import { parseInput } from "./parse.js";
import { connectionTestResult } from "./console-schemas.js";

export const policySaveBody = z.strictObject({ document: z.string().min(1).max(64 * 1024) });
export const policyOrderBody = z.strictObject({ names: z.array(z.string().min(1).max(200)).max(1000) });
export { policyOrder as policyOrdered } from "./console-schemas.js";
export const configShowQuery = z.object({ format: z.enum(["yaml", "json"]).default("yaml") });

export interface ConsoleAdminDeps {
  readonly policies?: {
    save(text: string, by: string): Promise<{ readonly name: string; readonly action: string }>;
    remove(name: string): Promise<void>;
    reorder(names: readonly string[], by: string): Promise<readonly string[]>;
  };
  readonly testConnection?: (name: string) => Promise<z.infer<typeof connectionTestResult>>;
  readonly effectiveConfig?: () => { readonly yaml: string; readonly json: Record<string, unknown> };
  /** The sessions list the caller may see (the same answer as GET /v1/console/sessions). */
  readonly sessionsFor: (caller: Caller) => Promise<unknown>;
  readonly auditLog?: Pick<AuditLog, "append">;
  readonly logger: Logger;
}

const nameParam = z.object({ name: z.string().min(1).max(200) });
const SSE_INTERVAL_MS = 1000;

/**
 * Serve a Server-Sent Events stream of `event` whose data is `load()`, sent when it changes
 * (checked every second) and a keep-alive comment every 15 s otherwise.
 */
export async function serveSse(request: FastifyRequest, reply: FastifyReply, event: string, load: () => Promise<unknown>, logger: Logger): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", connection: "keep-alive" });
  let last = "";
  const state = { stopped: false };
  const stopped = (): boolean => state.stopped;
  let ticks = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = async (): Promise<void> => {
    if (stopped()) return;
    try {
      const data = JSON.stringify(await load());
      if (data !== last) {
        last = data;
        res.write(`event: ${event}\ndata: ${data}\n\n`);
      } else if (++ticks % 15 === 0) {
        res.write(": keep-alive\n\n");
      }
    } catch (e) {
      logger.warn({ err: e }, `console: ${event} stream update failed`);
    }
    if (!stopped()) timer = setTimeout(() => void tick(), SSE_INTERVAL_MS);
  };
  const stop = (): void => {
    state.stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
  request.raw.once("close", stop);
  res.once("close", stop);
  await tick();
}

export function registerConsoleAdminRoutes(app: FastifyInstance, deps: ConsoleAdminDeps): void {
  const user = { config: { airlockAccess: "user" as const } };
  const auditor = { config: { airlockAccess: "auditor" as const } };
  const admin = { config: { airlockAccess: "admin" as const } };

  const audit = async (request: FastifyRequest, type: "policy.change" | "connection.test", details: Record<string, string | boolean | number>, connection?: string): Promise<void> => {
    await deps.auditLog
      ?.append({ type, principal: auditPrincipal(callerOf(request).principal), ...(connection === undefined ? {} : { connection }), details })
      .catch((e: unknown) => deps.logger.error({ err: e }, `could not audit a ${type}`));
  };

  app.get("/v1/console/config", auditor, async (request, reply) => {
    const q = parseInput(configShowQuery, request.query, "query");
    if (deps.effectiveConfig === undefined) throw new GatewayError("GW_UNSUPPORTED", "this gateway does not show its configuration");
    const e = deps.effectiveConfig();
    void reply.header("cache-control", "no-store");
    switch (q.format) {
      case "yaml":
        return reply.type("application/yaml; charset=utf-8").send(e.yaml);
      case "json":
        return e.json;
    }
  });

  const policies = (): NonNullable<ConsoleAdminDeps["policies"]> => {
    if (deps.policies === undefined) throw new GatewayError("GW_UNSUPPORTED", "policies cannot be edited on this gateway");
    return deps.policies;
  };

  app.post("/v1/console/policies", admin, async (request, reply) => {
    const body = parseInput(policySaveBody, request.body, "body");
    const p = await policies().save(body.document, callerOf(request).principal.id);
    await audit(request, "policy.change", { action: "save", name: p.name, policyAction: p.action });
    return reply.code(201).send({ policy: { name: p.name, action: p.action } });
  });

  app.post("/v1/console/policies/order", admin, async (request) => {
    const body = parseInput(policyOrderBody, request.body, "body");
    const order = await policies().reorder(body.names, callerOf(request).principal.id);
    await audit(request, "policy.change", { action: "reorder", order: order.join(",") });
    return { order: [...order] };
  });

  app.post("/v1/console/policies/:name/delete", admin, async (request) => {
    const { name } = parseInput(nameParam, request.params, "name");
    await policies().remove(name);
    await audit(request, "policy.change", { action: "delete", name });
    return { deleted: name };
  });

  app.post("/v1/console/connections/:name/test", admin, async (request) => {
    const { name } = parseInput(nameParam, request.params, "name");
    if (deps.testConnection === undefined) throw new GatewayError("GW_UNSUPPORTED", "connections cannot be tested on this gateway");
    const result = await deps.testConnection(name);
    await audit(request, "connection.test", { ok: result.ok, ...(result.code === undefined ? {} : { code: result.code }) }, name);
    return result;
  });

  app.get("/v1/console/sessions/stream", user, async (request, reply) => {
    const caller = callerOf(request);
    await serveSse(request, reply, "sessions", () => deps.sessionsFor(caller), deps.logger);
  });
}
