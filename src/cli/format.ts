/**
 * Terminal rendering for sessions and recordings. Everything shown comes from the recording,
 * i.e. from what a client sent: control characters (ANSI escapes, carriage returns, bidi
 * overrides) are made visible so a recorded statement cannot rewrite the operator's terminal.
 */
import { z } from "zod";
import { recordingEntrySchema } from "../recording/file-store.js";

// --- schemas of what the API answers (tolerant of added fields) ------------------------------

export const sessionSchema = z.object({
  id: z.string(),
  protocol: z.string(),
  connection: z.string(),
  principal: z.object({ id: z.string(), kind: z.string(), name: z.string() }),
  groups: z.array(z.string()).default([]),
  tokenId: z.string().optional(),
  clientAddress: z.string(),
  startedAt: z.string(),
  attributes: z.record(z.string(), z.string()).default({}),
  endedAt: z.string().optional(),
  endReason: z.string().optional(),
  endDetail: z.string().optional(),
  statements: z.number().optional(),
  live: z.boolean().default(false),
});
export type SessionView = z.infer<typeof sessionSchema>;


/** Recording entries as the API returns them: the recording store's own schema. */
export const entrySchema = recordingEntrySchema;
export type EntryView = z.infer<typeof entrySchema>;

/** Entries the CLI understands; unknown kinds (from a newer gateway) are kept as `undefined`. */
export function parseEntries(raw: readonly unknown[]): (EntryView | undefined)[] {
  return raw.map((r) => {
    const p = entrySchema.safeParse(r);
    return p.success ? p.data : undefined;
  });
}

// --- text helpers -------------------------------------------------------------------------

// C0 controls except \n and \t, DEL, C1 controls, and Unicode bidi embedding/override/isolate.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Make control characters visible (`\x1b`, `\u202e`); keeps newlines and tabs. */
export function sanitize(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** One-line form for table cells: newlines and tabs escaped too. */
export function sanitizeInline(text: string): string {
  return sanitize(text).replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** Columns aligned by padding; the last column is not padded. `rule` adds a dashed line under the header. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], indent = "", rule = false): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const ruleLine = rule ? [line(widths.map((w) => "-".repeat(w)))] : [];
  return [line(header), ...ruleLine, ...rows.map(line)];
}

/** `2026-01-01T00:00:00.000Z` → `2026-01-01 00:00:00Z`. */
export function shortTime(iso: string | undefined): string {
  if (iso === undefined) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return sanitizeInline(iso);
  return d.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}

function seconds(ms: number): string {
  return `+${(ms / 1000).toFixed(3)}s`;
}

// --- sessions -----------------------------------------------------------------------------

export function sessionsTable(sessions: readonly SessionView[]): string[] {
  if (sessions.length === 0) return ["no sessions"];
  return table(
    ["ID", "PRINCIPAL", "CONNECTION", "CLIENT", "STARTED", "ENDED", "STATEMENTS"],
    sessions.map((s) => [
      sanitizeInline(s.id),
      truncate(sanitizeInline(s.principal.id), 40),
      truncate(sanitizeInline(s.connection), 30),
      sanitizeInline(s.clientAddress),
      shortTime(s.startedAt),
      s.live ? "live" : s.endedAt === undefined ? "-" : shortTime(s.endedAt),
      s.statements === undefined ? "-" : String(s.statements),
    ]),
  );
}

