/**
 * Control-plane routes for approvals and access requests (README "Approvals").
 *
 * Every route needs only the `user` role; what a caller may see or decide is checked per
 * request: the requester sees its own requests, members of a request's approver groups (and the
 * admin) see and decide it, admins and auditors see everything. Nobody decides their own request.
 *
 *   GET  /v1/approvals[?status=pending&kind=statement|grant&limit=N]
 *   GET  /v1/approvals/:id
 *   POST /v1/approvals/:id/approve   {reason?}
 *   POST /v1/approvals/:id/deny      {reason?}
 *   POST /v1/access/requests         {connection, duration, reason}
 *   GET  /v1/access/requests[?status=…]
 *   GET  /v1/access/requests/:id, POST /v1/access/requests/:id/approve|deny (same as above)
 *   POST /v1/access/requests/:id/revoke  {reason?}   end an approved grant now
 */
import { parseInput } from "./parse.js";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { GatewayError } from "../core/errors.js";
import { ApprovalService, type RequestView } from "../approvals/service.js";
import type { ApprovalRow, DeliveryRow, VoteRow } from "../store/approvals.js";
import { parseDuration } from "../runtime/duration.js";
import { callerOf, type Caller } from "./auth.js";

export interface ApprovalRoutesDeps {
  readonly approvals: ApprovalService;
  /** Delivery records of a request's notifications (shown to admins). */
  readonly deliveries?: (requestId: string) => Promise<readonly DeliveryRow[]>;
  /** `approvals.publicUrl`: the approval page (approval-page.ts) accepts forms from its origin. */
  readonly publicUrl?: string;
}

