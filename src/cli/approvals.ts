/**
 * `airlock approvals list|show|approve|deny` and `airlock access request|list` (README
 * "Approvals"). They talk to the gateway's API as the caller (AIRLOCK_TOKEN, or the admin
 * credential on the gateway's host); the gateway checks who may see and decide what.
 * Statements shown come from agents: control characters are made visible (sanitizeInline).
 */
import { describePreview, type StatementPreview } from "../core/preview.js";
import { describeObjects } from "../approvals/binding.js";
import type { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { z } from "zod";
import { parseDuration } from "../runtime/duration.js";
import { connect, type ConnectOptions } from "./context.js";
import { CliError } from "./errors.js";
import { sanitize, sanitizeInline } from "./format.js";

export interface ApprovalCliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** A request's preview as the API answers it (core/preview.ts StatementPreview). */
const previewView = z.discriminatedUnion("status", [
  z.object({
    status: z.literal("previewed"),
    affectedRows: z.number(),
    tables: z.array(z.object({ relation: z.string(), inserted: z.number(), updated: z.number(), deleted: z.number() })),
    sample: z.object({ image: z.enum(["before", "after"]), columns: z.array(z.string()), rows: z.array(z.array(z.string().nullable())), truncated: z.boolean() }).optional(),
    plan: z.array(z.string()),
  }),
  z.object({ status: z.literal("unpreviewable"), reason: z.string() }),
  z.object({ status: z.literal("failed"), reason: z.string() }),
]);

function previewFromView(p: z.output<typeof previewView>): StatementPreview {
  if (p.status !== "previewed") return p;
  const { sample, ...rest } = p;
  return sample === undefined ? rest : { ...rest, sample };
}

const requestSchema = z.object({
  id: z.string(),
  kind: z.enum(["statement", "grant"]),
  status: z.string(),
  requester: z.object({ id: z.string(), kind: z.string(), name: z.string() }),
  connection: z.string(),
  statement: z.string().optional(),
  params: z.array(z.string().nullable()).optional(),
  summary: z
    .object({
      operations: z.array(z.string()),
      relations: z.array(z.string()),
      objects: z
        .object({
          searchPath: z.string(),
          objects: z.array(z.object({ kind: z.enum(["relation", "function"]), name: z.string(), resolved: z.array(z.object({ oid: z.number(), qualified: z.string() })) })),
        })
        .optional(),
      preview: previewView.optional(),
    })
    .optional(),
  rule: z.string().optional(),
  reason: z.string().optional(),
  approvers: z.array(z.string()),
  minApprovals: z.number(),
  mode: z.string().optional(),
  durationMs: z.number().optional(),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().optional(),
  decisionReason: z.string().optional(),
  usableUntil: z.string().optional(),
  usedAt: z.string().optional(),
  approvals: z.number().optional(),
  votes: z
    .array(z.object({ approver: z.object({ id: z.string(), name: z.string() }), vote: z.string(), reason: z.string().optional(), at: z.string() }))
    .optional(),
});
type RequestView = z.infer<typeof requestSchema>;

const listAnswer = z.object({ requests: z.array(requestSchema) });
const oneAnswer = z.object({ request: requestSchema });

interface ApiOpts {
  api?: string;
  config?: string;
}

function withApi(cmd: Command): Command {
  return cmd
    .option("--api <url>", "gateway API address (default: AIRLOCK_API, listen.api of the config, http://127.0.0.1:8780)")
    .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml)");
}

function connectOptions(opts: ApiOpts): ConnectOptions {
  return { ...(opts.api === undefined ? {} : { api: opts.api }), ...(opts.config === undefined ? {} : { config: opts.config }) };
}

function durationOption(value: string): string {
  try {
    parseDuration(value);
  } catch {
    throw new InvalidArgumentError(`invalid duration "${value}" (use e.g. 30m, 2h)`);
  }
  return value;
}

function limitOption(value: string): string {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) throw new InvalidArgumentError("expected a whole number from 1 to 1000");
  return value;
}

function idArg(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(id)) throw new CliError(`"${sanitizeInline(id.slice(0, 60))}" is not a request id`, 2);
  return id;
}

