/**
 * The approval page: what a person reaches from the link in a notification (Slack, email,
 * webhook `url`), server-rendered, no scripts.
 *
 *   GET  /approvals/:id   the request, its votes, and Approve / Deny (with a reason)
 *   POST /approvals/:id   form: csrf, vote=approve|deny, reason?  → 303 back to the page
 *
 * Who is looking: the browser's Airlock login, an HttpOnly cookie (`airlock_web`, Path
 * /approvals, SameSite=Lax) holding the Airlock token minted at the browser login
 * (identity-routes.ts: `/v1/auth/oidc/login?return=/approvals/ID`, or SAML). It is verified like
 * any bearer token on every request (expiry, revocation, principal blocks). A browser without
 * one is sent to the configured login and comes back to the page.
 *
 * Invariants:
 * - Deciding is ApprovalService.decide, as for the API and the CLI: the approver role, the
 *   request's approver groups, never the requester, minApprovals, an audit record per vote
 *   written before it counts.
 * - Who may see a request is the API's rule (approvals-routes.ts `visibleTo`); anything else
 *   is "not found", so ids of other people's requests are not confirmed.
 * - A POST must come from this origin (Origin header, and Sec-Fetch-Site when sent) and carry
 *   the CSRF token bound to the login cookie (HMAC of the cookie under a per-process key);
 *   the cookie is SameSite=Lax, so other sites' forms do not even send it.
 * - The statement is shown as notifications show it (notify.ts): invisible characters as
 *   `\uXXXX`, passwords and tokens redacted; everything is HTML-escaped.
 */
import { describePreview } from "../core/preview.js";
import { describeObjects } from "../approvals/binding.js";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import { noticeParams, noticeStatement, placeholders, PLACEHOLDER_NOTE, visible } from "../approvals/notify.js";
import { ApprovalService, type RequestView } from "../approvals/service.js";
import { GatewayError, isGatewayError, type ErrorCode } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { RolesSettings } from "../identity/config-schema.js";
import { readCookie } from "../identity/login-state.js";
import { rolesFor } from "../identity/roles.js";
import { scrubSecrets } from "../observability/logger.js";
import type { ApprovalRow } from "../store/approvals.js";
import { visibleTo } from "./approvals-routes.js";
import type { Caller } from "./auth.js";
import { escapeHtml, sendPage } from "./pages.js";
import type { ApiDeps } from "./server.js";

/** The browser's Airlock login (an Airlock token), sent only to the approval pages. */
export const WEB_SESSION_COOKIE = "airlock_web";
export const APPROVAL_PAGE_PATH = "/approvals";
/** Browsers drop bigger cookies; a dropped login cookie would send the browser round the login forever. */
const MAX_COOKIE_TOKEN = 3800;
const FORM_BODY_LIMIT = 8 * 1024;
const ID = /^apr_[A-Za-z0-9]{1,96}$/u;
const TOKEN_SHAPE = /^[A-Za-z0-9\-._~+/]+=*$/u;

/** A browser login started by the web console returns here, then to `/` (console-routes.ts). */
export const CONSOLE_RETURN = "/";
export const CONSOLE_LOGIN_FINISH = "/v1/console/login/oidc/finish";

export type LoginPath = "/v1/auth/oidc/login" | "/v1/auth/saml/login";

export interface ApprovalPageDeps {
  readonly approvals: ApprovalService;
  /** Verifies the login cookie's token (the gateway's authenticator). */
  readonly authenticate: (token: string) => Promise<Principal>;
  readonly roles?: RolesSettings;
  /** Where a browser without an Airlock login goes; undefined when no browser login is configured. */
  readonly loginPath?: LoginPath;
  /** Origins the page is served from (login.publicUrl, approvals.publicUrl); none = the request's own. */
  readonly origins: readonly string[];
  readonly logger: Logger;
}

/** The page's path for a request id, or undefined if `value` is not exactly one (open-redirect guard). */
export function safeReturnPath(value: unknown): string | undefined {
  // The web console's own sign-in (console-routes.ts) returns to the console's root.
  if (value === CONSOLE_RETURN) return CONSOLE_RETURN;
  if (typeof value !== "string" || !value.startsWith(`${APPROVAL_PAGE_PATH}/`)) return undefined;
  const id = value.slice(APPROVAL_PAGE_PATH.length + 1);
  return ID.test(id) ? value : undefined;
}

/**
 * End of a browser login that started on the approval page: keep the Airlock token in the
 * login cookie and send the browser back to the page (303: the IdP may have POSTed here).
 */
