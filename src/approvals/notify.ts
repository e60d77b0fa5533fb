/**
 * Notifications about approval and access requests: outgoing webhooks (JSON signed with
 * HMAC-SHA256, or a Slack-compatible incoming-webhook payload) and email over SMTP
 * (nodemailer). Every attempt is recorded in the store (approval_deliveries).
 *
 * Invariants:
 * - Notifying never blocks, approves or denies anything: `notify` returns at once and every
 *   failure ends in a delivery record and a log line.
 * - Secrets (webhook URLs, signing keys, the SMTP password) are resolved here and never appear
 *   in logs, delivery records or API answers: channels are named `webhook[i] <host>` / `email`.
 * - Webhooks are retried with exponential backoff on network errors, timeouts, 429 and 5xx,
 *   up to `maxAttempts`; other 4xx answers are final.
 *
 * Signature: `X-Airlock-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
 * `X-Airlock-Timestamp: <unix seconds>`. The timestamp is inside the MAC so a receiver can
 * refuse replays (e.g. older than 5 minutes). `X-Airlock-Delivery` is the same for every
 * attempt of one notification (receivers deduplicate on it).
 */
import { describeObjects } from "./binding.js";
import { createHmac, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { createTransport, type Transporter } from "nodemailer";
import type { Logger } from "pino";
import type { SecretRef } from "../core/secret.js";
import { scrubSecrets } from "../observability/logger.js";
import type { ApprovalRow, ApprovalStore, DeliveryRow } from "../store/approvals.js";
import type { EmailConfig, WebhookConfig } from "./config-schema.js";

export type NoticeEvent = "approval.requested" | "approval.decided";

export interface Notifier {
  notify(event: NoticeEvent, request: ApprovalRow): void;
  /** Wait for deliveries in flight (shutdown, tests). */
  idle(): Promise<void>;
}

export interface NotifierOptions {
  readonly webhooks: readonly WebhookConfig[];
  readonly email?: EmailConfig;
  readonly publicUrl?: string;
  readonly store: Pick<ApprovalStore, "recordDelivery">;
  readonly resolveSecret: (ref: SecretRef) => Promise<string>;
  readonly logger: Logger;
}

/** `PASSWORD '…'` (also `E'…'` with backslash escapes, and dollar quotes), as in ALTER ROLE or user mappings. */
const SQL_PASSWORD_LITERAL = /\b(password\s+)(?:[eE]'(?:[^'\\]|\\[\s\S]|'')*'|'(?:[^']|'')*'|\$([A-Za-z_]*)\$[\s\S]*?\$\2\$)/giu;
/** `password=…` inside connection strings (dblink, postgres_fdw). */
const CONNINFO_PASSWORD = /\b(password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s'"]+)/giu;

/**
 * A statement as notifications show it. Notifications leave Airlock (Slack, mail servers,
 * webhook receivers), so what looks like a credential is redacted: password literals
 * (`PASSWORD '…'`, `password=…` in connection strings), registered secret values and token
 * shapes. Approvers see the exact text through the API and the CLI (`airlock approvals show`).
 */
export function noticeStatement(text: string): string {
  return visible(scrubSecrets(text.replace(SQL_PASSWORD_LITERAL, "$1'[redacted]'").replace(CONNINFO_PASSWORD, "$1[redacted]")));
}

/**
 * Controls and invisible format characters (bidi overrides, zero-width characters, escape
 * sequences) shown as `\uXXXX`: what approvers read must be what runs, not a rendering the
 * requester arranged ("Trojan Source"). Newlines and tabs stay.
 */
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]|\p{Cf}/gu;

export function visible(text: string): string {
  return text.replace(INVISIBLE, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, "0")}`);
}

/**
 * A request without parameters whose text has `$n` placeholders (SQL `PREPARE … $1`): its values
 * come when the prepared statement is executed, and each execution (EXECUTE, or an
 * extended-protocol Bind, which carries its parameters into its own request) is held on its
 * own. Said wherever approvers read the request.
 */
export const PLACEHOLDER_NOTE = "Parameters ($1, $2, …) are filled when the prepared statement runs: each execution is held for approval on its own, with its values.";

export function placeholders(r: ApprovalRow): boolean {
  return r.params === undefined && r.statement !== undefined && /\$[1-9][0-9]*/u.test(r.statement);
}

export function noticeParams(params: readonly (string | null)[]): (string | null)[] {
  return params.map((p) => (p === null ? null : scrubSecrets(p)));
}

/** The request as notifications show it: what was asked, by whom, and how to decide. */
export function noticePayload(event: NoticeEvent, r: ApprovalRow, publicUrl: string | undefined): Record<string, unknown> {
  return {
    type: event,
    request: {
      id: r.id,
      kind: r.kind,
      status: r.status,
      requester: { id: r.requesterId, kind: r.requesterKind, name: r.requesterName },
      connection: r.connection,
      ...(r.statement === undefined ? {} : { statement: noticeStatement(r.statement) }),
      ...(r.params === undefined ? {} : { params: noticeParams(r.params) }),
      ...(placeholders(r) ? { parameters: "filled at each execution, which is approved on its own" } : {}),
      ...(r.summary === undefined ? {} : { summary: notifiedSummary(r.summary) }),
      ...(r.rule === undefined ? {} : { rule: r.rule }),
      ...(r.reason === undefined ? {} : { reason: visible(scrubSecrets(r.reason)) }),
      ...(r.durationMs === undefined ? {} : { durationMs: r.durationMs }),
      approvers: r.approvers,
      minApprovals: r.minApprovals,
      ...(r.mode === undefined ? {} : { mode: r.mode }),
      createdAt: r.createdAt.toISOString(),
      expiresAt: r.expiresAt.toISOString(),
      ...(r.decidedAt === undefined ? {} : { decidedAt: r.decidedAt.toISOString() }),
      ...(r.decisionReason === undefined ? {} : { decisionReason: r.decisionReason }),
    },
    // `url`: the approval page (people decide there, after signing in); `apiUrl`: the JSON view.
    ...(publicUrl === undefined ? {} : { url: approvalUrl(publicUrl, r.id), apiUrl: approvalApiUrl(publicUrl, r.id) }),
    commands: { approve: `airlock approvals approve ${r.id}`, deny: `airlock approvals deny ${r.id} --reason TEXT` },
  };
}

/** The approval page (src/api/approval-page.ts): what a person clicks in Slack or an email. */
export function approvalUrl(publicUrl: string, id: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/approvals/${encodeURIComponent(id)}`;
}

