/**
 * The console API's shapes, as zod schemas: the server validates its inputs with them, the
 * web console (web/) parses every answer with them, and /openapi.json is generated from them.
 * No Node imports here: this module is bundled into the browser app.
 */
import { z } from "zod";

export const principalRef = z.object({ id: z.string(), kind: z.string(), name: z.string() });
export const role = z.enum(["admin", "approver", "auditor", "user"]);

export const consoleSession = z.discriminatedUnion("signedIn", [
  z.object({
    signedIn: z.literal(true),
    principal: principalRef.extend({ groups: z.array(z.string()) }),
    roles: z.array(role),
    csrf: z.string(),
    expiresAt: z.string(),
  }),
  z.object({ signedIn: z.literal(false), oidc: z.boolean() }),
]);
export type ConsoleSession = z.infer<typeof consoleSession>;

export const loginBody = z.strictObject({ token: z.string().min(1).max(20_000) });

export const approvalView = z.object({
  id: z.string(),
  kind: z.enum(["statement", "grant"]),
  status: z.string(),
  requester: principalRef,
  connection: z.string(),
  protocol: z.string().optional(),
  sessionId: z.string().optional(),
  statement: z.string().optional(),
  params: z.array(z.string().nullable()).optional(),
  summary: z
    .object({
      operations: z.array(z.string()),
      relations: z.array(z.string()),
      /** What the held write would do (issue 21; core/preview.ts): the inbox shows the counts and the reason. */
      preview: z
        .object({
          status: z.string(),
          reason: z.string().optional(),
          affectedRows: z.number().optional(),
          tables: z.array(z.object({ relation: z.string(), inserted: z.number(), updated: z.number(), deleted: z.number() })).optional(),
        })
        .loose()
        .optional(),
    })
    .loose()
    .optional(),
  rule: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  approvers: z.array(z.string()),
  minApprovals: z.number(),
  durationMs: z.number().optional(),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().optional(),
  decisionReason: z.string().optional(),
  votes: z.array(z.object({ approver: principalRef, vote: z.enum(["approve", "deny"]), reason: z.string().optional(), at: z.string() })).optional(),
  approvals: z.number().optional(),
  /** Whether the viewer may vote on it now (console only). */
  canDecide: z.boolean().optional(),
});
export type ApprovalView = z.infer<typeof approvalView>;
export const approvalList = z.object({ requests: z.array(approvalView) });
export const decideBody = z.strictObject({ reason: z.string().max(2000).optional() });

export const sessionView = z.object({
  id: z.string(),
  protocol: z.string(),
  connection: z.string(),
  principal: principalRef,
  groups: z.array(z.string()),
  clientAddress: z.string(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  endReason: z.string().optional(),
  statements: z.number().optional(),
  live: z.boolean(),
});
export type SessionView = z.infer<typeof sessionView>;
export const sessionList = z.object({ sessions: z.array(sessionView) });
export type SessionList = z.infer<typeof sessionList>;
export const sessionsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  connection: z.string().min(1).max(200).optional(),
});

/** One recording entry (src/recording/types.ts), as the console reads it. */
export const recordingEntry = z.discriminatedUnion("kind", [
  z.object({ t: z.number(), kind: z.literal("header"), sessionId: z.string(), protocol: z.string(), connection: z.string(), principal: z.string(), startedAt: z.string() }).loose(),
  z
    .object({
      t: z.number(),
      kind: z.literal("query"),
      seq: z.number(),
      stage: z.string(),
      sql: z.string(),
      params: z.array(z.string().nullable()).optional(),
      decision: z.string(),
      rule: z.string().optional(),
      message: z.string().optional(),
    })
    .loose(),
  z
    .object({
      t: z.number(),
      kind: z.literal("result"),
      seq: z.number(),
      commandTag: z.string().optional(),
      rowCount: z.number(),
      columns: z.array(z.string()).optional(),
      rows: z.array(z.array(z.string().nullable())).optional(),
      rowsTruncated: z.boolean().optional(),
      error: z.object({ sqlstate: z.string(), message: z.string() }).optional(),
      durationMs: z.number(),
      masked: z.record(z.string(), z.number()).optional(),
    })
    .loose(),
  z.object({ t: z.number(), kind: z.literal("end"), reason: z.string(), detail: z.string().optional() }).loose(),
]);
export type RecordingEntryView = z.infer<typeof recordingEntry>;
export const sessionDetail = z.object({ session: sessionView, recording: z.array(recordingEntry), hasCast: z.boolean() });

export const auditRecord = z
  .object({
    seq: z.number(),
    time: z.string(),
    type: z.string(),
    sessionId: z.string().optional(),
    principal: principalRef.optional(),
    connection: z.string().optional(),
    protocol: z.string().optional(),
    decision: z.enum(["allow", "deny"]).optional(),
    code: z.string().optional(),
    rule: z.string().optional(),
    message: z.string().optional(),
    statement: z.string().optional(),
    details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
    hash: z.string(),
    prevHash: z.string(),
  })
  .loose();
