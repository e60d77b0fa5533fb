/**
 * The API's OpenAPI 3.1 document, served at `/openapi.json`. Every registered route appears
 * (from the server's route list, with the role it needs); routes whose shapes have zod schemas
 * (console-schemas.ts and the routes' own) carry them, converted with zod 4's toJSONSchema.
 */
import { z } from "zod";
import type { RegisteredRoute } from "./server.js";
import * as S from "./console-schemas.js";
import { registerBody } from "../runtime/live-connections.js";
import { policyOrderBody, policyOrdered } from "./console-admin-routes.js";
import { connectionForm, validation } from "./console-forms.js";

interface Shapes {
  readonly summary?: string;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  readonly response?: z.ZodType;
  readonly responseType?: string;
}

/** Known shapes by "METHOD url" (fastify's url pattern). */
export const ROUTE_SHAPES: Readonly<Record<string, Shapes>> = {
  "GET /v1/console/session": { summary: "Who is signed in to the console (with the CSRF token), or how to sign in", response: S.consoleSession },
  "POST /v1/console/login": { summary: "Sign the browser in with an Airlock token", body: S.loginBody },
  "GET /v1/console/login/link/:code": { summary: "The demo's one-time login link" },
  "GET /v1/console/login/oidc": { summary: "Start an OIDC login for the console" },
  "POST /v1/console/logout": { summary: "End the console session" },
  "GET /v1/console/approvals": { summary: "Approval and access requests the caller may see", response: S.approvalList },
  "GET /v1/console/approvals/stream": { summary: "Pending requests, live (Server-Sent Events, event `approvals`)", responseType: "text/event-stream" },
  "GET /v1/console/sessions": { summary: "Sessions (own, or all for admins and auditors)", query: S.sessionsQuery, response: S.sessionList },
  "GET /v1/console/sessions/:id": { summary: "A session and its recording", response: S.sessionDetail },
  "GET /v1/console/sessions/:id/cast": { summary: "A session's terminal recording", responseType: "application/x-asciicast" },
  "GET /v1/console/sessions/:id/live": {
    summary: "A session as it is recorded, live (Server-Sent Events: `entry`, `terminal-start`, `terminal`, `end`)",
    responseType: "text/event-stream",
  },
  "GET /v1/console/audit": { summary: "Search the audit log; export as JSONL or CSV", query: S.auditQuery, response: S.auditSearch },
  "GET /v1/console/identities": { summary: "Service accounts, role groups and issued tokens", response: S.identities },
  "GET /v1/console/connections": { summary: "Effective connections (config and console), secrets as references", response: S.connectionList },
  "POST /v1/console/connections": { summary: "Register or change a connection at run time (the YAML's validation; secret values stored encrypted)", body: registerBody },
  "GET /v1/console/connections/form": { summary: "JSON Schema of each connection type, as the YAML validates it (the console's forms)", response: connectionForm },
  "POST /v1/console/connections/validate": { summary: "Check a connection document field by field, without saving", body: registerBody, response: validation },
  "POST /v1/console/connections/:name/disable": { summary: "Disable a console connection (new sessions refused at once)" },
  "POST /v1/console/connections/:name/enable": { summary: "Enable a console connection" },
  "POST /v1/secrets/rotate-key": { summary: "Re-wrap every stored secret's data key under the current key-encryption key (secrets.storeKey); audited secrets.rotate" },
  "GET /v1/console/policies": { summary: "Effective policies", response: S.policyList },
  "POST /v1/console/policies/order": { summary: "Set the order console policies are judged in (after the configuration's)", body: policyOrderBody, response: policyOrdered },
  "GET /v1/agents": { summary: "Connected network-resident agents", response: S.agentList },
  "POST /v1/console/policies/try": { summary: "Evaluate a statement as the live judge would, without running it", body: S.tryBody, response: S.tryResult },
  "GET /v1/audit/verify": { summary: "Verify the audit chain", response: S.auditVerify },
  "POST /v1/tokens": { summary: "Mint a service-account token", body: S.tokenCreateBody, response: S.tokenCreated },
  "POST /v1/approvals/:id/approve": { summary: "Approve a request", body: S.decideBody },
  "POST /v1/approvals/:id/deny": { summary: "Deny a request", body: S.decideBody },
};

function jsonSchema(t: z.ZodType): unknown {
  return z.toJSONSchema(t, { io: "output", unrepresentable: "any" });
}

/** `/v1/x/:id` → `/v1/x/{id}`. */
function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/gu, "{$1}").replace(/\*$/u, "{path}");
}

export function openApiDocument(routes: readonly RegisteredRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const method = r.method.toLowerCase();
    if (method === "head" || method === "options") continue;
    const path = openapiPath(r.url);
    const shapes = ROUTE_SHAPES[`${r.method} ${r.url}`] ?? {};
    const params = [...r.url.matchAll(/:([A-Za-z0-9_]+)/gu)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    const query = shapes.query === undefined ? [] : Object.keys(shapes.query.shape).map((name) => ({ name, in: "query", required: false, schema: { type: "string" } }));
    const op: Record<string, unknown> = {
      ...(shapes.summary === undefined ? {} : { summary: shapes.summary }),
      "x-airlock-access": r.access,
      ...(r.access === "public" ? { security: [] } : {}),
      ...(params.length + query.length === 0 ? {} : { parameters: [...params, ...query] }),
      ...(shapes.body === undefined ? {} : { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(shapes.body) } } } }),
      responses: {
        "200": {
          description: "OK",
          ...(shapes.response !== undefined
            ? { content: { "application/json": { schema: jsonSchema(shapes.response) } } }
            : shapes.responseType === undefined
              ? {}
              : { content: { [shapes.responseType]: {} } }),
        },
        default: { description: "Error", content: { "application/json": { schema: jsonSchema(S.errorBody) } } },
      },
    };
    (paths[path] ??= {})[method] = op;
  }
  return {
    openapi: "3.1.0",
    info: { title: "Airlock control-plane API", version },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An Airlock token, a trusted issuer's JWT, or the admin credential" },
        console: { type: "apiKey", in: "cookie", name: "airlock_console", description: "The web console's session; state-changing requests also need X-Airlock-CSRF" },
      },
    },
    security: [{ bearer: [] }, { console: [] }],
    paths,
  };
}