/** The API's JSON view of a request (needs a bearer token). */
export function approvalApiUrl(publicUrl: string, id: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/v1/approvals/${encodeURIComponent(id)}`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** One line: control characters (CR, LF, …) and line separators become spaces. */
function oneLine(text: string): string {
  return text.replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, " ");
}

/**
 * Text for Slack mrkdwn: invisible characters shown, and `&`, `<` and `>` escaped as Slack
 * requires, so request fields cannot make links (`<https://…|Approve>`), mentions
 * (`<!channel>`) or other markup.
 */
function slackEscape(text: string): string {
  return visible(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Clipped to `max` characters without cutting an entity in half. */
function clipEscaped(escaped: string, max: number): string {
  if (escaped.length <= max) return escaped;
  return `${escaped.slice(0, max - 1).replace(/&[a-z]*$/u, "")}…`;
}

function slackText(text: string, max: number): string {
  return clipEscaped(slackEscape(text), max);
}

/** A Slack code block the text cannot close early: a zero-width space follows every backtick. */
function slackCode(text: string, max: number): string {
  return `\`\`\`${clipEscaped(slackEscape(text).replace(/`/g, "`\u200b"), max - 6)}\`\`\``;
}

function headline(event: NoticeEvent, r: ApprovalRow): string {
  return visible(oneLine(rawHeadline(event, r)));
}