export function completeWebLogin(reply: FastifyReply, minted: { readonly token: string; readonly expiresAt: Date }, returnTo: string, secure: boolean): FastifyReply {
  if (minted.token.length > MAX_COOKIE_TOKEN || !TOKEN_SHAPE.test(minted.token)) {
    return sendPage(
      reply,
      400,
      "Login too large",
      `<h1>Login too large</h1><p>Your identity carries too many groups for a browser login. Use <code>airlock approvals</code> on the command line.</p>`,
    );
  }
  const maxAge = Math.max(0, Math.floor((minted.expiresAt.getTime() - Date.now()) / 1000));
  // The console's login: the token waits (one minute, one path) for the console to take it.
  const consoleLogin = returnTo === CONSOLE_RETURN;
  const path = consoleLogin ? CONSOLE_LOGIN_FINISH : APPROVAL_PAGE_PATH;
  return reply
    .header("set-cookie", `${WEB_SESSION_COOKIE}=${minted.token}; HttpOnly; SameSite=Lax; Path=${path}; Max-Age=${consoleLogin ? Math.min(60, maxAge) : maxAge}${secure ? "; Secure" : ""}`)
    .header("cache-control", "no-store")
    .header("referrer-policy", "no-referrer")
    .redirect(consoleLogin ? CONSOLE_LOGIN_FINISH : returnTo, 303);
}

/** The page's dependencies from the API's (server.ts). */
export function approvalPageDepsFrom(deps: ApiDeps, approvals: ApprovalService, publicUrl: string | undefined): ApprovalPageDeps {
  const identity = deps.identity;
  const loginPath: LoginPath | undefined =
    identity === undefined ? undefined : identity.oidc.some((o) => o.clientId !== undefined) ? "/v1/auth/oidc/login" : identity.saml === undefined ? undefined : "/v1/auth/saml/login";
  const origins = [identity?.login.publicUrl, publicUrl].flatMap((u) => (u === undefined ? [] : [new URL(u).origin]));
  return {
    approvals,
    authenticate: deps.authenticate ?? ((token) => deps.tokens.verify(token)),
    ...(deps.roles === undefined ? {} : { roles: deps.roles }),
    ...(loginPath === undefined ? {} : { loginPath }),
    origins,
    logger: deps.logger,
  };
}

// ------------------------------------------------------------------------------ rendering

export interface PageModel {
  readonly view: RequestView;
  readonly viewer: Principal;
  /** Present when the viewer may vote now: the form's CSRF token. */
  readonly csrf?: string;
  /** Why the viewer cannot vote (shown instead of the form), when it cannot. */
  readonly cannotDecide?: string;
  readonly now: Date;
}

/** Text from a request, for HTML: invisible characters shown, then escaped. */
function text(s: string): string {
  return escapeHtml(visible(s));
}

function formatMs(ms: number): string {
  if (ms <= 0) return "0s";
  if (ms >= 3_600_000) return `${Math.floor(ms / 3_600_000)}h ${Math.floor((ms % 3_600_000) / 60_000)}m`;
  if (ms >= 60_000) return `${Math.floor(ms / 60_000)}m ${Math.floor((ms % 60_000) / 1000)}s`;
  return `${Math.ceil(ms / 1000)}s`;
}

function when(d: Date): string {
  return `<time datetime="${escapeHtml(d.toISOString())}">${escapeHtml(d.toISOString().replace("T", " ").replace(/\.\d+Z$/u, " UTC"))}</time>`;
}

function row(label: string, valueHtml: string, id?: string): string {
  return `<dt>${escapeHtml(label)}</dt><dd${id === undefined ? "" : ` id="${id}"`}>${valueHtml}</dd>`;
}

function paramsHtml(r: ApprovalRow): string {
  if (r.params !== undefined) {
    const items = noticeParams(r.params).map((p, i) => `<tr><th>$${i + 1}</th><td>${p === null ? "<i>NULL</i>" : `<code>${text(p)}</code>`}</td></tr>`);
    return items.length === 0 ? "" : `<h2>Parameters</h2><table id="params">${items.join("")}</table>`;
  }
  return placeholders(r) ? `<p class="note" id="placeholder-note">${escapeHtml(PLACEHOLDER_NOTE)}</p>` : "";
}