export function sessionHeader(s: SessionView): string[] {
  const groups = s.groups.length === 0 ? "" : ` groups: ${s.groups.map(sanitizeInline).join(", ")}`;
  const ended = s.live
    ? "live"
    : s.endedAt === undefined
      ? "- (no end recorded)"
      : `${shortTime(s.endedAt)} (${sanitizeInline(s.endReason ?? "unknown")}${s.endDetail === undefined ? "" : `: ${sanitizeInline(s.endDetail)}`})`;
  const rows: [string, string][] = [
    ["Session", sanitizeInline(s.id)],
    ["Principal", `${sanitizeInline(s.principal.id)} (${sanitizeInline(s.principal.kind)})${groups}`],
    ["Connection", `${sanitizeInline(s.connection)} (${sanitizeInline(s.protocol)})`],
    ["Client", sanitizeInline(s.clientAddress)],
    ["Started", shortTime(s.startedAt)],
    ["Ended", ended],
  ];
  if (s.statements !== undefined) rows.push(["Statements", String(s.statements)]);
  if (s.tokenId !== undefined) rows.push(["Token", sanitizeInline(s.tokenId)]);
  const attributes = Object.entries(s.attributes).map(([k, v]) => `${sanitizeInline(k)}=${sanitizeInline(v)}`);
  if (attributes.length > 0) rows.push(["Attributes", attributes.join(" ")]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
}

const MAX_CELL = 40;

function showValue(v: string | null): string {
  return v === null ? "NULL" : truncate(sanitizeInline(v), MAX_CELL);
}

function paramsLine(params: readonly (string | null)[]): string {
  return `    params: ${params.map((p, i) => `$${i + 1}=${p === null ? "NULL" : `'${showValue(p)}'`}`).join(", ")}`;
}

/** The lines for one recording entry (without any delay logic). */
export function renderEntry(e: EntryView | undefined): string[] {
  if (e === undefined) return ["(an entry this CLI does not understand)"];
  switch (e.kind) {
    case "header":
      return [`${seconds(e.t)} session ${sanitizeInline(e.sessionId)} started: ${sanitizeInline(e.principal)} on ${sanitizeInline(e.connection)} (${sanitizeInline(e.protocol)})`];
    case "query": {
      let decision = e.decision;
      if (e.decision !== "allow") {
        if (e.rule !== undefined) decision += ` [${sanitizeInline(e.rule)}]`;
        if (e.message !== undefined) decision += `: ${sanitizeInline(e.message)}`;
      }
      const name = e.statementName === undefined || e.statementName === "" ? "" : ` (statement ${sanitizeInline(e.statementName)})`;
      const head = `#${e.seq} ${seconds(e.t)} ${sanitizeInline(e.stage)} ${decision}${name}`;
      const lines = [head, ...sanitize(e.sql).split(/\r?\n/).map((l) => `    ${l}`)];
      // A refused Bind has no result entry: its values are shown here (an allowed one's with its result).
      if (e.decision !== "allow" && e.params !== undefined && e.params.length > 0) lines.push(paramsLine(e.params));
      return lines;
    }
    case "result": {
      const lines: string[] = [];
      if (e.params !== undefined && e.params.length > 0) lines.push(paramsLine(e.params));
      if (e.error !== undefined) {
        lines.push(`    error ${sanitizeInline(e.error.sqlstate)}: ${sanitizeInline(e.error.message)} (${e.durationMs} ms)`);
      } else {
        const tag = e.commandTag === undefined ? "" : `${sanitizeInline(e.commandTag)}, `;
        lines.push(`    -> ${tag}${e.rowCount} ${e.rowCount === 1 ? "row" : "rows"} (${e.durationMs} ms)`);
      }
      if (e.columns !== undefined && e.rows !== undefined && e.rows.length > 0) {
        const header = e.columns.map((c) => truncate(sanitizeInline(c), MAX_CELL));
        lines.push(...table(header, e.rows.map((r) => r.map(showValue)), "    | ", true));
      }
      if (e.rowsTruncated === true) {
        lines.push(`    (${e.rows?.length ?? 0} of the rows were captured)`);
      }
      if (e.rowsSent !== undefined) lines.push(`    (the client received ${e.rowsSent} rows: row limit)`);
      if (e.masked !== undefined) {
        lines.push(`    masked: ${Object.entries(e.masked).map(([k, n]) => `${sanitizeInline(k)}=${n}`).join(", ")}`);
      }
      return lines;
    }
    case "end":
      return [`${seconds(e.t)} session ended: ${sanitizeInline(e.reason)}${e.detail === undefined ? "" : `: ${sanitizeInline(e.detail)}`}`];
  }
}