function rawHeadline(event: NoticeEvent, r: ApprovalRow): string {
  const who = r.requesterName;
  if (event === "approval.decided") return `Airlock request ${r.id} for ${who} on ${r.connection}: ${r.status}${r.decisionReason === undefined ? "" : ` (${r.decisionReason})`}`;
  if (r.kind === "grant") return `Airlock: ${who} requests access to ${r.connection} for ${formatMs(r.durationMs ?? 0)}`;
  return `Airlock: ${who} needs approval to run a statement on ${r.connection} (rule ${r.rule ?? "?"})`;
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/** Slack incoming-webhook payload: `text` (fallback) plus Block Kit blocks. */
export function slackPayload(event: NoticeEvent, r: ApprovalRow, publicUrl: string | undefined): Record<string, unknown> {
  const text = slackText(headline(event, r), 2900);
  const blocks: Record<string, unknown>[] = [{ type: "section", text: { type: "mrkdwn", text } }];
  if (r.statement !== undefined) blocks.push({ type: "section", text: { type: "mrkdwn", text: slackCode(noticeStatement(r.statement), 2900) } });
  if (placeholders(r)) blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: slackText(PLACEHOLDER_NOTE, 300) }] });
  const fields = [
    `*Request*\n${slackText(r.id, 100)}`,
    `*Requester*\n${slackText(r.requesterName, 300)}`,
    `*Connection*\n${slackText(r.connection, 300)}`,
    `*Approvers*\n${slackText(`${r.approvers.join(", ")} (${r.minApprovals} needed)`, 500)}`,
    ...(r.reason === undefined ? [] : [`*Reason*\n${slackText(visible(scrubSecrets(r.reason)), 500)}`]),
    ...(r.summary === undefined ? [] : [`*Operations*\n${slackText(r.summary.operations.join(", "), 500)}`]),
    ...(r.summary?.objects === undefined ? [] : [`*Acts on*\n${slackText(visible(describeObjects(r.summary.objects).join(", ")), 500)}`]),
    `*Expires*\n${r.expiresAt.toISOString()}`,
  ];
  blocks.push({ type: "section", fields: fields.slice(0, 10).map((f) => ({ type: "mrkdwn", text: f })) });
  const how = slackText(`\`airlock approvals approve ${r.id}\` or \`airlock approvals deny ${r.id} --reason …\``, 1000);
  blocks.push({
    type: "context",
    elements: [{ type: "mrkdwn", text: publicUrl === undefined ? how : `<${approvalUrl(publicUrl, r.id)}|Approve or deny in the browser> · ${how}` }],
  });
  return { text, blocks };
}

export function emailText(event: NoticeEvent, r: ApprovalRow, publicUrl: string | undefined): { subject: string; text: string } {
  const lines = [
    headline(event, r),
    "",
    `Request:    ${r.id} (${r.kind})`,
    `Status:     ${r.status}`,
    `Requester:  ${r.requesterName} (${r.requesterId})`,
    `Connection: ${r.connection}`,
    ...(r.rule === undefined ? [] : [`Rule:       ${r.rule}`]),
    ...(r.reason === undefined ? [] : [`Reason:     ${oneLine(visible(scrubSecrets(r.reason)))}`]),
    ...(r.summary === undefined ? [] : [`Operations: ${r.summary.operations.join(", ")}`, `Relations:  ${r.summary.relations.join(", ")}`]),
    ...(r.summary?.objects === undefined ? [] : [`Acts on:    ${oneLine(visible(describeObjects(r.summary.objects).join(", ")))}`]),
    `Approvers:  ${r.approvers.join(", ")} (${r.minApprovals} needed)`,
    `Expires:    ${r.expiresAt.toISOString()}`,
    // Indented: lines of the statement cannot pose as the instructions below.
    ...(r.statement === undefined ? [] : ["", "Statement:", ...noticeStatement(r.statement).split(/\r\n|\r|\n/u).map((l) => `    ${l}`)]),
    ...(placeholders(r) ? ["", PLACEHOLDER_NOTE] : []),
    "",
    `Approve: airlock approvals approve ${r.id}`,
    `Deny:    airlock approvals deny ${r.id} --reason TEXT`,
    ...(publicUrl === undefined ? [] : [`Decide:  ${approvalUrl(publicUrl, r.id)}`]),
  ];
  return { subject: clip(headline(event, r), 200), text: visible(lines.join("\n")) };
}

