/**
 * Control-plane authentication and authorization.
 *
 * Every route declares the access it needs in its route config (`airlockAccess`). A route that
 * declares nothing needs the admin role — new routes are closed by default. One `onRequest`
 * hook (before the body is even read) authenticates the caller into a Principal, derives its
 * roles, and refuses the request unless the route's role is among them. Roles for people and
 * service accounts slot in by extending `rolesOf`.
 */
import type { FastifyRequest } from "fastify";
import { GatewayError } from "../core/errors.js";
import { ADMIN_PRINCIPAL } from "../core/principal.js";
import type { Principal } from "../core/principal.js";
import { ADMIN_TOKEN_PREFIX, adminTokenMatches } from "../identity/admin.js";
import type { RolesSettings } from "../identity/config-schema.js";
import { rolesFor } from "../identity/roles.js";
import type { ControlPlaneRole } from "../identity/roles.js";
import type { TokenService } from "../identity/tokens.js";

/**
 * Control-plane roles. `admin` configures and can do everything; `approver` decides approval
 * requests (and only those whose policy names one of its groups: checked per request);
 * `auditor` reads sessions, recordings and audit; `user` is any authenticated principal
 * (its own tokens, its own approval and access requests).
 */
export type { ControlPlaneRole } from "../identity/roles.js";
export type RouteAccess = "public" | ControlPlaneRole;

declare module "fastify" {
  interface FastifyContextConfig {
    /** What a caller needs to use this route. Absent = "admin". */
    airlockAccess?: RouteAccess;
  }
}

export const DEFAULT_ROUTE_ACCESS: RouteAccess = "admin";

export interface Caller {
  readonly principal: Principal;
  readonly roles: readonly ControlPlaneRole[];
}

/** Roles of a principal: every authenticated principal is a `user`; others by group (`roles:` in the config). */
export function rolesOf(principal: Principal, settings?: RolesSettings): readonly ControlPlaneRole[] {
  return rolesFor(principal, settings);
}

/** Parse `Authorization: Bearer <token>` (RFC 6750 §2.1) into a Principal. */
export async function authenticate(
  header: string | undefined,
  deps: {
    readonly adminToken: string;
    readonly tokens: Pick<TokenService, "verify">;
    /** The gateway's authenticator (Airlock tokens and trusted issuers' JWTs); default: Airlock tokens only. */
    readonly authenticate?: (token: string) => Promise<Principal>;
  },
): Promise<Principal> {
  if (header === undefined || header.trim() === "") {
    throw new GatewayError("GW_AUTH_MISSING", "missing credential: send Authorization: Bearer <token>");
  }
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (m === null) throw new GatewayError("GW_AUTH_INVALID", "invalid credential: expected Authorization: Bearer <token>");
  const presented = m[1] ?? "";
  if (presented.startsWith(ADMIN_TOKEN_PREFIX)) {
    if (adminTokenMatches(deps.adminToken, presented)) return ADMIN_PRINCIPAL;
    throw new GatewayError("GW_AUTH_INVALID", "invalid token");
  }
  return deps.authenticate === undefined ? deps.tokens.verify(presented) : deps.authenticate(presented);
}

/** Check the caller may use a route needing `access`. */
export function authorize(caller: Caller, access: RouteAccess): void {
  if (access === "public") return;
  if (!caller.roles.includes(access)) {
    throw new GatewayError("GW_FORBIDDEN", `${caller.principal.id} may not use this route (needs role ${access})`);
  }
}

const callers = new WeakMap<FastifyRequest, Caller>();

export function setCaller(request: FastifyRequest, caller: Caller): void {
  callers.set(request, caller);
}

/** The authenticated caller of a non-public route. */
export function callerOf(request: FastifyRequest): Caller {
  const c = callers.get(request);
  if (c === undefined) throw new GatewayError("GW_INTERNAL", "route reached without authentication");
  return c;
}
