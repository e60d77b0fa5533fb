/**
 * SSH session recordings for the control plane (issue 6): `GET /v1/sessions/:id/cast` serves a
 * session's terminal recording as asciicast v2 (`application/x-asciicast`), for `airlock
 * sessions replay` and the web console. Admins and auditors only (like the session itself).
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";

export interface SshRoutesDeps {
  /** The cast of a session; undefined when it has none. Throws GW_BAD_REQUEST for a bad id. */
  readonly readCast: (sessionId: string) => Promise<string | undefined>;
}

const idParam = z.object({ id: z.string().min(1).max(200) });

export function registerSshRoutes(app: FastifyInstance, deps: SshRoutesDeps): void {
  app.get("/v1/sessions/:id/cast", { config: { airlockAccess: "auditor" as const } }, async (request, reply) => {
    const parsed = idParam.safeParse(request.params);
    if (!parsed.success) throw new GatewayError("GW_BAD_REQUEST", "id: invalid session id");
    const cast = await deps.readCast(parsed.data.id);
    if (cast === undefined) throw new GatewayError("GW_NOT_FOUND", `no terminal recording for session ${parsed.data.id}`);
    return reply.type("application/x-asciicast; charset=utf-8").send(cast);
  });
}