export function sign(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** A short, safe reason for a failed attempt (never a URL or a server's text). */
function failureCode(e: unknown): string {
  if (typeof e === "object" && e !== null) {
    if ("name" in e && (e.name === "TimeoutError" || e.name === "AbortError")) return "timeout";
    const cause = "cause" in e ? e.cause : undefined;
    if (typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string") return cause.code;
    if ("code" in e && typeof e.code === "string") return e.code;
  }
  return "network error";
}

export class ApprovalNotifier implements Notifier {
  readonly #o: NotifierOptions;
  readonly #inFlight = new Set<Promise<void>>();
  #mailer: Transporter | undefined;

  constructor(options: NotifierOptions) {
    this.#o = options;
  }

  get enabled(): boolean {
    return this.#o.webhooks.length > 0 || this.#o.email !== undefined;
  }

  notify(event: NoticeEvent, request: ApprovalRow): void {
    const jobs: Promise<void>[] = this.#o.webhooks.map((hook, i) => this.#webhook(i, hook, event, request));
    if (this.#o.email !== undefined) jobs.push(this.#email(this.#o.email, event, request));
    for (const job of jobs) {
      const p = job.catch((e: unknown) => {
        this.#o.logger.error({ err: e, approvalId: request.id }, "notification failed");
      });
      this.#inFlight.add(p);
      void p.finally(() => this.#inFlight.delete(p));
    }
  }

  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  close(): void {
    this.#mailer?.close();
  }

  async #record(row: DeliveryRow): Promise<void> {
    await this.#o.store.recordDelivery(row).catch((e: unknown) => {
      this.#o.logger.error({ err: e, approvalId: row.requestId, channel: row.channel }, "could not record a notification delivery");
    });
  }

  async #webhook(index: number, hook: WebhookConfig, event: NoticeEvent, r: ApprovalRow): Promise<void> {
    let channel = `webhook[${index}]`;
    let url: string;
    let secret: string | undefined;
    try {
      url = await this.#o.resolveSecret(hook.url);
      secret = hook.secret === undefined ? undefined : await this.#o.resolveSecret(hook.secret);
      channel = `webhook[${index}] ${new URL(url).host}`;
    } catch {
      await this.#record({ requestId: r.id, channel, event, attempt: 1, ok: false, error: "the webhook URL or secret could not be resolved", at: new Date() });
      this.#o.logger.warn({ approvalId: r.id, channel }, "webhook not sent: its URL or secret could not be resolved");
      return;
    }
    const payload = hook.format === "slack" ? slackPayload(event, r, this.#o.publicUrl) : noticePayload(event, r, this.#o.publicUrl);
    const body = JSON.stringify(payload);
    const delivery = randomUUID();
    for (let attempt = 1; attempt <= hook.maxAttempts; attempt++) {
      const timestamp = Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "Airlock-Approvals/1",
        "x-airlock-event": event,
        "x-airlock-delivery": delivery,
        "x-airlock-timestamp": String(timestamp),
      };
      if (secret !== undefined) headers["x-airlock-signature"] = sign(secret, timestamp, body);
      let status: number | undefined;
      let error: string | undefined;
      try {
        const res = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(hook.timeout) });
        status = res.status;
        await res.body?.cancel().catch(() => undefined);
      } catch (e) {
        error = failureCode(e);
      }
      const ok = status !== undefined && status >= 200 && status < 300;
      await this.#record({
        requestId: r.id,
        channel,
        event,
        attempt,
        ok,
        ...(status === undefined ? {} : { httpStatus: status }),
        ...(error === undefined ? {} : { error }),
        at: new Date(),
      });
      if (ok) return;
      const retry = status === undefined || status === 429 || status >= 500;
      this.#o.logger.warn({ approvalId: r.id, channel, attempt, status, error, retry: retry && attempt < hook.maxAttempts }, "webhook delivery failed");
      if (!retry) return;
      if (attempt < hook.maxAttempts) await sleep(hook.retryDelay * 2 ** (attempt - 1));
    }
  }

  async #email(cfg: EmailConfig, event: NoticeEvent, r: ApprovalRow): Promise<void> {
    const channel = "email";
    const maxAttempts = 3;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let error: string | undefined;
      try {
        const mailer = await this.#transport(cfg);
        const { subject, text } = emailText(event, r, this.#o.publicUrl);
        await mailer.sendMail({ from: cfg.from, to: [...cfg.to], subject, text });
      } catch (e) {
        error = failureCode(e);
      }
      await this.#record({ requestId: r.id, channel, event, attempt, ok: error === undefined, ...(error === undefined ? {} : { error }), at: new Date() });
      if (error === undefined) return;
      this.#o.logger.warn({ approvalId: r.id, channel, attempt, error }, "email delivery failed");
      if (attempt < maxAttempts) await sleep(1000 * 2 ** (attempt - 1));
    }
  }

  async #transport(cfg: EmailConfig): Promise<Transporter> {
    if (this.#mailer !== undefined) return this.#mailer;
    const password = cfg.smtp.password === undefined ? undefined : await this.#o.resolveSecret(cfg.smtp.password);
    this.#mailer = createTransport({
      host: cfg.smtp.host,
      port: cfg.smtp.port,
      secure: cfg.smtp.secure,
      ...(cfg.smtp.user === undefined ? {} : { auth: { user: cfg.smtp.user, pass: password ?? "" } }),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
      logger: false,
    });
    return this.#mailer;
  }
}

/**
 * A preview leaves Airlock as counts only: its sample and plan (values and literals, which the
 * statement's own redaction does not cover there) stay behind the API and the approval page.
 */
function notifiedSummary(s: NonNullable<ApprovalRow["summary"]>): NonNullable<ApprovalRow["summary"]> {
  const p = s.preview;
  if (p === undefined || p.status !== "previewed") return s;
  return { ...s, preview: { status: p.status, affectedRows: p.affectedRows, tables: p.tables, plan: [] } };
}