/** The page body for one request (pure: tested without a server). */
export function renderApprovalPage(m: PageModel): { title: string; body: string } {
  const r = m.view.request;
  const approvals = m.view.votes.filter((v) => v.vote === "approve").length;
  const title = `${r.kind === "grant" ? "Access request" : "Approval request"} ${r.id}`;
  const status = `<span class="badge ${escapeHtml(r.status)}" id="status">${escapeHtml(r.status)}</span>`;
  const what =
    r.kind === "grant"
      ? `<b>${text(r.requesterName)}</b> asks for access to <b>${text(r.connection)}</b> for ${escapeHtml(formatMs(r.durationMs ?? 0))}.`
      : `<b>${text(r.requesterName)}</b> wants to run a ${escapeHtml(r.protocol === "ssh" ? "command" : "statement")} on <b>${text(r.connection)}</b>.`;
  const details = [
    row("Requester", `${text(r.requesterName)} <code>${text(r.requesterId)}</code>`, "requester"),
    row("Connection", `${text(r.connection)}${r.protocol === undefined ? "" : ` (${escapeHtml(r.protocol)})`}`, "connection"),
    ...(r.summary === undefined
      ? []
      : [row("Classification", `${r.summary.operations.map(text).join(", ") || "—"}${r.summary.relations.length === 0 ? "" : ` on ${r.summary.relations.map(text).join(", ")}`}`, "classification")]),
    ...(r.summary?.objects === undefined
      ? []
      : [
          row(
            "Acts on",
            `${describeObjects(r.summary.objects).map(text).join("<br>") || "—"}<br><small>search_path ${text(r.summary.objects.searchPath)}; checked again when it runs: if a name then resolves to another object, it is refused</small>`,
            "objects",
          ),
        ]),
    ...(r.summary?.preview === undefined
      ? []
      : [
          row(
            "Preview",
            `<pre>${describePreview(r.summary.preview).map(text).join("\n")}</pre><small>run in a transaction that was rolled back; repeated when it runs: if it would then do something else, it is refused</small>`,
            "preview",
          ),
        ]),
    ...(r.rule === undefined ? [] : [row("Rule", `<code>${text(r.rule)}</code>${r.message === undefined ? "" : ` — ${text(scrubSecrets(r.message))}`}`, "rule")]),
    ...(r.reason === undefined ? [] : [row("Reason", text(scrubSecrets(r.reason)), "reason")]),
    row("Approvers", `${r.approvers.map(text).join(", ")} — ${approvals} of ${r.minApprovals} approval${r.minApprovals === 1 ? "" : "s"}`, "approvers"),
    ...(r.mode === undefined ? [] : [row("Mode", escapeHtml(r.mode))]),
    row("Requested", when(r.createdAt)),
    row(
      r.status === "pending" ? "Expires" : r.status === "expired" ? "Expired" : "Deadline",
      `${when(r.expiresAt)}${r.status === "pending" ? ` (in ${escapeHtml(formatMs(r.expiresAt.getTime() - m.now.getTime()))})` : ""}`,
      "expires",
    ),
    ...(r.decidedAt === undefined ? [] : [row("Decided", `${when(r.decidedAt)}${r.decisionReason === undefined ? "" : ` — ${text(r.decisionReason)}`}`, "decided")]),
  ];
  const statement =
    r.statement === undefined
      ? ""
      : `<h2>${r.protocol === "ssh" ? "Command" : "Statement"}</h2><pre id="statement">${escapeHtml(noticeStatement(r.statement))}</pre>
<p class="note">Invisible characters are shown as <code>\\uXXXX</code>; passwords and tokens as <code>[redacted]</code>. <code>airlock approvals show ${escapeHtml(r.id)}</code> prints the exact text.</p>`;
  const votes =
    m.view.votes.length === 0
      ? `<p class="note" id="votes">No votes yet.</p>`
      : `<table id="votes"><tr><th>Approver</th><th>Vote</th><th>Reason</th><th>When</th></tr>${m.view.votes
          .map(
            (v) =>
              `<tr><td>${text(v.approverName)}</td><td class="${v.vote === "approve" ? "approved" : "denied"}">${v.vote === "approve" ? "approved" : "denied"}</td><td>${v.reason === undefined ? "" : text(v.reason)}</td><td>${when(v.at)}</td></tr>`,
          )
          .join("")}</table>`;
  const decide =
    m.csrf !== undefined
      ? `<h2>Your decision</h2>
<form method="post" action="${escapeHtml(`${APPROVAL_PAGE_PATH}/${encodeURIComponent(r.id)}`)}">
<input type="hidden" name="csrf" value="${escapeHtml(m.csrf)}">
<label for="reason">Reason (optional; the requester sees it when you deny)</label>
<textarea id="reason" name="reason" rows="3" maxlength="2000"></textarea>
<div class="actions"><button class="approve" type="submit" name="vote" value="approve" id="approve">Approve</button><button class="deny" type="submit" name="vote" value="deny" id="deny">Deny</button></div>
</form>`
      : m.cannotDecide === undefined
        ? ""
        : `<div class="notice" id="cannot-decide">${escapeHtml(m.cannotDecide)}</div>`;
  const body = `<h1>${escapeHtml(title)} ${status}</h1>
<p class="sub">${what}</p>
<dl>${details.join("\n")}</dl>
${statement}
${paramsHtml(r)}
<h2>Votes</h2>
${votes}
${decide}
<footer>Signed in as ${text(m.viewer.name)} · Airlock</footer>`;
  return { title, body };
}

