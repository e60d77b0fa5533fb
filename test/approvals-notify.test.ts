/**
 * Approval notifications against real local receivers: an HTTP server for webhooks (JSON
 * signed with HMAC, retried after a 500; Slack-compatible payload) and an SMTP server
 * (`smtp-server`) for email, through the real gateway. Also: what a gateway restart does to
 * requests whose waiting clients are gone.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/runtime/config.js";
import { startGateway } from "../src/runtime/gateway.js";
import { newApprovalId } from "../src/approvals/service.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

const SECRET = `whsec-${randomBytes(12).toString("hex")}`;
const SMTP_PASSWORD = `smtp-${randomBytes(12).toString("hex")}`;
const SLACK_PATH = `/services/T000/B000/${randomBytes(8).toString("hex")}`;

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

let http: Server;
let httpPort = 0;
const received: Received[] = [];
/** Answer the first JSON delivery with a 500, to exercise the retry. */
let failNextJson = true;

let smtp: SMTPServer;
let smtpPort = 0;
const mails: { from: string; to: string[]; raw: string; user?: string }[] = [];

let t: TestGateway;
let token: string;
let dbaToken: string;

function verify(r: Received): boolean {
  const ts = r.headers["x-airlock-timestamp"];
  const sig = r.headers["x-airlock-signature"];
  if (typeof ts !== "string" || typeof sig !== "string") return false;
  const expected = Buffer.from(`sha256=${createHmac("sha256", SECRET).update(`${ts}.${r.body}`).digest("hex")}`);
  const given = Buffer.from(sig);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

beforeAll(async () => {
  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      if (req.url === "/hooks/json" && failNextJson) {
        failNextJson = false;
        res.writeHead(500).end("try again");
        return;
      }
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const addr = http.address();
  httpPort = typeof addr === "object" && addr !== null ? addr.port : 0;

  smtp = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      if (auth.username === "airlock" && auth.password === SMTP_PASSWORD) callback(null, { user: "airlock" });
      else callback(new Error("bad credentials"));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((a) => a.address),
          raw: Buffer.concat(chunks).toString("utf8"),
          ...(typeof session.user === "string" ? { user: session.user } : {}),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
  const smtpAddr = smtp.server.address();
  smtpPort = typeof smtpAddr === "object" && smtpAddr !== null ? smtpAddr.port : 0;

  process.env["AIRLOCK_TEST_WEBHOOK_SECRET"] = SECRET;
  process.env["AIRLOCK_TEST_SMTP_PASSWORD"] = SMTP_PASSWORD;
  process.env["AIRLOCK_TEST_SLACK_URL"] = `http://127.0.0.1:${httpPort}${SLACK_PATH}`;
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
    ],
    connections: [{ name: "restricted", type: "postgres", host: "127.0.0.1", port: 1, database: "x", user: "x", groups: ["dba"], sslmode: "disable" }],
    approvals: {
      publicUrl: "https://airlock.example.com/",
      webhooks: [
        { url: `http://127.0.0.1:${httpPort}/hooks/json`, secret: "env:AIRLOCK_TEST_WEBHOOK_SECRET", retryDelay: "50ms" },
        { url: "env:AIRLOCK_TEST_SLACK_URL", format: "slack" },
      ],
      email: {
        smtp: { host: "127.0.0.1", port: smtpPort, secure: false, user: "airlock", password: "env:AIRLOCK_TEST_SMTP_PASSWORD" },
        from: "airlock@example.com",
        to: ["dba-team@example.com"],
      },
      grants: { approvers: ["dba"] },
    },
  });
  token = await t.mint("agent", "1h");
  dbaToken = await t.mint("dba1", "1h");
});

afterAll(async () => {
  await t.stop();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await new Promise<void>((resolve) => http.close(() => resolve()));
});