function clip(text: string, max: number): string {
  const one = sanitizeInline(text);
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

function what(r: RequestView): string {
  if (r.kind === "grant") return `access for ${formatMs(r.durationMs ?? 0)}${r.reason === undefined ? "" : `: ${r.reason}`}`;
  return r.statement ?? "";
}

export function requestsTable(rows: readonly RequestView[]): string[] {
  if (rows.length === 0) return ["(no requests)"];
  const header = ["ID", "STATUS", "REQUESTER", "CONNECTION", "RULE", "EXPIRES", "WHAT"];
  const cells = rows.map((r) => [
    r.id,
    r.status,
    sanitizeInline(r.requester.name),
    sanitizeInline(r.connection),
    r.kind === "grant" ? "(access)" : sanitizeInline(r.rule ?? ""),
    r.status === "pending" ? r.expiresAt : (r.decidedAt ?? ""),
    clip(what(r), 70),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)));
  const line = (c: readonly string[]): string =>
    c
      .map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...cells.map(line)];
}

/** `$1`-style placeholders in a request without parameters (SQL PREPARE: values come at each execution). */
const PLACEHOLDER = /\$[1-9][0-9]*/u;
export const PLACEHOLDER_NOTE = "params: filled when the prepared statement runs ($n placeholders): each execution is held for approval on its own";

export function requestDetail(r: RequestView): string[] {
  const lines = [
    `request     ${r.id} (${r.kind})`,
    `status      ${r.status}${r.decisionReason === undefined ? "" : ` (${sanitizeInline(r.decisionReason)})`}`,
    `requester   ${sanitizeInline(r.requester.name)} (${sanitizeInline(r.requester.id)})`,
    `connection  ${sanitizeInline(r.connection)}`,
  ];
  if (r.rule !== undefined) lines.push(`rule        ${sanitizeInline(r.rule)}${r.mode === undefined ? "" : ` (${r.mode})`}`);
  if (r.reason !== undefined) lines.push(`reason      ${sanitizeInline(r.reason)}`);
  if (r.durationMs !== undefined) lines.push(`duration    ${formatMs(r.durationMs)}`);
  if (r.summary !== undefined) lines.push(`operations  ${r.summary.operations.join(", ")}`, `relations   ${r.summary.relations.map(sanitizeInline).join(", ")}`);
  // What the names resolved to on the target when it was requested: the approval holds only while they still do.
  const objects = r.summary?.objects;
  if (objects !== undefined) {
    lines.push(`search_path ${sanitizeInline(objects.searchPath)}`);
    for (const o of describeObjects(objects)) lines.push(`resolves    ${sanitizeInline(o)}`);
  }
  // What the statement would do (run in a rolled-back transaction): checked again when it runs.
  const preview = r.summary?.preview;
  if (preview !== undefined) for (const [i, l] of describePreview(previewFromView(preview)).entries()) lines.push(`${i === 0 ? "preview     " : "            "}${sanitizeInline(l)}`);
  lines.push(`approvers   ${r.approvers.map(sanitizeInline).join(", ")} (${r.approvals ?? 0} of ${r.minApprovals} approvals)`);
  lines.push(`created     ${r.createdAt}`, `expires     ${r.expiresAt}`);
  if (r.usableUntil !== undefined) lines.push(`${r.kind === "grant" ? "grant ends " : "usable till"} ${r.usableUntil}`);
  if (r.usedAt !== undefined) lines.push(`used        ${r.usedAt}`);
  for (const v of r.votes ?? []) lines.push(`vote        ${v.vote} by ${sanitizeInline(v.approver.name)} at ${v.at}${v.reason === undefined ? "" : `: ${sanitizeInline(v.reason)}`}`);
  if (r.statement !== undefined) lines.push("", sanitize(r.statement));
  if (r.params !== undefined) lines.push(`params: ${sanitizeInline(JSON.stringify(r.params))}`);
  else if (r.statement !== undefined && PLACEHOLDER.test(r.statement)) lines.push(PLACEHOLDER_NOTE);
  return lines;
}