// ------------------------------------------------------------------------------ routes

const idParam = z.object({ id: z.string().regex(ID) });
const decideForm = z.object({
  csrf: z.string().min(1).max(200),
  vote: z.enum(["approve", "deny"]),
  reason: z.string().max(2000).optional(),
});

function errorPage(reply: FastifyReply, status: number, title: string, message: string, headers?: Record<string, string>): FastifyReply {
  return sendPage(reply, status, title, `<h1>${escapeHtml(title)}</h1><div class="notice error" id="error">${escapeHtml(message)}</div>`, headers === undefined ? {} : { headers });
}

const PAGE_STATUS: Partial<Readonly<Record<ErrorCode, number>>> = {
  GW_FORBIDDEN: 403,
  GW_ACCESS_DENIED: 403,
  GW_NOT_FOUND: 404,
  GW_CONFLICT: 409,
  GW_BAD_REQUEST: 400,
  GW_LIMIT: 409,
};

function statusOf(e: GatewayError): number {
  return PAGE_STATUS[e.code] ?? (e.code.startsWith("GW_AUTH_") ? 401 : 500);
}

const CLEAR_COOKIE = `${WEB_SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=${APPROVAL_PAGE_PATH}; Max-Age=0`;

export function registerApprovalPage(app: FastifyInstance, deps: ApprovalPageDeps): void {
  // Per-process key for CSRF tokens: a restart only means reloading the page before deciding.
  const csrfKey = randomBytes(32);
  const csrfOf = (cookie: string): string => createHmac("sha256", csrfKey).update(`airlock-approval-page\u0000${cookie}`).digest("base64url");
  const pub = { config: { airlockAccess: "public" as const } };

  /** The browser's login: the caller and its cookie, "none" (no cookie), or "invalid" (one that no longer verifies). */
  const login = async (request: FastifyRequest): Promise<{ caller: Caller; cookie: string } | "none" | "invalid"> => {
    const cookie = readCookie(request.headers.cookie, WEB_SESSION_COOKIE);
    if (cookie === undefined || cookie === "") return "none";
    if (cookie.length > MAX_COOKIE_TOKEN || !TOKEN_SHAPE.test(cookie)) return "invalid";
    try {
      const principal = await deps.authenticate(cookie);
      return { caller: { principal, roles: rolesFor(principal, deps.roles) }, cookie };
    } catch (e) {
      deps.logger.debug({ err: e }, "approval page: the login cookie does not verify");
      return "invalid";
    }
  };

  const sameOrigin = (request: FastifyRequest): boolean => {
    const origin = request.headers.origin;
    if (typeof origin !== "string") return false;
    const site = request.headers["sec-fetch-site"];
    if (typeof site === "string" && site !== "same-origin") return false;
    const allowed = deps.origins.length > 0 ? deps.origins : [`${request.protocol}://${request.host}`];
    return allowed.includes(origin);
  };

  void app.register((child, _opts, done) => {
    child.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: FORM_BODY_LIMIT }, (_req, body, parsed) => {
      const out: Record<string, string> = {};
      for (const [k, v] of new URLSearchParams(typeof body === "string" ? body : body.toString("utf8"))) {
        if (k in out) {
          parsed(new GatewayError("GW_BAD_REQUEST", `field ${k} given more than once`), undefined);
          return;
        }
        out[k] = v;
      }
      parsed(null, out);
    });
    // Errors here are pages, not JSON.
    child.setErrorHandler(async (error: unknown, request, reply) => {
      if (isGatewayError(error) && statusOf(error) < 500) return errorPage(reply, statusOf(error), "Request refused", error.message);
      const status = typeof error === "object" && error !== null && "statusCode" in error && typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
      if (status === 500) deps.logger.error({ err: error, route: request.routeOptions.url }, "approval page failed");
      return errorPage(reply, status, status === 500 ? "Something went wrong" : "Request refused", status === 500 ? "internal gateway error" : "invalid request");
    });

    child.get(`${APPROVAL_PAGE_PATH}/:id`, pub, async (request, reply) => {
      const p = idParam.safeParse(request.params);
      if (!p.success) return errorPage(reply, 404, "Not found", "no such approval request");
      const id = p.data.id;
      const who = await login(request);
      if (typeof who === "string") {
        const clear = who === "invalid" ? { "set-cookie": CLEAR_COOKIE } : undefined;
        if (deps.loginPath === undefined) {
          return errorPage(reply, 401, "Sign-in needed", `This gateway has no browser login (oidc[].clientId or saml:). Decide with: airlock approvals approve ${id}`, clear);
        }
        if (clear !== undefined) void reply.header("set-cookie", CLEAR_COOKIE);
        return reply
          .header("cache-control", "no-store")
          .header("referrer-policy", "no-referrer")
          .redirect(`${deps.loginPath}?return=${encodeURIComponent(`${APPROVAL_PAGE_PATH}/${id}`)}`, 302);
      }
      const { caller, cookie } = who;
      const view = await deps.approvals.get(id);
      if (view === undefined || !visibleTo(caller, view.request)) return errorPage(reply, 404, "Not found", `no approval request ${id} that you may see`);
      const r = view.request;
      const isAdmin = caller.roles.includes("admin");
      let cannotDecide: string | undefined;
      if (r.status !== "pending") cannotDecide = `This request is ${r.status}; nothing is left to decide.`;
      else if (r.requesterId === caller.principal.id) cannotDecide = "This is your own request: someone in the approver groups decides it.";
      else if (!caller.roles.includes("approver") || !ApprovalService.mayDecide(caller.principal, r, isAdmin)) {
        cannotDecide = `Only people with the approver role in ${r.approvers.join(", ")} (or an admin) decide this request.`;
      } else if (view.votes.some((v) => v.approverId === caller.principal.id)) {
        cannotDecide = "You have voted on this request; it waits for more approvals.";
      }
      const html = renderApprovalPage({ view, viewer: caller.principal, now: new Date(), ...(cannotDecide === undefined ? { csrf: csrfOf(cookie) } : { cannotDecide }) });
      return sendPage(reply, 200, html.title, html.body, { formAction: "self", referrer: "same-origin" });
    });

    child.post(`${APPROVAL_PAGE_PATH}/:id`, pub, async (request, reply) => {
      // Cross-site requests are refused before anything else is looked at.
      if (!sameOrigin(request)) return errorPage(reply, 403, "Request refused", "this form must be sent from the approval page itself (cross-site request refused)");
      const p = idParam.safeParse(request.params);
      if (!p.success) return errorPage(reply, 404, "Not found", "no such approval request");
      const id = p.data.id;
      const who = await login(request);
      if (typeof who === "string") {
        return errorPage(reply, 401, "Sign-in needed", "Your Airlock login has ended: open the request's link again to sign in.", who === "invalid" ? { "set-cookie": CLEAR_COOKIE } : undefined);
      }
      const form = decideForm.safeParse(request.body ?? {});
      if (!form.success) return errorPage(reply, 400, "Request refused", "the form is incomplete: reload the page and try again");
      const expected = Buffer.from(csrfOf(who.cookie));
      const given = Buffer.from(form.data.csrf);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return errorPage(reply, 403, "Request refused", "the form has expired or was not issued to this login: reload the page and try again");
      }
      const { caller } = who;
      const existing = await deps.approvals.get(id);
      if (existing === undefined || !visibleTo(caller, existing.request)) return errorPage(reply, 404, "Not found", `no approval request ${id} that you may see`);
      // As on the API: deciding needs the approver role (roles.approver groups, or admin) ...
      if (!caller.roles.includes("approver") && caller.principal.id !== existing.request.requesterId) {
        return errorPage(reply, 403, "Not decided", `${caller.principal.id} may not decide approval requests (needs role approver)`);
      }
      // ... and the request's own rules: its approver groups, never one's own, one vote each (ApprovalService).
      const reason = form.data.reason?.trim();
      try {
        await deps.approvals.decide(id, caller.principal, form.data.vote, reason === undefined || reason === "" ? undefined : reason, caller.roles.includes("admin"));
      } catch (e) {
        if (!isGatewayError(e)) throw e;
        const status = statusOf(e);
        if (status >= 500) deps.logger.error({ err: e, approvalId: id }, "approval page: the decision failed");
        return errorPage(reply, status, "Not decided", status >= 500 ? (e.code === "GW_AUDIT_UNAVAILABLE" ? e.message : "internal gateway error") : e.message);
      }
      return reply.header("cache-control", "no-store").redirect(`${APPROVAL_PAGE_PATH}/${encodeURIComponent(id)}`, 303);
    });
    done();
  });
}