const idParam = z.object({ id: z.string().min(1).max(100) });
const listQuery = z.object({
  status: z.enum(["pending", "approved", "denied", "expired", "cancelled", "revoked"]).optional(),
  kind: z.enum(["statement", "grant"]).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const decideBody = z.strictObject({ reason: z.string().max(2000).optional() });
const accessBody = z.strictObject({
  connection: z.string().min(1).max(200),
  duration: z.union([z.string().min(1).max(50), z.number().int().positive()]),
  reason: z.string().min(1).max(2000),
});


function seesAll(caller: Caller): boolean {
  return caller.roles.includes("admin") || caller.roles.includes("auditor");
}

/** Who may see a request (the API and the approval page): admins and auditors, its requester, those who may decide it. */
export function visibleTo(caller: Caller, r: ApprovalRow): boolean {
  return seesAll(caller) || r.requesterId === caller.principal.id || ApprovalService.mayDecide(caller.principal, r, caller.roles.includes("admin"));
}

function voteJson(v: VoteRow): Record<string, unknown> {
  return {
    approver: { id: v.approverId, kind: v.approverKind, name: v.approverName },
    vote: v.vote,
    ...(v.reason === undefined ? {} : { reason: v.reason }),
    at: v.at.toISOString(),
  };
}

export function approvalJson(r: ApprovalRow, votes?: readonly VoteRow[]): Record<string, unknown> {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    requester: { id: r.requesterId, kind: r.requesterKind, name: r.requesterName },
    connection: r.connection,
    ...(r.protocol === undefined ? {} : { protocol: r.protocol }),
    ...(r.sessionId === undefined ? {} : { sessionId: r.sessionId }),
    ...(r.statement === undefined ? {} : { statement: r.statement }),
    ...(r.params === undefined ? {} : { params: r.params }),
    ...(r.summary === undefined ? {} : { summary: r.summary }),
    ...(r.rule === undefined ? {} : { rule: r.rule }),
    ...(r.message === undefined ? {} : { message: r.message }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    approvers: r.approvers,
    minApprovals: r.minApprovals,
    ...(r.mode === undefined ? {} : { mode: r.mode }),
    ...(r.durationMs === undefined ? {} : { durationMs: r.durationMs }),
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    ...(r.decidedAt === undefined ? {} : { decidedAt: r.decidedAt.toISOString() }),
    ...(r.decisionReason === undefined ? {} : { decisionReason: r.decisionReason }),
    ...(r.usableUntil === undefined ? {} : { usableUntil: r.usableUntil.toISOString() }),
    ...(r.usedAt === undefined ? {} : { usedAt: r.usedAt.toISOString() }),
    ...(votes === undefined ? {} : { votes: votes.map(voteJson), approvals: votes.filter((v) => v.vote === "approve").length }),
  };
}

export function registerApprovalRoutes(app: FastifyInstance, deps: ApprovalRoutesDeps): void {
  const user = { config: { airlockAccess: "user" as const } };
  // Deciding needs the approver role (members of any approver group, and admins: identity/roles.ts);
  // which requests, the request's own approver groups (ApprovalService.mayDecide).
  const approver = { config: { airlockAccess: "approver" as const } };
  const service = deps.approvals;

  const list = (kind?: "statement" | "grant") => async (request: FastifyRequest) => {
    const q = parseInput(listQuery, request.query, "query");
    const caller = callerOf(request);
    const k = kind ?? q.kind;
    const rows = await service.list({ ...(q.status === undefined ? {} : { status: q.status }), ...(k === undefined ? {} : { kind: k }), limit: q.limit });
    return { requests: rows.filter((r) => visibleTo(caller, r)).map((r) => approvalJson(r)) };
  };

  const show = async (request: FastifyRequest) => {
    const { id } = parseInput(idParam, request.params, "id");
    const caller = callerOf(request);
    const view = await service.get(id);
    // Not visible = not found: ids of other people's requests are not confirmed.
    if (view === undefined || !visibleTo(caller, view.request)) throw new GatewayError("GW_NOT_FOUND", `no approval request ${id}`);
    const deliveries = caller.roles.includes("admin") && deps.deliveries !== undefined ? await deps.deliveries(id) : undefined;
    return {
      request: approvalJson(view.request, view.votes),
      ...(deliveries === undefined
        ? {}
        : {
            deliveries: deliveries.map((d) => ({
              channel: d.channel,
              event: d.event,
              attempt: d.attempt,
              ok: d.ok,
              ...(d.httpStatus === undefined ? {} : { httpStatus: d.httpStatus }),
              ...(d.error === undefined ? {} : { error: d.error }),
              at: d.at.toISOString(),
            })),
          }),
    };
  };

  const decide = (vote: "approve" | "deny") => async (request: FastifyRequest) => {
    const { id } = parseInput(idParam, request.params, "id");
    const body = parseInput(decideBody, request.body, "body");
    const caller = callerOf(request);
    const existing = await service.get(id);
    if (existing === undefined || !visibleTo(caller, existing.request)) throw new GatewayError("GW_NOT_FOUND", `no approval request ${id}`);
    const view: RequestView = await service.decide(id, caller.principal, vote, body.reason, caller.roles.includes("admin"));
    return { request: approvalJson(view.request, view.votes) };
  };

  app.get("/v1/approvals", user, list());
  app.get("/v1/approvals/:id", user, show);
  app.post("/v1/approvals/:id/approve", approver, decide("approve"));
  app.post("/v1/approvals/:id/deny", approver, decide("deny"));

  app.post("/v1/access/requests", user, async (request, reply) => {
    const body = parseInput(accessBody, request.body, "body");
    let durationMs: number;
    try {
      durationMs = typeof body.duration === "number" ? body.duration : parseDuration(body.duration);
    } catch {
      throw new GatewayError("GW_BAD_REQUEST", `duration: invalid duration "${String(body.duration)}" (use e.g. 30m, 2h)`);
    }
    const caller = callerOf(request);
    const row = await service.requestGrant(caller.principal, body.connection, durationMs, body.reason);
    return reply.code(201).send({ request: approvalJson(row, []) });
  });
  app.get("/v1/access/requests", user, list("grant"));
  app.get("/v1/access/requests/:id", user, show);
  app.post("/v1/access/requests/:id/approve", approver, decide("approve"));
  app.post("/v1/access/requests/:id/deny", approver, decide("deny"));
  app.post("/v1/access/requests/:id/revoke", user, async (request) => {
    const { id } = parseInput(idParam, request.params, "id");
    const body = parseInput(decideBody, request.body, "body");
    const caller = callerOf(request);
    const existing = await service.get(id);
    if (existing === undefined || !visibleTo(caller, existing.request)) throw new GatewayError("GW_NOT_FOUND", `no approval request ${id}`);
    const view = await service.revokeGrant(id, caller.principal, caller.roles.includes("admin"), body.reason);
    return { request: approvalJson(view.request, view.votes) };
  });
}