export function registerApprovalCommands(program: Command, io: ApprovalCliIo, setExit: (code: number) => void): void {
  const print = (text: string): void => {
    io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  };
  const printLines = (lines: readonly string[]): void => {
    if (lines.length > 0) io.stdout.write(`${lines.join("\n")}\n`);
  };

  // --- approvals ----------------------------------------------------------------------------
  const approvals = program.command("approvals").description("decide statements held for approval and access requests");
  withApi(
    approvals
      .command("list")
      .description("requests you may see: pending by default")
      .option("--all", "include decided, expired and cancelled requests")
      .option("--json", "print JSON")
      .addOption(new Option("--limit <n>", "at most this many (1-1000)").default("100").argParser(limitOption)),
  ).action(async (opts: ApiOpts & { all?: boolean; json?: boolean; limit: string }) => {
    const client = connect(connectOptions(opts), io);
    const q = new URLSearchParams({ limit: opts.limit });
    if (opts.all !== true) q.set("status", "pending");
    const res = await client.request("GET", `/v1/approvals?${q.toString()}`, listAnswer);
    if (opts.json === true) print(JSON.stringify(res, null, 2));
    else printLines(requestsTable(res.requests));
  });

  withApi(approvals.command("show").description("show one request with its votes").argument("<id>", "request id").option("--json", "print JSON")).action(
    async (id: string, opts: ApiOpts & { json?: boolean }) => {
      const client = connect(connectOptions(opts), io);
      const res = await client.request("GET", `/v1/approvals/${encodeURIComponent(idArg(id))}`, oneAnswer.loose());
      if (opts.json === true) print(JSON.stringify(res, null, 2));
      else printLines(requestDetail(res.request));
    },
  );

  for (const vote of ["approve", "deny"] as const) {
    withApi(
      approvals
        .command(vote)
        .description(vote === "approve" ? "approve a request (never your own)" : "deny a request (any deny denies)")
        .argument("<id>", "request id")
        .option("--reason <text>", vote === "approve" ? "why (recorded in the audit log)" : "why (shown to the requester)")
        .option("--json", "print JSON"),
    ).action(async (id: string, opts: ApiOpts & { reason?: string; json?: boolean }) => {
      const client = connect(connectOptions(opts), io);
      const res = await client.request("POST", `/v1/approvals/${encodeURIComponent(idArg(id))}/${vote}`, oneAnswer, opts.reason === undefined ? {} : { reason: opts.reason });
      if (opts.json === true) {
        print(JSON.stringify(res, null, 2));
        return;
      }
      const r = res.request;
      if (r.status === "pending") print(`${r.id}: ${r.approvals ?? 0} of ${r.minApprovals} approvals; still pending`);
      else print(`${r.status} ${r.id}`);
    });
  }

  // --- access -------------------------------------------------------------------------------
  const access = program.command("access").description("time-boxed access to connections (grants)");
  withApi(
    access
      .command("request")
      .description("request time-boxed access to a connection; prints the request id")
      .argument("<connection>", "the connection")
      .requiredOption("--duration <duration>", "how long, e.g. 30m or 2h", durationOption)
      .requiredOption("--reason <text>", "why (shown to approvers)")
      .option("--wait", "wait for the decision; exit 0 when approved, 1 otherwise")
      .option("--json", "print JSON"),
  ).action(async (connection: string, opts: ApiOpts & { duration: string; reason: string; wait?: boolean; json?: boolean }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request("POST", "/v1/access/requests", oneAnswer, { connection, duration: opts.duration, reason: opts.reason });
    if (opts.json === true) print(JSON.stringify(res, null, 2));
    else print(res.request.id);
    if (opts.wait !== true) return;
    let r = res.request;
    const deadline = Date.parse(r.expiresAt) + 5_000;
    while (r.status === "pending" && Date.now() < deadline) {
      await sleep(1000);
      r = (await client.request("GET", `/v1/access/requests/${encodeURIComponent(r.id)}`, oneAnswer.loose())).request;
    }
    io.stderr.write(`airlock: ${r.id} ${r.status}${r.usableUntil === undefined ? "" : ` until ${r.usableUntil}`}${r.decisionReason === undefined ? "" : `: ${sanitizeInline(r.decisionReason)}`}\n`);
    setExit(r.status === "approved" ? 0 : 1);
  });

  withApi(
    access
      .command("revoke")
      .description("end an approved grant now; sessions opened under it end")
      .argument("<id>", "the grant's request id")
      .option("--reason <text>", "why (recorded in the audit log)"),
  ).action(async (id: string, opts: ApiOpts & { reason?: string }) => {
    const client = connect(connectOptions(opts), io);
    const res = await client.request("POST", `/v1/access/requests/${encodeURIComponent(idArg(id))}/revoke`, oneAnswer, opts.reason === undefined ? {} : { reason: opts.reason });
    print(`${res.request.status} ${res.request.id}`);
  });

  withApi(access.command("list").description("access requests you may see: pending by default").option("--all", "include decided ones").option("--json", "print JSON")).action(
    async (opts: ApiOpts & { all?: boolean; json?: boolean }) => {
      const client = connect(connectOptions(opts), io);
      const q = opts.all === true ? "" : "?status=pending";
      const res = await client.request("GET", `/v1/access/requests${q}`, listAnswer);
      if (opts.json === true) print(JSON.stringify(res, null, 2));
      else printLines(requestsTable(res.requests));
    },
  );
}