describe("notifications", () => {
  it("sign webhooks, retry after a 500, speak Slack's payload and send email; every attempt is recorded", async () => {
    const created = await t.api("/v1/access/requests", { token, body: { connection: "restricted", duration: "30m", reason: "rotate the keys" } });
    expect(created.status).toBe(201);
    const id = (created.body as { request: { id: string } }).request.id;

    // Webhook: a 500, then the same delivery again, signed, with the same delivery id.
    const json = await until("two JSON deliveries", () => {
      const got = received.filter((r) => r.path === "/hooks/json");
      return got.length >= 2 ? got : undefined;
    });
    for (const r of json) expect(verify(r)).toBe(true);
    expect(json[0]?.body).toBe(json[1]?.body);
    expect(json[0]?.headers["x-airlock-delivery"]).toBe(json[1]?.headers["x-airlock-delivery"]);
    expect(json[0]?.headers["x-airlock-event"]).toBe("approval.requested");
    const payload = JSON.parse(json[1]?.body ?? "{}") as Record<string, unknown>;
    expect(payload).toMatchObject({
      type: "approval.requested",
      request: { id, kind: "grant", status: "pending", requester: { id: "sa:agent" }, connection: "restricted", reason: "rotate the keys", durationMs: 1_800_000, approvers: ["dba"] },
      url: `https://airlock.example.com/approvals/${id}`,
      apiUrl: `https://airlock.example.com/v1/approvals/${id}`,
      commands: { approve: `airlock approvals approve ${id}` },
    });
    // A tampered body fails verification.
    expect(verify({ ...(json[1] as Received), body: (json[1]?.body ?? "").replace("rotate", "delete") })).toBe(false);

    // Slack: text + blocks, no signature without a secret.
    const slack = await until("the Slack delivery", () => received.find((r) => r.path === SLACK_PATH));
    const slackBody = JSON.parse(slack.body) as { text: string; blocks: { type: string }[] };
    expect(slackBody.text).toBe("Airlock: agent requests access to restricted for 30m");
    expect(slackBody.blocks.map((b) => b.type)).toEqual(["section", "section", "context"]);
    expect(slack.body).toContain(`airlock approvals approve ${id}`);
    expect(slack.body).toContain(`<https://airlock.example.com/approvals/${id}|Approve or deny in the browser>`);
    expect(slack.headers["x-airlock-signature"]).toBeUndefined();

    // Email over SMTP, authenticated.
    const mail = await until("the email", () => mails.find((m) => m.raw.includes(id)));
    expect(mail.from).toBe("airlock@example.com");
    expect(mail.to).toEqual(["dba-team@example.com"]);
    expect(mail.user).toBe("airlock");
    expect(mail.raw).toContain("Subject: Airlock: agent requests access to restricted for 30m");
    expect(mail.raw).toContain(`Approve: airlock approvals approve ${id}`);
    expect(mail.raw).toContain(`Decide:  https://airlock.example.com/approvals/${id}`);

    // Deliveries are recorded and shown to admins, without URLs or secrets.
    const shown = await until("four delivery records", async () => {
      const r = await t.api(`/v1/approvals/${id}`);
      const d = (r.body as { deliveries?: { channel: string; attempt: number; ok: boolean; httpStatus?: number }[] }).deliveries ?? [];
      return d.length >= 4 ? { text: r.text, deliveries: d } : undefined;
    });
    const byChannel = shown.deliveries.map((d) => `${d.channel} #${d.attempt} ${d.ok ? "ok" : "failed"}${d.httpStatus === undefined ? "" : ` ${d.httpStatus}`}`).sort();
    expect(byChannel).toEqual([
      "email #1 ok",
      `webhook[0] 127.0.0.1:${httpPort} #1 failed 500`,
      `webhook[0] 127.0.0.1:${httpPort} #2 ok 200`,
      `webhook[1] 127.0.0.1:${httpPort} #1 ok 200`,
    ]);
    // The requester sees its own request, but not the delivery records.
    const own = await t.api(`/v1/approvals/${id}`, { token });
    expect((own.body as { deliveries?: unknown }).deliveries).toBeUndefined();

    // The decision is announced too.
    expect((await t.api(`/v1/approvals/${id}/approve`, { token: dbaToken, body: {} })).status).toBe(200);
    const decided = await until("the decision webhook", () => received.find((r) => r.path === "/hooks/json" && r.headers["x-airlock-event"] === "approval.decided"));
    expect(verify(decided)).toBe(true);
    expect(JSON.parse(decided.body)).toMatchObject({ type: "approval.decided", request: { id, status: "approved" } });

    // Secrets never reach API answers or logs.
    await t.gw.approvals.close().catch(() => undefined);
    for (const text of [shown.text, own.text, t.logs()]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(SMTP_PASSWORD);
      expect(text).not.toContain(SLACK_PATH);
    }
  });
});

describe("a gateway restart", () => {
  it("cancels pending wait-mode requests (their clients are gone) and keeps the others", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "airlock-restart-"));
    const raw = {
      dataDir,
      listen: { api: "127.0.0.1:0" },
      connections: [{ name: "c", type: "postgres", host: "127.0.0.1", port: 1, database: "x", user: "x", groups: ["g"], sslmode: "disable" }],
    };
    const logger = pino({ level: "silent" });
    try {
      const first = await startGateway(parseConfig(raw), { logger });
      const store = first.store.approvals;
      if (store === undefined) throw new Error("no approval store");
      const now = new Date();
      const base = {
        kind: "statement" as const,
        status: "pending" as const,
        requesterId: "sa:a",
        requesterKind: "service_account" as const,
        requesterName: "a",
        connection: "c",
        statement: "delete from t",
        statementHash: "h",
        approvers: ["dba"],
        minApprovals: 1,
        createdAt: now,
        expiresAt: new Date(now.getTime() + 600_000),
      };
      const waiting = { ...base, id: newApprovalId(), mode: "wait" as const };
      const asyncOne = { ...base, id: newApprovalId(), mode: "async" as const };
      await store.insertRequest(waiting);
      await store.insertRequest(asyncOne);
      await first.close();

      const second = await startGateway(parseConfig(raw), { logger });
      try {
        const after = second.store.approvals;
        expect((await after?.getRequest(waiting.id))?.status).toBe("cancelled");
        expect((await after?.getRequest(waiting.id))?.decisionReason).toBe("the gateway restarted while the client was waiting");
        expect((await after?.getRequest(asyncOne.id))?.status).toBe("pending");
        await second.audit.flush();
        const records = await second.store.readAudit(0, 1000);
        expect(records.some((r) => r.type === "approval.cancelled" && r.details?.["approvalId"] === waiting.id)).toBe(true);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