export type AuditRecordView = z.infer<typeof auditRecord>;
export const auditQuery = z.object({
  principal: z.string().max(600).optional(),
  connection: z.string().max(200).optional(),
  decision: z.enum(["allow", "deny"]).optional(),
  rule: z.string().max(200).optional(),
  type: z.string().max(100).optional(),
  from: z.iso.datetime().optional(),
  to: z.iso.datetime().optional(),
  text: z.string().max(500).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
  format: z.enum(["json", "jsonl", "csv"]).default("json"),
});
export const auditSearch = z.object({ records: z.array(auditRecord), scanned: z.number(), truncated: z.boolean() });
export const auditVerify = z.union([
  z.object({ ok: z.literal(true), records: z.number(), lastSeq: z.number() }),
  z.object({ ok: z.literal(false), records: z.number(), failedSeq: z.number(), reason: z.string(), detail: z.string() }),
]);

export const connectionView = z.object({
  name: z.string(),
  type: z.string(),
  source: z.enum(["config", "console"]),
  host: z.string(),
  port: z.number(),
  groups: z.array(z.string()),
  disabled: z.boolean(),
  /** Every other setting, secrets as references (`env:NAME`, `file:PATH`, `literal:<redacted>`, `stored:<encrypted>`). */
  settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
});
export type ConnectionView = z.infer<typeof connectionView>;
export const connectionList = z.object({ connections: z.array(connectionView) });

export const tokenView = z.object({
  id: z.string(),
  serviceAccount: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
  createdBy: z.string(),
  revoked: z.boolean(),
});
export const identities = z.object({
  serviceAccounts: z.array(z.object({ name: z.string(), groups: z.array(z.string()), description: z.string().optional() })),
  roles: z.object({ admin: z.array(z.string()), approver: z.array(z.string()), auditor: z.array(z.string()) }),
  tokens: z.array(tokenView),
});
export const tokenCreateBody = z.strictObject({ serviceAccount: z.string().min(1).max(200), ttl: z.string().min(1).max(50).optional() });
export const tokenCreated = z.object({ token: z.string(), id: z.string(), expiresAt: z.string(), serviceAccount: z.string() });

export const policyView = z.object({
  name: z.string(),
  action: z.string(),
  connections: z.array(z.string()),
  groups: z.array(z.string()).optional(),
  document: z.string(),
  /** config: from the YAML (read-only in the console); console: kept in the store, editable. */
  source: z.enum(["config", "console"]).optional(),
});
export const policyList = z.object({ policies: z.array(policyView) });
export const tryBody = z.strictObject({
  connection: z.string().min(1).max(200),
  principal: z.string().min(1).max(600),
  statement: z.string().min(1).max(100_000),
});
export const tryResult = z.object({
  decision: z.enum(["allow", "deny", "hold"]),
  rule: z.string().optional(),
  message: z.string().optional(),
  code: z.string().optional(),
  masking: z.array(z.string()),
  classification: z.object({ operations: z.array(z.string()), relations: z.array(z.string()) }).optional(),
});
export type TryResult = z.infer<typeof tryResult>;
export const connectionTestResult = z.object({ ok: z.boolean(), checked: z.enum(["login", "tcp", "command"]), ms: z.number(), code: z.string().optional(), message: z.string() });
export type ConnectionTestResult = z.infer<typeof connectionTestResult>;
export const policyOrder = z.object({ order: z.array(z.string()) });
export const policySaved = z.object({ policy: z.object({ name: z.string(), action: z.string() }) });

/** A connected network-resident agent (GET /v1/agents; src/agent/registry.ts AgentView). */
export const agentView = z.object({
  id: z.string(),
  group: z.string(),
  principal: z.string(),
  name: z.string(),
  version: z.string(),
  address: z.string(),
  connectedAt: z.string(),
  lastSeen: z.string(),
  streams: z.number(),
  streamsOpened: z.number(),
});
export type AgentViewT = z.infer<typeof agentView>;
export const agentList = z.object({ agents: z.array(agentView) });
/** One budget counter (GET /v1/budgets; src/policy/budgets.ts BudgetCounterView). */
const budgetKinds = { rows: z.number(), bytes: z.number(), statements: z.number() };
export const budgetCounter = z.object({
  budget: z.string(),
  subject: z.string(),
  connection: z.string(),
  windowStart: z.string(),
  windowEnd: z.string(),
  used: z.object(budgetKinds),
  limits: z.object(budgetKinds).partial(),
});
export type BudgetCounterT = z.infer<typeof budgetCounter>;
export const budgetList = z.object({ budgets: z.array(budgetCounter) });
export const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), rule: z.string().optional() }) });
